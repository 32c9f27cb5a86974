//! The exact method: the placement problem as a mixed-integer linear program, solved by
//! `good_lp` over the pure-Rust `microlp` solver.
//!
//! One binary `x[i][t]` per object and tier it may go on (objects with a single allowed tier
//! are fixed and take no variable); `Σ_t x[i][t] = 1` per object; `Σ_i size_i x[i][t] <=
//! capacity_t - fixed bytes` per capacity-bound tier; minimise `Σ cost(i, t) x[i][t]`.
//!
//! Numerics: costs are dollars of order 1e-6 and sizes bytes of order 1e9, too far apart for
//! a simplex's tolerances, so each object's costs are shifted by its cheapest tier's (a
//! constant) and divided by the largest remaining difference, and each capacity row by the
//! room it has. The answer is re-checked in exact bytes by [`Problem::evaluate`].

use std::time::Duration;

use good_lp::{
    microlp, variable, Expression, ProblemVariables, ResolutionError, Solution as _,
    SolutionStatus, SolverModel, Variable, WithMipGap, WithTimeLimit,
};

use crate::optimise::problem::{OptimiseError, Problem, Solution};

/// Branch and bound stops once its placement is proven within this share of the optimum
/// (without it, proving the last 0.01% on a thousand objects takes microlp minutes).
pub const MIP_GAP: f64 = 1e-4;

/// Solves `problem` to within [`MIP_GAP`] of the optimum, or gives the best placement found
/// within `time_limit` (its [`Solution::lower_bound`] is then `-inf`: unknown).
pub fn solve_milp(
    problem: &Problem,
    time_limit: Option<Duration>,
) -> Result<Solution, OptimiseError> {
    problem.check()?;
    let count = problem.tiers.len();
    let mut assignment = vec![0usize; problem.objects.len()];
    let mut room: Vec<f64> = problem
        .tiers
        .iter()
        .map(|t| t.capacity.map_or(f64::INFINITY, |c| c as f64))
        .collect();
    // Per object with a choice: its (tier, variable) pairs, and its cheapest cost.
    let mut choices: Vec<Choice> = Vec::new();
    let mut vars = ProblemVariables::new();
    for (i, slot) in assignment.iter_mut().enumerate() {
        if let Some(t) = problem.forced_tier(i)? {
            *slot = t;
            room[t] -= problem.objects[i].size as f64;
            continue;
        }
        let tiers: Vec<(usize, Variable)> = (0..count)
            .filter(|&t| problem.allowed(i, t))
            .map(|t| (t, vars.add(variable().binary())))
            .collect();
        let cheapest = tiers
            .iter()
            .map(|&(t, _)| problem.cost(i, t))
            .fold(f64::INFINITY, f64::min);
        choices.push((i, tiers, cheapest));
    }
    if !choices.is_empty() {
        let chosen = solve_choices(problem, vars, &choices, &room, time_limit)?;
        for ((i, _, _), t) in choices.iter().zip(chosen.tiers) {
            assignment[*i] = t;
        }
        let cost = evaluated(problem, &assignment)?;
        let lower_bound = if chosen.optimal {
            cost * (1.0 - MIP_GAP)
        } else {
            f64::NEG_INFINITY
        };
        return Ok(Solution {
            assignment,
            cost,
            lower_bound,
        });
    }
    let cost = evaluated(problem, &assignment)?;
    Ok(Solution {
        assignment,
        cost,
        lower_bound: cost,
    })
}

/// An object with a choice: its index, its (tier, variable) pairs, its cheapest cost.
type Choice = (usize, Vec<(usize, Variable)>, f64);

struct Chosen {
    tiers: Vec<usize>,
    optimal: bool,
}

fn solve_choices(
    problem: &Problem,
    vars: ProblemVariables,
    choices: &[Choice],
    room: &[f64],
    time_limit: Option<Duration>,
) -> Result<Chosen, OptimiseError> {
    let scale = choices
        .iter()
        .flat_map(|(i, tiers, cheapest)| {
            tiers
                .iter()
                .map(move |&(t, _)| problem.cost(*i, t) - cheapest)
        })
        .fold(0.0, f64::max);
    let scale = if scale > 0.0 { scale } else { 1.0 };
    let mut objective = Expression::with_capacity(choices.len() * 2);
    for (i, tiers, cheapest) in choices {
        for &(t, x) in tiers {
            objective.add_mul((problem.cost(*i, t) - cheapest) / scale, x);
        }
    }
    let mut model = vars
        .minimise(objective)
        .using(microlp)
        .with_mip_gap(MIP_GAP as f32)
        .map_err(|err| OptimiseError::Solver(err.to_string()))?;
    if let Some(limit) = time_limit {
        model = model.with_time_limit(limit.as_secs_f64());
    }
    let mut rows: Vec<Expression> = vec![Expression::with_capacity(0); room.len()];
    for (i, tiers, _) in choices {
        let mut one = Expression::with_capacity(tiers.len());
        for &(t, x) in tiers {
            one.add_mul(1.0, x);
            if room[t].is_finite() {
                rows[t].add_mul(problem.objects[*i].size as f64 / room[t].max(1.0), x);
            }
        }
        model.add_constraint(one.eq(1.0));
    }
    for (t, row) in rows.into_iter().enumerate() {
        if room[t].is_finite() {
            let limit = if room[t] >= 1.0 { 1.0 } else { 0.0 };
            model.add_constraint(row.leq(limit));
        }
    }
    let solved = model.solve().map_err(|err| match err {
        ResolutionError::Infeasible => OptimiseError::Infeasible(format!(
            "{} objects with a choice of tier, none of the simple capacity counts is over",
            choices.len()
        )),
        other => OptimiseError::Solver(other.to_string()),
    })?;
    let optimal = matches!(
        solved.status(),
        SolutionStatus::Optimal | SolutionStatus::GapLimit
    );
    let tiers = choices
        .iter()
        .map(|(_, tiers, _)| {
            tiers
                .iter()
                .max_by(|a, b| solved.value(a.1).total_cmp(&solved.value(b.1)))
                .map_or(0, |&(t, _)| t)
        })
        .collect();
    Ok(Chosen { tiers, optimal })
}

fn evaluated(problem: &Problem, assignment: &[usize]) -> Result<f64, OptimiseError> {
    problem.evaluate(assignment).map_err(|why| {
        OptimiseError::Solver(format!("the solver's placement does not hold: {why}"))
    })
}
