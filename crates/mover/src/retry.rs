//! Strata's one retry loop, for the migration engine and the service alike: exponential
//! backoff with jitter, only for errors that say a retry can help, and a server's
//! `Retry-After` honoured when the error carries one. Callers choose the [`Backoff`]: the
//! service's default ([`Backoff::default`]) or the migration engine's
//! ([`Backoff::MIGRATION`], used by [`retry_store`]).
//!
//! Errors describe themselves through [`RetryAdvice`]. [`StoreError`] answers from
//! [`StoreError::is_retryable`] (timeouts, 429, 5xx, unreachable) and
//! [`StoreError::retry_after`]: when an S3 store answered 429 or 5xx with a `Retry-After`
//! (seconds or an HTTP-date), the advice is [`Advice::RetryAfter`] and the loop waits at
//! least that long (up to [`Backoff::max`]) before the next attempt. OpenDAL's own short
//! retries inside the store already honour a `Retry-After` of up to one second; a longer
//! one reaches this loop on the first answer, so it is waited for here and not ignored.

use std::future::Future;
use std::time::Duration;

use strata_catalog::CatalogError;
use strata_store::StoreError;

/// What an error says about trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// Do not retry: the same call will fail the same way.
    Stop,
    /// Retry after the backoff delay.
    Retry,
    /// Retry, waiting at least this long (the server's `Retry-After`).
    RetryAfter(Duration),
}

/// Errors that know whether a retry can help.
pub trait RetryAdvice {
    /// The advice for this error.
    fn advice(&self) -> Advice;
}

impl RetryAdvice for StoreError {
    fn advice(&self) -> Advice {
        match self.retry_after() {
            _ if !self.is_retryable() => Advice::Stop,
            Some(after) => Advice::RetryAfter(after),
            None => Advice::Retry,
        }
    }
}

impl RetryAdvice for CatalogError {
    fn advice(&self) -> Advice {
        if self.is_transient() {
            Advice::Retry
        } else {
            Advice::Stop
        }
    }
}

/// How a call is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the second attempt; it doubles after each retry.
    pub base: Duration,
    /// Longest delay between two attempts (a `Retry-After` is capped by it too).
    pub max: Duration,
}

impl Default for Backoff {
    /// Five attempts, 100 ms doubling to at most 10 s.
    fn default() -> Self {
        Backoff {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The migration engine's: four attempts, 100 ms doubling; a `Retry-After` is waited
    /// for up to a minute (a chunk task that waits holds one of the run's `--jobs` slots,
    /// so a server asking for minutes is retried after one).
    pub const MIGRATION: Backoff = Backoff {
        attempts: 4,
        base: Duration::from_millis(100),
        max: Duration::from_secs(60),
    };

    /// The wait before retry number `retry` (1 for the first retry): a uniformly random
    /// point in the upper half of the doubled delay, so that many clients that failed
    /// together do not retry together; at least the server's `Retry-After`.
    pub fn delay(&self, retry: u32, advice: Advice) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max);
        let half = doubled / 2;
        let jitter = half.mul_f64(rand::random::<f64>());
        let delay = half + jitter;
        match advice {
            Advice::RetryAfter(after) => delay.max(after.min(self.max)),
            _ => delay,
        }
    }
}

/// Runs `call` until it succeeds, fails with an error that says stop, or the attempts are
/// spent. `on_retry` is told of each retry (for metrics and logs).
pub async fn with_backoff<T, E, F, Fut>(
    backoff: Backoff,
    mut on_retry: impl FnMut(&E, u32),
    mut call: F,
) -> Result<T, E>
where
    E: RetryAdvice,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                let advice = error.advice();
                if advice == Advice::Stop || attempt >= backoff.attempts {
                    return Err(error);
                }
                on_retry(&error, attempt);
                tokio::time::sleep(backoff.delay(attempt, advice)).await;
                attempt += 1;
            }
        }
    }
}

/// A store call with the migration engine's backoff ([`Backoff::MIGRATION`]), each retry
/// logged at debug level.
pub async fn retry_store<T, F, Fut>(call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    with_backoff(
        Backoff::MIGRATION,
        |error: &StoreError, attempt| tracing::debug!(%error, attempt, "retrying store call"),
        call,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    use super::*;

    #[derive(Debug)]
    struct Fake(Advice);

    impl RetryAdvice for Fake {
        fn advice(&self) -> Advice {
            self.0
        }
    }

    fn quick() -> Backoff {
        Backoff {
            attempts: 4,
            base: Duration::from_millis(10),
            max: Duration::from_millis(500),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let mut retries = 0;
        let result: Result<u32, Fake> = with_backoff(
            quick(),
            |_, _| retries += 1,
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 2 {
                    Err(Fake(Advice::Retry))
                } else {
                    Ok(n)
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), 2);
        assert_eq!(retries, 2);
    }

    /// Calls made by `with_backoff` of an operation that always fails with `advice`;
    /// whether it ended in an error.
    async fn calls_always_failing(advice: Advice) -> (u32, bool) {
        let calls = AtomicU32::new(0);
        let result: Result<(), Fake> = with_backoff(
            quick(),
            |_, _| {},
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Fake(advice))
            },
        )
        .await;
        (calls.load(Ordering::SeqCst), result.is_err())
    }

    #[tokio::test]
    async fn permanent_errors_and_spent_attempts_stop() {
        assert_eq!(calls_always_failing(Advice::Stop).await, (1, true));
        assert_eq!(calls_always_failing(Advice::Retry).await, (4, true));
    }

    #[tokio::test]
    async fn retry_after_is_honoured() {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let _: Result<(), Fake> = with_backoff(
            Backoff {
                attempts: 2,
                ..quick()
            },
            |_, _| {},
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Fake(Advice::RetryAfter(Duration::from_millis(300))))
            },
        )
        .await;
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn store_errors_advise_from_their_retry_after() {
        let later = StoreError::RetryLater {
            path: "s3://b/objects/k".into(),
            detail: "SlowDown: Please reduce your request rate (HTTP 503)".into(),
            after: Duration::from_secs(2),
        };
        assert_eq!(later.advice(), Advice::RetryAfter(Duration::from_secs(2)));
        let busy = StoreError::Backend {
            path: "s3://b/objects/k".into(),
            detail: "HTTP 500 Internal Server Error".into(),
            retryable: true,
        };
        assert_eq!(busy.advice(), Advice::Retry);
        let refused = StoreError::Auth {
            uri: "s3://b".into(),
            detail: "AccessDenied".into(),
        };
        assert_eq!(refused.advice(), Advice::Stop);
    }

    #[test]
    fn delays_grow_with_jitter_and_stay_capped() {
        let b = quick();
        for retry in 1..8 {
            let full = (b.base * (1 << (retry - 1))).min(b.max);
            for _ in 0..50 {
                let d = b.delay(retry, Advice::Retry);
                assert!(d >= full / 2 && d <= full, "{retry}: {d:?}");
            }
        }
        assert_eq!(
            b.delay(1, Advice::RetryAfter(Duration::from_secs(60))),
            b.max
        );
    }

    #[test]
    fn the_migration_backoff_waits_for_a_retry_after_up_to_a_minute() {
        let m = Backoff::MIGRATION;
        let after = |secs| Advice::RetryAfter(Duration::from_secs(secs));
        assert_eq!(m.delay(1, after(2)), Duration::from_secs(2));
        assert_eq!(m.delay(1, after(300)), Duration::from_secs(60));
        assert!(m.delay(1, Advice::Retry) <= Duration::from_millis(100));
    }
}
