//! End-to-end: many small files, local to local, go through the small-file batches
//! (`crates/mover/src/small.rs`): every byte, mtime and permission arrives, the manifest
//! (built from the catalog's verified rows) has each file's BLAKE3, every `--verify` mode
//! works, and a SIGKILL mid-way followed by the same command finishes the job with nothing
//! wrong ever visible under a final name.

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// `count` files of 0 to 64 KiB in nested directories (three levels, some created only
/// for one file), each with its own mtime and mode; their relative paths.
fn small_tree(root: &Path, count: usize) -> Vec<String> {
    let mut paths = Vec::new();
    for i in 0..count {
        let path = format!("d{}/e{}/f{}/file{i:05}.dat", i % 5, i % 11, i % 3);
        let len = if i % 97 == 0 {
            0
        } else {
            (i * 7919) % (64 << 10)
        };
        let full = root.join(&path);
        random_file(&full, len, i as u64);
        let mtime = UNIX_EPOCH + Duration::new(1_600_000_000 + i as u64 * 37, (i as u32) * 1_111);
        fs::File::options()
            .write(true)
            .open(&full)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let mode = [0o644, 0o600, 0o640, 0o755][i % 4];
        fs::set_permissions(&full, fs::Permissions::from_mode(mode)).unwrap();
        paths.push(path);
    }
    paths
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every file identical in bytes, mtime and mode; the manifest lists each with the BLAKE3
/// of its bytes; no staging file left.
fn assert_migrated(src: &Path, dst: &Path, paths: &[String]) {
    for path in paths {
        let (from, to) = (src.join(path), dst.join(path));
        assert!(
            fs::read(&from).unwrap() == fs::read(&to).unwrap(),
            "{path} differs"
        );
        assert_eq!(mtime(&from), mtime(&to), "{path}: mtime");
        assert_eq!(mode(&from), mode(&to), "{path}: mode");
    }
    assert_eq!(list_files(dst).len(), paths.len(), "no extra files");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dst.join(".strata/manifest.json")).unwrap()).unwrap();
    let recorded: HashMap<String, String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap().to_string();
            (path, f["blake3"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(recorded.len(), paths.len());
    for path in paths {
        let bytes = fs::read(src.join(path)).unwrap();
        assert_eq!(
            recorded[path],
            blake3::hash(&bytes).to_hex().as_str(),
            "{path}: the catalog's hash"
        );
    }
    let staging = dst.join(".strata/staging");
    let leftovers = fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "staging files left behind");
}

#[test]
fn many_small_files_in_nested_directories_arrive_whole_with_their_metadata() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let paths = small_tree(&src, 700);
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["files_copied"], 700, "{report}");
    assert_eq!(report["verify"], "cache", "{report}");
    assert_eq!(report["chunks_resent"], 0, "{report}");
    assert_migrated(&src, &dst, &paths);
    let verify = sb.run(&["verify", dst.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", stdout(&verify));
}

#[test]
fn every_verify_mode_copies_small_files() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    let paths = small_tree(&src, 120);
    for mode in ["sent", "cache", "device"] {
        let dst = sb.path(&format!("dst-{mode}"));
        let out = sb.run(&[
            "migrate",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            "--verify",
            mode,
            "--json",
        ]);
        if mode == "device" && stderr(&out).contains("O_DIRECT") {
            eprintln!("skipping `device`: this file system has no direct I/O");
            continue;
        }
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        assert_eq!(json(&out)["verify"], mode);
        assert_migrated(&src, &dst, &paths);
    }
}

#[test]
fn a_kill_mid_way_then_the_same_command_finishes_the_job() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let paths = small_tree(&src, 3000);
    let args = [
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--json",
    ];
    let mut killed = false;
    for _attempt in 0..5 {
        let mut child = sb
            .strata()
            .args(args)
            .stdout(fs::File::create(sb.path("migrate.out")).unwrap())
            .stderr(fs::File::create(sb.path("migrate.err")).unwrap())
            .spawn()
            .unwrap();
        // Kill once some files are recorded done (or, on a fast machine, at once).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            let status = sb.run(&["status", "--json"]);
            if status.status.success() && json(&status)[0]["files_done"].as_u64() > Some(0) {
                break;
            }
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            killed = true;
            break;
        }
        // Finished before the kill: it must have succeeded; start over.
        let status = child.wait().unwrap();
        // With --json a failure is reported on stdout, so both are shown.
        let errors = fs::read_to_string(sb.path("migrate.err")).unwrap_or_default();
        let report = fs::read_to_string(sb.path("migrate.out")).unwrap_or_default();
        assert!(
            status.success(),
            "the migration failed ({status}): {errors}\n{report}"
        );
        fs::remove_dir_all(&dst).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", sb.catalog().display()));
        }
    }
    assert!(killed, "every run finished before it could be killed");
    // Nothing under a final name differs from its source.
    for name in list_files(&dst) {
        assert!(
            fs::read(dst.join(&name)).unwrap() == fs::read(src.join(&name)).unwrap(),
            "{name} visible under its final name with wrong content after the kill"
        );
    }
    let out = sb.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let done = report["files_copied"].as_u64().unwrap()
        + report["files_resumed"].as_u64().unwrap()
        + report["files_skipped"].as_u64().unwrap();
    assert_eq!(done, 3000, "{report}");
    assert_migrated(&src, &dst, &paths);
}
