//! [`RedundantStore`]: one object's bytes over a tier's failure domains. This file holds
//! the type, what it finds on the domains ([`Inventory`]), and the calls that dispatch to
//! replicas ([`crate::replicas`]) or fragments ([`crate::erasure`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{self, FuturesUnordered, StreamExt};
use strata_codec::format::fragment::{FragmentHeader, FRAGMENT_HEADER_LEN};
use strata_codec::format::replica_sums::ReplicaSums;
use strata_store::{Store, StoreError};

use crate::erasure::{HEDGE_FACTOR, HEDGE_FLOOR};
use crate::error::{DomainFault, FaultKind, RedundancyError};
use crate::placement::{placement, Latencies};
use crate::spec::Redundancy;
use crate::stream::RelLocks;

/// Most domain calls in flight at once for one operation.
pub(crate) const PARALLEL: usize = 16;

/// The path of a replica's integrity record on its domain.
pub(crate) fn sums_path(rel: &str) -> String {
    format!("{}/replicas/{rel}", strata_store::METADATA_DIR)
}

/// The path of a fragment in slot `slot` (0 or 1: a re-encode from one `ec:K+M` to another
/// writes the other slot, so the old fragments stay whole until the new ones verify).
pub(crate) fn frag_path(slot: usize, rel: &str) -> String {
    format!("ec/{slot}/{rel}")
}

/// Counters of what the redundancy layer did, for metrics.
#[derive(Debug, Default)]
pub struct RedundancyCounters {
    /// Reads served with at least one missing, damaged or unreachable piece.
    pub degraded_reads: AtomicU64,
    /// Reads that failed: more pieces lost than the encoding tolerates.
    pub failed_reads: AtomicU64,
    /// Replicas and fragments rewritten by repair.
    pub fragments_repaired: AtomicU64,
    /// Replicas and fragments found damaged (by reads and checks).
    pub fragments_damaged_found: AtomicU64,
    /// Re-encodes completed.
    pub reencodes_done: AtomicU64,
    /// Extra fragment reads started because one was slow (hedged reads).
    pub hedged_reads: AtomicU64,
    /// Pieces removed by `settle`.
    pub pieces_settled: AtomicU64,
}

impl RedundancyCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A tier's failure domains: one Store each, in configuration order.
#[derive(Clone, Debug)]
pub struct RedundantStore {
    pub(crate) domains: Arc<Vec<Store>>,
    pub(crate) latencies: Arc<Latencies>,
    pub(crate) counters: Arc<RedundancyCounters>,
    /// Objects being written by a streaming writer of this store.
    pub(crate) locks: Arc<RelLocks>,
}

/// An object's length and encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStat {
    /// Logical length in bytes.
    pub len: u64,
    /// How it is kept.
    pub encoding: Redundancy,
    /// Raw bytes over all domains (pieces found and their integrity records).
    pub raw_bytes: u64,
    /// A plain file without an integrity record (written before tiers had redundancy):
    /// served as is, unverified, until a re-encode gives it one.
    pub legacy: bool,
}

/// Bytes read, verified.
#[derive(Clone, Debug)]
pub struct Read {
    /// The bytes asked for (clamped to the object's end).
    pub bytes: Bytes,
    /// The encoding they were read from.
    pub encoding: Redundancy,
    /// Pieces found missing, damaged or unreachable on the way: schedule a repair.
    pub faults: Vec<DomainFault>,
}

/// What was on one domain for one piece kind.
#[derive(Clone, Debug)]
pub(crate) enum Found<T> {
    Absent,
    Present(T),
    Damaged(String),
    Unreachable(String),
}

impl<T> Found<T> {
    pub(crate) fn present(&self) -> Option<&T> {
        match self {
            Found::Present(t) => Some(t),
            _ => None,
        }
    }

    /// Whether something (good or not) is stored there.
    pub(crate) fn exists(&self) -> bool {
        matches!(self, Found::Present(_) | Found::Damaged(_))
    }

    pub(crate) fn fault(&self, rs: &RedundantStore, domain: usize, rel: &str) -> DomainFault {
        let (kind, detail) = match self {
            Found::Absent => (FaultKind::Missing, String::new()),
            Found::Present(_) => (FaultKind::Damaged, "does not belong to the object".into()),
            Found::Damaged(d) => (FaultKind::Damaged, d.clone()),
            Found::Unreachable(d) => (FaultKind::Unreachable, d.clone()),
        };
        DomainFault {
            domain,
            store: rs.store_name(domain),
            rel: rel.to_string(),
            kind,
            detail,
        }
    }
}

fn found_of<T, U>(result: Result<T, StoreError>, decode: impl FnOnce(T) -> Found<U>) -> Found<U> {
    match result {
        Ok(t) => decode(t),
        Err(StoreError::NotFound { .. }) => Found::Absent,
        Err(e @ StoreError::Damaged { .. }) | Err(e @ StoreError::Io { .. }) => {
            Found::Damaged(e.to_string())
        }
        Err(e) => Found::Unreachable(e.to_string()),
    }
}

/// What one domain holds of an object.
#[derive(Clone, Debug)]
pub(crate) struct DomainProbe {
    /// The replica integrity record.
    pub sums: Found<ReplicaSums>,
    /// The replica (plain file) and its size.
    pub file: Found<u64>,
    /// The fragment header in each slot.
    pub frags: [Found<FragmentHeader>; 2],
    /// The domain did not answer in time for a read (see
    /// [`RedundantStore::inventory_for_read`]): not used, not reported as a fault.
    pub slow: bool,
}

impl DomainProbe {
    fn slow(waited: Duration) -> DomainProbe {
        let why = format!("no answer within {} ms", waited.as_millis());
        DomainProbe {
            sums: Found::Unreachable(why.clone()),
            file: Found::Unreachable(why.clone()),
            frags: [Found::Unreachable(why.clone()), Found::Unreachable(why)],
            slow: true,
        }
    }
}

/// One encoding of an object as found on the domains.
#[derive(Clone, Debug)]
pub(crate) enum Layout {
    /// Replicas with integrity records on `holders`.
    Replicas {
        encoding: Redundancy,
        len: u64,
        holders: Vec<usize>,
    },
    /// Fragments in `slot`: `holders` are (domain, fragment index), one per index.
    Erasure {
        slot: usize,
        header: FragmentHeader,
        holders: Vec<(usize, u8)>,
    },
    /// Plain files without any integrity record.
    Legacy { len: u64, holders: Vec<usize> },
}

impl Layout {
    pub(crate) fn encoding(&self) -> Redundancy {
        match self {
            Layout::Replicas { encoding, .. } => *encoding,
            Layout::Erasure { header, .. } => Redundancy::Erasure {
                data: header.k as usize,
                parity: header.m as usize,
            },
            Layout::Legacy { .. } => Redundancy::None,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Layout::Replicas { len, .. } | Layout::Legacy { len, .. } => *len,
            Layout::Erasure { header, .. } => header.len,
        }
    }

    /// Whether enough pieces were found for a read to be worth trying.
    pub(crate) fn readable(&self) -> bool {
        match self {
            Layout::Replicas { holders, .. } | Layout::Legacy { holders, .. } => {
                !holders.is_empty()
            }
            Layout::Erasure {
                header, holders, ..
            } => holders.len() >= header.k as usize,
        }
    }

    /// Whether every piece the encoding has was found.
    pub(crate) fn all_found(&self) -> bool {
        match self {
            Layout::Replicas {
                encoding, holders, ..
            } => holders.len() >= encoding.domains_needed(),
            Layout::Erasure {
                header, holders, ..
            } => holders.len() == (header.k + header.m) as usize,
            Layout::Legacy { .. } => true,
        }
    }
}

/// Everything the domains hold of one object, looked at concurrently.
#[derive(Clone, Debug)]
pub(crate) struct Inventory {
    pub rel: String,
    /// The domains in rendezvous order for `rel`.
    pub order: Vec<usize>,
    pub domains: Vec<DomainProbe>,
}

impl Inventory {
    /// Every encoding found, the likeliest current one first: replicas, then fragments
    /// (more holders first), then plain files without records.
    pub(crate) fn layouts(&self) -> Vec<Layout> {
        let mut out = Vec::new();
        let sums: Vec<(usize, &ReplicaSums)> = self
            .order
            .iter()
            .filter_map(|&d| self.domains[d].sums.present().map(|s| (d, s)))
            .collect();
        if let Some(&(_, first)) = sums.first() {
            let holders = sums
                .iter()
                .filter(|(_, s)| s.len == first.len && s.hashes == first.hashes)
                .map(|&(d, _)| d)
                .collect();
            out.push(Layout::Replicas {
                encoding: Redundancy::from_record_copies(first.copies),
                len: first.len,
                holders,
            });
        }
        let mut ec: Vec<Layout> = (0..2).filter_map(|slot| self.erasure(slot)).collect();
        ec.sort_by_key(|l| match l {
            Layout::Erasure { holders, .. } => std::cmp::Reverse(holders.len()),
            _ => std::cmp::Reverse(0),
        });
        out.extend(ec);
        if sums.is_empty() {
            let files: Vec<(usize, u64)> = self
                .order
                .iter()
                .filter_map(|&d| self.domains[d].file.present().map(|&s| (d, s)))
                .collect();
            if let Some(&(_, len)) = files.first() {
                let holders = files.iter().filter(|f| f.1 == len).map(|f| f.0).collect();
                out.push(Layout::Legacy { len, holders });
            }
        }
        out
    }

    fn erasure(&self, slot: usize) -> Option<Layout> {
        let headers: Vec<(usize, &FragmentHeader)> = self
            .order
            .iter()
            .filter_map(|&d| self.domains[d].frags[slot].present().map(|h| (d, h)))
            .collect();
        // The header most fragments agree on (a crash may leave a few of another write).
        let header = headers
            .iter()
            .max_by_key(|(_, h)| headers.iter().filter(|(_, o)| h.same_object(o)).count())
            .map(|&(_, h)| *h)?;
        // One holder per index; when two domains claim one (a damaged index byte), the
        // index's placement domain wins.
        let mut holders: Vec<(usize, u8)> = Vec::new();
        for i in 0..header.k + header.m {
            let claims: Vec<usize> = headers
                .iter()
                .filter(|(_, h)| h.index == i && header.same_object(h))
                .map(|&(d, _)| d)
                .collect();
            let home = self.order.get(i as usize).filter(|d| claims.contains(d));
            if let Some(&d) = home.or(claims.first()) {
                holders.push((d, i));
            }
        }
        Some(Layout::Erasure {
            slot,
            header,
            holders,
        })
    }

    /// Whether nothing of the object is anywhere (unreachable domains aside).
    pub(crate) fn is_empty(&self) -> bool {
        self.domains
            .iter()
            .all(|p| !p.sums.exists() && !p.file.exists() && !p.frags.iter().any(Found::exists))
    }
}

impl RedundantStore {
    /// A redundant store over `domains` (at least one; the caller checks the count
    /// against the redundancy it configures).
    pub fn new(domains: Vec<Store>) -> RedundantStore {
        let n = domains.len();
        RedundantStore {
            domains: Arc::new(domains),
            latencies: Arc::new(Latencies::new(n)),
            counters: Arc::new(RedundancyCounters::default()),
            locks: Arc::new(RelLocks::default()),
        }
    }

    /// The domains, in configuration order.
    pub fn domains(&self) -> &[Store] {
        &self.domains
    }

    /// What this store did so far.
    pub fn counters(&self) -> &RedundancyCounters {
        &self.counters
    }

    pub(crate) fn store_name(&self, domain: usize) -> String {
        self.domains
            .get(domain)
            .map_or_else(String::new, Store::display)
    }

    /// A failed write, delete or publish of `rel` on `domain`, named for the operator.
    pub(crate) fn write_error(
        &self,
        domain: usize,
        rel: impl Into<String>,
        source: StoreError,
    ) -> RedundancyError {
        RedundancyError::Write {
            rel: rel.into(),
            domain,
            store: self.store_name(domain),
            source,
        }
    }

    pub(crate) fn check_rel(&self, rel: &str) -> Result<(), RedundancyError> {
        let bad = |reason: &str| {
            Err(RedundancyError::InvalidRel {
                rel: rel.to_string(),
                reason: reason.to_string(),
            })
        };
        if rel.is_empty()
            || rel.starts_with('/')
            || rel
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return bad(
                "it must be a relative '/'-separated path without empty, '.' or '..' segments",
            );
        }
        let first = rel.split('/').next().unwrap_or_default();
        if first == "ec" || first == strata_store::METADATA_DIR {
            return bad("`ec/` and `.strata/` hold fragments and integrity records; store objects under another prefix (e.g. objects/)");
        }
        Ok(())
    }

    pub(crate) fn check_domains(&self, rel: &str, r: Redundancy) -> Result<(), RedundancyError> {
        if r.domains_needed() > self.domains.len() {
            return Err(RedundancyError::NotEnoughDomains {
                rel: rel.to_string(),
                redundancy: r,
                needed: r.domains_needed(),
                have: self.domains.len(),
            });
        }
        Ok(())
    }

    /// The domains in rendezvous order for `rel`.
    pub(crate) fn order(&self, rel: &str) -> Vec<usize> {
        placement(&self.domains, rel)
    }

    async fn probe_domain(&self, domain: usize, rel: &str) -> DomainProbe {
        let store = &self.domains[domain];
        let sums_rel = sums_path(rel);
        let sums = async {
            found_of(
                store.read_all(&sums_rel).await,
                |bytes| match ReplicaSums::decode(&bytes) {
                    Ok(s) => Found::Present(s),
                    Err(e) => Found::Damaged(e.to_string()),
                },
            )
        };
        let file = async {
            match store.stat(rel).await {
                Ok(Some(entry)) => Found::Present(entry.size),
                Ok(None) => Found::Absent,
                Err(e) => found_of(Err(e), Found::Present),
            }
        };
        let frag = |slot: usize| {
            let path = frag_path(slot, rel);
            async move {
                found_of(
                    store.read_range(&path, 0, FRAGMENT_HEADER_LEN).await,
                    |bytes| match FragmentHeader::decode(&bytes) {
                        Ok(h) => Found::Present(h),
                        Err(e) => Found::Damaged(e.to_string()),
                    },
                )
            }
        };
        let (sums, file, f0, f1) = futures::join!(sums, file, frag(0), frag(1));
        DomainProbe {
            sums,
            file,
            frags: [f0, f1],
            slow: false,
        }
    }

    /// Looks at every domain for `rel`'s pieces, concurrently.
    pub(crate) async fn inventory(&self, rel: &str) -> Inventory {
        let domains = stream::iter(0..self.domains.len())
            .map(|d| self.probe_domain(d, rel))
            .buffered(PARALLEL)
            .collect()
            .await;
        Inventory {
            rel: rel.to_string(),
            order: self.order(rel),
            domains,
        }
    }

    /// Looks at every domain for `rel`'s pieces like [`RedundantStore::inventory`], but
    /// does not wait for a slow domain: once more than half have answered, the others get
    /// 3× the median answer time (at least [`HEDGE_FLOOR`]), then count as slow. A read
    /// then serves from the domains that answered (a hedge at the first step of a read).
    pub(crate) async fn inventory_for_read(&self, rel: &str) -> Inventory {
        let n = self.domains.len();
        let mut pending: FuturesUnordered<_> = (0..n)
            .map(|d| async move {
                let began = Instant::now();
                let probe = self.probe_domain(d, rel).await;
                (d, probe, began.elapsed())
            })
            .collect();
        let mut probes: Vec<Option<DomainProbe>> = vec![None; n];
        let mut took: Vec<Duration> = Vec::with_capacity(n);
        loop {
            let next = if took.len() * 2 > n {
                let mut sorted = took.clone();
                sorted.sort();
                let wait = (sorted[sorted.len() / 2] * HEDGE_FACTOR).max(HEDGE_FLOOR);
                match tokio::time::timeout(wait, pending.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        for probe in probes.iter_mut().filter(|p| p.is_none()) {
                            *probe = Some(DomainProbe::slow(wait));
                        }
                        break;
                    }
                }
            } else {
                pending.next().await
            };
            let Some((d, probe, elapsed)) = next else {
                break;
            };
            probes[d] = Some(probe);
            took.push(elapsed);
        }
        Inventory {
            rel: rel.to_string(),
            order: self.order(rel),
            domains: probes
                .into_iter()
                .map(|p| p.unwrap_or_else(|| DomainProbe::slow(Duration::ZERO)))
                .collect(),
        }
    }

    /// Logical length and encoding of the object, or `None` when no domain has it.
    pub async fn stat(&self, rel: &str) -> Result<Option<ObjectStat>, RedundancyError> {
        self.check_rel(rel)?;
        let inventory = self.inventory(rel).await;
        let layouts = inventory.layouts();
        let Some(layout) = layouts.iter().find(|l| l.readable()) else {
            return Ok(None);
        };
        Ok(Some(self.stat_of(&inventory, layout)))
    }

    pub(crate) fn stat_of(&self, inventory: &Inventory, layout: &Layout) -> ObjectStat {
        let raw_bytes = match layout {
            Layout::Replicas { len, holders, .. } => holders
                .iter()
                .map(|&d| {
                    let record = inventory.domains[d]
                        .sums
                        .present()
                        .map_or(0, |s| s.encode().len() as u64);
                    len + record
                })
                .sum(),
            Layout::Erasure {
                header, holders, ..
            } => holders.len() as u64 * header.file_len(),
            Layout::Legacy { len, holders } => len * holders.len() as u64,
        };
        ObjectStat {
            len: layout.len(),
            encoding: layout.encoding(),
            raw_bytes,
            legacy: matches!(layout, Layout::Legacy { .. }),
        }
    }

    /// What a read starts from: [`RedundantStore::inventory_for_read`], or, when what
    /// answered in time is not enough to read from, every domain waited for.
    pub(crate) async fn inventory_to_read(&self, rel: &str) -> Inventory {
        let inventory = self.inventory_for_read(rel).await;
        let slow = inventory.domains.iter().any(|p| p.slow);
        if slow && !inventory.layouts().iter().any(Layout::readable) {
            return self.inventory(rel).await;
        }
        inventory
    }

    /// The error for an object whose pieces were found but none of its encodings can be
    /// read from what was found.
    pub(crate) fn unreadable(&self, inventory: &Inventory, layouts: &[Layout]) -> RedundancyError {
        let rel = &inventory.rel;
        let Some(layout) = layouts.first() else {
            let faults = (0..self.domains.len())
                .map(|d| inventory.domains[d].file.fault(self, d, rel))
                .filter(|f| f.kind != FaultKind::Missing)
                .collect();
            return RedundancyError::TooFewGood {
                rel: rel.clone(),
                encoding: Redundancy::None,
                good: 0,
                needed: 1,
                faults,
            };
        };
        let (good, faults) = self.probe_faults(inventory, layout);
        RedundancyError::TooFewGood {
            rel: rel.clone(),
            encoding: layout.encoding(),
            good,
            needed: layout.encoding().pieces_needed_to_read(),
            faults,
        }
    }

    /// The pieces of `layout` the inventory found good, and the faults of the others.
    pub(crate) fn probe_faults(
        &self,
        inventory: &Inventory,
        layout: &Layout,
    ) -> (usize, Vec<DomainFault>) {
        let rel = &inventory.rel;
        match layout {
            Layout::Replicas {
                encoding, holders, ..
            } => {
                let faults = inventory.order
                    [..encoding.domains_needed().min(inventory.order.len())]
                    .iter()
                    .filter(|&&d| !holders.contains(&d) && !inventory.domains[d].slow)
                    .map(|&d| inventory.domains[d].sums.fault(self, d, &sums_path(rel)))
                    .collect();
                (holders.len(), faults)
            }
            Layout::Erasure {
                slot,
                header,
                holders,
            } => {
                let faults = (0..header.k + header.m)
                    .filter(|i| !holders.iter().any(|(_, h)| h == i))
                    .filter_map(|i| {
                        let d = *inventory.order.get(i as usize)?;
                        if inventory.domains[d].slow {
                            return None;
                        }
                        Some(inventory.domains[d].frags[*slot].fault(
                            self,
                            d,
                            &frag_path(*slot, rel),
                        ))
                    })
                    .collect();
                (holders.len(), faults)
            }
            Layout::Legacy { holders, .. } => (holders.len(), Vec::new()),
        }
    }

    /// Removes every replica, fragment and integrity record of `rel` on every domain
    /// (missing is fine). An unreachable domain fails the call after the others are done.
    pub async fn delete(&self, rel: &str) -> Result<(), RedundancyError> {
        self.check_rel(rel)?;
        let paths = [
            rel.to_string(),
            sums_path(rel),
            frag_path(0, rel),
            frag_path(1, rel),
        ];
        let calls: Vec<(usize, String)> = (0..self.domains.len())
            .flat_map(|d| paths.iter().map(move |p| (d, p.clone())))
            .collect();
        let results: Vec<Result<(), RedundancyError>> = stream::iter(calls)
            .map(|(d, path)| async move {
                self.domains[d]
                    .delete(&path)
                    .await
                    .map_err(|source| self.write_error(d, path, source))
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Every object (rel) under `prefix` on any domain with its stat, sorted by rel:
    /// for start-up and scrub. Pieces whose object cannot be stat'ed (nothing readable
    /// found) are left out; [`RedundantStore::list_rels`] lists them too, for `settle`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, ObjectStat)>, RedundancyError> {
        let rels = self.list_rels(prefix).await?;
        let stats: Vec<Option<(String, ObjectStat)>> = stream::iter(rels)
            .map(|rel| async move {
                let stat = self.stat(&rel).await.ok().flatten()?;
                Some((rel, stat))
            })
            .buffered(PARALLEL)
            .collect()
            .await;
        Ok(stats.into_iter().flatten().collect())
    }

    /// Every rel under `prefix` with any piece (replica, fragment) on any reachable
    /// domain, sorted. Fails only when no domain can be listed.
    pub async fn list_rels(&self, prefix: &str) -> Result<Vec<String>, RedundancyError> {
        let listings: Vec<Result<Vec<strata_store::Entry>, StoreError>> =
            stream::iter(self.domains.iter().cloned())
                .map(|store| async move { store.list(&mut |_| {}).await })
                .buffered(PARALLEL)
                .collect()
                .await;
        let mut rels = BTreeSet::new();
        let mut errors = Vec::new();
        for (d, listing) in listings.into_iter().enumerate() {
            match listing {
                Ok(entries) => {
                    for entry in entries {
                        let rel = entry
                            .path
                            .strip_prefix("ec/0/")
                            .or_else(|| entry.path.strip_prefix("ec/1/"))
                            .unwrap_or(&entry.path);
                        if rel.starts_with(prefix) && self.check_rel(rel).is_ok() {
                            rels.insert(rel.to_string());
                        }
                    }
                }
                Err(e) => errors.push(format!("domain {d} ({}): {e}", self.store_name(d))),
            }
        }
        if errors.len() == self.domains.len() && !errors.is_empty() {
            return Err(RedundancyError::Other {
                rel: prefix.to_string(),
                detail: format!("no domain could be listed: {}", errors.join("; ")),
            });
        }
        for e in errors {
            tracing::warn!(
                "listing a redundant tier: {e}; its objects are listed from the other domains"
            );
        }
        Ok(rels.into_iter().collect())
    }
}
