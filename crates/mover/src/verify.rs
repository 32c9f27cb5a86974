//! Verification of a destination against its dataset manifest.
//!
//! Deep mode (the default): every file listed in `DST/.strata/manifest.json` is re-read
//! chunk by chunk and hashed; the chunk values are compared with the manifest's so a
//! damaged file is reported with the byte ranges that changed, and the merged hash with
//! the file's `b3sum` hash. Fast mode checks presence and sizes only (plain files, or the
//! objects a packed file's chunks live in).
//!
//! Beyond the files: the manifest is read from its primary or, when that is missing or
//! fails its checks, from its copy, and either problem is reported; so is a packed store's
//! index ([`crate::packed::read::load_index`]: the files are then checked through the good
//! copy; with neither copy usable every file is reported unreadable); and its parity
//! shards and parity map are checked too ([`crate::packed::parity`]). A plain dataset's
//! `.strata/b3sums` must agree with the manifest, and files the manifest does not list
//! are reported as a warning (`plain`).

use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use strata_codec::hash::{from_hex, ChunkValue, Hash32};
use strata_codec::{ChunkLayout, DatasetManifest, ManifestFile, MANIFEST_COPY_PATH, MANIFEST_PATH};
use strata_store::{Store, StoreError};

use crate::encryption::EncryptionKey;
use crate::packed::format::LAYOUT_PATH;
use crate::packed::read::{is_packed, load_index, PackedSource};
use crate::pipeline::{self, hash_stream, read_ahead};
use crate::plan::layout;
use crate::retry::retry_store;
use crate::source::{read_exact, RangeRead};
use crate::MoverError;

mod plain;

/// Chunk reads in flight while hashing one file.
const READ_AHEAD: usize = 4;

/// A file that does not match the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedFile {
    /// Relative path.
    pub path: String,
    /// What is wrong: `missing`, `size`, `content` or `unreadable`.
    pub problem: String,
    /// Details for the operator.
    pub detail: String,
    /// Damaged byte ranges `[start, end)`, when the manifest has chunk values.
    pub ranges: Vec<(u64, u64)>,
}

/// A problem outside the files themselves: a manifest copy, an index copy, a parity shard,
/// a parity map.
#[derive(Debug, Clone, Serialize)]
pub struct StoreIssue {
    /// The object or metadata file, relative to the store root.
    pub object: String,
    /// What is wrong: `missing`, `size`, `content`, `stale` or `unreadable`.
    pub problem: String,
    /// Details for the operator.
    pub detail: String,
}

/// How thoroughly `strata verify` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// Presence and sizes against the manifest (and the parity map), nothing read.
    Fast,
    /// Every byte re-read and hashed.
    Deep,
}

/// The outcome of `strata verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The destination checked.
    pub destination: String,
    /// `fast` or `deep`.
    pub mode: VerifyMode,
    /// Root hash recorded in the manifest.
    pub root_hash: String,
    /// Files in the manifest.
    pub files: u64,
    /// Bytes in the manifest.
    pub bytes: u64,
    /// Files found intact.
    pub files_ok: u64,
    /// Files missing or damaged.
    pub damaged: Vec<DamagedFile>,
    /// Problems outside the files (manifest and index copies, the layout marker, parity,
    /// a plain dataset's `.strata/b3sums`); the data may still be intact.
    pub issues: Vec<StoreIssue>,
    /// Files at a plain destination that the manifest does not list, sorted: a warning,
    /// not damage ([`VerifyReport::is_ok`] ignores them).
    pub extra_files: Vec<String>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl VerifyReport {
    /// True when every file matched and nothing else is wrong.
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty() && self.issues.is_empty()
    }
}

/// Read a stored file chunk by chunk (each chunk in the spans the store reads best, read
/// ahead and hashed as they come): its hash and its chunk values.
pub async fn hash_stored_file(
    store: &impl RangeRead,
    path: &str,
    layout: ChunkLayout,
) -> Result<(Hash32, Vec<ChunkValue>), StoreError> {
    let values: Vec<Result<ChunkValue, StoreError>> = stream::iter(0..layout.chunk_count())
        .map(|index| async move {
            let (offset, len) = layout.chunk_range(index);
            let spans = read_ahead(len, store.span_for(len), pipeline::READ_AHEAD, |at, n| {
                read_exact(store, path, offset + at, n)
            });
            let hasher = hash_stream(spans, layout.chunk_hasher(index)).await?;
            Ok(hasher.finish())
        })
        .buffered(READ_AHEAD)
        .collect()
        .await;
    let values = values.into_iter().collect::<Result<Vec<_>, _>>()?;
    let hash = layout.merge(&values).map_err(|e| StoreError::Backend {
        path: path.to_string(),
        detail: e.to_string(),
        retryable: false,
    })?;
    Ok((hash, values))
}

/// Load and check the manifest of a dataset, from its copy when the primary is missing or
/// damaged (logged as a warning; [`load_manifest_checked`] says what it found).
pub async fn load_manifest(store: &Store) -> Result<DatasetManifest, MoverError> {
    let loaded = load_manifest_checked(store).await?;
    for issue in &loaded.issues {
        tracing::warn!(object = %issue.object, "{}", issue.detail);
    }
    Ok(loaded.manifest)
}

/// A manifest as loaded, with the state of both copies.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    /// The manifest used.
    pub manifest: DatasetManifest,
    /// Its exact bytes (what a repair writes back over a bad copy).
    pub bytes: Bytes,
    /// True when it came from the copy because the primary is missing or damaged.
    pub from_copy: bool,
    /// Whether the primary is intact.
    pub primary_ok: bool,
    /// Whether the copy is intact and equal to the manifest used (false too when a
    /// manifest written before copies existed has none: then `copy_expected` is false).
    pub copy_ok: bool,
    /// Whether the manifest promises a copy (it carries a self-hash).
    pub copy_expected: bool,
    /// What is wrong with either copy.
    pub issues: Vec<StoreIssue>,
}

enum Read {
    Good(DatasetManifest, Bytes),
    Missing,
    Bad(MoverError),
}

async fn read_manifest_at(store: &Store, path: &str) -> Read {
    let location = format!("{}/{path}", store.display().trim_end_matches('/'));
    match retry_store(|| store.read_all(path)).await {
        Ok(bytes) => match DatasetManifest::from_json(&bytes) {
            Ok(manifest) => Read::Good(manifest, bytes),
            Err(error) => Read::Bad(MoverError::manifest(location, error)),
        },
        Err(StoreError::NotFound { .. }) => Read::Missing,
        Err(error) => Read::Bad(error.into()),
    }
}

/// Load the manifest, falling back to its copy, and report the state of both.
pub async fn load_manifest_checked(store: &Store) -> Result<LoadedManifest, MoverError> {
    let primary = read_manifest_at(store, MANIFEST_PATH).await;
    let copy = read_manifest_at(store, MANIFEST_COPY_PATH).await;
    let issue = |object: &str, problem: &str, detail: String| StoreIssue {
        object: object.into(),
        problem: problem.into(),
        detail,
    };
    let mut issues = Vec::new();
    match (primary, copy) {
        (Read::Good(manifest, bytes), copy) => {
            let copy_expected = manifest.self_hash.is_some();
            let copy_ok = match &copy {
                Read::Good(_, copy_bytes) => *copy_bytes == bytes,
                _ => false,
            };
            if copy_expected && !copy_ok {
                issues.push(match copy {
                    Read::Good(..) => issue(
                        MANIFEST_COPY_PATH,
                        "stale",
                        "the manifest copy differs from the primary; `strata repair` rewrites it"
                            .into(),
                    ),
                    Read::Missing => issue(
                        MANIFEST_COPY_PATH,
                        "missing",
                        "the manifest copy is missing; `strata repair` rewrites it".into(),
                    ),
                    Read::Bad(error) => issue(
                        MANIFEST_COPY_PATH,
                        "content",
                        format!(
                            "the manifest copy is damaged ({error}); `strata repair` rewrites it"
                        ),
                    ),
                });
            }
            Ok(LoadedManifest {
                manifest,
                bytes,
                from_copy: false,
                primary_ok: true,
                copy_ok,
                copy_expected,
                issues,
            })
        }
        (primary, Read::Good(manifest, bytes)) => {
            issues.push(match primary {
                Read::Missing => issue(
                    MANIFEST_PATH,
                    "missing",
                    "the manifest is missing; read its copy instead; `strata repair` rewrites it"
                        .into(),
                ),
                Read::Bad(error) => issue(
                    MANIFEST_PATH,
                    "content",
                    format!("the manifest is damaged ({error}); read its copy instead; `strata repair` rewrites it"),
                ),
                Read::Good(..) => unreachable!("handled above"),
            });
            Ok(LoadedManifest {
                manifest,
                bytes,
                from_copy: true,
                primary_ok: false,
                copy_ok: true,
                copy_expected: true,
                issues,
            })
        }
        (Read::Missing, Read::Missing) => Err(MoverError::Manifest {
            location: format!("{}/{MANIFEST_PATH}", store.display().trim_end_matches('/')),
            reason: "not found; verify takes the destination of a finished `strata migrate`".into(),
        }),
        (Read::Bad(error), _) | (Read::Missing, Read::Bad(error)) => Err(error),
    }
}

/// Check every file of the dataset at `store` against its manifest, `jobs` files at a time,
/// reading every byte.
pub async fn verify_dataset(store: &Store, jobs: usize) -> Result<VerifyReport, MoverError> {
    verify_dataset_mode(store, jobs, VerifyMode::Deep, None).await
}

/// [`verify_dataset`] in the given mode.
pub async fn verify_dataset_mode(
    store: &Store,
    jobs: usize,
    mode: VerifyMode,
    key: Option<&EncryptionKey>,
) -> Result<VerifyReport, MoverError> {
    let started = Instant::now();
    store.check_reachable().await?;
    let loaded = load_manifest_checked(store).await?;
    let mut issues = loaded.issues;
    let manifest = loaded.manifest;
    let chunk_size = manifest.chunk_size;
    let deep = mode == VerifyMode::Deep;
    let mut packed = None;
    let mut index_lost = false;
    if manifest.layout.as_deref() == Some("packed") {
        let keys = crate::encryption::dataset_keys(store, key).await?;
        if !is_packed(store).await? {
            issues.push(StoreIssue {
                object: LAYOUT_PATH.into(),
                problem: "missing".into(),
                detail: format!(
                    "the layout marker is missing though the manifest says packed; \
                     `strata repair {}` writes it again",
                    store.display()
                ),
            });
        }
        let loaded = load_index(store, &manifest).await?;
        issues.extend(loaded.issues.iter().cloned());
        if loaded.doc.is_some() {
            packed =
                Some(PackedSource::from_loaded(store, manifest.clone(), loaded)?.with_keys(keys));
        } else {
            index_lost = true;
        }
    }
    let results: Vec<Option<DamagedFile>> = match &packed {
        // No usable index: no file can be located (the issues say why and what to do).
        None if index_lost => manifest
            .files
            .iter()
            .map(|file| {
                Some(DamagedFile {
                    path: file.path.clone(),
                    problem: "unreadable".into(),
                    detail: "where its chunks are is unknown: both copies of the packed \
                             index are unusable"
                        .into(),
                    ranges: vec![],
                })
            })
            .collect(),
        // An encrypted frame is checked by opening it (its tag, then the raw BLAKE3
        // inside), and its object's name is a keyed hash: `--fast` checks as deep does.
        Some(packed) if deep || packed.is_encrypted() => {
            stream::iter(manifest.files.iter())
                .map(|file| check_packed_file(packed, file, chunk_size))
                .buffer_unordered(jobs.max(1))
                .collect()
                .await
        }
        Some(packed) => crate::packed::parity::fast_check_files(packed, jobs).await,
        None => {
            stream::iter(manifest.files.iter())
                .map(|file| check_file(store, file, chunk_size, deep))
                .buffer_unordered(jobs.max(1))
                .collect()
                .await
        }
    };
    let mut extra_files = Vec::new();
    if let Some(packed) = &packed {
        issues.extend(crate::packed::parity::check_parity(packed, deep, jobs).await?);
    } else if manifest.layout.as_deref() != Some("packed") {
        issues.extend(plain::check_b3sums(store, &manifest).await);
        extra_files = plain::extra_files(store, &manifest).await?;
    }
    let mut damaged: Vec<DamagedFile> = results.into_iter().flatten().collect();
    damaged.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(VerifyReport {
        destination: store.display(),
        mode,
        root_hash: manifest.root_hash.clone(),
        files: manifest.file_count,
        bytes: manifest.total_bytes,
        files_ok: manifest.file_count - damaged.len() as u64,
        damaged,
        issues,
        extra_files,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn check_file(
    store: &Store,
    file: &ManifestFile,
    chunk_size: u64,
    deep: bool,
) -> Option<DamagedFile> {
    let damaged = |problem: &str, detail: String, ranges| {
        Some(DamagedFile {
            path: file.path.clone(),
            problem: problem.into(),
            detail,
            ranges,
        })
    };
    match retry_store(|| store.stat(&file.path)).await {
        Ok(None) => return damaged("missing", "file is missing".into(), vec![]),
        Ok(Some(entry)) if entry.size != file.size => {
            return damaged(
                "size",
                format!("size is {} bytes, manifest says {}", entry.size, file.size),
                vec![],
            )
        }
        Ok(Some(_)) => {}
        Err(error) => return damaged("unreadable", error.to_string(), vec![]),
    }
    if !deep {
        return None;
    }
    let layout = layout(chunk_size, file.size);
    let (hash, values) = match hash_stored_file(store, &file.path, layout).await {
        Ok(hashed) => hashed,
        Err(error) => return damaged("unreadable", error.to_string(), vec![]),
    };
    if Some(hash) == from_hex(&file.blake3) {
        return None;
    }
    let ranges = if file.chunks.len() == values.len() {
        merge_ranges(
            values
                .iter()
                .zip(&file.chunks)
                .enumerate()
                .filter(|(_, (got, want))| from_hex(want).as_ref() != Some(*got))
                .map(|(index, _)| {
                    let (offset, len) = layout.chunk_range(index as u64);
                    (offset, offset + len)
                }),
        )
    } else {
        vec![(0, file.size)]
    };
    damaged(
        "content",
        format!(
            "blake3 is {}, manifest says {}",
            hex::encode(hash),
            file.blake3
        ),
        ranges,
    )
}

/// Check one file of a packed dataset chunk by chunk: every frame must decode (its raw
/// hash checks the bytes) and give the chunk value the manifest records.
async fn check_packed_file(
    packed: &PackedSource,
    file: &ManifestFile,
    chunk_size: u64,
) -> Option<DamagedFile> {
    let layout = layout(chunk_size, file.size);
    let mut values = Vec::new();
    let mut bad = Vec::new();
    let mut details = Vec::new();
    for index in 0..layout.chunk_count() {
        let (offset, len) = layout.chunk_range(index);
        match packed.read_chunk(&file.path, index).await {
            Ok(data) if data.len() as u64 == len => {
                let value = layout.chunk_value(index, &data);
                let expected = file.chunks.get(index as usize).and_then(|c| from_hex(c));
                if expected.is_some_and(|e| e != value) {
                    bad.push((offset, offset + len));
                }
                values.push(value);
            }
            Ok(data) => {
                details.push(format!(
                    "chunk {index} decodes to {} bytes, expected {len}",
                    data.len()
                ));
                bad.push((offset, offset + len));
                values.push([0; 32]);
            }
            Err(error) => {
                details.push(error.to_string());
                bad.push((offset, offset + len));
                values.push([0; 32]);
            }
        }
    }
    let merged = layout.merge(&values).ok();
    if bad.is_empty() && merged.is_some() && merged == from_hex(&file.blake3) {
        return None;
    }
    if bad.is_empty() {
        bad.push((0, file.size));
    }
    let missing = details.iter().any(|d| d.contains("does not exist"));
    Some(DamagedFile {
        path: file.path.clone(),
        problem: if missing {
            "missing".into()
        } else {
            "content".into()
        },
        detail: if details.is_empty() {
            "chunk values differ from the manifest".into()
        } else {
            details.join("; ")
        },
        ranges: merge_ranges(bad.into_iter()),
    })
}

/// Join adjacent ranges.
pub(crate) fn merge_ranges(ranges: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => out.push((start, end)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{hash_stored_file, merge_ranges};
    use crate::source::RangeRead;
    use crate::testing::store;
    use strata_codec::ChunkLayout;

    /// A local store reads chunks in spans, a memory store whole: both give the values and
    /// the hash of the chunks read whole, and a file that shrank is an error naming it.
    #[tokio::test]
    async fn a_stored_file_hashes_the_same_in_spans_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let local = store(dir.path().to_str().unwrap()).await;
        let memory = store("memory://hash-stored-file").await;
        let data: Vec<u8> = (0..(3 << 20) + 777).map(|i| (i % 253) as u8).collect();
        let layout = ChunkLayout::new(1 << 20, data.len() as u64).unwrap();
        let expected: Vec<_> = (0..layout.chunk_count())
            .map(|i| {
                let (offset, len) = layout.chunk_range(i);
                layout.chunk_value(i, &data[offset as usize..(offset + len) as usize])
            })
            .collect();
        assert!(
            local.span_for(1 << 20) < 1 << 20,
            "a local store reads in spans"
        );
        assert_eq!(memory.span_for(1 << 20), 1 << 20);
        for store in [&local, &memory] {
            store
                .write_atomic("f.bin", data.clone().into())
                .await
                .unwrap();
            let (hash, values) = hash_stored_file(store, "f.bin", layout).await.unwrap();
            assert_eq!(values, expected);
            assert_eq!(hash, layout.merge(&expected).unwrap());
            store
                .write_atomic("f.bin", data[..1 << 20].to_vec().into())
                .await
                .unwrap();
            let error = hash_stored_file(store, "f.bin", layout).await.unwrap_err();
            assert!(error.to_string().contains("f.bin"), "{error}");
        }
    }

    #[test]
    fn adjacent_ranges_merge() {
        let merged = merge_ranges([(0, 4), (4, 8), (12, 16)].into_iter());
        assert_eq!(merged, vec![(0, 8), (12, 16)]);
    }
}
