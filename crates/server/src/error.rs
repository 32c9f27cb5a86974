//! Errors: [`ServeError`] for starting the service (written for the operator, naming the
//! field, store or file), [`ApiError`] for HTTP answers (every error is JSON with a stable
//! code and a message).

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use strata_catalog::CatalogError;
use strata_store::StoreError;

use crate::tier_codec::TierReadError;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration cannot be served (a field and the reason).
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The field, e.g. `tier[2].layout`.
        field: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// A tier's store could not be opened.
    #[error("tier {tier:?}: {source}")]
    Store {
        /// The tier name.
        tier: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The catalog could not be opened or read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; pick another address with --listen")]
    Bind {
        /// The address.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// Recovery after a restart could not finish.
    #[error("recovery after restart failed: {0}")]
    Recovery(String),
}

/// An HTTP error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code clients can match.
    pub code: &'static str,
    /// One sentence for a person.
    pub message: String,
    /// The `Retry-After` of a 503, in whole seconds (`None`: 1).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 with `code`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 503 with `code`: try again later.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> Self {
        tracing::warn!(%err, "catalog error answered to a client");
        if matches!(err, CatalogError::Unreachable { .. }) {
            ApiError::unavailable("catalog_unreachable", err.to_string())
        } else if err.is_transient() {
            ApiError::unavailable("catalog_busy", err.to_string())
        } else {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "catalog_error",
                err.to_string(),
            )
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::warn!(%err, "store error answered to a client");
        match err {
            StoreError::NoSpace { .. } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "tier_full",
                err.to_string(),
            ),
            // The store's own Retry-After (a 429 or 503 that said when), rounded up.
            _ if err.is_retryable() => ApiError {
                retry_after_secs: err.retry_after().map(|d| d.as_secs_f64().ceil() as u64),
                ..ApiError::unavailable("store_unavailable", err.to_string())
            },
            _ => ApiError::new(StatusCode::BAD_GATEWAY, "store_error", err.to_string()),
        }
    }
}

impl From<TierReadError> for ApiError {
    fn from(err: TierReadError) -> Self {
        match err {
            TierReadError::Store(err) => err.into(),
            TierReadError::Damaged(damage) => {
                tracing::error!(%damage, "a damaged copy was not served");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "object_damaged",
                    format!(
                        "{damage}; none of it was served: write the object again (PUT), or \
                         restore objects/{} on tier {} from a backup",
                        damage.key, damage.tier
                    ),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            let secs = self.retry_after_secs.unwrap_or(1).max(1);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Largest plain-text error body [`json_errors`] rewraps (axum's rejections are one line).
const REWRAPPED_MAX: usize = 16 << 10;

/// Middleware: every error answer is JSON. The handlers answer [`ApiError`]s already; this
/// rewraps what answers without one (axum's own rejections: a path segment or a query
/// string that does not parse, a body of the wrong type), keeping their status and
/// headers, with a code from the status and their text as the message.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REWRAPPED_MAX)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error");
    let message = if text.is_empty() {
        format!("{reason}; the API is described at /openapi.json")
    } else {
        format!("{text}; the API is described at /openapi.json")
    };
    let mut rewrapped = ApiError::new(status, code_of(status), message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewrapped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewrapped
}

/// The code of an error answer that came without one.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        _ if status.is_server_error() => "internal",
        _ => "bad_request",
    }
}
