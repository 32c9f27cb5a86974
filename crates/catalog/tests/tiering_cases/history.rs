//! The access history table, the same on every engine: counts of the same object and hour
//! add up across flushes (saturating, never failing a flush), reads are by time (one key or
//! all), pruning removes only the hours before the retention, the rows survive a reopen,
//! and a flush stores the history with the statistics and stream offsets of the same
//! accesses, all or nothing.

use strata_catalog::{AccessFlush, HistoryBucket, StreamOffset, TieringCatalog};

use super::super::{open_tiering, reopen_tiering};

const HOUR: i64 = 3_600_000;

fn bucket(key: &str, hour: i64, reads: u64, writes: u64) -> HistoryBucket {
    HistoryBucket {
        key: key.into(),
        hour_ms: hour * HOUR,
        reads,
        writes,
        bytes: reads * 10,
    }
}

#[tokio::test]
async fn access_history_adds_up_per_hour_and_prunes_by_age() {
    let (guard, catalog) = open_tiering().await;
    catalog
        .add_access_history(&[
            bucket("a", 1, 2, 0),
            bucket("b", 1, 1, 1),
            bucket("a", 2, 5, 0),
        ])
        .await
        .unwrap();
    // A second flush of the same hour adds to it.
    catalog
        .add_access_history(&[bucket("a", 1, 3, 1)])
        .await
        .unwrap();
    catalog.close().await;

    let catalog = reopen_tiering(&guard).await;
    let all = catalog.access_history(0, None).await.unwrap();
    let a1 = HistoryBucket {
        key: "a".into(),
        hour_ms: HOUR,
        reads: 5,
        writes: 1,
        bytes: 50,
    };
    assert_eq!(all, vec![a1, bucket("b", 1, 1, 1), bucket("a", 2, 5, 0)]);
    let only_a = catalog.access_history(2 * HOUR, Some("a")).await.unwrap();
    assert_eq!(only_a, vec![bucket("a", 2, 5, 0)]);
    assert!(catalog
        .access_history(0, Some("missing"))
        .await
        .unwrap()
        .is_empty());

    assert_eq!(catalog.prune_access_history(2 * HOUR).await.unwrap(), 2);
    assert_eq!(
        catalog.access_history(0, None).await.unwrap(),
        vec![bucket("a", 2, 5, 0)]
    );
    catalog.close().await;
}

#[tokio::test]
async fn access_history_sums_saturate_instead_of_failing_the_flush() {
    let (_guard, catalog) = open_tiering().await;
    let max = i64::MAX as u64;
    let huge = HistoryBucket {
        key: "k".into(),
        hour_ms: HOUR,
        reads: max,
        writes: max - 1,
        bytes: 5,
    };
    catalog
        .add_access_history(std::slice::from_ref(&huge))
        .await
        .unwrap();
    catalog
        .add_access_history(&[bucket("k", 1, 2, 3)])
        .await
        .unwrap();
    let got = catalog.access_history(0, Some("k")).await.unwrap();
    let expected = HistoryBucket {
        reads: max,
        writes: max,
        bytes: 25,
        ..huge
    };
    assert_eq!(
        got,
        vec![expected],
        "sums past i64 stay at its largest value"
    );
}

const SOURCE: &str = "nats://127.0.0.1:4222/strata.access";

#[tokio::test]
async fn a_flush_stores_statistics_offsets_and_history_together_or_not_at_all() {
    let (guard, catalog) = open_tiering().await;
    let offset = StreamOffset {
        source: SOURCE.into(),
        partition: 0,
        next_offset: 7,
    };
    // The statistics row is written first inside the transaction; the history bucket no
    // engine can store fails the flush after it, and nothing of the flush is kept.
    let unstorable = HistoryBucket {
        reads: u64::MAX,
        ..bucket("b", 1, 0, 0)
    };
    let refused = AccessFlush {
        upserts: &[("a", "{}")],
        offsets: std::slice::from_ref(&offset),
        history: &[bucket("a", 1, 3, 0), unstorable],
        ..AccessFlush::default()
    };
    let err = catalog.save_access_flush(&refused, 1).await.unwrap_err();
    assert!(err.to_string().contains("reads"), "{err}");
    assert!(catalog.access_stats().await.unwrap().is_empty());
    assert!(catalog.stream_offsets(SOURCE).await.unwrap().is_empty());
    assert!(catalog.access_history(0, None).await.unwrap().is_empty());

    let stored = AccessFlush {
        history: &[bucket("a", 1, 3, 0)],
        ..refused
    };
    catalog.save_access_flush(&stored, 2).await.unwrap();
    // A flush of history alone (API reads, no stream) adds to the same hour.
    let history_only = AccessFlush {
        history: &[bucket("a", 1, 2, 0)],
        ..AccessFlush::default()
    };
    catalog.save_access_flush(&history_only, 3).await.unwrap();
    catalog.close().await;

    let catalog = reopen_tiering(&guard).await;
    assert_eq!(
        catalog.access_stats().await.unwrap(),
        [("a".to_string(), "{}".to_string())]
    );
    assert_eq!(catalog.stream_offsets(SOURCE).await.unwrap(), [offset]);
    assert_eq!(
        catalog.access_history(0, None).await.unwrap(),
        [bucket("a", 1, 5, 0)]
    );
    catalog.close().await;
}
