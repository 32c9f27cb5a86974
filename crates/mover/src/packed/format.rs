//! Persisted types of the packed layout: the layout marker and the index.

use serde::{Deserialize, Serialize};

/// Where the layout marker lives.
pub const LAYOUT_PATH: &str = ".strata/layout.json";
/// Folder of the indexes, one per dataset version.
pub const INDEX_DIR: &str = ".strata/index";

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
}

impl LayoutMarker {
    /// The marker of a packed store with `chunk_size` chunks.
    pub fn packed(chunk_size: u64) -> Self {
        Self {
            format: "strata-layout".into(),
            version: 1,
            layout: "packed".into(),
            chunk_size,
        }
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
    /// Always `strata-packed-index`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Chunk size.
    pub chunk_size: u64,
    /// Dataset root hash this index belongs to.
    pub root_hash: String,
    /// Files sorted by path.
    pub files: Vec<IndexedFile>,
}

impl PackedIndex {
    /// Parse an index, refusing other formats and newer versions.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let index: PackedIndex = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if index.format != "strata-packed-index" {
            return Err("not a Strata packed index".into());
        }
        if index.version > 1 {
            return Err(format!(
                "index version {} is newer than this Strata understands; upgrade strata",
                index.version
            ));
        }
        Ok(index)
    }
}

/// The object key of a chunk with raw hash `hex`.
pub fn chunk_key(hex: &str) -> String {
    format!("chunks/{}/{hex}", &hex[..2])
}

/// The object key of a pack with hash `hex`.
pub fn pack_key(hex: &str) -> String {
    format!("packs/{}/{hex}", &hex[..2])
}
