//! The service's errors ([`ApiError`]) as S3 errors: the S3 code a client branches on,
//! with the service's message (which names the key and never a secret).

use axum::http::StatusCode;
use s3s::{S3Error, S3ErrorCode};

use crate::error::ApiError;

/// `err` as the S3 error a client expects for the same failure.
pub fn s3_error(err: ApiError) -> S3Error {
    let code = match (err.status, err.code) {
        (StatusCode::NOT_FOUND, _) => S3ErrorCode::NoSuchKey,
        (StatusCode::PAYLOAD_TOO_LARGE, _) => S3ErrorCode::EntityTooLarge,
        (StatusCode::RANGE_NOT_SATISFIABLE, _) => S3ErrorCode::InvalidRange,
        (StatusCode::FORBIDDEN, _) => S3ErrorCode::AccessDenied,
        (StatusCode::BAD_REQUEST, _) => S3ErrorCode::InvalidArgument,
        (StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS, _) => {
            S3ErrorCode::SlowDown
        }
        (StatusCode::REQUEST_TIMEOUT, _) => S3ErrorCode::RequestTimeout,
        (StatusCode::INSUFFICIENT_STORAGE, _) => S3ErrorCode::ServiceUnavailable,
        _ => S3ErrorCode::InternalError,
    };
    let mut error = S3Error::with_message(code, err.message);
    if let Ok(status) = StatusCode::from_u16(err.status.as_u16()) {
        if err.status.is_server_error() || err.status == StatusCode::TOO_MANY_REQUESTS {
            error.set_status_code(status);
        }
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let missing = s3_error(ApiError::not_found("no object \"a\""));
        assert_eq!(missing.code(), &S3ErrorCode::NoSuchKey);
        assert_eq!(missing.message(), Some("no object \"a\""));
        let large = s3_error(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "x",
        ));
        assert_eq!(large.code(), &S3ErrorCode::EntityTooLarge);
    }
}
