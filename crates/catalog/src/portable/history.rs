//! The access history table (`0005_access_history.sql`) on either engine: per object and hour,
//! counts added by each flush (in the transaction of the statistics they go with:
//! [`Engine::write_history`]), read by time, pruned past a retention. The
//! [`crate::TieringCatalog`] methods delegate here.
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use sqlx::{QueryBuilder, Transaction};

use super::{saturating_sum, Engine, EngineDb};
use crate::error::CatalogError;
use crate::rows::RowReader;
use crate::tiering::HistoryBucket;

/// Rows per multi-row statement (5 parameters each, well under either engine's limit).
const ROW_BATCH: usize = 1000;

fn signed(value: u64, what: &str) -> Result<i64, CatalogError> {
    i64::try_from(value)
        .map_err(|_| CatalogError::InvalidInput(format!("{what} {value} is above {}", i64::MAX)))
}

impl Engine {
    pub(crate) async fn history_add(&self, buckets: &[HistoryBucket]) -> Result<(), CatalogError> {
        let op = "add access history";
        if buckets.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write(op).await?;
        self.write_history(&mut tx, buckets, op).await?;
        tx.commit().await.map_err(self.error(op))
    }

    /// Adds each bucket's counts to its stored row inside `tx` (the flush's transaction,
    /// or one of its own).
    pub(crate) async fn write_history(
        &self,
        tx: &mut Transaction<'static, EngineDb>,
        buckets: &[HistoryBucket],
        op: &'static str,
    ) -> Result<(), CatalogError> {
        let mut rows = Vec::with_capacity(buckets.len());
        for b in buckets {
            rows.push((
                b.key.as_str(),
                b.hour_ms,
                signed(b.reads, "reads")?,
                signed(b.writes, "writes")?,
                signed(b.bytes, "bytes")?,
            ));
        }
        for batch in rows.chunks(ROW_BATCH) {
            let mut insert = QueryBuilder::<EngineDb>::new(
                "INSERT INTO access_history (key, hour_ms, reads, writes, bytes) ",
            );
            insert.push_values(batch, |mut row, (key, hour, reads, writes, bytes)| {
                row.push_bind(*key)
                    .push_bind(*hour)
                    .push_bind(*reads)
                    .push_bind(*writes)
                    .push_bind(*bytes);
            });
            // Counts add up; a sum past i64 stays at the largest value rather than failing
            // the flush.
            insert.push(format!(
                " ON CONFLICT (key, hour_ms) DO UPDATE SET reads = {}, writes = {}, bytes = {}",
                saturating_sum("access_history.reads", "excluded.reads"),
                saturating_sum("access_history.writes", "excluded.writes"),
                saturating_sum("access_history.bytes", "excluded.bytes"),
            ));
            insert
                .build()
                .execute(&mut **tx)
                .await
                .map_err(self.error(op))?;
        }
        Ok(())
    }

    pub(crate) async fn history_since(
        &self,
        since_ms: i64,
        key: Option<&str>,
    ) -> Result<Vec<HistoryBucket>, CatalogError> {
        let op = "read access history";
        let rows: Vec<(String, i64, i64, i64, i64)> = match key {
            Some(key) => sqlx::query_as(
                "SELECT key, hour_ms, reads, writes, bytes FROM access_history \
                 WHERE key = $1 AND hour_ms >= $2 ORDER BY hour_ms",
            )
            .bind(key)
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(self.error(op))?,
            None => sqlx::query_as(
                "SELECT key, hour_ms, reads, writes, bytes FROM access_history \
                 WHERE hour_ms >= $1 ORDER BY hour_ms, key",
            )
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(self.error(op))?,
        };
        rows.into_iter()
            .map(|(key, hour_ms, reads, writes, bytes)| {
                Ok(HistoryBucket {
                    key,
                    hour_ms,
                    reads: self.unsigned(reads, "history reads")?,
                    writes: self.unsigned(writes, "history writes")?,
                    bytes: self.unsigned(bytes, "history bytes")?,
                })
            })
            .collect()
    }

    pub(crate) async fn history_prune(&self, before_ms: i64) -> Result<u64, CatalogError> {
        sqlx::query("DELETE FROM access_history WHERE hour_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(self.error("prune access history"))
    }
}
