//! Repairing a plain-layout destination: damaged files are copied again from the source
//! (`strata repair DST --from SRC`), and a damaged or missing `.strata/b3sums` is written
//! again from the manifest.

use bytes::Bytes;
use strata_codec::{DatasetManifest, B3SUMS_PATH};
use strata_store::Store;

use crate::plan::layout;
use crate::retry::retry_store;
use crate::verify::{verify_dataset_mode, VerifyMode};
use crate::MoverError;

use super::{rewrite_metadata, RepairReport, RepairedObject, UnrepairableObject};

/// Plain layout: files are files. Damaged ones are copied again from the source, checked
/// against the manifest chunk by chunk before they replace anything.
pub(super) async fn repair_plain(
    store: &Store,
    from: Option<&Store>,
    jobs: usize,
    manifest: &DatasetManifest,
    report: &mut RepairReport,
) -> Result<(), MoverError> {
    let verified = verify_dataset_mode(store, jobs, VerifyMode::Deep, None).await?;
    report.objects_checked += manifest.files.len();
    if verified
        .issues
        .iter()
        .any(|issue| issue.object == B3SUMS_PATH)
    {
        // The `b3sum --check` listing is derived from the manifest: written again from it.
        report.damaged += 1;
        let sums = manifest.b3sums_text();
        let is_sums = |b: &[u8]| {
            (b == sums.as_bytes())
                .then_some(())
                .ok_or_else(|| "differs from the manifest".to_string())
        };
        let bytes = Bytes::from(sums.clone().into_bytes());
        rewrite_metadata(store, B3SUMS_PATH, bytes, is_sums, "manifest", report).await;
    }
    report.damaged += verified.damaged.len();
    for damaged in verified.damaged {
        let Some(source) = from else {
            report.unrepairable.push(UnrepairableObject {
                object: damaged.path.clone(),
                paths: vec![damaged.path.clone()],
                reason: format!(
                    "{}: {}; plain files have no parity: give a copy with `strata repair DST --from SRC`",
                    damaged.problem, damaged.detail
                ),
            });
            continue;
        };
        let Some(file) = manifest.files.iter().find(|f| f.path == damaged.path) else {
            continue;
        };
        // Only the damaged chunks travel from the source; intact ones are re-read where
        // they are. A missing or resized file has nothing intact.
        let whole = damaged.problem != "content" || damaged.ranges.is_empty();
        let ranges = if whole {
            vec![(0, file.size)]
        } else {
            damaged.ranges.clone()
        };
        match copy_plain_file(source, store, file, manifest.chunk_size, &ranges).await {
            Ok(fetched) => report.bytes_from_source += fetched,
            Err(reason) => {
                report.unrepairable.push(UnrepairableObject {
                    object: file.path.clone(),
                    paths: vec![file.path.clone()],
                    reason: format!("{}; from the source: {reason}", damaged.problem),
                });
                continue;
            }
        }
        {
            report.repaired.push(RepairedObject {
                object: file.path.clone(),
                how: "source".into(),
                moved_to: None,
                files: vec![file.path.clone()],
            });
        }
    }
    Ok(())
}

/// Rebuild one file in a staged upload: chunks overlapping `damaged` byte ranges come from
/// `source`, the others are re-read from the damaged file itself (and come from the source
/// after all if they do not match the manifest). Every chunk is checked against the
/// manifest and the file is published only when it hashes right. Returns the bytes read
/// from the source.
async fn copy_plain_file(
    source: &Store,
    store: &Store,
    file: &strata_codec::ManifestFile,
    chunk_size: u64,
    damaged: &[(u64, u64)],
) -> Result<u64, String> {
    let mut fetched = 0;
    let layout = layout(chunk_size, file.size);
    let upload = store
        .begin_upload(&file.path, file.size, false)
        .await
        .map_err(|e| e.to_string())?;
    let mut values = Vec::new();
    for chunk in 0..layout.chunk_count() {
        let (offset, len) = layout.chunk_range(chunk);
        let expected = file.chunks.get(chunk as usize);
        let overlaps = damaged
            .iter()
            .any(|(start, end)| offset < *end && *start < offset + len.max(1));
        let kept = if len == 0 || overlaps || (expected.is_none() && layout.chunk_count() > 1) {
            None
        } else {
            match store.read_range(&file.path, offset, len).await {
                Ok(data)
                    if expected
                        .is_some_and(|e| *e == hex::encode(layout.chunk_value(chunk, &data))) =>
                {
                    Some(data)
                }
                _ => None,
            }
        };
        let data = if let Some(data) = kept {
            data
        } else if len == 0 {
            Bytes::new()
        } else {
            match retry_store(|| source.read_range(&file.path, offset, len)).await {
                Ok(data) => {
                    fetched += len;
                    data
                }
                Err(error) => {
                    let _ = upload.abort().await;
                    return Err(error.to_string());
                }
            }
        };
        let value = layout.chunk_value(chunk, &data);
        if expected.is_some_and(|e| *e != hex::encode(value)) {
            let _ = upload.abort().await;
            return Err(format!(
                "the source's bytes {offset}..{} differ from the manifest",
                offset + len
            ));
        }
        values.push(value);
        if len > 0 {
            if let Err(error) = upload.write_at(offset, data).await {
                let _ = upload.abort().await;
                return Err(error.to_string());
            }
        }
    }
    let hash = layout.merge(&values).map(hex::encode).unwrap_or_default();
    if hash != file.blake3 {
        let _ = upload.abort().await;
        return Err("the source file differs from the manifest".into());
    }
    let mtime = file
        .mtime_ns
        .and_then(|ns| u64::try_from(ns).ok())
        .map(|ns| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns));
    upload
        .publish(mtime, file.mode)
        .await
        .map_err(|e| e.to_string())?;
    Ok(fetched)
}
