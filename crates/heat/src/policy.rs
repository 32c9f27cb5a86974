//! Placement policies (`[[policy]]`) as the planner, the optimiser and the service's write
//! path apply them: which policy governs a key, which tiers it allows, and where an object
//! goes when its class's tiers and its policy disagree.
//!
//! Owned here: the rules below, in one place, so that the rules pass, the optimiser, a
//! PUT's first placement and `strata explain` give the same answer.
//!
//! - **Matching.** A key is governed by the policy whose `prefix` is the longest one the key
//!   starts with; a key no prefix matches has no policy (every tier allowed). Prefixes are
//!   unique, so there is never a tie.
//! - **Allowed tiers.** A tier is allowed when it meets every constraint of the policy;
//!   each excluded tier keeps the constraints that excluded it, for messages.
//! - **Accepted tiers.** The tiers of an object's class that its policy allows; when none
//!   is, the allowed tier nearest the class's first tier (the hotter of two equally near).
//!   An object stays where it is when its tier is accepted, and otherwise moves to the first
//!   accepted tier. An object on a tier its policy forbids moves with reason `policy`,
//!   minimum residency notwithstanding: compliance is not traded for economics.
//! - **First placement.** A new object lands on the default tier when its policy allows it,
//!   otherwise on the allowed tier nearest the default tier (the hotter on a tie).

use std::borrow::Cow;

use serde::Serialize;

use crate::config::{tier_failures_tolerated, PolicyConfig, RedundancyByClass, TierConfig};

/// Whether a policy allows a tier, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "why")]
pub enum TierVerdict {
    /// Every constraint met.
    Allowed,
    /// The constraints it fails, e.g. `regions (region "us-east" not in ["eu-west"])`.
    Excluded(String),
}

/// One policy with its verdict on every tier.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledPolicy {
    config: PolicyConfig,
    verdicts: Vec<TierVerdict>,
}

impl CompiledPolicy {
    /// The policy as configured.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Its verdict on each tier, in tier order (hot → cold).
    pub fn verdicts(&self) -> &[TierVerdict] {
        &self.verdicts
    }

    /// Whether tier `t` (index) is allowed.
    pub fn allows(&self, tier: usize) -> bool {
        matches!(self.verdicts.get(tier), Some(TierVerdict::Allowed))
    }

    /// Why tier `t` is excluded, or `None` when it is allowed.
    pub fn why_excluded(&self, tier: usize) -> Option<&str> {
        match self.verdicts.get(tier) {
            Some(TierVerdict::Excluded(why)) => Some(why),
            _ => None,
        }
    }

    /// Indices of the tiers it allows, hot → cold.
    pub fn allowed_tiers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.verdicts.len()).filter(|&t| self.allows(t))
    }

    /// `policy "climate" (prefix "climate/")`, for sentences.
    pub fn label(&self) -> String {
        format!(
            "policy {:?} (prefix {:?})",
            self.config.name, self.config.prefix
        )
    }
}

/// Every policy of a configuration, compiled against its tiers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicySet {
    policies: Vec<CompiledPolicy>,
    tier_names: Vec<String>,
}

impl PolicySet {
    /// Compiles `policies` against `tiers` (hot → cold) and the `[redundancy]` overrides.
    pub fn new(
        policies: Vec<PolicyConfig>,
        tiers: &[TierConfig],
        by_class: &RedundancyByClass,
    ) -> Self {
        let policies = policies
            .into_iter()
            .map(|config| CompiledPolicy {
                verdicts: tiers
                    .iter()
                    .map(|tier| verdict(&config, tier, by_class))
                    .collect(),
                config,
            })
            .collect();
        PolicySet {
            policies,
            tier_names: tiers.iter().map(|tier| tier.name.clone()).collect(),
        }
    }

    /// The policies, in declaration order.
    pub fn policies(&self) -> &[CompiledPolicy] {
        &self.policies
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The index of the policy governing `key`: the longest prefix it starts with.
    pub fn matching(&self, key: &str) -> Option<usize> {
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, policy)| key.starts_with(policy.config.prefix.as_str()))
            .max_by_key(|(_, policy)| policy.config.prefix.len())
            .map(|(index, _)| index)
    }

    /// The policy governing `key`.
    pub fn policy_for(&self, key: &str) -> Option<&CompiledPolicy> {
        self.matching(key).map(|index| &self.policies[index])
    }

    /// The policy at `index` (from [`PolicySet::matching`]).
    pub fn get(&self, index: usize) -> Option<&CompiledPolicy> {
        self.policies.get(index)
    }

    /// Whether policy `policy` (none: no policy) allows tier `tier`.
    pub fn allows(&self, policy: Option<usize>, tier: usize) -> bool {
        match policy.and_then(|index| self.policies.get(index)) {
            Some(policy) => policy.allows(tier),
            None => true,
        }
    }

    /// The tiers an object of a class with tiers `class_tiers` may stay on under `policy`:
    /// the class's tiers the policy allows, or else the allowed tier nearest the class's
    /// first tier (the hotter on a tie). Empty only when the policy allows no tier, which a
    /// validated configuration refuses.
    pub fn accepted_tiers<'a>(
        &self,
        policy: Option<usize>,
        class_tiers: &'a [usize],
    ) -> Cow<'a, [usize]> {
        let Some(compiled) = policy.and_then(|index| self.policies.get(index)) else {
            // No policy: the class's tiers as they are, without a copy (a replay asks this
            // for every object of every pass).
            return Cow::Borrowed(class_tiers);
        };
        let accepted: Vec<usize> = class_tiers
            .iter()
            .copied()
            .filter(|&t| compiled.allows(t))
            .collect();
        if !accepted.is_empty() {
            return Cow::Owned(accepted);
        }
        let anchor = class_tiers.first().copied().unwrap_or(0);
        Cow::Owned(nearest_allowed(compiled, anchor).into_iter().collect())
    }

    /// Where a new object governed by `policy` lands: `default_tier` when allowed, else the
    /// allowed tier nearest it (the hotter on a tie).
    pub fn initial_tier(&self, policy: Option<usize>, default_tier: usize) -> usize {
        match policy.and_then(|index| self.policies.get(index)) {
            Some(compiled) if !compiled.allows(default_tier) => {
                nearest_allowed(compiled, default_tier).unwrap_or(default_tier)
            }
            _ => default_tier,
        }
    }

    /// Bit `t` set when `policy` allows tier `t` (tiers from 64 on are not represented; the
    /// optimiser takes at most 64).
    pub fn mask(&self, policy: Option<usize>) -> u64 {
        match policy.and_then(|index| self.policies.get(index)) {
            Some(compiled) => compiled
                .allowed_tiers()
                .filter(|&t| t < 64)
                .fold(0u64, |mask, t| mask | 1 << t),
            None => u64::MAX,
        }
    }

    /// Each policy that allows no tier, by index, with the reason: every tier and what
    /// excluded it. A validated configuration has none; the service checks again at start.
    pub fn refusals(&self) -> Vec<(usize, String)> {
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, policy)| policy.allowed_tiers().next().is_none())
            .map(|(index, policy)| {
                let excluded: Vec<String> = policy
                    .verdicts
                    .iter()
                    .enumerate()
                    .map(|(t, verdict)| match verdict {
                        TierVerdict::Allowed => format!("{} allowed", self.tier_name(t)),
                        TierVerdict::Excluded(why) => {
                            format!("{} excluded by {why}", self.tier_name(t))
                        }
                    })
                    .collect();
                let reason = format!(
                    "{} allows no tier: {}; relax the policy or declare a tier that meets it",
                    policy.label(),
                    excluded.join("; ")
                );
                (index, reason)
            })
            .collect()
    }

    /// The name of tier `t`, for sentences.
    pub fn tier_name(&self, tier: usize) -> &str {
        self.tier_names.get(tier).map_or("?", String::as_str)
    }

    /// `policy "eu" (prefix "eu/") forbids hot: regions (...)`, when it does.
    pub fn forbids_text(&self, policy: Option<usize>, tier: usize) -> Option<String> {
        let compiled = self.policies.get(policy?)?;
        let why = compiled.why_excluded(tier)?;
        Some(format!(
            "{} forbids {}: {why}",
            compiled.label(),
            self.tier_name(tier)
        ))
    }
}

/// The allowed tier nearest `anchor`, the hotter (lower index) on a tie.
fn nearest_allowed(policy: &CompiledPolicy, anchor: usize) -> Option<usize> {
    policy
        .allowed_tiers()
        .min_by_key(|&t| (t.abs_diff(anchor), t))
}

/// A policy's verdict on one tier: every constraint it fails, or allowed.
fn verdict(policy: &PolicyConfig, tier: &TierConfig, by_class: &RedundancyByClass) -> TierVerdict {
    let mut failed = Vec::new();
    if let Some(pinned) = &policy.pinned_tier {
        if *pinned != tier.name {
            failed.push(format!("pinned_tier (pinned to {pinned:?})"));
        }
    }
    if let Some(objective) = policy.latency_objective_ms {
        if tier.read_latency_ms > objective {
            failed.push(format!(
                "latency_objective_ms (reads take {} ms, above {objective} ms)",
                tier.read_latency_ms
            ));
        }
    }
    if let Some(max) = policy.max_cost_per_gb_month {
        if tier.cost_per_gb_month > max {
            failed.push(format!(
                "max_cost_per_gb_month (costs {} per GB-month, above {max})",
                tier.cost_per_gb_month
            ));
        }
    }
    if let Some(min) = &policy.min_redundancy {
        match tier_failures_tolerated(tier, by_class) {
            Some(have) if have >= min.failures_tolerated => {}
            Some(have) => failed.push(format!(
                "min_redundancy (tolerates {have} failures, needs {} for {})",
                min.failures_tolerated, min.as_written
            )),
            None => failed.push(format!(
                "min_redundancy (its redundancy {:?} cannot be read)",
                tier.redundancy
            )),
        }
    }
    if policy.encryption_required && tier.encryption.is_none() {
        failed.push("encryption_required (the tier has no encryption)".to_string());
    }
    if !policy.regions.is_empty() {
        match &tier.region {
            Some(region) if policy.regions.contains(region) => {}
            Some(region) => failed.push(format!(
                "regions (region {region:?} is not one of {:?})",
                policy.regions
            )),
            None => failed.push(format!(
                "regions (the tier declares no region; allowed {:?})",
                policy.regions
            )),
        }
    }
    if failed.is_empty() {
        TierVerdict::Allowed
    } else {
        TierVerdict::Excluded(failed.join(", "))
    }
}
