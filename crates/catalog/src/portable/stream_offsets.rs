//! The stream offsets table (migration `0006`) on either engine: per partition of an
//! access-event stream, the next record to read, written in the transaction of the access
//! statistics and history that include the records before it (one flush,
//! [`crate::AccessFlush`]). The [`crate::TieringCatalog`] methods delegate here.
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use super::Engine;
use crate::error::CatalogError;
use crate::tiering::{AccessFlush, StreamOffset};

impl Engine {
    /// Statistics rows, stream positions and access history, in one transaction.
    pub(crate) async fn save_flush(
        &self,
        flush: &AccessFlush<'_>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let op = "save access statistics, stream offsets and history";
        if flush.is_empty() {
            return Ok(());
        }
        let offsets = flush.offsets;
        if let Some(bad) = offsets
            .iter()
            .find(|offset| offset.partition < 0 || offset.next_offset < 0)
        {
            return Err(CatalogError::InvalidInput(format!(
                "stream offset {} of {} partition {} is negative",
                bad.next_offset, bad.source, bad.partition
            )));
        }
        let mut tx = self.begin_write(op).await?;
        self.write_access_stats(&mut tx, flush.upserts, flush.removed, now_ms, op)
            .await?;
        self.write_history(&mut tx, flush.history, op).await?;
        for offset in offsets {
            sqlx::query(
                "INSERT INTO stream_offsets (source, partition, next_offset, updated_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (source, partition) DO UPDATE SET \
                 next_offset = excluded.next_offset, updated_ms = excluded.updated_ms",
            )
            .bind(&offset.source)
            .bind(offset.partition)
            .bind(offset.next_offset)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        }
        tx.commit().await.map_err(self.error(op))
    }

    /// The stored positions of `source`, by partition.
    pub(crate) async fn offsets_of(&self, source: &str) -> Result<Vec<StreamOffset>, CatalogError> {
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, next_offset FROM stream_offsets WHERE source = $1 \
             ORDER BY partition",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await
        .map_err(self.error("read stream offsets"))?;
        Ok(rows
            .into_iter()
            .map(|(partition, next_offset)| StreamOffset {
                source: source.to_string(),
                partition,
                next_offset,
            })
            .collect())
    }
}
