//! The S3 front door from the real binary: `strata serve --s3-listen` with the
//! environment's key pair (refused, saying what to set, without it), and `strata token
//! create --s3`, whose secret is derived from a private master key and never stored.

mod serve_common;

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;

use serve_common::strata;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn env_free(command: &mut std::process::Command) -> &mut std::process::Command {
    command
        .env_remove("STRATA_S3_ACCESS_KEY")
        .env_remove("STRATA_S3_SECRET_KEY")
}

#[test]
fn serve_s3_listen_needs_a_key_pair_and_prints_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let refused = env_free(&mut strata())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--s3-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("STRATA_S3_ACCESS_KEY"), "{stderr}");
    assert!(stderr.contains("server.s3_listen"), "{stderr}");

    let mut child = env_free(&mut strata())
        .args([
            "--json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--s3-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .env("STRATA_S3_ACCESS_KEY", "cli-test-access")
        .env("STRATA_S3_SECRET_KEY", "cli-test-secret-value")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let started: serde_json::Value = serde_json::from_str(&line).unwrap();
    let s3 = started["s3_listening"].as_str().unwrap_or_default();
    assert!(s3.starts_with("http://127.0.0.1:"), "{line}");
    assert!(!line.contains("cli-test-secret-value"));
}

#[test]
fn token_create_s3_prints_a_pair_whose_secret_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let made = strata()
        .args([
            "--json", "token", "create", "--scope", "read", "--prefix", "docs/", "--s3",
        ])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let id = shown["id"].as_str().unwrap();
    let access = shown["s3_access_key_id"].as_str().unwrap();
    let secret = shown["s3_secret_access_key"].as_str().unwrap();
    assert_eq!(access, format!("STRATA{}", id.to_ascii_uppercase()));
    assert_eq!(secret.len(), 64);

    let master = data.join("s3-master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&master).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the master key is its owner's only");
    }
    for file in std::fs::read_dir(&data).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !text(&bytes).contains(secret),
                "{} holds the S3 secret",
                path.display()
            );
        }
    }

    // The same master key for the next one; the text form shows the pair before the token.
    let key_before = std::fs::read(&master).unwrap();
    let again = strata()
        .args(["token", "create", "--scope", "write", "--s3"])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let out = text(&again.stdout);
    assert!(out.contains("access key id     STRATA"), "{out}");
    assert!(out.lines().last().unwrap().starts_with("strata_"), "{out}");
    assert_eq!(std::fs::read(&master).unwrap(), key_before);
    assert!(Path::new(&master).exists());
}
