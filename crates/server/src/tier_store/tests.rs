//! A tier over local domains read span by span through one [`TierObject`]: one look at
//! the domains and one [`ReadNotice`] per object read, one more notice when a later span
//! finds a fault.

use std::time::Duration;

use strata_store::faults::{FaultEffect, FaultOp, FaultPlan, FaultRule};
use strata_store::{S3Options, StoreUri};

use super::*;

const REL: &str = "objects/k/spans.bin";
const SPAN: u64 = 256 << 10;

/// A tier over `n` local domains whose stats of `REL` are counted, with its notices.
async fn tier(dir: &std::path::Path, n: usize) -> (TierStore, mpsc::Receiver<ReadNotice>) {
    let counting = FaultPlan::new().rule(
        FaultRule::new(
            FaultOp::Stat,
            FaultEffect::Latency(Duration::from_micros(1)),
        )
        .unwrap()
        .path(REL),
    );
    let mut stores = Vec::new();
    for i in 0..n {
        let root = dir.join(format!("d{i}"));
        std::fs::create_dir_all(&root).unwrap();
        let uri = StoreUri::parse(root.to_str().unwrap()).unwrap();
        let store = Store::open(&uri, &S3Options::default()).await.unwrap();
        stores.push(store.with_faults(counting.clone()));
    }
    let (send, notices) = mpsc::channel(64);
    let domains = DomainTier {
        store: RedundantStore::new(stores),
        default: "ec:4+2".parse().unwrap(),
        tier: TierId::HOTTEST,
        spool: dir.join("spool"),
        notices: Some(send),
    };
    (TierStore::Domains(Arc::new(domains)), notices)
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

fn stats(tier: &TierStore) -> u64 {
    tier.stores()
        .iter()
        .map(|s| s.faults().map_or(0, |f| f.fired(0)))
        .sum()
}

fn drain(notices: &mut mpsc::Receiver<ReadNotice>) -> Vec<ReadNotice> {
    std::iter::from_fn(|| notices.try_recv().ok()).collect()
}

async fn read_in_spans(object: &TierObject, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        let n = SPAN.min(len - at);
        out.extend_from_slice(&object.read_range(at, n).await.unwrap());
        at += n;
    }
    out
}

/// A tier of six domains under `dir` holding `len` bytes (pattern `seed`) at [`REL`] in
/// its default encoding.
async fn tier_holding(
    dir: &std::path::Path,
    len: usize,
    seed: u8,
) -> (TierStore, mpsc::Receiver<ReadNotice>, Bytes) {
    let (tier, notices) = tier(dir, 6).await;
    let data = Bytes::from(bytes(len, seed));
    let domains = tier.domains().unwrap();
    domains
        .store
        .write(REL, data.clone(), domains.default)
        .await
        .unwrap();
    (tier, notices, data)
}

#[tokio::test]
async fn an_object_read_in_spans_looks_at_the_domains_once_and_posts_one_notice() {
    let dir = tempfile::tempdir().unwrap();
    let (tier, mut notices, data) = tier_holding(dir.path(), 5 << 20, 7).await;
    let domains = tier.domains().unwrap();
    let before = stats(&tier);
    let object = tier.open(REL).await.unwrap();
    assert_eq!(object.len().await.unwrap(), Some(data.len() as u64));
    let read = read_in_spans(&object, data.len() as u64).await;
    assert_eq!(read, data);
    assert_eq!(stats(&tier) - before, 6, "one stat per domain for 20 spans");
    let posted = drain(&mut notices);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(
        (
            posted[0].rel.as_str(),
            posted[0].encoding,
            posted[0].degraded
        ),
        (REL, domains.default, false)
    );
    let missing = tier.open("objects/none").await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
}

#[tokio::test]
async fn a_fault_met_by_a_later_span_posts_one_degraded_notice() {
    let dir = tempfile::tempdir().unwrap();
    let (tier, mut notices, data) = tier_holding(dir.path(), 4 << 20, 8).await;
    let domains = tier.domains().unwrap();
    let object = tier.open(REL).await.unwrap();
    let first = object.read_range(0, SPAN).await.unwrap();
    assert_eq!(first, data.slice(..SPAN as usize));
    // The domain of fragment 0 (a data fragment every read fetches) is lost mid-read.
    let lost = strata_redundancy::placement::placement(domains.store.domains(), REL)[0];
    std::fs::remove_dir_all(dir.path().join(format!("d{lost}"))).unwrap();
    let rest = read_in_spans(&object, data.len() as u64).await;
    assert_eq!(rest, data);
    let posted = drain(&mut notices);
    let degraded: Vec<bool> = posted.iter().map(|n| n.degraded).collect();
    assert_eq!(degraded, vec![false, true], "{posted:?}");
}
