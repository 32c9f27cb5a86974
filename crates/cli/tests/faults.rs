//! End-to-end fault injection: the real `strata` binary with `STRATA_FAULTS`, checking that
//! a migration repairs what the destination damages, fails what it cannot repair without
//! publishing it, and that `strata verify` finds what a lost publish left missing.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

/// Runs `strata ARGS` with `STRATA_FAULTS=spec`.
fn run_with_faults(sb: &Sandbox, spec: &str, args: &[&str]) -> Output {
    sb.strata()
        .env("STRATA_FAULTS", spec)
        .args(args)
        .output()
        .expect("run strata")
}

fn migrate_json(sb: &Sandbox, spec: &str, src: &Path, dst: &Path, chunk: &str) -> Output {
    run_with_faults(
        sb,
        spec,
        &[
            "migrate",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            "--chunk-size",
            chunk,
            "--jobs",
            "4",
            "--json",
        ],
    )
}

/// `files` of the given sizes under `root`, random content.
fn make_files(root: &Path, files: &[(&str, usize)]) -> Vec<(String, usize)> {
    for (i, (path, len)) in files.iter().enumerate() {
        random_file(&root.join(path), *len, 100 + i as u64);
    }
    files.iter().map(|(p, l)| (p.to_string(), *l)).collect()
}

fn assert_warned_once(out: &Output) {
    let err = stderr(out);
    assert_eq!(
        err.matches("fault injection active").count(),
        1,
        "one warning line: {err}"
    );
}

#[test]
fn a_flipped_chunk_is_fetched_and_sent_again_once() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    const CHUNK: usize = 16 << 10;
    // Every chunk is full-sized, so "one chunk" is exactly CHUNK bytes.
    let files = make_files(
        &src,
        &[
            ("big.bin", 8 * CHUNK),
            ("d/other.bin", 3 * CHUNK),
            ("small", CHUNK),
        ],
    );

    let out = migrate_json(&sb, "dst:write:flip:nth=2", &src, &dst, "16K");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_warned_once(&out);
    let report = json(&out);
    assert_eq!(report["chunks"], 12);
    assert_eq!(report["chunks_resent"], 1, "{report}");
    assert_eq!(report["bytes_resent"], CHUNK, "{report}");
    assert_eq!(
        report["bytes_sent"],
        13 * CHUNK,
        "each chunk once, one twice"
    );
    assert!(report["failed"].as_array().unwrap().is_empty());
    assert_same_files(&src, &dst, &files);
    for (path, _) in &files {
        assert_eq!(b3sum(&src.join(path)), b3sum(&dst.join(path)), "{path}");
    }
}

#[test]
fn a_file_whose_every_write_is_damaged_fails_alone_and_is_not_published() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = make_files(
        &src,
        &[
            ("a.txt", 3000),
            ("bad.bin", 40_000),
            ("c/d.txt", 50_000),
            ("e.txt", 10),
        ],
    );

    let out = migrate_json(&sb, "dst:write:flip:path=bad.bin", &src, &dst, "16K");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let report = json(&out);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["path"], "bad.bin");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("did not verify"), "{error}");
    assert!(report["bytes_resent"].as_u64().unwrap() > 0);
    assert!(
        report["root_hash"].is_null(),
        "no dataset hash while a file is missing"
    );

    let good: Vec<_> = files.iter().filter(|f| f.0 != "bad.bin").cloned().collect();
    assert_same_files(&src, &dst, &good);
    assert!(!dst.join("bad.bin").exists(), "damaged file published");
    assert_eq!(list_files(&dst), ["a.txt", "c/d.txt", "e.txt"]);

    // Without the fault, a re-run copies the file that failed, and only it.
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "16K",
        "--json",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(json(&out)["files_copied"], 1);
    assert_same_files(&src, &dst, &files);
}

#[test]
fn a_permanent_write_error_names_the_file_and_the_rest_is_copied() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = make_files(
        &src,
        &[("ok.txt", 5000), ("x/broken.dat", 70_000), ("z", 1)],
    );

    let out = run_with_faults(
        &sb,
        "dst:write:error=permanent:path=broken",
        &[
            "migrate",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            "--chunk-size",
            "16K",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let line = text
        .lines()
        .find(|l| l.contains("x/broken.dat") && l.contains("injected fault"))
        .unwrap_or_else(|| panic!("no line names the file and the fault: {text}"));
    assert!(
        line.contains("dst:write:error=permanent:path=broken"),
        "{line}"
    );
    let good: Vec<_> = files
        .iter()
        .filter(|f| f.0 != "x/broken.dat")
        .cloned()
        .collect();
    assert_same_files(&src, &dst, &good);
    assert_eq!(list_files(&dst), ["ok.txt", "z"]);
}

#[test]
fn one_percent_of_chunks_flipped_costs_about_one_percent_more() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    // 8 files of 2 MiB in 4 KiB chunks: 4096 chunks.
    let names: Vec<String> = (0..8).map(|i| format!("part-{i}.bin")).collect();
    let specs: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 2 << 20)).collect();
    let files = make_files(&src, &specs);

    let out = migrate_json(&sb, "dst:write:flip:p=1%:seed=2024", &src, &dst, "4K");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let report = json(&out);
    let bytes = report["bytes"].as_u64().unwrap();
    let resent = report["bytes_resent"].as_u64().unwrap();
    let chunks_resent = report["chunks_resent"].as_u64().unwrap();
    assert_eq!(bytes, 16 << 20);
    assert_eq!(resent, chunks_resent * 4096, "whole chunks, and only those");
    // The draws are deterministic (seeded hash of path and offset): about 1% of 4096.
    assert!(resent * 100 >= bytes / 4, "too few re-sent: {report}");
    assert!(resent * 100 <= bytes * 2, "more than 2% re-sent: {report}");
    assert_eq!(report["bytes_sent"].as_u64().unwrap(), bytes + resent);
    assert_same_files(&src, &dst, &files);
}

#[test]
fn verify_reports_files_a_lost_publish_left_missing() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    // b.bin is one chunk (group commit), c.bin several (published on its own).
    let files = make_files(&src, &[("a.txt", 2000), ("b.bin", 3000), ("c.bin", 50_000)]);

    let out = migrate_json(&sb, "dst:publish:lose:path=*.bin", &src, &dst, "16K");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_warned_once(&out);
    assert_eq!(list_files(&dst), ["a.txt"], "the lost objects are absent");

    let out = sb.run(&["verify", dst.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let report = json(&out);
    let damaged = report["damaged"].as_array().unwrap();
    let mut missing: Vec<(&str, &str)> = damaged
        .iter()
        .map(|d| (d["path"].as_str().unwrap(), d["problem"].as_str().unwrap()))
        .collect();
    missing.sort();
    assert_eq!(
        missing,
        [("b.bin", "missing"), ("c.bin", "missing")],
        "{report}"
    );
    assert_eq!(report["files_ok"], 1);

    // The text output names them too.
    let out = sb.run(&["verify", dst.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("DAMAGED b.bin: missing"), "{text}");
    assert!(text.contains("DAMAGED c.bin: missing"), "{text}");
    assert_same_files(&src, &dst, &files[..1]);
}

#[test]
fn transient_source_errors_are_retried() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = make_files(&src, &[("one", 40_000), ("two", 1000)]);
    let out = migrate_json(&sb, "src:read:error:first=2", &src, &dst, "16K");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(json(&out)["files_copied"], 2);
    assert_same_files(&src, &dst, &files);
}

#[test]
fn a_malformed_spec_is_one_clear_line_and_exit_2() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    make_files(&src, &[("f", 10)]);
    for (spec, token, accepted) in [
        (
            "dst:write:flipp",
            "`flipp`",
            "accepted effects: flip[=OFFSET], truncate",
        ),
        ("dst:write:flip:nth=0", "`nth=0`", "nth=N"),
        (
            "source:read:error",
            "`source`",
            "accepted sides: src, dst, any",
        ),
    ] {
        let out = run_with_faults(
            &sb,
            spec,
            &["migrate", src.to_str().unwrap(), dst.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(2), "{spec}");
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{spec}: one line: {err}");
        let line = lines[0];
        assert!(line.starts_with("error: invalid STRATA_FAULTS: "), "{line}");
        assert!(line.contains(token), "{line}");
        assert!(line.contains(accepted), "{line}");
        assert!(!line.contains("fault injection active"), "{line}");
        assert!(!dst.exists(), "nothing done");
    }
    // With --json the error is JSON on standard output.
    let out = run_with_faults(
        &sb,
        "dst:write:flipp",
        &["verify", dst.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(2));
    let error = json(&out)["error"].as_str().unwrap().to_string();
    assert!(error.contains("`flipp`"), "{error}");
}
