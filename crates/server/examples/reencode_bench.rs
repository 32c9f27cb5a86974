//! Read latency while reads trigger re-encodes, for docs/BENCHMARKS.md (run by
//! `scripts/bench-reencode.sh`, which starts `strata serve` twice: with a `[redundancy]`
//! class map, so that reads of hot objects stored `ec:4+2` re-encode them to
//! `replicate:3` in the background, and without one, re-encoding off).
//!
//! Usage: `reencode_bench URL [OBJECTS] [OBJECT_KIB] [ROUNDS]` (defaults 200 objects of
//! 1024 KiB, 10 rounds). Puts the objects (new objects land on the tier with domains),
//! then reads each object ROUNDS times in a shuffled order, one request at a time, checking
//! every body, and prints p50, p99 and max GET latency, how many `lazy_reencode` jobs
//! finished meanwhile, and how long the rest took once the reads stopped (re-encodes wait
//! for a quiet moment, `strata_server::background`).
//!
//! With `REENCODE_BENCH_PHASES=1` it also follows `/v1/events` and splits the GETs by what
//! a re-encode was doing while they ran (its copy, its verify, neither), to find which
//! phase of a re-encode costs the readers.

mod common;
#[path = "common/phases.rs"]
mod phases;

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

/// `lazy_reencode` jobs done, and those not ended yet.
async fn lazy_reencodes(client: &reqwest::Client, url: &str) -> (usize, usize) {
    let body = client
        .get(format!("{url}/v1/jobs?limit=100000"))
        .send()
        .await
        .expect("list jobs")
        .bytes()
        .await
        .expect("jobs body");
    let jobs: serde_json::Value = serde_json::from_slice(&body).expect("jobs JSON");
    let reencodes: Vec<&serde_json::Value> = jobs["jobs"].as_array().map_or(Vec::new(), |jobs| {
        jobs.iter()
            .filter(|j| j["reason"] == "lazy_reencode")
            .collect()
    });
    let done = reencodes.iter().filter(|j| j["state"] == "done").count();
    let ended = ["done", "failed", "cancelled", "skipped"];
    let unfinished = reencodes
        .iter()
        .filter(|j| !ended.iter().any(|state| j["state"] == *state))
        .count();
    (done, unfinished)
}

/// Waits (at most two minutes) until no `lazy_reencode` job is unfinished; how long it took
/// and how many were done by then.
async fn drain(client: &reqwest::Client, url: &str) -> (Duration, usize) {
    let started = Instant::now();
    loop {
        let (done, unfinished) = lazy_reencodes(client, url).await;
        if unfinished == 0 || started.elapsed() > Duration::from_secs(120) {
            return (started.elapsed(), done);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let phases = std::env::var_os("REENCODE_BENCH_PHASES").map(|_| phases::follow(url));
    let mut latencies = Vec::with_capacity(order.len());
    let mut spans = Vec::with_capacity(order.len());
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
        spans.push((at, at.elapsed()));
        assert!(
            body == object(i, kib << 10),
            "object {i} read back other bytes"
        );
    }
    let took = started.elapsed();
    if let Some(phases) = phases {
        phases::report(&phases.stop().await, &spans);
    }
    latencies.sort();
    let (done_while_reading, _) = lazy_reencodes(&client, url).await;
    let (drained_in, done) = drain(&client, url).await;
    println!(
        "{} GETs of {kib} KiB in {:.1} s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         lazy_reencode jobs done during the reads: {done_while_reading}, {done} in all \
         once the queue drained {:.1} s after the reads",
        latencies.len(),
        took.as_secs_f64(),
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99)),
        millis(latencies[latencies.len() - 1]),
        drained_in.as_secs_f64(),
    );
}
