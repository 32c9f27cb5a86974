//! What the class-rule policies (`seed003`, `rules`) share: heat's [`AccessStats`] per
//! object id, classified by heat's [`Rules`], and the list of *active* objects, the only
//! ones a pass needs to look at.
//!
//! An object becomes active at each access and stays active until a pass finds it settled:
//! classified cold and on a tier of the cold class. Without a new access a settled object's
//! class cannot change (classes only cool with time), so skipping it changes no decision;
//! it is what keeps a pass proportional to the objects in play, not to all objects.

use crate::classify::{Class, Decision, Rules};
use crate::eval::TierIndex;
use crate::placement::ClassTiers;
use crate::stats::{AccessStats, Op};
use crate::trace::TraceRequest;
use crate::tracker::{record_watching_spikes, TrackerConfig};

/// Statistics, spike flags and the active list of every object.
#[derive(Clone, Debug)]
pub(super) struct ClassWatch {
    pub(super) tracker: TrackerConfig,
    pub(super) rules: Rules,
    pub(super) classes: ClassTiers,
    stats: Vec<AccessStats>,
    spiking: Vec<bool>,
    active: Vec<u32>,
    in_active: Vec<bool>,
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
        if !self.in_active[index] {
            self.in_active[index] = true;
            self.active.push(request.object);
        }
        spike
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

    /// The active objects.
    pub(super) fn active(&self) -> &[u32] {
        &self.active
    }

    /// Keeps the active objects for which `keep` says so.
    pub(super) fn retain_active(&mut self, mut keep: impl FnMut(&Self, u32) -> bool) {
        let mut active = std::mem::take(&mut self.active);
        active.retain(|&object| {
            let kept = keep(self, object);
            if !kept {
                self.in_active[object as usize] = false;
            }
            kept
        });
        self.active = active;
    }
}
