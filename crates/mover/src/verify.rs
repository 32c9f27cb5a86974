//! Verification of a destination against its dataset manifest.
//!
//! Every file listed in `DST/.strata/manifest.json` is re-read chunk by chunk and hashed;
//! the chunk values are compared with the manifest's so a damaged file is reported with
//! the byte ranges that changed, and the merged hash with the file's `b3sum` hash.

use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use strata_codec::hash::{from_hex, ChunkValue, Hash32};
use strata_codec::{ChunkLayout, DatasetManifest, ManifestFile, MANIFEST_PATH};
use strata_store::{Store, StoreError};

use crate::packed::read::PackedSource;
use crate::plan::layout;
use crate::retry::with_backoff;
use crate::source::RangeRead;
use crate::MoverError;

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

/// The outcome of `strata verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The destination checked.
    pub destination: String,
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
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl VerifyReport {
    /// True when every file matched.
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// Read a stored file chunk by chunk: its hash and its chunk values.
pub async fn hash_stored_file(
    store: &impl RangeRead,
    path: &str,
    layout: ChunkLayout,
) -> Result<(Hash32, Vec<ChunkValue>), StoreError> {
    let values: Vec<Result<ChunkValue, StoreError>> = stream::iter(0..layout.chunk_count())
        .map(|index| async move {
            let (offset, len) = layout.chunk_range(index);
            let data = if len == 0 {
                Bytes::new()
            } else {
                with_backoff(|| store.read_range(path, offset, len)).await?
            };
            if data.len() as u64 != len {
                return Err(StoreError::Backend {
                    path: path.to_string(),
                    detail: format!("short read at offset {offset}: file changed while reading"),
                    retryable: false,
                });
            }
            Ok(
                tokio::task::spawn_blocking(move || layout.chunk_value(index, &data))
                    .await
                    .unwrap_or([0; 32]),
            )
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

/// Load and check the manifest of a dataset.
pub async fn load_manifest(store: &Store) -> Result<DatasetManifest, MoverError> {
    let location = format!("{}/{MANIFEST_PATH}", store.display().trim_end_matches('/'));
    let bytes = match store.read_all(MANIFEST_PATH).await {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound { .. }) => {
            return Err(MoverError::Manifest {
                location,
                reason: "not found; verify takes the destination of a finished `strata migrate`"
                    .into(),
            })
        }
        Err(error) => return Err(error.into()),
    };
    DatasetManifest::from_json(&bytes).map_err(|e| MoverError::manifest(location, e))
}

/// Check every file of the dataset at `store` against its manifest, `jobs` files at a time.
pub async fn verify_dataset(store: &Store, jobs: usize) -> Result<VerifyReport, MoverError> {
    let started = Instant::now();
    store.check_reachable().await?;
    let manifest = load_manifest(store).await?;
    let chunk_size = manifest.chunk_size;
    let packed = if manifest.layout.as_deref() == Some("packed") {
        PackedSource::open(store).await?
    } else {
        None
    };
    let results: Vec<Option<DamagedFile>> = match &packed {
        Some(packed) => {
            stream::iter(manifest.files.iter())
                .map(|file| check_packed_file(packed, file, chunk_size))
                .buffer_unordered(jobs.max(1))
                .collect()
                .await
        }
        None => {
            stream::iter(manifest.files.iter())
                .map(|file| check_file(store, file, chunk_size))
                .buffer_unordered(jobs.max(1))
                .collect()
                .await
        }
    };
    let mut damaged: Vec<DamagedFile> = results.into_iter().flatten().collect();
    damaged.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(VerifyReport {
        destination: store.display(),
        root_hash: manifest.root_hash.clone(),
        files: manifest.file_count,
        bytes: manifest.total_bytes,
        files_ok: manifest.file_count - damaged.len() as u64,
        damaged,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn check_file(store: &Store, file: &ManifestFile, chunk_size: u64) -> Option<DamagedFile> {
    let damaged = |problem: &str, detail: String, ranges| {
        Some(DamagedFile {
            path: file.path.clone(),
            problem: problem.into(),
            detail,
            ranges,
        })
    };
    match with_backoff(|| store.stat(&file.path)).await {
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
fn merge_ranges(ranges: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
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
    use super::merge_ranges;

    #[test]
    fn adjacent_ranges_merge() {
        let merged = merge_ranges([(0, 4), (4, 8), (12, 16)].into_iter());
        assert_eq!(merged, vec![(0, 8), (12, 16)]);
    }
}
