//! The whole path the server will run, on the default local configuration and simulated
//! time: NDJSON events → tracker → classification → plan, a spike promoted at once, a
//! periodic demotion after minimum residency, and a flush/restart that keeps the history.

use strata_heat::units::{DAY_MS, HOUR_MS};
use strata_heat::{AccessStats, AccessSummary, AccessTracker, ObjectState, Reason, TieringConfig};

const T0: i64 = 1_767_225_600_000;

struct Object {
    key: &'static str,
    size: u64,
    tier: String,
    placed_at_ms: i64,
}

fn states(
    config: &TieringConfig,
    tracker: &AccessTracker,
    objects: &[Object],
    now: i64,
) -> Vec<ObjectState> {
    let rules = config.classification_rules();
    objects
        .iter()
        .map(|o| {
            let summary = tracker
                .summary(o.key, now)
                .unwrap_or(AccessSummary::never_accessed(now));
            ObjectState {
                key: o.key.to_string(),
                size: o.size,
                tier: o.tier.clone(),
                placed_at_ms: o.placed_at_ms,
                decision: rules.classify(&summary),
            }
        })
        .collect()
}

fn ndjson(key: &str, times: impl IntoIterator<Item = i64>, op: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for ts in times {
        body.extend_from_slice(
            format!("{{\"ts\":{ts},\"key\":\"{key}\",\"op\":\"{op}\",\"bytes\":1024}}\n")
                .as_bytes(),
        );
    }
    body
}

#[test]
fn an_object_through_its_life() {
    let config = TieringConfig::default_local("/tmp/strata-test");
    let mut tracker = AccessTracker::new(config.tracker_config());
    let used = |_: &str| 0;
    let planner = config.planner(used).unwrap();

    // Written at T0: lands on the default tier.
    let mut objects = vec![Object {
        key: "reports/q4.pdf",
        size: 1 << 20,
        tier: config.default_tier.clone(),
        placed_at_ms: T0,
    }];
    let (_, report) = tracker.ingest_ndjson(T0, &ndjson("reports/q4.pdf", [T0], "write"));
    assert_eq!(report.rejected, 0);

    // Two hours later, the periodic pass: written within 24h and not read, so it stays.
    let now = T0 + 2 * HOUR_MS;
    let plan = planner.plan(now, &states(&config, &tracker, &objects, now));
    assert!(plan.moves.is_empty() && plan.waits.is_empty());
    assert_eq!(plan.in_place, 1);

    // Two days later: cold, and past warm's 24h residency, so it goes down.
    let now = T0 + 2 * DAY_MS;
    let plan = planner.plan(now, &states(&config, &tracker, &objects, now));
    assert_eq!(plan.moves.len(), 1);
    let m = &plan.moves[0];
    assert_eq!(
        (m.from.as_str(), m.to.as_str(), m.reason),
        ("warm", "cold", Reason::RuleCold)
    );
    objects[0].tier = m.to.clone();
    objects[0].placed_at_ms = now;

    // Flush, then a restart: the statistics come back from their persisted form.
    let batch = tracker.take_dirty();
    assert_eq!(batch.upserts.len(), 1);
    let rows: Vec<(String, String)> = batch
        .upserts
        .iter()
        .map(|(key, stats)| (key.to_string(), stats.encode_json(tracker.decay())))
        .collect();
    let mut tracker = AccessTracker::new(config.tracker_config());
    for (key, row) in &rows {
        let stats = AccessStats::decode_json(row, tracker.decay()).unwrap();
        tracker.load(key, stats);
    }
    assert_eq!(
        tracker.snapshot("reports/q4.pdf").unwrap().last_write_ms(),
        Some(T0)
    );

    // A day later, a burst of reads: the tracker reports a spike during ingest, and the
    // reactive pass promotes straight to hot.
    let burst = T0 + 3 * DAY_MS;
    let (outcome, _) = tracker.ingest_ndjson(
        burst + 10 * 60_000,
        &ndjson(
            "reports/q4.pdf",
            (0..30).map(|i| burst + i * 20_000),
            "read",
        ),
    );
    assert_eq!(outcome.spikes, 1);
    let spiking = tracker.take_spikes();
    assert_eq!(&*spiking[0], "reports/q4.pdf");
    let now = burst + 10 * 60_000;
    let states_now = states(&config, &tracker, &objects, now);
    assert_eq!(states_now[0].decision.reason, Reason::ReactiveAccessSpike);
    let plan = planner.plan_spikes(now, &states_now);
    assert_eq!(plan.moves.len(), 1);
    let m = &plan.moves[0];
    assert_eq!(
        (m.from.as_str(), m.to.as_str(), m.reason),
        ("cold", "hot", Reason::ReactiveAccessSpike)
    );
    assert!(
        m.explanation
            .starts_with("promote cold → hot: hot at once: access spike"),
        "{}",
        m.explanation
    );

    // What `strata explain` would print, and what the API would return.
    let json = serde_json::to_value(m).unwrap();
    assert_eq!(json["reason"], "reactive_access_spike");
    assert_eq!(json["inputs"]["decision"]["inputs"]["count_1h"], 30);
}

#[test]
fn a_write_alone_does_not_move_a_new_object_off_its_default_tier() {
    for default_tier in ["hot", "warm", "cold"] {
        let mut config = TieringConfig::default_local("/tmp/strata-test");
        config.default_tier = default_tier.to_string();
        for tier in &mut config.tiers {
            tier.min_residency = std::time::Duration::ZERO;
        }
        let planner = config.planner(|_| 0).unwrap();
        let mut tracker = AccessTracker::new(config.tracker_config());
        let (outcome, _) = tracker.ingest_ndjson(T0, &ndjson("new", [T0], "write"));
        assert_eq!(outcome.spikes, 0);
        let objects = [Object {
            key: "new",
            size: 1 << 20,
            tier: default_tier.to_string(),
            placed_at_ms: T0,
        }];
        // Every periodic pass within warm_within leaves it where it was placed.
        for now in [T0, T0 + 1, T0 + 30 * 60_000, T0 + 2 * HOUR_MS, T0 + DAY_MS] {
            let states = states(&config, &tracker, &objects, now);
            assert_eq!(states[0].decision.reason, Reason::RecentWrite);
            let plan = planner.plan(now, &states);
            assert!(
                plan.moves.is_empty() && plan.waits.is_empty(),
                "{default_tier} at +{}ms: {plan:?}",
                now - T0
            );
            assert_eq!(plan.in_place, 1);
        }
        // Unread for longer than warm_within: cold, like any object nobody reads.
        let now = T0 + DAY_MS + HOUR_MS;
        let plan = planner.plan(now, &states(&config, &tracker, &objects, now));
        let moved: Vec<&str> = plan.moves.iter().map(|m| m.to.as_str()).collect();
        let expected: &[&str] = if default_tier == "cold" {
            &[]
        } else {
            &["cold"]
        };
        assert_eq!(moved, expected, "{default_tier}");
    }
}

#[test]
fn reads_after_a_write_still_promote() {
    let config = TieringConfig::default_local("/tmp/strata-test");
    let planner = config.planner(|_| 0).unwrap();
    let mut tracker = AccessTracker::new(config.tracker_config());
    tracker.ingest_ndjson(T0, &ndjson("read-a-lot", [T0], "write"));
    // Fewer reads than a spike needs: the periodic pass promotes by recency.
    let reads = (1..=5).map(|i| T0 + i * 60_000);
    tracker.ingest_ndjson(T0 + 5 * 60_000, &ndjson("read-a-lot", reads, "read"));
    let objects = [Object {
        key: "read-a-lot",
        size: 1 << 20,
        tier: config.default_tier.clone(),
        placed_at_ms: T0,
    }];
    let now = T0 + 10 * 60_000;
    let plan = planner.plan(now, &states(&config, &tracker, &objects, now));
    let moves: Vec<(&str, Reason)> = plan
        .moves
        .iter()
        .map(|m| (m.to.as_str(), m.reason))
        .collect();
    assert_eq!(moves, [("hot", Reason::RuleHotRecent)]);
}
