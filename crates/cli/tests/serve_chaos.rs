//! Chaos controls and request ids through the real `strata serve`: moves ride out injected
//! 503s, 429s, timeouts and latency (retries with backoff); a client GET rides out a few
//! injected errors the same way and, under a store that keeps failing, answers a retryable
//! 503 with the store's `Retry-After`; corruption is caught and never served; rules end by count, by duration and by `strata chaos clear`; bad rules
//! are refused with bodies that say why. Every answer carries an `x-request-id` (the
//! client's when it sends one), every error body and the request's JSON log lines too.

mod serve_common;

use std::io::{Read, Write};
use std::time::Duration;

use serve_common::*;

const WAIT: Duration = Duration::from_secs(90);
const KEY: &str = "chaos/t2m.nc";

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// `strata ARGS --server URL`: exit code, stdout, stderr.
fn run(service: &Service, args: &[&str]) -> (Option<i32>, String, String) {
    let out = service.run(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chaos(service: &Service, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["chaos"];
    all.extend_from_slice(args);
    service.json(&all)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// One request with extra header lines: status, lower-cased headers, body.
fn request(base: &str, method: &str, path: &str, extra: &str, body: &[u8]) -> Answer {
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, response[split + 4..].to_vec())
}

fn get(service: &Service) -> Answer {
    http(&service.url, "GET", &format!("/v1/objects/{KEY}"), b"").unwrap()
}

fn metric(service: &Service, sample: &str) -> f64 {
    let (_, _, body) = http(&service.url, "GET", "/metrics", b"").unwrap();
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{sample} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
}

fn started(extra: &[&str]) -> (tempfile::TempDir, Service) {
    let dir = tempfile::tempdir().unwrap();
    let (config, data_dir) = cooling_config(dir.path(), "");
    let service = Service::start(&config, &data_dir, extra);
    (dir, service)
}

#[test]
fn a_move_rides_out_injected_errors_and_latency_and_logs_json_with_job_and_key() {
    let (_dir, service) = started(&["--log-format", "json", "-v"]);
    let data = content(3 << 20);
    put_and_access(&service.url, KEY, &data);
    // The move's target fails its first calls (503, 429 with Retry-After, a timeout); its
    // source is slow.
    for args in [
        &["inject", "warm", "503", "--count", "2"][..],
        &[
            "inject",
            "warm",
            "429",
            "--retry-after",
            "1s",
            "--count",
            "1",
        ],
        &["inject", "warm", "timeout", "--count", "1"],
        &[
            "inject",
            "hot",
            "latency",
            "--latency",
            "50ms",
            "--count",
            "5",
        ],
    ] {
        let added = chaos(&service, args);
        assert!(added["id"].as_u64().is_some(), "{added}");
    }
    let health = get_json(&service.url, "/healthz");
    assert_eq!(
        health["chaos"].as_array().map(Vec::len),
        Some(2),
        "{health}"
    );

    run_planned_move(&service.url, KEY, WAIT);
    let job = ended_move(&service.url, KEY, WAIT);
    assert_eq!(job["state"], "done", "{job}");
    let (status, _, body) = get(&service);
    assert_eq!(status, 200);
    assert_eq!(body, data);

    for (fault, count) in [("503", 2.0), ("429", 1.0), ("timeout", 1.0)] {
        let sample = format!("strata_chaos_injected_total{{tier=\"warm\",fault=\"{fault}\"}}");
        assert_eq!(metric(&service, &sample), count, "{sample}");
    }
    assert!(
        metric(
            &service,
            "strata_chaos_injected_total{tier=\"hot\",fault=\"latency\"}"
        ) >= 1.0
    );
    assert!(metric(&service, "strata_store_retries_total") >= 1.0);
    // The count rules that were used up are gone.
    let active = chaos(&service, &["list"]);
    let warm_rules: Vec<_> = active["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["tier"] == "warm")
        .collect();
    assert!(warm_rules.is_empty(), "{active}");

    // Log lines are JSON objects, the move's with its job id and key as fields.
    let log = service.kill_and_stderr();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines: {log}");
    let ended = lines
        .iter()
        .find(|l| l["message"] == "move done")
        .unwrap_or_else(|| panic!("no `move done` line: {log}"));
    assert_eq!(
        (&ended["job"], &ended["key"]),
        (&job["id"], &KEY.into()),
        "{ended}"
    );
    // The retries of its copy through the injected errors, inside the move's span.
    let retry = lines
        .iter()
        .find(|l| l["message"] == "retrying a move's copy")
        .unwrap_or_else(|| panic!("no retry line: {log}"));
    assert_eq!(retry["span"]["job"], job["id"], "{retry}");
    assert_eq!(retry["span"]["key"], KEY, "{retry}");
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("chaos rule added"))),
        "{log}"
    );
}

#[test]
fn a_client_get_rides_out_a_few_injected_errors_and_answers_a_retryable_503_beyond() {
    let (_dir, service) = started(&[]);
    let data = content(64 << 10);
    put_and_access(&service.url, KEY, &data);
    // A few faults: the read is retried with backoff and served.
    for args in [
        &[
            "inject",
            "hot",
            "503",
            "--op",
            "read",
            "--retry-after",
            "1s",
            "--count",
            "1",
        ][..],
        &["inject", "hot", "429", "--op", "read", "--count", "1"],
        &["inject", "hot", "timeout", "--op", "read", "--count", "1"],
    ] {
        chaos(&service, args);
        let (status, _, body) = get(&service);
        assert_eq!(status, 200, "{args:?}");
        assert_eq!(body, data, "{args:?}");
    }
    for fault in ["503", "429", "timeout"] {
        let sample = format!("strata_chaos_injected_total{{tier=\"hot\",fault=\"{fault}\"}}");
        assert_eq!(metric(&service, &sample), 1.0, "{sample}");
    }

    // A store that keeps failing: once the retries are spent, a retryable 503 with the
    // store's Retry-After.
    chaos(
        &service,
        &[
            "inject",
            "hot",
            "503",
            "--op",
            "read",
            "--retry-after",
            "2s",
            "--for",
            "1h",
        ],
    );
    let (status, headers, body) = get(&service);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header(&headers, "retry-after"), Some("2"), "{headers:?}");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "store_unavailable", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("503") && message.contains(KEY),
        "{message}"
    );
    // `strata get` says what happened, with the request id to look for in the log.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("copy");
    let (code, _, err) = run(&service, &["get", KEY, "--output", file.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("store_unavailable") && err.contains("request "),
        "{err}"
    );
    assert!(!file.exists());
    // Cleared, the object is served again.
    assert_eq!(chaos(&service, &["clear"])["cleared"], 1);
    let (status, _, body) = get(&service);
    assert_eq!(status, 200);
    assert_eq!(body, data);
}

#[test]
fn injected_corruption_is_detected_and_never_served() {
    let (_dir, service) = started(&[]);
    let data = content(256 << 10);
    put_and_access(&service.url, KEY, &data);
    chaos(&service, &["inject", "hot", "corrupt", "--count", "1"]);
    let (status, _, body) = get(&service);
    assert_eq!(status, 500, "{}", String::from_utf8_lossy(&body));
    let error: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not an error body ({e}): {} bytes", body.len()));
    assert_eq!(error["error"]["code"], "object_damaged", "{error}");
    assert_eq!(
        metric(&service, "strata_read_damage_total{tier=\"hot\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &service,
            "strata_chaos_injected_total{tier=\"hot\",fault=\"corrupt\"}"
        ),
        1.0
    );
    // The copy itself is intact: the next read is served whole.
    let (status, _, body) = get(&service);
    assert_eq!(status, 200);
    assert_eq!(body, data);
}

#[test]
fn rules_end_by_duration_and_by_clear() {
    let (_dir, service) = started(&[]);
    let data = content(4 << 10);
    put_and_access(&service.url, KEY, &data);
    // On `stat`, which reads do not call: the rule is seen in force, then ended.
    chaos(
        &service,
        &["inject", "hot", "503", "--op", "stat", "--for", "1s"],
    );
    let health = get_json(&service.url, "/healthz");
    let rule = &health["chaos"][0]["rules"][0];
    assert_eq!(rule["fault"], "503", "{health}");
    assert_eq!(rule["op"], "stat", "{health}");
    assert!(rule["remaining"].is_null() && rule["expires_in_ms"].as_u64().unwrap() <= 1000);
    eventually(WAIT, "the rule to expire", || {
        chaos(&service, &["list"])["tiers"]
            .as_array()?
            .is_empty()
            .then_some(())
    });
    assert_eq!(get(&service).0, 200);
    assert_eq!(metric(&service, "strata_chaos_rules{tier=\"hot\"}"), 0.0);

    chaos(
        &service,
        &["inject", "hot", "503", "--op", "read", "--for", "1h"],
    );
    chaos(
        &service,
        &[
            "inject",
            "warm",
            "latency",
            "--latency",
            "1ms",
            "--count",
            "100",
        ],
    );
    let (status, headers, _) = get(&service);
    assert_eq!(status, 503);
    assert_eq!(header(&headers, "retry-after"), Some("1"), "{headers:?}");
    assert_eq!(metric(&service, "strata_chaos_rules{tier=\"hot\"}"), 1.0);
    let (code, text, _) = run(&service, &["chaos", "list"]);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("hot") && text.contains("warm") && text.contains("503"),
        "{text}"
    );
    assert_eq!(chaos(&service, &["clear", "hot"])["cleared"], 1);
    assert_eq!(get(&service).0, 200);
    assert_eq!(chaos(&service, &["clear"])["cleared"], 1);
    let health = get_json(&service.url, "/healthz");
    assert_eq!(health["chaos"], serde_json::json!([]), "{health}");
}

#[test]
fn bad_chaos_requests_are_refused_with_bodies_that_say_why() {
    let (_dir, service) = started(&[]);
    for (body, code, says) in [
        (
            r#"{"tier":"lukewarm","fault":"503","count":1}"#,
            "unknown_tier",
            "hot, warm, cold",
        ),
        (
            r#"{"tier":"hot","fault":"503"}"#,
            "bad_chaos_rule",
            "needs an end",
        ),
        (
            r#"{"tier":"hot","fault":"502","count":1}"#,
            "bad_chaos_rule",
            "unknown fault `502`",
        ),
        (
            r#"{"tier":"hot","fault":"latency","latency":"soon","count":1}"#,
            "bad_chaos_rule",
            "soon",
        ),
        ("{", "bad_chaos_rule", "not valid"),
    ] {
        let (status, headers, answer) =
            http(&service.url, "POST", "/v1/chaos", body.as_bytes()).unwrap();
        assert_eq!(status, 400, "{body}");
        let error: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
        assert_eq!(
            error["error"]["request_id"].as_str(),
            header(&headers, "x-request-id"),
            "{headers:?}"
        );
    }
    let (status, _, answer) = http(&service.url, "DELETE", "/v1/chaos?tier=nope", b"").unwrap();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
    // The CLI refuses a fault it does not know before asking the service.
    let (code, _, err) = run(&service, &["chaos", "inject", "hot", "500", "--count", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("latency") && err.contains("corrupt"), "{err}");
    assert!(get_json(&service.url, "/healthz")["chaos"]
        .as_array()
        .unwrap()
        .is_empty());
    // A service that is not there: a clear error naming the URL, nothing else.
    let out = strata()
        .args(["chaos", "clear", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot reach the Strata service at http://127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn every_answer_has_a_request_id_and_errors_and_log_lines_carry_it() {
    let (_dir, service) = started(&["--log-format", "json", "-v"]);
    // The client's id is honoured, in the header, the error body and the log line.
    let (status, headers, body) = request(
        &service.url,
        "GET",
        "/v1/objects/no/such/key",
        "x-request-id: drill-42\r\n",
        b"",
    );
    assert_eq!(status, 404);
    assert_eq!(header(&headers, "x-request-id"), Some("drill-42"));
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["request_id"], "drill-42", "{error}");
    // Without one (or with an unusable one), a fresh id in both places.
    for extra in ["", "x-request-id: has space\r\n"] {
        let (status, headers, body) = request(&service.url, "GET", "/v1/nothing", extra, b"");
        assert_eq!(status, 404);
        let id = header(&headers, "x-request-id").unwrap().to_string();
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["error"]["request_id"], id.as_str());
    }
    // Successful answers carry one too.
    let (status, headers, _) = request(&service.url, "GET", "/healthz", "", b"");
    assert_eq!(status, 200);
    assert!(header(&headers, "x-request-id").is_some(), "{headers:?}");

    let log = service.kill_and_stderr();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["span"]["request_id"] == "drill-42")
        .unwrap_or_else(|| panic!("no log line with request_id drill-42: {log}"));
    assert_eq!(line["status"], 404, "{line}");
    assert_eq!(line["span"]["path"], "/v1/objects/no/such/key", "{line}");
}
