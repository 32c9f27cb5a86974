//! The S3-compatible front door (`[server] s3_listen`, `strata serve --s3-listen`): the
//! S3 REST API over the same objects as `/v1/objects`.
//!
//! The protocol side (routing, XML in and out, AWS Signature V4 checks, the clock-skew
//! bound, S3's error documents) is the `s3s` crate's; this module owns what the requests
//! mean for Strata:
//!
//! - [`front`]: the operations, each through the service's own object path
//!   ([`crate::objects`]): writes go through the group commit onto the object's tier with
//!   its policy and encryption, reads are verified chunk by chunk, and every read and
//!   write feeds access heat exactly like `/v1/objects`;
//! - [`listing`]: ListObjects(V2) over the in-memory index, with delimiters and
//!   continuation tokens;
//! - [`multipart`]: multipart uploads staged part by part on the data directory's disk,
//!   stitched into one object by streaming;
//! - [`uploads`]: ListMultipartUploads over the staged uploads;
//! - [`etag`]: the MD5 ETags S3 clients expect, computed as bodies stream;
//! - [`meta`]: ETags, `Content-Type` and user metadata kept in the catalog with the
//!   content they describe;
//! - [`cleanup`]: abandoned uploads expired and stale metadata rows removed, at start-up
//!   and periodically;
//! - [`audit`]: writes and deletes in the service's audit log;
//! - [`keys`]: who may sign: the key pair in the service's environment, key pairs bound
//!   to API tokens ([`token_keys`], their scope and prefix enforced) and anonymous access
//!   when `[s3] allow_anonymous` (read-only);
//! - [`errors`]: the service's errors as S3 error codes.
//!
//! Buckets: `strata` holds every key; each `[s3] buckets` entry `NAME` is the key prefix
//! `NAME/` (object `k` in bucket `logs` is the service's key `logs/k`).

pub mod audit;
pub mod cleanup;
pub mod errors;
pub mod etag;
pub mod front;
pub mod keys;
pub mod listing;
pub mod meta;
pub mod multipart;
pub mod token_keys;
pub mod uploads;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ServeError;
use crate::state::AppState;

/// Binds `addr` and serves the front door on it until `stop` turns true, with the API's
/// connection bounds and TLS, once a first cleanup ([`cleanup::sweep`]) is done. Returns
/// the bound address and the serving task.
pub(crate) async fn start(
    state: &Arc<AppState>,
    addr: &str,
    keys: keys::FrontKeys,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<std::io::Result<()>>), ServeError> {
    let refused = |err: std::io::Error| ServeError::Config {
        field: "server.s3_listen".to_string(),
        reason: format!("cannot listen on {addr}: {err}; pick another address with --s3-listen"),
    };
    // A configuration built in code is not checked by the parser.
    if state.config.s3.multipart_expiry < std::time::Duration::from_secs(1) {
        return Err(ServeError::Config {
            field: "s3.multipart_expiry".to_string(),
            reason: "uploads would be removed while their parts arrive; give at least 1s (the \
                     default is 7d)"
                .to_string(),
        });
    }
    let listener = TcpListener::bind(addr).await.map_err(refused)?;
    let bound = listener.local_addr().map_err(refused)?;
    let service = front::service(Arc::clone(state), keys)?;
    let swept = cleanup::sweep(state).await;
    tracing::info!(
        uploads = swept.uploads,
        rows = swept.rows,
        "S3 front door cleaned up"
    );
    let buckets = Arc::new(front::Buckets::new(&state.config.s3.buckets));
    let audit_state = Arc::clone(state);
    let app = Router::new().fallback_service(tower::service_fn(
        move |request: axum::extract::Request| {
            let service = service.clone();
            let audited = audit::audited(&request, &buckets);
            let state = Arc::clone(&audit_state);
            async move {
                let request = request.map(s3s::Body::http_body_unsync);
                let response = match service.call(request).await {
                    Ok(response) => response.map(axum::body::Body::new),
                    Err(err) => {
                        tracing::error!(?err, "the S3 front door failed a request");
                        let mut response = axum::response::Response::new(axum::body::Body::empty());
                        *response.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                        response
                    }
                };
                if let Some(audited) = &audited {
                    audit::record(&state.access, audited, response.status().as_u16());
                }
                Ok::<_, Infallible>(response)
            }
        },
    ));
    let server = tokio::spawn(crate::http::serve(listener, app, state.http, tls, stop));
    tracing::info!(addr = %bound, "S3 front door listening");
    Ok((bound, server))
}
