//! Streaming pieces: [`PieceWriter`] writes replicas or fragments of an object whose bytes
//! arrive in order, in pieces of any size, through staged uploads (`Store::begin_upload`,
//! `Upload::write_at`, `Upload::publish`), one replica chunk (1 MiB) or one stripe (about
//! 1 MiB) at a time, all domains concurrently. Memory is bounded by the unit being filled
//! plus the one being written (and, per piece, its integrity table: 32 bytes per MiB for a
//! replica, 64 bytes per stripe for a fragment). The same writer serves a whole new encoding
//! ([`crate::RedundantUpload`]) and the rewrite of a few pieces by repair.
//!
//! Also here: [`RelLocks`], which keeps two streaming writers of one object in one process
//! from sharing a staging file (a local store stages an upload under a name derived from its
//! path alone), and the window the streaming readers use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use strata_codec::format::fragment::{encode_tail, FragmentHeader, StripeSums};
use strata_codec::format::replica_sums::{ReplicaSums, REPLICA_CHUNK};
use strata_codec::parity::GroupCoder;
use strata_store::{StoreError, Upload};
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;

use crate::domains::RedundantStore;
use crate::erasure::encode_stripe;
use crate::error::RedundancyError;

/// Bytes a streaming reader (re-encode, repair, checks) asks for at a time: whole replica
/// chunks or whole stripes, about this many.
pub(crate) const STREAM_WINDOW: u64 = 4 << 20;

/// One lock per object being written by a streaming writer of this process (see the module
/// docs). Entries go when their last holder is done.
#[derive(Debug, Default)]
pub(crate) struct RelLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// Held while an object is written; releasing it removes the lock's entry when no one
/// else waits for it.
#[derive(Debug)]
pub(crate) struct RelGuard {
    guard: Option<OwnedMutexGuard<()>>,
    rel: String,
    locks: Arc<RelLocks>,
}

impl RelLocks {
    /// Waits until no other streaming writer of this store holds `rel`.
    pub(crate) async fn lock(self: &Arc<RelLocks>, rel: &str) -> RelGuard {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(rel.to_string()).or_default())
        };
        RelGuard {
            guard: Some(lock.lock_owned().await),
            rel: rel.to_string(),
            locks: Arc::clone(self),
        }
    }
}

impl Drop for RelGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.0.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map holds it: nobody waits, and nobody can clone it while we hold the map.
        if map
            .get(&self.rel)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            map.remove(&self.rel);
        }
    }
}

/// How the units of an object become pieces.
pub(crate) enum Code {
    /// Every target gets the object's bytes; the integrity record's chunk hashes grow.
    Replicas { copies: u16, hashes: Vec<[u8; 32]> },
    /// Each target gets the shards of its fragment index; the tables grow.
    Erasure {
        header: FragmentHeader,
        coder: Arc<Mutex<GroupCoder>>,
        /// BLAKE3 of each stripe's object bytes (the same in every fragment's table).
        stripe_hashes: Vec<[u8; 32]>,
    },
}

impl Code {
    /// The code for a new encoding of `len` bytes: replicas with `copies` in their record,
    /// or `ec:k+m` fragments.
    pub(crate) fn new(
        erasure: Option<(usize, usize)>,
        copies: u16,
        len: u64,
    ) -> Result<Code, String> {
        Ok(match erasure {
            None => Code::Replicas {
                copies,
                hashes: Vec::new(),
            },
            Some((k, m)) => Code::Erasure {
                header: FragmentHeader::for_object(k as u8, m as u8, 0, len)
                    .map_err(|e| e.to_string())?,
                coder: Arc::new(Mutex::new(GroupCoder::new())),
                stripe_hashes: Vec::new(),
            },
        })
    }

    /// The byte length of each piece.
    fn piece_len(&self, len: u64) -> u64 {
        match self {
            Code::Replicas { .. } => len,
            Code::Erasure { header, .. } => header.file_len(),
        }
    }
}

/// One piece being written.
pub(crate) struct Target {
    pub domain: usize,
    /// Fragment index (0 for a replica).
    pub index: usize,
    upload: Option<Arc<Upload>>,
    shard_hashes: Vec<[u8; 32]>,
    /// Why this piece failed (repair keeps writing the others).
    pub failed: Option<RedundancyError>,
}

/// What one unit's task gives back.
struct UnitDone {
    /// Replicas: the chunk's BLAKE3; fragments: the stripe's.
    hash: [u8; 32],
    /// Fragments: the shard hash per target, in target order.
    shard_hashes: Vec<[u8; 32]>,
    /// Per target: the write's failure, if any.
    errors: Vec<Option<StoreError>>,
}

/// A piece written and published: what its integrity data is.
pub(crate) enum Summary {
    /// The replica's integrity record (encoded).
    Record(Bytes),
    /// The fragment's table and trailer as written.
    Tail(Bytes),
}

/// Writes the pieces of one object to `targets` from bytes that arrive in order.
pub(crate) struct PieceWriter {
    rs: RedundantStore,
    /// The object (for messages).
    rel: String,
    /// The pieces' path on their domains.
    path: String,
    len: u64,
    received: u64,
    dispatched: u64,
    /// The next stripe to dispatch (fragments).
    stripe: u32,
    code: Code,
    pub targets: Vec<Target>,
    pending: BytesMut,
    in_flight: Option<JoinHandle<Result<UnitDone, String>>>,
    /// Repair: a failed target is dropped and the others go on. A new encoding: any
    /// failure fails the whole writer.
    tolerate: bool,
}

impl PieceWriter {
    /// Starts a staged upload of each target piece (`(domain, fragment index)`) and writes
    /// the fragment headers. Without `tolerate`, a domain that refuses fails the call
    /// (the uploads begun are aborted).
    pub(crate) async fn begin(
        rs: &RedundantStore,
        rel: &str,
        path: &str,
        len: u64,
        code: Code,
        pieces: &[(usize, usize)],
        tolerate: bool,
    ) -> Result<PieceWriter, RedundancyError> {
        let size = code.piece_len(len);
        let header = match &code {
            Code::Erasure { header, .. } => Some(*header),
            Code::Replicas { .. } => None,
        };
        let began = join_all(pieces.iter().map(|&(d, index)| async move {
            let upload = rs.domains[d].begin_upload(path, size, false).await?;
            if let Some(header) = header {
                let h = FragmentHeader {
                    index: index as u8,
                    ..header
                };
                // First, so an object store's sequential upload never waits for it.
                upload
                    .write_at(0, Bytes::copy_from_slice(&h.encode()))
                    .await?;
            }
            Ok::<Upload, StoreError>(upload)
        }))
        .await;
        let mut writer = PieceWriter {
            rs: rs.clone(),
            rel: rel.to_string(),
            path: path.to_string(),
            len,
            received: 0,
            dispatched: 0,
            stripe: 0,
            code,
            targets: Vec::with_capacity(pieces.len()),
            pending: BytesMut::new(),
            in_flight: None,
            tolerate,
        };
        for (&(domain, index), result) in pieces.iter().zip(began) {
            let (upload, failed) = match result {
                Ok(upload) => (Some(Arc::new(upload)), None),
                Err(source) => (None, Some(writer.write_error(domain, source))),
            };
            writer.targets.push(Target {
                domain,
                index,
                upload,
                shard_hashes: Vec::new(),
                failed,
            });
        }
        if let Some(e) = writer.first_failure() {
            writer.abort().await;
            return Err(e);
        }
        Ok(writer)
    }

    fn write_error(&self, domain: usize, source: StoreError) -> RedundancyError {
        self.rs.write_error(domain, self.path.clone(), source)
    }

    /// Without `tolerate`, the first target's failure (taken out of it).
    fn first_failure(&mut self) -> Option<RedundancyError> {
        if self.tolerate {
            return None;
        }
        self.targets.iter_mut().find_map(|t| t.failed.take())
    }

    /// Whether every target failed.
    pub(crate) fn all_failed(&self) -> bool {
        self.targets.iter().all(|t| t.failed.is_some())
    }

    /// The object's declared length.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The byte length of each piece.
    pub(crate) fn piece_len(&self) -> u64 {
        self.code.piece_len(self.len)
    }

    /// The object's bytes written so far (received, not necessarily on the domains yet).
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Appends `data` to the object. Errors when it would pass the declared length, or
    /// when a domain fails (without `tolerate`); the caller then aborts the writer.
    pub(crate) async fn write(&mut self, mut data: Bytes) -> Result<(), RedundancyError> {
        let total = self.received.saturating_add(data.len() as u64);
        if total > self.len {
            return Err(RedundancyError::Length {
                rel: self.rel.clone(),
                declared: self.len,
                written: total,
            });
        }
        self.received = total;
        loop {
            let need = self.unit_len() as usize;
            if need == 0 {
                return Ok(());
            }
            let unit = if self.pending.is_empty() && data.len() >= need {
                // Whole units straight from the caller's buffer: no copy.
                data.split_to(need)
            } else {
                let take = (need - self.pending.len()).min(data.len());
                self.pending.extend_from_slice(&data.split_to(take));
                if self.pending.len() < need {
                    return Ok(());
                }
                self.pending.split().freeze()
            };
            self.dispatch(unit).await?;
        }
    }

    /// Bytes of the next unit to dispatch (0 when all are).
    fn unit_len(&self) -> u64 {
        match &self.code {
            Code::Replicas { .. } => (self.len - self.dispatched).min(REPLICA_CHUNK as u64),
            Code::Erasure { header, .. } if self.stripe < header.stripes => {
                let r = header.stripe_bytes(self.stripe);
                r.end - r.start
            }
            Code::Erasure { .. } => 0,
        }
    }

    /// Waits for the unit in flight, then starts writing `unit` on every live target.
    async fn dispatch(&mut self, unit: Bytes) -> Result<(), RedundancyError> {
        self.settle_in_flight().await?;
        let live: Vec<(usize, usize, Arc<Upload>)> = self
            .targets
            .iter()
            .filter(|t| t.failed.is_none())
            .filter_map(|t| Some((t.domain, t.index, Arc::clone(t.upload.as_ref()?))))
            .collect();
        let (offset, stripe) = (self.dispatched, self.stripe);
        let erasure = match &self.code {
            Code::Erasure { header, coder, .. } => Some((*header, Arc::clone(coder))),
            Code::Replicas { .. } => None,
        };
        self.dispatched += unit.len() as u64;
        self.stripe += 1;
        self.in_flight = Some(tokio::spawn(write_unit(
            unit, offset, stripe, erasure, live,
        )));
        Ok(())
    }

    /// Collects the unit in flight: its hashes, and the failures of its writes.
    async fn settle_in_flight(&mut self) -> Result<(), RedundancyError> {
        let Some(task) = self.in_flight.take() else {
            return Ok(());
        };
        let done = task
            .await
            .map_err(|e| format!("the writing task failed: {e}"))
            .and_then(|r| r)
            .map_err(|detail| RedundancyError::Other {
                rel: self.rel.clone(),
                detail,
            })?;
        match &mut self.code {
            Code::Replicas { hashes, .. } => hashes.push(done.hash),
            Code::Erasure { stripe_hashes, .. } => stripe_hashes.push(done.hash),
        }
        let live: Vec<usize> = (0..self.targets.len())
            .filter(|&i| self.targets[i].failed.is_none())
            .collect();
        for ((i, hash), error) in live
            .into_iter()
            .zip(done.shard_hashes_or_empty())
            .zip(done.errors)
        {
            if let Some(hash) = hash {
                self.targets[i].shard_hashes.push(hash);
            }
            if let Some(source) = error {
                let e = self.write_error(self.targets[i].domain, source);
                self.targets[i].failed = Some(e);
            }
        }
        match self.first_failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Ends the object: checks the length, writes the fragment tables, publishes every
    /// live piece. Returns each target's summary or failure, in target order (without
    /// `tolerate`, the first failure is the error and nothing stays staged).
    pub(crate) async fn finish(
        mut self,
    ) -> Result<Vec<Result<Summary, RedundancyError>>, RedundancyError> {
        let result = self.finish_inner().await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    async fn finish_inner(
        &mut self,
    ) -> Result<Vec<Result<Summary, RedundancyError>>, RedundancyError> {
        if self.received < self.len {
            return Err(RedundancyError::Length {
                rel: self.rel.clone(),
                declared: self.len,
                written: self.received,
            });
        }
        self.settle_in_flight().await?;
        let summaries = self.summaries();
        let tail_at = match &self.code {
            Code::Erasure { header, .. } => Some(header.table_offset()),
            Code::Replicas { .. } => None,
        };
        let path = self.path.clone();
        let rs = &self.rs;
        let finals = join_all(self.targets.iter_mut().zip(summaries).map(|(t, summary)| {
            let upload = t.upload.take().and_then(Arc::into_inner);
            let failed = t.failed.take();
            let (domain, path) = (t.domain, path.clone());
            async move {
                let upload = match (failed, upload) {
                    (Some(e), upload) => {
                        if let Some(upload) = upload {
                            let _ = upload.abort().await;
                        }
                        return Err(Ok(e));
                    }
                    (None, None) => {
                        return Err(Ok(RedundancyError::Other {
                            rel: path,
                            detail: format!(
                                "the staged upload on domain {domain} is still in use; retry"
                            ),
                        }));
                    }
                    (None, Some(upload)) => upload,
                };
                if let (Summary::Tail(tail), Some(at)) = (&summary, tail_at) {
                    if let Err(e) = upload.write_at(at, tail.clone()).await {
                        let _ = upload.abort().await;
                        return Err(Err((domain, e)));
                    }
                }
                if let Err(e) = upload.publish(None, None).await {
                    remove_staging(rs, domain, &path).await;
                    return Err(Err((domain, e)));
                }
                Ok(summary)
            }
        }))
        .await;
        Ok(finals
            .into_iter()
            .map(|r| r.map_err(|e| e.unwrap_or_else(|(d, e)| self.write_error(d, e))))
            .collect())
    }

    /// The integrity data of each target's piece.
    fn summaries(&self) -> Vec<Summary> {
        match &self.code {
            Code::Replicas { copies, hashes } => {
                let record = Bytes::from(
                    ReplicaSums {
                        copies: *copies,
                        len: self.len,
                        chunk_size: REPLICA_CHUNK,
                        hashes: hashes.clone(),
                    }
                    .encode(),
                );
                self.targets
                    .iter()
                    .map(|_| Summary::Record(record.clone()))
                    .collect()
            }
            Code::Erasure {
                header,
                stripe_hashes,
                ..
            } => self
                .targets
                .iter()
                .map(|t| {
                    let table: Vec<StripeSums> = t
                        .shard_hashes
                        .iter()
                        .zip(stripe_hashes)
                        .map(|(&shard, &stripe)| StripeSums { shard, stripe })
                        .collect();
                    let h = FragmentHeader {
                        index: t.index as u8,
                        ..*header
                    };
                    Summary::Tail(Bytes::from(encode_tail(&h, &table)))
                })
                .collect(),
        }
    }

    /// Gives up: waits for the unit in flight, then aborts every staged upload (nothing
    /// is published; failures to remove a staging file are logged).
    pub(crate) async fn abort(&mut self) {
        if let Some(task) = self.in_flight.take() {
            let _ = task.await;
        }
        for t in &mut self.targets {
            let Some(upload) = t.upload.take().and_then(Arc::into_inner) else {
                continue;
            };
            if let Err(e) = upload.abort().await {
                tracing::warn!(domain = t.domain, store = %self.rs.store_name(t.domain), path = %self.path, "could not remove a staged upload: {e}");
            }
        }
    }

    /// Whether the writer still holds staged uploads (not finished or aborted).
    pub(crate) fn has_uploads(&self) -> bool {
        self.in_flight.is_some() || self.targets.iter().any(|t| t.upload.is_some())
    }
}

impl UnitDone {
    fn shard_hashes_or_empty(&self) -> Vec<Option<[u8; 32]>> {
        if self.shard_hashes.is_empty() {
            vec![None; self.errors.len()]
        } else {
            self.shard_hashes.iter().copied().map(Some).collect()
        }
    }
}

/// Removes what a failed publish may have left staged for `path` on `domain` (the upload
/// is gone with the call): an empty upload of the same path takes the staging name over,
/// and aborting it removes the file.
async fn remove_staging(rs: &RedundantStore, domain: usize, path: &str) {
    let store = &rs.domains[domain];
    let removed = match store.begin_upload(path, 0, false).await {
        Ok(upload) => upload.abort().await,
        Err(e) => Err(e),
    };
    if let Err(e) = removed {
        tracing::warn!(domain, store = %store.display(), path, "could not remove a staged upload after a failed publish: {e}");
    }
}

/// Hashes (and for fragments encodes) one unit on a blocking thread, then writes it to
/// every target concurrently.
async fn write_unit(
    unit: Bytes,
    offset: u64,
    stripe: u32,
    erasure: Option<(FragmentHeader, Arc<Mutex<GroupCoder>>)>,
    live: Vec<(usize, usize, Arc<Upload>)>,
) -> Result<UnitDone, String> {
    let indices: Vec<usize> = live.iter().map(|t| t.1).collect();
    let encoded = tokio::task::spawn_blocking(move || match erasure {
        None => Ok((
            *blake3::hash(&unit).as_bytes(),
            Vec::new(),
            vec![unit],
            offset,
        )),
        Some((header, coder)) => {
            let mut coder = coder.lock().unwrap_or_else(|p| p.into_inner());
            let e = encode_stripe(&mut coder, &header, stripe, unit, &indices)?;
            Ok((
                e.stripe_hash,
                e.shard_hashes,
                e.shards,
                header.shard_offset(stripe),
            ))
        }
    })
    .await
    .map_err(|e| format!("the encoding task failed: {e}"))?
    .map_err(|e: String| format!("encoding stripe {stripe} failed: {e}"))?;
    let (hash, shard_hashes, pieces, at) = encoded;
    let errors = join_all(live.iter().enumerate().map(|(i, (_, _, upload))| {
        let piece = pieces
            .get(i)
            .or(pieces.first())
            .cloned()
            .unwrap_or_default();
        async move { upload.write_at(at, piece).await.err() }
    }))
    .await;
    Ok(UnitDone {
        hash,
        shard_hashes,
        errors,
    })
}
