//! The embedded SQLite engine: opening, checking and migrating a catalog file.
//!
//! Every SQLite-specific setting lives here, documented on [`SqliteCatalog`], and the few
//! phrases where its SQL differs from PostgreSQL's in [`dialect`]; the queries both
//! engines share are compiled here from `src/portable/`.

mod dialect;
mod integrity;

// The queries both engines run alike (`src/portable/`), compiled with this engine's names.
#[path = "../portable/mod.rs"]
#[allow(clippy::duplicate_mod, reason = "compiled once per engine on purpose")]
mod portable;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::MigrateError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqlitePool};

use crate::error::CatalogError;
use crate::migrations::Embedded;

/// How long a writer waits for another process's write transaction to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The `application_id` written into every Strata catalog: "STRA" in ASCII.
const APPLICATION_ID: i64 = 0x5354_5241;

/// Connections per catalog: one writer at a time (SQLite's rule) plus concurrent readers.
const POOL_SIZE: u32 = 4;

/// How many integrity problems to quote in a [`CatalogError::Corrupt`].
const CORRUPTION_LINES_QUOTED: usize = 3;

/// The journal a catalog runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Journal {
    /// On-disk catalogs.
    Wal,
    /// In-memory catalogs, which have no file to journal to.
    Memory,
}

/// The embedded SQLite catalog engine. Cloning is cheap and shares the connection pool.
///
/// Its settings, and why:
///
/// - **WAL journal**: readers (`strata status`) never wait for the mover's writes.
/// - **`synchronous = FULL`**: each commit fsyncs the WAL, so a committed call survives a
///   power loss, not only a crash. Measured (release build, ext4 on a virtual disk) on the
///   mover's rhythm, a call recording 300 verified chunks every ~100 ms: about 1.2 ms per
///   call with `FULL` against 0.6 ms with `NORMAL`, i.e. about 1% of the interval. Even a
///   slow disk's 10 ms fsync stays far inside it, so durability wins.
/// - **`busy_timeout`**: a writer waits up to 10 s for another process's
///   transaction before failing with [`CatalogError::Busy`].
/// - **`BEGIN IMMEDIATE`** for every writing transaction: the write lock is taken up front,
///   so two writers queue on the busy timeout instead of one failing when it upgrades a
///   read snapshot to a write.
/// - **Foreign keys on**, so chunks cannot outlive their file nor files their job.
/// - **`application_id`** marks the file as Strata's, so the binary refuses to migrate a
///   database that belongs to someone else.
/// - **Row checksums** on jobs, files and verified chunks (see [`crate::integrity`]):
///   written with every row, checked on every read, so a row damaged behind SQLite's back
///   is refused ([`CatalogError::CorruptRow`]) instead of trusted;
///   [`SqliteCatalog::check`] checks the whole file.
///
/// The catalog must be on a local file system: SQLite's WAL needs shared memory between
/// the processes using it, which network file systems do not provide. Several nodes share
/// a catalog through the PostgreSQL engine instead ([`crate::PostgresCatalog`]).
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteCatalog {
    /// Opens the catalog at `path`, creating its parent directories and the file if they do
    /// not exist, checks the file's integrity (`PRAGMA quick_check`) and that it is a
    /// Strata catalog not newer than this binary, then applies pending migrations.
    ///
    /// The check reads every page: about 0.2 s for a catalog of a million files.
    pub async fn open(path: &Path) -> Result<Self, CatalogError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| CatalogError::CreateDir {
                    path: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                    source,
                })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(0)
            .connect_with(options)
            .await
            .map_err(|err| db_error(path, "open", err))?;
        Self::prepare(pool, path.to_path_buf(), Journal::Wal).await
    }

    /// Opens a fresh, empty catalog that lives in memory and disappears with the value
    /// (and its clones). For tests.
    pub async fn open_in_memory() -> Result<Self, CatalogError> {
        let path = PathBuf::from(":memory:");
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|err| db_error(&path, "open", err))?
            .foreign_keys(true);
        // An in-memory database lives as long as its one connection: never let the pool
        // close it, and never open a second one (it would be a different database).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|err| db_error(&path, "open", err))?;
        Self::prepare(pool, path, Journal::Memory).await
    }

    /// The catalog's file (`:memory:` for an in-memory catalog).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checkpoints the WAL into the database file, so that the file alone holds every
    /// commit (it can then be copied), then closes the connections once running calls
    /// finish. Calls made afterwards fail. Dropping a catalog without closing it is safe:
    /// the next open replays the WAL.
    pub async fn close(&self) {
        // The pool closes its connections on their worker threads without waiting for
        // SQLite's own checkpoint-on-close, so checkpoint explicitly. A failure (another
        // process reading for longer than the busy timeout) only leaves the WAL in place.
        if let Ok(mut conn) = self.pool.acquire().await {
            if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await
            {
                tracing::debug!(path = %self.path.display(), %err, "catalog checkpoint on close failed");
            }
        }
        self.pool.close().await;
    }

    /// Checks the freshly opened database and migrates it; closes the pool on failure
    /// without writing anything (no checkpoint: the file may be someone else's).
    async fn prepare(
        pool: SqlitePool,
        path: PathBuf,
        journal: Journal,
    ) -> Result<Self, CatalogError> {
        let catalog = SqliteCatalog { pool, path };
        match catalog.check_and_migrate(journal).await {
            Ok(()) => Ok(catalog),
            Err(err) => {
                catalog.pool.close().await;
                Err(err)
            }
        }
    }

    fn error(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> CatalogError + '_ {
        move |err| db_error(&self.path, op, err)
    }

    /// Checks first, reading only, so that a damaged or foreign file is left exactly as it
    /// was; then switches to WAL (a persistent setting of the file) and migrates.
    async fn check_and_migrate(&self, journal: Journal) -> Result<(), CatalogError> {
        let path = self.path.as_path();
        let op = "open";
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|err| db_error(path, op, err))?;
        quick_check(path, &mut conn).await?;
        check_owner(path, &mut conn).await?;
        check_version(path, &mut conn).await?;
        if journal == Journal::Wal {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&mut *conn)
                .await
                .map_err(|err| db_error(path, op, err))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(CatalogError::CannotOpen {
                    path: path.to_path_buf(),
                    detail: format!("the file system refused WAL mode (journal mode stays {mode})"),
                });
            }
        }
        // The migrations run under the write lock, so two processes opening a new catalog
        // at once do not both create the schema: the second finds it applied.
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|err| db_error(path, op, err))?;
        let had_checksums =
            integrity::migration_applied(path, &mut tx, integrity::ROW_CHECKSUMS_VERSION).await?;
        let migrator = Embedded::SQLITE
            .migrator()
            .await
            .map_err(|err| migrate_error(path, err))?;
        migrator
            .run(&mut *tx)
            .await
            .map_err(|err| migrate_error(path, err))?;
        if !had_checksums {
            // The checksum columns were just added: seal the rows already there, in the
            // same transaction, so no catalog is ever seen half upgraded.
            integrity::backfill(path, &mut tx).await?;
        }
        tx.commit().await.map_err(|err| db_error(path, op, err))
    }
}

impl crate::rows::RowReader for SqliteCatalog {
    fn catalog_path(&self) -> &Path {
        &self.path
    }
}

/// Fails with [`CatalogError::Corrupt`] unless SQLite's quick integrity check passes.
async fn quick_check(path: &Path, conn: &mut SqliteConnection) -> Result<(), CatalogError> {
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_all(&mut *conn)
        .await
        .map_err(|err| db_error(path, "integrity check", err))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    let mut detail = String::from("integrity check failed: ");
    detail.push_str(
        &problems
            .iter()
            .take(CORRUPTION_LINES_QUOTED)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("; "),
    );
    if problems.len() > CORRUPTION_LINES_QUOTED {
        detail.push_str(&format!(
            "; and {} more",
            problems.len() - CORRUPTION_LINES_QUOTED
        ));
    }
    Err(CatalogError::Corrupt {
        path: path.to_path_buf(),
        detail,
    })
}

/// Refuses a database that another application created: one that carries another
/// `application_id`, or none while it already has tables.
async fn check_owner(path: &Path, conn: &mut SqliteConnection) -> Result<(), CatalogError> {
    let op = "open";
    let application_id: i64 = sqlx::query_scalar("PRAGMA application_id")
        .fetch_one(&mut *conn)
        .await
        .map_err(|err| db_error(path, op, err))?;
    if application_id == APPLICATION_ID {
        return Ok(());
    }
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|err| db_error(path, op, err))?;
    let detail = if application_id != 0 {
        format!("its application id is {application_id:#x}, Strata's is {APPLICATION_ID:#x}")
    } else if tables > 0 {
        format!("it has {tables} tables but no Strata application id")
    } else {
        // An empty database: ours to initialise.
        return Ok(());
    };
    Err(CatalogError::NotACatalog {
        path: path.to_path_buf(),
        detail,
    })
}

/// Refuses a catalog migrated by a newer binary: its schema may mean things this one
/// would misread or destroy.
async fn check_version(path: &Path, conn: &mut SqliteConnection) -> Result<(), CatalogError> {
    let op = "read schema version";
    if !has_migration_history(path, conn).await? {
        return Ok(());
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(|err| db_error(path, op, err))?;
    let supported = latest_schema_version();
    match found {
        Some(found) if found > supported => Err(CatalogError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported,
        }),
        _ => Ok(()),
    }
}

/// Whether the catalog has a migration history table (a fresh file has none yet).
pub(super) async fn has_migration_history(
    path: &Path,
    conn: &mut SqliteConnection,
) -> Result<bool, CatalogError> {
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|err| db_error(path, "read schema version", err))?;
    Ok(tables > 0)
}

/// The newest migration embedded in this binary.
fn latest_schema_version() -> i64 {
    Embedded::SQLITE.latest_version()
}

fn migrate_error(path: &Path, err: MigrateError) -> CatalogError {
    match err {
        MigrateError::VersionMissing(found) => CatalogError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: latest_schema_version(),
        },
        MigrateError::VersionMismatch(version) => CatalogError::SchemaModified {
            path: path.to_path_buf(),
            version,
        },
        MigrateError::Execute(ref db) | MigrateError::ExecuteMigration(ref db, _) => {
            classify(path, db).unwrap_or(CatalogError::Migrate {
                path: path.to_path_buf(),
                source: err,
            })
        }
        other => CatalogError::Migrate {
            path: path.to_path_buf(),
            source: other,
        },
    }
}

/// Wraps an engine error with the catalog's path and the operation that failed, giving
/// the errors an operator can act on their own variant.
pub(crate) fn db_error(path: &Path, op: &'static str, err: sqlx::Error) -> CatalogError {
    classify(path, &err).unwrap_or(CatalogError::Database {
        path: path.to_path_buf(),
        op,
        source: err,
    })
}

/// The operator-facing variant for SQLite result codes that have one.
fn classify(path: &Path, err: &sqlx::Error) -> Option<CatalogError> {
    let path = path.to_path_buf();
    match err {
        sqlx::Error::Database(db) => {
            // Extended result codes carry the primary code in their low byte.
            let primary = db.code()?.parse::<i32>().ok()? & 0xff;
            let detail = db.message().to_owned();
            match primary {
                // SQLITE_CORRUPT, SQLITE_NOTADB
                11 | 26 => Some(CatalogError::Corrupt { path, detail }),
                // SQLITE_BUSY, SQLITE_LOCKED
                5 | 6 => Some(CatalogError::Busy { path, detail }),
                // SQLITE_FULL
                13 => Some(CatalogError::DiskFull { path, detail }),
                // SQLITE_PERM, SQLITE_READONLY, SQLITE_CANTOPEN
                3 | 8 | 14 => Some(CatalogError::CannotOpen { path, detail }),
                _ => None,
            }
        }
        sqlx::Error::ColumnDecode { index, source } => Some(CatalogError::InvalidData {
            path,
            detail: format!("column {index}: {source}"),
        }),
        _ => None,
    }
}
