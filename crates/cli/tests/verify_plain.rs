//! End-to-end: `strata verify` on a plain dataset checks more than the files the manifest
//! lists (issue 10, case 16): a damaged or missing `.strata/b3sums` is damage (and
//! `strata repair` writes it again), files the manifest does not know are a warning.

mod common;

use std::fs;
use std::process::Command;

use common::*;

fn migrated(sb: &Sandbox) -> std::path::PathBuf {
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    sample_tree(&src);
    let out = sb.run(&["migrate", src.to_str().unwrap(), dst.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    dst
}

fn b3sum_check_passes(dst: &std::path::Path) -> bool {
    Command::new("b3sum")
        .current_dir(dst)
        .args(["--check", ".strata/b3sums"])
        .output()
        .expect("b3sum is required by the tests")
        .status
        .success()
}

#[test]
fn damaged_or_missing_b3sums_is_reported_and_repaired() {
    let sb = Sandbox::new();
    let dst = migrated(&sb);
    let sums = dst.join(".strata/b3sums");
    let good = fs::read_to_string(&sums).unwrap();
    // One hash digit changed: `b3sum --check` would now fail on an intact file.
    let first = good.chars().next().unwrap();
    let other = if first == '0' { '1' } else { '0' };
    fs::write(&sums, format!("{other}{}", &good[1..])).unwrap();

    for damage in ["content", "missing"] {
        if damage == "missing" {
            fs::remove_file(&sums).unwrap();
        }
        let out = sb.run(&["verify", dst.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{damage}: {}", stdout(&out));
        let text = stdout(&out);
        assert!(
            text.contains(".strata/b3sums") && text.contains("strata repair"),
            "{damage}: {text}"
        );
        let out = sb.run(&["verify", dst.to_str().unwrap(), "--fast", "--json"]);
        assert_eq!(out.status.code(), Some(1));
        let report = json(&out);
        let issue = report["issues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["object"] == ".strata/b3sums")
            .unwrap_or_else(|| panic!("{damage}: {report}"))
            .clone();
        assert_eq!(issue["problem"], damage, "{report}");
        assert_eq!(report["damaged"].as_array().unwrap().len(), 0, "{report}");
    }

    let out = sb.run(&["repair", dst.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains(".strata/b3sums"), "{}", stdout(&out));
    assert_eq!(fs::read_to_string(&sums).unwrap(), good);
    assert!(b3sum_check_passes(&dst));
    let out = sb.run(&["verify", dst.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn extra_files_in_a_plain_dataset_are_a_warning_not_damage() {
    let sb = Sandbox::new();
    let dst = migrated(&sb);
    fs::write(dst.join("stray.txt"), b"not migrated").unwrap();
    fs::create_dir_all(dst.join("a/new")).unwrap();
    fs::write(dst.join("a/new/file"), b"neither").unwrap();

    for fast in [false, true] {
        let mut args = vec!["verify", dst.to_str().unwrap()];
        if fast {
            args.push("--fast");
        }
        let out = sb.run(&args);
        assert!(out.status.success(), "{}", stdout(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            all.contains("warning") && all.contains("stray.txt") && all.contains("a/new/file"),
            "{all}"
        );
        assert!(!all.contains("DAMAGED"), "{all}");

        args.push("--json");
        let out = sb.run(&args);
        assert!(out.status.success());
        let report = json(&out);
        assert_eq!(
            report["extra_files"],
            serde_json::json!(["a/new/file", "stray.txt"]),
            "{report}"
        );
    }
}
