//! `strata repair DST [--from SRC]`.

use std::process::ExitCode;

use clap::Args;
use strata_mover::repair;

use super::Context;
use crate::output;

/// Arguments of `strata repair`.
#[derive(Args, Debug)]
pub struct RepairArgs {
    /// The dataset to repair: the destination of an earlier `strata migrate`.
    pub destination: String,
    /// A copy of the dataset (plain files: the migration's source, or a restore) to
    /// rebuild from what parity cannot; only bytes matching the manifest are used.
    #[arg(long)]
    pub from: Option<String>,
    /// Objects checked at once.
    #[arg(long, short = 'j', default_value = "4", value_parser = crate::units::parse_jobs)]
    pub jobs: usize,
}

/// Run the command: exit 0 when everything damaged was repaired (or nothing was), 1 when
/// something could not be.
pub async fn run(context: &Context, args: RepairArgs) -> anyhow::Result<ExitCode> {
    let store = context.destination_store(&args.destination).await?;
    let source = match &args.from {
        Some(from) => Some(context.source_store(from).await?),
        None => None,
    };
    let report = repair(&store, source.as_ref(), args.jobs).await?;
    if context.json {
        output::print_json(&report);
    } else {
        for r in &report.repaired {
            let moved = r
                .moved_to
                .as_ref()
                .map(|to| format!(" (now {to})"))
                .unwrap_or_default();
            if r.files.is_empty() {
                outln!("REPAIRED {} from {}{moved}", r.object, r.how);
            } else {
                outln!(
                    "REPAIRED {} from {}{moved}; files: {}",
                    r.object,
                    r.how,
                    r.files.join(", ")
                );
            }
        }
        for u in &report.unrepairable {
            if u.paths.is_empty() {
                outln!("UNREPAIRABLE {}: {}", u.object, u.reason);
            } else {
                outln!(
                    "UNREPAIRABLE {}: {}; files affected: {}",
                    u.object,
                    u.reason,
                    u.paths.join(", ")
                );
            }
        }
        outln!(
            "{}: {} objects checked, {} damaged, {} repaired, {} not repairable{}; root {}",
            if report.is_ok() { "OK" } else { "FAILED" },
            report.objects_checked,
            report.damaged,
            report.repaired.len(),
            report.unrepairable.len(),
            if report.files_affected.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} file(s) still damaged: {})",
                    report.files_affected.len(),
                    report.files_affected.join(", ")
                )
            },
            report.root_hash
        );
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
