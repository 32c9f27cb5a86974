//! The synchronous core that ties caps, sharing and congestion control together.
//!
//! This module owns one store's throttle state: two lanes (reads and writes), each with a
//! token bucket, an SFQ [`Scheduler`] and a congestion [`Controller`], plus the bucket
//! shared by both lanes when the limit is a single total (`--bwlimit 10M`). It has no
//! threads and no timers: callers enqueue transfers, [`Governor::poll`] admits what may go
//! and says when to poll again, and [`Governor::finish`] reports how each request ended.
//! The simulator drives it on a [`crate::SimClock`]; the async [`crate::Throttle`] drives it
//! on tokio's clock. A lane's bucket runs at `min(operator cap, controller target)`.

use std::collections::HashMap;
use std::time::Duration;

use crate::bucket::TokenBucket;
use crate::clock::Clock;
use crate::congestion::{Controller, ControllerConfig, Outcome, Sample, Snapshot};
use crate::rate::{BwLimit, Direction, Rate};
use crate::share::{Priority, Scheduler, Ticket, Weights};

/// How a [`Governor`] is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GovernorConfig {
    /// The operator's cap (`--bwlimit`); change it live with [`Governor::set_limit`].
    pub limit: BwLimit,
    /// Weights of the priority classes.
    pub weights: Weights,
    /// False for a plain cap: no congestion control, slots fixed at the concurrency max.
    pub congestion_control: bool,
    /// Controller parameters (also the slot bounds when control is off).
    pub controller: ControllerConfig,
    /// A fixed bucket burst in bytes instead of a quarter second of the rate.
    pub burst: Option<u64>,
}

impl Default for GovernorConfig {
    fn default() -> GovernorConfig {
        GovernorConfig {
            limit: BwLimit::OFF,
            weights: Weights::default(),
            congestion_control: true,
            controller: ControllerConfig::default(),
            burst: None,
        }
    }
}

/// An admitted transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The ticket it was queued under.
    pub ticket: Ticket,
    /// Its lane.
    pub direction: Direction,
    /// Its class.
    pub class: Priority,
    /// Bytes it was admitted for.
    pub bytes: u64,
    /// When it was admitted (clock time): the sample's start.
    pub admitted_at: Duration,
    /// True when it holds a request slot that [`Governor::finish`] or
    /// [`Governor::release`] must free.
    pub holds_slot: bool,
}

/// A lane's state for metrics and `strata status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneSnapshot {
    /// The lane.
    pub direction: Direction,
    /// The controller's view (rates, delays, back-offs, slot target).
    pub controller: Snapshot,
    /// Rate the lane's bucket runs at now.
    pub bucket_rate: Rate,
    /// Requests holding a slot now.
    pub in_flight: usize,
    /// Transfers waiting, per class.
    pub queued: [usize; 4],
    /// Bytes admitted so far, per class.
    pub admitted_bytes: [u64; 4],
}

struct Lane<C: Clock> {
    bucket: TokenBucket<C>,
    sched: Scheduler,
    ctrl: Controller,
}

/// One store's throttle: see the module doc.
pub struct Governor<C: Clock + Clone> {
    clock: C,
    cfg: GovernorConfig,
    lanes: [Lane<C>; 2],
    shared: Option<TokenBucket<C>>,
    next_ticket: u64,
    grants: HashMap<Ticket, Grant>,
    scratch: Vec<(Ticket, Priority, u64, bool)>,
}

impl<C: Clock + Clone> Governor<C> {
    /// A governor on `clock`.
    pub fn new(clock: C, cfg: GovernorConfig) -> Governor<C> {
        let now = clock.now();
        let lane = |dir: Direction| {
            let cap = cfg.limit.for_direction(dir);
            let ctrl = Controller::new(cfg.controller, cap, now);
            let slots = if cfg.congestion_control {
                ctrl.target_in_flight()
            } else {
                cfg.controller.concurrency.max
            };
            let rate = if cfg.congestion_control {
                ctrl.target_rate()
            } else {
                cap
            };
            Lane {
                bucket: bucket(clock.clone(), rate, cfg.burst),
                sched: Scheduler::new(cfg.weights, slots),
                ctrl,
            }
        };
        let lanes = [lane(Direction::Read), lane(Direction::Write)];
        let shared = shared_bucket(&clock, cfg.limit, cfg.burst);
        Governor {
            clock,
            cfg,
            lanes,
            shared,
            next_ticket: 0,
            grants: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// The clock's time now.
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    /// The operator's cap in force.
    pub fn limit(&self) -> BwLimit {
        self.cfg.limit
    }

    /// The configuration in force (its `limit` follows [`Governor::set_limit`]).
    pub fn config(&self) -> &GovernorConfig {
        &self.cfg
    }

    /// Changes the operator's cap now (control file, SIGHUP, timetable tick, API). Later
    /// admissions use it at once; transfers already admitted are not recalled.
    pub fn set_limit(&mut self, limit: BwLimit) {
        if limit == self.cfg.limit {
            return;
        }
        self.cfg.limit = limit;
        for dir in Direction::ALL {
            let lane = &mut self.lanes[dir.index()];
            lane.ctrl.set_cap(limit.for_direction(dir));
        }
        match (&mut self.shared, limit) {
            (Some(b), BwLimit::Total(r)) if !r.is_unlimited() => b.set_rate(r),
            _ => self.shared = shared_bucket(&self.clock, limit, self.cfg.burst),
        }
        for dir in Direction::ALL {
            self.sync(dir);
        }
    }

    /// Queues a transfer of `bytes`; `needs_slot` for a new request (it then holds a request
    /// slot until finished), false to pace more bytes of a request that holds one.
    pub fn enqueue(
        &mut self,
        direction: Direction,
        class: Priority,
        bytes: u64,
        needs_slot: bool,
    ) -> Ticket {
        self.next_ticket += 1;
        let t = Ticket(self.next_ticket);
        self.lanes[direction.index()]
            .sched
            .enqueue(t, class, bytes, needs_slot);
        t
    }

    /// Queues a new request that needs a request slot but no tokens, because its bytes were
    /// paced elsewhere (see [`Scheduler::enqueue_slot`]); it holds the slot until finished.
    pub fn enqueue_slot(&mut self, direction: Direction, class: Priority) -> Ticket {
        self.next_ticket += 1;
        let t = Ticket(self.next_ticket);
        self.lanes[direction.index()].sched.enqueue_slot(t, class);
        t
    }

    /// Admits every transfer that may go now and returns how long until the next poll is
    /// useful (`None`: only a finished request or a new limit can unblock anything).
    pub fn poll(&mut self) -> Option<Duration> {
        let now = self.clock.now();
        let mut wake: Option<Duration> = None;
        for dir in Direction::ALL {
            let lane = &mut self.lanes[dir.index()];
            self.scratch.clear();
            let w = lane.sched.poll(
                &mut lane.bucket,
                self.shared.as_mut(),
                now,
                &mut self.scratch,
            );
            for &(ticket, class, bytes, holds_slot) in &self.scratch {
                let grant = Grant {
                    ticket,
                    direction: dir,
                    class,
                    bytes,
                    admitted_at: now,
                    holds_slot,
                };
                self.grants.insert(ticket, grant);
            }
            if self.cfg.congestion_control {
                let waiting = lane.sched.waiting_for_tokens();
                lane.ctrl.on_pressure(now, lane.sched.pressure(), waiting);
            }
            self.sync(dir);
            wake = match (wake, w) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        wake
    }

    /// Takes the grant of `ticket` if it was admitted.
    pub fn take_grant(&mut self, ticket: Ticket) -> Option<Grant> {
        self.grants.remove(&ticket)
    }

    /// Grants admitted but not yet taken.
    pub fn untaken_grants(&self) -> usize {
        self.grants.len()
    }

    /// Takes every grant not yet taken (for drivers that track tickets themselves).
    pub fn drain_grants(&mut self) -> Vec<Grant> {
        let mut v: Vec<Grant> = self.grants.drain().map(|(_, g)| g).collect();
        v.sort_by_key(|g| g.ticket);
        v
    }

    /// Gives up on a queued or admitted-but-untaken transfer: it leaves the queue, or its
    /// slot and tokens are given back.
    pub fn cancel(&mut self, direction: Direction, ticket: Ticket) {
        let lane = &mut self.lanes[direction.index()];
        if lane.sched.cancel(ticket) {
            return;
        }
        if let Some(g) = self.grants.remove(&ticket) {
            if g.holds_slot {
                lane.sched.release();
            }
            lane.bucket.refund(g.bytes);
            if let Some(s) = self.shared.as_mut() {
                s.refund(g.bytes);
            }
        }
    }

    /// Frees a grant's request slot without reporting a sample (e.g. the caller dropped it).
    pub fn release(&mut self, grant: &Grant) {
        if grant.holds_slot {
            self.lanes[grant.direction.index()].sched.release();
        }
    }

    /// Reports how a granted request ended: frees its slot and feeds the controller.
    /// `bytes` is what it actually moved (it may differ from the grant, e.g. with
    /// [`Governor::enqueue`] pacing calls in between).
    pub fn finish(
        &mut self,
        grant: &Grant,
        bytes: u64,
        outcome: Outcome,
        latency: Option<Duration>,
    ) {
        self.release(grant);
        let sample = Sample {
            bytes,
            start: grant.admitted_at,
            finish: self.clock.now(),
            latency,
            outcome,
        };
        self.record(grant.direction, &sample);
    }

    /// Feeds one sample to a lane's controller (for callers that track requests themselves).
    pub fn record(&mut self, direction: Direction, sample: &Sample) {
        if self.cfg.congestion_control {
            let lane = &mut self.lanes[direction.index()];
            // Transfers still waiting for tokens since the last poll: the lane is token-bound
            // now. Drivers that poll only when a waiter wakes (the async adapter) would
            // otherwise show the controller a stale "not limited" and stop its growth.
            if lane.sched.waiting_for_tokens() {
                let now = self.clock.now();
                lane.ctrl.on_pressure(now, lane.sched.pressure(), true);
            }
            lane.ctrl.on_sample(sample);
        }
        self.sync(direction);
    }

    /// A lane's state for metrics.
    pub fn snapshot(&self, direction: Direction) -> LaneSnapshot {
        let lane = &self.lanes[direction.index()];
        let queued = Priority::ALL.map(|p| lane.sched.queued(p));
        LaneSnapshot {
            direction,
            controller: lane.ctrl.snapshot(),
            bucket_rate: lane.bucket.rate(),
            in_flight: lane.sched.in_flight(),
            queued,
            admitted_bytes: lane.sched.admitted_bytes(),
        }
    }

    /// Pushes the controller's targets into the lane's bucket and scheduler.
    fn sync(&mut self, direction: Direction) {
        let cap = self.cfg.limit.for_direction(direction);
        let lane = &mut self.lanes[direction.index()];
        let (rate, slots) = if self.cfg.congestion_control {
            lane.sched.pause_until(lane.ctrl.paused_until());
            (
                lane.ctrl.target_rate().min(cap),
                lane.ctrl.target_in_flight(),
            )
        } else {
            (cap, self.cfg.controller.concurrency.max)
        };
        if lane.bucket.rate() != rate {
            lane.bucket.set_rate(rate);
        }
        lane.sched.set_max_in_flight(slots);
    }
}

fn bucket<C: Clock>(clock: C, rate: Rate, burst: Option<u64>) -> TokenBucket<C> {
    let b = TokenBucket::new(clock, rate);
    match burst {
        Some(bytes) => b.with_burst(bytes),
        None => b,
    }
}

fn shared_bucket<C: Clock + Clone>(
    clock: &C,
    limit: BwLimit,
    burst: Option<u64>,
) -> Option<TokenBucket<C>> {
    match limit {
        BwLimit::Total(r) if !r.is_unlimited() => Some(bucket(clock.clone(), r, burst)),
        _ => None,
    }
}
