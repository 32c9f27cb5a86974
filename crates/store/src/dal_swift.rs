//! OpenStack Swift stores over OpenDAL's swift service, and the authentication it lacks.
//!
//! OpenDAL's swift service takes a storage URL and a fixed token. Swift's tokens expire
//! and, with v1 authentication (`ST_AUTH`, `ST_USER`, `ST_KEY`), the storage URL is only
//! known once authenticated. So the service is built with a placeholder endpoint
//! ([`PLACEHOLDER`], never dialed) and no token, and every request goes through a
//! [`SwiftAuthTransport`] that authenticates on first use (opening a store stays free of
//! I/O, like the other stores), puts the real storage URL and token into the request, and,
//! on a 401 answer, authenticates again and sends the request once more (v1 only: a token
//! given as `OS_AUTH_TOKEN` alone cannot be renewed here).
//!
//! Deleting a static large object (what OpenDAL uploads files over one part as) through
//! OpenDAL removes its manifest only, leaving its segments' bytes under `.segments/`; so a
//! Swift store deletes through [`SwiftDeleter`] first (`?multipart-manifest=delete`, which
//! removes the manifest and its segments) and falls back to OpenDAL's delete for a plain
//! object.
//!
//! Secrets: the key and the token travel only in request headers marked sensitive; no
//! error or log line carries them (errors name the auth URL, the user and the URI).

use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode};
use opendal::{Buffer, HttpBody, HttpTransport, HttpTransporter};

use crate::dal_cloud::root_of;
use crate::error::StoreError;
use crate::options_cloud::SwiftOptions;
use crate::uri::{validate_endpoint, StoreUri};

/// The endpoint OpenDAL is given; the transport replaces it with the storage URL.
/// (`.invalid` is reserved: should a request ever escape unrewritten, it cannot resolve.)
pub(crate) const PLACEHOLDER: &str = "http://swift-storage-url.invalid";

/// What a request is sent with: a token and the account's storage URL.
#[derive(Clone)]
struct Credentials {
    token: String,
    storage_url: String,
}

/// Swift v1 authentication settings (`ST_AUTH`, `ST_USER`, `ST_KEY`).
struct V1Auth {
    url: String,
    user: String,
    key: String,
}

/// The authentication state shared by a store's operators (data and probe), so that one
/// authentication serves both and a renewal by one is seen by the other.
pub(crate) struct SwiftSession {
    v1: Option<V1Auth>,
    /// The storage URL from `?endpoint=` or `OS_STORAGE_URL`, which wins over the one v1
    /// authentication answers (useful when that one is an address unreachable from here).
    fixed_storage_url: Option<String>,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

/// Shows where it authenticates, never the key or the token.
impl std::fmt::Debug for SwiftSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwiftSession")
            .field("auth_url", &self.v1.as_ref().map(|v1| &v1.url))
            .field("storage_url", &self.fixed_storage_url)
            .finish_non_exhaustive()
    }
}

/// Builds the Swift service for `uri`; returns it, the endpoint as shown in errors (the
/// storage URL when known, else the auth URL) and the session its transport must use.
pub(crate) fn swift_builder(
    uri: &StoreUri,
    options: &SwiftOptions,
) -> Result<(opendal::services::Swift, String, Arc<SwiftSession>), StoreError> {
    let session = session_for(uri, options)?;
    let shown_endpoint = match (&session.fixed_storage_url, &session.v1) {
        (Some(url), _) => url.clone(),
        (None, Some(v1)) => v1.url.clone(),
        (None, None) => PLACEHOLDER.to_string(),
    };
    let builder = opendal::services::Swift::default()
        .endpoint(PLACEHOLDER)
        .container(uri.bucket().unwrap_or_default())
        .root(&root_of(uri));
    Ok((builder, shown_endpoint, Arc::new(session)))
}

/// The session the options describe, or an error saying which variables are missing.
fn session_for(uri: &StoreUri, options: &SwiftOptions) -> Result<SwiftSession, StoreError> {
    let shown = uri.to_string();
    let fixed_storage_url = match (uri.endpoint(), &options.storage_url) {
        (Some(url), _) => Some(url.to_string()),
        (None, Some(url)) => Some(checked_url(url, "OS_STORAGE_URL")?),
        (None, None) => None,
    };
    let v1 = match (&options.auth_url, &options.user, &options.key) {
        (Some(url), Some(user), Some(key)) => Some(V1Auth {
            url: checked_url(url, "ST_AUTH")?,
            user: user.clone(),
            key: key.clone(),
        }),
        (Some(_), _, _) => {
            return Err(StoreError::Auth {
                uri: shown,
                detail: "ST_AUTH is set but ST_USER or ST_KEY is not: set both for v1 \
                         authentication"
                    .into(),
            })
        }
        _ => None,
    };
    let initial = match (&options.token, &fixed_storage_url) {
        (Some(token), Some(storage_url)) => Some(Credentials {
            token: token.clone(),
            storage_url: storage_url.clone(),
        }),
        _ => None,
    };
    if v1.is_none() && initial.is_none() {
        return Err(StoreError::Auth {
            uri: shown,
            detail: "no Swift credentials: set ST_AUTH, ST_USER and ST_KEY (v1 \
                     authentication), or OS_AUTH_TOKEN and OS_STORAGE_URL (or \
                     ?endpoint=STORAGE_URL)"
                .into(),
        });
    }
    Ok(SwiftSession {
        v1,
        fixed_storage_url,
        current: tokio::sync::Mutex::new(initial),
    })
}

/// A URL from the environment, checked as a URI's endpoint would be.
fn checked_url(value: &str, variable: &str) -> Result<String, StoreError> {
    validate_endpoint(value).map_err(|reason| StoreError::InvalidUri {
        uri: variable.into(),
        reason: format!("the URL from the environment is invalid: {reason}"),
    })
}

impl SwiftSession {
    /// The credentials to send with, authenticating first if there are none yet.
    async fn credentials(&self, http: &HttpTransporter) -> opendal::Result<Credentials> {
        let mut current = self.current.lock().await;
        if let Some(credentials) = current.as_ref() {
            return Ok(credentials.clone());
        }
        let fresh = self.authenticate(http).await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// New credentials after `refused` was refused (unless another request renewed them
    /// meanwhile, whose result is used). `None` when they cannot be renewed.
    async fn renew(
        &self,
        http: &HttpTransporter,
        refused: &str,
    ) -> Option<opendal::Result<Credentials>> {
        self.v1.as_ref()?;
        let mut current = self.current.lock().await;
        if let Some(credentials) = current.as_ref().filter(|c| c.token != refused) {
            return Some(Ok(credentials.clone()));
        }
        let fresh = self.authenticate(http).await;
        *current = fresh.as_ref().ok().cloned();
        Some(fresh)
    }

    /// Swift v1 authentication: `GET ST_AUTH` with `X-Auth-User` and `X-Auth-Key`, which
    /// answers `X-Auth-Token` and `X-Storage-Url`.
    async fn authenticate(&self, http: &HttpTransporter) -> opendal::Result<Credentials> {
        let Some(v1) = &self.v1 else {
            return Err(opendal::Error::new(
                opendal::ErrorKind::PermissionDenied,
                "the Swift token (OS_AUTH_TOKEN) is missing and there is no v1 \
                 authentication (ST_AUTH) to get one",
            ));
        };
        let request = Request::get(&v1.url)
            .header("X-Auth-User", sensitive(&v1.user)?)
            .header("X-Auth-Key", sensitive(&v1.key)?)
            .body(Buffer::new())
            .map_err(|e| unexpected(format!("cannot build the Swift auth request: {e}")))?;
        let response = http.send(request).await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(opendal::Error::new(
                opendal::ErrorKind::PermissionDenied,
                format!(
                    "Swift v1 authentication at {} refused user `{}` (HTTP {}): check ST_USER \
                     and ST_KEY",
                    v1.url,
                    v1.user,
                    status.as_u16()
                ),
            ));
        }
        if !status.is_success() {
            let error = unexpected(format!(
                "Swift v1 authentication at {} answered HTTP {}",
                v1.url,
                status.as_u16()
            ));
            return Err(if status.is_server_error() {
                error.set_temporary()
            } else {
                error
            });
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let token = header("x-auth-token").or_else(|| header("x-storage-token"));
        let storage_url = self
            .fixed_storage_url
            .clone()
            .or_else(|| header("x-storage-url").map(|url| url.trim_end_matches('/').to_string()));
        match (token, storage_url) {
            (Some(token), Some(storage_url)) => Ok(Credentials { token, storage_url }),
            _ => Err(unexpected(format!(
                "Swift v1 authentication at {} answered without X-Auth-Token or \
                 X-Storage-Url; is ST_AUTH a Swift v1 auth URL?",
                v1.url
            ))),
        }
    }
}

/// A header value that HTTP libraries must not log.
fn sensitive(value: &str) -> opendal::Result<HeaderValue> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        unexpected("a Swift credential has a character not allowed in an HTTP header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

fn unexpected(message: String) -> opendal::Error {
    opendal::Error::new(opendal::ErrorKind::Unexpected, message)
}

/// `req` with its placeholder endpoint replaced by the storage URL and the token set.
fn with_credentials(
    mut req: Request<Buffer>,
    credentials: &Credentials,
) -> opendal::Result<Request<Buffer>> {
    let uri = req.uri().to_string();
    if let Some(rest) = uri.strip_prefix(PLACEHOLDER) {
        let real = format!("{}{rest}", credentials.storage_url);
        *req.uri_mut() = real
            .parse()
            .map_err(|e| unexpected(format!("the Swift storage URL is unusable: {e}")))?;
    }
    req.headers_mut()
        .insert("x-auth-token", sensitive(&credentials.token)?);
    Ok(req)
}

/// The HTTP transport of a Swift store: authentication, URL and token (see the module doc).
pub(crate) struct SwiftAuthTransport {
    inner: HttpTransporter,
    session: Arc<SwiftSession>,
}

impl SwiftAuthTransport {
    /// Sends through `inner` with `session`'s credentials.
    pub(crate) fn new(inner: HttpTransporter, session: Arc<SwiftSession>) -> SwiftAuthTransport {
        SwiftAuthTransport { inner, session }
    }
}

impl HttpTransport for SwiftAuthTransport {
    async fn fetch(&self, req: Request<Buffer>) -> opendal::Result<Response<HttpBody>> {
        let credentials = self.session.credentials(&self.inner).await?;
        // Cheap: the body is a reference-counted buffer.
        let again = req.clone();
        let response = self
            .inner
            .fetch(with_credentials(req, &credentials)?)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        match self.session.renew(&self.inner, &credentials.token).await {
            None => Ok(response),
            Some(renewed) => {
                drop(response);
                let renewed = renewed?;
                self.inner.fetch(with_credentials(again, &renewed)?).await
            }
        }
    }
}

/// What [`SwiftDeleter::delete_large`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LargeDelete {
    /// The large object and its segments are gone (or nothing was there).
    Deleted,
    /// A plain object is there: delete it the ordinary way.
    NotLarge,
}

/// Deletes static large objects with their segments, through a store's authenticated
/// transport.
pub(crate) struct SwiftDeleter {
    http: HttpTransporter,
    container: String,
    /// The store's prefix as OpenDAL puts it before keys: `""` or `prefix/`.
    root: String,
}

impl SwiftDeleter {
    /// A deleter for the store `uri` names, sending through `http` (which must carry the
    /// store's [`SwiftAuthTransport`]).
    pub(crate) fn new(http: HttpTransporter, uri: &StoreUri) -> SwiftDeleter {
        SwiftDeleter {
            http,
            container: uri.bucket().unwrap_or_default().to_string(),
            root: root_of(uri).trim_start_matches('/').to_string(),
        }
    }

    /// `DELETE KEY?multipart-manifest=delete`: removes a large object's manifest and every
    /// segment; Swift refuses it for a plain object, which is [`LargeDelete::NotLarge`].
    pub(crate) async fn delete_large(&self, key: &str) -> opendal::Result<LargeDelete> {
        let path = opendal::raw::percent_encode_path(&format!("{}{key}", self.root));
        let url = format!(
            "{PLACEHOLDER}/{}/{path}?multipart-manifest=delete",
            self.container
        );
        let request = Request::delete(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Buffer::new())
            .map_err(|e| unexpected(format!("cannot build the Swift delete request: {e}")))?;
        let response = self.http.send(request).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(LargeDelete::Deleted);
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(opendal::Error::new(
                opendal::ErrorKind::PermissionDenied,
                format!("Swift refused the delete (HTTP {})", status.as_u16()),
            ));
        }
        if !status.is_success() {
            let error = unexpected(format!("Swift answered the delete with HTTP {status}"));
            return Err(if status.is_server_error() {
                error.set_temporary()
            } else {
                error
            });
        }
        outcome_of(&response.into_body().to_bytes())
    }
}

/// Reads the bulk-style answer of a `multipart-manifest=delete`. A body that is not JSON
/// means the cluster has no SLO middleware and deleted the object plainly.
fn outcome_of(body: &[u8]) -> opendal::Result<LargeDelete> {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(LargeDelete::Deleted);
    };
    let errors = answer["Errors"].as_array().cloned().unwrap_or_default();
    let not_large = errors.iter().any(|e| {
        e[1].as_str()
            .is_some_and(|m| m.contains("Not an SLO manifest"))
    });
    if not_large {
        return Ok(LargeDelete::NotLarge);
    }
    let status = answer["Response Status"].as_str().unwrap_or("");
    if status.starts_with('2') && errors.is_empty() {
        return Ok(LargeDelete::Deleted);
    }
    let error = unexpected(format!(
        "Swift could not delete the large object and its segments: {status} {}",
        serde_json::Value::Array(errors)
    ));
    Err(if status.starts_with('5') {
        error.set_temporary()
    } else {
        error
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(vars: &[(&str, &str)]) -> SwiftOptions {
        SwiftOptions::from_lookup(&|name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn uri(text: &str) -> StoreUri {
        StoreUri::parse(text).unwrap()
    }

    #[test]
    fn requests_get_the_storage_url_and_the_token() {
        let credentials = Credentials {
            token: "AUTH_tk1".into(),
            storage_url: "http://127.0.0.1:8080/v1/AUTH_test".into(),
        };
        let req = Request::put(format!("{PLACEHOLDER}/data/a%20b?multipart-manifest=put"))
            .header("X-Auth-Token", "")
            .body(Buffer::new())
            .unwrap();
        let sent = with_credentials(req, &credentials).unwrap();
        assert_eq!(
            sent.uri().to_string(),
            "http://127.0.0.1:8080/v1/AUTH_test/data/a%20b?multipart-manifest=put"
        );
        let token = sent.headers().get("x-auth-token").unwrap();
        assert_eq!(token, "AUTH_tk1");
        assert!(token.is_sensitive());
    }

    #[test]
    fn large_object_delete_answers_are_read() {
        let large = br#"{"Response Status": "200 OK", "Number Deleted": 3, "Errors": []}"#;
        assert_eq!(outcome_of(large).unwrap(), LargeDelete::Deleted);
        let missing = br#"{"Response Status": "200 OK", "Number Not Found": 1, "Errors": []}"#;
        assert_eq!(outcome_of(missing).unwrap(), LargeDelete::Deleted);
        let plain = br#"{"Response Status": "400 Bad Request", "Errors": [["/c/o", "Not an SLO manifest"]]}"#;
        assert_eq!(outcome_of(plain).unwrap(), LargeDelete::NotLarge);
        let failed =
            br#"{"Response Status": "503 Service Unavailable", "Errors": [["/c/s", "503"]]}"#;
        let err = outcome_of(failed).unwrap_err();
        assert!(err.is_temporary(), "{err}");
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(outcome_of(b"").unwrap(), LargeDelete::Deleted);
    }

    #[test]
    fn missing_credentials_are_named() {
        let none = session_for(&uri("swift://data"), &options(&[])).unwrap_err();
        assert!(
            none.to_string().contains("ST_AUTH, ST_USER and ST_KEY"),
            "{none}"
        );
        assert!(none.to_string().contains("swift://data"), "{none}");
        let half = session_for(
            &uri("swift://data"),
            &options(&[("ST_AUTH", "http://127.0.0.1:1/auth/v1.0")]),
        )
        .unwrap_err();
        assert!(half.to_string().contains("ST_USER or ST_KEY"), "{half}");
        let token_only = session_for(
            &uri("swift://data"),
            &options(&[("OS_AUTH_TOKEN", "AUTH_tkSECRET")]),
        )
        .unwrap_err();
        assert!(!token_only.to_string().contains("SECRET"), "{token_only}");
        let bad = session_for(
            &uri("swift://data"),
            &options(&[("OS_AUTH_TOKEN", "t"), ("OS_STORAGE_URL", "ftp://x")]),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("OS_STORAGE_URL"), "{bad}");
    }

    #[test]
    fn a_token_and_storage_url_need_no_authentication() {
        let session = session_for(
            &uri("swift://data?endpoint=http://127.0.0.1:8080/v1/AUTH_x"),
            &options(&[("OS_AUTH_TOKEN", "AUTH_tkSECRET")]),
        )
        .unwrap();
        let current = session.current.try_lock().unwrap();
        let credentials = current.as_ref().expect("ready without authentication");
        assert_eq!(credentials.storage_url, "http://127.0.0.1:8080/v1/AUTH_x");
        assert!(!format!("{session:?}").contains("SECRET"));
    }
}
