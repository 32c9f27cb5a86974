//! [`S3MetaCatalog`] on either engine (migration `0009_s3_object_meta.sql`).
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use async_trait::async_trait;

use super::Engine;
use crate::error::CatalogError;
use crate::s3_meta::{
    hash32, metadata_json, s3_meta_of, S3MetaCatalog, S3MetaRow, S3ObjectMeta, S3_META_COLUMNS,
};

#[async_trait]
impl S3MetaCatalog for Engine {
    async fn put_s3_meta(&self, meta: &S3ObjectMeta) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO s3_object_meta (key, hash, etag, content_type, metadata, written_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO UPDATE SET \
             hash = excluded.hash, etag = excluded.etag, content_type = excluded.content_type, \
             metadata = excluded.metadata, written_ms = excluded.written_ms",
        )
        .bind(&meta.key)
        .bind(&meta.hash[..])
        .bind(&meta.etag)
        .bind(&meta.content_type)
        .bind(metadata_json(meta))
        .bind(meta.written_ms)
        .execute(&self.pool)
        .await
        .map_err(self.error("record S3 metadata"))?;
        Ok(())
    }

    async fn s3_meta(&self, key: &str) -> Result<Option<S3ObjectMeta>, CatalogError> {
        let row: Option<S3MetaRow> = sqlx::query_as(&format!(
            "SELECT {S3_META_COLUMNS} FROM s3_object_meta WHERE key = $1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.error("read S3 metadata"))?;
        row.map(s3_meta_of).transpose()
    }

    async fn s3_meta_between(
        &self,
        first: &str,
        last: &str,
    ) -> Result<Vec<S3ObjectMeta>, CatalogError> {
        let rows: Vec<S3MetaRow> = sqlx::query_as(&format!(
            "SELECT {S3_META_COLUMNS} FROM s3_object_meta WHERE key >= $1 AND key <= $2 \
             ORDER BY key"
        ))
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await
        .map_err(self.error("read S3 metadata"))?;
        rows.into_iter().map(s3_meta_of).collect()
    }

    async fn s3_meta_hashes(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, [u8; 32])>, CatalogError> {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT key, hash FROM s3_object_meta WHERE $1 IS NULL OR key > $1 \
             ORDER BY key LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.error("list S3 metadata"))?;
        rows.into_iter()
            .map(|(key, hash)| hash32(&key, hash).map(|hash| (key, hash)))
            .collect()
    }

    async fn delete_s3_meta(
        &self,
        key: &str,
        hash: Option<&[u8; 32]>,
    ) -> Result<bool, CatalogError> {
        let done =
            sqlx::query("DELETE FROM s3_object_meta WHERE key = $1 AND ($2 IS NULL OR hash = $2)")
                .bind(key)
                .bind(hash.map(|hash| hash.to_vec()))
                .execute(&self.pool)
                .await
                .map_err(self.error("delete S3 metadata"))?;
        Ok(done.rows_affected() > 0)
    }
}
