//! The HTTP surface under hostile but fair clients: bodies over the limit refused before
//! they are sent, half-sent requests dropped after their timeout, connections bounded,
//! keys checked against the documented limits, and every error the service controls
//! answered as JSON.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use strata_server::{HttpLimits, Limits, RunningServer, ServeOptions};

/// A safety net for reads that must be answered: a hang fails the test instead of
/// blocking it. Never an expected duration.
const HANG: Duration = Duration::from_secs(60);

async fn start_limited(limits: Limits, http: HttpLimits) -> (tempfile::TempDir, RunningServer) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = ServeOptions::new(config(dir.path(), TEST_RULES));
    options.limits = limits;
    options.http = http;
    let server = strata_server::start(options).await.unwrap();
    (dir, server)
}

/// Connects, sends `request` as it is, and returns the stream.
fn send(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream.write_all(request).unwrap();
    stream
}

/// Reads one answer (the server closes the connection after it, or `Connection: close`
/// asked it to): status and body.
fn answer(stream: &mut TcpStream) -> (u16, String) {
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        // A reset after the answer (the client's unread body) still leaves the answer.
        Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
        Err(err) => panic!("no answer: {err}"),
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn error_code(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body}"));
    json["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether the server has closed `stream` (without waiting).
fn closed_by_server(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed = match (&*stream).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => err.kind() != ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_bodies_over_the_limit_are_refused_before_they_are_sent() {
    let limits = Limits {
        max_object_size: 1000,
        max_batch_bytes: 500,
    };
    let (_dir, server) = start_limited(limits, HttpLimits::default()).await;
    let addr = server.addr;
    let answers = tokio::task::spawn_blocking(move || {
        // Headers only: the body is never sent, so only a refusal that does not wait
        // for it can answer.
        let mut object = send(
            addr,
            b"PUT /v1/objects/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1001\r\n\r\n",
        );
        let mut batch = send(
            addr,
            b"POST /v1/access-events HTTP/1.1\r\nHost: localhost\r\nContent-Length: 501\r\n\r\n",
        );
        (answer(&mut object), answer(&mut batch))
    })
    .await
    .unwrap();
    let ((status, body), (batch_status, batch_body)) = answers;
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_code(&body), "payload_too_large");
    assert!(
        body.contains("1001 bytes") && body.contains("1000"),
        "{body}"
    );
    assert!(body.contains("\\\"big\\\""), "names the key: {body}");
    assert_eq!(batch_status, 413, "{batch_body}");
    assert_eq!(error_code(&batch_body), "payload_too_large");

    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/objects/big");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 404);
    // A body within the limit is stored.
    let put = client.put(&url).body(vec![7u8; 1000]).send().await.unwrap();
    assert_eq!(put.status(), 201);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_bodies_are_answered_408_after_the_body_timeout() {
    let http = HttpLimits {
        body_timeout: Duration::from_millis(500),
        ..HttpLimits::default()
    };
    let (_dir, server) = start_limited(Limits::default(), http).await;
    let addr = server.addr;
    let (status, body) = tokio::task::spawn_blocking(move || {
        let mut stream = send(
            addr,
            b"PUT /v1/objects/half HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789",
        );
        answer(&mut stream)
    })
    .await
    .unwrap();
    assert_eq!(status, 408, "{body}");
    assert_eq!(error_code(&body), "request_timeout");
    assert!(
        body.contains("\\\"half\\\"") && body.contains("10 bytes"),
        "{body}"
    );
    let response = reqwest::get(format!("http://{addr}/v1/objects/half"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "nothing was stored");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_bound_wait_and_half_sent_heads_are_closed() {
    let http = HttpLimits {
        header_timeout: Duration::from_secs(2),
        max_connections: 2,
        ..HttpLimits::default()
    };
    let (_dir, server) = start_limited(Limits::default(), http).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // Two connections that never finish their request head hold both places.
        let half = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n";
        let first = send(addr, half);
        let second = send(addr, half);
        // A third, complete request is served only once one of them is closed by the
        // header timeout: never while both are open.
        let mut third = send(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        let (status, body) = answer(&mut third);
        assert_eq!(status, 200, "{body}");
        assert!(
            closed_by_server(&first) || closed_by_server(&second),
            "the third connection was served while the two others were still open"
        );
        // Both half-sent requests are closed by the server, without an answer.
        for mut stream in [first, second] {
            let mut rest = Vec::new();
            match stream.read_to_end(&mut rest) {
                Ok(_) => assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 408")),
                Err(err) => assert_ne!(err.kind(), ErrorKind::WouldBlock, "still open"),
            }
        }
    })
    .await
    .unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_beyond_the_documented_limits_are_refused_with_400() {
    let server = start(TEST_RULES).await;
    let long_segment = format!("dir/{}", "s".repeat(256));
    let long_key = vec!["k".repeat(100); 11].join("/");
    assert!(long_key.len() > 1024);
    for (key, needle) in [
        (long_segment.as_str(), "255"),
        (long_key.as_str(), "1024"),
        ("a%01b", "control character"),
        ("tab%09key", "control character"),
    ] {
        let response = server.put(key, b"x").await;
        assert_eq!(response.status(), 400, "{key}");
        let json = response.json_value().await;
        assert_eq!(json["error"]["code"], "invalid_key", "{key}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{key}: {message}");
    }
    // At the limits, keys are stored and read back.
    let longest_segment = format!("dir/{}", "s".repeat(255));
    let longest_key = format!(
        "{}/{}/{}",
        vec!["k".repeat(255); 3].join("/"),
        "v".repeat(200),
        "w".repeat(55)
    );
    assert_eq!(longest_key.len(), 1024);
    for key in [&longest_segment, &longest_key] {
        assert_eq!(server.put(key, b"at the limit").await.status(), 201);
        assert_eq!(server.object(key).await, b"at the limit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_the_service_controls_answer_json() {
    let server = start(TEST_RULES).await;
    for (method, path, status) in [
        ("GET", "/v1/jobs/notanumber", 400),
        ("POST", "/v1/jobs/notanumber/cancel", 400),
        ("GET", "/v1/objects?limit=many", 400),
        ("GET", "/v1/objects?heat=maybe", 400),
        ("GET", "/v1/jobs?limit=-1", 400),
        ("DELETE", "/v1/tiers", 405),
        ("GET", "/v1/nothing/here", 404),
        ("PUT", "/v1/objects/%FF%FE", 400),
    ] {
        let (got, body) = raw(server.addr, method, path);
        assert_eq!(got, status, "{method} {path}: {body}");
        let code = error_code(&body);
        assert!(!code.is_empty(), "{method} {path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{method} {path}: {body}"
        );
    }
}
