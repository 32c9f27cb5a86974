//! Placement plans: moves toward each class's tier, capacity-full demotion of the coldest,
//! residency holds, waits with reasons, budgets, determinism, and a randomised check that
//! no schedule of a plan's moves ever overfills a tier.

use strata_heat::units::{HOUR_MS, MINUTE_MS};
use strata_heat::{ClassTiers, PlacementPlan, Planner, Reason, TierState};

mod common;
use common::*;

fn three(caps: [Option<u64>; 3], used: [u64; 3]) -> Vec<TierState> {
    vec![
        tier("hot", caps[0], used[0], 0),
        tier("warm", caps[1], used[1], 0),
        tier("cold", caps[2], used[2], 0),
    ]
}

fn summary(plan: &PlacementPlan) -> Vec<(String, String, String, &'static str)> {
    plan.moves
        .iter()
        .map(|m| (m.key.clone(), m.from.clone(), m.to.clone(), m.reason.code()))
        .collect()
}

fn mv(
    key: &str,
    from: &str,
    to: &str,
    reason: &'static str,
) -> (String, String, String, &'static str) {
    (key.into(), from.into(), to.into(), reason)
}

#[test]
fn objects_move_toward_their_class_tier() {
    let planner = Planner::new(three([None; 3], [0; 3]), ClassTiers::default_for(3), 100).unwrap();
    let objects = [
        obj("up", 10, "cold", HOUR_MS, hot(200.0)),
        obj("down", 10, "hot", HOUR_MS, cold(0.0, None)),
        obj("stay", 10, "warm", HOUR_MS, warm(1.0, NOW)),
        obj("mid", 10, "hot", HOUR_MS, warm(1.0, NOW)),
    ];
    let plan = planner.plan(NOW, &objects);
    assert_eq!(
        summary(&plan),
        [
            mv("up", "cold", "hot", "rule_hot_rate"),
            mv("down", "hot", "cold", "rule_cold"),
            mv("mid", "hot", "warm", "rule_warm_rate"),
        ]
    );
    assert_eq!(plan.in_place, 1);
    assert!(plan.waits.is_empty());
    assert_eq!(
        plan.moves[0].explanation,
        format!("promote cold → hot: {}", hot(200.0).explain())
    );
    assert!(plan.moves[1]
        .explanation
        .starts_with("demote hot → cold: cold: never accessed"));
    assert_eq!(plan.tiers[0].incoming_bytes, 10);
    assert_eq!(plan.tiers[0].outgoing_bytes, 20);
}

/// Hot may hold warm objects too: they stay unless room is needed.
fn shared_hot_classes() -> ClassTiers {
    ClassTiers {
        hot: vec![0],
        warm: vec![0, 1],
        cold: vec![2],
    }
}

#[test]
fn a_full_tier_demotes_its_coldest_objects_first() {
    let tiers = three([Some(100), None, None], [100, 0, 0]);
    let planner = Planner::new(tiers, shared_hot_classes(), 100).unwrap();
    let objects = [
        obj("w-busy", 25, "hot", HOUR_MS, warm(5.0, NOW - MINUTE_MS)),
        obj(
            "w-idle-old",
            25,
            "hot",
            HOUR_MS,
            warm(0.5, NOW - 20 * HOUR_MS),
        ),
        obj(
            "w-idle-new",
            25,
            "hot",
            HOUR_MS,
            warm(0.5, NOW - 2 * HOUR_MS),
        ),
        obj("w-mid", 25, "hot", HOUR_MS, warm(1.0, NOW - HOUR_MS)),
        obj("newcomer", 40, "warm", HOUR_MS, hot(150.0)),
    ];
    let plan = planner.plan(NOW, &objects);
    // Lowest baseline rate first; of equal rates, the oldest last access.
    assert_eq!(
        summary(&plan),
        [
            mv("w-idle-old", "hot", "warm", "capacity_full_demote"),
            mv("w-idle-new", "hot", "warm", "capacity_full_demote"),
            mv("newcomer", "warm", "hot", "rule_hot_rate"),
        ]
    );
    assert_eq!(
        plan.moves[2].after,
        [0, 1],
        "the promotion waits for the space it needs"
    );
    assert_eq!(
        plan.moves[0].inputs.made_room_for.as_deref(),
        Some("newcomer")
    );
    let text = &plan.moves[0].explanation;
    assert!(
        text.starts_with(
            "demote hot → warm to make room for newcomer: tier hot full (used 100 B of 100 B)"
        ),
        "{text}"
    );
    assert_eq!(plan.in_place, 4);
}

#[test]
fn eviction_skips_objects_inside_their_minimum_residency() {
    let mut tiers = three([Some(100), None, None], [100, 0, 0]);
    tiers[0].min_residency_ms = HOUR_MS;
    let planner = Planner::new(tiers, shared_hot_classes(), 100).unwrap();
    let objects = [
        obj(
            "coldest-but-new",
            50,
            "hot",
            10 * MINUTE_MS,
            warm(0.1, NOW - 30 * MINUTE_MS),
        ),
        obj(
            "settled",
            50,
            "hot",
            2 * HOUR_MS,
            warm(3.0, NOW - MINUTE_MS),
        ),
        obj("newcomer", 50, "cold", HOUR_MS, hot(150.0)),
    ];
    let plan = planner.plan(NOW, &objects);
    assert_eq!(
        summary(&plan),
        [
            mv("settled", "hot", "warm", "capacity_full_demote"),
            mv("newcomer", "cold", "hot", "rule_hot_rate"),
        ]
    );
}

#[test]
fn a_full_tier_of_equally_hot_objects_makes_the_move_wait() {
    let tiers = three([Some(100), None, None], [100, 0, 0]);
    let planner = Planner::new(tiers, ClassTiers::default_for(3), 100).unwrap();
    let objects = [
        obj("resident", 100, "hot", HOUR_MS, hot(101.0)),
        obj("newcomer", 10, "warm", HOUR_MS, hot(500.0)),
    ];
    let plan = planner.plan(NOW, &objects);
    assert!(
        plan.moves.is_empty(),
        "objects of the same class never evict each other"
    );
    assert_eq!(plan.waits.len(), 1);
    let wait = &plan.waits[0];
    assert_eq!(
        (wait.key.as_str(), wait.on.as_str(), wait.wanted.as_str()),
        ("newcomer", "warm", "hot")
    );
    assert_eq!(wait.reason, Reason::TierFullWait);
    assert!(
        wait.explanation
            .starts_with("tier hot full (used 100 B of 100 B); waiting to move from warm: hot: "),
        "{}",
        wait.explanation
    );
}

#[test]
fn the_last_tier_full_makes_demotions_wait() {
    let tiers = three([None, None, Some(50)], [0, 0, 50]);
    let planner = Planner::new(tiers, ClassTiers::default_for(3), 100).unwrap();
    let plan = planner.plan(NOW, &[obj("c", 10, "hot", HOUR_MS, cold(0.0, None))]);
    assert!(plan.moves.is_empty());
    assert_eq!(plan.waits[0].reason, Reason::TierFullWait);
}

#[test]
fn minimum_residency_holds_demotions_but_not_promotions() {
    let mut tiers = three([None; 3], [0; 3]);
    tiers[0].min_residency_ms = HOUR_MS;
    tiers[2].min_residency_ms = 90 * 24 * HOUR_MS;
    let planner = Planner::new(tiers, ClassTiers::default_for(3), 100).unwrap();
    let objects = [
        obj(
            "fresh",
            10,
            "hot",
            10 * MINUTE_MS,
            cold(0.0, Some(NOW - 10 * MINUTE_MS)),
        ),
        obj("archived", 10, "cold", MINUTE_MS, spike(90.0)),
    ];
    let plan = planner.plan(NOW, &objects);
    assert_eq!(
        summary(&plan),
        [mv("archived", "cold", "hot", "reactive_access_spike")]
    );
    let wait = &plan.waits[0];
    assert_eq!(wait.reason, Reason::MinResidencyHold);
    assert_eq!(wait.until_ms, Some(NOW - 10 * MINUTE_MS + HOUR_MS));
    assert!(
        wait.explanation.starts_with(
            "held on hot: placed 10m ago, minimum residency 1h (50m to go); wants cold"
        ),
        "{}",
        wait.explanation
    );
    // Once the residency is over, the demotion goes ahead.
    let later = planner.plan(NOW + HOUR_MS, &objects[..1]);
    assert_eq!(summary(&later), [mv("fresh", "hot", "cold", "rule_cold")]);
}

#[test]
fn spikes_come_first_within_the_move_budget() {
    let planner = Planner::new(three([None; 3], [0; 3]), ClassTiers::default_for(3), 2).unwrap();
    let objects = [
        obj("demote", 10, "hot", HOUR_MS, cold(0.0, None)),
        obj("promote", 10, "cold", HOUR_MS, hot(1000.0)),
        obj("spike-small", 10, "warm", HOUR_MS, spike(50.0)),
        obj("spike-big", 10, "cold", HOUR_MS, spike(400.0)),
    ];
    let plan = planner.plan(NOW, &objects);
    assert_eq!(
        summary(&plan),
        [
            mv("spike-big", "cold", "hot", "reactive_access_spike"),
            mv("spike-small", "warm", "hot", "reactive_access_spike"),
        ]
    );
    let waiting: Vec<(&str, Reason)> = plan
        .waits
        .iter()
        .map(|w| (w.key.as_str(), w.reason))
        .collect();
    assert_eq!(
        waiting,
        [
            ("promote", Reason::MoveBudgetExhausted),
            ("demote", Reason::MoveBudgetExhausted)
        ]
    );
}

#[test]
fn the_reactive_pass_moves_only_spikes_and_their_room() {
    let tiers = three([Some(100), None, None], [100, 0, 0]);
    let planner = Planner::new(tiers, shared_hot_classes(), 100).unwrap();
    let objects = [
        obj(
            "resident-a",
            50,
            "hot",
            HOUR_MS,
            warm(0.5, NOW - 5 * HOUR_MS),
        ),
        obj("resident-b", 50, "hot", HOUR_MS, warm(2.0, NOW - HOUR_MS)),
        obj("bursting", 40, "cold", HOUR_MS, spike(300.0)),
        obj("rate-hot", 10, "cold", HOUR_MS, hot(300.0)),
        obj("cold-on-warm", 10, "warm", HOUR_MS, cold(0.0, None)),
        obj("lost", 10, "tape", HOUR_MS, cold(0.0, None)),
    ];
    let plan = planner.plan_spikes(NOW, &objects);
    assert_eq!(
        summary(&plan),
        [
            mv("resident-a", "hot", "warm", "capacity_full_demote"),
            mv("bursting", "cold", "hot", "reactive_access_spike"),
        ]
    );
    assert!(
        plan.waits.is_empty(),
        "other wanted moves wait for the periodic pass"
    );
    assert_eq!(planner.plan(NOW, &objects).moves.len(), 4);
}

#[test]
fn demotion_into_a_full_tier_uses_space_being_freed() {
    let tiers = three([None, Some(30), None], [0, 30, 0]);
    let planner = Planner::new(tiers, ClassTiers::default_for(3), 100).unwrap();
    let objects = [
        obj(
            "old-cold",
            20,
            "warm",
            HOUR_MS,
            cold(0.0, Some(NOW - 40 * HOUR_MS)),
        ),
        obj("warm-resident", 10, "warm", HOUR_MS, warm(2.0, NOW)),
        obj("cooling", 15, "hot", HOUR_MS, warm(1.0, NOW - 3 * HOUR_MS)),
    ];
    let plan = planner.plan(NOW, &objects);
    // Demotions go coldest first, so "old-cold" leaves by its own rule and "cooling" takes
    // its space once that move is done.
    assert_eq!(
        summary(&plan),
        [
            mv("old-cold", "warm", "cold", "rule_cold"),
            mv("cooling", "hot", "warm", "rule_warm_rate"),
        ]
    );
    assert_eq!(plan.moves[1].after, [0]);
}

#[test]
fn demotion_into_a_full_tier_pushes_colder_objects_down() {
    let tiers = three([None, Some(30), None], [0, 30, 0]);
    // Cold objects may stay on warm: they move only to make room.
    let classes = ClassTiers {
        hot: vec![0],
        warm: vec![1],
        cold: vec![1, 2],
    };
    let planner = Planner::new(tiers, classes, 100).unwrap();
    let objects = [
        obj(
            "old-cold",
            20,
            "warm",
            HOUR_MS,
            cold(0.0, Some(NOW - 40 * HOUR_MS)),
        ),
        obj("warm-resident", 10, "warm", HOUR_MS, warm(2.0, NOW)),
        obj("cooling", 15, "hot", HOUR_MS, warm(1.0, NOW - 3 * HOUR_MS)),
    ];
    let plan = planner.plan(NOW, &objects);
    assert_eq!(
        summary(&plan),
        [
            mv("old-cold", "warm", "cold", "capacity_full_demote"),
            mv("cooling", "hot", "warm", "rule_warm_rate"),
        ]
    );
    assert_eq!(plan.moves[1].after, [0]);
    assert_eq!(plan.in_place, 2);
}

#[test]
fn an_overfull_tier_sheds_its_coldest_objects() {
    let tiers = three([Some(100), None, None], [150, 0, 0]);
    let planner = Planner::new(tiers, shared_hot_classes(), 100).unwrap();
    let objects = [
        obj("a", 40, "hot", HOUR_MS, warm(3.0, NOW)),
        obj("b", 40, "hot", HOUR_MS, warm(0.2, NOW)),
        obj("c", 40, "hot", HOUR_MS, warm(0.1, NOW)),
        obj("d", 30, "hot", HOUR_MS, hot(500.0)),
    ];
    let plan = planner.plan(NOW, &objects);
    assert_eq!(
        summary(&plan),
        [
            mv("c", "hot", "warm", "capacity_full_demote"),
            mv("b", "hot", "warm", "capacity_full_demote")
        ]
    );
    assert_eq!(plan.moves[0].inputs.made_room_for, None);
    assert!(plan.moves[0]
        .explanation
        .contains("tier hot over capacity (used 150 B of 100 B)"));
}

#[test]
fn unknown_tiers_are_left_in_place() {
    let planner = Planner::new(three([None; 3], [0; 3]), ClassTiers::default_for(3), 10).unwrap();
    let plan = planner.plan(NOW, &[obj("lost", 1, "tape", HOUR_MS, hot(500.0))]);
    assert!(plan.moves.is_empty());
    assert_eq!(plan.waits[0].reason, Reason::UnknownTier);
    assert_eq!(
        (plan.waits[0].on.as_str(), plan.waits[0].wanted.as_str()),
        ("tape", "hot")
    );
}

#[test]
fn bad_planners_are_refused() {
    assert!(Planner::new(vec![], ClassTiers::default_for(0), 1).is_err());
    let dup = vec![tier("a", None, 0, 0), tier("a", None, 0, 0)];
    assert!(Planner::new(dup, ClassTiers::default_for(2), 1).is_err());
    let classes = ClassTiers {
        hot: vec![5],
        warm: vec![0],
        cold: vec![0],
    };
    assert!(Planner::new(vec![tier("a", None, 0, 0)], classes, 1).is_err());
    let classes = ClassTiers {
        hot: vec![],
        warm: vec![0],
        cold: vec![0],
    };
    assert!(Planner::new(vec![tier("a", None, 0, 0)], classes, 1).is_err());
}
