//! `--parity 10%` writes about 10% of parity (measured on the stored files, not taken from
//! the report) on the 61 MB scientific set, whose 23 objects range from 0.3 to 4.2 MB, says
//! before writing what it writes and why it differs from `ec:20+2`, and the parity still
//! rebuilds a lost object.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// `../shared/data/scientific` (or `$STRATA_SCIENTIFIC_DATA`); `None`, with a note, when
/// this machine does not have it.
fn scientific_data() -> Option<PathBuf> {
    let dir = std::env::var_os("STRATA_SCIENTIFIC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/scientific")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: no scientific data at {}", dir.display());
        None
    }
}

/// Bytes of every file under `dir` (0 when it does not exist), with the largest file.
fn bytes_under(dir: &Path) -> (u64, Option<(u64, PathBuf)>) {
    let (mut total, mut largest) = (0, None::<(u64, PathBuf)>);
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            let (sub, big) = if path.is_dir() {
                bytes_under(&path)
            } else {
                let len = fs::metadata(&path).unwrap().len();
                (len, Some((len, path)))
            };
            total += sub;
            if big.as_ref().map(|b| b.0) > largest.as_ref().map(|l| l.0) {
                largest = big;
            }
        }
    }
    (total, largest)
}

#[test]
fn parity_ten_percent_writes_about_ten_percent_and_still_rebuilds_a_lost_object() {
    let Some(data) = scientific_data() else {
        return;
    };
    let sb = Sandbox::new();
    let dst = sb.path("packed");
    let d = dst.to_str().unwrap();
    let out = sb.run(&[
        "migrate",
        data.to_str().unwrap(),
        d,
        "--layout",
        "packed",
        "--parity",
        "10%",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);

    let (chunks, largest_chunk) = bytes_under(&dst.join("chunks"));
    let (packs, largest_pack) = bytes_under(&dst.join("packs"));
    let (parity, _) = bytes_under(&dst.join("parity"));
    let written = parity as f64 * 100.0 / (chunks + packs) as f64;
    assert!(
        (7.0..=13.0).contains(&written),
        "--parity 10% wrote {parity} bytes of parity for {} ({written:.1}%): {text}",
        chunks + packs
    );

    // Said before it was written, with the reason it is not ec:20+2.
    let announced = text
        .find("parity 10%: writing")
        .unwrap_or_else(|| panic!("no announcement: {text}"));
    let done = text
        .find(" written: ")
        .unwrap_or_else(|| panic!("no parity summary: {text}"));
    assert!(announced < done, "{text}");
    assert!(
        text.contains("ec:20+2 would write") && text.contains("whole objects"),
        "{text}"
    );

    // The largest object is lost: parity rebuilds it.
    let (_, largest) = [largest_chunk, largest_pack]
        .into_iter()
        .flatten()
        .max_by_key(|(len, _)| *len)
        .unwrap();
    let original = fs::read(&largest).unwrap();
    fs::remove_file(&largest).unwrap();
    let out = sb.run(&["repair", d, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let report = json(&out);
    let repaired = report["repaired"].as_array().unwrap();
    assert!(
        repaired.iter().any(|r| r["how"] == "parity"
            && largest
                .to_str()
                .unwrap()
                .ends_with(r["object"].as_str().unwrap())),
        "{report:#}"
    );
    assert_eq!(fs::read(&largest).unwrap(), original);
    let out = sb.run(&["verify", d]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_fixed_shape_is_written_as_given_and_its_padding_is_explained_first() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    // One 3 MiB file (three 1 MiB chunk objects) and small files packed together: objects
    // of very different sizes.
    random_file(&src.join("big.bin"), 3 << 20, 1);
    for i in 0..5 {
        random_file(&src.join(format!("small/{i}")), 2_000, 10 + i);
    }
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--layout",
        "packed",
        "--chunk-size",
        "1M",
        "--parity",
        "ec:4+1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let parity = &report["parity"];
    assert_eq!(parity["spec"], "ec:4+1", "{parity}");
    assert_eq!(parity["shortfall"], "padded", "{parity}");
    let note = parity["note"].as_str().unwrap_or_default();
    assert!(note.contains("ec:4+1 is 25.0%"), "{note}");
    let (written, _) = bytes_under(&dst.join("parity"));
    assert_eq!(parity["parity_bytes"], written, "{parity}");
}
