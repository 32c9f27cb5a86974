//! Streaming write of a large object with bounded memory, for docs/BENCHMARKS.md:
//!
//! ```sh
//! cargo run --release -p strata-redundancy --example stream_bench [OBJECT_MIB] [ENCODING] [DIR]
//! ```
//!
//! Generates OBJECT_MIB (default 2048) MiB of pseudo-random bytes on the fly, 1 MiB at a
//! time, and streams them with `RedundantStore::begin_write` to six local domains under DIR
//! (default: a temporary directory; give one on a disk with room for the raw bytes:
//! 1.5× the object for `ec:4+2`, the default ENCODING), then re-encodes the object to
//! `replicate:2` and back (window-by-window reads). Prints the rate of each step (object
//! bytes, MB = 10^6 B) and the peak RSS (`VmHWM` from `/proc/self/status`), which stays
//! near the same value whatever OBJECT_MIB is. Removes what it wrote.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use strata_redundancy::{Redundancy, RedundantStore};
use strata_store::{S3Options, Store, StoreUri};

const MIB: usize = 1 << 20;
const REL: &str = "objects/stream-bench";

fn rate(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64().max(1e-9)
}

/// Peak resident set size of this process in MiB (`VmHWM`), if the kernel reports it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn report(label: &str, bytes: u64, took: Duration) {
    let rss = peak_rss_mib().map_or_else(|| "unknown".to_string(), |m| format!("{m:.0} MiB"));
    println!(
        "{label}: {:.0} MB/s ({:.1} s), peak RSS so far {rss}",
        rate(bytes, took),
        took.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2048);
    let encoding: Redundancy = args.next().unwrap_or_else(|| "ec:4+2".into()).parse()?;
    let dir = match args.next() {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let mut stores = Vec::new();
    for i in 0..6 {
        let root = dir.path().join(format!("d{i}"));
        std::fs::create_dir_all(&root)?;
        let uri = StoreUri::parse(root.to_str().ok_or("the directory is not UTF-8")?)?;
        stores.push(Store::open(&uri, &S3Options::default()).await?);
    }
    let rs = RedundantStore::new(stores);
    let len = mib * MIB as u64;
    println!(
        "object {mib} MiB, {encoding}, six domains under {}; peak RSS at start {:.0} MiB",
        dir.path().display(),
        peak_rss_mib().unwrap_or(0.0)
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let started = Instant::now();
    let mut upload = rs.begin_write(REL, encoding, len).await?;
    for _ in 0..mib {
        let mut piece = vec![0u8; MIB];
        rng.fill_bytes(&mut piece);
        upload.write(Bytes::from(piece)).await?;
    }
    let raw = upload.finish().await?;
    report(
        &format!("streaming write, {encoding} ({raw} raw bytes)"),
        len,
        started.elapsed(),
    );

    let other: Redundancy = if encoding.is_replicas() {
        "ec:4+2".parse()?
    } else {
        "replicate:2".parse()?
    };
    let started = Instant::now();
    rs.reencode(REL, other, None).await?;
    report(&format!("re-encode to {other}"), len, started.elapsed());
    let started = Instant::now();
    rs.reencode(REL, encoding, None).await?;
    report(
        &format!("re-encode back to {encoding}"),
        len,
        started.elapsed(),
    );
    rs.delete(REL).await?;
    Ok(())
}
