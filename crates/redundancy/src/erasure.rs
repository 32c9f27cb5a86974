//! Erasure coding (`ec:K+M`): fragment files (`STEC`, see
//! `strata_codec::format::fragment`) at `ec/<slot>/<rel>`, fragment i on the i-th domain of
//! the object's placement. Reads fetch the data fragments first (no decode when they are
//! healthy), verify each shard, hedge a slow or failed one with a parity fragment, rebuild
//! with `strata_codec::parity` and verify each decoded stripe.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use strata_codec::format::fragment::{
    decode_tail, encode_tail, FragmentHeader, StripeSums, FRAGMENT_HEADER_LEN,
};
use strata_codec::parity::GroupCoder;

use crate::domains::{frag_path, Inventory, Layout, Read, RedundancyCounters, RedundantStore};
use crate::error::{DomainFault, FaultKind, RedundancyError};
use crate::health::PieceState;
use crate::replicas::clamp;
use crate::stream::STREAM_WINDOW;

/// The least a slow fragment is waited for before a spare one is started.
pub(crate) const HEDGE_FLOOR: Duration = Duration::from_millis(20);
/// A fragment slower than this many times the median of the others is hedged.
pub(crate) const HEDGE_FACTOR: u32 = 3;

/// The K + M fragment files of `data` under `ec:k+m`, index order. CPU-bound: call it on a
/// blocking thread. The streaming writer ([`crate::RedundantUpload`]) writes the same bytes
/// stripe by stripe; this whole-object form is for tests and tools.
pub fn encode_fragments(k: usize, m: usize, data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let header = |index: usize| {
        FragmentHeader::for_object(k as u8, m as u8, index as u8, data.len() as u64)
            .map_err(|e| e.to_string())
    };
    let first = header(0)?;
    let mut files: Vec<Vec<u8>> = (0..k + m)
        .map(|i| {
            let mut f = Vec::with_capacity(first.file_len() as usize);
            f.extend_from_slice(&header(i).map(|h| h.encode()).unwrap_or_default());
            f
        })
        .collect();
    let mut tables: Vec<Vec<StripeSums>> = vec![Vec::with_capacity(first.stripes as usize); k + m];
    let mut coder = GroupCoder::new();
    let all: Vec<usize> = (0..k + m).collect();
    for s in 0..first.stripes {
        let range = first.stripe_bytes(s);
        let stripe = Bytes::copy_from_slice(&data[range.start as usize..range.end as usize]);
        let encoded = encode_stripe(&mut coder, &first, s, stripe, &all)?;
        for (i, shard) in encoded.shards.iter().enumerate() {
            files[i].extend_from_slice(shard);
            tables[i].push(StripeSums {
                shard: encoded.shard_hashes[i],
                stripe: encoded.stripe_hash,
            });
        }
    }
    for (i, file) in files.iter_mut().enumerate() {
        file.extend_from_slice(&encode_tail(&header(i)?, &tables[i]));
    }
    Ok(files)
}

/// One stripe cut into shards: the shards of the fragments asked for, their BLAKE3, and
/// the BLAKE3 of the stripe's object bytes.
pub(crate) struct EncodedStripe {
    /// The shard of each fragment index asked for, in the order asked.
    pub shards: Vec<Bytes>,
    /// BLAKE3 of each of those shards.
    pub shard_hashes: Vec<[u8; 32]>,
    /// BLAKE3 of the stripe's object bytes.
    pub stripe_hash: [u8; 32],
}

/// Cuts stripe `s` (`stripe`: its object bytes) into K data shards of the stripe's shard
/// length (the last ones zero-padded), computes the M parity shards when a parity index is
/// asked for, and returns the shards of `indices`. The one implementation of the fragment
/// layout's stripe coding (FORMATS.md, "Erasure-coded fragment"). CPU-bound.
pub(crate) fn encode_stripe(
    coder: &mut GroupCoder,
    header: &FragmentHeader,
    s: u32,
    stripe: Bytes,
    indices: &[usize],
) -> Result<EncodedStripe, String> {
    let (k, m) = (header.k as usize, header.m as usize);
    let sl = header.shard_len(s) as usize;
    let data: Vec<Bytes> = (0..k)
        .map(|i| {
            let from = (i * sl).min(stripe.len());
            let to = (from + sl).min(stripe.len());
            if to - from == sl {
                stripe.slice(from..to)
            } else {
                let mut shard = stripe[from..to].to_vec();
                shard.resize(sl, 0);
                Bytes::from(shard)
            }
        })
        .collect();
    let parity: Vec<Bytes> = if indices.iter().any(|&i| i >= k) {
        let refs: Vec<&[u8]> = data.iter().map(|b| b.as_ref()).collect();
        coder
            .encode(&refs, m)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(Bytes::from)
            .collect()
    } else {
        Vec::new()
    };
    let mut shards = Vec::with_capacity(indices.len());
    for &i in indices {
        let shard = if i < k {
            data.get(i)
        } else {
            parity.get(i - k)
        };
        shards.push(
            shard
                .cloned()
                .ok_or_else(|| format!("fragment index {i} is not in ec:{k}+{m}"))?,
        );
    }
    Ok(EncodedStripe {
        shard_hashes: shards.iter().map(|b| *blake3::hash(b).as_bytes()).collect(),
        stripe_hash: *blake3::hash(&stripe).as_bytes(),
        shards,
    })
}

/// Fragment tables already read and checked during one streaming pass, by (domain,
/// fragment index), so reading an object window by window reads each table once.
#[derive(Default)]
pub(crate) struct TableCache(Mutex<HashMap<(usize, u8), Table>>);

/// One fragment's table, checked.
type Table = Arc<Vec<StripeSums>>;

impl TableCache {
    fn get(&self, key: (usize, u8)) -> Option<Table> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
    }

    fn put(&self, key: (usize, u8), table: Table) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, table);
    }
}

/// The shards of `stripes` one fragment holds, verified, with its table.
struct Fetched {
    index: usize,
    shards: Vec<Bytes>,
    table: Arc<Vec<StripeSums>>,
}

impl RedundantStore {
    /// Reads the table (unless `tables` has it) and the shards of `stripes` from the
    /// fragment on `domain`, verifying the trailer's check and each shard's hash.
    async fn fetch_fragment(
        &self,
        domain: usize,
        path: &str,
        header: FragmentHeader,
        stripes: Range<u32>,
        tables: &TableCache,
    ) -> Result<Fetched, DomainFault> {
        let store = &self.domains[domain];
        let fault = |e| DomainFault::from_store(domain, self.store_name(domain), path, &e);
        let damaged = |detail: String| DomainFault {
            domain,
            store: self.store_name(domain),
            rel: path.to_string(),
            kind: FaultKind::Damaged,
            detail,
        };
        let table = match tables.get((domain, header.index)) {
            Some(table) => table,
            None => {
                let tail = store
                    .read_range(path, header.table_offset(), header.tail_len())
                    .await
                    .map_err(fault)?;
                let table =
                    Arc::new(decode_tail(&header, &tail).map_err(|e| damaged(e.to_string()))?);
                tables.put((domain, header.index), Arc::clone(&table));
                table
            }
        };
        if stripes.is_empty() {
            return Ok(Fetched {
                index: header.index as usize,
                shards: Vec::new(),
                table,
            });
        }
        let from = header.shard_offset(stripes.start);
        let to = header.shard_offset(stripes.end - 1) + header.shard_len(stripes.end - 1);
        let bytes = store
            .read_range(path, from, to - from)
            .await
            .map_err(fault)?;
        let mut shards = Vec::with_capacity(stripes.len());
        for s in stripes {
            let at = (header.shard_offset(s) - from) as usize;
            let shard = bytes.slice(at..at + header.shard_len(s) as usize);
            if blake3::hash(&shard).as_bytes() != &table[s as usize].shard {
                return Err(damaged(format!(
                    "the shard of stripe {s} does not match its BLAKE3 in the fragment's table"
                )));
            }
            shards.push(shard);
        }
        Ok(Fetched {
            index: header.index as usize,
            shards,
            table,
        })
    }

    /// Reads a range of an erasure-coded object: K good fragments (data first, fastest
    /// first), hedging slow ones, then decodes and verifies each stripe. Reuses the
    /// fragment tables in `tables` (a reader of many ranges reads each table once). The
    /// faults of the read are `known` (what the caller already knows is wrong with the
    /// layout's pieces) followed by those met on the way.
    pub(crate) async fn read_fragments(
        &self,
        inventory: &Inventory,
        layout: &Layout,
        known: &[DomainFault],
        (offset, len): (u64, u64),
        tables: &TableCache,
    ) -> Result<Read, RedundancyError> {
        let Layout::Erasure {
            slot,
            header,
            holders,
        } = layout
        else {
            unreachable!("replicas are read by read_replicas")
        };
        let (k, m) = (header.k as usize, header.m as usize);
        let rel = &inventory.rel;
        let path = frag_path(*slot, rel);
        let (start, end) = clamp(header.len, offset, len);
        let stripes = header.stripes_covering(start, end - start);
        let mut faults = known.to_vec();
        let good = self
            .fetch_k(&path, header, holders, &stripes, &mut faults, tables)
            .await;
        if good.len() < k {
            return Err(RedundancyError::TooFewGood {
                rel: rel.clone(),
                encoding: layout.encoding(),
                good: good.len(),
                needed: k,
                faults,
            });
        }
        // Hashing and rebuilding stripes is CPU work: off the async threads.
        let header = *header;
        let decoded = tokio::task::spawn_blocking(move || {
            decode_range(&header, &stripes, &good, k, m, start, end)
        })
        .await
        .unwrap_or_else(|e| Err(format!("the decoding task failed: {e}")));
        let bytes = decoded.map_err(|detail| RedundancyError::Other {
            rel: rel.clone(),
            detail: format!("{detail}; run `strata scrub` to find the damaged fragment"),
        })?;
        Ok(Read {
            bytes,
            encoding: layout.encoding(),
            faults,
        })
    }

    /// Fetches `stripes` from K good fragments of `holders`: data fragments first (no
    /// decode when they are all good), fastest first within; a failed fragment is replaced
    /// by the next candidate at once, a slow one (over [`HEDGE_FACTOR`] × the median of
    /// those done, at least [`HEDGE_FLOOR`]) by starting the next one beside it. Failures
    /// go to `faults`.
    async fn fetch_k(
        &self,
        path: &str,
        header: &FragmentHeader,
        holders: &[(usize, u8)],
        stripes: &Range<u32>,
        faults: &mut Vec<DomainFault>,
        tables: &TableCache,
    ) -> Vec<Fetched> {
        let k = header.k as usize;
        // Data fragments first (no decode when they are all good), fastest first within.
        let mut candidates: Vec<(usize, u8)> = holders.to_vec();
        candidates.sort_by_key(|&(d, i)| (i as usize >= k, self.latencies.of(d)));
        let mut next = 0;
        let mut in_flight = FuturesUnordered::new();
        let launch = |(d, i): (usize, u8)| {
            let h = FragmentHeader {
                index: i,
                ..*header
            };
            let path = path.to_string();
            let stripes = stripes.clone();
            async move {
                let began = Instant::now();
                let result = self.fetch_fragment(d, &path, h, stripes, tables).await;
                (d, began.elapsed(), result)
            }
        };
        while next < candidates.len() && next < k {
            in_flight.push(launch(candidates[next]));
            next += 1;
        }
        let mut good: Vec<Fetched> = Vec::with_capacity(k);
        let mut took: Vec<Duration> = Vec::new();
        while good.len() < k && !in_flight.is_empty() {
            let wait = (!took.is_empty() && next < candidates.len()).then(|| {
                let mut sorted = took.clone();
                sorted.sort();
                (sorted[sorted.len() / 2] * HEDGE_FACTOR).max(HEDGE_FLOOR)
            });
            let done = match wait {
                Some(wait) => match tokio::time::timeout(wait, in_flight.next()).await {
                    Ok(done) => done,
                    Err(_) => {
                        RedundancyCounters::add(&self.counters.hedged_reads, 1);
                        in_flight.push(launch(candidates[next]));
                        next += 1;
                        continue;
                    }
                },
                None => in_flight.next().await,
            };
            let Some((d, elapsed, result)) = done else {
                break;
            };
            match result {
                Ok(fetched) => {
                    self.latencies.record(d, elapsed);
                    took.push(elapsed);
                    good.push(fetched);
                }
                Err(fault) => {
                    faults.push(fault);
                    if next < candidates.len() {
                        in_flight.push(launch(candidates[next]));
                        next += 1;
                    }
                }
            }
        }
        good
    }

    /// Reads the whole fragment of `index` on `domain`, window by window (memory bounded
    /// by [`crate::stream::STREAM_WINDOW`]), and checks its length, header, trailer and
    /// every shard.
    pub(crate) async fn check_fragment(
        &self,
        domain: usize,
        path: &str,
        header: FragmentHeader,
    ) -> PieceState {
        match self.check_fragment_bytes(domain, path, header).await {
            Ok(Ok(_)) => PieceState::Good,
            Ok(Err(why)) => PieceState::Damaged(why),
            Err(fault) => PieceState::from_fault(&fault),
        }
    }

    /// The checks of [`RedundantStore::check_fragment`]; `Ok(Ok(tail))` (the fragment's
    /// table and trailer as stored) when it is good, `Ok(Err(why))` when it is damaged.
    pub(crate) async fn check_fragment_bytes(
        &self,
        domain: usize,
        path: &str,
        header: FragmentHeader,
    ) -> Result<Result<Bytes, String>, DomainFault> {
        let store = &self.domains[domain];
        let fault = |e| DomainFault::from_store(domain, self.store_name(domain), path, &e);
        let size = match store.stat(path).await.map_err(fault)? {
            Some(entry) => entry.size,
            None => {
                return Err(fault(strata_store::StoreError::NotFound {
                    path: path.to_string(),
                }))
            }
        };
        if size != header.file_len() {
            return Ok(Err(format!(
                "{size} bytes, a fragment of this object has {}",
                header.file_len()
            )));
        }
        let head = store
            .read_range(path, 0, FRAGMENT_HEADER_LEN)
            .await
            .map_err(fault)?;
        match FragmentHeader::decode(&head) {
            Ok(h) if h == header => {}
            Ok(_) => return Ok(Err("its header describes another fragment".into())),
            Err(e) => return Ok(Err(e.to_string())),
        }
        let tail = store
            .read_range(path, header.table_offset(), header.tail_len())
            .await
            .map_err(fault)?;
        let table = match decode_tail(&header, &tail) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let per_window = (STREAM_WINDOW / (header.shard_size as u64).max(1)).max(1) as u32;
        let mut s = 0;
        while s < header.stripes {
            let end = s.saturating_add(per_window).min(header.stripes);
            let from = header.shard_offset(s);
            let to = header.shard_offset(end - 1) + header.shard_len(end - 1);
            let bytes = store
                .read_range(path, from, to - from)
                .await
                .map_err(fault)?;
            for t in s..end {
                let at = (header.shard_offset(t) - from) as usize;
                let shard = &bytes[at..at + header.shard_len(t) as usize];
                if blake3::hash(shard).as_bytes() != &table[t as usize].shard {
                    return Ok(Err(format!(
                        "the shard of stripe {t} does not match its BLAKE3"
                    )));
                }
            }
            s = end;
        }
        Ok(Ok(tail))
    }
}

/// Assembles object bytes `start..end` from K verified fragments, rebuilding missing data
/// shards, and checks every stripe against its BLAKE3.
fn decode_range(
    header: &FragmentHeader,
    stripes: &Range<u32>,
    good: &[Fetched],
    k: usize,
    m: usize,
    start: u64,
    end: u64,
) -> Result<Bytes, String> {
    let mut out = BytesMut::with_capacity((end - start) as usize);
    let mut coder = GroupCoder::new();
    let table = &good[0].table;
    for (n, s) in stripes.clone().enumerate() {
        let range = header.stripe_bytes(s);
        let stripe_len = (range.end - range.start) as usize;
        let sl = header.shard_len(s) as usize;
        let mut present: Vec<Option<&[u8]>> = vec![None; k + m];
        for f in good {
            present[f.index] = Some(&f.shards[n]);
        }
        let rebuilt = if present[..k].iter().all(Option::is_some) {
            Vec::new()
        } else {
            coder
                .rebuild(&present, k, m, sl)
                .map_err(|e| format!("stripe {s} could not be rebuilt: {e}"))?
        };
        let mut stripe = Vec::with_capacity(stripe_len);
        for (i, shard) in present[..k].iter().enumerate() {
            let shard: &[u8] = match *shard {
                Some(s) => s,
                None => rebuilt
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, b)| b.as_slice())
                    .ok_or_else(|| format!("stripe {s}: shard {i} was not rebuilt"))?,
            };
            let take = sl.min(stripe_len - stripe.len().min(stripe_len));
            stripe.extend_from_slice(&shard[..take.min(shard.len())]);
        }
        if blake3::hash(&stripe).as_bytes() != &table[s as usize].stripe {
            return Err(format!(
                "stripe {s} (bytes {}..{}) decoded from verified fragments does not match its BLAKE3",
                range.start, range.end
            ));
        }
        let from = start.max(range.start) - range.start;
        let to = end.min(range.end) - range.start;
        out.extend_from_slice(&stripe[from as usize..to as usize]);
    }
    Ok(out.freeze())
}
