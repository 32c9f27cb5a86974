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
//! Reads go through [`TierStore::open`], once per read of an object (a GET, a move's
//! source read, a read-back), then [`TierObject::read_range`] per span: on a tier with
//! domains the domains are looked at once per object read, not once per span.
//!
//! Reads on a tier with domains are never held up by what they find: a read served
//! through lost or damaged domains (a *degraded* read) and a read of an object whose
//! encoding is not the one its class asks for both answer first; the object read posts a
//! [`ReadNotice`] (see [`TierObject`] for when) to the service's redundancy worker
//! ([`crate::redundancy_worker`]), which repairs in the background or plans a
//! `lazy_reencode` job.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use strata_heat::TierId;
use strata_redundancy::{ObjectReader, Read, Redundancy, RedundancyError, RedundantStore};
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

    /// Opens `rel` for reading, once per read of an object: on a tier with domains this
    /// looks at the domains once (see [`strata_redundancy::reader`]) and posts the
    /// object's [`ReadNotice`]; its ranges are then read through the [`TierObject`]. On a
    /// tier with one store it costs nothing. A missing object is `NotFound`.
    pub async fn open(&self, rel: &str) -> Result<TierObject, StoreError> {
        let source = match self {
            TierStore::Single(store) => Source::Single(store.clone()),
            TierStore::Domains(domains) => {
                let reader = domains
                    .store
                    .open(rel)
                    .await
                    .map_err(|err| to_store_error(rel, err))?;
                let faults = reader.faults();
                domains.notice(rel, reader.stat().encoding, !faults.is_empty());
                Source::Domains {
                    reader,
                    tier: Arc::clone(domains),
                    noticed_degraded: Arc::new(AtomicBool::new(!faults.is_empty())),
                }
            }
        };
        Ok(TierObject {
            rel: rel.to_string(),
            source,
        })
    }

    /// All of `rel` (opened and read at once).
    pub async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        self.open(rel).await?.read_all().await
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
    /// Posts what a read of `rel` found for the redundancy worker (the post does not
    /// wait; a full queue drops it: the next read asks again).
    fn notice(&self, rel: &str, encoding: Redundancy, degraded: bool) {
        if let Some(notices) = &self.notices {
            let _ = notices.try_send(ReadNotice {
                tier: self.tier,
                rel: rel.to_string(),
                encoding,
                degraded,
            });
        }
    }
}

/// One object of a tier opened for reading ([`TierStore::open`]): any number of ranges
/// of it are read through it. Cheap to clone; clones share what was found.
///
/// On a tier with domains the object's [`ReadNotice`] is posted when it is opened, with
/// what the look at the domains found (the encoding, and whether pieces are missing,
/// damaged or unreachable), and once more, degraded, the first time a range read meets a
/// fault the look did not show (a domain lost or a fragment found damaged mid-read): at
/// most two notices per object read, however many spans it is read in.
#[derive(Clone, Debug)]
pub struct TierObject {
    rel: String,
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Single(Store),
    Domains {
        reader: ObjectReader,
        tier: Arc<DomainTier>,
        /// Whether a degraded notice was posted for this object read.
        noticed_degraded: Arc<AtomicBool>,
    },
}

impl TierObject {
    /// `len` bytes from `offset`.
    pub async fn read_range(&self, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        match &self.source {
            Source::Single(store) => store.read_range(&self.rel, offset, len).await,
            Source::Domains { reader, .. } => {
                let read = reader.read_range(offset, len).await;
                self.answered(read)
            }
        }
    }

    /// All of the object.
    pub async fn read_all(&self) -> Result<Bytes, StoreError> {
        match &self.source {
            Source::Single(store) => store.read_all(&self.rel).await,
            Source::Domains { reader, .. } => {
                let read = reader.read_range(0, u64::MAX).await;
                self.answered(read)
            }
        }
    }

    /// The object's length on the tier (`None` when it is not there): a stat of the one
    /// store, or the logical length the look at the domains found (no request).
    pub async fn len(&self) -> Result<Option<u64>, StoreError> {
        match &self.source {
            Source::Single(store) => Ok(store.stat(&self.rel).await?.map(|entry| entry.size)),
            Source::Domains { reader, .. } => Ok(Some(reader.stat().len)),
        }
    }

    /// Answers a range read, posting a degraded notice first when it met faults and none
    /// was posted for this object read yet.
    fn answered(&self, read: Result<Read, RedundancyError>) -> Result<Bytes, StoreError> {
        let read = read.map_err(|err| to_store_error(&self.rel, err))?;
        if let Source::Domains {
            tier,
            noticed_degraded,
            ..
        } = &self.source
        {
            if !read.faults.is_empty() && !noticed_degraded.swap(true, Ordering::Relaxed) {
                tier.notice(&self.rel, read.encoding, true);
            }
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

#[cfg(test)]
mod tests;
