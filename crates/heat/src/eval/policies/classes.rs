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
//! - the objects that can be hot are the ones accessed within `max(hot_within, 25 h)` (a
//!   spike needs an access within the hour, a daily rate one within the day): a recency
//!   list finds them for the next-window predictions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::recency::RecencyLists;
use crate::classify::{Class, Decision, Rules};
use crate::eval::{Predictions, TierIndex};
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
    sleeping: BinaryHeap<Reverse<(i64, u32)>>,
    recent: RecencyLists,
}

impl ClassWatch {
    pub(super) fn new(tracker: TrackerConfig, rules: Rules, classes: ClassTiers) -> Self {
        ClassWatch {
            tracker,
            rules,
            classes,
            stats: Vec::new(),
            spiking: Vec::new(),
            active: Vec::new(),
            in_active: Vec::new(),
            sleeping: BinaryHeap::new(),
            recent: RecencyLists::new(1),
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
        self.recent.touch(0, request.object);
        self.activate(request.object);
        spike
    }

    fn activate(&mut self, object: u32) {
        let index = object as usize;
        if !self.in_active[index] {
            self.in_active[index] = true;
            self.active.push(object);
        }
    }

    /// An object's class decision at `now_ms`.
    #[inline]
    pub(super) fn decision(&self, object: u32, now_ms: i64) -> Decision {
        let stats = self.stats.get(object as usize).copied().unwrap_or_default();
        self.rules
            .classify(&stats.summary(&self.tracker.decay, now_ms))
    }

    /// Whether a pass may forget an object until its next access.
    pub(super) fn settled(&self, decision: &Decision, tier: TierIndex) -> bool {
        decision.class == Class::Cold && self.classes.cold.contains(&tier)
    }

    /// The earliest time the class may change without an access (`i64::MAX`: never).
    pub(super) fn class_holds_until(&self, decision: &Decision) -> i64 {
        let Some(last) = decision.inputs.last_access_ms else {
            return i64::MAX;
        };
        match decision.class {
            Class::Hot => last.saturating_add(self.rules.hot_within_ms).saturating_add(1),
            Class::Warm => last.saturating_add(self.rules.warm_within_ms).saturating_add(1),
            Class::Cold => i64::MAX,
        }
    }

    /// Wakes the objects whose sleep ends by `now_ms`.
    pub(super) fn wake(&mut self, now_ms: i64) {
        while let Some(&Reverse((at, object))) = self.sleeping.peek() {
            if at > now_ms {
                break;
            }
            self.sleeping.pop();
            self.activate(object);
        }
    }

    /// Walks the active objects; `keep` says what to do with each.
    pub(super) fn retain_active(&mut self, mut keep: impl FnMut(&Self, u32) -> Keep) {
        let mut active = std::mem::take(&mut self.active);
        let mut sleepers = Vec::new();
        active.retain(|&object| match keep(self, object) {
            Keep::Active => true,
            keep => {
                if let Keep::Sleep(until) = keep {
                    sleepers.push(Reverse((until, object)));
                }
                self.in_active[object as usize] = false;
                false
            }
        });
        self.active = active;
        self.sleeping.extend(sleepers);
    }

    /// Predicts a read of every object classified hot at `now_ms`.
    pub(super) fn predict_hot(&self, now_ms: i64, predictions: &mut Predictions) {
        let horizon = self.rules.hot_within_ms.max(DAY_MS + HOUR_MS);
        for object in self.recent.iter(0) {
            let last = self.stats[object as usize].last_access_ms().unwrap_or(i64::MIN);
            if now_ms.saturating_sub(last) > horizon {
                break;
            }
            if self.decision(object, now_ms).class == Class::Hot {
                predictions.will_read(object);
            }
        }
    }
}
