//! The service's commands as a new user meets them: `access` on a key that is not stored,
//! `get` into a pipe that closes early, and `migrations` before, during and after moves.

mod serve_common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use serve_common::*;

const WAIT: Duration = Duration::from_secs(60);

/// A service with three local tiers (cold under the data dir too).
fn local_service(dir: &std::path::Path) -> Service {
    let data_dir = dir.join("data");
    let cold = data_dir.join("cold").display().to_string();
    let path = dir.join("strata.toml");
    std::fs::write(&path, config(&data_dir, &cold, "1h", "2h", "1h")).unwrap();
    Service::start(&path, &data_dir, &[])
}

fn put(service: &Service, dir: &std::path::Path, key: &str, data: &[u8]) {
    let file = dir.join("upload.bin");
    std::fs::write(&file, data).unwrap();
    let out = service.run(&["put", file.to_str().unwrap(), key]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn accepted_events(service: &Service) -> f64 {
    let metrics = service.json(&["metrics"]);
    metrics["strata_access_events_total{result=\"accepted\"}"]
        .as_f64()
        .unwrap_or_else(|| panic!("no accepted-events counter in {metrics}"))
}

#[test]
fn access_to_an_object_that_does_not_exist_is_refused_like_explain() {
    let dir = tempfile::tempdir().unwrap();
    let service = local_service(dir.path());
    let before = accepted_events(&service);

    let access = service.run(&["access", "no/such/key", "--count", "5"]);
    let explain = service.run(&["explain", "no/such/key"]);
    assert_eq!(access.status.code(), Some(2));
    assert_eq!(access.status.code(), explain.status.code());
    let stderr = String::from_utf8_lossy(&access.stderr);
    assert!(
        stderr.contains("no object \"no/such/key\"") && stderr.contains("not_found"),
        "{stderr}"
    );
    assert!(access.stdout.is_empty());
    assert_eq!(accepted_events(&service), before, "no event was recorded");

    // A stored object's accesses are recorded.
    put(&service, dir.path(), "some/key", b"content");
    let out = service.run(&["access", "some/key", "--count", "3"]);
    assert!(out.status.success());
    assert_eq!(accepted_events(&service), before + 3.0);
}

#[test]
fn get_into_a_pipe_closed_early_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let service = local_service(dir.path());
    // Far more than a pipe holds, so the reader's going away is seen by a write.
    let data = bytes(8 << 20, 13);
    put(&service, dir.path(), "big.bin", &data);

    let mut child = strata()
        .args(["get", "big.bin", "--server", &service.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    let mut stdout = child.stdout.take().unwrap();
    stdout.read_exact(&mut head).unwrap();
    assert_eq!(head, data[..10]);
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn moves_has_a_header_and_says_when_no_move_is_active() {
    let dir = tempfile::tempdir().unwrap();
    let service = local_service(dir.path());
    let listing = |args: &[&str]| {
        let out = service.run(args);
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(listing(&["moves"]).trim(), "no moves yet");

    // A spike promotes the object at once: one move, which finishes.
    put(&service, dir.path(), "runs/spiky.nc", b"hot data");
    let out = service.run(&["access", "runs/spiky.nc", "--count", "40"]);
    assert!(out.status.success());
    eventually(WAIT, "the promotion to finish", || {
        let jobs = service.json(&["moves"]);
        let jobs = jobs.as_array().unwrap();
        (jobs.len() == 1 && jobs[0]["state"] == "done").then_some(())
    });

    let all = listing(&["moves"]);
    // The old name, which scripts may use, is an alias.
    assert_eq!(listing(&["migrations"]), all);
    let mut lines = all.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "STATE", "MOVE", "REASON", "KEY"], "{all}");
    let row = lines.next().unwrap();
    assert!(
        row.contains("done") && row.contains("warm → hot") && row.ends_with("runs/spiky.nc"),
        "{all}"
    );
    assert_eq!(lines.next(), None, "{all}");

    assert_eq!(listing(&["moves", "--active"]).trim(), "no active moves");
    assert_eq!(
        listing(&["moves", "--state", "failed"]).trim(),
        "no moves match"
    );
}

#[test]
fn move_refuses_a_tier_the_keys_policy_forbids_and_policies_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let cold = data_dir.join("cold").display().to_string();
    let path = dir.path().join("strata.toml");
    let text = format!(
        "{}\n[[policy]]\nname = \"keep-warm\"\nprefix = \"pinned/\"\npinned_tier = \"warm\"\n",
        config(&data_dir, &cold, "1h", "2h", "1h")
    );
    std::fs::write(&path, text).unwrap();
    let service = Service::start(&path, &data_dir, &[]);
    put(&service, dir.path(), "pinned/a", b"stays on warm");
    put(&service, dir.path(), "free/b", b"goes anywhere");

    let refused = service.run(&["move", "pinned/a", "hot"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    for part in [
        "cannot move \"pinned/a\" to hot",
        "policy \"keep-warm\" (prefix \"pinned/\") forbids hot: pinned_tier (pinned to \"warm\")",
        "(policy_forbids, request ",
    ] {
        assert!(stderr.contains(part), "{stderr}");
    }
    assert!(refused.stdout.is_empty());

    let moved = service.run(&["move", "free/b", "cold"]);
    let stdout = String::from_utf8_lossy(&moved.stdout);
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(stdout.contains("queued: free/b warm → cold"), "{stdout}");

    let listed = service.json(&["policies"]);
    assert_eq!(listed["policies"][0]["policy"]["name"], "keep-warm");
    assert_eq!(
        listed["policies"][0]["allowed_tiers"],
        serde_json::json!(["warm"])
    );
    let text = service.run(&["policies"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("keep-warm (prefix \"pinned/\"): allows warm")
            && text.contains("  hot excluded by pinned_tier (pinned to \"warm\")"),
        "{text}"
    );
}
