//! The one place store calls are retried: exponential backoff with jitter, only for errors
//! that say a retry can help.

use std::future::Future;
use std::time::Duration;

use strata_store::StoreError;

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 4;

/// Run `call` until it succeeds, fails permanently, or [`ATTEMPTS`] are spent.
pub async fn with_backoff<T, F, Fut>(mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_retryable() && attempt < ATTEMPTS => {
                tracing::debug!(%error, attempt, "retrying store call");
                let jitter = Duration::from_millis(u64::from(subsec_nanos() % 100));
                tokio::time::sleep(delay + jitter).await;
                delay *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

fn subsec_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}
