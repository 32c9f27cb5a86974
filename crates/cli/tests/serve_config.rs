//! `strata serve` refuses what would lose or mix objects, or leave the service unusable,
//! with exit 2 and nothing written; and warns when its API is reachable beyond loopback.

mod serve_common;

use std::io::Read;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serve_common::*;

/// Two local tiers on the given stores.
fn two_tiers(data_dir: &Path, first: &Path, second: &str) -> String {
    format!(
        "default_tier = \"first\"\n[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\
         [[tier]]\nname = \"first\"\nstore = {:?}\n\
         [[tier]]\nname = \"second\"\nstore = {second:?}\n",
        data_dir.display().to_string(),
        first.display().to_string(),
    )
}

/// `strata serve ARGS`, expected to exit by itself; one that keeps serving is killed and
/// the test fails (instead of hanging).
fn serve(args: &[&str]) -> Output {
    let mut child = strata()
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "strata serve {args:?} kept running: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn overlapping_tier_stores_are_refused_by_strata_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = dir.path().join("store");
    let config = dir.path().join("strata.toml");
    for second in [
        format!("file://{}/", store.display()),
        format!("{}/objects", store.display()),
    ] {
        std::fs::write(&config, two_tiers(&data, &store, &second)).unwrap();
        let out = serve(&["--config", config.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{second}: {err}");
        let shown = store.display().to_string();
        for part in ["tier[1].store", "\"first\"", "\"second\"", shown.as_str()] {
            assert!(err.contains(part), "{second}: {err}");
        }
        assert!(
            !data.exists() && !store.exists(),
            "{second}: something was written"
        );
    }
}

#[test]
fn unusable_service_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    for (flag, value) in [
        ("--max-object-size", "0"),
        ("--max-batch-size", "0"),
        ("--max-batch-size", "1K"),
        ("--move-concurrency", "0"),
        ("--plan-interval", "0s"),
    ] {
        let out = serve(&[
            "--data-dir",
            data_arg,
            "--listen",
            "127.0.0.1:0",
            flag,
            value,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(
            err.contains(flag) && err.contains(value),
            "{flag} {value}: {err}"
        );
        assert!(!data.exists(), "{flag} {value}: the data dir was created");
    }
}

#[test]
fn listening_beyond_loopback_with_insecure_warns_that_there_is_no_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("strata.toml");
    let second = data.join("tiers/second").display().to_string();
    std::fs::write(
        &config,
        two_tiers(&data, &data.join("tiers/first"), &second),
    )
    .unwrap();
    // Refused without --insecure (crates/cli/tests/serve_auth.rs).
    let mut service = Service::start(&config, &data, &["--listen", "0.0.0.0:0", "--insecure"]);
    let mut stderr = service.child.stderr.take().unwrap();
    // The warning is logged before the start-up line that `start` waited for.
    service.kill();
    let mut logged = String::new();
    stderr.read_to_string(&mut logged).unwrap();
    assert!(
        logged.contains("--insecure") && logged.contains("not a loopback address"),
        "{logged}"
    );
}

#[test]
fn a_policy_no_tier_satisfies_is_refused_at_start_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("strata.toml");
    let text = format!(
        "{}region = \"eu-west\"\n[[policy]]\nname = \"us-only\"\nprefix = \"us/\"\n\
         regions = [\"us-east\"]\n",
        two_tiers(&data, &dir.path().join("first"), "/nonexistent/second")
    );
    std::fs::write(&config, text).unwrap();
    let out = serve(&["--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for part in [
        "policy[0]",
        "policy \"us-only\" (prefix \"us/\") allows no tier",
        "first excluded by regions (the tier declares no region; allowed [\"us-east\"])",
        "second excluded by regions (region \"eu-west\" is not one of [\"us-east\"])",
    ] {
        assert!(err.contains(part), "{err}");
    }
    assert!(!data.exists(), "nothing was written");
}
