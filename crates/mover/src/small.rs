//! Small files, local to local, in batches.
//!
//! A file of one chunk of at most [`SMALL_FILE_MAX`] bytes, from a plain local source to a
//! local destination with no layer in between (no fault injection, bandwidth limit or
//! metrics), is not sent through the chunk pipeline: up to [`SMALL_BATCH`] such files that
//! the plan yields one after another are staged together in one blocking call
//! ([`Store::stage_small_files`](strata_store::Store::stage_small_files): read, hash, write
//! to the staging file, write-out started, read back as `--verify` says, source stat'ed
//! again), then checked here exactly as a chunk and a file are on the pipeline (the
//! read-back's hash against the hash of the bytes sent; the source's size and mtime
//! against the plan) and handed to the group commit ([`crate::publisher`]), which makes
//! them durable before they get their final names. A file the batch could not stage, or
//! whose read-back does not match, is copied again alone on the pipeline, with its retries
//! and its error messages.

use std::sync::atomic::Ordering;

use strata_catalog::FileRecord;
pub use strata_store::small::SMALL_FILE_MAX;
use strata_store::small::{ReadBack, SmallFile, StagedSmall};

use crate::migrate::{
    copy_alone, is_fatal, planned_mtime, record_done, record_failure, Outcome, Run,
};
use crate::plan::layout;
use crate::progress::Progress;
use crate::publisher::Publishing;
use crate::settle::{same_version, vanished_message, SourceFile};
use crate::write_check::WriteCheck;

/// Files staged in one blocking call at most.
pub const SMALL_BATCH: usize = 32;

/// Whether `record` can go in a batch of `run` (the stores allow it: [`Run::batches_small`]).
pub(crate) fn fits_batch(record: &FileRecord, chunk_size: u64) -> bool {
    let size = record.planned.size;
    size <= SMALL_FILE_MAX && layout(chunk_size, size).is_single_chunk()
}

/// What a batch reads back for `verify`.
fn read_back_for(verify: WriteCheck) -> ReadBack {
    match verify {
        WriteCheck::Sent => ReadBack::Nothing,
        WriteCheck::Cache => ReadBack::Cache,
        WriteCheck::Device => ReadBack::Device,
    }
}

/// Copies `files` as one batch; the outcome of each.
pub(crate) async fn copy_small_batch(
    run: &Run,
    files: Vec<SourceFile>,
    chunk_size: u64,
) -> Vec<Outcome> {
    let staged = match run.source.plain() {
        Some(source) if !run.is_stopped() => {
            let list = files
                .iter()
                .map(|f| SmallFile {
                    path: f.record.planned.path.clone(),
                    size: f.record.planned.size,
                })
                .collect();
            let read_back = read_back_for(run.options.verify);
            run.destination
                .stage_small_files(source, list, read_back)
                .await
        }
        _ => None,
    };
    let mut outcomes = Vec::with_capacity(files.len());
    let Some(staged) = staged else {
        for file in files {
            outcomes.extend(copy_alone(run, file, chunk_size).await);
        }
        return outcomes;
    };
    for (file, result) in files.into_iter().zip(staged) {
        let outcome = match result {
            Ok(staged) => finish_small(run, file, staged, chunk_size).await,
            Err(error) if is_fatal(&error) => Some(run.store_outcome(&file.record, error)),
            // Copied again on the pipeline, whose retries and messages decide.
            Err(_) => copy_alone(run, file, chunk_size).await,
        };
        outcomes.extend(outcome);
    }
    outcomes
}

/// Checks a staged small file (source unchanged, read-back equal to what was sent) and
/// queues it for the group commit.
async fn finish_small(
    run: &Run,
    file: SourceFile,
    staged: StagedSmall,
    chunk_size: u64,
) -> Option<Outcome> {
    let size = file.record.planned.size;
    Progress::add(&run.progress.bytes_sent, size);
    let StagedSmall {
        upload,
        sent,
        read_back,
        source_now,
    } = staged;
    if run.is_stopped() {
        // Nothing published: a re-run copies it again.
        let _ = upload.abort().await;
        return Some(Outcome::NotAttempted);
    }
    // The bytes read must be of the version planned (as `finish_file` checks).
    match source_now {
        None => {
            let _ = upload.abort().await;
            let message = vanished_message(&run.source, &file.record.planned.path);
            return Some(record_failure(run, &file.record, message));
        }
        Some(now) if !same_version(&file.record.planned, file.etag.as_deref(), &now) => {
            let _ = upload.abort().await;
            return Some(Outcome::Changed(file, now));
        }
        Some(_) => {}
    }
    if read_back.is_some_and(|back| back != sent) {
        // The staged copy is wrong: write it again from the source, on the pipeline.
        let _ = upload.abort().await;
        run.chunks_resent.fetch_add(1, Ordering::Relaxed);
        Progress::add(&run.progress.bytes_resent, size);
        return copy_alone(run, file, chunk_size).await;
    }
    Progress::add(&run.progress.bytes_done, size);
    // One chunk: its value is the file's hash (BLAKE3 of the bytes).
    let hash = sent;
    let mtime = planned_mtime(&file.record);
    let Some(publisher) = &run.publisher else {
        return Some(
            match upload.publish(mtime, file.record.planned.mode).await {
                Ok(()) => record_done(run, &file.record, hash).await,
                Err(error) => run.store_outcome(&file.record, error),
            },
        );
    };
    let record = file.record.clone();
    let publishing = Publishing {
        upload,
        record: file.record,
        hash,
        mtime,
    };
    if publisher.send(publishing).await.is_ok() {
        return Some(Outcome::Queued);
    }
    Some(record_failure(
        run,
        &record,
        "internal error: publisher stopped; re-run".into(),
    ))
}
