//! A large file split into range tasks (POSIX destinations: the local store, shared
//! mounts): how a task ends its range, and which task finishes the file.
//!
//! Every range task writes its chunks into the one staged copy of the file at their
//! offsets (the staging file is created exclusively by the first task and never emptied,
//! see `Store::begin_upload`), reads them back as `--verify` says, makes its range durable
//! and only then records its chunk values ([`finish_range`]): another process may publish
//! the file from the records alone. Then the task asks the catalog whether it finishes
//! the file ([`strata_catalog::Catalog::claim_file_finish`]); the first to find every
//! chunk recorded merges the file's hash from the recorded values, publishes the staged
//! copy and records the file done ([`finish_split_file`]). A redelivery of that task
//! (its worker died) takes the claim over.

use strata_catalog::{
    Catalog, FileFinishClaim, FileRecord, FileState, FileUpdate, JobId, VerifiedChunk,
};
use strata_codec::hash::{to_hex, ChunkValue};
use strata_store::Store;

use crate::migrate::{planned_mtime, record_failure, FileCopy, Outcome, Run};
use crate::plan::layout;
use crate::publisher::done_update;
use crate::recorder::Record;
use crate::settle::{look_again, vanished_message, Now, SourceFile};
use crate::{DatasetSource, MoverError};

/// After the last chunk of a range task's share of a file: make the range durable, then
/// record its chunk values. The staged copy is left in place (never aborted: the file's
/// other ranges are in it) for the file's finisher.
pub(crate) async fn finish_range(run: &Run, file: &FileCopy) -> Outcome {
    let upload = file.upload.lock().ok().and_then(|mut u| u.take());
    if run.is_stopped() {
        return Outcome::NotAttempted;
    }
    if let Some(error) = file.error.lock().ok().and_then(|e| e.clone()) {
        return record_failure(run, &file.record, error);
    }
    let Some(upload) = upload else {
        return record_failure(
            run,
            &file.record,
            "internal error: upload lost; re-run".into(),
        );
    };
    if let Err(error) = upload.sync().await {
        return run.store_outcome(&file.record, error);
    }
    let values = file.values.lock().map(|v| v.clone()).unwrap_or_default();
    for (chunk_index, value) in values.into_iter().enumerate() {
        let Some(chaining_value) = value else {
            continue;
        };
        let chunk = VerifiedChunk {
            file_index: file.record.planned.index,
            chunk_index: chunk_index as u64,
            chaining_value,
        };
        if run.records.send(Record::Chunk(chunk)).await.is_err() {
            return Outcome::NotAttempted;
        }
    }
    Outcome::RangeVerified
}

/// What the end of a range task meant for its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileEnd {
    /// Chunks of the file are still to be verified by other range tasks.
    NotYet {
        /// Chunks not yet recorded as verified.
        missing: u64,
    },
    /// Another task finishes (or finished) the file, or it is no longer pending.
    Elsewhere,
    /// This task published the file and recorded it done.
    Published,
    /// This task found the file could not be published and recorded it failed.
    Failed(String),
}

/// Who asks to finish a file: the task's run, its key and its worker.
pub(crate) struct Claimant<'a> {
    /// The run that published the task.
    pub(crate) run: &'a str,
    /// The task's key ([`super::ChunkTask::key`]).
    pub(crate) task: &'a str,
    /// The worker running it.
    pub(crate) worker: &'a str,
}

/// After a range task of `record`'s file verified its range: claims the file's finish
/// and, when it is this task's, merges the file's hash from the recorded chunk values,
/// checks the source is still the version copied, publishes the staged copy (rename,
/// directory fsync) and records the file done. A failure that may pass (store, catalog)
/// is returned: the task is redelivered and its redelivery takes the claim over.
pub(crate) async fn finish_split_file(
    catalog: &dyn Catalog,
    stores: (&DatasetSource, &Store),
    job: JobId,
    chunk_size: u64,
    file: SourceFile,
    claimant: &Claimant<'_>,
) -> Result<FileEnd, MoverError> {
    let (source, destination) = stores;
    let record = &file.record;
    let index = record.planned.index;
    let claim = catalog
        .claim_file_finish(job, index, claimant.run, claimant.task, claimant.worker)
        .await?;
    match claim {
        FileFinishClaim::NotYet { missing } => return Ok(FileEnd::NotYet { missing }),
        FileFinishClaim::Taken | FileFinishClaim::AlreadyFinished => return Ok(FileEnd::Elsewhere),
        FileFinishClaim::Yours => {}
    }
    let path = &record.planned.path;
    match look_again(source, &file).await? {
        Now::Unchanged => {}
        Now::Changed(_) => {
            let message = format!(
                "source file {}/{path} changed while its chunk ranges were copied; it was not \
                 published: re-run `strata migrate` to copy it again",
                source.display().trim_end_matches('/')
            );
            return fail_file(catalog, job, record, message).await;
        }
        Now::Vanished => {
            return fail_file(catalog, job, record, vanished_message(source, path)).await
        }
    }
    let hash = match merged_hash(catalog, job, chunk_size, record).await? {
        Ok(hash) => hash,
        Err(message) => return fail_file(catalog, job, record, message).await,
    };
    if let Some(recorded) = source.recorded_hash(path) {
        let got = to_hex(&hash);
        if got != recorded {
            let message = format!(
                "the packed source's chunks for {path} hash to {got} but its manifest records \
                 {recorded}: the source's index points at the wrong data; run `strata verify` \
                 and `strata repair` on the source"
            );
            return fail_file(catalog, job, record, message).await;
        }
    }
    let upload = destination
        .begin_upload(path, record.planned.size, true)
        .await?;
    if !upload.resumed() {
        // The staged copy the ranges wrote is gone (removed behind our back): what the
        // catalog records is not there to publish.
        let _ = upload.abort().await;
        catalog.forget_chunks(job, index).await?;
        let message = format!(
            "the staged copy of {path} at {} vanished before it was published; re-run \
             `strata migrate` to copy the file again",
            destination.display()
        );
        return fail_file(catalog, job, record, message).await;
    }
    upload
        .publish(planned_mtime(record), record.planned.mode)
        .await?;
    catalog
        .update_files(job, &[done_update(record, hash)])
        .await?;
    Ok(FileEnd::Published)
}

/// The file's hash merged from its recorded chunk values (`Err`: why it cannot be).
async fn merged_hash(
    catalog: &dyn Catalog,
    job: JobId,
    chunk_size: u64,
    record: &FileRecord,
) -> Result<Result<ChunkValue, String>, MoverError> {
    let index = record.planned.index;
    let layout = layout(chunk_size, record.planned.size);
    let values: Vec<ChunkValue> = catalog
        .verified_chunks_of_files(job, index..index + 1)
        .await?
        .into_iter()
        .filter(|c| c.chunk_index < layout.chunk_count())
        .map(|c| c.chaining_value)
        .collect();
    Ok(layout.merge(&values).map_err(|error| {
        format!(
            "internal error: the recorded chunks of {} do not make its hash ({error}); re-run",
            record.planned.path
        )
    }))
}

/// Records the file failed with `message`; the job's finisher then marks the job failed.
async fn fail_file(
    catalog: &dyn Catalog,
    job: JobId,
    record: &FileRecord,
    message: String,
) -> Result<FileEnd, MoverError> {
    let update = FileUpdate {
        index: record.planned.index,
        state: FileState::Failed,
        hash: None,
        error: Some(message.clone()),
    };
    catalog.update_files(job, &[update]).await?;
    Ok(FileEnd::Failed(message))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;

    use strata_catalog::SqliteCatalog;

    use super::*;
    use crate::migrate::copy_files;
    use crate::plan::{begin_copying, open_job, Plan};
    use crate::testing::store;
    use crate::{MigrateOptions, Progress};

    /// One range task of the job's one file through the copy path, as a worker runs it;
    /// returns the bytes it sent.
    async fn run_range(
        catalog: &Arc<dyn Catalog>,
        plan: &Plan,
        stores: (&DatasetSource, &Store),
        chunks: std::ops::Range<u64>,
    ) -> u64 {
        let mut verified: HashMap<u32, HashMap<u64, ChunkValue>> = HashMap::new();
        for chunk in catalog.verified_chunks(plan.job).await.unwrap() {
            verified
                .entry(chunk.file_index)
                .or_default()
                .insert(chunk.chunk_index, chunk.chaining_value);
        }
        let share = Plan {
            job: plan.job,
            chunk_size: plan.chunk_size,
            files: catalog.load_files(plan.job).await.unwrap(),
            verified,
            skipped_entries: Vec::new(),
            unreadable_entries: Vec::new(),
            resumed: true,
            etags: HashMap::new(),
            chunk_range: Some(chunks),
        };
        let progress = Arc::new(Progress::default());
        let options = MigrateOptions {
            chunk_size: plan.chunk_size,
            jobs: 2,
            ..MigrateOptions::default()
        };
        let copied = copy_files(
            catalog.clone(),
            &share,
            stores.0,
            stores.1,
            &options,
            &progress,
            HashMap::new(),
        )
        .await
        .unwrap();
        let mut report = crate::MigrationReport::empty(&share, stores.0, stores.1, false);
        assert!(copied.tally(&mut report, &progress).is_none());
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        Progress::get(&progress.bytes_sent)
    }

    /// The one staging file under `dst`.
    fn staged(dst: &Path) -> std::path::PathBuf {
        let mut files: Vec<_> = std::fs::read_dir(dst.join(".strata/staging"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files.remove(0)
    }

    #[tokio::test]
    async fn ranges_copied_apart_are_published_once_and_a_redelivered_range_rechecks_its_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(src.join("big"), &data).unwrap();
        let source = DatasetSource::Plain(store(src.to_str().unwrap()).await);
        let destination = store(dst.to_str().unwrap()).await;
        let stores = (&source, &destination);
        let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open_in_memory().await.unwrap());
        let options = MigrateOptions {
            chunk_size: 1024,
            ..MigrateOptions::default()
        };
        let (plan, _) = open_job(
            &*catalog,
            &source,
            &destination,
            &options,
            &Progress::default(),
        )
        .await
        .unwrap();
        begin_copying(&*catalog, &destination, plan.job)
            .await
            .unwrap();
        let record = plan.files[0].clone();
        let finish = |task: &'static str| {
            let file = SourceFile {
                record: record.clone(),
                etag: None,
                settled: true,
            };
            let catalog = catalog.clone();
            async move {
                let claimant = Claimant {
                    run: "r",
                    task,
                    worker: "w",
                };
                finish_split_file(&*catalog, stores, plan.job, 1024, file, &claimant)
                    .await
                    .unwrap()
            }
        };

        assert_eq!(run_range(&catalog, &plan, stores, 0..4).await, 4096);
        assert_eq!(finish("t0").await, FileEnd::NotYet { missing: 4 });
        assert!(
            !dst.join("big").exists(),
            "not published before every range"
        );

        // Chunk 1's staged bytes go bad; the range comes back (its worker died before
        // the ack): its recorded chunks are re-checked, only chunk 1 is sent again.
        let staging = staged(&dst);
        let mut bytes = std::fs::read(&staging).unwrap();
        bytes[1024 + 5] ^= 0xff;
        std::fs::write(&staging, &bytes).unwrap();
        assert_eq!(run_range(&catalog, &plan, stores, 0..4).await, 1024);

        assert_eq!(run_range(&catalog, &plan, stores, 4..8).await, 4096);
        assert_eq!(finish("t1").await, FileEnd::Published);
        assert!(
            std::fs::read(dst.join("big")).unwrap() == data,
            "the published file is the source's bytes"
        );
        assert_eq!(finish("t0").await, FileEnd::Elsewhere, "finished once");
        let files = catalog.load_files(plan.job).await.unwrap();
        assert_eq!(files[0].state, FileState::Done);
        assert_eq!(files[0].hash, Some(*blake3::hash(&data).as_bytes()));
    }
}
