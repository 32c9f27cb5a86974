//! The connection layer under the router, and the one way request bodies are read.
//!
//! A client must not be able to hold the service with requests it never finishes:
//!
//! - **connections are bounded** ([`HttpLimits::max_connections`]): the accept loop takes a
//!   permit before it accepts, so connections beyond the bound wait in the listen backlog
//!   until one closes (nothing is refused, nothing is served beyond the bound);
//! - **headers must arrive in time** ([`HttpLimits::header_timeout`], hyper's header read
//!   timeout): a connection whose request head is not complete within it is closed. The
//!   same clock runs while a kept-alive connection waits for its next request, so idle
//!   connections give their permit back too;
//! - **bodies must keep coming** ([`HttpLimits::body_timeout`]): [`read_body`] answers 408
//!   when no byte of the body arrives for that long;
//! - **bodies are bounded before they are read**: [`read_body`] refuses a declared
//!   `Content-Length` above the route's limit with 413 at once, and a body without one as
//!   soon as it passes the limit.
//!
//! It also terminates TLS when the service has a certificate ([`crate::tls`]: the handshake
//! must finish within the header timeout too), and tells each request which connection it
//! came on ([`ConnectionInfo`]: the client's address for logs, the local address for the
//! Host check).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Bounds on connections and on how long a request may take to arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest wait for a request's head (request line and headers), and for the next
    /// request on an idle kept-alive connection; then the connection is closed.
    pub header_timeout: Duration,
    /// Longest pause while a request body arrives; then the request is answered 408.
    pub body_timeout: Duration,
    /// Connections served at once; more wait until one closes.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    /// 30 s for headers and for each pause in a body, 512 connections (under the common
    /// default of 1024 open files, which tiers and the catalog share).
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

/// How long the accept loop pauses after an error that is not one connection's (too many
/// open files, for one), so that it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The connection a request came on, in each request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The service's address the client connected to.
    pub local: SocketAddr,
}

/// Serves `app` on `listener` within `limits` (over TLS with `tls`) until `stop` turns
/// true; then stops accepting, lets every connection finish its request in flight, and
/// returns.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit,
            _ = stopped(&mut stop) => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let info = ConnectionInfo {
                    peer,
                    local: stream.local_addr().unwrap_or(peer),
                };
                let app = app.clone();
                let builder = builder.clone();
                let stop = stop.clone();
                let tls = tls.clone();
                let handshake = limits.header_timeout;
                tokio::spawn(async move {
                    match tls {
                        None => connection(stream, info, app, builder, stop).await,
                        Some(tls) => {
                            let accepted =
                                tokio::time::timeout(handshake, tls.accept(stream)).await;
                            match accepted {
                                Ok(Ok(stream)) => {
                                    connection(stream, info, app, builder, stop).await;
                                }
                                Ok(Err(err)) => {
                                    tracing::debug!(%err, client = %peer, "TLS handshake failed");
                                }
                                Err(_) => {
                                    tracing::debug!(client = %peer, "TLS handshake timed out");
                                }
                            }
                        }
                    }
                    drop::<OwnedSemaphorePermit>(permit);
                });
            }
            Err(err) if is_connection_error(&err) => {}
            Err(err) => {
                tracing::warn!(%err, "cannot accept a connection; retrying");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
    drop(listener);
    // Every permit back: every connection has finished.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

/// One connection, to its end (or to the end of its request in flight once `stop` turns
/// true). The socket is closed when this returns.
async fn connection<S>(
    stream: S,
    info: ConnectionInfo,
    app: Router,
    builder: hyper::server::conn::http1::Builder,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = tower::ServiceExt::map_request(app, move |mut request: axum::extract::Request<_>| {
        request.extensions_mut().insert(info);
        request
    });
    let service = TowerToHyperService::new(app);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        // Clients that go away, and the header timeout, end here: not the service's fault.
        tracing::debug!(%err, "connection ended with an error");
    }
}

/// Completes when `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here: it must not live across an await.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Errors of one connection that the accept loop steps over.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Largest buffer reserved up front from a declared length: a client cannot make the
/// service allocate a whole object's worth of memory by only announcing it.
const MAX_PREALLOCATION: u64 = 8 << 20;

/// Reads a request body of at most `limit` bytes, whole, under the rules of
/// [`BodyReader`]. `what` names the body in the messages (`object "a/b"`, `access-event
/// batch`).
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
    timeout: Duration,
    what: &str,
) -> Result<Bytes, ApiError> {
    let mut reader = BodyReader::new(headers, body, limit, timeout, what)?;
    let reserve = reader.declared().unwrap_or(0).min(MAX_PREALLOCATION);
    let mut buffer = BytesMut::with_capacity(usize::try_from(reserve).unwrap_or(0));
    while let Some(piece) = reader.next().await? {
        buffer.extend_from_slice(&piece);
    }
    Ok(buffer.freeze())
}

/// A request body read piece by piece, as it arrives (an object streamed to its tier): a
/// declared `Content-Length` above `limit` is answered 413 before any byte is read
/// ([`BodyReader::new`]); a body without one, as soon as it passes the limit; a body
/// during which nothing arrives for `timeout`, 408; a body the client breaks off, 400.
pub struct BodyReader {
    stream: axum::body::BodyDataStream,
    declared: Option<u64>,
    limit: u64,
    timeout: Duration,
    what: String,
    received: u64,
}

impl BodyReader {
    /// A reader of `body`; refused with 413 when its declared length is over `limit`.
    pub fn new(
        headers: &HeaderMap,
        body: Body,
        limit: u64,
        timeout: Duration,
        what: &str,
    ) -> Result<BodyReader, ApiError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.parse::<u64>().ok());
        if let Some(declared) = declared.filter(|&declared| declared > limit) {
            return Err(too_large(what, limit, Some(declared)));
        }
        Ok(BodyReader {
            stream: body.into_data_stream(),
            declared,
            limit,
            timeout,
            what: what.to_string(),
            received: 0,
        })
    }

    /// The body's declared length, if it has one.
    pub fn declared(&self) -> Option<u64> {
        self.declared
    }

    /// The body's limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The next piece of the body, or `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        let what = &self.what;
        let received = self.received;
        let next = tokio::time::timeout(self.timeout, self.stream.next())
            .await
            .map_err(|_| timed_out(what, self.timeout, received))?;
        match next {
            None => Ok(None),
            Some(Err(err)) => Err(ApiError::bad_request(
                "unreadable_body",
                format!(
                    "the {what} could not be read after {received} bytes: {err}; send it again"
                ),
            )),
            Some(Ok(piece)) => {
                self.received += piece.len() as u64;
                if self.received > self.limit {
                    return Err(too_large(what, self.limit, None));
                }
                Ok(Some(piece))
            }
        }
    }
}

/// 413 for a body over `limit`: `declared` is its announced length, when it had one.
fn too_large(what: &str, limit: u64, declared: Option<u64>) -> ApiError {
    let size = match declared {
        Some(declared) => format!("{declared} bytes, more than"),
        None => "larger than".to_string(),
    };
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "the {what} is {size} the limit of {limit} bytes (the service's \
             --max-object-size or --max-batch-size); nothing was stored"
        ),
    )
}

fn timed_out(what: &str, timeout: Duration, received: u64) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "nothing of the {what} arrived for {} s after {received} bytes, so the request \
             was dropped and nothing was stored; send the whole body without pausing (the \
             service's --body-timeout)",
            timeout.as_secs_f64()
        ),
    )
}
