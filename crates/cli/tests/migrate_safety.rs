//! End-to-end: `strata migrate` refuses what it must and trusts nothing it has not checked
//! (issue 10, cases 4, 5 and 6): a packed store that lost its layout marker is never
//! restored as its own internal files, no source and destination may overlap either way
//! round, and a resumed run confirms what the catalog recorded as done is still at the
//! destination before it says `verified`.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn migrate(sb: &Sandbox, src: &Path, dst: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["migrate", src.to_str().unwrap(), dst.to_str().unwrap()];
    args.extend_from_slice(extra);
    sb.run(&args)
}

/// `src` migrated to a packed store at `packed` (with parity, so `parity/` exists too).
fn packed_store(sb: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf, Vec<(String, usize)>) {
    let (src, packed) = (sb.path("src"), sb.path("packed"));
    let files = sample_tree(&src);
    let out = migrate(
        sb,
        &src,
        &packed,
        &[
            "--layout",
            "packed",
            "--chunk-size",
            "64K",
            "--parity",
            "10%",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(packed.join("chunks").is_dir() && packed.join("parity").is_dir());
    (src, packed, files)
}

#[test]
fn packed_store_without_layout_marker_is_restored_from_its_manifest() {
    let sb = Sandbox::new();
    let (src, packed, files) = packed_store(&sb);
    fs::remove_file(packed.join(".strata/layout.json")).unwrap();

    let back = sb.path("back");
    let out = migrate(&sb, &packed, &back, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(".strata/layout.json") && err.contains("packed"),
        "the recovery is said: {err}"
    );
    // The user's files, and nothing of the store's insides.
    assert_eq!(list_files(&back), list_files(&src));
    assert_same_files(&src, &back, &files);
    assert!(!back.join("chunks").exists() && !back.join("packs").exists());
    let out = sb.run(&["verify", back.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));

    // `verify` on the store names the lost marker; `repair` writes it again.
    let out = sb.run(&["verify", packed.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = json(&out);
    assert_eq!(report["damaged"].as_array().unwrap().len(), 0, "{report}");
    let issues = report["issues"].as_array().unwrap();
    assert!(
        issues.iter().any(|i| i["object"] == ".strata/layout.json"),
        "{report}"
    );
    let out = sb.run(&["repair", packed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(packed.join(".strata/layout.json").is_file());
    let out = sb.run(&["verify", packed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn packed_internals_without_marker_or_manifest_are_refused() {
    let sb = Sandbox::new();
    let (_, packed, _) = packed_store(&sb);
    // Every trace of the metadata gone: only chunks/, packs/ and parity/ are left.
    fs::remove_dir_all(packed.join(".strata")).unwrap();

    let back = sb.path("back");
    for extra in [&[][..], &["--layout", "packed"][..]] {
        let out = migrate(&sb, &packed, &back, extra);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(packed.to_str().unwrap())
                && err.contains("packed store")
                && err.contains(".strata/layout.json"),
            "{err}"
        );
        assert!(list_files(&back).is_empty(), "nothing was copied");
    }
}

#[test]
fn a_plain_strata_destination_used_as_source_copies_no_internals() {
    let sb = Sandbox::new();
    let (src, first, second) = (sb.path("src"), sb.path("first"), sb.path("second"));
    let files = sample_tree(&src);
    assert!(migrate(&sb, &src, &first, &[]).status.success());
    let out = migrate(&sb, &first, &second, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["files"].as_u64(), Some(files.len() as u64));
    assert_eq!(list_files(&second), list_files(&src));
    let manifest = fs::read_to_string(second.join(".strata/manifest.json")).unwrap();
    assert!(!manifest.contains("\".strata/"), "{manifest}");
}

#[test]
fn source_inside_destination_is_refused_even_with_overwrite() {
    let sb = Sandbox::new();
    let dst = sb.path("dst");
    let src = dst.join("sub");
    // Copying would write src/sub/a over src/a, a source file.
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a"), b"the source file").unwrap();
    fs::write(src.join("sub/a"), b"something else").unwrap();

    let out = migrate(&sb, &src, &dst, &["--overwrite"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(src.to_str().unwrap())
            && err.contains(dst.to_str().unwrap())
            && err.contains("inside"),
        "{err}"
    );
    assert_eq!(fs::read(src.join("a")).unwrap(), b"the source file");
    assert!(!dst.join("a").exists() && !dst.join(".strata").exists());
}

#[test]
fn source_and_destination_that_are_one_directory_are_refused() {
    let sb = Sandbox::new();
    let src = sb.path("data");
    sample_tree(&src);
    let before = list_files(&src);
    std::os::unix::fs::symlink(&src, sb.path("alias")).unwrap();
    for dst in [
        src.clone(),
        sb.path("alias"),
        sb.path("data/small/..").to_path_buf(),
    ] {
        let out = migrate(&sb, &src, &dst, &["--overwrite"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            dst.display(),
            stdout(&out)
        );
        let err = stderr(&out);
        assert!(err.contains("same location"), "{err}");
    }
    assert_eq!(list_files(&src), before);
    assert!(!src.join(".strata").exists());
}

/// Run `src` → `dst` twice with damage in between; the second run must restore it.
fn damaged_between_runs(remove_manifest: bool) {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = sample_tree(&src);
    let args = ["--chunk-size", "64K"];
    assert!(migrate(&sb, &src, &dst, &args).status.success());
    fs::remove_file(dst.join("small/f007")).unwrap();
    let truncated = fs::OpenOptions::new()
        .write(true)
        .open(dst.join("big/many"))
        .unwrap();
    truncated.set_len(1000).unwrap();
    drop(truncated);
    if remove_manifest {
        fs::remove_dir_all(dst.join(".strata")).unwrap();
    }

    let out = migrate(&sb, &src, &dst, &[&args[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let recopied: Vec<&str> = report["recopied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(recopied, ["big/many", "small/f007"], "{report}");
    assert_eq!(report["files_copied"].as_u64(), Some(2), "{report}");
    assert!(report["root_hash"].is_string());
    assert_same_files(&src, &dst, &files);
    let out = sb.run(&["verify", dst.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));

    // The text output says what was copied again and why.
    fs::remove_file(dst.join("empty")).unwrap();
    let out = migrate(&sb, &src, &dst, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("empty") && all.contains("missing") && all.contains("1 re-copied"),
        "{all}"
    );
    assert!(dst.join("empty").is_file());
}

#[test]
fn resumed_run_recopies_done_files_missing_or_resized_at_destination() {
    damaged_between_runs(false);
}

#[test]
fn resumed_run_recopies_done_files_when_the_manifest_is_gone_too() {
    damaged_between_runs(true);
}
