//! Codec selection over the real scientific data set (`shared/data/scientific`, 29 files).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-codec cargo bench -p strata-codec --bench scientific
//! CARGO_TARGET_DIR=/work/target-codec cargo bench -p strata-codec --bench scientific -- auto max
//! ```
//!
//! The data folder is `$STRATA_SCIENTIFIC_DATA`, by default `../shared/data/scientific`
//! from the workspace root. Files are cut into 4 MiB chunks (`$STRATA_CHUNK_SIZE` to
//! change) and every chunk is encoded as a full frame (64-byte header included) on one
//! core. For each mode the bench prints per file and in total the bytes saved and the
//! single-core MB/s (probe + select + encode). The modes:
//!
//! - `auto`: Strata's default, the link-rate objective on a 1 Gbit/s (125 MB/s) link,
//!   workers = cores of this machine; `auto@MBPS` (not run by default) at any link rate in
//!   MB/s, e.g. `auto@1000`, and `auto@MBPSxWORKERS` with a given number of workers;
//! - `max`: best predicted ratio;
//! - `zstd3`, `zstd19`, `xz6`: fixed codecs without filter, per chunk;
//! - `zstd3-file`, `xz6-file`: the same on whole files (one chunk per file), which is
//!   what `MANIFEST.json`'s `zstd -3` and `xz -6` columns measure;
//! - `oracle`: per chunk, every codec × filter, keeping the smallest in hindsight. Its
//!   MB/s counts all the trials (the cost of knowing); `oracle-win` counts only the
//!   winner's time. `rate-oracle@L` picks per chunk, in hindsight, the candidate with the
//!   best measured end-to-end rate on a link of L.

use std::path::{Path, PathBuf};
use std::time::Instant;

use strata_codec::analyze::{analyze_file_chunks, Objective};
use strata_codec::compress::{encode_frame, Codec, Filter};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            files(&p, out);
        } else if !p.ends_with("SOURCE.txt") && !p.ends_with("MANIFEST.json") {
            out.push(p);
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    raw: u64,
    stored: u64,
    secs: f64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.raw += o.raw;
        self.stored += o.stored;
        self.secs += o.secs;
    }
    fn saved(&self) -> i64 {
        self.raw as i64 - self.stored as i64
    }
    fn mbps(&self) -> f64 {
        self.raw as f64 / self.secs.max(1e-9) / 1e6
    }
    /// End-to-end MB/s with `workers` cores and a `link` bytes/s link.
    fn e2e(&self, workers: f64, link: f64) -> f64 {
        let t = (self.secs / workers).max(self.stored as f64 / link);
        self.raw as f64 / t.max(1e-9) / 1e6
    }
}

/// Random bytes (an incompressible stream) through `auto`: throughput and growth.
fn random_pass(chunk: usize, workers: u32) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..64usize << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    for (name, obj) in [
        (
            "auto",
            Objective::link_rate(Objective::DEFAULT_LINK_RATE, workers),
        ),
        ("auto@1000", Objective::link_rate(1e9, workers)),
        ("max", Objective::MaxRatio),
    ] {
        let t = run_objective(&data, "random.bin", chunk, &obj);
        println!(
            "random 64 MiB, {name:<8} {:>7.0} MB/s per core, grew by {} bytes ({} chunks x 64-byte header)",
            t.mbps(),
            -t.saved(),
            data.len().div_ceil(chunk)
        );
    }
}

fn run_objective(data: &[u8], path: &str, chunk: usize, obj: &Objective) -> Tally {
    let start = Instant::now();
    let reports = analyze_file_chunks(data, Some(path), chunk, obj);
    Tally {
        raw: data.len() as u64,
        stored: reports.iter().map(|r| r.frame_len).sum(),
        secs: start.elapsed().as_secs_f64(),
    }
}

fn run_fixed(data: &[u8], chunk: usize, codec: Codec) -> Tally {
    let start = Instant::now();
    let stored = data
        .chunks(chunk.max(1))
        .map(|c| encode_frame(c, codec, Filter::None).len() as u64)
        .sum::<u64>()
        .max(if data.is_empty() { 64 } else { 0 });
    Tally {
        raw: data.len() as u64,
        stored,
        secs: start.elapsed().as_secs_f64(),
    }
}

/// Per chunk: every candidate's (frame length, seconds).
fn oracle_trials(data: &[u8], chunk: usize) -> Vec<Vec<(usize, f64)>> {
    let mut out = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        let mut row = Vec::new();
        for codec in oracle_codecs() {
            for filter in oracle_filters() {
                let t = Instant::now();
                let n = encode_frame(c, codec, filter).len();
                row.push((n, t.elapsed().as_secs_f64()));
            }
        }
        out.push(row);
    }
    if data.is_empty() {
        out.push(vec![(64, 0.0)]);
    }
    out
}

fn oracle_codecs() -> Vec<Codec> {
    let z = |level| Codec::Zstd { level, long: false };
    vec![
        Codec::Lz4,
        z(1),
        z(3),
        z(6),
        z(9),
        z(12),
        z(19),
        Codec::Gzip { level: 6 },
        Codec::Bzip2 { level: 9 },
        Codec::Xz { level: 6 },
    ]
}

fn oracle_filters() -> Vec<Filter> {
    let s = |width| Filter::Shuffle { width };
    vec![Filter::None, s(2), s(4), s(8)]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("STRATA_SCIENTIFIC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data/scientific"));
    let chunk: usize = std::env::var("STRATA_CHUNK_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4 << 20);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let mut paths = Vec::new();
    files(&dir, &mut paths);
    if paths.is_empty() {
        eprintln!(
            "no data under {}: set STRATA_SCIENTIFIC_DATA",
            dir.display()
        );
        return;
    }
    let all = [
        "auto",
        "max",
        "zstd3",
        "zstd19",
        "xz6",
        "zstd3-file",
        "xz6-file",
        "oracle",
    ];
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if args.first().map(String::as_str) == Some("calibrate") {
        calibrate(&paths, chunk);
        return;
    }
    if args.first().map(String::as_str) == Some("inspect") {
        inspect(&dir, &paths, &args[1..], chunk, workers);
        return;
    }
    let mut modes: Vec<&str> = all
        .iter()
        .copied()
        .filter(|m| args.is_empty() || args.iter().any(|a| a == m))
        .collect();
    // `auto@MBPS` (e.g. auto@250): the link-rate objective at any link rate, in MB/s.
    modes.extend(
        args.iter()
            .map(String::as_str)
            .filter(|a| a.starts_with("auto@")),
    );
    let links = [1e9, 125e6];
    let mut cols: Vec<String> = modes.iter().map(|m| m.to_string()).collect();
    if modes.contains(&"oracle") {
        cols.push("oracle-win".into());
        cols.extend(links.iter().map(|l| format!("rate-oracle@{:.0}", l / 1e6)));
    }
    let mut totals = vec![Tally::default(); cols.len()];
    println!(
        "data: {} ({} files), chunk {} KiB, workers {workers}",
        dir.display(),
        paths.len(),
        chunk >> 10
    );
    print!("{:<34} {:>9}", "file", "bytes");
    for c in &cols {
        print!(" {c:>20}");
    }
    println!(
        "\n{:<34} {:>9}{}",
        "",
        "",
        " saved KB    MB/s".repeat(cols.len())
    );
    for path in &paths {
        let data = std::fs::read(path).expect("read data file");
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let hint = name.clone();
        let mut row = Vec::new();
        // The oracle's extra columns (winner's time, rate-oracles) come after all modes.
        let mut extra = Vec::new();
        for m in &modes {
            let t = match *m {
                "auto" => run_objective(
                    &data,
                    &hint,
                    chunk,
                    &Objective::link_rate(Objective::DEFAULT_LINK_RATE, workers),
                ),
                "max" => run_objective(&data, &hint, chunk, &Objective::MaxRatio),
                m if m.starts_with("auto@") => {
                    run_objective(&data, &hint, chunk, &link_mode(m, workers))
                }
                "zstd3" => run_fixed(
                    &data,
                    chunk,
                    Codec::Zstd {
                        level: 3,
                        long: false,
                    },
                ),
                "zstd19" => run_fixed(
                    &data,
                    chunk,
                    Codec::Zstd {
                        level: 19,
                        long: false,
                    },
                ),
                "xz6" => run_fixed(&data, chunk, Codec::Xz { level: 6 }),
                "zstd3-file" => run_fixed(
                    &data,
                    data.len(),
                    Codec::Zstd {
                        level: 3,
                        long: false,
                    },
                ),
                "xz6-file" => run_fixed(&data, data.len(), Codec::Xz { level: 6 }),
                "oracle" => {
                    let trials = oracle_trials(&data, chunk);
                    let raw = data.len() as u64;
                    let best = |row: &Vec<(usize, f64)>| {
                        *row.iter().min_by_key(|(n, _)| *n).expect("candidates")
                    };
                    let all_secs: f64 = trials.iter().flatten().map(|t| t.1).sum();
                    let stored: u64 = trials.iter().map(|r| best(r).0 as u64).sum();
                    let win_secs: f64 = trials.iter().map(|r| best(r).1).sum();
                    row.push(Tally {
                        raw,
                        stored,
                        secs: all_secs,
                    });
                    extra.push(Tally {
                        raw,
                        stored,
                        secs: win_secs,
                    });
                    for &link in &links {
                        let mut t = Tally {
                            raw,
                            ..Tally::default()
                        };
                        for (r, c) in trials.iter().zip(data.chunks(chunk.max(1))) {
                            let w = workers as f64;
                            let rate = |&(n, s): &(usize, f64)| {
                                (w * c.len() as f64 / s.max(1e-9))
                                    .min(link * c.len() as f64 / n as f64)
                            };
                            let pick = r.iter().max_by(|a, b| rate(a).total_cmp(&rate(b))).unwrap();
                            t.stored += pick.0 as u64;
                            t.secs += pick.1;
                        }
                        if data.is_empty() {
                            t.stored = 64;
                        }
                        extra.push(t);
                    }
                    continue;
                }
                _ => unreachable!(),
            };
            row.push(t);
        }
        row.extend(extra);
        print!(
            "{:<34} {:>9}",
            name.chars().take(34).collect::<String>(),
            data.len()
        );
        for (i, t) in row.iter().enumerate() {
            print!(" {:>9.0} {:>9.1}", t.saved() as f64 / 1e3, t.mbps());
            totals[i].add(*t);
        }
        println!();
    }
    print!("{:<34} {:>9}", "TOTAL", totals[0].raw);
    for t in &totals {
        print!(" {:>9.0} {:>9.1}", t.saved() as f64 / 1e3, t.mbps());
    }
    println!();
    if modes.contains(&"auto") {
        println!();
        random_pass(chunk, workers);
    }
    println!("\nTotals (saved bytes, single-core MB/s, end-to-end MB/s with {workers} workers):");
    for (c, t) in cols.iter().zip(&totals) {
        println!(
            "  {c:<18} saved {:>10} B ({:>5.1}%)  {:>8.1} MB/s/core  e2e@1GB/s {:>7.1}  e2e@125MB/s {:>6.1}",
            t.saved(),
            100.0 * t.saved() as f64 / t.raw.max(1) as f64,
            t.mbps(),
            t.e2e(workers as f64, 1e9),
            t.e2e(workers as f64, 125e6),
        );
    }
}

/// `auto@MBPS` or `auto@MBPSxWORKERS`: the link-rate objective on a link of MBPS MB/s
/// with this machine's cores or the given number of workers (`auto@125x32`: a 1 Gbit/s
/// link fed by a 32-core node).
fn link_mode(mode: &str, workers: u32) -> Objective {
    let spec = &mode["auto@".len()..];
    let (mbps, workers) = match spec.split_once('x') {
        Some((m, w)) => (
            m,
            w.parse().expect("auto@MBPSxWORKERS takes a worker count"),
        ),
        None => (spec, workers),
    };
    let mbps: f64 = mbps.parse().expect("auto@MBPS takes a number");
    Objective::link_rate(mbps * 1e6, workers)
}

/// `inspect PATTERN [auto|auto@MBPS[xWORKERS]|max] [oracle]`: per-chunk reports for files
/// whose path contains PATTERN, as `strata inspect` would print them; with `oracle`, also
/// the four smallest pairs of the oracle's suite for each chunk.
fn inspect(dir: &Path, paths: &[PathBuf], args: &[String], chunk: usize, workers: u32) {
    let pattern = args.first().map_or("", String::as_str);
    let objective = match args.get(1).map(String::as_str) {
        Some("max") => Objective::MaxRatio,
        Some(m) if m.starts_with("auto@") => link_mode(m, workers),
        _ => Objective::link_rate(Objective::DEFAULT_LINK_RATE, workers),
    };
    let with_oracle = args.iter().any(|a| a == "oracle");
    for path in paths
        .iter()
        .filter(|p| p.to_string_lossy().contains(pattern))
    {
        let data = std::fs::read(path).expect("read data file");
        let name = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        println!("{name}");
        for r in analyze_file_chunks(&data, Some(&name), chunk, &objective) {
            println!(
                "  @{:<9} {:>8} B  {:<14} {:<8} pred {:>5.2}x  actual {:>5.2}x  {:>7.1} ms  {}",
                r.offset,
                r.len,
                r.codec.to_string(),
                r.filter.to_string(),
                r.predicted_ratio,
                r.actual_ratio,
                r.elapsed.as_secs_f64() * 1e3,
                r.reason
            );
            if with_oracle {
                let c = &data[r.offset as usize..(r.offset + r.len) as usize];
                let mut all: Vec<(usize, String)> = Vec::new();
                for codec in oracle_codecs() {
                    for filter in oracle_filters() {
                        all.push((
                            encode_frame(c, codec, filter).len(),
                            format!("{codec}+{filter}"),
                        ));
                    }
                }
                all.sort();
                let top: Vec<String> = all
                    .iter()
                    .take(4)
                    .map(|(n, p)| format!("{p} {:.2}x", c.len() as f64 / *n as f64))
                    .collect();
                println!("      oracle: {}", top.join(", "));
            }
        }
    }
}

/// `calibrate`: per-core MB/s of each codec (compression alone), of BLAKE3 and of the
/// shuffle, over the chunks that zstd:1 shrinks by 5% or more: the numbers behind
/// `SpeedTable::default()`.
fn calibrate(paths: &[PathBuf], chunk: usize) {
    let mut chunks = Vec::new();
    for p in paths {
        let data = std::fs::read(p).expect("read data file");
        for c in data.chunks(chunk.max(1)) {
            let z = Codec::Zstd {
                level: 1,
                long: false,
            }
            .compress(c)
            .map_or(c.len(), |z| z.len());
            if c.len() >= 4096 && (z as f64) < 0.95 * c.len() as f64 {
                chunks.push(c.to_vec());
            }
        }
    }
    let total: usize = chunks.iter().map(Vec::len).sum();
    let time = |f: &dyn Fn(&[u8])| {
        let t = Instant::now();
        for c in &chunks {
            f(c);
        }
        total as f64 / t.elapsed().as_secs_f64() / 1e6
    };
    println!(
        "{} compressible chunks, {:.1} MB",
        chunks.len(),
        total as f64 / 1e6
    );
    println!(
        "  blake3      {:>8.1} MB/s",
        time(&|c| {
            std::hint::black_box(blake3::hash(c));
        })
    );
    println!(
        "  shuffle4    {:>8.1} MB/s",
        time(&|c| drop(Filter::Shuffle { width: 4 }.apply(c)))
    );
    let z = |level| Codec::Zstd { level, long: false };
    for codec in [
        Codec::Lz4,
        z(-3),
        z(1),
        z(3),
        z(6),
        z(9),
        z(12),
        z(15),
        z(19),
        Codec::Gzip { level: 6 },
        Codec::Bzip2 { level: 9 },
        Codec::Xz { level: 6 },
    ] {
        println!(
            "  {:<10} {:>8.1} MB/s",
            codec.to_string(),
            time(&|c| drop(codec.compress(c)))
        );
    }
}
