//! Read latency while reads trigger re-encodes, for docs/BENCHMARKS.md (run by
//! `scripts/bench-reencode.sh`, which starts `strata serve` twice: with a `[redundancy]`
//! class map, so that reads of hot objects stored `ec:4+2` re-encode them to
//! `replicate:3` in the background, and without one, re-encoding off).
//!
//! Usage: `reencode_bench URL [OBJECTS] [OBJECT_KIB] [ROUNDS]` (defaults 200 objects of
//! 1024 KiB, 10 rounds). Puts the objects (new objects land on the tier with domains),
//! then reads each object ROUNDS times in a shuffled order, one request at a time, checking
//! every body, and prints p50, p99 and max GET latency and how many `lazy_reencode` jobs
//! finished meanwhile.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{percentile, Rng};

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn object(index: usize, len: usize) -> Bytes {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ index as u64);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    Bytes::from(bytes)
}

async fn lazy_reencodes_done(client: &reqwest::Client, url: &str) -> usize {
    let body = client
        .get(format!("{url}/v1/jobs?state=done&limit=100000"))
        .send()
        .await
        .expect("list jobs")
        .bytes()
        .await
        .expect("jobs body");
    let jobs: serde_json::Value = serde_json::from_slice(&body).expect("jobs JSON");
    jobs["jobs"].as_array().map_or(0, |jobs| {
        jobs.iter()
            .filter(|j| j["reason"] == "lazy_reencode")
            .count()
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .expect("usage: reencode_bench URL [OBJECTS] [OBJECT_KIB] [ROUNDS]");
    let objects: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let kib: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let rounds: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10);
    let client = reqwest::Client::new();
    for i in 0..objects {
        let response = client
            .put(format!("{url}/v1/objects/bench/obj-{i:05}"))
            .body(object(i, kib << 10))
            .send()
            .await
            .expect("PUT");
        assert!(response.status().is_success(), "PUT {}", response.status());
    }
    let mut order: Vec<usize> = (0..objects)
        .flat_map(|i| std::iter::repeat_n(i, rounds))
        .collect();
    let mut rng = Rng(42);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.next() as usize % (i + 1));
    }
    let mut latencies = Vec::with_capacity(order.len());
    let started = Instant::now();
    for i in order {
        let at = Instant::now();
        let response = client
            .get(format!("{url}/v1/objects/bench/obj-{i:05}"))
            .send()
            .await
            .expect("GET");
        assert!(response.status().is_success(), "GET {}", response.status());
        let body = response.bytes().await.expect("GET body");
        latencies.push(at.elapsed());
        assert!(
            body == object(i, kib << 10),
            "object {i} read back other bytes"
        );
    }
    let took = started.elapsed();
    latencies.sort();
    println!(
        "{} GETs of {kib} KiB in {:.1} s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         lazy_reencode jobs done: {}",
        latencies.len(),
        took.as_secs_f64(),
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99)),
        millis(latencies[latencies.len() - 1]),
        lazy_reencodes_done(&client, url).await
    );
}
