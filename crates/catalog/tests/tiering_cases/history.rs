//! The access history table, the same on every engine: counts of the same object and hour
//! add up across flushes (saturating, never failing a flush), reads are by time (one key or
//! all), pruning removes only the hours before the retention, and the rows survive a
//! reopen.

use strata_catalog::{HistoryBucket, TieringCatalog};

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
