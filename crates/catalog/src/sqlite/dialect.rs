//! What the portable queries (`src/portable/`, compiled once per engine) are written
//! against, for SQLite: the engine's types, and the few phrases where its SQL differs.

use sqlx::{Sqlite, Transaction};

use super::SqliteCatalog;
use crate::error::CatalogError;

/// The engine the portable queries are compiled for.
pub(super) type Engine = SqliteCatalog;
/// Its sqlx database.
pub(super) type EngineDb = Sqlite;
/// One of its connections.
pub(super) type EngineConn = sqlx::SqliteConnection;
/// One row of its results.
pub(super) type EngineRow = sqlx::sqlite::SqliteRow;

/// The clause that locks the rows a writing transaction reads: none, as `BEGIN IMMEDIATE`
/// already holds the whole file's write lock.
pub(super) const ROW_LOCK: &str = "";

/// `a + b` saturated at `i64::MAX`: SQLite turns an integer sum that overflows into a
/// real, which `min` then caps.
pub(super) fn saturating_sum(a: &str, b: &str) -> String {
    format!("min({a} + {b}, 9223372036854775807)")
}

impl SqliteCatalog {
    /// Starts a transaction that holds the file's write lock from its first statement, so
    /// two writers queue on the busy timeout instead of one failing when it upgrades a read
    /// snapshot to a write.
    pub(super) async fn begin_write(
        &self,
        op: &'static str,
    ) -> Result<Transaction<'static, Sqlite>, CatalogError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.error(op))
    }

    /// Serialises the transactions about `key` until `conn`'s transaction ends: nothing to
    /// do on SQLite, where `BEGIN IMMEDIATE` serialises every writer.
    pub(super) async fn lock_key_until_commit(
        &self,
        _conn: &mut sqlx::SqliteConnection,
        _key: &str,
        _op: &'static str,
    ) -> Result<(), CatalogError> {
        Ok(())
    }

    /// A read-only transaction that sees one snapshot: in WAL mode a deferred transaction
    /// reads the snapshot taken at its first read.
    pub(super) async fn begin_snapshot(
        &self,
        op: &'static str,
    ) -> Result<Transaction<'static, Sqlite>, CatalogError> {
        self.pool.begin().await.map_err(self.error(op))
    }
}
