//! Erasure-coding throughput on this machine, for docs/BENCHMARKS.md:
//!
//! ```sh
//! cargo run --release -p strata-redundancy --example ec_bench [OBJECT_MIB] [ROUNDS]
//! ```
//!
//! Prints the raw `reed-solomon-simd` encode rate for `ec:4+2` over 1 MiB stripes, then, on
//! six local temporary directories (one per domain), the read rate of a healthy `ec:4+2`
//! object, of the same object with 1 and 2 data fragments missing (decoded), and the rate
//! of a repair that rebuilds 2 fragments. Rates are object bytes per second (MB = 10^6 B),
//! the best of ROUNDS runs.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use strata_codec::parity::GroupCoder;
use strata_redundancy::placement::placement;
use strata_redundancy::{Redundancy, RedundantStore};
use strata_store::{S3Options, Store, StoreUri};

const MIB: usize = 1 << 20;
const REL: &str = "objects/bench";

fn rate(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64().max(1e-9)
}

/// The best (shortest) of `rounds` runs of `run`.
async fn best<F, Fut>(rounds: usize, mut run: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        best = best.min(run().await);
    }
    best
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64);
    let rounds: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(3)
        .max(1);
    let mut data = vec![0u8; mib * MIB];
    rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut data);
    let data = Bytes::from(data);

    // Raw encode: 4 data shards of 256 KiB per 1 MiB stripe, 2 parity shards.
    let mut coder = GroupCoder::new();
    let took = best(rounds, || {
        let started = Instant::now();
        for stripe in data.chunks(MIB) {
            let shards: Vec<&[u8]> = stripe.chunks(MIB / 4).collect();
            if shards.len() == 4 {
                let _ = coder.encode(&shards, 2);
            }
        }
        std::future::ready(started.elapsed())
    })
    .await;
    println!(
        "raw reed-solomon-simd encode, ec:4+2, 1 MiB stripes: {:.0} MB/s",
        rate(data.len(), took)
    );

    let dir = tempfile::tempdir()?;
    let mut stores = Vec::new();
    for i in 0..6 {
        let root = dir.path().join(format!("d{i}"));
        std::fs::create_dir_all(&root)?;
        let uri = StoreUri::parse(root.to_str().ok_or("temporary path is not UTF-8")?)?;
        stores.push(Store::open(&uri, &S3Options::default()).await?);
    }
    let rs = RedundantStore::new(stores);
    let ec: Redundancy = "ec:4+2".parse()?;
    let started = Instant::now();
    rs.write(REL, data.clone(), ec).await?;
    println!(
        "write ec:4+2 (encode + 6 fragment files): {:.0} MB/s",
        rate(data.len(), started.elapsed())
    );
    let order = placement(rs.domains(), REL);
    let fragment = |i: usize| dir.path().join(format!("d{}/ec/0/{REL}", order[i]));

    let read = |label: &'static str| {
        let rs = rs.clone();
        let len = data.len();
        async move {
            let took = best(rounds, || async {
                let started = Instant::now();
                let read = rs.read_all(REL).await.expect("read");
                assert_eq!(read.bytes.len(), len);
                started.elapsed()
            })
            .await;
            println!("{label}: {:.0} MB/s", rate(len, took));
        }
    };
    read("healthy read").await;
    let saved = [std::fs::read(fragment(0))?, std::fs::read(fragment(1))?];
    std::fs::remove_file(fragment(0))?;
    read("degraded read, 1 domain missing").await;
    std::fs::remove_file(fragment(1))?;
    read("degraded read, 2 domains missing").await;

    let took = best(rounds, || async {
        let _ = std::fs::remove_file(fragment(0));
        let _ = std::fs::remove_file(fragment(1));
        let started = Instant::now();
        let outcome = rs.repair(REL, None).await.expect("repair");
        assert_eq!(outcome.repaired.len(), 2);
        started.elapsed()
    })
    .await;
    println!(
        "repair (rebuild 2 of 6 fragments): {:.0} MB/s of object",
        rate(data.len(), took)
    );
    assert_eq!(std::fs::read(fragment(0))?, saved[0]);
    Ok(())
}
