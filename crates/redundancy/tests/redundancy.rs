//! strata-redundancy over real local directories: replicas, fragments, degraded reads,
//! corruption, repair, re-encode, settle, unreachable and failing domains, concurrency.

mod common;

use std::path::{Path, PathBuf};

use strata_codec::format::fragment::FragmentHeader;
use strata_redundancy::erasure::encode_fragments;
use strata_redundancy::{FaultKind, PieceState, Redundancy, RedundantStore};
use strata_store::faults::{FaultEffect, FaultOp, FaultPlan, FaultRule};

use common::{data, r, Tier, MIB};

const REL: &str = "objects/a/b.bin";

impl Tier {
    fn replica(&self, domain: usize, rel: &str) -> PathBuf {
        self.roots[domain].join(rel)
    }

    fn fragment(&self, domain: usize, rel: &str) -> PathBuf {
        self.roots[domain].join("ec/0").join(rel)
    }

    /// Domains holding anything of `rel` under `ec/` or as a plain file.
    fn files_named(&self, rel: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for root in &self.roots {
            for p in [
                root.join(rel),
                root.join(".strata/replicas").join(rel),
                root.join("ec/0").join(rel),
                root.join("ec/1").join(rel),
            ] {
                if p.exists() {
                    out.push(p);
                }
            }
        }
        out
    }

    fn lose(&self, domain: usize) {
        std::fs::remove_dir_all(&self.roots[domain]).unwrap();
    }
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn replicas_are_plain_files_with_the_objects_bytes() {
    let t = Tier::new(4).await;
    let bytes = data(MIB + 3, 1);
    let raw =
        t.rs.write(REL, bytes.clone(), r("replicate:3"))
            .await
            .unwrap();
    let order = t.order(REL);
    for &d in &order[..3] {
        assert_eq!(std::fs::read(t.replica(d, REL)).unwrap(), bytes);
        assert!(t.roots[d].join(".strata/replicas").join(REL).exists());
    }
    assert!(!t.replica(order[3], REL).exists());
    let stat = t.rs.stat(REL).await.unwrap().unwrap();
    assert_eq!(
        (stat.len, stat.encoding, stat.legacy),
        (bytes.len() as u64, r("replicate:3"), false)
    );
    assert_eq!(stat.raw_bytes, raw);
    assert!(raw > 3 * bytes.len() as u64);
    let read = t.rs.read_all(REL).await.unwrap();
    assert_eq!((read.bytes, read.faults.len()), (bytes, 0));
}

#[tokio::test]
async fn replicate_3_reads_with_two_domains_removed() {
    let t = Tier::new(3).await;
    let bytes = data(2 * MIB + 1, 2);
    t.rs.write(REL, bytes.clone(), r("replicate:3"))
        .await
        .unwrap();
    let order = t.order(REL);
    t.lose(order[0]);
    t.lose(order[1]);
    let read = t.rs.read_range(REL, 5, 2 * MIB as u64).await.unwrap();
    assert_eq!(read.bytes, bytes.slice(5..2 * MIB + 1));
    let mut faulty: Vec<usize> = read.faults.iter().map(|f| f.domain).collect();
    faulty.sort();
    let mut lost = vec![order[0], order[1]];
    lost.sort();
    assert_eq!(faulty, lost, "{:?}", read.faults);
    assert_eq!(
        t.rs.counters()
            .degraded_reads
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn replicate_reads_skip_a_corrupt_replica_and_report_it() {
    let t = Tier::new(3).await;
    let bytes = data(3 * MIB, 3);
    t.rs.write(REL, bytes.clone(), r("replicate:3"))
        .await
        .unwrap();
    let order = t.order(REL);
    // The replicas a read tries first (all domains equally fast: placement order).
    flip(&t.replica(order[0], REL), MIB + 10);
    flip(&t.replica(order[1], REL), MIB + 20);
    let read = t.rs.read_range(REL, MIB as u64, 100).await.unwrap();
    assert_eq!(read.bytes, bytes.slice(MIB..MIB + 100));
    let damaged: Vec<usize> = read
        .faults
        .iter()
        .filter(|f| f.kind == FaultKind::Damaged)
        .map(|f| f.domain)
        .collect();
    assert_eq!(damaged, vec![order[0], order[1]], "{:?}", read.faults);
    assert!(
        read.faults[0].detail.contains("chunk 1"),
        "{}",
        read.faults[0]
    );
    // Outside the damaged chunk the first replica still serves.
    let clean = t.rs.read_range(REL, 0, 100).await.unwrap();
    assert!(clean.faults.is_empty());
    let outcome = t.rs.repair(REL, None).await.unwrap();
    assert_eq!(outcome.repaired.len(), 2);
    assert_eq!(std::fs::read(t.replica(order[0], REL)).unwrap(), bytes);
    assert!(t.rs.check(REL).await.unwrap().is_healthy());
}

#[tokio::test]
async fn ec_4_2_reads_with_two_domains_missing() {
    let t = Tier::new(6).await;
    let bytes = data(3 * MIB + 5, 4);
    t.rs.write(REL, bytes.clone(), r("ec:4+2")).await.unwrap();
    let order = t.order(REL);
    for (i, &d) in order.iter().enumerate() {
        let header = FragmentHeader::decode(&std::fs::read(t.fragment(d, REL)).unwrap()).unwrap();
        assert_eq!(header.index as usize, i);
    }
    // Two data fragments: the read must decode.
    t.lose(order[0]);
    t.lose(order[2]);
    let read = t.rs.read_all(REL).await.unwrap();
    assert_eq!(read.bytes, bytes);
    assert_eq!(read.encoding, r("ec:4+2"));
    let faulty: Vec<usize> = read.faults.iter().map(|f| f.domain).collect();
    assert!(
        faulty.contains(&order[0]) && faulty.contains(&order[2]),
        "{faulty:?}"
    );
    let part = t.rs.read_range(REL, MIB as u64 - 3, 7).await.unwrap();
    assert_eq!(part.bytes, bytes.slice(MIB - 3..MIB + 4));
}

#[tokio::test]
async fn ec_read_with_three_domains_missing_fails_naming_them() {
    let t = Tier::new(6).await;
    t.rs.write(REL, data(MIB, 5), r("ec:4+2")).await.unwrap();
    let order = t.order(REL);
    for &d in &order[..3] {
        std::fs::remove_file(t.fragment(d, REL)).unwrap();
    }
    let err = t.rs.read_all(REL).await.unwrap_err();
    assert!(err.is_too_few_good(), "{err}");
    let text = err.to_string();
    for &d in &order[..3] {
        assert!(text.contains(&t.rs.domains()[d].display()), "{text}");
    }
    assert!(text.contains(REL) && text.contains("4 needed"), "{text}");
    let err = t.rs.repair(REL, None).await.unwrap_err();
    assert!(
        err.is_too_few_good() && err.to_string().contains("cannot be repaired"),
        "{err}"
    );
}

#[tokio::test]
async fn every_single_byte_corruption_of_a_fragment_is_detected_and_repaired() {
    let t = Tier::new(3).await;
    let bytes = data(MIB + MIB / 2 + 7, 6);
    let order = t.order(REL);
    t.rs.write(REL, bytes.clone(), r("ec:2+1")).await.unwrap();
    let target = t.fragment(order[0], REL);
    let original = std::fs::read(&target).unwrap();
    let header = FragmentHeader::decode(&original).unwrap();
    assert_eq!(header.stripes, 2);
    let table = header.table_offset() as usize;
    let end = original.len();
    let offsets = [
        0,
        4,
        5,
        6,
        7,
        8,
        15,
        16,
        20,
        23, // header
        24,
        1000,
        header.shard_offset(1) as usize,
        table - 1, // shards
        table,
        table + 31,
        table + 32,
        table + 64, // table
        end - 16,
        end - 9,
        end - 8,
        end - 4,
        end - 1, // trailer
    ];
    for at in offsets {
        std::fs::write(&target, &original).unwrap();
        flip(&target, at);
        let health = t.rs.check(REL).await.unwrap();
        assert!(
            !health.is_healthy(),
            "a flip at {at} was not detected: {health:?}"
        );
        let read = t.rs.read_all(REL).await.unwrap();
        assert_eq!(read.bytes, bytes, "flip at {at}");
        assert!(!read.faults.is_empty(), "flip at {at} not reported");
        let outcome = t.rs.repair(REL, None).await.unwrap();
        assert_eq!(outcome.repaired.len(), 1, "flip at {at}: {outcome:?}");
        assert_eq!(std::fs::read(&target).unwrap(), original, "flip at {at}");
        assert!(t.rs.check(REL).await.unwrap().is_healthy());
    }
}

#[tokio::test]
async fn ranged_reads_match_the_bytes_for_every_encoding() {
    let t = Tier::new(6).await;
    let lens = [0, 1, MIB - 1, MIB, MIB + 1, 3 * MIB + 17];
    for (e, encoding) in ["none", "replicate:2", "ec:4+2", "ec:3+2", "ec:1+1"]
        .into_iter()
        .enumerate()
    {
        for (n, &len) in lens.iter().enumerate() {
            let rel = format!("objects/{e}/{n}");
            let bytes = data(len, (e * 10 + n) as u64);
            t.rs.write(&rel, bytes.clone(), r(encoding)).await.unwrap();
            let stripe = match r(encoding) {
                Redundancy::Erasure { data: k, parity: m } => {
                    FragmentHeader::for_object(k as u8, m as u8, 0, len as u64)
                        .unwrap()
                        .stripe_data_len()
                        .max(1) as usize
                }
                _ => MIB,
            };
            let mut ranges = vec![(0, 0), (0, len), (0, len + 10), (len, 5), (len + 3, 5)];
            for b in [stripe, 2 * stripe, 3 * stripe] {
                for (o, l) in [
                    (b - 1, 2),
                    (b, 1),
                    (b.saturating_sub(10), 20),
                    (b, 0),
                    (1, b),
                ] {
                    ranges.push((o, l));
                }
            }
            for (o, l) in ranges {
                let got = t.rs.read_range(&rel, o as u64, l as u64).await.unwrap();
                let from = o.min(len);
                let to = (o + l).min(len);
                assert_eq!(
                    got.bytes,
                    bytes.slice(from..to),
                    "{encoding} len {len} range {o}+{l}"
                );
                assert!(got.faults.is_empty());
            }
            let stat = t.rs.stat(&rel).await.unwrap().unwrap();
            assert_eq!((stat.len, stat.encoding), (len as u64, r(encoding)));
        }
    }
}

#[tokio::test]
async fn repair_rewrites_missing_fragments() {
    let t = Tier::new(6).await;
    let bytes = data(2 * MIB + 9, 7);
    t.rs.write(REL, bytes.clone(), r("ec:4+2")).await.unwrap();
    let order = t.order(REL);
    let before: Vec<Vec<u8>> = order
        .iter()
        .map(|&d| std::fs::read(t.fragment(d, REL)).unwrap())
        .collect();
    std::fs::remove_file(t.fragment(order[1], REL)).unwrap();
    std::fs::remove_file(t.fragment(order[5], REL)).unwrap();
    let health = t.rs.check(REL).await.unwrap();
    let missing: Vec<usize> = health
        .pieces
        .iter()
        .filter(|p| p.state == PieceState::Missing)
        .map(|p| p.domain)
        .collect();
    assert_eq!(missing, vec![order[1], order[5]]);
    let outcome = t.rs.repair(REL, None).await.unwrap();
    assert_eq!(outcome.repaired.len(), 2, "{outcome:?}");
    for (i, &d) in order.iter().enumerate() {
        assert_eq!(std::fs::read(t.fragment(d, REL)).unwrap(), before[i]);
    }
    assert!(t.rs.check(REL).await.unwrap().is_healthy());
    assert_eq!(t.rs.repair(REL, None).await.unwrap().repaired.len(), 0);
}

#[tokio::test]
async fn reencode_replicate_to_ec_keeps_bytes_and_removes_the_replicas() {
    let t = Tier::new(6).await;
    let bytes = data(2 * MIB + 100, 8);
    t.rs.write(REL, bytes.clone(), r("replicate:3"))
        .await
        .unwrap();
    t.rs.reencode(REL, r("ec:4+2"), None).await.unwrap();
    for root in &t.roots {
        assert!(!root.join(REL).exists());
        assert!(!root.join(".strata/replicas").join(REL).exists());
    }
    assert_eq!(t.files_named(REL).len(), 6);
    let stat = t.rs.stat(REL).await.unwrap().unwrap();
    assert_eq!(stat.encoding, r("ec:4+2"));
    assert_eq!(t.rs.read_all(REL).await.unwrap().bytes, bytes);
    // And on to another code, then back to replicas: each time one encoding is left.
    t.rs.reencode(REL, r("ec:2+1"), None).await.unwrap();
    assert_eq!(t.files_named(REL).len(), 3);
    assert_eq!(t.rs.read_all(REL).await.unwrap().bytes, bytes);
    t.rs.reencode(REL, r("replicate:2"), None).await.unwrap();
    assert_eq!(
        t.files_named(REL).len(),
        4,
        "two replicas and their records"
    );
    assert_eq!(
        t.rs.stat(REL).await.unwrap().unwrap().encoding,
        r("replicate:2")
    );
    assert_eq!(
        t.rs.counters()
            .reencodes_done
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    // Already there: nothing to do.
    t.rs.reencode(REL, r("replicate:2"), None).await.unwrap();
    assert_eq!(
        t.rs.counters()
            .reencodes_done
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

/// A domain that refuses every write under `pattern`: whole-file writes (integrity
/// records), and the staged uploads pieces are streamed through (write and publish).
fn write_error_on(pattern: &str) -> FaultPlan {
    [FaultOp::Put, FaultOp::Write, FaultOp::Publish]
        .into_iter()
        .fold(FaultPlan::new(), |plan, op| {
            plan.rule(
                FaultRule::new(op, FaultEffect::Error { retryable: false })
                    .unwrap()
                    .path(pattern),
            )
        })
}

#[tokio::test]
async fn reencode_with_a_domain_lost_midway_leaves_the_old_encoding_intact() {
    // Domain 1 refuses every fragment write: the re-encode fails halfway through.
    let t = Tier::with(3, |i, s| {
        if i == 1 {
            s.with_faults(write_error_on("ec/"))
        } else {
            s
        }
    })
    .await;
    let bytes = data(MIB + 1, 9);
    t.rs.write(REL, bytes.clone(), r("replicate:2"))
        .await
        .unwrap();
    let err = t.rs.reencode(REL, r("ec:2+1"), None).await.unwrap_err();
    assert!(
        err.to_string().contains(&t.rs.domains()[1].display()),
        "{err}"
    );
    for root in &t.roots {
        assert!(
            !root.join("ec").join("0").join(REL).exists(),
            "a partial fragment was left"
        );
    }
    let stat = t.rs.stat(REL).await.unwrap().unwrap();
    assert_eq!(stat.encoding, r("replicate:2"));
    assert!(t.rs.check(REL).await.unwrap().is_healthy());
    assert_eq!(t.rs.read_all(REL).await.unwrap().bytes, bytes);
}

#[tokio::test]
async fn settle_after_an_interrupted_reencode_keeps_one_complete_encoding() {
    let t = Tier::new(3).await;
    let bytes = data(MIB + 77, 10);
    let order = t.order(REL);
    let frags = encode_fragments(2, 1, &bytes).unwrap();
    // Crash while the fragments were being written: two of three are there.
    t.rs.write(REL, bytes.clone(), r("replicate:2"))
        .await
        .unwrap();
    for i in 0..2 {
        let path = t.fragment(order[i], REL);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &frags[i]).unwrap();
    }
    let outcome = t.rs.settle(REL, r("ec:2+1")).await.unwrap();
    assert_eq!(outcome.kept, Some(r("replicate:2")));
    assert_eq!(outcome.removed.len(), 2, "{outcome:?}");
    assert_eq!(t.files_named(REL).len(), 4);
    assert_eq!(t.rs.read_all(REL).await.unwrap().bytes, bytes);
    // Crash after the fragments were all written, before the replicas were removed.
    for i in 0..3 {
        let path = t.fragment(order[i], REL);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &frags[i]).unwrap();
    }
    let outcome = t.rs.settle(REL, r("ec:2+1")).await.unwrap();
    assert_eq!(outcome.kept, Some(r("ec:2+1")));
    assert_eq!(
        outcome.removed.len(),
        4,
        "two replicas and their records: {outcome:?}"
    );
    assert_eq!(t.files_named(REL).len(), 3);
    assert_eq!(t.rs.stat(REL).await.unwrap().unwrap().encoding, r("ec:2+1"));
    assert_eq!(t.rs.read_all(REL).await.unwrap().bytes, bytes);
    // Settled: nothing more to do.
    assert!(t
        .rs
        .settle(REL, r("ec:2+1"))
        .await
        .unwrap()
        .removed
        .is_empty());
}

#[tokio::test]
async fn a_domain_replaced_by_a_file_is_read_around_and_reported_unreachable() {
    let t = Tier::new(3).await;
    let bytes = data(1000, 11);
    t.rs.write(REL, bytes.clone(), r("replicate:2"))
        .await
        .unwrap();
    let order = t.order(REL);
    t.lose(order[0]);
    std::fs::write(&t.roots[order[0]], b"not a directory").unwrap();
    let read = t.rs.read_all(REL).await.unwrap();
    assert_eq!(read.bytes, bytes);
    assert_eq!(read.faults.len(), 1);
    assert_eq!(
        (read.faults[0].domain, read.faults[0].kind),
        (order[0], FaultKind::Unreachable)
    );
    let health = t.rs.check(REL).await.unwrap();
    assert!(matches!(
        health
            .pieces
            .iter()
            .find(|p| p.domain == order[0])
            .unwrap()
            .state,
        PieceState::Unreachable(_)
    ));
    let outcome = t.rs.repair(REL, None).await.unwrap();
    assert_eq!(outcome.not_repaired.len(), 1, "{outcome:?}");
}

#[tokio::test]
async fn read_errors_on_a_domain_are_served_from_the_fragments_of_the_others() {
    let plan = FaultPlan::new()
        .rule(FaultRule::new(FaultOp::Read, FaultEffect::Error { retryable: false }).unwrap());
    let t = Tier::with(6, |i, s| {
        if i == 0 || i == 3 {
            s.with_faults(plan.clone())
        } else {
            s
        }
    })
    .await;
    let bytes = data(2 * MIB, 12);
    t.rs.write(REL, bytes.clone(), r("ec:4+2")).await.unwrap();
    let read = t.rs.read_all(REL).await.unwrap();
    assert_eq!(read.bytes, bytes);
    let mut faulty: Vec<usize> = read.faults.iter().map(|f| f.domain).collect();
    faulty.sort();
    assert_eq!(faulty, vec![0, 3]);
    assert!(read.faults.iter().all(|f| f.kind == FaultKind::Unreachable));
}

#[tokio::test]
async fn a_full_domain_fails_the_write_naming_it_and_leaves_nothing() {
    let t = Tier::with(3, |i, s| {
        if i == 2 {
            s.with_faults(write_error_on("objects/"))
        } else {
            s
        }
    })
    .await;
    for encoding in ["replicate:3", "ec:2+1"] {
        let err =
            t.rs.write(REL, data(5000, 13), r(encoding))
                .await
                .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&t.rs.domains()[2].display()) && text.contains(REL),
            "{text}"
        );
        assert!(
            t.files_named(REL).is_empty(),
            "{encoding}: {:?}",
            t.files_named(REL)
        );
        assert!(t.rs.stat(REL).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn a_slow_data_domain_is_hedged_with_parity() {
    // Every fragment read on the domain of fragment 0 (a data fragment) takes 2 s.
    let slow = FaultPlan::new().rule(
        FaultRule::new(
            FaultOp::Read,
            FaultEffect::Latency(std::time::Duration::from_secs(2)),
        )
        .unwrap()
        .path("ec/"),
    );
    let t = Tier::new(6).await;
    let first = t.order(REL)[0];
    let stores = t.rs.domains().iter().enumerate();
    let rs = RedundantStore::new(
        stores
            .map(|(i, s)| {
                if i == first {
                    s.clone().with_faults(slow.clone())
                } else {
                    s.clone()
                }
            })
            .collect(),
    );
    let bytes = data(MIB, 14);
    rs.write(REL, bytes.clone(), r("ec:4+2")).await.unwrap();
    let fired = || rs.domains()[first].faults().unwrap().fired(0);
    let before = fired();
    for _ in 0..3 {
        let read = rs.read_all(REL).await.unwrap();
        assert_eq!(read.bytes, bytes);
        assert!(
            read.faults.is_empty(),
            "a slow domain is not a fault: {:?}",
            read.faults
        );
    }
    // Only the first look (one header per slot) reached the slow domain: its fragment
    // was never waited for; parity served instead.
    assert_eq!(fired() - before, 3 * 2);
}

#[tokio::test]
async fn hundred_concurrent_readers_during_reencodes_all_get_the_right_bytes() {
    let t = Tier::new(6).await;
    let bytes = data(2 * MIB + 3, 15);
    t.rs.write(REL, bytes.clone(), r("replicate:3"))
        .await
        .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for n in 0..100u64 {
        let rs = t.rs.clone();
        let bytes = bytes.clone();
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut reads = 0;
            while reads < 2 || !done.load(std::sync::atomic::Ordering::Relaxed) {
                let offset = (n * 20_011) % bytes.len() as u64;
                let got = rs.read_range(REL, offset, 70_000).await.unwrap();
                let end = (offset as usize + 70_000).min(bytes.len());
                assert_eq!(got.bytes, bytes.slice(offset as usize..end));
                reads += 1;
            }
            reads
        }));
    }
    for to in ["ec:4+2", "ec:3+3", "replicate:2", "ec:4+2"] {
        t.rs.reencode(REL, r(to), None).await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() >= 2);
    }
    assert_eq!(t.rs.read_all(REL).await.unwrap().bytes, bytes);
}

#[tokio::test]
async fn delete_list_and_bad_names() {
    let t = Tier::new(4).await;
    t.rs.write("objects/x", data(10, 16), r("ec:2+2"))
        .await
        .unwrap();
    t.rs.write("objects/y", data(20, 17), r("replicate:2"))
        .await
        .unwrap();
    t.rs.write("other/z", data(30, 18), r("none"))
        .await
        .unwrap();
    let listed = t.rs.list("objects/").await.unwrap();
    let names: Vec<(&str, Redundancy, u64)> = listed
        .iter()
        .map(|(n, s)| (n.as_str(), s.encoding, s.len))
        .collect();
    assert_eq!(
        names,
        vec![
            ("objects/x", r("ec:2+2"), 10),
            ("objects/y", r("replicate:2"), 20)
        ]
    );
    t.rs.delete("objects/x").await.unwrap();
    t.rs.delete("objects/never").await.unwrap();
    assert!(t.files_named("objects/x").is_empty());
    assert!(t.rs.read_all("objects/x").await.unwrap_err().is_missing());
    assert!(t.rs.stat("objects/x").await.unwrap().is_none());
    let err =
        t.rs.write("ec/0/objects/y", data(1, 1), r("none"))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("objects/"), "{err}");
    let err =
        t.rs.write("objects/w", data(1, 1), r("ec:4+2"))
            .await
            .unwrap_err();
    assert!(
        err.to_string().contains("needs 6 domains, the tier has 4"),
        "{err}"
    );
}

#[tokio::test]
async fn a_plain_file_without_a_record_is_read_as_legacy_and_adopted_by_a_reencode() {
    let t = Tier::new(2).await;
    let order = t.order(REL);
    let bytes = data(3000, 19);
    let path = t.replica(order[0], REL);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let stat = t.rs.stat(REL).await.unwrap().unwrap();
    assert!(stat.legacy && stat.encoding == Redundancy::None && stat.len == 3000);
    assert_eq!(t.rs.read_all(REL).await.unwrap().bytes, bytes);
    assert!(t
        .rs
        .settle(REL, Redundancy::None)
        .await
        .unwrap()
        .removed
        .is_empty());
    assert!(path.exists(), "settle must not remove a legacy object");
    t.rs.reencode(REL, r("replicate:2"), None).await.unwrap();
    let stat = t.rs.stat(REL).await.unwrap().unwrap();
    assert!(!stat.legacy && stat.encoding == r("replicate:2"));
    assert!(t.rs.check(REL).await.unwrap().is_healthy());
}

#[tokio::test]
async fn a_reencode_of_bytes_that_are_not_the_object_changes_nothing() {
    // A plain file without a record (legacy) has nothing of its own to be checked
    // against: only the object's hash, as the caller records it, tells it is wrong.
    let t = Tier::new(2).await;
    let order = t.order(REL);
    let on_disk = data(3000, 21);
    let recorded = blake3::hash(&data(3000, 22));
    let path = t.replica(order[0], REL);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &on_disk).unwrap();
    let err =
        t.rs.reencode(REL, r("replicate:2"), Some(recorded.as_bytes()))
            .await
            .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&recorded.to_hex().to_string())
            && text.contains(&blake3::hash(&on_disk).to_hex().to_string())
            && text.contains("nothing was rewritten"),
        "{text}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), on_disk, "the old bytes stay");
    assert_eq!(
        t.files_named(REL),
        vec![path.clone()],
        "no new piece is left"
    );
    let stat = t.rs.stat(REL).await.unwrap().unwrap();
    assert!(stat.legacy, "still the legacy object");
    // The object's own hash lets it through.
    let own = blake3::hash(&on_disk);
    t.rs.reencode(REL, r("replicate:2"), Some(own.as_bytes()))
        .await
        .unwrap();
    assert_eq!(
        t.rs.stat(REL).await.unwrap().unwrap().encoding,
        r("replicate:2")
    );
}

#[tokio::test]
async fn a_repair_copies_only_bytes_that_hash_to_the_object() {
    let t = Tier::new(3).await;
    let bytes = data(2 * MIB + 5, 23);
    t.rs.write(REL, bytes.clone(), r("replicate:3"))
        .await
        .unwrap();
    let lost = t.replica(t.order(REL)[2], REL);
    std::fs::remove_file(&lost).unwrap();
    let other = blake3::hash(b"another object");
    let err = t.rs.repair(REL, Some(other.as_bytes())).await.unwrap_err();
    assert!(err.to_string().contains("nothing was rewritten"), "{err}");
    assert!(
        !lost.exists(),
        "no replica was written from the wrong bytes"
    );
    let outcome =
        t.rs.repair(REL, Some(blake3::hash(&bytes).as_bytes()))
            .await
            .unwrap();
    assert_eq!(outcome.repaired.len(), 1, "{outcome:?}");
    assert_eq!(std::fs::read(&lost).unwrap(), bytes);
    assert!(t.rs.check(REL).await.unwrap().is_healthy());
}
