//! The S3 conformance suite (boto3, the AWS CLI and rclone; Python under
//! `tests/s3_conformance/`), run unchanged against SeaweedFS, the oracle, and against
//! Strata's S3 front door. A case SeaweedFS fails where AWS would pass is a named allowance
//! in the suite's `conftest.py`, printed in the summary; Strata gets none.
//!
//! Needs `scripts/s3-tools.sh install` (weed, boto3, pytest, aws) and rclone (Debian), both
//! done by `scripts/install-test-deps.sh`. Run with `-- --nocapture` to see the suite's
//! per-case output and the allowances it used.

mod serve_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serve_common::{config, Service};

use strata_store::testing::seaweedfs::{s3_tools_venv, seaweedfs};
use strata_store::testing::{free_port, TEST_KEY_ID, TEST_SECRET};

/// The one bucket the front door serves, and the bucket the suite uses on every server.
const BUCKET: &str = "strata";

/// An S3 server the suite runs against.
struct Target {
    /// `seaweedfs` or `strata`: names the allowances the suite may use.
    name: &'static str,
    endpoint: String,
    access_key: String,
    secret_key: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Real files rclone syncs through the server (read in place, never copied into the repo):
/// a Zarr store, with dot files and binary chunks up to 1.9 MB.
fn sync_tree() -> PathBuf {
    let tree = std::env::var_os("STRATA_SCIENTIFIC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data/scientific"))
        .join("zarr");
    assert!(
        tree.is_dir(),
        "the rclone case syncs {}, which is missing; set STRATA_SCIENTIFIC_DATA to the \
         shared scientific data folder",
        tree.display()
    );
    tree
}

fn rclone() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("rclone"))
            .find(|p| p.is_file())
    });
    found.expect("rclone is not installed; run scripts/install-test-deps.sh (Debian: apt-get install rclone)")
}

/// Runs every case of the suite against `target`; panics with pytest's report when one fails.
fn run_suite(target: &Target) {
    let (passed, report) = pytest(target, &[]);
    println!("{report}");
    assert!(
        passed,
        "the S3 conformance suite failed against {} ({}):\n{report}",
        target.name, target.endpoint
    );
    assert!(
        report.contains(" passed"),
        "pytest ran no case against {}:\n{report}",
        target.name
    );
}

/// Runs the suite (with pytest's `extra` arguments) against `target`: whether every case
/// passed, and pytest's report.
fn pytest(target: &Target, extra: &[&str]) -> (bool, String) {
    let venv_bin = s3_tools_venv().join("bin");
    let python = venv_bin.join("python");
    assert!(
        python.is_file(),
        "the suite's Python environment is missing ({}); run scripts/s3-tools.sh install",
        python.display()
    );
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_conformance");
    let output = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "--tb=short",
        ])
        .args(extra)
        .arg(&suite)
        .current_dir(&suite)
        .env("S3_SERVER", target.name)
        .env("S3_ENDPOINT", &target.endpoint)
        .env("S3_ACCESS_KEY", &target.access_key)
        .env("S3_SECRET_KEY", &target.secret_key)
        .env("S3_BUCKET", BUCKET)
        .env("S3_TOOLS_BIN", &venv_bin)
        .env("S3_RCLONE", rclone())
        .env("S3_SYNC_TREE", sync_tree())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

/// The front door's key pair, given to `strata serve` through its environment.
const DOOR_ACCESS_KEY: &str = "STRATACONFORMANCE";
const DOOR_SECRET_KEY: &str = "conformance-secret/0123456789abcdefghij";

/// `strata serve --s3-listen 127.0.0.1:0` with every tier on local disk under a temp dir
/// (kept for the process's life: a static is never dropped), shared by this binary's tests.
fn strata_front_door() -> &'static str {
    static DOOR: OnceLock<(tempfile::TempDir, Service, String)> = OnceLock::new();
    let (_, _, endpoint) = DOOR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let cold = dir.path().join("cold");
        let config_path = dir.path().join("strata.toml");
        let text = config(&data_dir, &cold.display().to_string(), "1h", "2h", "1h");
        std::fs::write(&config_path, text).expect("write strata.toml");
        let service = Service::start_with_env(
            &config_path,
            &data_dir,
            &["--s3-listen", "127.0.0.1:0"],
            &[
                ("STRATA_S3_ACCESS_KEY", DOOR_ACCESS_KEY),
                ("STRATA_S3_SECRET_KEY", DOOR_SECRET_KEY),
            ],
        );
        let endpoint = service.started["s3_listening"]
            .as_str()
            .unwrap_or_else(|| panic!("no s3_listening in the start line: {}", service.started))
            .to_string();
        (dir, service, endpoint)
    });
    endpoint
}

#[test]
fn strata_front_door_passes_the_conformance_suite() {
    run_suite(&Target {
        name: "strata",
        endpoint: strata_front_door().to_string(),
        access_key: DOOR_ACCESS_KEY.into(),
        secret_key: DOOR_SECRET_KEY.into(),
    });
}

#[test]
fn seaweedfs_passes_the_conformance_suite() {
    let server = seaweedfs();
    server
        .create_bucket(BUCKET)
        .unwrap_or_else(|e| panic!("{e}"));
    run_suite(&Target {
        name: "seaweedfs",
        endpoint: server.endpoint(),
        access_key: TEST_KEY_ID.into(),
        secret_key: TEST_SECRET.into(),
    });
}

/// The suite is not vacuous: a server that rejects the suite's signature fails it, with S3's
/// own error code in the report.
#[test]
fn the_suite_fails_against_a_server_that_rejects_its_key() {
    let server = seaweedfs();
    server
        .create_bucket(BUCKET)
        .unwrap_or_else(|e| panic!("{e}"));
    let target = Target {
        name: "seaweedfs",
        endpoint: server.endpoint(),
        access_key: TEST_KEY_ID.into(),
        secret_key: "not-the-secret".into(),
    };
    let (passed, report) = pytest(
        &target,
        &["-x", "-k", "test_put_get_head_delete_round_trip"],
    );
    assert!(!passed, "the suite passed with a wrong secret:\n{report}");
    assert!(report.contains("SignatureDoesNotMatch"), "{report}");
}

/// Nothing listening: the suite fails and says the connection was refused.
#[test]
fn the_suite_fails_when_nothing_listens() {
    let target = Target {
        name: "seaweedfs",
        endpoint: format!("http://127.0.0.1:{}", free_port()),
        access_key: TEST_KEY_ID.into(),
        secret_key: TEST_SECRET.into(),
    };
    let (passed, report) = pytest(&target, &["-x", "-k", "test_list_buckets_names_the_bucket"]);
    assert!(!passed, "the suite passed with no server:\n{report}");
    assert!(report.contains("Connect"), "{report}");
}
