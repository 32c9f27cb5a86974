//! Executing a migration plan.
//!
//! Work is a stream of chunk tasks in plan order, run at most `jobs` at a time: a large
//! file's chunks run side by side (chunk-parallel), small files are one chunk each and so
//! run side by side too (file-parallel). Memory stays bounded by `jobs` chunk buffers
//! whatever the dataset size, because tasks are produced lazily as slots free up.
//!
//! Each chunk is read from the source, hashed as it passes, written into the file's staged
//! copy at the destination, read back and hashed again (unless `verify` is off), and only
//! then recorded as verified. When a file's last chunk is verified its hash is merged from
//! the chunk values and the staged copy is published under its final name, unless its
//! source changed meanwhile ([`crate::settle`]: then it is copied again, in a later round
//! of the same run). The dataset manifest is written last, once every file is in place.
//! Small files between two local stores skip the chunk pipeline: they are staged in
//! batches, one blocking call per batch ([`crate::small`]), and checked the same way; a
//! large file's chunks there are each copied in one blocking call ([`crate::chunk`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::stream::{self, StreamExt};
use strata_catalog::{Catalog, FileRecord, FileState, FileUpdate, JobState, VerifiedChunk};
use strata_codec::hash::{to_hex, ChunkValue};
use strata_codec::ChunkLayout;
use strata_store::{Entry, Store, StoreError, Upload};
use tokio::sync::mpsc;

use crate::chunk::{transfer_chunk, ChunkError, WRITE_ATTEMPTS};
use crate::job_manifest::write_job_manifest;
use crate::plan::{begin_copying, layout, open_job, recheck_finished, Plan};
use crate::progress::{FileFailure, MigrationReport, Progress};
use crate::publisher::{done_update, Publisher, Publishing};
use crate::recorder::{Record, Recorder};
use crate::settle::{
    look_again, modified_within, vanished_message, Now, SettleOptions, SourceFile, Waiting,
};
use crate::small::{copy_small_batch, fits_batch, SMALL_BATCH};
use crate::source::DatasetSource;
use crate::verify::hash_stored_file;
use crate::write_check::WriteCheck;
use crate::MoverError;

/// How a migration runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MigrateOptions {
    /// Chunk size in bytes (a power of two, at least 1 KiB).
    pub chunk_size: u64,
    /// Chunk tasks in flight at once.
    pub jobs: usize,
    /// Plan and report, move nothing.
    pub dry_run: bool,
    /// Replace destination files that differ from the source.
    pub overwrite: bool,
    /// What is read back from each staged chunk, and checked against its hash, before
    /// publishing ([`WriteCheck`]).
    pub verify: WriteCheck,
    /// How long a source must stay unchanged before it is copied.
    pub settle: SettleOptions,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            chunk_size: 4 << 20,
            jobs: 8,
            dry_run: false,
            overwrite: false,
            verify: WriteCheck::default(),
            settle: SettleOptions::default(),
        }
    }
}

/// Plan (or reload) the job for `source` → `destination`, then run it to the end.
///
/// Per-file failures are in the report; an `Err` means the job could not run or was stopped
/// by an error that affects every file (its progress is saved for a re-run).
pub async fn migrate(
    catalog: Arc<dyn Catalog>,
    source: &DatasetSource,
    destination: &Store,
    options: &MigrateOptions,
    progress: Arc<Progress>,
) -> Result<MigrationReport, MoverError> {
    let mut options = options.clone();
    if let Some(chunk_size) = source.fixed_chunk_size() {
        // Reads of a packed source are cheapest chunk by chunk.
        options.chunk_size = chunk_size;
    }
    let options = &options;
    if options.jobs == 0 {
        return Err(MoverError::InvalidOptions(
            "--jobs must be at least 1".into(),
        ));
    }
    let started = Instant::now();
    let (mut plan, mut report) =
        open_job(&*catalog, source, destination, options, &progress).await?;
    if destination.local_root().is_some() {
        report.verify = options.verify;
    }
    if options.dry_run {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    begin_copying(&*catalog, destination, plan.job).await?;

    let mut existing = list_existing(destination).await?;
    report.recopied = recheck_finished(&*catalog, &mut plan, &mut existing).await?;
    for file in &report.recopied {
        progress.message(format!(
            "warning: {}: {}; copying it again",
            file.path, file.reason
        ));
    }
    let copied = copy_files(
        catalog.clone(),
        &plan,
        source,
        destination,
        options,
        &progress,
        existing,
    )
    .await?;
    if let Some(error) = copied.tally(&mut report, &progress) {
        let message = error.to_string();
        catalog
            .set_job_state(plan.job, JobState::Failed, Some(&message), None)
            .await?;
        return Err(MoverError::Stopped {
            job: plan.job,
            source: error,
        });
    }
    if report.failed.is_empty() && report.unreadable_entries.is_empty() {
        let root_hash =
            write_job_manifest(&*catalog, destination, plan.job, plan.chunk_size).await?;
        catalog
            .set_job_state(plan.job, JobState::Done, None, Some(&root_hash))
            .await?;
        report.root_hash = Some(root_hash);
    } else {
        let message = format!(
            "{} file(s) failed, {} unreadable",
            report.failed.len(),
            report.unreadable_entries.len()
        );
        catalog
            .set_job_state(plan.job, JobState::Failed, Some(&message), None)
            .await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What copying a set of planned files left: every file's outcome, the files that waited
/// for their source to settle, and the error that stopped the copy, if one did.
pub(crate) struct CopiedFiles {
    outcomes: Vec<Outcome>,
    waiting: Waiting,
    chunks_resent: u64,
    fatal: Option<StoreError>,
}

impl CopiedFiles {
    /// Adds these outcomes to `report`; returns the error that stopped the copy, if any.
    pub(crate) fn tally(
        self,
        report: &mut MigrationReport,
        progress: &Progress,
    ) -> Option<StoreError> {
        report.bytes = self.waiting.resize(report.bytes);
        report.deferred = self.waiting.deferrals;
        for outcome in self.outcomes {
            match outcome {
                Outcome::Copied => report.files_copied += 1,
                Outcome::Skipped => report.files_skipped += 1,
                Outcome::AlreadyDone => report.files_resumed += 1,
                Outcome::Failed(failure) => report.failed.push(failure),
                Outcome::NotAttempted
                | Outcome::RangeVerified
                | Outcome::Queued
                | Outcome::Deferred(_)
                | Outcome::Changed(..) => {}
            }
        }
        report.bytes_sent = Progress::get(&progress.bytes_sent);
        report.chunks_resent = self.chunks_resent;
        report.bytes_resent = Progress::get(&progress.bytes_resent);
        self.fatal
    }
}

/// Copies the files of `plan` (all of a job's, or the share a distributed worker took),
/// through the chunk path and the group commit, recording each verified chunk and finished
/// file in the catalog (flushed before this returns). `existing`: the destination's files
/// and sizes, as far as they concern these files.
pub(crate) async fn copy_files(
    catalog: Arc<dyn Catalog>,
    plan: &Plan,
    source: &DatasetSource,
    destination: &Store,
    options: &MigrateOptions,
    progress: &Arc<Progress>,
    existing: HashMap<String, u64>,
) -> Result<CopiedFiles, MoverError> {
    let recorder = Recorder::start(catalog, plan.job);
    let local_to_local = source
        .plain()
        .is_some_and(|from| destination.stages_small_files_from(from));
    let run = Run {
        chunk_range: plan.chunk_range.clone(),
        existing: Arc::new(existing),
        local_to_local,
        publisher: None,
        source: source.clone(),
        destination: destination.clone(),
        options: options.clone(),
        progress: progress.clone(),
        records: recorder.sender(),
        stop: Arc::new(AtomicBool::new(false)),
        fatal: Arc::new(Mutex::new(None)),
        chunks_resent: Arc::new(AtomicU64::new(0)),
    };
    let publisher = Publisher::start(run.clone());
    let mut run = run;
    run.publisher = Some(publisher.sender());
    let (mut outcomes, waiting) = execute_settled(&run, plan).await;
    // Every sender must be gone before the publisher can finish.
    run.publisher = None;
    outcomes.extend(publisher.finish().await);
    let Run {
        records,
        fatal,
        chunks_resent,
        ..
    } = run;
    drop(records);
    recorder.finish().await?;
    let fatal = fatal.lock().ok().and_then(|mut f| f.take());
    Ok(CopiedFiles {
        outcomes,
        waiting,
        chunks_resent: chunks_resent.load(Ordering::Relaxed),
        fatal,
    })
}

/// Shared state of one run.
#[derive(Clone)]
pub(crate) struct Run {
    /// Where finished small files go for group commit (`None` inside the publisher).
    pub(crate) publisher: Option<mpsc::Sender<Publishing>>,
    /// Sizes of the files already at the destination, listed once at the start (one
    /// listing instead of a stat, or an S3 HEAD, per file).
    existing: Arc<HashMap<String, u64>>,
    /// Both stores are bare local: small files are staged in batches ([`crate::small`]),
    /// a large file's chunks copied in one blocking call each ([`crate::chunk`]).
    pub(crate) local_to_local: bool,
    /// A range task's chunks of its one file ([`Plan::chunk_range`]): only these are
    /// copied, and the file is left staged for its finisher.
    pub(crate) chunk_range: Option<std::ops::Range<u64>>,
    pub(crate) source: DatasetSource,
    pub(crate) destination: Store,
    pub(crate) options: MigrateOptions,
    pub(crate) progress: Arc<Progress>,
    pub(crate) records: mpsc::Sender<Record>,
    stop: Arc<AtomicBool>,
    fatal: Arc<Mutex<Option<StoreError>>>,
    pub(crate) chunks_resent: Arc<AtomicU64>,
}

/// What happened to one file.
pub(crate) enum Outcome {
    /// Handed to the publisher, which reports the file's outcome.
    Queued,
    Copied,
    Skipped,
    AlreadyDone,
    Failed(FileFailure),
    NotAttempted,
    /// Modified less than the settle time ago: copy it later in the run.
    Deferred(SourceFile),
    /// Its source changed during the copy (now this): nothing was published.
    Changed(SourceFile, Entry),
    /// A range task's chunks of the file are verified, durable and recorded; the file's
    /// finisher publishes it.
    RangeVerified,
}

/// A file being copied: its staged upload and the values of its chunks so far.
pub(crate) struct FileCopy {
    pub(crate) record: FileRecord,
    /// The listed ETag of the version being copied (object stores).
    etag: Option<String>,
    pub(crate) layout: ChunkLayout,
    pub(crate) upload: Mutex<Option<Arc<Upload>>>,
    pub(crate) values: Mutex<Vec<Option<ChunkValue>>>,
    remaining: AtomicU64,
    pub(crate) error: Mutex<Option<String>>,
}

/// One unit of work in the stream.
enum Work {
    /// Copy (or, when `known` is set, re-check) one chunk.
    Chunk {
        file: Arc<FileCopy>,
        index: u64,
        known: Option<ChunkValue>,
    },
    /// The destination already has a file of the same size: compare before touching it.
    Compare(SourceFile),
    /// A small file to stage with its neighbours ([`crate::small`]).
    Small(SourceFile),
    /// Small files staged together.
    SmallBatch(Vec<SourceFile>),
    /// Nothing to do for this file.
    Done(Outcome),
}

/// Gathers the small files among `works` into one batch (the other work as it was).
fn batch_small(works: Vec<Work>) -> Vec<Work> {
    let mut batch = Vec::new();
    let mut out: Vec<Work> = works
        .into_iter()
        .filter_map(|work| match work {
            Work::Small(file) => {
                batch.push(file);
                None
            }
            other => Some(other),
        })
        .collect();
    if !batch.is_empty() {
        out.push(Work::SmallBatch(batch));
    }
    out
}

/// Run the plan, then, round after round, the files that waited for their source to stop
/// changing; returns every file's outcome and the waits.
async fn execute_settled(run: &Run, plan: &Plan) -> (Vec<Outcome>, Waiting) {
    let files = SourceFile::all_of(plan);
    let progress = &run.progress;
    let mut waiting = Waiting::new(run.options.settle, &run.source);
    let mut outcomes = Vec::new();
    let mut round = execute(run, files, Arc::new(plan.verified.clone()), plan.chunk_size).await;
    loop {
        for outcome in round {
            match outcome {
                Outcome::Deferred(file) => {
                    Progress::sub(&progress.bytes_total, file.record.planned.size);
                    waiting.defer(file);
                }
                Outcome::Changed(file, now) => {
                    Progress::sub(&progress.bytes_total, file.record.planned.size);
                    if let Err(message) = waiting.changed(&file, &now) {
                        outcomes.push(record_failure(run, &file.record, message));
                    }
                }
                other => outcomes.push(other),
            }
        }
        if waiting.is_empty() || run.stop.load(Ordering::Relaxed) {
            // A stopped run leaves waiting files pending: the re-run plans them afresh.
            outcomes.extend((0..waiting.len()).map(|_| Outcome::NotAttempted));
            break;
        }
        let settled = waiting
            .settle(&run.source, run.options.jobs, progress)
            .await;
        for (record, message) in settled.failed {
            Progress::add(&progress.bytes_total, record.planned.size);
            outcomes.push(record_failure(run, &record, message));
        }
        if let Some((record, error)) = settled.stopped {
            outcomes.push(store_outcome(run, &record, error));
        }
        for file in &settled.ready {
            Progress::add(&progress.bytes_total, file.record.planned.size);
            let _ = run
                .records
                .send(Record::Replan(file.record.planned.clone()))
                .await;
        }
        round = execute(run, settled.ready, Arc::default(), plan.chunk_size).await;
    }
    (outcomes, waiting)
}

async fn execute(
    run: &Run,
    files: Vec<SourceFile>,
    verified: Arc<HashMap<u32, HashMap<u64, ChunkValue>>>,
    chunk_size: u64,
) -> Vec<Outcome> {
    let producer = {
        let run = run.clone();
        stream::iter(files)
            .then(move |file| {
                let run = run.clone();
                let verified = verified.clone();
                async move { prepare_file(&run, file, chunk_size, &verified).await }
            })
            .flat_map(stream::iter)
            .ready_chunks(SMALL_BATCH)
            .flat_map(|works| stream::iter(batch_small(works)))
    };
    producer
        .map(|work| {
            let run = run.clone();
            async move {
                match work {
                    Work::Chunk { file, index, known } => {
                        Vec::from_iter(copy_chunk(&run, file, index, known).await)
                    }
                    Work::Compare(file) => {
                        Vec::from_iter(compare_or_replace(&run, file, chunk_size).await)
                    }
                    Work::Small(file) => Vec::from_iter(copy_alone(&run, file, chunk_size).await),
                    Work::SmallBatch(files) => copy_small_batch(&run, files, chunk_size).await,
                    Work::Done(outcome) => vec![outcome],
                }
            }
        })
        .buffer_unordered(run.options.jobs)
        .flat_map(stream::iter)
        .collect()
        .await
}

/// Decide what a file needs and turn it into work items.
async fn prepare_file(
    run: &Run,
    file: SourceFile,
    chunk_size: u64,
    verified: &HashMap<u32, HashMap<u64, ChunkValue>>,
) -> Vec<Work> {
    let record = &file.record;
    if matches!(record.state, FileState::Done | FileState::Skipped) {
        Progress::add(&run.progress.files_done, 1);
        Progress::add(&run.progress.bytes_done, record.planned.size);
        return vec![Work::Done(Outcome::AlreadyDone)];
    }
    if run.stop.load(Ordering::Relaxed) {
        return vec![Work::Done(Outcome::NotAttempted)];
    }
    let settle = run.options.settle.settle;
    if !file.settled && modified_within(&record.planned, settle, SystemTime::now()) {
        return vec![Work::Done(Outcome::Deferred(file))];
    }
    let known = verified.get(&record.planned.index);
    let path = &record.planned.path;
    // A file already under its final name (another copy, or ours published just before a
    // crash) is compared, never blindly replaced.
    // A range task replacing a file (`--overwrite`) copies its range: the file's finisher
    // renames the staged copy over the old one (comparing would copy the file whole).
    let replace_by_range = run.chunk_range.is_some() && run.options.overwrite;
    match run.existing.get(path) {
        Some(&size) if size == record.planned.size && !replace_by_range => {
            return vec![Work::Compare(file)]
        }
        Some(_) if !run.options.overwrite => {
            return vec![fail(run, record, exists_message(&run.destination, path))];
        }
        _ => {}
    }
    if run.local_to_local && known.is_none() && fits_batch(record, chunk_size) {
        return vec![Work::Small(file)];
    }
    begin_file(run, file, chunk_size, known).await
}

/// Copies one file alone on the pipeline, its chunks one after another in this task (a
/// small file its batch could not take); its outcome.
pub(crate) async fn copy_alone(run: &Run, file: SourceFile, chunk_size: u64) -> Option<Outcome> {
    if run.is_stopped() {
        return Some(Outcome::NotAttempted);
    }
    let mut outcome = None;
    for work in begin_file(run, file, chunk_size, None).await {
        outcome = match work {
            Work::Chunk { file, index, known } => copy_chunk(run, file, index, known).await,
            Work::Done(done) => Some(done),
            _ => None,
        };
    }
    outcome
}

/// Starts the upload of `file` and turns it into chunk work (`known`: the chunks a crashed
/// run verified, re-checked if their staged bytes survived).
async fn begin_file(
    run: &Run,
    file: SourceFile,
    chunk_size: u64,
    known: Option<&HashMap<u64, ChunkValue>>,
) -> Vec<Work> {
    let record = &file.record;
    let layout = layout(chunk_size, record.planned.size);
    let path = record.planned.path.clone();
    // A range task shares the staged copy with the other tasks of its file: it never
    // starts it over ([`Store::begin_upload`] with `resume` creates it exclusively).
    let resume = known.is_some() || run.chunk_range.is_some();
    let upload = match run
        .destination
        .begin_upload(&path, record.planned.size, resume)
        .await
    {
        Ok(upload) => upload,
        Err(error) => return vec![store_failure(run, record, error)],
    };
    // Recorded chunks count only if their staged bytes survived; they are re-checked below.
    let trust_known = upload.resumed() && upload.supports_read_back();
    let count = layout.chunk_count();
    let chunks = match &run.chunk_range {
        Some(range) => range.start.min(count)..range.end.min(count),
        None => 0..count,
    };
    let file = Arc::new(FileCopy {
        record: file.record,
        etag: file.etag,
        layout,
        upload: Mutex::new(Some(Arc::new(upload))),
        values: Mutex::new(vec![None; count as usize]),
        remaining: AtomicU64::new(chunks.end - chunks.start),
        error: Mutex::new(None),
    });
    chunks
        .map(|index| Work::Chunk {
            file: file.clone(),
            index,
            known: if trust_known {
                known.and_then(|k| k.get(&index).copied())
            } else {
                None
            },
        })
        .collect()
}

fn exists_message(destination: &Store, path: &str) -> String {
    format!(
        "destination {}/{path} already exists with different content; pass --overwrite to replace it",
        destination.display().trim_end_matches('/')
    )
}

fn fail(run: &Run, record: &FileRecord, error: String) -> Work {
    Work::Done(record_failure(run, record, error))
}

pub(crate) fn record_failure(run: &Run, record: &FileRecord, error: String) -> Outcome {
    Progress::add(&run.progress.files_failed, 1);
    run.progress
        .message(format!("error: {}: {error}", record.planned.path));
    let update = FileUpdate {
        index: record.planned.index,
        state: FileState::Failed,
        hash: None,
        error: Some(error.clone()),
    };
    let _ = run.records.try_send(Record::File(update));
    Outcome::Failed(FileFailure {
        path: record.planned.path.clone(),
        error,
    })
}

/// A store error for one file: fatal ones stop the whole run (progress kept), others fail
/// only this file.
fn store_failure(run: &Run, record: &FileRecord, error: StoreError) -> Work {
    Work::Done(store_outcome(run, record, error))
}

fn store_outcome(run: &Run, record: &FileRecord, error: StoreError) -> Outcome {
    if is_fatal(&error) {
        if !run.stop.swap(true, Ordering::SeqCst) {
            if let Ok(mut fatal) = run.fatal.lock() {
                *fatal = Some(error);
            }
        }
        return Outcome::NotAttempted;
    }
    record_failure(run, record, error.to_string())
}

/// Errors that will hit every file alike: stop instead of failing file after file.
pub(crate) fn is_fatal(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::NoSpace { .. } | StoreError::Unreachable { .. } | StoreError::Auth { .. }
    )
}

/// Copy or re-check one chunk; returns the file's outcome when this was its last chunk.
async fn copy_chunk(
    run: &Run,
    file: Arc<FileCopy>,
    index: u64,
    known: Option<ChunkValue>,
) -> Option<Outcome> {
    let result = if run.stop.load(Ordering::Relaxed) {
        Err(ChunkError::Stopped)
    } else if file.error.lock().map(|e| e.is_some()).unwrap_or(true) {
        Err(ChunkError::FileFailed)
    } else {
        transfer_chunk(run, &file, index, known).await
    };
    match result {
        Ok(value) => {
            if let Ok(mut values) = file.values.lock() {
                values[index as usize] = Some(value);
            }
        }
        Err(ChunkError::Store(error)) if is_fatal(&error) => {
            store_outcome(run, &file.record, error);
        }
        Err(ChunkError::Store(error)) => set_file_error(&file, error.to_string()),
        Err(ChunkError::Mismatch) => set_file_error(
            &file,
            format!(
                "chunk {index} did not verify after {WRITE_ATTEMPTS} writes; the destination may be failing, check it and re-run"
            ),
        ),
        Err(ChunkError::Stopped | ChunkError::FileFailed) => {}
    }
    if file.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
        return None;
    }
    if run.chunk_range.is_some() {
        return Some(crate::distributed::file_finish::finish_range(run, &file).await);
    }
    Some(finish_file(run, &file).await)
}

fn set_file_error(file: &FileCopy, error: String) {
    if let Ok(mut slot) = file.error.lock() {
        slot.get_or_insert(error);
    }
}

/// After the last chunk of a file: merge its hash and publish, or clean up.
async fn finish_file(run: &Run, file: &FileCopy) -> Outcome {
    let upload = file.upload.lock().ok().and_then(|mut u| u.take());
    let upload = upload.and_then(|u| Arc::try_unwrap(u).ok());
    if run.stop.load(Ordering::Relaxed) {
        // Keep the staged copy: a re-run resumes from it.
        return Outcome::NotAttempted;
    }
    // Before anything is published: the bytes read must all be of the version the copy
    // started from. A short read or a changed chunk is often that same change, so this
    // comes before the file's own error.
    let source = SourceFile {
        record: file.record.clone(),
        etag: file.etag.clone(),
        settled: true,
    };
    let now = look_again(&run.source, &source).await;
    if !matches!(now, Ok(Now::Unchanged)) {
        if let Some(upload) = upload {
            let _ = upload.abort().await;
        }
        Progress::sub(&run.progress.bytes_done, counted_bytes(file));
        return match now {
            Ok(Now::Changed(entry)) => Outcome::Changed(source, entry),
            Ok(_) => record_failure(
                run,
                &file.record,
                vanished_message(&run.source, &file.record.planned.path),
            ),
            Err(error) => store_outcome(run, &file.record, error),
        };
    }
    let error = file.error.lock().ok().and_then(|e| e.clone());
    if let Some(error) = error {
        if let Some(upload) = upload {
            let _ = upload.abort().await;
        }
        return record_failure(run, &file.record, error);
    }
    let values: Option<Vec<ChunkValue>> = file
        .values
        .lock()
        .ok()
        .and_then(|v| v.iter().copied().collect());
    let hash = match values.map(|v| file.layout.merge(&v)) {
        Some(Ok(hash)) => hash,
        _ => {
            return record_failure(
                run,
                &file.record,
                "internal error: missing chunk values; re-run".into(),
            )
        }
    };
    let Some(upload) = upload else {
        return record_failure(
            run,
            &file.record,
            "internal error: upload lost; re-run".into(),
        );
    };
    let path = &file.record.planned.path;
    if let Some(recorded) = run.source.recorded_hash(path) {
        let got = to_hex(&hash);
        if got != recorded {
            let _ = upload.abort().await;
            return record_failure(
                run,
                &file.record,
                format!(
                    "the packed source's chunks for {path} hash to {got} but its manifest \
                     records {recorded}: the source's index points at the wrong data; run \
                     `strata verify` and `strata repair` on the source"
                ),
            );
        }
    }
    let mtime = planned_mtime(&file.record);
    if let (true, Some(publisher)) = (file.layout.is_single_chunk(), &run.publisher) {
        let publishing = Publishing {
            upload,
            record: file.record.clone(),
            hash,
            mtime,
        };
        if publisher.send(publishing).await.is_ok() {
            return Outcome::Queued;
        }
        return record_failure(
            run,
            &file.record,
            "internal error: publisher stopped; re-run".into(),
        );
    }
    if let Err(error) = upload.publish(mtime, file.record.planned.mode).await {
        return store_outcome(run, &file.record, error);
    }
    record_done(run, &file.record, hash).await
}

/// The modification time the plan recorded for a file.
pub(crate) fn planned_mtime(record: &FileRecord) -> Option<SystemTime> {
    record
        .planned
        .mtime_ns
        .and_then(|ns| u64::try_from(ns).ok())
        .map(|ns| UNIX_EPOCH + Duration::from_nanos(ns))
}

/// Bytes of `file` counted done so far (its chunks with a value).
fn counted_bytes(file: &FileCopy) -> u64 {
    let values = file.values.lock().map(|v| v.clone()).unwrap_or_default();
    (0..values.len() as u64)
        .filter(|&i| values[i as usize].is_some())
        .map(|i| file.layout.chunk_range(i).1)
        .sum()
}

/// Record a published file as done.
pub(crate) async fn record_done(run: &Run, record: &FileRecord, hash: ChunkValue) -> Outcome {
    let _ = run
        .records
        .send(Record::File(done_update(record, hash)))
        .await;
    Progress::add(&run.progress.files_done, 1);
    Outcome::Copied
}

impl Run {
    /// Whether the run was stopped (an error that hits every file).
    pub(crate) fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// See [`store_outcome`].
    pub(crate) fn store_outcome(&self, record: &FileRecord, error: StoreError) -> Outcome {
        store_outcome(self, record, error)
    }
}

/// The destination holds a file of the same size: leave it if identical, replace it with
/// `--overwrite`, otherwise refuse.
async fn compare_or_replace(run: &Run, file: SourceFile, chunk_size: u64) -> Option<Outcome> {
    let record = file.record.clone();
    let layout = layout(chunk_size, record.planned.size);
    let path = record.planned.path.clone();
    let source = match hash_stored_file(&run.source, &path, layout).await {
        Ok(hashed) => hashed,
        Err(error) => return Some(store_outcome(run, &record, error)),
    };
    let existing = match hash_stored_file(&run.destination, &path, layout).await {
        Ok(hashed) => hashed,
        Err(error) => return Some(store_outcome(run, &record, error)),
    };
    if source.0 == existing.0 {
        // Identical to what was read; the source must still be that version for the
        // destination's copy to stand for it.
        match look_again(&run.source, &file).await {
            Ok(Now::Unchanged) => {}
            Ok(Now::Changed(entry)) => return Some(Outcome::Changed(file, entry)),
            Ok(Now::Vanished) => {
                let message = vanished_message(&run.source, &path);
                return Some(record_failure(run, &record, message));
            }
            Err(error) => return Some(store_outcome(run, &record, error)),
        }
        if !layout.is_single_chunk() {
            for (index, value) in source.1.iter().enumerate() {
                let chunk = VerifiedChunk {
                    file_index: record.planned.index,
                    chunk_index: index as u64,
                    chaining_value: *value,
                };
                let _ = run.records.send(Record::Chunk(chunk)).await;
            }
        }
        let update = FileUpdate {
            index: record.planned.index,
            state: FileState::Skipped,
            hash: Some(source.0),
            error: None,
        };
        let _ = run.records.send(Record::File(update)).await;
        Progress::add(&run.progress.files_done, 1);
        Progress::add(&run.progress.bytes_done, record.planned.size);
        return Some(Outcome::Skipped);
    }
    if !run.options.overwrite {
        return Some(record_failure(
            run,
            &record,
            exists_message(&run.destination, &path),
        ));
    }
    // Replace: copy this file's chunks one after another inside this task.
    let upload = match run
        .destination
        .begin_upload(&path, record.planned.size, false)
        .await
    {
        Ok(upload) => upload,
        Err(error) => return Some(store_outcome(run, &record, error)),
    };
    let count = layout.chunk_count();
    let file = Arc::new(FileCopy {
        record,
        etag: file.etag,
        layout,
        upload: Mutex::new(Some(Arc::new(upload))),
        values: Mutex::new(vec![None; count as usize]),
        remaining: AtomicU64::new(count),
        error: Mutex::new(None),
    });
    let mut outcome = None;
    for index in 0..count {
        outcome = copy_chunk(run, file.clone(), index, None).await;
    }
    outcome
}

/// Paths and sizes already at the destination (empty when it does not exist yet).
pub(crate) async fn list_existing(destination: &Store) -> Result<HashMap<String, u64>, MoverError> {
    let mut ignore = |_warning: strata_store::ListWarning| {};
    match destination.list(&mut ignore).await {
        Ok(entries) => Ok(entries.into_iter().map(|e| (e.path, e.size)).collect()),
        Err(StoreError::NotFound { .. }) => Ok(HashMap::new()),
        Err(error) => Err(error.into()),
    }
}
