//! The default rules at their thresholds, spike promotion, and the explanations.

use strata_heat::units::{DAY_MS, HOUR_MS, MINUTE_MS};
use strata_heat::{AccessStats, AccessSummary, Class, Decay, Op, Reason, Rules};

const T0: i64 = 1_767_225_600_000;

/// Stats with `n` reads spread evenly over `[from, to)`.
fn reads(n: i64, from: i64, to: i64) -> AccessStats {
    let mut stats = AccessStats::new();
    for i in 0..n {
        stats.record(
            &Decay::default(),
            from + (to - from) * i / n.max(1),
            Op::Read,
            1,
        );
    }
    stats
}

fn classify(stats: &AccessStats, now: i64) -> (Class, Reason) {
    let decision = Rules::default().classify(&stats.summary(&Decay::default(), now));
    (decision.class, decision.reason)
}

/// `n` reads a while back, so neither recency rule applies at `now`.
fn old_reads(n: i64) -> (AccessStats, i64) {
    let now = T0 + 25 * HOUR_MS - 1;
    (reads(n, T0 + HOUR_MS, T0 + 2 * HOUR_MS), now)
}

#[test]
fn hot_above_100_a_day() {
    let (stats, now) = old_reads(101);
    assert_eq!(stats.count_24h(now), 101);
    assert_eq!(classify(&stats, now), (Class::Hot, Reason::RuleHotRate));
    let (stats, now) = old_reads(100);
    assert_eq!(
        classify(&stats, now),
        (Class::Warm, Reason::RuleWarmRate),
        "100 is not more than 100"
    );
}

#[test]
fn warm_above_10_a_day() {
    let (stats, now) = old_reads(11);
    assert_eq!(classify(&stats, now), (Class::Warm, Reason::RuleWarmRate));
    let (stats, now) = old_reads(10);
    let (class, reason) = classify(&stats, now);
    // 23 hours after the last read: still within 24h.
    assert_eq!((class, reason), (Class::Warm, Reason::RuleWarmRecent));
    let now = T0 + 2 * HOUR_MS + DAY_MS + MINUTE_MS;
    assert_eq!(
        classify(&stats, now),
        (Class::Cold, Reason::RuleCold),
        "10 is not more than 10"
    );
}

#[test]
fn hot_within_an_hour_inclusive() {
    let stats = reads(1, T0, T0 + 1);
    assert_eq!(classify(&stats, T0), (Class::Hot, Reason::RuleHotRecent));
    assert_eq!(
        classify(&stats, T0 + HOUR_MS),
        (Class::Hot, Reason::RuleHotRecent)
    );
    assert_eq!(
        classify(&stats, T0 + HOUR_MS + 1),
        (Class::Warm, Reason::RuleWarmRecent)
    );
}

#[test]
fn warm_within_a_day_inclusive() {
    let stats = reads(1, T0, T0 + 1);
    assert_eq!(
        classify(&stats, T0 + DAY_MS),
        (Class::Warm, Reason::RuleWarmRecent)
    );
    assert_eq!(
        classify(&stats, T0 + DAY_MS + 1),
        (Class::Cold, Reason::RuleCold)
    );
}

#[test]
fn never_accessed_is_cold() {
    let decision = Rules::default().classify(&AccessSummary::never_accessed(T0));
    assert_eq!(
        (decision.class, decision.reason),
        (Class::Cold, Reason::RuleCold)
    );
    assert_eq!(decision.explain(), "cold: never accessed");
    assert_eq!(decision.inputs.last_access_age_ms, None);
}

#[test]
fn a_spike_over_a_quiet_baseline_promotes_at_once() {
    // One read every two hours for three days: warm by the rules.
    let mut stats = reads(36, T0, T0 + 3 * DAY_MS);
    let start = T0 + 3 * DAY_MS + 3 * HOUR_MS;
    assert_eq!(classify(&stats, start).0, Class::Warm);
    // 30 reads in five minutes.
    for i in 0..30 {
        stats.record(&Decay::default(), start + i * 10_000, Op::Read, 1);
    }
    let now = start + 5 * MINUTE_MS;
    let decision = Rules::default().classify(&stats.summary(&Decay::default(), now));
    assert_eq!(
        (decision.class, decision.reason),
        (Class::Hot, Reason::ReactiveAccessSpike)
    );
    assert!(decision.is_spike());
    let i = decision.inputs;
    assert!(i.fast_rate_per_hour >= 8.0 * i.slow_rate_per_hour, "{i:?}");
    assert_eq!(i.count_1h, 30);
    assert!(
        decision
            .explain()
            .starts_with("hot at once: access spike, "),
        "{}",
        decision.explain()
    );
}

#[test]
fn too_few_events_or_a_steady_rate_is_no_spike() {
    let decay = Decay::default();
    // 19 reads at once on a new object: the ratio is high but below 20 events.
    let stats = reads(19, T0, T0 + MINUTE_MS);
    let d = Rules::default().classify(&stats.summary(&decay, T0 + MINUTE_MS));
    assert_eq!(d.reason, Reason::RuleHotRecent);
    // A steady 200 reads a day for a week: hot by rate, never a spike.
    let stats = reads(1400, T0, T0 + 7 * DAY_MS);
    let d = Rules::default().classify(&stats.summary(&decay, T0 + 7 * DAY_MS));
    assert_eq!(d.reason, Reason::RuleHotRate);
    let ratio = d.inputs.fast_rate_per_hour / d.inputs.slow_rate_per_hour;
    assert!((0.5..2.0).contains(&ratio), "steady ratio {ratio}");
}

#[test]
fn thresholds_are_configurable() {
    let rules = Rules {
        hot_per_day: 5,
        hot_within_ms: 0,
        warm_per_day: 1,
        warm_within_ms: 0,
        ..Rules::default()
    };
    let (stats, now) = old_reads(6);
    assert_eq!(
        rules
            .classify(&stats.summary(&Decay::default(), now))
            .reason,
        Reason::RuleHotRate
    );
    let (stats, now) = old_reads(2);
    assert_eq!(
        rules
            .classify(&stats.summary(&Decay::default(), now))
            .reason,
        Reason::RuleWarmRate
    );
    let (stats, now) = old_reads(1);
    assert_eq!(
        rules
            .classify(&stats.summary(&Decay::default(), now))
            .reason,
        Reason::RuleCold
    );
}

#[test]
fn explanations_read_like_sentences() {
    let (stats, now) = old_reads(240);
    let d = Rules::default().classify(&stats.summary(&Decay::default(), now));
    assert_eq!(d.explain(), "hot: 240 accesses in the last 24h > 100/day");
    let stats = reads(1, T0, T0 + 1);
    let d = Rules::default().classify(&stats.summary(&Decay::default(), T0 + 12 * MINUTE_MS));
    assert_eq!(d.explain(), "hot: last access 12m ago, within 1h");
    let d = Rules::default().classify(&stats.summary(&Decay::default(), T0 + 5 * HOUR_MS));
    assert_eq!(d.explain(), "warm: last access 5h ago, within 1d");
    let (stats, now) = old_reads(37);
    let d = Rules::default().classify(&stats.summary(&Decay::default(), now));
    assert_eq!(d.explain(), "warm: 37 accesses in the last 24h > 10/day");
    let d = Rules::default().classify(&stats.summary(&Decay::default(), T0 + 3 * DAY_MS));
    assert_eq!(
        d.explain(),
        "cold: 0 accesses in the last 24h <= 10/day and last access 2d 22h ago, more than 1d"
    );
}

#[test]
fn reason_codes_are_stable_snake_case() {
    let all = [
        (Reason::RuleHotRate, "rule_hot_rate"),
        (Reason::RuleHotRecent, "rule_hot_recent"),
        (Reason::RuleWarmRate, "rule_warm_rate"),
        (Reason::RuleWarmRecent, "rule_warm_recent"),
        (Reason::RuleCold, "rule_cold"),
        (Reason::ReactiveAccessSpike, "reactive_access_spike"),
        (Reason::CapacityFullDemote, "capacity_full_demote"),
        (Reason::MinResidencyHold, "min_residency_hold"),
        (Reason::TierFullWait, "tier_full_wait"),
        (Reason::MoveBudgetExhausted, "move_budget_exhausted"),
        (Reason::UnknownTier, "unknown_tier"),
        (Reason::DefaultTier, "default_tier"),
        (Reason::CostOptimisation, "cost_optimisation"),
    ];
    for (reason, code) in all {
        assert_eq!(reason.code(), code);
        assert_eq!(
            serde_json::to_string(&reason).unwrap(),
            format!("\"{code}\"")
        );
        assert_eq!(
            serde_json::from_str::<Reason>(&format!("\"{code}\"")).unwrap(),
            reason
        );
    }
}

#[test]
fn decisions_serialise_with_their_inputs() {
    let (stats, now) = old_reads(101);
    let decision = Rules::default().classify(&stats.summary(&Decay::default(), now));
    let json = serde_json::to_value(decision).unwrap();
    assert_eq!(json["class"], "hot");
    assert_eq!(json["reason"], "rule_hot_rate");
    assert_eq!(json["inputs"]["count_24h"], 101);
    assert_eq!(json["inputs"]["rules"]["hot_per_day"], 100);
    let back: strata_heat::Decision = serde_json::from_value(json).unwrap();
    assert_eq!(back, decision);
}

#[test]
fn a_write_alone_does_not_make_an_object_hot() {
    let mut stats = AccessStats::new();
    stats.record(&Decay::default(), T0, Op::Write, 1 << 20);
    for now in [T0, T0 + HOUR_MS / 2, T0 + DAY_MS] {
        let decision = Rules::default().classify(&stats.summary(&Decay::default(), now));
        assert_eq!(
            (decision.class, decision.reason),
            (Class::Cold, Reason::RecentWrite)
        );
        assert!(decision.holds_in_place(), "a new object stays where it is");
        assert!(
            decision.explain().starts_with("stays where it is: written"),
            "{}",
            decision.explain()
        );
    }
    assert_eq!(
        classify(&stats, T0 + DAY_MS + 1),
        (Class::Cold, Reason::RuleCold)
    );
    // Even a storm of writes is no sign of demand.
    for i in 0..1000 {
        stats.record(&Decay::default(), T0 + i, Op::Write, 1);
    }
    assert_eq!(
        classify(&stats, T0 + 1000),
        (Class::Cold, Reason::RecentWrite)
    );
    // Reads decide.
    stats.record(&Decay::default(), T0 + 1000, Op::Read, 1);
    assert_eq!(
        classify(&stats, T0 + 1000),
        (Class::Hot, Reason::RuleHotRecent)
    );
}
