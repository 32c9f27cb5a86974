//! Parity create/repair on one file, the way `strata` does it for a packed store, for a
//! side-by-side comparison with `par2` (`scripts/bench-parity.sh`).
//!
//! ```text
//! parity_bench create FILE DIR [--parity 10%] [--shard 4M]   # shards, hashes, parity -> DIR
//! parity_bench repair FILE DIR                                # find damage, rebuild, re-verify
//! ```
//!
//! `create` reads FILE, cuts it into shards (4 MiB: Strata's default chunk size), hashes
//! each with BLAKE3, groups them K at a time as `--parity` says (10% is `ec:20+2`, as for
//! `strata migrate --parity 10%`), encodes M parity shards per group and writes them with
//! the hashes to DIR. `repair` re-hashes every shard, rebuilds the damaged ones from their
//! group, checks each rebuilt shard against its recorded hash before writing it back into
//! FILE, then re-reads and re-hashes the whole file. Groups run on all cores, as the mover
//! runs them; each worker reads shards with positional reads into buffers it reuses.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use strata_codec::parity::{GroupCoder, ParitySpec};

#[derive(Serialize, Deserialize)]
struct Meta {
    file_len: u64,
    shard: usize,
    k: usize,
    m: usize,
    /// BLAKE3 of every data shard.
    shards: Vec<String>,
    /// Per group: shard length and BLAKE3 of each parity shard.
    groups: Vec<(usize, Vec<String>)>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: parity_bench create|repair FILE DIR [--parity 10%] [--shard 4M]";
    if args.len() < 4 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let (file, dir) = (PathBuf::from(&args[2]), PathBuf::from(&args[3]));
    let mut spec = ParitySpec::parse("10%").unwrap();
    let mut shard = 4usize << 20;
    let mut rest = args[4..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().expect(usage);
        match flag.as_str() {
            "--parity" => spec = ParitySpec::parse(value).unwrap_or_else(|e| panic!("{e}")),
            "--shard" => {
                let v = value.trim_end_matches(['M', 'm']);
                shard = v.parse::<usize>().expect("--shard in MiB") << 20;
            }
            _ => panic!("{usage}"),
        }
    }
    let started = Instant::now();
    match args[1].as_str() {
        "create" => create(&file, &dir, spec, shard),
        "repair" => repair(&file, &dir),
        _ => panic!("{usage}"),
    }
    eprintln!("{} took {:.3}s", args[1], started.elapsed().as_secs_f64());
}

fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Shard `i` of `file` into `buffer` (resized to the shard's length).
fn read_shard(file: &File, i: usize, shard: usize, file_len: u64, buffer: &mut Vec<u8>) {
    let offset = (i * shard) as u64;
    let len = (file_len - offset).min(shard as u64) as usize;
    buffer.resize(len, 0);
    file.read_exact_at(buffer, offset).expect("read FILE");
}

/// Run `work(worker, items)` on every worker, item `i` going to worker `i mod workers`.
fn on_workers<T: Send>(count: usize, work: impl Fn(Vec<usize>) -> Vec<T> + Sync) -> Vec<T> {
    let n = workers();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|w| {
                let work = &work;
                s.spawn(move || work((w..count).step_by(n).collect()))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// BLAKE3 of every shard, in order.
fn hash_shards(file: &File, shard: usize, file_len: u64) -> Vec<String> {
    let count = (file_len as usize).div_ceil(shard);
    let mut hashes = on_workers(count, |items| {
        let mut buffer = Vec::with_capacity(shard);
        items
            .into_iter()
            .map(|i| {
                read_shard(file, i, shard, file_len, &mut buffer);
                (i, blake3::hash(&buffer).to_hex().to_string())
            })
            .collect()
    });
    hashes.sort_by_key(|(i, _)| *i);
    hashes.into_iter().map(|(_, h)| h).collect()
}

fn parity_path(dir: &Path, group: usize, i: usize) -> PathBuf {
    dir.join(format!("parity-{group}-{i}"))
}

fn create(path: &Path, dir: &Path, spec: ParitySpec, shard: usize) {
    fs::create_dir_all(dir).unwrap();
    let file = File::open(path).expect("open FILE");
    let file_len = file.metadata().unwrap().len();
    let count = (file_len as usize).div_ceil(shard);
    let groups = count.div_ceil(spec.k);
    let mut results = on_workers(groups, |items| {
        let mut coder = GroupCoder::new();
        let mut buffers: Vec<Vec<u8>> = Vec::new();
        let mut out = Vec::new();
        for g in items {
            let members: Vec<usize> = (g * spec.k..((g + 1) * spec.k).min(count)).collect();
            buffers.resize_with(members.len(), || Vec::with_capacity(shard));
            let mut hashes = Vec::new();
            for (buffer, &i) in buffers.iter_mut().zip(&members) {
                read_shard(&file, i, shard, file_len, buffer);
                hashes.push((i, blake3::hash(buffer).to_hex().to_string()));
            }
            let slices: Vec<&[u8]> = buffers[..members.len()]
                .iter()
                .map(|b| b.as_slice())
                .collect();
            let parity = coder.encode(&slices, spec.m).expect("encode");
            let mut parity_hashes = Vec::new();
            for (j, p) in parity.iter().enumerate() {
                fs::write(parity_path(dir, g, j), p).unwrap();
                parity_hashes.push(blake3::hash(p).to_hex().to_string());
            }
            out.push((g, hashes, (parity[0].len(), parity_hashes)));
        }
        out
    });
    results.sort_by_key(|(g, ..)| *g);
    let meta = Meta {
        file_len,
        shard,
        k: spec.k,
        m: spec.m,
        shards: results
            .iter()
            .flat_map(|(_, h, _)| h.iter().map(|(_, h)| h.clone()))
            .collect(),
        groups: results.into_iter().map(|(_, _, g)| g).collect(),
    };
    fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
    eprintln!(
        "{}: {count} shards of {} MiB, {groups} groups, {spec}",
        path.display(),
        shard >> 20,
    );
}

fn repair(path: &Path, dir: &Path) {
    let meta: Meta = serde_json::from_slice(&fs::read(dir.join("meta.json")).unwrap()).unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open FILE");
    let file_len = file.metadata().unwrap().len();
    assert_eq!(file_len, meta.file_len, "FILE changed length");
    let scan = Instant::now();
    let hashes = hash_shards(&file, meta.shard, file_len);
    let damaged: Vec<usize> = (0..hashes.len())
        .filter(|&i| hashes[i] != meta.shards[i])
        .collect();
    let scanned = scan.elapsed();
    let mut groups: Vec<usize> = damaged.iter().map(|i| i / meta.k).collect();
    groups.dedup();
    let rebuild = Instant::now();
    let count = meta.shards.len();
    let failures: Vec<String> = on_workers(groups.len(), |items| {
        let mut coder = GroupCoder::new();
        let mut buffers: Vec<Vec<u8>> = Vec::new();
        let mut failures = Vec::new();
        for g in items.into_iter().map(|i| groups[i]) {
            let first = g * meta.k;
            let k = ((g + 1) * meta.k).min(count) - first;
            let (shard_len, parity_hashes) = &meta.groups[g];
            buffers.resize_with(k + meta.m, || Vec::with_capacity(*shard_len));
            let mut ok = vec![false; k + meta.m];
            for i in 0..k {
                if !damaged.contains(&(first + i)) {
                    read_shard(&file, first + i, meta.shard, file_len, &mut buffers[i]);
                    ok[i] = true;
                }
            }
            for (j, want) in parity_hashes.iter().enumerate() {
                if let Ok(p) = fs::read(parity_path(dir, g, j)) {
                    ok[k + j] = blake3::hash(&p).to_hex().as_str() == want;
                    buffers[k + j] = p;
                }
            }
            let present: Vec<Option<&[u8]>> = (0..k + meta.m)
                .map(|i| ok[i].then(|| buffers[i].as_slice()))
                .collect();
            let rebuilt = match coder.rebuild(&present, k, meta.m, *shard_len) {
                Ok(rebuilt) => rebuilt,
                Err(e) => {
                    failures.push(format!("group {g}: {e}"));
                    continue;
                }
            };
            for (i, mut bytes) in rebuilt.into_iter().filter(|(i, _)| *i < k) {
                let shard = first + i;
                let len = (file_len - (shard * meta.shard) as u64).min(meta.shard as u64);
                bytes.truncate(len as usize);
                if blake3::hash(&bytes).to_hex().as_str() != meta.shards[shard] {
                    failures.push(format!("shard {shard}: rebuilt bytes do not verify"));
                    continue;
                }
                file.write_all_at(&bytes, (shard * meta.shard) as u64)
                    .unwrap();
            }
        }
        failures
    });
    file.sync_all().unwrap();
    let rebuilt = rebuild.elapsed();
    // Re-read and re-verify the whole repaired file, as par2 does.
    let check = Instant::now();
    let again = hash_shards(&file, meta.shard, file_len);
    let still = again
        .iter()
        .zip(&meta.shards)
        .filter(|(a, b)| a != b)
        .count();
    eprintln!(
        "{} damaged shards found ({:.3}s), {} rebuilt in {} groups ({:.3}s), {} still damaged \
         after re-verifying ({:.3}s){}",
        damaged.len(),
        scanned.as_secs_f64(),
        damaged.len() - still,
        groups.len(),
        rebuilt.as_secs_f64(),
        still,
        check.elapsed().as_secs_f64(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(": {}", failures.join("; "))
        }
    );
    if still > 0 {
        std::process::exit(1);
    }
}
