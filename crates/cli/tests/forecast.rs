//! The forecast through the real `strata` binary: `strata train` on the history a stopped
//! service recorded and on a trace, `strata predict`, and the proactive cycle end to end:
//! an object read every day at the same hour is trained on and moved up before its next
//! burst with reason `proactive_prediction`, an object idle for days moves down.

mod serve_common;

use std::path::Path;
use std::time::Duration;

use serve_common::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const MIB: usize = 1 << 20;

/// Three local tiers priced so that a 1 MiB object pays for the hot tier from about 3
/// reads an hour (latency price) and goes cold below one read in 20 hours (no miss
/// penalty); the rules' periodic and reactive passes out of the way; the proactive cycle
/// every `proactive` ("0": off).
fn forecast_config(data_dir: &Path, proactive: &str) -> String {
    format!(
        r#"default_tier = "warm"

[server]
listen = "127.0.0.1:0"
data_dir = {data_dir:?}

[[tier]]
name = "hot"
cost_per_gb_month = 0.20
read_latency_ms = 0.2

[[tier]]
name = "warm"
cost_per_gb_month = 0.05
read_latency_ms = 8

[[tier]]
name = "cold"
cost_per_gb_month = 0.004
read_latency_ms = 150

[rules]
spike_min_events = 1000000
demotion_interval = "1h"

[objectives]
miss_penalty = 0

[tracking]
flush_interval = "1s"

[forecast]
history = "30d"
window = "1h"
proactive_interval = {proactive:?}
"#,
        data_dir = data_dir.display().to_string(),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn events(key: &str, op: &str, times: impl IntoIterator<Item = i64>) -> String {
    times
        .into_iter()
        .map(|ts| format!("{{\"key\":{key:?},\"op\":{op:?},\"ts\":{ts},\"bytes\":1048576}}\n"))
        .collect()
}

fn reads(key: &str, times: impl IntoIterator<Item = i64>) -> String {
    events(key, "read", times)
}

/// 30 reads within the hour starting at `hour`.
fn burst(hour: i64) -> impl Iterator<Item = i64> {
    (0..30).map(move |i| hour + i * 90_000)
}

/// Two weeks of history before the hour `burst_hour` (a window boundary in the future):
/// `daily` read 30 times in that hour of every day, `evening` 12 hours later, `steady` twice
/// an hour, `old` only ten days ago; each of them written every day at this time of day
/// (so the PUTs that create them now are what the history has seen every day, not a new
/// kind of event right before the forecast).
fn two_weeks(burst_hour: i64) -> String {
    let daily = (1..=14).flat_map(|d| burst(burst_hour - d * DAY));
    let evening = (1..=14).flat_map(|d| burst(burst_hour - d * DAY + 12 * HOUR));
    let first = burst_hour - 14 * DAY;
    let steady =
        (0..14 * 24).flat_map(|h| [first + h * HOUR + 60_000, first + h * HOUR + 1_900_000]);
    let now = now_ms();
    let evening_past: Vec<i64> = evening.filter(|&t| t < now).collect();
    let steady_past: Vec<i64> = steady.filter(|&t| t < now).collect();
    let mut body = reads("daily", daily)
        + &reads("evening", evening_past)
        + &reads("steady", steady_past)
        + &reads("old", (0..10).map(|i| now - 10 * DAY + i * 1000));
    for key in ["daily", "evening", "steady", "old"] {
        body += &events(key, "write", (1..=14).map(|d| now - d * DAY));
    }
    body
}

fn put_objects(service: &Service, dir: &Path, keys: &[&str]) {
    for (seed, key) in keys.iter().enumerate() {
        let file = dir.join(format!("{key}.bin"));
        std::fs::write(&file, bytes(MIB, seed as u64)).unwrap();
        let out = service.run(&["put", file.to_str().unwrap(), key]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn post_events(service: &Service, body: &str) {
    let (status, _, answer) =
        http(&service.url, "POST", "/v1/access-events", body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
}

/// The move jobs of `key`.
fn jobs_of(service: &Service, key: &str) -> Vec<serde_json::Value> {
    get_json(&service.url, "/v1/jobs?limit=1000")["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["key"] == key)
        .cloned()
        .collect()
}

#[test]
fn a_daily_burst_is_moved_up_before_it_comes_by_the_proactive_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("strata.toml");
    std::fs::write(&config, forecast_config(&data, "1s")).unwrap();
    let service = Service::start(&config, &data, &[]);

    // The burst hour: the next window. When it starts too soon for the setup to finish
    // before it, wait for it to pass and take the one after: a cycle run in the hour before
    // the burst's would forecast no read for its own next window and could first move the
    // object down.
    let mut next = (now_ms() / HOUR + 1) * HOUR;
    if next - now_ms() < 3 * 60_000 {
        let wait = (next - now_ms()).max(0) as u64 + 1_000;
        std::thread::sleep(Duration::from_millis(wait));
        next += HOUR;
    }
    let burst_hour = next;
    put_objects(&service, dir.path(), &["daily", "evening", "steady", "old"]);
    post_events(&service, &two_weeks(burst_hour));

    // Before a model: the cycle idles and says why.
    let health = get_json(&service.url, "/healthz");
    assert!(
        health["forecast"]["model"]["fallback"]
            .as_str()
            .unwrap()
            .contains("strata train"),
        "{health}"
    );

    let (status, _, body) = http(&service.url, "POST", "/v1/model/train", b"").unwrap();
    let trained: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{trained}");
    assert_eq!(trained["version"], 1);

    let job = eventually(Duration::from_secs(300), "daily moved up", || {
        jobs_of(&service, "daily")
            .into_iter()
            .find(|job| job["to_tier"] == "hot" && job["state"] == "done")
    });
    assert_eq!(job["reason"], "proactive_prediction", "{job}");
    assert_eq!(job["from_tier"], "warm");
    assert!(now_ms() < burst_hour, "moved after the burst began: {job}");
    let explanation = job["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("reads in the next 1h window"),
        "{explanation}"
    );

    // Through the CLI: the job's reason, and explain's forecast.
    let listed = service.json(&["moves"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["key"] == "daily" && j["reason"] == "proactive_prediction"),
        "{listed}"
    );
    let out = service.run(&["explain", "daily"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("forecast (model 1)"), "{text}");
    assert!(text.contains("proactive_prediction"), "{text}");

    // An object unread for ten days is forecast cold and moves down the same way.
    let old = eventually(Duration::from_secs(60), "old moved down", || {
        jobs_of(&service, "old")
            .into_iter()
            .find(|job| job["to_tier"] == "cold")
    });
    assert_eq!(old["reason"], "proactive_prediction", "{old}");
    // The object whose burst is twelve hours away is not sent to the hot tier.
    assert!(
        jobs_of(&service, "evening")
            .iter()
            .all(|job| job["to_tier"] != "hot"),
        "{:?}",
        jobs_of(&service, "evening")
    );
    service.stop();
}

#[test]
fn strata_train_learns_offline_from_the_catalog_and_predict_reads_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("strata.toml");
    std::fs::write(&config, forecast_config(&data, "0")).unwrap();

    // No service has run here: no history, said so.
    let out = strata()
        .args(["train", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no service catalog at") && err.contains("--trace"),
        "{err}"
    );

    let service = Service::start(&config, &data, &[]);
    put_objects(&service, dir.path(), &["daily", "evening", "steady", "old"]);
    post_events(&service, &two_weeks((now_ms() / HOUR + 1) * HOUR));
    // No model yet: predict says what to do.
    let out = service.run(&["predict", "daily"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("strata train") && err.contains("no_model"),
        "{err}"
    );
    service.stop();

    let out = strata()
        .args(["train", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("model 1 trained on the access history of"),
        "{text}"
    );
    assert!(text.contains("F1") && text.contains("precision"), "{text}");
    let file = data.join("models/model-000001.json");
    assert!(text.contains(&file.display().to_string()), "{text}");
    let trained = strata()
        .args(["--json", "train", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let trained: serde_json::Value = serde_json::from_slice(&trained.stdout).unwrap();
    assert_eq!(trained["version"], 2);
    assert_eq!(
        std::fs::metadata(trained["file"].as_str().unwrap())
            .unwrap()
            .len(),
        trained["size_bytes"].as_u64().unwrap()
    );
    assert!(trained["metrics"]["rows"].as_u64().unwrap() > 0);

    // The service loads the newest model at start.
    let service = Service::start(&config, &data, &[]);
    let prediction = service.json(&["predict", "daily"]);
    assert_eq!(prediction["model_version"], 2, "{prediction}");
    assert!(prediction["predicted_reads"].as_f64().unwrap() >= 0.0);
    let out = service.run(&["predict", "daily"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("daily: ") && text.contains("model 2"),
        "{text}"
    );
    let out = service.run(&["predict", "no/such/object"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/such/object"), "{err}");
    service.stop();
}

#[test]
fn strata_train_learns_from_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.csv");
    // Objects a and b read in alternate hours for two days.
    let mut text = String::from("time,key,op\n");
    for hour in 0..48 {
        let key = if hour % 2 == 0 { "a" } else { "b" };
        for i in 0..5 {
            text.push_str(&format!("{},{key},read\n", hour * 3600 + i * 60));
        }
    }
    std::fs::write(&trace, text).unwrap();
    let data = dir.path().join("data");
    let out = strata()
        .args([
            "--json", "train", "--format", "csv", "--window", "1h", "--trace",
        ])
        .arg(&trace)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trained: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(trained["version"], 1);
    assert_eq!(trained["metrics"]["objects"], 2);
    assert!(trained["metrics"]["source"]
        .as_str()
        .unwrap()
        .starts_with("trace "));
    assert!(data.join("models/model-000001.json").exists());

    // A trace that is not one: the error names the file.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "time,key\nx,a\n").unwrap();
    let out = strata()
        .args(["train", "--format", "csv", "--trace"])
        .arg(&bad)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv"), "{err}");
}
