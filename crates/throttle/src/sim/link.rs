//! The simulated bottleneck: a FIFO queue in front of a link of (stepping) capacity, with
//! propagation delay, a finite buffer and an AIMD or constant-rate competing flow.
//!
//! The model is a fluid one advanced in fixed ticks: each tick our streams and the cross
//! traffic offer bytes, whatever does not fit in the buffer is dropped (tail drop), and the
//! link serves `capacity * tick` bytes from the head of the queue in arrival order. Our
//! bytes are tracked by a cumulative counter, so a request knows its last byte has crossed
//! the bottleneck when the served counter passes the sent counter at its last byte.

use std::collections::VecDeque;
use std::time::Duration;

/// A competing flow through the same bottleneck.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CrossTraffic {
    /// A TCP-like flow: slow start from 10 segments, then additive increase of
    /// `increase_per_rtt` bytes per round trip, halving on a tail drop (once per round trip).
    Aimd {
        /// When it starts.
        start: Duration,
        /// When it stops.
        stop: Duration,
        /// Additive increase per round trip, in bytes.
        increase_per_rtt: f64,
    },
    /// A flow at a fixed rate (bytes/s) that does not react to anything.
    Constant {
        /// When it starts.
        start: Duration,
        /// When it stops.
        stop: Duration,
        /// Its rate in bytes per second.
        rate: f64,
    },
}

impl CrossTraffic {
    fn window(&self) -> (Duration, Duration) {
        match *self {
            CrossTraffic::Aimd { start, stop, .. } | CrossTraffic::Constant { start, stop, .. } => {
                (start, stop)
            }
        }
    }
}

/// The state of one cross flow.
#[derive(Debug, Clone)]
pub(crate) struct CrossFlow {
    pub(crate) spec: CrossTraffic,
    cwnd: f64,
    ssthresh: f64,
    last_cut: Duration,
    active: bool,
}

const SEGMENT: f64 = 1460.0;

impl CrossFlow {
    pub(crate) fn new(spec: CrossTraffic) -> CrossFlow {
        CrossFlow {
            spec,
            cwnd: 10.0 * SEGMENT,
            ssthresh: f64::MAX,
            last_cut: Duration::ZERO,
            active: false,
        }
    }

    /// Bytes this flow offers in a tick.
    fn offer(&mut self, now: Duration, dt: f64, rtt: f64) -> f64 {
        let (start, stop) = self.spec.window();
        let on = now >= start && now < stop;
        if on && !self.active {
            self.cwnd = 10.0 * SEGMENT;
            self.ssthresh = f64::MAX;
        }
        self.active = on;
        if !on {
            return 0.0;
        }
        match self.spec {
            CrossTraffic::Constant { rate, .. } => rate.max(0.0) * dt,
            CrossTraffic::Aimd {
                increase_per_rtt, ..
            } => {
                let offered = self.cwnd / rtt * dt;
                if self.cwnd < self.ssthresh {
                    self.cwnd += self.cwnd * dt / rtt;
                } else {
                    self.cwnd += increase_per_rtt.max(SEGMENT) * dt / rtt;
                }
                offered
            }
        }
    }

    /// A tail drop hit this flow.
    fn on_drop(&mut self, now: Duration, rtt: f64) {
        if matches!(self.spec, CrossTraffic::Aimd { .. })
            && now.saturating_sub(self.last_cut).as_secs_f64() >= rtt
        {
            self.cwnd = (self.cwnd / 2.0).max(2.0 * SEGMENT);
            self.ssthresh = self.cwnd;
            self.last_cut = now;
        }
    }
}

/// The bottleneck queue and what it has served.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bottleneck {
    /// FIFO segments: (our bytes, cross bytes).
    queue: VecDeque<(f64, f64)>,
    queued: f64,
    /// Our bytes accepted into the queue so far.
    pub(crate) ours_sent: f64,
    /// Our bytes that have left the queue so far.
    pub(crate) ours_served: f64,
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TickResult {
    /// Fraction of our offered bytes accepted (the rest is sent again later).
    pub(crate) accepted: f64,
    pub(crate) ours_served: f64,
    pub(crate) cross_served: f64,
}

impl Bottleneck {
    /// Queueing delay at `capacity` bytes/s.
    pub(crate) fn delay(&self, capacity: f64) -> f64 {
        self.queued / capacity.max(1.0)
    }

    /// One tick: offers, tail drop, service.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tick(
        &mut self,
        now: Duration,
        dt: f64,
        capacity: f64,
        buffer: f64,
        rtt: f64,
        ours_offered: f64,
        cross: &mut [CrossFlow],
    ) -> TickResult {
        let offers: Vec<f64> = cross.iter_mut().map(|c| c.offer(now, dt, rtt)).collect();
        let cross_offered: f64 = offers.iter().sum();
        let total = ours_offered + cross_offered;
        let free = (buffer - self.queued).max(0.0);
        let accepted = if total > free && total > 0.0 {
            for (c, o) in cross.iter_mut().zip(&offers) {
                if *o > 0.0 {
                    c.on_drop(now, rtt);
                }
            }
            free / total
        } else {
            1.0
        };
        let ours_in = ours_offered * accepted;
        let cross_in = cross_offered * accepted;
        if ours_in + cross_in > 0.0 {
            self.queue.push_back((ours_in, cross_in));
            self.queued += ours_in + cross_in;
        }
        self.ours_sent += ours_in;
        let mut budget = capacity.max(0.0) * dt;
        let mut result = TickResult {
            accepted,
            ..TickResult::default()
        };
        while budget > 0.0 {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            let size = front.0 + front.1;
            if size <= budget {
                budget -= size;
                result.ours_served += front.0;
                result.cross_served += front.1;
                self.queued -= size;
                self.queue.pop_front();
            } else {
                let f = budget / size;
                result.ours_served += front.0 * f;
                result.cross_served += front.1 * f;
                front.0 *= 1.0 - f;
                front.1 *= 1.0 - f;
                self.queued -= budget;
                budget = 0.0;
            }
        }
        self.ours_served += result.ours_served;
        if self.queue.is_empty() {
            // Resynchronise the float sums: everything sent has been served.
            self.queued = 0.0;
            self.ours_served = self.ours_sent;
        }
        result
    }
}

/// A tiny deterministic RNG (xorshift64*), so runs repeat exactly for a seed.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}
