//! The SQLite engine: the shared behaviour suite on an on-disk catalog and in memory, and
//! what only a file can show: durability across reopen, migrations, corruption and
//! foreign files.

mod behaviour;

use std::path::{Path, PathBuf};

use sqlx::{Connection, SqliteConnection};
use strata_catalog::{Catalog, CatalogError, FileState, JobState, SqliteCatalog};
use tempfile::TempDir;

use behaviour::{chunk, file, spec, update};

async fn on_disk() -> (TempDir, SqliteCatalog) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .unwrap();
    (dir, catalog)
}

mod disk {
    use super::*;
    behaviour_suite!(on_disk());
}

mod memory {
    use super::*;
    behaviour_suite!(async { ((), SqliteCatalog::open_in_memory().await.unwrap()) });
}

/// Opens a fresh catalog file, fills it with a job, closes it.
async fn filled_catalog(files: u32) -> (TempDir, PathBuf) {
    let (dir, catalog) = on_disk().await;
    let id = catalog.create_job(&spec("a", "b")).await.unwrap();
    let plan: Vec<_> = (0..files).map(|i| file(i, 4096)).collect();
    catalog.replace_plan(id, &plan).await.unwrap();
    catalog.close().await;
    let path = catalog.path().to_path_buf();
    (dir, path)
}

fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn assert_corrupt(result: Result<SqliteCatalog, CatalogError>, path: &Path) {
    match result {
        Err(err @ CatalogError::Corrupt { .. }) => {
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("--catalog PATH"), "{message}");
        }
        other => panic!("expected Corrupt for {}, got {other:?}", path.display()),
    }
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let (dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    let id = catalog
        .create_job(&spec("file:///src", "file:///dst"))
        .await
        .unwrap();
    catalog
        .replace_plan(id, &[file(0, 10), file(1, 9)])
        .await
        .unwrap();
    catalog
        .update_files(id, &[update(0, FileState::Done, Some(5), None)])
        .await
        .unwrap();
    catalog
        .record_verified_chunks(id, &[chunk(1, 0, 3), chunk(1, 2, 4)])
        .await
        .unwrap();
    catalog
        .set_job_state(id, JobState::Copying, Some("retrying"), None)
        .await
        .unwrap();
    let jobs = catalog.list_jobs().await.unwrap();
    let files = catalog.load_files(id).await.unwrap();
    let chunks = catalog.verified_chunks(id).await.unwrap();
    let options = catalog.job_options(id).await.unwrap();
    // Dropped without close, like a killed process: the WAL holds the commits.
    drop(catalog);

    let reopened = SqliteCatalog::open(&path).await.unwrap();
    assert_eq!(reopened.list_jobs().await.unwrap(), jobs);
    assert_eq!(reopened.load_files(id).await.unwrap(), files);
    assert_eq!(reopened.verified_chunks(id).await.unwrap(), chunks);
    assert_eq!(reopened.job_options(id).await.unwrap(), options);
    reopened.close().await;

    // And once more after a clean close, which checkpoints the WAL into the file.
    let again = SqliteCatalog::open(&path).await.unwrap();
    assert_eq!(again.list_jobs().await.unwrap(), jobs);
    drop(dir);
}

/// The versions of the SQLite migration files (`migrations/NNNN_name.sql`), in order.
fn migration_versions() -> Vec<i64> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".sql")?.split_once('_')?.0.parse().ok()
        })
        .collect();
    versions.sort();
    versions
}

#[tokio::test]
async fn migrations_run_once() {
    let (_dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    catalog.close().await;
    for _ in 0..3 {
        SqliteCatalog::open(&path).await.unwrap().close().await;
    }
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, migration_versions());
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn parent_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/catalog.db");
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    assert!(catalog.list_jobs().await.unwrap().is_empty());
    assert!(path.is_file());
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let (_dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    catalog.close().await;
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', TRUE, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    match SqliteCatalog::open(&path).await {
        Err(
            err @ CatalogError::SchemaTooNew {
                found: 9999,
                supported,
                ..
            },
        ) => {
            assert_eq!(Some(&supported), migration_versions().last());
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("upgrade strata"), "{message}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_in_the_header_is_reported_as_corruption() {
    let (_dir, path) = filled_catalog(10).await;
    overwrite(&path, 0, &[0xA5; 100]);
    let before = std::fs::read(&path).unwrap();
    assert_corrupt(SqliteCatalog::open(&path).await, &path);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "a damaged catalog was written to"
    );
}

#[tokio::test]
async fn garbage_in_the_middle_is_reported_as_corruption() {
    let (_dir, path) = filled_catalog(5000).await;
    let wal = std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "close should checkpoint the WAL");
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(
        len > 64 * 1024,
        "catalog too small to corrupt its middle: {len}"
    );
    overwrite(&path, len / 2, &[0x5A; 16 * 1024]);
    let before = std::fs::read(&path).unwrap();
    assert_corrupt(SqliteCatalog::open(&path).await, &path);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "a damaged catalog was written to"
    );
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(500)).unwrap();
    assert_corrupt(SqliteCatalog::open(&path).await, &path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("these are my notes"),
        "the file was modified"
    );
}

#[tokio::test]
async fn another_applications_database_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let before = std::fs::read(&path).unwrap();

    match SqliteCatalog::open(&path).await {
        Err(err @ CatalogError::NotACatalog { .. }) => {
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
        other => panic!("expected NotACatalog, got {other:?}"),
    }
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the foreign database was written to"
    );
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, vec!["photos".to_owned()]);
}

#[tokio::test]
async fn a_directory_at_the_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteCatalog::open(dir.path()).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, CatalogError::CannotOpen { .. }), "{err:?}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn two_processes_can_write_at_once() {
    let (_dir, first) = on_disk().await;
    let second = SqliteCatalog::open(first.path()).await.unwrap();
    let a = first.create_job(&spec("a", "x")).await.unwrap();
    let b = second.create_job(&spec("b", "x")).await.unwrap();
    first.replace_plan(a, &[file(0, 100)]).await.unwrap();
    second.replace_plan(b, &[file(0, 100)]).await.unwrap();
    let write = |catalog: SqliteCatalog, id| async move {
        for i in 0..50u64 {
            catalog
                .record_verified_chunks(id, &[chunk(0, i, 1)])
                .await?;
            catalog.job(id).await?;
        }
        Ok::<_, CatalogError>(())
    };
    let (ra, rb) = tokio::join!(
        tokio::spawn(write(first.clone(), a)),
        tokio::spawn(write(second.clone(), b))
    );
    ra.unwrap().unwrap();
    rb.unwrap().unwrap();
    assert_eq!(first.verified_chunks(b).await.unwrap().len(), 50);
    assert_eq!(second.verified_chunks(a).await.unwrap().len(), 50);
}
