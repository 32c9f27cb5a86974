//! `strata token` and authenticated use of the real binary: tokens made, listed and
//! revoked on the service's catalog before and while it runs; HTTPS end to end (a
//! certificate made at run time, trusted by `--ca-cert` / `STRATA_CA_CERT`); the CLI's
//! `STRATA_TOKEN`; the start-up refusal of an exposed address; and no token in any output
//! or in the service's log at its most verbose.

mod serve_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use serve_common::strata;

/// The service's configuration: two local tiers under `data_dir`, over TLS with `tls`.
fn service_config(data_dir: &Path, tls: Option<(&Path, &Path)>, listen: &str) -> PathBuf {
    let tls = tls.map_or_else(String::new, |(cert, key)| {
        format!("tls_cert = {cert:?}\ntls_key = {key:?}\n")
    });
    let text = format!(
        "default_tier = \"warm\"\n[server]\nlisten = {listen:?}\ndata_dir = {:?}\n{tls}\n\
         [[tier]]\nname = \"hot\"\n\n[[tier]]\nname = \"warm\"\n",
        data_dir.display().to_string()
    );
    let path = data_dir.with_extension("toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `strata [--json] token ARGS --config CONFIG`.
fn token(config: &Path, json: bool, args: &[&str]) -> Output {
    let mut command = strata();
    if json {
        command.arg("--json");
    }
    command
        .arg("token")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `strata serve --config CONFIG -vv` with its log in `log`; returns the child and its URL.
fn serve(config: &Path, log: &Path) -> (Child, String) {
    use std::io::BufRead;
    let mut child = strata()
        .args(["--json", "-vv", "serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let started: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| panic!("did not start: {}", std::fs::read_to_string(log).unwrap()));
    // Keep reading its standard output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    (child, started["listening"].as_str().unwrap().to_string())
}

/// `strata ARGS --server URL` with `env`.
fn client(url: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    strata()
        .envs(env.iter().copied())
        .args(args)
        .args(["--server", url])
        .output()
        .unwrap()
}

#[test]
fn tokens_are_made_listed_and_revoked_on_the_services_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let config = service_config(&dir.path().join("data"), None, "127.0.0.1:0");
    let made = token(
        &config,
        false,
        &[
            "create",
            "--scope",
            "write",
            "--prefix",
            "docs/",
            "--expires",
            "30d",
        ],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let stdout = text(&made.stdout);
    let secret = stdout.lines().last().unwrap();
    assert!(
        secret.starts_with("strata_") && !secret.contains(' '),
        "{stdout}"
    );
    let made = token(&config, true, &["create", "--scope", "admin"]);
    let json: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(json["scope"], "admin");
    let admin_id = json["id"].as_str().unwrap().to_string();
    assert!(json["token"].as_str().unwrap().contains(&admin_id));

    let listed = token(&config, false, &["list"]);
    let listing = text(&listed.stdout);
    assert!(
        listing.contains("docs/") && listing.contains(&admin_id),
        "{listing}"
    );
    assert!(!listing.contains(secret), "the list never shows a token");
    let revoked = token(&config, false, &["revoke", &admin_id]);
    assert!(text(&revoked.stdout).contains(&format!("token {admin_id} revoked")));
    let listed = token(&config, true, &["list"]);
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let states: Vec<&str> = json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "revoked").count(),
        1,
        "{json}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == "active").count(),
        1,
        "{json}"
    );

    // Bad input: named, exit 2.
    for (args, expected) in [
        (vec!["revoke", "nosuchid"], "no token with id \"nosuchid\""),
        (vec!["create", "--scope", "root"], "unknown scope \"root\""),
        (
            vec!["create", "--scope", "read", "--expires", "soon"],
            "--expires soon",
        ),
        (
            vec!["create", "--scope", "admin", "--prefix", "a/"],
            "admin token",
        ),
    ] {
        let out = token(&config, false, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn https_end_to_end_with_the_cli_and_no_token_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    let config = service_config(&data, Some((&cert_path, &key_path)), "127.0.0.1:0");
    let made = token(&config, true, &["create", "--scope", "write"]);
    let json: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let secret = json["token"].as_str().unwrap().to_string();
    let reader = token(&config, false, &["create", "--scope", "read"]);
    let read_secret = text(&reader.stdout).lines().last().unwrap().to_string();

    let log = dir.path().join("serve.log");
    let (mut child, url) = serve(&config, &log);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let url = url.replace("127.0.0.1", "localhost");
    let ca = cert_path.to_str().unwrap();
    let file = dir.path().join("payload.txt");
    std::fs::write(&file, "hello over TLS\n").unwrap();
    let file = file.to_str().unwrap();
    let mut outputs = Vec::new();

    let put = client(
        &url,
        &[("STRATA_TOKEN", &secret)],
        &["put", file, "docs/hello.txt", "--ca-cert", ca],
    );
    assert!(put.status.success(), "{}", text(&put.stderr));
    let get = client(
        &url,
        &[("STRATA_TOKEN", &read_secret), ("STRATA_CA_CERT", ca)],
        &["get", "docs/hello.txt"],
    );
    assert_eq!(
        text(&get.stdout),
        "hello over TLS\n",
        "{}",
        text(&get.stderr)
    );
    // The read token cannot write; no token at all is refused; the CA not trusted fails.
    let refused = client(
        &url,
        &[("STRATA_TOKEN", &read_secret), ("STRATA_CA_CERT", ca)],
        &["-vv", "rm", "docs/hello.txt"],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("insufficient_scope"),
        "{}",
        text(&refused.stderr)
    );
    let anonymous = client(&url, &[("STRATA_CA_CERT", ca)], &["ls"]);
    assert_eq!(anonymous.status.code(), Some(2));
    assert!(
        text(&anonymous.stderr).contains("STRATA_TOKEN"),
        "{}",
        text(&anonymous.stderr)
    );
    let untrusted = client(&url, &[("STRATA_TOKEN", &secret)], &["ls"]);
    assert_eq!(untrusted.status.code(), Some(2));
    let message = text(&untrusted.stderr);
    assert!(
        message.contains("certificate") && message.contains("--ca-cert"),
        "{message}"
    );
    let wrong = client(
        &url,
        &[("STRATA_TOKEN", "strata_000000000000_00")],
        &["ls", "--ca-cert", ca],
    );
    assert!(
        text(&wrong.stderr).contains("invalid_token"),
        "{}",
        text(&wrong.stderr)
    );
    outputs.extend([put, get, refused, anonymous, untrusted, wrong, made, reader]);

    // SIGTERM, then look at everything the service and the CLI printed.
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("request refused"),
        "the refusals are logged:\n{log_text}"
    );
    let audit = std::fs::read_to_string(data.join("audit.log")).unwrap();
    for secret in [&secret, &read_secret] {
        assert!(
            !log_text.contains(secret.as_str()),
            "a token in the service's log"
        );
        assert!(!audit.contains(secret.as_str()), "a token in the audit log");
        for out in &outputs[..6] {
            assert!(!text(&out.stdout).contains(secret.as_str()));
            assert!(!text(&out.stderr).contains(secret.as_str()));
        }
    }
}

#[test]
fn an_exposed_address_without_tokens_and_tls_is_refused_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let config = service_config(&dir.path().join("data"), None, "0.0.0.0:0");
    let (code, stderr) = serve_common::refused_start(&config, Duration::from_secs(60));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("0.0.0.0")
            && stderr.contains("not a loopback address")
            && stderr.contains("strata token create")
            && stderr.contains("--insecure"),
        "{stderr}"
    );
    let log = dir.path().join("serve.log");
    let mut child = strata()
        .args(["--json", "serve", "--insecure", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let started: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = started["listening"]
        .as_str()
        .unwrap()
        .replace("0.0.0.0", "127.0.0.1");
    let health = serve_common::get_json(&url, "/healthz");
    assert!(
        health["insecure"]
            .as_str()
            .unwrap()
            .starts_with("--insecure"),
        "{health}"
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("--insecure"));
}
