//! What the S3 front door keeps of an object written through it (`0009_s3_object_meta.sql`):
//! its S3 ETag, `Content-Type` and user metadata ([`S3ObjectMeta`]), with the BLAKE3 of the
//! content they describe, and the calls on them ([`S3MetaCatalog`]), implemented once per
//! engine. A row is only a claim about one content: the service uses it while the hash
//! equals the object's current one.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::CatalogError;

/// The S3 view of one object's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3ObjectMeta {
    /// The service key.
    pub key: String,
    /// The BLAKE3 of the content this describes.
    pub hash: [u8; 32],
    /// The ETag, unquoted (`MD5 hex`, or `MD5 of the part MD5s-N`).
    pub etag: String,
    /// `Content-Type` as the client gave it.
    pub content_type: Option<String>,
    /// `x-amz-meta-*` user metadata, names without the prefix.
    pub metadata: BTreeMap<String, String>,
    /// When it was written, ms since the Unix epoch.
    pub written_ms: i64,
}

/// The S3 metadata calls, implemented once per database engine; each is one statement.
#[async_trait]
pub trait S3MetaCatalog: Send + Sync {
    /// Records `meta`, replacing any row of its key.
    async fn put_s3_meta(&self, meta: &S3ObjectMeta) -> Result<(), CatalogError>;

    /// The row of `key`, whatever content it describes.
    async fn s3_meta(&self, key: &str) -> Result<Option<S3ObjectMeta>, CatalogError>;

    /// The rows of keys from `first` to `last` (both included), in key order: one query for
    /// a page of a listing.
    async fn s3_meta_between(
        &self,
        first: &str,
        last: &str,
    ) -> Result<Vec<S3ObjectMeta>, CatalogError>;

    /// Up to `limit` (key, hash) pairs of keys after `after` (from the first with `None`),
    /// in key order: the cleanup's walk over the table.
    async fn s3_meta_hashes(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, [u8; 32])>, CatalogError>;

    /// Removes the row of `key`; with `hash`, only if it describes that content (so a
    /// cleanup never removes the row of a write that just replaced the stale one). Whether
    /// a row was removed.
    async fn delete_s3_meta(
        &self,
        key: &str,
        hash: Option<&[u8; 32]>,
    ) -> Result<bool, CatalogError>;
}

/// A row as both engines read it: (key, hash, etag, content type, metadata JSON, written).
pub(crate) type S3MetaRow = (String, Vec<u8>, String, Option<String>, String, i64);

/// The columns of an [`S3MetaRow`], in order.
pub(crate) const S3_META_COLUMNS: &str = "key, hash, etag, content_type, metadata, written_ms";

/// A row read back; a hash or metadata the schema's checks should have kept out is
/// reported, naming the key.
pub(crate) fn s3_meta_of(row: S3MetaRow) -> Result<S3ObjectMeta, CatalogError> {
    let (key, hash, etag, content_type, metadata, written_ms) = row;
    let hash = hash32(&key, hash)?;
    let metadata = serde_json::from_str(&metadata).map_err(|err| {
        CatalogError::InvalidInput(format!(
            "the S3 metadata of {key:?} is not a JSON object of strings ({err}); write the \
             object again through the S3 front door"
        ))
    })?;
    Ok(S3ObjectMeta {
        key,
        hash,
        etag,
        content_type,
        metadata,
        written_ms,
    })
}

/// A stored hash as 32 bytes, or an error naming the key.
pub(crate) fn hash32(key: &str, hash: Vec<u8>) -> Result<[u8; 32], CatalogError> {
    hash.try_into().map_err(|hash: Vec<u8>| {
        CatalogError::InvalidInput(format!(
            "the S3 metadata of {key:?} holds a hash of {} bytes, not 32; write the object \
             again through the S3 front door",
            hash.len()
        ))
    })
}

/// The user metadata as the row stores it.
pub(crate) fn metadata_json(meta: &S3ObjectMeta) -> String {
    // A map of strings always serialises.
    serde_json::to_string(&meta.metadata).unwrap_or_else(|_| "{}".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_rows_are_refused_naming_the_key() {
        let row = |hash: Vec<u8>, metadata: &str| -> S3MetaRow {
            ("k".into(), hash, "e".into(), None, metadata.into(), 1)
        };
        let short = s3_meta_of(row(vec![0; 31], "{}")).unwrap_err().to_string();
        assert!(
            short.contains("\"k\"") && short.contains("31 bytes"),
            "{short}"
        );
        let not_json = s3_meta_of(row(vec![0; 32], "[1]")).unwrap_err().to_string();
        assert!(
            not_json.contains("\"k\"") && not_json.contains("JSON"),
            "{not_json}"
        );
        let good = s3_meta_of(row(vec![7; 32], r#"{"a":"b"}"#)).unwrap();
        assert_eq!(good.metadata["a"], "b");
        assert_eq!(metadata_json(&good), r#"{"a":"b"}"#);
    }
}
