//! Start-up recovery after a crash in the middle of a write: what an interrupted write
//! left is cleared, and nothing a client stored is taken for it.

mod common;

use common::*;
use strata_catalog::{SqliteCatalog, TieringCatalog};
use strata_server::Limits;

/// Leaves what a process killed while writing `key` on `tier` leaves: the write intent in
/// the catalog, and a staged copy in the tier's staging area.
async fn crash_during_write(data_dir: &std::path::Path, tier: &str, key: &str) {
    let catalog = SqliteCatalog::open(&data_dir.join("catalog.db"))
        .await
        .unwrap();
    catalog.begin_write(key, tier, 1).await.unwrap();
    catalog.close().await;
    let staging = data_dir.join("tiers").join(tier).join(".strata/staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(
        staging.join("0123456789abcdef.99999999.0.atomic"),
        b"half written",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_objects_named_like_temporary_files_survive_recovery() {
    let mut server = start(TEST_RULES).await;
    let lookalikes = [
        "dir/.big.strata-tmp.1.0",
        "dir/.big.strata-tmp.4242.0.atomic",
    ];
    for (i, key) in lookalikes.iter().enumerate() {
        let response = server.put(key, &bytes(1000, i as u64)).await;
        assert_eq!(response.status(), 201, "PUT {key}");
    }
    assert_eq!(server.put("dir/big", &bytes(500, 9)).await.status(), 201);
    // The tier holds the objects only: no write left a temporary name among them.
    assert_eq!(
        files_on(&server.tier_dir("warm")),
        [
            "dir/.big.strata-tmp.1.0",
            "dir/.big.strata-tmp.4242.0.atomic",
            "dir/big"
        ]
    );
    let dir = server.stop().await;

    crash_during_write(dir.path(), "warm", "dir/big").await;
    // An old-style temporary file of the interrupted write (as earlier versions left
    // beside the key), which no object owns.
    let legacy = dir
        .path()
        .join("tiers/warm/objects/dir/.big.strata-tmp.777.3");
    std::fs::write(&legacy, b"stale").unwrap();

    let server = start_in(dir, TEST_RULES, Limits::default()).await;
    let recovery = &server.server.as_ref().unwrap().recovery;
    assert_eq!(recovery.writes_dropped, 1, "{recovery:?}");
    assert_eq!(recovery.temp_files_removed, 2, "{recovery:?}");
    for (i, key) in lookalikes.iter().enumerate() {
        assert_eq!(
            server.object(key).await,
            bytes(1000, i as u64),
            "{key} after recovery"
        );
    }
    assert_eq!(server.object("dir/big").await, bytes(500, 9));
    assert!(!legacy.exists(), "the stale temporary file is removed");
    let staging = server.tier_dir("warm").join(".strata/staging");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
}
