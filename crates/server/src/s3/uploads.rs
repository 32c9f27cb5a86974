//! The multipart uploads staged on disk (`<data_dir>/s3-uploads/<upload id>/`), as
//! ListMultipartUploads shows them and the expiry of abandoned ones sees them.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use s3s::dto::{
    CommonPrefix, ListMultipartUploadsInput, ListMultipartUploadsOutput, MultipartUpload,
    StorageClass,
};
use s3s::{s3_error, S3Result};

use super::front::{timestamp, StrataS3};
use super::listing::{shown, wants_url};
use super::multipart::TARGET_FILE;

/// Largest page of uploads, as S3's.
const MAX_UPLOADS: usize = 1000;

/// One upload's staging directory.
#[derive(Debug, Clone)]
pub(crate) struct StagedUpload {
    /// The upload id (the directory's name).
    pub id: String,
    /// The directory.
    pub dir: PathBuf,
    /// The service key it will write; `None` while (or if, after a crash) it is created.
    pub key: Option<String>,
    /// When it was created (its key recorded).
    pub initiated: SystemTime,
    /// Its last change: the newest of its files and itself.
    pub touched: SystemTime,
}

fn is_upload_id(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn modified(meta: &std::fs::Metadata) -> SystemTime {
    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Every upload directory under `root`, in no order; other entries are left alone.
pub(crate) async fn staged_uploads(root: &Path) -> std::io::Result<Vec<StagedUpload>> {
    let mut entries = tokio::fs::read_dir(root).await?;
    let mut uploads = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let Some(id) = entry
            .file_name()
            .to_str()
            .filter(|n| is_upload_id(n))
            .map(str::to_string)
        else {
            continue;
        };
        let dir = entry.path();
        // Gone since the listing (completed or aborted meanwhile): skipped.
        let Ok(upload) = staged_upload(id, dir).await else {
            continue;
        };
        uploads.push(upload);
    }
    Ok(uploads)
}

async fn staged_upload(id: String, dir: PathBuf) -> std::io::Result<StagedUpload> {
    let mut touched = modified(&tokio::fs::metadata(&dir).await?);
    let mut files = tokio::fs::read_dir(&dir).await?;
    while let Some(file) = files.next_entry().await? {
        if let Ok(meta) = file.metadata().await {
            touched = touched.max(modified(&meta));
        }
    }
    let target = dir.join(TARGET_FILE);
    let (key, initiated) = match tokio::fs::read_to_string(&target).await {
        Ok(key) => {
            let initiated = tokio::fs::metadata(&target)
                .await
                .map_or(touched, |meta| modified(&meta));
            (Some(key), initiated)
        }
        Err(_) => (None, touched),
    };
    Ok(StagedUpload {
        id,
        dir,
        key,
        initiated,
        touched,
    })
}

fn page_size(max_uploads: Option<i32>) -> S3Result<usize> {
    match max_uploads {
        None => Ok(MAX_UPLOADS),
        Some(n) if n < 0 => Err(s3_error!(
            InvalidArgument,
            "max-uploads is {n}; give a number from 0 to 1000"
        )),
        Some(n) => Ok(usize::try_from(n).unwrap_or(MAX_UPLOADS).min(MAX_UPLOADS)),
    }
}

/// Whether the upload of `key` (bucket-relative) with `id` comes after the markers: keys
/// after `key-marker`, and, with `upload-id-marker`, that key's uploads after that id.
fn after_markers(key: &str, id: &str, key_marker: Option<&str>, id_marker: Option<&str>) -> bool {
    match key_marker {
        None => true,
        Some(marker) if key == marker => id_marker.is_some_and(|after| id > after),
        Some(marker) => key > marker,
    }
}

/// One page of uploads: (bucket-relative key, id, initiated) and common prefixes.
#[derive(Debug, Default)]
struct UploadPage {
    uploads: Vec<(String, String, SystemTime)>,
    prefixes: Vec<String>,
    truncated: bool,
}

fn upload_page(
    mut staged: Vec<(String, String, SystemTime)>,
    prefix: &str,
    delimiter: Option<&str>,
    markers: (Option<&str>, Option<&str>),
    max_uploads: usize,
) -> UploadPage {
    staged.retain(|(key, id, _)| {
        key.starts_with(prefix) && after_markers(key, id, markers.0, markers.1)
    });
    staged.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut page = UploadPage::default();
    for (key, id, initiated) in staged {
        let rolled = delimiter.filter(|d| !d.is_empty()).and_then(|delimiter| {
            let rest = &key[prefix.len()..];
            rest.find(delimiter)
                .map(|at| key[..prefix.len() + at + delimiter.len()].to_string())
        });
        if rolled
            .as_ref()
            .is_some_and(|common| page.prefixes.last() == Some(common))
        {
            continue;
        }
        if page.uploads.len() + page.prefixes.len() == max_uploads {
            page.truncated = true;
            break;
        }
        match rolled {
            Some(common) => page.prefixes.push(common),
            None => page.uploads.push((key, id, initiated)),
        }
    }
    page
}

/// ListMultipartUploads: the uploads begun and neither completed nor aborted, by key then
/// upload id, with `prefix`, `delimiter`, `key-marker` / `upload-id-marker` and
/// `max-uploads` (at most 1000).
pub async fn list_uploads(
    front: &StrataS3,
    input: ListMultipartUploadsInput,
) -> S3Result<ListMultipartUploadsOutput> {
    let bucket_prefix = front.buckets.prefix(&input.bucket)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let max_uploads = page_size(input.max_uploads)?;
    let staged = staged_uploads(&front.staging.root)
        .await
        .map_err(|err| s3_error!(InternalError, "cannot read the staged uploads: {err}"))?;
    let in_bucket = staged
        .into_iter()
        .filter_map(|upload| {
            let key = upload.key?;
            let relative = key.strip_prefix(&bucket_prefix)?.to_string();
            Some((relative, upload.id, upload.initiated))
        })
        .collect();
    let page = upload_page(
        in_bucket,
        &prefix,
        input.delimiter.as_deref(),
        (
            input.key_marker.as_deref(),
            input.upload_id_marker.as_deref(),
        ),
        max_uploads,
    );
    let url = wants_url(input.encoding_type.as_ref());
    let last_upload = page.uploads.last().cloned();
    let (next_key, next_id) = match (page.truncated, last_upload, page.prefixes.last()) {
        (false, _, _) => (None, None),
        (true, Some((key, id, _)), last_prefix)
            if last_prefix.is_none_or(|p| key.as_str() > p.as_str()) =>
        {
            (Some(key), Some(id))
        }
        // Past every key under the prefix, as a listing's continuation is.
        (true, _, last_prefix) => (last_prefix.map(|p| format!("{p}{}", char::MAX)), None),
    };
    let uploads = page
        .uploads
        .into_iter()
        .map(|(key, id, initiated)| MultipartUpload {
            key: Some(shown(key, url)),
            upload_id: Some(id),
            initiated: Some(timestamp(system_ms(initiated))),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..MultipartUpload::default()
        })
        .collect();
    let prefixes = page
        .prefixes
        .into_iter()
        .map(|prefix| CommonPrefix {
            prefix: Some(shown(prefix, url)),
        })
        .collect();
    Ok(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: Some(shown(prefix, url)),
        delimiter: input.delimiter.map(|d| shown(d, url)),
        key_marker: input.key_marker.map(|k| shown(k, url)),
        upload_id_marker: input.upload_id_marker,
        max_uploads: i32::try_from(max_uploads).ok(),
        is_truncated: Some(page.truncated),
        next_key_marker: next_key.map(|k| shown(k, url)),
        next_upload_id_marker: next_id,
        uploads: Some(uploads),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..ListMultipartUploadsOutput::default()
    })
}

/// Milliseconds since the Unix epoch of `time` (0 before it).
pub(crate) fn system_ms(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(entries: &[(&str, &str)]) -> Vec<(String, String, SystemTime)> {
        entries
            .iter()
            .map(|(key, id)| (key.to_string(), id.to_string(), SystemTime::UNIX_EPOCH))
            .collect()
    }

    fn listed(page: &UploadPage) -> Vec<(&str, &str)> {
        page.uploads
            .iter()
            .map(|(key, id, _)| (key.as_str(), id.as_str()))
            .collect()
    }

    #[test]
    fn uploads_page_by_key_then_id_after_the_markers() {
        let all = staged(&[("b", "2"), ("a", "9"), ("b", "1"), ("c", "1"), ("x/1", "1")]);
        let first = upload_page(all.clone(), "", None, (None, None), 2);
        assert_eq!(listed(&first), [("a", "9"), ("b", "1")]);
        assert!(first.truncated);
        // Resumed after (b, 1): the other upload of b, then the later keys.
        let next = upload_page(all.clone(), "", None, (Some("b"), Some("1")), 10);
        assert_eq!(listed(&next), [("b", "2"), ("c", "1"), ("x/1", "1")]);
        assert!(!next.truncated);
        // A key marker alone skips that key's uploads.
        let after_b = upload_page(all.clone(), "", None, (Some("b"), None), 10);
        assert_eq!(listed(&after_b), [("c", "1"), ("x/1", "1")]);
        let prefixed = upload_page(all, "x/", None, (None, None), 10);
        assert_eq!(listed(&prefixed), [("x/1", "1")]);
    }

    #[test]
    fn a_delimiter_rolls_uploads_up_into_common_prefixes() {
        let all = staged(&[("d/1", "1"), ("d/2", "1"), ("e", "1"), ("f/g/h", "1")]);
        let page = upload_page(all, "", Some("/"), (None, None), 10);
        assert_eq!(listed(&page), [("e", "1")]);
        assert_eq!(page.prefixes, ["d/", "f/"]);
    }

    #[test]
    fn only_upload_ids_name_upload_directories() {
        assert!(is_upload_id(&"0a".repeat(16)));
        assert!(!is_upload_id("target"));
        assert!(!is_upload_id(&"zz".repeat(16)));
    }
}
