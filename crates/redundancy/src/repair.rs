//! Writing an encoding, checking every piece, repairing, re-encoding and settling what a
//! crash left. The order of steps is what makes them crash-safe: new pieces are written
//! (each published atomically) and verified before any piece of the old encoding is
//! removed, and `settle` removes whatever a crash left that belongs to no complete encoding.

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use strata_codec::format::fragment::FragmentHeader;
use strata_codec::format::replica_sums::ReplicaSums;
use strata_mover::pipeline::{self, SpanSink};

use crate::domains::{
    frag_path, sums_path, Found, Inventory, Layout, RedundancyCounters, RedundantStore, PARALLEL,
};
use crate::error::{DomainFault, FaultKind, RedundancyError};
use crate::health::{Health, PieceHealth, PieceState, RepairOutcome, SettleOutcome};
use crate::spec::Redundancy;
use crate::stream::{Code, PieceWriter, Summary};
use crate::upload::LayoutReader;

/// Why a repair's copy stopped early.
enum RewriteStop {
    /// The good pieces could not be read.
    Read(RedundancyError),
    /// A write failed in a way that ends the repair, or the bytes are not the object.
    Write(RedundancyError),
    /// Every piece being rewritten has failed: nothing is left to write to.
    AllFailed,
}

/// A repair's sink: the writer of the pieces being rewritten, which goes on while any of
/// them still takes bytes (a piece that fails is reported, the others are still written).
struct Rewriting<'w>(&'w mut PieceWriter);

impl SpanSink for Rewriting<'_> {
    type Error = RewriteStop;

    async fn write(&mut self, span: Bytes) -> Result<(), RewriteStop> {
        if self.0.all_failed() {
            return Err(RewriteStop::AllFailed);
        }
        self.0.write(span).await.map_err(RewriteStop::Write)
    }
}

/// Which pieces of an object to keep when removing the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Replica files and records on these domains.
    Replicas(Vec<usize>),
    /// Fragments in this slot.
    Erasure(usize),
    /// Plain files without records.
    Legacy,
}

/// An encoding just written.
pub(crate) struct Written {
    pub keep: Keep,
    pub raw_bytes: u64,
}

impl RedundantStore {
    /// Removes every piece `inventory` found that `keep` does not cover; returns them.
    pub(crate) async fn remove_others(
        &self,
        inventory: &Inventory,
        keep: &Keep,
    ) -> Vec<(usize, String)> {
        let removed = self.delete_quietly(stale_pieces(inventory, keep)).await;
        RedundancyCounters::add(&self.counters.pieces_settled, removed.len() as u64);
        removed
    }

    /// Reads EVERY replica or fragment of `rel` in full and says, per piece, whether it
    /// is good, missing, damaged or unreachable.
    pub async fn check(&self, rel: &str) -> Result<Health, RedundancyError> {
        self.check_rel(rel)?;
        let inventory = self.inventory(rel).await;
        let layouts = inventory.layouts();
        match layouts.iter().find(|l| l.readable()).or(layouts.first()) {
            Some(layout) => Ok(self.check_layout(&inventory, layout).await),
            None if inventory.is_empty() => Err(RedundancyError::Missing {
                rel: rel.to_string(),
            }),
            None => Err(self.nothing_readable(&inventory)),
        }
    }

    fn nothing_readable(&self, inventory: &Inventory) -> RedundancyError {
        let rel = &inventory.rel;
        let mut faults = Vec::new();
        for d in 0..self.domains.len() {
            let probe = &inventory.domains[d];
            let mut add = |found_fault: crate::error::DomainFault| {
                if found_fault.kind != FaultKind::Missing {
                    faults.push(found_fault);
                }
            };
            add(probe.sums.fault(self, d, &sums_path(rel)));
            for slot in 0..2 {
                add(probe.frags[slot].fault(self, d, &frag_path(slot, rel)));
            }
        }
        RedundancyError::Unrepairable {
            rel: rel.clone(),
            encoding: Redundancy::None,
            good: 0,
            needed: 1,
            faults,
        }
    }

    /// A full check of the pieces of one encoding.
    pub(crate) async fn check_layout(&self, inventory: &Inventory, layout: &Layout) -> Health {
        let rel = &inventory.rel;
        let pieces: Vec<(usize, String, Option<usize>)> = match layout {
            Layout::Replicas {
                encoding, holders, ..
            } => {
                let mut domains: Vec<usize> = inventory.order
                    [..encoding.domains_needed().min(inventory.order.len())]
                    .to_vec();
                domains.extend(
                    holders
                        .iter()
                        .filter(|d| !domains.contains(d))
                        .collect::<Vec<_>>(),
                );
                domains
                    .into_iter()
                    .map(|d| (d, rel.clone(), None))
                    .collect()
            }
            Layout::Erasure {
                slot,
                header,
                holders,
            } => fragment_homes(inventory, *header, holders)
                .into_iter()
                .enumerate()
                .map(|(i, d)| (d, frag_path(*slot, rel), Some(i)))
                .collect(),
            Layout::Legacy { holders, .. } => {
                holders.iter().map(|&d| (d, rel.clone(), None)).collect()
            }
        };
        let reference = match layout {
            Layout::Replicas { holders, .. } => holders
                .first()
                .and_then(|&d| inventory.domains[d].sums.present().cloned()),
            _ => None,
        };
        let states: Vec<PieceState> = stream::iter(pieces.iter().cloned())
            .map(|(d, path, index)| {
                let reference = reference.clone();
                async move {
                    match (layout, index, reference) {
                        (Layout::Legacy { .. }, _, _) => PieceState::Unverified,
                        (Layout::Replicas { .. }, _, Some(reference)) => {
                            self.check_replica(inventory, d, &reference).await
                        }
                        (
                            Layout::Erasure {
                                slot,
                                header,
                                holders,
                            },
                            Some(i),
                            _,
                        ) => {
                            if holders.contains(&(d, i as u8)) {
                                let h = FragmentHeader {
                                    index: i as u8,
                                    ..*header
                                };
                                self.check_fragment(d, &path, h).await
                            } else {
                                match &inventory.domains[d].frags[*slot] {
                                    Found::Unreachable(why) => PieceState::Unreachable(why.clone()),
                                    Found::Damaged(why) => PieceState::Damaged(why.clone()),
                                    Found::Present(_) => {
                                        PieceState::Damaged("a fragment of another write".into())
                                    }
                                    Found::Absent => PieceState::Missing,
                                }
                            }
                        }
                        _ => PieceState::Missing,
                    }
                }
            })
            .buffered(PARALLEL)
            .collect()
            .await;
        Health {
            rel: rel.clone(),
            encoding: layout.encoding(),
            len: layout.len(),
            pieces: pieces
                .into_iter()
                .zip(states)
                .map(|((domain, path, index), state)| PieceHealth {
                    domain,
                    store: self.store_name(domain),
                    path,
                    index,
                    state,
                })
                .collect(),
        }
    }

    /// Rewrites missing and damaged replicas or fragments from the good ones (the bytes
    /// are verified before they are written, and each rewritten piece is read back and
    /// verified). `Err(Unrepairable)` when fewer pieces are good than a read needs.
    ///
    /// The good pieces stream through the chunk pipeline into the new ones, hashed whole
    /// on the way; with `expected` (the object's BLAKE3 as the caller records it), bytes
    /// that hash otherwise are [`RedundancyError::NotTheObject`] and nothing is rewritten:
    /// that is what catches a plain (legacy) replica that differs from the object, which
    /// has no record of its own to be checked against.
    pub async fn repair(
        &self,
        rel: &str,
        expected: Option<&[u8; 32]>,
    ) -> Result<RepairOutcome, RedundancyError> {
        self.check_rel(rel)?;
        let _guard = self.locks.lock(rel).await;
        let inventory = self.inventory(rel).await;
        let layouts = inventory.layouts();
        let Some(layout) = layouts.iter().find(|l| l.readable()).or(layouts.first()) else {
            return Err(if inventory.is_empty() {
                RedundancyError::Missing {
                    rel: rel.to_string(),
                }
            } else {
                self.nothing_readable(&inventory)
            });
        };
        let health = self.check_layout(&inventory, layout).await;
        let faults = health.faults();
        let damaged = faults
            .iter()
            .filter(|f| f.kind == FaultKind::Damaged)
            .count();
        RedundancyCounters::add(&self.counters.fragments_damaged_found, damaged as u64);
        if faults.is_empty() {
            return Ok(RepairOutcome::default());
        }
        let unrepairable = |faults| RedundancyError::Unrepairable {
            rel: rel.to_string(),
            encoding: health.encoding,
            good: health.good(),
            needed: health.needed(),
            faults,
        };
        if !health.is_readable() {
            return Err(unrepairable(faults));
        }
        let mut outcome = self
            .rewrite_pieces(&inventory, layout, &health, faults, expected)
            .await?;
        RedundancyCounters::add(
            &self.counters.fragments_repaired,
            outcome.repaired.len() as u64,
        );
        outcome.not_repaired.sort_by_key(|f| f.domain);
        Ok(outcome)
    }

    /// Streams the object from `layout` (verified) into new copies of the `faults`'
    /// pieces, each on its own domain, publishes them and reads each back to verify it.
    async fn rewrite_pieces(
        &self,
        inventory: &Inventory,
        layout: &Layout,
        health: &Health,
        faults: Vec<DomainFault>,
        expected: Option<&[u8; 32]>,
    ) -> Result<RepairOutcome, RedundancyError> {
        let rel = &inventory.rel;
        let (path, code) = match layout {
            Layout::Erasure { slot, header, .. } => (
                frag_path(*slot, rel),
                Code::new(Some((header.k as usize, header.m as usize)), 0, header.len),
            ),
            _ => (
                rel.clone(),
                Code::new(None, layout.encoding().record_copies(), layout.len()),
            ),
        };
        let code = code.map_err(|detail| other(rel, detail))?;
        let mut outcome = RepairOutcome::default();
        let (faults, others): (Vec<DomainFault>, Vec<DomainFault>) =
            faults.into_iter().partition(|f| f.rel == path);
        outcome.not_repaired.extend(others);
        let pieces: Vec<(usize, usize)> = faults
            .iter()
            .map(|f| (f.domain, f.rel_index(health)))
            .collect();
        let mut writer =
            PieceWriter::begin(self, rel, &path, layout.len(), code, &pieces, true).await?;
        let reader = LayoutReader::new(self, inventory, layout);
        let spans = reader.spans().map(|span| span.map_err(RewriteStop::Read));
        let copied =
            pipeline::pump(spans, blake3::Hasher::new(), &mut Rewriting(&mut writer)).await;
        let stop = match copied {
            Ok(hasher) => expected
                .and_then(|expected| not_the_object(rel, layout, &hasher, expected))
                .map(RewriteStop::Write),
            Err(stop) => Some(stop),
        };
        let error = match stop {
            None | Some(RewriteStop::AllFailed) => None,
            Some(RewriteStop::Write(e)) => Some(e),
            Some(RewriteStop::Read(e)) => Some(RedundancyError::Unrepairable {
                rel: rel.clone(),
                encoding: health.encoding,
                good: health.good(),
                needed: health.needed(),
                faults: e.faults().to_vec(),
            }),
        };
        if let Some(error) = error {
            writer.abort().await;
            return Err(error);
        }
        let results = if writer.all_failed() {
            let failures = writer.targets.iter_mut().map(|t| t.failed.take());
            let failures: Vec<_> = failures.collect();
            writer.abort().await;
            failures
                .into_iter()
                .map(|f| Err(f.unwrap_or_else(|| other(rel, "not written".into()))))
                .collect()
        } else {
            writer.finish().await?
        };
        for ((fault, (_, index)), result) in faults.into_iter().zip(pieces).zip(results) {
            let verified = match result {
                Ok(summary) => self.verify_piece(rel, layout, &fault, index, summary).await,
                Err(e) => Err(e.to_string()),
            };
            match verified {
                Ok(()) => outcome.repaired.push(fault),
                Err(detail) => outcome.not_repaired.push(DomainFault { detail, ..fault }),
            }
        }
        Ok(outcome)
    }

    /// Reads a rewritten piece back and checks it against what was written: a replica
    /// (after its integrity record is written) chunk by chunk against the record, a
    /// fragment's header, table and every shard.
    async fn verify_piece(
        &self,
        rel: &str,
        layout: &Layout,
        fault: &DomainFault,
        index: usize,
        summary: Summary,
    ) -> Result<(), String> {
        let store = &self.domains[fault.domain];
        match (layout, summary) {
            (Layout::Erasure { header, .. }, Summary::Tail(tail)) => {
                let h = FragmentHeader {
                    index: index as u8,
                    ..*header
                };
                match self.check_fragment_bytes(fault.domain, &fault.rel, h).await {
                    Ok(Ok(back)) if back == tail => Ok(()),
                    Ok(Ok(_)) => {
                        Err("the fragment's table read back differs from what was written".into())
                    }
                    Ok(Err(why)) => Err(why),
                    Err(f) => Err(f.to_string()),
                }
            }
            (_, Summary::Record(record)) => {
                let sums = ReplicaSums::decode(&record).map_err(|e| e.to_string())?;
                if matches!(layout, Layout::Replicas { .. }) {
                    store
                        .write_atomic(&sums_path(rel), record.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                    let back = store
                        .read_all(&sums_path(rel))
                        .await
                        .map_err(|e| e.to_string())?;
                    if back != record {
                        return Err(
                            "the integrity record read back differs from what was written".into(),
                        );
                    }
                }
                self.verify_replica(fault.domain, &fault.rel, &sums)
                    .await
                    .map_err(|f| f.to_string())
            }
            _ => Err("the piece written is not of the object's encoding".into()),
        }
    }

    /// Re-encodes `rel` to `to`: the new encoding is written and verified in full BEFORE
    /// the old one is removed, so a domain lost midway never leaves fewer good pieces than
    /// the policy needs. A no-op when the object is already `to` (and nothing else).
    ///
    /// The object streams through the chunk pipeline ([`strata_mover::pipeline::pump`]):
    /// read from the old encoding (every window verified against its pieces' records) and
    /// hashed whole while the new encoding is written. With `expected` (the object's
    /// BLAKE3 as the caller records it), bytes that hash otherwise are
    /// [`RedundancyError::NotTheObject`] and the new encoding is dropped before it could
    /// replace the old one.
    pub async fn reencode(
        &self,
        rel: &str,
        to: Redundancy,
        expected: Option<&[u8; 32]>,
    ) -> Result<(), RedundancyError> {
        self.check_rel(rel)?;
        self.check_domains(rel, to)?;
        let guard = self.locks.lock(rel).await;
        let before = self.inventory(rel).await;
        let layouts = before.layouts();
        if layouts.len() == 1
            && layouts[0].encoding() == to
            && !matches!(layouts[0], Layout::Legacy { .. })
        {
            return Ok(());
        }
        let Some(layout) = layouts.iter().find(|l| l.readable()) else {
            return Err(if before.is_empty() {
                RedundancyError::Missing {
                    rel: rel.to_string(),
                }
            } else {
                self.unreadable(&before, &layouts)
            });
        };
        let mut upload = self
            .begin_encoding(before.clone(), to, layout.len(), guard)
            .await?;
        let reader = LayoutReader::new(self, &before, layout);
        let copied = pipeline::pump(reader.spans(), blake3::Hasher::new(), &mut upload).await;
        let mismatch = match (&copied, expected) {
            (Ok(hasher), Some(expected)) => not_the_object(rel, layout, hasher, expected),
            _ => None,
        };
        if let Some(error) = copied.err().or(mismatch) {
            upload.abort().await;
            return Err(error);
        }
        // `upload` keeps the object's lock until the new encoding is verified.
        let written = upload.publish().await?;
        let after = self.inventory(rel).await;
        let new = after
            .layouts()
            .into_iter()
            .find(|l| match (&written.keep, l) {
                (Keep::Erasure(slot), Layout::Erasure { slot: s, .. }) => slot == s,
                (Keep::Replicas(_), Layout::Replicas { .. }) => true,
                _ => false,
            });
        let health = match &new {
            Some(layout) => Some(self.check_layout(&after, layout).await),
            None => None,
        };
        if !health
            .as_ref()
            .is_some_and(|h| h.is_healthy() && h.encoding == to)
        {
            if let Keep::Erasure(slot) = written.keep {
                let path = frag_path(slot, rel);
                self.delete_quietly((0..self.domains.len()).map(|d| (d, path.clone())).collect())
                    .await;
            }
            return Err(RedundancyError::NotVerified {
                rel: rel.to_string(),
                encoding: to,
                faults: health.map(|h| h.faults()).unwrap_or_default(),
            });
        }
        self.remove_others(&before, &written.keep).await;
        RedundancyCounters::add(&self.counters.reencodes_done, 1);
        Ok(())
    }

    /// After a crash: when two encodings of `rel` exist, keeps a complete, healthy one (the
    /// one equal to `wanted` if it is complete) and removes the other; removes partial
    /// pieces and integrity records that belong to no complete encoding. When nothing
    /// readable is found, removes nothing. Returns what it removed.
    pub async fn settle(
        &self,
        rel: &str,
        wanted: Redundancy,
    ) -> Result<SettleOutcome, RedundancyError> {
        self.check_rel(rel)?;
        let _guard = self.locks.lock(rel).await;
        let inventory = self.inventory(rel).await;
        let layouts = inventory.layouts();
        if let [only] = layouts.as_slice() {
            if only.all_found() && stale_pieces(&inventory, &keep_of(&inventory, only)).is_empty() {
                return Ok(SettleOutcome {
                    kept: Some(only.encoding()),
                    removed: Vec::new(),
                });
            }
        }
        let mut healths = Vec::with_capacity(layouts.len());
        for layout in &layouts {
            healths.push(self.check_layout(&inventory, layout).await);
        }
        let pick = (0..layouts.len())
            .find(|&i| healths[i].encoding == wanted && healths[i].is_healthy())
            .or_else(|| (0..layouts.len()).find(|&i| healths[i].is_healthy()))
            .or_else(|| {
                (0..layouts.len())
                    .filter(|&i| healths[i].is_readable())
                    .max_by_key(|&i| healths[i].good() - healths[i].needed())
            });
        let Some(pick) = pick else {
            return Ok(SettleOutcome::default());
        };
        let keep = keep_of(&inventory, &layouts[pick]);
        let removed = self.remove_others(&inventory, &keep).await;
        Ok(SettleOutcome {
            kept: Some(layouts[pick].encoding()),
            removed,
        })
    }
}

impl crate::error::DomainFault {
    /// The index of the piece this fault is about in `health` (fragment index, 0 for
    /// replicas).
    fn rel_index(&self, health: &Health) -> usize {
        health
            .pieces
            .iter()
            .find(|p| p.domain == self.domain && p.path == self.rel)
            .and_then(|p| p.index)
            .unwrap_or(0)
    }
}

/// [`RedundancyError::NotTheObject`] when the bytes `hasher` was fed are not `expected`.
fn not_the_object(
    rel: &str,
    layout: &Layout,
    hasher: &blake3::Hasher,
    expected: &[u8; 32],
) -> Option<RedundancyError> {
    let got = hasher.finalize();
    (got.as_bytes() != expected).then(|| RedundancyError::NotTheObject {
        rel: rel.to_string(),
        encoding: layout.encoding(),
        expected: blake3::Hash::from_bytes(*expected).to_hex().to_string(),
        got: got.to_hex().to_string(),
    })
}

fn other(rel: &str, detail: String) -> RedundancyError {
    RedundancyError::Other {
        rel: rel.to_string(),
        detail,
    }
}

/// The slot a new `ec:K+M` encoding goes to: an unused one, else the one with fewer
/// fragments (whose pieces are returned, to be removed first).
pub(crate) fn choose_slot(before: &Inventory) -> (usize, Vec<(usize, String)>) {
    let used = |slot: usize| {
        before
            .domains
            .iter()
            .filter(|p| p.frags[slot].exists())
            .count()
    };
    let slot = match (used(0), used(1)) {
        (0, _) => return (0, Vec::new()),
        (_, 0) => return (1, Vec::new()),
        (a, b) if a <= b => 0,
        _ => 1,
    };
    let path = frag_path(slot, &before.rel);
    let stale = (0..before.domains.len())
        .filter(|&d| before.domains[d].frags[slot].exists())
        .map(|d| (d, path.clone()))
        .collect();
    (slot, stale)
}

/// Where each fragment index of an encoding lives (or should): where it was found, else
/// its placement domain if that holds no other fragment, else a free domain.
fn fragment_homes(
    inventory: &Inventory,
    header: FragmentHeader,
    holders: &[(usize, u8)],
) -> Vec<usize> {
    let total = (header.k + header.m) as usize;
    let mut homes: Vec<Option<usize>> = (0..total)
        .map(|i| holders.iter().find(|h| h.1 as usize == i).map(|h| h.0))
        .collect();
    for i in 0..total {
        if homes[i].is_some() {
            continue;
        }
        let taken = |d: usize, homes: &[Option<usize>]| homes.contains(&Some(d));
        let home = inventory
            .order
            .get(i)
            .copied()
            .filter(|&d| !taken(d, &homes))
            .or_else(|| inventory.order.iter().copied().find(|&d| !taken(d, &homes)))
            .or_else(|| inventory.order.get(i).copied());
        homes[i] = home;
    }
    homes.into_iter().flatten().collect()
}

/// What settling on `layout` keeps: replicas on their placement domains and wherever a
/// good one was found, or the fragments' slot, or legacy files.
fn keep_of(inventory: &Inventory, layout: &Layout) -> Keep {
    match layout {
        Layout::Replicas {
            encoding, holders, ..
        } => {
            let mut domains: Vec<usize> =
                inventory.order[..encoding.domains_needed().min(inventory.order.len())].to_vec();
            domains.extend(
                holders
                    .iter()
                    .filter(|d| !domains.contains(d))
                    .collect::<Vec<_>>(),
            );
            Keep::Replicas(domains)
        }
        Layout::Erasure { slot, .. } => Keep::Erasure(*slot),
        Layout::Legacy { .. } => Keep::Legacy,
    }
}

/// Every piece `inventory` found (present or damaged) that `keep` does not cover.
fn stale_pieces(inventory: &Inventory, keep: &Keep) -> Vec<(usize, String)> {
    let rel = &inventory.rel;
    let mut out = Vec::new();
    for (d, probe) in inventory.domains.iter().enumerate() {
        let replica_kept = matches!(keep, Keep::Replicas(domains) if domains.contains(&d));
        if probe.file.exists() && !(replica_kept || *keep == Keep::Legacy) {
            out.push((d, rel.clone()));
        }
        if probe.sums.exists() && !replica_kept {
            out.push((d, sums_path(rel)));
        }
        for slot in 0..2 {
            if probe.frags[slot].exists() && *keep != Keep::Erasure(slot) {
                out.push((d, frag_path(slot, rel)));
            }
        }
    }
    out
}
