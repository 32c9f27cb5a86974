//! `strata status`: jobs and their progress, from the catalog.

use std::process::ExitCode;

use clap::Args;

use super::Context;
use crate::output;

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
    let live = |job: &strata_catalog::JobSummary| {
        crate::live_status::read(&crate::live_status::live_path(
            catalog_file.as_deref()?,
            &job.source,
            &job.destination,
        ))
    };
    if context.json {
        let rows: Vec<serde_json::Value> = jobs
            .iter()
            .map(|job| {
                let mut row = output::job_json(job);
                if let Some(live) = live(job) {
                    row["throttle"] = live["throttle"].clone();
                }
                row
            })
            .collect();
        output::print_json(&rows);
    } else if jobs.is_empty() {
        outln!("no jobs yet: start one with `strata migrate SRC DST`");
    } else {
        for job in &jobs {
            outln!("{}", output::job_line(job));
            if let Some(summary) = live(job).and_then(|l| l["summary"].as_str().map(str::to_string))
            {
                outln!("  bandwidth: {summary}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
