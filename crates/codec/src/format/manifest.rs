//! The dataset manifest: what a migrated dataset contains, stored beside the data.
//!
//! Written last, after every file it lists has been published and verified, at
//! `DST/.strata/manifest.json` (plus `DST/.strata/b3sums`, the same facts in the format
//! `b3sum --check` reads, so anyone can check a dataset without Strata).
//!
//! # Format, version 1 (JSON)
//!
//! ```json
//! {
//!   "format": "strata-dataset-manifest",
//!   "version": 1,
//!   "created_by": "strata 0.1.0",
//!   "chunk_size": 4194304,
//!   "file_count": 2,
//!   "total_bytes": 5242880,
//!   "root_hash": "…64 hex…",
//!   "files": [
//!     { "path": "a/b.nc", "size": 5242880, "blake3": "…", "mtime_ns": 1700000000000000000,
//!       "mode": 420, "chunks": ["…", "…"] },
//!     { "path": "empty", "size": 0, "blake3": "af1349b9…", "chunks": [] }
//!   ]
//! }
//! ```
//!
//! - `path` is relative, `/`-separated, sorted by byte order; `blake3` is what `b3sum` prints.
//! - `chunks` lists the chaining value of each `chunk_size` chunk for files of more than one
//!   chunk (empty otherwise: the file hash is its only chunk's value); `strata verify` uses
//!   them to name damaged byte ranges.
//! - `root_hash` is BLAKE3 over, for each file in order: the path length as u64
//!   little-endian, the path bytes, the size as u64 little-endian, and the 32 hash bytes.
//!   It changes if any file is added, removed, renamed, resized or altered.
//!
//! - `self_hash` (optional, written since the integrity release) is BLAKE3, lower-case
//!   hex, of the manifest's canonical form without it: the JSON object with its
//!   `self_hash` member removed, written with no whitespace, object members sorted by the
//!   bytes of their keys at every level, arrays in order, strings and numbers as
//!   `serde_json` writes them (see [`canonical_json`]). Readers check it when present, so
//!   any change to the file, even one that keeps it consistent, is detected. A manifest
//!   with a self-hash has a second copy at [`MANIFEST_COPY_PATH`]; readers fall back to
//!   it when the primary is missing or fails its checks.
//!
//! Readers accept any version up to [`MANIFEST_VERSION`] and refuse newer ones with a
//! message asking for a newer Strata.

use serde::{Deserialize, Serialize};

use crate::hash::{from_hex, to_hex, ChunkLayout, Hash32};

/// The `format` marker of a dataset manifest.
pub const MANIFEST_FORMAT: &str = "strata-dataset-manifest";
/// The newest manifest version this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;
/// Where the manifest lives, relative to the dataset root.
pub const MANIFEST_PATH: &str = ".strata/manifest.json";
/// The second copy of the manifest (same bytes), relative to the dataset root.
pub const MANIFEST_COPY_PATH: &str = ".strata/manifest.copy.json";
/// Where the `b3sum --check` listing lives, relative to the dataset root.
pub const B3SUMS_PATH: &str = ".strata/b3sums";

/// One file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative `/`-separated path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the whole file, lower-case hex (as `b3sum` prints it).
    pub blake3: String,
    /// Modification time in nanoseconds since the Unix epoch, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    /// Unix permission bits, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Chaining values of the chunks, hex, for files of more than one chunk.
    #[serde(default)]
    pub chunks: Vec<String>,
}

/// A whole dataset's manifest. See the module docs for the format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetManifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The program that wrote it.
    pub created_by: String,
    /// Chunk size used for `chunks`.
    pub chunk_size: u64,
    /// Number of files.
    pub file_count: u64,
    /// Sum of file sizes.
    pub total_bytes: u64,
    /// Root hash over the dataset, hex.
    pub root_hash: String,
    /// `packed` for Strata's packed layout; absent for plain files (added in version 1
    /// without a version bump: older readers ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// For the packed layout: the index of this dataset version, relative to the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The files, sorted by path.
    pub files: Vec<ManifestFile>,
    /// BLAKE3 of the manifest's canonical form without this field (see the module docs);
    /// set by [`DatasetManifest::to_json`], checked by [`DatasetManifest::from_json`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_hash: Option<String>,
}

/// Why a manifest could not be read or built.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not a Strata manifest.
    #[error("not a Strata dataset manifest ({0}); the .strata/ folder may be damaged: run `strata verify` against the source or migrate again")]
    Malformed(String),
    /// Written by a newer Strata.
    #[error("manifest version {0} is newer than this Strata understands ({MANIFEST_VERSION}); upgrade strata")]
    TooNew(u32),
    /// The manifest's own facts disagree with each other.
    #[error("manifest is inconsistent: {0}; it was altered or damaged")]
    Inconsistent(String),
    /// The bytes do not have the self-hash they record.
    #[error("manifest self-hash mismatch: the file was altered or damaged; `strata repair` restores it from its copy")]
    SelfHash,
}

impl DatasetManifest {
    /// Build a manifest from files (sorted here) and compute its totals and root hash.
    pub fn new(chunk_size: u64, mut files: Vec<ManifestFile>) -> Self {
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let root_hash = to_hex(&root_hash(&files));
        Self {
            format: MANIFEST_FORMAT.to_string(),
            version: MANIFEST_VERSION,
            created_by: format!("strata {}", env!("CARGO_PKG_VERSION")),
            chunk_size,
            file_count: files.len() as u64,
            total_bytes: files.iter().map(|f| f.size).sum(),
            root_hash,
            layout: None,
            index: None,
            files,
            self_hash: None,
        }
    }

    /// Serialise to pretty JSON (stable field order), with a freshly computed `self_hash`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut sealed = self.clone();
        sealed.self_hash = None;
        let value = serde_json::to_value(&sealed).expect("manifest serialises");
        sealed.self_hash = Some(self_hash_of(&value));
        let mut out = serde_json::to_vec_pretty(&sealed).expect("manifest serialises");
        out.push(b'\n');
        out
    }

    /// Parse and check a manifest: format, version, totals, root hash, chunk lists, and
    /// the self-hash when there is one.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let probe: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if probe.get("format").and_then(|f| f.as_str()) != Some(MANIFEST_FORMAT) {
            return Err(ManifestError::Malformed("missing format marker".into()));
        }
        if let Some(v) = probe.get("version").and_then(|v| v.as_u64()) {
            if v > MANIFEST_VERSION as u64 {
                return Err(ManifestError::TooNew(v as u32));
            }
        }
        let mut without = probe.clone();
        let recorded = without
            .as_object_mut()
            .and_then(|object| object.remove("self_hash"));
        let manifest: Self =
            serde_json::from_value(probe).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        manifest.check()?;
        if let Some(recorded) = recorded {
            if recorded.as_str() != Some(self_hash_of(&without).as_str()) {
                return Err(ManifestError::SelfHash);
            }
        }
        Ok(manifest)
    }

    /// Check internal consistency: sorted unique safe paths, totals, hashes, root hash.
    pub fn check(&self) -> Result<(), ManifestError> {
        let bad = |m: String| Err(ManifestError::Inconsistent(m));
        for pair in self.files.windows(2) {
            if pair[0].path.as_bytes() >= pair[1].path.as_bytes() {
                return bad(format!(
                    "paths not sorted or duplicated at {:?}",
                    pair[1].path
                ));
            }
        }
        for file in &self.files {
            if !is_safe_relative_path(&file.path) {
                return bad(format!("unsafe path {:?}", file.path));
            }
            let Some(hash) = from_hex(&file.blake3) else {
                return bad(format!("bad hash for {:?}", file.path));
            };
            if !file.chunks.is_empty() {
                let layout = ChunkLayout::new(self.chunk_size, file.size)
                    .map_err(|e| ManifestError::Inconsistent(e.to_string()))?;
                let values: Option<Vec<Hash32>> = file.chunks.iter().map(|c| from_hex(c)).collect();
                let merged = values.and_then(|v| layout.merge(&v).ok());
                if merged != Some(hash) {
                    return bad(format!(
                        "chunk list of {:?} does not match its hash",
                        file.path
                    ));
                }
            }
        }
        if self.file_count != self.files.len() as u64 {
            return bad("file_count does not match the file list".into());
        }
        if self.total_bytes != self.files.iter().map(|f| f.size).sum::<u64>() {
            return bad("total_bytes does not match the file list".into());
        }
        if self.root_hash != to_hex(&root_hash(&self.files)) {
            return bad("root_hash does not match the file list".into());
        }
        Ok(())
    }

    /// The listing `b3sum --check` reads (run from the dataset root).
    pub fn b3sums_text(&self) -> String {
        let mut out = String::new();
        for file in &self.files {
            if file.path.contains(['\\', '\n', '\r']) {
                // b3sum's escaping: a leading backslash marks an escaped name.
                let escaped = file
                    .path
                    .replace('\\', "\\\\")
                    .replace('\n', "\\n")
                    .replace('\r', "\\r");
                out.push_str(&format!("\\{}  {}\n", file.blake3, escaped));
            } else {
                out.push_str(&format!("{}  {}\n", file.blake3, file.path));
            }
        }
        out
    }
}

/// The dataset root hash over files sorted by path (see the module docs).
pub fn root_hash(files: &[ManifestFile]) -> Hash32 {
    let mut hasher = blake3::Hasher::new();
    for file in files {
        hasher.update(&(file.path.len() as u64).to_le_bytes());
        hasher.update(file.path.as_bytes());
        hasher.update(&file.size.to_le_bytes());
        hasher.update(&from_hex(&file.blake3).unwrap_or([0; 32]));
    }
    *hasher.finalize().as_bytes()
}

/// BLAKE3 hex of the canonical form of `value` (see [`canonical_json`]).
fn self_hash_of(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    canonical_json(value, &mut out);
    blake3::hash(&out).to_hex().to_string()
}

/// The canonical JSON form the manifest's `self_hash` covers: no whitespace, object
/// members sorted by the bytes of their keys at every level, arrays in order, strings and
/// numbers as `serde_json` writes them. Independent of the order members appear in the
/// file, so a reader that keeps members in file order and one that sorts them agree.
pub fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(map) => {
            let mut members: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("strings serialise");
                out.push(b':');
                canonical_json(member, out);
            }
            out.push(b'}');
        }
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("scalars serialise"),
    }
}

/// Whether `path` is a relative `/`-separated path with no empty, `.` or `..` components and
/// no NUL: safe to join under a destination root.
pub fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &[u8]) -> ManifestFile {
        ManifestFile {
            path: path.into(),
            size: data.len() as u64,
            blake3: blake3::hash(data).to_hex().to_string(),
            mtime_ns: None,
            mode: Some(0o644),
            chunks: vec![],
        }
    }

    #[test]
    fn round_trips_and_sorts() {
        let m = DatasetManifest::new(4096, vec![file("z", b"zz"), file("a/b", b"ab")]);
        assert_eq!(m.files[0].path, "a/b");
        let back = DatasetManifest::from_json(&m.to_json()).unwrap();
        assert!(back.self_hash.is_some());
        assert_eq!(
            DatasetManifest {
                self_hash: None,
                ..back
            },
            m
        );
        assert_eq!(back.total_bytes, 4);
    }

    #[test]
    fn root_hash_detects_every_kind_of_change() {
        let base = DatasetManifest::new(4096, vec![file("a", b"1"), file("b", b"2")]);
        let variants = [
            vec![file("a", b"1")],
            vec![file("a", b"1"), file("c", b"2")],
            vec![file("a", b"1"), file("b", b"3")],
            vec![file("a", b"1"), file("b", b"2"), file("c", b"")],
        ];
        for files in variants {
            assert_ne!(DatasetManifest::new(4096, files).root_hash, base.root_hash);
        }
    }

    #[test]
    fn tampering_is_detected() {
        let m = DatasetManifest::new(4096, vec![file("a", b"1"), file("b", b"2")]);
        let text = String::from_utf8(m.to_json()).unwrap();
        let tampered = text.replace(&m.files[0].blake3, &m.files[1].blake3);
        assert!(matches!(
            DatasetManifest::from_json(tampered.as_bytes()),
            Err(ManifestError::Inconsistent(_))
        ));
        assert!(matches!(
            DatasetManifest::from_json(b"{}"),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            DatasetManifest::from_json(b"\x00garbage"),
            Err(ManifestError::Malformed(_))
        ));
        let newer = text.replace("\"version\": 1", "\"version\": 99");
        assert!(matches!(
            DatasetManifest::from_json(newer.as_bytes()),
            Err(ManifestError::TooNew(99))
        ));
    }

    #[test]
    fn chunk_lists_must_merge_to_the_file_hash() {
        let data = vec![3u8; 5000];
        let layout = ChunkLayout::new(1024, 5000).unwrap();
        let chunks: Vec<String> = (0..layout.chunk_count())
            .map(|i| {
                let (o, l) = layout.chunk_range(i);
                hex::encode(layout.chunk_value(i, &data[o as usize..(o + l) as usize]))
            })
            .collect();
        let mut f = file("big", &data);
        f.chunks = chunks;
        let good = DatasetManifest::new(1024, vec![f.clone()]);
        assert!(good.check().is_ok());
        f.chunks.swap(0, 1);
        let bad = DatasetManifest::new(1024, vec![f]);
        assert!(bad.check().is_err());
    }

    #[test]
    fn self_hash_detects_consistent_edits_and_ignores_member_order() {
        let m = DatasetManifest::new(4096, vec![file("a", b"1")]);
        let text = String::from_utf8(m.to_json()).unwrap();
        assert!(text.contains("\"self_hash\""));
        // An edit that keeps every other check happy is still caught.
        let edited = text.replace("\"created_by\": \"strata", "\"created_by\": \"other");
        assert!(matches!(
            DatasetManifest::from_json(edited.as_bytes()),
            Err(ManifestError::SelfHash)
        ));
        let flipped = text.replacen("\"chunk_size\": 4096", "\"chunk_size\": 4097", 1);
        assert!(DatasetManifest::from_json(flipped.as_bytes()).is_err());
        // Member order and whitespace are not part of the hash.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut canonical = Vec::new();
        canonical_json(&value, &mut canonical);
        assert!(DatasetManifest::from_json(&canonical).is_ok());
        // Manifests from before self-hashes still load.
        let mut old: serde_json::Value = value.clone();
        old.as_object_mut().unwrap().remove("self_hash");
        let old = serde_json::to_vec(&old).unwrap();
        assert_eq!(DatasetManifest::from_json(&old).unwrap().self_hash, None);
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for p in ["", "/abs", "a/../b", "a//b", "./a", "a/\0"] {
            assert!(!is_safe_relative_path(p), "{p:?}");
        }
        assert!(is_safe_relative_path("a/b.c"));
    }

    #[test]
    fn b3sums_escapes_like_b3sum() {
        let m = DatasetManifest::new(4096, vec![file("a\nb", b"x"), file("plain", b"y")]);
        let text = m.b3sums_text();
        assert!(text.starts_with('\\'));
        assert!(text.contains("  a\\nb\n"));
        assert!(text.contains(&format!("{}  plain\n", m.files[1].blake3)));
    }
}
