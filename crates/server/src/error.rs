//! Errors: [`ServeError`] for starting the service (written for the operator, naming the
//! field, store or file), [`ApiError`] for HTTP answers (every error is JSON with a stable
//! code and a message).

use axum::http::StatusCode;
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
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
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
        if err.is_transient() {
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
            _ if err.is_retryable() => ApiError::unavailable("store_unavailable", err.to_string()),
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
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
