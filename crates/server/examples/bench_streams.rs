//! Access-event ingest rate from each source into the service's heat (see
//! `scripts/bench-streams.sh`): the batch endpoint `POST /v1/access-events` (the peer), a
//! Kafka topic and a NATS subject, each into a fresh in-process service on local tiers.
//!
//! The same N events (skewed over KEYS keys, as `bench_serve`) go through each source,
//! PER_MESSAGE NDJSON lines per NATS message or Kafka record. The service reads NATS through
//! a JetStream stream capturing the subject (the server must run with `-js`): once with
//! the events published while it reads, once with them published beforehand into a stream
//! the benchmark creates (as an operator would). A phase's time runs from its first byte
//! sent (Kafka and NATS published beforehand: from the service's start, so the broker's
//! intake rate is not in the figure; it is printed on its own) until the
//! service's `strata_access_events_accepted_total{source}` counts all N events, i.e. the
//! statistics the service reports include them; then until the next statistics flush
//! (every 5 s, the default `tracking.flush_interval`) has written them (and, for Kafka,
//! their offsets) to the catalog.
//!
//! Usage: `bench_streams NATS_URL KAFKA_BROKER [EVENTS] [KEYS] [PER_MESSAGE] [SOURCES]`
//! (defaults 2,000,000 events, 100,000 keys, 100 per message, SOURCES `http,kafka,nats`:
//! the phases to run, comma-separated; `raw` adds, after the NATS phases, a read of the
//! stored stream by consumers that only count, no ingest: the server's and the client's
//! share alone). NATS_URL is `nats://127.0.0.1:4222`, KAFKA_BROKER
//! `127.0.0.1:9092`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use strata_heat::TieringConfig;
use strata_server::{RunningServer, ServeOptions};

/// Kafka partitions of the benchmark topic (each read by its own task).
const PARTITIONS: i32 = 2;
/// Lines per HTTP batch, as `bench_serve`.
const HTTP_BATCH: usize = 20_000;
/// A phase that makes no progress this long has lost events.
const STALL: Duration = Duration::from_secs(10);

/// The benchmark's events (all reads), `per_message` lines per payload.
fn payloads(events: usize, keys: usize, per_message: usize) -> Vec<Bytes> {
    common::event_bodies(events, keys, per_message, false)
}

/// A fresh service on local tiers under a temporary directory, consuming `events`.
async fn service(events: Vec<String>) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TieringConfig::default_local(dir.path());
    config.server.listen = "127.0.0.1:0".to_string();
    config.server.events = events;
    let server = strata_server::start(ServeOptions::new(config))
        .await
        .unwrap();
    (server, dir)
}

async fn metrics(client: &reqwest::Client, url: &str) -> HashMap<String, f64> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect()
}

/// Waits until `source` has `events` accepted (or stalls); then until a statistics flush
/// after that. Returns (time to the heat, time to the catalog, accepted), from `start`.
async fn wait_counted(
    client: &reqwest::Client,
    url: &str,
    source: &str,
    events: usize,
    start: Instant,
) -> (Duration, Duration, u64) {
    let name = format!("strata_access_events_accepted_total{{source=\"{source}\"}}");
    let (mut last, mut since) = (0.0, Instant::now());
    let (in_heat, flushes) = loop {
        let now = metrics(client, url).await;
        let accepted = now.get(&name).copied().unwrap_or(0.0);
        if accepted as usize >= events {
            break (start.elapsed(), now["strata_access_flushes_total"]);
        }
        if accepted > last {
            (last, since) = (accepted, Instant::now());
        } else if since.elapsed() > STALL {
            return (start.elapsed(), start.elapsed(), accepted as u64);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    loop {
        let now = metrics(client, url).await;
        if now["strata_access_flushes_total"] > flushes {
            return (in_heat, start.elapsed(), events as u64);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn report(phase: &str, events: usize, (heat, catalog, accepted): (Duration, Duration, u64)) {
    if accepted as usize == events {
        println!(
            "| {phase} | {events} | {:.2} s | {:.0} events/s | {:.2} s |",
            heat.as_secs_f64(),
            events as f64 / heat.as_secs_f64(),
            catalog.as_secs_f64()
        );
    } else {
        println!(
            "| {phase} | {events} | stalled: {accepted} counted, {} lost | | |",
            events as u64 - accepted
        );
    }
}

async fn http_phase(client: &reqwest::Client, lines: &[Bytes], events: usize) {
    let batches: Vec<Bytes> = lines
        .chunks(HTTP_BATCH)
        .map(|chunk| Bytes::from(chunk.concat()))
        .collect();
    let (server, _dir) = service(Vec::new()).await;
    let url = format!("http://{}", server.addr);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(batches));
    let start = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..2 {
        let (client, url, queue) = (client.clone(), url.clone(), queue.clone());
        senders.push(tokio::spawn(async move {
            while let Some(body) = {
                let next = queue.lock().unwrap().pop();
                next
            } {
                let reply = client
                    .post(format!("{url}/v1/access-events"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(reply.status().is_success(), "{}", reply.status());
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    report(
        "HTTP POST /v1/access-events",
        events,
        wait_counted(client, &url, "http", events, start).await,
    );
    server.shutdown().await;
}

async fn kafka_phase(client: &reqwest::Client, broker: &str, payloads: &[Bytes], events: usize) {
    let topic = format!("bench_events_{}", std::process::id());
    let kafka = ClientBuilder::new(vec![broker.to_string()])
        .build()
        .await
        .unwrap();
    kafka
        .controller_client()
        .unwrap()
        .create_topic(&topic, PARTITIONS, 1, 5_000)
        .await
        .unwrap();
    let produced = Instant::now();
    let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    for (i, payload) in payloads.iter().enumerate() {
        by_partition
            .entry(i as i32 % PARTITIONS)
            .or_default()
            .push(Record {
                key: None,
                value: Some(payload.to_vec()),
                headers: BTreeMap::new(),
                timestamp: kafka_now(),
            });
    }
    for (partition, records) in by_partition {
        let producer = kafka
            .partition_client(topic.clone(), partition, UnknownTopicHandling::Retry)
            .await
            .unwrap();
        let mut batch = Vec::new();
        let mut bytes = 0;
        for record in records {
            bytes += record.approximate_size();
            batch.push(record);
            if bytes >= 512 << 10 {
                producer
                    .produce(std::mem::take(&mut batch), Compression::NoCompression)
                    .await
                    .unwrap();
                bytes = 0;
            }
        }
        producer
            .produce(batch, Compression::NoCompression)
            .await
            .unwrap();
    }
    let produce_time = produced.elapsed();
    println!(
        "kafka: {events} events in {} records produced to {PARTITIONS} partitions in {:.2} s \
         ({:.0} events/s, not part of the ingest figure)",
        payloads.len(),
        produce_time.as_secs_f64(),
        events as f64 / produce_time.as_secs_f64()
    );
    let source = format!("kafka://{broker}/{topic}");
    let start = Instant::now();
    let (server, _dir) = service(vec![source.clone()]).await;
    let url = format!("http://{}", server.addr);
    report(
        "Kafka topic (records produced beforehand)",
        events,
        wait_counted(client, &url, &source, events, start).await,
    );
    server.shutdown().await;
}

async fn nats_phase(client: &reqwest::Client, nats_url: &str, payloads: &[Bytes], events: usize) {
    let subject = format!("bench.events.{}", std::process::id());
    let address = nats_url.trim_start_matches("nats://");
    let source = format!("nats://{address}/{subject}");
    let (server, _dir) = service(vec![source.clone()]).await;
    let url = format!("http://{}", server.addr);
    let up = format!("strata_event_stream_up{{source=\"{source}\"}}");
    while metrics(client, &url).await.get(&up) != Some(&1.0) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let nats = async_nats::connect(nats_url).await.unwrap();
    let start = Instant::now();
    for payload in payloads {
        nats.publish(subject.clone(), payload.clone())
            .await
            .unwrap();
    }
    nats.flush().await.unwrap();
    report(
        "NATS subject via JetStream (published meanwhile)",
        events,
        wait_counted(client, &url, &source, events, start).await,
    );
    server.shutdown().await;
}

/// NATS with the events published beforehand: the benchmark creates a stream capturing
/// the subject, publishes them all, waits until the stream holds them, then starts the
/// service.
async fn nats_stored_phase(
    client: &reqwest::Client,
    nats_url: &str,
    payloads: &[Bytes],
    events: usize,
    raw: bool,
) {
    let subject = format!("bench.stored.{}", std::process::id());
    let address = nats_url.trim_start_matches("nats://");
    let source = format!("nats://{address}/{subject}");
    let nats = async_nats::connect(nats_url).await.unwrap();
    let js = async_nats::jetstream::new(nats.clone());
    let mut stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: format!("bench_stored_{}", std::process::id()),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let published = Instant::now();
    for payload in payloads {
        nats.publish(subject.clone(), payload.clone())
            .await
            .unwrap();
    }
    nats.flush().await.unwrap();
    let mut last = 0;
    let mut since = Instant::now();
    loop {
        let stored = stream.info().await.unwrap().state.messages;
        if stored as usize >= payloads.len() || since.elapsed() > STALL {
            break;
        }
        if stored > last {
            (last, since) = (stored, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored = stream.info().await.unwrap().state.messages;
    let intake = published.elapsed();
    println!(
        "nats: {stored} of {} messages stored by JetStream in {:.2} s ({:.0} events/s \
         published, not part of the ingest figure)",
        payloads.len(),
        intake.as_secs_f64(),
        events as f64 / intake.as_secs_f64()
    );
    let start = Instant::now();
    let (server, _dir) = service(vec![source.clone()]).await;
    let url = format!("http://{}", server.addr);
    report(
        "NATS subject via JetStream (published beforehand)",
        events,
        wait_counted(client, &url, &source, events, start).await,
    );
    server.shutdown().await;
    if raw {
        raw_reads(&nats, &stream, &subject, payloads.len()).await;
    }
}

/// The server's and the client's part alone: the stored stream read to its end by a
/// consumer that only counts (no ingest), as a push consumer with flow control and as
/// async-nats's ordered pull consumer. The ceiling of any reader of ours.
async fn raw_reads(
    client: &async_nats::Client,
    stream: &async_nats::jetstream::stream::Stream,
    subject: &str,
    total: usize,
) {
    use async_nats::jetstream::consumer::{pull, push, AckPolicy};
    use futures::StreamExt as _;
    let inbox = client.new_inbox();
    let mut subscriber = client.subscribe(inbox.clone()).await.unwrap();
    stream
        .create_consumer(push::Config {
            deliver_subject: inbox,
            filter_subject: subject.to_string(),
            ack_policy: AckPolicy::None,
            flow_control: true,
            idle_heartbeat: Duration::from_secs(5),
            memory_storage: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let start = Instant::now();
    let mut seen = 0;
    while seen < total {
        let message = subscriber.next().await.unwrap();
        if message.status == Some(async_nats::StatusCode::IDLE_HEARTBEAT) {
            if let Some(reply) = message.reply {
                client.publish(reply, Bytes::new()).await.unwrap();
            }
            continue;
        }
        seen += 1;
    }
    let push_time = start.elapsed();
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let start = Instant::now();
    for _ in 0..total {
        messages.next().await.unwrap().unwrap();
    }
    let pull_time = start.elapsed();
    println!(
        "nats raw reads of {total} stored messages, counted only: push consumer {:.0}/s, \
         ordered pull consumer {:.0}/s",
        total as f64 / push_time.as_secs_f64(),
        total as f64 / pull_time.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!(
            "usage: bench_streams NATS_URL KAFKA_BROKER [EVENTS] [KEYS] [PER_MESSAGE] [SOURCES]"
        );
        std::process::exit(2);
    }
    let arg = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().unwrap());
    let (events, keys, per_message) = (arg(3, 2_000_000), arg(4, 100_000), arg(5, 100));
    let sources = args.get(6).map_or("http,kafka,nats", String::as_str);
    let runs = |source: &str| sources.split(',').any(|s| s == source);
    let lines = payloads(events, keys, 1);
    let grouped = payloads(events, keys, per_message);
    let bytes: usize = grouped.iter().map(Bytes::len).sum();
    println!(
        "{events} events over {keys} keys ({:.1} MB of NDJSON), {per_message} per NATS message \
         or Kafka record; {} CPUs",
        bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| source | events | to the heat | events/s | to the catalog |");
    println!("|---|---:|---:|---:|---:|");
    let client = reqwest::Client::new();
    if runs("http") {
        http_phase(&client, &lines, events).await;
    }
    if runs("kafka") {
        kafka_phase(&client, &args[2], &grouped, events).await;
    }
    if runs("nats") {
        nats_phase(&client, &args[1], &grouped, events).await;
        nats_stored_phase(&client, &args[1], &grouped, events, runs("raw")).await;
    }
}

/// Now, as a Kafka record's timestamp (rskafka's chrono is built without its clock).
fn kafka_now() -> rskafka::chrono::DateTime<rskafka::chrono::Utc> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    rskafka::chrono::DateTime::from_timestamp_millis(ms).unwrap()
}
