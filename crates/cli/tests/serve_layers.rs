//! The service's store layers through the real `strata serve`: its moves go through the
//! `[bandwidth]` throttle (client requests do not), a malformed `[bandwidth]` is refused at
//! start-up, `STRATA_FAULTS` reaches its tier stores (a move's target is side `dst`), and
//! each tier store's backend calls are counted in `/metrics`.

mod serve_common;

use std::path::Path;
use std::time::Duration;

use serve_common::*;

const WAIT: Duration = Duration::from_secs(60);
const KEY: &str = "runs/1/t2m.nc";

/// Three local tiers; new objects land on hot; an object is hot for a second after a read
/// and warm for an hour, and warm objects belong on warm: the rules move a new object hot
/// → warm once it cooled. No periodic pass during the test. `extra` is appended.
fn write_config(dir: &Path, extra: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let data_dir = dir.join("data");
    let cold = data_dir.join("cold").display().to_string();
    let path = dir.join("strata.toml");
    let text = config(&data_dir, &cold, "1s", "1h", "1h")
        .replace("default_tier = \"warm\"", "default_tier = \"hot\"")
        + "\n[classes]\nhot = [\"hot\"]\nwarm = [\"warm\"]\ncold = [\"cold\"]\n"
        + extra;
    std::fs::write(&path, text).unwrap();
    (path, data_dir)
}

/// Distinct bytes, so a copy of the wrong range would not match.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Writes the object, then reads it three times (recorded accesses): it is hot for a
/// second, then warm, and the rules move it to warm.
fn put(service: &Service, data: &[u8]) {
    let (status, _, body) = http(&service.url, "PUT", &format!("/v1/objects/{KEY}"), data).unwrap();
    assert!(
        (200..300).contains(&status),
        "PUT {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let out = service.run(&["access", KEY, "--count", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(service: &Service) -> Vec<u8> {
    let (status, _, body) = http(&service.url, "GET", &format!("/v1/objects/{KEY}"), b"").unwrap();
    assert_eq!(status, 200, "GET: {}", String::from_utf8_lossy(&body));
    body
}

fn tier_of(service: &Service) -> String {
    service
        .json(&["ls", KEY])
        .as_array()
        .and_then(|objects| objects.iter().find(|o| o["key"] == KEY).cloned())
        .and_then(|o| o["tier"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Waits until the rules plan the object's move hot → warm, then runs the plan.
fn run_the_move(service: &Service) {
    eventually(WAIT, "a planned move of the object", || {
        let result = service.json(&["plan"]);
        let moves = result["plan"]["moves"].as_array()?;
        moves.iter().any(|m| m["key"] == KEY).then_some(())
    });
    let ran = service.json(&["plan", "--run"]);
    assert_eq!(ran["jobs"].as_array().map(Vec::len), Some(1), "{ran}");
}

/// The object's move job once it has ended (done, failed, ...).
fn ended_job(service: &Service) -> serde_json::Value {
    eventually(WAIT, "the move job to end", || {
        let jobs = get_json(&service.url, &format!("/v1/jobs?key={KEY}"));
        let job = jobs["jobs"].as_array()?.first()?.clone();
        ["done", "failed", "cancelled", "skipped"]
            .contains(&job["state"].as_str()?)
            .then_some(job)
    })
}

fn metric(service: &Service, name: &str) -> f64 {
    let (_, _, body) = http(&service.url, "GET", "/metrics", b"").unwrap();
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// The throttle of the tier store whose display ends with `tier`, from `/healthz`.
fn tier_throttle(health: &serde_json::Value, tier: &str) -> serde_json::Value {
    health["bandwidth"]["stores"]
        .as_array()
        .and_then(|stores| {
            stores
                .iter()
                .find(|s| s["store"].as_str().is_some_and(|n| n.ends_with(tier)))
                .cloned()
        })
        .unwrap_or_else(|| panic!("no throttle for tier {tier}: {health}"))
}

#[test]
fn service_moves_go_through_the_configured_bandwidth_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data_dir) = write_config(dir.path(), "\n[bandwidth]\nlimit = \"64M\"\n");
    let service = Service::start(&config, &data_dir, &[]);
    let data = content(3 << 20);
    put(&service, &data);

    // A client write does not go through the throttle.
    let health = get_json(&service.url, "/healthz");
    assert_eq!(
        health["bandwidth"]["limit_source"], "[bandwidth] limit",
        "{health}"
    );
    assert_eq!(health["bandwidth"]["priority"], "background", "{health}");
    assert_eq!(health["bandwidth"]["write_bytes"], 0, "{health}");

    run_the_move(&service);
    let job = ended_job(&service);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(tier_of(&service), "warm");
    assert_eq!(read(&service), data);

    // The move read the object from hot and wrote it to warm through the throttle, under
    // the configured limit.
    let health = get_json(&service.url, "/healthz");
    let len = data.len() as u64;
    let hot = tier_throttle(&health, "tiers/hot");
    let warm = tier_throttle(&health, "tiers/warm");
    for throttle in [&hot, &warm] {
        assert_eq!(throttle["limit"], "64M", "{throttle}");
        assert_eq!(throttle["write"]["cap"], 64 << 20, "{throttle}");
    }
    assert!(
        hot["read"]["admitted_bytes"].as_u64().unwrap() >= len,
        "the move's read of {len} bytes did not go through hot's throttle: {hot}"
    );
    assert!(
        warm["write"]["admitted_bytes"].as_u64().unwrap() >= len,
        "the move's write of {len} bytes did not go through warm's throttle: {warm}"
    );
    assert!(health["bandwidth"]["write_bytes"].as_u64().unwrap() >= len);

    // /metrics says the same.
    let (_, _, body) = http(&service.url, "GET", "/metrics", b"").unwrap();
    let text = String::from_utf8_lossy(&body).into_owned();
    let sample = |family: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with(&format!("{family}{{"))
                    && l.contains("tiers/warm")
                    && l.contains("direction=\"write\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {family} for warm's writes in /metrics:\n{text}"))
    };
    assert!(sample("strata_move_throttle_bytes_total") >= len);
    assert_eq!(
        sample("strata_move_throttle_limit_bytes_per_second"),
        64 << 20
    );
}

#[test]
fn service_without_a_bandwidth_section_shows_no_throttle() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data_dir) = write_config(dir.path(), "");
    let service = Service::start(&config, &data_dir, &[]);
    let health = get_json(&service.url, "/healthz");
    assert!(health["bandwidth"].is_null(), "{health}");
}

#[test]
fn service_refuses_a_malformed_bandwidth_limit() {
    let dir = tempfile::tempdir().unwrap();
    for (section, field, bad) in [
        ("limit = \"20X\"", "bandwidth.limit", "20X"),
        ("limit = \"Funday-08:00,1M\"", "bandwidth.limit", "Funday"),
        ("priority = \"urgent\"", "bandwidth.priority", "urgent"),
    ] {
        let (config, data_dir) = write_config(dir.path(), &format!("\n[bandwidth]\n{section}\n"));
        let (code, err) = refused_start(&config, WAIT);
        assert_eq!(code, Some(2), "{section}: {err}");
        assert!(err.contains(field) && err.contains(bad), "{section}: {err}");
        assert!(!data_dir.exists(), "{section}: something was written");
    }
}

/// `strata_store_<what>_total` of `tier`'s store (domain 0) for `op`.
fn store_metric(service: &Service, what: &str, tier: &str, op: &str) -> f64 {
    let name = format!("strata_store_{what}_total{{tier=\"{tier}\",domain=\"0\",op=\"{op}\"}}");
    metric(service, &name)
}

#[test]
fn the_tier_stores_backend_calls_are_counted_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data_dir) = write_config(dir.path(), "");
    let service = Service::start(&config, &data_dir, &[]);
    assert_eq!(store_metric(&service, "bytes", "warm", "write"), 0.0);
    let data = content(1 << 20);
    put(&service, &data);
    let written = store_metric(&service, "bytes", "hot", "write")
        + store_metric(&service, "bytes", "hot", "put");
    assert!(
        written >= data.len() as f64,
        "{written} bytes written on hot"
    );
    let reads_before = store_metric(&service, "bytes", "hot", "read");
    assert_eq!(read(&service), data);
    assert!(store_metric(&service, "bytes", "hot", "read") >= reads_before + data.len() as f64);

    // A move writes the copy on warm and retires the one on hot, through the same counters.
    run_the_move(&service);
    assert_eq!(ended_job(&service)["state"], "done");
    // (streamed through an upload, or in one atomic write when it is small)
    let written = store_metric(&service, "bytes", "warm", "write")
        + store_metric(&service, "bytes", "warm", "put");
    assert!(
        written >= data.len() as f64,
        "{written} bytes written on warm"
    );
    assert!(store_metric(&service, "calls", "hot", "delete") >= 1.0);
    assert_eq!(store_metric(&service, "errors", "warm", "write"), 0.0);
}

#[test]
fn faults_injected_with_strata_faults_make_a_service_move_retry_and_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data_dir) = write_config(dir.path(), "");
    let faults = [("STRATA_FAULTS", "dst:put:error:first=1")];
    let service = Service::start_with_env(&config, &data_dir, &[], &faults);
    let data = content(1 << 20);
    // Client writes are side `any`: the rule for `dst` does not touch them.
    put(&service, &data);
    assert_eq!(metric(&service, "strata_store_retries_total"), 0.0);

    run_the_move(&service);
    let job = ended_job(&service);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(tier_of(&service), "warm");
    assert_eq!(read(&service), data);
    assert_eq!(
        std::fs::read(service.tier_dir("warm").join("objects").join(KEY)).unwrap(),
        data,
        "the copy on warm"
    );
    assert!(
        metric(&service, "strata_store_retries_total") >= 1.0,
        "the injected failure was not retried"
    );
    let stderr = service.kill_and_stderr();
    assert!(
        stderr.contains(
            "warning: fault injection active: STRATA_FAULTS=dst:put:error=retryable:first=1"
        ),
        "{stderr}"
    );
}

#[test]
fn a_permanent_fault_fails_the_service_move_and_the_object_stays_readable_from_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data_dir) = write_config(dir.path(), "");
    let faults = [("STRATA_FAULTS", "dst:put:error=permanent")];
    let service = Service::start_with_env(&config, &data_dir, &[], &faults);
    let data = content(1 << 20);
    put(&service, &data);

    run_the_move(&service);
    let job = ended_job(&service);
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("writing the copy on warm") && error.contains("injected"),
        "{job}"
    );
    assert_eq!(tier_of(&service), "hot");
    assert_eq!(read(&service), data);
    assert_eq!(
        std::fs::read(service.tier_dir("hot").join("objects").join(KEY)).unwrap(),
        data
    );
    assert!(
        !service.tier_dir("warm").join("objects").join(KEY).exists(),
        "a failed move left a copy on warm"
    );
}
