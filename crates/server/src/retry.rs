//! The service retries with Strata's one retry loop, which lives with the engine
//! ([`strata_mover::retry`]): [`Backoff::default`] for the service's store and catalog calls.

pub use strata_mover::retry::{with_backoff, Advice, Backoff, RetryAdvice};
