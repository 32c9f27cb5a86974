//! The access history table through [`TieringCatalog`]: counts of the same object and hour
//! add up across flushes, reads are by time (one key or all), and pruning removes only the
//! hours before the retention; the rows survive a reopen.

use strata_catalog::{HistoryBucket, SqliteCatalog, TieringCatalog};

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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let catalog = SqliteCatalog::open(&path).await.unwrap();
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

    let catalog = SqliteCatalog::open(&path).await.unwrap();
    let all = catalog.access_history(0, None).await.unwrap();
    assert_eq!(
        all,
        vec![
            HistoryBucket {
                key: "a".into(),
                hour_ms: HOUR,
                reads: 5,
                writes: 1,
                bytes: 50,
            },
            bucket("b", 1, 1, 1),
            bucket("a", 2, 5, 0),
        ]
    );
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
