//! The dataset manifest of a job: built from what the catalog recorded (files, hashes,
//! verified chunk values) and written at the destination with its second copy and the
//! `b3sums` listing, last, once every file is in place. A single-node run and the finisher
//! of a distributed job both end here.

use std::collections::HashMap;

use bytes::Bytes;
use strata_catalog::Catalog;
use strata_codec::hash::{to_hex, ChunkValue};
use strata_codec::{DatasetManifest, ManifestFile, B3SUMS_PATH, MANIFEST_COPY_PATH, MANIFEST_PATH};
use strata_store::Store;

use crate::plan::layout;
use crate::retry::retry_store;
use crate::MoverError;

/// Builds the dataset manifest of `job` from what the catalog recorded and writes it (and
/// the `b3sums` listing) at the destination; returns its root hash.
pub(crate) async fn write_job_manifest(
    catalog: &dyn Catalog,
    destination: &Store,
    job: i64,
    chunk_size: u64,
) -> Result<String, MoverError> {
    let manifest = build_manifest(catalog, job, chunk_size).await?;
    write_manifest(destination, &manifest).await?;
    Ok(manifest.root_hash)
}

/// Build the dataset manifest from what the catalog recorded.
async fn build_manifest(
    catalog: &dyn Catalog,
    job: i64,
    chunk_size: u64,
) -> Result<DatasetManifest, MoverError> {
    let files = catalog.load_files(job).await?;
    let mut chunks: HashMap<u32, Vec<(u64, ChunkValue)>> = HashMap::new();
    for chunk in catalog.verified_chunks(job).await? {
        chunks
            .entry(chunk.file_index)
            .or_default()
            .push((chunk.chunk_index, chunk.chaining_value));
    }
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        let Some(hash) = file.hash else { continue };
        let layout = layout(chunk_size, file.planned.size);
        let mut values = chunks.remove(&file.planned.index).unwrap_or_default();
        values.sort_by_key(|(i, _)| *i);
        let complete = !layout.is_single_chunk()
            && values.len() as u64 == layout.chunk_count()
            && values
                .iter()
                .enumerate()
                .all(|(i, (ci, _))| *ci == i as u64);
        let chunk_list = if complete {
            let list: Vec<ChunkValue> = values.iter().map(|(_, v)| *v).collect();
            // Only publish chunk values that merge to the file hash.
            if layout.merge(&list).ok() == Some(hash) {
                list.iter().map(to_hex).collect()
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };
        entries.push(ManifestFile {
            path: file.planned.path,
            size: file.planned.size,
            blake3: to_hex(&hash),
            mtime_ns: file.planned.mtime_ns,
            mode: file.planned.mode,
            chunks: chunk_list,
        });
    }
    Ok(DatasetManifest::new(chunk_size, entries))
}

/// Write the manifest and the `b3sum --check` listing at the destination.
async fn write_manifest(destination: &Store, manifest: &DatasetManifest) -> Result<(), MoverError> {
    let json = Bytes::from(manifest.to_json());
    retry_store(|| destination.write_atomic(MANIFEST_PATH, json.clone())).await?;
    // The second copy: readers fall back to it when the primary is lost or damaged.
    retry_store(|| destination.write_atomic(MANIFEST_COPY_PATH, json.clone())).await?;
    let sums = Bytes::from(manifest.b3sums_text().into_bytes());
    retry_store(|| destination.write_atomic(B3SUMS_PATH, sums.clone())).await?;
    Ok(())
}
