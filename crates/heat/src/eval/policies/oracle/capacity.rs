//! Capacity: the per-object optimum of every object, and, when tiers with a capacity
//! overfill, Lagrangian prices on those tiers and a repair that makes the schedule fit.
//!
//! The constraint kept is that the objects present on a capacity-limited tier at the start
//! of each window (after the oracle's moves) fit in it. Relaxing it with a price `λ[t][w]`
//! per byte on tier `t` at window `w` splits the problem into one DP per object; the
//! relaxation's value `Σ DP_λ − Σ λ·capacity` is a lower bound of the constrained optimum,
//! raised by subgradient steps (`λ += step · (usage − capacity)`, projected on `λ ≥ 0`,
//! with Polyak's step towards the best feasible cost, halved when the bound stalls) for at
//! most [`MAX_ITERATIONS`] solves. A schedule is made feasible by a repair: at the first
//! overfilled (tier, window), objects there are forbidden that cell, the ones whose new
//! optimum loses least per byte first, until it fits; repeated until no cell overfills.
//! The cheapest feasible schedule found is kept; its gap to the best bound is reported.

use std::collections::HashMap;

use super::dp::{Model, Move, Penalty, Solution, Solver, Stay};
use super::windows::Activity;

/// Subgradient solves at most (each is one DP over every object).
pub(super) const MAX_ITERATIONS: u32 = 40;

/// Stop when the feasible cost is within this share of the lower bound.
const CLOSE_ENOUGH: f64 = 1e-6;

/// A gap smaller than this is rounding (costs summed in another order) and reported as 0.
const ROUNDING: f64 = 1e-9;

/// The oracle's schedule and how good it is.
#[derive(Clone, Debug, Default)]
pub(super) struct Plan {
    /// Per object, its moves in time order.
    pub(super) moves: Vec<Vec<Move>>,
    /// The schedule's cost at the replay's prices.
    pub(super) cost: f64,
    /// (cost − best lower bound) / best lower bound; 0 when no capacity binds.
    pub(super) gap: f64,
}

/// Every object's schedule at some prices.
#[derive(Clone, Debug, Default)]
struct Pass {
    moves: Vec<Vec<Move>>,
    stays: Vec<Vec<Stay>>,
    solutions: Vec<Solution>,
    /// Σ of the objects' values at the pass's prices.
    value: f64,
    /// Σ of the objects' costs at the replay's prices.
    cost: f64,
}

/// What the solves share.
struct Planner<'a> {
    model: &'a Model,
    activity: &'a Activity,
    /// Per tier, its capacity in bytes (`None`: unlimited).
    capacities: &'a [Option<u64>],
    /// Per tier, per window: λ (empty for tiers without a capacity).
    prices: Vec<Vec<f64>>,
    /// Cells each object may not use (repair).
    forbidden: HashMap<u32, Vec<(u32, u8)>>,
    solver: Solver,
}

/// The oracle's plan: exact per object; with Lagrangian prices and a repair when a capacity
/// binds.
pub(super) fn plan(model: &Model, activity: &Activity, capacities: &[Option<u64>]) -> Plan {
    let capped = capacities.iter().any(Option::is_some);
    let mut planner = Planner {
        model,
        activity,
        capacities,
        prices: Vec::new(),
        forbidden: HashMap::new(),
        solver: Solver::default(),
    };
    let first = planner.solve_all(capped);
    if !capped
        || planner
            .first_overfilled(&planner.usage(&first), &[])
            .is_none()
    {
        return Plan {
            moves: first.moves,
            cost: first.cost,
            gap: 0.0,
        };
    }
    planner.relax(first)
}

impl Planner<'_> {
    fn windows(&self) -> usize {
        self.model.last_window() as usize + 1
    }

    /// Every object's optimum at the current prices and forbidden cells.
    fn solve_all(&mut self, keep_stays: bool) -> Pass {
        let objects = self.activity.objects();
        let mut pass = Pass {
            moves: Vec::with_capacity(objects as usize),
            stays: Vec::new(),
            solutions: Vec::with_capacity(objects as usize),
            ..Pass::default()
        };
        for object in 0..objects {
            let (moves, stays, solution) = self.solve_one(object);
            pass.value += solution.value;
            pass.cost += solution.cost;
            pass.moves.push(moves);
            pass.solutions.push(solution);
            if keep_stays {
                pass.stays.push(stays);
            }
        }
        pass
    }

    fn solve_one(&mut self, object: u32) -> (Vec<Move>, Vec<Stay>, Solution) {
        let (mut moves, mut stays) = (Vec::new(), Vec::new());
        let forbidden = self.forbidden.get(&object).map_or(&[][..], Vec::as_slice);
        let penalty = Penalty {
            per_byte: &self.prices,
            forbidden,
        };
        let solution = self.solver.solve(
            self.model,
            self.activity.of(object),
            self.activity.size(object),
            penalty,
            &mut moves,
            &mut stays,
        );
        (moves, stays, solution)
    }

    /// Bytes on each tier at each window's start (tiers without a capacity: empty).
    fn usage(&self, pass: &Pass) -> Vec<Vec<i128>> {
        let windows = self.windows();
        let mut diff: Vec<Vec<i128>> = self
            .capacities
            .iter()
            .map(|c| {
                if c.is_some() {
                    vec![0; windows + 1]
                } else {
                    Vec::new()
                }
            })
            .collect();
        for (object, stays) in pass.stays.iter().enumerate() {
            let size = i128::from(self.activity.size(object as u32));
            for stay in stays {
                add_stay(&mut diff, stay, size);
            }
        }
        for tier in &mut diff {
            let mut running = 0;
            for cell in tier.iter_mut() {
                running += *cell;
                *cell = running;
            }
        }
        diff
    }

    /// Subgradient steps on the prices from the unpriced optimum `first`; the cheapest
    /// feasible schedule found, and its gap to the best lower bound.
    fn relax(&mut self, first: Pass) -> Plan {
        let windows = self.windows();
        self.prices = self
            .capacities
            .iter()
            .map(|c| {
                if c.is_some() {
                    vec![0.0; windows]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let mut bound = first.value;
        let mut best = self.repair(first.clone());
        let mut current = first;
        let (mut theta, mut stalled) = (2.0, 0);
        for _ in 0..MAX_ITERATIONS {
            if best.cost - bound <= CLOSE_ENOUGH * bound.abs() {
                break;
            }
            let usage = self.usage(&current);
            if !self.step(&usage, theta * (best.cost - relaxed(&current, self))) {
                break;
            }
            current = self.solve_all(true);
            let value = relaxed(&current, self);
            if value > bound {
                bound = value;
                stalled = 0;
            } else {
                stalled += 1;
                if stalled >= 3 {
                    theta /= 2.0;
                    stalled = 0;
                }
            }
            if self.first_overfilled(&self.usage(&current), &[]).is_none()
                && current.cost < best.cost
            {
                best = current.clone();
            }
        }
        let repaired = self.repair(current);
        if repaired.cost < best.cost {
            best = repaired;
        }
        let gap = if bound > 0.0 {
            (best.cost - bound) / bound
        } else {
            0.0
        };
        Plan {
            // Below ROUNDING the two sums differ by their order of addition only.
            gap: if gap < ROUNDING { 0.0 } else { gap },
            cost: best.cost,
            moves: best.moves,
        }
    }

    /// One projected subgradient step of `scale / ‖g‖²`; false when the subgradient is 0.
    fn step(&mut self, usage: &[Vec<i128>], scale: f64) -> bool {
        let excess = |t: usize, w: usize, cap: u64| (usage[t][w] - i128::from(cap)) as f64;
        let mut norm = 0.0;
        for (t, cap) in self.capacities.iter().enumerate() {
            let Some(cap) = *cap else { continue };
            for w in 0..self.prices[t].len() {
                let g = excess(t, w, cap);
                if g > 0.0 || self.prices[t][w] > 0.0 {
                    norm += g * g;
                }
            }
        }
        if norm == 0.0 || scale <= 0.0 {
            return false;
        }
        let step = scale / norm;
        for (t, cap) in self.capacities.iter().enumerate() {
            let Some(cap) = *cap else { continue };
            for w in 0..self.prices[t].len() {
                let price = &mut self.prices[t][w];
                *price = (*price + step * excess(t, w, cap)).max(0.0);
            }
        }
        true
    }

    /// Makes a pass fit: at the first overfilled cell, forbids it to the objects there
    /// that lose least per byte by leaving it, until it fits; again until none overfills
    /// (a cell no object can leave is left as it is).
    fn repair(&mut self, mut pass: Pass) -> Pass {
        let saved = self.forbidden.clone();
        let mut usage = self.usage(&pass);
        let mut given_up: Vec<(usize, usize)> = Vec::new();
        while let Some((tier, window)) = self.first_overfilled(&usage, &given_up) {
            let cell = (window as u32, tier as u8);
            let candidates = self.leaving(&pass, cell);
            if candidates.is_empty() {
                given_up.push((tier, window));
            }
            let cap = i128::from(self.capacities[tier].unwrap_or(u64::MAX));
            for candidate in candidates {
                if usage[tier][window] <= cap {
                    break;
                }
                self.evict(&mut pass, &mut usage, candidate, cell);
            }
        }
        self.forbidden = saved;
        pass
    }

    /// The objects on a cell, each with its best schedule avoiding it, least loss per byte
    /// first (objects that cannot avoid it are left out).
    fn leaving(&mut self, pass: &Pass, cell: (u32, u8)) -> Vec<Candidate> {
        let mut candidates = Vec::new();
        for (object, stays) in pass.stays.iter().enumerate() {
            let object = object as u32;
            if !stays.iter().any(|s| covers(s, cell)) {
                continue;
            }
            self.forbidden.entry(object).or_default().push(cell);
            let (moves, stays, solution) = self.solve_one(object);
            if let Some(cells) = self.forbidden.get_mut(&object) {
                cells.pop();
            }
            if solution.cost.is_finite() {
                let size = self.activity.size(object).max(1) as f64;
                let loss = (solution.cost - pass.solutions[object as usize].cost) / size;
                candidates.push(Candidate {
                    loss,
                    object,
                    moves,
                    stays,
                    solution,
                });
            }
        }
        candidates.sort_by(|a, b| a.loss.total_cmp(&b.loss));
        candidates
    }

    /// Gives a candidate its schedule avoiding `cell`, for the rest of the repair.
    fn evict(
        &mut self,
        pass: &mut Pass,
        usage: &mut [Vec<i128>],
        candidate: Candidate,
        cell: (u32, u8),
    ) {
        let o = candidate.object as usize;
        let size = i128::from(self.activity.size(candidate.object));
        for stay in &pass.stays[o] {
            add_stay_cells(usage, stay, -size);
        }
        for stay in &candidate.stays {
            add_stay_cells(usage, stay, size);
        }
        pass.cost += candidate.solution.cost - pass.solutions[o].cost;
        pass.value += candidate.solution.value - pass.solutions[o].value;
        pass.moves[o] = candidate.moves;
        pass.stays[o] = candidate.stays;
        pass.solutions[o] = candidate.solution;
        self.forbidden
            .entry(candidate.object)
            .or_default()
            .push(cell);
    }

    /// The first overfilled (tier, window) by window, but those in `skip`.
    fn first_overfilled(
        &self,
        usage: &[Vec<i128>],
        skip: &[(usize, usize)],
    ) -> Option<(usize, usize)> {
        (0..self.windows()).find_map(|w| {
            self.capacities.iter().enumerate().find_map(|(t, cap)| {
                let cap = i128::from((*cap)?);
                let over = usage[t].get(w).copied().unwrap_or(0) > cap;
                (over && !skip.contains(&(t, w))).then_some((t, w))
            })
        })
    }
}

/// An object that could leave an overfilled cell, and what that would cost it.
struct Candidate {
    /// Dollars lost per byte.
    loss: f64,
    object: u32,
    moves: Vec<Move>,
    stays: Vec<Stay>,
    solution: Solution,
}

/// The relaxation's value of a pass at the planner's prices: a lower bound.
fn relaxed(pass: &Pass, planner: &Planner<'_>) -> f64 {
    let charged: f64 = planner
        .capacities
        .iter()
        .zip(&planner.prices)
        .filter_map(|(cap, prices)| cap.map(|c| c as f64 * prices.iter().sum::<f64>()))
        .sum();
    pass.value - charged
}

fn covers(stay: &Stay, (window, tier): (u32, u8)) -> bool {
    stay.tier == tier && stay.first <= window && window <= stay.last
}

/// Adds a stay to difference arrays of usage (tiers without a capacity are empty).
fn add_stay(diff: &mut [Vec<i128>], stay: &Stay, size: i128) {
    let tier = &mut diff[usize::from(stay.tier)];
    if tier.is_empty() {
        return;
    }
    tier[stay.first as usize] += size;
    tier[stay.last as usize + 1] -= size;
}

/// Adds a stay to usage cell by cell.
fn add_stay_cells(usage: &mut [Vec<i128>], stay: &Stay, size: i128) {
    let tier = &mut usage[usize::from(stay.tier)];
    if tier.is_empty() {
        return;
    }
    for w in stay.first..=stay.last {
        tier[w as usize] += size;
    }
}
