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

/// Records the write intents of `keys` on `tier`, as the group commit does for the writes
/// queued while a group commits (with that group's rows), in the catalog of `data_dir`.
async fn intents_recorded_ahead(data_dir: &std::path::Path, tier: &str, keys: &[&str]) {
    let catalog = SqliteCatalog::open(&data_dir.join("catalog.db"))
        .await
        .unwrap();
    let intents: Vec<(String, String)> = keys
        .iter()
        .map(|key| (key.to_string(), tier.to_string()))
        .collect();
    catalog.begin_writes(&intents, 2).await.unwrap();
    catalog.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_killed_before_their_group_keep_the_old_content() {
    let mut server = start(TEST_RULES).await;
    assert_eq!(server.put("queued/old", &bytes(700, 1)).await.status(), 201);
    let dir = server.stop().await;
    // Killed while two writes were queued: their intents recorded ahead, their staged
    // files written and flushed, neither renamed into place.
    intents_recorded_ahead(dir.path(), "warm", &["queued/old", "queued/new"]).await;
    let staging = dir.path().join("tiers/warm/.strata/staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(
        staging.join("00112233445566778899aabbccddeeff.part"),
        bytes(700, 2),
    )
    .unwrap();
    std::fs::write(
        staging.join("ffeeddccbbaa99887766554433221100.part"),
        bytes(300, 3),
    )
    .unwrap();

    let server = start_in(dir, TEST_RULES, Limits::default()).await;
    let recovery = &server.server.as_ref().unwrap().recovery;
    assert_eq!(
        (recovery.writes_dropped, recovery.writes_adopted),
        (2, 0),
        "{recovery:?}"
    );
    assert_eq!(server.object("queued/old").await, bytes(700, 1));
    assert_eq!(server.get("/v1/objects/queued/new").await.status(), 404);
    assert_eq!(
        std::fs::read_dir(server.tier_dir("warm").join(".strata/staging"))
            .unwrap()
            .count(),
        0,
        "the staged files of the queued writes are removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_killed_between_its_rename_and_its_row_is_adopted() {
    let mut server = start(TEST_RULES).await;
    assert_eq!(
        server.put("renamed/old", &bytes(900, 1)).await.status(),
        201
    );
    let dir = server.stop().await;
    // Killed after the group's files were renamed into place and their directory flushed,
    // before the commit transaction: the intents are there, the new bytes too, no rows.
    intents_recorded_ahead(dir.path(), "warm", &["renamed/old", "renamed/new"]).await;
    let objects = dir.path().join("tiers/warm/objects/renamed");
    std::fs::write(objects.join("old"), bytes(900, 2)).unwrap();
    std::fs::write(objects.join("new"), bytes(400, 3)).unwrap();

    let server = start_in(dir, TEST_RULES, Limits::default()).await;
    let recovery = &server.server.as_ref().unwrap().recovery;
    assert_eq!(
        (recovery.writes_adopted, recovery.writes_dropped),
        (2, 0),
        "{recovery:?}"
    );
    assert_eq!(server.object("renamed/old").await, bytes(900, 2));
    assert_eq!(server.object("renamed/new").await, bytes(400, 3));
    // Recorded as versions: the replaced object's next generation, the new one's first.
    let listed = server.json("/v1/objects?prefix=renamed/").await;
    let generations: Vec<(String, i64)> = listed["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap().to_string(),
                o["generation"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        generations,
        vec![("renamed/new".into(), 1), ("renamed/old".into(), 2)]
    );
}
