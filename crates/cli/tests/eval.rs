//! `strata eval` end to end: a CSV trace written by the test replayed on a configuration
//! with round prices (every number computed by hand below), text and `--json` output,
//! `--sweep`, the errors of bad input (exit status 2, naming the file, line or field), and
//! the real traces of `shared/data/traces` through every policy.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;
use common::{stdout, Sandbox};

/// Tier `a`: 3 $/GB-month, 1 ms, 1 $ per 1k requests. Tier `b` (the default): 1 $/GB-month,
/// 20 ms (slower than the 10 ms objective), retrieval 0.5 $/GB, egress 0.25 $/GB, 2 $ per
/// 1k requests. Latency: 0.001 $/ms and 0.01 $ a miss.
const CONFIG: &str = r#"
default_tier = "b"

[[tier]]
name = "a"
cost_per_gb_month = 3
read_latency_ms = 1
cost_per_1k_requests = 1

[[tier]]
name = "b"
cost_per_gb_month = 1
read_latency_ms = 20
retrieval_cost_per_gb = 0.5
egress_cost_per_gb = 0.25
cost_per_1k_requests = 2

[objectives]
read_latency_ms = 10
miss_penalty = 0.01
latency_price_per_ms = 0.001

[classes]
hot = ["a"]
warm = ["b"]
cold = ["b"]
"#;

/// Object `x` (1 GB) read at day 0 and day 1; object `y` (1 GB) written at day 30.
const TRACE: &str = "op,key,bytes,time,comment\n\
                     read,x,1000000000,0,first\n\
                     read,x,1000000000,86400,\n\
                     write,y,1000000000,2592000,\n";

fn write(sandbox: &Sandbox, name: &str, text: &str) -> PathBuf {
    let path = sandbox.path(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

fn eval(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    sandbox.run(&all)
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "strata eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("eval --json prints one JSON document")
}

#[track_caller]
fn assert_dollars(value: &Value, expected: f64) {
    let actual = value.as_f64().expect("a number");
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "got {actual}, expected {expected}"
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn eval_json_reports_the_costs_of_a_csv_trace_computed_by_hand() {
    let sandbox = Sandbox::new();
    let trace = write(&sandbox, "trace.csv", TRACE);
    let config = write(&sandbox, "strata.toml", CONFIG);
    let out = eval(
        &sandbox,
        &[
            "--trace",
            trace.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--policy",
            "static",
            "--window",
            "30d",
            "--json",
        ],
    );
    let doc = json(&out);
    assert_eq!(doc["trace"], trace.to_str().unwrap());
    assert_eq!(doc["format"], "csv");
    assert_eq!(doc["window_ms"], 30 * 86_400_000i64);
    assert_eq!(
        (doc["requests"].as_u64(), doc["objects"].as_u64()),
        (Some(3), Some(2))
    );
    let policies = doc["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 1);
    let row = &policies[0];
    assert_eq!(row["policy"], "static");
    // Windows of 30 days; the replay ends at day 60, then 10 windows (10 months) of tail.
    // Storage at 1 $/GB-month: x for 2 + 10 months, y for 1 + 10.
    assert_dollars(&row["cost"]["storage"], 23.0);
    // Two reads of 1 GB on b.
    assert_dollars(&row["cost"]["retrieval"], 2.0 * 0.5);
    assert_dollars(&row["cost"]["egress"], 2.0 * 0.25);
    // 2 reads and 1 write at 0.002 $, and y's last-window write 10 times in the tail.
    assert_dollars(&row["cost"]["requests"], 13.0 * 0.002);
    // Each read: 20 ms x 0.001 $ + a 0.01 $ miss.
    assert_dollars(&row["cost"]["latency"], 2.0 * 0.03);
    assert_dollars(&row["cost"]["moves"], 0.0);
    assert_dollars(&row["total_cost"], 23.0 + 1.0 + 0.5 + 0.026 + 0.06);
    assert_eq!(row["misses"], 2);
    assert_eq!(row["bytes_moved"], 0);
    let p = &row["prediction"];
    // Window 1 scores the one object that existed at its start (x; y appears at day 30):
    // not read, not predicted.
    assert_eq!(
        (p["pairs"].as_u64(), p["true_negatives"].as_u64()),
        (Some(1), Some(1))
    );
    assert_dollars(&p["accuracy"], 1.0);
    assert_dollars(&p["base_rate"], 1.0);
}

#[test]
fn eval_text_prints_one_row_per_policy_on_the_example_tiers() {
    let sandbox = Sandbox::new();
    let trace = write(&sandbox, "trace.csv", TRACE);
    let out = eval(&sandbox, &["--trace", trace.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("nvme (0.2 ms), disk (8 ms), archive (150 ms)"),
        "{text}"
    );
    for policy in ["static", "seed003", "s3-intelligent", "lru", "rules"] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("{policy} "))),
            "no row for {policy}:\n{text}"
        );
    }
}

#[test]
fn sweep_reports_each_policy_at_each_latency_price() {
    let sandbox = Sandbox::new();
    let trace = write(
        &sandbox,
        "two.csv",
        "key,time,bytes\nx,0,1000000000\nx,86400,1000000000\n",
    );
    let config = write(&sandbox, "strata.toml", CONFIG);
    let (trace, config) = (trace.to_str().unwrap(), config.to_str().unwrap());
    let args = [
        "--trace", trace, "--config", config, "--policy", "static", "--window", "30d", "--json",
        "--sweep", "0,0.01",
    ];
    let doc = json(&eval(&sandbox, &args));
    let sweep = doc["sweep"].as_array().unwrap();
    assert_eq!(sweep.len(), 2);
    // Two reads on b and 20 more in the tail (the last window's reads, 10 times), each a
    // miss at 0.01 $, plus 20 ms x the price.
    assert_dollars(&sweep[0]["latency_price_per_ms"], 0.0);
    assert_dollars(&sweep[0]["policies"][0]["cost"]["latency"], 22.0 * 0.01);
    assert_dollars(
        &sweep[1]["policies"][0]["cost"]["latency"],
        22.0 * (0.2 + 0.01),
    );
    assert_dollars(&sweep[1]["policies"][0]["mean_read_latency_ms"], 20.0);

    // Without a list: 0 and six prices from 1e-10 to 1e-5, as a table of text.
    let out = eval(&sandbox, &["--trace", trace, "--config", config, "--sweep"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = stdout(&out)
        .lines()
        .filter(|line| line.contains(" static "))
        .count();
    assert_eq!(rows, 7);
}

#[test]
fn a_bad_trace_line_exits_2_naming_the_file_and_the_line() {
    let sandbox = Sandbox::new();
    let trace = write(&sandbox, "bad.csv", "key,op\nx,read\ny,rename\n");
    let out = eval(&sandbox, &["--trace", trace.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains(trace.to_str().unwrap()), "{message}");
    assert!(message.contains("line 3"), "{message}");

    let missing = sandbox.path("missing.csv");
    let out = eval(&sandbox, &["--trace", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.csv"), "{}", stderr(&out));
}

#[test]
fn unknown_policies_and_formats_exit_2_listing_the_names() {
    let sandbox = Sandbox::new();
    let trace = write(&sandbox, "trace.csv", TRACE);
    let trace = trace.to_str().unwrap();
    let out = eval(&sandbox, &["--trace", trace, "--policy", "static,fifo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "unknown policy \"fifo\"; use all or one of static, seed003, s3-intelligent, lru, rules, \
             learned, oracle"
        ),
        "{}",
        stderr(&out)
    );
    let out = eval(&sandbox, &["--trace", trace, "--format", "parquet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--format \"parquet\" is not a trace format; use one of"),
        "{}",
        stderr(&out)
    );
    let out = eval(&sandbox, &["--trace", trace, "--window", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--window"), "{}", stderr(&out));
    let out = eval(&sandbox, &["--trace", trace, "--sweep", "0,cheap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"cheap\" is not a price"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_configuration_exits_2_naming_the_file_and_the_field() {
    let sandbox = Sandbox::new();
    let trace = write(&sandbox, "trace.csv", TRACE);
    let config = write(&sandbox, "strata.toml", "[objectives]\nmiss_penalty = -1\n");
    let out = eval(
        &sandbox,
        &[
            "--trace",
            trace.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains(config.to_str().unwrap()), "{message}");
    assert!(
        message.contains("objectives.miss_penalty: -1 must be a number, 0 or more"),
        "{message}"
    );
}

fn shared_traces() -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/traces");
    let mut traces: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|err| panic!("{}: {err}", folder.display()))
        .map(|entry| entry.expect("list traces").path())
        .filter(|path| path.extension().is_none_or(|ext| ext != "txt"))
        .collect();
    traces.sort();
    traces
}

/// Every real trace through the policies on the example tiers, at its own clock: one row
/// each, the same reads for all, finite costs, no move for `static`, scores between 0 and 1,
/// and the oracle never above any other policy. The small traces run every policy; the large
/// ones (over 1 MB of file) the baselines and the oracle, to keep a debug build's run short
/// (the learned policy trains for seconds even in release; crates/heat/tests/forecast.rs
/// tests it).
#[test]
fn real_traces_replay_through_every_policy_with_sane_numbers() {
    let sandbox = Sandbox::new();
    let traces = shared_traces();
    assert!(
        traces.len() >= 7,
        "expected the 7 shared traces, found {traces:?}"
    );
    for trace in traces {
        let name = trace.display().to_string();
        let small = std::fs::metadata(&trace).unwrap().len() < 1_000_000;
        let policies: &[&str] = if small {
            &[
                "static",
                "seed003",
                "s3-intelligent",
                "lru",
                "rules",
                "learned",
                "oracle",
            ]
        } else {
            &[
                "static",
                "seed003",
                "s3-intelligent",
                "lru",
                "rules",
                "oracle",
            ]
        };
        let list = if small {
            "all".to_string()
        } else {
            policies.join(",")
        };
        let out = eval(&sandbox, &["--trace", &name, "--policy", &list, "--json"]);
        let doc = json(&out);
        let rows = doc["policies"].as_array().unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r["policy"].as_str().unwrap()).collect();
        assert_eq!(names, policies, "{name}");
        let oracle = rows.last().unwrap()["total_cost"].as_f64().unwrap();
        for row in rows {
            let total = row["total_cost"].as_f64().unwrap();
            assert!(
                oracle <= total * (1.0 + 1e-9),
                "{name}: oracle {oracle} above {row}"
            );
        }
        let reads = rows[0]["reads"].as_u64().unwrap();
        assert!(reads > 0, "{name}");
        for row in rows {
            assert_eq!(row["reads"].as_u64(), Some(reads), "{name}");
            let total = row["total_cost"].as_f64().unwrap();
            assert!(total.is_finite() && total > 0.0, "{name}: {row}");
            for score in ["accuracy", "precision", "recall", "f1", "base_rate"] {
                let value = row["prediction"][score].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&value), "{name}: {score} {value}");
            }
            assert!(row["prediction"]["base_rate"].as_f64().unwrap() >= 0.5);
        }
        assert_eq!(rows[0]["bytes_moved"], 0, "{name}: static moved");
        assert_eq!(rows[0]["prediction"]["true_positives"], 0, "{name}");
    }
}
