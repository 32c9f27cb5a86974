//! From a relaxed assignment (which may overfill tiers) to a placement that fits, and then a
//! cheaper one: the primal half of the Lagrangian method.
//!
//! 1. Over-full tiers are emptied hot → cold: objects leave cheapest regret per byte first,
//!    to their cheapest other tier; a colder tier takes them whether or not it has room (it
//!    sheds objects in its own turn), a hotter one only with room.
//! 2. Improvement, largest saving per byte first: an object moves to a cheaper tier with
//!    room; or, when the cheapest is full, it takes the place of the objects there that lose
//!    least per byte by leaving (each to a tier with room), if that saves more in all. This
//!    ejection step matters when objects are large against a tier (packing a knapsack).
//!
//! Every vector is scratch reused across calls; no tier is ever left over capacity.

use crate::optimise::problem::{OptimiseError, Problem};

/// Victims examined at most for one ejection, so improvement stays near linear.
const MAX_EJECTION_SCAN: usize = 64;

/// The problem and its cost table (`cost(i, t)` at `i * tiers + t`, `inf` where not
/// allowed).
pub(crate) struct Table<'a> {
    pub problem: &'a Problem,
    pub tiers: usize,
    pub costs: &'a [f64],
}

impl Table<'_> {
    fn row(&self, i: usize) -> &[f64] {
        &self.costs[i * self.tiers..(i + 1) * self.tiers]
    }

    fn size(&self, i: usize) -> u64 {
        self.problem.objects[i].size
    }
}

/// Scratch space of the repair, reused across calls.
#[derive(Default)]
pub(crate) struct Repair {
    /// The assignment being repaired (kept here so the search allocates it once).
    pub assignment: Vec<usize>,
    used: Vec<u128>,
    /// (dollars per byte, object)
    candidates: Vec<(f64, usize)>,
    /// Objects on capacity-bound tiers: (tier, dollars per byte lost by leaving, object),
    /// sorted; `starts[t]` is where tier `t`'s run begins.
    victims: Vec<(usize, f64, usize)>,
    starts: Vec<usize>,
    /// Per tier, the first victim that may still be on it (those before have left).
    cursor: Vec<usize>,
    /// A tentative ejection: (object, tier it goes to), and the bytes it adds per tier.
    plan: Vec<(usize, usize)>,
    extra: Vec<u128>,
}

impl Repair {
    /// Makes `assignment` fit every capacity, then spends room on savings; returns its cost.
    pub fn run(&mut self, table: &Table, assignment: &mut [usize]) -> Result<f64, OptimiseError> {
        self.used.clear();
        self.used.resize(table.tiers, 0);
        for (i, &t) in assignment.iter().enumerate() {
            self.used[t] += u128::from(table.size(i));
        }
        for t in 0..table.tiers {
            self.empty_over_full(table, assignment, t)?;
        }
        self.improve(table, assignment);
        Ok(assignment
            .iter()
            .enumerate()
            .map(|(i, &t)| table.row(i)[t])
            .sum())
    }

    fn room_with(&self, problem: &Problem, t: usize, size: u64, extra: u128) -> bool {
        problem.tiers[t]
            .capacity
            .is_none_or(|c| self.used[t] + extra + u128::from(size) <= u128::from(c))
    }

    fn room(&self, problem: &Problem, t: usize, size: u64) -> bool {
        self.room_with(problem, t, size, 0)
    }

    fn over(&self, problem: &Problem, t: usize) -> u128 {
        problem.tiers[t]
            .capacity
            .map_or(0, |c| self.used[t].saturating_sub(u128::from(c)))
    }

    fn shift(&mut self, table: &Table, assignment: &mut [usize], i: usize, to: usize) {
        let size = u128::from(table.size(i));
        self.used[assignment[i]] -= size;
        self.used[to] += size;
        assignment[i] = to;
    }

    /// Moves objects off tier `t` while it is over capacity, cheapest regret per byte first.
    fn empty_over_full(
        &mut self,
        table: &Table,
        assignment: &mut [usize],
        t: usize,
    ) -> Result<(), OptimiseError> {
        let problem = table.problem;
        if self.over(problem, t) == 0 {
            return Ok(());
        }
        self.candidates.clear();
        for (i, &on) in assignment.iter().enumerate() {
            let (row, size) = (table.row(i), table.size(i));
            if on != t || size == 0 {
                continue;
            }
            let alternative = (0..table.tiers)
                .filter(|&u| u != t && row[u].is_finite())
                .min_by(|&a, &b| row[a].total_cmp(&row[b]));
            if let Some(u) = alternative {
                self.candidates.push(((row[u] - row[t]) / size as f64, i));
            }
        }
        self.candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        let candidates = std::mem::take(&mut self.candidates);
        for &(_, i) in &candidates {
            if self.over(problem, t) == 0 {
                break;
            }
            let (row, size) = (table.row(i), table.size(i));
            let target = (0..table.tiers)
                .filter(|&u| u != t && row[u].is_finite() && (u > t || self.room(problem, u, size)))
                .min_by(|&a, &b| row[a].total_cmp(&row[b]));
            if let Some(u) = target {
                self.shift(table, assignment, i, u);
            }
        }
        self.candidates = candidates;
        let over = self.over(problem, t);
        if over > 0 {
            return Err(OptimiseError::Infeasible(format!(
                "tier {} stays {over} bytes over capacity: no object on it has room on \
                 another tier it may go on",
                problem.tiers[t].name
            )));
        }
        Ok(())
    }

    /// The cheapest tier other than `not` that object `i` may go on and that has room for
    /// it besides `extra` bytes already promised there; with what it costs.
    fn cheapest_with_room(&self, table: &Table, i: usize, not: usize) -> Option<(usize, f64)> {
        let (row, size) = (table.row(i), table.size(i));
        let extra = |u: usize| self.extra.get(u).copied().unwrap_or(0);
        (0..table.tiers)
            .filter(|&u| {
                u != not && row[u].is_finite() && self.room_with(table.problem, u, size, extra(u))
            })
            .min_by(|&a, &b| row[a].total_cmp(&row[b]))
            .map(|u| (u, row[u]))
    }

    /// Sorts the objects of capacity-bound tiers by what leaving costs them per byte.
    fn list_victims(&mut self, table: &Table, assignment: &[usize]) {
        self.extra.clear();
        self.extra.resize(table.tiers, 0);
        self.victims.clear();
        for (i, &on) in assignment.iter().enumerate() {
            let size = table.size(i);
            if table.problem.tiers[on].capacity.is_none() || size == 0 {
                continue;
            }
            if let Some((_, cost)) = self.cheapest_with_room(table, i, on) {
                let loss = (cost - table.row(i)[on]) / size as f64;
                self.victims.push((on, loss, i));
            }
        }
        self.victims
            .sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        self.starts.clear();
        for t in 0..=table.tiers {
            self.starts.push(self.victims.partition_point(|v| v.0 < t));
        }
        self.cursor.clear();
        self.cursor.extend_from_slice(&self.starts);
    }

    /// Moves objects to cheaper tiers, directly or by ejection, largest saving per byte
    /// first.
    fn improve(&mut self, table: &Table, assignment: &mut [usize]) {
        self.candidates.clear();
        for (i, &on) in assignment.iter().enumerate() {
            let row = table.row(i);
            let cheapest = row.iter().copied().fold(f64::INFINITY, f64::min);
            if cheapest < row[on] {
                let per_byte = (row[on] - cheapest) / table.size(i).max(1) as f64;
                self.candidates.push((per_byte, i));
            }
        }
        self.candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.list_victims(table, assignment);
        let candidates = std::mem::take(&mut self.candidates);
        for &(_, i) in &candidates {
            self.improve_one(table, assignment, i);
        }
        self.candidates = candidates;
    }

    fn improve_one(&mut self, table: &Table, assignment: &mut [usize], i: usize) {
        let from = assignment[i];
        let row = table.row(i);
        self.extra.fill(0);
        let direct = self
            .cheapest_with_room(table, i, from)
            .filter(|&(_, cost)| cost < row[from]);
        let best = (0..table.tiers)
            .filter(|&u| row[u] < row[from])
            .min_by(|&a, &b| row[a].total_cmp(&row[b]));
        let direct_saving = direct.map_or(0.0, |(_, cost)| row[from] - cost);
        if let Some(u) = best.filter(|&u| direct.is_none_or(|(d, _)| d != u)) {
            if let Some(loss) = self.plan_ejection(table, assignment, i, u) {
                if row[from] - row[u] - loss > direct_saving {
                    for k in 0..self.plan.len() {
                        let (victim, to) = self.plan[k];
                        self.shift(table, assignment, victim, to);
                    }
                    self.shift(table, assignment, i, u);
                    return;
                }
            }
        }
        if let Some((u, _)) = direct {
            self.shift(table, assignment, i, u);
        }
    }

    /// Plans the cheapest evictions from tier `u` that make room there for object `i`;
    /// returns what they lose, or `None` if the scan finds too little room.
    fn plan_ejection(
        &mut self,
        table: &Table,
        assignment: &[usize],
        i: usize,
        u: usize,
    ) -> Option<f64> {
        let capacity = u128::from(table.problem.tiers[u].capacity?);
        let need = (self.used[u] + u128::from(table.size(i))).checked_sub(capacity)?;
        let saving = table.row(i)[assignment[i]] - table.row(i)[u];
        self.plan.clear();
        self.extra.fill(0);
        let (mut freed, mut loss, mut scanned) = (0u128, 0.0, 0);
        let end = self.starts[u + 1];
        while self.cursor[u] < end && assignment[self.victims[self.cursor[u]].2] != u {
            self.cursor[u] += 1;
        }
        for k in self.cursor[u]..end {
            scanned += 1;
            if scanned > MAX_EJECTION_SCAN || loss >= saving {
                return None;
            }
            let victim = self.victims[k].2;
            if assignment[victim] != u {
                continue;
            }
            let Some((to, cost)) = self.cheapest_with_room(table, victim, u) else {
                continue;
            };
            let size = table.size(victim);
            loss += cost - table.row(victim)[u];
            self.extra[to] += u128::from(size);
            self.plan.push((victim, to));
            freed += u128::from(size);
            if freed >= need {
                return Some(loss);
            }
        }
        None
    }
}
