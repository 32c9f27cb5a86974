//! Reading a packed dataset: files by path, bytes by range, every frame checked. The
//! index is read from its primary or its copy ([`load_index`]). A store is packed when it
//! has the layout marker or, marker lost, a manifest saying so; a plain source holding a
//! packed store's objects without either is refused ([`refuse_packed_internals`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use strata_codec::compress::decode_frame;
use strata_codec::format::encrypted::{is_encrypted, EncryptionKey, KeyRing};
use strata_codec::manifest::DatasetManifest;
use strata_codec::MANIFEST_PATH;
use strata_store::{Entry, Store, StoreError};

use super::format::{index_copy_path, IndexedFile, PackedIndex, LAYOUT_PATH};
use super::sealed::{load_copies, Loaded};
use crate::retry::retry_store;
use crate::MoverError;

/// A packed dataset opened for reading: the latest version its manifest points at.
pub struct PackedSource {
    store: Store,
    manifest: DatasetManifest,
    index: PackedIndex,
    by_path: HashMap<String, usize>,
    /// The dataset's keys when it is encrypted: every frame is opened with them.
    keys: Option<Arc<KeyRing>>,
}

/// The index of a packed dataset version as loaded from its two copies.
pub type LoadedIndex = Loaded<PackedIndex>;

/// Whether `store` holds the packed layout (it has the layout marker).
pub async fn is_packed(store: &Store) -> Result<bool, MoverError> {
    match store.stat(LAYOUT_PATH).await {
        Ok(Some(_)) => Ok(true),
        Ok(None) | Err(StoreError::NotFound { .. }) | Err(StoreError::NotADirectory { .. }) => {
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

/// The manifest of a store that lost its layout marker but whose manifest (or its copy)
/// says packed: the marker is recovered from it, with a warning naming the store and how
/// to write the marker again. `None` for anything else (no manifest: a plain source; a
/// plain manifest: a plain Strata dataset, whose `.strata/` the listing leaves out).
async fn unmarked_packed_manifest(store: &Store) -> Option<DatasetManifest> {
    let loaded = crate::verify::load_manifest_checked(store).await.ok()?;
    if loaded.manifest.layout.as_deref() != Some("packed") {
        return None;
    }
    tracing::warn!(
        store = %store.display(),
        "the layout marker {LAYOUT_PATH} is missing but the manifest says the store is \
         packed: reading it as packed (`strata repair {}` writes the marker again)",
        store.display()
    );
    for issue in &loaded.issues {
        tracing::warn!(object = %issue.object, "{}", issue.detail);
    }
    Some(loaded.manifest)
}

/// Whether `path` is named like a packed store's data object: `chunks/<aa>/<hash>` or
/// `packs/<aa>/<hash>`, a 64-digit hex BLAKE3 whose first two digits are `<aa>`.
fn is_object_key(path: &str) -> bool {
    let mut parts = path.split('/');
    let (Some(folder), Some(fan), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    matches!(folder, "chunks" | "packs")
        && name.len() == 64
        && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && name.get(..2) == Some(fan)
}

/// Refuse a plain source whose listing holds a packed store's data objects that no
/// manifest of the source lists as files: a packed store whose layout marker and
/// manifests are gone. Restoring it would copy its internal objects as the user's files.
pub async fn refuse_packed_internals(store: &Store, entries: &[Entry]) -> Result<(), MoverError> {
    let Some(object) = entries.iter().find(|e| is_object_key(&e.path)) else {
        return Ok(());
    };
    // A plain Strata dataset that lists these paths holds them as its files.
    if let Ok(loaded) = crate::verify::load_manifest_checked(store).await {
        if loaded.manifest.files.iter().any(|f| f.path == object.path) {
            return Ok(());
        }
    }
    Err(MoverError::UnmarkedPackedStore {
        location: store.display(),
        object: object.path.clone(),
    })
}

/// Load the index `manifest` points at from its primary or, when that is missing or fails
/// its checks (self-hash, and [`PackedIndex::check_against`] the manifest), from its copy;
/// [`Loaded::issues`] says which one is bad. Neither usable is not an error here: the
/// caller reports it ([`PackedSource::from_loaded`] refuses to read).
pub async fn load_index(
    store: &Store,
    manifest: &DatasetManifest,
) -> Result<LoadedIndex, MoverError> {
    let path = manifest.index.clone().ok_or_else(|| MoverError::Manifest {
        location: format!("{}/{MANIFEST_PATH}", store.display().trim_end_matches('/')),
        reason: "the manifest of this packed store names no index; the store is damaged: \
                 migrate again from the source"
            .into(),
    })?;
    let check = |index: &PackedIndex| index.check_against(manifest);
    load_copies(store, &path, &index_copy_path(&path), &check).await
}

impl PackedSource {
    /// Open `store` as a packed dataset; `Ok(None)` when it is not one (no layout marker,
    /// and no manifest saying packed: a store that lost only its marker is read through its
    /// manifest, with a warning). The manifest and the index are each read from their primary or, when that is bad,
    /// from their copy, with a warning naming the bad one; an error when neither copy of
    /// the index can be used. An encrypted dataset opens with `key` only (see
    /// [`crate::encryption::dataset_keys`]).
    pub async fn open(
        store: &Store,
        key: Option<&EncryptionKey>,
    ) -> Result<Option<PackedSource>, MoverError> {
        let manifest = if is_packed(store).await? {
            crate::verify::load_manifest(store).await?
        } else {
            match unmarked_packed_manifest(store).await {
                Some(manifest) => manifest,
                None => return Ok(None),
            }
        };
        // Before the index: a missing or wrong key is the first thing to say.
        let keys = crate::encryption::dataset_keys(store, key).await?;
        let loaded = load_index(store, &manifest).await?;
        if loaded.doc.is_some() {
            // Without a usable copy the error below says it all.
            for issue in &loaded.issues {
                tracing::warn!(object = %issue.object, "{}", issue.detail);
            }
        }
        PackedSource::from_loaded(store, manifest, loaded).map(|s| Some(s.with_keys(keys)))
    }

    /// This source, opening every frame with `keys` (an encrypted dataset's, from
    /// [`crate::encryption::dataset_keys`]).
    pub fn with_keys(mut self, keys: Option<Arc<KeyRing>>) -> PackedSource {
        self.keys = keys;
        self
    }

    /// Whether the dataset is encrypted (its frames are opened with its key).
    pub fn is_encrypted(&self) -> bool {
        self.keys.is_some()
    }

    /// A packed source from a manifest and its index as loaded; an error naming both
    /// copies and what to do when neither could be used.
    pub fn from_loaded(
        store: &Store,
        manifest: DatasetManifest,
        loaded: LoadedIndex,
    ) -> Result<PackedSource, MoverError> {
        let Some(index) = loaded.doc else {
            let detail = loaded
                .issues
                .first()
                .map(|issue| issue.detail.clone())
                .unwrap_or_else(|| "the packed index cannot be read".into());
            return Err(MoverError::Store(StoreError::Backend {
                path: format!(
                    "{}/{}",
                    store.display().trim_end_matches('/'),
                    loaded.primary_path
                ),
                detail,
                retryable: false,
            }));
        };
        let by_path = index
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
        Ok(PackedSource {
            store: store.clone(),
            manifest,
            index,
            by_path,
            keys: None,
        })
    }

    /// The dataset manifest.
    pub fn manifest(&self) -> &DatasetManifest {
        &self.manifest
    }

    /// The index: where every chunk of every file is.
    pub fn index(&self) -> &PackedIndex {
        &self.index
    }

    /// The BLAKE3 (hex) the manifest records for `path`, when the dataset holds it.
    pub fn recorded_hash(&self, path: &str) -> Option<&str> {
        self.by_path
            .get(path)
            .map(|&i| self.index.files[i].blake3.as_str())
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
                etag: None,
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
        // A chunk object the index names that is gone, or that does not decode to the
        // recorded bytes, is damage to the dataset: the error says so once, with the
        // advice that applies (repair), not a configuration hint.
        let frame = retry_store(|| {
            self.store
                .read_range(&locator.object, locator.offset, locator.len)
        })
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => StoreError::Damaged {
                path: path.to_string(),
                detail: format!("chunk {index} (object {}) does not exist", locator.object),
            },
            other => other,
        })?;
        let damaged = |detail: String| StoreError::Damaged {
            path: path.to_string(),
            detail: format!("chunk {index} (object {}): {detail}", locator.object),
        };
        let opened;
        let frame = match &self.keys {
            Some(keys) if is_encrypted(&frame) => {
                opened = keys.open(&frame).map_err(|e| damaged(e.to_string()))?;
                &opened[..]
            }
            // Nothing of an encrypted dataset is in clear: a plain frame there is damage.
            Some(_) => {
                return Err(damaged(
                    "not sealed, though the dataset is encrypted".to_string(),
                ))
            }
            None => &frame[..],
        };
        // The inner frame's own checks end with the raw BLAKE3: integrity end to end.
        let raw = decode_frame(frame).map_err(|e| damaged(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::is_object_key;

    #[test]
    fn only_content_addressed_objects_look_packed() {
        let hash = "ab".to_string() + &"0".repeat(62);
        assert!(is_object_key(&format!("chunks/ab/{hash}")));
        assert!(is_object_key(&format!("packs/ab/{hash}")));
        for plain in [
            format!("chunks/cd/{hash}"),
            format!("data/ab/{hash}"),
            format!("chunks/ab/{hash}/x"),
            format!("chunks/ab/{}", &hash[..63]),
            "chunks/ab/c.zarr".to_string(),
            format!("chunks/ab/{}", hash.to_uppercase()),
        ] {
            assert!(!is_object_key(&plain), "{plain}");
        }
    }
}
