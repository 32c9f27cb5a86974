//! Builders shared by the placement tests: decisions, objects and tiers at a fixed "now".
#![allow(dead_code)]

use strata_heat::classify::DecisionInputs;
use strata_heat::{Class, Decision, ObjectState, Reason, Rules, TierState};

/// The fixed "now" of every placement test.
pub const NOW: i64 = 1_767_225_600_000;

pub fn decision(class: Class, reason: Reason, rate: f64, last: Option<i64>) -> Decision {
    Decision {
        class,
        reason,
        inputs: DecisionInputs {
            now_ms: NOW,
            count_1h: 0,
            count_24h: 0,
            count_7d: 0,
            fast_rate_per_hour: rate,
            slow_rate_per_hour: rate,
            last_access_ms: last,
            last_access_age_ms: last.map(|at| NOW - at),
            last_write_age_ms: None,
            rules: Rules::default(),
        },
    }
}

pub fn hot(rate: f64) -> Decision {
    decision(Class::Hot, Reason::RuleHotRate, rate, Some(NOW))
}

pub fn spike(fast: f64) -> Decision {
    let mut d = decision(Class::Hot, Reason::ReactiveAccessSpike, 1.0, Some(NOW));
    d.inputs.fast_rate_per_hour = fast;
    d
}

pub fn warm(rate: f64, last: i64) -> Decision {
    decision(Class::Warm, Reason::RuleWarmRate, rate, Some(last))
}

pub fn cold(rate: f64, last: Option<i64>) -> Decision {
    decision(Class::Cold, Reason::RuleCold, rate, last)
}

pub fn obj(key: &str, size: u64, tier: &str, placed_ago: i64, decision: Decision) -> ObjectState {
    ObjectState {
        key: key.to_string(),
        size,
        tier: tier.to_string(),
        placed_at_ms: NOW - placed_ago,
        decision,
    }
}

pub fn tier(name: &str, capacity: Option<u64>, used: u64, min_residency_ms: i64) -> TierState {
    TierState {
        name: name.to_string(),
        capacity,
        used_bytes: used,
        min_residency_ms,
    }
}
