//! `[[policy]]` on a running service: a PUT lands on a tier its policy allows, a spike does
//! not promote into a forbidden tier, a manual move to one is refused with a body naming the
//! policy, explain names it, `/v1/policies` lists them, and a start with a policy no tier
//! satisfies is refused.

mod common;

use std::time::Duration;

use common::*;
use strata_server::{ServeError, ServeOptions};

const WAIT: Duration = Duration::from_secs(20);

/// TEST_RULES' tiers, with regions: hot and cold in eu-west, warm (the default) in us-east.
/// `eu/` keys must stay in eu-west; `budget/` keys on tiers of at most 0.05 $/GB-month.
const POLICY_RULES: &str = r#"
default_tier = "warm"

[server]
listen = "127.0.0.1:0"

[[tier]]
name = "hot"
cost_per_gb_month = 0.2
region = "eu-west"

[[tier]]
name = "warm"
cost_per_gb_month = 0.05
region = "us-east"

[[tier]]
name = "cold"
cost_per_gb_month = 0.01
region = "eu-west"

[rules]
hot_per_day = 1000000
warm_per_day = 1000000
hot_within = "1h"
warm_within = "2h"
spike_factor = 8
spike_min_events = 20
demotion_interval = "1h"

[tracking]
flush_interval = "1s"

[[policy]]
name = "eu-data"
prefix = "eu/"
regions = ["eu-west"]

[[policy]]
name = "budget"
prefix = "budget/"
max_cost_per_gb_month = 0.05
"#;

async fn job_of(server: &TestServer, key: &str) -> Option<serde_json::Value> {
    let jobs = server.json(&format!("/v1/jobs?key={key}")).await;
    jobs["jobs"].as_array().unwrap().first().cloned()
}

async fn post_json(server: &TestServer, path: &str, body: &str) -> (u16, serde_json::Value) {
    let response = server.post(path, body.as_bytes()).await;
    let status = response.status().as_u16();
    (status, response.json_value().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_lands_on_a_tier_its_policy_allows_and_explain_says_why() {
    let server = start(POLICY_RULES).await;
    assert_eq!(server.put("eu/a.nc", b"eu bytes").await.status(), 201);
    assert_eq!(server.put("other/b.nc", b"free bytes").await.status(), 201);
    // warm (the default) is in us-east: the nearest eu-west tier, the hotter of two, is hot.
    assert_eq!(server.tier_of("eu/a.nc").await, "hot");
    assert_eq!(server.tier_of("other/b.nc").await, "warm");

    let explain = server.json("/v1/explain/eu/a.nc").await;
    let lines = explain["lines"].to_string();
    assert!(
        lines.contains("policy: policy \\\"eu-data\\\" (prefix \\\"eu/\\\") allows hot, cold"),
        "{lines}"
    );
    assert!(
        lines.contains("excludes warm (regions (region \\\"us-east\\\""),
        "{lines}"
    );
    assert!(
        explain["why_here"]
            .as_str()
            .unwrap()
            .contains("which policy \"eu-data\" (prefix \"eu/\") forbids, so this one on hot"),
        "{explain}"
    );
    let placed = &explain["decisions"][0];
    assert_eq!(placed["reason"], "policy", "{explain}");
    assert!(
        placed["explanation"]
            .as_str()
            .unwrap()
            .contains("placed on hot instead of the default tier, as policy \"eu-data\""),
        "{placed}"
    );
    assert_eq!(explain["policy"]["policy"]["name"], "eu-data");
    let unruled = server.json("/v1/explain/other/b.nc").await;
    assert!(unruled["policy"].is_null(), "{unruled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_does_not_promote_into_a_tier_its_policy_forbids() {
    let server = start(POLICY_RULES).await;
    server.put("budget/x", b"cheap").await;
    server.put("free/y", b"free").await;
    assert_eq!(server.reads("budget/x", 30).await["spikes"], 1);
    assert_eq!(server.reads("free/y", 30).await["spikes"], 1);
    // The control key is promoted by the reactive pass, which has planned budget/x by then.
    eventually(WAIT, "free/y's promotion", || async {
        job_of(&server, "free/y")
            .await
            .filter(|job| job["state"] == "done" && job["to_tier"] == "hot")
    })
    .await;
    assert!(job_of(&server, "budget/x").await.is_none());
    // Neither does a periodic pass move it: hot costs 0.2, above its policy's 0.05.
    let (status, pass) = post_json(&server, "/v1/plan", "").await;
    assert_eq!(status, 200, "{pass}");
    let moves = pass["plan"]["moves"].as_array().unwrap();
    assert!(!moves.iter().any(|m| m["key"] == "budget/x"), "{moves:?}");
    assert_eq!(server.tier_of("budget/x").await, "warm");
    let explain = server.json("/v1/explain/budget/x").await;
    assert!(
        explain["lines"]
            .to_string()
            .contains("hot (max_cost_per_gb_month (costs 0.2 per GB-month, above 0.05))"),
        "{explain}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_move_to_a_forbidden_tier_is_refused_naming_the_policy() {
    let server = start(POLICY_RULES).await;
    server.put("eu/a.nc", b"eu bytes").await;
    let (status, body) = post_json(&server, "/v1/moves", r#"{"key":"eu/a.nc","to":"warm"}"#).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "policy_forbids");
    let message = body["error"]["message"].as_str().unwrap();
    for part in [
        "cannot move \"eu/a.nc\" to warm",
        "policy \"eu-data\" (prefix \"eu/\") forbids warm",
        "regions (region \"us-east\" is not one of [\"eu-west\"])",
        "move it to one of hot, cold",
    ] {
        assert!(message.contains(part), "{message}");
    }
    assert_eq!(server.tier_of("eu/a.nc").await, "hot");

    let (status, body) = post_json(&server, "/v1/moves", r#"{"key":"eu/a.nc","to":"cold"}"#).await;
    assert_eq!(status, 202, "{body}");
    eventually(WAIT, "the manual move", || async {
        job_of(&server, "eu/a.nc")
            .await
            .filter(|job| job["state"] == "done" && job["reason"] == "manual")
    })
    .await;
    assert_eq!(server.tier_of("eu/a.nc").await, "cold");
    assert_eq!(server.object("eu/a.nc").await, b"eu bytes");

    for (body, status, code) in [
        (r#"{"key":"eu/a.nc","to":"ssd"}"#, 422, "unknown_tier"),
        (r#"{"key":"eu/a.nc","to":"cold"}"#, 409, "already_there"),
        (r#"{"key":"nope","to":"cold"}"#, 404, "not_found"),
        (r#"{"key":"eu/a.nc"}"#, 400, "invalid_move_request"),
        ("not json", 400, "invalid_move_request"),
    ] {
        let (got, answer) = post_json(&server, "/v1/moves", body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policies_route_lists_each_policy_with_its_allowed_tiers() {
    let server = start(POLICY_RULES).await;
    let answer = server.json("/v1/policies").await;
    assert_eq!(answer["changeable_at_run_time"], false);
    let policies = answer["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0]["policy"]["name"], "eu-data");
    assert_eq!(policies[0]["policy"]["regions"][0], "eu-west");
    assert_eq!(
        policies[0]["allowed_tiers"],
        serde_json::json!(["hot", "cold"])
    );
    assert_eq!(
        policies[1]["allowed_tiers"],
        serde_json::json!(["warm", "cold"])
    );
    assert_eq!(policies[1]["tiers"][0]["allowed"], false);
    assert!(policies[1]["tiers"][0]["excluded_by"]
        .as_str()
        .unwrap()
        .starts_with("max_cost_per_gb_month"));
    let put = server
        .client
        .put(server.url("/v1/policies"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405, "policies change in strata.toml only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_with_a_policy_no_tier_satisfies_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), POLICY_RULES);
    // Built in code, past the file's checks: the service checks again before it opens anything.
    config.policies[0].regions = vec!["mars".to_string()];
    let err = match strata_server::start(ServeOptions::new(config)).await {
        Ok(_) => panic!("a start with an unsatisfiable policy was accepted"),
        Err(err) => err,
    };
    let ServeError::Config { field, reason } = &err else {
        panic!("not a configuration error: {err}");
    };
    assert_eq!(field, "policy[0]");
    assert!(
        reason.contains("policy \"eu-data\" (prefix \"eu/\") allows no tier"),
        "{reason}"
    );
    assert!(
        reason.contains("warm excluded by regions (region \"us-east\" is not one of [\"mars\"])"),
        "{reason}"
    );
    assert!(
        !dir.path().join("catalog.db").exists() && !dir.path().join("tiers").exists(),
        "nothing is written before the refusal"
    );
}
