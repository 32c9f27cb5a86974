//! Text and JSON presentation shared by the commands, and the one way they write to
//! standard output ([`outln!`]).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use strata_catalog::JobSummary;
use strata_mover::{MigrationReport, ParityReport, Shortfall, WriteCheck};

use crate::units::human_bytes;

/// Set once standard output's reader has gone away: the rest of the output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to standard output (the body of [`outln!`]). A reader that went
/// away (`strata status | head -n 1`) is no failure of the command, as with Unix tools: the
/// rest of the output is dropped quietly and the command still ends with the exit status
/// of its work. Any other write error (a full disk under a redirection) is said once on
/// standard error.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(error) = out.write_fmt(args).and_then(|()| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {error}");
        }
    }
}

/// `println!` for command output, through [`write_stdout`]: never panics on a closed pipe.
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Print a value as one JSON document on standard output.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => outln!("{text}"),
        Err(error) => eprintln!("error: cannot encode the result as JSON: {error}"),
    }
}

/// The closing line of a migration.
pub fn migration_summary(report: &MigrationReport) -> String {
    let rate = if report.seconds > 0.0 {
        human_bytes((report.bytes_sent as f64 / report.seconds) as u64) + "/s"
    } else {
        "-".into()
    };
    let mut line = format!(
        "job {}: {} files, {}: {} copied, {} identical skipped, {} already done; sent {} in {:.1}s ({rate})",
        report.job,
        report.files,
        human_bytes(report.bytes),
        report.files_copied,
        report.files_skipped,
        report.files_resumed,
        human_bytes(report.bytes_sent),
        report.seconds,
    );
    if !report.recopied.is_empty() {
        line.push_str(&format!(
            "; {} re-copied (recorded as copied by an earlier run, but missing or resized at the destination)",
            report.recopied.len()
        ));
    }
    if report.chunks_resent > 0 {
        line.push_str(&format!(
            "; {} chunk(s) re-sent after failed verification",
            report.chunks_resent
        ));
    }
    if !report.deferred.is_empty() {
        let files: std::collections::BTreeSet<&str> =
            report.deferred.iter().map(|d| d.path.as_str()).collect();
        line.push_str(&format!(
            "; {} file(s) deferred until their source stopped changing",
            files.len()
        ));
    }
    match &report.root_hash {
        Some(root) => line.push_str(&format!(
            "\nverified ({}); dataset root {root}",
            match report.verify {
                WriteCheck::Sent => "hashes of the bytes sent",
                WriteCheck::Cache => "read back through the page cache",
                WriteCheck::Device => "read back from the device",
            }
        )),
        None => line.push_str(&format!(
            "\nINCOMPLETE: {} file(s) failed, {} unreadable; fix the causes above and re-run the same command",
            report.failed.len(),
            report.unreadable_entries.len()
        )),
    }
    line
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// What parity a run is about to write, said before it is written: the request, the
/// shape, the bytes and their share of the data, and why it differs from the request.
pub fn parity_plan(plan: &ParityReport) -> String {
    let mut line = format!(
        "parity {}: writing {} over {} objects in {} group(s): {} of parity for {} ({:.1}%)",
        plan.requested,
        plan.spec,
        plan.objects,
        plan.groups,
        human_bytes(plan.parity_bytes),
        human_bytes(plan.data_bytes),
        percent(plan.parity_bytes, plan.data_bytes)
    );
    if let Some(note) = parity_note(plan) {
        line.push_str("\n  ");
        line.push_str(&note);
    }
    line
}

/// Why the parity written differs from what was asked, in words; `None` when it does not.
pub fn parity_note(plan: &ParityReport) -> Option<String> {
    let padding = format!(
        "parity shards are whole objects (so losing one object loses one shard), padded to \
         the largest of their group, and the largest of these {} objects is {} ({:.1}% of \
         the data)",
        plan.objects,
        human_bytes(plan.largest_object),
        percent(plan.largest_object, plan.data_bytes)
    );
    let nominal = format!(
        "{} would write {} ({:.1}%)",
        plan.nominal,
        human_bytes(plan.nominal_parity_bytes),
        percent(plan.nominal_parity_bytes, plan.data_bytes)
    );
    Some(match plan.shortfall? {
        Shortfall::Adapted => format!(
            "{nominal}: {padding}; {} keeps within {} (any {} lost object(s) of each group \
             can be rebuilt)",
            plan.spec, plan.requested, plan.spec.m
        ),
        Shortfall::Unreachable => format!(
            "{} cannot be reached: {padding}, and rebuilding a lost object takes a parity \
             shard as large; {} is the least parity that rebuilds any one lost object",
            plan.requested, plan.spec
        ),
        Shortfall::Padded => format!(
            "{} is {:.1}% on full groups of equal objects, but {padding}; a budget such as \
             `--parity 10%` chooses the groups to fit it",
            plan.nominal,
            plan.nominal.overhead() * 100.0
        ),
    })
}

/// One line of `strata status`.
pub fn job_line(job: &JobSummary) -> String {
    let percent = if job.bytes_total > 0 {
        job.bytes_done as f64 * 100.0 / job.bytes_total as f64
    } else {
        100.0
    };
    let mut line = format!(
        "job {} {} {} -> {}: {}/{} files, {}/{} ({percent:.0}%)",
        job.id,
        job.state,
        job.source,
        job.destination,
        job.files_done,
        job.files_total,
        human_bytes(job.bytes_done),
        human_bytes(job.bytes_total),
    );
    if job.files_failed > 0 {
        line.push_str(&format!(", {} failed", job.files_failed));
    }
    if let Some(error) = &job.last_error {
        line.push_str(&format!("; last error: {error}"));
    }
    line
}

/// A job as JSON.
pub fn job_json(job: &JobSummary) -> serde_json::Value {
    serde_json::json!({
        "id": job.id,
        "state": job.state.to_string(),
        "source": job.source,
        "destination": job.destination,
        "chunk_size": job.chunk_size,
        "files_total": job.files_total,
        "files_done": job.files_done,
        "files_failed": job.files_failed,
        "bytes_total": job.bytes_total,
        "bytes_done": job.bytes_done,
        "root_hash": job.root_hash,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    })
}
