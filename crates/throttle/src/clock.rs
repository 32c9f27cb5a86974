//! Time as the throttle sees it: an injected, monotonic clock.
//!
//! Every time-dependent part of this crate (buckets, the scheduler, the congestion
//! controller, the simulator) reads time through [`Clock`], never from the system directly,
//! so that tests and `strata bench` run on a [`SimClock`] and are exactly reproducible.
//! Production code uses [`MonotonicClock`] (or the tokio clock in the async adapter, so
//! that tokio's paused test time works too).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A monotonic clock: time elapsed since an arbitrary, fixed origin.
pub trait Clock: Send + Sync {
    /// The time since this clock's origin; never decreases.
    fn now(&self) -> Duration;
}

/// The system's monotonic clock, counted from when this value was created.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> MonotonicClock {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> MonotonicClock {
        MonotonicClock::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A simulated clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct SimClock {
    nanos: Arc<AtomicU64>,
}

impl SimClock {
    /// A clock at time zero.
    pub fn new() -> SimClock {
        SimClock::default()
    }

    /// Moves time forward by `by` (saturating at about 584 years).
    pub fn advance(&self, by: Duration) {
        let add = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(add))
            });
    }

    /// Moves time forward to `to`; earlier times are ignored (the clock is monotonic).
    pub fn advance_to(&self, to: Duration) {
        let to = u64::try_from(to.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_max(to, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

/// Converts seconds to a `Duration`, mapping NaN and negatives to zero and huge values to
/// a very long (but finite) wait instead of panicking.
pub(crate) fn secs(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(u64::MAX / 4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_clock_is_shared_and_monotonic() {
        let c = SimClock::new();
        let d = c.clone();
        c.advance(Duration::from_millis(5));
        assert_eq!(d.now(), Duration::from_millis(5));
        d.advance_to(Duration::from_millis(2));
        assert_eq!(c.now(), Duration::from_millis(5));
        c.advance(Duration::MAX);
        assert_eq!(c.now(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn secs_never_panics() {
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(-1.0), Duration::ZERO);
        assert!(secs(f64::INFINITY) > Duration::from_secs(1 << 40));
        assert_eq!(secs(1.5), Duration::from_millis(1500));
    }
}
