//! End-to-end: a damaged catalog is detected (`strata catalog check`) and refused (a
//! resumed `strata migrate` stops with the error), and a lost or unreadable catalog is
//! rebuilt from the destination's manifest (`strata catalog rebuild --from DST`), for
//! plain, packed and S3 destinations.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use strata_catalog::SqliteCatalog;
use strata_store::testing::{new_bucket, TEST_SECRET};

const CHUNK: &str = "64K";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// `strata migrate SRC DST --chunk-size 64K [extra] --json`, which must succeed.
fn migrate(sb: &Sandbox, src: &Path, dst: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["migrate", s(src), dst, "--chunk-size", CHUNK, "--json"];
    args.extend_from_slice(extra);
    let out = sb.run(&args);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    json(&out)
}

/// A migrated sample tree: (src, dst, files in the tree).
fn migrated(sb: &Sandbox) -> (PathBuf, PathBuf, usize) {
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = sample_tree(&src);
    let report = migrate(sb, &src, s(&dst), &[]);
    assert_eq!(report["files_copied"], files.len());
    (src, dst, files.len())
}

fn manifest(dst: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dst.join(".strata/manifest.json")).unwrap()).unwrap()
}

fn manifest_file(dst: &Path, path: &str) -> serde_json::Value {
    manifest(dst)["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in the manifest"))
        .clone()
}

fn raw_hash(hex_text: &serde_json::Value) -> Vec<u8> {
    hex::decode(hex_text.as_str().unwrap()).unwrap()
}

fn sidecar(catalog: &Path, suffix: &str) -> PathBuf {
    let mut name = catalog.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Moves every commit from the WAL into the catalog file, as a clean close does (a
/// `strata` process that exits leaves its commits in `catalog.db-wal`, where SQLite reads
/// them first: damage to `catalog.db` alone would then not be seen at all).
fn checkpoint(catalog: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async { SqliteCatalog::open(catalog).await.unwrap().close().await });
    let wal = fs::metadata(sidecar(catalog, "-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the WAL should be checkpointed");
}

/// Flips a bit in every copy of `needle` in the catalog file, behind Strata's back (bit
/// rot: SQLite's own structure stays valid). The WAL is checkpointed into the file first
/// (frames in the WAL carry their own checksums, so damage there would read as lost
/// commits, not as a damaged row). Returns how many copies were changed.
fn damage_catalog(catalog: &Path, needle: &[u8]) -> usize {
    checkpoint(catalog);
    let mut bytes = fs::read(catalog).unwrap();
    let mut count = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(needle.len()).position(|w| w == needle) {
        let end = at + found + needle.len();
        bytes[end - 1] ^= 0x01;
        count += 1;
        at = end;
    }
    fs::write(catalog, bytes).unwrap();
    count
}

fn remove_catalog(catalog: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(sidecar(catalog, suffix));
    }
}

/// The single job of `strata status --json`.
fn only_job(sb: &Sandbox) -> serde_json::Value {
    let out = sb.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let jobs = json(&out);
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs[0].clone()
}

fn assert_complete(job: &serde_json::Value, files: usize) {
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["files_total"], files, "{job}");
    assert_eq!(job["files_done"], files, "{job}");
    assert_eq!(job["bytes_done"], job["bytes_total"], "{job}");
}

fn assert_refused(out: &Output, sb: &Sandbox, dst: &Path, row: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", stdout(out));
    let err = stderr(out);
    assert!(err.contains(&sb.catalog().display().to_string()), "{err}");
    assert!(err.contains("fails its checksum"), "{err}");
    assert!(err.contains(row), "{err}");
    assert!(
        err.contains(&format!("strata catalog rebuild --from {}", file_uri(dst))),
        "{err}"
    );
}

#[test]
fn a_damaged_file_row_is_found_refused_and_rebuilt() {
    let sb = Sandbox::new();
    let (src, dst, files) = migrated(&sb);
    let out = sb.run(&["catalog", "check", "--against", s(&dst)]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("OK: catalog"), "{}", stdout(&out));

    // The hash of a multi-chunk file lives only in its file row.
    let hash = raw_hash(&manifest_file(&dst, "big/many")["blake3"]);
    assert!(damage_catalog(&sb.catalog(), &hash) >= 1);

    let out = sb.run(&["catalog", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("CORRUPT files row"), "{text}");
    assert!(text.contains("\"big/many\""), "{text}");
    assert!(text.contains("strata catalog rebuild --from"), "{text}");
    let report = json(&sb.run(&["catalog", "check", "--json"]));
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["integrity"],
        serde_json::json!([]),
        "SQLite sees nothing"
    );
    assert_eq!(report["corrupt_rows_total"], 1);
    assert_eq!(report["corrupt_rows"][0]["table"], "files");
    assert!(report["corrupt_rows"][0]["row"]
        .as_str()
        .unwrap()
        .contains("big/many"));
    let out = sb.run(&["catalog", "check", "--against", s(&dst)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));

    // A resumed migration does not act on the damaged row: it stops, and the
    // destination is left exactly as it was.
    let manifest_before = fs::read(dst.join(".strata/manifest.json")).unwrap();
    let listed_before = list_files(&dst);
    let out = sb.run(&["migrate", s(&src), s(&dst), "--chunk-size", CHUNK]);
    assert_refused(&out, &sb, &dst, "big/many");
    assert_eq!(
        fs::read(dst.join(".strata/manifest.json")).unwrap(),
        manifest_before
    );
    assert_eq!(list_files(&dst), listed_before);

    // Rebuilt from the destination, the catalog is clean and agrees with it.
    let out = sb.run(&["catalog", "rebuild", "--from", s(&dst), "--source", s(&src)]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("replaced job 1"), "{text}");
    assert!(text.contains("--chunk-size 64K"), "{text}");
    let out = sb.run(&["catalog", "check", "--against", s(&dst)]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_complete(&only_job(&sb), files);
    let rerun = migrate(&sb, &src, s(&dst), &[]);
    assert_eq!(rerun["bytes_sent"], 0);
    assert_eq!(rerun["files_resumed"], files);
    assert_eq!(rerun["root_hash"], manifest(&dst)["root_hash"]);
}

#[test]
fn a_damaged_chunk_row_is_found_refused_and_its_job_deleted() {
    let sb = Sandbox::new();
    let (src, dst, files) = migrated(&sb);
    let entry = manifest_file(&dst, "big/many");
    let value = raw_hash(&entry["chunks"][3]);
    assert_eq!(damage_catalog(&sb.catalog(), &value), 1);

    let report = json(&sb.run(&["catalog", "check", "--json"]));
    assert_eq!(report["ok"], false);
    assert_eq!(report["corrupt_rows_total"], 1);
    assert_eq!(report["corrupt_rows"][0]["table"], "verified_chunks");
    assert!(report["corrupt_rows"][0]["row"]
        .as_str()
        .unwrap()
        .ends_with("chunk 3"));
    let out = sb.run(&["migrate", s(&src), s(&dst), "--chunk-size", CHUNK]);
    assert_refused(&out, &sb, &dst, "chunk 3");
    assert!(
        stderr(&out).contains("strata catalog delete-job 1"),
        "{}",
        stderr(&out)
    );

    // The other way out: delete the job (its damaged rows with it) and run again.
    let out = sb.run(&["catalog", "delete-job", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("deleted job 1"), "{}", stdout(&out));
    assert!(sb.run(&["catalog", "check"]).status.success());
    let rerun = migrate(&sb, &src, s(&dst), &[]);
    assert_eq!(rerun["bytes_sent"], 0);
    assert_eq!(rerun["files_skipped"], files);
    let out = sb.run(&["catalog", "delete-job", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no job 1"), "{}", stderr(&out));
}

#[test]
fn a_deleted_catalog_is_rebuilt_and_the_rerun_copies_nothing() {
    let sb = Sandbox::new();
    let (src, dst, files) = migrated(&sb);
    remove_catalog(&sb.catalog());

    let out = sb.run(&["catalog", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no catalog at"), "{}", stderr(&out));

    let out = sb.run(&[
        "catalog",
        "rebuild",
        "--from",
        s(&dst),
        "--source",
        s(&src),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["state"], "done");
    assert_eq!(report["files"], files);
    assert_eq!(report["source"], file_uri(&src));
    assert_eq!(report["source_known"], true);
    assert_eq!(report["layout"], "plain");
    assert_eq!(report["chunk_size"], 64 << 10);
    assert_eq!(report["moved_aside"], serde_json::json!([]));
    assert_eq!(report["files_pending"], serde_json::json!([]));
    assert_eq!(report["manifest"], ".strata/manifest.json");

    let job = only_job(&sb);
    assert_complete(&job, files);
    assert_eq!(job["root_hash"], manifest(&dst)["root_hash"]);
    let out = sb.run(&["status"]);
    assert!(stdout(&out).contains("done"), "{}", stdout(&out));

    let rerun = migrate(&sb, &src, s(&dst), &[]);
    assert_eq!(rerun["bytes_sent"], 0);
    assert_eq!(rerun["files_copied"], 0);
    assert_eq!(rerun["files_resumed"], files);
    assert!(sb
        .run(&["catalog", "check", "--against", s(&dst)])
        .status
        .success());
}

#[test]
fn a_catalog_overwritten_with_garbage_is_moved_aside_and_rebuilt() {
    let sb = Sandbox::new();
    let (src, dst, files) = migrated(&sb);
    let garbage = b"not a database any more\n".repeat(4000);
    checkpoint(&sb.catalog());
    fs::write(sb.catalog(), &garbage).unwrap();

    let out = sb.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("strata catalog rebuild --from DST"),
        "{}",
        stderr(&out)
    );
    let out = sb.run(&["catalog", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("CORRUPT"), "{}", stdout(&out));

    // Without --source: the job gets the placeholder, and the output says what it means.
    let out = sb.run(&["catalog", "rebuild", "--from", s(&dst)]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("moved the unreadable catalog aside"),
        "{text}"
    );
    assert!(text.contains("(unknown source)"), "{text}");
    assert!(text.contains("--source SRC"), "{text}");
    let aside: Vec<PathBuf> = fs::read_dir(sb.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("catalog.db.corrupt-")
                && !name.ends_with("-wal")
                && !name.ends_with("-shm")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read(&aside[0]).unwrap(), garbage, "kept as it was");
    assert!(text.contains(&aside[0].display().to_string()), "{text}");

    let job = only_job(&sb);
    assert_complete(&job, files);
    assert_eq!(job["source"], "(unknown source)");

    // The real source starts its own job, which recognises every file as identical.
    let rerun = migrate(&sb, &src, s(&dst), &[]);
    assert_eq!(rerun["bytes_sent"], 0);
    assert_eq!(rerun["files_skipped"], files);
}

#[test]
fn a_truncated_catalog_is_moved_aside_and_rebuilt() {
    let sb = Sandbox::new();
    let (src, dst, files) = migrated(&sb);
    checkpoint(&sb.catalog());
    let len = fs::metadata(sb.catalog()).unwrap().len();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(sb.catalog())
        .unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    assert_eq!(sb.run(&["status"]).status.code(), Some(2));

    let out = sb.run(&[
        "catalog",
        "rebuild",
        "--from",
        s(&dst),
        "--source",
        s(&src),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let moved = report["moved_aside"].as_array().unwrap();
    assert!(!moved.is_empty(), "{report}");
    assert_eq!(
        fs::metadata(moved[0].as_str().unwrap()).unwrap().len(),
        len / 2,
        "the damaged file is kept as it was"
    );
    assert!(report["moved_aside_because"]
        .as_str()
        .unwrap()
        .contains("catalog.db"));
    assert_complete(&only_job(&sb), files);
    assert_eq!(migrate(&sb, &src, s(&dst), &[])["bytes_sent"], 0);
}

#[test]
fn a_damaged_primary_manifest_falls_back_to_the_copy() {
    let sb = Sandbox::new();
    let (src, dst, files) = migrated(&sb);
    remove_catalog(&sb.catalog());
    let primary = dst.join(".strata/manifest.json");
    let text = fs::read_to_string(&primary).unwrap();
    let good = text.clone();
    fs::write(
        &primary,
        text.replacen("\"created_by\": \"", "\"created_by\": \"x", 1),
    )
    .unwrap();

    let out = sb.run(&[
        "catalog",
        "rebuild",
        "--from",
        s(&dst),
        "--source",
        s(&src),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["manifest"], ".strata/manifest.copy.json");
    assert!(
        report["manifest_issues"][0]
            .as_str()
            .unwrap()
            .contains("manifest.json"),
        "{report}"
    );
    assert_complete(&only_job(&sb), files);

    // With both copies damaged, nothing is trusted and nothing is written.
    remove_catalog(&sb.catalog());
    fs::write(
        dst.join(".strata/manifest.copy.json"),
        good.replace("\"version\": 1", "\"version\": 1 ").replacen(
            "\"total_bytes\": ",
            "\"total_bytes\": 1",
            1,
        ),
    )
    .unwrap();
    let out = sb.run(&["catalog", "rebuild", "--from", s(&dst)]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("nor its copy can be trusted"),
        "{}",
        stderr(&out)
    );
    assert!(!sb.catalog().exists(), "no catalog was created");
}

#[test]
fn a_destination_without_a_manifest_is_a_clear_error() {
    let sb = Sandbox::new();
    let dst = sb.path("plain-folder");
    sample_tree(&dst);
    let out = sb.run(&["catalog", "rebuild", "--from", s(&dst)]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("no Strata manifest at"), "{err}");
    assert!(err.contains(&dst.display().to_string()), "{err}");
    assert!(err.contains("finished `strata migrate`"), "{err}");
    assert!(!sb.catalog().exists(), "no catalog was created");
}

#[test]
fn files_missing_at_the_destination_stay_pending_and_are_copied_again() {
    let sb = Sandbox::new();
    let (src, dst, files) = migrated(&sb);
    remove_catalog(&sb.catalog());
    fs::remove_file(dst.join("small/f001")).unwrap();
    let size = fs::metadata(src.join("small/f001")).unwrap().len();

    let out = sb.run(&[
        "catalog",
        "rebuild",
        "--from",
        s(&dst),
        "--source",
        s(&src),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["files_pending"], serde_json::json!(["small/f001"]));
    assert_eq!(report["state"], "failed");
    let job = only_job(&sb);
    assert_eq!(job["files_done"], files - 1);

    let rerun = migrate(&sb, &src, s(&dst), &[]);
    assert_eq!(rerun["files_copied"], 1);
    assert_eq!(rerun["files_resumed"], files - 1);
    assert_eq!(rerun["bytes_sent"], size);
    assert_complete(&only_job(&sb), files);
    assert_eq!(
        fs::read(src.join("small/f001")).unwrap(),
        fs::read(dst.join("small/f001")).unwrap()
    );
}

#[test]
fn a_packed_destination_is_rebuilt() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("packed"));
    let files = sample_tree(&src).len();
    let first = migrate(&sb, &src, s(&dst), &["--layout", "packed"]);
    assert!(first["bytes_sent"].as_u64().unwrap() > 0);
    remove_catalog(&sb.catalog());

    let out = sb.run(&[
        "catalog",
        "rebuild",
        "--from",
        s(&dst),
        "--source",
        s(&src),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["layout"], "packed");
    assert_eq!(report["state"], "done");
    assert_eq!(report["files"], files);
    assert_complete(&only_job(&sb), files);

    let rerun = migrate(&sb, &src, s(&dst), &["--layout", "packed"]);
    assert_eq!(rerun["bytes_sent"], 0, "{rerun}");
    assert_eq!(rerun["root_hash"], first["root_hash"]);
    assert!(sb
        .run(&["catalog", "check", "--against", s(&dst)])
        .status
        .success());
}

#[test]
fn an_s3_destination_is_rebuilt() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    let files = sample_tree(&src).len();
    let remote = format!("s3://{}/datasets/run1", new_bucket());
    let up = ["migrate", s(&src), &remote, "--chunk-size", CHUNK, "--json"];
    let out = sb.run_s3(&up);
    assert!(out.status.success(), "{}", stderr(&out));
    remove_catalog(&sb.catalog());

    let out = sb.run_s3(&[
        "catalog",
        "rebuild",
        "--from",
        &remote,
        "--source",
        s(&src),
        "--json",
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let report = json(&out);
    assert_eq!(report["state"], "done");
    assert_eq!(report["files"], files);
    assert!(!stdout(&out).contains(TEST_SECRET));
    let job = only_job(&sb);
    assert_complete(&job, files);
    assert!(job["destination"]
        .as_str()
        .unwrap()
        .contains("datasets/run1"));

    let out = sb.run_s3(&up);
    assert!(out.status.success(), "{}", stderr(&out));
    let rerun = json(&out);
    assert_eq!(rerun["bytes_sent"], 0);
    assert_eq!(rerun["files_resumed"], files);
    let out = sb.run_s3(&["catalog", "check", "--against", &remote]);
    assert!(out.status.success(), "{}", stdout(&out));

    // The catalog never holds the credentials.
    let bytes = fs::read(sb.catalog()).unwrap();
    let secret = TEST_SECRET.as_bytes();
    assert!(!bytes.windows(secret.len()).any(|w| w == secret));
}
