//! `strata eval --trace FILE`: replays an access trace through tiering policies on the tiers
//! of a configuration (the example configuration's by default) and prints one row per
//! policy: cost and its breakdown, latency-objective misses, bytes moved, refused moves and
//! next-window prediction scores. `--sweep` prints each policy's cost and mean read latency
//! at a range of latency prices. The replay's rules are strata-heat's `eval` module's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use strata_heat::eval::policies::parse_policy_list;
use strata_heat::eval::{self, default_window_ms, PolicyReport, Requests};
use strata_heat::trace::{summarize, TraceFormat, TraceOptions, TraceReader, TraceSummary};
use strata_heat::units::{human_bytes, human_duration_ms, parse_duration_ms};
use strata_heat::TieringConfig;

use super::Context;
use crate::output;

/// The example configuration, whose tiers `strata eval` uses without `--config`.
const EXAMPLE_CONFIG: &str = include_str!("../../../server/strata.example.toml");

/// Latency prices of `--sweep` without a list: 0, then 1e-10 to 1e-5 $ per read-ms.
const DEFAULT_SWEEP: [f64; 7] = [0.0, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5];

/// Arguments of `strata eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The access trace, compressed (zstd, xz, gzip, bzip2) or not.
    #[arg(long)]
    pub trace: PathBuf,
    /// Its format: oracle-general, cloudphysics, msr, arc, cache2k, lirs, tencent or csv
    /// (default: detected from the file's name).
    #[arg(long)]
    pub format: Option<String>,
    /// The strata.toml whose tiers, rules, classes and [objectives] the replay uses
    /// (default: the example configuration's).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `all`, or policy names separated by commas: static, seed003, s3-intelligent, lru,
    /// rules, learned, oracle (and learned's two halves by name only: learned-global,
    /// learned-per-class).
    #[arg(long, default_value = "all")]
    pub policy: String,
    /// Multiplies the trace's clock (a trace without a clock: seconds per request), so a
    /// trace can be stretched until day- and month-long rules act.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Window length, like 1h, 30m, 500ms or 3600 (seconds) (default: the trace's span /
    /// 100).
    #[arg(long)]
    pub window: Option<String>,
    /// Run every policy at several latency prices, $ per read-millisecond, separated by
    /// commas (without a list: 0 and 1e-10 to 1e-5).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub sweep: Option<String>,
}

/// The `--json` document.
#[derive(Serialize)]
struct EvalJson<'a> {
    trace: String,
    format: &'static str,
    requests: u64,
    objects: u32,
    span_ms: i64,
    time_scale: f64,
    window_ms: i64,
    tail_windows: u32,
    config: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_price_per_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policies: Option<&'a [PolicyReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sweep: Option<Vec<SweepJson<'a>>>,
}

#[derive(Serialize)]
struct SweepJson<'a> {
    latency_price_per_ms: f64,
    policies: &'a [PolicyReport],
}

/// Run the command.
pub async fn run(context: &Context, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let (config, config_name) = load_config(args.config.as_deref())?;
    let names = parse_policy_list(&args.policy).map_err(|e| anyhow::anyhow!("--policy: {e}"))?;
    let options = TraceOptions {
        format: parse_format(args.format.as_deref())?,
        time_scale: args.time_scale,
    };
    let prices = args.sweep.as_deref().map(parse_prices).transpose()?;
    let summary = summarize(&args.trace, &options)?;
    let window_ms = match &args.window {
        Some(text) => parse_window(text)?,
        None => default_window_ms(summary.span_ms),
    };
    let path = args.trace.as_path();
    let reopen = || -> Result<Requests<'_>, strata_heat::trace::TraceError> {
        Ok(Box::new(TraceReader::open(path, &options)?))
    };
    let mut document = EvalJson {
        trace: args.trace.display().to_string(),
        format: summary.format.name(),
        requests: summary.requests,
        objects: summary.objects,
        span_ms: summary.span_ms,
        time_scale: args.time_scale,
        window_ms,
        tail_windows: eval::TAIL_WINDOWS,
        config: config_name,
        latency_price_per_ms: None,
        policies: None,
        sweep: None,
    };
    match prices {
        None => {
            let reports = eval::evaluate(&summary, &config, window_ms, &names, &reopen)?;
            if context.json {
                document.latency_price_per_ms = Some(config.objectives.latency_price_per_ms);
                document.policies = Some(&reports);
                output::print_json(&document);
            } else {
                print_header(&document, &summary, &config);
                print_table(&reports);
            }
        }
        Some(prices) => {
            let rows = eval::sweep(&summary, &config, window_ms, &names, &prices, &reopen)?;
            if context.json {
                document.sweep = Some(
                    rows.iter()
                        .map(|(price, reports)| SweepJson {
                            latency_price_per_ms: *price,
                            policies: reports,
                        })
                        .collect(),
                );
                output::print_json(&document);
            } else {
                print_header(&document, &summary, &config);
                print_sweep(&rows);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_config(path: Option<&Path>) -> anyhow::Result<(TieringConfig, String)> {
    match path {
        Some(path) => Ok((TieringConfig::load(path)?, path.display().to_string())),
        None => {
            let config = TieringConfig::parse(EXAMPLE_CONFIG)
                .context("the built-in example configuration is invalid")?;
            Ok((config, "the example configuration".to_string()))
        }
    }
}

pub(crate) fn parse_format(name: Option<&str>) -> anyhow::Result<Option<TraceFormat>> {
    name.map(|name| {
        TraceFormat::from_name(name).ok_or_else(|| {
            anyhow::anyhow!(
                "--format {name:?} is not a trace format; use one of {}",
                TraceFormat::names()
            )
        })
    })
    .transpose()
}

pub(crate) fn parse_window(text: &str) -> anyhow::Result<i64> {
    let ms = parse_duration_ms(text).map_err(|e| anyhow::anyhow!("--window: {e}"))?;
    if ms < 1 {
        anyhow::bail!("--window {text:?}: a window must be at least 1ms; write it like 1h");
    }
    Ok(ms)
}

fn parse_prices(text: &str) -> anyhow::Result<Vec<f64>> {
    if text.trim().is_empty() {
        return Ok(DEFAULT_SWEEP.to_vec());
    }
    text.split(',')
        .map(|item| {
            let item = item.trim();
            item.parse::<f64>()
                .ok()
                .filter(|price| price.is_finite() && *price >= 0.0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--sweep: {item:?} is not a price; write prices in $ per read-ms, 0 \
                         or more, separated by commas, like 0,1e-8,1e-6"
                    )
                })
        })
        .collect()
}

fn print_header(document: &EvalJson<'_>, summary: &TraceSummary, config: &TieringConfig) {
    let tiers: Vec<String> = config
        .tiers
        .iter()
        .map(|t| format!("{} ({} ms)", t.name, t.read_latency_ms))
        .collect();
    println!(
        "trace {} ({}, {} requests, {} objects, {} span{})",
        document.trace,
        document.format,
        summary.requests,
        summary.objects,
        human_duration_ms(summary.span_ms),
        if summary.has_clock { "" } else { ", no clock" },
    );
    println!(
        "tiers of {}: {}; new objects on {}; objective {} ms",
        document.config,
        tiers.join(", "),
        config.default_tier,
        config.objectives.read_latency_ms
    );
    println!(
        "windows of {} (time scale {}), then a tail of {} windows at each policy's final placement",
        human_duration_ms(document.window_ms),
        document.time_scale,
        document.tail_windows
    );
}

fn print_table(reports: &[PolicyReport]) {
    println!(
        "{:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>16} {:>9} {:>11} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "policy", "total $", "storage", "retrieval", "requests", "moves", "egress", "latency",
        "misses", "mean ms", "moved", "refused", "acc", "prec", "recall", "F1", "base",
    );
    for r in reports {
        let c = &r.cost;
        let p = &r.prediction;
        println!(
            "{:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>16} {:>9.3} {:>11} {:>9} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3}",
            r.policy,
            dollars(r.total_cost),
            dollars(c.storage),
            dollars(c.retrieval),
            dollars(c.requests),
            dollars(c.moves),
            dollars(c.egress),
            dollars(c.latency),
            misses(r),
            r.mean_read_latency_ms,
            human_bytes(r.bytes_moved),
            r.refused_residency + r.refused_capacity,
            p.accuracy,
            p.precision,
            p.recall,
            p.f1,
            p.base_rate,
        );
    }
    // A policy that is not exact (the oracle when a capacity binds) says by how much.
    for r in reports {
        if let Some(gap) = r.gap.filter(|&gap| gap > 0.0) {
            println!(
                "{}: at most {:.2}% above the optimum (its cost over a lower bound under capacity)",
                r.policy,
                gap * 100.0
            );
        }
    }
}

/// Dollars to four significant digits, in scientific notation below a cent (traces
/// sampled for research cost fractions of a cent).
fn dollars(amount: f64) -> String {
    if amount == 0.0 {
        "0".to_string()
    } else if amount.abs() >= 0.01 {
        format!("{amount:.4}")
    } else {
        format!("{amount:.3e}")
    }
}

fn misses(report: &PolicyReport) -> String {
    format!("{} ({:.1}%)", report.misses, report.miss_share * 100.0)
}

fn print_sweep(rows: &[(f64, Vec<PolicyReport>)]) {
    println!(
        "{:>10} {:<15} {:>10} {:>10} {:>16}",
        "$ per ms", "policy", "total $", "mean ms", "misses"
    );
    for (price, reports) in rows {
        for r in reports {
            println!(
                "{:>10} {:<15} {:>10} {:>10.3} {:>16}",
                dollars(*price),
                r.policy,
                dollars(r.total_cost),
                r.mean_read_latency_ms,
                misses(r)
            );
        }
    }
}
