//! Tiering on an in-process service: a spike promoted at once, a demotion held by minimum
//! residency then made, a write during a planned move, cancel and retry, a delete during a
//! move, capacity, server-sent events, and statistics that survive a restart.

mod common;

use std::time::{Duration, Instant};

use common::*;
use strata_server::Limits;

const WAIT: Duration = Duration::from_secs(20);

async fn job_of(server: &TestServer, key: &str) -> Option<serde_json::Value> {
    let jobs = server.json(&format!("/v1/jobs?key={key}")).await;
    jobs["jobs"].as_array().unwrap().first().cloned()
}

async fn job_in_state(server: &TestServer, key: &str, state: &str) -> serde_json::Value {
    eventually(WAIT, &format!("{key}'s job to be {state}"), || async {
        job_of(server, key)
            .await
            .filter(|job| job["state"] == state)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_is_promoted_at_once_with_its_reason() {
    let server = start(TEST_RULES).await;
    let data = bytes(300_000, 11);
    server.put("climate/run-7/t2m.nc", &data).await;
    assert_eq!(server.tier_of("climate/run-7/t2m.nc").await, "warm");

    let report = server.reads("climate/run-7/t2m.nc", 30).await;
    assert_eq!(report["accepted"], 30);
    assert_eq!(report["spikes"], 1);

    // No planning pass is asked for: the reactive path plans and moves it.
    let job = job_in_state(&server, "climate/run-7/t2m.nc", "done").await;
    assert_eq!(job["reason"], "reactive_access_spike");
    assert_eq!(
        (job["from_tier"].as_str(), job["to_tier"].as_str()),
        (Some("warm"), Some("hot"))
    );
    assert_eq!(job["inputs"]["decision"]["reason"], "reactive_access_spike");
    assert!(
        job["inputs"]["decision"]["inputs"]["count_1h"]
            .as_u64()
            .unwrap()
            >= 30
    );
    assert_eq!(server.tier_of("climate/run-7/t2m.nc").await, "hot");
    assert_eq!(server.object("climate/run-7/t2m.nc").await, data);
    assert_eq!(files_on(&server.tier_dir("hot")), ["climate/run-7/t2m.nc"]);
    assert!(
        files_on(&server.tier_dir("warm")).is_empty(),
        "the old copy is retired"
    );

    let explain = server.json("/v1/explain/climate/run-7/t2m.nc").await;
    let why = explain["why_here"].as_str().unwrap();
    assert!(
        why.contains("moved from warm") && why.contains("reactive_access_spike"),
        "{why}"
    );
    let decisions = explain["decisions"].as_array().unwrap();
    assert!(decisions
        .iter()
        .any(|d| d["reason"] == "reactive_access_spike" && d["action"] == "move:warm->hot"));
    assert!(decisions.iter().any(|d| d["reason"] == "default_tier"));

    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("strata_moves_total{state=\"done\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("strata_moves_planned_total{reason=\"reactive_access_spike\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demotion_waits_for_minimum_residency_then_moves() {
    let rules = TEST_RULES
        .replace("hot_within = \"1h\"", "hot_within = \"1s\"")
        .replace("warm_within = \"2h\"", "warm_within = \"2s\"")
        .replace(
            "name = \"warm\"\n",
            "name = \"warm\"\nmin_residency = \"4s\"\n",
        );
    let server = start(&rules).await;
    let written = Instant::now();
    server.put("logs/2025-12-01.gz", b"old logs").await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let pass = server.post("/v1/plan", b"").await.json_value().await;
    assert!(
        pass["plan"]["moves"].as_array().unwrap().is_empty(),
        "{pass}"
    );
    let wait = &pass["plan"]["waits"][0];
    assert_eq!(wait["reason"], "min_residency_hold");
    assert_eq!(wait["wanted"], "cold");
    let explain = server.json("/v1/explain/logs/2025-12-01.gz").await;
    assert_eq!(explain["class"], "cold");
    assert_eq!(explain["outlook"]["action"], "wait");

    let remaining = Duration::from_millis(4300).saturating_sub(written.elapsed());
    tokio::time::sleep(remaining).await;
    let pass = server.post("/v1/plan", b"").await.json_value().await;
    let planned = &pass["plan"]["moves"][0];
    assert_eq!(planned["reason"], "rule_cold", "{pass}");
    let job = job_in_state(&server, "logs/2025-12-01.gz", "done").await;
    assert_eq!(job["to_tier"], "cold");
    assert_eq!(server.tier_of("logs/2025-12-01.gz").await, "cold");

    // The same pass again plans nothing new (idempotent, and the object is in place).
    let pass = server.post("/v1/plan", b"").await.json_value().await;
    assert!(pass["jobs"].as_array().unwrap().is_empty(), "{pass}");
    assert_eq!(server.object("logs/2025-12-01.gz").await, b"old logs");

    // The decisions tell the story: placed, held, moved.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let explain = server.json("/v1/explain/logs/2025-12-01.gz").await;
    let reasons: Vec<&str> = explain["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["rule_cold", "min_residency_hold", "default_tier"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_before_the_move_skips_it_with_object_changing() {
    let server = start(TEST_RULES).await;
    server.put("k", b"first").await;
    server.server.as_ref().unwrap().set_moves_paused(true);
    server.reads("k", 30).await;
    job_in_state(&server, "k", "planned").await;
    assert_eq!(server.put("k", b"second").await.status(), 200);
    server.server.as_ref().unwrap().set_moves_paused(false);
    let job = job_in_state(&server, "k", "skipped").await;
    assert!(
        job["last_error"]
            .as_str()
            .unwrap()
            .starts_with("object_changing"),
        "{job}"
    );
    assert_eq!(server.tier_of("k").await, "warm");
    assert_eq!(server.object("k").await, b"second");
    assert!(files_on(&server.tier_dir("hot")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_can_be_cancelled_and_retried() {
    let server = start(TEST_RULES).await;
    server.put("k", b"content").await;
    server.server.as_ref().unwrap().set_moves_paused(true);
    server.reads("k", 30).await;
    let job = job_in_state(&server, "k", "planned").await;
    let id = job["id"].as_i64().unwrap();

    let response = server.post(&format!("/v1/jobs/{id}/cancel"), b"").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json_value().await["state"], "cancelled");
    let response = server.post(&format!("/v1/jobs/{id}/cancel"), b"").await;
    assert_eq!(response.status(), 409);
    assert_eq!(response.json_value().await["error"]["code"], "job_finished");

    let response = server.post(&format!("/v1/jobs/{id}/retry"), b"").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json_value().await["state"], "planned");
    server.server.as_ref().unwrap().set_moves_paused(false);
    job_in_state(&server, "k", "done").await;
    assert_eq!(server.tier_of("k").await, "hot");
    let one = server.json(&format!("/v1/jobs/{id}")).await;
    assert_eq!(one["state"], "done");
    assert_eq!(one["attempts"], 1);

    let response = server.post(&format!("/v1/jobs/{id}/retry"), b"").await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        server.post("/v1/jobs/424242/cancel", b"").await.status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_object_cancels_its_move_and_leaves_no_copy() {
    let server = start(TEST_RULES).await;
    server.put("doomed", &bytes(100_000, 5)).await;
    server.server.as_ref().unwrap().set_moves_paused(true);
    server.reads("doomed", 30).await;
    job_in_state(&server, "doomed", "planned").await;
    let response = server
        .client
        .delete(server.url("/v1/objects/doomed"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    server.server.as_ref().unwrap().set_moves_paused(false);
    let job = job_in_state(&server, "doomed", "cancelled").await;
    assert!(job["last_error"]
        .as_str()
        .unwrap()
        .starts_with("object_deleted"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for tier in ["hot", "warm", "cold"] {
        assert!(files_on(&server.tier_dir(tier)).is_empty(), "{tier}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hot_tier_is_never_overfilled() {
    let rules = TEST_RULES.replace("name = \"hot\"\n", "name = \"hot\"\ncapacity = \"64K\"\n");
    let server = start(&rules).await;
    server.put("small", &bytes(40_000, 1)).await;
    server.put("large", &bytes(100_000, 2)).await;
    server.reads("small", 30).await;
    job_in_state(&server, "small", "done").await;
    server.reads("large", 30).await;
    // The large object cannot fit: it waits, with the reason recorded.
    let explain = eventually(WAIT, "a tier_full_wait decision", || async {
        let explain = server.json("/v1/explain/large").await;
        explain["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["reason"] == "tier_full_wait")
            .then_some(explain)
    })
    .await;
    assert_eq!(explain["tier"], "warm");
    let tiers = server.json("/v1/tiers").await;
    assert!(tiers["tiers"][0]["used_bytes"].as_u64().unwrap() <= 64 * 1024);
    assert!(job_of(&server, "large").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_transitions_stream_as_server_sent_events() {
    let server = start(TEST_RULES).await;
    server.put("watched", &bytes(50_000, 8)).await;
    let mut stream = server.get("/v1/events").await;
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut text = String::new();
    while !text.contains("event: ready") {
        text.push_str(&String::from_utf8_lossy(
            &stream.chunk().await.unwrap().unwrap(),
        ));
    }
    server.reads("watched", 30).await;
    let deadline = Instant::now() + WAIT;
    while !text.contains("\"state\":\"done\"") {
        assert!(Instant::now() < deadline, "no done event in {text}");
        let chunk = tokio::time::timeout(WAIT, stream.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let states: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .filter(|event| event["key"] == "watched")
        .map(|event| event["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states,
        ["copying", "verifying", "switching", "retiring", "done"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_statistics_survive_a_restart() {
    let mut server = start(TEST_RULES).await;
    server.put("counted", b"abc").await;
    for _ in 0..7 {
        server.object("counted").await;
    }
    server.reads("counted", 5).await;
    // Flushed by the periodic flush (1 s), not only at shutdown.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("strata_access_dirty_rows 0"), "{metrics}");
    let dir = server.stop().await;

    let server = start_in(dir, TEST_RULES, Limits::default()).await;
    let explain = server.json("/v1/explain/counted").await;
    assert_eq!(explain["access"]["reads"], 12);
    assert_eq!(explain["access"]["writes"], 1);
    assert_eq!(
        explain["access"]["count_1h"], 12,
        "reads count; the write does not"
    );
    assert!(explain["access"]["last_write_ms"].is_i64(), "{explain}");
    let decisions = explain["decisions"].as_array().unwrap();
    assert_eq!(decisions[0]["reason"], "default_tier");
}
