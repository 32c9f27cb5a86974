//! No secret appears at any log level, in any error, output or file: `strata` runs against
//! moto (S3) at the most verbose level with a distinctive secret key and session token, and
//! every byte it printed or wrote is searched for them.

mod common;
mod serve_common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{random_file, Sandbox};
use strata_store::testing::{free_port, moto, new_bucket, TEST_KEY_ID};

const SECRET: &str = "h6Secret0f7c3aWouldBeBadToLeak";
const TOKEN: &str = "h6SessionToken9b21eWouldBeBadToo";

/// `cmd` with the distinctive credentials.
fn with_secrets(mut cmd: Command) -> Command {
    cmd.env("AWS_ACCESS_KEY_ID", TEST_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN);
    cmd
}

/// Panics, naming where, if `bytes` holds the secret or the token.
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for (name, value) in [("secret key", SECRET), ("session token", TOKEN)] {
        if let Some(at) = text.find(value) {
            let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line = text[from..].lines().next().unwrap_or_default();
            // The line, with the values masked: the failure message must not leak them either.
            let line = line.replace(SECRET, "<SECRET>").replace(TOKEN, "<TOKEN>");
            panic!("the {name} leaks into {what}: {line}");
        }
    }
}

fn assert_output_clean(what: &str, out: &Output) {
    assert_clean(&format!("the stdout of {what}"), &out.stdout);
    assert_clean(&format!("the stderr of {what}"), &out.stderr);
}

/// Every file under `root` (the catalog with its WAL, a destination with its `.strata`).
fn assert_tree_clean(root: &Path) {
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_tree_clean(&path);
        } else if let Ok(bytes) = fs::read(&path) {
            assert_clean(&path.display().to_string(), &bytes);
        }
    }
}

/// The run really was verbose and went through S3: otherwise a clean output proves nothing.
fn assert_verbose(what: &str, out: &Output, level: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(level),
        "{what} printed no {level} log line: {err}"
    );
}

#[test]
fn no_secret_appears_in_any_output_or_file_of_migrate_at_the_most_verbose_level() {
    let sb = Sandbox::new();
    let (src, back) = (sb.path("src"), sb.path("back"));
    random_file(&src.join("a/one.bin"), 300_000, 1);
    random_file(&src.join("two.bin"), 5_000, 2);
    let remote = format!("s3://{}/ds", new_bucket());
    let endpoint = moto().endpoint();
    let strata = |args: &[&str]| {
        let mut cmd = with_secrets(sb.strata());
        cmd.args(args).args(["--s3-endpoint", &endpoint]);
        cmd
    };

    let up = strata(&["-vvv", "migrate", src.to_str().unwrap(), &remote])
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_verbose("migrate -vvv", &up, "DEBUG");
    assert_output_clean("migrate -vvv to S3", &up);

    let down = strata(&["migrate", &remote, back.to_str().unwrap(), "--json"])
        .env("STRATA_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_verbose("STRATA_LOG=trace migrate", &down, "TRACE");
    assert_output_clean("STRATA_LOG=trace migrate from S3", &down);

    let verify = strata(&["-vvv", "verify", &remote]).output().unwrap();
    assert!(verify.status.success());
    assert_output_clean("verify -vvv on S3", &verify);

    // A failing run: nothing listens at the endpoint.
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    for json in [false, true] {
        let mut cmd = with_secrets(sb.strata());
        cmd.args(["-vvv", "migrate", src.to_str().unwrap(), &remote])
            .args(["--s3-endpoint", &unreachable]);
        if json {
            cmd.arg("--json");
        }
        let failed = cmd.output().unwrap();
        assert_eq!(failed.status.code(), Some(2), "{failed:?}");
        assert_output_clean("a migrate that cannot reach its store", &failed);
    }

    assert_tree_clean(sb.dir.path());
}

#[test]
fn no_secret_appears_in_any_output_or_file_of_serve_at_the_most_verbose_level() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let bucket = new_bucket();
    let config = dir.path().join("strata.toml");
    // New objects land on the S3 tier, so every PUT and GET signs a request.
    let text = serve_common::config(
        &data_dir,
        &serve_common::s3_store(&bucket),
        "0s",
        "4s",
        "1h",
    )
    .replace("default_tier = \"warm\"", "default_tier = \"cold\"");
    fs::write(&config, text).unwrap();
    let log = dir.path().join("serve.log");
    let mut cmd = with_secrets(serve_common::strata());
    let mut child = cmd
        .args(["-vvv", "--json", "serve", "--config"])
        .arg(&config)
        .env("STRATA_CATALOG", dir.path().join("catalog.db"))
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut started = String::new();
    stdout.read_line(&mut started).unwrap();
    let url = serde_json::from_str::<serde_json::Value>(&started)
        .ok()
        .and_then(|v| v["listening"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("strata serve did not start: {started}"));

    let input = dir.path().join("in.bin");
    random_file(&input, 70_000, 3);
    let client = |args: &[&str]| {
        let mut cmd = with_secrets(serve_common::strata());
        cmd.arg("-vvv")
            .args(args)
            .args(["--server", &url])
            .output()
            .unwrap()
    };
    let put = client(&["--json", "put", input.to_str().unwrap(), "k/one"]);
    assert!(put.status.success(), "{put:?}");
    assert!(
        String::from_utf8_lossy(&put.stdout).contains("cold"),
        "{put:?}"
    );
    assert_output_clean("put", &put);
    let got = dir.path().join("got.bin");
    let get = client(&["get", "k/one", "--output", got.to_str().unwrap()]);
    assert!(get.status.success(), "{get:?}");
    assert_eq!(fs::read(&got).unwrap(), fs::read(&input).unwrap());
    assert_output_clean("get", &get);
    let missing = client(&["get", "k/none"]);
    assert!(!missing.status.success());
    assert_output_clean("a failed get", &missing);

    child.kill().unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    child.wait().unwrap();
    assert_clean("the stdout of serve", started.as_bytes());
    assert_clean("the stdout of serve", &rest);
    let log_text = fs::read(&log).unwrap();
    assert!(
        String::from_utf8_lossy(&log_text).contains("DEBUG"),
        "serve -vvv printed no debug line"
    );
    assert_tree_clean(dir.path());
}
