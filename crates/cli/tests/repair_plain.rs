//! End-to-end: a plain dataset with 1% of its chunks corrupted is repaired from the source
//! by re-sending only the damaged chunks (about 1% of the data).

mod common;

use std::fs;
use std::os::unix::fs::FileExt;

use common::*;
use rand::{Rng, SeedableRng};

#[test]
fn one_percent_damage_costs_about_one_percent_to_repair() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let (files, size, chunk) = (50u64, 1u64 << 20, 64u64 << 10);
    for i in 0..files {
        random_file(&src.join(format!("f{i:02}.bin")), size as usize, i);
    }
    let out = sb.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--chunk-size",
        "64K",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Flip one bit in 1% of all chunks (8 of 800), in distinct chunks.
    let total_chunks = files * size / chunk;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut hit = std::collections::BTreeSet::new();
    while hit.len() < (total_chunks / 100) as usize {
        hit.insert(rng.random_range(0..total_chunks));
    }
    for &c in &hit {
        let (file, offset) = (c / (size / chunk), (c % (size / chunk)) * chunk + 100);
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dst.join(format!("f{file:02}.bin")))
            .unwrap();
        let mut b = [0u8];
        f.read_exact_at(&mut b, offset).unwrap();
        f.write_all_at(&[b[0] ^ 0x80], offset).unwrap();
    }
    let out = sb.run(&["verify", dst.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let ranges: usize = json(&out)["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["ranges"].as_array().unwrap().len())
        .sum();
    assert_eq!(ranges, hit.len(), "every damaged chunk is named");

    let out = sb.run(&[
        "repair",
        dst.to_str().unwrap(),
        "--from",
        src.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let fetched = json(&out)["bytes_from_source"].as_u64().unwrap();
    let damaged_bytes = hit.len() as u64 * chunk;
    eprintln!(
        "repair re-read {fetched} bytes from the source for {damaged_bytes} damaged bytes of {}",
        files * size
    );
    assert_eq!(fetched, damaged_bytes, "only the damaged chunks travel");
    assert!(sb.run(&["verify", dst.to_str().unwrap()]).status.success());
    for i in 0..files {
        let name = format!("f{i:02}.bin");
        assert!(
            fs::read(src.join(&name)).unwrap() == fs::read(dst.join(&name)).unwrap(),
            "{name}"
        );
    }
}
