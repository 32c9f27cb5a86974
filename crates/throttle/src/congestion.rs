//! The congestion controller: how fast one lane may go so that it yields.
//!
//! This module owns the *target rate* and, through [`ConcurrencyTuner`] capped by Little's
//! law, the *target number of requests in flight* of one lane (one direction to one store).
//! Its inputs are one [`Sample`] per finished request and the scheduler's [`Pressure`]; its
//! outputs feed the lane's token bucket and request slots. The scheme (LEDBAT++ delay
//! control adapted to request samples and a paced rate, error control with a loss
//! threshold and Retry-After, rate validation, a sampling floor) and its parameters are
//! described in the crate documentation, which is the reference; the code below follows
//! it step by step:
//!
//! - [`Controller::on_sample`] updates the estimators (delay filter, base-delay history,
//!   delivery rate, error EWMA) and applies error control;
//! - `control` applies slow start or the delay law after each successful sample;
//! - [`Controller::tick`] handles time: Retry-After expiry, the periodic slowdown, the slot
//!   tuner's epochs.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::secs;
use crate::concurrency::{ConcurrencyConfig, ConcurrencyTuner};
use crate::rate::Rate;
use crate::share::Pressure;

/// How a request ended, as the store layer classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Ok,
    /// The store pushed back: HTTP 429, 503, S3 `SlowDown`; with its Retry-After if any.
    Throttled {
        /// How long the store asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The request timed out.
    Timeout,
    /// The connection was reset or broken.
    Reset,
    /// Any other failure (not a congestion signal on its own).
    OtherError,
}

/// One finished request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Body bytes moved.
    pub bytes: u64,
    /// When the request was admitted (clock time).
    pub start: Duration,
    /// When it finished (clock time).
    pub finish: Duration,
    /// The request's latency without its body transfer, when the layer can measure it
    /// (time to first byte of a GET; time from the last byte of a PUT to its response).
    /// `None` uses the whole duration, which is right for requests of similar size.
    pub latency: Option<Duration>,
    /// How it ended.
    pub outcome: Outcome,
}

impl Sample {
    /// The delay this sample reports.
    pub fn delay(&self) -> Duration {
        self.latency
            .unwrap_or_else(|| self.finish.saturating_sub(self.start))
    }
}

/// Parameters of the controller. The defaults are documented in the crate doc.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerConfig {
    /// Queueing delay the controller aims for (LEDBAT++: 60 ms).
    pub target_delay: Duration,
    /// Rate at start, before slow start (bytes/s).
    pub initial_rate: u64,
    /// The rate never goes below this (bytes/s).
    pub min_rate: u64,
    /// Additive increase per second at zero delay, as a fraction of the reference rate
    /// (the recent peak delivery rate, decaying over a minute).
    pub increase_fraction: f64,
    /// Additive increase per second at least this many bytes/s.
    pub min_increase: u64,
    /// Largest cut for one delay decrease (0.5 = halve).
    pub max_decrease: f64,
    /// Rate and slot factor on explicit pushback (429/503).
    pub pushback_factor: f64,
    /// Rate factor when errors exceed the loss threshold.
    pub loss_factor: f64,
    /// Error fraction (EWMA over ~128 requests) above which errors mean congestion
    /// (default 10 %: 2 % random loss stays far below it even on short windows).
    pub loss_threshold: f64,
    /// This many failures in a row mean congestion regardless of the fraction.
    pub consecutive_failures: u32,
    /// Longest Retry-After honoured (longer values are clamped).
    pub max_retry_after: Duration,
    /// Time between LEDBAT++ slowdowns; zero disables them.
    pub slowdown_interval: Duration,
    /// Length of one base-delay history bucket (LEDBAT: one minute; ten are kept).
    pub base_bucket: Duration,
    /// Request-slot tuning.
    pub concurrency: ConcurrencyConfig,
}

impl Default for ControllerConfig {
    fn default() -> ControllerConfig {
        ControllerConfig {
            target_delay: Duration::from_millis(60),
            initial_rate: 4 << 20,
            min_rate: 64 << 10,
            increase_fraction: 0.2,
            min_increase: 256 << 10,
            max_decrease: 0.5,
            pushback_factor: 0.5,
            loss_factor: 0.7,
            loss_threshold: 0.10,
            consecutive_failures: 4,
            max_retry_after: Duration::from_secs(300),
            slowdown_interval: Duration::from_secs(30),
            base_bucket: Duration::from_secs(60),
            concurrency: ConcurrencyConfig::default(),
        }
    }
}

/// Where the controller is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Doubling each round trip until the delay first nears the target.
    SlowStart,
    /// Delay and error control.
    Steady,
    /// A LEDBAT++ slowdown to re-measure the base delay.
    Slowdown,
    /// Waiting out a Retry-After.
    Paused,
}

/// What the controller is doing, for metrics and `strata status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Delivered rate over the last second (bytes/s).
    pub current_rate: f64,
    /// The rate the controller allows (bytes/s, before the operator's cap).
    pub target_rate: f64,
    /// The operator's cap.
    pub cap: Rate,
    /// Minimum delay seen (the path without queues), if any sample came in.
    pub base_delay: Option<Duration>,
    /// Current queueing delay estimate.
    pub queuing_delay: Duration,
    /// The target queueing delay.
    pub target_delay: Duration,
    /// Multiplicative decreases so far (delay, loss and pushback).
    pub backoff_events: u64,
    /// Of which caused by store pushback (429/503).
    pub pushback_events: u64,
    /// Requests allowed in flight.
    pub in_flight_target: usize,
    /// Error fraction (EWMA).
    pub loss_rate: f64,
    /// The phase.
    pub phase: Phase,
    /// Admissions are paused until this clock time (Retry-After).
    pub paused_until: Duration,
}

/// The LEDBAT++-style controller of one lane.
#[derive(Debug, Clone)]
pub struct Controller {
    cfg: ControllerConfig,
    cap: Rate,
    rate: f64,
    phase: Phase,
    base: VecDeque<(u64, Duration)>,
    recent: VecDeque<(Duration, Duration)>,
    mean_bytes: Option<f64>,
    srtt: Option<f64>,
    mean_duration: Option<f64>,
    last_decrease: Option<Duration>,
    backoffs: u64,
    pushbacks: u64,
    loss_ewma: f64,
    failures_in_row: u32,
    samples_since_loss_cut: u64,
    paused_until: Duration,
    delivered: VecDeque<(Duration, u64)>,
    delivered_sum: u64,
    rate_ref: f64,
    rate_ref_at: Duration,
    /// Best recent throughput of a single request (its bytes over its whole duration).
    request_rate_ref: f64,
    request_rate_ref_at: Duration,
    pressure: Pressure,
    token_limited_at: Option<Duration>,
    next_slowdown: Duration,
    slowdown_end: Duration,
    saved_rate: f64,
    tuner: ConcurrencyTuner,
}

/// Samples in the current-delay filter (LEDBAT's CURRENT_FILTER).
const CURRENT_FILTER: usize = 4;
/// One-minute buckets of base-delay history (LEDBAT's BASE_HISTORY).
const BASE_HISTORY: usize = 10;
/// EWMA weight of one sample in the error fraction.
const LOSS_ALPHA: f64 = 1.0 / 128.0;
/// Samples between two loss-triggered cuts.
const LOSS_WINDOW: u64 = 128;
/// Highest rate the controller ever targets without a cap (1 PiB/s).
const MAX_RATE: f64 = (1u64 << 50) as f64;
/// The most seconds of additive increase one sample may grant (see `control`).
const MAX_INCREASE_SLICE: f64 = 4.0;
/// Round trip assumed before the first sample.
const DEFAULT_RTT: f64 = 0.1;

impl Controller {
    /// A controller starting at `now`, never exceeding `cap`.
    pub fn new(cfg: ControllerConfig, cap: Rate, now: Duration) -> Controller {
        let min = cfg.min_rate.max(1) as f64;
        let rate = clamp_rate(cfg.initial_rate as f64, min, cap);
        Controller {
            cfg,
            cap,
            rate,
            phase: Phase::SlowStart,
            base: VecDeque::new(),
            recent: VecDeque::new(),
            mean_bytes: None,
            srtt: None,
            mean_duration: None,
            last_decrease: None,
            backoffs: 0,
            pushbacks: 0,
            loss_ewma: 0.0,
            failures_in_row: 0,
            samples_since_loss_cut: u64::MAX,
            paused_until: Duration::ZERO,
            delivered: VecDeque::new(),
            delivered_sum: 0,
            rate_ref: rate,
            rate_ref_at: now,
            request_rate_ref: 0.0,
            request_rate_ref_at: now,
            pressure: Pressure::default(),
            token_limited_at: None,
            next_slowdown: now.saturating_add(cfg.slowdown_interval),
            slowdown_end: Duration::ZERO,
            saved_rate: rate,
            tuner: ConcurrencyTuner::new(cfg.concurrency, now),
        }
    }

    /// The rate the lane may use now: the controller's target, capped.
    pub fn target_rate(&self) -> Rate {
        let r = if self.phase == Phase::Slowdown {
            self.rate / 4.0
        } else {
            self.rate
        };
        let r = r.max(self.min_rate());
        Rate::bytes_per_sec(r as u64).min(self.cap)
    }

    /// Requests the lane may have in flight.
    pub fn target_in_flight(&self) -> usize {
        self.tuner
            .target()
            .min(self.little_cap())
            .max(self.cfg.concurrency.min.max(1))
    }

    /// Little's law: the requests in flight the target rate needs, doubled, plus one. A
    /// request spends the base delay plus its body's time at the best recent per-request
    /// throughput in the system (the body term matters when one request cannot carry the
    /// rate: a store that serves each request at a bounded speed). More slots than this only
    /// queue; this bound makes the slots follow the rate down under congestion and back up
    /// when it clears.
    fn little_cap(&self) -> usize {
        match (self.mean_bytes, self.base_delay()) {
            (Some(b), Some(base)) if b >= 1.0 => {
                let rate = self.target_rate().as_bytes_per_sec().unwrap_or(u64::MAX) as f64;
                let per_request = self.request_rate_ref;
                let body = if per_request > 0.0 {
                    b / per_request
                } else {
                    0.0
                };
                let n = 2.0 * rate * (base.as_secs_f64() + body) / b + 1.0;
                if n.is_finite() && n < usize::MAX as f64 {
                    n.ceil() as usize
                } else {
                    usize::MAX
                }
            }
            _ => usize::MAX,
        }
    }

    /// Admissions must wait until this clock time (Retry-After); zero when not paused.
    pub fn paused_until(&self) -> Duration {
        self.paused_until
    }

    /// Applies a new operator cap (a live `--bwlimit` change) at once.
    pub fn set_cap(&mut self, cap: Rate) {
        self.cap = cap;
        let min = self.min_rate();
        self.rate = clamp_rate(self.rate, min, cap);
        self.saved_rate = clamp_rate(self.saved_rate, min, cap);
    }

    /// Takes the scheduler's cumulative waiting times (see [`Pressure`]).
    pub fn on_pressure(&mut self, now: Duration, pressure: Pressure, waiting_for_tokens: bool) {
        if waiting_for_tokens || pressure.token_bound > self.pressure.token_bound {
            self.token_limited_at = Some(now);
        }
        self.pressure = pressure;
        self.tick(now);
    }

    /// Periodic work: slowdown timing, pause expiry and the concurrency epoch.
    pub fn tick(&mut self, now: Duration) {
        if self.phase == Phase::Paused && now >= self.paused_until {
            self.phase = Phase::Steady;
        }
        if self.phase == Phase::Slowdown && now >= self.slowdown_end {
            self.phase = Phase::Steady;
            self.rate = self.rate.max(self.saved_rate);
            self.last_decrease = Some(now);
        }
        if self.phase == Phase::Steady
            && !self.cfg.slowdown_interval.is_zero()
            && now >= self.next_slowdown
        {
            self.next_slowdown = now.saturating_add(self.cfg.slowdown_interval);
            // Worth it only when a queue might hide the base delay.
            if self.queuing_delay() > self.cfg.target_delay / 4 && self.rate / 4.0 > self.min_rate()
            {
                self.phase = Phase::Slowdown;
                self.saved_rate = self.rate;
                self.slowdown_end =
                    now.saturating_add(secs(2.0 * self.rtt()).max(Duration::from_millis(100)));
            }
        }
        let mean = self.mean_duration.unwrap_or(DEFAULT_RTT);
        self.tuner.tick(now, self.pressure.slot_bound, mean);
    }

    /// Takes one finished request.
    pub fn on_sample(&mut self, s: &Sample) {
        let now = s.finish;
        let duration = s.finish.saturating_sub(s.start).as_secs_f64();
        self.mean_duration = Some(ewma(self.mean_duration, duration, 0.125));
        self.mean_bytes = Some(ewma(self.mean_bytes, s.bytes as f64, 0.125));
        self.samples_since_loss_cut = self.samples_since_loss_cut.saturating_add(1);
        // One decrease per round trip: the request must have started a round trip after the
        // last decrease, so that it saw the queue that decrease left behind.
        let gap = secs(0.5 * self.rtt());
        let fresh = self
            .last_decrease
            .is_none_or(|d| s.start >= d.saturating_add(gap));
        match s.outcome {
            Outcome::Ok => {
                self.failures_in_row = 0;
                self.loss_ewma *= 1.0 - LOSS_ALPHA;
                self.record_delay(now, s.delay());
                self.record_delivery(now, s.bytes);
                self.record_request_rate(now, s.bytes, duration);
                self.tuner.on_success(s.bytes);
                self.control(now, s.bytes, fresh);
            }
            Outcome::Throttled { retry_after } => {
                self.pushbacks += 1;
                if let Some(wait) = retry_after {
                    let until = now.saturating_add(wait.min(self.cfg.max_retry_after));
                    self.paused_until = self.paused_until.max(until);
                    if self.paused_until > now {
                        self.phase = Phase::Paused;
                    }
                }
                if fresh {
                    self.decrease(now, self.cfg.pushback_factor);
                    self.tuner.back_off(self.cfg.pushback_factor);
                }
            }
            Outcome::Timeout | Outcome::Reset | Outcome::OtherError => {
                self.failures_in_row = self.failures_in_row.saturating_add(1);
                self.loss_ewma = self.loss_ewma * (1.0 - LOSS_ALPHA) + LOSS_ALPHA;
                let persistent = self.loss_ewma > self.cfg.loss_threshold
                    || self.failures_in_row >= self.cfg.consecutive_failures.max(1);
                // At most one loss cut per loss window (~128 requests), as BBRv2 reacts at
                // most once per round: the error fraction needs that long to mean anything.
                let window_done = self.samples_since_loss_cut >= LOSS_WINDOW;
                if persistent && fresh && window_done {
                    self.samples_since_loss_cut = 0;
                    self.decrease(now, self.cfg.loss_factor);
                    self.tuner.back_off(0.75);
                }
            }
        }
        self.tick(now);
    }

    /// The delay and rate control step after a successful sample.
    fn control(&mut self, now: Duration, bytes: u64, fresh: bool) {
        // The time this sample's bytes stand for at the current rate: the increase is
        // clocked by bytes delivered, as LEDBAT's window grows by bytes acknowledged. A
        // wall-clock slice per sample would starve a lane whose requests are large and
        // sparse (an 8 MiB part at 1 MiB/s arrives every 8 s): it would need minutes to
        // grow back once the path clears. Bounded so that one huge request cannot jump.
        let dt = (bytes as f64 / self.rate.max(1.0)).min(MAX_INCREASE_SLICE);
        if matches!(self.phase, Phase::Paused | Phase::Slowdown) || self.recent.is_empty() {
            return;
        }
        let target = self.effective_target();
        let q = self.queuing_delay().as_secs_f64();
        let rtt = self.rtt();
        let limited = self
            .token_limited_at
            .is_some_and(|t| now.saturating_sub(t).as_secs_f64() <= (2.0 * rtt).max(0.25));
        // Rate validation (RFC 7661's spirit): never more than twice the recent peak.
        let ceiling = (2.0 * self.reference_rate(now)).max(self.cfg.initial_rate as f64);
        if self.phase == Phase::SlowStart {
            if q < 0.75 * target {
                if limited {
                    // ACK-clocked: one sample's bytes per round trip, doubling per RTT.
                    self.rate += bytes as f64 / rtt;
                    self.rate = clamp_rate(self.rate.min(ceiling), self.min_rate(), self.cap);
                }
                return;
            }
            self.phase = Phase::Steady;
        }
        if q > target {
            if fresh {
                let cut = ((q - target) / target).min(self.cfg.max_decrease.clamp(0.0, 1.0));
                self.decrease(now, 1.0 - cut);
                self.tuner.on_congestion();
            }
        } else if limited {
            let off_target = (target - q) / target;
            let step = (self.cfg.increase_fraction * self.reference_rate(now))
                .max(self.cfg.min_increase as f64);
            self.rate = (self.rate + off_target * step * dt).min(ceiling.max(self.rate));
            self.rate = clamp_rate(self.rate, self.min_rate(), self.cap);
        }
    }

    /// A multiplicative decrease by `factor` and a back-off event.
    fn decrease(&mut self, now: Duration, factor: f64) {
        let factor = if factor.is_nan() {
            0.5
        } else {
            factor.clamp(0.0, 1.0)
        };
        let before = self.rate;
        // Cut from what is really flowing when the rate was not the binding limit (as TCP
        // cuts its flight, not an unused window).
        let delivered = self.delivered_sum as f64;
        let from = if delivered > 0.0 {
            self.rate.min(delivered)
        } else {
            self.rate
        };
        self.rate = clamp_rate(from * factor, self.min_rate(), self.cap);
        if self.phase == Phase::SlowStart {
            self.phase = Phase::Steady;
        }
        if self.phase == Phase::Slowdown {
            self.phase = Phase::Steady;
        }
        self.last_decrease = Some(now);
        // Count real cuts only, not repeated ones at the floor.
        if self.rate < before * 0.99 {
            self.backoffs += 1;
        }
    }

    fn record_delay(&mut self, now: Duration, d: Duration) {
        self.srtt = Some(ewma(self.srtt, d.as_secs_f64(), 0.125));
        if self.recent.len() == CURRENT_FILTER {
            self.recent.pop_front();
        }
        self.recent.push_back((now, d));
        // Old samples leave the filter, so a sparse lane reacts to its newest sample.
        let horizon = secs(8.0 * self.rtt()).max(Duration::from_millis(500));
        while self.recent.len() > 1
            && self
                .recent
                .front()
                .is_some_and(|(t, _)| now.saturating_sub(*t) > horizon)
        {
            self.recent.pop_front();
        }
        let bucket_len = self.cfg.base_bucket.as_secs_f64().max(1e-3);
        let idx = (now.as_secs_f64() / bucket_len) as u64;
        match self.base.back_mut() {
            Some((i, min)) if *i == idx => *min = (*min).min(d),
            _ => {
                self.base.push_back((idx, d));
                if self.base.len() > BASE_HISTORY {
                    self.base.pop_front();
                }
            }
        }
    }

    fn record_delivery(&mut self, now: Duration, bytes: u64) {
        self.delivered.push_back((now, bytes));
        self.delivered_sum = self.delivered_sum.saturating_add(bytes);
        while let Some(&(t, b)) = self.delivered.front() {
            if now.saturating_sub(t) <= Duration::from_secs(1) {
                break;
            }
            self.delivered.pop_front();
            self.delivered_sum = self.delivered_sum.saturating_sub(b);
        }
        let current = self.delivered_sum as f64;
        let decayed = self.reference_rate(now);
        self.rate_ref = decayed.max(current);
        self.rate_ref_at = now;
    }

    fn record_request_rate(&mut self, now: Duration, bytes: u64, duration: f64) {
        if bytes == 0 || duration.is_nan() || duration <= 0.0 {
            return;
        }
        let age = now.saturating_sub(self.request_rate_ref_at).as_secs_f64();
        let decayed = self.request_rate_ref * (-age / 60.0).exp();
        self.request_rate_ref = decayed.max(bytes as f64 / duration);
        self.request_rate_ref_at = now;
    }

    /// The recent peak delivery rate, decaying by 1/e per minute.
    fn reference_rate(&self, now: Duration) -> f64 {
        let age = now.saturating_sub(self.rate_ref_at).as_secs_f64();
        self.rate_ref * (-age / 60.0).exp()
    }

    /// The target queueing delay in seconds.
    fn effective_target(&self) -> f64 {
        self.cfg.target_delay.as_secs_f64().max(1e-3)
    }

    fn base_delay(&self) -> Option<Duration> {
        self.base.iter().map(|(_, d)| *d).min()
    }

    /// Filtered current delay minus the base delay.
    fn queuing_delay(&self) -> Duration {
        match (self.recent.iter().map(|(_, d)| *d).min(), self.base_delay()) {
            (Some(cur), Some(base)) => cur.saturating_sub(base),
            _ => Duration::ZERO,
        }
    }

    fn rtt(&self) -> f64 {
        self.srtt.unwrap_or(DEFAULT_RTT).max(1e-3)
    }

    /// The rate floor: the configured minimum, or one mean request per four mean request
    /// durations (at least a second) if that is more. LEDBAT keeps a minimum window of two
    /// packets for the same reason: a lane that has yielded must still get samples to
    /// notice when the path clears; with requests of megabytes, a byte-rate floor alone
    /// would leave it blind for minutes.
    fn min_rate(&self) -> f64 {
        let configured = self.cfg.min_rate.max(1) as f64;
        match (self.mean_bytes, self.mean_duration) {
            (Some(b), Some(d)) => configured.max(b / (4.0 * d).max(1.0)),
            _ => configured,
        }
    }

    /// What the controller is doing now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            current_rate: self.delivered_sum as f64,
            target_rate: self.target_rate().as_bytes_per_sec().unwrap_or(u64::MAX) as f64,
            cap: self.cap,
            base_delay: self.base_delay(),
            queuing_delay: self.queuing_delay(),
            target_delay: self.cfg.target_delay,
            backoff_events: self.backoffs,
            pushback_events: self.pushbacks,
            in_flight_target: self.target_in_flight(),
            loss_rate: self.loss_ewma,
            phase: self.phase,
            paused_until: self.paused_until,
        }
    }
}

fn ewma(prev: Option<f64>, x: f64, alpha: f64) -> f64 {
    match prev {
        Some(p) if x.is_finite() => p + alpha * (x - p),
        Some(p) => p,
        None if x.is_finite() => x,
        None => 0.0,
    }
}

/// Clamps `rate` to `[min, cap]` (the cap wins if it is below `min`); NaN becomes `min`.
fn clamp_rate(rate: f64, min: f64, cap: Rate) -> f64 {
    let max = cap.as_bytes_per_sec().map_or(MAX_RATE, |c| c as f64);
    let r = if rate.is_nan() { min } else { rate.max(min) };
    r.min(max).max(1.0)
}
