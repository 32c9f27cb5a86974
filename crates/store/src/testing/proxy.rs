//! A fault-injecting reverse proxy (axum) in front of moto, on loopback, for the store's
//! and the service's tests: it answers chosen
//! requests with an error status and headers (429/503 with `Retry-After`, 403), before or
//! after forwarding them (a write that happened but is reported failed), can hold a
//! request's answer until the test releases it (to interleave a service call with a store
//! request deterministically), forwards everything else, and records when each request
//! arrived.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::sync::watch;

/// Answers the next `remaining` requests of `method` whose path contains `path` with
/// `status`, `headers` and `body` instead of forwarding them.
#[derive(Clone, Debug)]
pub struct Fault {
    /// HTTP method to match.
    pub method: &'static str,
    /// Substring of the path and query to match.
    pub path: String,
    /// Matching requests still to answer with the fault.
    pub remaining: usize,
    /// The status to answer.
    pub status: u16,
    /// Headers of the answer.
    pub headers: Vec<(String, String)>,
    /// Body of the answer.
    pub body: String,
    /// Forward the request first (its effect happens), then answer with the fault.
    pub forward: bool,
}

impl Fault {
    /// A fault for the next `remaining` requests of `method` on a path containing `path`.
    pub fn new(method: &'static str, path: &str, remaining: usize, status: u16) -> Fault {
        Fault {
            method,
            path: path.to_string(),
            remaining,
            status,
            headers: Vec::new(),
            body: String::new(),
            forward: false,
        }
    }

    /// The request reaches the store (and takes effect); the client gets the fault anyway.
    pub fn after_forwarding(mut self) -> Fault {
        self.forward = true;
        self
    }

    /// Adds a header to the answer.
    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// An S3 XML error body.
    pub fn s3(mut self, code: &str, message: &str) -> Fault {
        self.body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{message}</Message><RequestId>test</RequestId></Error>"
        );
        self.header("Content-Type", "application/xml")
    }
}

/// Forwards the next request of `method` whose path contains `path`, then holds its
/// answer until [`Proxy::release`].
#[derive(Debug)]
struct Hold {
    method: &'static str,
    path: String,
    armed: bool,
}

/// One request the proxy received.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// When it arrived.
    pub at: Instant,
    /// Its method.
    pub method: String,
    /// Its path and query.
    pub path: String,
    /// The fault's status, or `None` when forwarded.
    pub faulted: Option<u16>,
    /// Whether the answer was held.
    pub held: bool,
    /// The upstream's status, once it answered a forwarded request.
    pub forwarded: Option<u16>,
    /// The status the client got, once answered.
    pub answered: Option<u16>,
}

#[derive(Default)]
struct Shared {
    faults: Vec<Fault>,
    holds: Vec<Hold>,
    log: Vec<Arrival>,
}

struct Inner {
    upstream: String,
    client: reqwest::Client,
    shared: Mutex<Shared>,
    release: watch::Sender<bool>,
}

/// The proxy; it serves until the test's runtime ends.
#[derive(Clone)]
pub struct Proxy {
    /// The loopback port it listens on.
    pub port: u16,
    inner: Arc<Inner>,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test proxy on loopback");
        let port = listener.local_addr().expect("test proxy address").port();
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("test proxy HTTP client"),
            shared: Mutex::new(Shared::default()),
            release: watch::channel(false).0,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy { port, inner }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds a fault (faults are matched in the order they were added).
    pub fn inject(&self, fault: Fault) {
        self.inner.shared.lock().unwrap().faults.push(fault);
    }

    /// Holds the answer of the next matching request (forwarded first) until
    /// [`Proxy::release`].
    pub fn hold(&self, method: &'static str, path: &str) {
        self.inner.shared.lock().unwrap().holds.push(Hold {
            method,
            path: path.to_string(),
            armed: true,
        });
    }

    /// Lets every held answer go (and any later one that matches a hold).
    pub fn release(&self) {
        let _ = self.inner.release.send(true);
    }

    /// Requests of `method` whose path contains `path`, in arrival order.
    pub fn arrivals(&self, method: &str, path: &str) -> Vec<Arrival> {
        let shared = self.inner.shared.lock().unwrap();
        shared
            .log
            .iter()
            .filter(|a| a.method == method && a.path.contains(path))
            .cloned()
            .collect()
    }

    /// Waits until a request of `method` on `path` satisfies `check`.
    pub async fn wait_for(
        &self,
        method: &str,
        path: &str,
        what: &str,
        check: impl Fn(&Arrival) -> bool,
    ) -> Arrival {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(a) = self.arrivals(method, path).into_iter().find(|a| check(a)) {
                return a;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Request headers the proxy does not pass on (the client sets them for its own connection).
const NOT_FORWARDED: [&str; 5] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
];

/// Answer headers not passed back (`Content-Length` is: a HEAD answer's says the size).
const NOT_RETURNED: [&str; 3] = ["connection", "keep-alive", "transfer-encoding"];

async fn handle(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let method = request.method().as_str().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let (index, fault, held) = {
        let mut shared = inner.shared.lock().unwrap();
        let fault = shared
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && f.method == method && path.contains(&f.path))
            .map(|f| {
                f.remaining -= 1;
                f.clone()
            });
        let held = fault.is_none()
            && shared
                .holds
                .iter_mut()
                .find(|h| h.armed && h.method == method && path.contains(&h.path))
                .map(|h| h.armed = false)
                .is_some();
        shared.log.push(Arrival {
            at: Instant::now(),
            method: method.clone(),
            path: path.clone(),
            faulted: fault.as_ref().map(|f| f.status),
            held,
            forwarded: None,
            answered: None,
        });
        (shared.log.len() - 1, fault, held)
    };
    let response = match fault {
        Some(fault) => {
            if fault.forward {
                let upstream = forward(&inner, parts.method, &path, &parts.headers, body).await;
                inner.shared.lock().unwrap().log[index].forwarded =
                    Some(upstream.status().as_u16());
            }
            let mut response = Response::new(Body::from(fault.body.clone()));
            *response.status_mut() = StatusCode::from_u16(fault.status).unwrap();
            for (name, value) in &fault.headers {
                response.headers_mut().insert(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            response
        }
        None => {
            let response = forward(&inner, parts.method, &path, &parts.headers, body).await;
            inner.shared.lock().unwrap().log[index].forwarded = Some(response.status().as_u16());
            response
        }
    };
    if held {
        let mut release = inner.release.subscribe();
        let _ = release.wait_for(|go| *go).await;
    }
    inner.shared.lock().unwrap().log[index].answered = Some(response.status().as_u16());
    response
}

async fn forward(
    inner: &Inner,
    method: axum::http::Method,
    path: &str,
    headers: &HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let mut outgoing = HeaderMap::new();
    for (name, value) in headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            outgoing.append(name.clone(), value.clone());
        }
    }
    let sent = inner
        .client
        .request(method, format!("{}{path}", inner.upstream))
        .headers(outgoing)
        .body(body)
        .send()
        .await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(err) => {
            let mut response = Response::new(Body::from(format!("proxy: {err}")));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            return response;
        }
    };
    let status = upstream.status();
    let mut headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if !NOT_RETURNED.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    let body = upstream.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
