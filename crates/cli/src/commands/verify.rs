//! `strata verify DST`.

use std::process::ExitCode;

use clap::Args;
use strata_mover::verify_dataset;

use super::Context;
use crate::output;

/// Arguments of `strata verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The dataset to check: the destination of an earlier `strata migrate`.
    pub destination: String,
    /// Files checked at once.
    #[arg(long, short = 'j', default_value_t = 4)]
    pub jobs: usize,
}

/// Run the command.
pub async fn run(context: &Context, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let store = context.store(&args.destination).await?;
    let report = verify_dataset(&store, args.jobs).await?;
    if context.json {
        output::print_json(&report);
    } else {
        for file in &report.damaged {
            let ranges: Vec<String> = file
                .ranges
                .iter()
                .map(|(s, e)| format!("{s}..{e}"))
                .collect();
            if ranges.is_empty() {
                println!("DAMAGED {}: {} ({})", file.path, file.problem, file.detail);
            } else {
                println!(
                    "DAMAGED {}: {} ({}); damaged byte ranges: {}",
                    file.path,
                    file.problem,
                    file.detail,
                    ranges.join(", ")
                );
            }
        }
        println!(
            "{}: {} of {} files intact, {} damaged or missing; root {}",
            if report.is_ok() { "OK" } else { "FAILED" },
            report.files_ok,
            report.files,
            report.damaged.len(),
            report.root_hash
        );
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
