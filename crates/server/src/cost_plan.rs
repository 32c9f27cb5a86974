//! The optimiser's half of a full planning pass, and what a plan is projected to cost.
//!
//! After the rules have planned, the objects they leave in place are placed by cost
//! (`strata_heat::optimise`): each may go on the tiers its class accepts (so the next rules
//! pass never undoes a cost move), under the tiers' capacity left after the rules' moves,
//! minimum residency respected, over a month of hour-long windows. Where the cost-optimal
//! tier differs, the move is proposed with reason `cost_optimisation`, largest saving first,
//! within the pass's move budget, and only where the target has room now or will once
//! cost moves out of it (listed in [`Move::after`]) are done: no tier is ever overfilled.
//! Batches of up to [`MILP_MAX_OBJECTS`] objects are solved exactly (MILP); larger ones, or
//! a MILP that does not finish in [`MILP_TIME_LIMIT`], by Lagrangian prices.
//!
//! The projection prices every object of the pass at its expected reads
//! ([`expected_reads_per_window`], the one function a forecast would replace): the monthly
//! cost before the plan and after it, each move's saving per month and its one-off cost.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use strata_heat::cost::CostModel;
use strata_heat::optimise::object::{move_cost, window_cost};
use strata_heat::optimise::{
    solve_lagrangian, solve_milp, LagrangeOptions, ObjectSpec, OptimiseError, Problem, Solution,
    TierSpec,
};
use strata_heat::placement::MoveInputs;
use strata_heat::units::HOUR_MS;
use strata_heat::{
    AccessSummary, Move, ObjectState, PlacementPlan, Planner, Reason, TieringConfig,
};

/// The optimiser's window: an hour, the unit of the access statistics' rates.
pub const WINDOW_MS: i64 = HOUR_MS;
/// Windows in the month the plan is judged over and its costs are projected for.
pub const MONTH_WINDOWS: f64 = 720.0;
/// Objects at most for which the exact method (MILP) is tried.
pub const MILP_MAX_OBJECTS: usize = 500;
/// Time the MILP may take before the Lagrangian method answers instead.
pub const MILP_TIME_LIMIT: Duration = Duration::from_secs(2);

/// Expected reads of one object per window of `window_ms`: its baseline (slow decayed) read
/// rate. The one place a forecast of the object's reads would plug in.
pub fn expected_reads_per_window(summary: &AccessSummary, window_ms: i64) -> f64 {
    let rate = summary.slow_rate_per_hour;
    if rate.is_finite() && rate > 0.0 {
        rate * window_ms as f64 / HOUR_MS as f64
    } else {
        0.0
    }
}

/// What a plan is projected to cost, and each move's saving.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CostProjection {
    /// Dollars a month for the pass's objects where they are: storage plus their expected
    /// reads (retrieval, requests, egress, latency price and misses).
    pub monthly_cost_before: f64,
    /// The same once every move of the plan is done.
    pub monthly_cost_after: f64,
    /// One-off dollars of the plan's moves.
    pub moves_cost: f64,
    /// How the cost moves were chosen: `milp`, `lagrangian`, or `none` (nothing to choose).
    pub method: String,
    /// The optimiser's own bound: its placement is at most this share above the optimum.
    pub gap: f64,
    /// One entry per move of the plan, in its order.
    pub moves: Vec<MoveSaving>,
    /// Why the optimiser proposed nothing, when it failed (the rules' moves still stand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimiser_error: Option<String>,
}

/// One move's saving.
#[derive(Clone, Debug, Serialize)]
pub struct MoveSaving {
    /// The object.
    pub key: String,
    /// Dollars a month saved on the target against the source (negative: it costs more,
    /// as a promotion for speed may).
    pub saving_per_month: f64,
    /// Dollars of the move, once.
    pub move_cost: f64,
}

/// The pass's objects, their expected reads and tiers, as the optimiser sees them.
pub struct PassObjects<'a> {
    /// The objects planned.
    pub states: &'a [ObjectState],
    /// Expected reads per [`WINDOW_MS`] of each.
    pub reads: &'a [f64],
}

/// Adds the optimiser's moves to `plan` and projects its cost.
pub async fn optimise(
    config: &TieringConfig,
    planner: &Planner,
    now_ms: i64,
    objects: PassObjects<'_>,
    plan: &mut PlacementPlan,
) -> CostProjection {
    let model = CostModel::new(config);
    let (problem, members) = build_problem(config, planner, now_ms, &objects, plan, &model);
    let mut projection = CostProjection {
        method: "none".into(),
        ..CostProjection::default()
    };
    if problem.objects.is_empty() {
        project(&model, config, &objects, plan, &mut projection);
        return projection;
    }
    let solved = tokio::task::spawn_blocking(move || solve(&problem).map(|s| (s, problem)))
        .await
        .unwrap_or_else(|err| Err(OptimiseError::Solver(format!("the solver stopped: {err}"))));
    match solved {
        Ok(((solution, method), problem)) => {
            projection.method = method.into();
            projection.gap = solution.gap();
            propose(planner, &problem, &solution, &members, &objects, plan);
        }
        Err(err) => projection.optimiser_error = Some(describe(&err, &members, &objects)),
    }
    project(&model, config, &objects, plan, &mut projection);
    projection
}

fn solve(problem: &Problem) -> Result<(Solution, &'static str), OptimiseError> {
    if problem.objects.len() <= MILP_MAX_OBJECTS {
        if let Ok(exact) = solve_milp(problem, Some(MILP_TIME_LIMIT)) {
            if exact.lower_bound.is_finite() {
                return Ok((exact, "milp"));
            }
        }
    }
    solve_lagrangian(problem, &LagrangeOptions::default()).map(|s| (s, "lagrangian"))
}

/// An optimiser error with the object's key instead of its index.
fn describe(err: &OptimiseError, members: &[usize], objects: &PassObjects) -> String {
    match err {
        OptimiseError::NoTier { object, .. } => {
            let key = members
                .get(*object)
                .and_then(|&s| objects.states.get(s))
                .map_or("?", |state| state.key.as_str());
            format!("{err} (object {object} is {key:?})")
        }
        other => other.to_string(),
    }
}

/// The objects the rules leave in place, on the tiers their class accepts, under the room
/// the rules' moves leave; with the index in `states` of each.
fn build_problem(
    config: &TieringConfig,
    planner: &Planner,
    now_ms: i64,
    objects: &PassObjects,
    plan: &PlacementPlan,
    model: &CostModel,
) -> (Problem, Vec<usize>) {
    let planned: HashSet<&str> = plan
        .moves
        .iter()
        .map(|m| m.key.as_str())
        .chain(plan.waits.iter().map(|w| w.key.as_str()))
        .collect();
    let classes = planner.classes();
    let mut members = Vec::new();
    let mut specs = Vec::new();
    let mut on_tier = vec![0u64; config.tiers.len()];
    for (index, state) in objects.states.iter().enumerate() {
        let Some(tier) = config.tier_index(&state.tier) else {
            continue;
        };
        if planned.contains(state.key.as_str()) {
            continue;
        }
        // The tiers the rules accept for its class under its policy, so that neither undoes
        // the other's moves; the policy's own mask binds the solvers too (its current tier
        // included).
        let policy = planner.policies().matching(&state.key);
        let allowed = if state.decision.holds_in_place() {
            0
        } else {
            planner
                .policies()
                .accepted_tiers(policy, classes.tiers_for(state.decision.class))
                .iter()
                .filter(|&&t| t < 64)
                .fold(0u64, |mask, &t| mask | 1 << t)
        };
        let reads = objects.reads.get(index).copied().unwrap_or(0.0);
        let mut spec = ObjectSpec::new(state.size, tier, state.placed_at_ms, reads);
        spec.allowed = allowed;
        spec.policy_allowed = planner.policies().mask(policy);
        on_tier[tier] += state.size;
        members.push(index);
        specs.push(spec);
    }
    let tiers = planner
        .tiers()
        .iter()
        .zip(&plan.tiers)
        .zip(&on_tier)
        .map(|((tier, projection), &mine)| TierSpec {
            name: tier.name.clone(),
            // What the rules' plan leaves, plus what these objects already take: never less
            // than that (the rules relieve over-full tiers, not the optimiser).
            capacity: tier.capacity.map(|c| {
                let committed = projection.used_bytes + projection.incoming_bytes;
                (c.saturating_sub(committed) + mine).max(mine)
            }),
            min_residency_ms: tier.min_residency_ms,
        })
        .collect();
    let problem = Problem {
        model: model.clone(),
        tiers,
        objects: specs,
        now_ms,
        window_ms: WINDOW_MS,
        horizon_windows: MONTH_WINDOWS,
    };
    (problem, members)
}

/// Dollars a month of object `size` bytes read `reads` times a window on tier `t`.
fn monthly(model: &CostModel, t: usize, size: u64, reads: f64) -> f64 {
    model.tiers.get(t).map_or(0.0, |p| {
        MONTH_WINDOWS * window_cost(model, p, size, WINDOW_MS, reads)
    })
}

/// Turns the solution's changes into moves, largest saving first, within the budget and
/// the room the tiers have (now, or once cost moves out of the target are done).
fn propose(
    planner: &Planner,
    problem: &Problem,
    solution: &Solution,
    members: &[usize],
    objects: &PassObjects,
    plan: &mut PlacementPlan,
) {
    let model = &problem.model;
    let mut changes: Vec<(f64, usize)> = (0..members.len())
        .filter(|&i| {
            solution
                .assignment
                .get(i)
                .is_some_and(|&t| t != problem.objects[i].tier)
        })
        .map(|i| {
            let o = &problem.objects[i];
            let to = solution.assignment[i];
            let saving = monthly(model, o.tier, o.size, o.reads_per_window)
                - monthly(model, to, o.size, o.reads_per_window);
            (saving, i)
        })
        .collect();
    changes.sort_by(|a, b| b.0.total_cmp(&a.0));
    let budget = planner.max_moves().saturating_sub(plan.moves.len());
    let mut free: Vec<Option<u64>> = plan
        .tiers
        .iter()
        .map(|t| {
            t.capacity
                .map(|c| c.saturating_sub(t.used_bytes + t.incoming_bytes))
        })
        .collect();
    // Cost moves out of each tier: (index in plan.moves, bytes), for `after`.
    let mut leaving: Vec<Vec<(usize, u64)>> = vec![Vec::new(); free.len()];
    let mut credited = vec![false; free.len()];
    let mut deferred = Vec::new();
    let mut added = 0;
    // First the moves whose target has room now; then those that fit once the first
    // round's moves out of their target are done (each lists them in `after`).
    for round in 0..2 {
        let list = if round == 0 { &changes } else { &deferred };
        let mut next = Vec::new();
        for &(saving, i) in list {
            if added >= budget {
                return;
            }
            let (size, from, to) = (
                problem.objects[i].size,
                problem.objects[i].tier,
                solution.assignment[i],
            );
            let Some(Some(room)) = free.get(to).copied() else {
                // Unlimited.
                push_move(
                    problem,
                    &objects.states[members[i]],
                    i,
                    to,
                    saving,
                    Vec::new(),
                    plan,
                );
                name_policy(planner, plan);
                added += 1;
                continue;
            };
            let freed: u64 = if round == 1 && !credited[to] {
                leaving[to].iter().map(|&(_, b)| b).sum()
            } else {
                0
            };
            if room + freed < size {
                if round == 0 {
                    next.push((saving, i));
                }
                continue;
            }
            credited[to] |= round == 1;
            free[to] = Some(room + freed - size);
            let after = if credited[to] {
                leaving[to].iter().map(|&(m, _)| m).collect()
            } else {
                Vec::new()
            };
            if round == 0 {
                leaving[from].push((plan.moves.len(), size));
            }
            push_move(
                problem,
                &objects.states[members[i]],
                i,
                to,
                saving,
                after,
                plan,
            );
            name_policy(planner, plan);
            added += 1;
        }
        if round == 0 {
            deferred = next;
        }
    }
}

/// Names the `[[policy]]` of the move just pushed, if its key has one: the optimiser chose
/// within it.
fn name_policy(planner: &Planner, plan: &mut PlacementPlan) {
    let Some(last) = plan.moves.last_mut() else {
        return;
    };
    if let Some(policy) = planner.policies().policy_for(&last.key) {
        last.inputs.policy = Some(policy.config().name.clone());
        last.explanation = format!("{}; within {}", last.explanation, policy.label());
    }
}

fn push_move(
    problem: &Problem,
    state: &ObjectState,
    i: usize,
    to: usize,
    saving: f64,
    after: Vec<usize>,
    plan: &mut PlacementPlan,
) {
    let o = &problem.objects[i];
    let model = &problem.model;
    let (from_name, to_name) = (&problem.tiers[o.tier].name, &problem.tiers[to].name);
    let once = move_cost(&model.tiers[o.tier], &model.tiers[to], o.size);
    let explanation = format!(
        "saves {}/month: {} on {from_name} → {} on {to_name} at {:.1} expected reads a \
         month; the move costs {} once",
        dollars(saving),
        dollars(monthly(model, o.tier, o.size, o.reads_per_window)),
        dollars(monthly(model, to, o.size, o.reads_per_window)),
        o.reads_per_window * MONTH_WINDOWS,
        dollars(once),
    );
    if let Some(target) = plan.tiers.get_mut(to) {
        target.incoming_bytes += o.size;
    }
    if let Some(source) = plan.tiers.get_mut(o.tier) {
        source.outgoing_bytes += o.size;
    }
    let target = plan.tiers.get(to);
    let inputs = MoveInputs {
        decision: state.decision,
        placed_at_ms: state.placed_at_ms,
        target_used_bytes: target.map_or(0, |t| t.used_bytes),
        target_capacity: target.and_then(|t| t.capacity),
        made_room_for: None,
        policy: None,
    };
    plan.moves.push(Move {
        key: state.key.clone(),
        size: state.size,
        from: from_name.clone(),
        to: to_name.clone(),
        reason: Reason::CostOptimisation,
        explanation,
        after,
        inputs,
    });
    plan.in_place = plan.in_place.saturating_sub(1);
}

/// Dollars for a sentence: cents from a cent up, three significant digits below
/// (`$1.25`, `-$0.000629`).
pub fn dollars(amount: f64) -> String {
    let sign = if amount < 0.0 { "-" } else { "" };
    let abs = amount.abs();
    if !abs.is_finite() || abs >= 0.01 || abs == 0.0 {
        return format!("{sign}${abs:.2}");
    }
    let digits = (2 - abs.log10().floor() as i64).clamp(2, 12) as usize;
    format!("{sign}${abs:.digits$}")
}

/// Prices the pass's objects before and after the plan's moves.
fn project(
    model: &CostModel,
    config: &TieringConfig,
    objects: &PassObjects,
    plan: &PlacementPlan,
    projection: &mut CostProjection,
) {
    let index: std::collections::HashMap<&str, usize> = objects
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key.as_str(), i))
        .collect();
    let reads = |key: &str| {
        index
            .get(key)
            .and_then(|&i| objects.reads.get(i))
            .copied()
            .unwrap_or(0.0)
    };
    let mut before = 0.0;
    for state in objects.states {
        if let Some(t) = config.tier_index(&state.tier) {
            before += monthly(model, t, state.size, reads(&state.key));
        }
    }
    let mut after = before;
    projection.moves.clear();
    projection.moves_cost = 0.0;
    for planned in &plan.moves {
        let tiers = config
            .tier_index(&planned.from)
            .zip(config.tier_index(&planned.to));
        let (saving, once) = tiers.map_or((0.0, 0.0), |(from, to)| {
            let r = reads(&planned.key);
            (
                monthly(model, from, planned.size, r) - monthly(model, to, planned.size, r),
                move_cost(&model.tiers[from], &model.tiers[to], planned.size),
            )
        });
        after -= saving;
        projection.moves_cost += once;
        projection.moves.push(MoveSaving {
            key: planned.key.clone(),
            saving_per_month: saving,
            move_cost: once,
        });
    }
    projection.monthly_cost_before = before;
    projection.monthly_cost_after = after;
}
