//! Load generator for S3 servers (see `scripts/bench-s3-door.sh`): PUT then GET objects per
//! second and MB/s through OpenDAL's S3 client, which signs every request with SigV4 as
//! applications' S3 clients do.
//!
//! Usage: `bench_s3_door ENDPOINT BUCKET SIZE COUNT [CLIENTS]`, with the key pair in
//! `BENCH_S3_ACCESS_KEY` and `BENCH_S3_SECRET_KEY` (kept out of the command line). CLIENTS
//! (default 16) tasks share one client's connection pool, each with one request in flight:
//! they PUT COUNT new objects of SIZE bytes (each a single PutObject), then GET each of them
//! once (every length checked), then delete them (not timed). One line per phase:
//! `PUT|GET <objects> <seconds> <objects/s> <MB/s>` (MB = 10^6 bytes).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use opendal::Operator;

/// One phase's operation on object number `i`.
#[derive(Clone, Copy)]
enum Phase {
    Put,
    Get,
    Delete,
}

struct Run {
    op: Operator,
    prefix: String,
    body: Bytes,
    count: usize,
    clients: usize,
}

impl Run {
    fn key(&self, i: usize) -> String {
        format!("{}obj-{i:06}", self.prefix)
    }

    async fn one(&self, phase: Phase, i: usize) -> Result<(), String> {
        let key = self.key(i);
        match phase {
            Phase::Put => self.op.write(&key, self.body.clone()).await.map(drop),
            Phase::Get => {
                let got = self
                    .op
                    .read(&key)
                    .await
                    .map_err(|e| format!("GET {key}: {e}"))?;
                if got.len() != self.body.len() {
                    return Err(format!(
                        "GET {key}: {} bytes, expected {}",
                        got.len(),
                        self.body.len()
                    ));
                }
                Ok(())
            }
            Phase::Delete => self.op.delete(&key).await,
        }
        .map_err(|e| format!("{key}: {e}"))
    }

    /// Runs `phase` over every object with `clients` tasks; returns the seconds it took.
    async fn phase(self: &Arc<Self>, phase: Phase) -> Result<f64, String> {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..self.clients {
            let (run, next) = (Arc::clone(self), Arc::clone(&next));
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= run.count {
                        return Ok::<(), String>(());
                    }
                    run.one(phase, i).await?;
                }
            }));
        }
        for task in tasks {
            task.await.map_err(|e| format!("client task: {e}"))??;
        }
        Ok(start.elapsed().as_secs_f64())
    }
}

fn report(name: &str, run: &Run, seconds: f64) {
    let bytes = (run.count * run.body.len()) as f64;
    println!(
        "{name} {} {seconds:.3} {:.1} {:.1}",
        run.count,
        run.count as f64 / seconds,
        bytes / seconds / 1e6
    );
}

fn usage() -> ! {
    eprintln!(
        "usage: bench_s3_door ENDPOINT BUCKET SIZE COUNT [CLIENTS] \
         (key pair in BENCH_S3_ACCESS_KEY and BENCH_S3_SECRET_KEY)"
    );
    std::process::exit(2)
}

fn number(arg: Option<&String>, what: &str) -> usize {
    let Some(arg) = arg else { usage() };
    arg.parse().unwrap_or_else(|_| {
        eprintln!("bench_s3_door: {what} must be a whole number, not {arg:?}");
        std::process::exit(2)
    })
}

fn operator(endpoint: &str, bucket: &str) -> Result<Operator, String> {
    let key = |name: &str| {
        std::env::var(name).map_err(|_| format!("{name} is not set; it must hold the key pair"))
    };
    let builder = opendal::services::S3::default()
        .bucket(bucket)
        .endpoint(endpoint)
        .region("us-east-1")
        .access_key_id(&key("BENCH_S3_ACCESS_KEY")?)
        .secret_access_key(&key("BENCH_S3_SECRET_KEY")?)
        .disable_config_load()
        .disable_ec2_metadata();
    let op = Operator::new(builder).map_err(|e| format!("S3 client for {endpoint}: {e}"))?;
    // OpenDAL 0.59 has no default HTTP transport: hand it a reqwest client, without the
    // environment's proxies (both servers are on loopback).
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| format!("HTTP client for {endpoint}: {e}"))?;
    let transport = opendal::HttpTransporter::new(
        opendal_http_transport_reqwest::ReqwestTransport::new(client),
    );
    let ctx = op.base_context().with_http_transport(transport);
    Ok(op.with_context(ctx))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(endpoint), Some(bucket)) = (args.first(), args.get(1)) else {
        usage()
    };
    let size = number(args.get(2), "SIZE");
    let count = number(args.get(3), "COUNT");
    let clients = args.get(4).map_or(16, |_| number(args.get(4), "CLIENTS"));
    let op = operator(endpoint, bucket).unwrap_or_else(|e| {
        eprintln!("bench_s3_door: {e}");
        std::process::exit(1)
    });
    // Bytes that do not compress: neither server gets an unfair shortcut.
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ size as u64;
    let body: Bytes = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let prefix = format!("bench-{}-{}/", std::process::id(), size);
    let run = Arc::new(Run {
        op,
        prefix,
        body,
        count,
        clients,
    });
    for (name, phase) in [("PUT", Phase::Put), ("GET", Phase::Get)] {
        match run.phase(phase).await {
            Ok(seconds) => report(name, &run, seconds),
            Err(e) => {
                eprintln!("bench_s3_door: {name} failed against {endpoint}: {e}");
                std::process::exit(1)
            }
        }
    }
    if let Err(e) = run.phase(Phase::Delete).await {
        eprintln!("bench_s3_door: cleaning up failed against {endpoint}: {e}");
    }
}
