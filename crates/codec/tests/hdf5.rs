//! HDF5 / NetCDF-4 typed regions: the sniffer's regions against what the HDF5 library
//! itself reports (`tests/data/hdf5/*.json`, written by `make_fixtures.py` with h5py),
//! sanity on the real scientific files, and robustness on truncated and corrupted heads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rand::{rngs::StdRng, Rng, SeedableRng};
use strata_codec::analyze::{sniff_format, Format, FormatInfo, TypedRegion};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hdf5")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sniff(data: &[u8], name: &str) -> FormatInfo {
    sniff_format(data, Some(name))
}

/// Regions as `(start, len, width)`.
fn triples(regions: &[TypedRegion]) -> Vec<(u64, u64, u8)> {
    regions.iter().map(|r| (r.start, r.len, r.width)).collect()
}

/// The regions h5py says the parser should find: every range of every dataset marked
/// `expect`, with the dataset's item size as width (hard links to one dataset once).
fn expected(name: &str) -> Vec<(u64, u64, u8)> {
    let json = std::fs::read(data_dir().join(name).with_extension("json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let mut set = BTreeSet::new();
    for d in v["datasets"].as_array().unwrap() {
        if !d["expect"].as_bool().unwrap() {
            continue;
        }
        let width = d["itemsize"].as_u64().unwrap() as u8;
        for r in d["ranges"].as_array().unwrap() {
            set.insert((r[0].as_u64().unwrap(), r[1].as_u64().unwrap(), width));
        }
    }
    set.into_iter().collect()
}

/// What h5py says about one dataset of a fixture: layout and number of ranges.
fn dataset_json(name: &str, dataset: &str) -> serde_json::Value {
    let json = std::fs::read(data_dir().join(name).with_extension("json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    v["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == dataset)
        .unwrap_or_else(|| panic!("{name}: no {dataset}"))
        .clone()
}

/// Regions lie inside the file, have a valid width, are sorted and disjoint.
fn assert_sane(info: &FormatInfo, file_len: u64, what: &str) {
    let mut end = 0;
    for r in &info.regions {
        assert!(matches!(r.width, 1 | 2 | 4 | 8), "{what}: {r:?}");
        assert!(r.len > 0, "{what}: {r:?}");
        assert!(r.start >= end, "{what}: overlap at {r:?}");
        end = r.start + r.len;
        assert!(end <= file_len, "{what}: {r:?} past the end ({file_len})");
    }
    assert!(info.regions.len() <= 100_000, "{what}");
}

fn check_fixture(name: &str) -> FormatInfo {
    let data = fixture(name);
    let info = sniff(&data, name);
    let want = expected(name);
    assert!(!want.is_empty(), "{name}: fixture without expected regions");
    assert_eq!(triples(&info.regions), want, "{name}: {}", info.detail);
    assert_sane(&info, data.len() as u64, name);
    info
}

#[test]
fn superblock_v0_contiguous_datasets_and_nested_groups() {
    let name = "v0_contiguous.h5";
    let info = check_fixture(name);
    assert_eq!(info.format, Format::Hdf5);
    assert!(
        info.detail.starts_with("superblock v0 at byte 0; "),
        "{}",
        info.detail
    );
    // temp (via its alias), pressure, counts, grp/ids, grp/sub/flags, 8 chunks of tiles.
    assert_eq!(info.regions.len(), 5 + 8, "{}", info.detail);
    for w in [1, 2, 4, 8] {
        assert!(info.regions.iter().any(|r| r.width == w), "width {w}");
    }
    // float32 covers the most bytes: temp (20000) and tiles (16384).
    assert_eq!(info.element_width, Some(4));
    // Members are visited in name order, so `temp` is reached as `grp/alias` first.
    let listed = "9 datasets: counts int16 [contiguous], empty float32 [empty], \
                  grp/alias float32 [contiguous], grp/ids int64 [contiguous], \
                  grp/sub/flags uint8 [contiguous], grp/sub/tiles float32 [8 chunks], \
                  +3 more; 13 typed regions";
    assert!(info.detail.ends_with(listed), "{}", info.detail);
    // Compact, unwritten and variable-length string datasets give no regions.
    for skipped in ["small", "empty", "names"] {
        assert!(!dataset_json(name, skipped)["expect"].as_bool().unwrap());
    }
}

#[test]
fn superblock_v2_contiguous_and_btree_chunked() {
    let info = check_fixture("v2_chunked.h5");
    assert!(info.detail.starts_with("superblock v2 "), "{}", info.detail);
    let grid = dataset_json("v2_chunked.h5", "grid");
    assert_eq!(grid["layout"], "chunked");
    assert_eq!(grid["ranges"].as_array().unwrap().len(), 9);
    assert_eq!(info.regions.iter().filter(|r| r.width == 4).count(), 1 + 9);
}

#[test]
fn superblock_v3_latest_with_fixed_array_chunks() {
    let info = check_fixture("v3_latest.h5");
    assert!(info.detail.starts_with("superblock v3 "), "{}", info.detail);
    assert_eq!(info.element_width, Some(8), "{}", info.detail);
    assert_eq!(info.regions.len(), 3 + 4, "{}", info.detail);
}

#[test]
fn filtered_chunks_give_no_regions() {
    let name = "gzip_chunked.h5";
    let info = check_fixture(name);
    for filtered in ["packed", "shuffled"] {
        let d = dataset_json(name, filtered);
        assert!(d["nfilters"].as_u64().unwrap() > 0);
        for r in d["ranges"].as_array().unwrap() {
            let start = r[0].as_u64().unwrap();
            assert!(info.regions.iter().all(|x| x.start != start), "{filtered}");
        }
    }
    // Only `plain` remains.
    assert_eq!(triples(&info.regions).len(), 1);
    assert!(
        info.detail.contains("packed float32 [filtered]"),
        "{}",
        info.detail
    );
}

#[test]
fn user_block_shifts_every_address() {
    let info = check_fixture("userblock.h5");
    assert!(
        info.detail.starts_with("superblock v0 at byte 512; "),
        "{}",
        info.detail
    );
    assert!(info.regions.iter().all(|r| r.start >= 512));
}

#[test]
fn netcdf4_float64_variable() {
    let name = "ocean_nc4.nc";
    let info = check_fixture(name);
    assert_eq!(info.format, Format::NetCdf4);
    let sst = dataset_json(name, "sst");
    let r = &sst["ranges"][0];
    let region = (r[0].as_u64().unwrap(), r[1].as_u64().unwrap(), 8);
    assert!(triples(&info.regions).contains(&region), "{}", info.detail);
    assert_eq!(info.element_width, Some(8), "{}", info.detail);
    // Also found without the path hint.
    let data = fixture(name);
    assert_eq!(sniff_format(&data, None).regions, info.regions);
}

#[test]
fn real_files_give_sane_regions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/scientific");
    let mut seen = 0;
    for dir in ["hdf5", "netcdf"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let name = path.to_string_lossy().to_string();
            if !(name.contains(".h5") || name.ends_with(".nc")) {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let info = sniff(&data, &name);
            if matches!(info.format, Format::Hdf5 | Format::NetCdf4) {
                assert_sane(&info, data.len() as u64, &name);
                let width = info.element_width;
                eprintln!("{name}: width {width:?}; {}", info.detail);
                seen += 1;
            }
        }
    }
    eprintln!("{seen} real HDF5 files checked");
}

const FIXTURES: [&str; 6] = [
    "v0_contiguous.h5",
    "v2_chunked.h5",
    "v3_latest.h5",
    "gzip_chunked.h5",
    "userblock.h5",
    "ocean_nc4.nc",
];

#[test]
fn truncated_heads_find_a_subset() {
    for name in FIXTURES {
        let data = fixture(name);
        let full: BTreeSet<_> = triples(&sniff(&data, name).regions).into_iter().collect();
        for cut in (0..data.len()).step_by(97) {
            let info = sniff_format(&data[..cut], Some(name));
            for r in triples(&info.regions) {
                assert!(full.contains(&r), "{name} cut at {cut}: {r:?}");
            }
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x4844_4635);
    for name in FIXTURES {
        let data = fixture(name);
        // Half the hits land in the metadata before the first region, half anywhere.
        let first = sniff(&data, name)
            .regions
            .first()
            .map_or(data.len(), |r| r.start as usize);
        let mut bad = data.clone();
        for i in 0..2_000 {
            let at = rng.random_range(0..if i % 2 == 0 { first } else { data.len() });
            let old = bad[at];
            bad[at] = rng.random();
            assert_sane(&sniff(&bad, name), u64::MAX, name);
            // Every tenth hit stays: damage accumulates.
            if i % 10 != 0 {
                bad[at] = old;
            }
        }
    }
}
