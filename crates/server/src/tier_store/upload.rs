//! [`TierUpload`]: an object's stored bytes written to a tier as they stream, published
//! atomically at the end. Nothing is visible under the object's path before
//! [`TierUpload::finish`]; [`TierUpload::abort`] (or a crash) leaves the old bytes as they
//! were.
//!
//! On a tier with one store, an object of at most [`SMALL_WRITE`] stored bytes is kept in
//! memory and written at the end with one `Store::write_atomic` (one PUT on S3, retried as
//! a whole like any store call); a larger one goes to a staged upload
//! (`Store::begin_upload`: a staging file renamed into place, or an S3 multipart upload)
//! as soon as it passes that size, so memory never holds more than that. On a tier with
//! failure domains, a write whose exact length is known (a plain layout with a declared
//! length) streams through `RedundantStore::begin_write`; otherwise (a packed layout: its
//! stored length is known once encoded; or a body of unknown length) the bytes wait for
//! the end, since fragment headers carry the length: up to [`SMALL_WRITE`] in memory,
//! beyond that in an unlinked spool file, streamed to the domains once the length is known.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use strata_mover::pipeline::SpanSink;
use strata_redundancy::{Redundancy, RedundantUpload};
use strata_store::{PendingPublish, Store, StoreError, Upload};

use super::{to_store_error, DomainTier, TierStore};
use crate::mover::store_call;
use crate::state::{lock, AppState};
use crate::tier_codec::{TierEncoder, TierFormat};

/// Objects up to this many stored bytes are written in one atomic write (S3's multipart
/// part size: a larger object would be sent in parts anyway).
pub const SMALL_WRITE: usize = 8 << 20;

/// A write of one object's stored bytes to a tier, in sequence (see the module
/// documentation). Made by [`TierStore::begin_write`]; every method takes `&self`, so a
/// failed call can be retried (the service's `store_call`).
pub struct TierUpload {
    rel: String,
    /// The most bytes the upload may take (the length it began with).
    bound: u64,
    /// Bytes written so far, in sequence.
    written: AtomicU64,
    target: Target,
    /// Bytes `[0, written)` while they fit in [`SMALL_WRITE`].
    kept: Mutex<BytesMut>,
    /// Where the bytes go once they outgrew [`SMALL_WRITE`].
    overflow: tokio::sync::Mutex<Option<Overflow>>,
    /// Set once published or aborted.
    done: AtomicBool,
}

enum Target {
    Single(Store),
    /// A tier with domains, the object's exact stored length known at the start (a plain
    /// layout): streamed through the redundancy crate's writer, memory bounded.
    Streamed(Box<tokio::sync::Mutex<Option<RedundantUpload>>>),
    /// A tier with domains and only a bound on the stored length (a packed layout, whose
    /// length is known once encoded, or a body without a declared length): the fragments'
    /// headers need the length, so the bytes wait until the end: in memory up to
    /// [`SMALL_WRITE`], beyond that in a spool file (unlinked at once, so a crash leaves
    /// nothing), streamed from there through `RedundantStore::begin_write` once the length
    /// is known. Memory stays bounded whatever the object's size.
    Domains {
        domains: Arc<DomainTier>,
        redundancy: Redundancy,
    },
}

/// Where a write's bytes go once they outgrew memory's share.
enum Overflow {
    /// A staged upload on the tier's one store (`Store::begin_upload`).
    Staged(Upload),
    /// The spool file of a write to domains whose length is known at its end.
    Spooled(Spill),
}

impl Overflow {
    async fn write_at(&mut self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        match self {
            Overflow::Staged(upload) => upload.write_at(offset, data).await,
            Overflow::Spooled(spill) => spill.write_at(offset, &data).await,
        }
    }
}

impl std::fmt::Debug for TierUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierUpload")
            .field("rel", &self.rel)
            .field("bound", &self.bound)
            .field("written", &self.written())
            .finish()
    }
}

impl TierStore {
    /// Starts writing `rel` with `redundancy` (`None`: the tier's own; a tier with one
    /// store ignores it) in at most `len` bytes: the exact length, or an upper bound when
    /// it is known only at the end (an object encoded as it streams); `exact` says which.
    /// On a tier with domains an exact length streams through the redundancy crate's
    /// writer; a bound keeps the bytes until the end. Nothing appears under `rel` before
    /// [`TierUpload::finish`].
    pub async fn begin_write(
        &self,
        rel: &str,
        redundancy: Option<Redundancy>,
        len: u64,
        exact: bool,
    ) -> Result<TierUpload, StoreError> {
        let target = match self {
            TierStore::Single(store) => Target::Single(store.clone()),
            TierStore::Domains(domains) if exact => {
                let redundancy = redundancy.unwrap_or(domains.default);
                let upload = domains
                    .store
                    .begin_write(rel, redundancy, len)
                    .await
                    .map_err(|err| to_store_error(rel, err))?;
                Target::Streamed(Box::new(tokio::sync::Mutex::new(Some(upload))))
            }
            TierStore::Domains(domains) => Target::Domains {
                domains: Arc::clone(domains),
                redundancy: redundancy.unwrap_or(domains.default),
            },
        };
        Ok(TierUpload {
            rel: rel.to_string(),
            bound: len,
            written: AtomicU64::new(0),
            target,
            kept: Mutex::new(BytesMut::new()),
            overflow: tokio::sync::Mutex::new(None),
            done: AtomicBool::new(false),
        })
    }
}

impl TierUpload {
    /// Appends `data`. A failed write can be tried again with the same bytes (nothing
    /// after them has been written).
    pub async fn write(&self, data: Bytes) -> Result<(), StoreError> {
        let offset = self.written();
        let len = data.len() as u64;
        if self.done.load(Ordering::SeqCst) || offset.saturating_add(len) > self.bound {
            return Err(self.refused(format!(
                "the object takes more than the {} bytes its write began with, or its write \
                 had ended",
                self.bound
            )));
        }
        if let Target::Streamed(upload) = &self.target {
            let mut upload = upload.lock().await;
            let Some(upload) = upload.as_mut() else {
                return Err(self.refused("its write had ended".to_string()));
            };
            upload
                .write(data)
                .await
                .map_err(|err| to_store_error(&self.rel, err))?;
            self.written.fetch_add(len, Ordering::SeqCst);
            return Ok(());
        }
        let mut overflow = self.overflow.lock().await;
        if overflow.is_none() {
            if self.keep(&data) {
                self.written.fetch_add(len, Ordering::SeqCst);
                return Ok(());
            }
            *overflow = Some(self.begin_overflow().await?);
        }
        let Some(overflow) = overflow.as_mut() else {
            return Err(self.refused("its staged bytes are gone".to_string()));
        };
        // The bytes kept so far go first (again, if their write failed before).
        let kept = lock(&self.kept).clone().freeze();
        if !kept.is_empty() {
            overflow.write_at(0, kept).await?;
            lock(&self.kept).clear();
        }
        overflow.write_at(offset, data).await?;
        self.written.fetch_add(len, Ordering::SeqCst);
        Ok(())
    }

    /// Where the bytes go past [`SMALL_WRITE`]: a staged upload on the tier's store, or a
    /// spool file while a write to domains waits for its length.
    async fn begin_overflow(&self) -> Result<Overflow, StoreError> {
        match &self.target {
            Target::Single(store) => Ok(Overflow::Staged(
                store.begin_upload(&self.rel, self.bound, false).await?,
            )),
            Target::Domains { domains, .. } => {
                Ok(Overflow::Spooled(Spill::create(&domains.spool).await?))
            }
            Target::Streamed(_) => Err(self.refused("a streamed write has no overflow".into())),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Keeps `data` in memory if the bytes kept stay within [`SMALL_WRITE`]; says whether
    /// it did.
    fn keep(&self, data: &[u8]) -> bool {
        let mut kept = lock(&self.kept);
        let small = kept.len() + data.len() <= SMALL_WRITE;
        if small {
            kept.extend_from_slice(data);
        }
        small
    }

    /// Publishes what was written under the path, atomically; returns its length. Kept
    /// bytes are written whole (retryable); a staged upload is published once: its failure
    /// is final.
    pub async fn finish(&self) -> Result<u64, StoreError> {
        if self.done.load(Ordering::SeqCst) {
            return Err(self.refused("its write had ended already".to_string()));
        }
        let written = self.written();
        if let Some(overflow) = self.overflow.lock().await.take() {
            self.done.store(true, Ordering::SeqCst);
            // Not retryable: the staged upload or spool file is gone either way.
            return self
                .publish_overflow(overflow, written)
                .await
                .map(|()| written)
                .map_err(|err| self.refused(err.to_string()));
        }
        if let Target::Streamed(upload) = &self.target {
            let Some(upload) = upload.lock().await.take() else {
                return Err(self.refused("its write had ended already".to_string()));
            };
            self.done.store(true, Ordering::SeqCst);
            upload
                .finish()
                .await
                .map_err(|err| to_store_error(&self.rel, err))?;
            return Ok(written);
        }
        let data = lock(&self.kept).clone().freeze();
        match &self.target {
            Target::Single(store) => store.write_atomic(&self.rel, data).await?,
            Target::Streamed(_) => {}
            Target::Domains {
                domains,
                redundancy,
            } => {
                domains
                    .store
                    .write(&self.rel, data, *redundancy)
                    .await
                    .map_err(|err| to_store_error(&self.rel, err))?;
            }
        }
        self.done.store(true, Ordering::SeqCst);
        lock(&self.kept).clear();
        Ok(written)
    }

    /// For the group commit ([`crate::group_commit`]): on a tier with one local store,
    /// puts every byte written in a staged upload of the store (the bytes kept in memory
    /// written to a staging file, not flushed yet: the group commit flushes it with
    /// `Upload::flush_data` while the write's intent is being recorded), then hands it
    /// over with the object's stored length, to be published with other writes' by
    /// `Upload::publish_group`: its rename and directory flush make it as durable as
    /// [`TierUpload::finish`] would. The write is then over here: publishing or aborting the upload is the
    /// caller's. `None` on other tiers (S3, domains), where nothing is staged:
    /// [`TierUpload::finish`] publishes those.
    pub async fn stage_for_group(&self) -> Result<Option<(PendingPublish, u64)>, StoreError> {
        let Target::Single(store) = &self.target else {
            return Ok(None);
        };
        if store.local_root().is_none() {
            return Ok(None);
        }
        if self.done.load(Ordering::SeqCst) {
            return Err(self.refused("its write had ended already".to_string()));
        }
        let written = self.written();
        let mut overflow = self.overflow.lock().await;
        let upload = match overflow.take() {
            Some(Overflow::Staged(upload)) => self.cut_to(upload, written).await?,
            Some(Overflow::Spooled(_)) => {
                return Err(self.refused("a spool file outside a write to domains".into()))
            }
            None => {
                let data = lock(&self.kept).clone().freeze();
                let upload = store.begin_upload(&self.rel, written, false).await?;
                if let Err(err) = upload.write_at(0, data).await {
                    let _ = upload.abort().await;
                    return Err(err);
                }
                lock(&self.kept).clear();
                upload
            }
        };
        self.done.store(true, Ordering::SeqCst);
        let pending = PendingPublish {
            upload,
            mtime: None,
            mode: None,
        };
        Ok(Some((pending, written)))
    }

    /// Publishes the `written` bytes that outgrew memory: the staged upload (cut to its
    /// length first when the write began with a bound), or the spool streamed to the
    /// domains. The upload is aborted if it cannot be published.
    async fn publish_overflow(&self, overflow: Overflow, written: u64) -> Result<(), StoreError> {
        match (overflow, &self.target) {
            (
                Overflow::Spooled(spill),
                Target::Domains {
                    domains,
                    redundancy,
                },
            ) => {
                spill
                    .publish(domains, &self.rel, *redundancy, written)
                    .await
            }
            (Overflow::Spooled(_), _) => {
                Err(self.refused("a spool file outside a write to domains".into()))
            }
            (Overflow::Staged(upload), _) => {
                self.cut_to(upload, written)
                    .await?
                    .publish(None, None)
                    .await
            }
        }
    }

    /// The staged upload ended at the `written` bytes (a write that began with a bound
    /// may have written fewer); aborted if it cannot be cut.
    async fn cut_to(&self, mut upload: Upload, written: u64) -> Result<Upload, StoreError> {
        if written < self.bound {
            if let Err(err) = upload.set_len(written).await {
                let _ = upload.abort().await;
                return Err(err);
            }
        }
        Ok(upload)
    }

    /// Gives up: nothing is published, the staged bytes are removed.
    pub async fn abort(&self) -> Result<(), StoreError> {
        self.done.store(true, Ordering::SeqCst);
        lock(&self.kept).clear();
        if let Target::Streamed(upload) = &self.target {
            if let Some(upload) = upload.lock().await.take() {
                upload.abort().await;
            }
        }
        match self.overflow.lock().await.take() {
            Some(Overflow::Staged(upload)) => upload.abort().await,
            // Dropping the unlinked spool file frees its space.
            Some(Overflow::Spooled(_)) | None => Ok(()),
        }
    }

    fn refused(&self, detail: String) -> StoreError {
        StoreError::Backend {
            path: self.rel.clone(),
            detail,
            retryable: false,
        }
    }
}

/// A [`TierUpload`] behind its tier's encoder: the sink of the chunk pipeline
/// ([`strata_mover::pipeline::pump`]) for a write's body and a move's copy. Each span is
/// encoded for the tier's layout and its stored bytes written as they come out;
/// [`EncodingSink::finish`] writes the last frame and, on a packed tier, the frame table.
pub struct EncodingSink<'a> {
    state: &'a AppState,
    /// What the writes are for, in the retry log ("an object write", "a move's copy").
    what: &'static str,
    encoder: TierEncoder,
    upload: &'a TierUpload,
}

impl<'a> EncodingSink<'a> {
    /// A sink writing `key`'s bytes, encoded for `format`, to `upload`.
    pub fn new(
        state: &'a AppState,
        what: &'static str,
        format: TierFormat,
        key: &str,
        upload: &'a TierUpload,
    ) -> Self {
        EncodingSink {
            state,
            what,
            encoder: TierEncoder::new(format, key),
            upload,
        }
    }

    /// Writes what the encoder still holds (the last frame, the table, the trailer).
    pub async fn finish(self) -> Result<(), StoreError> {
        let (state, what, upload) = (self.state, self.what, self.upload);
        write_pieces(state, what, upload, self.encoder.finish().await).await
    }
}

/// `pieces` appended to `upload` in order, each write with the service's retries.
async fn write_pieces(
    state: &AppState,
    what: &str,
    upload: &TierUpload,
    pieces: Vec<Bytes>,
) -> Result<(), StoreError> {
    for piece in pieces {
        store_call(state, what, || upload.write(piece.clone())).await?;
    }
    Ok(())
}

impl SpanSink for EncodingSink<'_> {
    type Error = StoreError;

    async fn write(&mut self, span: Bytes) -> Result<(), StoreError> {
        let pieces = self.encoder.push(span).await;
        write_pieces(self.state, self.what, self.upload, pieces).await
    }
}

/// The spool file of a write to a tier with domains whose length is not known until its
/// end: created in the service's spool directory and unlinked at once, so only this open
/// handle keeps it (a crash frees it).
struct Spill {
    file: tokio::fs::File,
    /// Where it was created, for messages.
    dir: String,
}

/// Bytes read back from a spool file per write to the domains.
const SPILL_PIECE: usize = 4 << 20;

impl Spill {
    async fn create(dir: &std::path::Path) -> Result<Spill, StoreError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let shown = dir.display().to_string();
        let io = |err| spool_error(&shown, err);
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        let name = format!(
            "{}-{}.spool",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let path = dir.join(name);
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(io)?;
        tokio::fs::remove_file(&path).await.map_err(io)?;
        Ok(Spill { file, dir: shown })
    }

    /// Writes `data` at `offset` (a retried write lands on the same bytes).
    async fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        use tokio::io::{AsyncSeekExt, AsyncWriteExt};
        let result = async {
            self.file.seek(std::io::SeekFrom::Start(offset)).await?;
            self.file.write_all(data).await
        }
        .await;
        result.map_err(|err| spool_error(&self.dir, err))
    }

    /// Streams the spooled `len` bytes to `rel` on the domains, now that the length is
    /// known.
    async fn publish(
        mut self,
        domains: &DomainTier,
        rel: &str,
        redundancy: Redundancy,
        len: u64,
    ) -> Result<(), StoreError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
        let dir = self.dir.clone();
        let io = |err| spool_error(&dir, err);
        self.file.flush().await.map_err(io)?;
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(io)?;
        let mut upload = domains
            .store
            .begin_write(rel, redundancy, len)
            .await
            .map_err(|err| to_store_error(rel, err))?;
        let mut left = len;
        while left > 0 {
            let mut piece = vec![0; SPILL_PIECE.min(left as usize)];
            if let Err(err) = self.file.read_exact(&mut piece).await {
                upload.abort().await;
                return Err(io(err));
            }
            left -= piece.len() as u64;
            if let Err(err) = upload.write(Bytes::from(piece)).await {
                upload.abort().await;
                return Err(to_store_error(rel, err));
            }
        }
        upload
            .finish()
            .await
            .map_err(|err| to_store_error(rel, err))?;
        Ok(())
    }
}

/// A spool file's I/O error, naming its directory.
fn spool_error(dir: &str, err: std::io::Error) -> StoreError {
    StoreError::from_io(
        format!("{dir} (the spool of writes to tiers with domains)"),
        err,
    )
}
