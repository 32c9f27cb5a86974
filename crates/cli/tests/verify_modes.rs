//! `strata migrate --verify sent|cache|device`: what each mode reads back before a file is
//! published, shown by a destination that damages one write (`STRATA_FAULTS`).

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

const CHUNK: usize = 16 << 10;

/// `strata migrate SRC DST --verify MODE --json` with 16 KiB chunks, the destination
/// flipping a bit of its second write.
fn migrate_damaged(sb: &Sandbox, src: &Path, dst: &Path, mode: &str) -> Output {
    sb.strata()
        .env("STRATA_FAULTS", "dst:write:flip:nth=2")
        .args([
            "migrate",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            "--chunk-size",
            "16K",
            "--jobs",
            "1",
            "--verify",
            mode,
            "--json",
        ])
        .output()
        .expect("run strata")
}

/// `strata migrate SRC DST ARGS...` (DST a path or a store URI).
fn migrate(sb: &Sandbox, src: &Path, dst: &str, args: &[&str]) -> Output {
    let mut all = vec!["migrate", src.to_str().unwrap(), dst];
    all.extend_from_slice(args);
    sb.run(&all)
}

fn files(src: &Path) -> Vec<(String, usize)> {
    random_file(&src.join("big.bin"), 6 * CHUNK, 1);
    random_file(&src.join("d/small.bin"), CHUNK / 2, 2);
    vec![
        ("big.bin".into(), 6 * CHUNK),
        ("d/small.bin".into(), CHUNK / 2),
    ]
}

#[test]
fn device_mode_reads_the_damaged_chunk_back_and_sends_it_again() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = files(&src);
    let out = migrate_damaged(&sb, &src, &dst, "device");
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["verify"], "device", "{report}");
    assert_eq!(report["chunks_resent"], 1, "{report}");
    assert_same_files(&src, &dst, &files);
    let verify = sb.run(&["verify", dst.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", stdout(&verify));
}

#[test]
fn cache_mode_is_the_default_and_catches_the_damaged_write_too() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = files(&src);
    let out = migrate_damaged(&sb, &src, &dst, "cache");
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["verify"], "cache", "{report}");
    assert_eq!(report["chunks_resent"], 1, "{report}");
    assert_same_files(&src, &dst, &files);

    let plain = migrate(&sb, &src, sb.path("dst2").to_str().unwrap(), &["--json"]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert_eq!(json(&plain)["verify"], "cache");
}

#[test]
fn sent_mode_reads_nothing_back_so_only_strata_verify_finds_the_damage() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    files(&src);
    let out = migrate_damaged(&sb, &src, &dst, "sent");
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["verify"], "sent", "{report}");
    assert_eq!(report["chunks_resent"], 0, "{report}");
    assert!(stdout(&out).contains("\"verify\": \"sent\""));
    // What `sent` does not prove: the damaged write was published, and the manifest's
    // hashes (of the bytes sent) find it.
    let verify = sb.run(&["verify", dst.to_str().unwrap()]);
    assert!(!verify.status.success(), "{}", stdout(&verify));
    assert!(stdout(&verify).contains("big.bin"), "{}", stdout(&verify));
}

#[test]
fn the_summary_says_what_was_read_back_and_no_verify_means_sent() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    files(&src);
    let out = migrate(
        &sb,
        &src,
        sb.path("dst").to_str().unwrap(),
        &["--verify", "device"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("verified (read back from the device)"),
        "{}",
        stdout(&out)
    );
    let out = migrate(
        &sb,
        &src,
        sb.path("dst2").to_str().unwrap(),
        &["--no-verify", "--json"],
    );
    assert_eq!(json(&out)["verify"], "sent");
}

#[test]
fn packed_and_object_store_destinations_report_sent() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    files(&src);
    let device = ["--verify", "device", "--json"];
    let packed_args = [&["--layout", "packed"][..], &device].concat();
    let packed = migrate(&sb, &src, sb.path("packed").to_str().unwrap(), &packed_args);
    assert!(packed.status.success(), "{}", stderr(&packed));
    assert_eq!(json(&packed)["verify"], "sent");
    let memory = migrate(&sb, &src, "memory://verify-modes", &device);
    assert!(memory.status.success(), "{}", stderr(&memory));
    assert_eq!(json(&memory)["verify"], "sent");
}

#[test]
fn an_unknown_mode_is_refused_naming_the_valid_ones() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    files(&src);
    let out = migrate(
        &sb,
        &src,
        sb.path("dst").to_str().unwrap(),
        &["--verify", "disk"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("disk") && err.contains("sent, cache, device"),
        "{err}"
    );
    assert!(!sb.path("dst").exists());
}
