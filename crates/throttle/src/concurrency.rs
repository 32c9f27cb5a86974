//! How many requests to keep in flight: an FTS3-style hill climber.
//!
//! This module owns the request-slot count of a lane. Many parallel requests are how an
//! object store reaches full speed on a long path (each request is limited by its own TCP
//! window and per-request latency), but each extra request costs the store and, past the
//! knee, buys nothing. CERN FTS3's optimizer tunes the number of active transfers per link
//! by watching throughput and success rate each interval: it adds transfers while
//! throughput keeps rising and success stays high, and removes them when throughput stops
//! improving or errors appear. This tuner does the same per lane:
//!
//! - it works in epochs of at least one second, three mean request durations and 16
//!   completed requests, so each verdict sees enough completions;
//! - it only probes upward when the slots were the binding constraint for at least 30 % of
//!   the epoch (work was waiting with tokens available): when the rate limit or the
//!   congestion controller is what binds, more slots cannot help;
//! - a probe adds `max(1, n/2)` slots until the first failed probe or back-off, then
//!   `max(1, n/4)`; if the next epoch's throughput did not rise by at
//!   least half of the proportional gain, the probe is undone and probing pauses for three
//!   epochs (the plateau: FTS3's "no improvement, step back");
//! - explicit pushback (429/503) halves the slots at once, a loss-triggered back-off takes a
//!   quarter off; both restart the comparison.

use std::time::Duration;

/// Parameters of the tuner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConcurrencyConfig {
    /// Slots at start.
    pub initial: usize,
    /// Never fewer slots than this (at least 1).
    pub min: usize,
    /// Never more slots than this.
    pub max: usize,
}

impl Default for ConcurrencyConfig {
    fn default() -> ConcurrencyConfig {
        ConcurrencyConfig {
            initial: 4,
            min: 1,
            max: 64,
        }
    }
}

/// The last decision, kept so that a probe can be judged and undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    None,
    Up { from: usize },
}

/// The hill climber's state.
#[derive(Debug, Clone)]
pub struct ConcurrencyTuner {
    cfg: ConcurrencyConfig,
    n: usize,
    epoch_start: Duration,
    epoch_bytes: u64,
    epoch_count: u32,
    epoch_slot_bound_start: Duration,
    epoch_congested: bool,
    prev_throughput: Option<f64>,
    last: Move,
    hold: u32,
    /// Until the first failed probe or back-off, probes add half the slots.
    climbing: bool,
}

/// Smallest epoch.
const MIN_EPOCH: Duration = Duration::from_secs(1);
/// Completions an epoch needs before a verdict (unless it ran 10 times the minimum).
const MIN_COMPLETIONS: u32 = 16;

impl ConcurrencyTuner {
    /// A tuner starting at `cfg.initial` slots at time `now`.
    pub fn new(cfg: ConcurrencyConfig, now: Duration) -> ConcurrencyTuner {
        let min = cfg.min.max(1);
        let max = cfg.max.max(min);
        let cfg = ConcurrencyConfig {
            initial: cfg.initial.clamp(min, max),
            min,
            max,
        };
        ConcurrencyTuner {
            cfg,
            n: cfg.initial,
            epoch_start: now,
            epoch_bytes: 0,
            epoch_count: 0,
            epoch_slot_bound_start: Duration::ZERO,
            epoch_congested: false,
            prev_throughput: None,
            last: Move::None,
            hold: 0,
            climbing: true,
        }
    }

    /// The current number of slots.
    pub fn target(&self) -> usize {
        self.n
    }

    /// Counts a successful request of `bytes`.
    pub fn on_success(&mut self, bytes: u64) {
        self.epoch_bytes = self.epoch_bytes.saturating_add(bytes);
        self.epoch_count = self.epoch_count.saturating_add(1);
    }

    /// The rate controller backed off on delay: no probing verdict this epoch.
    pub fn on_congestion(&mut self) {
        self.epoch_congested = true;
    }

    /// Scales the slots by `factor` (0..1) after pushback or loss, and restarts judging.
    pub fn back_off(&mut self, factor: f64) {
        let scaled = (self.n as f64 * factor.clamp(0.0, 1.0)).floor() as usize;
        self.n = scaled.clamp(self.cfg.min, self.cfg.max);
        self.last = Move::None;
        self.prev_throughput = None;
        self.hold = 2;
        self.climbing = false;
        self.epoch_congested = true;
    }

    /// Ends the epoch when it is long enough and takes the hill-climbing step.
    /// `slot_bound` is the scheduler's cumulative time blocked on slots; `mean_duration`
    /// the mean request duration in seconds.
    pub fn tick(&mut self, now: Duration, slot_bound: Duration, mean_duration: f64) {
        let elapsed = now.saturating_sub(self.epoch_start);
        let long_enough = MIN_EPOCH.as_secs_f64().max(3.0 * mean_duration);
        if elapsed.as_secs_f64() < long_enough
            || (self.epoch_count < MIN_COMPLETIONS && elapsed < MIN_EPOCH * 10)
        {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let throughput = self.epoch_bytes as f64 / secs;
        let slot_frac = slot_bound
            .saturating_sub(self.epoch_slot_bound_start)
            .as_secs_f64()
            / secs;
        self.decide(throughput, slot_frac);
        self.epoch_start = now;
        self.epoch_bytes = 0;
        self.epoch_count = 0;
        self.epoch_slot_bound_start = slot_bound;
        self.epoch_congested = false;
    }

    fn decide(&mut self, throughput: f64, slot_frac: f64) {
        let prev = self.prev_throughput.replace(throughput);
        if self.epoch_congested {
            self.last = Move::None;
            return;
        }
        if let (Move::Up { from }, Some(prev)) = (self.last, prev) {
            let expected = (self.n as f64 / from.max(1) as f64) - 1.0;
            if throughput < prev * (1.0 + 0.5 * expected) {
                // The probe bought less than half of what it should have: undo, plateau.
                self.n = from.clamp(self.cfg.min, self.cfg.max);
                self.last = Move::None;
                self.hold = 3;
                self.climbing = false;
                return;
            }
        }
        self.last = Move::None;
        if self.hold > 0 {
            self.hold -= 1;
            return;
        }
        if slot_frac >= 0.3 && self.n < self.cfg.max {
            let from = self.n;
            let step = if self.climbing {
                self.n / 2
            } else {
                self.n / 4
            };
            self.n = (self.n + step.max(1)).min(self.cfg.max);
            self.last = Move::Up { from };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link where each slot carries 1 MB/s up to `knee` slots.
    fn simulate(knee: usize, epochs: u32) -> usize {
        let mut t = ConcurrencyTuner::new(ConcurrencyConfig::default(), Duration::ZERO);
        let mut now = Duration::ZERO;
        let mut slot_bound = Duration::ZERO;
        for _ in 0..epochs {
            let n = t.target();
            let thr = n.min(knee) as u64 * 1_000_000;
            for _ in 0..20 {
                t.on_success(thr / 20);
            }
            now += Duration::from_secs(1);
            slot_bound += Duration::from_secs(1);
            t.tick(now, slot_bound, 0.1);
        }
        t.target()
    }

    #[test]
    fn climbs_to_the_knee_and_stays_near_it() {
        let n = simulate(12, 60);
        assert!((12..=16).contains(&n), "{n}");
        let n = simulate(2, 60);
        assert!(n <= 4, "{n}");
    }

    #[test]
    fn backs_off_and_respects_bounds() {
        let cfg = ConcurrencyConfig {
            initial: 100,
            min: 0,
            max: 8,
        };
        let mut t = ConcurrencyTuner::new(cfg, Duration::ZERO);
        assert_eq!(t.target(), 8);
        t.back_off(0.5);
        assert_eq!(t.target(), 4);
        t.back_off(f64::NAN);
        assert_eq!(t.target(), 1);
        t.tick(Duration::MAX, Duration::MAX, f64::INFINITY);
    }
}
