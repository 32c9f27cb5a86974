//! What one task of a distributed migration costs the two things every worker shares, at
//! saturation: the catalog and the queue. The figures calibrate `scale_sim` (issue 14).
//!
//! - **Catalog**: a job of `--tasks` × `--files-per-task` one-chunk files; `--clients`
//!   concurrent clients each run tasks as a worker's task ends: its chunks recorded
//!   verified, its files recorded done, the finish claim asked (three transactions, as
//!   `strata worker` makes per task when its recorder commits once). Also the heartbeat a
//!   worker writes every 2 s (`record_worker`), alone.
//! - **Queue**: `--tasks` messages of 300 bytes published on a JetStream work-queue stream
//!   (file storage, as `strata migrate --queue` does) and taken by `--clients` pull
//!   consumers one message per fetch with a double ack, as workers take tasks.
//!
//! ```text
//! cargo run --release -p strata-mover --example distributed_rates -- \
//!     --catalog postgres://postgres@127.0.0.1:55432/strata --queue nats://127.0.0.1:4222
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::stream::StreamExt;
use strata_catalog::{
    Catalog, CatalogSpec, EngineCatalog, FileState, FileUpdate, JobSpec, PlannedFile,
    VerifiedChunk, WorkerRecord,
};

struct Args {
    catalog: String,
    queue: String,
    tasks: u32,
    clients: usize,
    files_per_task: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        catalog: String::new(),
        queue: String::new(),
        tasks: 2000,
        clients: 16,
        files_per_task: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u32>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--catalog" => args.catalog = value.clone(),
            "--queue" => args.queue = value.clone(),
            "--tasks" => args.tasks = number()?.max(1),
            "--clients" => args.clients = number()?.max(1) as usize,
            "--files-per-task" => args.files_per_task = number()?.max(1),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.catalog.is_empty() || args.queue.is_empty() {
        return Err("give --catalog SPEC and --queue nats://HOST:PORT".into());
    }
    Ok(args)
}

fn per_second(count: u64, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64().max(1e-9)
}

/// Tasks per second through the catalog, and heartbeats per second.
async fn catalog_rates(args: &Args) -> Result<(f64, f64), String> {
    let spec = CatalogSpec::parse(&args.catalog).map_err(|e| e.to_string())?;
    let engine = EngineCatalog::open(&spec)
        .await
        .map_err(|e| e.to_string())?;
    let catalog: Arc<dyn Catalog> = engine.jobs();
    let stamp = format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let job = catalog
        .create_job(&JobSpec {
            source: format!("bench://rates-src-{stamp}"),
            destination: format!("bench://rates-dst-{stamp}"),
            chunk_size: 4 << 20,
            options_json: "{}".into(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let files = args.tasks * args.files_per_task;
    let plan: Vec<PlannedFile> = (0..files)
        .map(|index| PlannedFile {
            index,
            path: format!("d/{index:08}"),
            size: 4096,
            mtime_ns: Some(0),
            mode: Some(0o644),
        })
        .collect();
    catalog
        .replace_plan(job, &plan)
        .await
        .map_err(|e| e.to_string())?;
    let per = args.files_per_task;
    let started = Instant::now();
    let failures = AtomicU64::new(0);
    futures::stream::iter(0..args.tasks)
        .for_each_concurrent(args.clients, |task| {
            let (catalog, failures) = (&catalog, &failures);
            async move {
                let indexes = task * per..(task + 1) * per;
                let chunks: Vec<VerifiedChunk> = indexes
                    .clone()
                    .map(|file_index| VerifiedChunk {
                        file_index,
                        chunk_index: 0,
                        chaining_value: [7; 32],
                    })
                    .collect();
                let done: Vec<FileUpdate> = indexes
                    .map(|index| FileUpdate {
                        index,
                        state: FileState::Done,
                        hash: Some([9; 32]),
                        error: None,
                    })
                    .collect();
                let result = async {
                    catalog.record_verified_chunks(job, &chunks).await?;
                    catalog.update_files(job, &done).await?;
                    catalog
                        .claim_job_finish(job, "bench", &format!("t{task}"), "bench")
                        .await
                }
                .await;
                if let Err(error) = result {
                    eprintln!("task {task}: {error}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let tasks = per_second(u64::from(args.tasks), started.elapsed());
    if failures.load(Ordering::Relaxed) > 0 {
        return Err(format!("{} tasks failed", failures.load(Ordering::Relaxed)));
    }
    let started = Instant::now();
    futures::stream::iter(0..args.tasks)
        .for_each_concurrent(args.clients, |n| {
            let catalog = &catalog;
            async move {
                let row = WorkerRecord {
                    id: format!("bench-{}", n % args.clients as u32),
                    host: "bench".into(),
                    pid: n,
                    cores: 2,
                    bandwidth_cap: None,
                    throughput: u64::from(n),
                    bytes_done: 0,
                    tasks_done: u64::from(n),
                    started_at: 0,
                    heartbeat_at: i64::from(n),
                    job: Some(job),
                    task: Some(format!("files {n}")),
                };
                if let Err(error) = catalog.record_worker(&row).await {
                    eprintln!("heartbeat: {error}");
                }
            }
        })
        .await;
    let heartbeats = per_second(u64::from(args.tasks), started.elapsed());
    for n in 0..args.clients {
        let _ = catalog.remove_worker(&format!("bench-{n}")).await;
    }
    let _ = catalog.delete_job(job).await;
    Ok((tasks, heartbeats))
}

/// Messages per second published, and taken (fetched one at a time and double-acked).
async fn queue_rates(args: &Args) -> Result<(f64, f64), String> {
    let client = async_nats::connect(&args.queue)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", args.queue))?;
    let js = jetstream::new(client);
    let name = format!("RATES_{}", std::process::id());
    let subject = format!("rates{}.tasks", std::process::id());
    let stream = js
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let body = vec![b'x'; 300];
    let started = Instant::now();
    let published: Vec<Result<(), String>> = futures::stream::iter(0..args.tasks)
        .map(|_| {
            let (js, subject, body) = (&js, subject.clone(), body.clone());
            async move {
                let ack = js
                    .publish(subject, body.into())
                    .await
                    .map_err(|e| e.to_string())?;
                ack.await.map(|_| ()).map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    if let Some(Err(error)) = published.into_iter().find(Result::is_err) {
        return Err(format!("publish: {error}"));
    }
    let publish = per_second(u64::from(args.tasks), started.elapsed());
    let consumer = stream
        .get_or_create_consumer(
            "rates",
            pull::Config {
                durable_name: Some("rates".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let taken = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let total = u64::from(args.tasks);
    futures::stream::iter(0..args.clients)
        .for_each_concurrent(args.clients, |_| {
            let (consumer, taken) = (consumer.clone(), taken.clone());
            async move {
                while taken.load(Ordering::Relaxed) < total {
                    let Ok(mut batch) = consumer
                        .fetch()
                        .max_messages(1)
                        .expires(Duration::from_millis(500))
                        .messages()
                        .await
                    else {
                        continue;
                    };
                    while let Some(Ok(message)) = batch.next().await {
                        if message.double_ack().await.is_ok() {
                            taken.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        })
        .await;
    let take = per_second(total, started.elapsed());
    let _ = js.delete_stream(&name).await;
    Ok((publish, take))
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("distributed_rates: {error}");
            std::process::exit(2);
        }
    };
    let result = async {
        let (tasks, heartbeats) = catalog_rates(&args).await?;
        let (publish, take) = queue_rates(&args).await?;
        Ok::<_, String>((tasks, heartbeats, publish, take))
    }
    .await;
    match result {
        Ok((tasks, heartbeats, publish, take)) => {
            println!(
                "clients {}, tasks {}, files per task {}",
                args.clients, args.tasks, args.files_per_task
            );
            println!("| measure | per second | per task |");
            println!("|---|---:|---:|");
            println!(
                "| catalog: task records (chunks, files, finish claim) | {tasks:.0} | {:.0} us |",
                1e6 / tasks
            );
            println!("| catalog: worker heartbeats | {heartbeats:.0} | |");
            println!("| queue: tasks published | {publish:.0} | |");
            println!(
                "| queue: tasks taken (fetch 1, double ack) | {take:.0} | {:.0} us |",
                1e6 / take
            );
        }
        Err(error) => {
            eprintln!("distributed_rates: {error}");
            std::process::exit(1);
        }
    }
}
