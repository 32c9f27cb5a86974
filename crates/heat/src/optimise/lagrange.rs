//! The scalable method: per-object choices under Lagrangian prices for capacity, then a
//! repair that never overfills a tier.
//!
//! Relaxing each capacity constraint with a price `λ_t >= 0` per byte splits the problem into
//! one choice per object: the tier minimising `cost(i, t) + λ_t × size_i`. The relaxed
//! optimum `L(λ) = Σ_i min_t (cost(i, t) + λ_t size_i) - Σ_t λ_t capacity_t` is a lower bound
//! on every placement's cost, so the best `L` seen bounds the gap without the MILP. The
//! prices follow the subgradient (bytes over capacity) with Polyak's step toward the best
//! placement found. Each candidate assignment is repaired: objects leave over-full tiers
//! cheapest regret per byte first, to tiers that have room; then objects move to cheaper
//! tiers that still have room, largest saving per byte first.
//!
//! Memory: the cost table (objects × tiers `f64`, `inf` where not allowed), an assignment
//! and the repair's candidate list, all linear in objects and allocated once per solve.

use crate::optimise::problem::{OptimiseError, Problem, Solution};
use crate::optimise::repair::{Repair, Table};

/// How long the price search runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LagrangeOptions {
    /// Rounds of coordinate ascent on the prices at most.
    pub max_sweeps: usize,
    /// Subgradient steps at most, after the coordinate rounds.
    pub max_iterations: usize,
    /// Stop once `(cost - lower bound) / cost` is below this.
    pub tolerance: f64,
    /// Repair the relaxed assignment into a placement every this many iterations.
    pub repair_every: usize,
}

impl Default for LagrangeOptions {
    fn default() -> Self {
        LagrangeOptions {
            max_sweeps: 20,
            max_iterations: 100,
            tolerance: 1e-4,
            repair_every: 5,
        }
    }
}

/// Solves `problem` by Lagrangian relaxation of capacity plus repair.
pub fn solve_lagrangian(
    problem: &Problem,
    options: &LagrangeOptions,
) -> Result<Solution, OptimiseError> {
    problem.check()?;
    if problem.objects.is_empty() {
        return Ok(Solution {
            assignment: Vec::new(),
            cost: 0.0,
            lower_bound: 0.0,
        });
    }
    let mut search = Search::new(problem);
    search.run(options)?;
    Ok(Solution {
        assignment: search.best,
        cost: search.upper,
        lower_bound: search.lower.min(search.upper),
    })
}

/// The state of one solve; every vector is allocated once.
struct Search<'a> {
    problem: &'a Problem,
    tiers: usize,
    /// `cost(i, t)` at `i * tiers + t`, `inf` where not allowed.
    costs: Vec<f64>,
    sizes: Vec<f64>,
    capacity: Vec<f64>,
    prices: Vec<f64>,
    used: Vec<f64>,
    current: Vec<usize>,
    best: Vec<usize>,
    upper: f64,
    lower: f64,
    repair: Repair,
    /// Scratch of [`Search::coordinate_price`]: (price limit, bytes) per object.
    breaks: Vec<(f64, f64)>,
}

impl<'a> Search<'a> {
    fn new(problem: &'a Problem) -> Self {
        let tiers = problem.tiers.len();
        let n = problem.objects.len();
        let mut costs = Vec::with_capacity(n * tiers);
        for i in 0..n {
            for t in 0..tiers {
                costs.push(if problem.allowed(i, t) {
                    problem.cost(i, t)
                } else {
                    f64::INFINITY
                });
            }
        }
        Search {
            problem,
            tiers,
            costs,
            sizes: problem.objects.iter().map(|o| o.size as f64).collect(),
            capacity: problem
                .tiers
                .iter()
                .map(|t| t.capacity.map_or(f64::INFINITY, |c| c as f64))
                .collect(),
            prices: vec![0.0; tiers],
            used: vec![0.0; tiers],
            current: vec![0; n],
            best: Vec::new(),
            upper: f64::INFINITY,
            lower: f64::NEG_INFINITY,
            repair: Repair::default(),
            breaks: Vec::new(),
        }
    }

    fn run(&mut self, options: &LagrangeOptions) -> Result<(), OptimiseError> {
        let mut failure = None;
        self.evaluate(&mut failure);
        for _ in 0..options.max_sweeps {
            if self.gap() <= options.tolerance || !self.sweep() {
                break;
            }
            self.evaluate(&mut failure);
        }
        let mut theta = 1.0;
        let mut stalled = 0;
        for iteration in 0..options.max_iterations {
            if self.gap() <= options.tolerance {
                break;
            }
            let norm: f64 = (0..self.tiers)
                .filter(|&t| self.capacity[t].is_finite())
                .map(|t| self.subgradient(t).powi(2))
                .sum();
            if norm == 0.0 {
                break;
            }
            // Polyak's step toward the best placement's cost (an estimate until there is one).
            let target = if self.upper.is_finite() {
                self.upper
            } else {
                self.lower + self.lower.abs().max(1e-9)
            };
            let step = theta * (target - self.lower).max(0.0) / norm;
            for t in 0..self.tiers {
                if self.capacity[t].is_finite() {
                    self.prices[t] = (self.prices[t] + step * self.subgradient(t)).max(0.0);
                }
            }
            let before = self.lower;
            if iteration % options.repair_every.max(1) == 0 {
                self.evaluate(&mut failure);
            } else {
                self.lower = self.lower.max(self.relax());
            }
            if self.lower > before {
                stalled = 0;
            } else {
                stalled += 1;
                if stalled >= 5 {
                    theta /= 2.0;
                    stalled = 0;
                }
            }
        }
        match failure {
            Some(err) if self.best.is_empty() => Err(err),
            _ => Ok(()),
        }
    }

    /// Relaxes at the current prices (raising the lower bound) and repairs the result
    /// (lowering the upper one); a greedy repair can fail where a later one succeeds.
    fn evaluate(&mut self, failure: &mut Option<OptimiseError>) {
        let relaxed = self.relax();
        self.lower = self.lower.max(relaxed);
        if let Err(err) = self.repair_current() {
            *failure = Some(err);
        }
    }

    /// One round of exact coordinate ascent: each capacity-bound tier's price set, the
    /// others held, to the lowest at which the objects that still prefer the tier fit it.
    /// Returns whether a price changed.
    fn sweep(&mut self) -> bool {
        let mut changed = false;
        for t in 0..self.tiers {
            if !self.capacity[t].is_finite() {
                continue;
            }
            let price = self.coordinate_price(t);
            if (price - self.prices[t]).abs() > 1e-9 * price.abs().max(self.prices[t].abs()) {
                changed = true;
            }
            self.prices[t] = price;
        }
        changed
    }

    /// The price of tier `t` maximising the relaxation with the other prices held: object
    /// `i` prefers `t` while the price is below `(best elsewhere - cost on t) / size`, so
    /// the answer is the break point at which the preferring objects' bytes fit.
    fn coordinate_price(&mut self, t: usize) -> f64 {
        let mut breaks = std::mem::take(&mut self.breaks);
        breaks.clear();
        for i in 0..self.sizes.len() {
            let row = &self.costs[i * self.tiers..(i + 1) * self.tiers];
            let size = self.sizes[i];
            if !row[t].is_finite() || size == 0.0 {
                continue;
            }
            let elsewhere = (0..self.tiers)
                .filter(|&u| u != t)
                .map(|u| row[u] + self.prices[u] * size)
                .fold(f64::INFINITY, f64::min);
            let limit = (elsewhere - row[t]) / size;
            if limit > 0.0 {
                breaks.push((limit, size));
            }
        }
        breaks.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut used = 0.0;
        let mut price = 0.0;
        for &(limit, size) in &breaks {
            if used + size > self.capacity[t] {
                price = limit;
                break;
            }
            used += size;
        }
        self.breaks = breaks;
        if price.is_finite() {
            price
        } else {
            self.prices[t]
        }
    }

    fn subgradient(&self, t: usize) -> f64 {
        let g = self.used[t] - self.capacity[t];
        // A free tier's price may only fall, and not below zero.
        if self.prices[t] <= 0.0 {
            g.max(0.0)
        } else {
            g
        }
    }

    fn gap(&self) -> f64 {
        if self.upper <= 0.0 {
            return 0.0;
        }
        (self.upper - self.lower) / self.upper
    }

    /// Every object's cheapest tier at the current prices; returns `L(prices)`.
    fn relax(&mut self) -> f64 {
        self.used.fill(0.0);
        let mut total = 0.0;
        for (i, slot) in self.current.iter_mut().enumerate() {
            let row = &self.costs[i * self.tiers..(i + 1) * self.tiers];
            let size = self.sizes[i];
            let (mut best, mut best_cost) = (0, f64::INFINITY);
            for (t, &cost) in row.iter().enumerate() {
                let priced = cost + self.prices[t] * size;
                if priced < best_cost {
                    (best, best_cost) = (t, priced);
                }
            }
            *slot = best;
            self.used[best] += size;
            total += best_cost;
        }
        let charged: f64 = (0..self.tiers)
            .filter(|&t| self.capacity[t].is_finite())
            .map(|t| self.prices[t] * self.capacity[t])
            .sum();
        total - charged
    }

    /// Repairs the current relaxed assignment and keeps it if it is the best so far.
    fn repair_current(&mut self) -> Result<(), OptimiseError> {
        let mut repair = std::mem::take(&mut self.repair);
        let mut assignment = std::mem::take(&mut repair.assignment);
        assignment.clear();
        assignment.extend_from_slice(&self.current);
        let table = Table {
            problem: self.problem,
            tiers: self.tiers,
            costs: &self.costs,
        };
        let cost = repair.run(&table, &mut assignment);
        if let Ok(cost) = cost {
            if cost < self.upper {
                self.upper = cost;
                std::mem::swap(&mut self.best, &mut assignment);
            }
        }
        repair.assignment = assignment;
        self.repair = repair;
        cost.map(|_| ())
    }
}
