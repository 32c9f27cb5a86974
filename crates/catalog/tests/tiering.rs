//! The tiering tables on SQLite: the shared cases (`tiering_cases/`, also run on
//! PostgreSQL by `postgres.rs`) on a catalog file.

mod tiering_cases;

use strata_catalog::SqliteCatalog;

type TieringGuard = tempfile::TempDir;
type TieringEngine = SqliteCatalog;

async fn open_tiering() -> (TieringGuard, TieringEngine) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .unwrap();
    (dir, catalog)
}

/// The same catalog file, opened again.
async fn reopen_tiering(dir: &TieringGuard) -> TieringEngine {
    SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .unwrap()
}
