//! Placement by cost: which tier minimises what an object is expected to cost, given how
//! often it is expected to be read.
//!
//! - [`object`]: one object's choice ([`cheapest_tier`]): storage plus expected reads ×
//!   the cost of a read on each tier, against staying, with the move's cost spread over the
//!   stay it commits to. Used by `strata eval`'s `learned` policy and by the service.

pub mod object;

pub use object::{
    cheapest_tier, cheapest_tier_for, Demand, Horizon, Outlook, TierChoice, AMORTISE_WINDOWS,
};
