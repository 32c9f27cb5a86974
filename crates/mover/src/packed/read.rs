//! Reading a packed dataset: files by path, bytes by range, every frame checked.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use strata_codec::compress::decode_frame;
use strata_codec::manifest::DatasetManifest;
use strata_codec::MANIFEST_PATH;
use strata_store::{Entry, Store, StoreError};

use super::format::{IndexedFile, PackedIndex, LAYOUT_PATH};
use crate::retry::with_backoff;
use crate::MoverError;

/// A packed dataset opened for reading: the latest version its manifest points at.
pub struct PackedSource {
    store: Store,
    manifest: DatasetManifest,
    index: PackedIndex,
    by_path: HashMap<String, usize>,
}

impl PackedSource {
    /// Open `store` as a packed dataset; `Ok(None)` when it is not one (no layout marker).
    pub async fn open(store: &Store) -> Result<Option<PackedSource>, MoverError> {
        match store.stat(LAYOUT_PATH).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(StoreError::NotFound { .. }) | Err(StoreError::NotADirectory { .. }) => {
                return Ok(None)
            }
            Err(error) => return Err(error.into()),
        }
        let manifest = crate::verify::load_manifest(store).await?;
        let location = |what: &str| format!("{}/{what}", store.display().trim_end_matches('/'));
        let index_path = manifest.index.clone().ok_or_else(|| MoverError::Manifest {
            location: location(MANIFEST_PATH),
            reason: "packed store manifest names no index; the store is damaged: repair it from the source".into(),
        })?;
        let bytes = with_backoff(|| store.read_all(&index_path)).await?;
        let index = PackedIndex::from_json(&bytes).map_err(|reason| MoverError::Manifest {
            location: location(&index_path),
            reason,
        })?;
        if index.root_hash != manifest.root_hash {
            return Err(MoverError::Manifest {
                location: location(&index_path),
                reason: "index belongs to another dataset version than the manifest".into(),
            });
        }
        let by_path = index
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
        Ok(Some(PackedSource {
            store: store.clone(),
            manifest,
            index,
            by_path,
        }))
    }

    /// The dataset manifest.
    pub fn manifest(&self) -> &DatasetManifest {
        &self.manifest
    }

    /// The index: where every chunk of every file is.
    pub fn index(&self) -> &PackedIndex {
        &self.index
    }

    /// Chunk size of the stored chunks.
    pub fn chunk_size(&self) -> u64 {
        self.index.chunk_size
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Files as listing entries, sorted by path.
    pub fn entries(&self) -> Vec<Entry> {
        self.index
            .files
            .iter()
            .map(|f| Entry {
                path: f.path.clone(),
                size: f.size,
                mtime: f
                    .mtime_ns
                    .and_then(|ns| u64::try_from(ns).ok())
                    .map(|ns| UNIX_EPOCH + Duration::from_nanos(ns)),
                mode: f.mode,
            })
            .collect()
    }

    fn file(&self, path: &str) -> Result<&IndexedFile, StoreError> {
        self.by_path
            .get(path)
            .map(|&i| &self.index.files[i])
            .ok_or_else(|| StoreError::NotFound {
                path: format!("{} (in the packed index)", path),
            })
    }

    /// Decode chunk `index` of `path`, checking its frame (raw length and raw hash).
    pub async fn read_chunk(&self, path: &str, index: u64) -> Result<Bytes, StoreError> {
        let file = self.file(path)?;
        let locator = file
            .chunks
            .get(index as usize)
            .ok_or_else(|| StoreError::Backend {
                path: path.to_string(),
                detail: format!("the index has no chunk {index}"),
                retryable: false,
            })?;
        let frame = with_backoff(|| {
            self.store
                .read_range(&locator.object, locator.offset, locator.len)
        })
        .await?;
        let raw = decode_frame(&frame).map_err(|e| StoreError::Backend {
            path: path.to_string(),
            detail: format!(
                "chunk {index} (object {}) is damaged: {e}; repair it or restore from the source",
                locator.object
            ),
            retryable: false,
        })?;
        Ok(Bytes::from(raw))
    }

    /// Bytes `[offset, offset + len)` of `path`, decoded from the chunks covering them.
    pub async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let file = self.file(path)?;
        let end = offset.saturating_add(len);
        if end > file.size {
            return Err(StoreError::Backend {
                path: path.to_string(),
                detail: format!(
                    "range {offset}..{end} is past the end ({} bytes)",
                    file.size
                ),
                retryable: false,
            });
        }
        if len == 0 {
            return Ok(Bytes::new());
        }
        let chunk = self.index.chunk_size;
        let (first, last) = (offset / chunk, (end - 1) / chunk);
        if first == last {
            let data = self.read_chunk(path, first).await?;
            let start = (offset - first * chunk) as usize;
            return Ok(data.slice(start..start + len as usize));
        }
        let mut out = Vec::with_capacity(len as usize);
        for index in first..=last {
            let data = self.read_chunk(path, index).await?;
            let base = index * chunk;
            let from = offset.max(base) - base;
            let to = end.min(base + data.len() as u64) - base;
            out.extend_from_slice(&data[from as usize..to as usize]);
        }
        Ok(Bytes::from(out))
    }
}
