//! Request ids: every request gets one, the client's own `x-request-id` when it sends a
//! usable one, else a fresh random id. The id is
//!
//! - a field (`request_id`) of the request's span, so every log line written while the
//!   request runs (a store error answered to the client, a denied token) carries it;
//! - the `x-request-id` header of every answer;
//! - `error.request_id` in the JSON body of every error answer, so a user who pastes an
//!   error into a report gives the operator the id to find its log lines with.
//!
//! The middleware is the router's outermost layer: it sees the JSON of every error answer,
//! including those [`crate::error::json_errors`] rewraps.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client id honoured; a longer one is replaced (it would bloat every log line).
const MAX_CLIENT_ID: usize = 128;

/// Largest error body the id is added to (error answers are a line or two of JSON).
const MAX_ERROR_BODY: usize = 64 << 10;

/// The request's id, in its extensions for handlers that want it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Middleware: gives the request its id, runs it inside a span carrying the id, and puts
/// the id on the answer (header, and error body).
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = client_id(&request).unwrap_or_else(fresh_id);
    request.extensions_mut().insert(RequestId(id.clone()));
    // At error level, so the span is enabled whatever the filter lets through: a warning
    // logged at the default level (`warn`) still carries the request's id.
    let span = tracing::error_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let mut response = if status.is_client_error() || status.is_server_error() {
        span.in_scope(|| tracing::info!(status = status.as_u16(), "error answered"));
        with_id_in_body(response, &id).await
    } else {
        response
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The client's `x-request-id`, when it is short, printable ASCII without spaces (it goes
/// into log lines and headers as it is).
fn client_id(request: &Request) -> Option<String> {
    let value = request.headers().get(&REQUEST_ID_HEADER)?.to_str().ok()?;
    let usable = !value.is_empty()
        && value.len() <= MAX_CLIENT_ID
        && value.bytes().all(|b| b.is_ascii_graphic());
    usable.then(|| value.to_string())
}

/// 16 random hex digits.
fn fresh_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The error answer with `request_id` added to its `error` object (JSON answers only; the
/// header carries the id in any case).
async fn with_id_in_body(response: Response, id: &str) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut value) => match value.get_mut("error").and_then(|e| e.as_object_mut()) {
            Some(error) => {
                error.insert("request_id".into(), id.into());
                serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec())
            }
            None => bytes.to_vec(),
        },
        Err(_) => bytes.to_vec(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(id: Option<&str>) -> Request {
        let mut builder = Request::builder().uri("/v1/tiers");
        if let Some(id) = id {
            builder = builder.header("x-request-id", id);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn a_usable_client_id_is_kept_and_others_replaced() {
        assert_eq!(
            client_id(&request_with(Some("abc-123"))).as_deref(),
            Some("abc-123")
        );
        assert_eq!(client_id(&request_with(Some("has space"))), None);
        assert_eq!(client_id(&request_with(Some(&"x".repeat(129)))), None);
        assert_eq!(client_id(&request_with(None)), None);
    }

    #[test]
    fn fresh_ids_are_sixteen_hex_digits() {
        let id = fresh_id();
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
