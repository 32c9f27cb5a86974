//! [`RedundantUpload`]: an object written as a stream ([`RedundantStore::begin_write`]),
//! and [`LayoutReader`], which reads an object window by window, verified, for re-encode
//! and repair. Memory is bounded by a few units (replica chunks or stripes) whatever the
//! object's size.

use bytes::Bytes;
use futures::Stream;
use strata_mover::pipeline::{read_ahead, SpanSink};

use crate::domains::{frag_path, sums_path, Found, Inventory, Layout, RedundantStore};
use crate::erasure::TableCache;
use crate::error::{DomainFault, RedundancyError};
use crate::repair::{choose_slot, Keep, Written};
use crate::spec::Redundancy;
use crate::stream::{Code, PieceWriter, RelGuard, Summary, STREAM_WINDOW};

/// An object being written as a stream: begun with [`RedundantStore::begin_write`] for a
/// known length, fed in order with [`RedundantUpload::write`] (any sizes), then
/// [`RedundantUpload::finish`] (publishes) or [`RedundantUpload::abort`].
///
/// Every piece is staged (`Store::begin_upload`) until `finish`, which publishes each
/// atomically, then the integrity records, then removes the pieces of any other encoding
/// the object had: the same files as [`RedundantStore::write`]. Dropped unfinished (a
/// cancelled request), it publishes nothing and its staged uploads are removed in the
/// background; after a crash they stay staged, and the next write of the object replaces
/// them. A second writer of the same object through the same store waits until this one
/// is finished, aborted or dropped.
pub struct RedundantUpload {
    rs: RedundantStore,
    before: Inventory,
    redundancy: Redundancy,
    targets: Vec<usize>,
    keep: Keep,
    writer: Option<PieceWriter>,
    guard: Option<RelGuard>,
}

impl std::fmt::Debug for RedundantUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedundantUpload")
            .field("rel", &self.before.rel)
            .field("redundancy", &self.redundancy)
            .field("targets", &self.targets)
            .finish()
    }
}

impl RedundantStore {
    /// Begins writing `len` bytes at `rel` as `redundancy` says (see [`RedundantUpload`]).
    /// Fails (naming the domain's store) when a domain cannot stage its piece.
    pub async fn begin_write(
        &self,
        rel: &str,
        redundancy: Redundancy,
        len: u64,
    ) -> Result<RedundantUpload, RedundancyError> {
        self.check_rel(rel)?;
        self.check_domains(rel, redundancy)?;
        let guard = self.locks.lock(rel).await;
        let before = self.inventory(rel).await;
        self.begin_encoding(before, redundancy, len, guard).await
    }

    /// Begins a new encoding of the object `before` describes (the caller holds its lock).
    pub(crate) async fn begin_encoding(
        &self,
        before: Inventory,
        redundancy: Redundancy,
        len: u64,
        guard: RelGuard,
    ) -> Result<RedundantUpload, RedundancyError> {
        let rel = before.rel.clone();
        let targets: Vec<usize> = before.order[..redundancy.domains_needed()].to_vec();
        let (path, keep, erasure) = match redundancy {
            Redundancy::Erasure { data, parity } => {
                let (slot, stale) = choose_slot(&before);
                self.delete_quietly(stale).await;
                (
                    frag_path(slot, &rel),
                    Keep::Erasure(slot),
                    Some((data, parity)),
                )
            }
            _ => (rel.clone(), Keep::Replicas(targets.clone()), None),
        };
        let code = Code::new(erasure, redundancy.record_copies(), len).map_err(|detail| {
            RedundancyError::Other {
                rel: rel.clone(),
                detail: format!("{detail}; choose a smaller object or another encoding"),
            }
        })?;
        let pieces: Vec<(usize, usize)> = targets
            .iter()
            .enumerate()
            .map(|(i, &d)| (d, if erasure.is_some() { i } else { 0 }))
            .collect();
        let writer = PieceWriter::begin(self, &rel, &path, len, code, &pieces, false).await?;
        Ok(RedundantUpload {
            rs: self.clone(),
            before,
            redundancy,
            targets,
            keep,
            writer: Some(writer),
            guard: Some(guard),
        })
    }

    /// Writes `data` at `rel` as `redundancy` says, every replica or fragment on a
    /// different domain, each published atomically, then its integrity record; then
    /// removes the pieces of any other encoding `rel` had. Fails (naming the domain's
    /// store and the piece) if any domain write fails, removing what it wrote. Returns the
    /// raw bytes written over all domains. (A [`RedundantUpload`] fed with `data`.)
    pub async fn write(
        &self,
        rel: &str,
        data: Bytes,
        redundancy: Redundancy,
    ) -> Result<u64, RedundancyError> {
        let mut upload = self.begin_write(rel, redundancy, data.len() as u64).await?;
        upload.write(data).await?;
        upload.finish().await
    }
}

impl RedundantUpload {
    /// Appends `data` (the next bytes of the object, any size). Fails when more bytes
    /// than the declared length are sent or a domain fails (naming it); the upload is
    /// then aborted: nothing is published, the old object is unchanged.
    pub async fn write(&mut self, data: Bytes) -> Result<(), RedundancyError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.ended());
        };
        if let Err(e) = writer.write(data).await {
            self.abort_inner().await;
            return Err(e);
        }
        Ok(())
    }

    /// Bytes sent so far.
    pub fn written(&self) -> u64 {
        self.writer.as_ref().map_or(0, PieceWriter::received)
    }

    /// Publishes the object: every piece (atomically each), then the integrity records,
    /// then removes the pieces of any other encoding it had. Fails, publishing nothing,
    /// when fewer bytes than declared were sent; fails naming the domain when one does,
    /// removing what this upload published. Returns the raw bytes over all domains.
    pub async fn finish(mut self) -> Result<u64, RedundancyError> {
        let written = self.publish().await?;
        // What is there now, not what was there at the start: an encoding another handle
        // wrote meanwhile holds older bytes than these and must go too.
        let now = self.rs.inventory(&self.before.rel).await;
        self.rs.remove_others(&now, &written.keep).await;
        Ok(written.raw_bytes)
    }

    /// Gives up: nothing is published and the staged uploads are removed.
    pub async fn abort(mut self) {
        self.abort_inner().await;
    }

    fn ended(&self) -> RedundancyError {
        RedundancyError::Other {
            rel: self.before.rel.clone(),
            detail: "this upload already failed or was aborted; begin the write again".into(),
        }
    }

    async fn abort_inner(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            writer.abort().await;
        }
        self.guard.take();
    }

    /// Publishes the pieces and the integrity records, without removing the old
    /// encoding (a re-encode verifies the new one first). On failure removes what it
    /// published.
    pub(crate) async fn publish(&mut self) -> Result<Written, RedundancyError> {
        let writer = self.writer.take().ok_or_else(|| self.ended())?;
        let (len, piece_len) = (writer.len(), writer.piece_len());
        let results = writer.finish().await?;
        let mut summaries = Vec::with_capacity(results.len());
        let mut failure = None;
        for result in results {
            match result {
                Ok(summary) => summaries.push(summary),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        let raw_bytes = match (&self.keep, summaries.first()) {
            (Keep::Replicas(_), Some(Summary::Record(record))) if failure.is_none() => {
                let sums = sums_path(&self.before.rel);
                match self.rs.put_all(&self.targets, &sums, record).await {
                    Ok(()) => self.targets.len() as u64 * (len + record.len() as u64),
                    Err(e) => {
                        failure = Some(e);
                        0
                    }
                }
            }
            (Keep::Erasure(_), Some(Summary::Tail(_))) if failure.is_none() => {
                self.targets.len() as u64 * piece_len
            }
            _ => 0,
        };
        if let Some(e) = failure {
            self.undo().await;
            return Err(e);
        }
        Ok(Written {
            keep: self.keep.clone(),
            raw_bytes,
        })
    }

    /// Removes what this upload may have published: fragments in its slot; replica
    /// files and records only where the object had none before.
    async fn undo(&self) {
        let rel = &self.before.rel;
        let undo: Vec<(usize, String)> = match &self.keep {
            Keep::Erasure(slot) => self
                .targets
                .iter()
                .map(|&d| (d, frag_path(*slot, rel)))
                .collect(),
            _ => self
                .targets
                .iter()
                .flat_map(|&d| {
                    let probe = &self.before.domains[d];
                    let mut paths = Vec::new();
                    if matches!(probe.file, Found::Absent) {
                        paths.push((d, rel.clone()));
                    }
                    if matches!(probe.sums, Found::Absent) {
                        paths.push((d, sums_path(rel)));
                    }
                    paths
                })
                .collect(),
        };
        self.rs.delete_quietly(undo).await;
    }
}

/// A new encoding is the chunk pipeline's sink when an object is re-encoded.
impl SpanSink for RedundantUpload {
    type Error = RedundancyError;

    fn write(
        &mut self,
        span: Bytes,
    ) -> impl std::future::Future<Output = Result<(), RedundancyError>> + Send {
        RedundantUpload::write(self, span)
    }
}

impl Drop for RedundantUpload {
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        if !writer.has_uploads() {
            return;
        }
        // The lock goes with the clean-up, so a new writer never opens a staging file
        // that is about to be removed.
        let guard = self.guard.take();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    writer.abort().await;
                    drop(guard);
                });
            }
            Err(_) => tracing::warn!(
                rel = %self.before.rel,
                "an unfinished upload was dropped outside a runtime; its staged pieces stay until the object is written again"
            ),
        }
    }
}

/// Reads one encoding of an object window by window (whole replica chunks or stripes,
/// about [`STREAM_WINDOW`] bytes), every byte verified as reads are.
pub(crate) struct LayoutReader<'a> {
    rs: &'a RedundantStore,
    inventory: &'a Inventory,
    layout: &'a Layout,
    /// What the inventory found wrong with the layout's pieces (for error messages).
    known: Vec<DomainFault>,
    tables: TableCache,
    window: u64,
}

impl<'a> LayoutReader<'a> {
    pub(crate) fn new(
        rs: &'a RedundantStore,
        inventory: &'a Inventory,
        layout: &'a Layout,
    ) -> LayoutReader<'a> {
        let window = match layout {
            Layout::Erasure { header, .. } => {
                let stripe = header.stripe_data_len().max(1);
                (STREAM_WINDOW / stripe).max(1) * stripe
            }
            _ => STREAM_WINDOW,
        };
        LayoutReader {
            rs,
            inventory,
            layout,
            known: rs.probe_faults(inventory, layout).1,
            tables: TableCache::default(),
            window,
        }
    }

    /// The object's bytes window by window, in order, as the chunk pipeline's source
    /// ([`strata_mover::pipeline::pump`]). One window is read ahead of the one being
    /// written, so the read overlaps the write; no more, since re-encodes and repairs run
    /// behind readers and should not add to their queue.
    pub(crate) fn spans(&self) -> impl Stream<Item = Result<Bytes, RedundancyError>> + '_ {
        read_ahead(self.layout.len(), self.window, 1, move |offset, len| {
            self.read_window(offset, len)
        })
    }

    /// Bytes `[offset, offset + len)` of the object, verified.
    async fn read_window(&self, offset: u64, len: u64) -> Result<Bytes, RedundancyError> {
        let read = match self.layout {
            Layout::Erasure { .. } => {
                self.rs
                    .read_fragments(
                        self.inventory,
                        self.layout,
                        &self.known,
                        (offset, len),
                        &self.tables,
                    )
                    .await?
            }
            _ => {
                self.rs
                    .read_replicas(self.inventory, self.layout, &self.known, offset, len)
                    .await?
            }
        };
        Ok(read.bytes)
    }
}
