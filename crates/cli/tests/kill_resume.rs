//! End-to-end: a real `strata migrate` is killed with SIGKILL at random moments; running the
//! same command again finishes the job byte-identical, redoing only unverified chunks, and
//! no file is ever visible under its final name with wrong content.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};

/// The tests here time real processes against each other; run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn sigkill_at_random_points_then_rerun_finishes_byte_identical() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let seed: u64 = std::env::var("STRATA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill schedule seed {seed} (set STRATA_TEST_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let mut files = Vec::new();
    for i in 0..4 {
        let path = format!("large/part{i}.bin");
        random_file(&src.join(&path), 12 << 20, 100 + i);
        files.push((path, 12usize << 20));
    }
    for i in 0..300 {
        let path = format!("small/{:02}/f{i}", i % 7);
        random_file(&src.join(&path), 1 + (i * 977) % 20_000, i as u64);
        files.push((path, 0));
    }
    let total: u64 = files
        .iter()
        .map(|(p, _)| fs::metadata(src.join(p)).unwrap().len())
        .sum();
    let args = [
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "256K",
        "--jobs",
        "4",
        "--json",
    ];

    // Calibrate: how long does an uninterrupted run of the same dataset take here? The
    // fastest of two runs (the first one warms the page cache).
    let mut full_run = Duration::MAX;
    for attempt in 0..2 {
        let calibration_dst = sb.path(&format!("calibration{attempt}"));
        let started = std::time::Instant::now();
        let out = sb
            .strata()
            .env(
                "STRATA_CATALOG",
                sb.path(&format!("calibration{attempt}.db")),
            )
            .args([
                "migrate",
                src.to_str().unwrap(),
                calibration_dst.to_str().unwrap(),
                "--chunk-size",
                "256K",
                "--jobs",
                "4",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        full_run = full_run.min(started.elapsed());
        fs::remove_dir_all(&calibration_dst).unwrap();
    }
    eprintln!("an uninterrupted run takes {full_run:?}");

    let mut kills = 0;
    let mut progress_seen = 0u64;
    let mut latest = 0.9;
    for round in 0..10 {
        let mut child = sb
            .strata()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Kill anywhere in what an uninterrupted run needs: process start,
        // planning, mid-copy and publishing are all hit across rounds and seeds.
        let delay = full_run
            .mul_f64(rng.random_range(0.05..latest))
            .max(Duration::from_millis(5));
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let status = child.wait().unwrap();
        eprintln!("round {round}: killed after {delay:?}: {}", !finished);
        if finished {
            assert!(status.success(), "run finished early but failed");
            if kills > 0 {
                break;
            }
            // Finished before any kill (the machine got faster): start over, kill sooner.
            fs::remove_dir_all(&dst).unwrap();
            for suffix in ["", "-wal", "-shm"] {
                let _ = fs::remove_file(format!("{}{suffix}", sb.catalog().display()));
            }
            latest = (latest / 2.0).max(0.1);
            continue;
        }
        // Invariant: nothing under a final name differs from the source.
        for name in list_files(&dst) {
            assert!(
                fs::read(dst.join(&name)).unwrap() == fs::read(src.join(&name)).unwrap(),
                "{name} visible under its final name with wrong content after a kill"
            );
        }
        let status = json(&sb.run(&["status", "--json"]));
        progress_seen = progress_seen.max(status[0]["bytes_done"].as_u64().unwrap_or(0));
    }
    assert!(
        kills > 0,
        "no run was killed; the dataset is too small for this machine"
    );

    let out = sb.run(&args);
    assert!(out.status.success(), "final run failed: {}", stderr(&out));
    let report = json(&out);
    let sent = report["bytes_sent"].as_u64().unwrap();
    eprintln!("final run sent {sent} of {total} bytes; progress seen before: {progress_seen}");
    assert!(sent <= total, "sent more than the dataset");
    if progress_seen > 2 << 20 {
        assert!(
            sent < total,
            "resume must not resend everything (progress {progress_seen} was recorded)"
        );
    }
    for (path, _) in &files {
        assert!(
            fs::read(src.join(path)).unwrap() == fs::read(dst.join(path)).unwrap(),
            "{path} differs"
        );
    }
    assert_eq!(list_files(&dst).len(), files.len());
    let check = std::process::Command::new("b3sum")
        .arg("--check")
        .arg("--quiet")
        .arg(".strata/b3sums")
        .current_dir(&dst)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let verify = sb.run(&["verify", dst.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    // No staging leftovers once the job is done.
    let staging = dst.join(".strata/staging");
    let leftovers = fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "staging files left behind in {staging:?}");
}

#[test]
fn resume_redoes_only_chunks_not_yet_verified() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let size: u64 = 192 << 20;
    random_file(&src.join("large.bin"), size as usize, 11);
    let args = [
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "256K",
        "--jobs",
        "1",
        "--json",
    ];
    // The first run is paced (about 8 s for the file), so that the kill lands mid-copy
    // however fast the machine: unpaced, a quiet machine finished the copy between two
    // polls of `strata status`. The re-run is not paced.
    let mut child = sb
        .strata()
        .args(args)
        .args(["--bwlimit", "24M"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the catalog records a good part of the file as verified.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut recorded = 0;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let status = sb.run(&["status", "--json"]);
        if status.status.success() {
            recorded = json(&status)[0]["bytes_done"].as_u64().unwrap_or(0);
            if recorded >= size / 4 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the copy finished before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // What the catalog holds after the kill (the recorder may have committed more).
    let recorded_after = json(&sb.run(&["status", "--json"]))[0]["bytes_done"]
        .as_u64()
        .unwrap();
    assert!(
        recorded_after >= recorded && recorded_after < size,
        "{recorded_after}"
    );
    assert!(
        !dst.join("large.bin").exists(),
        "no partial file under the final name"
    );

    let out = sb.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = json(&out)["bytes_sent"].as_u64().unwrap();
    eprintln!("recorded {recorded_after} of {size} before the kill; the re-run sent {sent}");
    assert!(
        sent <= size - recorded_after,
        "re-run sent {sent}, but {recorded_after} bytes were already verified"
    );
    assert_eq!(
        fs::read(dst.join("large.bin")).unwrap(),
        fs::read(src.join("large.bin")).unwrap()
    );
}
