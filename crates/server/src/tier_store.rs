//! Where a tier's object bytes live: one store, or a set of failure domains under a
//! redundancy (`strata_redundancy`). Every part of the service that touches a tier's bytes
//! ([`crate::tier_codec`], the mover, recovery) goes through a [`TierStore`], so a tier
//! with `stores = [...]` and `redundancy = "ec:4+2"` is read, written, listed and deleted
//! the same way as a tier with one `store`.
//!
//! A tier with one `store` (and `redundancy = "none"`) is exactly what it was before
//! redundancy existed: its objects are the files `objects/<key>` of that store, nothing
//! else is written. A tier with domains keeps each object as its redundancy says (each
//! replica a plain copy at `objects/<key>` of its domain, or EC fragments), verified on
//! every read.
//!
//! Reads on a tier with domains are never held up by what they find: a read served
//! through lost or damaged domains (a *degraded* read) and a read of an object whose
//! encoding is not the one its class asks for both answer first, then post a
//! [`ReadNotice`] to the service's redundancy worker ([`crate::redundancy_worker`]),
//! which repairs in the background or plans a `lazy_reencode` job.

use std::sync::Arc;

use bytes::Bytes;
use strata_heat::TierId;
use strata_redundancy::{Read, Redundancy, RedundancyError, RedundantStore};
use strata_store::{Entry, ListWarning, Store, StoreError};
use tokio::sync::mpsc;

mod upload;
pub use upload::{EncodingSink, TierUpload};

/// What a read of a tier with domains found, for the redundancy worker.
#[derive(Debug, Clone)]
pub struct ReadNotice {
    /// The tier.
    pub tier: TierId,
    /// The path read (`objects/<key>`).
    pub rel: String,
    /// The encoding the object has now.
    pub encoding: Redundancy,
    /// Whether some domain was missing, damaged or unreachable (a rebuild is due).
    pub degraded: bool,
}

/// A tier's store: one, or domains under a redundancy.
#[derive(Clone, Debug)]
pub enum TierStore {
    /// One store (the tier's `store`).
    Single(Store),
    /// Failure domains (the tier's `stores`).
    Domains(Arc<DomainTier>),
}

/// A tier's failure domains, with what its objects should get.
#[derive(Debug)]
pub struct DomainTier {
    /// The domains, as the redundancy crate keeps objects over them.
    pub store: RedundantStore,
    /// The tier's own `redundancy`: what new objects get.
    pub default: Redundancy,
    /// The tier.
    pub tier: TierId,
    /// Where writes of unknown length wait for their end beyond memory's share
    /// (`<data_dir>/spool`).
    pub spool: std::path::PathBuf,
    /// Where reads report what they found; `None` for handles that must not report (a
    /// move's own reads: the mover handles what it finds).
    pub notices: Option<mpsc::Sender<ReadNotice>>,
}

impl TierStore {
    /// The store of a tier with one store, for what only makes sense there (local paths).
    pub fn single(&self) -> Option<&Store> {
        match self {
            TierStore::Single(store) => Some(store),
            TierStore::Domains(_) => None,
        }
    }

    /// The domains of a tier that has them.
    pub fn domains(&self) -> Option<&DomainTier> {
        match self {
            TierStore::Single(_) => None,
            TierStore::Domains(domains) => Some(domains),
        }
    }

    /// Every store under this tier: its one store, or each domain.
    pub fn stores(&self) -> Vec<Store> {
        match self {
            TierStore::Single(store) => vec![store.clone()],
            TierStore::Domains(domains) => domains.store.domains().to_vec(),
        }
    }

    /// For messages: the store, or the domains joined.
    pub fn display(&self) -> String {
        self.stores()
            .iter()
            .map(Store::display)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `len` bytes of `rel` from `offset`.
    pub async fn read_range(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        match self {
            TierStore::Single(store) => store.read_range(rel, offset, len).await,
            TierStore::Domains(domains) => {
                let read = domains.store.read_range(rel, offset, len).await;
                domains.answered(rel, read)
            }
        }
    }

    /// All of `rel`.
    pub async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        match self {
            TierStore::Single(store) => store.read_all(rel).await,
            TierStore::Domains(domains) => {
                let read = domains.store.read_all(rel).await;
                domains.answered(rel, read)
            }
        }
    }

    /// Writes `data` at `rel` atomically (on a tier with domains, in the tier's own
    /// redundancy: the layout marker and other small records).
    pub async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        match self {
            TierStore::Single(store) => store.write_atomic(rel, data).await,
            TierStore::Domains(domains) => domains
                .store
                .write(rel, data, domains.default)
                .await
                .map(|_| ())
                .map_err(|err| to_store_error(rel, err)),
        }
    }

    /// Removes `rel` (every replica or fragment); a missing object is not an error.
    pub async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        match self {
            TierStore::Single(store) => store.delete(rel).await,
            TierStore::Domains(domains) => domains
                .store
                .delete(rel)
                .await
                .map_err(|err| to_store_error(rel, err)),
        }
    }

    /// `rel`'s entry (its logical size on a tier with domains), or `None`.
    pub async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        match self {
            TierStore::Single(store) => store.stat(rel).await,
            TierStore::Domains(domains) => {
                let stat = domains
                    .store
                    .stat(rel)
                    .await
                    .map_err(|err| to_store_error(rel, err))?;
                Ok(stat.map(|stat| Entry {
                    path: rel.to_string(),
                    size: stat.len,
                    mtime: None,
                    mode: None,
                    etag: None,
                }))
            }
        }
    }

    /// Every object under `prefix` with its (logical) size.
    pub async fn list_objects(
        &self,
        prefix: &str,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<(String, u64)>, StoreError> {
        match self {
            TierStore::Single(store) => Ok(store
                .list(warn)
                .await?
                .into_iter()
                .filter(|entry| entry.path.starts_with(prefix))
                .map(|entry| (entry.path, entry.size))
                .collect()),
            TierStore::Domains(domains) => Ok(domains
                .store
                .list(prefix)
                .await
                .map_err(|err| to_store_error(prefix, err))?
                .into_iter()
                .map(|(rel, stat)| (rel, stat.len))
                .collect()),
        }
    }

    /// Clears what interrupted writes left in the staging areas, on every store: staged
    /// atomic writes and uploads alike (the service never resumes an upload: a write cut
    /// off by a crash is abandoned). Only at start, before any write.
    pub async fn remove_interrupted_writes(&self) -> Result<u64, StoreError> {
        let mut removed = 0;
        for store in self.stores() {
            removed += store.remove_interrupted_writes().await?;
            removed += store.remove_abandoned_uploads().await?;
        }
        Ok(removed)
    }
}

impl DomainTier {
    /// Answers a read, posting what it found for the redundancy worker first (the post
    /// does not wait; a full queue drops it).
    fn answered(
        &self,
        rel: &str,
        read: Result<Read, RedundancyError>,
    ) -> Result<Bytes, StoreError> {
        let read = read.map_err(|err| to_store_error(rel, err))?;
        if let Some(notices) = &self.notices {
            let _ = notices.try_send(ReadNotice {
                tier: self.tier,
                rel: rel.to_string(),
                encoding: read.encoding,
                degraded: !read.faults.is_empty(),
            });
        }
        Ok(read.bytes)
    }
}

/// A redundancy error as the store error the service's callers handle: an object no
/// domain has is `NotFound`; anything else reached the caller because more domains failed
/// than the encoding tolerates, which is damage (its text names the domains and why).
pub fn to_store_error(rel: &str, err: RedundancyError) -> StoreError {
    if err.is_missing() {
        return StoreError::NotFound {
            path: rel.to_string(),
        };
    }
    StoreError::Damaged {
        path: rel.to_string(),
        detail: err.to_string(),
    }
}
