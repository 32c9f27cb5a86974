//! `strata verify DST`.

use std::process::ExitCode;

use clap::Args;
use strata_mover::{verify_dataset_mode, VerifyMode};

use super::Context;
use crate::output;

/// Arguments of `strata verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The dataset to check: the destination of an earlier `strata migrate`.
    pub destination: String,
    /// Files checked at once.
    #[arg(long, short = 'j', default_value = "4", value_parser = crate::units::parse_jobs)]
    pub jobs: usize,
    /// Check presence and sizes only (against the manifest, the index and the parity
    /// map); the default re-reads and hashes every byte.
    #[arg(long)]
    pub fast: bool,
    #[command(flatten)]
    pub key: super::key_args::KeyArgs,
}

/// Run the command.
pub async fn run(context: &Context, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = args.key.load()?;
    let store = context.destination_store(&args.destination).await?;
    let mode = if args.fast {
        VerifyMode::Fast
    } else {
        VerifyMode::Deep
    };
    let report = verify_dataset_mode(&store, args.jobs, mode, key.as_ref()).await?;
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
                outln!("DAMAGED {}: {} ({})", file.path, file.problem, file.detail);
            } else {
                outln!(
                    "DAMAGED {}: {} ({}); damaged byte ranges: {}",
                    file.path,
                    file.problem,
                    file.detail,
                    ranges.join(", ")
                );
            }
        }
        for issue in &report.issues {
            outln!(
                "DAMAGED {}: {} ({})",
                issue.object,
                issue.problem,
                issue.detail
            );
        }
        print_extra_files(&report.extra_files);
        outln!(
            "{}: {} of {} files intact, {} damaged or missing{}; root {}{}",
            if report.is_ok() { "OK" } else { "FAILED" },
            report.files_ok,
            report.files,
            report.damaged.len(),
            if report.issues.is_empty() {
                String::new()
            } else {
                format!(", {} other problem(s)", report.issues.len())
            },
            report.root_hash,
            if args.fast {
                " (fast: presence and sizes only)"
            } else {
                ""
            }
        );
        if !report.is_ok() {
            outln!(
                "to fix: `strata repair {dst}` (from parity, packed layout) or `strata repair \
                 {dst} --from SRC` (from a copy of the source)",
                dst = args.destination
            );
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Extra files shown in text output before the rest is only counted (`--json` lists all).
const EXTRA_FILES_SHOWN: usize = 20;

/// Warn of files at the destination the manifest does not list: not damage (the exit
/// status ignores them), but not part of the dataset either.
fn print_extra_files(extra: &[String]) {
    for path in extra.iter().take(EXTRA_FILES_SHOWN) {
        eprintln!("warning: {path} is not in the manifest: not part of the dataset, not checked");
    }
    if extra.len() > EXTRA_FILES_SHOWN {
        eprintln!(
            "warning: {} more files are not in the manifest (`--json` lists them all)",
            extra.len() - EXTRA_FILES_SHOWN
        );
    }
}
