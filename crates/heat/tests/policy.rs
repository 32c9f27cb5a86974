//! `[[policy]]`: parsing and refusals at load, prefix matching, each constraint, and their
//! enforcement by the planner (rules pass, spikes, evictions) and by both optimisers, under
//! capacity pressure that would tempt them past a policy.

use strata_heat::cost::CostModel;
use strata_heat::optimise::{
    solve_lagrangian, solve_milp, LagrangeOptions, ObjectSpec, Problem, TierSpec,
};
use strata_heat::units::{DAY_MS, HOUR_MS};
use strata_heat::{PolicySet, TieringConfig};

mod common;
use common::*;

const MB: u64 = 1_000_000;

/// hot (eu-west, encrypted, replicate:2 on two domains), warm (eu-west), cold (us-east):
/// the tiers every test below places on.
const TIERS: &str = r#"
[server]
data_dir = "/tmp/strata-policy-tests"

[[tier]]
name = "hot"
stores = ["/tmp/strata-policy-tests/hot-a", "/tmp/strata-policy-tests/hot-b"]
redundancy = "replicate:2"
cost_per_gb_month = 0.20
read_latency_ms = 0.5
region = "eu-west"
layout = "packed"
encryption = "xchacha20poly1305"
encryption_key_env = "STRATA_POLICY_TEST_KEY"

[[tier]]
name = "warm"
cost_per_gb_month = 0.05
read_latency_ms = 5
min_residency = "24h"
region = "eu-west"

[[tier]]
name = "cold"
cost_per_gb_month = 0.01
read_latency_ms = 200
region = "us-east"
"#;

fn config(policies: &str) -> TieringConfig {
    TieringConfig::parse(&format!("{TIERS}\n{policies}")).expect("a valid configuration")
}

fn refusal(policies: &str) -> String {
    TieringConfig::parse(&format!("{TIERS}\n{policies}"))
        .expect_err("the configuration is refused")
        .to_string()
}

/// The tiers a configuration's only policy allows, by name.
fn allowed(policies: &str) -> Vec<String> {
    let config = config(policies);
    let set = config.policy_set();
    set.policies()[0]
        .allowed_tiers()
        .map(|t| config.tiers[t].name.clone())
        .collect()
}

#[test]
fn the_longest_matching_prefix_governs_a_key() {
    let config = config(
        r#"
[[policy]]
name = "all"
prefix = ""
[[policy]]
prefix = "climate/"
[[policy]]
name = "raw"
prefix = "climate/raw/"
"#,
    );
    let set = config.policy_set();
    let name = |key: &str| set.policy_for(key).map(|p| p.config().name.clone());
    assert_eq!(name("climate/raw/2024.nc").as_deref(), Some("raw"));
    assert_eq!(name("climate/derived.nc").as_deref(), Some("climate/"));
    assert_eq!(name("genomes/a.bam").as_deref(), Some("all"));
    let without = TieringConfig::parse(TIERS).unwrap().policy_set();
    assert!(without.policy_for("anything").is_none());
}

#[test]
fn each_constraint_excludes_the_tiers_that_fail_it() {
    let policy = |body: &str| format!("[[policy]]\nprefix = \"p/\"\n{body}\n");
    assert_eq!(
        allowed(&policy("latency_objective_ms = 10")),
        ["hot", "warm"]
    );
    assert_eq!(
        allowed(&policy("max_cost_per_gb_month = 0.05")),
        ["warm", "cold"]
    );
    assert_eq!(allowed(&policy("min_redundancy = 1")), ["hot"]);
    assert_eq!(
        allowed(&policy("min_redundancy = \"replicate:2\"")),
        ["hot"]
    );
    assert_eq!(
        allowed(&policy("min_redundancy = 0")),
        ["hot", "warm", "cold"]
    );
    assert_eq!(allowed(&policy("encryption_required = true")), ["hot"]);
    assert_eq!(allowed(&policy("regions = [\"us-east\"]")), ["cold"]);
    assert_eq!(
        allowed(&policy("regions = [\"eu-west\", \"us-east\"]")),
        ["hot", "warm", "cold"]
    );
    assert_eq!(allowed(&policy("pinned_tier = \"warm\"")), ["warm"]);
}

#[test]
fn a_class_redundancy_below_the_tiers_own_counts_against_min_redundancy() {
    let text = format!(
        "{TIERS}\n[redundancy]\nhot = \"none\"\n[[policy]]\nprefix = \"p/\"\nmin_redundancy = 1\n"
    );
    let err = TieringConfig::parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("hot excluded by min_redundancy (tolerates 0 failures, needs 1 for 1)"),
        "{err}"
    );
}

#[test]
fn a_policy_no_tier_satisfies_is_refused_with_every_tier_and_its_reason() {
    let err = refusal(
        r#"
[[policy]]
name = "eu-sealed"
prefix = "eu/"
regions = ["eu-west"]
max_cost_per_gb_month = 0.02
"#,
    );
    assert!(err.contains("policy[0]"), "{err}");
    assert!(
        err.contains("policy \"eu-sealed\" (prefix \"eu/\") allows no tier"),
        "{err}"
    );
    assert!(
        err.contains("hot excluded by max_cost_per_gb_month (costs 0.2 per GB-month, above 0.02)"),
        "{err}"
    );
    assert!(
        err.contains("warm excluded by max_cost_per_gb_month"),
        "{err}"
    );
    assert!(
        err.contains("cold excluded by regions (region \"us-east\" is not one of [\"eu-west\"])"),
        "{err}"
    );
    assert!(err.contains("relax the policy or declare a tier"), "{err}");
}

#[test]
fn malformed_policies_are_refused_naming_the_field() {
    let cases = [
        (
            "[[policy]]\nlatency_objective_ms = 5\n",
            "policy[0].prefix: missing",
        ),
        (
            "[[policy]]\nprefix = \"a/\"\nmin_redundancy = \"raid6\"\n",
            "policy[0].min_redundancy: \"raid6\" is not a redundancy",
        ),
        (
            "[[policy]]\nprefix = \"a/\"\nmin_redundancy = -1\n",
            "policy[0].min_redundancy: -1 is not a redundancy",
        ),
        (
            "[[policy]]\nprefix = \"a/\"\npinned_tier = \"ssd\"\n",
            "policy[0].pinned_tier: \"ssd\" is not a declared tier",
        ),
        (
            "[[policy]]\nprefix = \"a/\"\n[[policy]]\nprefix = \"a/\"\n",
            "policy[1].prefix: \"a/\" is already the prefix of policy[0]",
        ),
        (
            "[[policy]]\nprefix = \"a/\"\nlatency_objective_ms = -3\n",
            "policy[0].latency_objective_ms: -3 must be a number, 0 or more",
        ),
        (
            "[[policy]]\nprefix = \"a/\"\nregion = \"x\"\n",
            "unknown field `region`",
        ),
    ];
    for (text, expected) in cases {
        let err = refusal(text);
        assert!(err.contains(expected), "{text}: {err}");
    }
    let empty_region = TieringConfig::parse("[[tier]]\nname = \"a\"\nregion = \"\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        empty_region.contains("tier[0].region: is empty"),
        "{empty_region}"
    );
}

fn planner(
    config: &TieringConfig,
    used: [u64; 3],
    capacity: [Option<u64>; 3],
) -> strata_heat::Planner {
    let mut config = config.clone();
    for (tier, capacity) in config.tiers.iter_mut().zip(capacity) {
        tier.capacity = capacity;
    }
    config
        .planner(|name| used[config.tier_index(name).unwrap()])
        .unwrap()
}

#[test]
fn an_object_on_a_forbidden_tier_moves_with_reason_policy_despite_residency() {
    let config =
        config("[[policy]]\nname = \"us-only\"\nprefix = \"us/\"\nregions = [\"us-east\"]\n");
    let plan = planner(&config, [0; 3], [None; 3]).plan(
        NOW,
        &[
            // Placed an hour ago on warm (24 h residency), hot by its reads.
            obj("us/a", 10, "warm", HOUR_MS, hot(500.0)),
            obj("eu/b", 10, "warm", HOUR_MS, warm(20.0, NOW)),
        ],
    );
    assert_eq!(plan.moves.len(), 1, "{plan:?}");
    let moved = &plan.moves[0];
    assert_eq!((moved.key.as_str(), moved.to.as_str()), ("us/a", "cold"));
    assert_eq!(moved.reason.code(), "policy");
    assert_eq!(moved.inputs.policy.as_deref(), Some("us-only"));
    assert!(
        moved.explanation.contains(
            "policy \"us-only\" (prefix \"us/\") forbids warm: regions (region \"eu-west\" is not one of [\"us-east\"])"
        ),
        "{}",
        moved.explanation
    );
}

#[test]
fn a_spike_never_promotes_into_a_tier_its_policy_forbids() {
    let config = config("[[policy]]\nprefix = \"cheap/\"\nmax_cost_per_gb_month = 0.05\n");
    let planner = planner(&config, [0; 3], [None; 3]);
    let objects = [
        obj("cheap/x", 10, "cold", DAY_MS, spike(5000.0)),
        obj("free/y", 10, "cold", DAY_MS, spike(5000.0)),
    ];
    for plan in [
        planner.plan_spikes(NOW, &objects),
        planner.plan(NOW, &objects),
    ] {
        let to: Vec<(&str, &str)> = plan
            .moves
            .iter()
            .map(|m| (m.key.as_str(), m.to.as_str()))
            .collect();
        // The hot class's tiers are [hot]; the policy excludes it, so the nearest allowed
        // tier (warm) is where a hot object of that prefix goes.
        assert!(to.contains(&("free/y", "hot")), "{to:?}");
        assert!(!to.contains(&("cheap/x", "hot")), "{to:?}");
    }
    let full = planner.plan(NOW, &objects);
    assert!(full
        .moves
        .iter()
        .any(|m| m.key == "cheap/x" && m.to == "warm"));
}

#[test]
fn an_object_stays_on_an_allowed_tier_when_its_class_has_none() {
    // Cold objects belong on cold; a policy that keeps them in eu-west leaves them on warm.
    let config = config("[[policy]]\nprefix = \"eu/\"\nregions = [\"eu-west\"]\n");
    let plan = planner(&config, [0; 3], [None; 3]).plan(
        NOW,
        &[obj("eu/old", 10, "warm", 30 * DAY_MS, cold(0.0, None))],
    );
    assert!(plan.moves.is_empty(), "{plan:?}");
    assert_eq!(plan.in_place, 1);
}

#[test]
fn evictions_send_an_object_only_where_its_policy_allows() {
    let config = config("[[policy]]\nprefix = \"eu/\"\nregions = [\"eu-west\"]\n");
    // hot holds 20 of 20 bytes: two cold objects, the coldest bound to eu-west. A spike
    // needs 10 bytes; warm is full, so an eviction can only go to cold, which only the
    // free object may take.
    let planner = planner(&config, [20, 10, 0], [Some(20), Some(10), None]);
    let objects = [
        obj(
            "eu/cold",
            10,
            "hot",
            30 * DAY_MS,
            cold(0.0, Some(NOW - 2 * DAY_MS)),
        ),
        obj(
            "x/cold",
            10,
            "hot",
            30 * DAY_MS,
            cold(0.0, Some(NOW - DAY_MS)),
        ),
        obj("spiky", 10, "cold", DAY_MS, spike(9000.0)),
    ];
    let plan = planner.plan_spikes(NOW, &objects);
    let moves: Vec<(&str, &str)> = plan
        .moves
        .iter()
        .map(|m| (m.key.as_str(), m.to.as_str()))
        .collect();
    assert_eq!(moves, [("x/cold", "cold"), ("spiky", "hot")], "{plan:?}");
}

#[test]
fn a_pinned_tier_holds_its_objects_whatever_their_class() {
    let config = config("[[policy]]\nprefix = \"pin/\"\npinned_tier = \"warm\"\n");
    let plan = planner(&config, [0; 3], [None; 3]).plan(
        NOW,
        &[
            obj("pin/hot", 10, "warm", DAY_MS * 2, hot(900.0)),
            obj("pin/cold", 10, "warm", DAY_MS * 30, cold(0.0, None)),
            obj("pin/elsewhere", 10, "cold", DAY_MS * 30, cold(0.0, None)),
        ],
    );
    let moves: Vec<(&str, &str, &str)> = plan
        .moves
        .iter()
        .map(|m| (m.key.as_str(), m.to.as_str(), m.reason.code()))
        .collect();
    assert_eq!(moves, [("pin/elsewhere", "warm", "policy")]);
}

#[test]
fn a_new_object_lands_on_the_allowed_tier_nearest_the_default() {
    let config = config(
        "[[policy]]\nprefix = \"us/\"\nregions = [\"us-east\"]\n[[policy]]\nprefix = \"enc/\"\nencryption_required = true\n",
    );
    let set = config.policy_set();
    let default = config.tier_index("warm").unwrap();
    assert_eq!(set.initial_tier(set.matching("us/a"), default), 2);
    assert_eq!(set.initial_tier(set.matching("enc/a"), default), 0);
    assert_eq!(set.initial_tier(set.matching("other"), default), default);
}

/// A problem over the test tiers with the given capacities.
fn problem(
    config: &TieringConfig,
    objects: Vec<ObjectSpec>,
    capacity: [Option<u64>; 3],
) -> Problem {
    Problem {
        model: CostModel::new(config),
        tiers: config
            .tiers
            .iter()
            .zip(capacity)
            .map(|(tier, capacity)| TierSpec {
                name: tier.name.clone(),
                capacity,
                min_residency_ms: 0,
            })
            .collect(),
        objects,
        now_ms: NOW,
        window_ms: HOUR_MS,
        horizon_windows: 720.0,
    }
}

#[test]
fn both_optimisers_keep_objects_within_their_policy_under_capacity_pressure() {
    let config = config("[[policy]]\nprefix = \"eu/\"\nregions = [\"eu-west\"]\n");
    let set: PolicySet = config.policy_set();
    let eu_mask = set.mask(set.matching("eu/x"));
    assert_eq!(eu_mask, 0b011);
    // Idle objects: cold is cheapest for all. Warm holds only half of them, and hot costs
    // four times warm: the pressure pushes the policy-bound ones toward cold, which their
    // policy forbids, so they must take hot and warm, and only free objects go to cold.
    let mut objects = Vec::new();
    for i in 0..12 {
        let mut spec = ObjectSpec::new(10 * MB, 1, NOW - 30 * DAY_MS, 0.0);
        if i % 2 == 0 {
            spec.policy_allowed = eu_mask;
        }
        objects.push(spec);
    }
    let problem = problem(&config, objects, [None, Some(30 * MB), None]);
    let milp = solve_milp(&problem, None).expect("the MILP solves it");
    let lagrange =
        solve_lagrangian(&problem, &LagrangeOptions::default()).expect("the Lagrangian solves it");
    for (name, solution) in [("milp", milp), ("lagrangian", lagrange)] {
        for (i, &t) in solution.assignment.iter().enumerate() {
            let mask = problem.objects[i].policy_allowed;
            assert!(
                mask & (1 << t) != 0,
                "{name} put object {i} on tier {t}, outside its policy: {:?}",
                solution.assignment
            );
        }
        let on_cold = solution.assignment.iter().filter(|&&t| t == 2).count();
        assert_eq!(on_cold, 6, "{name}: {:?}", solution.assignment);
    }
}

#[test]
fn an_object_on_a_tier_its_policy_forbids_is_moved_by_the_optimiser_too() {
    let config = config("[[policy]]\nprefix = \"us/\"\nregions = [\"us-east\"]\n");
    let set = config.policy_set();
    // On hot and read a lot: staying is cheapest, but its policy allows only cold.
    let mut spec = ObjectSpec::new(10 * MB, 0, NOW - 30 * DAY_MS, 50.0);
    spec.policy_allowed = set.mask(set.matching("us/a"));
    let problem = problem(&config, vec![spec], [None, None, None]);
    assert_eq!(solve_milp(&problem, None).unwrap().assignment, [2]);
    assert_eq!(
        solve_lagrangian(&problem, &LagrangeOptions::default())
            .unwrap()
            .assignment,
        [2]
    );
}
