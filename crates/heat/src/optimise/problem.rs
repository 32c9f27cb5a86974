//! The placement problem: objects, tiers, a horizon, and what each assignment costs.
//!
//! Every object goes on exactly one tier. Its cost on tier `t` over the horizon is `H`
//! windows of [`window_cost`] there (storage, expected retrieval, requests, egress, the
//! latency price and the miss penalty) plus, when `t` is not where it is, one
//! [`move_cost`]. Constraints: a tier's capacity; minimum residency (a demotion it holds back
//! is not allowed); a pinned object stays; a per-object latency objective forbids tiers
//! slower than it; an optional mask of tiers the caller allows (the service passes the
//! tiers its rules accept for the object's class, so the rules never undo a cost move); and
//! the mask of tiers the object's `[[policy]]` allows, which binds its current tier too.
//!
//! The two solvers ([`crate::optimise::milp`], [`crate::optimise::lagrange`]) share this
//! module's costs, checks and [`Solution`], so their answers are comparable to the cent.

use crate::cost::CostModel;
use crate::optimise::object::{move_cost, window_cost};
use crate::placement::residency_holds;
use crate::units::human_bytes;

/// Most tiers a problem may have (the width of [`ObjectSpec::allowed`]).
pub const MAX_TIERS: usize = 64;

/// Every tier allowed.
pub const ALL_TIERS: u64 = u64::MAX;

/// One object of a problem.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObjectSpec {
    /// Bytes it takes on any tier.
    pub size: u64,
    /// The tier it is on (index, hot → cold).
    pub tier: usize,
    /// When it was placed there (ms); `i64::MIN` if unknown (no residency hold).
    pub placed_at_ms: i64,
    /// Expected reads per window.
    pub reads_per_window: f64,
    /// It stays where it is.
    pub pinned: bool,
    /// Its own latency objective, ms: tiers whose `read_latency_ms` is above it are not
    /// allowed for it.
    pub latency_objective_ms: Option<f64>,
    /// Bit `t` set: tier `t` is allowed ([`ALL_TIERS`] for no restriction). Its current
    /// tier is always allowed unless its latency objective or its policy forbids it.
    pub allowed: u64,
    /// Bit `t` set: the object's `[[policy]]` allows tier `t` ([`ALL_TIERS`] without a
    /// policy). Unlike `allowed` it binds the current tier too: no solution leaves an object
    /// where its policy forbids, whatever the capacity or the price.
    pub policy_allowed: u64,
}

impl ObjectSpec {
    /// An unpinned object with no objective of its own, any tier allowed.
    pub fn new(size: u64, tier: usize, placed_at_ms: i64, reads_per_window: f64) -> Self {
        ObjectSpec {
            size,
            tier,
            placed_at_ms,
            reads_per_window,
            pinned: false,
            latency_objective_ms: None,
            allowed: ALL_TIERS,
            policy_allowed: ALL_TIERS,
        }
    }
}

/// One tier of a problem; prices come from the problem's [`CostModel`] at the same index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierSpec {
    /// Its name, for messages.
    pub name: String,
    /// Bytes the problem's objects may take on it (`None`: unlimited).
    pub capacity: Option<u64>,
    /// How long an object must stay before it may be demoted, ms.
    pub min_residency_ms: i64,
}

/// Objects, tiers, prices and a horizon.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Prices, one entry per tier of [`Problem::tiers`].
    pub model: CostModel,
    /// Tiers hot → cold.
    pub tiers: Vec<TierSpec>,
    /// The objects.
    pub objects: Vec<ObjectSpec>,
    /// The instant of the decision (residency is judged at it).
    pub now_ms: i64,
    /// A window, ms (expected reads are per window).
    pub window_ms: i64,
    /// Windows the placement is judged over.
    pub horizon_windows: f64,
}

/// A placement of every object, what it costs, and how far from optimal it can be.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// The tier of each object, in the order of [`Problem::objects`].
    pub assignment: Vec<usize>,
    /// Dollars over the horizon, moves included.
    pub cost: f64,
    /// No placement costs less than this (equal to `cost` when proven optimal).
    pub lower_bound: f64,
}

impl Solution {
    /// `(cost - lower_bound) / cost`: how much the optimum could be below this placement, as
    /// a share of its cost (0 when proven optimal or free).
    pub fn gap(&self) -> f64 {
        if self.cost <= 0.0 {
            return 0.0;
        }
        ((self.cost - self.lower_bound) / self.cost).max(0.0)
    }
}

/// Why a problem has no solution, or could not be solved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimiseError {
    /// A malformed problem.
    #[error("invalid placement problem: {0}")]
    Invalid(String),
    /// An object with no tier it may go on.
    #[error(
        "object {object} may go on no tier: it is on {tier}, {why}; relax its latency \
         objective or its pin"
    )]
    NoTier {
        /// Its index in [`Problem::objects`].
        object: usize,
        /// The tier it is on.
        tier: String,
        /// What rules every tier out.
        why: String,
    },
    /// Objects that can go nowhere else need more than a tier holds.
    #[error(
        "tier {tier} is over capacity by {}: objects that must stay on it (pinned, held by \
         minimum residency, or allowed nowhere else) take {}, its capacity is {}; raise its \
         capacity or unpin objects",
        human_bytes(*.needed - *.capacity), human_bytes(*.needed), human_bytes(*.capacity)
    )]
    OverCapacity {
        /// The tier.
        tier: String,
        /// Bytes that must be on it.
        needed: u64,
        /// Its capacity.
        capacity: u64,
    },
    /// Objects allowed only on capacity-bound tiers need more than those hold together.
    #[error(
        "tiers {tiers} are over capacity by {} together: objects allowed only on them take \
         {}, they hold {}; raise their capacity or allow an unlimited tier",
        human_bytes(*.needed - *.capacity), human_bytes(*.needed), human_bytes(*.capacity)
    )]
    OverCapacityTogether {
        /// The tiers, comma-separated.
        tiers: String,
        /// Bytes that must be on them.
        needed: u64,
        /// Their capacities added up.
        capacity: u64,
    },
    /// The solver proved there is no placement, though no simple count shows why.
    #[error(
        "no placement fits the tiers' capacities ({0}); raise a capacity, unpin objects or \
         relax latency objectives"
    )]
    Infeasible(String),
    /// The solver failed.
    #[error("the MILP solver failed: {0}")]
    Solver(String),
}

impl Problem {
    /// Checks the problem's shape and that nothing rules every placement out.
    pub fn check(&self) -> Result<(), OptimiseError> {
        self.validate()?;
        self.check_capacity()
    }

    fn validate(&self) -> Result<(), OptimiseError> {
        let invalid = |what: String| Err(OptimiseError::Invalid(what));
        let count = self.tiers.len();
        if count == 0 || count > MAX_TIERS {
            return invalid(format!("{count} tiers: give 1 to {MAX_TIERS}"));
        }
        if self.model.tiers.len() != count {
            return invalid(format!(
                "{count} tiers but prices for {}",
                self.model.tiers.len()
            ));
        }
        if self.window_ms <= 0 {
            return invalid(format!(
                "window of {} ms: give a positive one",
                self.window_ms
            ));
        }
        if !(self.horizon_windows.is_finite() && self.horizon_windows > 0.0) {
            return invalid(format!(
                "horizon of {} windows: give a positive number",
                self.horizon_windows
            ));
        }
        for (index, object) in self.objects.iter().enumerate() {
            if object.tier >= count {
                return invalid(format!(
                    "object {index} is on tier {}, but there are only {count} tiers",
                    object.tier
                ));
            }
            if !(object.reads_per_window.is_finite() && object.reads_per_window >= 0.0) {
                return invalid(format!(
                    "object {index} expects {} reads per window: give a finite number >= 0",
                    object.reads_per_window
                ));
            }
            if object.latency_objective_ms.is_some_and(f64::is_nan) {
                return invalid(format!("object {index} has a latency objective of NaN"));
            }
        }
        Ok(())
    }

    /// Whether object `i` may go on tier `t`.
    #[inline]
    pub fn allowed(&self, i: usize, t: usize) -> bool {
        let object = &self.objects[i];
        if t >= MAX_TIERS || object.policy_allowed & (1u64 << t) == 0 {
            return false;
        }
        let fast_enough = object
            .latency_objective_ms
            .is_none_or(|objective| self.model.tiers[t].read_latency_ms <= objective);
        if !fast_enough {
            return false;
        }
        if t == object.tier {
            return true;
        }
        let held = residency_holds(
            object.tier,
            t,
            object.placed_at_ms,
            self.tiers[object.tier].min_residency_ms,
            self.now_ms,
        );
        !object.pinned && !held && object.allowed & (1u64 << t) != 0
    }

    /// Dollars of object `i` on tier `t` over the horizon, the move there included (whether
    /// or not it is allowed).
    #[inline]
    pub fn cost(&self, i: usize, t: usize) -> f64 {
        let object = &self.objects[i];
        let prices = &self.model.tiers[t];
        let stay = self.horizon_windows
            * window_cost(
                &self.model,
                prices,
                object.size,
                self.window_ms,
                object.reads_per_window,
            );
        if t == object.tier {
            stay
        } else {
            stay + move_cost(&self.model.tiers[object.tier], prices, object.size)
        }
    }

    /// The only tier object `i` may go on, if exactly one; an error if none.
    pub(crate) fn forced_tier(&self, i: usize) -> Result<Option<usize>, OptimiseError> {
        let mut only = None;
        for t in 0..self.tiers.len() {
            if self.allowed(i, t) {
                if only.is_some() {
                    return Ok(None);
                }
                only = Some(t);
            }
        }
        match only {
            Some(t) => Ok(Some(t)),
            None => Err(self.no_tier(i)),
        }
    }

    fn no_tier(&self, i: usize) -> OptimiseError {
        let object = &self.objects[i];
        let tier = &self.tiers[object.tier];
        let why = match object.latency_objective_ms {
            Some(objective) if object.pinned => format!(
                "pinned, and its reads take {} ms there, slower than its objective of \
                 {objective} ms",
                self.model.tiers[object.tier].read_latency_ms
            ),
            Some(objective) => {
                format!("and no tier it may move to is as fast as its objective of {objective} ms")
            }
            None if object.policy_allowed & (1u64 << object.tier.min(MAX_TIERS - 1)) == 0 => {
                "its policy forbids that tier, and no tier its policy allows may take it"
                    .to_string()
            }
            None => "and no tier is allowed for it".to_string(),
        };
        OptimiseError::NoTier {
            object: i,
            tier: tier.name.clone(),
            why,
        }
    }

    /// Capacity checks no solver is needed for: bytes forced onto a tier, and bytes allowed
    /// only on capacity-bound tiers, against what those hold.
    fn check_capacity(&self) -> Result<(), OptimiseError> {
        let count = self.tiers.len();
        let mut forced = vec![0u128; count];
        let mut bounded_only = 0u128;
        for i in 0..self.objects.len() {
            let size = u128::from(self.objects[i].size);
            if let Some(t) = self.forced_tier(i)? {
                forced[t] += size;
            }
            let anywhere_unlimited =
                (0..count).any(|t| self.tiers[t].capacity.is_none() && self.allowed(i, t));
            if !anywhere_unlimited {
                bounded_only += size;
            }
        }
        for (tier, needed) in self.tiers.iter().zip(&forced) {
            if let Some(capacity) = tier.capacity {
                if *needed > u128::from(capacity) {
                    return Err(OptimiseError::OverCapacity {
                        tier: tier.name.clone(),
                        needed: clamp(*needed),
                        capacity,
                    });
                }
            }
        }
        let bounded: Vec<&TierSpec> = self.tiers.iter().filter(|t| t.capacity.is_some()).collect();
        let capacity: u128 = bounded
            .iter()
            .map(|t| u128::from(t.capacity.unwrap_or(0)))
            .sum();
        if bounded_only > capacity {
            let names: Vec<&str> = bounded.iter().map(|t| t.name.as_str()).collect();
            return Err(OptimiseError::OverCapacityTogether {
                tiers: names.join(", "),
                needed: clamp(bounded_only),
                capacity: clamp(capacity),
            });
        }
        Ok(())
    }

    /// The cost of `assignment`, or why it is not a placement of this problem (a tier not
    /// allowed for an object, or a tier overfilled).
    pub fn evaluate(&self, assignment: &[usize]) -> Result<f64, String> {
        if assignment.len() != self.objects.len() {
            return Err(format!(
                "{} tiers for {} objects",
                assignment.len(),
                self.objects.len()
            ));
        }
        let mut used = vec![0u128; self.tiers.len()];
        let mut cost = 0.0;
        for (i, &t) in assignment.iter().enumerate() {
            if t >= self.tiers.len() || !self.allowed(i, t) {
                return Err(format!("object {i} may not go on tier {t}"));
            }
            used[t] += u128::from(self.objects[i].size);
            cost += self.cost(i, t);
        }
        for (tier, used) in self.tiers.iter().zip(&used) {
            if tier.capacity.is_some_and(|c| *used > u128::from(c)) {
                return Err(format!("tier {} overfilled: {used} bytes", tier.name));
            }
        }
        Ok(cost)
    }
}

fn clamp(bytes: u128) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX)
}
