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
    let jobs = catalog.list_jobs().await?;
    if context.json {
        let rows: Vec<serde_json::Value> = jobs.iter().map(output::job_json).collect();
        output::print_json(&rows);
    } else if jobs.is_empty() {
        println!("no jobs yet: start one with `strata migrate SRC DST`");
    } else {
        for job in &jobs {
            println!("{}", output::job_line(job));
        }
    }
    Ok(ExitCode::SUCCESS)
}
