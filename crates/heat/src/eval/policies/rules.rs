//! `rules`: Strata's own decisions, as `strata serve` makes them, on the replay.
//!
//! - Statistics and spike detection per access exactly as the service's tracker keeps them
//!   (heat's `record_watching_spikes`, with the configuration's half-lives and spike rule);
//!   a delete forgets the object's history as the service drops its row.
//! - A spike starting is planned at once with the planner's reactive pass
//!   ([`crate::Planner::plan_spikes`]), reason `reactive_access_spike`.
//! - Every `rules.demotion_interval` from the trace's start, the periodic pass
//!   ([`crate::Planner::plan`]): the configuration's `[rules]` thresholds through heat's
//!   [`crate::Rules`], promotions, demotions after minimum residency, relief of full tiers,
//!   `max_moves_per_pass`, never overfilling a tier.
//! - Predicted to be read in the next window: the objects classified hot at the boundary.
//!
//! The planner's API is keyed by strings; a pass gives it only the objects whose plan can
//! differ from "stay": active objects (see `classes`) not on a tier of their class and not
//! held by minimum residency (whose wait changes nothing in a pass), plus, for each tier
//! with a capacity that the pass could fill (its free space is less than what could come
//! in) or that is over capacity, all its residents as eviction candidates. Objects left out
//! are ones the planner would leave in place, so the plan's moves are the same as for all
//! objects. Keys are object ids, zero-padded so that ties break by id.

use super::classes::ClassWatch;
use crate::classify::Decision;
use crate::config::{millis, TieringConfig};
use crate::eval::{Policy, Predictions, ReplayState, TierIndex};
use crate::placement::{residency_holds, ObjectState, PlacementPlan};
use crate::trace::TraceRequest;

/// Strata's planner as a policy.
#[derive(Clone, Debug)]
pub struct RulesPolicy {
    watch: ClassWatch,
    config: TieringConfig,
    interval_ms: i64,
    next_pass_ms: i64,
    /// Per object, the last pass that put it in the planner's input.
    listed: Vec<u32>,
    passes: u32,
}

impl RulesPolicy {
    /// The rules and tiers of `config`; an error if they cannot make a planner.
    pub fn new(config: &TieringConfig) -> Result<Self, String> {
        config
            .planner(|_| 0)
            .map_err(|err| format!("the configuration cannot plan placements: {err}"))?;
        let interval_ms = millis(config.rules.demotion_interval).max(1);
        Ok(RulesPolicy {
            watch: ClassWatch::new(
                config.tracker_config(),
                config.classification_rules(),
                config.class_tiers(),
            ),
            config: config.clone(),
            interval_ms,
            next_pass_ms: interval_ms,
            listed: Vec::new(),
            passes: 0,
        })
    }

    /// The periodic pass.
    fn full_pass(&mut self, state: &mut ReplayState, now_ms: i64) {
        let mut candidates: Vec<(u32, Decision)> = Vec::new();
        self.watch.retain_active(|watch, object| {
            let Some(tier) = state.tier_of(object) else {
                return false;
            };
            let decision = watch.decision(object, now_ms);
            let wanted = watch.classes.tiers_for(decision.class);
            if wanted.contains(&tier) {
                return !watch.settled(&decision, tier);
            }
            let to = wanted.first().copied().unwrap_or(tier);
            let placed = state.placed_at_ms(object).unwrap_or(now_ms);
            if !residency_holds(tier, to, placed, state.min_residency_ms(tier), now_ms) {
                candidates.push((object, decision));
            }
            true
        });
        if !candidates.is_empty() || self.any_over_capacity(state) {
            if let Some(plan) = self.plan(state, now_ms, candidates, false) {
                self.apply(state, &plan);
            }
        }
    }

    /// The reactive pass for an object whose spike just started.
    fn spike_pass(&mut self, state: &mut ReplayState, object: u32, now_ms: i64) {
        let decision = self.watch.decision(object, now_ms);
        if let Some(plan) = self.plan(state, now_ms, vec![(object, decision)], true) {
            self.apply(state, &plan);
        }
    }

    fn any_over_capacity(&self, state: &ReplayState) -> bool {
        (0..state.tier_count())
            .any(|t| state.capacity(t).is_some_and(|cap| state.used_bytes(t) > cap))
    }

    /// Runs the planner on the candidates and the residents it may need to evict.
    fn plan(
        &mut self,
        state: &ReplayState,
        now_ms: i64,
        candidates: Vec<(u32, Decision)>,
        spikes_only: bool,
    ) -> Option<PlacementPlan> {
        self.passes = self.passes.wrapping_add(1);
        let stamp = self.passes;
        if self.listed.len() < state.objects() as usize {
            self.listed.resize(state.objects() as usize, 0);
        }
        for &(object, _) in &candidates {
            self.listed[object as usize] = stamp;
        }
        let residents = self.residents_needed(state, &candidates);
        let mut input: Vec<ObjectState> = Vec::with_capacity(candidates.len() + residents.len());
        for (object, decision) in candidates {
            input.push(self.object_state(state, object, decision));
        }
        for object in residents {
            if self.listed[object as usize] != stamp {
                self.listed[object as usize] = stamp;
                let decision = self.watch.decision(object, now_ms);
                input.push(self.object_state(state, object, decision));
            }
        }
        let config = &self.config;
        let used = |name: &str| config.tier_index(name).map_or(0, |t| state.used_bytes(t));
        // `new` checked that these tiers and classes make a planner.
        let planner = config.planner(used).ok()?;
        Some(if spikes_only {
            planner.plan_spikes(now_ms, &input)
        } else {
            planner.plan(now_ms, &input)
        })
    }

    /// Residents of every tier with a capacity that the pass could fill or that is full:
    /// bytes could arrive there from the candidates and, as evictions, from the objects
    /// listed on the tiers above it.
    fn residents_needed(&self, state: &ReplayState, candidates: &[(u32, Decision)]) -> Vec<u32> {
        let tiers = state.tier_count();
        let mut targeting = vec![0u64; tiers];
        let mut listed_on = vec![0u64; tiers];
        for &(object, decision) in candidates {
            let size = state.size(object);
            if let Some(&to) = self.watch.classes.tiers_for(decision.class).first() {
                targeting[to] = targeting[to].saturating_add(size);
            }
            if let Some(from) = state.tier_of(object) {
                listed_on[from] = listed_on[from].saturating_add(size);
            }
        }
        let mut needed = Vec::new();
        let mut above = 0u64;
        for tier in 0..tiers {
            let arriving = targeting[tier].saturating_add(above);
            let full = state.capacity(tier).is_some_and(|cap| {
                let used = state.used_bytes(tier);
                used > cap || used.saturating_add(arriving) > cap
            });
            if full {
                let residents = state.residents(tier);
                needed.extend_from_slice(residents);
                let bytes = residents
                    .iter()
                    .fold(0u64, |sum, &o| sum.saturating_add(state.size(o)));
                above = above.saturating_add(bytes);
            } else {
                above = above.saturating_add(listed_on[tier]);
            }
        }
        needed
    }

    fn object_state(&self, state: &ReplayState, object: u32, decision: Decision) -> ObjectState {
        let tier = state.tier_of(object).unwrap_or(0);
        ObjectState {
            key: format!("{object:010}"),
            size: state.size(object),
            tier: self.config.tiers[tier].name.clone(),
            placed_at_ms: state.placed_at_ms(object).unwrap_or(0),
            decision,
        }
    }

    /// Makes the plan's moves, in order (evictions before the moves that need their room).
    fn apply(&self, state: &mut ReplayState, plan: &PlacementPlan) {
        for planned in &plan.moves {
            let object = planned.key.parse::<u32>().ok();
            let to: Option<TierIndex> = self.config.tier_index(&planned.to);
            if let (Some(object), Some(to)) = (object, to) {
                state.move_object(object, to);
            }
        }
    }
}

impl Policy for RulesPolicy {
    fn name(&self) -> &str {
        "rules"
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        if self.watch.record(request) {
            self.spike_pass(state, request.object, request.time_ms);
        }
    }

    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        for &object in self.watch.active() {
            if state.tier_of(object).is_some()
                && self.watch.decision(object, now_ms).class == crate::classify::Class::Hot
            {
                predictions.will_read(object);
            }
        }
    }

    fn wakeup_ms(&self) -> Option<i64> {
        Some(self.next_pass_ms)
    }

    fn on_wakeup(&mut self, state: &mut ReplayState, now_ms: i64) {
        self.next_pass_ms = now_ms.saturating_add(self.interval_ms);
        self.full_pass(state, now_ms);
    }
}
