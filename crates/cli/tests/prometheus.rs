//! `/metrics` as a real Prometheus sees it: one `strata serve` (three local tiers, objects
//! written, read, moved, a chaos rule fired, a damaged copy refused) scraped every second by
//! Debian's `prometheus`, both shared by this binary's tests. Every series the dashboard and
//! the alert rules read is queried through Prometheus's HTTP API, every panel query of the
//! Grafana dashboard (`deploy/grafana/strata.json`) returns data, the alert rules
//! (`deploy/prometheus/strata-alerts.yml`) load and pass `promtool check rules`, and
//! `promtool check metrics` finds nothing to fix in `/metrics`.

mod common;
mod serve_common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::prometheus::{repo_root, Prometheus};
use common::{children, installed};
use serve_common::*;

const WAIT: Duration = Duration::from_secs(90);

/// The series the dashboard and the alert rules read.
const SERIES: &[&str] = &[
    "up",
    "strata_http_requests_total",
    "strata_object_get_seconds_bucket",
    "strata_tier_used_bytes",
    "strata_tier_capacity_bytes",
    "strata_tier_objects",
    "strata_tier_cost_per_month",
    "strata_moves_total",
    "strata_move_bytes_total",
    "strata_moves_running",
    "strata_access_events_total",
    "strata_store_calls_total",
    "strata_store_errors_total",
    "strata_store_retries_total",
    "strata_read_damage_total",
    "strata_chaos_injected_total",
    "strata_chaos_rules",
];

/// The service and the Prometheus scraping it, shared by the tests of this binary.
struct Fixture {
    url: String,
    prometheus: Prometheus,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = cooling_config(dir.path(), "");
        // The hot tier has a capacity: the fill panel and the alert divide by it.
        let text = std::fs::read_to_string(&config).unwrap().replacen(
            "name = \"hot\"\n",
            "name = \"hot\"\ncapacity = \"1G\"\n",
            1,
        );
        std::fs::write(&config, text).unwrap();
        let url = start_service(&config, &dir.path().join("serve.out"));
        traffic(&url);
        let target = url.trim_start_matches("http://").to_string();
        let rules = vec![alert_rules()];
        let prometheus = Prometheus::start(&[target], &rules);
        Fixture {
            url,
            prometheus,
            _dir: dir,
        }
    })
}

/// `strata serve` as a child that dies with this test binary (the fixture outlives every
/// test thread); its start-up line goes to `out`. Returns its URL.
fn start_service(config: &std::path::Path, out: &std::path::Path) -> String {
    let mut cmd = strata();
    cmd.args(["--json", "serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::null());
    let pid = children::spawn(cmd);
    let line = eventually(WAIT, "strata serve to listen", || {
        let text = std::fs::read_to_string(out).ok()?;
        text.lines().next().map(str::to_string)
    });
    let started: serde_json::Value = serde_json::from_str(&line).unwrap();
    started["listening"]
        .as_str()
        .unwrap_or_else(|| panic!("strata serve (pid {pid}) did not start: {line}"))
        .to_string()
}

/// What the dashboard shows: objects written and read, a move, an error answer, a chaos
/// rule that fired, and a damaged copy refused.
fn traffic(url: &str) {
    let data: Vec<u8> = (0..256 << 10).map(|i| (i * 7 % 251) as u8).collect();
    put_and_access(url, "obs/moved.bin", &data);
    run_planned_move(url, "obs/moved.bin", WAIT);
    let job = ended_move(url, "obs/moved.bin", WAIT);
    assert_eq!(job["state"], "done", "{job}");
    // Written after the plan ran: it stays on hot.
    let (status, _, _) = http(url, "PUT", "/v1/objects/obs/stays.bin", &data).unwrap();
    assert!((200..300).contains(&status), "PUT: {status}");
    let (status, _, _) = http(url, "GET", "/v1/objects/obs/missing", b"").unwrap();
    assert_eq!(status, 404);
    // Five 503s (every attempt of a read), then corruption once: both on hot's reads.
    for (fault, count) in [("503", "5"), ("corrupt", "1")] {
        cli_json(
            url,
            &[
                "chaos", "inject", "hot", fault, "--op", "read", "--count", count,
            ],
        );
        let (status, _, _) = http(url, "GET", "/v1/objects/obs/stays.bin", b"").unwrap();
        assert!(status >= 500, "{fault}: {status}");
    }
    // A rule left in force for the gauge.
    cli_json(
        url,
        &[
            "chaos",
            "inject",
            "cold",
            "latency",
            "--latency",
            "1ms",
            "--for",
            "1h",
        ],
    );
}

fn alert_rules() -> PathBuf {
    repo_root().join("deploy/prometheus/strata-alerts.yml")
}

/// Polls `promql` until it returns a non-empty result.
fn has_data(prometheus: &Prometheus, promql: &str) -> Vec<serde_json::Value> {
    eventually(WAIT, &format!("data for `{promql}`"), || {
        let result = prometheus.query(promql);
        (!result.is_empty()).then_some(result)
    })
}

/// GET requests in the background while Prometheus scrapes: rates over the last minute
/// need requests between two scrapes.
fn keep_reading(url: &str) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let url = url.to_string();
        std::thread::spawn(move || loop {
            let _ = http(&url, "GET", "/v1/objects/obs/stays.bin", b"");
            std::thread::sleep(Duration::from_millis(200));
        });
    });
}

#[test]
fn prometheus_scrapes_every_series_the_dashboard_and_alerts_need() {
    let f = fixture();
    keep_reading(&f.url);
    let up = has_data(&f.prometheus, "up{job=\"strata\"}");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    for series in SERIES {
        has_data(&f.prometheus, series);
    }
    // What the traffic did, as Prometheus has it.
    let done = has_data(&f.prometheus, "strata_moves_total{state=\"done\"}");
    assert_eq!(done[0]["value"][1], "1", "{done:?}");
    let injected = has_data(
        &f.prometheus,
        "strata_chaos_injected_total{tier=\"hot\",fault=\"503\"}",
    );
    assert_eq!(injected[0]["value"][1], "5", "{injected:?}");
    let damage = has_data(&f.prometheus, "strata_read_damage_total{tier=\"hot\"}");
    assert_eq!(damage[0]["value"][1], "1", "{damage:?}");
    let rules = has_data(&f.prometheus, "strata_chaos_rules{tier=\"cold\"}");
    assert_eq!(rules[0]["value"][1], "1", "{rules:?}");
}

/// Every `expr` of every panel of the dashboard, nested rows included.
fn panel_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<&serde_json::Value> =
        dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = stack.pop() {
        if let Some(inner) = panel["panels"].as_array() {
            stack.extend(inner);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            out.push((title, target["expr"].as_str().unwrap().to_string()));
        }
    }
    out
}

#[test]
fn every_grafana_panel_query_returns_data() {
    let f = fixture();
    keep_reading(&f.url);
    let path = repo_root().join("deploy/grafana/strata.json");
    let dashboard: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let queries = panel_queries(&dashboard);
    assert!(queries.len() >= 10, "{queries:?}");
    for (title, expr) in queries {
        assert!(
            !expr.contains('$'),
            "panel {title:?}: a variable in `{expr}`"
        );
        let result = has_data(&f.prometheus, &expr);
        assert!(
            !result.is_empty(),
            "panel {title:?}: `{expr}` returned nothing"
        );
    }
}

#[test]
fn the_alert_rules_pass_promtool_and_load_healthy() {
    let f = fixture();
    let out = Command::new(installed("promtool", "prometheus"))
        .args(["check", "rules"])
        .arg(alert_rules())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = eventually(WAIT, "the alert rules evaluated", || {
        let answer = f.prometheus.api("rules");
        let groups = answer["data"]["groups"].as_array()?.clone();
        let rules: Vec<serde_json::Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules.iter().all(|r| r["health"] == "ok").then_some(rules)
    });
    assert_eq!(rules.len(), 7, "{rules:?}");
    // The chaos rule left in force is seen: its alert is pending (it fires after an hour).
    eventually(WAIT, "StrataChaosActive pending", || {
        let answer = f.prometheus.api("rules");
        let groups = answer["data"]["groups"].as_array()?.clone();
        groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .any(|r| r["name"] == "StrataChaosActive" && r["state"] == "pending")
            .then_some(())
    });
}

#[test]
fn promtool_finds_nothing_to_fix_in_the_metrics() {
    let f = fixture();
    let (status, _, body) = http(&f.url, "GET", "/metrics", b"").unwrap();
    assert_eq!(status, 200);
    let mut child = Command::new(installed("promtool", "prometheus"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
}
