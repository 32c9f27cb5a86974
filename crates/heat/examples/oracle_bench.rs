//! The `oracle` policy's time on a real trace: reading the future, planning every object,
//! and replaying the plan, on the example configuration's tiers (the default of `strata
//! eval`), with the default window (span / 100).
//!
//! Run in release: `cargo run --release -p strata-heat --example oracle_bench -- TRACE
//! [TIME_SCALE] [POLICY,...]` (default time scale 1, policy `oracle`; `all` runs every
//! policy in one replay).

use std::path::PathBuf;
use std::time::Instant;

use strata_heat::eval::policies::parse_policy_list;
use strata_heat::eval::{default_window_ms, evaluate, Requests};
use strata_heat::trace::{summarize, TraceError, TraceOptions, TraceReader};
use strata_heat::TieringConfig;

/// The configuration `strata eval` uses without `--config`.
const EXAMPLE_CONFIG: &str = include_str!("../../server/strata.example.toml");

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: oracle_bench TRACE [TIME_SCALE] [POLICY,...]");
        std::process::exit(2);
    };
    let time_scale = match args.next().map(|s| s.parse::<f64>()) {
        None => 1.0,
        Some(Ok(scale)) => scale,
        Some(Err(e)) => {
            eprintln!("the time scale must be a number: {e}");
            std::process::exit(2);
        }
    };
    let policies = args.next().unwrap_or_else(|| "oracle".to_string());
    let names = match parse_policy_list(&policies) {
        Ok(names) => names,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let config = match TieringConfig::parse(EXAMPLE_CONFIG) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("the example configuration: {e}");
            std::process::exit(1);
        }
    };
    let options = TraceOptions {
        format: None,
        time_scale,
    };
    let started = Instant::now();
    let summary = match summarize(&path, &options) {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let summarized = started.elapsed().as_secs_f64();
    let reopen = || -> Result<Requests<'_>, TraceError> {
        Ok(Box::new(TraceReader::open(&path, &options)?))
    };
    let window_ms = default_window_ms(summary.span_ms);
    let started = Instant::now();
    let reports = match evaluate(&summary, &config, window_ms, &names, &reopen) {
        Ok(reports) => reports,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}: {} requests, {} objects, window {} ms; summary {summarized:.1} s, evaluation {seconds:.1} s",
        path.display(),
        summary.requests,
        summary.objects,
        window_ms
    );
    for report in reports {
        println!(
            "{:<15} total {:>14.6} $  moves {:>9}  refused {}/{}  F1 {:.3}  gap {}",
            report.policy,
            report.total_cost,
            report.moves,
            report.refused_residency,
            report.refused_capacity,
            report.prediction.f1,
            report.gap.map_or("-".to_string(), |g| format!("{g:.2e}")),
        );
    }
}
