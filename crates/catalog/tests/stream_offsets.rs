//! Stream offsets through [`TieringCatalog`], on both engines: stored with the access
//! statistics in one transaction (both or neither), replaced per source and partition, kept
//! apart per source, and still there after a reopen.

use strata_catalog::{
    AccessFlush, PostgresCatalog, PostgresUrl, SqliteCatalog, StreamOffset, TieringCatalog,
};
use strata_testsupport::postgres;

fn offset(source: &str, partition: i32, next_offset: i64) -> StreamOffset {
    StreamOffset {
        source: source.into(),
        partition,
        next_offset,
    }
}

const TOPIC: &str = "kafka://127.0.0.1:9092/access_events";

/// Stores offsets and statistics, then a later position and another source.
async fn store_two_rounds(catalog: &dyn TieringCatalog) {
    assert!(catalog.stream_offsets(TOPIC).await.unwrap().is_empty());
    let first = AccessFlush {
        upserts: &[("a", "{}")],
        offsets: &[offset(TOPIC, 0, 10), offset(TOPIC, 1, 4)],
        ..AccessFlush::default()
    };
    catalog.save_access_flush(&first, 1).await.unwrap();
    // A later position replaces the stored one; another source is kept apart.
    let second = AccessFlush {
        offsets: &[offset(TOPIC, 0, 25), offset("kafka://other:9092/t", 0, 7)],
        ..AccessFlush::default()
    };
    catalog.save_access_flush(&second, 2).await.unwrap();
}

/// What [`store_two_rounds`] left, as a reopened catalog reads it.
async fn check_two_rounds(catalog: &dyn TieringCatalog) {
    assert_eq!(
        catalog.stream_offsets(TOPIC).await.unwrap(),
        [offset(TOPIC, 0, 25), offset(TOPIC, 1, 4)]
    );
    assert_eq!(
        catalog
            .stream_offsets("kafka://other:9092/t")
            .await
            .unwrap(),
        [offset("kafka://other:9092/t", 0, 7)]
    );
    let stats = catalog.access_stats().await.unwrap();
    assert_eq!(stats, [("a".to_string(), "{}".to_string())]);
}

async fn a_refused_offset_stores_nothing(catalog: &dyn TieringCatalog) {
    let refused = AccessFlush {
        upserts: &[("a", "{}")],
        offsets: &[offset(TOPIC, 0, 3), offset(TOPIC, 1, -1)],
        ..AccessFlush::default()
    };
    let err = catalog.save_access_flush(&refused, 1).await.unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
    assert!(catalog.access_stats().await.unwrap().is_empty());
    assert!(catalog.stream_offsets(TOPIC).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_offsets_are_stored_with_the_statistics_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    store_two_rounds(&catalog).await;
    catalog.close().await;
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    check_two_rounds(&catalog).await;
    catalog.close().await;
}

#[tokio::test]
async fn sqlite_a_refused_offset_stores_neither_the_statistics_nor_any_offset() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .unwrap();
    a_refused_offset_stores_nothing(&catalog).await;
    catalog.close().await;
}

fn fresh_postgres() -> PostgresUrl {
    PostgresUrl::parse(&postgres::shared().fresh_database()).unwrap()
}

#[tokio::test]
async fn postgres_offsets_are_stored_with_the_statistics_and_survive_a_reopen() {
    let url = fresh_postgres();
    store_two_rounds(&PostgresCatalog::open(&url).await.unwrap()).await;
    check_two_rounds(&PostgresCatalog::open(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_a_refused_offset_stores_neither_the_statistics_nor_any_offset() {
    a_refused_offset_stores_nothing(&PostgresCatalog::open(&fresh_postgres()).await.unwrap()).await;
}
