//! The chunk values of objects ([`ChunkHashes`]) in the `objects` table, recorded for
//! objects written before they were kept (they are checked on the way out by
//! `crate::tiering_rows`).
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use super::Engine;
use crate::error::CatalogError;
use crate::rows::RowReader;
use crate::tiering::ChunkHashes;

impl Engine {
    /// [`crate::TieringCatalog::set_chunk_hashes`]: under the write lock, checks the
    /// values against the object's recorded size and hash, then stores them if the object
    /// is still at `generation`.
    pub(crate) async fn record_chunk_hashes(
        &self,
        key: &str,
        generation: i64,
        chunk_hashes: &ChunkHashes,
    ) -> Result<bool, CatalogError> {
        let op = "record chunk values";
        let mut tx = self.begin_write(op).await?;
        let row: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT size, hash FROM objects WHERE key = $1 AND generation = $2")
                .bind(key)
                .bind(generation)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.error(op))?;
        let Some((size, hash)) = row else {
            return Ok(false);
        };
        let size = self.unsigned(size, "object size")?;
        let hash = self.hash(Some(hash), "an object hash")?.unwrap_or_default();
        chunk_hashes.check(size, &hash).map_err(|why| {
            CatalogError::InvalidInput(format!(
                "chunk values of {key:?} (generation {generation}): {why}"
            ))
        })?;
        sqlx::query("UPDATE objects SET chunk_hashes = $1 WHERE key = $2 AND generation = $3")
            .bind(chunk_hashes.to_blob())
            .bind(key)
            .bind(generation)
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(true)
    }
}
