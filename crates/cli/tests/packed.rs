//! End-to-end: the packed layout. Plain → packed → plain is byte-identical (same root
//! hash, `b3sum` equal), small files are bundled, duplicates stored once, re-runs send
//! nothing, damage is found and never returned as data, and S3 works too.

mod common;

use std::fs;

use common::*;
use strata_store::testing::{moto, new_bucket, TEST_KEY_ID, TEST_SECRET};

fn objects(root: &std::path::Path, folder: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let base = root.join(folder);
    if let Ok(dirs) = fs::read_dir(&base) {
        for dir in dirs.flatten() {
            for entry in fs::read_dir(dir.path()).unwrap().flatten() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn packed_round_trip_is_byte_identical_bundles_small_files_and_dedupes() {
    let sb = Sandbox::new();
    let (src, packed, back) = (sb.path("src"), sb.path("packed"), sb.path("back"));
    let files = sample_tree(&src);
    // Compressible text and a duplicate of a large file.
    fs::write(
        src.join("notes.txt"),
        "temperature,pressure,humidity\n".repeat(20_000),
    )
    .unwrap();
    random_file(&src.join("dup/a.bin"), 3 << 20, 42);
    fs::copy(src.join("dup/a.bin"), src.join("dup/b.bin")).unwrap();

    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        packed.to_str().unwrap(),
        "--layout",
        "packed",
        "--chunk-size",
        "1M",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let up = json(&out);
    let root = up["root_hash"].as_str().unwrap().to_string();
    // No file appears as a file: everything is in chunk objects and packs.
    assert!(!packed.join("notes.txt").exists());
    let packs = objects(&packed, "packs");
    let chunks = objects(&packed, "chunks");
    assert!(
        !packs.is_empty() && packs.len() < files.len(),
        "{} packs for {} small files",
        packs.len(),
        files.len()
    );
    // dup/a.bin and dup/b.bin are 3 chunks each with the same content: stored once.
    let dup_chunks = chunks.len();
    assert!(
        dup_chunks <= 3 + 2, /* big/many */
        "{dup_chunks} chunk objects"
    );
    // Text shrank.
    let stored: u64 = packs
        .iter()
        .chain(chunks.iter())
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert!(stored < up["bytes"].as_u64().unwrap(), "stored {stored}");

    let verify = sb.run(&["verify", packed.to_str().unwrap(), "--json"]);
    assert!(verify.status.success(), "{}", stdout(&verify));

    let out = sb.run(&[
        "migrate",
        packed.to_str().unwrap(),
        back.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["root_hash"], root.as_str());
    assert_same_files(&src, &back, &files);
    for name in ["notes.txt", "dup/a.bin", "dup/b.bin"] {
        assert_eq!(b3sum(&back.join(name)), b3sum(&src.join(name)), "{name}");
    }

    // A re-run finds every object in place and sends nothing.
    let again = json(&sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        packed.to_str().unwrap(),
        "--layout",
        "packed",
        "--chunk-size",
        "1M",
        "--json",
    ]));
    assert_eq!(again["bytes_sent"], 0);
    assert_eq!(again["root_hash"], root.as_str());
}

#[test]
fn damaged_packed_objects_are_detected_and_never_restored_as_data() {
    let sb = Sandbox::new();
    let (src, packed, back) = (sb.path("src"), sb.path("packed"), sb.path("back"));
    random_file(&src.join("big.bin"), 3 << 20, 9);
    fs::write(src.join("small.txt"), "hello packed world\n".repeat(100)).unwrap();
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        packed.to_str().unwrap(),
        "--layout",
        "packed",
        "--chunk-size",
        "1M",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Flip a byte in the middle of one chunk object of big.bin.
    let chunks = objects(&packed, "chunks");
    let victim = &chunks[0];
    let mut bytes = fs::read(victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(victim, bytes).unwrap();

    let out = sb.run(&["verify", packed.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = json(&out);
    let damaged = report["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert_eq!(damaged[0]["path"], "big.bin");
    let range = &damaged[0]["ranges"][0];
    assert_eq!(
        range[1].as_u64().unwrap() - range[0].as_u64().unwrap(),
        1 << 20,
        "exactly one chunk is named"
    );

    // Restoring refuses the damaged file, restores the rest, exits 1.
    let out = sb.run(&["migrate", packed.to_str().unwrap(), back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("big.bin") && stderr(&out).contains("damaged"),
        "{}",
        stderr(&out)
    );
    assert!(
        !back.join("big.bin").exists(),
        "damaged bytes must never appear as the file"
    );
    assert_eq!(
        fs::read(back.join("small.txt")).unwrap(),
        fs::read(src.join("small.txt")).unwrap()
    );
}

#[test]
fn fixed_codecs_and_bad_codec_choices() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.csv"), "1.0,2.0,3.0\n".repeat(50_000)).unwrap();
    for codec in [
        "none",
        "lz4",
        "zstd:19",
        "gzip:6",
        "bzip2:9",
        "xz:6",
        "max",
        "zstd:3+shuffle4",
    ] {
        let dst = sb.path(&format!("p-{}", codec.replace([':', '+'], "_")));
        let back = sb.path(&format!("b-{}", codec.replace([':', '+'], "_")));
        let out = sb.run(&[
            "migrate",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            "--layout",
            "packed",
            "--codec",
            codec,
        ]);
        assert!(out.status.success(), "{codec}: {}", stderr(&out));
        let out = sb.run(&["migrate", dst.to_str().unwrap(), back.to_str().unwrap()]);
        assert!(out.status.success(), "{codec}: {}", stderr(&out));
        assert_eq!(
            fs::read(back.join("a.csv")).unwrap(),
            fs::read(src.join("a.csv")).unwrap(),
            "{codec}"
        );
    }
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        sb.path("x").to_str().unwrap(),
        "--layout",
        "packed",
        "--codec",
        "zstd:99",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("zstd") && stderr(&out).contains("valid"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn packed_on_s3_round_trips() {
    let sb = Sandbox::new();
    let (src, back) = (sb.path("src"), sb.path("back"));
    let files = sample_tree(&src);
    let remote = format!("s3://{}/packed", new_bucket());
    let s3 = |args: &[&str]| {
        sb.strata()
            .args(args)
            .args(["--s3-endpoint", &moto().endpoint()])
            .env("AWS_ACCESS_KEY_ID", TEST_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
            .output()
            .unwrap()
    };
    let out = s3(&[
        "migrate",
        src.to_str().unwrap(),
        &remote,
        "--layout",
        "packed",
        "--chunk-size",
        "64K",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let root = json(&out)["root_hash"].clone();
    let out = s3(&["verify", &remote]);
    assert!(out.status.success(), "{}", stdout(&out));
    let out = s3(&["migrate", &remote, back.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["root_hash"], root);
    assert_same_files(&src, &back, &files);
}

#[test]
fn inspect_explains_format_codec_and_ratio() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("reads.fastq"),
        "@r1\nACGTACGTTTGACCA\n+\nIIIIIHHHGGGFFFE\n".repeat(5000),
    )
    .unwrap();
    random_file(&src.join("noise.bin"), 300_000, 3);
    let out = sb.run(&["inspect", src.to_str().unwrap(), "--json", "--chunks"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reports = json(&out);
    let fastq = reports
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "reads.fastq")
        .unwrap();
    assert_eq!(fastq["format"], "FASTQ");
    assert!(fastq["actual_ratio"].as_f64().unwrap() > 2.5, "{fastq}");
    assert!(!fastq["chunks"].as_array().unwrap().is_empty());
    let noise = reports
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "noise.bin")
        .unwrap();
    assert_eq!(noise["codec"], "none", "{noise}");
    assert!(
        noise["reason"].as_str().unwrap().contains("entropy"),
        "{noise}"
    );
    let text = stdout(&sb.run(&["inspect", src.join("reads.fastq").to_str().unwrap()]));
    assert!(text.contains("FASTQ") && text.contains("why:"), "{text}");
}
