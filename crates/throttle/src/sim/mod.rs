//! A deterministic link simulator for the throttle (tests now, `strata bench` later).
//!
//! This module owns a discrete-time model of Strata writing to a store across one
//! bottleneck, so that the throttle's promises (caps, shares, yielding, utilisation) can be
//! checked exactly and quickly on a [`SimClock`]:
//!
//! - **jobs**: each has a priority class, a number of workers and a chunk size; a worker
//!   queues one request at a time in the [`Governor`] and, once admitted, sends it;
//! - **streams**: an admitted request sends at most one window per round trip (its TCP
//!   window), so long paths need many requests in flight (what the slot tuner is for);
//! - **bottleneck**: FIFO queue with a finite buffer (tail drop) in front of a link whose
//!   capacity and propagation delay can step over time (see [`link`]);
//! - **cross traffic**: AIMD (TCP-like) or constant-rate flows through the same queue;
//! - **the store**: a request completes one propagation delay after its last byte leaves
//!   the queue, plus server time, random jitter and the response's propagation; it fails at
//!   random with the loss probability (`Reset`), or is pushed back (`Throttled`) during
//!   configured windows.
//!
//! Everything random comes from a seeded xorshift generator: a run repeats exactly.

pub mod link;

use std::collections::HashMap;
use std::time::Duration;

use crate::clock::{secs, Clock, SimClock};
use crate::congestion::Outcome;
use crate::governor::{Governor, GovernorConfig, Grant, LaneSnapshot};
use crate::rate::{BwLimit, Direction};
use crate::share::{Priority, Ticket};

pub use link::CrossTraffic;
use link::{Bottleneck, CrossFlow, XorShift};

/// The path between Strata and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Capacity in bytes/s from each time on; the first entry should be at time zero.
    pub capacity: Vec<(Duration, f64)>,
    /// One-way propagation delay from each time on (RTT is twice this).
    pub one_way_delay: Vec<(Duration, Duration)>,
    /// Bottleneck buffer in bytes.
    pub buffer: f64,
    /// Largest window one request's connection keeps in flight, in bytes.
    pub stream_window: f64,
    /// Probability that a request fails at random (`Reset`), without any congestion.
    pub loss: f64,
    /// Fixed time the store spends on each request.
    pub server_time: Duration,
    /// Uniform random extra response time, `0..jitter`.
    pub jitter: Duration,
}

impl Default for LinkConfig {
    /// 100 MiB/s, 20 ms one way (40 ms RTT), 250 ms of buffer, 4 MiB windows, no loss,
    /// 5 ms server time, 5 ms jitter.
    fn default() -> LinkConfig {
        let cap = f64::from(100u32 << 20);
        LinkConfig {
            capacity: vec![(Duration::ZERO, cap)],
            one_way_delay: vec![(Duration::ZERO, Duration::from_millis(20))],
            buffer: cap * 0.25,
            stream_window: f64::from(4u32 << 20),
            loss: 0.0,
            server_time: Duration::from_millis(5),
            jitter: Duration::from_millis(5),
        }
    }
}

impl LinkConfig {
    /// The capacity at `t`.
    pub fn capacity_at(&self, t: Duration) -> f64 {
        step_at(&self.capacity, t).unwrap_or(0.0)
    }

    /// The one-way delay at `t`.
    pub fn delay_at(&self, t: Duration) -> Duration {
        step_at(&self.one_way_delay, t).unwrap_or(Duration::ZERO)
    }
}

fn step_at<T: Copy>(steps: &[(Duration, T)], t: Duration) -> Option<T> {
    steps.iter().rfind(|(at, _)| *at <= t).map(|(_, v)| *v)
}

/// A stream of work in one priority class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    /// Its class.
    pub class: Priority,
    /// Requests it keeps queued or in flight.
    pub workers: usize,
    /// Bytes per request.
    pub chunk: u64,
    /// When it starts queueing work.
    pub start: Duration,
    /// When it stops (queued requests are withdrawn).
    pub stop: Duration,
}

impl Job {
    /// A job in `class` busy for the whole run: 32 workers, 1 MiB chunks.
    pub fn busy(class: Priority) -> Job {
        Job {
            class,
            workers: 32,
            chunk: 1 << 20,
            start: Duration::ZERO,
            stop: Duration::MAX,
        }
    }
}

/// A window in which the store answers every request with 429/503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushback {
    /// From.
    pub start: Duration,
    /// Until.
    pub stop: Duration,
    /// The Retry-After it sends.
    pub retry_after: Option<Duration>,
}

/// One simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The path.
    pub link: LinkConfig,
    /// Competing flows.
    pub cross: Vec<CrossTraffic>,
    /// Strata's jobs (all writes).
    pub jobs: Vec<Job>,
    /// The throttle under test.
    pub governor: GovernorConfig,
    /// Live limit changes (control file, SIGHUP, timetable).
    pub limit_changes: Vec<(Duration, BwLimit)>,
    /// Store pushback windows.
    pub pushback: Vec<Pushback>,
    /// Simulated time.
    pub duration: Duration,
    /// Time step.
    pub tick: Duration,
    /// RNG seed.
    pub seed: u64,
    /// Interval between recorded lane snapshots.
    pub snapshot_every: Duration,
    /// Report each request's response latency (time from its last byte to its response,
    /// as a store layer measures a PUT's final response or a GET's time to first byte) in
    /// its sample. False leaves it `None`, so the controller uses whole durations.
    pub report_latency: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            link: LinkConfig::default(),
            cross: Vec::new(),
            jobs: vec![Job::busy(Priority::Normal)],
            governor: GovernorConfig::default(),
            limit_changes: Vec::new(),
            pushback: Vec::new(),
            duration: Duration::from_secs(60),
            tick: Duration::from_millis(1),
            seed: 1,
            snapshot_every: Duration::from_millis(50),
            report_latency: true,
        }
    }
}

/// What a simulation measured, per tick unless said otherwise.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// The time step.
    pub tick: Duration,
    /// Our bytes that left the bottleneck.
    pub wire: Vec<f64>,
    /// Bytes of successful requests, per job, counted when they complete.
    pub goodput: Vec<Vec<f64>>,
    /// Cross-traffic bytes that left the bottleneck.
    pub cross: Vec<f64>,
    /// Bytes the link could carry.
    pub capacity: Vec<f64>,
    /// Requests admitted.
    pub admissions: Vec<u32>,
    /// Write-lane snapshots at `snapshot_every`.
    pub snapshots: Vec<(Duration, LaneSnapshot)>,
}

impl SimReport {
    fn index(&self, t: Duration) -> usize {
        let tick = self.tick.as_nanos().max(1);
        usize::try_from(t.as_nanos() / tick).unwrap_or(usize::MAX)
    }

    /// Mean rate (per second) of `series` over `[from, to)`.
    pub fn rate(&self, series: &[f64], from: Duration, to: Duration) -> f64 {
        let (a, b) = (
            self.index(from).min(series.len()),
            self.index(to).min(series.len()),
        );
        if b <= a {
            return 0.0;
        }
        series[a..b].iter().sum::<f64>() / ((b - a) as f64 * self.tick.as_secs_f64())
    }

    /// Rates of `series` over every `window` starting in `[from, to - window]`, one per tick.
    pub fn sliding_rates(
        &self,
        series: &[f64],
        window: Duration,
        from: Duration,
        to: Duration,
    ) -> Vec<f64> {
        let w = self.index(window).max(1);
        let (a, b) = (
            self.index(from).min(series.len()),
            self.index(to).min(series.len()),
        );
        if b < a + w {
            return Vec::new();
        }
        let secs = w as f64 * self.tick.as_secs_f64();
        let mut sum: f64 = series[a..a + w].iter().sum();
        let mut out = vec![sum / secs];
        for i in a + w..b {
            sum += series[i] - series[i - w];
            out.push(sum / secs);
        }
        out
    }

    /// Goodput of all jobs over `[from, to)` divided by the link's capacity then.
    pub fn utilisation(&self, from: Duration, to: Duration) -> f64 {
        let good: f64 = self.goodput.iter().map(|g| self.rate(g, from, to)).sum();
        good / self.rate(&self.capacity, from, to).max(1.0)
    }

    /// The first snapshot at or after `t`.
    pub fn snapshot_at(&self, t: Duration) -> Option<&LaneSnapshot> {
        self.snapshots
            .iter()
            .find(|(at, _)| *at >= t)
            .map(|(_, s)| s)
    }
}

/// One request crossing the simulated link.
struct Transfer {
    grant: Grant,
    job: usize,
    remaining: f64,
    last_byte: Option<f64>,
    last_byte_at: Duration,
    done_at: Option<Duration>,
}

/// Runs a simulation to the end and reports what it measured.
pub fn run(cfg: &SimConfig) -> SimReport {
    let clock = SimClock::new();
    let mut gov = Governor::new(clock.clone(), cfg.governor);
    let mut rng = XorShift::new(cfg.seed);
    let mut cross: Vec<CrossFlow> = cfg.cross.iter().copied().map(CrossFlow::new).collect();
    let mut neck = Bottleneck::default();
    let ticks = usize::try_from(cfg.duration.as_nanos() / cfg.tick.as_nanos().max(1)).unwrap_or(0);
    let mut report = SimReport {
        tick: cfg.tick,
        wire: Vec::with_capacity(ticks),
        goodput: vec![Vec::with_capacity(ticks); cfg.jobs.len()],
        cross: Vec::with_capacity(ticks),
        capacity: Vec::with_capacity(ticks),
        admissions: Vec::with_capacity(ticks),
        snapshots: Vec::new(),
    };
    let mut queued: Vec<Vec<Ticket>> = vec![Vec::new(); cfg.jobs.len()];
    let mut ticket_job: HashMap<Ticket, usize> = HashMap::new();
    let mut outstanding = vec![0usize; cfg.jobs.len()];
    let mut transfers: Vec<Transfer> = Vec::new();
    let mut limits = cfg.limit_changes.clone();
    limits.sort_by_key(|(t, _)| *t);
    let mut next_limit = 0;
    let mut next_snapshot = Duration::ZERO;
    let dt = cfg.tick.as_secs_f64();

    for _ in 0..ticks {
        let now = clock.now();
        while let Some((at, limit)) = limits.get(next_limit) {
            if *at > now {
                break;
            }
            gov.set_limit(*limit);
            next_limit += 1;
        }
        for job in 0..cfg.jobs.len() {
            report.goodput[job].push(0.0);
        }
        // Completions.
        let mut i = 0;
        while i < transfers.len() {
            if transfers[i].done_at.is_some_and(|d| d <= now) {
                let t = transfers.swap_remove(i);
                let outcome = outcome_at(cfg, now, &mut rng);
                let latency = cfg
                    .report_latency
                    .then(|| now.saturating_sub(t.last_byte_at));
                gov.finish(&t.grant, t.grant.bytes, outcome, latency);
                if outcome == Outcome::Ok {
                    if let Some(g) = report.goodput[t.job].last_mut() {
                        *g += t.grant.bytes as f64;
                    }
                }
                outstanding[t.job] = outstanding[t.job].saturating_sub(1);
            } else {
                i += 1;
            }
        }
        // Workers queue work; stopped jobs withdraw theirs.
        for (j, job) in cfg.jobs.iter().enumerate() {
            if now >= job.start && now < job.stop {
                while outstanding[j] < job.workers {
                    let t = gov.enqueue(Direction::Write, job.class, job.chunk, true);
                    ticket_job.insert(t, j);
                    queued[j].push(t);
                    outstanding[j] += 1;
                }
            } else if !queued[j].is_empty() {
                for t in queued[j].drain(..) {
                    gov.cancel(Direction::Write, t);
                    ticket_job.remove(&t);
                    outstanding[j] = outstanding[j].saturating_sub(1);
                }
            }
        }
        // Admissions.
        gov.poll();
        let grants = gov.drain_grants();
        report
            .admissions
            .push(u32::try_from(grants.len()).unwrap_or(u32::MAX));
        for grant in grants {
            let Some(job) = ticket_job.remove(&grant.ticket) else {
                gov.release(&grant);
                continue;
            };
            queued[job].retain(|t| *t != grant.ticket);
            transfers.push(Transfer {
                grant,
                job,
                remaining: grant.bytes as f64,
                last_byte: None,
                last_byte_at: Duration::ZERO,
                done_at: None,
            });
        }
        // The link.
        let capacity = cfg.link.capacity_at(now);
        let one_way = cfg.link.delay_at(now);
        let rtt = (2.0 * one_way.as_secs_f64() + neck.delay(capacity)).max(1e-4);
        let per_stream = cfg.link.stream_window / rtt * dt;
        let offers: Vec<f64> = transfers
            .iter()
            .map(|t| t.remaining.min(per_stream).max(0.0))
            .collect();
        let offered: f64 = offers.iter().sum();
        let buffer = cfg.link.buffer;
        let r = neck.tick(now, dt, capacity, buffer, rtt, offered, &mut cross);
        for (t, o) in transfers.iter_mut().zip(&offers) {
            if t.last_byte.is_none() {
                t.remaining -= o * r.accepted;
                // The last segment goes whole (no fluid tail of ever smaller fractions).
                if t.remaining < 1460.0 {
                    t.remaining = 0.0;
                    t.last_byte = Some(neck.ours_sent);
                    t.last_byte_at = now;
                }
            }
        }
        let served = neck.ours_served + 1.0;
        for t in &mut transfers {
            if t.done_at.is_none() && t.last_byte.is_some_and(|b| b <= served) {
                let jitter = secs(cfg.link.jitter.as_secs_f64() * rng.next_f64());
                let response = cfg
                    .tick
                    .saturating_add(one_way.saturating_mul(2))
                    .saturating_add(cfg.link.server_time)
                    .saturating_add(jitter);
                t.done_at = Some(now.saturating_add(response));
            }
        }
        report.wire.push(r.ours_served);
        report.cross.push(r.cross_served);
        report.capacity.push(capacity * dt);
        if now >= next_snapshot {
            report.snapshots.push((now, gov.snapshot(Direction::Write)));
            next_snapshot = now.saturating_add(cfg.snapshot_every);
        }
        clock.advance(cfg.tick);
    }
    report
}

/// How a request completing at `now` ends.
fn outcome_at(cfg: &SimConfig, now: Duration, rng: &mut XorShift) -> Outcome {
    if let Some(p) = cfg.pushback.iter().find(|p| now >= p.start && now < p.stop) {
        return Outcome::Throttled {
            retry_after: p.retry_after,
        };
    }
    if rng.next_f64() < cfg.link.loss {
        Outcome::Reset
    } else {
        Outcome::Ok
    }
}
