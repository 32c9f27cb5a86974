//! Bandwidth control through `Store::with_throttle`, on every kind of store: caps hold on
//! reads and writes, live limit changes apply, priority classes share by weight, and S3's
//! HTTP layer feeds the congestion controller.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{data, fixture, Kind};
use strata_throttle::{BwLimit, Direction, GovernorConfig, Priority, Throttle};

const MIB: u64 = 1 << 20;

fn capped(limit: &str, congestion_control: bool) -> Throttle {
    Throttle::new(GovernorConfig {
        limit: BwLimit::parse(limit).unwrap(),
        congestion_control,
        ..GovernorConfig::default()
    })
}

/// Writes `size` bytes in 1 MiB chunks and publishes; returns the seconds it took.
async fn upload(store: &strata_store::Store, rel: &str, content: &[u8]) -> f64 {
    let start = Instant::now();
    let upload = store
        .begin_upload(rel, content.len() as u64, false)
        .await
        .unwrap();
    for (i, chunk) in content.chunks(MIB as usize).enumerate() {
        upload
            .write_at(i as u64 * MIB, Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    upload.publish(None, None).await.unwrap();
    start.elapsed().as_secs_f64()
}

async fn cap_holds_on_writes_and_reads(kind: Kind) {
    let fx = fixture(kind).await;
    // 4 MiB/s for reads and writes together (rclone's single-rate meaning), no controller.
    let store = fx
        .store
        .clone()
        .with_throttle(capped("4M", false), Priority::Normal);
    let content = data(10 * MIB as usize, 7);
    let secs = upload(&store, "big.bin", &content).await;
    // 10 MiB at 4 MiB/s, less the 1 MiB burst (a quarter second) and the pay-after first
    // chunk: about 2.25 s.
    assert!(
        (1.9..5.0).contains(&secs),
        "{kind:?}: 10 MiB under a 4M cap took {secs:.2} s"
    );
    let start = Instant::now();
    let mut back = Vec::new();
    for i in 0..10 {
        back.extend_from_slice(&store.read_range("big.bin", i * MIB, MIB).await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(back, content, "{kind:?}: content survives the throttle");
    assert!(
        (1.9..5.0).contains(&secs),
        "{kind:?}: reading 10 MiB under a 4M cap took {secs:.2} s"
    );
    // The unthrottled store is not slowed down.
    let start = Instant::now();
    fx.store.read_all("big.bin").await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    let status = store.throttle_status().expect("throttled");
    assert_eq!(status.limit, "4M");
    assert_eq!(status.write.admitted_bytes, 10 * MIB);
    assert_eq!(status.read.admitted_bytes, 10 * MIB);
}

async fn live_limit_change_applies_to_waiting_transfers(kind: Kind) {
    let fx = fixture(kind).await;
    let throttle = capped("512K", false);
    let store = fx
        .store
        .clone()
        .with_throttle(throttle.clone(), Priority::Normal);
    let content = data(8 * MIB as usize, 9);
    let task = tokio::spawn(async move { upload(&store, "slow.bin", &content).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // At 512 KiB/s this upload would need 16 s; lifting the cap finishes it at once.
    throttle.set_limit(BwLimit::OFF);
    let secs = task.await.unwrap();
    assert!(
        secs < 6.0,
        "{kind:?}: upload took {secs:.2} s after the cap was lifted"
    );
}

async fn classes_share_by_weight(kind: Kind) {
    let fx = fixture(kind).await;
    let throttle = capped("4M", false);
    let high = fx
        .store
        .clone()
        .with_throttle(throttle.clone(), Priority::High);
    let background = fx
        .store
        .clone()
        .with_throttle(throttle.clone(), Priority::Background);
    let chunk = Bytes::from(data(256 << 10, 3));
    let deadline = Instant::now() + Duration::from_millis(4500);
    let mut tasks = Vec::new();
    for (name, store) in [("high", high), ("background", background)] {
        for worker in 0..4 {
            let (store, chunk) = (store.clone(), chunk.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let rel = format!("{name}/{worker}-{n}");
                    store.write_atomic(&rel, chunk.clone()).await.unwrap();
                    n += 1;
                }
            }));
        }
    }
    // Measure once both classes are queued (the first request of each worker starts
    // together, before any class has a finish tag).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = throttle.snapshot(Direction::Write).admitted_bytes;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = throttle.snapshot(Direction::Write).admitted_bytes;
    for t in tasks {
        t.await.unwrap();
    }
    let h = (after[0] - before[0]) as f64;
    let b = (after[3] - before[3]) as f64;
    // Weights 8:1: while both are busy the high class gets eight times the bytes.
    let ratio = h / b.max(1.0);
    assert!(
        (6.0..11.0).contains(&ratio),
        "{kind:?}: high/background = {h}/{b} = {ratio:.1}"
    );
    // Work-conserving: together they use the whole cap.
    let rate = (h + b) / 3.0 / MIB as f64;
    assert!(
        (3.5..4.5).contains(&rate),
        "{kind:?}: {rate:.2} MiB/s in total"
    );
}

macro_rules! every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Memory).await }) *
        }
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Local).await }) *
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::S3).await }) *
        }
    };
}

every_store!(
    cap_holds_on_writes_and_reads,
    live_limit_change_applies_to_waiting_transfers,
    classes_share_by_weight,
);

/// On S3 the layer on the HTTP transport reports every object PUT and GET to the
/// controller: delays and delivered bytes show in the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_requests_feed_the_congestion_controller() {
    let fx = fixture(Kind::S3).await;
    let throttle = Throttle::new(GovernorConfig::default());
    let store = fx
        .store
        .clone()
        .with_throttle(throttle.clone(), Priority::Normal);
    let content = data(20 * MIB as usize, 11);
    upload(&store, "parts.bin", &content).await;
    let write = store.throttle_status().unwrap().write;
    assert!(write.congestion_control_sampled(), "{write:?}");
    store.read_range("parts.bin", 0, 4 * MIB).await.unwrap();
    let read = store.throttle_status().unwrap().read;
    assert!(read.congestion_control_sampled(), "{read:?}");
    // Admission counted each byte once; the layer added samples, not bytes.
    assert_eq!(write.admitted_bytes, 20 * MIB);
    assert_eq!(read.admitted_bytes, 4 * MIB);
}

trait Sampled {
    fn congestion_control_sampled(&self) -> bool;
}

impl Sampled for strata_store::LaneStatus {
    fn congestion_control_sampled(&self) -> bool {
        self.base_delay_ms.is_some() && self.phase != "fixed"
    }
}
