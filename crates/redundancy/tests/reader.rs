//! `RedundantStore::open` and its `ObjectReader` over real local directories: an object
//! read span by span looks at the domains once, and still serves the right bytes, and
//! reports what is wrong, when a domain is lost, a fragment is damaged or a re-encode
//! replaces the encoding between two spans.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strata_codec::format::fragment::FragmentHeader;
use strata_redundancy::{FaultKind, ObjectReader, Read, RedundantStore};
use strata_store::faults::{FaultEffect, FaultOp, FaultPlan, FaultRule};

use common::{data, r, Tier, MIB};

const REL: &str = "objects/big/span.bin";
/// The service's span on a plain tier.
const SPAN: u64 = 256 << 10;

/// Reads `len` bytes from `offset` through `reader` in spans of `span` bytes; the bytes
/// and each span's read.
async fn read_spans(reader: &ObjectReader, offset: u64, len: u64, span: u64) -> (Bytes, Vec<Read>) {
    let mut out = BytesMut::new();
    let mut reads = Vec::new();
    let mut at = offset;
    while at < offset + len {
        let n = span.min(offset + len - at);
        let read = reader.read_range(at, n).await.unwrap();
        assert_eq!(read.bytes.len() as u64, n, "span at {at}");
        out.extend_from_slice(&read.bytes);
        reads.push(read);
        at += n;
    }
    (out.freeze(), reads)
}

/// Every stat of an object's plain path (one per domain per look at the domains) is
/// counted by a rule that does nothing else.
fn counting_stats() -> FaultPlan {
    FaultPlan::new().rule(
        FaultRule::new(
            FaultOp::Stat,
            FaultEffect::Latency(Duration::from_micros(1)),
        )
        .unwrap()
        .path(REL),
    )
}

fn stats(rs: &RedundantStore) -> u64 {
    rs.domains()
        .iter()
        .map(|d| d.faults().map_or(0, |f| f.fired(0)))
        .sum()
}

fn degraded_reads(rs: &RedundantStore) -> u64 {
    rs.counters().degraded_reads.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_reader_serves_every_span_of_a_large_object_on_replicas_and_fragments() {
    let t = Tier::new(6).await;
    let bytes = data(9 * MIB + 12_345, 21);
    for encoding in ["replicate:3", "ec:4+2", "ec:2+1"] {
        t.rs.write(REL, bytes.clone(), r(encoding)).await.unwrap();
        let reader = t.rs.open(REL).await.unwrap();
        let stat = reader.stat();
        assert_eq!((stat.len, stat.encoding), (bytes.len() as u64, r(encoding)));
        assert!(reader.faults().is_empty());
        // Spans of the service's size, and spans that cut stripes and chunks anywhere.
        for span in [SPAN, MIB as u64 + 7, 3 * MIB as u64 - 1] {
            let (read, reads) = read_spans(&reader, 0, bytes.len() as u64, span).await;
            assert_eq!(read, bytes, "{encoding} in spans of {span}");
            assert!(reads
                .iter()
                .all(|read| read.faults.is_empty() && read.encoding == r(encoding)));
        }
        // A range from the middle, and one past the end (clamped).
        let (middle, _) = read_spans(&reader, 5 * MIB as u64 + 3, 2 * MIB as u64, SPAN).await;
        assert_eq!(middle, bytes.slice(5 * MIB + 3..7 * MIB + 3));
        let tail = reader
            .read_range(bytes.len() as u64 - 10, 100)
            .await
            .unwrap();
        assert_eq!(tail.bytes, bytes.slice(bytes.len() - 10..));
    }
    assert_eq!(degraded_reads(&t.rs), 0);
}

#[tokio::test]
async fn an_object_read_in_many_spans_looks_at_the_domains_once() {
    let t = Tier::with(6, |_, s| s.with_faults(counting_stats())).await;
    let bytes = data(8 * MIB + 1, 22);
    let spans = (bytes.len() as u64).div_ceil(SPAN);
    for encoding in ["ec:4+2", "replicate:3"] {
        t.rs.write(REL, bytes.clone(), r(encoding)).await.unwrap();
        let before = stats(&t.rs);
        let reader = t.rs.open(REL).await.unwrap();
        let (read, _) = read_spans(&reader, 0, bytes.len() as u64, SPAN).await;
        assert_eq!(read, bytes);
        assert_eq!(
            stats(&t.rs) - before,
            6,
            "{encoding}: one look (a stat per domain) for {spans} spans"
        );
        // The same spans as separate reads look at the domains once each.
        let before = stats(&t.rs);
        for s in 0..spans {
            t.rs.read_range(REL, s * SPAN, SPAN).await.unwrap();
        }
        assert_eq!(stats(&t.rs) - before, 6 * spans, "{encoding}");
    }
}

#[tokio::test]
async fn a_domain_lost_between_two_spans_is_read_around_and_reported() {
    let t = Tier::new(6).await;
    let bytes = data(6 * MIB + 77, 23);
    t.rs.write(REL, bytes.clone(), r("ec:4+2")).await.unwrap();
    let reader = t.rs.open(REL).await.unwrap();
    let len = bytes.len() as u64;
    let (first, reads) = read_spans(&reader, 0, 2 * MIB as u64, SPAN).await;
    assert_eq!(first, bytes.slice(..2 * MIB));
    assert!(reads.iter().all(|r| r.faults.is_empty()));
    // The domain of fragment 0, a data fragment every healthy read fetches, goes away.
    let lost = t.order(REL)[0];
    std::fs::remove_dir_all(&t.roots[lost]).unwrap();
    let (rest, reads) = read_spans(&reader, 2 * MIB as u64, len - 2 * MIB as u64, SPAN).await;
    assert_eq!(rest, bytes.slice(2 * MIB..));
    // Every span after the loss says so (the rebuild is the caller's to schedule).
    for read in &reads {
        assert!(
            read.faults.iter().any(|f| f.domain == lost),
            "{:?}",
            read.faults
        );
    }
    assert_eq!(degraded_reads(&t.rs), 1, "one degraded object read");
}

#[tokio::test]
async fn a_re_encode_between_two_spans_leaves_the_bytes_right_and_reports_nothing() {
    let t = Tier::new(6).await;
    let bytes = data(5 * MIB + 999, 24);
    let len = bytes.len() as u64;
    // Each step replaces the encoding the reader found: other files, another slot, other
    // replica holders.
    let steps = [
        ("ec:4+2", "replicate:3"),
        ("replicate:3", "ec:4+2"),
        ("ec:4+2", "ec:3+2"),
        ("replicate:3", "replicate:2"),
    ];
    for (from, to) in steps {
        t.rs.write(REL, bytes.clone(), r(from)).await.unwrap();
        let reader = t.rs.open(REL).await.unwrap();
        let (first, _) = read_spans(&reader, 0, 2 * MIB as u64, SPAN).await;
        t.rs.reencode(REL, r(to), None).await.unwrap();
        assert_eq!(t.rs.stat(REL).await.unwrap().unwrap().encoding, r(to));
        let (rest, reads) = read_spans(&reader, 2 * MIB as u64, len - 2 * MIB as u64, SPAN).await;
        assert_eq!([first, rest].concat(), bytes, "{from} -> {to}");
        for read in &reads {
            assert!(read.faults.is_empty(), "{from} -> {to}: {:?}", read.faults);
        }
    }
    assert_eq!(degraded_reads(&t.rs), 0);
}

#[tokio::test]
async fn a_fragment_damaged_mid_read_is_found_reported_and_counted_once() {
    let t = Tier::new(6).await;
    let bytes = data(6 * MIB, 25);
    t.rs.write(REL, bytes.clone(), r("ec:4+2")).await.unwrap();
    let reader = t.rs.open(REL).await.unwrap();
    let (first, _) = read_spans(&reader, 0, MIB as u64, SPAN).await;
    assert_eq!(first, bytes.slice(..MIB));
    // A byte of fragment 0's shard of its last stripe flips after the read began.
    let d = t.order(REL)[0];
    let path = t.roots[d].join("ec/0").join(REL);
    let mut file = std::fs::read(&path).unwrap();
    let header = FragmentHeader::decode(&file).unwrap();
    let at = header.shard_offset(header.stripes - 1) as usize + 5;
    file[at] ^= 0x40;
    std::fs::write(&path, file).unwrap();
    let (rest, reads) = read_spans(&reader, MIB as u64, 5 * MIB as u64, SPAN).await;
    assert_eq!(rest, bytes.slice(MIB..));
    let damaged: Vec<&Read> = reads
        .iter()
        .filter(|r| {
            r.faults
                .iter()
                .any(|f| f.domain == d && f.kind == FaultKind::Damaged)
        })
        .collect();
    assert!(!damaged.is_empty(), "the damage was reported");
    let counters = t.rs.counters();
    assert_eq!(counters.fragments_damaged_found.load(Ordering::Relaxed), 1);
    assert_eq!(counters.degraded_reads.load(Ordering::Relaxed), 1);
    // Found once, it is left out (and still reported) for the rest of the read.
    let again = reader.read_range(0, MIB as u64).await.unwrap();
    assert_eq!(again.bytes, bytes.slice(..MIB));
    assert!(
        again.faults.iter().any(|f| f.domain == d),
        "{:?}",
        again.faults
    );
    assert_eq!(counters.fragments_damaged_found.load(Ordering::Relaxed), 1);
    // A new reader finds it again, and counts it again.
    let fresh = t.rs.read_all(REL).await.unwrap();
    assert_eq!(fresh.bytes, bytes);
    assert_eq!(counters.fragments_damaged_found.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_missing_object_fails_at_open_and_one_deleted_mid_read_fails_the_next_span() {
    let t = Tier::new(3).await;
    assert!(t.rs.open(REL).await.unwrap_err().is_missing());
    let bytes = data(2 * MIB, 26);
    t.rs.write(REL, bytes.clone(), r("replicate:2"))
        .await
        .unwrap();
    let reader = t.rs.open(REL).await.unwrap();
    let first = reader.read_range(0, SPAN).await.unwrap();
    assert_eq!(first.bytes, bytes.slice(..SPAN as usize));
    t.rs.delete(REL).await.unwrap();
    let err = reader.read_range(SPAN, SPAN).await.unwrap_err();
    assert!(err.is_missing(), "{err}");
}
