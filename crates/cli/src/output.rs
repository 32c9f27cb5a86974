//! Text and JSON presentation shared by the commands.

use serde::Serialize;
use strata_catalog::JobSummary;
use strata_mover::MigrationReport;

use crate::units::human_bytes;

/// Print a value as one JSON document on standard output.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
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
        Some(root) => line.push_str(&format!("\nverified; dataset root {root}")),
        None => line.push_str(&format!(
            "\nINCOMPLETE: {} file(s) failed, {} unreadable; fix the causes above and re-run the same command",
            report.failed.len(),
            report.unreadable_entries.len()
        )),
    }
    line
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
