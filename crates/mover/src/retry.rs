//! The one place store calls are retried: exponential backoff with jitter, only for errors
//! that say a retry can help, and never sooner than the store's `Retry-After` when its
//! answer (HTTP 429 or 5xx) carried one ([`StoreError::retry_after`], at most
//! [`MAX_RETRY_AFTER_WAIT`]).

use std::future::Future;
use std::time::Duration;

use strata_store::StoreError;

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 4;

/// The longest a retry waits for a store's `Retry-After`: a chunk task that waits holds
/// one of the run's `--jobs` slots, so a server asking for minutes is retried after one.
pub const MAX_RETRY_AFTER_WAIT: Duration = Duration::from_secs(60);

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
                tokio::time::sleep(wait(delay + jitter, &error)).await;
                delay *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The backoff delay, or the store's `Retry-After` (capped) when that is longer.
fn wait(backoff: Duration, error: &StoreError) -> Duration {
    let asked = error.retry_after().unwrap_or_default();
    backoff.max(asked.min(MAX_RETRY_AFTER_WAIT))
}

fn subsec_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_lengthens_the_wait_up_to_the_cap() {
        let later = |secs| StoreError::RetryLater {
            path: "s3://b/k".into(),
            detail: "SlowDown (HTTP 503 Service Unavailable)".into(),
            after: Duration::from_secs(secs),
        };
        let backoff = Duration::from_millis(150);
        assert_eq!(wait(backoff, &later(2)), Duration::from_secs(2));
        assert_eq!(wait(backoff, &later(0)), backoff);
        assert_eq!(wait(backoff, &later(300)), MAX_RETRY_AFTER_WAIT);
        let plain = StoreError::Backend {
            path: "s3://b/k".into(),
            detail: "HTTP 500".into(),
            retryable: true,
        };
        assert_eq!(wait(backoff, &plain), backoff);
    }
}
