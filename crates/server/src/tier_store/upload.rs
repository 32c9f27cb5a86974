//! [`TierUpload`]: an object's stored bytes written to a tier as they stream, published
//! atomically at the end. Nothing is visible under the object's path before
//! [`TierUpload::finish`]; [`TierUpload::abort`] (or a crash) leaves the old bytes as they
//! were.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use strata_redundancy::Redundancy;
use strata_store::{StoreError, Upload};

use super::{to_store_error, DomainTier, TierStore};

/// A write of one object's stored bytes to a tier, in sequence (see the module
/// documentation). Made by [`TierStore::begin_write`].
pub struct TierUpload {
    rel: String,
    /// The most bytes the upload may take (the length it began with).
    bound: u64,
    /// Bytes written so far, in sequence.
    written: AtomicU64,
    inner: Inner,
}

enum Inner {
    /// A store's staged upload (local: a staging file renamed at the end; S3: multipart).
    Single(Upload),
    /// ADAPTER until `RedundantStore::begin_write` lands in crates/redundancy (the lead
    /// swaps it in): the bytes are collected and written with `RedundantStore::write` at
    /// the end, so a tier with domains still holds a whole object in memory.
    Domains {
        domains: Arc<DomainTier>,
        redundancy: Redundancy,
        collected: Mutex<BytesMut>,
    },
}

impl std::fmt::Debug for TierUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierUpload")
            .field("rel", &self.rel)
            .field("bound", &self.bound)
            .field("written", &self.written.load(Ordering::SeqCst))
            .finish()
    }
}

impl TierStore {
    /// Starts writing `rel` with `redundancy` (`None`: the tier's own; a tier with one
    /// store ignores it) in at most `len` bytes: the exact length, or an upper bound when
    /// it is known only at the end (an object encoded as it streams). Nothing appears
    /// under `rel` before [`TierUpload::finish`].
    pub async fn begin_write(
        &self,
        rel: &str,
        redundancy: Option<Redundancy>,
        len: u64,
    ) -> Result<TierUpload, StoreError> {
        let inner = match self {
            TierStore::Single(store) => Inner::Single(store.begin_upload(rel, len, false).await?),
            TierStore::Domains(domains) => Inner::Domains {
                domains: Arc::clone(domains),
                redundancy: redundancy.unwrap_or(domains.default),
                collected: Mutex::new(BytesMut::new()),
            },
        };
        Ok(TierUpload {
            rel: rel.to_string(),
            bound: len,
            written: AtomicU64::new(0),
            inner,
        })
    }
}

impl TierUpload {
    /// Appends `data`. A failed write can be tried again with the same bytes (nothing
    /// after them has been written).
    pub async fn write(&self, data: Bytes) -> Result<(), StoreError> {
        let offset = self.written.load(Ordering::SeqCst);
        let len = data.len() as u64;
        if offset.saturating_add(len) > self.bound {
            return Err(StoreError::Backend {
                path: self.rel.clone(),
                detail: format!(
                    "the object takes more than the {} bytes its write began with",
                    self.bound
                ),
                retryable: false,
            });
        }
        match &self.inner {
            Inner::Single(upload) => upload.write_at(offset, data).await?,
            Inner::Domains { collected, .. } => crate::state::lock(collected).extend_from_slice(&data),
        }
        self.written.fetch_add(len, Ordering::SeqCst);
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Publishes what was written under the path, atomically; returns its length.
    pub async fn finish(self) -> Result<u64, StoreError> {
        let written = self.written();
        match self.inner {
            Inner::Single(mut upload) => {
                if written < self.bound {
                    if let Err(err) = upload.set_len(written).await {
                        let _ = upload.abort().await;
                        return Err(err);
                    }
                }
                upload.publish(None, None).await?;
            }
            Inner::Domains {
                domains,
                redundancy,
                collected,
            } => {
                let data = collected
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .freeze();
                domains
                    .store
                    .write(&self.rel, data, redundancy)
                    .await
                    .map_err(|err| to_store_error(&self.rel, err))?;
            }
        }
        Ok(written)
    }

    /// Gives up: nothing is published, the staged bytes are removed.
    pub async fn abort(self) -> Result<(), StoreError> {
        match self.inner {
            Inner::Single(upload) => upload.abort().await,
            Inner::Domains { .. } => Ok(()),
        }
    }
}
