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
//! are ones the planner would leave in place or make wait, so the plan's moves are the same
//! as for all objects (a test checks this against the service's path). Keys are object
//! ids, zero-padded so that ties break by id.
//!
//! When no tier can fill (the common case: it holds on every pass of a configuration
//! without capacities), the planner would make every move it is given until the budget
//! (`max_moves_per_pass`) is spent, in its own order ([`crate::placement`]'s
//! `wanted_order`, as the integer keys of `Order`): the pass takes the first candidates
//! in that order and makes them itself, without building the planner's string-keyed input
//! or whole class decisions (the equivalence test's configurations without capacity check
//! this path against the planner). Demotions the
//! budget does not reach wait in a [`backlog`](super::backlog) kept in that order, so that
//! a long backlog costs a pass only the few it takes. An object moved home sleeps until its
//! class may change rather than being looked at by the next pass.

use super::backlog::{Backlog, Rank, Waiting};
use super::classes::{ClassWatch, Keep, Look};
use crate::classify::{Class, Decision, Reason};
use crate::config::{millis, TieringConfig};
use crate::eval::{
    EvalError, MoveOutcome, Policy, Predictions, PrepareContext, ReplayState, TierIndex,
};
use crate::placement::{residency_holds, ObjectState, PlacementPlan};
use crate::trace::TraceRequest;

/// A move a pass wants: the object's class as the pass looked at it, and its place in
/// the planner's order. (The planner, when it runs, gets the whole decision, classified
/// again at the same time: a pass that makes its moves itself needs only these.)
#[derive(Clone, Copy, Debug)]
struct Candidate {
    object: u32,
    look: Look,
    order: Order,
    from: TierIndex,
    to: TierIndex,
}

/// A wanted move's place in the planner's order ([`wanted_order`]) as integers: the phase
/// (spike promotion, other promotion, demotion); then, for a spike, its recent rate,
/// fastest first; for a promotion its class, baseline rate and last access, hottest
/// first; for a demotion the same, coldest first; then the object id (ids order like the
/// zero-padded keys made of them). Rates compare as `f64::total_cmp` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Order {
    phase: u8,
    keys: [i64; 3],
    object: u32,
}

impl Order {
    /// The order of moving `object` from `from` to `to` on a decision with this look and
    /// these recent and baseline rates (per hour).
    fn of(
        object: u32,
        look: &Look,
        (fast, slow): (f64, f64),
        from: TierIndex,
        to: TierIndex,
    ) -> Self {
        let class = match look.class {
            Class::Cold => 0,
            Class::Warm => 1,
            Class::Hot => 2,
        };
        let coldness = [
            class,
            total_order_key(slow),
            look.last_access_ms.unwrap_or(i64::MIN),
        ];
        let (phase, keys) = match (to < from, look.reason == Reason::ReactiveAccessSpike) {
            (true, true) => (0, [!total_order_key(fast), 0, 0]),
            (true, false) => (1, coldness.map(|key| !key)),
            (false, _) => (2, coldness),
        };
        Order {
            phase,
            keys,
            object,
        }
    }
}

/// An integer that orders as `f64::total_cmp` orders floats (the standard library's own
/// mapping: flip the magnitude bits of negatives).
fn total_order_key(value: f64) -> i64 {
    let bits = value.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// A wanted move of `object`, looked at as `look` at `now_ms`.
fn candidate(
    watch: &ClassWatch,
    object: u32,
    look: Look,
    from: TierIndex,
    to: TierIndex,
    now_ms: i64,
) -> Candidate {
    let rates = watch.rates(object, now_ms);
    Candidate {
        object,
        look,
        order: Order::of(object, &look, rates, from, to),
        from,
        to,
    }
}

/// Strata's planner as a policy.
#[derive(Clone, Debug)]
pub struct RulesPolicy {
    watch: ClassWatch,
    backlog: Backlog,
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
                interval_ms,
            ),
            backlog: Backlog::new(&config.tracker_config().decay, config.tiers.len()),
            // A replay compares placement algorithms on a trace whose keys are ids, not the
            // service's keys: `[[policy]]` prefixes mean nothing there, and every other
            // policy of the replay ignores them too, so the rules do the same.
            config: TieringConfig {
                policies: Vec::new(),
                ..config.clone()
            },
            interval_ms,
            next_pass_ms: interval_ms,
            listed: Vec::new(),
            passes: 0,
        })
    }

    /// The periodic pass.
    fn full_pass(&mut self, state: &mut ReplayState, now_ms: i64) {
        if !self.backlog.usable(now_ms) {
            // Rates may underflow: the backlog's order can no longer be trusted.
            for waiting in self.backlog.drain() {
                self.watch.activate(waiting.object);
            }
        }
        let use_backlog = self.backlog.usable(now_ms);
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut waiting: Vec<(Waiting, Look)> = Vec::new();
        self.watch.wake(now_ms);
        let backlog = &mut self.backlog;
        let prepare = |watch: &ClassWatch, object| {
            let placed = state.tier_of(object).zip(state.placed_at_ms(object));
            (placed, watch.look(object, now_ms))
        };
        self.watch
            .retain_active_prepared(prepare, |watch, object, (placed, look)| {
                // Whatever it wants now replaces what it wanted (a demotion is inserted again
                // below): an object held in place by a recent write must not keep its place.
                backlog.remove(object);
                let Some((from, placed)) = placed else {
                    return Keep::Forget;
                };
                let quiet = watch.class_holds_until(&look);
                if look.holds_in_place() {
                    // The planner keeps a recently written object where it is (`recent_write`).
                    return Keep::Sleep(quiet);
                }
                let wanted = watch.classes.tiers_for(look.class);
                let Some(&to) = wanted.first().filter(|_| !wanted.contains(&from)) else {
                    return if watch.settled(&look, from) {
                        Keep::Forget
                    } else {
                        Keep::Sleep(quiet)
                    };
                };
                let residency = state.min_residency_ms(from);
                if residency_holds(from, to, placed, residency, now_ms) {
                    return Keep::Sleep(placed.saturating_add(residency).min(quiet));
                }
                if use_backlog && to > from {
                    // Its place in the backlog needs no more than the look (see `backlog`).
                    waiting.push((Waiting { object, from, to }, look));
                    // Until its class may change (an access wakes it too).
                    return if look.class == Class::Cold {
                        Keep::Forget
                    } else {
                        Keep::Sleep(quiet)
                    };
                }
                candidates.push(candidate(watch, object, look, from, to, now_ms));
                Keep::Active
            });
        for (waiting, look) in waiting {
            let baseline = self.watch.baseline_at_last_access(waiting.object);
            let size = state.size(waiting.object);
            self.backlog.insert(waiting, &look, baseline, size);
        }
        if candidates.is_empty() && self.backlog.is_empty() && !self.any_over_capacity(state) {
            return;
        }
        let residents = self.residents_needed(state, &candidates);
        if residents.is_empty() {
            let mut chosen = self.within_budget(state, now_ms, candidates);
            // No tier can fill and none is over capacity, no chosen move is held by
            // residency or beyond the budget: the planner would make each of them, in this
            // order (configurations without capacity limits check this in the equivalence
            // test), so the pass makes them without building its string-keyed input.
            chosen.sort_unstable_by_key(|c| c.order);
            for c in chosen {
                let moved = state.move_object(c.object, c.to) == MoveOutcome::Moved;
                self.backlog.remove(c.object);
                if moved {
                    self.watch.moved(c.object, &c.look, c.to);
                } else {
                    self.watch.activate(c.object);
                }
            }
            return;
        }
        candidates.extend(self.take_backlog(state, now_ms, usize::MAX));
        if let Some(plan) = self.plan(state, now_ms, candidates, residents, false) {
            self.apply(state, &plan);
        }
    }

    /// The candidates a pass's budget reaches when no tier can fill: in the planner's order,
    /// promotions, then demotions (the backlog, then any others).
    fn within_budget(
        &mut self,
        state: &ReplayState,
        now_ms: i64,
        mut candidates: Vec<Candidate>,
    ) -> Vec<Candidate> {
        let budget = self.config.rules.max_moves_per_pass.max(1);
        if candidates.len() > budget {
            candidates.select_nth_unstable_by_key(budget - 1, |c| c.order);
            candidates.truncate(budget);
        }
        candidates.sort_unstable_by_key(|c| c.order);
        let promotions = candidates.iter().filter(|c| c.to < c.from).count();
        let mut chosen: Vec<Candidate> = candidates.drain(..promotions).collect();
        let room = budget.saturating_sub(chosen.len());
        chosen.extend(self.take_backlog(state, now_ms, room));
        let room = budget.saturating_sub(chosen.len());
        chosen.extend(candidates.into_iter().take(room));
        chosen
    }

    /// The first `count` backlog demotions still wanted in the planner's order, classified
    /// at `now_ms`; entries whose object moved or went are dropped (and looked at again if
    /// it exists).
    fn take_backlog(&mut self, state: &ReplayState, now_ms: i64, count: usize) -> Vec<Candidate> {
        if count == 0 {
            // The walk would stop at the first entry.
            return Vec::new();
        }
        let mut taken = Vec::new();
        let mut stale = Vec::new();
        let mut last_rank: Option<Rank> = None;
        let mut past_count = false;
        let watch = &self.watch;
        self.backlog.walk(|waiting, rank| {
            if taken.len() >= count {
                // Entries the planner might put before the last one taken come too.
                if !last_rank.is_some_and(|last: Rank| last.may_tie(&rank)) {
                    return false;
                }
                past_count = true;
            }
            let object = waiting.object;
            let residency = state.min_residency_ms(waiting.from);
            let still = state.tier_of(object) == Some(waiting.from)
                && state.placed_at_ms(object).is_some_and(|placed| {
                    !residency_holds(waiting.from, waiting.to, placed, residency, now_ms)
                });
            if still {
                let look = watch.look(object, now_ms);
                taken.push(candidate(
                    watch,
                    object,
                    look,
                    waiting.from,
                    waiting.to,
                    now_ms,
                ));
                last_rank = Some(rank);
            } else {
                stale.push(object);
            }
            true
        });
        for object in stale {
            self.backlog.remove(object);
            self.watch.activate(object);
        }
        if past_count {
            taken.sort_unstable_by_key(|c| c.order);
            taken.truncate(count);
        }
        taken
    }

    /// The reactive pass for an object whose spike just started.
    fn spike_pass(&mut self, state: &mut ReplayState, object: u32, now_ms: i64) {
        let decision = self.watch.decision(object, now_ms);
        let (Some(from), Some(&to)) = (
            state.tier_of(object),
            self.watch.classes.tiers_for(decision.class).first(),
        ) else {
            return;
        };
        let look = Look::from(&decision);
        let spiking = vec![candidate(&self.watch, object, look, from, to, now_ms)];
        let residents = self.residents_needed(state, &spiking);
        if let Some(plan) = self.plan(state, now_ms, spiking, residents, true) {
            self.apply(state, &plan);
        }
    }

    fn any_over_capacity(&self, state: &ReplayState) -> bool {
        (0..state.tier_count()).any(|t| {
            state
                .capacity(t)
                .is_some_and(|cap| state.used_bytes(t) > cap)
        })
    }

    /// Runs the planner on the chosen candidates and the residents it may need to evict.
    fn plan(
        &mut self,
        state: &ReplayState,
        now_ms: i64,
        candidates: Vec<Candidate>,
        residents: Vec<u32>,
        spikes_only: bool,
    ) -> Option<PlacementPlan> {
        self.passes = self.passes.wrapping_add(1);
        let stamp = self.passes;
        if self.listed.len() < state.objects() as usize {
            self.listed.resize(state.objects() as usize, 0);
        }
        let mut input: Vec<ObjectState> = Vec::with_capacity(candidates.len() + residents.len());
        for candidate in candidates {
            self.listed[candidate.object as usize] = stamp;
            let decision = self.watch.decision(candidate.object, now_ms);
            input.push(self.object_state(state, candidate.object, decision));
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
        let planner = config.planner(used).ok()?.without_explanations();
        Some(if spikes_only {
            planner.plan_spikes(now_ms, &input)
        } else {
            planner.plan(now_ms, &input)
        })
    }

    /// Residents of every tier with a capacity that the pass could fill or that is full:
    /// bytes could arrive there from the candidates and the backlog and, as evictions, from
    /// the objects listed on the tiers above it. Empty when no tier can fill: then no move
    /// waits for room and none evicts.
    fn residents_needed(&self, state: &mut ReplayState, candidates: &[Candidate]) -> Vec<u32> {
        let tiers = state.tier_count();
        let mut targeting: Vec<u64> = (0..tiers).map(|t| self.backlog.bytes_to(t)).collect();
        let mut listed_on: Vec<u64> = (0..tiers).map(|t| self.backlog.bytes_from(t)).collect();
        for candidate in candidates {
            let size = state.size(candidate.object);
            targeting[candidate.to] = targeting[candidate.to].saturating_add(size);
            listed_on[candidate.from] = listed_on[candidate.from].saturating_add(size);
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
                let start = needed.len();
                needed.extend_from_slice(state.residents(tier));
                let bytes = needed[start..]
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
    fn apply(&mut self, state: &mut ReplayState, plan: &PlacementPlan) {
        for planned in &plan.moves {
            let object = planned.key.parse::<u32>().ok();
            let to: Option<TierIndex> = self.config.tier_index(&planned.to);
            if let (Some(object), Some(to)) = (object, to) {
                self.make_move(state, object, to);
            }
        }
    }

    /// Moves an object the planner moves.
    fn make_move(&mut self, state: &mut ReplayState, object: u32, to: TierIndex) {
        state.move_object(object, to);
        self.backlog.remove(object);
        // Looked at again by the next pass (an evicted object may want to move on).
        self.watch.activate(object);
    }
}

impl Policy for RulesPolicy {
    fn name(&self) -> &str {
        "rules"
    }

    fn prepare(&mut self, context: &PrepareContext<'_, '_>) -> Result<(), EvalError> {
        let objects = context.summary.objects as usize;
        self.watch.reserve(objects);
        self.backlog.reserve(objects);
        Ok(())
    }

    fn prefetch(&self, object: u32) {
        self.watch.prefetch(object);
        self.backlog.prefetch(object);
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        self.backlog.remove(request.object);
        if self.watch.record(request) {
            self.spike_pass(state, request.object, request.time_ms);
        }
    }

    fn on_window(&mut self, _state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        self.watch.predict_hot(now_ms, predictions);
    }

    fn wakeup_ms(&self) -> Option<i64> {
        Some(self.next_pass_ms)
    }

    fn on_wakeup(&mut self, state: &mut ReplayState, now_ms: i64) {
        self.next_pass_ms = now_ms.saturating_add(self.interval_ms);
        self.full_pass(state, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{DecisionInputs, Rules};
    use crate::placement::{wanted_order, Wanted};

    fn decision(class: Class, reason: Reason, fast: f64, slow: f64, last: Option<i64>) -> Decision {
        Decision {
            class,
            reason,
            inputs: DecisionInputs {
                now_ms: 10,
                count_1h: 0,
                count_24h: 0,
                count_7d: 0,
                fast_rate_per_hour: fast,
                slow_rate_per_hour: slow,
                last_access_ms: last,
                last_access_age_ms: None,
                last_write_age_ms: None,
                rules: Rules::default(),
            },
        }
    }

    #[test]
    fn moves_are_ordered_as_the_planner_orders_them() {
        let rates = [
            0.0,
            -0.0,
            1e-300,
            0.5,
            0.5000000000000001,
            2.0,
            f64::INFINITY,
        ];
        let mut wanted = Vec::new();
        for (class, reason) in [
            (Class::Hot, Reason::ReactiveAccessSpike),
            (Class::Hot, Reason::RuleHotRecent),
            (Class::Warm, Reason::RuleWarmRate),
            (Class::Cold, Reason::RuleCold),
        ] {
            for (i, &fast) in rates.iter().enumerate() {
                let slow = rates[(i * 3) % rates.len()];
                for last in [None, Some(-5), Some(7)] {
                    for (from, to) in [(1, 0), (0, 2), (2, 1)] {
                        let object = wanted.len() as u32 % 5;
                        wanted.push((decision(class, reason, fast, slow, last), from, to, object));
                    }
                }
            }
        }
        fn planner((decision, from, to, key): &(Decision, usize, usize, u32)) -> Wanted<'_, u32> {
            Wanted {
                decision,
                from: *from,
                to: *to,
                key: *key,
            }
        }
        for a in &wanted {
            for b in &wanted {
                let order = |(decision, from, to, key): &(Decision, usize, usize, u32)| {
                    let rates = (
                        decision.inputs.fast_rate_per_hour,
                        decision.inputs.slow_rate_per_hour,
                    );
                    Order::of(*key, &Look::from(decision), rates, *from, *to)
                };
                assert_eq!(
                    order(a).cmp(&order(b)),
                    wanted_order(&planner(a), &planner(b)),
                    "{a:?} against {b:?}"
                );
            }
        }
    }
}
