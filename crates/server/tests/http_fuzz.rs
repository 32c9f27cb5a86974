//! Randomised HTTP requests against a running service (the HTTP target of issue 15's fuzzed
//! inputs; the byte-level parsers' targets are in crates/fuzz): every route with random
//! methods, keys, queries, headers and bodies, and plain random bytes. The service must
//! answer each request it can read with a status below 500 (or close a connection it
//! cannot read), and still answer `/healthz` after all of them. `PROPTEST_CASES` sets the
//! number of requests of each kind (256 by default).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A safety net: a request the service never answers fails the test instead of hanging it.
const HANG: Duration = Duration::from_secs(60);

/// Route templates; `{k}` is replaced by a random key or id. `/v1/events` (a stream that
/// stays open) and `/v1/model/train` (a training run) are left out.
const PATHS: &[&str] = &[
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/v1/objects",
    "/v1/objects/{k}",
    "/v1/access-events",
    "/v1/tiers",
    "/v1/jobs",
    "/v1/jobs/{k}",
    "/v1/jobs/{k}/cancel",
    "/v1/jobs/{k}/retry",
    "/v1/plan",
    "/v1/scrub",
    "/v1/keys/rotate",
    "/v1/explain/{k}",
    "/v1/predictions/{k}",
    "/{k}",
    "/v1/{k}",
];

const METHODS: &[&str] = &[
    "GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "BREW",
];

/// Pieces keys are made of: ordinary names, traversal, encodings, separators, non-ASCII.
fn key_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._-]{1,12}",
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2F".to_string()),
        Just("%00".to_string()),
        Just("%ff%fe".to_string()),
        Just("ü€".to_string()),
        "%[0-9a-fA-F]{2}",
        "[!$&'()*+,;=:@]{1,4}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(key_piece(), 1..6).prop_map(|pieces| pieces.join("/"))
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\?[a-z_]{1,10}=[a-zA-Z0-9%._-]{0,12}",
        "\\?(prefix|limit|after|tier|state|class)=[a-zA-Z0-9%/._-]{0,20}(&[a-z]{1,6}=[0-9-]{0,6}){0,3}",
    ]
}

fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        "Range: bytes=[0-9]{0,6}-[0-9]{0,6}",
        "Range: [a-z=,0-9-]{0,20}",
        "Content-Type: [a-z/+;= -]{0,30}",
        "If-None-Match: \"[0-9a-f]{0,16}\"",
        "If-Match: [\"*0-9a-f]{0,10}",
        "Accept: [a-z/*;=.0-9, ]{0,20}",
        "X-[A-Za-z-]{1,10}: [ -~]{0,30}",
        "Expect: 100-continue",
    ]
}

/// One well-framed request: method, path, headers, body (with its true length).
fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(METHODS),
        prop::sample::select(PATHS),
        key(),
        query(),
        prop::collection::vec(header(), 0..4),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            "(\\{\"key\":\"[a-z/]{0,8}\",\"op\":\"(read|write|x)\",\"ts\":-?[0-9]{0,14}\\}\n){0,4}"
                .prop_map(String::into_bytes),
        ],
    )
        .prop_map(|(method, path, key, query, headers, body)| {
            let mut text = format!(
                "{method} {}{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                path.replace("{k}", &key)
            );
            for header in headers {
                text.push_str(&header);
                text.push_str("\r\n");
            }
            text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let mut out = text.into_bytes();
            out.extend(body);
            out
        })
}

/// Bytes that are HTTP only by accident: garbage, a request line cut short, bad framing.
fn malformed() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..512),
        "[A-Z]{1,8} /[ -~]{0,40} HTTP/[0-9.]{1,4}\r\n([A-Za-z-]{0,10}:[ -~]{0,20}\r\n){0,4}\r\n"
            .prop_map(String::into_bytes),
        "PUT /v1/objects/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n[0-9a-fA-F]{1,4}\r\n[a-z]{0,20}\r\n(0\r\n\r\n)?"
            .prop_map(String::into_bytes),
        "POST /v1/access-events HTTP/1.1\r\nHost: localhost\r\nContent-Length: [0-9]{1,12}\r\n\r\n[ -~]{0,30}"
            .prop_map(String::into_bytes),
    ]
}

/// Sends `request`, closes the writing half, and returns the status answered (None: the
/// service closed the connection without an answer).
fn exchange(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).expect("the service accepts connections");
    stream.set_read_timeout(Some(HANG)).unwrap();
    // The service may answer and close before reading it all: a broken pipe is fine.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
        Err(err) => panic!("no answer within {HANG:?} ({err}) to {request:?}"),
    }
    let text = String::from_utf8_lossy(&response);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    })
}

fn assert_no_server_error(addr: SocketAddr, request: &[u8]) -> Result<(), TestCaseError> {
    if let Some(status) = exchange(addr, request) {
        prop_assert!(
            status < 500,
            "status {} for {}",
            status,
            String::from_utf8_lossy(request)
        );
    }
    Ok(())
}

#[test]
fn random_requests_never_get_a_server_error_and_the_service_stays_up() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(start(TEST_RULES));
    let addr = server.addr;
    runner()
        .run(&request(), |request| assert_no_server_error(addr, &request))
        .unwrap();
    runner()
        .run(&malformed(), |request| {
            assert_no_server_error(addr, &request)
        })
        .unwrap();
    let (status, body) = raw(addr, "GET", "/healthz");
    assert_eq!(status, 200, "{body}");
    drop(server);
}
