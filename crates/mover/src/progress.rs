//! Live counters for progress display, and the final report of a migration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Live counters, updated by the workers and read by the progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Files in the plan.
    pub files_total: AtomicU64,
    /// Bytes in the plan.
    pub bytes_total: AtomicU64,
    /// Files finished (copied, skipped as identical, or already done before a resume).
    pub files_done: AtomicU64,
    /// Bytes finished, counted per verified chunk.
    pub bytes_done: AtomicU64,
    /// Bytes actually sent to the destination in this run.
    pub bytes_sent: AtomicU64,
    /// Bytes sent again because their staged copy failed verification.
    pub bytes_resent: AtomicU64,
    /// Files that failed.
    pub files_failed: AtomicU64,
    /// Files waiting to be copied until their source stops changing (`file_growing`, or
    /// changed during their copy).
    pub files_waiting: AtomicU64,
    messages: Mutex<Vec<String>>,
}

impl Progress {
    /// Add to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Take from a counter (never below zero).
    pub fn sub(counter: &AtomicU64, n: u64) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n))
        });
    }

    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Queue a warning or error line for the display (drained by [`Self::take_messages`]).
    pub fn message(&self, line: String) {
        if let Ok(mut messages) = self.messages.lock() {
            messages.push(line);
        }
    }

    /// Take the queued lines.
    pub fn take_messages(&self) -> Vec<String> {
        self.messages
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }
}

/// One file that could not be copied, and why.
#[derive(Debug, Clone, Serialize)]
pub struct FileFailure {
    /// Relative path.
    pub path: String,
    /// What went wrong and what to do.
    pub error: String,
}

/// A file an earlier run recorded as finished that was not at the destination as recorded,
/// and so was copied again in this run.
#[derive(Debug, Clone, Serialize)]
pub struct Recopied {
    /// Relative path.
    pub path: String,
    /// What was found at the destination instead.
    pub reason: String,
}

/// The outcome of a migration, printed as text or `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    /// Catalog job id.
    pub job: i64,
    /// Source URI.
    pub source: String,
    /// Destination URI.
    pub destination: String,
    /// Whether this was a dry run (nothing moved).
    pub dry_run: bool,
    /// Files in the plan.
    pub files: u64,
    /// Bytes in the plan.
    pub bytes: u64,
    /// Chunk tasks in the plan.
    pub chunks: u64,
    /// Files copied in this run.
    pub files_copied: u64,
    /// Files left alone because an identical copy was already there.
    pub files_skipped: u64,
    /// Files already finished by an earlier run of the same job.
    pub files_resumed: u64,
    /// Files an earlier run finished that were missing or of another size at the
    /// destination, copied again in this run (counted in `files_copied` when they made it).
    pub recopied: Vec<Recopied>,
    /// Bytes sent to the destination in this run.
    pub bytes_sent: u64,
    /// Chunks whose staged copy failed verification and were fetched and sent again.
    pub chunks_resent: u64,
    /// Bytes of those chunks.
    pub bytes_resent: u64,
    /// What was read back from staged chunks before publishing: the mode asked for
    /// where the destination can read an upload back (local, plain layout), `sent`
    /// elsewhere (see [`crate::write_check`]).
    pub verify: crate::WriteCheck,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Dataset root hash (hex), when every file made it.
    pub root_hash: Option<String>,
    /// Files that could not be copied.
    pub failed: Vec<FileFailure>,
    /// Entries skipped while listing (special files, symlink loops).
    pub skipped_entries: Vec<FileFailure>,
    /// Entries that could not be read while listing (counted as failures).
    pub unreadable_entries: Vec<FileFailure>,
    /// Files whose copy waited in this run because their source was being written
    /// (`file_growing`) or changed during the copy (`changed`), one entry per wait; each
    /// was copied later in the run or is listed in `failed`.
    pub deferred: Vec<crate::settle::Deferral>,
}

impl MigrationReport {
    /// True when every planned file is at the destination and verified, and nothing was
    /// unreadable.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
            && self.unreadable_entries.is_empty()
            && (self.dry_run || self.root_hash.is_some())
    }
}
