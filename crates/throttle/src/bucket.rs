//! The token bucket that enforces a rate cap, with a bounded burst.
//!
//! This module owns "how long must this transfer wait so that the cap holds". It is a
//! debt-style bucket (like Go's `x/time/rate` reservations): tokens refill at the rate up
//! to the burst size; a reservation takes its bytes at once, possibly driving the balance
//! negative, and the caller waits until the debt is repaid. Requests larger than the burst
//! therefore still pass (they simply wait longer), and over any window of `W` seconds at
//! most `burst + rate * W` bytes are released, which is what makes the cap hold over short
//! windows: the default burst is a quarter of a second of traffic, so a 10-second window
//! can exceed the cap by at most 2.5 %.
//!
//! Time comes from an injected [`Clock`], so the same code runs on the simulated clock in
//! tests. A live limit change ([`TokenBucket::set_rate`]) takes effect at once for every
//! later reservation; waits already handed out are not shortened or lengthened.

use std::time::Duration;

use crate::clock::{secs, Clock};
use crate::rate::Rate;

/// The default burst: this much time's worth of the rate.
pub const DEFAULT_BURST_TIME: Duration = Duration::from_millis(250);

/// A token bucket releasing at most `rate` bytes per second after a burst of `burst` bytes.
#[derive(Debug, Clone)]
pub struct TokenBucket<C: Clock> {
    clock: C,
    rate: Rate,
    /// Fixed burst in bytes, or `None` for [`DEFAULT_BURST_TIME`] worth of the rate.
    fixed_burst: Option<u64>,
    /// Balance in bytes; negative while reservations are being repaid.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Duration,
}

impl<C: Clock> TokenBucket<C> {
    /// A full bucket at `rate` with the default burst.
    pub fn new(clock: C, rate: Rate) -> TokenBucket<C> {
        let updated = clock.now();
        let mut b = TokenBucket {
            clock,
            rate,
            fixed_burst: None,
            tokens: 0.0,
            updated,
        };
        b.tokens = b.burst();
        b
    }

    /// Uses a fixed burst of `bytes` (at least 1) instead of the default; the bucket stays
    /// full (it starts with the whole burst).
    pub fn with_burst(mut self, bytes: u64) -> TokenBucket<C> {
        self.fixed_burst = Some(bytes.max(1));
        self.tokens = self.burst();
        self
    }

    /// The current rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// The burst size in bytes (0 when unlimited).
    pub fn burst(&self) -> f64 {
        match self.rate.as_bytes_per_sec() {
            None => 0.0,
            Some(r) => match self.fixed_burst {
                Some(b) => b as f64,
                None => (r as f64 * DEFAULT_BURST_TIME.as_secs_f64()).max(1.0),
            },
        }
    }

    /// Reserves `bytes` now and returns how long to wait before sending them.
    pub fn reserve(&mut self, bytes: u64) -> Duration {
        self.refill();
        let Some(rate) = self.rate.as_bytes_per_sec() else {
            return Duration::ZERO;
        };
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            secs(-self.tokens / rate as f64)
        }
    }

    /// How long until the balance is no longer negative (zero when it is not now).
    pub fn ready_in(&mut self) -> Duration {
        self.refill();
        match self.rate.as_bytes_per_sec() {
            Some(rate) if self.tokens < 0.0 => secs(-self.tokens / rate as f64),
            _ => Duration::ZERO,
        }
    }

    /// Takes `bytes` without computing a wait (for a caller that checked [`Self::ready_in`]).
    pub fn take(&mut self, bytes: u64) {
        self.refill();
        if !self.rate.is_unlimited() {
            self.tokens -= bytes as f64;
        }
    }

    /// Gives back `bytes` taken for a transfer that did not happen (capped at the burst).
    pub fn refund(&mut self, bytes: u64) {
        self.refill();
        if !self.rate.is_unlimited() {
            self.tokens = (self.tokens + bytes as f64).min(self.burst());
        }
    }

    /// Changes the rate from now on. Tokens earned so far count at the old rate; the
    /// balance is capped at the new burst, and an unlimited bucket that becomes limited
    /// starts full.
    pub fn set_rate(&mut self, rate: Rate) {
        self.refill();
        let was_unlimited = self.rate.is_unlimited();
        self.rate = rate;
        let burst = self.burst();
        self.tokens = if was_unlimited {
            burst
        } else {
            self.tokens.min(burst)
        };
    }

    /// Brings the balance up to the current time.
    fn refill(&mut self) {
        let now = self.clock.now();
        let elapsed = now.saturating_sub(self.updated);
        self.updated = now.max(self.updated);
        if let Some(rate) = self.rate.as_bytes_per_sec() {
            let earned = elapsed.as_secs_f64() * rate as f64;
            self.tokens = (self.tokens + earned).min(self.burst());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn burst_then_rate() {
        let c = SimClock::new();
        let mut b = TokenBucket::new(c.clone(), Rate::bytes_per_sec(1000));
        assert_eq!(b.burst(), 250.0);
        assert_eq!(b.reserve(250), Duration::ZERO);
        assert_eq!(b.reserve(100), ms(100));
        c.advance(ms(100));
        assert_eq!(b.reserve(1000), ms(1000));
        assert_eq!(b.ready_in(), ms(1000));
    }

    #[test]
    fn cap_holds_over_long_runs() {
        let c = SimClock::new();
        let mut b = TokenBucket::new(c.clone(), Rate::bytes_per_sec(1 << 20));
        let mut sent = 0u64;
        // A greedy sender reserving 64 KiB as soon as allowed, for 10 simulated seconds.
        while c.now() < Duration::from_secs(10) {
            let wait = b.reserve(64 << 10);
            c.advance(wait);
            if c.now() <= Duration::from_secs(10) {
                sent += 64 << 10;
            }
        }
        let cap = 10.0 * (1u64 << 20) as f64;
        assert!(sent as f64 <= cap + b.burst() + 1.0, "{sent}");
        assert!(sent as f64 >= cap * 0.97, "{sent}");
    }

    #[test]
    fn live_rate_change_and_unlimited() {
        let c = SimClock::new();
        let mut b = TokenBucket::new(c.clone(), Rate::Unlimited);
        assert_eq!(b.reserve(u64::MAX), Duration::ZERO);
        b.set_rate(Rate::bytes_per_sec(100));
        assert_eq!(b.reserve(25), Duration::ZERO);
        assert_eq!(b.reserve(100), ms(1000));
        b.set_rate(Rate::bytes_per_sec(200));
        assert_eq!(b.ready_in(), ms(500));
        b.refund(100);
        assert_eq!(b.ready_in(), Duration::ZERO);
        b.set_rate(Rate::Unlimited);
        assert_eq!(b.reserve(1 << 40), Duration::ZERO);
    }

    #[test]
    fn fixed_burst_and_huge_requests_do_not_panic() {
        let c = SimClock::new();
        let mut b = TokenBucket::new(c.clone(), Rate::bytes_per_sec(1)).with_burst(0);
        assert_eq!(b.burst(), 1.0);
        let w = b.reserve(u64::MAX);
        assert!(w > Duration::from_secs(1 << 40));
        c.advance(Duration::MAX);
        let _ = b.reserve(u64::MAX);
    }
}
