//! `strata status`: jobs and their progress, from the catalog, with the workers of
//! distributed runs (`strata worker`) and the task each holds.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use strata_catalog::{JobSummary, WorkerRecord};

use super::Context;
use crate::output;
use crate::units::human_bytes;

/// A worker whose last heartbeat is older than this is shown as silent (killed, or its
/// node lost): its task comes back to another worker after the ack wait.
const SILENT_AFTER_SECS: i64 = 15;

/// Arguments of `strata status`.
#[derive(Args, Debug)]
pub struct StatusArgs {}

/// Run the command.
pub async fn run(context: &Context, _args: StatusArgs) -> anyhow::Result<ExitCode> {
    let catalog = context.catalog().await?;
    // Live state (a running migration's bandwidth) is kept beside an SQLite file; a
    // PostgreSQL catalog has none yet.
    let catalog_file = context.catalog_file("live state").ok();
    let jobs = catalog.list_jobs().await?;
    let workers = catalog.workers().await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let live = |job: &JobSummary| {
        crate::live_status::read(&crate::live_status::live_path(
            catalog_file.as_deref()?,
            &job.source,
            &job.destination,
        ))
    };
    let holding = |job: &JobSummary| -> Vec<&WorkerRecord> {
        workers.iter().filter(|w| w.job == Some(job.id)).collect()
    };
    if context.json {
        let rows: Vec<serde_json::Value> = jobs
            .iter()
            .map(|job| {
                let mut row = output::job_json(job);
                if let Some(live) = live(job) {
                    row["throttle"] = live["throttle"].clone();
                }
                row["workers"] = holding(job).iter().map(|w| worker_json(w, now)).collect();
                row
            })
            .collect();
        output::print_json(&rows);
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        outln!("no jobs yet: start one with `strata migrate SRC DST`");
    }
    for job in &jobs {
        outln!("{}", output::job_line(job));
        if let Some(summary) = live(job).and_then(|l| l["summary"].as_str().map(str::to_string)) {
            outln!("  bandwidth: {summary}");
        }
        for worker in holding(job) {
            outln!(
                "  worker {} holds {}",
                worker.id,
                worker.task.as_deref().unwrap_or("a task")
            );
        }
    }
    if !workers.is_empty() {
        outln!("workers:");
        for worker in &workers {
            outln!("  {}", worker_line(worker, now));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One worker for people: where it runs, what it can do, what it holds, when it was last
/// heard of.
fn worker_line(worker: &WorkerRecord, now: i64) -> String {
    let cap = worker.bandwidth_cap.map_or("no cap".to_string(), |c| {
        format!("cap {}/s", human_bytes(c))
    });
    let task = match (worker.job, &worker.task) {
        (Some(job), Some(task)) => format!("job {job} {task}"),
        _ => "idle".to_string(),
    };
    let age = now - worker.heartbeat_at;
    let silent = if age > SILENT_AFTER_SECS {
        " (silent: stopped or unreachable)"
    } else {
        ""
    };
    format!(
        "{} on {} ({} cores, {cap}, measured {}/s, {} tasks done): {task}; heartbeat {age}s ago{silent}",
        worker.id,
        worker.host,
        worker.cores,
        human_bytes(worker.throughput),
        worker.tasks_done,
    )
}

fn worker_json(worker: &WorkerRecord, now: i64) -> serde_json::Value {
    let mut value = serde_json::to_value(worker).unwrap_or_default();
    value["heartbeat_age_secs"] = (now - worker.heartbeat_at).into();
    value
}
