//! The PostgreSQL engine: a catalog several processes on many nodes share.
//!
//! Same schema as SQLite (`migrations/postgres/`, numbered like `migrations/`), same row
//! checksums and row checks ([`crate::integrity`], [`crate::rows`]), same contract
//! ([`crate::Catalog`]); only the SQL dialect (`$n` placeholders) and the concurrency
//! differ, documented on [`PostgresCatalog`].

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
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::error::CatalogError;
use crate::location::PostgresUrl;
use crate::migrations::Embedded;

/// Connections per process: the mover's batched commits and a few readers. A server's
/// `max_connections` (100 by default) bounds how many processes can share it.
const POOL_SIZE: u32 = 4;

/// How long opening (or a call waiting for a free connection) waits before it reports the
/// server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a statement waits for a row lock another process holds before it fails
/// with [`CatalogError::Busy`] (as SQLite's busy timeout).
const LOCK_TIMEOUT: &str = "10s";

/// The PostgreSQL catalog engine. Cloning is cheap and shares the connection pool.
///
/// Its rules, and why:
///
/// - **One transaction per call**, as on SQLite, at PostgreSQL's default isolation (read
///   committed). Reads that return several rows (a plan, a job's summary with its
///   progress) run in one transaction too.
/// - **Row locks where a read decides a write**: a write first updates (so locks) the
///   job's row, or reads the rows it will change with `SELECT ... FOR UPDATE`: the state
///   transition check ([`crate::JobKind::allows`]) reads the job's state under that lock,
///   in the transaction that writes the new state, so two workers racing to move a job
///   cannot both pass the check. SQLite gets the same from `BEGIN IMMEDIATE`, which takes
///   the whole file's write lock.
/// - **`lock_timeout`** of 10 s: a writer waiting longer for another's row lock fails
///   with [`CatalogError::Busy`], which says to retry.
/// - **Migrations** run under sqlx's advisory lock, so processes opening a new catalog at
///   once apply them once.
/// - **The password** of the URL is never shown: errors and [`PostgresCatalog::path`]
///   show the URL with it redacted.
///
/// The database's own integrity (pages, indexes) is PostgreSQL's: run the server with
/// data checksums (`initdb --data-checksums`, as `scripts/postgres.sh` does);
/// [`PostgresCatalog::check`] checks every row's checksum.
#[derive(Debug, Clone)]
pub struct PostgresCatalog {
    pool: PgPool,
    /// The URL with its password redacted, as errors name the catalog.
    shown: PathBuf,
    /// `host:port`, as errors name an unreachable server.
    endpoint: String,
}

impl PostgresCatalog {
    /// Connects to the database at `url`, checks that it is empty or a Strata catalog
    /// not newer than this binary, and applies pending migrations.
    pub async fn open(url: &PostgresUrl) -> Result<Self, CatalogError> {
        let shown = PathBuf::from(url.shown());
        let options =
            PgConnectOptions::from_str(url.secret()).map_err(|err| CatalogError::CannotOpen {
                path: shown.clone(),
                detail: format!("the URL is not a PostgreSQL connection URL ({err})"),
            })?;
        let options = options.options([("lock_timeout", LOCK_TIMEOUT)]);
        // One connection first, for the server's own answer: the pool would retry a
        // refused connection until its timeout and report only that it timed out.
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)
            .and_then(|connected| connected)
            .map_err(|err| connect_error(url, err))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|err| connect_error(url, err))?;
        let catalog = PostgresCatalog {
            pool,
            shown,
            endpoint: url.endpoint(),
        };
        if let Err(err) = catalog.check_and_migrate().await {
            catalog.pool.close().await;
            return Err(err);
        }
        Ok(catalog)
    }

    /// The catalog as errors name it: its URL with the password redacted.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// Closes the connections once running calls finish. Calls made afterwards fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn error(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> CatalogError + '_ {
        move |err| match err {
            // The server went away after the catalog was opened.
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => CatalogError::Unreachable {
                path: self.shown.clone(),
                endpoint: self.endpoint.clone(),
                detail: format!("{op} failed: {err}"),
            },
            err => db_error(&self.shown, op, err),
        }
    }

    /// Refuses a database that holds someone else's tables or a newer schema, then
    /// migrates.
    async fn check_and_migrate(&self) -> Result<(), CatalogError> {
        let op = "open";
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::TEXT FROM information_schema.tables
             WHERE table_schema = current_schema() ORDER BY table_name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.error(op))?;
        let has_history = tables.iter().any(|name| name == "_sqlx_migrations");
        if !tables.is_empty() && !has_history {
            return Err(CatalogError::NotACatalog {
                path: self.shown.clone(),
                detail: format!(
                    "its schema has {} tables ({}, ...) but no Strata migration history",
                    tables.len(),
                    tables[0]
                ),
            });
        }
        if has_history {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(self.error(op))?;
            let supported = latest_schema_version();
            if let Some(found) = found.filter(|found| *found > supported) {
                return Err(CatalogError::SchemaTooNew {
                    path: self.shown.clone(),
                    found,
                    supported,
                });
            }
        }
        let migrator = Embedded::POSTGRES
            .migrator()
            .await
            .map_err(|err| migrate_error(&self.shown, err))?;
        migrator
            .run(&self.pool)
            .await
            .map_err(|err| migrate_error(&self.shown, err))
    }
}

impl crate::rows::RowReader for PostgresCatalog {
    fn catalog_path(&self) -> &Path {
        &self.shown
    }
}

/// The newest migration embedded in this binary.
fn latest_schema_version() -> i64 {
    Embedded::POSTGRES.latest_version()
}

/// The error of a failed connection: unreachable (naming host and port), or refused by
/// the server (authentication, a missing database), else the engine's error.
fn connect_error(url: &PostgresUrl, err: sqlx::Error) -> CatalogError {
    let shown = PathBuf::from(url.shown());
    match &err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => {
            CatalogError::Unreachable {
                path: shown,
                endpoint: url.endpoint(),
                detail: err.to_string(),
            }
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|code| refused_code(&code)) => {
            CatalogError::CannotOpen {
                path: shown,
                detail: format!(
                    "the server at {} refused the connection: {}; check the user, password and database name",
                    url.endpoint(),
                    db.message()
                ),
            }
        }
        _ => db_error(&shown, "connect", err),
    }
}

/// SQLSTATEs of a server refusing a connection: authentication (28...), a database that
/// does not exist (3D000), too many connections (53300).
fn refused_code(code: &str) -> bool {
    code.starts_with("28") || code == "3D000" || code == "53300"
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

/// Wraps an engine error with the catalog (its redacted URL) and the operation that
/// failed, giving the errors an operator can act on their own variant.
pub(crate) fn db_error(path: &Path, op: &'static str, err: sqlx::Error) -> CatalogError {
    classify(path, &err).unwrap_or(CatalogError::Database {
        path: path.to_path_buf(),
        op,
        source: err,
    })
}

/// The operator-facing variant for PostgreSQL errors that have one (by SQLSTATE).
fn classify(path: &Path, err: &sqlx::Error) -> Option<CatalogError> {
    let path = path.to_path_buf();
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            let detail = db.message().to_owned();
            match code.as_ref() {
                // lock_not_available (lock_timeout), deadlock_detected,
                // serialization_failure
                "55P03" | "40P01" | "40001" => Some(CatalogError::Busy { path, detail }),
                // disk_full
                "53100" => Some(CatalogError::DiskFull { path, detail }),
                // data_corrupted, index_corrupted
                "XX001" | "XX002" => Some(CatalogError::Corrupt { path, detail }),
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
