//! Weighted, work-conserving sharing of one lane's bandwidth between priority classes.
//!
//! This module owns *who goes next*. Each lane (a direction of one store) has one
//! [`Scheduler`]: transfers queue here, each in its [`Priority`] class, and are admitted
//! when the lane's [`TokenBucket`] has tokens and a request slot is free (the concurrency
//! limit set by the congestion controller). The order is start-time fair queueing (SFQ,
//! Goyal, Vin and Cheng, SIGCOMM 1996): a transfer of `L` bytes in a class of weight `w` gets
//! the start tag `S = max(V, F_class)` and the class's finish tag becomes `S + L / w`; the
//! waiting transfer with the smallest start tag goes first and the virtual time `V` moves to
//! its tag. Busy classes therefore share the admitted bytes in proportion to their weights;
//! an idle class has nothing queued, so its share goes to the busy ones (work-conserving),
//! and when it comes back its tag starts at `V`: it cannot bank credit while idle.
//!
//! Admission is pay-after: a transfer is admitted while the bucket is not in debt, then its
//! bytes are charged. With a request slot per transfer the same order also hands out the
//! concurrency slots, so a flood of background work cannot hold every slot either.

use std::collections::VecDeque;
use std::time::Duration;

use crate::bucket::TokenBucket;
use crate::clock::Clock;

/// A priority class. Default weights: High 8, Normal 4, Low 2, Background 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Interactive or deadline work.
    High,
    /// Ordinary jobs.
    Normal,
    /// Work that can wait.
    Low,
    /// Scrubbing, rebalancing, tiering: takes what is left.
    Background,
}

impl Priority {
    /// All classes, highest first.
    pub const ALL: [Priority; 4] = [
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Background,
    ];

    /// 0 for High .. 3 for Background.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Reads `high`, `normal`, `low` or `background` (any case).
    pub fn parse(text: &str) -> Option<Priority> {
        match text.to_ascii_lowercase().as_str() {
            "high" => Some(Priority::High),
            "normal" => Some(Priority::Normal),
            "low" => Some(Priority::Low),
            "background" => Some(Priority::Background),
            _ => None,
        }
    }
}

/// The weight of each class, indexed by [`Priority::index`]. Zero counts as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights(pub [u32; 4]);

impl Default for Weights {
    fn default() -> Weights {
        Weights([8, 4, 2, 1])
    }
}

impl Weights {
    /// The weight of `class` (at least 1).
    pub fn of(&self, class: Priority) -> f64 {
        f64::from(self.0[class.index()].max(1))
    }
}

/// Identifies one queued transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

#[derive(Debug, Clone)]
struct Waiter {
    ticket: Ticket,
    bytes: u64,
    start_tag: f64,
    needs_slot: bool,
}

/// Why the queue was waiting, for the congestion controller and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    Nothing,
    Tokens,
    Slots,
}

/// Cumulative time a scheduler spent with work waiting, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// Waiting for tokens (the rate limit was binding) or for a Retry-After pause.
    pub token_bound: Duration,
    /// Tokens were there but every request slot was taken (concurrency was binding).
    pub slot_bound: Duration,
}

/// The SFQ scheduler of one lane: queues, virtual time, request slots.
#[derive(Debug)]
pub struct Scheduler {
    weights: Weights,
    queues: [VecDeque<Waiter>; 4],
    finish: [f64; 4],
    vtime: f64,
    in_flight: usize,
    max_in_flight: usize,
    paused_until: Duration,
    admitted_bytes: [u64; 4],
    blocked: Blocked,
    blocked_since: Duration,
    pressure: Pressure,
    /// Requests that only need a slot, their bytes paced elsewhere (see
    /// [`Scheduler::enqueue_slot`]), oldest first.
    slot_only: VecDeque<(Ticket, Priority)>,
    /// Since when the first of them has been waiting for a slot.
    slot_only_blocked_since: Option<Duration>,
}

impl Scheduler {
    /// An empty scheduler allowing `max_in_flight` (at least 1) slotted transfers at once.
    pub fn new(weights: Weights, max_in_flight: usize) -> Scheduler {
        Scheduler {
            weights,
            queues: Default::default(),
            finish: [0.0; 4],
            vtime: 0.0,
            in_flight: 0,
            max_in_flight: max_in_flight.max(1),
            paused_until: Duration::ZERO,
            admitted_bytes: [0; 4],
            blocked: Blocked::Nothing,
            blocked_since: Duration::ZERO,
            pressure: Pressure::default(),
            slot_only: VecDeque::new(),
            slot_only_blocked_since: None,
        }
    }

    /// Queues a transfer of `bytes` in `class`; `needs_slot` when it also takes one of the
    /// request slots until [`Scheduler::release`] (a new request), false for pacing more
    /// bytes of a request that already holds one.
    pub fn enqueue(&mut self, ticket: Ticket, class: Priority, bytes: u64, needs_slot: bool) {
        let c = class.index();
        let start_tag = self.vtime.max(self.finish[c]);
        self.finish[c] = start_tag + bytes as f64 / self.weights.of(class);
        self.queues[c].push_back(Waiter {
            ticket,
            bytes,
            start_tag,
            needs_slot,
        });
    }

    /// Queues a request that needs a slot but no tokens: its bytes were paced elsewhere
    /// (a store paces bytes before handing them to a client library, whose HTTP requests
    /// then take the slots). Such requests are admitted first come, first served, whenever
    /// a slot is free and the lane is not paused, without waiting behind transfers that
    /// wait for tokens; waiting for them counts as slot-bound time.
    pub fn enqueue_slot(&mut self, ticket: Ticket, class: Priority) {
        self.slot_only.push_back((ticket, class));
    }

    /// Removes a queued transfer (its caller gave up); true if it was queued.
    pub fn cancel(&mut self, ticket: Ticket) -> bool {
        if let Some(i) = self.slot_only.iter().position(|(t, _)| *t == ticket) {
            self.slot_only.remove(i);
            return true;
        }
        for q in &mut self.queues {
            if let Some(i) = q.iter().position(|w| w.ticket == ticket) {
                q.remove(i);
                return true;
            }
        }
        false
    }

    /// Frees the request slot of an admitted transfer.
    pub fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Sets the number of request slots (at least 1); transfers already admitted keep theirs.
    pub fn set_max_in_flight(&mut self, n: usize) {
        self.max_in_flight = n.max(1);
    }

    /// Admits nothing before `until` (a store's Retry-After).
    pub fn pause_until(&mut self, until: Duration) {
        self.paused_until = self.paused_until.max(until);
    }

    /// Slotted transfers admitted and not yet released.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The current number of request slots.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Transfers waiting in `class`.
    pub fn queued(&self, class: Priority) -> usize {
        let slot_only = self.slot_only.iter().filter(|(_, c)| *c == class).count();
        self.queues[class.index()].len() + slot_only
    }

    /// Bytes admitted so far in each class, indexed by [`Priority::index`].
    pub fn admitted_bytes(&self) -> [u64; 4] {
        self.admitted_bytes
    }

    /// True when, at the last poll, work was waiting for tokens or a Retry-After pause.
    pub fn waiting_for_tokens(&self) -> bool {
        self.blocked == Blocked::Tokens
    }

    /// Cumulative waiting time by cause, up to the last poll.
    pub fn pressure(&self) -> Pressure {
        self.pressure
    }

    /// Admits every transfer that may go now, in SFQ order, charging `bucket` (and `shared`,
    /// a bucket shared with the other lane, when set). Admitted tickets are appended to
    /// `out`. Returns how long until the next admission could happen, or `None` when nothing
    /// waits or only a released slot can unblock the queue.
    pub fn poll<C: Clock>(
        &mut self,
        bucket: &mut TokenBucket<C>,
        mut shared: Option<&mut TokenBucket<C>>,
        now: Duration,
        out: &mut Vec<(Ticket, Priority, u64, bool)>,
    ) -> Option<Duration> {
        let paused = now < self.paused_until;
        if !paused {
            while self.in_flight < self.max_in_flight {
                let Some((ticket, class)) = self.slot_only.pop_front() else {
                    break;
                };
                self.in_flight += 1;
                out.push((ticket, class, 0, true));
            }
        }
        let slot_only_wake =
            (paused && !self.slot_only.is_empty()).then(|| self.paused_until - now);
        let (state, wake) = loop {
            if self.queues.iter().all(VecDeque::is_empty) {
                break (Blocked::Nothing, None);
            }
            if now < self.paused_until {
                break (Blocked::Tokens, Some(self.paused_until - now));
            }
            let mut wait = bucket.ready_in();
            if let Some(s) = shared.as_deref_mut() {
                wait = wait.max(s.ready_in());
            }
            if !wait.is_zero() {
                break (Blocked::Tokens, Some(wait));
            }
            let slot_free = self.in_flight < self.max_in_flight;
            let pick = (0..4)
                .filter_map(|c| self.queues[c].front().map(|w| (c, w)))
                .filter(|(_, w)| slot_free || !w.needs_slot)
                .min_by(|(ca, a), (cb, b)| a.start_tag.total_cmp(&b.start_tag).then(ca.cmp(cb)))
                .map(|(c, _)| c);
            let Some(c) = pick else {
                break (Blocked::Slots, None);
            };
            let Some(w) = self.queues[c].pop_front() else {
                break (Blocked::Nothing, None);
            };
            self.vtime = self.vtime.max(w.start_tag);
            bucket.take(w.bytes);
            if let Some(s) = shared.as_deref_mut() {
                s.take(w.bytes);
            }
            if w.needs_slot {
                self.in_flight += 1;
            }
            self.admitted_bytes[c] = self.admitted_bytes[c].saturating_add(w.bytes);
            out.push((w.ticket, Priority::ALL[c], w.bytes, w.needs_slot));
        };
        self.account(now, state);
        self.account_slot_only(now, !paused && !self.slot_only.is_empty());
        match (wake, slot_only_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Slot-bound time of slot-only requests (not counted twice while the byte queues are
    /// slot-bound too).
    fn account_slot_only(&mut self, now: Duration, blocked: bool) {
        if let Some(since) = self.slot_only_blocked_since {
            if self.blocked != Blocked::Slots {
                self.pressure.slot_bound += now.saturating_sub(since);
            }
        }
        self.slot_only_blocked_since = blocked.then_some(now);
    }

    /// Charges the time since the last poll to the cause of waiting then.
    fn account(&mut self, now: Duration, state: Blocked) {
        let elapsed = now.saturating_sub(self.blocked_since);
        match self.blocked {
            Blocked::Tokens => self.pressure.token_bound += elapsed,
            Blocked::Slots => self.pressure.slot_bound += elapsed,
            Blocked::Nothing => {}
        }
        self.blocked = state;
        self.blocked_since = now.max(self.blocked_since);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;
    use crate::rate::Rate;

    /// Every class keeps `depth` transfers queued; returns the bytes admitted per class over
    /// `seconds` of a 1 MB/s bucket with 64 KB transfers.
    fn run(weights: Weights, busy: [bool; 4], seconds: u64) -> [u64; 4] {
        let clock = SimClock::new();
        let mut bucket = TokenBucket::new(clock.clone(), Rate::bytes_per_sec(1_000_000));
        let mut s = Scheduler::new(weights, 1000);
        let mut next = 0u64;
        let mut out = Vec::new();
        while clock.now() < Duration::from_secs(seconds) {
            for p in Priority::ALL {
                while busy[p.index()] && s.queued(p) < 4 {
                    next += 1;
                    s.enqueue(Ticket(next), p, 64_000, true);
                }
            }
            out.clear();
            let wake = s.poll(&mut bucket, None, clock.now(), &mut out);
            for _ in &out {
                s.release();
            }
            clock.advance(wake.unwrap_or(Duration::from_millis(1)));
        }
        s.admitted_bytes()
    }

    #[test]
    fn busy_classes_share_by_weight() {
        let got = run(Weights::default(), [true; 4], 60);
        let total: u64 = got.iter().sum();
        for (i, w) in [8.0, 4.0, 2.0, 1.0].iter().enumerate() {
            let share = got[i] as f64 / total as f64;
            let want = w / 15.0;
            assert!(
                (share / want - 1.0).abs() < 0.05,
                "class {i}: {share} vs {want}"
            );
        }
    }

    #[test]
    fn idle_class_share_goes_to_the_others() {
        let got = run(Weights::default(), [false, true, false, true], 60);
        let total: u64 = got.iter().sum();
        assert!(total as f64 > 0.97 * 60e6, "{total}");
        assert!((got[1] as f64 / got[3] as f64 / 4.0 - 1.0).abs() < 0.05);
    }

    #[test]
    fn slots_bound_and_pause() {
        let clock = SimClock::new();
        let mut bucket = TokenBucket::new(clock.clone(), Rate::Unlimited);
        let mut s = Scheduler::new(Weights::default(), 2);
        for i in 0..5 {
            s.enqueue(Ticket(i), Priority::Low, 10, true);
        }
        s.enqueue(Ticket(9), Priority::Low, 10, false);
        let mut out = Vec::new();
        assert_eq!(s.poll(&mut bucket, None, clock.now(), &mut out), None);
        assert_eq!(out.len(), 2);
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.poll(&mut bucket, None, clock.now(), &mut out), None);
        assert_eq!(s.pressure().slot_bound, Duration::from_secs(1));
        assert!(s.cancel(Ticket(3)));
        assert!(!s.cancel(Ticket(3)));
        s.release();
        s.pause_until(Duration::from_secs(3));
        let wake = s.poll(&mut bucket, None, clock.now(), &mut out);
        assert_eq!(wake, Some(Duration::from_secs(2)));
        clock.advance(Duration::from_secs(2));
        out.clear();
        s.poll(&mut bucket, None, clock.now(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(s.pressure().token_bound, Duration::from_secs(2));
    }
}
