//! Sources that change while `strata migrate` runs (issue 10, case 7): a file that grows or
//! changes during its copy is never published as verified with the bytes of a version it
//! no longer has. It is copied again until a copy sees it unchanged, or reported `changed`
//! (exit 1); a file still being written when its copy is due is deferred (`file_growing`)
//! and copied later in the same run, or reported `changing` after `--settle-timeout`.
//!
//! Copies are slowed with latency injected on source reads (`STRATA_FAULTS`); writers
//! append to the source from a thread, started once the copy is seen to have begun.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;

const KIB: usize = 1024;

/// `strata` with the settle time at its default unless the test passes `--settle`.
fn strata(sandbox: &Sandbox) -> Command {
    let mut cmd = sandbox.strata();
    cmd.env_remove("STRATA_SETTLE");
    cmd
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata")
}

/// A random file last modified an hour ago: not being written, so not deferred.
fn settled_file(path: &Path, len: usize, seed: u64) {
    random_file(path, len, seed);
    let old = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
}

fn append(path: &Path, len: usize, fill: u8) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(&vec![fill; len]).unwrap();
    file.sync_all().unwrap();
}

/// Wait (polling, bounded) until `ready` holds; panics with `what` otherwise.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// True once `dir` (recursively) holds a regular file.
fn holds_a_file(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            holds_a_file(&path)
        } else {
            true
        }
    })
}

/// Append `len` bytes to `path` every `every` until `child` exits (or `max` appends).
fn keep_appending(path: PathBuf, every: Duration, max: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for i in 0..max {
            append(&path, 4 * KIB, i as u8);
            std::thread::sleep(every);
        }
    })
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("wait for strata")
}

fn deferrals(report: &serde_json::Value, path: &str) -> Vec<String> {
    report["deferred"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["path"] == path)
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .collect()
}

fn failure<'a>(report: &'a serde_json::Value, path: &str) -> &'a str {
    report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} is not reported failed: {report}"))["error"]
        .as_str()
        .unwrap()
}

/// The scenario: a file is appended to while its (slowed) copy runs, with the
/// default settings. What lands at DST, and what `verify` accepts, is the final content.
#[test]
fn a_file_appended_to_during_its_copy_is_never_published_truncated() {
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let big = src.join("run/big.dat");
    settled_file(&big, 1024 * KIB, 1);
    settled_file(&src.join("other.txt"), 3000, 2);

    // 16 chunks of 64 KiB, one at a time, the first copy's reads slowed to 100 ms each.
    let mut cmd = strata(&sandbox);
    cmd.env(
        "STRATA_FAULTS",
        "src:read:latency=100ms:first=16:path=big.dat",
    )
    .args(["--json", "migrate", "--chunk-size", "64K", "--jobs", "1"])
    .args([&src, &dst]);
    let child = spawn(cmd);
    wait_until("the copy of big.dat to start", || {
        holds_a_file(&dst.join(".strata/staging"))
    });
    append(&big, 512 * KIB, 0xAB);
    let out = finish(child);

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let final_content = fs::read(&big).unwrap();
    assert_eq!(final_content.len(), 1536 * KIB);
    let copied = fs::read(dst.join("run/big.dat")).unwrap();
    assert_eq!(
        copied.len(),
        final_content.len(),
        "DST is not the truncated first copy"
    );
    assert!(copied == final_content, "DST holds the final content");
    let report = json(&out);
    assert_eq!(deferrals(&report, "run/big.dat"), ["changed"], "{report}");
    assert_eq!(report["bytes"], 1536 * KIB + 3000, "{report}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dst.join(".strata/manifest.json")).unwrap()).unwrap();
    let entry = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "run/big.dat")
        .unwrap();
    assert_eq!(entry["size"], 1536 * KIB);
    assert_eq!(entry["blake3"], b3sum(&big));
    let verify = sandbox.run(&["verify", dst.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));

    // The job is recorded with the new version: a re-run has nothing to copy.
    let again = sandbox.run(&[
        "--json",
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(json(&again)["bytes_sent"], 0);
}

/// The same in the packed layout: a chunk read from the file before it changed is never
/// recorded as its content; the packed store restores the final content.
#[test]
fn a_file_appended_to_during_a_packed_copy_is_stored_as_its_final_content() {
    let sandbox = Sandbox::new();
    let (src, packed, back) = (
        sandbox.path("src"),
        sandbox.path("packed"),
        sandbox.path("back"),
    );
    let big = src.join("big.dat");
    settled_file(&big, 1024 * KIB, 3);

    let mut cmd = strata(&sandbox);
    cmd.env("STRATA_FAULTS", "src:read:latency=100ms:first=17")
        .args(["--json", "migrate", "--layout", "packed", "--codec", "none"])
        .args(["--chunk-size", "64K", "--jobs", "1"])
        .args([&src, &packed]);
    let child = spawn(cmd);
    wait_until("the first chunk to be stored", || {
        holds_a_file(&packed.join("chunks"))
    });
    append(&big, 256 * KIB, 0xCD);
    let out = finish(child);

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let verify = sandbox.run(&["verify", packed.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    let restore = sandbox.run(&["migrate", packed.to_str().unwrap(), back.to_str().unwrap()]);
    assert_eq!(restore.status.code(), Some(0), "{}", stderr(&restore));
    let restored = fs::read(back.join("big.dat")).unwrap();
    let final_content = fs::read(&big).unwrap();
    assert_eq!(
        restored.len(),
        final_content.len(),
        "not the truncated first copy"
    );
    assert!(
        restored == final_content,
        "the packed store holds the final content"
    );
    assert_eq!(deferrals(&json(&out), "big.dat"), ["changed"]);
}

/// A file still being written when the run lists it is deferred (`file_growing`) and
/// copied in the same run once it has not changed for `--settle`: the run ends only when
/// it is copied, with its complete content.
#[test]
fn a_file_written_just_before_the_run_is_deferred_then_copied_whole() {
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let log = src.join("instrument.log");
    random_file(&log, 10 * KIB, 4);
    settled_file(&src.join("calm.bin"), 70 * KIB, 5);

    let writer = keep_appending(log.clone(), Duration::from_millis(100), 12);
    let mut cmd = strata(&sandbox);
    cmd.args(["--json", "migrate", "--settle", "1s"])
        .args([&src, &dst]);
    let out = finish(spawn(cmd));
    writer.join().unwrap();

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(
        deferrals(&report, "instrument.log"),
        ["file_growing"],
        "{report}"
    );
    assert!(deferrals(&report, "calm.bin").is_empty(), "{report}");
    assert_eq!(report["files_copied"], 2);
    assert!(
        fs::read(dst.join("instrument.log")).unwrap() == fs::read(&log).unwrap(),
        "the copy is of the file once its writer stopped"
    );
}

/// A file that never stops changing is reported `changing` after `--settle-timeout`:
/// exit 1, nothing published under its name, the rest of the dataset copied.
#[test]
fn a_file_that_keeps_changing_is_reported_after_the_settle_timeout() {
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let log = src.join("live.log");
    random_file(&log, 10 * KIB, 6);
    settled_file(&src.join("calm.bin"), 70 * KIB, 7);

    let mut cmd = strata(&sandbox);
    cmd.args([
        "--json",
        "migrate",
        "--settle",
        "1s",
        "--settle-timeout",
        "2s",
    ])
    .args([&src, &dst]);
    let mut child = spawn(cmd);
    while child.try_wait().unwrap().is_none() {
        append(&log, 4 * KIB, 1);
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = finish(child);

    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let error = failure(&report, "live.log");
    assert!(error.starts_with("changing: "), "{error}");
    assert!(
        error.contains(&format!("{}/live.log", src.display())),
        "{error}"
    );
    assert!(error.contains("--settle-timeout"), "{error}");
    assert!(report["root_hash"].is_null());
    assert!(!dst.join("live.log").exists(), "nothing published");
    assert!(fs::read(dst.join("calm.bin")).unwrap() == fs::read(src.join("calm.bin")).unwrap());
}

/// With `--settle 0` nothing is deferred, but a file that changes during every copy is
/// still never published: after three copies it is reported `changed` (exit 1). Once its
/// writer stops, a re-run copies its final content.
#[test]
fn a_file_changing_during_every_copy_is_reported_changed_not_published() {
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let log = src.join("busy.log");
    settled_file(&log, 256 * KIB, 8);

    // Every read of busy.log takes 150 ms, so each copy of its 4 chunks outlasts the
    // writer's 20 ms rhythm.
    let mut cmd = strata(&sandbox);
    cmd.env("STRATA_FAULTS", "src:read:latency=150ms:path=busy.log")
        .args(["--json", "migrate", "--settle", "0", "--chunk-size", "64K"])
        .args([&src, &dst]);
    let mut child = spawn(cmd);
    while child.try_wait().unwrap().is_none() {
        append(&log, 1024, 2);
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = finish(child);

    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let error = failure(&report, "busy.log");
    assert!(error.starts_with("changed: "), "{error}");
    assert!(
        error.contains(&format!("{}/busy.log", src.display())),
        "{error}"
    );
    assert_eq!(deferrals(&report, "busy.log"), ["changed", "changed"]);
    assert!(!dst.join("busy.log").exists(), "nothing published");

    let again = sandbox.run(&["migrate", src.to_str().unwrap(), dst.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(fs::read(dst.join("busy.log")).unwrap() == fs::read(&log).unwrap());
}

/// On an object store the ETag tells versions apart (Last-Modified is second-grained in a
/// HEAD): an object replaced by another of the same size during its copy is copied again,
/// and an unchanged one is copied once.
#[test]
fn an_s3_object_replaced_during_its_copy_is_copied_again() {
    use strata_store::testing::{moto, new_bucket, TEST_KEY_ID, TEST_SECRET};
    let sandbox = Sandbox::new();
    let (first, second, dst) = (
        sandbox.path("first"),
        sandbox.path("second"),
        sandbox.path("dst"),
    );
    random_file(&first.join("obj.bin"), 512 * KIB, 10);
    random_file(&first.join("calm.bin"), 3000, 11);
    random_file(&second.join("obj.bin"), 512 * KIB, 12);
    let remote = format!("s3://{}/src", new_bucket());
    let upload = sandbox.run_s3(&["migrate", first.to_str().unwrap(), &remote]);
    assert!(upload.status.success(), "{}", stderr(&upload));

    let mut cmd = strata(&sandbox);
    cmd.env(
        "STRATA_FAULTS",
        "src:read:latency=100ms:first=8:path=obj.bin",
    )
    .env("AWS_ACCESS_KEY_ID", TEST_KEY_ID)
    .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
    .args(["--json", "migrate", "--chunk-size", "64K", "--jobs", "1"])
    .args([
        "--settle",
        "0",
        "--s3-endpoint",
        &moto().endpoint(),
        &remote,
    ])
    .arg(&dst);
    let child = spawn(cmd);
    wait_until("the copy of obj.bin to start", || {
        holds_a_file(&dst.join(".strata/staging"))
    });
    // Same size, other bytes: only the ETag says it is another version.
    let replace = sandbox.run_s3(&["migrate", second.to_str().unwrap(), &remote, "--overwrite"]);
    assert!(replace.status.success(), "{}", stderr(&replace));
    let out = finish(child);

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        fs::read(dst.join("obj.bin")).unwrap() == fs::read(second.join("obj.bin")).unwrap(),
        "DST holds the object that replaced the one the copy started from"
    );
    let report = json(&out);
    assert_eq!(deferrals(&report, "obj.bin"), ["changed"], "{report}");
    assert!(deferrals(&report, "calm.bin").is_empty(), "{report}");
}
