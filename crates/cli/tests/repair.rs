//! End-to-end: the corruption matrix. A packed store with parity is damaged on disk in
//! every way the integrity design covers (bit flips in data, in frame headers and in
//! parity, lost objects, torn writes, up to M lost shards per group, lost or damaged
//! metadata copies: manifest, index, parity map; damage beyond parity; both copies of the
//! index lost) and the real binary must:
//!
//! - detect every fault with `strata verify` (exit 1), and the presence/size faults with
//!   `strata verify --fast` too;
//! - repair every fault within the parity budget with `strata repair` (exit 0), after which
//!   `strata verify` is clean and a restore is `b3sum`-identical to the source;
//! - report every fault beyond the budget with exactly the files affected (exit 1) and
//!   write nothing wrong, then repair it with `--from SRC`.
//!
//! Fault injection here works on a local store's files directly; a store-layer fault
//! injector (bit flips, lost writes, errors, latency on any backend) is left for later.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;

const K: usize = 4;
const M: usize = 2;

/// A pristine packed store with `ec:4+2` parity, and what it holds.
struct Fixture {
    sb: Sandbox,
    src: PathBuf,
    pristine: PathBuf,
    files: Vec<(String, usize)>,
    root: String,
}

fn fixture(parity: bool) -> Fixture {
    let sb = Sandbox::new();
    let src = sb.path("src");
    let mut files = vec![
        ("big/a.bin".to_string(), 600 * 1024 + 5),
        ("big/b.bin".to_string(), 400 * 1024),
    ];
    for (path, len) in &files {
        random_file(&src.join(path), *len, len.to_owned() as u64);
    }
    let csv: String = (0..12_000)
        .map(|i| format!("{i},{},{}\n", i * 7 % 1000, i % 13))
        .collect();
    fs::write(src.join("notes.csv"), &csv).unwrap();
    files.push(("notes.csv".into(), csv.len()));
    for i in 0..24 {
        let path = format!("small/f{i:02}");
        let len = 500 + i * 311;
        random_file(&src.join(&path), len, 1000 + i as u64);
        files.push((path, len));
    }
    fs::write(src.join("small/empty"), b"").unwrap();
    files.push(("small/empty".into(), 0));
    // More chunk objects: the pack's group (objects of similar size) holds chunk objects too.
    random_file(&src.join("zz/tail.bin"), 250_000, 77);
    files.push(("zz/tail.bin".into(), 250_000));

    let pristine = sb.path("pristine");
    let mut args = vec![
        "migrate",
        src.to_str().unwrap(),
        pristine.to_str().unwrap(),
        "--layout",
        "packed",
        "--chunk-size",
        "64K",
        "--json",
    ];
    let spec = format!("ec:{K}+{M}");
    if parity {
        args.extend(["--parity", spec.as_str()]);
    }
    let out = sb.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    if parity {
        assert_eq!(report["parity"]["spec"], spec.as_str(), "{report}");
        assert!(
            report["parity"]["groups"].as_u64().unwrap() >= 5,
            "{report}"
        );
    }
    let root = report["root_hash"].as_str().unwrap().to_string();
    Fixture {
        sb,
        src,
        pristine,
        files,
        root,
    }
}

/// Every file of a tree, relative path → bytes (for "nothing else changed" checks).
fn snapshot(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if !rel.starts_with(".strata/staging") {
                    out.insert(rel, fs::read(&path).unwrap());
                }
            }
        }
    }
    walk(root, root, &mut out);
    out
}

impl Fixture {
    fn map(&self, store: &Path) -> serde_json::Value {
        let path = store.join(format!(".strata/parity/{}.json", self.root));
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    fn index(&self) -> serde_json::Value {
        let path = self
            .pristine
            .join(format!(".strata/index/{}.json", self.root));
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    /// Members (data object keys) and parity keys of group `g`.
    fn group(&self, g: usize) -> (Vec<String>, Vec<String>) {
        let map = self.map(&self.pristine);
        let keys = |what: &str| -> Vec<String> {
            map["groups"][g][what]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["key"].as_str().unwrap().to_string())
                .collect()
        };
        (keys("members"), keys("parity"))
    }

    fn group_count(&self) -> usize {
        self.map(&self.pristine)["groups"].as_array().unwrap().len()
    }

    /// The group holding the (only) pack.
    fn pack_group(&self) -> usize {
        (0..self.group_count())
            .find(|&g| self.group(g).0.iter().any(|k| k.starts_with("packs/")))
            .expect("a group with the pack")
    }

    /// The files with a chunk in any of `objects`.
    fn files_using(&self, objects: &[String]) -> BTreeSet<String> {
        self.files_hit(|object, _, _| objects.iter().any(|o| o == object))
    }

    /// The files with a chunk frame for which `hit(object, offset, len)` holds.
    fn files_hit(&self, hit: impl Fn(&str, u64, u64) -> bool) -> BTreeSet<String> {
        let index = self.index();
        let mut out = BTreeSet::new();
        for file in index["files"].as_array().unwrap() {
            for chunk in file["chunks"].as_array().unwrap() {
                let object = chunk["object"].as_str().unwrap();
                let (offset, len) = (
                    chunk["offset"].as_u64().unwrap(),
                    chunk["len"].as_u64().unwrap(),
                );
                if hit(object, offset, len) {
                    out.insert(file["path"].as_str().unwrap().to_string());
                }
            }
        }
        out
    }

    /// Exactly the files `fault` on `key` damages: the one whose frame holds a flipped
    /// byte, those whose frames a truncation cuts, every file of a lost object.
    fn affected(&self, key: &str, fault: Fault) -> BTreeSet<String> {
        if !(key.starts_with("chunks/") || key.starts_with("packs/")) {
            return BTreeSet::new();
        }
        let len = fs::metadata(self.pristine.join(key)).unwrap().len();
        self.files_hit(|object, offset, frame| {
            object == key
                && match fault {
                    Fault::Lose => true,
                    Fault::Truncate => offset + frame > len / 2,
                    Fault::FlipBit => (offset..offset + frame).contains(&(len / 2 + 3)),
                    Fault::FlipHeader => (offset..offset + frame).contains(&13),
                }
        })
    }

    fn affected_by(&self, faults: &[(String, Fault)]) -> BTreeSet<String> {
        faults
            .iter()
            .flat_map(|(k, f)| self.affected(k, *f))
            .collect()
    }

    fn strata(&self, args: &[&str]) -> std::process::Output {
        self.sb.run(args)
    }

    fn verify(&self, store: &Path, fast: bool) -> (i32, serde_json::Value) {
        let mut args = vec!["verify", store.to_str().unwrap(), "--json"];
        if fast {
            args.push("--fast");
        }
        let out = self.strata(&args);
        (out.status.code().unwrap_or(-1), json(&out))
    }

    fn repair(&self, store: &Path, from: Option<&Path>) -> (i32, serde_json::Value) {
        let mut args = vec!["repair", store.to_str().unwrap(), "--json"];
        if let Some(from) = from {
            args.extend(["--from", from.to_str().unwrap()]);
        }
        let out = self.strata(&args);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "repair could not run: {}",
            stderr(&out)
        );
        (out.status.code().unwrap(), json(&out))
    }

    /// Verify clean, restore to plain files, and compare with the source by `b3sum`.
    fn assert_intact(&self, store: &Path, case: &str) {
        let (code, report) = self.verify(store, false);
        assert_eq!(code, 0, "{case}: verify after repair: {report:#}");
        let (code, report) = self.verify(store, true);
        assert_eq!(code, 0, "{case}: fast verify after repair: {report:#}");
        let back = self.sb.path(&format!("{case}-back"));
        let out = self.strata(&["migrate", store.to_str().unwrap(), back.to_str().unwrap()]);
        assert!(out.status.success(), "{case}: restore: {}", stderr(&out));
        for (path, _) in &self.files {
            assert_eq!(
                b3sum(&back.join(path)),
                b3sum(&self.src.join(path)),
                "{case}: {path} restored differently"
            );
        }
        fs::remove_dir_all(back).unwrap();
    }
}

/// A named case: faults to inject, and whether `verify --fast` must see them too.
type Case = (&'static str, Vec<(String, Fault)>, bool);

/// One way to damage a store.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Flip one bit in the middle of the object.
    FlipBit,
    /// Flip one byte of the first frame header.
    FlipHeader,
    /// Delete the object.
    Lose,
    /// Cut the object to half its length (a torn write).
    Truncate,
}

fn inject(store: &Path, key: &str, fault: Fault) {
    let path = store.join(key);
    match fault {
        Fault::FlipBit => {
            let mut bytes = fs::read(&path).unwrap();
            let at = bytes.len() / 2 + 3;
            bytes[at] ^= 0x10;
            fs::write(&path, bytes).unwrap();
        }
        Fault::FlipHeader => {
            let mut bytes = fs::read(&path).unwrap();
            bytes[13] ^= 0xff;
            fs::write(&path, bytes).unwrap();
        }
        Fault::Lose => fs::remove_file(&path).unwrap(),
        Fault::Truncate => {
            let len = fs::metadata(&path).unwrap().len();
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
        }
    }
}

fn damaged_paths(report: &serde_json::Value) -> BTreeSet<String> {
    report["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect()
}

fn string_set(value: &serde_json::Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_fault_within_parity_is_detected_and_repaired_byte_identical() {
    let fx = fixture(true);
    let (code, report) = fx.verify(&fx.pristine, false);
    assert_eq!(code, 0, "{report:#}");
    let (code, report) = fx.verify(&fx.pristine, true);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["mode"], "fast");

    let (g0, p0) = fx.group(0);
    let (g1, p1) = fx.group(1);
    let (gp, pp) = fx.group(fx.pack_group());
    let pack = gp.iter().find(|k| k.starts_with("packs/")).unwrap().clone();
    let pack_neighbour = gp
        .iter()
        .find(|k| k.starts_with("chunks/"))
        .unwrap()
        .clone();
    let root = fx.root.clone();
    let map = format!(".strata/parity/{root}.json");
    let map_copy = format!(".strata/parity/{root}.copy.json");
    let index = format!(".strata/index/{root}.json");
    let index_copy = format!(".strata/index/{root}.copy.json");
    // (case, faults, detected by --fast too)
    let cases: Vec<Case> = vec![
        (
            "bitflip-chunk",
            vec![(g0[1].clone(), Fault::FlipBit)],
            false,
        ),
        (
            "bitflip-header",
            vec![(g0[2].clone(), Fault::FlipHeader)],
            false,
        ),
        ("bitflip-pack", vec![(pack.clone(), Fault::FlipBit)], false),
        (
            "bitflip-parity",
            vec![(p1[0].clone(), Fault::FlipBit)],
            false,
        ),
        ("lost-chunk", vec![(g1[0].clone(), Fault::Lose)], true),
        ("lost-pack", vec![(pack.clone(), Fault::Lose)], true),
        ("torn-chunk", vec![(g1[3].clone(), Fault::Truncate)], true),
        ("torn-pack", vec![(pack.clone(), Fault::Truncate)], true),
        (
            "lost-m-data",
            vec![(g0[0].clone(), Fault::Lose), (g0[3].clone(), Fault::Lose)],
            true,
        ),
        (
            "lost-m-parity",
            vec![(p0[0].clone(), Fault::Lose), (p0[1].clone(), Fault::Lose)],
            true,
        ),
        (
            "flip-data-and-parity",
            vec![
                (g1[2].clone(), Fault::FlipBit),
                (p1[1].clone(), Fault::FlipBit),
            ],
            false,
        ),
        (
            "pack-and-chunk-in-one-group",
            vec![
                (pack.clone(), Fault::FlipBit),
                (pack_neighbour, Fault::Truncate),
            ],
            true,
        ),
        (
            "m-per-group-everywhere",
            (0..fx.group_count())
                .flat_map(|g| {
                    let (members, parity) = fx.group(g);
                    [
                        (members[0].clone(), Fault::Lose),
                        (parity[1].clone(), Fault::FlipBit),
                    ]
                })
                .collect(),
            true,
        ),
        (
            "lost-manifest-copy",
            vec![(".strata/manifest.copy.json".into(), Fault::Lose)],
            true,
        ),
        (
            "damaged-manifest",
            vec![(".strata/manifest.json".into(), Fault::FlipBit)],
            false,
        ),
        (
            "lost-manifest",
            vec![(".strata/manifest.json".into(), Fault::Lose)],
            true,
        ),
        (
            "lost-parity-map-copy",
            vec![(map_copy.clone(), Fault::Lose)],
            true,
        ),
        (
            "damaged-parity-map",
            vec![(map.clone(), Fault::FlipBit)],
            false,
        ),
        (
            "lost-parity-shard-of-pack-group",
            vec![(pp[0].clone(), Fault::Lose)],
            true,
        ),
        // The index is read from its copy (fast verify reads it too), and rewritten.
        ("damaged-index", vec![(index.clone(), Fault::FlipBit)], true),
        ("lost-index", vec![(index.clone(), Fault::Lose)], true),
        (
            "lost-index-copy",
            vec![(index_copy.clone(), Fault::Lose)],
            true,
        ),
        (
            "torn-index-copy",
            vec![(index_copy.clone(), Fault::Truncate)],
            true,
        ),
        (
            "damaged-index-and-data",
            vec![
                (index.clone(), Fault::FlipHeader),
                (g1[1].clone(), Fault::Lose),
                (map_copy.clone(), Fault::Lose),
            ],
            true,
        ),
    ];
    let mut detected = 0;
    let mut repaired = 0;
    for (case, faults, fast_too) in &cases {
        let store = fx.sb.path(case);
        copy_tree(&fx.pristine, &store);
        for (key, fault) in faults {
            inject(&store, key, *fault);
        }
        let (code, report) = fx.verify(&store, false);
        assert_eq!(code, 1, "{case}: deep verify missed the fault: {report:#}");
        let named = damaged_paths(&report);
        let issues = report["issues"].as_array().unwrap().len();
        assert_eq!(
            named,
            fx.affected_by(faults),
            "{case}: verify names exactly the files the faults damage"
        );
        assert!(
            !named.is_empty() || issues > 0,
            "{case}: damage reported nowhere: {report:#}"
        );
        if *fast_too {
            let (code, report) = fx.verify(&store, true);
            assert_eq!(code, 1, "{case}: fast verify missed the fault: {report:#}");
        }
        detected += 1;

        let (code, report) = fx.repair(&store, None);
        assert_eq!(code, 0, "{case}: repair within budget failed: {report:#}");
        assert!(report["unrepairable"].as_array().unwrap().is_empty());
        let rebuilt: BTreeSet<String> = report["repaired"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["object"].as_str().unwrap().to_string())
            .collect();
        for (key, _) in faults {
            assert!(
                rebuilt.contains(key),
                "{case}: {key} not reported repaired: {report:#}"
            );
        }
        fx.assert_intact(&store, case);
        // Byte-identical: the repaired store is the pristine store.
        assert!(
            snapshot(&store) == snapshot(&fx.pristine),
            "{case}: the repaired store differs from the pristine one"
        );
        repaired += 1;
        // A second repair finds nothing to do.
        let (code, report) = fx.repair(&store, None);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(report["damaged"], 0, "{case}: {report:#}");
        fs::remove_dir_all(&store).unwrap();
    }
    eprintln!(
        "within parity: {detected}/{} detected, {repaired}/{} repaired",
        cases.len(),
        cases.len()
    );
    assert_eq!(detected, cases.len());
    assert_eq!(repaired, cases.len());
}

#[test]
fn damage_beyond_parity_is_reported_with_its_files_then_repaired_from_the_source() {
    let fx = fixture(true);
    // M + 1 chunk objects of one group (groups hold objects of similar size, the pack with
    // the largest chunks): the pack also holds the empty file, which no altered source
    // can get wrong, so it is left to the second case.
    let (g0, _) = fx.group(0);
    let g0: Vec<String> = g0
        .into_iter()
        .filter(|k| k.starts_with("chunks/"))
        .collect();
    assert!(g0.len() > M, "{g0:?}");
    let (gp, pp) = fx.group(fx.pack_group());
    let cases: Vec<(&str, Vec<(String, Fault)>)> = vec![
        (
            "m-plus-one-data",
            vec![
                (g0[0].clone(), Fault::Lose),
                (g0[1].clone(), Fault::FlipBit),
                (g0[2].clone(), Fault::Truncate),
            ],
        ),
        (
            "pack-group-wiped",
            gp.iter()
                .map(|k| (k.clone(), Fault::FlipBit))
                .chain(pp.iter().map(|k| (k.clone(), Fault::Lose)))
                .collect(),
        ),
    ];
    for (case, faults) in &cases {
        let store = fx.sb.path(case);
        copy_tree(&fx.pristine, &store);
        for (key, fault) in faults {
            inject(&store, key, *fault);
        }
        let data: Vec<String> = faults
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| !k.starts_with("parity/"))
            .collect();
        let expected = fx.affected_by(faults);
        assert!(!expected.is_empty());

        let (code, report) = fx.verify(&store, false);
        assert_eq!(code, 1, "{case}: {report:#}");
        assert_eq!(damaged_paths(&report), expected, "{case}");

        let before = snapshot(&store);
        let (code, report) = fx.repair(&store, None);
        assert_eq!(
            code, 1,
            "{case}: damage beyond parity must fail: {report:#}"
        );
        assert_eq!(
            string_set(&report["files_affected"]),
            expected,
            "{case}: exactly the files affected"
        );
        for u in report["unrepairable"].as_array().unwrap() {
            assert!(
                u["reason"].as_str().unwrap().contains("--from"),
                "{case}: the reason says what to do: {u}"
            );
        }
        // Nothing was "repaired" into wrong bytes: the damaged objects are as they were.
        let after = snapshot(&store);
        for key in &data {
            assert_eq!(
                before.get(key),
                after.get(key),
                "{case}: {key} was rewritten"
            );
        }
        let (code, _) = fx.verify(&store, false);
        assert_eq!(code, 1, "{case}: still damaged");

        // A source that was changed since is not used to "repair" anything.
        let altered = fx.sb.path(&format!("{case}-altered-src"));
        copy_tree(&fx.src, &altered);
        for (i, path) in expected.iter().enumerate() {
            let len = fs::metadata(altered.join(path)).unwrap().len() as usize;
            random_file(&altered.join(path), len, 999 + i as u64);
        }
        let (code, report) = fx.repair(&store, Some(&altered));
        assert_eq!(
            code, 1,
            "{case}: an altered source must not repair: {report:#}"
        );
        assert_eq!(string_set(&report["files_affected"]), expected, "{case}");
        let (code, _) = fx.verify(&store, false);
        assert_eq!(code, 1);

        // The real source repairs everything, byte-identical.
        let (code, report) = fx.repair(&store, Some(&fx.src));
        assert_eq!(code, 0, "{case}: repair from the source: {report:#}");
        let from_source = report["repaired"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["how"] == "source")
            .count();
        assert!(from_source > 0, "{case}: {report:#}");
        fx.assert_intact(&store, case);
        assert!(
            snapshot(&store) == snapshot(&fx.pristine),
            "{case}: deterministic codecs rebuild the very same objects"
        );
        fs::remove_dir_all(&store).unwrap();
    }
}

#[test]
fn both_index_copies_damaged_fail_clearly_and_nothing_wrong_is_restored() {
    let fx = fixture(true);
    let store = fx.sb.path("index-lost");
    copy_tree(&fx.pristine, &store);
    let index = format!(".strata/index/{}.json", fx.root);
    let copy = format!(".strata/index/{}.copy.json", fx.root);
    inject(&store, &index, Fault::FlipBit);
    inject(&store, &copy, Fault::Truncate);
    let all: BTreeSet<String> = fx.files.iter().map(|(p, _)| p.clone()).collect();
    let both: BTreeSet<String> = [index.clone(), copy.clone()].into();

    // Verify (deep and fast): both copies named, every file unreadable, exit 1.
    for fast in [false, true] {
        let (code, report) = fx.verify(&store, fast);
        assert_eq!(code, 1, "fast={fast}: {report:#}");
        let issues: BTreeSet<String> = report["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["object"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(issues, both, "fast={fast}: {report:#}");
        assert!(report["issues"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("strata migrate"));
        assert_eq!(damaged_paths(&report), all, "fast={fast}");
        assert_eq!(report["files_ok"], 0);
    }

    // Repair cannot rebuild it (parity covers data objects, not the index), with or
    // without a source, says so for every file, and changes nothing.
    let before = snapshot(&store);
    for from in [None, Some(fx.src.as_path())] {
        let (code, report) = fx.repair(&store, from);
        assert_eq!(code, 1, "{report:#}");
        let unrepairable: BTreeSet<String> = report["unrepairable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["object"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(unrepairable, both, "{report:#}");
        for u in report["unrepairable"].as_array().unwrap() {
            let reason = u["reason"].as_str().unwrap();
            assert!(
                reason.contains("parity covers the data objects, not the index")
                    && reason.contains("strata migrate SRC DST --layout packed"),
                "{reason}"
            );
        }
        assert_eq!(string_set(&report["files_affected"]), all);
        assert!(report["repaired"].as_array().unwrap().is_empty());
    }
    assert!(
        snapshot(&store) == before,
        "a failed repair changed the store"
    );

    // A restore refuses before writing anything, naming the index.
    let back = fx.sb.path("index-lost-back");
    let out = fx.strata(&["migrate", store.to_str().unwrap(), back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&index) && err.contains("copy") && err.contains("strata migrate"),
        "{err}"
    );
    assert!(
        !back.exists() || snapshot(&back).keys().all(|k| k.starts_with(".strata")),
        "nothing may be restored from a store whose index is lost"
    );

    // What the messages advise works: migrating again writes the index (both copies).
    let out = fx.strata(&[
        "migrate",
        fx.src.to_str().unwrap(),
        store.to_str().unwrap(),
        "--layout",
        "packed",
        "--chunk-size",
        "64K",
        "--parity",
        &format!("ec:{K}+{M}"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    fx.assert_intact(&store, "index-lost");
    assert!(
        snapshot(&store) == snapshot(&fx.pristine),
        "the index written again is the original one"
    );
}

#[test]
fn without_parity_damage_is_reported_and_repaired_from_the_source() {
    let fx = fixture(false);
    let index = fx.index();
    let object = index["files"][0]["chunks"][1]["object"]
        .as_str()
        .unwrap()
        .to_string();
    let store = fx.sb.path("noparity");
    copy_tree(&fx.pristine, &store);
    inject(&store, &object, Fault::FlipBit);
    let (code, report) = fx.repair(&store, None);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        string_set(&report["files_affected"]),
        fx.files_using(std::slice::from_ref(&object))
    );
    assert!(report["unrepairable"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("no parity"));
    let (code, report) = fx.repair(&store, Some(&fx.src));
    assert_eq!(code, 0, "{report:#}");
    fx.assert_intact(&store, "noparity");

    // Plain layout: a damaged file is copied again from the source; text output names it.
    let plain = fx.sb.path("plain");
    let out = fx.strata(&[
        "migrate",
        fx.src.to_str().unwrap(),
        plain.to_str().unwrap(),
        "--chunk-size",
        "64K",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    fs::remove_file(plain.join(".strata/manifest.copy.json")).unwrap();
    inject(&plain, "big/b.bin", Fault::FlipBit);
    let out = fx.strata(&["repair", plain.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("UNREPAIRABLE big/b.bin"), "{text}");
    assert!(
        text.contains("REPAIRED .strata/manifest.copy.json from copy"),
        "{text}"
    );
    let out = fx.strata(&[
        "repair",
        plain.to_str().unwrap(),
        "--from",
        fx.src.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("REPAIRED big/b.bin from source"), "{text}");
    let out = fx.strata(&["verify", plain.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_same_files(&fx.src, &plain, &fx.files);
}

#[test]
fn bad_parity_values_are_refused_before_anything_moves() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    random_file(&src.join("a"), 1000, 1);
    for (value, layout) in [("ec:0+2", "packed"), ("200%", "packed"), ("10%", "plain")] {
        let out = sb.run(&[
            "migrate",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
            "--layout",
            layout,
            "--parity",
            value,
        ]);
        assert_eq!(out.status.code(), Some(2), "{value}");
        assert!(stderr(&out).contains("parity"), "{}", stderr(&out));
        assert!(!dst.exists(), "{value}: nothing written");
    }
}

#[test]
fn parity_and_repair_work_on_s3() {
    use strata_store::testing::{moto, new_bucket, TEST_KEY_ID, TEST_SECRET};
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
        "--parity",
        "ec:4+2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let root = json(&out)["root_hash"].as_str().unwrap().to_string();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(async {
        let options = strata_store::S3Options {
            endpoint: Some(moto().endpoint()),
            access_key_id: Some(TEST_KEY_ID.into()),
            secret_access_key: Some(TEST_SECRET.into()),
            region: Some("us-east-1".into()),
            ..Default::default()
        };
        strata_store::Store::open(&strata_store::StoreUri::parse(&remote).unwrap(), &options)
            .await
            .unwrap()
    });
    let map: serde_json::Value = runtime.block_on(async {
        let bytes = store
            .read_all(&format!(".strata/parity/{root}.json"))
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    });
    let key = |g: usize, what: &str, i: usize| {
        map["groups"][g][what][i]["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Two shards of group 0 (a flipped member, a lost parity shard), a lost member of
    // group 1, and the manifest copy; then three members of group 2 (beyond parity).
    let (flipped, lost_parity, lost) = (
        key(0, "members", 0),
        key(0, "parity", 1),
        key(1, "members", 2),
    );
    runtime.block_on(async {
        let mut data = store.read_all(&flipped).await.unwrap().to_vec();
        let middle = data.len() / 2;
        data[middle] ^= 0x40;
        store.write_atomic(&flipped, data.into()).await.unwrap();
        store.delete(&lost_parity).await.unwrap();
        store.delete(&lost).await.unwrap();
        store.delete(".strata/manifest.copy.json").await.unwrap();
    });
    let out = s3(&["verify", &remote, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = s3(&["repair", &remote, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        json(&out)["repaired"].as_array().unwrap().len(),
        4,
        "{}",
        stdout(&out)
    );
    let out = s3(&["verify", &remote]);
    assert!(out.status.success(), "{}", stdout(&out));

    runtime.block_on(async {
        for i in 0..3 {
            store.delete(&key(2, "members", i)).await.unwrap();
        }
    });
    let out = s3(&["repair", &remote, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!json(&out)["files_affected"].as_array().unwrap().is_empty());
    let out = s3(&["repair", &remote, "--from", src.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = s3(&["verify", &remote]);
    assert!(out.status.success(), "{}", stdout(&out));
    let out = s3(&["migrate", &remote, back.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["root_hash"], root.as_str());
    assert_same_files(&src, &back, &files);
}
