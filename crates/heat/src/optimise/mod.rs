//! Placement by cost: which tier minimises what an object is expected to cost, given how
//! often it is expected to be read, alone or under the tiers' capacities.
//!
//! - [`object`]: one object's choice ([`cheapest_tier`]): storage plus expected reads ×
//!   the cost of a read on each tier, against staying, with the move's cost spread over the
//!   stay it commits to. Used by `strata eval`'s `learned` policy and by the service.
//! - [`problem`]: many objects under capacity, minimum residency, pins and latency
//!   objectives over a horizon ([`Problem`]), and what a placement costs.
//! - [`milp`]: the exact solution ([`solve_milp`], `good_lp` + `microlp`), for batches.
//! - [`lagrange`]: the scalable one ([`solve_lagrangian`]): per-object choices under
//!   Lagrangian prices for capacity, repaired to fit, with a lower bound on the optimum.

pub mod lagrange;
pub mod milp;
pub mod object;
pub mod problem;
mod repair;

pub use lagrange::{solve_lagrangian, LagrangeOptions};
pub use milp::solve_milp;
pub use object::{
    cheapest_tier, cheapest_tier_for, Demand, Horizon, Outlook, TierChoice, AMORTISE_WINDOWS,
};
pub use problem::{ObjectSpec, OptimiseError, Problem, Solution, TierSpec, ALL_TIERS, MAX_TIERS};
