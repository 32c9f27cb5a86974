//! A store's layers composed together (`strata_store::layers`): metrics count what reaches
//! the backend, on memory, local and S3 (moto) stores, under fault injection and a
//! throttle.

#[macro_use]
mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{data, fixture, Fixture, Kind};
use strata_store::faults::FaultPlan;
use strata_store::{OpStats, PendingPublish, StoreMetrics, StoreOp};
use strata_throttle::{GovernorConfig, Priority, Throttle};

behaviours!(
    metrics_count_calls_bytes_and_errors,
    metrics_count_what_reaches_the_backend_under_faults_and_a_throttle,
);

fn stats(calls: u64, bytes: u64, errors: u64) -> OpStats {
    OpStats {
        calls,
        bytes,
        errors,
    }
}

async fn metrics_count_calls_bytes_and_errors(fx: Fixture) {
    let metrics = Arc::new(StoreMetrics::new());
    let store = fx.store.clone().with_metrics(Arc::clone(&metrics));
    let content = data(1000, 3);
    store
        .write_atomic("m/a.bin", Bytes::from(content.clone()))
        .await
        .expect("put");
    assert_eq!(
        store
            .read_range("m/a.bin", 10, 100)
            .await
            .expect("read")
            .len(),
        100
    );
    assert_eq!(store.read_all("m/a.bin").await.expect("read all"), content);
    assert!(store.read_all("m/missing.bin").await.is_err());
    assert!(store.stat("m/a.bin").await.expect("stat").is_some());
    let upload = store
        .begin_upload("m/b.bin", 6, false)
        .await
        .expect("begin");
    upload
        .write_at(0, Bytes::from_static(b"abc"))
        .await
        .expect("write");
    upload
        .write_at(3, Bytes::from_static(b"def"))
        .await
        .expect("write");
    if upload.supports_read_back() {
        assert_eq!(
            &upload.read_back(0, 6).await.expect("read back")[..],
            b"abcdef"
        );
    }
    let group = vec![PendingPublish {
        upload,
        mtime: None,
        mode: None,
    }];
    for result in strata_store::Upload::publish_group(group).await {
        result.expect("publish");
    }
    store.delete("m/a.bin").await.expect("delete");
    let (entries, _) = {
        let mut warnings = Vec::new();
        let entries = store.list(&mut |w| warnings.push(w)).await.expect("list");
        (entries, warnings)
    };
    assert_eq!(entries.len(), 1, "{entries:?}");

    let m = store.metrics().expect("metrics in force");
    assert_eq!(m.get(StoreOp::Put), stats(1, 1000, 0));
    assert_eq!(m.get(StoreOp::Read), stats(3, 1100, 1));
    assert_eq!(m.get(StoreOp::Stat), stats(1, 0, 0));
    assert_eq!(m.get(StoreOp::Write), stats(2, 6, 0));
    let read_back = if fx.kind == Kind::Local {
        stats(1, 6, 0)
    } else {
        stats(0, 0, 0)
    };
    assert_eq!(m.get(StoreOp::ReadBack), read_back);
    assert_eq!(m.get(StoreOp::Publish), stats(1, 0, 0));
    assert_eq!(m.get(StoreOp::Delete), stats(1, 0, 0));
    assert_eq!(m.get(StoreOp::List), stats(1, 0, 0));
    // The store it came from counts nothing; the counters are the ones passed in.
    assert!(fx.store.metrics().is_none());
    assert_eq!(metrics.get(StoreOp::Put), stats(1, 1000, 0));
}

async fn metrics_count_what_reaches_the_backend_under_faults_and_a_throttle(fx: Fixture) {
    let metrics = Arc::new(StoreMetrics::new());
    let throttle = Throttle::new(GovernorConfig::default());
    let plan =
        FaultPlan::parse("any:read:error=permanent:first=1;any:put:lose:nth=2").expect("plan");
    // Layers may be set in any order: they are composed in one place.
    let store = fx
        .store
        .clone()
        .with_faults(plan)
        .with_throttle(throttle, Priority::Normal)
        .with_metrics(Arc::clone(&metrics));
    store
        .write_atomic("t/a.bin", Bytes::from(data(500, 1)))
        .await
        .expect("put");
    // The second put is lost: reported done, it never reaches the backend.
    store
        .write_atomic("t/b.bin", Bytes::from(data(300, 2)))
        .await
        .expect("lost put");
    assert!(store.stat("t/b.bin").await.expect("stat").is_none());
    // The first read fails on purpose before the backend; the second one goes through.
    let injected = store
        .read_range("t/a.bin", 0, 50)
        .await
        .expect_err("injected");
    assert!(
        injected.to_string().contains("injected fault"),
        "{injected}"
    );
    assert_eq!(
        store
            .read_range("t/a.bin", 0, 50)
            .await
            .expect("read")
            .len(),
        50
    );

    assert_eq!(metrics.get(StoreOp::Put), stats(1, 500, 0));
    assert_eq!(metrics.get(StoreOp::Read), stats(1, 50, 0));
    // The lost put deleted whatever was under its name, through the backend.
    assert_eq!(metrics.get(StoreOp::Delete), stats(1, 0, 0));
    assert_eq!(store.faults().map(|f| f.total_fired()), Some(2));
    assert_eq!(
        store.throttle().map(|(_, class)| class),
        Some(Priority::Normal)
    );
}
