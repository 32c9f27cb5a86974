//! Load generator for a running `strata serve` (see `scripts/bench-serve.sh`):
//!
//! 1. access-event ingest through `POST /v1/access-events`: pre-built NDJSON batches over
//!    two keep-alive connections, events per second;
//! 2. GET latency (p50, p99) of objects on the hot tier, against reading the same file
//!    directly (`std::fs::read`, page cache warm), one request at a time;
//! 3. object metadata operations per second (HEAD, LIST of 100 keys, PUT of 1 KiB,
//!    DELETE), eight requests in flight.
//!
//! Usage: `bench_serve URL HOT_TIER_DIR [EVENTS] [KEYS] [BATCH]` (defaults 2,000,000
//! events over 100,000 keys in batches of 20,000). The service must put new objects on the
//! hot tier (`default_tier = "hot"`), whose directory is HOT_TIER_DIR.
//!
//! `bench_serve throughput URL [CLIENTS] [SECONDS] [SIZE]` measures objects per second
//! instead (issue 13's service floor): CLIENTS (default 16) clients, each with its own
//! connection and one request in flight, PUT new objects of SIZE bytes (default 65,536)
//! for SECONDS (default 5), then GET random ones of those for as long; every GET's length
//! is checked. One line per phase: `throughput PUT|GET <objects> <seconds> <objects/s>`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{percentile, Rng};

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn ingest(client: &reqwest::Client, url: &str, events: usize, keys: usize, batch: usize) {
    // Skewed: half the events go to 1% of the keys; one in ten a write.
    let bodies = common::event_bodies(events, keys, batch, true);
    let total_bytes: usize = bodies.iter().map(Bytes::len).sum();
    println!(
        "ingest: {events} events over {keys} keys, {} batches of {batch}, {:.1} MB of NDJSON",
        bodies.len(),
        total_bytes as f64 / 1e6
    );
    for run in 1..=3 {
        let queue = Arc::new(std::sync::Mutex::new(bodies.clone()));
        let accepted = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let (client, url, queue, accepted) = (
                client.clone(),
                url.to_string(),
                Arc::clone(&queue),
                Arc::clone(&accepted),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let Some(body) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let reply = client
                        .post(format!("{url}/v1/access-events"))
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(reply.status().is_success(), "{}", reply.status());
                    let json: serde_json::Value =
                        serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
                    accepted.fetch_add(json["accepted"].as_u64().unwrap(), Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = start.elapsed();
        let accepted = accepted.load(Ordering::Relaxed);
        assert_eq!(accepted as usize, events, "events lost");
        println!(
            "| ingest run {run} | {events} events | {:.2} s | {:.0} events/s |",
            elapsed.as_secs_f64(),
            events as f64 / elapsed.as_secs_f64()
        );
    }
}

async fn latency(client: &reqwest::Client, url: &str, hot_dir: &Path) {
    for (name, size) in [
        ("bench/hot-4k", 4096usize),
        ("bench/hot-64k", 65_536),
        ("bench/hot-1m", 1 << 20),
    ] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let reply = client
            .put(format!("{url}/v1/objects/{name}"))
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success());
        let json: serde_json::Value =
            serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
        assert_eq!(
            json["tier"], "hot",
            "the bench config must put new objects on hot"
        );
        let file = hot_dir.join("objects").join(name);
        let rounds = 3000;
        let mut http = Vec::with_capacity(rounds);
        let mut direct = Vec::with_capacity(rounds);
        for round in 0..rounds + 300 {
            let start = Instant::now();
            let reply = client
                .get(format!("{url}/v1/objects/{name}"))
                .send()
                .await
                .unwrap();
            let body = reply.bytes().await.unwrap();
            let took = start.elapsed();
            assert_eq!(body.len(), size);
            let start = Instant::now();
            let bytes = std::fs::read(&file).unwrap();
            let direct_took = start.elapsed();
            assert_eq!(bytes.len(), size);
            if round >= 300 {
                http.push(took);
                direct.push(direct_took);
            }
        }
        http.sort();
        direct.sort();
        println!(
            "| GET {name} ({size} B) | {:.0} µs | {:.0} µs | {:.1} µs | {:.1} µs |",
            micros(percentile(&http, 0.5)),
            micros(percentile(&http, 0.99)),
            micros(percentile(&direct, 0.5)),
            micros(percentile(&direct, 0.99)),
        );
    }
}

async fn metadata(client: &reqwest::Client, url: &str) {
    let objects = 2000;
    for i in 0..objects {
        let reply = client
            .put(format!("{url}/v1/objects/meta/obj-{i:05}"))
            .body(vec![7u8; 1024])
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success());
    }
    let measure = |kind: &'static str| {
        let client = client.clone();
        let url = url.to_string();
        async move {
            let ops = Arc::new(AtomicU64::new(0));
            let seconds = 5.0;
            let start = Instant::now();
            let mut tasks = Vec::new();
            for worker in 0..8u64 {
                let (client, url, ops) = (client.clone(), url.clone(), Arc::clone(&ops));
                tasks.push(tokio::spawn(async move {
                    let mut rng = Rng(0x1234_5678 + worker);
                    let mut n = 0u64;
                    while start.elapsed().as_secs_f64() < seconds {
                        let i = rng.next() % 2000;
                        let reply = match kind {
                            "HEAD" => client.head(format!("{url}/v1/objects/meta/obj-{i:05}")),
                            "LIST" => client.get(format!(
                                "{url}/v1/objects?prefix=meta/&limit=100&start_after=meta/obj-{:05}",
                                i.min(1899)
                            )),
                            "PUT" => client
                                .put(format!("{url}/v1/objects/new/w{worker}-{n}"))
                                .body(vec![1u8; 1024]),
                            _ => client.delete(format!("{url}/v1/objects/new/w{worker}-{n}")),
                        }
                        .send()
                        .await
                        .unwrap();
                        assert!(reply.status().is_success(), "{kind}: {}", reply.status());
                        let _ = reply.bytes().await;
                        n += 1;
                        ops.fetch_add(1, Ordering::Relaxed);
                        if kind == "DELETE" && n >= PUT_LIMIT.load(Ordering::Relaxed) / 8 {
                            break;
                        }
                    }
                    if kind == "PUT" {
                        PUT_LIMIT.fetch_min(n * 8, Ordering::Relaxed);
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let ops = ops.load(Ordering::Relaxed);
            let elapsed = start.elapsed().as_secs_f64();
            println!(
                "| {kind} | {ops} ops | {elapsed:.1} s | {:.0} ops/s |",
                ops as f64 / elapsed
            );
        }
    };
    measure("HEAD").await;
    measure("LIST").await;
    measure("PUT").await;
    measure("DELETE").await;
}

static PUT_LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);

/// One phase of the throughput mode: `clients` workers each run `op(worker, n)` in a loop
/// for `seconds`; returns how many ran and the elapsed seconds.
async fn phase<F, Fut>(clients: u64, seconds: f64, op: F) -> (u64, f64)
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let ops = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (op, ops) = (Arc::clone(&op), Arc::clone(&ops));
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed().as_secs_f64() < seconds {
                op(worker, n).await;
                n += 1;
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (ops.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}

/// The throughput mode (see the module documentation).
async fn throughput(mut args: impl Iterator<Item = String>) {
    let url = args
        .next()
        .expect("usage: bench_serve throughput URL [CLIENTS] [SECONDS] [SIZE]");
    let clients: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(65_536);
    // One client (and connection pool) per worker: 16 clients, 16 connections.
    let pool: Vec<reqwest::Client> = (0..clients)
        .map(|_| reqwest::Client::builder().build().unwrap())
        .collect();
    let pool = Arc::new(pool);
    let body = Bytes::from((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let written: Arc<Vec<AtomicU64>> = Arc::new((0..clients).map(|_| AtomicU64::new(0)).collect());
    let (puts, took) = {
        let (pool, url, written) = (Arc::clone(&pool), url.clone(), Arc::clone(&written));
        phase(clients, seconds, move |worker, n| {
            let (client, url, body, written) = (
                pool[worker as usize].clone(),
                url.clone(),
                body.clone(),
                Arc::clone(&written),
            );
            async move {
                let reply = client
                    .put(format!("{url}/v1/objects/tp/c{worker:02}/o{n:07}"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(reply.status().is_success(), "PUT: {}", reply.status());
                let _ = reply.bytes().await;
                written[worker as usize].store(n + 1, Ordering::Relaxed);
            }
        })
        .await
    };
    println!("throughput PUT {puts} {took:.2} {:.0}", puts as f64 / took);
    let (gets, took) = {
        let (pool, url) = (Arc::clone(&pool), url.clone());
        phase(clients, seconds, move |worker, n| {
            let (client, url, written) = (
                pool[worker as usize].clone(),
                url.clone(),
                Arc::clone(&written),
            );
            async move {
                let mut rng = Rng(0x51ab_1e00 + worker * 7919 + n);
                let owner = rng.next() % clients;
                let count = written[owner as usize].load(Ordering::Relaxed).max(1);
                let i = rng.next() % count;
                let reply = client
                    .get(format!("{url}/v1/objects/tp/c{owner:02}/o{i:07}"))
                    .send()
                    .await
                    .unwrap();
                assert!(reply.status().is_success(), "GET: {}", reply.status());
                assert_eq!(reply.bytes().await.unwrap().len(), size, "GET length");
            }
        })
        .await
    };
    println!("throughput GET {gets} {took:.2} {:.0}", gets as f64 / took);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "throughput") {
        args.next();
        return throughput(args).await;
    }
    let url = args
        .next()
        .expect("usage: bench_serve URL HOT_TIER_DIR [EVENTS] [KEYS] [BATCH]");
    let hot_dir = PathBuf::from(args.next().expect("HOT_TIER_DIR"));
    let events = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let keys = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let batch = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()
        .unwrap();
    ingest(&client, &url, events, keys, batch).await;
    latency(&client, &url, &hot_dir).await;
    metadata(&client, &url).await;
}
