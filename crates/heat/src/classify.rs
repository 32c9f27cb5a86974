//! Classification: which class (hot, warm, cold) an object's accesses put it in, and why.
//!
//! Owned here: the rules ([`Rules`], [`SpikeRule`]), the [`Decision`] they produce with its
//! stable [`Reason`] code and the numbers it was made from ([`DecisionInputs`]), and the
//! sentence `strata explain` prints for it. Placement reasons (capacity, residency) share the
//! same [`Reason`] enum so that every recorded decision, whatever made it, has one code space.
//!
//! The rules, in the order they are tried (the first that holds decides):
//! 1. `reactive_access_spike`: recent rate ≥ `spike.factor` × the object's baseline rate and
//!    at least `spike.min_events_1h` accesses in the last hour → hot, at once;
//! 2. `rule_hot_rate`: more than `hot_per_day` accesses in the last 24 hours → hot;
//! 3. `rule_hot_recent`: last access at most `hot_within` ago → hot;
//! 4. `rule_warm_rate`: more than `warm_per_day` accesses in the last 24 hours → warm;
//! 5. `rule_warm_recent`: last access at most `warm_within` ago → warm;
//! 6. `recent_write`: written at most `warm_within` ago → cold, but held where it is
//!    ([`Decision::holds_in_place`]): a new object stays on the tier it was placed on until
//!    its reads say otherwise, or until it has gone unread for `warm_within`;
//! 7. `rule_cold`: otherwise (or never accessed) → cold.
//!
//! Accesses are reads: a write is no sign of demand (see [`crate::stats`]), so a PUT alone
//! never makes an object hot or warm.

use serde::{Deserialize, Serialize};

use crate::stats::AccessSummary;
use crate::units::{human_duration_ms, DAY_MS, HOUR_MS};

/// How hot an object is. Ordered: `Cold < Warm < Hot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Rarely or never accessed.
    Cold,
    /// Accessed now and then.
    Warm,
    /// Accessed often or just now.
    Hot,
}

impl Class {
    /// `hot`, `warm` or `cold`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Hot => "hot",
            Class::Warm => "warm",
            Class::Cold => "cold",
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an object is in a class, is moved, or waits. The snake_case codes are stable: they
/// are stored in the catalog, returned by the API and matched by operators' alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// More than `hot_per_day` accesses in the last 24 hours.
    RuleHotRate,
    /// Accessed within `hot_within`.
    RuleHotRecent,
    /// More than `warm_per_day` accesses in the last 24 hours.
    RuleWarmRate,
    /// Accessed within `warm_within`.
    RuleWarmRecent,
    /// None of the hot or warm rules holds.
    RuleCold,
    /// A burst far above the object's own baseline: promoted at once.
    ReactiveAccessSpike,
    /// Moved down to make room on a full (or over-full) tier; the coldest objects go first.
    CapacityFullDemote,
    /// A demotion held back because the object has not stayed its tier's minimum residency.
    MinResidencyHold,
    /// A move waiting because its target tier is full and no colder object can make room.
    TierFullWait,
    /// A move waiting because this planning pass reached its move budget.
    MoveBudgetExhausted,
    /// The object is on a tier the configuration does not declare; it is left in place.
    UnknownTier,
    /// A new object, placed on the configured default tier.
    DefaultTier,
    /// Not read enough to be warm, but written within `warm_within`: held on its tier.
    RecentWrite,
    /// Moved by the cost optimiser: its placement under capacity saves money on the tiers
    /// the rules accept for its class.
    CostOptimisation,
    /// Moved (or placed) because its `[[policy]]` forbids the tier it was on (or would land
    /// on): a policy added or changed, or a tier's region or encryption changed.
    Policy,
}

impl Reason {
    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::RuleHotRate => "rule_hot_rate",
            Reason::RuleHotRecent => "rule_hot_recent",
            Reason::RuleWarmRate => "rule_warm_rate",
            Reason::RuleWarmRecent => "rule_warm_recent",
            Reason::RuleCold => "rule_cold",
            Reason::ReactiveAccessSpike => "reactive_access_spike",
            Reason::CapacityFullDemote => "capacity_full_demote",
            Reason::MinResidencyHold => "min_residency_hold",
            Reason::TierFullWait => "tier_full_wait",
            Reason::MoveBudgetExhausted => "move_budget_exhausted",
            Reason::UnknownTier => "unknown_tier",
            Reason::DefaultTier => "default_tier",
            Reason::RecentWrite => "recent_write",
            Reason::CostOptimisation => "cost_optimisation",
            Reason::Policy => "policy",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The spike rule: recent rate far above the object's own baseline, with enough events
/// that a couple of reads of an idle object do not count.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpikeRule {
    /// Fast rate must be at least this multiple of the slow (baseline) rate.
    pub factor: f64,
    /// And at least this many accesses in the last hour.
    pub min_events_1h: u64,
}

impl SpikeRule {
    /// Whether these numbers make a spike.
    #[inline]
    pub fn holds(&self, fast_rate: f64, slow_rate: f64, count_1h: u64) -> bool {
        count_1h >= self.min_events_1h && fast_rate > 0.0 && fast_rate >= self.factor * slow_rate
    }
}

impl Default for SpikeRule {
    /// Eight times the baseline and at least 20 accesses in the last hour.
    fn default() -> Self {
        SpikeRule {
            factor: 8.0,
            min_events_1h: 20,
        }
    }
}

/// The classification thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// Hot above this many accesses in the last 24 hours.
    pub hot_per_day: u64,
    /// Hot when the last access is at most this old (ms).
    pub hot_within_ms: i64,
    /// Warm above this many accesses in the last 24 hours.
    pub warm_per_day: u64,
    /// Warm when the last access is at most this old (ms).
    pub warm_within_ms: i64,
    /// The reactive promotion rule.
    pub spike: SpikeRule,
}

impl Default for Rules {
    /// Hot: more than 100 a day or an access within the last hour; warm: more than 10 a day
    /// or within 24 hours; cold otherwise.
    fn default() -> Self {
        Rules {
            hot_per_day: 100,
            hot_within_ms: HOUR_MS,
            warm_per_day: 10,
            warm_within_ms: DAY_MS,
            spike: SpikeRule::default(),
        }
    }
}

/// The numbers a decision was made from, thresholds included, so that the decision explains
/// itself even after the configuration changed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionInputs {
    /// When the decision was made (ms since the Unix epoch).
    pub now_ms: i64,
    /// Accesses in the last hour.
    pub count_1h: u64,
    /// Accesses in the last 24 hours.
    pub count_24h: u64,
    /// Accesses in the last 7 days.
    pub count_7d: u64,
    /// Recent rate, accesses per hour.
    pub fast_rate_per_hour: f64,
    /// Baseline rate, accesses per hour.
    pub slow_rate_per_hour: f64,
    /// Last access, if any.
    pub last_access_ms: Option<i64>,
    /// Age of the last access, if any.
    pub last_access_age_ms: Option<i64>,
    /// Age of the last write, if any.
    #[serde(default)]
    pub last_write_age_ms: Option<i64>,
    /// The thresholds in force.
    pub rules: Rules,
}

/// A class with its reason and inputs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The class.
    pub class: Class,
    /// The rule that decided it.
    pub reason: Reason,
    /// The numbers it was decided from.
    pub inputs: DecisionInputs,
}

impl Rules {
    /// Classifies an object from its access summary.
    pub fn classify(&self, summary: &AccessSummary) -> Decision {
        let inputs = DecisionInputs {
            now_ms: summary.now_ms,
            count_1h: summary.count_1h,
            count_24h: summary.count_24h,
            count_7d: summary.count_7d,
            fast_rate_per_hour: summary.fast_rate_per_hour,
            slow_rate_per_hour: summary.slow_rate_per_hour,
            last_access_ms: summary.last_access_ms,
            last_access_age_ms: summary.last_access_age_ms,
            last_write_age_ms: summary.last_write_age_ms,
            rules: *self,
        };
        let within = |limit: i64| summary.last_access_age_ms.is_some_and(|age| age <= limit);
        let (class, reason) = if self.spike.holds(
            summary.fast_rate_per_hour,
            summary.slow_rate_per_hour,
            summary.count_1h,
        ) {
            (Class::Hot, Reason::ReactiveAccessSpike)
        } else if summary.count_24h > self.hot_per_day {
            (Class::Hot, Reason::RuleHotRate)
        } else if within(self.hot_within_ms) {
            (Class::Hot, Reason::RuleHotRecent)
        } else if summary.count_24h > self.warm_per_day {
            (Class::Warm, Reason::RuleWarmRate)
        } else {
            self.classify_by_age(summary.last_access_age_ms, summary.last_write_age_ms)
        };
        Decision {
            class,
            reason,
            inputs,
        }
    }
}

impl Rules {
    /// The class and rule of an object for which neither the spike rule nor a rate rule
    /// holds, from the ages of its last access and last write alone (rules 3, 5, 6 and 7
    /// of the module's doc).
    pub fn classify_by_age(
        &self,
        last_access_age_ms: Option<i64>,
        last_write_age_ms: Option<i64>,
    ) -> (Class, Reason) {
        let within = |limit: i64| last_access_age_ms.is_some_and(|age| age <= limit);
        if within(self.hot_within_ms) {
            (Class::Hot, Reason::RuleHotRecent)
        } else if within(self.warm_within_ms) {
            (Class::Warm, Reason::RuleWarmRecent)
        } else if last_write_age_ms.is_some_and(|age| age <= self.warm_within_ms) {
            (Class::Cold, Reason::RecentWrite)
        } else {
            (Class::Cold, Reason::RuleCold)
        }
    }
}

impl Decision {
    /// Whether this decision asks for an immediate promotion.
    pub fn is_spike(&self) -> bool {
        self.reason == Reason::ReactiveAccessSpike
    }

    /// Whether the object stays on the tier it is on, whatever its class's tiers: it was
    /// written recently and its reads do not say where it belongs yet.
    pub fn holds_in_place(&self) -> bool {
        self.reason == Reason::RecentWrite
    }

    /// One sentence for `strata explain`, e.g. `hot: 240 accesses in the last 24h > 100/day`.
    pub fn explain(&self) -> String {
        let i = &self.inputs;
        let r = &i.rules;
        let age = |age: Option<i64>| match age {
            Some(age) => format!("last access {} ago", human_duration_ms(age)),
            None => "never accessed".to_string(),
        };
        match self.reason {
            Reason::ReactiveAccessSpike => format!(
                "hot at once: access spike, {:.1}/h now against a {:.1}/h baseline \
                 (at least {}x) and {} accesses in the last hour (at least {})",
                i.fast_rate_per_hour,
                i.slow_rate_per_hour,
                r.spike.factor,
                i.count_1h,
                r.spike.min_events_1h
            ),
            Reason::RuleHotRate => format!(
                "hot: {} accesses in the last 24h > {}/day",
                i.count_24h, r.hot_per_day
            ),
            Reason::RuleHotRecent => format!(
                "hot: {}, within {}",
                age(i.last_access_age_ms),
                human_duration_ms(r.hot_within_ms)
            ),
            Reason::RuleWarmRate => format!(
                "warm: {} accesses in the last 24h > {}/day",
                i.count_24h, r.warm_per_day
            ),
            Reason::RuleWarmRecent => format!(
                "warm: {}, within {}",
                age(i.last_access_age_ms),
                human_duration_ms(r.warm_within_ms)
            ),
            Reason::RecentWrite => format!(
                "stays where it is: written {} ago and {}; a write is no sign of demand, so \
                 its reads decide (cold once unread for {})",
                human_duration_ms(i.last_write_age_ms.unwrap_or(0)),
                match i.last_access_age_ms {
                    Some(age) => format!("last read {} ago", human_duration_ms(age)),
                    None => "not read since".to_string(),
                },
                human_duration_ms(r.warm_within_ms)
            ),
            Reason::RuleCold if i.last_access_age_ms.is_none() => {
                "cold: never accessed".to_string()
            }
            Reason::RuleCold => format!(
                "cold: {} accesses in the last 24h <= {}/day and {}, more than {}",
                i.count_24h,
                r.warm_per_day,
                age(i.last_access_age_ms),
                human_duration_ms(r.warm_within_ms)
            ),
            other => format!("{}: {}", self.class, other.code()),
        }
    }
}
