//! End-to-end: `strata migrate` between local trees, with the real binary.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use common::*;

#[test]
fn migrates_a_tree_byte_identical_with_b3sum_compatible_manifest() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = sample_tree(&src);
    fs::set_permissions(src.join("one-byte"), fs::Permissions::from_mode(0o600)).unwrap();

    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "64K",
        "--jobs",
        "4",
        "--json",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["files"], files.len());
    assert_eq!(report["bytes"], files.iter().map(|f| f.1).sum::<usize>());
    assert_eq!(report["files_copied"], files.len());
    let root = report["root_hash"].as_str().expect("root hash");
    assert_eq!(root.len(), 64);
    assert!(report["seconds"].as_f64().is_some());

    assert_same_files(&src, &dst, &files);
    assert_eq!(
        list_files(&dst).len(),
        files.len(),
        "no extra or staging files under final names"
    );

    // The manifest records exactly what b3sum prints.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dst.join(".strata/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "strata-dataset-manifest");
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["root_hash"], root);
    for entry in manifest["files"].as_array().unwrap() {
        let path = entry["path"].as_str().unwrap();
        assert_eq!(
            entry["blake3"].as_str().unwrap(),
            b3sum(&src.join(path)),
            "{path}"
        );
    }
    // And the b3sums listing passes `b3sum --check` from the destination root.
    let check = Command::new("b3sum")
        .arg("--check")
        .arg(".strata/b3sums")
        .current_dir(&dst)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "b3sum --check failed: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    // mtime and permission bits are kept.
    for (path, _) in &files {
        let (a, b) = (
            fs::metadata(src.join(path)).unwrap(),
            fs::metadata(dst.join(path)).unwrap(),
        );
        assert_eq!(a.mode() & 0o7777, b.mode() & 0o7777, "{path} mode");
        assert_eq!(a.mtime(), b.mtime(), "{path} mtime");
        assert_eq!(a.mtime_nsec(), b.mtime_nsec(), "{path} mtime ns");
    }
}

#[test]
fn rerun_of_a_finished_job_moves_nothing_and_status_lists_it() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    sample_tree(&src);
    let first = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "64K",
        "--json",
    ]);
    assert!(first.status.success(), "{}", stderr(&first));
    let second = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "64K",
        "--json",
    ]);
    assert!(second.status.success(), "{}", stderr(&second));
    let (a, b) = (json(&first), json(&second));
    assert_eq!(b["bytes_sent"], 0, "a finished job sends nothing again");
    assert_eq!(a["root_hash"], b["root_hash"]);

    let status = sb.run(&["status", "--json"]);
    assert!(status.status.success());
    let jobs = json(&status);
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["state"], "done");
    assert_eq!(jobs[0]["files_done"], jobs[0]["files_total"]);
    let text = stdout(&sb.run(&["status"]));
    assert!(
        text.contains("done") && text.contains(src.to_str().unwrap()),
        "{text}"
    );
}

#[test]
fn dry_run_prints_the_plan_and_moves_nothing() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = sample_tree(&src);
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "64K",
        "--dry-run",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = json(&out);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["files"], files.len());
    let expected_chunks: usize = files
        .iter()
        .map(|(_, len)| len.div_ceil(65536).max(1))
        .sum();
    assert_eq!(plan["chunks"], expected_chunks);
    assert!(!dst.exists(), "dry run must not create the destination");
    let text = stdout(&sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--dry-run",
    ]));
    assert!(
        text.contains(&format!("{} files", files.len())) && text.contains("chunks"),
        "{text}"
    );
}

#[test]
fn different_existing_file_is_kept_unless_overwrite() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    random_file(&src.join("data.bin"), 10_000, 1);
    random_file(&src.join("other.bin"), 100, 2);
    random_file(&dst.join("data.bin"), 10_000, 99); // same size, different bytes
    let before = fs::read(dst.join("data.bin")).unwrap();

    let out = sb.run(&["migrate", src.to_str().unwrap(), dst.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused file makes the run incomplete"
    );
    let err = stderr(&out) + &stdout(&out);
    assert!(
        err.contains("data.bin") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(
        fs::read(dst.join("data.bin")).unwrap(),
        before,
        "existing file untouched"
    );
    assert_eq!(
        fs::read(dst.join("other.bin")).unwrap(),
        fs::read(src.join("other.bin")).unwrap()
    );

    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--overwrite",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(dst.join("data.bin")).unwrap(),
        fs::read(src.join("data.bin")).unwrap()
    );
}

#[test]
fn identical_existing_files_are_skipped() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    random_file(&src.join("same.bin"), 200_000, 5);
    fs::create_dir_all(&dst).unwrap();
    fs::copy(src.join("same.bin"), dst.join("same.bin")).unwrap();
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "64K",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["files_skipped"], 1);
    assert_eq!(report["bytes_sent"], 0);
    // The manifest still lists it with chunk values, so verify can name damaged ranges.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dst.join(".strata/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"][0]["chunks"].as_array().unwrap().len(), 4);
}

#[test]
fn no_verify_still_hashes_and_writes_the_manifest() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = sample_tree(&src);
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--no-verify",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_files(&src, &dst, &files);
    let verify = sb.run(&["verify", dst.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", stdout(&verify));
}

#[test]
fn bwlimit_caps_a_local_job_and_status_shows_the_live_bandwidth() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    random_file(&src.join("a.bin"), 6 << 20, 3);
    let child = sb
        .strata()
        .args([
            "migrate",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            "--bwlimit",
            "1M",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut seen = None;
    while started.elapsed() < std::time::Duration::from_secs(20) && seen.is_none() {
        let out = sb.run(&["status", "--json"]);
        if out.status.success() {
            let jobs = json(&out);
            if let Some(throttle) = jobs.get(0).and_then(|j| j.get("throttle")) {
                if throttle["stores"].as_array().is_some_and(|s| !s.is_empty()) {
                    seen = Some(throttle.clone());
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let throttle = seen.expect("strata status shows the running job's bandwidth");
    let caps: Vec<u64> = throttle["stores"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["read"]["cap"].as_u64())
        .collect();
    assert!(
        !caps.is_empty() && caps.iter().all(|&c| c == 1 << 20),
        "{throttle}"
    );
    let text = stdout(&sb.run(&["status"]));
    assert!(
        text.contains("bandwidth:") && text.contains("1.0 MiB/s"),
        "{text}"
    );
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(out.status.success());
    // 6 MiB at 1 MiB/s (after the bucket's burst) cannot finish in under 4 seconds.
    assert!(elapsed > 4.0, "the cap did not hold: {elapsed:.1}s");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["throttle"]["stores"]
        .as_array()
        .is_some_and(|s| s.len() == 2));
    assert!(
        !stdout(&sb.run(&["status"])).contains("bandwidth:"),
        "live state is removed at the end"
    );
}
