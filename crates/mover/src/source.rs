//! Where a migration reads from: a plain store (files are files) or a packed dataset
//! (files are decoded from chunk frames), behind one small interface.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use strata_store::{Entry, ListWarning, Store, StoreError, StoreLocation};

use crate::encryption::EncryptionKey;
use crate::packed::read::PackedSource;
use crate::MoverError;

/// Anything files can be read from by byte range.
pub trait RangeRead: Sync {
    /// Bytes `[offset, offset + len)` of `path`.
    fn read_range(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = Result<Bytes, StoreError>> + Send;

    /// The span to read a chunk of `len` bytes in: whole chunks unless the reader says a
    /// smaller span pays (see [`Store`]'s answer).
    fn span_for(&self, len: u64) -> u64 {
        len
    }
}

/// Bytes `[offset, offset + len)` of `path`, retried like every store call; fewer bytes
/// than asked (the file shrank while it was read) is an error naming the file.
pub(crate) async fn read_exact(
    reader: &impl RangeRead,
    path: &str,
    offset: u64,
    len: u64,
) -> Result<Bytes, StoreError> {
    let data = crate::retry::retry_store(|| reader.read_range(path, offset, len)).await?;
    if data.len() as u64 != len {
        return Err(StoreError::Backend {
            path: path.to_string(),
            detail: format!(
                "{} bytes came back for {len} at offset {offset}: the file changed while it was read; re-run",
                data.len()
            ),
            retryable: false,
        });
    }
    Ok(data)
}

impl RangeRead for Store {
    fn read_range(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = Result<Bytes, StoreError>> + Send {
        Store::read_range(self, path, offset, len)
    }

    /// [`crate::pipeline::IO_SPAN`] on a local store without a bandwidth cap, where whole
    /// multi-MiB buffers lose the CPU's cache (docs/BENCHMARKS.md, issue 12); whole chunks
    /// on object stores (a request is the unit; a request per span would multiply them)
    /// and under a cap, where each span is paced on its own: a migration to S3 in 256 KiB
    /// pieces had its reads and writes wait on each other's pacing and a 4 MiB/s cap
    /// delivered 3.4 MB/s (`netns_throttle` test), with whole chunks the cap. A migration
    /// sizes its spans by the destination's answer, `strata verify` by the store's.
    fn span_for(&self, len: u64) -> u64 {
        if self.local_root().is_some() && self.throttle().is_none() {
            crate::pipeline::IO_SPAN.min(len.max(1))
        } else {
            len
        }
    }
}

/// The source of a migration.
#[derive(Clone)]
pub enum DatasetSource {
    /// Plain files.
    Plain(Store),
    /// A packed dataset written by `strata migrate --layout packed`.
    Packed(Arc<PackedSource>),
}

impl DatasetSource {
    /// Open `store` as a source: packed if it carries Strata's packed layout marker (an
    /// encrypted one opened with `key`).
    pub async fn open(
        store: Store,
        key: Option<&EncryptionKey>,
    ) -> Result<DatasetSource, MoverError> {
        Ok(match PackedSource::open(&store, key).await? {
            Some(packed) => DatasetSource::Packed(Arc::new(packed)),
            None => DatasetSource::Plain(store),
        })
    }

    pub(crate) fn store(&self) -> &Store {
        match self {
            DatasetSource::Plain(store) => store,
            DatasetSource::Packed(packed) => packed.store(),
        }
    }

    /// The store of a plain source (`None` for a packed one).
    pub(crate) fn plain(&self) -> Option<&Store> {
        match self {
            DatasetSource::Plain(store) => Some(store),
            DatasetSource::Packed(_) => None,
        }
    }

    /// Display URI (no secrets).
    pub fn display(&self) -> String {
        self.store().display()
    }

    /// Where the source's bytes live, for overlap checks.
    pub fn location(&self) -> StoreLocation {
        self.store().location()
    }

    /// Local root, for local stores.
    pub fn local_root(&self) -> Option<&Path> {
        self.store().local_root()
    }

    /// The BLAKE3 (hex) a packed source's manifest records for `path`; `None` for plain
    /// sources, whose files carry no recorded hash. A restored file whose chunks all passed
    /// their frame checks must still merge to this, or the index pointed at the wrong frames.
    pub fn recorded_hash(&self, path: &str) -> Option<&str> {
        match self {
            DatasetSource::Plain(_) => None,
            DatasetSource::Packed(packed) => packed.recorded_hash(path),
        }
    }

    /// Chunk size a packed source imposes on the plan.
    pub fn fixed_chunk_size(&self) -> Option<u64> {
        match self {
            DatasetSource::Plain(_) => None,
            DatasetSource::Packed(packed) => Some(packed.chunk_size()),
        }
    }

    /// Fail fast when the store cannot be reached.
    pub async fn check_reachable(&self) -> Result<(), StoreError> {
        self.store().check_reachable().await
    }

    /// Every file of the dataset, sorted by path.
    pub async fn list(
        &self,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<Entry>, StoreError> {
        match self {
            DatasetSource::Plain(store) => store.list(warn).await,
            DatasetSource::Packed(packed) => Ok(packed.entries()),
        }
    }
}

impl RangeRead for DatasetSource {
    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        match self {
            DatasetSource::Plain(store) => store.read_range(path, offset, len).await,
            DatasetSource::Packed(packed) => packed.read_range(path, offset, len).await,
        }
    }

    fn span_for(&self, len: u64) -> u64 {
        match self {
            DatasetSource::Plain(store) => store.span_for(len),
            DatasetSource::Packed(_) => len,
        }
    }
}

impl RangeRead for PackedSource {
    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        PackedSource::read_range(self, path, offset, len).await
    }
}
