//! What the portable queries (`src/portable/`, compiled once per engine) are written
//! against, for PostgreSQL: the engine's types, and the few phrases where its SQL differs.

use sqlx::{Postgres, Transaction};

use super::PostgresCatalog;
use crate::error::CatalogError;

/// The engine the portable queries are compiled for.
pub(super) type Engine = PostgresCatalog;
/// Its sqlx database.
pub(super) type EngineDb = Postgres;
/// One of its connections.
pub(super) type EngineConn = sqlx::PgConnection;
/// One row of its results.
pub(super) type EngineRow = sqlx::postgres::PgRow;

/// The clause that locks the rows a writing transaction reads, so two writers deciding on
/// the same row take turns and the second sees the first one's write.
pub(super) const ROW_LOCK: &str = " FOR UPDATE";

/// `a + b` saturated at `i64::MAX`: the sum is taken in `NUMERIC`, which cannot overflow.
pub(super) fn saturating_sum(a: &str, b: &str) -> String {
    format!("LEAST({a}::NUMERIC + {b}, 9223372036854775807)::BIGINT")
}

impl PostgresCatalog {
    /// Starts a writing transaction (read committed; its locks are taken by its statements:
    /// the job row it touches first, and rows read with [`ROW_LOCK`]).
    pub(super) async fn begin_write(
        &self,
        op: &'static str,
    ) -> Result<Transaction<'static, Postgres>, CatalogError> {
        self.pool.begin().await.map_err(self.error(op))
    }

    /// Serialises the transactions about `key` until `conn`'s transaction ends, with a
    /// transaction-scoped advisory lock on the key's hash (a row lock cannot hold a row
    /// that does not exist yet, such as the move job about to be planned).
    pub(super) async fn lock_key_until_commit(
        &self,
        conn: &mut sqlx::PgConnection,
        key: &str,
        op: &'static str,
    ) -> Result<(), CatalogError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(self.error(op))?;
        Ok(())
    }

    /// A read-only transaction that sees one snapshot (PostgreSQL's default, read
    /// committed, takes one per statement).
    pub(super) async fn begin_snapshot(
        &self,
        op: &'static str,
    ) -> Result<Transaction<'static, Postgres>, CatalogError> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(self.error(op))
    }
}
