//! Persisted types of the packed layout (`strata migrate --layout packed`): the layout
//! marker, the index, and the names of chunk and pack objects. The I/O that writes and
//! reads them lives in `strata_mover::packed`; `docs/FORMATS.md` specifies them.
//!
//! The index is sealed ([`super::sealed`]): `self_hash` is BLAKE3 of its canonical JSON
//! without that member, checked on every read, and it is written twice,
//! `.strata/index/<root>.json` then `.strata/index/<root>.copy.json`, before the manifest
//! points at it. Indexes written before sealing have no `self_hash` (missing = legacy):
//! they are read unverified as a whole and without a copy, but still checked against the
//! manifest ([`PackedIndex::check_against`]) and object by object as their chunks are
//! read.

use super::manifest::DatasetManifest;
use serde::{Deserialize, Serialize};

use super::sealed::{seal, unseal, Sealed};

/// Where the layout marker lives.
pub const LAYOUT_PATH: &str = ".strata/layout.json";
/// Folder of the indexes, one per dataset version.
pub const INDEX_DIR: &str = ".strata/index";
/// The `format` marker of a packed index.
pub const INDEX_FORMAT: &str = "strata-packed-index";
/// The newest index version this build writes and reads (newer ones are refused).
pub const INDEX_VERSION: u32 = 1;
/// The `format` marker of the layout marker.
pub const LAYOUT_FORMAT: &str = "strata-layout";
/// The layout marker version this build writes for an unencrypted dataset.
pub const LAYOUT_VERSION: u32 = 1;
/// The layout marker version of an encrypted dataset: builds that read only version 1 do
/// not know its frames are sealed.
pub const LAYOUT_VERSION_ENCRYPTED: u32 = 2;
/// The BLAKE3 `derive_key` context of the key that names an encrypted dataset's objects.
pub const OBJECT_NAME_CONTEXT: &str = "strata 2026-12 packed object names v1";

/// Where the index of dataset version `root` lives.
pub fn index_path(root: &str) -> String {
    format!("{INDEX_DIR}/{root}.json")
}

/// Where the copy of the index at `index_path` lives: `<name>.copy.json` beside it.
pub fn index_copy_path(index_path: &str) -> String {
    match index_path.strip_suffix(".json") {
        Some(stem) => format!("{stem}.copy.json"),
        None => format!("{index_path}.copy"),
    }
}

/// `.strata/layout.json`: says a store holds Strata's packed layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutMarker {
    /// Always `strata-layout`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// `packed`.
    pub layout: String,
    /// Chunk size of the chunks stored.
    pub chunk_size: u64,
    /// Present when every frame is sealed (an encrypted dataset): the cipher and key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<DatasetEncryption>,
}

/// How an encrypted packed dataset is sealed: what the layout marker says of its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetEncryption {
    /// The cipher frames are sealed with (`xchacha20poly1305`, `aes-256-gcm`).
    pub cipher: String,
    /// The id of the key (16 hex digits), never the key.
    pub key_id: String,
}

impl LayoutMarker {
    /// The marker of a packed store with `chunk_size` chunks.
    pub fn packed(chunk_size: u64) -> Self {
        Self {
            format: LAYOUT_FORMAT.into(),
            version: LAYOUT_VERSION,
            layout: "packed".into(),
            chunk_size,
            encryption: None,
        }
    }

    /// The marker of an encrypted packed store: version 2, with its cipher and key id.
    pub fn packed_encrypted(chunk_size: u64, encryption: DatasetEncryption) -> Self {
        Self {
            version: LAYOUT_VERSION_ENCRYPTED,
            encryption: Some(encryption),
            ..Self::packed(chunk_size)
        }
    }

    /// Parse a marker, refusing other formats and versions newer than this build reads.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let marker: LayoutMarker = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a Strata layout marker: {e}"))?;
        if marker.format != LAYOUT_FORMAT {
            return Err(format!(
                "format {:?} is not {LAYOUT_FORMAT:?}",
                marker.format
            ));
        }
        if marker.version > LAYOUT_VERSION_ENCRYPTED {
            return Err(format!(
                "layout version {} is newer than this Strata understands; upgrade strata",
                marker.version
            ));
        }
        Ok(marker)
    }

    /// The marker's bytes: pretty JSON, members in declaration order, no final newline.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// Where one chunk's frame is: `len` bytes at `offset` of `object`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkLocator {
    /// Object key relative to the store root (`chunks/..` or `packs/..`).
    pub object: String,
    /// Offset of the frame in the object.
    pub offset: u64,
    /// Length of the frame.
    pub len: u64,
    /// Codec and filter the frame uses (informational; the frame header is authoritative).
    pub codec: String,
}

/// One file of a packed dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedFile {
    /// Relative path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 (as `b3sum` prints it).
    pub blake3: String,
    /// Modification time, ns since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    /// Permission bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// One locator per chunk, in order.
    pub chunks: Vec<ChunkLocator>,
}

/// `.strata/index/<root>.json`: where every chunk of every file is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedIndex {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Chunk size.
    pub chunk_size: u64,
    /// Dataset root hash this index belongs to.
    pub root_hash: String,
    /// Files sorted by path.
    pub files: Vec<IndexedFile>,
    /// BLAKE3 of the index's canonical JSON without this field (as for the manifest); set
    /// by [`PackedIndex::to_json`], checked by [`PackedIndex::from_json`]; absent in
    /// indexes written before sealing (legacy: see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_hash: Option<String>,
}

impl Sealed for PackedIndex {
    const WHAT: &'static str = "the packed index";
    const LEGACY: bool = true;
    const OPTIONAL: bool = false;
    const PRETTY: bool = false;
    const LOST: &'static str = "where the files' chunks are is unknown, so this dataset \
        version cannot be read (parity covers the data objects, not the index); write the \
        index again by re-running `strata migrate SRC DST --layout packed` from the source";

    fn self_hash_mut(&mut self) -> &mut Option<String> {
        &mut self.self_hash
    }

    fn identify(&self) -> Result<(), String> {
        if self.format != INDEX_FORMAT {
            return Err("not a Strata packed index".into());
        }
        if self.version > INDEX_VERSION {
            return Err(format!(
                "index version {} is newer than this Strata understands; upgrade strata",
                self.version
            ));
        }
        Ok(())
    }
}

impl PackedIndex {
    /// An index of `files` (sorted here by path bytes), not sealed yet.
    pub fn new(chunk_size: u64, root_hash: String, mut files: Vec<IndexedFile>) -> Self {
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Self {
            format: INDEX_FORMAT.into(),
            version: INDEX_VERSION,
            chunk_size,
            root_hash,
            files,
            self_hash: None,
        }
    }

    /// Serialise (compact JSON) with a fresh self-hash.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        seal(self)
    }

    /// Parse an index, refusing other formats, newer versions and a wrong self-hash (an
    /// index without one is legacy: see the module docs).
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        unseal::<PackedIndex>(bytes).map(|(index, _)| index)
    }

    /// Whether the index carries a self-hash (false: a legacy index).
    pub fn is_sealed(&self) -> bool {
        self.self_hash.is_some()
    }

    /// Check that the index belongs to `manifest`'s dataset version: same root hash and
    /// chunk size, and the same files with the same sizes, hashes, times and modes (the
    /// manifest is sealed: this also covers those facts of a legacy index).
    pub fn check_against(&self, manifest: &DatasetManifest) -> Result<(), String> {
        if self.root_hash != manifest.root_hash {
            return Err(format!(
                "it belongs to dataset version {}, the manifest to {}",
                self.root_hash, manifest.root_hash
            ));
        }
        if self.chunk_size != manifest.chunk_size {
            return Err(format!(
                "its chunk size is {}, the manifest's {}",
                self.chunk_size, manifest.chunk_size
            ));
        }
        if self.files.len() != manifest.files.len() {
            return Err(format!(
                "it lists {} files, the manifest {}",
                self.files.len(),
                manifest.files.len()
            ));
        }
        for (file, listed) in self.files.iter().zip(&manifest.files) {
            if file.path != listed.path
                || file.size != listed.size
                || file.blake3 != listed.blake3
                || file.mtime_ns != listed.mtime_ns
                || file.mode != listed.mode
            {
                return Err(format!(
                    "its entry for {:?} differs from the manifest's",
                    listed.path
                ));
            }
        }
        Ok(())
    }
}

/// The object key of a chunk with raw hash `hex`.
pub fn chunk_key(hex: &str) -> String {
    format!("chunks/{}/{hex}", &hex[..2])
}

/// The name of an encrypted dataset's object holding `bytes` (a raw chunk, or a pack's
/// frames before sealing): BLAKE3 keyed with `name_key` (the dataset key's subkey for
/// [`OBJECT_NAME_CONTEXT`]), so equal content still gets one name under one key (dedup,
/// resume) but a name confirms no guess without the key.
pub fn keyed_object_name(name_key: &[u8; 32], bytes: &[u8]) -> String {
    blake3::keyed_hash(name_key, bytes).to_hex().to_string()
}

/// The object key of a pack with hash `hex`.
pub fn pack_key(hex: &str) -> String {
    format!("packs/{}/{hex}", &hex[..2])
}

#[cfg(test)]
mod tests {
    use crate::format::manifest::ManifestFile;

    use super::*;

    fn manifest() -> DatasetManifest {
        let file = |path: &str, data: &[u8]| ManifestFile {
            path: path.into(),
            size: data.len() as u64,
            blake3: blake3::hash(data).to_hex().to_string(),
            mtime_ns: Some(5),
            mode: Some(0o644),
            chunks: vec![],
        };
        DatasetManifest::new(1024, vec![file("b", b"22"), file("a", b"1")])
    }

    fn index_of(manifest: &DatasetManifest) -> PackedIndex {
        let files = manifest
            .files
            .iter()
            .rev()
            .map(|f| IndexedFile {
                path: f.path.clone(),
                size: f.size,
                blake3: f.blake3.clone(),
                mtime_ns: f.mtime_ns,
                mode: f.mode,
                chunks: vec![ChunkLocator {
                    object: pack_key(&"ab".repeat(32)),
                    offset: 0,
                    len: 70,
                    codec: "zstd:3+none".into(),
                }],
            })
            .collect();
        PackedIndex::new(manifest.chunk_size, manifest.root_hash.clone(), files)
    }

    #[test]
    fn indexes_are_sealed_and_checked_against_the_manifest() {
        let m = manifest();
        let index = index_of(&m);
        assert_eq!(index.files[0].path, "a", "sorted by path");
        let json = index.to_json().unwrap();
        let back = PackedIndex::from_json(&json).unwrap();
        assert!(back.is_sealed());
        back.check_against(&m).unwrap();
        let text = String::from_utf8(json).unwrap();
        assert!(
            PackedIndex::from_json(text.replace("\"offset\":0", "\"offset\":1").as_bytes())
                .unwrap_err()
                .contains("self-hash")
        );
        // Legacy: written without a self-hash, still read and checked.
        let legacy = serde_json::to_vec(&index).unwrap();
        let old = PackedIndex::from_json(&legacy).unwrap();
        assert!(!old.is_sealed());
        old.check_against(&m).unwrap();
        let mut other = old.clone();
        other.files[1].size += 1;
        assert!(other.check_against(&m).unwrap_err().contains("\"b\""));
        other = old.clone();
        other.root_hash = "00".repeat(32);
        assert!(other.check_against(&m).is_err());
        other = old;
        other.files.pop();
        assert!(other.check_against(&m).is_err());
    }

    #[test]
    fn markers_say_whether_and_how_a_dataset_is_encrypted() {
        let plain = LayoutMarker::packed(1024);
        assert_eq!(LayoutMarker::from_json(&plain.to_json()).unwrap(), plain);
        assert!(!String::from_utf8(plain.to_json())
            .unwrap()
            .contains("encryption"));
        let sealed = LayoutMarker::packed_encrypted(
            1024,
            DatasetEncryption {
                cipher: "xchacha20poly1305".into(),
                key_id: "0123456789abcdef".into(),
            },
        );
        let back = LayoutMarker::from_json(&sealed.to_json()).unwrap();
        assert_eq!(back.version, LAYOUT_VERSION_ENCRYPTED);
        assert_eq!(back, sealed);
        let newer = String::from_utf8(sealed.to_json())
            .unwrap()
            .replace("\"version\": 2", "\"version\": 3");
        assert!(LayoutMarker::from_json(newer.as_bytes())
            .unwrap_err()
            .contains("upgrade"));
        assert!(LayoutMarker::from_json(b"{}").is_err());
    }

    #[test]
    fn keyed_names_differ_by_key_and_repeat_under_one() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let name = keyed_object_name(&a, b"chunk");
        assert_eq!(name, keyed_object_name(&a, b"chunk"));
        assert_ne!(name, keyed_object_name(&b, b"chunk"));
        assert_ne!(name, blake3::hash(b"chunk").to_hex().to_string());
        assert_eq!(name.len(), 64);
    }

    #[test]
    fn copy_paths_sit_beside_the_index() {
        assert_eq!(index_path("r"), ".strata/index/r.json");
        assert_eq!(
            index_copy_path(&index_path("r")),
            ".strata/index/r.copy.json"
        );
        assert_eq!(index_copy_path("x/idx"), "x/idx.copy");
    }
}
