//! The S3 operations over the service's objects: each maps its bucket and key to a
//! service key ([`Buckets`]) and goes through [`crate::objects`], so an object written
//! here reads over `/v1/objects` and back, with the same tiers, policies, encryption,
//! checks and access heat.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use s3s::dto::{
    Bucket, CopyObjectInput, CopyObjectOutput, CopyObjectResult, CopySource, DeleteObjectInput,
    DeleteObjectOutput, DeleteObjectsInput, DeleteObjectsOutput, DeletedObject, ETag,
    ETagCondition, GetBucketLocationInput, GetBucketLocationOutput, GetObjectInput,
    GetObjectOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput,
    ListBucketsInput, ListBucketsOutput, PutObjectInput, PutObjectOutput, StreamingBlob, Timestamp,
};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result, S3};
use strata_catalog::S3MetaCatalog;
use strata_heat::config::DEFAULT_BUCKET;

use super::errors::s3_error;
use super::etag::{Md5Sink, Md5Stream};
use super::keys::{FrontKeys, TokenKeys};
use super::meta::ClientMeta;
use super::multipart::Staging;
use crate::error::ServeError;
use crate::http::BodyReader;
use crate::index::ObjectEntry;
use crate::objects::{self, check_new_key, ObjectKey};
use crate::state::AppState;

/// The front door's `s3s` service over `state`, accepting `keys`.
pub fn service(state: Arc<AppState>, keys: FrontKeys) -> Result<S3Service, ServeError> {
    let keys = keys.with_tokens(TokenKeys::new(
        state.engine.tokens(),
        state.config.server.data_dir.clone(),
    ));
    let staging =
        Staging::open(&state.config.server.data_dir).map_err(|err| ServeError::Config {
            field: "server.data_dir".to_string(),
            reason: format!("cannot prepare the S3 multipart staging directory: {err}"),
        })?;
    let state_buckets = state.config.s3.buckets.clone();
    let front = StrataS3 {
        buckets: Buckets::new(&state_buckets),
        meta: state.engine.s3_meta(),
        state,
        staging,
        started: SystemTime::now(),
    };
    let mut builder = S3ServiceBuilder::new(front);
    // Always set: without an auth provider s3s runs no access check at all, and an
    // anonymous write would pass.
    builder.set_auth(keys.auth());
    builder.set_access(keys.access(Buckets::new(&state_buckets)));
    Ok(builder.build())
}

/// The buckets: `strata` (every key) and each `[s3] buckets` entry (its key prefix).
pub struct Buckets {
    extra: Vec<String>,
}

impl Buckets {
    /// `strata` and `extra`.
    pub fn new(extra: &[String]) -> Self {
        Buckets {
            extra: extra.to_vec(),
        }
    }

    /// Every bucket's name, `strata` first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(DEFAULT_BUCKET).chain(self.extra.iter().map(String::as_str))
    }

    /// The key prefix of `bucket`'s objects; `NoSuchBucket` for any other name.
    pub fn prefix(&self, bucket: &str) -> S3Result<String> {
        if bucket == DEFAULT_BUCKET {
            Ok(String::new())
        } else if self.extra.iter().any(|name| name == bucket) {
            Ok(format!("{bucket}/"))
        } else {
            Err(s3_error!(
                NoSuchBucket,
                "no bucket {bucket:?}: this service's buckets are {}; add one with [s3] \
                 buckets = [...]",
                self.names().collect::<Vec<_>>().join(", ")
            ))
        }
    }

    /// The service key of `key` in `bucket`.
    pub fn key(&self, bucket: &str, key: &str) -> S3Result<String> {
        Ok(format!("{}{key}", self.prefix(bucket)?))
    }
}

/// An object written through the front door.
pub(crate) struct Stored {
    /// Its ETag (unquoted), as recorded.
    pub etag: String,
    /// Its write time.
    pub mtime_ms: i64,
}

/// The `s3s` implementation over the service's state.
pub struct StrataS3 {
    pub(crate) state: Arc<AppState>,
    pub(crate) buckets: Buckets,
    /// ETags, `Content-Type` and user metadata ([`super::meta`]).
    pub(crate) meta: Arc<dyn S3MetaCatalog>,
    pub(crate) staging: Staging,
    started: SystemTime,
}

/// The time of a millisecond timestamp.
pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// A body for [`objects::store_object`] from a streamed S3 body of `length` bytes.
pub(crate) fn body_reader<S>(
    state: &AppState,
    key: &str,
    stream: S,
    length: Option<i64>,
) -> S3Result<BodyReader>
where
    S: futures::Stream<Item = Result<bytes::Bytes, s3s::StdError>> + Send + 'static,
{
    let mut headers = HeaderMap::new();
    if let Some(length) = length.and_then(|length| u64::try_from(length).ok()) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    BodyReader::new(
        &headers,
        Body::from_stream(stream),
        state.limits.max_object_size,
        state.http.body_timeout,
        &format!("object {key:?}"),
    )
    .map_err(s3_error)
}

impl StrataS3 {
    /// The object `key` as the index has it now, or `NoSuchKey`.
    fn entry(&self, key: &str) -> S3Result<ObjectEntry> {
        self.state
            .index
            .get(key)
            .ok_or_else(|| s3_error!(NoSuchKey, "no object {key:?}"))
    }

    /// Writes `stream` as `key` through the service's write path, then records its ETag
    /// (`etag`, or else the MD5 of the bytes) and `meta` for the content written.
    pub(crate) async fn store(
        &self,
        key: &str,
        stream: StreamingBlob,
        length: Option<i64>,
        etag: Option<String>,
        meta: &ClientMeta,
    ) -> S3Result<Stored> {
        check_new_key(key).map_err(s3_error)?;
        let sink = Md5Sink::default();
        let hashed = Md5Stream::new(stream, sink.clone());
        let reader = body_reader(&self.state, key, hashed, length)?;
        let (view, _) = objects::store_object(&self.state, key, reader, None)
            .await
            .map_err(s3_error)?;
        let etag = etag.unwrap_or_else(|| sink.hex());
        self.record_meta(key, &view.hash, &etag, meta).await?;
        Ok(Stored {
            etag,
            mtime_ms: view.mtime_ms,
        })
    }

    /// The object's bytes (`range`: a `Range` header) through the service's read path,
    /// which records the access.
    async fn read(&self, key: &str, range: Option<String>) -> S3Result<(HeaderMap, StreamingBlob)> {
        let mut headers = HeaderMap::new();
        if let Some(value) = range.and_then(|range| HeaderValue::from_str(&range).ok()) {
            headers.insert(header::RANGE, value);
        }
        let response = objects::get_object(
            State(Arc::clone(&self.state)),
            ObjectKey(key.to_string()),
            headers,
        )
        .await
        .map_err(s3_error)?;
        if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
            return Err(s3_error!(
                InvalidRange,
                "the range is outside the object {key:?}"
            ));
        }
        let (parts, body) = response.into_parts();
        let body = StreamingBlob::from(s3s::Body::http_body_unsync(body));
        Ok((parts.headers, body))
    }
}

/// The conditional headers of a GET or HEAD, checked against the object's ETag and last
/// write: `PreconditionFailed` (If-Match, If-Unmodified-Since) or `NotModified`
/// (If-None-Match, If-Modified-Since), as RFC 9110 orders them.
pub(crate) fn check_conditions(
    etag: &str,
    mtime_ms: i64,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let matches = |condition: &ETagCondition| match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == etag,
    };
    // HTTP dates have whole seconds.
    let modified = time::OffsetDateTime::from(timestamp(mtime_ms / 1000 * 1000));
    let since = |time: &Timestamp| time::OffsetDateTime::from(time.clone());
    if let Some(condition) = if_match {
        if !matches(condition) {
            return Err(s3_error!(
                PreconditionFailed,
                "If-Match: the ETag is {etag}"
            ));
        }
    } else if let Some(time) = if_unmodified_since {
        if modified > since(time) {
            return Err(s3_error!(
                PreconditionFailed,
                "If-Unmodified-Since: the object changed since"
            ));
        }
    }
    if let Some(condition) = if_none_match {
        if matches(condition) {
            return Err(S3Error::new(s3s::S3ErrorCode::NotModified));
        }
    } else if let Some(time) = if_modified_since {
        if modified <= since(time) {
            return Err(S3Error::new(s3s::S3ErrorCode::NotModified));
        }
    }
    Ok(())
}

/// The metadata of a copy: the source's (`MetadataDirective: COPY`, the default), or the
/// request's (`REPLACE`); any other directive is `InvalidArgument`.
fn copied_meta(
    directive: Option<&s3s::dto::MetadataDirective>,
    source: ClientMeta,
    content_type: Option<String>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> S3Result<ClientMeta> {
    match directive.map(s3s::dto::MetadataDirective::as_str) {
        None | Some(s3s::dto::MetadataDirective::COPY) => Ok(source),
        Some(s3s::dto::MetadataDirective::REPLACE) => ClientMeta::new(content_type, metadata),
        Some(other) => Err(s3_error!(
            InvalidArgument,
            "x-amz-metadata-directive is {other:?}; give COPY or REPLACE"
        )),
    }
}

fn header_i64(headers: &HeaderMap, name: header::HeaderName) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    Some(headers.get(name)?.to_str().ok()?.to_string())
}

#[async_trait::async_trait]
impl S3 for StrataS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .buckets
            .names()
            .map(|name| Bucket {
                name: Some(name.to_string()),
                creation_date: Some(Timestamp::from(self.started)),
                ..Bucket::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            ..ListBucketsOutput::default()
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.buckets.prefix(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.buckets.prefix(&req.input.bucket)?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        let key = self.buckets.key(&input.bucket, &input.key)?;
        let body = input.body.unwrap_or_else(|| {
            StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>())
        });
        let meta = ClientMeta::new(input.content_type, input.metadata)?;
        let stored = self
            .store(&key, body, input.content_length, None, &meta)
            .await?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(stored.etag)),
            ..PutObjectOutput::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let key = self.buckets.key(&input.bucket, &input.key)?;
        let entry = self.entry(&key)?;
        let described = self.describe(&key, &entry).await?;
        check_conditions(
            &described.etag,
            entry.mtime_ms,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let range = input.range.map(|range| range.to_header_string());
        let (headers, body) = self.read(&key, range).await?;
        Ok(S3Response::new(GetObjectOutput {
            body: Some(body),
            accept_ranges: Some("bytes".to_string()),
            content_length: header_i64(&headers, header::CONTENT_LENGTH),
            content_range: header_string(&headers, header::CONTENT_RANGE),
            content_type: Some(described.content_type()),
            metadata: described.user_metadata(),
            e_tag: Some(ETag::Strong(described.etag)),
            last_modified: Some(timestamp(entry.mtime_ms)),
            ..GetObjectOutput::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let key = self.buckets.key(&input.bucket, &input.key)?;
        let entry = self.entry(&key)?;
        let described = self.describe(&key, &entry).await?;
        check_conditions(
            &described.etag,
            entry.mtime_ms,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        Ok(S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".to_string()),
            content_length: i64::try_from(entry.size).ok(),
            content_type: Some(described.content_type()),
            metadata: described.user_metadata(),
            e_tag: Some(ETag::Strong(described.etag)),
            last_modified: Some(timestamp(entry.mtime_ms)),
            ..HeadObjectOutput::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let key = self.buckets.key(&req.input.bucket, &req.input.key)?;
        self.delete(&key).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let prefix = self.buckets.prefix(&input.bucket)?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in input.delete.objects {
            let key = format!("{prefix}{}", object.key);
            match self.delete(&key).await {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(object.key),
                    ..DeletedObject::default()
                }),
                Err(err) => errors.push(s3s::dto::Error {
                    code: Some(err.code().as_str().to_string()),
                    message: err.message().map(str::to_string),
                    key: Some(object.key),
                    ..s3s::dto::Error::default()
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..DeleteObjectsOutput::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket { bucket, key, .. } = &input.copy_source else {
            return Err(s3_error!(
                NotImplemented,
                "copy from an access point is not supported; name the source as bucket/key"
            ));
        };
        let source = self.buckets.key(bucket, key)?;
        let target = self.buckets.key(&input.bucket, &input.key)?;
        let entry = self.entry(&source)?;
        let described = self.describe(&source, &entry).await?;
        check_conditions(
            &described.etag,
            entry.mtime_ms,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
        )
        .map_err(|err| match err.code() {
            s3s::S3ErrorCode::NotModified => s3_error!(
                PreconditionFailed,
                "x-amz-copy-source-if-none-match / if-modified-since: not copied"
            ),
            _ => err,
        })?;
        let meta = copied_meta(
            input.metadata_directive.as_ref(),
            described.meta,
            input.content_type,
            input.metadata,
        )?;
        let (headers, body) = self.read(&source, None).await?;
        let length = header_i64(&headers, header::CONTENT_LENGTH);
        let stored = self.store(&target, body, length, None, &meta).await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(stored.etag)),
                last_modified: Some(timestamp(stored.mtime_ms)),
                ..CopyObjectResult::default()
            }),
            ..CopyObjectOutput::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<s3s::dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<s3s::dto::ListObjectsV2Output>> {
        super::listing::list_v2(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn list_objects(
        &self,
        req: S3Request<s3s::dto::ListObjectsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListObjectsOutput>> {
        super::listing::list_v1(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<s3s::dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<s3s::dto::CreateMultipartUploadOutput>> {
        super::multipart::create(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn upload_part(
        &self,
        req: S3Request<s3s::dto::UploadPartInput>,
    ) -> S3Result<S3Response<s3s::dto::UploadPartOutput>> {
        super::multipart::upload_part(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<s3s::dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<s3s::dto::CompleteMultipartUploadOutput>> {
        super::multipart::complete(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<s3s::dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<s3s::dto::AbortMultipartUploadOutput>> {
        super::multipart::abort(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<s3s::dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListMultipartUploadsOutput>> {
        super::uploads::list_uploads(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn list_parts(
        &self,
        req: S3Request<s3s::dto::ListPartsInput>,
    ) -> S3Result<S3Response<s3s::dto::ListPartsOutput>> {
        super::multipart::list_parts(self, req.input)
            .await
            .map(S3Response::new)
    }
}

impl StrataS3 {
    /// Deletes `key` through the service's delete path; a missing key is no error (S3's
    /// DELETE is idempotent).
    async fn delete(&self, key: &str) -> S3Result<()> {
        let deleted =
            objects::delete_object(State(Arc::clone(&self.state)), ObjectKey(key.to_string()))
                .await;
        match deleted {
            Ok(_) => {
                self.forget_meta(key).await;
                Ok(())
            }
            Err(err) if err.status == StatusCode::NOT_FOUND => Ok(()),
            Err(err) => Err(s3_error(err)),
        }
    }
}
