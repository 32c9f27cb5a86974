//! S3 writes and deletes in the service's audit log ([`crate::auth::audit`]), like the
//! native API's: one line per PUT, POST and DELETE reaching the front door, allowed or
//! refused, with the S3 access key id the request was signed with as its actor (never the
//! secret, which a request does not carry), the client's address, the path, the service
//! key and the answer's status. The route is `s3 /{bucket}/{*key}` or `s3 /{bucket}`.

use axum::http::{HeaderMap, Method, Request};
use percent_encoding::percent_decode_str;

use super::front::Buckets;
use crate::auth::audit::AuditEntry;
use crate::auth::AccessControl;
use crate::http::ConnectionInfo;
use crate::state::now_ms;

/// Longest access key id recorded (S3's are 16 to 128 characters).
const MAX_ACCESS_KEY: usize = 128;

/// What the audit line of a request says, gathered before it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audited {
    method: Method,
    path: String,
    route: &'static str,
    key: Option<String>,
    actor: Option<String>,
    client: String,
}

/// The facts of `request` when it is audited (a write or delete), `None` otherwise.
pub fn audited<B>(request: &Request<B>, buckets: &Buckets) -> Option<Audited> {
    let method = request.method().clone();
    if !matches!(method, Method::PUT | Method::POST | Method::DELETE) {
        return None;
    }
    let path = request.uri().path().to_string();
    let decoded = percent_decode_str(path.trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    let (route, key) = match decoded.split_once('/') {
        Some((bucket, key)) if !key.is_empty() => {
            ("s3 /{bucket}/{*key}", buckets.key(bucket, key).ok())
        }
        _ => ("s3 /{bucket}", None),
    };
    let client = request
        .extensions()
        .get::<ConnectionInfo>()
        .map_or_else(|| "unknown".to_string(), |c| c.peer.to_string());
    Some(Audited {
        actor: access_key_id(request.headers(), request.uri().query()),
        method,
        path,
        route,
        key,
        client,
    })
}

/// The access key id a request claims: the `Credential=` of its `Authorization` header,
/// or the `X-Amz-Credential` of a presigned URL; `None` for an unsigned request.
pub fn access_key_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once("Credential="))
        .map(|(_, rest)| rest.to_string());
    let from_query = || {
        query?.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.eq_ignore_ascii_case("X-Amz-Credential")
                .then(|| percent_decode_str(value).decode_utf8_lossy().into_owned())
        })
    };
    let credential = from_header.or_else(from_query)?;
    let id: String = credential
        .split(['/', ',', ' '])
        .next()?
        .chars()
        .take(MAX_ACCESS_KEY)
        .collect();
    (!id.is_empty()).then_some(id)
}

/// Appends the line of `audited`, answered with `status`.
pub fn record(access: &AccessControl, audited: &Audited, status: u16) {
    access.audit().record(&AuditEntry {
        ts_ms: now_ms(),
        token: audited.actor.as_deref(),
        client: audited.client.clone(),
        method: audited.method.as_str(),
        route: audited.route,
        path: &audited.path,
        key: audited.key.as_deref(),
        status,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, authorization: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn writes_are_audited_with_the_access_key_id_and_the_service_key() {
        let buckets = Buckets::new(&["logs".to_string()]);
        let signed = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, \
                      SignedHeaders=host, Signature=abcdef";
        let put = audited(&request("PUT", "/logs/a%20b/c", Some(signed)), &buckets).unwrap();
        assert_eq!(put.actor.as_deref(), Some("AKIDEXAMPLE"));
        assert_eq!(put.key.as_deref(), Some("logs/a b/c"));
        assert_eq!(put.route, "s3 /{bucket}/{*key}");
        assert!(
            !format!("{put:?}").contains("abcdef"),
            "no signature in the line"
        );
        let presigned = request(
            "DELETE",
            "/strata/k?X-Amz-Credential=STRATAabc%2F20260101%2Fus-east-1%2Fs3%2Faws4_request",
            None,
        );
        let delete = audited(&presigned, &buckets).unwrap();
        assert_eq!(delete.actor.as_deref(), Some("STRATAabc"));
        assert_eq!(delete.key.as_deref(), Some("k"));
        let bulk = audited(&request("POST", "/strata?delete", None), &buckets).unwrap();
        assert_eq!(
            (bulk.route, bulk.key, bulk.actor),
            ("s3 /{bucket}", None, None)
        );
        assert!(audited(&request("GET", "/strata/k", Some(signed)), &buckets).is_none());
        // An unknown bucket is still audited, without a key.
        let unknown = audited(&request("PUT", "/nope/k", None), &buckets).unwrap();
        assert_eq!(unknown.key, None);
    }
}
