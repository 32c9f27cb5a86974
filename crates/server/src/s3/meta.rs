//! What S3 clients see of an object beyond its bytes: its ETag, `Content-Type` and
//! `x-amz-meta-*` user metadata, kept in the catalog's `s3_object_meta` table
//! ([`strata_catalog::S3MetaCatalog`]) with the BLAKE3 of the content they describe.
//!
//! The row is written after the object is committed by the service's write path, and read
//! back only while its hash equals the object's current one: an object written through
//! `/v1/objects` (or overwritten there), or one whose row a crash kept from being written,
//! shows the ETag derived from its BLAKE3 ([`derived_etag`]) and no metadata, never another
//! content's ETag. Rows whose object is gone or changed are removed by the front door's
//! cleanup ([`super::cleanup`]).

use std::collections::{BTreeMap, HashMap};

use s3s::{s3_error, S3Result};
use serde::{Deserialize, Serialize};
use strata_catalog::S3ObjectMeta;

use super::front::StrataS3;
use crate::index::ObjectEntry;
use crate::state::now_ms;

/// The most bytes of user metadata (names and values) a request may carry, as S3's.
pub const MAX_USER_METADATA: usize = 2048;

/// What a client gave with a write: `Content-Type` and user metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMeta {
    /// `Content-Type`, when given.
    pub content_type: Option<String>,
    /// `x-amz-meta-*`, names without the prefix.
    pub user: BTreeMap<String, String>,
}

impl ClientMeta {
    /// The metadata of a request; `MetadataTooLarge` past S3's 2 KB of user metadata.
    pub fn new(
        content_type: Option<String>,
        user: Option<HashMap<String, String>>,
    ) -> S3Result<ClientMeta> {
        let user: BTreeMap<String, String> = user.unwrap_or_default().into_iter().collect();
        let bytes: usize = user
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        if bytes > MAX_USER_METADATA {
            return Err(s3_error!(
                MetadataTooLarge,
                "the x-amz-meta-* headers hold {bytes} bytes; at most {MAX_USER_METADATA} are \
                 kept, so shorten them"
            ));
        }
        Ok(ClientMeta { content_type, user })
    }
}

/// An object as S3 clients see it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The ETag, unquoted.
    pub etag: String,
    /// What the client gave with the write that made the current content (nothing for an
    /// object written otherwise).
    pub meta: ClientMeta,
}

impl Described {
    /// The user metadata as `s3s` answers it (`None` when there is none).
    pub fn user_metadata(&self) -> Option<HashMap<String, String>> {
        (!self.meta.user.is_empty()).then(|| self.meta.user.clone().into_iter().collect())
    }

    /// The `Content-Type` to answer: the client's, or S3's default for bytes.
    pub fn content_type(&self) -> String {
        self.meta
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_string())
    }
}

/// The ETag of an object the front door has no row for: the first 16 bytes of its BLAKE3
/// with a `-1` suffix. Stable while the content is, so `If-Match` and caches work; the
/// suffix is the multipart form, which clients (rclone, s3cmd, the SDKs' transfer managers)
/// do not compare with an MD5 of the bytes, where 32 bare hex digits that are not the MD5
/// would make them report a download as corrupted.
pub fn derived_etag(entry: &ObjectEntry) -> String {
    format!("{}-1", hex::encode(&entry.hash[..16]))
}

/// `row` if it describes `entry`'s content, else what an object without a row shows.
pub fn describe_with(entry: &ObjectEntry, row: Option<&S3ObjectMeta>) -> Described {
    match row {
        Some(row) if row.hash == entry.hash => Described {
            etag: row.etag.clone(),
            meta: ClientMeta {
                content_type: row.content_type.clone(),
                user: row.metadata.clone(),
            },
        },
        _ => Described {
            etag: derived_etag(entry),
            meta: ClientMeta::default(),
        },
    }
}

impl StrataS3 {
    /// The object `key` (whose index entry is `entry`) as S3 clients see it.
    ///
    /// A row the catalog cannot give (damaged, or the catalog failing) never keeps the
    /// object from being read: it is described as an object without a row (the derived
    /// ETag), and the log says which key and how to repair it.
    pub(crate) async fn describe(&self, key: &str, entry: &ObjectEntry) -> S3Result<Described> {
        let row = match self.meta.s3_meta(key).await {
            Ok(row) => row,
            Err(err) => {
                tracing::warn!(%key, %err, "the S3 metadata of this object cannot be read;                     it is served with its derived ETag and no Content-Type or user metadata                     (writing the object again through the front door repairs the row)");
                None
            }
        };
        Ok(describe_with(entry, row.as_ref()))
    }

    /// The rows of the keys from `first` to `last`, by key: one query for a listing's page.
    pub(crate) async fn rows_between(
        &self,
        first: &str,
        last: &str,
    ) -> S3Result<HashMap<String, S3ObjectMeta>> {
        let rows = match self.meta.s3_meta_between(first, last).await {
            Ok(rows) => rows,
            Err(err) => {
                // As in `describe`: the listing goes on, with derived ETags for this page.
                tracing::warn!(first, last, %err, "the S3 metadata of a listing page cannot                     be read; its objects are listed with their derived ETags");
                Vec::new()
            }
        };
        Ok(rows.into_iter().map(|row| (row.key.clone(), row)).collect())
    }

    /// Records what S3 clients see of `key`'s content `hash_hex` (the object committed).
    /// An error says the object is written but its ETag and metadata are not.
    pub(crate) async fn record_meta(
        &self,
        key: &str,
        hash_hex: &str,
        etag: &str,
        meta: &ClientMeta,
    ) -> S3Result<()> {
        let hash: [u8; 32] = hex::decode(hash_hex)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| s3_error!(InternalError, "the object {key:?} has no BLAKE3 hash"))?;
        let row = S3ObjectMeta {
            key: key.to_string(),
            hash,
            etag: etag.to_string(),
            content_type: meta.content_type.clone(),
            metadata: meta.user.clone(),
            written_ms: now_ms(),
        };
        self.meta.put_s3_meta(&row).await.map_err(|err| {
            tracing::warn!(%key, %err, "an S3 object's ETag and metadata were not recorded");
            s3_error!(
                InternalError,
                "the object {key:?} was written, but its ETag and metadata could not be \
                 recorded ({err}); write it again"
            )
        })
    }

    /// Forgets what S3 clients saw of `key` (deleted); a failure is left to the cleanup,
    /// which removes rows whose object is gone.
    pub(crate) async fn forget_meta(&self, key: &str) {
        if let Err(err) = self.meta.delete_s3_meta(key, None).await {
            tracing::warn!(%key, %err, "a deleted object's S3 metadata is left for the cleanup");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fill: u8) -> ObjectEntry {
        ObjectEntry {
            size: 1,
            stored: 1,
            hash: [fill; 32],
            mtime_ms: 0,
            generation: 1,
            created_ms: 0,
            tier: strata_heat::TierId::HOTTEST,
            placed_ms: 0,
            chunk_hashes: None,
        }
    }

    fn row(fill: u8) -> S3ObjectMeta {
        S3ObjectMeta {
            key: "k".into(),
            hash: [fill; 32],
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            content_type: Some("text/plain".into()),
            metadata: BTreeMap::from([("a".to_string(), "b".to_string())]),
            written_ms: 1,
        }
    }

    #[test]
    fn a_row_counts_only_for_the_content_it_describes() {
        let current = describe_with(&entry(1), Some(&row(1)));
        assert_eq!(current.etag, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(current.content_type(), "text/plain");
        assert_eq!(current.user_metadata().unwrap()["a"], "b");
        // Overwritten natively (or the row of another content): the derived ETag, no metadata.
        let stale = describe_with(&entry(2), Some(&row(1)));
        assert_eq!(stale.etag, format!("{}-1", "02".repeat(16)));
        assert_eq!(stale.content_type(), "application/octet-stream");
        assert_eq!(stale.user_metadata(), None);
        assert_eq!(describe_with(&entry(2), None), stale);
    }

    #[test]
    fn user_metadata_is_bounded() {
        let big = HashMap::from([("k".to_string(), "v".repeat(MAX_USER_METADATA))]);
        let err = ClientMeta::new(None, Some(big)).unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::MetadataTooLarge);
        let fits = HashMap::from([("k".to_string(), "v".to_string())]);
        assert_eq!(ClientMeta::new(None, Some(fits)).unwrap().user["k"], "v");
    }
}
