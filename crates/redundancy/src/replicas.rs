//! Replicas (`none`, `replicate:N`): the object's bytes as a plain file at `rel` on each of
//! its domains (readable without Strata), with an integrity record (`STRS`, BLAKE3 per
//! 1 MiB chunk) at `.strata/replicas/<rel>`. A replica is good iff its record is present and
//! every chunk read matches.

use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use strata_codec::format::replica_sums::ReplicaSums;
use strata_store::StoreError;

use crate::domains::{Inventory, Layout, Read, RedundantStore, PARALLEL};
use crate::error::{DomainFault, FaultKind, RedundancyError};
use crate::health::PieceState;
use crate::stream::STREAM_WINDOW;

/// `offset..offset + len` clamped to an object of `object_len` bytes.
pub(crate) fn clamp(object_len: u64, offset: u64, len: u64) -> (u64, u64) {
    let start = offset.min(object_len);
    (start, offset.saturating_add(len).min(object_len))
}

impl RedundantStore {
    /// Reads a range from the fastest good replica, trying the others on failure. The
    /// faults of the read are `known` (what the caller already knows is wrong with the
    /// layout's pieces) followed by those met on the way.
    pub(crate) async fn read_replicas(
        &self,
        inventory: &Inventory,
        layout: &Layout,
        known: &[DomainFault],
        offset: u64,
        len: u64,
    ) -> Result<Read, RedundancyError> {
        let rel = &inventory.rel;
        let (holders, object_len) = match layout {
            Layout::Replicas { holders, len, .. } | Layout::Legacy { holders, len } => {
                (holders, *len)
            }
            Layout::Erasure { .. } => unreachable!("fragments are read by read_fragments"),
        };
        let mut faults = known.to_vec();
        let (start, end) = clamp(object_len, offset, len);
        for d in self.latencies.fastest_first(holders.clone()) {
            let sums = inventory.domains[d].sums.present();
            match self.read_replica(d, rel, sums, start, end).await {
                Ok(bytes) => {
                    return Ok(Read {
                        bytes,
                        encoding: layout.encoding(),
                        faults,
                    })
                }
                Err(fault) => faults.push(fault),
            }
        }
        Err(RedundancyError::TooFewGood {
            rel: rel.clone(),
            encoding: layout.encoding(),
            good: 0,
            needed: 1,
            faults,
        })
    }

    /// Bytes `start..end` of the replica on `domain`, verified against `sums` (unverified
    /// for a plain file without a record).
    async fn read_replica(
        &self,
        domain: usize,
        rel: &str,
        sums: Option<&ReplicaSums>,
        start: u64,
        end: u64,
    ) -> Result<Bytes, DomainFault> {
        let store = &self.domains[domain];
        let fault = |e| DomainFault::from_store(domain, self.store_name(domain), rel, &e);
        let Some(sums) = sums else {
            return store
                .read_range(rel, start, end - start)
                .await
                .map_err(fault);
        };
        let chunks = sums.chunks_covering(start, end - start);
        if chunks.is_empty() {
            return Ok(Bytes::new());
        }
        let span = sums.chunk_bytes(chunks.start).start..sums.chunk_bytes(chunks.end - 1).end;
        let began = Instant::now();
        let bytes = store
            .read_range(rel, span.start, span.end - span.start)
            .await
            .map_err(fault)?;
        self.latencies.record(domain, began.elapsed());
        for c in chunks {
            let range = sums.chunk_bytes(c);
            let piece =
                &bytes[(range.start - span.start) as usize..(range.end - span.start) as usize];
            if blake3::hash(piece).as_bytes() != &sums.hashes[c] {
                return Err(DomainFault {
                    domain,
                    store: self.store_name(domain),
                    rel: rel.to_string(),
                    kind: FaultKind::Damaged,
                    detail: format!(
                        "chunk {c} (bytes {}..{}) does not match its BLAKE3 in the integrity record",
                        range.start, range.end
                    ),
                });
            }
        }
        Ok(bytes.slice((start - span.start) as usize..(end - span.start) as usize))
    }

    /// Reads the whole replica on `domain` and says whether it matches `reference` (the
    /// object's record): its own record must be present and describe the same bytes.
    pub(crate) async fn check_replica(
        &self,
        inventory: &Inventory,
        domain: usize,
        reference: &ReplicaSums,
    ) -> PieceState {
        let rel = &inventory.rel;
        let probe = &inventory.domains[domain];
        let own = match (&probe.sums, &probe.file) {
            (crate::domains::Found::Unreachable(d), _)
            | (_, crate::domains::Found::Unreachable(d)) => {
                return PieceState::Unreachable(d.clone())
            }
            (crate::domains::Found::Present(s), _) => s,
            (crate::domains::Found::Damaged(d), _) => return PieceState::Damaged(d.clone()),
            (crate::domains::Found::Absent, f) if f.exists() => {
                return PieceState::Damaged("the replica has no integrity record".into())
            }
            (crate::domains::Found::Absent, _) => return PieceState::Missing,
        };
        if own.len != reference.len || own.hashes != reference.hashes {
            return PieceState::Damaged("its integrity record describes other bytes".into());
        }
        match self.verify_replica(domain, rel, own).await {
            Ok(()) => PieceState::Good,
            Err(fault) => PieceState::from_fault(&fault),
        }
    }

    /// Reads the whole replica on `domain` window by window (memory bounded by
    /// [`STREAM_WINDOW`]) and checks its length and every chunk against `sums`.
    pub(crate) async fn verify_replica(
        &self,
        domain: usize,
        rel: &str,
        sums: &ReplicaSums,
    ) -> Result<(), DomainFault> {
        let store = &self.domains[domain];
        let fault = |e| DomainFault::from_store(domain, self.store_name(domain), rel, &e);
        let size = store.stat(rel).await.map_err(fault)?.map(|e| e.size);
        if size != Some(sums.len) {
            let Some(size) = size else {
                return Err(fault(StoreError::NotFound {
                    path: rel.to_string(),
                }));
            };
            return Err(DomainFault {
                domain,
                store: self.store_name(domain),
                rel: rel.to_string(),
                kind: FaultKind::Damaged,
                detail: format!("{size} bytes, its integrity record says {}", sums.len),
            });
        }
        let window = STREAM_WINDOW.max(sums.chunk_size as u64);
        let mut start = 0;
        while start < sums.len {
            let end = start.saturating_add(window).min(sums.len);
            self.read_replica(domain, rel, Some(sums), start, end)
                .await?;
            start = end;
        }
        Ok(())
    }

    /// Writes `data` at `path` on every domain of `targets`, concurrently; the first
    /// failure (after all calls ended).
    pub(crate) async fn put_all(
        &self,
        targets: &[usize],
        path: &str,
        data: &Bytes,
    ) -> Result<(), RedundancyError> {
        let results: Vec<Result<(), RedundancyError>> = stream::iter(targets.iter().copied())
            .map(|d| async move {
                self.domains[d]
                    .write_atomic(path, data.clone())
                    .await
                    .map_err(|source| self.write_error(d, path, source))
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Deletes `(domain, path)` pairs, logging failures (what is left, `settle` removes).
    /// Returns the pairs deleted.
    pub(crate) async fn delete_quietly(&self, paths: Vec<(usize, String)>) -> Vec<(usize, String)> {
        let results: Vec<Option<(usize, String)>> = stream::iter(paths)
            .map(|(d, path)| async move {
                match self.domains[d].delete(&path).await {
                    Ok(()) => Some((d, path)),
                    Err(e) => {
                        tracing::warn!(domain = d, store = %self.store_name(d), path = %path, "could not remove a stale piece: {e}; the next scrub removes it");
                        None
                    }
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        results.into_iter().flatten().collect()
    }
}
