//! The chunk values of `strata serve`'s objects: recorded with every version, checked
//! against the object's hash on the way in and out, absent for objects of an older
//! catalog until the service records them, never trusted when they do not merge into the
//! object's hash.

use std::path::Path;

use sqlx::{Connection, SqliteConnection};
use strata_catalog::{
    object_chunks, CatalogError, ChunkHashes, ObjectWrite, SqliteCatalog, TieringCatalog,
    OBJECT_CHUNK_SIZE,
};

/// Bytes of `len` from `seed`, long enough to span several chunks.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The chunk values and hash of `data`, as the service computes them.
fn hashed(data: &[u8]) -> (ChunkHashes, [u8; 32]) {
    let layout = object_chunks(data.len() as u64);
    let values = (0..layout.chunk_count())
        .map(|index| {
            let (offset, len) = layout.chunk_range(index);
            layout.chunk_value(index, &data[offset as usize..(offset + len) as usize])
        })
        .collect();
    let hash = *blake3::hash(data).as_bytes();
    (
        ChunkHashes::new(values, data.len() as u64, &hash).unwrap(),
        hash,
    )
}

fn write_of(key: &str, data: &[u8], now_ms: i64) -> ObjectWrite {
    let (chunk_hashes, hash) = hashed(data);
    ObjectWrite {
        key: key.into(),
        tier: "warm".into(),
        size: data.len() as u64,
        hash,
        chunk_hashes,
        now_ms,
    }
}

async fn open(dir: &Path) -> SqliteCatalog {
    SqliteCatalog::open(&dir.join("catalog.db")).await.unwrap()
}

/// Runs `sql` on the closed catalog file, behind the catalog's back.
async fn exec(path: &Path, sql: &str) {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
    assert!(done.rows_affected() > 0, "{sql} changed nothing");
    conn.close().await.unwrap();
}

#[test]
fn chunk_values_must_merge_into_the_object_hash() {
    let bytes = data(2 * OBJECT_CHUNK_SIZE as usize + 5, 1);
    let (chunks, hash) = hashed(&bytes);
    assert_eq!(chunks.values().len(), 3);
    assert_eq!(ChunkHashes::compute(&bytes), (hash, chunks.clone()));
    let empty = ChunkHashes::compute(b"");
    assert_eq!(empty.0, *blake3::hash(b"").as_bytes());
    let size = bytes.len() as u64;
    assert_eq!(
        ChunkHashes::from_blob(&chunks.to_blob(), size, &hash),
        Ok(chunks.clone())
    );

    let mut swapped = chunks.values().to_vec();
    swapped.swap(0, 1);
    let err = ChunkHashes::new(swapped, size, &hash).unwrap_err();
    assert!(err.contains("merge into"), "{err}");
    let err = ChunkHashes::new(chunks.values()[..2].to_vec(), size, &hash).unwrap_err();
    assert!(err.contains("expected 3 chunk values"), "{err}");
    let err = ChunkHashes::from_blob(&chunks.to_blob()[..95], size, &hash).unwrap_err();
    assert!(err.contains("32-byte"), "{err}");
    assert!(
        chunks.check(size - 6, &hash).is_err(),
        "a size of two chunks"
    );
}

#[tokio::test]
async fn chunk_values_are_recorded_with_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(dir.path()).await;
    let first = data(3 * OBJECT_CHUNK_SIZE as usize + 17, 2);
    let placed = catalog
        .commit_write(&write_of("k", &first, 10))
        .await
        .unwrap();
    assert_eq!(placed.object.chunk_hashes, Some(hashed(&first).0));

    let second = data(OBJECT_CHUNK_SIZE as usize + 1, 3);
    catalog
        .commit_write(&write_of("k", &second, 20))
        .await
        .unwrap();
    catalog.close().await;

    let catalog = open(dir.path()).await;
    let loaded = catalog.placed_object("k").await.unwrap().unwrap();
    assert_eq!(loaded.object.generation, 2);
    assert_eq!(loaded.object.chunk_hashes, Some(hashed(&second).0));
}

#[tokio::test]
async fn a_write_whose_chunk_values_are_not_its_own_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(dir.path()).await;
    let bytes = data(2 * OBJECT_CHUNK_SIZE as usize, 4);
    let mut write = write_of("k", &bytes, 10);
    write.chunk_hashes = hashed(&data(bytes.len(), 5)).0;
    let err = catalog.commit_write(&write).await.unwrap_err();
    assert!(matches!(err, CatalogError::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("\"k\""), "{err}");
    assert!(catalog.placed_object("k").await.unwrap().is_none());
}

#[tokio::test]
async fn stored_chunk_values_that_do_not_merge_into_the_hash_are_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(dir.path()).await;
    let bytes = data(2 * OBJECT_CHUNK_SIZE as usize + 9, 6);
    catalog
        .commit_write(&write_of("k", &bytes, 10))
        .await
        .unwrap();
    catalog.close().await;
    // One byte of the second value flipped behind the catalog's back.
    let path = dir.path().join("catalog.db");
    exec(
        &path,
        "UPDATE objects SET chunk_hashes = substr(chunk_hashes, 1, 40)
             || char(unicode(substr(chunk_hashes, 41, 1)) + 1) || substr(chunk_hashes, 42)",
    )
    .await;
    let catalog = open(dir.path()).await;
    let loaded = catalog.placed_object("k").await.unwrap().unwrap();
    assert_eq!(loaded.object.chunk_hashes, None);
    assert_eq!(loaded.object.hash, *blake3::hash(&bytes).as_bytes());
}

#[tokio::test]
async fn objects_without_chunk_values_get_them_recorded_for_their_generation() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(dir.path()).await;
    let bytes = data(2 * OBJECT_CHUNK_SIZE as usize + 3, 7);
    catalog
        .commit_write(&write_of("k", &bytes, 10))
        .await
        .unwrap();
    catalog.close().await;
    // As an object written before migration 0004 has them.
    exec(
        &dir.path().join("catalog.db"),
        "UPDATE objects SET chunk_hashes = NULL",
    )
    .await;

    let catalog = open(dir.path()).await;
    let legacy = catalog.placed_object("k").await.unwrap().unwrap();
    assert_eq!(legacy.object.chunk_hashes, None);
    let (chunks, _) = hashed(&bytes);
    assert!(
        !catalog.set_chunk_hashes("k", 2, &chunks).await.unwrap(),
        "old generation"
    );
    assert!(!catalog.set_chunk_hashes("gone", 1, &chunks).await.unwrap());
    let others = hashed(&data(bytes.len(), 8)).0;
    let err = catalog.set_chunk_hashes("k", 1, &others).await.unwrap_err();
    assert!(matches!(err, CatalogError::InvalidInput(_)), "{err:?}");
    assert_eq!(
        catalog
            .placed_object("k")
            .await
            .unwrap()
            .unwrap()
            .object
            .chunk_hashes,
        None
    );
    assert!(catalog.set_chunk_hashes("k", 1, &chunks).await.unwrap());
    assert_eq!(
        catalog
            .placed_object("k")
            .await
            .unwrap()
            .unwrap()
            .object
            .chunk_hashes,
        Some(chunks)
    );
}
