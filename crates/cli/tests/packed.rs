//! End-to-end: the packed layout. Plain → packed → plain is byte-identical (same root
//! hash, `b3sum` equal), small files are bundled, duplicates stored once, re-runs send
//! nothing, damage is found and never returned as data, the index is sealed and kept
//! twice (a bad copy is named, read around and repaired; a legacy index still reads),
//! and S3 works too.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use strata_store::testing::new_bucket;

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

/// Migrate `src` into the packed layout at `packed` (64 KiB chunks); the root hash.
fn pack(sb: &Sandbox, src: &Path, packed: &Path) -> String {
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        packed.to_str().unwrap(),
        "--layout",
        "packed",
        "--chunk-size",
        "64K",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out)["root_hash"].as_str().unwrap().to_string()
}

/// The index of version `root` and its copy, relative to the store root.
fn index_keys(root: &str) -> (String, String) {
    (
        format!(".strata/index/{root}.json"),
        format!(".strata/index/{root}.copy.json"),
    )
}

/// `strata CMD STORE --json [extra]`: exit code and report.
fn run_json(sb: &Sandbox, cmd: &str, store: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec![cmd, store.to_str().unwrap(), "--json"];
    args.extend(extra);
    let out = sb.run(&args);
    (out.status.code().unwrap_or(-1), json(&out))
}

/// (object, problem) of every issue of a verify report.
fn issues(report: &serde_json::Value) -> Vec<(String, String)> {
    report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["object"].as_str().unwrap().to_string(),
                i["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_damaged_or_lost_index_copy_is_named_read_around_and_repaired() {
    let sb = Sandbox::new();
    let (src, packed) = (sb.path("src"), sb.path("packed"));
    let files = sample_tree(&src);
    let root = pack(&sb, &src, &packed);
    let (index, copy) = index_keys(&root);
    // Written twice, sealed, identical.
    let pristine = fs::read(packed.join(&index)).unwrap();
    assert_eq!(pristine, fs::read(packed.join(&copy)).unwrap());
    let sealed: serde_json::Value = serde_json::from_slice(&pristine).unwrap();
    assert_eq!(sealed["self_hash"].as_str().unwrap().len(), 64);

    // One flipped bit in the primary.
    let mut bytes = pristine.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(packed.join(&index), bytes).unwrap();
    for fast in [&[][..], &["--fast"][..]] {
        let (code, report) = run_json(&sb, "verify", &packed, fast);
        assert_eq!(code, 1, "{report:#}");
        assert_eq!(issues(&report), vec![(index.clone(), "content".into())]);
        assert!(report["issues"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(&copy));
        // The data itself verifies through the copy.
        assert!(
            report["damaged"].as_array().unwrap().is_empty(),
            "{report:#}"
        );
    }
    // A restore reads the copy, says so, and is byte-identical.
    let back = sb.path("back");
    let out = sb.run(&["migrate", packed.to_str().unwrap(), back.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&index) && stderr(&out).contains("copy"),
        "{}",
        stderr(&out)
    );
    assert_same_files(&src, &back, &files);
    // Repair rewrites the primary from the copy; verify is then clean.
    let (code, report) = run_json(&sb, "repair", &packed, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["damaged"], 1, "{report:#}");
    assert_eq!(report["repaired"][0]["object"], index.as_str());
    assert_eq!(report["repaired"][0]["how"], "copy");
    assert_eq!(fs::read(packed.join(&index)).unwrap(), pristine);
    let (code, report) = run_json(&sb, "verify", &packed, &[]);
    assert_eq!(code, 0, "{report:#}");

    // A lost copy: named, repaired from the primary.
    fs::remove_file(packed.join(&copy)).unwrap();
    let (code, report) = run_json(&sb, "verify", &packed, &["--fast"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(issues(&report), vec![(copy.clone(), "missing".into())]);
    let out = sb.run(&["repair", packed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("REPAIRED {copy} from copy")),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(packed.join(&copy)).unwrap(), pristine);
    let (code, report) = run_json(&sb, "verify", &packed, &[]);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn a_legacy_index_without_self_hash_still_restores_and_is_still_checked() {
    let sb = Sandbox::new();
    let (src, packed) = (sb.path("src"), sb.path("packed"));
    let files = sample_tree(&src);
    let root = pack(&sb, &src, &packed);
    let (index, copy) = index_keys(&root);
    // What Strata wrote before indexes were sealed: no self_hash, no copy.
    let mut legacy: serde_json::Value =
        serde_json::from_slice(&fs::read(packed.join(&index)).unwrap()).unwrap();
    legacy.as_object_mut().unwrap().remove("self_hash").unwrap();
    let write_index = |value: &serde_json::Value| {
        fs::write(packed.join(&index), serde_json::to_vec(value).unwrap()).unwrap();
    };
    write_index(&legacy);
    fs::remove_file(packed.join(&copy)).unwrap();

    let (code, report) = run_json(&sb, "verify", &packed, &[]);
    assert_eq!(code, 0, "no copy is expected of a legacy index: {report:#}");
    let back = sb.path("back");
    let out = sb.run(&["migrate", packed.to_str().unwrap(), back.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains(".strata/index"), "{}", stderr(&out));
    assert_same_files(&src, &back, &files);
    let (code, report) = run_json(&sb, "repair", &packed, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["damaged"], 0, "{report:#}");

    // Unverified as a whole, but still checked object by object: a locator moved onto
    // another frame is caught where the chunk is read.
    let (n, file) = legacy["files"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .find(|(_, f)| f["chunks"][0]["offset"].as_u64().unwrap_or(0) > 0)
        .map(|(n, f)| (n, f["path"].as_str().unwrap().to_string()))
        .expect("a file that is not first in its pack");
    let mut moved = legacy.clone();
    moved["files"][n]["chunks"][0]["offset"] = 0.into();
    write_index(&moved);
    let (code, report) = run_json(&sb, "verify", &packed, &[]);
    assert_eq!(code, 1, "{report:#}");
    let damaged: Vec<&str> = report["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(damaged, vec![file.as_str()], "{report:#}");
    // Two chunks of one file swapped: each frame is intact and of the right length, so
    // only the file's hash can tell. A restore never publishes the wrong bytes: that file
    // fails (its chunks merge to a hash other than the manifest's), every other file is
    // restored.
    let big = "big/many";
    let i = legacy["files"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["path"] == big)
        .unwrap();
    let mut swapped = legacy.clone();
    let chunks = swapped["files"][i]["chunks"].as_array_mut().unwrap();
    assert!(chunks.len() > 2, "{big} spans several chunks");
    chunks.swap(0, 1);
    write_index(&swapped);
    let back = sb.path("back-swapped");
    let out = sb.run(&[
        "migrate",
        packed.to_str().unwrap(),
        back.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = summary["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec![big], "{summary:#}");
    assert!(
        summary["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("manifest records"),
        "{summary:#}"
    );
    assert!(!back.join(big).exists(), "wrong bytes published for {big}");
    let others: Vec<_> = files.iter().filter(|f| f.0 != big).cloned().collect();
    assert_same_files(&src, &back, &others);

    // And against the (sealed) manifest: a legacy index that disagrees with it is not
    // used, and nothing is restored from it.
    let mut resized = legacy.clone();
    let size = resized["files"][0]["size"].as_u64().unwrap();
    resized["files"][0]["size"] = (size + 1).into();
    write_index(&resized);
    let (code, report) = run_json(&sb, "verify", &packed, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        issues(&report),
        vec![(index.clone(), "content".into()), (copy, "missing".into())]
    );
    let back = sb.path("back-resized");
    let out = sb.run(&["migrate", packed.to_str().unwrap(), back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("differs from the manifest"),
        "{}",
        stderr(&out)
    );
    assert!(
        !back.exists(),
        "nothing restored from an index that is not trusted"
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
    let s3 = |args: &[&str]| sb.run_s3(args);
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

/// A source folder of one FASTQ file (190,000 bytes of text) and one of 300,000 random
/// bytes, for the `inspect` tests.
fn fastq_and_noise(sb: &Sandbox) -> std::path::PathBuf {
    let src = sb.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("reads.fastq"),
        "@r1\nACGTACGTTTGACCA\n+\nIIIIIHHHGGGFFFE\n".repeat(5000),
    )
    .unwrap();
    random_file(&src.join("noise.bin"), 300_000, 3);
    src
}

#[test]
fn inspect_explains_format_codec_and_ratio() {
    let sb = Sandbox::new();
    let src = fastq_and_noise(&sb);
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

#[test]
fn inspect_on_a_packed_store_reports_what_was_stored() {
    let sb = Sandbox::new();
    let src = fastq_and_noise(&sb);
    let packed = sb.path("packed");
    pack(&sb, &src, &packed);
    let stored_on_disk: u64 = ["chunks", "packs"]
        .iter()
        .flat_map(|folder| objects(&packed, folder))
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();

    let out = sb.run(&["inspect", packed.to_str().unwrap(), "--json", "--chunks"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reports = json(&out);
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 2, "{reports:?}");
    let by_path = |p: &str| reports.iter().find(|r| r["path"] == p).unwrap();
    let fastq = by_path("reads.fastq");
    assert_eq!(fastq["size"], 190_000);
    assert!(fastq["ratio"].as_f64().unwrap() > 2.5, "{fastq}");
    assert_ne!(fastq["codecs"][0][0], "none+none", "{fastq}");
    let noise = by_path("noise.bin");
    assert_eq!(noise["codecs"][0][0], "none+none", "{noise}");
    assert!(noise["stored_bytes"].as_u64().unwrap() > 300_000, "{noise}");
    // The frames it reports are the bytes in the store's objects (packs hold only frames).
    let reported: u64 = reports
        .iter()
        .map(|r| r["stored_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(reported, stored_on_disk);
    assert_eq!(
        fastq["chunks"].as_array().unwrap().len(),
        3,
        "190,000 bytes in 64 KiB chunks"
    );

    let text = stdout(&sb.run(&["inspect", packed.to_str().unwrap()]));
    assert!(
        text.contains("packed store") && text.contains("reads.fastq: "),
        "{text}"
    );
}

/// `strata migrate FROM TO EXTRA...` must fail with a message holding every one of
/// `expected`, and write nothing at `to`.
fn assert_migrate_refused(sb: &Sandbox, from: &Path, to: &Path, extra: &[&str], expected: &[&str]) {
    let mut args = vec!["migrate", from.to_str().unwrap(), to.to_str().unwrap()];
    args.extend(extra);
    let out = sb.run(&args);
    assert_ne!(out.status.code(), Some(0));
    let message = stderr(&out);
    assert!(expected.iter().all(|e| message.contains(e)), "{message}");
    assert!(!to.exists(), "nothing was written to {}", to.display());
}

#[test]
fn layouts_that_cannot_work_are_refused_before_anything_is_copied() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.csv"), "1.0,2.0,3.0\n".repeat(1_000)).unwrap();
    let packed = sb.path("packed");
    pack(&sb, &src, &packed);
    assert_migrate_refused(
        &sb,
        &packed,
        &sb.path("again"),
        &["--layout", "packed"],
        &["already a packed store", "restore it to plain"],
    );
    assert_migrate_refused(
        &sb,
        &src,
        &sb.path("plain"),
        &["--parity", "ec:4+2"],
        &["--parity needs --layout packed"],
    );
}
