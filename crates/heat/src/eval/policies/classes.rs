//! What the class-rule policies (`seed003`, `rules`) share: heat's [`AccessStats`] per
//! object id, classified by heat's [`Rules`], and the bookkeeping that keeps a pass
//! proportional to the objects in play rather than to all objects.
//!
//! Without a new access an object's class can only cool: its counts and rates decay and its
//! last access ages, so no spike and no rate rule can start to hold. Hence:
//! - an object is *active* from each access until a pass finds it settled or quiet;
//! - *settled*: classified cold and on a tier of the cold class; nothing can change until
//!   its next access, so passes forget it;
//! - *quiet*: no decision can change before a known time, so it sleeps until then: a hot
//!   object stays hot while its last access is within `hot_within`, a warm one stays warm
//!   while within `warm_within`, and a move held by minimum residency cannot be made before
//!   the residency ends (whichever comes first);
//! - the objects that can be hot are the ones accessed within `hot_within` (hot by that
//!   rule alone), found by a recency list, and, among those accessed within 25 h, the few
//!   with enough accesses ever to be hot by rate or by spike (a spike needs accesses within
//!   the hour, a daily rate within the day, and no windowed count exceeds the total).
//!
//! A pass looks at an object's class ([`Look`]) more often than it orders it among others
//! (which needs the whole [`Decision`], rates and all): for an object with too few accesses
//! ever for a spike or rate rule to hold, the look reads only its last access and last
//! write, not its windowed counts (a few cache lines further on) nor its decayed rates.

use super::recency::RecencyLog;
use super::sleepers::Sleepers;
use crate::classify::{Class, Decision, Reason, Rules};
use crate::eval::{prefetch, Predictions, TierIndex};
use crate::placement::ClassTiers;
use crate::stats::{AccessStats, Op};
use crate::trace::TraceRequest;
use crate::tracker::{record_watching_spikes, TrackerConfig};
use crate::units::{DAY_MS, HOUR_MS};

/// What a pass does with an active object.
pub(super) enum Keep {
    /// Look at it again at the next pass.
    Active,
    /// Nothing can change before this time.
    Sleep(i64),
    /// Nothing can change before its next access.
    Forget,
}

/// What a pass needs of an object's class decision to place it: its class and rule, and
/// what says when they may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Look {
    pub(super) class: Class,
    pub(super) reason: Reason,
    /// When it was looked at.
    pub(super) now_ms: i64,
    pub(super) last_access_ms: Option<i64>,
    pub(super) last_write_age_ms: Option<i64>,
}

impl Look {
    /// Whether the object stays on its tier ([`Decision::holds_in_place`]).
    pub(super) fn holds_in_place(&self) -> bool {
        self.reason == Reason::RecentWrite
    }
}

impl From<&Decision> for Look {
    fn from(decision: &Decision) -> Self {
        Look {
            class: decision.class,
            reason: decision.reason,
            now_ms: decision.inputs.now_ms,
            last_access_ms: decision.inputs.last_access_ms,
            last_write_age_ms: decision.inputs.last_write_age_ms,
        }
    }
}

/// Statistics, spike flags, and the active, sleeping and recent objects.
#[derive(Clone, Debug)]
pub(super) struct ClassWatch {
    pub(super) tracker: TrackerConfig,
    pub(super) rules: Rules,
    pub(super) classes: ClassTiers,
    stats: Vec<AccessStats>,
    spiking: Vec<bool>,
    active: Vec<u32>,
    in_active: Vec<bool>,
    sleeping: Sleepers,
    /// Read objects, most recently read first.
    recent: RecencyLog,
    /// Objects with at least `heavy_accesses` accesses, last accessed within 25 h: the only
    /// ones that can be hot by rate or spike (the windowed counts never exceed the total).
    heavy: Vec<u32>,
    in_heavy: Vec<bool>,
    heavy_accesses: u64,
    /// Objects with fewer accesses ever are classified by age alone: no windowed count
    /// exceeds the total, so neither a rate rule (more than `warm_per_day` or `hot_per_day`
    /// a day) nor the spike rule (at least `min_events_1h` in the hour) can hold.
    light_accesses: u64,
}

impl ClassWatch {
    /// Statistics kept as `tracker` keeps them, classified by `rules`; wake-ups are
    /// cheapest when they come at multiples of `wake_every_ms` (any time is exact).
    pub(super) fn new(
        tracker: TrackerConfig,
        rules: Rules,
        classes: ClassTiers,
        wake_every_ms: i64,
    ) -> Self {
        ClassWatch {
            tracker,
            rules,
            classes,
            stats: Vec::new(),
            spiking: Vec::new(),
            active: Vec::new(),
            in_active: Vec::new(),
            sleeping: Sleepers::new(wake_every_ms),
            recent: RecencyLog::default(),
            heavy: Vec::new(),
            in_heavy: Vec::new(),
            heavy_accesses: rules
                .hot_per_day
                .saturating_add(1)
                .min(rules.spike.min_events_1h),
            light_accesses: rules
                .warm_per_day
                .min(rules.hot_per_day)
                .saturating_add(1)
                .min(rules.spike.min_events_1h),
        }
    }

    /// Room for objects `0..objects` at once, so that the vectors do not grow (and copy
    /// tens of megabytes of statistics) as new objects come.
    pub(super) fn reserve(&mut self, objects: usize) {
        if self.stats.len() < objects {
            self.stats.resize(objects, AccessStats::new());
            self.spiking.resize(objects, false);
            self.in_active.resize(objects, false);
            self.in_heavy.resize(objects, false);
        }
    }

    /// Starts loading what [`ClassWatch::record`] of `object` will read (its statistics
    /// are a few cache lines in tens of megabytes: see [`prefetch`]).
    #[inline]
    pub(super) fn prefetch(&self, object: u32) {
        if let Some(stats) = self.stats.get(object as usize) {
            prefetch(stats);
        }
        if let Some(slot) = self.recent.slot(object) {
            prefetch(slot);
        }
    }

    /// Records a request as the service's tracker does (a delete forgets the object's
    /// history, as the service drops its row); true when a spike starts with it.
    pub(super) fn record(&mut self, request: &TraceRequest) -> bool {
        let index = request.object as usize;
        if self.stats.len() <= index {
            self.stats.resize(index + 1, AccessStats::new());
            self.spiking.resize(index + 1, false);
            self.in_active.resize(index + 1, false);
            self.in_heavy.resize(index + 1, false);
        }
        if request.op == Op::Delete {
            self.stats[index] = AccessStats::new();
            self.spiking[index] = false;
            self.recent.remove(request.object);
            return false;
        }
        let spike = record_watching_spikes(
            &mut self.stats[index],
            &mut self.spiking[index],
            &self.tracker,
            request.time_ms,
            request.op,
            request.size.unwrap_or(0),
        );
        // The list is kept in order of last read, as `last_access_ms` is: a write is no
        // access (see crate::stats), and `predict_hot` stops at the first stale entry.
        if request.op == Op::Read {
            self.recent.touch(request.object);
        }
        if self.stats[index].accesses() >= self.heavy_accesses && !self.in_heavy[index] {
            self.in_heavy[index] = true;
            self.heavy.push(request.object);
        }
        self.activate(request.object);
        spike
    }

    /// Makes an object active (looked at by the next pass).
    pub(super) fn activate(&mut self, object: u32) {
        let index = object as usize;
        if self.in_active.len() <= index {
            self.stats.resize(index + 1, AccessStats::new());
            self.spiking.resize(index + 1, false);
            self.in_active.resize(index + 1, false);
            self.in_heavy.resize(index + 1, false);
        }
        if !self.in_active[index] {
            self.in_active[index] = true;
            self.active.push(object);
        }
    }

    /// After a move of an object to `tier`, decided on `look` (as of the pass): what
    /// the next pass's look at it would conclude, without the look. On a tier of its class
    /// it stays until its class may change (the sleep wakes it by then) or, settled, until
    /// its next access; anywhere else (an evicted object) it is looked at again.
    pub(super) fn moved(&mut self, object: u32, look: &Look, tier: TierIndex) {
        let home = self.classes.tiers_for(look.class).contains(&tier);
        if !home || look.holds_in_place() {
            self.activate(object);
        } else if !self.settled(look, tier) {
            self.sleeping.push(self.class_holds_until(look), object);
        }
    }

    /// An object's class at `now_ms`: what [`ClassWatch::decision`] would say of it, read
    /// from its last access and write alone when it is too lightly read for a count rule.
    #[inline]
    pub(super) fn look(&self, object: u32, now_ms: i64) -> Look {
        let stats = self.stats.get(object as usize);
        if stats.map_or(0, AccessStats::accesses) >= self.light_accesses {
            return Look::from(&self.decision(object, now_ms));
        }
        let last_access_ms = stats.and_then(AccessStats::last_access_ms);
        let age = |at: i64| now_ms.saturating_sub(at).max(0);
        let last_write_age_ms = stats.and_then(AccessStats::last_write_ms).map(age);
        let (class, reason) = self
            .rules
            .classify_by_age(last_access_ms.map(age), last_write_age_ms);
        Look {
            class,
            reason,
            now_ms,
            last_access_ms,
            last_write_age_ms,
        }
    }

    /// An object's class decision at `now_ms`.
    #[inline]
    pub(super) fn decision(&self, object: u32, now_ms: i64) -> Decision {
        // By reference: the statistics are a few hundred bytes.
        let summary = match self.stats.get(object as usize) {
            Some(stats) => stats.summary(&self.tracker.decay, now_ms),
            None => AccessStats::new().summary(&self.tracker.decay, now_ms),
        };
        self.rules.classify(&summary)
    }

    /// An object's recent and baseline rates (per hour) at `now_ms`, as its decision has
    /// them.
    pub(super) fn rates(&self, object: u32, now_ms: i64) -> (f64, f64) {
        self.stats.get(object as usize).map_or((0.0, 0.0), |stats| {
            stats.rates_per_hour(&self.tracker.decay, now_ms)
        })
    }

    /// An object's baseline rate as of its last access (0 if never read): with its last
    /// access, the whole of its baseline rate at any later time.
    pub(super) fn baseline_at_last_access(&self, object: u32) -> f64 {
        self.stats.get(object as usize).map_or(0.0, |stats| {
            let last = stats.last_access_ms().unwrap_or(i64::MIN);
            stats.rates_per_hour(&self.tracker.decay, last).1
        })
    }

    /// Whether a pass may forget an object until its next access.
    pub(super) fn settled(&self, look: &Look, tier: TierIndex) -> bool {
        look.class == Class::Cold && self.classes.cold.contains(&tier)
    }

    /// The earliest time the class may change without an access (`i64::MAX`: never).
    pub(super) fn class_holds_until(&self, look: &Look) -> i64 {
        if look.holds_in_place() {
            // A recent write holds the object where it is until the write is `warm_within`
            // old; then the class's own tiers apply (see classify's `recent_write`).
            let age = look.last_write_age_ms.unwrap_or(0);
            return look
                .now_ms
                .saturating_add(self.rules.warm_within_ms.saturating_sub(age))
                .saturating_add(1);
        }
        let Some(last) = look.last_access_ms else {
            return i64::MAX;
        };
        match look.class {
            Class::Hot => last
                .saturating_add(self.rules.hot_within_ms)
                .saturating_add(1),
            Class::Warm => last
                .saturating_add(self.rules.warm_within_ms)
                .saturating_add(1),
            Class::Cold => i64::MAX,
        }
    }

    /// Wakes the objects whose sleep ends by `now_ms`.
    pub(super) fn wake(&mut self, now_ms: i64) {
        let mut due = std::mem::take(&mut self.sleeping.due);
        self.sleeping.take_due(now_ms, &mut due);
        for &(_, object) in &due {
            self.activate(object);
        }
        due.clear();
        self.sleeping.due = due;
    }

    /// Walks the active objects; `keep` says what to do with each.
    pub(super) fn retain_active(&mut self, mut keep: impl FnMut(&Self, u32) -> Keep) {
        self.retain_active_prepared(|_, _| (), |watch, object, ()| keep(watch, object));
    }

    /// Walks the active objects as [`ClassWatch::retain_active`] does, `prepare` reading
    /// first what `keep` will need of each. Why: the reads of one object do not wait for
    /// another's, so a loop doing only them has many of them under way at once, where the
    /// whole walk would wait for each object's reads in turn (hundreds of thousands of
    /// objects' statistics do not stay in cache).
    pub(super) fn retain_active_prepared<P>(
        &mut self,
        prepare: impl Fn(&Self, u32) -> P,
        mut keep: impl FnMut(&Self, u32, P) -> Keep,
    ) {
        let mut active = std::mem::take(&mut self.active);
        let mut sleepers = std::mem::take(&mut self.sleeping.due);
        let prepared: Vec<P> = active.iter().map(|&object| prepare(self, object)).collect();
        let mut prepared = prepared.into_iter();
        active.retain(
            |&object| match prepared.next().map(|p| keep(self, object, p)) {
                None => true,
                Some(keep) => match keep {
                    Keep::Active => true,
                    keep => {
                        if let Keep::Sleep(until) = keep {
                            sleepers.push((until, object));
                        }
                        self.in_active[object as usize] = false;
                        false
                    }
                },
            },
        );
        self.active = active;
        for &(until, object) in &sleepers {
            self.sleeping.push(until, object);
        }
        sleepers.clear();
        self.sleeping.due = sleepers;
    }

    /// Predicts a read of every object classified hot at `now_ms`: those accessed within
    /// `hot_within` (hot by that rule alone), and among the others accessed within 25 h the
    /// ones with enough accesses ever to be hot by rate or spike, classified.
    pub(super) fn predict_hot(&mut self, now_ms: i64, predictions: &mut Predictions) {
        let recent = self.rules.hot_within_ms;
        let horizon = recent.max(DAY_MS + HOUR_MS);
        for object in self.recent.iter() {
            let last = self.stats[object as usize]
                .last_access_ms()
                .unwrap_or(i64::MIN);
            if now_ms.saturating_sub(last) > recent {
                break;
            }
            predictions.will_read(object);
        }
        let mut heavy = std::mem::take(&mut self.heavy);
        heavy.retain(|&object| {
            let stats = &self.stats[object as usize];
            let age = stats
                .last_access_ms()
                .map_or(i64::MAX, |last| now_ms.saturating_sub(last));
            if age > horizon || stats.accesses() < self.heavy_accesses {
                self.in_heavy[object as usize] = false;
                return false;
            }
            if age > recent && self.decision(object, now_ms).class == Class::Hot {
                predictions.will_read(object);
            }
            true
        });
        self.heavy = heavy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::SpikeRule;
    use crate::units::MINUTE_MS;

    /// Objects read 0 to 24 times in bursts at varied times, some written too.
    fn requests() -> Vec<TraceRequest> {
        let mut requests = Vec::new();
        for object in 0..40u32 {
            let reads = i64::from(object % 25);
            for n in 0..reads {
                let time_ms =
                    i64::from(object) * 7 * MINUTE_MS + n * (i64::from(object % 4) + 1) * MINUTE_MS;
                requests.push(TraceRequest {
                    time_ms,
                    object,
                    op: Op::Read,
                    size: None,
                });
            }
            if object % 3 == 0 {
                requests.push(TraceRequest {
                    time_ms: i64::from(object) * 11 * MINUTE_MS,
                    object,
                    op: Op::Write,
                    size: Some(1),
                });
            }
        }
        requests.sort_by_key(|r| r.time_ms);
        requests
    }

    #[test]
    fn a_look_at_an_objects_class_agrees_with_its_whole_decision() {
        let tight = Rules {
            hot_per_day: 5,
            warm_per_day: 2,
            spike: SpikeRule {
                factor: 2.0,
                min_events_1h: 3,
            },
            ..Rules::default()
        };
        for rules in [Rules::default(), tight] {
            let mut watch = ClassWatch::new(
                TrackerConfig::default(),
                rules,
                ClassTiers::default_for(3),
                HOUR_MS,
            );
            for request in requests() {
                watch.record(&request);
            }
            for now_ms in (0..3 * DAY_MS).step_by((7 * MINUTE_MS) as usize) {
                for object in 0..42 {
                    let decision = watch.decision(object, now_ms);
                    assert_eq!(
                        watch.look(object, now_ms),
                        Look::from(&decision),
                        "object {object} at {now_ms} ms: {decision:?}"
                    );
                }
            }
        }
    }
}
