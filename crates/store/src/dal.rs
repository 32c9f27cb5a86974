//! Object stores over Apache OpenDAL: S3-compatible servers, Azure Blob, Google Cloud
//! Storage (their services built in `dal_cloud.rs`), OpenStack Swift (`dal_swift.rs`) and
//! in-process memory.
//!
//! Each store has two operators over the same service: `op` (timeouts, bounded retries:
//! data traffic) and `probe` (short timeouts, no retry: [`DalStore::check_reachable`], so a
//! dead endpoint is reported in seconds). Both send their HTTP requests through a
//! [`PushbackTransport`], which turns a 429 or 5xx answer into an error that carries the
//! server's `Retry-After` (see [`crate::retry_after`]); a Swift store's go through a
//! [`SwiftAuthTransport`] below that, which authenticates and renews the token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::Operator;
use strata_throttle::{Priority, Throttle};

use crate::access::{Access, Backend, Begun};
use crate::dal_swift::{LargeDelete, SwiftAuthTransport, SwiftDeleter, SwiftSession};
use crate::error::{from_dal, is_timeout, DalContext, StoreError};
use crate::options::S3Options;
use crate::overlap::StoreLocation;
use crate::retry_after::{PushbackTransport, OPENDAL_RETRY_MIN_DELAY};
use crate::throttled::ThrottleLayer;
use crate::uri::{StoreScheme, StoreUri};
use crate::{relpath, Entry, ListWarning};

/// Smallest part size of S3 multipart uploads (S3's minimum is 5 MiB; larger parts cost
/// fewer requests). See [`part_size_for`].
pub(crate) const S3_PART_SIZE: usize = 8 * 1024 * 1024;
/// S3 allows at most 10,000 parts; stay clear of the limit.
const S3_MAX_PARTS: u64 = 9_000;

/// The part size for a file of `size` bytes: 8 MiB, or more (whole MiB) when the file
/// would otherwise need more than 9,000 parts (files over about 70 GiB).
pub(crate) fn part_size_for(size: u64) -> usize {
    const MIB: u64 = 1024 * 1024;
    let needed = size
        .div_ceil(S3_MAX_PARTS)
        .div_ceil(MIB)
        .saturating_mul(MIB);
    usize::try_from(needed.max(S3_PART_SIZE as u64)).unwrap_or(usize::MAX)
}
/// Parts of one file uploaded at once.
pub(crate) const S3_PART_CONCURRENCY: usize = 4;

const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);
const IO_TIMEOUT: Duration = Duration::from_secs(120);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_TIMES: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where OpenDAL's swift service puts the segments of large objects (top of the container).
const SWIFT_SEGMENTS: &str = ".segments/";

/// Gives the operator its own HTTP client (OpenDAL has no process-wide default here), with
/// a bounded connect time so a black-holed endpoint fails instead of hanging, behind a
/// [`PushbackTransport`] (429 and 5xx answers become errors with their `Retry-After`).
/// A Swift store's `session` authenticates its requests beneath the pushback transport.
fn with_http_client(
    op: Operator,
    connect_timeout: Duration,
    endpoint: &str,
    session: Option<&Arc<SwiftSession>>,
) -> Result<Operator, StoreError> {
    let http = http_transport(connect_timeout, endpoint, session)?;
    let transport = opendal::HttpTransporter::new(PushbackTransport::new(http));
    let ctx = op.base_context().with_http_transport(transport);
    Ok(op.with_context(ctx))
}

/// A store's own HTTP client as a transport, authenticated by `session` for Swift.
/// Proxies from the environment (`HTTPS_PROXY`, ...) apply, except to a loopback endpoint.
fn http_transport(
    connect_timeout: Duration,
    endpoint: &str,
    session: Option<&Arc<SwiftSession>>,
) -> Result<opendal::HttpTransporter, StoreError> {
    let mut builder = reqwest::Client::builder().connect_timeout(connect_timeout);
    if is_loopback(endpoint) {
        builder = builder.no_proxy();
    }
    let client = builder.build().map_err(|e| StoreError::Backend {
        path: "HTTP client".into(),
        detail: format!("cannot create the HTTP client: {e}"),
        retryable: false,
    })?;
    let mut http = opendal::HttpTransporter::new(
        opendal_http_transport_reqwest::ReqwestTransport::new(client),
    );
    if let Some(session) = session {
        http = opendal::HttpTransporter::new(SwiftAuthTransport::new(http, Arc::clone(session)));
    }
    Ok(http)
}

fn is_loopback(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An OpenDAL-backed store. Cheap to clone (the operators are shared).
#[derive(Clone)]
pub(crate) struct DalStore {
    op: Operator,
    probe: Operator,
    /// Key prefix applied by Strata (memory stores, which share one operator per name);
    /// `""` or ends with `/`. S3 prefixes are the operator's root instead.
    key_prefix: String,
    scheme: StoreScheme,
    /// The store URI as shown to users (no credentials).
    pub(crate) shown: String,
    /// The endpoint as shown in errors.
    pub(crate) endpoint: String,
    /// Swift stores: deletes large objects with their segments.
    swift_deleter: Option<Arc<SwiftDeleter>>,
}

/// Shows the URI only: the operators hold the signer, which is nobody's business.
impl std::fmt::Debug for DalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DalStore")
            .field("uri", &self.shown)
            .finish_non_exhaustive()
    }
}

/// Memory stores by name: `memory://a` opened twice is the same store.
fn memory_operator(name: &str) -> Result<Operator, opendal::Error> {
    static STORES: OnceLock<Mutex<HashMap<String, Operator>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(op) = stores.get(name) {
        return Ok(op.clone());
    }
    let op = Operator::new(opendal::services::Memory::default())?;
    stores.insert(name.to_string(), op.clone());
    Ok(op)
}

impl DalStore {
    pub(crate) fn open(uri: &StoreUri, s3: &S3Options) -> Result<DalStore, StoreError> {
        let shown = uri.to_string();
        let config_error = |err: opendal::Error| StoreError::InvalidUri {
            uri: shown.clone(),
            reason: format!("the store cannot be configured: {}", err.message()),
        };
        match uri.scheme() {
            StoreScheme::Memory => {
                let base =
                    memory_operator(uri.memory_name().unwrap_or_default()).map_err(config_error)?;
                let key_prefix = match uri.prefix() {
                    "" => String::new(),
                    p => format!("{p}/"),
                };
                Ok(DalStore {
                    op: base.clone(),
                    probe: base,
                    key_prefix,
                    scheme: StoreScheme::Memory,
                    endpoint: shown.clone(),
                    shown,
                    swift_deleter: None,
                })
            }
            StoreScheme::S3 => {
                let (builder, endpoint) = s3_builder(uri, s3)?;
                let base = Operator::new(builder).map_err(config_error)?;
                Self::remote(base, StoreScheme::S3, endpoint, shown, None)
            }
            StoreScheme::Azblob => {
                let (builder, endpoint) = crate::dal_cloud::azblob_builder(uri, &s3.azblob)?;
                let base = Operator::new(builder).map_err(config_error)?;
                Self::remote(base, StoreScheme::Azblob, endpoint, shown, None)
            }
            StoreScheme::Gcs => {
                let (builder, endpoint) = crate::dal_cloud::gcs_builder(uri, &s3.gcs)?;
                let base = Operator::new(builder).map_err(config_error)?;
                Self::remote(base, StoreScheme::Gcs, endpoint, shown, None)
            }
            StoreScheme::Swift => {
                let (builder, endpoint, session) = crate::dal_swift::swift_builder(uri, &s3.swift)?;
                let base = Operator::new(builder).map_err(config_error)?;
                let http = http_transport(CONNECT_TIMEOUT, &endpoint, Some(&session))?;
                let mut store =
                    Self::remote(base, StoreScheme::Swift, endpoint, shown, Some(session))?;
                store.swift_deleter = Some(Arc::new(SwiftDeleter::new(http, uri)));
                Ok(store)
            }
            StoreScheme::File => Err(StoreError::InvalidUri {
                uri: shown.clone(),
                reason: "local stores do not go through OpenDAL".into(),
            }),
        }
    }

    /// A store on an object store server: the data operator (own HTTP client, timeouts,
    /// bounded retries) and the probe (short timeouts, no retry) over the same service.
    fn remote(
        base: Operator,
        scheme: StoreScheme,
        endpoint: String,
        shown: String,
        session: Option<Arc<SwiftSession>>,
    ) -> Result<DalStore, StoreError> {
        let session = session.as_ref();
        let op = with_http_client(base.clone(), CONNECT_TIMEOUT, &endpoint, session)?
            .layer(
                TimeoutLayer::new()
                    .with_timeout(CONTROL_TIMEOUT)
                    .with_io_timeout(IO_TIMEOUT),
            )
            .layer(
                // Its first wait is what honours a `Retry-After` of up to
                // OPENDAL_RETRY_MIN_DELAY; longer ones are left to the caller.
                RetryLayer::new()
                    .with_min_delay(OPENDAL_RETRY_MIN_DELAY)
                    .with_max_times(RETRY_TIMES)
                    .with_jitter(),
            );
        let probe = with_http_client(base, PROBE_TIMEOUT, &endpoint, session)?.layer(
            TimeoutLayer::new()
                .with_timeout(PROBE_TIMEOUT)
                .with_io_timeout(PROBE_TIMEOUT),
        );
        Ok(DalStore {
            op,
            probe,
            key_prefix: String::new(),
            scheme,
            endpoint,
            shown,
            swift_deleter: None,
        })
    }

    pub(crate) fn operator(&self) -> &Operator {
        &self.op
    }

    /// The same store with `layer` on its data operator (the probe stays unlayered).
    pub(crate) fn with_layer(&self, layer: impl opendal::raw::Layer) -> DalStore {
        DalStore {
            op: self.op.clone().layer(layer),
            probe: self.probe.clone(),
            key_prefix: self.key_prefix.clone(),
            scheme: self.scheme,
            shown: self.shown.clone(),
            endpoint: self.endpoint.clone(),
            swift_deleter: self.swift_deleter.clone(),
        }
    }

    /// Whether the store is on an object store server (S3, Azure Blob, GCS, Swift), not in
    /// memory.
    pub(crate) fn is_remote(&self) -> bool {
        self.scheme.is_remote()
    }

    /// The kind of store.
    pub(crate) fn scheme(&self) -> StoreScheme {
        self.scheme
    }

    /// The operator key of a validated relative path.
    pub(crate) fn key(&self, rel: &str) -> Result<String, StoreError> {
        relpath::check(rel)?;
        Ok(format!("{}{rel}", self.key_prefix))
    }

    /// Maps an OpenDAL error on relative path `rel` (`""` for the store itself).
    pub(crate) fn error(&self, rel: &str, err: opendal::Error) -> StoreError {
        let ctx = DalContext {
            uri: &self.shown,
            endpoint: &self.endpoint,
        };
        from_dal(&ctx, rel, err)
    }

    pub(crate) async fn check_reachable(&self) -> Result<(), StoreError> {
        let root = if self.key_prefix.is_empty() {
            "/"
        } else {
            &self.key_prefix
        };
        let result = async {
            let mut lister = self.probe.lister_with(root).limit(1).await?;
            use futures::TryStreamExt;
            lister.try_next().await.map(|_| ())
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == opendal::ErrorKind::NotFound && !self.is_remote() => Ok(()),
            // Listing a prefix that holds nothing is no error on any object store: a 404
            // here means the container or bucket itself is missing.
            Err(err)
                if err.kind() == opendal::ErrorKind::NotFound
                    && matches!(
                        self.scheme,
                        StoreScheme::Azblob | StoreScheme::Gcs | StoreScheme::Swift
                    ) =>
            {
                Err(crate::dal_cloud::missing_namespace(
                    &self.shown,
                    self.scheme,
                ))
            }
            Err(err) if is_timeout(&err) => Err(StoreError::Unreachable {
                endpoint: self.endpoint.clone(),
                detail: format!(
                    "no answer within {} seconds, for {}",
                    PROBE_TIMEOUT.as_secs(),
                    self.shown
                ),
            }),
            Err(err) => Err(self.error("", err)),
        }
    }

    pub(crate) async fn list(
        &self,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<Entry>, StoreError> {
        // OpenDAL keeps the segments of a Swift large object (SLO) under `.segments/` at the
        // container's top; they are parts of other objects, not files of the store.
        let hidden = match self.scheme {
            StoreScheme::Swift if self.key_prefix.is_empty() => Some(SWIFT_SEGMENTS),
            _ => None,
        };
        crate::list::list_dal(
            &self.op,
            &self.key_prefix,
            hidden,
            |e| self.error("", e),
            warn,
        )
        .await
    }

    pub(crate) async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        let key = self.key(rel)?;
        match self.op.stat(&key).await {
            Ok(meta) if meta.is_dir() => Err(StoreError::permanent(
                self.shown_path(rel),
                "is a directory, not a file",
            )),
            Ok(meta) => Ok(Some(Entry {
                path: rel.to_string(),
                size: meta.content_length(),
                mtime: meta.last_modified().map(Into::into),
                mode: None,
                etag: meta.etag().map(str::to_string),
            })),
            Err(err) if err.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(self.error(rel, err)),
        }
    }

    pub(crate) async fn read_range(
        &self,
        rel: &str,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, StoreError> {
        let key = self.key(rel)?;
        let len_usize = crate::local::checked_len(&self.shown_path(rel), offset, len)?;
        let end = offset.saturating_add(len);
        if len == 0 {
            return Ok(Bytes::new());
        }
        let buf = self
            .op
            .read_with(&key)
            .range(offset..end)
            .await
            .map_err(|e| self.error(rel, e))?;
        if buf.len() as u64 != len {
            return Err(crate::local::short_read(
                &self.shown_path(rel),
                offset,
                len_usize,
            ));
        }
        Ok(buf.to_bytes())
    }

    pub(crate) async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        let key = self.key(rel)?;
        let size = self
            .op
            .stat(&key)
            .await
            .map_err(|e| self.error(rel, e))?
            .content_length();
        if size > crate::local::MAX_READ {
            return Err(crate::local::too_large(&self.shown_path(rel), size));
        }
        let buf = self.op.read(&key).await.map_err(|e| self.error(rel, e))?;
        Ok(buf.to_bytes())
    }

    pub(crate) async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        let key = self.key(rel)?;
        self.op
            .write(&key, data)
            .await
            .map(|_| ())
            .map_err(|e| self.error(rel, e))
    }

    pub(crate) async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let key = self.key(rel)?;
        if let Some(deleter) = &self.swift_deleter {
            let outcome = tokio::time::timeout(CONTROL_TIMEOUT, deleter.delete_large(&key))
                .await
                .unwrap_or_else(|_| {
                    Err(opendal::Error::new(
                        opendal::ErrorKind::Unexpected,
                        "timeout reached: no answer to the delete",
                    )
                    .set_temporary())
                });
            match outcome {
                Ok(LargeDelete::Deleted) => return Ok(()),
                Ok(LargeDelete::NotLarge) => {}
                Err(err) => return Err(self.error(rel, err)),
            }
        }
        match self.op.delete(&key).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == opendal::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(self.error(rel, err)),
        }
    }

    pub(crate) fn shown_path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.shown.trim_end_matches('/'))
    }
}

#[async_trait]
impl Access for DalStore {
    fn shown_path(&self, rel: &str) -> String {
        DalStore::shown_path(self, rel)
    }

    async fn list(
        &self,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<Entry>, StoreError> {
        DalStore::list(self, warn).await
    }

    async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        DalStore::stat(self, rel).await
    }

    async fn read_range(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        DalStore::read_range(self, rel, offset, len).await
    }

    async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        DalStore::read_all(self, rel).await
    }

    async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        DalStore::write_atomic(self, rel, data).await
    }

    async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        DalStore::delete(self, rel).await
    }

    async fn begin_upload(&self, rel: &str, size: u64, _resume: bool) -> Result<Begun, StoreError> {
        // The upload holds its store (cheap: the operators are shared) to map errors.
        let store = Arc::new(self.clone());
        let upload = crate::upload_dal::begin_dal(&store, rel, size).await?;
        Ok(upload.begun())
    }
}

#[async_trait]
impl Backend for DalStore {
    fn display(&self, uri: &StoreUri) -> String {
        if self.is_remote() && uri.endpoint().is_none() {
            format!("{} (endpoint {})", self.shown, self.endpoint)
        } else {
            self.shown.clone()
        }
    }

    fn location(&self, uri: &StoreUri) -> StoreLocation {
        StoreLocation::of_uri(uri, &self.endpoint)
    }

    fn with_sensing(&self, throttle: &Throttle, class: Priority) -> Option<Arc<dyn Access>> {
        if !self.is_remote() {
            return None;
        }
        let layered = self.with_layer(ThrottleLayer::new(throttle.clone(), class));
        Some(Arc::new(layered))
    }

    async fn check_reachable(&self) -> Result<(), StoreError> {
        DalStore::check_reachable(self).await
    }
}

/// Builds the S3 service from the URI and options; URI query parameters win.
/// Returns the builder and the endpoint as shown in errors.
fn s3_builder(
    uri: &StoreUri,
    s3: &S3Options,
) -> Result<(opendal::services::S3, String), StoreError> {
    let shown = uri.to_string();
    let bucket = uri.bucket().unwrap_or_default();
    let endpoint =
        match uri.endpoint() {
            Some(e) => Some(e.to_string()),
            None => match &s3.endpoint {
                Some(e) => Some(crate::uri::validate_endpoint(e).map_err(|reason| {
                    StoreError::InvalidUri {
                        uri: "AWS_ENDPOINT_URL".into(),
                        reason: format!("the endpoint from the environment is invalid: {reason}"),
                    }
                })?),
                None => None,
            },
        };
    let region = uri
        .region()
        .map(str::to_string)
        .or_else(|| s3.region.clone())
        .unwrap_or_else(|| "us-east-1".to_string());
    let path_style = uri
        .path_style()
        .or(s3.path_style)
        .unwrap_or(endpoint.is_some());
    let root = match uri.prefix() {
        "" => "/".to_string(),
        p => format!("/{p}/"),
    };

    let mut builder = opendal::services::S3::default()
        .bucket(bucket)
        .root(&root)
        .region(&region)
        .disable_config_load()
        .disable_ec2_metadata();
    if let Some(e) = &endpoint {
        builder = builder.endpoint(e);
    }
    if !path_style {
        builder = builder.enable_virtual_host_style();
    }
    builder = match (&s3.access_key_id, &s3.secret_access_key) {
        (Some(ak), Some(sk)) => {
            let b = builder.access_key_id(ak).secret_access_key(sk);
            match &s3.session_token {
                Some(token) => b.session_token(token),
                None => b,
            }
        }
        (None, None) => builder.skip_signature(),
        (Some(_), None) | (None, Some(_)) => {
            return Err(StoreError::Auth {
                uri: shown,
                detail: "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set".into(),
            })
        }
    };
    let shown_endpoint = endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    Ok((builder, shown_endpoint))
}
