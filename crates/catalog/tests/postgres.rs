//! The PostgreSQL engine: the shared behaviour suite on a real server (one per test
//! binary, a fresh database per test, `strata-testsupport`), and what only a server can
//! show: rows altered behind the catalog's back, concurrent writers racing on one job,
//! an unreachable or foreign database, and a password that is never shown.

mod behaviour;
mod tiering_cases;

use std::sync::Arc;

use strata_catalog::{
    Catalog, CatalogError, CatalogSpec, FileState, JobState, PostgresCatalog, PostgresUrl,
};
use strata_testsupport::postgres::{self, PostgresServer};

use behaviour::{chunk, file, spec, update};

fn url(text: &str) -> PostgresUrl {
    PostgresUrl::parse(text).unwrap()
}

/// A catalog on a fresh database of the shared server, and that database's name.
async fn fresh() -> (String, PostgresCatalog) {
    let text = postgres::shared().fresh_database();
    let name = text.rsplit('/').next().unwrap().to_string();
    (name, PostgresCatalog::open(&url(&text)).await.unwrap())
}

mod suite {
    use super::*;
    behaviour_suite!(fresh());
}

type TieringGuard = String;
type TieringEngine = PostgresCatalog;

async fn open_tiering() -> (TieringGuard, TieringEngine) {
    let text = postgres::shared().fresh_database();
    (
        text.clone(),
        PostgresCatalog::open(&url(&text)).await.unwrap(),
    )
}

async fn reopen_tiering(text: &TieringGuard) -> TieringEngine {
    PostgresCatalog::open(&url(text)).await.unwrap()
}

#[tokio::test]
async fn reopening_finds_the_schema_applied_and_the_rows_kept() {
    let server = postgres::shared();
    let text = server.fresh_database();
    let catalog = PostgresCatalog::open(&url(&text)).await.unwrap();
    let id = catalog.create_job(&spec("a", "b")).await.unwrap();
    catalog.replace_plan(id, &[file(0, 10)]).await.unwrap();
    catalog.close().await;
    let again = PostgresCatalog::open(&url(&text)).await.unwrap();
    assert_eq!(again.load_files(id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_row_altered_behind_the_catalogs_back_is_refused_and_checked() {
    let (db, catalog) = fresh().await;
    let id = catalog.create_job(&spec("src", "dst")).await.unwrap();
    catalog
        .replace_plan(id, &[file(0, 10), file(1, 20)])
        .await
        .unwrap();
    catalog
        .record_verified_chunks(id, &[chunk(1, 0, 7)])
        .await
        .unwrap();
    let clean = catalog.check().await.unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!(
        (
            clean.jobs_checked,
            clean.files_checked,
            clean.chunks_checked
        ),
        (1, 2, 1)
    );

    postgres::shared()
        .sql_in(&db, "UPDATE files SET size = 11 WHERE file_index = 0")
        .unwrap();
    let err = catalog.load_files(id).await.unwrap_err();
    match &err {
        CatalogError::CorruptRow {
            table, destination, ..
        } => {
            assert_eq!(*table, "files");
            assert_eq!(destination.as_deref(), Some("dst"));
        }
        other => panic!("expected CorruptRow, got {other:?}"),
    }
    assert!(err.to_string().contains("rebuild --from dst"), "{err}");
    // An update must not seal the damage with a fresh checksum.
    let sealed = catalog
        .update_files(id, &[update(0, FileState::Done, Some(1), None)])
        .await;
    assert!(
        matches!(sealed, Err(CatalogError::CorruptRow { .. })),
        "{sealed:?}"
    );

    let report = catalog.check().await.unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.corrupt_rows_total, 1);
    assert_eq!(report.corrupt_rows[0].table, "files");
    assert!(report.corrupt_rows[0].row.contains("file 0"), "{report:?}");
}

#[tokio::test]
async fn racing_writers_never_move_a_job_backwards() {
    let (_db, catalog) = fresh().await;
    let catalog = Arc::new(catalog);
    for round in 0..5 {
        let id = catalog
            .create_job(&spec("s", &format!("d{round}")))
            .await
            .unwrap();
        catalog
            .set_job_state(id, JobState::Copying, None, None)
            .await
            .unwrap();
        // Writers cancel the job while others move it on to verifying. A cancel is
        // allowed from either state; nothing leaves `cancelled` for `verifying`. So
        // whatever the order, every cancel succeeds and the job ends cancelled: a verify
        // that read `copying` before a cancel committed must check again under the row
        // lock and be refused, not overwrite the cancel.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let catalog = Arc::clone(&catalog);
            let state = if i % 2 == 0 {
                JobState::Verifying
            } else {
                JobState::Cancelled
            };
            tasks.push(tokio::spawn(async move {
                (state, catalog.set_job_state(id, state, None, None).await)
            }));
        }
        for task in tasks {
            match task.await.unwrap() {
                (JobState::Cancelled, result) => result.unwrap(),
                (_, Ok(())) | (_, Err(CatalogError::IllegalTransition { .. })) => {}
                (_, Err(other)) => panic!("unexpected {other:?}"),
            }
        }
        let state = catalog.job(id).await.unwrap().unwrap().state;
        assert_eq!(state, JobState::Cancelled, "round {round}");
    }
}

#[tokio::test]
async fn a_stopped_server_is_a_clear_error_that_names_it_without_the_password() {
    let server = PostgresServer::start().unwrap();
    let text = server.url_with_password("postgres", "pw-never-shown");
    let catalog = PostgresCatalog::open(&url(&text)).await.unwrap();
    server.stop();
    let endpoint = format!("127.0.0.1:{}", server.port());

    let err = PostgresCatalog::open(&url(&text)).await.unwrap_err();
    assert!(matches!(err, CatalogError::Unreachable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&endpoint), "{message}");
    assert!(message.contains("scripts/postgres.sh start"), "{message}");
    assert!(message.contains("[redacted]"), "{message}");
    assert!(err.is_transient());

    // A catalog already open fails its calls the same way.
    let err = catalog.list_jobs().await.unwrap_err();
    assert!(matches!(err, CatalogError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&endpoint), "{err}");
    for shown in [err.to_string(), format!("{err:?}"), format!("{catalog:?}")] {
        assert!(!shown.contains("pw-never-shown"), "{shown}");
    }
}

#[tokio::test]
async fn a_refused_connection_names_host_and_port() {
    let port = postgres::free_port().unwrap();
    let text = format!("postgres://u:pw-never-shown@127.0.0.1:{port}/db");
    let err = PostgresCatalog::open(&url(&text)).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, CatalogError::Unreachable { .. }), "{err:?}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("pw-never-shown"), "{message}");
}

#[tokio::test]
async fn a_missing_database_is_refused_with_what_to_check() {
    let server = postgres::shared();
    let err = PostgresCatalog::open(&url(&server.url("no_such_db")))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("no_such_db"), "{message}");
    assert!(message.contains("database name"), "{message}");
}

#[tokio::test]
async fn a_database_of_another_application_is_left_alone() {
    let server = postgres::shared();
    let text = server.fresh_database();
    let db = text.rsplit('/').next().unwrap();
    server
        .sql_in(db, "CREATE TABLE invoices (id INT PRIMARY KEY)")
        .unwrap();
    let err = PostgresCatalog::open(&url(&text)).await.unwrap_err();
    assert!(matches!(err, CatalogError::NotACatalog { .. }), "{err:?}");
    let tables = server
        .sql_in(
            db,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .unwrap();
    assert_eq!(tables, "1", "nothing was created");
}

#[tokio::test]
async fn two_processes_opening_a_new_catalog_at_once_migrate_it_once() {
    let text = postgres::shared().fresh_database();
    let parsed = url(&text);
    let (a, b) = tokio::join!(
        PostgresCatalog::open(&parsed),
        PostgresCatalog::open(&parsed)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let id = a.create_job(&spec("x", "y")).await.unwrap();
    assert_eq!(b.job(id).await.unwrap().unwrap().source, "x");
}

#[test]
fn a_postgres_spec_is_recognised() {
    let spec = CatalogSpec::parse("postgresql://strata@10.0.0.1/catalog").unwrap();
    assert!(matches!(spec, CatalogSpec::Postgres(_)));
}

#[test]
fn migrations_are_numbered_alike() {
    let names = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let sqlite = names(&format!("{root}/migrations"));
    let postgres = names(&format!("{root}/migrations/postgres"));
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "every migration needs a PostgreSQL twin of the same number and name"
    );
}
