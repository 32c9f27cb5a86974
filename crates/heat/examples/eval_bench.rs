//! Replay throughput of `strata eval`'s policies: each trace is read into memory once, then
//! replayed through each policy alone on the example configuration's tiers, at the trace's
//! own clock and stretched to span 180 days; prints requests per second of replay (engine
//! and policy, trace reading excluded: `trace_read` measures that) and each policy's cost.
//! Rates are per second of this thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, so that other
//! work on a shared machine does not count), and per second of wall time.
//!
//! Run in release: `cargo run --release -p strata-heat --example eval_bench
//! [--policy=NAME,...] [--clock=own|180d] [TRACE...]`; without traces it replays every trace
//! in `../shared/data/traces` (next to the checkout), without `--policy` every policy,
//! without `--clock` at both clocks. With
//! `EVAL_BENCH_BREAKDOWN` set, each policy's cost by kind, moves, refusals and notes (which
//! expert `learned` followed) go to stderr.

use std::path::{Path, PathBuf};
use std::time::Instant;

use strata_heat::eval::policies::{make_policy, POLICY_NAMES};
use strata_heat::eval::{default_window_ms, replay, CostModel, Requests};
use strata_heat::trace::{summarize, TraceError, TraceOptions, TraceReader, TraceRequest};
use strata_heat::units::DAY_MS;
use strata_heat::TieringConfig;

const EXAMPLE_CONFIG: &str = include_str!("../../server/strata.example.toml");

/// The traces to replay: the arguments, else the shared trace folder's traces.
fn traces() -> Vec<PathBuf> {
    let given: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    if !given.is_empty() {
        return given;
    }
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/traces");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_none_or(|ext| ext != "txt"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

/// `--policy=a,b`, else every policy.
fn policies() -> Vec<String> {
    std::env::args()
        .find_map(|arg| arg.strip_prefix("--policy=").map(str::to_string))
        .map_or_else(
            || POLICY_NAMES.iter().map(|name| name.to_string()).collect(),
            |list| list.split(',').map(str::to_string).collect(),
        )
}

/// `--clock=own` or `--clock=180d`, else both.
fn clock() -> Option<String> {
    std::env::args().find_map(|arg| arg.strip_prefix("--clock=").map(str::to_string))
}

fn main() {
    let policies = policies();
    let clocks = clock();
    let config = match TieringConfig::parse(EXAMPLE_CONFIG) {
        Ok(config) => config,
        Err(err) => return eprintln!("{err}"),
    };
    let model = CostModel::new(&config);
    println!(
        "{:<34} {:>6} {:>9} {:>8} {:<15} {:>8} {:>12} {:>12} {:>12} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "trace",
        "clock",
        "requests",
        "objects",
        "policy",
        "cpu s",
        "req/cpu s",
        "req/wall s",
        "total $",
        "acc",
        "base",
        "prec",
        "recall",
        "F1"
    );
    for path in traces() {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let summary = match summarize(&path, &TraceOptions::default()) {
            Ok(summary) => summary,
            Err(err) => {
                eprintln!("{err}");
                continue;
            }
        };
        let stretch = 180.0 * DAY_MS as f64 / summary.span_ms.max(1) as f64;
        for (clock, scale) in [("own", 1.0), ("180d", stretch)] {
            if clocks.as_ref().is_some_and(|only| only != clock) {
                continue;
            }
            let options = TraceOptions {
                format: None,
                time_scale: scale,
            };
            let (Ok(summary), Ok(requests)) = (summarize(&path, &options), load(&path, &options))
            else {
                continue;
            };
            let window = default_window_ms(summary.span_ms);
            let reopen = || -> Result<Requests<'_>, TraceError> {
                Ok(Box::new(requests.iter().copied().map(Ok)))
            };
            for policy in &policies {
                let made = match make_policy(policy, &config) {
                    Ok(made) => made,
                    Err(err) => return eprintln!("{err}"),
                };
                let (started, cpu_started) = (Instant::now(), cpu_seconds());
                let runs = match replay(&summary, &config, window, vec![made], &reopen) {
                    Ok(runs) => runs,
                    Err(err) => {
                        eprintln!("{name} {policy}: {err}");
                        continue;
                    }
                };
                let seconds = started.elapsed().as_secs_f64();
                let cpu = cpu_seconds()
                    .zip(cpu_started)
                    .map_or(seconds, |(b, a)| b - a);
                let Some(report) = runs.first().map(|run| run.report(&model)) else {
                    continue;
                };
                let notes = runs.first().and_then(|run| run.notes.clone());
                let p = &report.prediction;
                if std::env::var_os("EVAL_BENCH_BREAKDOWN").is_some() {
                    eprintln!(
                        "{name} {clock} {policy}: {:?} tail {:.4e} misses {} moves {} refused {} {}{}",
                        report.cost,
                        report.tail_cost,
                        report.misses,
                        report.moves,
                        report.refused_residency,
                        report.refused_capacity,
                        notes.map_or_else(String::new, |notes| format!(" ({notes})"))
                    );
                }
                let rate = |s: f64| summary.requests as f64 / s.max(1e-9);
                println!(
                    "{:<34} {:>6} {:>9} {:>8} {:<15} {:>8.3} {:>12.0} {:>12.0} {:>12.4e} {:>6.4} {:>6.4} {:>6.4} {:>6.4} {:>6.4}",
                    name,
                    clock,
                    summary.requests,
                    summary.objects,
                    policy,
                    cpu,
                    rate(cpu),
                    rate(seconds),
                    report.total_cost,
                    p.accuracy,
                    p.base_rate,
                    p.precision,
                    p.recall,
                    p.f1
                );
            }
        }
    }
}

/// This thread's time on a CPU, seconds, if the system says.
fn cpu_seconds() -> Option<f64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (status == 0).then(|| now.tv_sec as f64 + now.tv_nsec as f64 / 1e9)
}

/// The whole trace in memory.
fn load(path: &Path, options: &TraceOptions) -> Result<Vec<TraceRequest>, TraceError> {
    TraceReader::open(path, options)?.collect()
}
