//! `[[policy]]` in `strata.toml`: per key prefix, the constraints on where an object may be
//! placed, and the check that each policy leaves at least one tier.
//!
//! ```toml
//! [[tier]]
//! name = "warm"
//! region = "eu-west"           # where the tier's bytes are (free text; default none)
//! encryption = "xchacha20poly1305"   # a tier with `encryption` set counts as encrypted
//!
//! [[policy]]
//! name = "climate"             # default: the prefix
//! prefix = "climate/"          # keys starting with it; the longest matching prefix wins
//! latency_objective_ms = 50    # tiers whose read_latency_ms is above it are excluded
//! max_cost_per_gb_month = 0.05 # tiers costing more are excluded
//! min_redundancy = 1           # failures tolerated; or "replicate:2" / "ec:4+2" (same meaning)
//! encryption_required = true   # tiers without `encryption` are excluded
//! regions = ["eu-west"]        # tiers outside these regions (or with none) are excluded
//! pinned_tier = "warm"         # the object lives on this tier and no other
//! ```
//!
//! Owned here: the shape of a policy, its values, and refusing at load a policy that no
//! declared tier satisfies, with every tier and the constraint that excluded it. What a
//! policy means for placement ([`crate::policy::PolicySet`]) lives with the planner.

use serde::Deserialize;

use super::parse::{Number, Problems};
use super::{RedundancyByClass, TierConfig};
use crate::policy::PolicySet;

/// One `[[policy]]`, validated.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PolicyConfig {
    /// Its name, for explanations and refusals (default: the prefix as written).
    pub name: String,
    /// Keys starting with this string are governed by it (`""` matches every key).
    pub prefix: String,
    /// Tiers whose `read_latency_ms` is above this are excluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_objective_ms: Option<f64>,
    /// Tiers whose `cost_per_gb_month` is above this are excluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cost_per_gb_month: Option<f64>,
    /// Tiers that tolerate fewer failures are excluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_redundancy: Option<MinRedundancy>,
    /// Tiers without `encryption` are excluded.
    pub encryption_required: bool,
    /// Tiers whose `region` is not one of these (or that declare none) are excluded; empty
    /// means any region.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// The one tier its objects live on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_tier: Option<String>,
}

/// `min_redundancy`: how many failure domains may be lost with the object still readable.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MinRedundancy {
    /// Failures tolerated (`replicate:N` tolerates N-1, `ec:K+M` tolerates M).
    pub failures_tolerated: usize,
    /// As written (`1`, `"replicate:2"`, `"ec:4+2"`).
    pub as_written: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    name: Option<String>,
    prefix: Option<String>,
    latency_objective_ms: Option<Number>,
    max_cost_per_gb_month: Option<Number>,
    min_redundancy: Option<RawMinRedundancy>,
    encryption_required: Option<bool>,
    regions: Option<Vec<String>>,
    pinned_tier: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawMinRedundancy {
    Failures(i64),
    Spec(String),
}

/// A redundancy written `none`, `replicate:N` or `ec:K+M` as (domains needed, failures
/// tolerated); `None` when it is not written so. The same reading as
/// `strata_redundancy::Redundancy` (case, spaces, N and M at least 1), whose crate does I/O
/// and so may not be a dependency of this one; the service's tests compare the two.
fn read_redundancy(spec: &str) -> Option<(usize, usize)> {
    let spec = spec.trim().to_ascii_lowercase();
    let number = |text: &str| text.trim().parse::<usize>().ok();
    if spec == "none" {
        return Some((1, 0));
    }
    if let Some(copies) = spec.strip_prefix("replicate:") {
        let copies = number(copies).filter(|&copies| copies > 0)?;
        return Some((copies, copies - 1));
    }
    let (data, parity) = spec.strip_prefix("ec:")?.split_once('+')?;
    let (data, parity) = (number(data)?, number(parity)?);
    (data > 0 && parity > 0).then_some((data + parity, parity))
}

/// Failures a redundancy written `none`, `replicate:N` or `ec:K+M` tolerates (0, N - 1,
/// M); `None` when it is not written so.
pub fn failures_tolerated(spec: &str) -> Option<usize> {
    read_redundancy(spec).map(|(_, failures)| failures)
}

/// Domains a redundancy needs (`none`: 1, `replicate:N`: N, `ec:K+M`: K + M).
fn domains_needed(spec: &str) -> Option<usize> {
    read_redundancy(spec).map(|(domains, _)| domains)
}

/// The failures a tier's objects tolerate at the least: its own `redundancy`, or a class's
/// `[redundancy]` value where that is lower and the tier has the domains for it (a class
/// value overrides the tier's on such tiers, so the least of them is what a policy can count
/// on). `None` when a value cannot be read (the service refuses it at start-up).
pub fn tier_failures_tolerated(tier: &TierConfig, by_class: &RedundancyByClass) -> Option<usize> {
    let domains = tier.domains().len();
    let own = failures_tolerated(&tier.redundancy)?;
    let overrides = by_class
        .entries()
        .into_iter()
        .filter(|(_, value)| domains_needed(value).is_some_and(|needed| needed <= domains))
        .filter_map(|(_, value)| failures_tolerated(value));
    Some(overrides.fold(own, usize::min))
}

/// Builds the `[[policy]]` list: every value checked, names and prefixes unique, pinned
/// tiers declared, and every policy left with at least one tier.
pub(super) fn build_policies(
    raw: Vec<RawPolicy>,
    tiers: &[TierConfig],
    by_class: &RedundancyByClass,
    problems: &mut Problems,
) -> Vec<PolicyConfig> {
    let mut policies: Vec<PolicyConfig> = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let policy = build_one(index, raw, tiers, problems);
        let field = format!("policy[{index}]");
        if let Some(first) = policies.iter().position(|p| p.prefix == policy.prefix) {
            problems.add(
                format!("{field}.prefix"),
                format!(
                    "{:?} is already the prefix of policy[{first}]; one policy per prefix \
                     (merge them)",
                    policy.prefix
                ),
            );
        } else if let Some(first) = policies.iter().position(|p| p.name == policy.name) {
            problems.add(
                format!("{field}.name"),
                format!(
                    "{:?} is already the name of policy[{first}]; names must be unique",
                    policy.name
                ),
            );
        }
        policies.push(policy);
    }
    check_satisfiable(&policies, tiers, by_class, problems);
    policies
}

fn build_one(
    index: usize,
    raw: RawPolicy,
    tiers: &[TierConfig],
    problems: &mut Problems,
) -> PolicyConfig {
    let field = |name: &str| format!("policy[{index}].{name}");
    let prefix = raw.prefix.unwrap_or_else(|| {
        problems.add(
            field("prefix"),
            "missing; every policy names the keys it governs, e.g. prefix = \"climate/\" \
             (\"\" for every key)",
        );
        String::new()
    });
    if prefix.chars().any(char::is_control) {
        problems.add(
            field("prefix"),
            format!("{prefix:?} has control characters, which no key can have"),
        );
    }
    let name_given = raw.name.is_some();
    let name = raw.name.unwrap_or_else(|| prefix.clone());
    if name_given && name.trim().is_empty() {
        problems.add(
            field("name"),
            "is empty; give the policy a name or leave it out",
        );
    }
    let mut number = |key: &str, value: Option<Number>| {
        let value = value?.0;
        if !value.is_finite() || value < 0.0 {
            problems.add(field(key), format!("{value} must be a number, 0 or more"));
        }
        Some(value)
    };
    let latency_objective_ms = number("latency_objective_ms", raw.latency_objective_ms);
    let max_cost_per_gb_month = number("max_cost_per_gb_month", raw.max_cost_per_gb_month);
    let min_redundancy = raw
        .min_redundancy
        .and_then(|value| build_min_redundancy(value, &field("min_redundancy"), problems));
    let regions = raw.regions.unwrap_or_default();
    if regions.iter().any(|region| region.trim().is_empty()) {
        problems.add(
            field("regions"),
            "has an empty region name; list names like \"eu-west\"",
        );
    }
    if let Some(pinned) = &raw.pinned_tier {
        if !tiers.iter().any(|tier| &tier.name == pinned) {
            let names: Vec<&str> = tiers.iter().map(|tier| tier.name.as_str()).collect();
            problems.add(
                field("pinned_tier"),
                format!(
                    "{pinned:?} is not a declared tier; use one of {}",
                    names.join(", ")
                ),
            );
        }
    }
    PolicyConfig {
        name,
        prefix,
        latency_objective_ms,
        max_cost_per_gb_month,
        min_redundancy,
        encryption_required: raw.encryption_required.unwrap_or(false),
        regions,
        pinned_tier: raw.pinned_tier,
    }
}

fn build_min_redundancy(
    value: RawMinRedundancy,
    field: &str,
    problems: &mut Problems,
) -> Option<MinRedundancy> {
    let parsed = match &value {
        RawMinRedundancy::Failures(failures) => usize::try_from(*failures)
            .map(|failures| (failures, failures.to_string()))
            .ok(),
        RawMinRedundancy::Spec(spec) => {
            failures_tolerated(spec).map(|failures| (failures, spec.clone()))
        }
    };
    match parsed {
        Some((failures_tolerated, as_written)) => Some(MinRedundancy {
            failures_tolerated,
            as_written,
        }),
        None => {
            let shown = match value {
                RawMinRedundancy::Failures(n) => n.to_string(),
                RawMinRedundancy::Spec(s) => format!("{s:?}"),
            };
            problems.add(
                field,
                format!(
                    "{shown} is not a redundancy; write the failures tolerated (0, 1, 2, ...) \
                     or a redundancy like \"replicate:2\" or \"ec:4+2\""
                ),
            );
            None
        }
    }
}

/// Refuses each policy that leaves no tier, naming every tier and what excluded it.
fn check_satisfiable(
    policies: &[PolicyConfig],
    tiers: &[TierConfig],
    by_class: &RedundancyByClass,
    problems: &mut Problems,
) {
    if tiers.is_empty() {
        return;
    }
    let set = PolicySet::new(policies.to_vec(), tiers, by_class);
    for (index, reason) in set.refusals() {
        problems.add(format!("policy[{index}]"), reason);
    }
}
