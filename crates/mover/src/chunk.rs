//! One chunk of a migration: sent from the source into the file's staged upload, read
//! back as `--verify` says, and resent when the staged copy does not match.
//!
//! Local to local (both stores bare local, `--verify sent` or `cache`), a chunk's first
//! copy is one blocking call ([`Upload::copy_range_from`]: each span read, hashed, written
//! and read back on one thread while it is in that core's cache); everywhere else, and for
//! every resend, the chunk pipeline ([`pipeline::pump`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use strata_catalog::VerifiedChunk;
use strata_codec::hash::ChunkValue;
use strata_codec::ChunkHasher;
use strata_store::copy_local::{FeedHash, RangeCopy};
use strata_store::small::ReadBack;
use strata_store::{StoreError, Upload};

use crate::migrate::{FileCopy, Run};
use crate::pipeline::{self, read_ahead, SpanSink, IO_SPAN, READ_AHEAD};
use crate::progress::Progress;
use crate::recorder::Record;
use crate::retry::retry_store;
use crate::source::{read_exact, RangeRead};
use crate::write_check::WriteCheck;

/// Rewrites of a chunk whose staged copy does not verify, before the file is failed.
pub(crate) const WRITE_ATTEMPTS: u32 = 3;

/// A chunk's hasher as the store's one-call copy feeds it.
struct Fed(ChunkHasher);

impl FeedHash for Fed {
    fn feed(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Chunk `index` of `file` sent for the first time: its value, and the staged copy's value
/// when it was read back on the way (local to local, see the module documentation; a
/// failure there is left to the pipeline, which retries and says what went wrong).
async fn first_send(
    run: &Run,
    file: &FileCopy,
    upload: &Upload,
    index: u64,
) -> Result<(ChunkValue, Option<ChunkValue>), StoreError> {
    let read_back = match run.options.verify {
        WriteCheck::Sent => ReadBack::Nothing,
        WriteCheck::Cache => ReadBack::Cache,
        WriteCheck::Device => ReadBack::Device,
    };
    if let Some(source) = run.source.plain().filter(|_| run.local_to_local) {
        let (offset, len) = file.layout.chunk_range(index);
        let range = RangeCopy {
            path: file.record.planned.path.clone(),
            offset,
            len,
            span: run.destination.span_for(len),
        };
        let hasher = || Fed(file.layout.chunk_hasher(index));
        let copied = upload
            .copy_range_from(source, range, read_back, hasher(), hasher())
            .await;
        if let Some(Ok(hashes)) = copied {
            let staged = hashes.staged.map(|staged| staged.0.finish());
            return Ok((hashes.sent.0.finish(), staged));
        }
    }
    Ok((send_chunk(run, file, upload, index).await?, None))
}

/// Writes each span it is given into a staged upload, at the offsets that follow `at`.
struct UploadSink<'a> {
    upload: &'a Upload,
    at: u64,
}

impl SpanSink for UploadSink<'_> {
    type Error = StoreError;

    async fn write(&mut self, span: Bytes) -> Result<(), StoreError> {
        let at = self.at;
        self.at += span.len() as u64;
        retry_store(|| self.upload.write_at(at, span.clone())).await
    }
}

/// Chunk `index` of `file` through the pipeline: read from the source span by span,
/// hashed and written into the staged upload at the same time; returns its value.
pub(crate) async fn send_chunk(
    run: &Run,
    file: &FileCopy,
    upload: &Upload,
    index: u64,
) -> Result<ChunkValue, StoreError> {
    let (offset, len) = file.layout.chunk_range(index);
    let path = file.record.planned.path.as_str();
    let source = read_ahead(len, run.destination.span_for(len), READ_AHEAD, |at, n| {
        read_exact(&run.source, path, offset + at, n)
    });
    let mut sink = UploadSink { upload, at: offset };
    let hasher = pipeline::pump(source, file.layout.chunk_hasher(index), &mut sink).await?;
    Ok(hasher.finish())
}

/// The value of chunk `index` as the staged upload holds it, read back span by span
/// (in [`WriteCheck::Device`] mode from the device, past the page cache).
pub(crate) async fn staged_value(
    file: &FileCopy,
    upload: &Upload,
    index: u64,
    check: WriteCheck,
) -> Result<ChunkValue, StoreError> {
    let (offset, len) = file.layout.chunk_range(index);
    let staged = read_ahead(len, IO_SPAN, READ_AHEAD, |at, n| {
        retry_store(move || async move {
            match check {
                WriteCheck::Device => upload.read_back_from_device(offset + at, n).await,
                _ => upload.read_back(offset + at, n).await,
            }
        })
    });
    let hasher = pipeline::hash_stream(staged, file.layout.chunk_hasher(index)).await?;
    Ok(hasher.finish())
}

pub(crate) enum ChunkError {
    Store(StoreError),
    Mismatch,
    Stopped,
    FileFailed,
}

impl From<StoreError> for ChunkError {
    fn from(error: StoreError) -> Self {
        ChunkError::Store(error)
    }
}

pub(crate) async fn transfer_chunk(
    run: &Run,
    file: &FileCopy,
    index: u64,
    known: Option<ChunkValue>,
) -> Result<ChunkValue, ChunkError> {
    let upload = file
        .upload
        .lock()
        .ok()
        .and_then(|u| u.clone())
        .ok_or(ChunkError::FileFailed)?;
    let (_, len) = file.layout.chunk_range(index);
    if let Some(expected) = known {
        // Resumed: the staged bytes were verified before the crash; check they survived.
        let check = run.options.verify;
        if matches!(staged_value(file, &upload, index, check).await, Ok(v) if v == expected) {
            Progress::add(&run.progress.bytes_done, len);
            return Ok(expected);
        }
    }
    let (value, mut read_back) = first_send(run, file, &upload, index).await?;
    let mut attempt = 1;
    loop {
        Progress::add(&run.progress.bytes_sent, len);
        if !run.options.verify.reads_back() || !upload.supports_read_back() {
            break;
        }
        let staged = match read_back.take() {
            Some(staged) => staged,
            None => staged_value(file, &upload, index, run.options.verify).await?,
        };
        if staged == value {
            break;
        }
        // The staged copy is wrong: send this chunk again from the source (not from
        // memory, which may be what went bad), after a pause.
        run.chunks_resent.fetch_add(1, Ordering::Relaxed);
        Progress::add(&run.progress.bytes_resent, len);
        if attempt >= WRITE_ATTEMPTS {
            return Err(ChunkError::Mismatch);
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        if send_chunk(run, file, &upload, index).await? != value {
            return Err(StoreError::Backend {
                path: file.record.planned.path.clone(),
                detail: format!("chunk {index} changed at the source during the copy; re-run"),
                retryable: false,
            }
            .into());
        }
        attempt += 1;
    }
    // A range task records its chunks once its whole range is durable (`finish_range`):
    // another process may finish the file from the records alone.
    if !file.layout.is_single_chunk() && run.chunk_range.is_none() {
        let record = VerifiedChunk {
            file_index: file.record.planned.index,
            chunk_index: index,
            chaining_value: value,
        };
        let _ = run.records.send(Record::Chunk(record)).await;
    }
    Progress::add(&run.progress.bytes_done, len);
    Ok(value)
}
