//! Redundancy in `strata.toml`: a tier's failure domains and default redundancy, and the
//! `[redundancy]` map from access class to redundancy.
//!
//! ```toml
//! [[tier]]
//! name = "cold"
//! stores = ["/disk1/cold", "/disk2/cold", "/disk3/cold", "/disk4/cold", "/disk5/cold", "/disk6/cold"]
//! redundancy = "ec:4+2"        # none | replicate:N | ec:K+M (default none)
//!
//! [redundancy]                 # optional: by class, on tiers that have enough domains
//! hot = "replicate:3"
//! cold = "ec:4+2"
//! ```
//!
//! This module checks the shape (a list of store locations, `store` and `stores` not both);
//! the values of `redundancy` are kept as written and parsed by the service at start-up
//! (`strata_redundancy::Redundancy`, the one parser of that syntax), which also refuses too
//! few domains and overlapping stores, naming the field.

use serde::Deserialize;

use super::checks::check_store;
use super::parse::Problems;
use super::TierConfig;

/// `[redundancy]`: the redundancy each class's objects get, as written; `None` where the
/// tier's own `redundancy` applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedundancyByClass {
    /// For hot objects.
    pub hot: Option<String>,
    /// For warm objects.
    pub warm: Option<String>,
    /// For cold objects.
    pub cold: Option<String>,
}

impl RedundancyByClass {
    /// Whether no class has its own redundancy.
    pub fn is_empty(&self) -> bool {
        self.hot.is_none() && self.warm.is_none() && self.cold.is_none()
    }

    /// Each class with its value, for checks and messages: `("hot", value)`, ...
    pub fn entries(&self) -> Vec<(&'static str, &str)> {
        [
            ("hot", &self.hot),
            ("warm", &self.warm),
            ("cold", &self.cold),
        ]
        .into_iter()
        .filter_map(|(class, value)| value.as_deref().map(|v| (class, v)))
        .collect()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedundancy {
    hot: Option<String>,
    warm: Option<String>,
    cold: Option<String>,
}

/// `[redundancy]` as written (the service parses the values).
pub(super) fn build_redundancy(raw: RawRedundancy) -> RedundancyByClass {
    RedundancyByClass {
        hot: raw.hot,
        warm: raw.warm,
        cold: raw.cold,
    }
}

/// A tier's `stores`: at least one, each a store location, not together with `store`.
pub(super) fn build_domains(
    tier: &mut TierConfig,
    stores: Vec<String>,
    store_given: bool,
    index: usize,
    problems: &mut Problems,
) {
    let field = format!("tier[{index}].stores");
    if store_given {
        problems.add(
            &field,
            "a tier has either one `store` or a list of `stores` (its failure domains), not \
             both; move the store into the list",
        );
    }
    if stores.is_empty() {
        problems.add(
            &field,
            "is empty; list at least one store, e.g. stores = [\"/disk1/cold\", \"/disk2/cold\"]",
        );
        return;
    }
    for (position, store) in stores.iter().enumerate() {
        if let Err(reason) = check_store(store) {
            problems.add(format!("{field}[{position}]"), reason);
        }
    }
    tier.store = stores[0].clone();
    tier.stores = stores;
}
