//! Multipart uploads, for objects of any size without holding one whole: each part is
//! streamed to a file in the upload's staging directory,
//! `<data_dir>/s3-uploads/<upload id>/`, as it arrives (its MD5 computed on the way),
//! and CompleteMultipartUpload streams the listed parts, in order, through the service's
//! write path as one object. Nothing is visible before the completion commits; an
//! aborted upload's directory is removed; one left by a client that went away stays
//! (ListMultipartUploads finds it, ListParts shows what arrived, so the client can resume)
//! until aborted, or until it has been untouched for `[s3] multipart_expiry`
//! ([`super::cleanup`]).
//!
//! In the directory: `target` (the service key the upload will write), `meta.json` (the
//! `Content-Type` and user metadata given at creation, [`ClientMeta`]), and for each part
//! `N` (zero-padded to 5 digits) `part-N` (its bytes) and `part-N.md5` (its MD5, hex),
//! the bytes renamed into place only once the MD5 is written.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput,
    CompleteMultipartUploadOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput, ETag,
    ListPartsInput, ListPartsOutput, Part, StreamingBlob, UploadPartInput, UploadPartOutput,
};
use s3s::{s3_error, S3Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::errors::s3_error;
use super::etag::{multipart_etag, Md5Sink, Md5Stream};
use super::front::{body_reader, timestamp, StrataS3};
use super::meta::ClientMeta;
use crate::objects::check_new_key;

/// The staging directory's name in the data directory.
pub const STAGING_DIR: &str = "s3-uploads";

/// Largest part, as S3's (5 GiB).
pub const MAX_PART_SIZE: u64 = 5 << 30;

/// Part numbers, as S3's.
const PART_NUMBERS: std::ops::RangeInclusive<i32> = 1..=10_000;

/// Bytes read from a staged part per step of a completion.
const STITCH_READ: usize = 1 << 20;

/// The file of an upload's metadata in its directory.
const META_FILE: &str = "meta.json";

/// The file naming an upload's key in its directory.
pub(crate) const TARGET_FILE: &str = "target";

/// Where multipart uploads are staged.
pub struct Staging {
    pub(crate) root: PathBuf,
}

impl Staging {
    /// The staging directory under `data_dir`, created if missing.
    pub fn open(data_dir: &Path) -> std::io::Result<Staging> {
        let root = data_dir.join(STAGING_DIR);
        std::fs::create_dir_all(&root)?;
        Ok(Staging { root })
    }

    /// The directory of upload `id`; `NoSuchUpload` unless `id` is one this service
    /// gives (32 hex digits) and the upload exists for `key`.
    async fn upload(&self, id: &str, key: &str) -> S3Result<PathBuf> {
        let unknown = || {
            s3_error!(
                NoSuchUpload,
                "no multipart upload {id:?} for {key:?}: it was completed, aborted or never \
                 created; start one with CreateMultipartUpload"
            )
        };
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let dir = self.root.join(id);
        match tokio::fs::read_to_string(dir.join(TARGET_FILE)).await {
            Ok(target) if target == key => Ok(dir),
            _ => Err(unknown()),
        }
    }
}

fn part_path(dir: &Path, number: i32) -> PathBuf {
    dir.join(format!("part-{number:05}"))
}

fn io_error(what: &str, err: std::io::Error) -> s3s::S3Error {
    s3_error!(InternalError, "{what}: {err}")
}

/// CreateMultipartUpload: a new staging directory.
pub async fn create(
    front: &StrataS3,
    input: CreateMultipartUploadInput,
) -> S3Result<CreateMultipartUploadOutput> {
    let key = front.buckets.key(&input.bucket, &input.key)?;
    check_new_key(&key).map_err(s3_error)?;
    let meta = ClientMeta::new(input.content_type, input.metadata)?;
    let meta = serde_json::to_vec(&meta)
        .map_err(|err| s3_error!(InternalError, "cannot encode the upload's metadata: {err}"))?;
    let id = format!("{:032x}", rand::random::<u128>());
    let dir = front.staging.root.join(&id);
    tokio::fs::create_dir(&dir)
        .await
        .map_err(|err| io_error("cannot create the upload's staging directory", err))?;
    tokio::fs::write(dir.join(META_FILE), meta)
        .await
        .map_err(|err| io_error("cannot record the upload's metadata", err))?;
    // Written last: an upload is listed (and found) once its metadata is in place.
    tokio::fs::write(dir.join(TARGET_FILE), &key)
        .await
        .map_err(|err| io_error("cannot record the upload's key", err))?;
    Ok(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(id),
        ..CreateMultipartUploadOutput::default()
    })
}

/// UploadPart: the body streamed to the part's file, its MD5 the ETag.
pub async fn upload_part(front: &StrataS3, input: UploadPartInput) -> S3Result<UploadPartOutput> {
    let key = front.buckets.key(&input.bucket, &input.key)?;
    let dir = front.staging.upload(&input.upload_id, &key).await?;
    let number = input.part_number;
    if !PART_NUMBERS.contains(&number) {
        return Err(s3_error!(
            InvalidArgument,
            "part number {number}: give a number from 1 to 10000"
        ));
    }
    let sink = Md5Sink::default();
    let body = input.body.unwrap_or_else(|| {
        StreamingBlob::wrap(futures::stream::empty::<Result<Bytes, std::io::Error>>())
    });
    let mut reader = body_reader(
        &front.state,
        &key,
        Md5Stream::new(body, sink.clone()),
        input.content_length,
    )?;
    let limit = MAX_PART_SIZE.min(front.state.limits.max_object_size);
    // A part is bounded by S3's part size as well as the object size.
    if reader.declared().is_some_and(|declared| declared > limit) {
        return Err(s3_error!(
            EntityTooLarge,
            "part {number} of {key:?} is larger than the {limit} bytes a part may have"
        ));
    }
    let staged = dir.join(format!(
        "part-{number:05}.{:016x}.tmp",
        rand::random::<u64>()
    ));
    let written = stream_to_file(&mut reader, &staged, limit, number, &key).await;
    if let Err(err) = written {
        let _ = tokio::fs::remove_file(&staged).await;
        return Err(err);
    }
    let md5 = sink.hex();
    let path = part_path(&dir, number);
    tokio::fs::write(path.with_extension("md5"), &md5)
        .await
        .map_err(|err| io_error("cannot record a part's MD5", err))?;
    tokio::fs::rename(&staged, &path)
        .await
        .map_err(|err| io_error("cannot put a part in place", err))?;
    Ok(UploadPartOutput {
        e_tag: Some(ETag::Strong(md5)),
        ..UploadPartOutput::default()
    })
}

/// Streams `reader` into a new file at `path`, refusing more than `limit` bytes.
async fn stream_to_file(
    reader: &mut crate::http::BodyReader,
    path: &Path,
    limit: u64,
    number: i32,
    key: &str,
) -> S3Result<()> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|err| io_error("cannot stage a part", err))?;
    let mut total = 0u64;
    while let Some(chunk) = reader.next().await.map_err(s3_error)? {
        total += chunk.len() as u64;
        if total > limit {
            return Err(s3_error!(
                EntityTooLarge,
                "part {number} of {key:?} is larger than the {limit} bytes a part may have"
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|err| io_error("cannot stage a part", err))?;
    }
    file.sync_all()
        .await
        .map_err(|err| io_error("cannot stage a part", err))
}

/// The parts of the upload in `dir` that arrived whole: number, size, MD5, time.
async fn staged_parts(dir: &Path) -> S3Result<Vec<(i32, u64, String, i64)>> {
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|err| io_error("cannot read the upload's parts", err))?;
    let mut parts = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|err| io_error("cannot read the upload's parts", err))?
    {
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|name| name.strip_prefix("part-"))
            .filter(|digits| digits.len() == 5)
            .and_then(|digits| digits.parse::<i32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let (Ok(meta), Ok(md5)) = (
            entry.metadata().await,
            tokio::fs::read_to_string(path.with_extension("md5")).await,
        ) else {
            continue;
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        parts.push((number, meta.len(), md5, modified));
    }
    parts.sort_unstable_by_key(|part| part.0);
    Ok(parts)
}

/// CompleteMultipartUpload: the listed parts checked (each staged, its ETag matching, in
/// ascending order), then streamed in order through the write path as one object.
pub async fn complete(
    front: &StrataS3,
    input: CompleteMultipartUploadInput,
) -> S3Result<CompleteMultipartUploadOutput> {
    let key = front.buckets.key(&input.bucket, &input.key)?;
    let dir = front.staging.upload(&input.upload_id, &key).await?;
    let listed = input
        .multipart_upload
        .and_then(|upload| upload.parts)
        .filter(|parts| !parts.is_empty())
        .ok_or_else(|| {
            s3_error!(
                MalformedXML,
                "CompleteMultipartUpload lists no parts; list each uploaded part's number and ETag"
            )
        })?;
    let mut previous = 0;
    for number in listed.iter().map(|part| part.part_number.unwrap_or(0)) {
        if number <= previous {
            return Err(s3_error!(
                InvalidPartOrder,
                "part {number} follows part {previous}: list parts in ascending order"
            ));
        }
        previous = number;
    }
    let staged = staged_parts(&dir).await?;
    let mut chosen = Vec::with_capacity(listed.len());
    for part in &listed {
        let number = part.part_number.unwrap_or(0);
        let etag_matches = |md5: &str| {
            part.e_tag
                .as_ref()
                .is_none_or(|etag| etag.value().trim_matches('"') == md5)
        };
        match staged.iter().find(|staged| staged.0 == number) {
            Some(staged) if etag_matches(&staged.2) => chosen.push(staged.clone()),
            _ => {
                return Err(s3_error!(
                    InvalidPart,
                    "part {number} of {key:?} was not uploaded, or its ETag differs; upload it \
                     (ListParts shows what arrived)"
                ))
            }
        }
    }
    let md5s: Vec<String> = chosen.iter().map(|part| part.2.clone()).collect();
    let etag = multipart_etag(&md5s).map_err(|_| {
        s3_error!(
            InternalError,
            "a staged part's MD5 is damaged; upload it again"
        )
    })?;
    let size: u64 = chosen.iter().map(|part| part.1).sum();
    let paths: Vec<PathBuf> = chosen.iter().map(|part| part_path(&dir, part.0)).collect();
    let meta = upload_meta(&dir).await?;
    front
        .store(
            &key,
            StreamingBlob::wrap(stitch(paths)),
            i64::try_from(size).ok(),
            Some(etag.clone()),
            &meta,
        )
        .await?;
    if let Err(err) = tokio::fs::remove_dir_all(&dir).await {
        tracing::warn!(%key, %err, "a completed upload's staging directory was left behind");
    }
    Ok(CompleteMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        e_tag: Some(ETag::Strong(etag)),
        ..CompleteMultipartUploadOutput::default()
    })
}

/// The metadata given when the upload in `dir` was created (none for an upload staged
/// before it was recorded).
async fn upload_meta(dir: &Path) -> S3Result<ClientMeta> {
    match tokio::fs::read(dir.join(META_FILE)).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
            s3_error!(
                InternalError,
                "the upload's recorded metadata is damaged ({err}); abort it and upload again"
            )
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(ClientMeta::default()),
        Err(err) => Err(io_error("cannot read the upload's metadata", err)),
    }
}

/// The files at `paths`, one after another, read a megabyte at a time.
fn stitch(
    paths: Vec<PathBuf>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::iter(paths)
        .then(|path| async move { tokio::fs::File::open(path).await })
        .flat_map(|opened| match opened {
            Ok(file) => file_chunks(file).left_stream(),
            Err(err) => futures::stream::once(async move { Err(err) }).right_stream(),
        })
}

fn file_chunks(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = BytesMut::with_capacity(STITCH_READ);
        match file.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buffer.freeze()), Some(file))),
            Err(err) => Some((Err(err), None)),
        }
    })
}

/// AbortMultipartUpload: the staging directory removed.
pub async fn abort(
    front: &StrataS3,
    input: AbortMultipartUploadInput,
) -> S3Result<AbortMultipartUploadOutput> {
    let key = front.buckets.key(&input.bucket, &input.key)?;
    let dir = front.staging.upload(&input.upload_id, &key).await?;
    tokio::fs::remove_dir_all(&dir)
        .await
        .map_err(|err| io_error("cannot remove the upload's staged parts", err))?;
    Ok(AbortMultipartUploadOutput::default())
}

/// ListParts: the parts that arrived whole, after `part-number-marker`.
pub async fn list_parts(front: &StrataS3, input: ListPartsInput) -> S3Result<ListPartsOutput> {
    let key = front.buckets.key(&input.bucket, &input.key)?;
    let dir = front.staging.upload(&input.upload_id, &key).await?;
    let marker = input.part_number_marker.unwrap_or(0);
    let max_parts = usize::try_from(input.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(0);
    let after: Vec<_> = staged_parts(&dir)
        .await?
        .into_iter()
        .filter(|part| part.0 > marker)
        .collect();
    let truncated = after.len() > max_parts;
    let parts: Vec<Part> = after
        .into_iter()
        .take(max_parts)
        .map(|(number, size, md5, modified)| Part {
            part_number: Some(number),
            size: i64::try_from(size).ok(),
            e_tag: Some(ETag::Strong(md5)),
            last_modified: Some(timestamp(modified)),
            ..Part::default()
        })
        .collect();
    Ok(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        is_truncated: Some(truncated),
        next_part_number_marker: parts
            .last()
            .and_then(|part| part.part_number)
            .filter(|_| truncated),
        max_parts: i32::try_from(max_parts).ok(),
        parts: Some(parts),
        ..ListPartsOutput::default()
    })
}
