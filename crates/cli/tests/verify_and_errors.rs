//! End-to-end: `strata verify` on damaged destinations, and bad input on every command.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use common::*;

fn migrated(sb: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf) {
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    sample_tree(&src);
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "64K",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (src, dst)
}

#[test]
fn verify_passes_on_an_intact_copy() {
    let sb = Sandbox::new();
    let (_, dst) = migrated(&sb);
    let out = sb.run(&["verify", dst.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let report = json(&out);
    assert_eq!(report["damaged"].as_array().unwrap().len(), 0);
    assert_eq!(report["files_ok"], report["files"]);
}

#[test]
fn verify_names_damaged_files_chunk_ranges_and_missing_files() {
    let sb = Sandbox::new();
    let (_, dst) = migrated(&sb);
    // Flip one bit in the third 64 KiB chunk of a multi-chunk file.
    let victim = dst.join("big/many");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&victim)
        .unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, 2 * 65536 + 10).unwrap();
    byte[0] ^= 0x10;
    file.write_all_at(&byte, 2 * 65536 + 10).unwrap();
    drop(file);
    fs::remove_file(dst.join("small/f003")).unwrap();
    fs::write(dst.join("edge/exact"), b"short").unwrap();

    let out = sb.run(&["verify", dst.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("big/many") && text.contains("131072..196608"),
        "{text}"
    );
    assert!(
        text.contains("small/f003") && text.contains("missing"),
        "{text}"
    );
    assert!(
        text.contains("edge/exact") && text.contains("size"),
        "{text}"
    );
    assert!(text.contains("3 damaged"), "{text}");
    assert!(
        text.contains("to fix: `strata repair"),
        "says what to do: {text}"
    );

    let report = json(&sb.run(&["verify", dst.to_str().unwrap(), "--json"]));
    let damaged = report["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 3);
    let many = damaged.iter().find(|d| d["path"] == "big/many").unwrap();
    assert_eq!(many["ranges"], serde_json::json!([[131072, 196608]]));
}

#[test]
fn verify_without_manifest_says_what_to_do() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.path("plain")).unwrap();
    let out = sb.run(&["verify", sb.path("plain").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("manifest") && err.contains("plain"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
}

#[test]
fn a_tampered_manifest_is_refused() {
    let sb = Sandbox::new();
    let (_, dst) = migrated(&sb);
    let path = dst.join(".strata/manifest.json");
    let text = fs::read_to_string(&path).unwrap();
    let tampered = text.replacen("\"size\": 5000", "\"size\": 5001", 1);
    fs::write(&path, &tampered).unwrap();
    // The copy stands in, and the damaged primary is reported.
    let out = sb.run(&["verify", dst.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("inconsistent"), "{}", stdout(&out));
    // With the copy tampered too, nothing trustworthy is left.
    fs::write(dst.join(".strata/manifest.copy.json"), &tampered).unwrap();
    let out = sb.run(&["verify", dst.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("inconsistent"), "{}", stderr(&out));
}

#[test]
fn missing_source_is_a_clear_one_line_error() {
    let sb = Sandbox::new();
    let missing = sb.path("no-such-dir");
    let out = sb.run(&[
        "migrate",
        missing.to_str().unwrap(),
        sb.path("dst").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no-such-dir"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!sb.path("dst").exists());
}

#[test]
fn destination_inside_source_is_refused() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    sample_tree(&src);
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        src.join("copy").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("inside source") && err.contains("copy"),
        "{err}"
    );
    assert!(!src.join("copy").exists());
}

#[test]
fn invalid_uris_are_refused_with_what_is_accepted() {
    let sb = Sandbox::new();
    for bad in ["ftp://host/x", "s3://", "s3://Bad_Bucket/x"] {
        let out = sb.run(&["migrate", bad, sb.path("dst").to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = stderr(&out);
        assert!(
            err.contains(bad.trim_end_matches("/x")) || err.contains("s3://"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn unreachable_s3_endpoint_fails_fast_and_clearly() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    sample_tree(&src);
    // A port on loopback with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = sb
        .strata()
        .args([
            "migrate",
            src.to_str().unwrap(),
            "s3://bucket/data",
            "--s3-endpoint",
            &format!("http://127.0.0.1:{port}"),
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY")
        .env("AWS_SECRET_ACCESS_KEY", "very-secret-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&port.to_string()), "names the endpoint: {err}");
    assert!(!err.contains("very-secret-value"), "secret leaked: {err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn special_files_loops_and_broken_links_are_reported_and_the_rest_copied() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    random_file(&src.join("good/a.bin"), 3000, 1);
    let fifo = std::ffi::CString::new(src.join("good/pipe").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink(&src, src.join("good/loop")).unwrap();
    std::os::unix::fs::symlink(src.join("nowhere"), src.join("dangling")).unwrap();

    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--json",
    ]);
    let report = json(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreadable entry makes the run incomplete"
    );
    assert_eq!(
        fs::read(dst.join("good/a.bin")).unwrap(),
        fs::read(src.join("good/a.bin")).unwrap()
    );
    let skipped: Vec<&str> = report["skipped_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(skipped.iter().any(|p| p.contains("pipe")), "{skipped:?}");
    assert!(skipped.iter().any(|p| p.contains("loop")), "{skipped:?}");
    let unreadable = report["unreadable_entries"].as_array().unwrap();
    assert!(
        unreadable
            .iter()
            .any(|e| e["path"].as_str().unwrap().contains("dangling")),
        "{unreadable:?}"
    );
}

#[test]
fn a_full_destination_disk_stops_cleanly_and_resumes_after_space_is_freed() {
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "this test mounts a small tmpfs and needs root (CI and the dev machines run as root)"
        );
    }
    let sb = Sandbox::new();
    let (src, mnt) = (sb.path("src"), sb.path("small-disk"));
    for i in 0..6 {
        random_file(&src.join(format!("f{i}")), 700_000, i);
    }
    fs::create_dir_all(&mnt).unwrap();
    let mount = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=2m",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(mount.success(), "mount tmpfs failed");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let guard = Unmount(mnt.clone());
    let dst = mnt.join("dst");
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "64K",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout {} stderr {}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("full") && err.contains("re-run"), "{err}");
    // Whatever was published is complete and correct.
    for name in list_files(&dst) {
        assert_eq!(
            fs::read(dst.join(&name)).unwrap(),
            fs::read(src.join(&name)).unwrap(),
            "{name}"
        );
    }
    // Make room (remount bigger) and resume.
    let remount = std::process::Command::new("mount")
        .args(["-o", "remount,size=16m", mnt.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(remount.success());
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "64K",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for i in 0..6 {
        let name = format!("f{i}");
        assert_eq!(
            fs::read(dst.join(&name)).unwrap(),
            fs::read(src.join(&name)).unwrap()
        );
    }
    drop(guard);
}

/// Every command's output goes through one writer: a reader that went away before the
/// command printed (`strata status | head -n 0`) costs the output, never a panic, and the
/// exit status is still the work's.
#[test]
fn a_closed_output_pipe_never_panics_and_keeps_the_exit_status() {
    let sb = Sandbox::new();
    let (_src, dst) = migrated(&sb);
    let dst = dst.to_str().unwrap();
    let run_unread = |args: &[&str]| {
        let mut child = sb
            .strata()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        out.status.code()
    };
    for args in [
        &["status"][..],
        &["--json", "status"],
        &["verify", dst],
        &["catalog", "check"],
    ] {
        assert_eq!(run_unread(args), Some(0), "{args:?}");
    }
    // Damage still says so by the exit status when nobody reads the report.
    fs::remove_file(std::path::Path::new(dst).join("big/many")).unwrap();
    assert_eq!(run_unread(&["verify", dst]), Some(1));
}
