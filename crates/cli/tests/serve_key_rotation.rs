//! `strata key rotate` through the real `strata serve` and the CLI: objects written under
//! one key, the tier's key changed (the old one kept in `encryption_previous_key_files`),
//! every object re-encrypted in the background under the new key id (read from the stored
//! frames' headers), the old key then removed and everything still read; an object under a
//! removed key reported by tier and key id and never served; a service killed mid-rotation
//! finishes it after its restart with nothing lost; bad earlier-key files refused at
//! start-up; no key ever in the output or the log.

mod serve_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serve_common::*;

const WAIT: Duration = Duration::from_secs(120);
/// Two keys without NUL or newline bytes, 32 bytes each.
const OLD_KEY: &str = "old-key-0123456789abcdefghijklmn";
const NEW_KEY: &str = "new-key-0123456789abcdefghijklmn";

/// A test's directory: its keys, its data dir, its config.
struct Setup {
    dir: PathBuf,
    data_dir: PathBuf,
    config: PathBuf,
    old_key: PathBuf,
    new_key: PathBuf,
    /// The `[[tier]]` lines where objects are written, without the key fields.
    tier: String,
}

impl Setup {
    fn new(dir: &Path, tier: String) -> Setup {
        let old_key = dir.join("old.key");
        let new_key = dir.join("new.key");
        std::fs::write(&old_key, OLD_KEY).unwrap();
        std::fs::write(&new_key, NEW_KEY).unwrap();
        Setup {
            dir: dir.to_path_buf(),
            data_dir: dir.join("data"),
            config: dir.join("strata.toml"),
            old_key,
            new_key,
            tier,
        }
    }

    /// Writes the config with `keys` (the key fields of the tier `sealed`).
    fn write(&self, keys: &str) {
        let text = format!(
            r#"default_tier = "sealed"

[server]
listen = "127.0.0.1:0"
data_dir = {data:?}

[[tier]]
name = "hot"

[[tier]]
name = "sealed"
layout = "packed"
codec = "none"
encryption = "xchacha20poly1305"
{tier}
{keys}

[classes]
hot = ["hot"]
warm = ["sealed"]
cold = ["sealed"]

[rules]
hot_per_day = 1000000000
warm_per_day = 1000000000
hot_within = "1h"
warm_within = "2h"
demotion_interval = "1h"
"#,
            data = self.data_dir.display().to_string(),
            tier = self.tier,
        );
        std::fs::write(&self.config, text).unwrap();
    }

    fn current_only(&self, key: &Path) -> String {
        format!("encryption_key_file = {:?}\n", key.display().to_string())
    }

    fn rotated(&self) -> String {
        format!(
            "encryption_key_file = {:?}\nencryption_previous_key_files = [{:?}]\n",
            self.new_key.display().to_string(),
            self.old_key.display().to_string()
        )
    }

    fn start(&self, env: &[(&str, &str)]) -> Service {
        let mut env = env.to_vec();
        env.push(("STRATA_LOG", "info"));
        Service::start_with_env(&self.config, &self.data_dir, &[], &env)
    }
}

/// A single-store tier under the data dir.
fn single_store() -> String {
    String::new()
}

/// An erasure-coded tier over three local domains.
fn erasure_coded(dir: &Path) -> String {
    let domains: Vec<String> = (0..3)
        .map(|i| format!("{:?}", dir.join(format!("domain{i}")).display().to_string()))
        .collect();
    format!("stores = [{}]\nredundancy = \"ec:2+1\"", domains.join(", "))
}

/// Distinct bytes of `len`.
fn content(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + seed * 17) % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

/// Objects of several sizes (empty, one frame, several frames), put through the CLI.
fn put_objects(setup: &Setup, service: &Service) -> Vec<(String, Vec<u8>)> {
    let objects: Vec<(String, Vec<u8>)> = [0, 1000, (2 << 20) + 333, 70_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("data/object-{i}.bin"), content(len, i)))
        .collect();
    for (key, data) in &objects {
        let file = setup.dir.join("upload.bin");
        std::fs::write(&file, data).unwrap();
        let put = service.run(&["put", file.to_str().unwrap(), key]);
        assert!(
            put.status.success(),
            "{}",
            String::from_utf8_lossy(&put.stderr)
        );
    }
    objects
}

fn assert_all_read(service: &Service, objects: &[(String, Vec<u8>)]) {
    for (key, data) in objects {
        let got = service.run(&["get", key]);
        assert!(
            got.status.success(),
            "get {key}: {}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert!(got.stdout == *data, "get {key} returned other bytes");
    }
}

/// The rotation jobs as `/v1/jobs` lists them.
fn rotation_jobs(service: &Service) -> Vec<serde_json::Value> {
    let jobs = get_json(&service.url, "/v1/jobs?limit=10000");
    jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["reason"] == "key_rotation")
        .cloned()
        .collect()
}

/// Waits until every rotation job has ended, and returns them.
fn rotation_ended(service: &Service) -> Vec<serde_json::Value> {
    eventually(WAIT, "every key rotation job ended", || {
        let jobs = rotation_jobs(service);
        jobs.iter()
            .all(|job| {
                ["done", "skipped", "failed", "cancelled"].contains(&job["state"].as_str().unwrap())
            })
            .then_some(jobs)
    })
}

/// The key id of the first frame of `key`'s stored object on a single-store tier (16 hex
/// digits, bytes 8..16 of the encrypted frame header).
fn stored_key_id(service: &Service, key: &str) -> String {
    let stored = std::fs::read(service.tier_dir("sealed").join("objects").join(key)).unwrap();
    assert_eq!(&stored[..4], b"STEF", "{key}: the first frame is sealed");
    hex::encode(&stored[8..16])
}

fn rotate(service: &Service) -> (bool, serde_json::Value, String) {
    let out = service.run(&["--json", "key", "rotate", "--tier", "sealed"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(OLD_KEY) && !text.contains(NEW_KEY),
        "a key in the output: {text}"
    );
    let report = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.success(), report, text)
}

/// The whole rotation on the tier `tier` describes.
fn rotation_round(tier: impl Fn(&Path) -> String, single: bool) {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(dir.path(), tier(dir.path()));
    setup.write(&setup.current_only(&setup.old_key));
    let service = setup.start(&[]);
    let objects = put_objects(&setup, &service);
    let old_id = if single {
        stored_key_id(&service, &objects[1].0)
    } else {
        String::new()
    };
    let mut log = service.kill_and_stderr();

    // The new key alone: objects under the old one are reported and never served.
    setup.write(&setup.current_only(&setup.new_key));
    let service = setup.start(&[]);
    let got = service.run(&["get", &objects[1].0]);
    assert!(
        !got.status.success(),
        "an object under a removed key was served"
    );
    let (ok, report, text) = rotate(&service);
    assert!(
        !ok,
        "a rotation with objects under a removed key succeeded: {text}"
    );
    let tier_report = &report["tiers"][0];
    let new_id = tier_report["current_key_id"].as_str().unwrap().to_string();
    assert_eq!(
        tier_report["problems"].as_array().unwrap().len(),
        3,
        "{report}"
    );
    let detail = tier_report["problems"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"sealed\"") && detail.contains("key id"),
        "{detail}"
    );
    if single {
        assert!(detail.contains(&old_id), "{detail}");
    }
    log += &service.kill_and_stderr();

    // The old key kept as an earlier one: rotated in the background.
    setup.write(&setup.rotated());
    let service = setup.start(&[]);
    assert_all_read(&service, &objects);
    let (ok, report, text) = rotate(&service);
    assert!(ok, "{text}");
    assert_eq!(report["tiers"][0]["objects"], 4, "{report}");
    assert_eq!(
        report["tiers"][0]["current"], 1,
        "the empty object has no frame: {report}"
    );
    assert_eq!(report["tiers"][0]["queued"], 3, "{report}");
    let jobs = rotation_ended(&service);
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert!(jobs.iter().all(|job| job["state"] == "done"), "{jobs:?}");
    let (_, _, metrics) = http(&service.url, "GET", "/metrics", b"").unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    for line in [
        "strata_key_rotation_objects_total{tier=\"sealed\",state=\"queued\"} 3",
        "strata_key_rotation_objects_total{tier=\"sealed\",state=\"done\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} missing: {metrics}");
    }
    // Run again: everything is under the new key id, nothing is queued.
    let (ok, report, text) = rotate(&service);
    assert!(ok, "{text}");
    assert_eq!(report["tiers"][0]["current"], 4, "{report}");
    assert_eq!(report["tiers"][0]["queued"], 0, "{report}");
    if single {
        for (key, data) in &objects[1..] {
            assert!(!data.is_empty());
            assert_eq!(stored_key_id(&service, key), new_id, "{key}");
        }
        assert_ne!(old_id, new_id);
    }
    log += &service.kill_and_stderr();

    // The old key removed: everything still reads.
    setup.write(&setup.current_only(&setup.new_key));
    let service = setup.start(&[]);
    assert_all_read(&service, &objects);
    log += &service.kill_and_stderr();
    assert!(log.contains("key rotated"), "{log}");
    assert!(
        !log.contains(OLD_KEY) && !log.contains(NEW_KEY),
        "a key in the log"
    );
}

#[test]
fn a_packed_single_store_tier_is_rotated_to_the_new_key_and_reads_without_the_old_one() {
    rotation_round(|_| single_store(), true);
}

#[test]
fn an_erasure_coded_tier_is_rotated_to_the_new_key_and_reads_without_the_old_one() {
    rotation_round(erasure_coded, false);
}

#[test]
fn a_service_killed_mid_rotation_finishes_it_after_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(dir.path(), single_store());
    setup.write(&setup.current_only(&setup.old_key));
    let service = setup.start(&[]);
    let objects = put_objects(&setup, &service);
    service.kill();

    setup.write(&setup.rotated());
    let slow = [("STRATA_FAULTS", "dst:put:latency=2s;dst:publish:latency=2s")];
    let service = setup.start(&slow);
    let (ok, report, text) = rotate(&service);
    assert!(ok, "{text}");
    assert_eq!(report["tiers"][0]["queued"], 3, "{report}");
    let new_id = report["tiers"][0]["current_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    eventually(WAIT, "a rotation job switching", || {
        rotation_jobs(&service)
            .iter()
            .any(|job| job["state"] == "switching")
            .then_some(())
    });
    service.kill();

    // Killed midway: every object is still whole, under one key or the other.
    let service = setup.start(&[]);
    assert_all_read(&service, &objects);
    let jobs = rotation_ended(&service);
    assert!(
        jobs.iter()
            .all(|job| job["state"] == "done" || job["state"] == "skipped"),
        "{jobs:?}"
    );
    for (key, _) in &objects[1..] {
        assert_eq!(stored_key_id(&service, key), new_id, "{key}");
    }
    assert_all_read(&service, &objects);
    service.kill();
    setup.write(&setup.current_only(&setup.new_key));
    let service = setup.start(&[]);
    assert_all_read(&service, &objects);
}

#[test]
fn bad_earlier_key_files_are_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(dir.path(), single_store());
    let short = dir.path().join("short.key");
    std::fs::write(&short, &OLD_KEY.as_bytes()[..20]).unwrap();
    let missing = dir.path().join("missing.key");
    for (bad, part) in [(&short, "20 bytes"), (&missing, "cannot be read")] {
        setup.write(&format!(
            "encryption_key_file = {:?}\nencryption_previous_key_files = [{:?}, {:?}]\n",
            setup.new_key.display().to_string(),
            setup.old_key.display().to_string(),
            bad.display().to_string()
        ));
        let (code, err) = refused_start(&setup.config, Duration::from_secs(60));
        assert_eq!(code, Some(2), "{err}");
        let shown = bad.display().to_string();
        for needle in [
            "tier[1].encryption_previous_key_files[1]",
            "tier \"sealed\"",
            shown.as_str(),
            part,
        ] {
            assert!(err.contains(needle), "{needle:?} missing: {err}");
        }
        assert!(
            !err.contains(OLD_KEY) && !err.contains(&OLD_KEY[..20]),
            "a key in the error: {err}"
        );
    }
    // Earlier keys on a tier without encryption: refused by the config check.
    let text = std::fs::read_to_string(&setup.config)
        .unwrap()
        .replace("encryption = \"xchacha20poly1305\"\n", "")
        .replace(
            &format!(
                "encryption_key_file = {:?}\n",
                setup.new_key.display().to_string()
            ),
            "",
        );
    std::fs::write(&setup.config, text).unwrap();
    let (code, err) = refused_start(&setup.config, Duration::from_secs(60));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("tier[1].encryption_previous_key_files"),
        "{err}"
    );
}
