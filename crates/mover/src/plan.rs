//! Planning: list the source, check the pair is safe, and record the plan in the catalog.
//!
//! A job is keyed by its (source, destination) display URIs. Planning again for a known job
//! keeps its recorded progress when the source listing is unchanged (same paths, sizes and
//! modification times); otherwise the old plan is replaced and the job starts over, which
//! is safe because files already published at the destination are recognised as identical
//! and skipped.

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use serde::Serialize;
use strata_catalog::{
    Catalog, FileRecord, FileState, FileUpdate, JobId, JobSpec, JobState, PlannedFile,
    VerifiedChunk,
};
use strata_codec::hash::ChunkValue;
use strata_codec::ChunkLayout;
use strata_store::{Entry, ListWarning, ListWarningKind, Store};

use crate::source::DatasetSource;

use crate::progress::{FileFailure, Recopied};
use crate::MoverError;

/// What the plan amounts to, as `--dry-run` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    /// Files to move.
    pub files: u64,
    /// Bytes to move.
    pub bytes: u64,
    /// Chunk tasks.
    pub chunks: u64,
    /// Chunk size in bytes.
    pub chunk_size: u64,
}

/// A job's plan, loaded from the catalog, with what earlier runs already finished.
#[derive(Debug)]
pub struct Plan {
    /// Catalog job id.
    pub job: JobId,
    /// Chunk size of the plan.
    pub chunk_size: u64,
    /// Every file of the plan, in index order.
    pub files: Vec<FileRecord>,
    /// Chunk values already verified, by file index then chunk index.
    pub verified: HashMap<u32, HashMap<u64, ChunkValue>>,
    /// Entries skipped while listing (special files, loops): warnings.
    pub skipped_entries: Vec<FileFailure>,
    /// Entries that could not be read while listing: failures.
    pub unreadable_entries: Vec<FileFailure>,
    /// True when progress from an earlier run was kept.
    pub resumed: bool,
    /// ETags the listing gave, by file index (object stores): what each copy starts from.
    pub etags: HashMap<u32, String>,
    /// A distributed range task's share of its one file: only these chunks are copied,
    /// their values recorded once the range is durable, and the file is published by
    /// whichever task finishes it ([`crate::distributed::file_finish`]). `None`: whole
    /// files.
    pub chunk_range: Option<std::ops::Range<u64>>,
}

impl Plan {
    /// Totals for display.
    pub fn summary(&self) -> PlanSummary {
        let chunks = self
            .files
            .iter()
            .map(|f| layout(self.chunk_size, f.planned.size).chunk_count())
            .sum();
        PlanSummary {
            files: self.files.len() as u64,
            bytes: self.files.iter().map(|f| f.planned.size).sum(),
            chunks,
            chunk_size: self.chunk_size,
        }
    }
}

/// The chunk layout of a file (chunk sizes are validated before planning).
pub(crate) fn layout(chunk_size: u64, size: u64) -> ChunkLayout {
    ChunkLayout::new(chunk_size, size).unwrap_or_else(|_| {
        ChunkLayout::new(strata_codec::hash::MIN_CHUNK_SIZE, size)
            .expect("minimum chunk size is valid")
    })
}

/// List the source and make (or reload) the job's plan.
pub async fn make_plan(
    catalog: &dyn Catalog,
    source: &DatasetSource,
    destination: &Store,
    chunk_size: u64,
    options_json: &str,
) -> Result<Plan, MoverError> {
    ChunkLayout::new(chunk_size, 0).map_err(|e| MoverError::InvalidOptions(e.to_string()))?;
    refuse_overlap(source, destination)?;
    source.check_reachable().await?;

    let mut skipped_entries = Vec::new();
    let mut unreadable_entries = Vec::new();
    let mut on_warning = |warning: ListWarning| {
        let failure = FileFailure {
            path: warning.path.clone(),
            error: warning.message.clone(),
        };
        match warning.kind {
            ListWarningKind::Unreadable | ListWarningKind::InvalidName => {
                unreadable_entries.push(failure)
            }
            ListWarningKind::SymlinkLoop | ListWarningKind::SpecialFile => {
                skipped_entries.push(failure)
            }
        }
    };
    let entries = source.list(&mut on_warning).await?;
    if let DatasetSource::Plain(store) = source {
        crate::packed::read::refuse_packed_internals(store, &entries).await?;
    }
    let planned: Vec<PlannedFile> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| planned_file(i, e))
        .collect();

    let etags = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((i as u32, e.etag.clone()?)))
        .collect();
    let source_uri = source.display();
    let destination_uri = destination.display();
    let existing = catalog.find_job(&source_uri, &destination_uri).await?;
    let (job, resumed) = match existing {
        Some(job) => {
            let old = catalog.load_files(job.id).await?;
            let same_listing = job.chunk_size == chunk_size
                && old.len() == planned.len()
                && old.iter().zip(&planned).all(|(o, p)| &o.planned == p);
            if same_listing {
                (job.id, true)
            } else {
                catalog.replace_plan(job.id, &planned).await?;
                catalog
                    .set_job_state(job.id, JobState::Planned, None, None)
                    .await?;
                (job.id, false)
            }
        }
        None => {
            let spec = JobSpec {
                source: source_uri,
                destination: destination_uri,
                chunk_size,
                options_json: options_json.to_string(),
            };
            let id = catalog.create_job(&spec).await?;
            catalog.replace_plan(id, &planned).await?;
            (id, false)
        }
    };

    let files = catalog.load_files(job).await?;
    let mut verified: HashMap<u32, HashMap<u64, ChunkValue>> = HashMap::new();
    if resumed {
        for VerifiedChunk {
            file_index,
            chunk_index,
            chaining_value,
        } in catalog.verified_chunks(job).await?
        {
            verified
                .entry(file_index)
                .or_default()
                .insert(chunk_index, chaining_value);
        }
    }
    Ok(Plan {
        job,
        chunk_size,
        files,
        verified,
        skipped_entries,
        unreadable_entries,
        resumed,
        etags,
        chunk_range: None,
    })
}

/// Confirm that every file the plan records as finished (copied, or found identical) is
/// at the destination with its planned size, from `existing`: the one listing of the
/// destination a run makes (presence and size, no re-read). The catalog's word is not
/// enough: a file may have been deleted or truncated at the destination between runs.
/// Each one that is not goes back to pending, with its recorded hash and chunks forgotten
/// (in the catalog and in `plan`), and leaves `existing`, so that this run copies it again
/// over whatever is there. Returns them, with what was found.
pub(crate) async fn recheck_finished(
    catalog: &dyn Catalog,
    plan: &mut Plan,
    existing: &mut HashMap<String, u64>,
) -> Result<Vec<Recopied>, MoverError> {
    let mut recopied = Vec::new();
    let mut updates = Vec::new();
    for file in &mut plan.files {
        if !matches!(file.state, FileState::Done | FileState::Skipped) {
            continue;
        }
        let planned = &file.planned;
        let reason = match existing.get(&planned.path) {
            Some(&size) if size == planned.size => continue,
            Some(&size) => format!(
                "recorded as copied, but {size} bytes at the destination instead of {}",
                planned.size
            ),
            None => "recorded as copied, but missing at the destination".to_string(),
        };
        existing.remove(&planned.path);
        plan.verified.remove(&planned.index);
        catalog.forget_chunks(plan.job, planned.index).await?;
        file.state = FileState::Pending;
        file.hash = None;
        updates.push(FileUpdate {
            index: planned.index,
            state: FileState::Pending,
            hash: None,
            error: None,
        });
        recopied.push(Recopied {
            path: planned.path.clone(),
            reason,
        });
    }
    if !updates.is_empty() {
        catalog.update_files(plan.job, &updates).await?;
    }
    Ok(recopied)
}

pub(crate) fn planned_file(index: usize, entry: &Entry) -> PlannedFile {
    PlannedFile {
        index: index as u32,
        path: entry.path.clone(),
        size: entry.size,
        mtime_ns: entry.mtime.and_then(|t| {
            t.duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_nanos()).ok())
        }),
        mode: entry.mode,
    }
}

/// Refuse a source and destination that share bytes, either way round: the same location
/// (through a symlink, `..`, another spelling of the S3 endpoint), the destination inside
/// the source (the copy would copy itself, forever on a re-run) or the source inside the
/// destination (published files could replace source files).
fn refuse_overlap(source: &DatasetSource, destination: &Store) -> Result<(), MoverError> {
    match source.location().overlap(&destination.location()) {
        Some(overlap) => Err(MoverError::Overlapping {
            source_root: source.display(),
            destination: destination.display(),
            overlap,
        }),
        None => Ok(()),
    }
}

impl crate::progress::MigrationReport {
    /// A report for `plan` with nothing done yet.
    pub(crate) fn empty(
        plan: &Plan,
        source: &DatasetSource,
        destination: &Store,
        dry_run: bool,
    ) -> Self {
        let summary = plan.summary();
        Self {
            job: plan.job,
            source: source.display(),
            destination: destination.display(),
            dry_run,
            files: summary.files,
            bytes: summary.bytes,
            chunks: summary.chunks,
            files_copied: 0,
            files_skipped: 0,
            files_resumed: 0,
            recopied: Vec::new(),
            bytes_sent: 0,
            chunks_resent: 0,
            bytes_resent: 0,
            verify: crate::WriteCheck::Sent,
            seconds: 0.0,
            root_hash: None,
            failed: Vec::new(),
            skipped_entries: plan.skipped_entries.clone(),
            unreadable_entries: plan.unreadable_entries.clone(),
            deferred: Vec::new(),
        }
    }
}

/// The opening both layouts share: plan the job, count it for the progress display, and
/// start its report.
pub(crate) async fn open_job(
    catalog: &dyn Catalog,
    source: &DatasetSource,
    destination: &Store,
    options: &crate::MigrateOptions,
    progress: &crate::Progress,
) -> Result<(Plan, crate::MigrationReport), MoverError> {
    let options_json = serde_json::to_string(options).unwrap_or_default();
    let plan = make_plan(
        catalog,
        source,
        destination,
        options.chunk_size,
        &options_json,
    )
    .await?;
    let summary = plan.summary();
    crate::Progress::add(&progress.files_total, summary.files);
    crate::Progress::add(&progress.bytes_total, summary.bytes);
    let report = crate::MigrationReport::empty(&plan, source, destination, options.dry_run);
    Ok((plan, report))
}

/// Make sure the destination is there and reachable, then mark the job as copying.
pub(crate) async fn begin_copying(
    catalog: &dyn Catalog,
    destination: &Store,
    job: JobId,
) -> Result<(), MoverError> {
    destination.ensure_root().await?;
    destination.check_reachable().await?;
    // A run killed while writing a manifest (or a packed object) left its staged copy.
    match destination.remove_interrupted_writes().await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "staged copies of interrupted writes removed"),
        Err(err) => tracing::warn!(%err, "staged copies of interrupted writes are left"),
    }
    catalog
        .set_job_state(job, JobState::Copying, None, None)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use strata_store::Overlap;

    use super::refuse_overlap;
    use crate::testing::store;
    use crate::{DatasetSource, MoverError};

    #[tokio::test]
    async fn overlapping_pairs_are_refused_either_way_round() {
        let table = [
            ("memory://ov/data", "memory://ov/data", Some(Overlap::Same)),
            (
                "memory://ov/data/in",
                "memory://ov/data",
                Some(Overlap::Inside),
            ),
            (
                "memory://ov/data",
                "memory://ov/data/copy",
                Some(Overlap::Contains),
            ),
            ("memory://ov/data", "memory://ov/data-copy", None),
            ("memory://ov/data", "memory://other/data", None),
        ];
        for (src, dst, want) in table {
            let source = DatasetSource::Plain(store(src).await);
            let got = refuse_overlap(&source, &store(dst).await);
            match (got, want) {
                (Ok(()), None) => {}
                (Err(MoverError::Overlapping { overlap, .. }), Some(want)) => {
                    assert_eq!(overlap, want, "{src} → {dst}")
                }
                (got, want) => panic!("{src} → {dst}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_refusal_names_both_locations_and_what_to_do() {
        let source = DatasetSource::Plain(store("memory://msg/a/b").await);
        let error = refuse_overlap(&source, &store("memory://msg/a").await).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("memory://msg/a/b is inside destination memory://msg/a")
                && text.contains("choose a destination"),
            "{text}"
        );
    }
}
