//! Encryption at rest through the real `strata serve` and the CLI: an encrypted packed tier on
//! S3 (moto), its key in an environment variable, serves `strata put` and `strata get`, and
//! no stored byte of the bucket holds the plaintext; bad keys and an encrypted plain tier are
//! refused at start-up with exit 2, naming the tier, the field and the file, never the key.

mod serve_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serve_common::*;
use strata_store::testing::new_bucket;

/// Every line carries this, so any plaintext copy of a piece of the file holds it.
const MARKER: &str = "CLASSIFIED-PAYLOAD";
/// A key without NUL bytes, as a variable can hold it: 32 bytes.
const ENV_KEY: &str = "0123456789abcdefghijklmnopqrstuv";

fn secret_file(path: &Path, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(format!("record {i:08} {MARKER} value={}\n", i * 7).as_bytes());
        i += 1;
    }
    out.truncate(len);
    std::fs::write(path, &out).unwrap();
    out
}

/// The files under `dir` whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for path in entries.flatten().map(|entry| entry.path()) {
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                found.push(path);
            }
        }
    }
    found
}

/// [`config`] with objects written to `cold`, a packed tier encrypted by `encryption`
/// (the lines to add to its `[[tier]]`).
fn encrypted_cold(data_dir: &Path, cold_store: &str, encryption: &str) -> String {
    config(data_dir, cold_store, "1h", "2h", "1h")
        .replace("default_tier = \"warm\"", "default_tier = \"cold\"")
        .replace(
            "name = \"cold\"\n",
            &format!("name = \"cold\"\nlayout = \"packed\"\ncodec = \"none\"\n{encryption}"),
        )
}

#[test]
fn an_encrypted_s3_tier_round_trips_through_the_cli_and_stores_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bucket = new_bucket();
    let toml = encrypted_cold(
        &data,
        &s3_store(&bucket),
        "encryption = \"aes-256-gcm\"\nencryption_key_env = \"STRATA_TEST_COLD_KEY\"\n",
    );
    let config_path = dir.path().join("strata.toml");
    std::fs::write(&config_path, &toml).unwrap();
    let service = Service::start_with_env(
        &config_path,
        &data,
        &[],
        &[("STRATA_TEST_COLD_KEY", ENV_KEY), ("STRATA_LOG", "info")],
    );
    let file = dir.path().join("secret.txt");
    let content = secret_file(&file, 3 * (1 << 20) + 4567);
    let put = service.run(&["put", file.to_str().unwrap(), "reports/secret.txt"]);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let got = service.run(&["get", "reports/secret.txt"]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(got.stdout == content, "strata get returns the bytes put");

    let keys = s3_keys(&bucket, "tiers/cold");
    assert_eq!(keys, vec!["reports/secret.txt".to_string()]);
    let stored = s3_object(&bucket, "tiers/cold", "reports/secret.txt");
    assert!(stored.len() > content.len(), "frames, table and trailer");
    assert_eq!(&stored[..4], b"STEF", "the first frame is sealed");
    assert!(
        !stored.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "the plaintext is in the bucket"
    );
    assert_eq!(
        files_holding(&data, MARKER.as_bytes()),
        Vec::<PathBuf>::new(),
        "the plaintext is in the data dir"
    );
    let log = service.kill_and_stderr();
    assert!(
        log.contains("key_id"),
        "the log names the tier's key id: {log}"
    );
    assert!(!log.contains(ENV_KEY), "the key is in the log");
}

#[test]
fn bad_keys_and_an_encrypted_plain_tier_are_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cold = dir.path().join("cold");
    let key = dir.path().join("cold.key");
    // 32 bytes and the newline an editor adds.
    std::fs::write(&key, format!("{ENV_KEY}\n")).unwrap();
    let config_path = dir.path().join("strata.toml");
    let toml = encrypted_cold(
        &data,
        cold.to_str().unwrap(),
        &format!(
            "encryption = \"xchacha20poly1305\"\nencryption_key_file = {:?}\n",
            key.display().to_string()
        ),
    );
    std::fs::write(&config_path, &toml).unwrap();
    let (code, err) = refused_start(&config_path, Duration::from_secs(60));
    assert_eq!(code, Some(2), "{err}");
    let shown = key.display().to_string();
    for part in [
        "tier[2].encryption_key_file",
        "tier \"cold\"",
        shown.as_str(),
        "33 bytes",
        "newline",
        "exactly 32 raw bytes",
    ] {
        assert!(err.contains(part), "{part:?} missing: {err}");
    }
    assert!(!err.contains(ENV_KEY), "the key is in the error: {err}");
    assert!(!cold.exists(), "nothing is written to a refused tier");

    let plain = toml.replace("layout = \"packed\"\n", "");
    std::fs::write(&config_path, &plain).unwrap();
    std::fs::write(&key, ENV_KEY).unwrap();
    let (code, err) = refused_start(&config_path, Duration::from_secs(60));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("tier[2].layout"), "{err}");
    assert!(err.contains("layout = \"packed\""), "{err}");
}
