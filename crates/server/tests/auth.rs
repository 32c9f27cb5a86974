//! Authentication and transport on an in-process service: every scope against every route
//! (from the one table the guard reads), 401 and 403 answers with their JSON bodies and
//! counts, expiry and revocation, the prefix of a token, the Host and Origin checks, the
//! audit log's lines, TLS with a certificate made at run time, and the start-up refusals of
//! an exposed service.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use strata_catalog::{SqliteCatalog, TokenCatalog, TokenScope};
use strata_server::auth::token::{issue, IssuedToken};
use strata_server::auth::{scope_of, Need, ROUTE_SCOPES};
use strata_server::{ServeOptions, ROUTES};

/// Makes a token in the running service's catalog (as `strata token create` does, through
/// a second connection to the same file).
async fn make_token(
    server: &TestServer,
    scope: TokenScope,
    prefix: Option<&str>,
    expires_ms: Option<i64>,
) -> IssuedToken {
    let catalog = catalog_of(server.dir.path()).await;
    let issued = issue(
        scope,
        prefix.map(str::to_string),
        strata_server::state::now_ms(),
        expires_ms,
    );
    catalog.create_token(&issued.record).await.unwrap();
    catalog.close().await;
    // A service that ran open enforces its first token within a second: wait for it.
    eventually(Duration::from_secs(30), "tokens to be required", || async {
        let health = server.json("/healthz").await;
        (health["tokens_required"] == true).then_some(())
    })
    .await;
    issued
}

async fn catalog_of(data_dir: &Path) -> SqliteCatalog {
    SqliteCatalog::open(&data_dir.join("catalog.db"))
        .await
        .unwrap()
}

/// `method path` with `token` (if any) and an empty body.
async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = server
        .client
        .request(method.to_uppercase().parse().unwrap(), server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method != "get" || path != "/v1/events" {
        request = request.body("");
    }
    request.send().await.unwrap()
}

#[test]
fn every_route_of_the_router_has_a_scope() {
    for (path, _, methods) in ROUTES {
        for method in *methods {
            assert!(
                scope_of(path, method) != Need::Undeclared,
                "{method} {path} has no entry in ROUTE_SCOPES: nobody could call it"
            );
        }
    }
    // Every path the router source declares is in ROUTES (and so in the table).
    let source = include_str!("../src/routes.rs");
    let router = source.split("pub fn router").nth(1).unwrap();
    for piece in router.split(".route(").skip(1) {
        let path = piece.trim_start().split('"').nth(1).unwrap();
        assert!(
            ROUTES.iter().any(|(p, _, _)| *p == path),
            "the router serves {path}, which ROUTES (and the scope table) do not list"
        );
    }
    for (path, method, _) in ROUTE_SCOPES {
        assert!(
            ROUTES
                .iter()
                .any(|(p, _, methods)| p == path && methods.contains(method)),
            "ROUTE_SCOPES lists {method} {path}, which the router does not serve"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scope_against_every_route() {
    let server = start(TEST_RULES).await;
    // Open: no token exists yet, every route answers without one.
    assert_eq!(server.put("some/key", b"x").await.status(), 201);
    let read = make_token(&server, TokenScope::Read, None, None).await;
    let write = make_token(&server, TokenScope::Write, None, None).await;
    let admin = make_token(&server, TokenScope::Admin, None, None).await;
    let tokens = [
        (None, None),
        (Some(TokenScope::Read), Some(read.text.as_str())),
        (Some(TokenScope::Write), Some(write.text.as_str())),
        (Some(TokenScope::Admin), Some(admin.text.as_str())),
    ];
    for (route, method, need) in ROUTE_SCOPES {
        let path = route
            .replace("{*key}", "some/key")
            .replace("{id}", "999999");
        for (scope, token) in tokens {
            let response = call(&server, method, &path, token).await;
            let status = response.status().as_u16();
            let expected = match (need, scope) {
                (None, _) => None,
                (Some(_), None) => Some((401, "missing_token")),
                (Some(need), Some(scope)) if scope < *need => Some((403, "insufficient_scope")),
                _ => None,
            };
            let who = scope.map_or("no token", TokenScope::as_str);
            match expected {
                Some((code, name)) => {
                    assert_eq!(status, code, "{method} {path} with {who}");
                    if *method != "head" {
                        let body = response.json_value().await;
                        assert_eq!(body["error"]["code"], name, "{method} {path} with {who}");
                    }
                }
                None => assert!(
                    status != 401 && status != 403,
                    "{method} {path} with {who} answered {status}"
                ),
            }
            // The object is deleted by the write and admin DELETEs: put it back.
            if *method == "delete" && status == 204 {
                let put = call(&server, "put", "/v1/objects/some/key", token).await;
                assert!(put.status().is_success());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_json_counted_and_name_the_token_never_show_it() {
    let server = start(TEST_RULES).await;
    let reader = make_token(&server, TokenScope::Read, Some("docs/"), None).await;
    let id = &reader.record.id;

    let response = call(&server, "get", "/v1/tiers", None).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let body = response.json_value().await;
    assert_eq!(body["error"]["code"], "missing_token");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("strata token create"));

    // A wrong secret for a real id, a token of the wrong shape, another scheme.
    let forged = format!("{}0", &reader.text[..reader.text.len() - 1]);
    let forged = if forged == reader.text {
        format!("{}1", &reader.text[..reader.text.len() - 1])
    } else {
        forged
    };
    for token in [forged.as_str(), "strata_nonsense", "x"] {
        let response = call(&server, "get", "/v1/tiers", Some(token)).await;
        assert_eq!(response.status(), 401, "{token}");
        assert_eq!(
            response.json_value().await["error"]["code"],
            "invalid_token"
        );
    }
    let basic = server
        .client
        .get(server.url("/v1/tiers"))
        .header("authorization", "Basic dXNlcjpwdw==")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);

    // Scope and prefix: 403, naming the token's id and never its secret.
    let response = call(&server, "put", "/v1/objects/docs/a", Some(&reader.text)).await;
    assert_eq!(response.status(), 403);
    let body = response.json_value().await;
    assert_eq!(body["error"]["code"], "insufficient_scope");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(id.as_str()) && !message.contains(&reader.text),
        "{message}"
    );
    let writer = make_token(&server, TokenScope::Write, Some("docs/"), None).await;
    let inside = call(&server, "put", "/v1/objects/docs/a", Some(&writer.text)).await;
    assert_eq!(inside.status(), 201);
    for path in [
        "/v1/objects/other/a",
        "/v1/predictions/other/a",
        "/v1/objects",
        "/v1/objects?prefix=do",
        "/v1/explain/other/a",
    ] {
        let response = call(&server, "get", path, Some(&writer.text)).await;
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(
            response.json_value().await["error"]["code"],
            "outside_prefix",
            "{path}"
        );
    }
    let listed = call(
        &server,
        "get",
        "/v1/objects?prefix=docs/",
        Some(&reader.text),
    )
    .await;
    assert_eq!(listed.status(), 200);
    let events = server
        .client
        .post(server.url("/v1/access-events"))
        .bearer_auth(&writer.text)
        .body("{\"key\":\"other/b\",\"op\":\"read\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 403, "a prefixed token cannot post events");

    let metrics = call(&server, "get", "/metrics", Some(&reader.text)).await;
    let text = metrics.text().await.unwrap();
    for line in [
        "strata_http_refused_total{status=\"401\",code=\"missing_token\"} 1",
        "strata_http_refused_total{status=\"401\",code=\"invalid_token\"} 4",
        "strata_http_refused_total{status=\"403\",code=\"insufficient_scope\"} 1",
        "strata_http_refused_total{status=\"403\",code=\"outside_prefix\"} 6",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(text.contains(
        "strata_http_requests_total{method=\"GET\",route=\"/v1/tiers\",status=\"401\"} 5"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_are_refused_at_once() {
    let server = start(TEST_RULES).await;
    let now = strata_server::state::now_ms();
    let expired = make_token(&server, TokenScope::Admin, None, Some(now - 1)).await;
    let response = call(&server, "get", "/v1/tiers", Some(&expired.text)).await;
    assert_eq!(response.status(), 401);
    let body = response.json_value().await;
    assert_eq!(body["error"]["code"], "expired_token");

    let live = make_token(&server, TokenScope::Read, None, Some(now + 3_600_000)).await;
    assert_eq!(
        call(&server, "get", "/v1/tiers", Some(&live.text))
            .await
            .status(),
        200
    );
    let catalog = catalog_of(server.dir.path()).await;
    catalog.revoke_token(&live.record.id, now).await.unwrap();
    catalog.close().await;
    let response = call(&server, "get", "/v1/tiers", Some(&live.text)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json_value().await["error"]["code"],
        "revoked_token"
    );
    // Every token revoked or expired: still closed.
    assert_eq!(call(&server, "get", "/v1/tiers", None).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_origin_naming_another_site_are_refused() {
    let toml = TEST_RULES.replace(
        "[server]\n",
        "[server]\nallowed_hosts = [\"strata.example.org\"]\n",
    );
    let server = start(&toml).await;
    let with = |host: &str, origin: Option<&str>| {
        let mut request = server
            .client
            .put(server.url("/v1/objects/site/a"))
            .header("host", host)
            .body("x");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let response = with("evil.example:7070", None).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json_value().await["error"]["code"],
        "host_not_allowed"
    );
    let response = with("localhost", Some("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json_value().await["error"]["code"],
        "origin_not_allowed"
    );
    for (host, origin) in [
        (
            "strata.example.org:7070",
            Some("https://strata.example.org"),
        ),
        ("localhost:1", Some("http://localhost:3000")),
        ("[::1]", None),
    ] {
        let response = with(host, origin).await.unwrap();
        assert!(
            response.status().is_success(),
            "{host} {origin:?}: {}",
            response.status()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_has_a_line_per_write_and_admin_request() {
    let server = start(TEST_RULES).await;
    let writer = make_token(&server, TokenScope::Write, None, None).await;
    let admin = make_token(&server, TokenScope::Admin, None, None).await;
    assert_eq!(
        call(&server, "put", "/v1/objects/a%20b", Some(&writer.text))
            .await
            .status(),
        201
    );
    assert_eq!(
        call(&server, "get", "/v1/objects/a%20b", Some(&writer.text))
            .await
            .status(),
        200
    );
    assert_eq!(
        call(&server, "post", "/v1/plan", Some(&writer.text))
            .await
            .status(),
        403
    );
    assert_eq!(
        call(&server, "post", "/v1/plan", Some(&admin.text))
            .await
            .status(),
        200
    );
    assert_eq!(
        call(&server, "delete", "/v1/objects/a%20b", None)
            .await
            .status(),
        401
    );
    assert_eq!(
        call(&server, "delete", "/v1/objects/a%20b", Some(&admin.text))
            .await
            .status(),
        204
    );

    let text = std::fs::read_to_string(server.dir.path().join("audit.log")).unwrap();
    assert!(!text.contains(&writer.text) && !text.contains(&admin.text));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let summary: Vec<(String, String, String, Option<String>, u64)> = lines
        .iter()
        .map(|line| {
            (
                line["token"].as_str().unwrap_or("-").to_string(),
                line["method"].as_str().unwrap().to_string(),
                line["route"].as_str().unwrap().to_string(),
                line["key"].as_str().map(str::to_string),
                line["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let (w, a) = (writer.record.id.clone(), admin.record.id.clone());
    let key = Some("a b".to_string());
    let objects = "/v1/objects/{*key}".to_string();
    assert_eq!(
        summary,
        [
            (w.clone(), "PUT".into(), objects.clone(), key.clone(), 201),
            (w, "POST".into(), "/v1/plan".into(), None, 403),
            (a.clone(), "POST".into(), "/v1/plan".into(), None, 200),
            (
                "-".into(),
                "DELETE".into(),
                objects.clone(),
                key.clone(),
                401
            ),
            (a, "DELETE".into(), objects, key, 204),
        ],
        "the GET is not audited; every write and admin request is, refused or not"
    );
    for line in &lines {
        assert!(line["ts_ms"].as_i64().unwrap() > 0);
        assert!(line["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let pem = cert.cert.pem();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &pem).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    (cert_path, key_path, pem)
}

fn with_tls(toml: &str, cert: &Path, key: &Path) -> String {
    toml.replace(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_to_a_client_that_trusts_the_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, pem) = certificate(certs.path());
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions::new(config(dir.path(), &with_tls(TEST_RULES, &cert, &key)));
    let server = strata_server::start(options).await.unwrap();
    assert!(server.tls());
    let port = server.addr.port();
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let health = trusting
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Not trusted: the handshake fails; plain HTTP gets no answer.
    assert!(reqwest::Client::new()
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .is_err());
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_err());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_stop_the_start_naming_the_file() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(certs.path());
    let (other_cert, other_key, _) = {
        let other = certs.path().join("other");
        std::fs::create_dir(&other).unwrap();
        certificate(&other)
    };
    let missing = certs.path().join("missing.pem");
    let cases = [
        (missing.clone(), key.clone(), "missing.pem"),
        (key.clone(), key.clone(), "tls_cert"),
        (cert.clone(), cert.clone(), "tls_key"),
        (
            cert.clone(),
            other_key.clone(),
            "cannot be used with the certificate",
        ),
    ];
    let _ = other_cert;
    // One without the other is refused when the configuration is read.
    let half = TEST_RULES.replace("[server]\n", "[server]\ntls_cert = \"cert.pem\"\n");
    let err = strata_heat::TieringConfig::parse(&half)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server.tls_cert") && err.contains("tls_key"),
        "{err}"
    );
    for (cert, key, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let options = ServeOptions::new(config(dir.path(), &with_tls(TEST_RULES, &cert, &key)));
        let err = strata_server::start(options)
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exposed_address_needs_tokens_and_tls_or_insecure() {
    let exposed = TEST_RULES.replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:0\"");
    let dir = tempfile::tempdir().unwrap();
    let err = strata_server::start(ServeOptions::new(config(dir.path(), &exposed)))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("not a loopback address")
            && err.contains("no API token and no TLS")
            && err.contains("--insecure"),
        "{err}"
    );
    assert!(
        !dir.path().join("audit.log").exists(),
        "refused before anything was set up"
    );

    // A token but no TLS: still refused.
    let catalog = catalog_of(dir.path()).await;
    let token = issue(TokenScope::Admin, None, 1, None);
    catalog.create_token(&token.record).await.unwrap();
    catalog.close().await;
    let err = strata_server::start(ServeOptions::new(config(dir.path(), &exposed)))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("no TLS"), "{err}");

    // Tokens and TLS: served.
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(certs.path());
    let options = ServeOptions::new(config(dir.path(), &with_tls(&exposed, &cert, &key)));
    let server = strata_server::start(options).await.unwrap();
    server.shutdown().await;

    // --insecure: served, and /healthz says why it should not be.
    let open = tempfile::tempdir().unwrap();
    let mut options = ServeOptions::new(config(open.path(), &exposed));
    options.insecure = true;
    let server = strata_server::start(options).await.unwrap();
    let port = server.addr.port();
    let health: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap()
        .json_value()
        .await;
    let warning = health["insecure"].as_str().unwrap();
    assert!(
        warning.starts_with("--insecure") && warning.contains("no API token"),
        "{warning}"
    );
    server.shutdown().await;
}
