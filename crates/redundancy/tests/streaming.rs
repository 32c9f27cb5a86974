//! Streaming writes (`RedundantStore::begin_write`, `RedundantUpload`) over real local
//! directories: the same files as `write`, nothing published on too few bytes, abort, drop
//! or crash, overwrites, failing domains mid-stream, and re-encode and repair of objects
//! larger than the streaming window.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use strata_redundancy::{Redundancy, RedundancyError, RedundantStore};
use strata_store::faults::{FaultEffect, FaultOp, FaultPlan, FaultRule};

use common::{data, open, r, Tier, MIB};

const REL: &str = "objects/s/stream.bin";

impl Tier {
    /// A second store over the same directories: what a restarted process sees.
    async fn reopened(&self) -> RedundantStore {
        let mut stores = Vec::new();
        for root in &self.roots {
            stores.push(open(root).await);
        }
        RedundantStore::new(stores)
    }

    /// Every published file on every domain (staging left out): (domain, path) → bytes.
    fn published(&self) -> BTreeMap<(usize, String), Vec<u8>> {
        let mut out = BTreeMap::new();
        for (d, root) in self.roots.iter().enumerate() {
            for path in files_under(root) {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                if !rel.starts_with(".strata/staging") {
                    out.insert((d, rel), std::fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    /// Files in the domains' staging areas.
    fn staged(&self) -> Vec<PathBuf> {
        self.roots
            .iter()
            .flat_map(|root| files_under(&root.join(".strata/staging")))
            .collect()
    }

    fn domain_named_in(&self, err: &RedundancyError, domain: usize) -> bool {
        err.to_string()
            .contains(&self.rs.domains()[domain].display())
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Streams `bytes` in pieces of the sizes of `pattern`, cycled.
async fn stream(
    rs: &RedundantStore,
    rel: &str,
    bytes: &Bytes,
    redundancy: Redundancy,
    pattern: &[usize],
) -> Result<u64, RedundancyError> {
    let mut upload = rs.begin_write(rel, redundancy, bytes.len() as u64).await?;
    let (mut at, mut i) = (0, 0);
    while at < bytes.len() {
        let n = pattern[i % pattern.len()].min(bytes.len() - at);
        upload.write(bytes.slice(at..at + n)).await?;
        at += n;
        i += 1;
    }
    upload.finish().await
}

const ODD_PIECES: [usize; 4] = [1, MIB - 1, 3 * MIB, 7];

#[tokio::test]
async fn streamed_writes_in_odd_pieces_give_the_same_files_as_write_for_every_encoding() {
    let t = Tier::new(6).await;
    for encoding in ["none", "replicate:2", "replicate:3", "ec:2+1", "ec:4+2"] {
        for (len, seed) in [(0, 1), (5, 2), (MIB, 3), (5 * MIB + 17, 4)] {
            let bytes = data(len, seed);
            let raw_written = t.rs.write(REL, bytes.clone(), r(encoding)).await.unwrap();
            let written = t.published();
            t.rs.delete(REL).await.unwrap();
            let raw_streamed = stream(&t.rs, REL, &bytes, r(encoding), &ODD_PIECES)
                .await
                .unwrap();
            assert_eq!(raw_streamed, raw_written, "{encoding}, {len} bytes");
            assert!(
                t.published() == written,
                "{encoding}, {len} bytes: streamed files differ from written ones"
            );
            assert!(t.staged().is_empty(), "{:?}", t.staged());
            assert!(t.rs.read_all(REL).await.unwrap().bytes == bytes);
            t.rs.delete(REL).await.unwrap();
        }
    }
}

#[tokio::test]
async fn finish_with_too_few_bytes_fails_and_publishes_nothing() {
    let t = Tier::new(6).await;
    for encoding in ["replicate:3", "ec:4+2"] {
        let bytes = data(3 * MIB + 5, 5);
        let mut upload =
            t.rs.begin_write(REL, r(encoding), 10 * MIB as u64)
                .await
                .unwrap();
        upload.write(bytes).await.unwrap();
        let err = upload.finish().await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(REL) && text.contains(&(3 * MIB + 5).to_string()),
            "{text}"
        );
        assert!(t.published().is_empty(), "{:?}", t.published().keys());
        assert!(t.staged().is_empty(), "{:?}", t.staged());
        assert!(t.rs.stat(REL).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn writing_more_than_the_declared_length_fails_and_publishes_nothing() {
    let t = Tier::new(3).await;
    let mut upload = t.rs.begin_write(REL, r("ec:2+1"), 100).await.unwrap();
    upload.write(data(60, 6)).await.unwrap();
    let err = upload.write(data(41, 7)).await.unwrap_err();
    assert!(err.to_string().contains("101"), "{err}");
    assert!(upload.finish().await.is_err());
    assert!(t.published().is_empty(), "{:?}", t.published().keys());
    assert!(t.staged().is_empty(), "{:?}", t.staged());
}

#[tokio::test]
async fn abort_publishes_nothing_and_leaves_no_staged_files() {
    let t = Tier::new(6).await;
    for encoding in ["replicate:3", "ec:4+2"] {
        let mut upload =
            t.rs.begin_write(REL, r(encoding), 4 * MIB as u64)
                .await
                .unwrap();
        upload.write(data(2 * MIB + 1, 8)).await.unwrap();
        assert!(!t.staged().is_empty(), "pieces are staged while written");
        upload.abort().await;
        assert!(t.published().is_empty(), "{:?}", t.published().keys());
        assert!(t.staged().is_empty(), "{:?}", t.staged());
    }
}

#[tokio::test]
async fn a_dropped_upload_publishes_nothing_and_its_staged_files_go() {
    let t = Tier::new(6).await;
    let mut upload =
        t.rs.begin_write(REL, r("ec:4+2"), 4 * MIB as u64)
            .await
            .unwrap();
    upload.write(data(3 * MIB, 9)).await.unwrap();
    drop(upload);
    // The clean-up holds the object's lock: a new writer waits for it.
    let bytes = data(MIB + 3, 10);
    let mut next =
        t.rs.begin_write(REL, r("replicate:2"), bytes.len() as u64)
            .await
            .unwrap();
    assert!(
        t.published().is_empty(),
        "a dropped upload published: {:?}",
        t.published().keys()
    );
    let staged = t.staged();
    assert_eq!(staged.len(), 2, "only the new writer's pieces: {staged:?}");
    next.write(bytes.clone()).await.unwrap();
    next.finish().await.unwrap();
    assert!(t.staged().is_empty(), "{:?}", t.staged());
    assert!(t.rs.read_all(REL).await.unwrap().bytes == bytes);
}

#[tokio::test]
async fn a_crash_mid_upload_publishes_nothing_and_the_next_write_succeeds() {
    let t = Tier::new(6).await;
    let bytes = data(5 * MIB + 1, 11);
    t.rs.write(REL, bytes.clone(), r("replicate:3"))
        .await
        .unwrap();
    let before = t.published();
    for encoding in ["ec:4+2", "replicate:3"] {
        // Each crash in its own "process": a store over the same directories.
        let crashing = t.reopened().await;
        let mut upload = crashing
            .begin_write(REL, r(encoding), 6 * MIB as u64)
            .await
            .unwrap();
        upload.write(data(4 * MIB, 12)).await.unwrap();
        // A crash: nothing runs after this point in the writing process.
        std::mem::forget(upload);
        assert!(
            t.published() == before,
            "{encoding}: the crash changed published files"
        );
    }
    let restarted = t.reopened().await;
    assert!(restarted.read_all(REL).await.unwrap().bytes == bytes);
    let new = data(2 * MIB + 9, 13);
    stream(&restarted, REL, &new, r("ec:4+2"), &ODD_PIECES)
        .await
        .unwrap();
    assert!(restarted.read_all(REL).await.unwrap().bytes == new);
    assert!(restarted.check(REL).await.unwrap().is_healthy());
}

#[tokio::test]
async fn overwriting_an_object_streams_and_removes_the_old_encoding() {
    let t = Tier::new(6).await;
    let old = data(3 * MIB, 14);
    t.rs.write(REL, old, r("replicate:3")).await.unwrap();
    let new = data(6 * MIB + 3, 15);
    stream(&t.rs, REL, &new, r("ec:4+2"), &ODD_PIECES)
        .await
        .unwrap();
    let files = t.published();
    assert!(
        files.keys().all(|(_, p)| p.starts_with("ec/0/")),
        "replicas or records left: {:?}",
        files.keys()
    );
    assert_eq!(files.len(), 6);
    assert!(t.rs.read_all(REL).await.unwrap().bytes == new);
    let newer = data(MIB + 1, 16);
    stream(&t.rs, REL, &newer, r("replicate:2"), &ODD_PIECES)
        .await
        .unwrap();
    let files = t.published();
    assert!(
        files.keys().all(|(_, p)| !p.starts_with("ec/")),
        "fragments left: {:?}",
        files.keys()
    );
    assert_eq!(files.len(), 4, "two replicas and their records");
    assert!(t.rs.read_all(REL).await.unwrap().bytes == newer);
}

fn fault_on(op: FaultOp, pattern: &str, nth: u64) -> FaultPlan {
    FaultPlan::new().rule(
        FaultRule::new(op, FaultEffect::Error { retryable: false })
            .unwrap()
            .path(pattern)
            .nth(nth),
    )
}

/// A tier of `n` domains where the first placement domain of REL gets `plan`.
async fn tier_failing_first(n: usize, plan: FaultPlan) -> (Tier, usize) {
    // Placement hashes the domains' URIs (a fault plan does not change them).
    let t = Tier::new(n).await;
    let first_here = t.order(REL)[0];
    let stores = t.rs.domains().iter().enumerate();
    let faulty = stores
        .map(|(i, s)| {
            if i == first_here {
                s.clone().with_faults(plan.clone())
            } else {
                s.clone()
            }
        })
        .collect();
    let t = Tier {
        rs: RedundantStore::new(faulty),
        ..t
    };
    (t, first_here)
}

#[tokio::test]
async fn a_domain_failing_mid_stream_fails_the_upload_naming_it_and_keeps_the_old_object() {
    // The third write_at of a fragment on the first domain fails (its header is the first).
    let (t, bad) = tier_failing_first(6, fault_on(FaultOp::Write, "ec/", 3)).await;
    let old = data(2 * MIB + 5, 17);
    t.rs.write(REL, old.clone(), r("replicate:3"))
        .await
        .unwrap();
    let before = t.published();
    let err = stream(&t.rs, REL, &data(8 * MIB, 18), r("ec:4+2"), &[MIB])
        .await
        .unwrap_err();
    assert!(t.domain_named_in(&err, bad), "{err}");
    assert!(
        t.published() == before,
        "the failed upload changed published files"
    );
    assert!(t.staged().is_empty(), "{:?}", t.staged());
    assert!(t.rs.read_all(REL).await.unwrap().bytes == old);
    assert!(t.rs.check(REL).await.unwrap().is_healthy());
}

#[tokio::test]
async fn a_domain_failing_to_publish_fails_the_upload_naming_it_and_keeps_the_old_object() {
    // Its second publish fails: the first is its fragment of the old object.
    let (t, bad) = tier_failing_first(6, fault_on(FaultOp::Publish, "objects/", 2)).await;
    let old = data(2 * MIB + 5, 19);
    t.rs.write(REL, old.clone(), r("ec:4+2")).await.unwrap();
    let before = t.published();
    let err = stream(
        &t.rs,
        REL,
        &data(3 * MIB, 20),
        r("replicate:3"),
        &ODD_PIECES,
    )
    .await
    .unwrap_err();
    assert!(t.domain_named_in(&err, bad), "{err}");
    assert!(
        t.published() == before,
        "replicas of the failed upload were left: {:?}",
        t.published().keys()
    );
    assert!(t.staged().is_empty(), "{:?}", t.staged());
    assert!(t.rs.read_all(REL).await.unwrap().bytes == old);
}

#[tokio::test]
async fn two_writers_of_one_object_take_turns() {
    let t = Tier::new(3).await;
    let first = data(MIB + 7, 21);
    let second = data(2 * MIB + 1, 22);
    let mut a =
        t.rs.begin_write(REL, r("replicate:2"), first.len() as u64)
            .await
            .unwrap();
    let b = t.rs.begin_write(REL, r("replicate:2"), second.len() as u64);
    tokio::pin!(b);
    // Both would stage their replica under the same name: the second waits.
    assert!(futures::poll!(&mut b).is_pending());
    a.write(first).await.unwrap();
    a.finish().await.unwrap();
    let mut b = b.await.unwrap();
    b.write(second.clone()).await.unwrap();
    b.finish().await.unwrap();
    assert!(t.rs.read_all(REL).await.unwrap().bytes == second);
    assert!(t.rs.check(REL).await.unwrap().is_healthy());
}

#[tokio::test]
async fn reencode_and_repair_stream_objects_larger_than_a_window() {
    let t = Tier::new(6).await;
    let bytes = data(13 * MIB + 11, 23);
    t.rs.write(REL, bytes.clone(), r("replicate:2"))
        .await
        .unwrap();
    t.rs.reencode(REL, r("ec:4+2"), None).await.unwrap();
    assert!(t.rs.read_all(REL).await.unwrap().bytes == bytes);
    let order = t.order(REL);
    let fragment = |i: usize| t.roots[order[i]].join("ec/1").join(REL);
    let fragment = |i: usize| {
        let slot1 = fragment(i);
        if slot1.exists() {
            slot1
        } else {
            t.roots[order[i]].join("ec/0").join(REL)
        }
    };
    let saved: Vec<Vec<u8>> = (0..6)
        .map(|i| std::fs::read(fragment(i)).unwrap())
        .collect();
    std::fs::remove_file(fragment(0)).unwrap();
    let mut damaged = std::fs::read(fragment(4)).unwrap();
    damaged[9 * MIB / 4] ^= 1;
    std::fs::write(fragment(4), damaged).unwrap();
    let outcome = t.rs.repair(REL, None).await.unwrap();
    assert_eq!(outcome.repaired.len(), 2, "{outcome:?}");
    for (i, saved) in saved.iter().enumerate() {
        assert!(
            &std::fs::read(fragment(i)).unwrap() == saved,
            "fragment {i}"
        );
    }
    t.rs.reencode(REL, r("replicate:3"), None).await.unwrap();
    let replica = t.roots[order[1]].join(REL);
    let mut damaged = std::fs::read(&replica).unwrap();
    damaged[11 * MIB] ^= 1;
    std::fs::write(&replica, damaged).unwrap();
    let outcome = t.rs.repair(REL, None).await.unwrap();
    assert_eq!(outcome.repaired.len(), 1, "{outcome:?}");
    assert!(std::fs::read(&replica).unwrap() == bytes);
    assert!(t.rs.check(REL).await.unwrap().is_healthy());
    assert!(t.staged().is_empty(), "{:?}", t.staged());
}
