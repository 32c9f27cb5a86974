//! The service's retry loop honours a store's `Retry-After`, with real components: a
//! fault-injecting proxy (axum) in front of moto answers chosen S3 requests with 503 or 429
//! and `Retry-After` (seconds, or an HTTP-date), or 403. Waits are asserted on when the
//! proxy saw the requests arrive (what the client did), never as performance timings.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use strata_server::retry::{with_backoff, Backoff};
use strata_server::Limits;
use strata_store::testing::proxy::{Arrival, Fault, Proxy};
use strata_store::testing::{moto, new_bucket};
use strata_store::{Store, StoreError, StoreUri};

const WAIT: Duration = Duration::from_secs(60);

async fn open(bucket: &str, endpoint: &str) -> Store {
    let uri = StoreUri::parse(&format!("s3://{bucket}?endpoint={endpoint}")).unwrap();
    Store::open(&uri, &moto_s3_options()).await.unwrap()
}

fn gaps(arrivals: &[Arrival]) -> Vec<Duration> {
    arrivals
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect()
}

fn faulted(arrivals: &[Arrival]) -> Vec<Option<u16>> {
    arrivals.iter().map(|a| a.faulted).collect()
}

/// A real `StoreError` from a 503 (`Retry-After: 2`) and a 429 (an HTTP-date two seconds
/// after the answer's `Date`): the loop waits at least that long before each next attempt,
/// then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_loop_waits_for_retry_after_then_succeeds() {
    let bucket = new_bucket();
    let proxy = Proxy::start(&moto().endpoint()).await;
    let direct = open(&bucket, &moto().endpoint()).await;
    let store = open(&bucket, &proxy.endpoint()).await;
    let content = bytes(100_000, 1);
    direct
        .write_atomic("loop/a.bin", Bytes::from(content.clone()))
        .await
        .unwrap();
    proxy.inject(
        Fault::new("GET", "loop/a.bin", 1, 503)
            .header("Retry-After", "2")
            .s3("SlowDown", "Please reduce your request rate."),
    );
    proxy.inject(
        Fault::new("GET", "loop/a.bin", 1, 429)
            .header("Date", "Wed, 01 Jan 2025 00:00:00 GMT")
            .header("Retry-After", "Wed, 01 Jan 2025 00:00:02 GMT")
            .s3("TooManyRequests", "Too many requests"),
    );
    let mut advised = Vec::new();
    let read = with_backoff(
        Backoff::default(),
        |err: &StoreError, _| advised.push(err.retry_after()),
        || store.read_all("loop/a.bin"),
    )
    .await
    .unwrap();
    assert!(read[..] == content[..], "the read is byte-identical");
    let two = Some(Duration::from_secs(2));
    assert_eq!(advised, [two, two]);
    let arrivals = proxy.arrivals("GET", "loop/a.bin");
    assert_eq!(faulted(&arrivals), [Some(503), Some(429), None]);
    for gap in gaps(&arrivals) {
        assert!(gap >= Duration::from_secs(2), "retried after {gap:?}");
    }
}

/// Refused access stops the loop at once, whatever `Retry-After` the answer had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_is_not_retried_by_the_loop() {
    let bucket = new_bucket();
    let proxy = Proxy::start(&moto().endpoint()).await;
    let direct = open(&bucket, &moto().endpoint()).await;
    let store = open(&bucket, &proxy.endpoint()).await;
    direct
        .write_atomic("denied/b.bin", Bytes::from_static(b"no"))
        .await
        .unwrap();
    proxy.inject(
        Fault::new("GET", "denied/b.bin", usize::MAX, 403)
            .header("Retry-After", "1")
            .s3("AccessDenied", "Access Denied"),
    );
    let mut retries = 0;
    let err = with_backoff(
        Backoff::default(),
        |_: &StoreError, _| retries += 1,
        || store.read_all("denied/b.bin"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Auth { .. }), "{err:?}");
    assert_eq!(retries, 0);
    assert_eq!(proxy.arrivals("GET", "denied/b.bin").len(), 1);
}

/// End to end: `strata serve` moves an object to an S3 hot tier whose server answers the
/// copy's first two PUTs 503 with `Retry-After: 2`; the move waits each time, then
/// completes, and the object reads back byte-identical from S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_to_an_s3_tier_waits_out_retry_after_and_completes() {
    let bucket = new_bucket();
    let proxy = Proxy::start(&moto().endpoint()).await;
    let rules = rules_with_s3_tier("hot", &bucket, &proxy.endpoint());
    let server = start_with(
        tempfile::tempdir().unwrap(),
        &rules,
        Limits::default(),
        moto_s3_options(),
    )
    .await;
    let data = bytes(300_000, 7);
    assert_eq!(server.put("run/t2m.nc", &data).await.status(), 201);
    assert_eq!(server.tier_of("run/t2m.nc").await, "warm");
    proxy.inject(
        Fault::new("PUT", "tier/objects/run/t2m.nc", 2, 503)
            .header("Retry-After", "2")
            .s3("SlowDown", "Please reduce your request rate."),
    );
    server.reads("run/t2m.nc", 30).await;
    let job = eventually(WAIT, "the move to be done", || async {
        let jobs = server.json("/v1/jobs?key=run/t2m.nc").await;
        jobs["jobs"][0]
            .as_object()
            .filter(|job| job["state"] == "done")
            .cloned()
    })
    .await;
    assert_eq!(job["to_tier"], "hot");
    let puts = proxy.arrivals("PUT", "tier/objects/run/t2m.nc");
    assert_eq!(faulted(&puts), [Some(503), Some(503), None]);
    for gap in gaps(&puts) {
        assert!(
            gap >= Duration::from_secs(2),
            "the copy was retried after {gap:?}"
        );
    }
    assert_eq!(server.tier_of("run/t2m.nc").await, "hot");
    assert!(
        server.object("run/t2m.nc").await == data,
        "read back from S3"
    );
    let direct = open(&bucket, &moto().endpoint()).await;
    let on_s3 = direct.read_all("tier/objects/run/t2m.nc").await.unwrap();
    assert!(on_s3[..] == data[..], "the S3 copy is byte-identical");
    assert!(
        files_on(&server.tier_dir("warm")).is_empty(),
        "old copy retired"
    );
    let metrics = server.get("/metrics").await.text().await.unwrap();
    let retries: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("strata_store_retries_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(retries >= 2, "{metrics}");
}
