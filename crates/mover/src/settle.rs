//! Sources that change under a copy.
//!
//! A file's copy starts from what the plan recorded of it: size, modification time and,
//! on object stores, the listing's ETag. Once every chunk has been read, and before the
//! file is published (plain layout) or recorded in the index (packed layout), the source
//! is looked at again. If it changed, the bytes read may mix two versions of the file, so
//! they are not published: the file is planned again from what the source holds now and
//! copied again, at most [`COPY_ATTEMPTS`] times in a run, after which it is reported
//! `changed` (a failed file: exit 1).
//!
//! A file modified less than `settle` ago is, as far as anyone can tell, still being
//! written: its copy is deferred (reason `file_growing`) and made later in the same run,
//! once the file has not changed for `settle`. One that is still changing after
//! `settle_timeout` is reported `changing` (a failed file). A settle of zero turns the
//! deferral off, never the check before publishing.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::stream::{self, StreamExt};
use serde::Serialize;
use strata_catalog::{FileRecord, PlannedFile};
use strata_store::{Entry, StoreError};

use crate::plan::planned_file;
use crate::progress::Progress;
use crate::retry::retry_store;
use crate::source::DatasetSource;

/// Copies of one file per run that may find their source changed before it is reported
/// `changed`.
pub const COPY_ATTEMPTS: u32 = 3;

/// Why a file's copy waits.
pub const FILE_GROWING: &str = "file_growing";
/// A copy found its source changed and the file waits to be copied again.
pub const CHANGED: &str = "changed";

/// How long a source must stay unchanged before it is copied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct SettleOptions {
    /// A file modified less than this long ago is deferred until it has not changed for
    /// this long (zero: never deferred).
    pub settle: Duration,
    /// A deferred file still changing after this long is reported `changing`.
    pub timeout: Duration,
}

impl Default for SettleOptions {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
        }
    }
}

/// A file of the plan and the version of it its copy starts from.
#[derive(Clone, Debug)]
pub(crate) struct SourceFile {
    /// The plan's record (size and modification time of that version).
    pub record: FileRecord,
    /// The ETag the listing gave for that version (object stores).
    pub etag: Option<String>,
    /// Seen unchanged for the settle time in this run: copy it, do not defer it again.
    pub settled: bool,
}

impl SourceFile {
    /// Every file of `plan`, as the listing that made it saw them, none settled yet.
    pub(crate) fn all_of(plan: &crate::plan::Plan) -> Vec<SourceFile> {
        plan.files
            .iter()
            .map(|record| SourceFile {
                record: record.clone(),
                etag: plan.etags.get(&record.planned.index).cloned(),
                settled: false,
            })
            .collect()
    }
}

/// What the source holds now, compared with the version a copy started from.
#[derive(Debug)]
pub(crate) enum Now {
    /// The same version.
    Unchanged,
    /// Another version.
    Changed(Entry),
    /// Nothing any more.
    Vanished,
}

/// One file waiting to be copied in this run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Deferral {
    /// Relative path.
    pub path: String,
    /// `file_growing` (modified less than `--settle` ago when its copy was due) or
    /// `changed` (its source changed during its copy; it is copied again).
    pub reason: String,
}

/// True when `entry` is the version of the file that `planned` and `etag` describe: the
/// same size and, where both sides have an ETag, the same ETag (an S3 listing gives
/// Last-Modified to the millisecond, a HEAD to the second), else the same modification
/// time.
pub(crate) fn same_version(planned: &PlannedFile, etag: Option<&str>, entry: &Entry) -> bool {
    if planned.size != entry.size {
        return false;
    }
    match (etag, entry.etag.as_deref()) {
        (Some(before), Some(now)) => before == now,
        _ => planned.mtime_ns == planned_file(planned.index as usize, entry).mtime_ns,
    }
}

/// True when the file was modified less than `settle` before `now` (or, by a clock
/// ahead of ours, after it).
pub(crate) fn modified_within(planned: &PlannedFile, settle: Duration, now: SystemTime) -> bool {
    if settle.is_zero() {
        return false;
    }
    let Some(mtime) = planned
        .mtime_ns
        .and_then(|ns| u64::try_from(ns).ok())
        .map(|ns| UNIX_EPOCH + Duration::from_nanos(ns))
    else {
        return false;
    };
    now.duration_since(mtime).map_or(true, |age| age < settle)
}

/// Look at the source of `file` again. Packed sources are never written in place (their
/// objects are content-addressed and every frame is checked), so only plain ones are
/// looked at.
pub(crate) async fn look_again(
    source: &DatasetSource,
    file: &SourceFile,
) -> Result<Now, StoreError> {
    let Some(store) = source.plain() else {
        return Ok(Now::Unchanged);
    };
    let planned = &file.record.planned;
    Ok(match retry_store(|| store.stat(&planned.path)).await? {
        None => Now::Vanished,
        Some(entry) if same_version(planned, file.etag.as_deref(), &entry) => Now::Unchanged,
        Some(entry) => Now::Changed(entry),
    })
}

/// The file planned again as the source holds it now.
pub(crate) fn replanned(file: &SourceFile, entry: &Entry) -> SourceFile {
    let mut record = file.record.clone();
    record.planned = planned_file(record.planned.index as usize, entry);
    record.planned.path.clone_from(&file.record.planned.path);
    SourceFile {
        record,
        etag: entry.etag.clone(),
        settled: false,
    }
}

/// The message of a file whose source vanished during its copy.
pub(crate) fn vanished_message(source: &DatasetSource, path: &str) -> String {
    format!(
        "source file {}/{path} was deleted during its copy; it was not published",
        source.display().trim_end_matches('/')
    )
}

struct Waiter {
    file: SourceFile,
    /// When the file started waiting this time.
    since: Instant,
    /// When its current version was first seen.
    stable_since: Instant,
}

/// Files waiting to be copied (again) in this run.
pub(crate) struct Waiting {
    options: SettleOptions,
    /// The source's display URI, for messages.
    source: String,
    files: Vec<Waiter>,
    /// Copies per file that found their source changed.
    attempts: HashMap<u32, u32>,
    /// Every wait, for the report.
    pub deferrals: Vec<Deferral>,
    /// Bytes the files copied again gained (or lost, negative) over their plan.
    resized: i128,
}

/// What a settle phase decided.
pub(crate) struct Settled {
    /// Files to copy now, as their sources are.
    pub ready: Vec<SourceFile>,
    /// Files that will not be copied in this run, with the message.
    pub failed: Vec<(FileRecord, String)>,
    /// An error that would hit every file (unreachable store, refused credentials) met
    /// while looking at this file: the run stops, and what still waits is left pending.
    pub stopped: Option<(FileRecord, StoreError)>,
}

impl Waiting {
    pub(crate) fn new(options: SettleOptions, source: &DatasetSource) -> Self {
        Self {
            options,
            source: source.display().trim_end_matches('/').to_string(),
            files: Vec::new(),
            attempts: HashMap::new(),
            deferrals: Vec::new(),
            resized: 0,
        }
    }

    /// `planned` bytes adjusted by what the files planned again gained or lost.
    pub(crate) fn resize(&self, planned: u64) -> u64 {
        u64::try_from(i128::from(planned) + self.resized).unwrap_or(0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Files still waiting (a stopped run leaves them for the next one).
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// Defer `file`, modified less than the settle time ago, with reason `file_growing`.
    pub(crate) fn defer(&mut self, file: SourceFile) {
        self.push(file, FILE_GROWING);
    }

    /// A copy of `file` found its source holding `now`: wait to copy it again, or, after
    /// [`COPY_ATTEMPTS`] such copies, give the message to report it `changed` with.
    pub(crate) fn changed(&mut self, file: &SourceFile, now: &Entry) -> Result<(), String> {
        self.resized += i128::from(now.size) - i128::from(file.record.planned.size);
        let attempts = self.attempts.entry(file.record.planned.index).or_default();
        *attempts += 1;
        if *attempts >= COPY_ATTEMPTS {
            let planned = &file.record.planned;
            return Err(format!(
                "{CHANGED}: source file {}/{} changed during each of its {COPY_ATTEMPTS} copies \
                 (last {} bytes, now {} bytes); it was not published: re-run once nothing \
                 writes to it",
                self.source, planned.path, planned.size, now.size
            ));
        }
        self.push(replanned(file, now), CHANGED);
        Ok(())
    }

    fn push(&mut self, file: SourceFile, reason: &str) {
        self.deferrals.push(Deferral {
            path: file.record.planned.path.clone(),
            reason: reason.to_string(),
        });
        let now = Instant::now();
        self.files.push(Waiter {
            file,
            since: now,
            stable_since: now,
        });
    }

    /// Wait until every waiting file has stayed unchanged for the settle time (copy it),
    /// vanished, or kept changing past the timeout (report it), looking at the sources
    /// `jobs` at a time.
    pub(crate) async fn settle(
        &mut self,
        source: &DatasetSource,
        jobs: usize,
        progress: &Progress,
    ) -> Settled {
        let waiting = self.files.len() as u64;
        Progress::add(&progress.files_waiting, waiting);
        progress.message(self.waiting_message());
        let poll =
            (self.options.settle / 4).clamp(Duration::from_millis(10), Duration::from_millis(500));
        let mut settled = Settled {
            ready: Vec::new(),
            failed: Vec::new(),
            stopped: None,
        };
        loop {
            let looked: Vec<(Waiter, Result<Now, StoreError>)> =
                stream::iter(std::mem::take(&mut self.files))
                    .map(|waiter| async move {
                        let now = look_again(source, &waiter.file).await;
                        (waiter, now)
                    })
                    .buffer_unordered(jobs.max(1))
                    .collect()
                    .await;
            for (waiter, now) in looked {
                self.decide(source, waiter, now, &mut settled);
            }
            if self.files.is_empty() || settled.stopped.is_some() {
                break;
            }
            tokio::time::sleep(poll).await;
        }
        Progress::sub(&progress.files_waiting, waiting);
        settled.ready.sort_by_key(|f| f.record.planned.index);
        settled
    }

    fn decide(
        &mut self,
        source: &DatasetSource,
        mut waiter: Waiter,
        now: Result<Now, StoreError>,
        settled: &mut Settled,
    ) {
        let path = waiter.file.record.planned.path.clone();
        let seen = Instant::now();
        match now {
            Err(error) if crate::migrate::is_fatal(&error) => {
                settled.stopped = Some((waiter.file.record, error));
                return;
            }
            Err(error) => {
                settled.failed.push((waiter.file.record, error.to_string()));
                return;
            }
            Ok(Now::Vanished) => {
                let message = vanished_message(source, &path);
                settled.failed.push((waiter.file.record, message));
                return;
            }
            Ok(Now::Changed(entry)) => {
                self.resized +=
                    i128::from(entry.size) - i128::from(waiter.file.record.planned.size);
                waiter.file = replanned(&waiter.file, &entry);
                waiter.stable_since = seen;
            }
            Ok(Now::Unchanged) => {}
        }
        let settle = self.options.settle;
        let old_enough = !modified_within(&waiter.file.record.planned, settle, SystemTime::now());
        if old_enough || seen.duration_since(waiter.stable_since) >= settle {
            waiter.file.settled = true;
            settled.ready.push(waiter.file);
        } else if seen.duration_since(waiter.since) >= self.options.timeout {
            let message = format!(
                "changing: source file {}/{path} was still being written after {} \
                 (--settle-timeout), never unchanged for {} (--settle); it was not copied: \
                 re-run once nothing writes to it, or raise --settle-timeout",
                self.source,
                human_duration(self.options.timeout),
                human_duration(settle)
            );
            settled.failed.push((waiter.file.record, message));
        } else {
            self.files.push(waiter);
        }
    }

    fn waiting_message(&self) -> String {
        const SHOWN: usize = 5;
        let mut paths: Vec<&str> = self
            .files
            .iter()
            .take(SHOWN)
            .map(|w| w.file.record.planned.path.as_str())
            .collect();
        let more = self.files.len().saturating_sub(SHOWN);
        if more > 0 {
            paths.push("...");
        }
        format!(
            "waiting for {} file(s) being written ({FILE_GROWING}) or changed during their \
             copy to stay unchanged for {} before copying them: {}",
            self.files.len(),
            human_duration(self.options.settle),
            paths.join(", ")
        )
    }
}

/// `1.5s`, `10m`, `250ms`, as the flags are written.
pub(crate) fn human_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 || !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(size: u64, mtime_ns: Option<i64>) -> PlannedFile {
        PlannedFile {
            index: 3,
            path: "a/b.dat".into(),
            size,
            mtime_ns,
            mode: Some(0o644),
        }
    }

    fn entry(size: u64, mtime_ns: u64, etag: Option<&str>) -> Entry {
        Entry {
            path: "a/b.dat".into(),
            size,
            mtime: Some(UNIX_EPOCH + Duration::from_nanos(mtime_ns)),
            mode: Some(0o644),
            etag: etag.map(str::to_string),
        }
    }

    #[test]
    fn a_source_is_the_same_version_only_with_the_same_size_and_time_or_etag() {
        let t = 1_700_000_000_123_456_789;
        let p = planned(10, Some(t as i64));
        assert!(same_version(&p, None, &entry(10, t, None)));
        assert!(!same_version(&p, None, &entry(11, t, None)), "grown");
        assert!(
            !same_version(&p, None, &entry(10, t + 1, None)),
            "rewritten"
        );
        // An S3 HEAD gives whole seconds where the listing gave milliseconds: the ETag
        // decides, and a new ETag is a new version whatever the time says.
        let head = entry(10, t - t % 1_000_000_000, Some("\"e1\""));
        assert!(same_version(&p, Some("\"e1\""), &head));
        assert!(!same_version(
            &p,
            Some("\"e1\""),
            &entry(10, t, Some("\"e2\""))
        ));
        assert!(!same_version(
            &p,
            Some("\"e1\""),
            &entry(9, t, Some("\"e1\""))
        ));
    }

    #[test]
    fn only_files_modified_within_the_settle_time_are_deferred() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ns = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
        let settle = Duration::from_secs(2);
        let recent = planned(1, Some(ns(now - Duration::from_millis(500))));
        let old = planned(1, Some(ns(now - Duration::from_secs(3))));
        let future = planned(1, Some(ns(now + Duration::from_secs(60))));
        assert!(modified_within(&recent, settle, now));
        assert!(!modified_within(&old, settle, now));
        assert!(
            modified_within(&future, settle, now),
            "a clock ahead of ours"
        );
        assert!(!modified_within(&recent, Duration::ZERO, now), "--settle 0");
        assert!(
            !modified_within(&planned(1, None), settle, now),
            "no time known"
        );
    }

    #[test]
    fn a_file_changing_at_every_copy_is_reported_changed_after_the_last_attempt() {
        let mut waiting = Waiting {
            options: SettleOptions::default(),
            source: "/data/src".into(),
            files: Vec::new(),
            attempts: HashMap::new(),
            deferrals: Vec::new(),
            resized: 0,
        };
        let mut file = SourceFile {
            record: FileRecord {
                planned: planned(10, Some(1)),
                state: strata_catalog::FileState::Pending,
                hash: None,
                error: None,
            },
            etag: None,
            settled: true,
        };
        for attempt in 1..COPY_ATTEMPTS {
            let now = entry(10 + u64::from(attempt), 2, None);
            waiting.changed(&file, &now).unwrap();
            file = waiting.files.pop().unwrap().file;
            assert_eq!(
                file.record.planned.size, now.size,
                "planned again as it is now"
            );
            assert_eq!(file.record.planned.path, "a/b.dat");
            assert!(!file.settled);
        }
        let error = waiting.changed(&file, &entry(99, 3, None)).unwrap_err();
        assert!(error.starts_with("changed: "), "{error}");
        assert!(error.contains("/data/src/a/b.dat"), "{error}");
        assert_eq!(waiting.deferrals.len() as u32, COPY_ATTEMPTS - 1);
        assert!(waiting.deferrals.iter().all(|d| d.reason == CHANGED));
    }

    #[test]
    fn durations_are_shown_as_they_are_typed() {
        assert_eq!(human_duration(Duration::from_secs(600)), "10m");
        assert_eq!(human_duration(Duration::from_secs(2)), "2s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500ms");
    }
}
