//! `strata migrate --stripe-size`: chunks aligned to a striped file system's stripes. No
//! Lustre runs here, so what is tested is the alignment itself: the chunk size the
//! destination's manifest records, and so every chunk boundary, is a whole number of
//! stripes; the data arrives byte-identical; unusable stripe sizes are refused.

mod common;

use std::fs;
use std::path::Path;

use common::*;

const MIB: u64 = 1 << 20;

fn manifest(dst: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dst.join(".strata/manifest.json")).unwrap()).unwrap()
}

/// Migrates a small tree with `--chunk-size CHUNK --stripe-size STRIPE` and checks the
/// chunk size used, each file's chunk count (so each boundary `i × chunk` is a multiple of
/// the stripe), the `--json` report and the bytes. Returns the chunk size used.
fn migrate_striped(chunk: &str, stripe: &str, stripe_bytes: u64) -> u64 {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    fs::create_dir_all(&src).unwrap();
    let files = [
        ("big.bin".to_string(), (9 * MIB + 7) as usize),
        ("small.bin".to_string(), 4099usize),
        ("empty".to_string(), 0usize),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        random_file(&src.join(name), *len, i as u64);
    }
    let (src_arg, dst_arg) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let out = sb.run(&[
        "migrate",
        src_arg,
        dst_arg,
        "--chunk-size",
        chunk,
        "--stripe-size",
        stripe,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["files_copied"], files.len());
    assert_eq!(report["stripe_size"], stripe_bytes);
    assert_same_files(&src, &dst, &files);

    let manifest = manifest(&dst);
    let chunk_size = manifest["chunk_size"]
        .as_u64()
        .expect("manifest chunk_size");
    assert_eq!(report["chunk_size"], chunk_size);
    assert_eq!(
        chunk_size % stripe_bytes,
        0,
        "chunk {chunk_size} on stripe {stripe_bytes}"
    );
    for entry in manifest["files"].as_array().unwrap() {
        let size = entry["size"].as_u64().unwrap();
        // The manifest lists chunks for files of more than one; chunk i covers
        // [i × chunk_size, min((i + 1) × chunk_size, size)).
        let chunks = entry["chunks"].as_array().map_or(0, Vec::len) as u64;
        let expected = size.div_ceil(chunk_size);
        assert_eq!(chunks, if expected > 1 { expected } else { 0 }, "{entry}");
        for i in 0..chunks {
            assert_eq!((i * chunk_size) % stripe_bytes, 0, "{entry}: chunk {i}");
        }
    }
    let big = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "big.bin");
    let big_chunks = big.and_then(|f| f["chunks"].as_array()).map_or(0, Vec::len);
    assert!(big_chunks > 1, "big.bin must span several chunks");
    chunk_size
}

#[test]
fn a_chunk_smaller_than_a_stripe_grows_to_one_stripe() {
    assert_eq!(migrate_striped("64K", "1MiB", MIB), MIB);
}

#[test]
fn a_chunk_of_whole_stripes_is_kept() {
    assert_eq!(migrate_striped("4M", "1M", MIB), 4 * MIB);
}

#[test]
fn the_plan_shows_the_aligned_chunk_size() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("f"), 3 * MIB as usize, 9);
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        sb.path("dst").to_str().unwrap(),
        "--dry-run",
        "--chunk-size",
        "256K",
        "--stripe-size",
        "2M",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("chunks: 2.0 MiB (1 stripes of 2.0 MiB)"),
        "{text}"
    );
    assert!(text.contains("2 chunks"), "{text}");
}

#[test]
fn unusable_stripe_sizes_are_refused_naming_the_flag() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    fs::create_dir_all(&src).unwrap();
    for (stripe, why) in [
        ("0", "at least one byte"),
        ("3M", "power-of-two"),
        ("1G", "larger than the largest chunk"),
        ("wide", "not a size"),
    ] {
        let out = sb.run(&[
            "migrate",
            src.to_str().unwrap(),
            sb.path("dst").to_str().unwrap(),
            "--stripe-size",
            stripe,
        ]);
        assert!(!out.status.success(), "--stripe-size {stripe} was accepted");
        let err = stderr(&out);
        assert!(err.contains("--stripe-size"), "{err}");
        assert!(err.contains(why), "{stripe}: {err}");
        assert!(!sb.path("dst").exists(), "nothing may be written");
    }
}
