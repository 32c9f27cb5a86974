//! `strata serve --events`: access events from a NATS subject and a Kafka topic, against a
//! real `nats-server` and a real Kafka-compatible broker (Tansu), both on 127.0.0.1.
//!
//! - events published to either stream change the heat the service reports (`explain`'s
//!   `access.count_1h`), and malformed records are counted per source and skipped;
//! - Kafka offsets and JetStream stream sequences are stored with the heat they produced:
//!   events published while the service is stopped are counted when it starts, and after a
//!   SIGKILL the restarted service reads exactly the records whose counts were not stored,
//!   so the counts are exact;
//! - a JetStream stream that already captures the subject is read, events published
//!   before the service ever started included;
//! - a `nats-server` killed and restarted while the service reads a burst, and a consumer
//!   deleted before it delivered anything, neither lose nor repeat an event (the service
//!   recreates its consumer from the last event it ingested, or the stored position);
//! - a stream whose server is down at start is retried in the background (the service
//!   serves meanwhile, and says so in its log) and consumed once the server is up; a
//!   server stopped later is noticed and the service goes on serving;
//! - a bad stream URL in the configuration is refused at start, naming the field and
//!   without the password.

mod common;
mod serve_common;
#[path = "common/stream_servers.rs"]
mod stream_servers;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use common::nats::{self as nats_server, NatsServer};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use serve_common::*;
use stream_servers::{free_port, shared_tansu, TansuBroker};

const WAIT: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A service on local tiers consuming `events`.
fn start_service(dir: &Path, events: &[String]) -> Service {
    let data_dir = dir.join("data");
    let cold = data_dir.join("cold").display().to_string();
    let path = dir.join("strata.toml");
    std::fs::write(&path, config(&data_dir, &cold, "1h", "2h", "1h")).unwrap();
    let mut args = Vec::new();
    for url in events {
        args.push("--events");
        args.push(url.as_str());
    }
    Service::start(&path, &data_dir, &args)
}

/// Stores a small object under each key, so `explain` reports its heat.
fn put_objects(service: &Service, dir: &Path, keys: &[&str]) {
    let file = dir.join("object.bin");
    std::fs::write(&file, b"an object whose reads arrive on a stream").unwrap();
    for key in keys {
        let out = service.run(&["put", file.to_str().unwrap(), key]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `/metrics` as name-with-labels → value.
fn metrics(service: &Service) -> HashMap<String, f64> {
    let (status, _, body) = http(&service.url, "GET", "/metrics", b"").unwrap();
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect()
}

fn source_metric(service: &Service, family: &str, source: &str) -> f64 {
    metrics(service)
        .get(&format!("{family}{{source=\"{source}\"}}"))
        .copied()
        .unwrap_or(-1.0)
}

/// Reads counted in the last hour, as `explain` reports them.
fn reads(service: &Service, key: &str) -> u64 {
    get_json(&service.url, &format!("/v1/explain/{key}"))["access"]["count_1h"]
        .as_u64()
        .unwrap_or(0)
}

/// Reads in the object's hourly access history (the forecast's), as `explain` reports it:
/// the catalog's rows and the counts not yet flushed.
fn history_reads(service: &Service, key: &str) -> u64 {
    let explained = get_json(&service.url, &format!("/v1/explain/{key}"));
    explained["history"]
        .as_array()
        .expect("explain reports the access history")
        .iter()
        .map(|bucket| bucket["reads"].as_u64().unwrap_or(0))
        .sum()
}

fn wait_reads(service: &Service, key: &str, expected: u64) {
    eventually(WAIT, &format!("{expected} reads of {key}"), || {
        (reads(service, key) == expected).then_some(())
    });
}

fn wait_up(service: &Service, source: &str) {
    eventually(WAIT, &format!("{source} to be connected"), || {
        (source_metric(service, "strata_event_stream_up", source) == 1.0).then_some(())
    });
}

fn read_events(key: &str, count: usize) -> String {
    format!("{{\"key\":{key:?},\"op\":\"read\"}}\n").repeat(count)
}

fn publish_nats(server: &str, subject: &str, messages: &[String]) {
    runtime().block_on(async {
        let client = async_nats::connect(server).await.unwrap();
        for message in messages {
            client
                .publish(subject.to_string(), message.clone().into())
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
    });
}

/// Publishes through JetStream, each message acknowledged once the stream stores it (a
/// core publish is stored later, in no order with another connection's: a sentinel
/// published after it could be read before it).
fn publish_stored(server: &str, subject: &str, messages: &[String]) {
    use futures::{StreamExt as _, TryStreamExt as _};
    runtime().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(server).await.unwrap());
        futures::stream::iter(messages)
            .map(|message| {
                let js = js.clone();
                async move {
                    js.publish(subject.to_string(), message.clone().into())
                        .await?
                        .await
                }
            })
            .buffer_unordered(256)
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
    });
}

fn create_topic(broker: &str, topic: &str, partitions: i32) {
    runtime().block_on(async {
        let client = ClientBuilder::new(vec![broker.to_string()])
            .build()
            .await
            .unwrap();
        client
            .controller_client()
            .unwrap()
            .create_topic(topic, partitions, 1, 5_000)
            .await
            .unwrap();
    });
}

/// Produces each value as one record to its partition.
fn produce(broker: &str, topic: &str, records: &[(i32, String)]) {
    runtime().block_on(async {
        let client = ClientBuilder::new(vec![broker.to_string()])
            .build()
            .await
            .unwrap();
        let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        for (partition, value) in records {
            by_partition.entry(*partition).or_default().push(Record {
                key: None,
                value: Some(value.clone().into_bytes()),
                headers: BTreeMap::new(),
                timestamp: kafka_now(),
            });
        }
        for (partition, batch) in by_partition {
            client
                .partition_client(topic, partition, UnknownTopicHandling::Retry)
                .await
                .unwrap()
                .produce(batch, Compression::NoCompression)
                .await
                .unwrap();
        }
    });
}

#[test]
fn nats_events_change_the_heat_and_malformed_records_are_counted_and_skipped() {
    let nats = nats_server::shared();
    let dir = tempfile::tempdir().unwrap();
    let source = format!("{}/strata.access.heat", nats.url());
    let service = start_service(dir.path(), std::slice::from_ref(&source));
    assert_eq!(service.started["events"][0], source.as_str());
    put_objects(&service, dir.path(), &["nats/a.bin"]);
    wait_up(&service, &source);

    publish_nats(
        &nats.url(),
        "strata.access.heat",
        &[
            read_events("nats/a.bin", 5),
            // A record that is not JSON, then a good one in the same message.
            format!("not json\n{}", read_events("nats/a.bin", 1)),
            // One record per message, without a trailing newline.
            r#"{"key":"nats/a.bin","op":"read"}"#.to_string(),
            r#"{"key":"nats/a.bin","op":"fly"}"#.to_string(),
        ],
    );
    wait_reads(&service, "nats/a.bin", 7);
    assert_eq!(
        source_metric(&service, "strata_access_events_rejected_total", &source),
        2.0
    );
    assert_eq!(
        source_metric(&service, "strata_access_events_accepted_total", &source),
        7.0
    );
    // The batch endpoint's counters are its own.
    assert_eq!(
        source_metric(&service, "strata_access_events_accepted_total", "http"),
        0.0
    );
    let log = service.kill_and_stderr();
    assert!(log.contains("malformed access events skipped"), "{log}");
}

#[test]
fn nats_events_published_while_the_service_is_stopped_or_killed_are_counted_exactly_once() {
    let nats = nats_server::shared();
    let subject = "strata.access.resume";
    let source = format!("{}/{subject}", nats.url());
    let dir = tempfile::tempdir().unwrap();
    let (key, sentinel) = ("nats/r.bin", "nats/sentinel.bin");
    let restart = || {
        Service::start(
            &service_config(dir.path()),
            &dir.path().join("data"),
            &["--events", &source],
        )
    };

    let service = start_service(dir.path(), std::slice::from_ref(&source));
    put_objects(&service, dir.path(), &[key, sentinel]);
    wait_up(&service, &source);
    publish_stored(
        &nats.url(),
        subject,
        &[read_events(key, 10), "not json".to_string()],
    );
    wait_reads(&service, key, 10);
    service.stop();

    // While it is stopped: 4 more. The restarted service reads only those.
    publish_stored(&nats.url(), subject, &vec![read_events(key, 1); 4]);
    // Once the sentinel is counted, every event stored before it has been read.
    publish_stored(&nats.url(), subject, &[read_events(sentinel, 1)]);
    let service = restart();
    wait_reads(&service, sentinel, 1);
    assert_eq!(reads(&service, key), 14, "every event counted exactly once");
    assert_eq!(
        source_metric(&service, "strata_access_events_accepted_total", &source),
        5.0,
        "only the events published during the stop were read again"
    );

    // SIGKILL while events arrive, after a flush has stored part of them: the counts and
    // the position of the last flush interval are lost together, so those events are read
    // again and still counted once.
    let url = nats.url();
    let publisher = std::thread::spawn(move || {
        publish_stored(&url, subject, &vec![read_events(key, 1); 20_000]);
    });
    let flushes = |service: &Service| metrics(service)["strata_access_flushes_total"];
    let flushed_before = eventually(WAIT, "the service to ingest the burst", || {
        let accepted = source_metric(&service, "strata_access_events_accepted_total", &source);
        (accepted > 5.0).then(|| flushes(&service))
    });
    eventually(WAIT, "a flush during the burst", || {
        (flushes(&service) > flushed_before).then_some(())
    });
    service.kill();
    publisher.join().unwrap();
    publish_stored(&nats.url(), subject, &[read_events(sentinel, 1)]);
    let service = restart();
    wait_reads(&service, sentinel, 2);
    assert_eq!(
        reads(&service, key),
        20_014,
        "every event counted exactly once"
    );
    // The history is stored in the transaction of the heat and the position, so the kill
    // neither lost nor repeated any of it.
    assert_eq!(
        history_reads(&service, key),
        20_014,
        "every event counted exactly once in the access history"
    );
}

#[test]
fn nats_events_captured_by_an_existing_stream_before_the_service_starts_are_counted() {
    let nats = nats_server::shared();
    let (subject, key) = ("ops.access.eu", "ops/a.bin");
    let source = format!("{}/{subject}", nats.url());
    runtime().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "OPS_ACCESS".to_string(),
            subjects: vec!["ops.access.>".to_string()],
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    // The objects exist; the service that will read the stream has never run.
    let service = start_service(dir.path(), &[]);
    put_objects(&service, dir.path(), &[key]);
    service.stop();
    publish_nats(
        &nats.url(),
        subject,
        &[
            read_events(key, 3),
            r#"{"key":"ops/a.bin","op":"fly"}"#.to_string(),
        ],
    );

    let service = Service::start(
        &service_config(dir.path()),
        &dir.path().join("data"),
        &["--events", &source],
    );
    wait_reads(&service, key, 3);
    assert_eq!(
        source_metric(&service, "strata_access_events_rejected_total", &source),
        1.0
    );
    let names: Vec<String> = runtime().block_on(async {
        use futures::TryStreamExt as _;
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        js.stream_names().try_collect().await.unwrap()
    });
    assert!(
        !names.iter().any(|name| name.contains("ops_access")),
        "the operator's stream was read, none created beside it: {names:?}"
    );
}

/// The consumers on the JetStream stream the service created for `subject`, deleted; returns
/// how many there were.
fn delete_consumers(server: &str, subject: &str) -> usize {
    use futures::TryStreamExt as _;
    let name = format!("strata_access_{}", subject.replace('.', "_"));
    runtime().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(server).await.unwrap());
        let stream = js.get_stream(&name).await.unwrap();
        let names: Vec<String> = stream.consumer_names().try_collect().await.unwrap();
        for consumer in &names {
            stream.delete_consumer(consumer).await.unwrap();
        }
        names.len()
    })
}

#[test]
fn a_nats_server_restarted_mid_stream_loses_and_repeats_no_event() {
    // A server of its own: the test kills it while the service reads.
    let nats = NatsServer::start();
    let subject = "strata.access.restart";
    let source = format!("{}/{subject}", nats.url());
    let dir = tempfile::tempdir().unwrap();
    let (key, sentinel) = ("restart/a.bin", "restart/sentinel.bin");
    let service = start_service(dir.path(), std::slice::from_ref(&source));
    put_objects(&service, dir.path(), &[key, sentinel]);
    wait_up(&service, &source);
    // The stream now exists (on disk, it survives the restart); one event per message, as
    // producers send them, so that reading them takes a while.
    let burst = 30_000;
    publish_stored(&nats.url(), subject, &vec![read_events(key, 1); burst]);
    eventually(WAIT, "the service to read part of the burst", || {
        let accepted = source_metric(&service, "strata_access_events_accepted_total", &source);
        (accepted > 0.0).then_some(())
    });
    // SIGKILL and start again: deliveries in flight are lost and the consumer (held in
    // the server's memory) is gone; the service must go on from the last event it ingested.
    nats.restart();
    publish_stored(&nats.url(), subject, &vec![read_events(key, 1); 5]);
    publish_stored(&nats.url(), subject, &[read_events(sentinel, 1)]);
    wait_reads(&service, sentinel, 1);
    assert_eq!(
        reads(&service, key),
        burst as u64 + 5,
        "every event counted exactly once"
    );
    assert_eq!(
        source_metric(&service, "strata_access_events_accepted_total", &source),
        burst as f64 + 6.0,
        "no event read twice"
    );
}

#[test]
fn a_nats_consumer_deleted_before_it_delivers_resumes_from_the_stored_position() {
    let nats = nats_server::shared();
    let subject = "strata.access.deleted";
    let source = format!("{}/{subject}", nats.url());
    let dir = tempfile::tempdir().unwrap();
    let (key, sentinel) = ("deleted/a.bin", "deleted/sentinel.bin");
    let service = start_service(dir.path(), std::slice::from_ref(&source));
    put_objects(&service, dir.path(), &[key, sentinel]);
    wait_up(&service, &source);
    publish_stored(&nats.url(), subject, &[read_events(key, 4)]);
    wait_reads(&service, key, 4);
    service.stop();

    // The restarted service starts its consumer at the stored position, past the four
    // reads; that consumer is deleted (an operator, the server's limits) before it
    // delivers anything. Its replacement must start there too, not at the stream's start.
    let service = Service::start(
        &service_config(dir.path()),
        &dir.path().join("data"),
        &["--events", &source],
    );
    wait_up(&service, &source);
    assert!(delete_consumers(&nats.url(), subject) >= 1);
    publish_stored(&nats.url(), subject, &[read_events(sentinel, 1)]);
    wait_reads(&service, sentinel, 1);
    assert_eq!(reads(&service, key), 4, "no event counted twice");
    assert_eq!(
        source_metric(&service, "strata_access_events_accepted_total", &source),
        1.0,
        "only the sentinel was read after the restart"
    );
}

/// Produces `count` reads of `key` split over the topic's two partitions, plus one read
/// of `sentinel` on each: once both sentinel reads are counted, every record produced
/// before them has been read (a partition is read in order).
fn produce_round(broker: &str, topic: &str, key: &str, counts: [usize; 2], sentinel: &str) {
    let mut records = Vec::new();
    for (partition, count) in counts.into_iter().enumerate() {
        let partition = partition as i32;
        for _ in 0..count {
            records.push((partition, read_events(key, 1)));
        }
        records.push((partition, read_events(sentinel, 1)));
    }
    produce(broker, topic, &records);
}

#[test]
fn kafka_events_change_the_heat_and_resume_exactly_once_after_a_stop_and_a_kill() {
    let broker = shared_tansu().address();
    let topic = "access_events_resume";
    create_topic(&broker, topic, 2);
    let source = format!("kafka://{broker}/{topic}");
    let dir = tempfile::tempdir().unwrap();
    let (key, sentinel) = ("kafka/a.bin", "kafka/sentinel.bin");

    let service = start_service(dir.path(), std::slice::from_ref(&source));
    put_objects(&service, dir.path(), &[key, sentinel]);
    // Ten reads on partition 0; five and a malformed record (in one value) on partition 1.
    produce(
        &broker,
        topic,
        &[
            (0, read_events(key, 10)),
            (
                1,
                format!("{}{{\"key\":\"\",\"op\":\"read\"}}\n", read_events(key, 5)),
            ),
        ],
    );
    wait_reads(&service, key, 15);
    assert_eq!(
        source_metric(&service, "strata_access_events_rejected_total", &source),
        1.0
    );
    service.stop();

    // While it is stopped: 4 + 3 more. The restarted service reads only those.
    produce_round(&broker, topic, key, [4, 3], sentinel);
    let service = Service::start(
        &service_config(dir.path()),
        &dir.path().join("data"),
        &["--events", &source],
    );
    wait_reads(&service, sentinel, 2);
    assert_eq!(
        reads(&service, key),
        22,
        "every record counted exactly once"
    );
    assert_eq!(
        source_metric(&service, "strata_access_events_accepted_total", &source),
        9.0,
        "only the records produced during the stop were read again"
    );

    // SIGKILL: no final flush. The statistics and the offsets of the last interval are
    // lost together, so those records are read again and still counted once.
    produce_round(&broker, topic, key, [2, 1], sentinel);
    wait_reads(&service, sentinel, 4);
    service.kill();
    produce_round(&broker, topic, key, [1, 1], sentinel);
    let service = Service::start(
        &service_config(dir.path()),
        &dir.path().join("data"),
        &["--events", &source],
    );
    wait_reads(&service, sentinel, 6);
    assert_eq!(
        reads(&service, key),
        27,
        "every record counted exactly once"
    );
    assert_eq!(
        history_reads(&service, key),
        27,
        "every record counted exactly once in the access history"
    );
}

fn service_config(dir: &Path) -> std::path::PathBuf {
    dir.join("strata.toml")
}

#[test]
fn streams_down_at_start_are_consumed_once_their_servers_start() {
    let (nats_port, kafka_port) = (free_port(), free_port());
    let nats_source = format!("nats://127.0.0.1:{nats_port}/strata.access.late");
    let kafka_source = format!("kafka://127.0.0.1:{kafka_port}/late_events");
    let dir = tempfile::tempdir().unwrap();
    let service = start_service(dir.path(), &[nats_source.clone(), kafka_source.clone()]);
    // Nothing listens yet: the service serves anyway.
    put_objects(&service, dir.path(), &["late/a.bin"]);
    assert_eq!(
        source_metric(&service, "strata_event_stream_up", &nats_source),
        0.0
    );
    assert_eq!(
        source_metric(&service, "strata_event_stream_up", &kafka_source),
        0.0
    );

    let nats = NatsServer::start_on(nats_port);
    let tansu = TansuBroker::start(Some(kafka_port));
    create_topic(&tansu.address(), "late_events", 1);
    wait_up(&service, &nats_source);
    wait_up(&service, &kafka_source);
    publish_nats(
        &nats.url(),
        "strata.access.late",
        &[read_events("late/a.bin", 3)],
    );
    produce(
        &tansu.address(),
        "late_events",
        &[(0, read_events("late/a.bin", 4))],
    );
    wait_reads(&service, "late/a.bin", 7);

    // Both servers go away: noticed, and the service goes on serving.
    drop(nats);
    drop(tansu);
    eventually(WAIT, "both streams to be seen down", || {
        let down = |source: &str| source_metric(&service, "strata_event_stream_up", source) == 0.0;
        (down(&nats_source) && down(&kafka_source)).then_some(())
    });
    assert_eq!(reads(&service, "late/a.bin"), 7);
    let log = service.kill_and_stderr();
    assert!(log.contains("access-event stream unavailable"), "{log}");
    assert!(log.contains("disconnected"), "{log}");
}

#[test]
fn a_nats_server_without_jetstream_is_reported_and_the_service_serves_on() {
    let nats = NatsServer::start_without_jetstream();
    let source = format!("{}/strata.access.nojs", nats.url());
    let dir = tempfile::tempdir().unwrap();
    let service = start_service(dir.path(), std::slice::from_ref(&source));
    put_objects(&service, dir.path(), &["nojs/a.bin"]);
    assert_eq!(
        source_metric(&service, "strata_event_stream_up", &source),
        0.0
    );
    let log = service.kill_after_logging("access-event stream unavailable", WAIT);
    assert!(log.contains("nats-server -js"), "{log}");
}

#[test]
fn a_bad_stream_url_is_refused_at_start_naming_the_field_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let cold = data_dir.join("cold").display().to_string();
    let text = config(&data_dir, &cold, "1h", "2h", "1h").replace(
        "[server]\n",
        "[server]\nevents = [\"nats://ops:pw-4711@127.0.0.1:4222/\"]\n",
    );
    let path = dir.path().join("strata.toml");
    std::fs::write(&path, text).unwrap();
    let (code, stderr) = refused_start(&path, WAIT);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("server.events[0]"), "{stderr}");
    assert!(stderr.contains("no subject"), "{stderr}");
    assert!(!stderr.contains("pw-4711"), "{stderr}");
}

/// Now, as a Kafka record's timestamp (rskafka's chrono is built without its clock).
fn kafka_now() -> rskafka::chrono::DateTime<rskafka::chrono::Utc> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    rskafka::chrono::DateTime::from_timestamp_millis(ms).unwrap()
}
