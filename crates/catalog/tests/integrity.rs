//! Row checksums on a real catalog file: written with every row, checked on every read,
//! rows changed behind the catalog's back refused, older catalogs sealed once by the
//! migration, the full check, and the import of a rebuilt job.

// For its row builders only; the suite itself runs from `sqlite.rs`.
#[allow(dead_code)]
mod behaviour;

use std::path::{Path, PathBuf};

use sqlx::{Connection, SqliteConnection};
use strata_catalog::{
    Catalog, CatalogError, CompletedFile, CompletedJob, FileState, JobState, SqliteCatalog,
};
use tempfile::TempDir;

use behaviour::{chunk, file, spec, update};

const DST: &str = "file:///archive/run1";

async fn on_disk() -> (TempDir, SqliteCatalog) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .unwrap();
    (dir, catalog)
}

/// A raw connection to the catalog file, behind the catalog's back.
async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

async fn exec(path: &Path, sql: &str) {
    let mut conn = raw(path).await;
    let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
    assert!(done.rows_affected() > 0, "{sql} changed nothing");
    conn.close().await.unwrap();
}

/// A job to `DST` with three files (one done), and chunks of file 1.
async fn filled(catalog: &SqliteCatalog) -> i64 {
    let id = catalog.create_job(&spec("file:///src", DST)).await.unwrap();
    catalog
        .replace_plan(id, &[file(0, 10), file(1, 9), file(2, 3)])
        .await
        .unwrap();
    catalog
        .update_files(id, &[update(0, FileState::Done, Some(5), None)])
        .await
        .unwrap();
    catalog
        .record_verified_chunks(id, &[chunk(1, 0, 3), chunk(1, 1, 4)])
        .await
        .unwrap();
    id
}

fn expect_corrupt<T: std::fmt::Debug>(
    result: Result<T, CatalogError>,
    table: &str,
    row_part: &str,
    path: &Path,
) -> String {
    match result {
        Err(err @ CatalogError::CorruptRow { .. }) => {
            let CatalogError::CorruptRow {
                table: found,
                row,
                job,
                ..
            } = &err
            else {
                unreachable!()
            };
            assert_eq!(*found, table, "{err}");
            assert!(row.contains(row_part), "{row} lacks {row_part}");
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(
                message.contains(&format!("strata catalog rebuild --from {DST}")),
                "{message}"
            );
            assert!(message.contains("strata catalog check"), "{message}");
            assert!(
                message.contains(&format!("strata catalog delete-job {job}")),
                "{message}"
            );
            message
        }
        other => panic!("expected CorruptRow in {table}, got {other:?}"),
    }
}

async fn checksums(path: &Path, table: &str) -> Vec<Option<Vec<u8>>> {
    let mut conn = raw(path).await;
    let sql = format!("SELECT checksum FROM {table}");
    let sums = sqlx::query_scalar(&sql).fetch_all(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    sums
}

#[tokio::test]
async fn every_write_stores_a_checksum_and_every_update_renews_it() {
    let (_dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    let id = filled(&catalog).await;
    for table in ["jobs", "files", "verified_chunks"] {
        let sums = checksums(&path, table).await;
        assert!(!sums.is_empty());
        assert!(
            sums.iter()
                .all(|s| s.as_ref().is_some_and(|s| s.len() == 16)),
            "{table}: {sums:?}"
        );
    }

    let before = checksums(&path, "files").await;
    catalog
        .update_files(id, &[update(2, FileState::Failed, None, Some("gone"))])
        .await
        .unwrap();
    let after = checksums(&path, "files").await;
    assert_eq!(before[0..2], after[0..2], "untouched rows keep theirs");
    assert_ne!(before[2], after[2], "the updated row has a new checksum");

    let before = checksums(&path, "verified_chunks").await;
    catalog
        .record_verified_chunks(id, &[chunk(1, 0, 9)])
        .await
        .unwrap();
    assert_ne!(checksums(&path, "verified_chunks").await[0], before[0]);

    let before = checksums(&path, "jobs").await;
    catalog
        .set_job_state(id, JobState::Copying, None, None)
        .await
        .unwrap();
    let copying = checksums(&path, "jobs").await;
    assert_ne!(copying, before);
    catalog
        .set_job_state(id, JobState::Done, None, Some("abc"))
        .await
        .unwrap();
    assert_ne!(checksums(&path, "jobs").await, copying);

    // Everything written reads back, and the full check agrees.
    assert_eq!(catalog.load_files(id).await.unwrap().len(), 3);
    assert_eq!(catalog.verified_chunks(id).await.unwrap().len(), 2);
    assert_eq!(
        catalog.job(id).await.unwrap().unwrap().state,
        JobState::Done
    );
    let report = catalog.check().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        (
            report.jobs_checked,
            report.files_checked,
            report.chunks_checked
        ),
        (1, 3, 2)
    );
}

#[tokio::test]
async fn a_file_hash_changed_behind_the_catalogs_back_is_refused() {
    let (_dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    let id = filled(&catalog).await;
    let other = catalog
        .create_job(&spec("file:///src", "file:///elsewhere"))
        .await
        .unwrap();
    catalog.replace_plan(other, &[file(0, 1)]).await.unwrap();

    exec(
        &path,
        "UPDATE files SET hash = zeroblob(32) WHERE job_id = 1 AND file_index = 0",
    )
    .await;
    let message = expect_corrupt(catalog.load_files(id).await, "files", "file 0", &path);
    assert!(message.contains("dir/file-0.dat"), "{message}");
    // An update does not seal the damaged row with a fresh checksum.
    expect_corrupt(
        catalog
            .update_files(id, &[update(0, FileState::Pending, None, None)])
            .await,
        "files",
        "file 0",
        &path,
    );
    expect_corrupt(catalog.load_files(id).await, "files", "file 0", &path);
    // Other jobs are still readable.
    assert_eq!(catalog.load_files(other).await.unwrap().len(), 1);

    let report = catalog.check().await.unwrap();
    assert!(!report.is_clean());
    assert!(report.integrity.is_empty(), "SQLite sees nothing wrong");
    assert_eq!(report.corrupt_rows_total, 1);
    assert_eq!(report.corrupt_rows[0].table, "files");
    assert_eq!(report.corrupt_rows[0].job, id);
    assert!(report.corrupt_rows[0].row.contains("file 0"));
}

#[tokio::test]
async fn a_state_flipped_to_done_is_refused() {
    // The damage that would make a resumed migration skip a file it never copied.
    let (_dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    let id = filled(&catalog).await;
    exec(
        &path,
        "UPDATE files SET state = 'done', hash = randomblob(32) WHERE file_index = 2",
    )
    .await;
    expect_corrupt(catalog.load_files(id).await, "files", "file 2", &path);
}

#[tokio::test]
async fn a_chunk_value_changed_behind_the_catalogs_back_is_refused() {
    let (_dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    let id = filled(&catalog).await;
    exec(
        &path,
        "UPDATE verified_chunks SET chaining_value = zeroblob(32) WHERE chunk_index = 1",
    )
    .await;
    expect_corrupt(
        catalog.verified_chunks(id).await,
        "verified_chunks",
        "file 1, chunk 1",
        &path,
    );
    // A chunk moved to another position does not verify either.
    exec(
        &path,
        "UPDATE verified_chunks SET chaining_value = x'0404040404040404040404040404040404040404040404040404040404040404'",
    )
    .await;
    exec(
        &path,
        "UPDATE verified_chunks SET chunk_index = 7 WHERE chunk_index = 1",
    )
    .await;
    expect_corrupt(
        catalog.verified_chunks(id).await,
        "verified_chunks",
        "chunk",
        &path,
    );
    // A fresh upsert of the same chunk replaces the damaged row with a good one.
    catalog
        .record_verified_chunks(id, &[chunk(1, 0, 3), chunk(1, 7, 7)])
        .await
        .unwrap();
    assert_eq!(catalog.verified_chunks(id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_job_row_changed_behind_the_catalogs_back_is_refused() {
    let (_dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    let id = filled(&catalog).await;
    // Chunk indexes mean nothing under another chunk size.
    exec(&path, "UPDATE jobs SET chunk_size = 8").await;
    expect_corrupt(catalog.job(id).await, "jobs", "job 1", &path);
    expect_corrupt(
        catalog.find_job("file:///src", DST).await,
        "jobs",
        "job 1",
        &path,
    );
    expect_corrupt(catalog.list_jobs().await, "jobs", "job 1", &path);
    expect_corrupt(catalog.job_options(id).await, "jobs", "job 1", &path);
    expect_corrupt(
        catalog.set_job_state(id, JobState::Done, None, None).await,
        "jobs",
        "job 1",
        &path,
    );
}

#[tokio::test]
async fn a_missing_checksum_is_damage() {
    let (_dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    let id = filled(&catalog).await;
    exec(
        &path,
        "UPDATE files SET checksum = NULL WHERE file_index = 1",
    )
    .await;
    let message = expect_corrupt(catalog.load_files(id).await, "files", "file 1", &path);
    assert!(message.contains("no checksum"), "{message}");
    // Reopening does not seal it: the back-fill ran once, with the migration.
    catalog.close().await;
    let reopened = SqliteCatalog::open(&path).await.unwrap();
    expect_corrupt(reopened.load_files(id).await, "files", "file 1", &path);
}

/// A catalog as Strata wrote it before row checksums: migrations 1 and 2 only.
async fn catalog_before_checksums(dir: &Path) -> PathBuf {
    let migrations = dir.join("old-migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for name in ["0001_jobs.sql", "0002_tiering.sql"] {
        std::fs::copy(shipped.join(name), migrations.join(name)).unwrap();
    }
    let path = dir.join("old.db");
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let migrator = sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap();
    migrator.run(&mut conn).await.unwrap();
    for sql in [
        "INSERT INTO jobs (id, source, destination, state, chunk_size, options_json, created_at, updated_at, root_hash)
         VALUES (1, 'file:///src', 'file:///archive/run1', 'done', 4, '{}', 1700000000, 1700000001, 'feed')",
        "INSERT INTO files (job_id, file_index, path, size, mtime_ns, mode, state, hash)
         VALUES (1, 0, 'a', 6, 17, 420, 'done', zeroblob(32)),
                (1, 1, 'b', 2, NULL, NULL, 'pending', NULL)",
        "INSERT INTO verified_chunks (job_id, file_index, chunk_index, chaining_value)
         VALUES (1, 0, 0, zeroblob(32)), (1, 0, 1, zeroblob(32))",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    path
}

#[tokio::test]
async fn rows_of_an_older_catalog_get_their_checksums_with_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = catalog_before_checksums(dir.path()).await;
    let mut conn = raw(&path).await;
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('files')")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(!columns.iter().any(|c| c == "checksum"), "{columns:?}");
    conn.close().await.unwrap();

    let catalog = SqliteCatalog::open(&path).await.unwrap();
    let job = catalog.job(1).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.root_hash.as_deref()),
        (JobState::Done, Some("feed"))
    );
    let files = catalog.load_files(1).await.unwrap();
    assert_eq!(files[0].planned.path, "a");
    assert_eq!(files[0].hash, Some([0; 32]));
    assert_eq!(files[1].state, FileState::Pending);
    assert_eq!(catalog.verified_chunks(1).await.unwrap().len(), 2);
    assert!(catalog.check().await.unwrap().is_clean());
    for table in ["jobs", "files", "verified_chunks"] {
        assert!(
            checksums(&path, table).await.iter().all(Option::is_some),
            "{table} not back-filled"
        );
    }
    let mut conn = raw(&path).await;
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    conn.close().await.unwrap();

    // From now on, damage to those rows is detected like any other.
    exec(&path, "UPDATE files SET size = 7 WHERE path = 'a'").await;
    expect_corrupt(catalog.load_files(1).await, "files", "\"a\"", &path);
}

fn completed(source: &str, sizes: &[u64]) -> CompletedJob {
    CompletedJob {
        source: source.into(),
        destination: DST.into(),
        chunk_size: 4,
        options_json: "{}".into(),
        files: sizes
            .iter()
            .enumerate()
            .map(|(i, size)| CompletedFile {
                planned: file(i as u32, *size),
                hash: Some([i as u8; 32]),
                chunks: if *size > 4 {
                    vec![[1; 32], [2; 32]]
                } else {
                    vec![]
                },
            })
            .collect(),
        root_hash: "root".into(),
        incomplete: None,
    }
}

#[tokio::test]
async fn an_import_replaces_every_job_to_the_destination_even_damaged_ones() {
    let (_dir, catalog) = on_disk().await;
    let path = catalog.path().to_path_buf();
    let old = filled(&catalog).await;
    let kept = catalog
        .create_job(&spec("file:///src", "file:///elsewhere"))
        .await
        .unwrap();
    exec(&path, "UPDATE files SET size = 99 WHERE job_id = 1").await;

    let imported = catalog
        .import_completed_job(&completed("file:///src", &[8, 3]))
        .await
        .unwrap();
    assert_eq!(imported.replaced.len(), 1);
    assert_eq!(imported.replaced[0].id, old);
    assert!(imported.job > kept);
    let job = catalog.find_job("file:///src", DST).await.unwrap().unwrap();
    assert_eq!(job.id, imported.job);
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.root_hash.as_deref(), Some("root"));
    assert_eq!((job.files_total, job.files_done), (2, 2));
    assert_eq!((job.bytes_total, job.bytes_done), (11, 11));
    let files = catalog.load_files(job.id).await.unwrap();
    assert!(files.iter().all(|f| f.state == FileState::Done));
    assert_eq!(files[1].hash, Some([1; 32]));
    let chunks = catalog.verified_chunks(job.id).await.unwrap();
    assert_eq!(chunks, vec![chunk(0, 0, 1), chunk(0, 1, 2)]);
    assert!(catalog.check().await.unwrap().is_clean());
    assert!(
        catalog.job(kept).await.unwrap().is_some(),
        "other destinations stay"
    );

    // A file without a hash is pending, and the job failed with the reason given.
    let mut partial = completed("unknown-source:", &[8, 3]);
    partial.files[1].hash = None;
    partial.incomplete = Some("1 file missing at the destination".into());
    let again = catalog.import_completed_job(&partial).await.unwrap();
    assert_eq!(again.replaced[0].id, imported.job);
    let job = catalog.job(again.job).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.root_hash, None);
    assert_eq!(
        job.last_error.as_deref(),
        Some("1 file missing at the destination")
    );
    assert_eq!((job.files_total, job.files_done), (2, 1));
    assert_eq!(catalog.list_jobs().await.unwrap().len(), 2);

    // A plan that could not be created changes nothing.
    let mut bad = completed("file:///src", &[1]);
    bad.files[0].planned.index = 5;
    let err = catalog.import_completed_job(&bad).await.unwrap_err();
    assert!(matches!(err, CatalogError::InvalidInput(_)), "{err:?}");
    assert!(catalog.job(again.job).await.unwrap().is_some());
}
