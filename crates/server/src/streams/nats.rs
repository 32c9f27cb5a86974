//! Access events from a NATS subject (`--events nats://HOST:PORT/SUBJECT`), read through
//! JetStream (async-nats): each message one or more NDJSON records.
//!
//! The subject is captured by a JetStream stream, so events published while the service is
//! down, disconnected or busy are kept until it reads them. The stream is the one already
//! capturing the subject if there is one (an operator's, with the limits they chose), else
//! one the service creates ([`ACCESS_STREAM_PREFIX`] and the subject; on disk, events
//! kept [`ACCESS_RETENTION`]). Events published before the service first started (or
//! before the stream existed) were captured by nothing and are not seen.
//!
//! Exactly once at the application level, as for Kafka: the position is the stream
//! sequence, stored in the catalog's `stream_offsets` (partition 0, the next sequence) in
//! the transaction of the statistics that include the events before it. The service reads
//! with a push consumer of its own (ephemeral, no acknowledgements: the catalog, not the
//! server, holds the position) that starts at the stored sequence, or at the position this
//! process reached before a reconnection ([`super::Positions`]). Consumer sequences arrive
//! in order on one subscription, so a chunk whose last event has the consumer sequence of
//! the count so far lost nothing, and an idle heartbeat names the last one the server sent.
//! On a loss, a status ending the consumer, silence or a reconnection, the chunk is not
//! ingested and the consumer is created again from the position after the last event
//! ingested, so a batch's position always covers every event before it. (async-nats's
//! ordered consumers, used before session 18, recreate themselves from the stream's first
//! event when they had delivered nothing yet.)
//!
//! Flow control is the back-pressure: the server stops once its window of unanswered
//! deliveries is full, and a request is answered only after the events before it are
//! ingested, so a slow service delays events instead of losing them. A stored position
//! past the stream's end (the stream was deleted and created again) cannot be resumed:
//! the stream is read from its first event again, and the log says so; one before the
//! stream's first event (the events expired before the service read them) is logged as a
//! loss.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{push, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::GetStreamByNameErrorKind;
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, StorageType, Stream};
use async_nats::jetstream::{self, Context};
use async_nats::{Message, StatusCode};
use futures::stream::BoxStream;
use futures::StreamExt as _;
use strata_catalog::StreamOffset;
use tokio::sync::watch;

use super::{append_record, EventSource, Positions, SourceCounters, MAX_BATCH_RECORDS};
use crate::access::{ingest_batch, BatchOrigin};
use crate::state::{lock, AppState};

/// How long the first connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a JetStream request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one slow-consumer warning this often.
const SLOW_LOG_EVERY: Duration = Duration::from_secs(10);
/// The name of a stream the service creates: this, then the subject with every character
/// a stream name cannot hold replaced by `_`.
pub const ACCESS_STREAM_PREFIX: &str = "strata_access_";
/// How long a stream the service creates keeps events: long enough for a service that is
/// down over a long weekend to count them when it is back.
pub const ACCESS_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The `stream_offsets` partition of a NATS source (a stream has one sequence).
const PARTITION: i32 = 0;
/// How often an idle consumer's server says it is alive (with the last consumer sequence
/// it delivered, which shows a loss at the end of a burst).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Silence (no event, no heartbeat) after which the consumer is taken for gone (the server
/// restarted, or the consumer was deleted) and created again.
const SILENCE: Duration = Duration::from_secs(2 * 5);
/// How long the server keeps a consumer nobody listens to (the service died).
const INACTIVE: Duration = Duration::from_secs(30);
/// Deliveries the client holds for the consumer before it drops them (as a slow consumer):
/// above what the push consumer's flow-control window lets through at one event per message,
/// so a busy ingest delays deliveries instead of losing them (async-nats's default, 65,536,
/// overflowed at every burst in the benchmark; the gap check repaired it by reading again).
const SUBSCRIPTION_CAPACITY: usize = 1 << 18;
/// The header of an idle heartbeat naming a flow-control reply the server still waits for.
const CONSUMER_STALLED: &str = "Nats-Consumer-Stalled";

/// Reads the source's subject through JetStream and ingests its events until the
/// consumer fails; returns why.
pub async fn consume(
    state: &Arc<AppState>,
    source: &EventSource,
    counters: &Arc<SourceCounters>,
    positions: &Positions,
) -> Result<(), String> {
    let (js, mut connections) = connect(source, counters).await?;
    let mut stream = capture(&js, source).await?;
    let label = source.to_string();
    let stream_name = stream.cached_info().config.name.clone();
    let mut reader = Reader {
        state,
        counters,
        positions,
        label: label.clone(),
        stream_name: stream_name.clone(),
        js: js.clone(),
        batch: Vec::new(),
        delivered: 0,
    };
    let mut progress = true;
    loop {
        let start = start_at(state, &label, positions, &mut stream).await?;
        let (feed, consumer) = open(&js, &stream, source, start).await?;
        counters.up.store(true, Ordering::Relaxed);
        tracing::info!(source = %label, stream = %stream_name, start = ?start,
            "consuming access events");
        connections.borrow_and_update();
        reader.delivered = 0;
        let ended = reader.read(feed, &mut connections).await;
        // Best effort, in the background (the server may be gone): the server also removes
        // it once nobody listens ([`INACTIVE`]).
        let old = stream.clone();
        tokio::spawn(async move { old.delete_consumer(&consumer).await });
        let (read_any, reason) = ended?;
        // A consumer recreated without reading anything in between goes to the supervisor,
        // which waits before trying again.
        if !read_any && !progress {
            return Err(format!(
                "the consumer of the JetStream stream {stream_name} stopped twice without \
                 delivering: {reason}"
            ));
        }
        progress = read_any;
        tracing::info!(source = %label, stream = %stream_name, %reason,
            "recreating the JetStream consumer after the last event ingested");
    }
}

/// Creates an ephemeral consumer (no acknowledgements: the catalog holds the position)
/// starting at `start`; returns its messages and its name.
async fn open(
    js: &Context,
    stream: &Stream,
    source: &EventSource,
    start: DeliverPolicy,
) -> Result<(BoxStream<'static, Message>, String), String> {
    let stream_name = &stream.cached_info().config.name;
    let refused = |err: String| {
        format!("cannot create a consumer on the JetStream stream {stream_name}: {err}")
    };
    let client = js.client();
    let inbox = client.new_inbox();
    let subscriber = client
        .subscribe(inbox.clone())
        .await
        .map_err(|err| refused(err.to_string()))?;
    let consumer = stream
        .create_consumer(push::Config {
            deliver_subject: inbox,
            filter_subject: source.name.clone(),
            deliver_policy: start,
            ack_policy: AckPolicy::None,
            max_deliver: 1,
            flow_control: true,
            idle_heartbeat: HEARTBEAT,
            inactive_threshold: INACTIVE,
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(|err| refused(err.to_string()))?;
    Ok((subscriber.boxed(), consumer.cached_info().name.clone()))
}

/// Reads one consumer's deliveries into the ingest.
struct Reader<'a> {
    state: &'a Arc<AppState>,
    counters: &'a Arc<SourceCounters>,
    positions: &'a Positions,
    label: String,
    stream_name: String,
    js: Context,
    batch: Vec<u8>,
    /// The consumer sequence of the last event ingested from the current consumer.
    delivered: u64,
}

/// What a chunk of deliveries held besides events.
#[derive(Default)]
struct Chunk {
    /// Events in the batch.
    events: u64,
    /// The stream sequence after the last event, if there were events.
    next: Option<i64>,
    /// Flow-control requests to answer once the batch is ingested.
    replies: Vec<async_nats::Subject>,
    /// Why the consumer must be created again (a delivery was lost or it ended).
    broken: Option<String>,
}

impl Reader<'_> {
    /// Ingests the feed's events until the consumer must be created again (returns
    /// whether it delivered anything, and why) or fails.
    async fn read(
        &mut self,
        feed: BoxStream<'static, Message>,
        connections: &mut watch::Receiver<u64>,
    ) -> Result<(bool, String), String> {
        let mut chunks = feed.ready_chunks(MAX_BATCH_RECORDS);
        let mut read_any = false;
        loop {
            let messages = tokio::select! {
                messages = chunks.next() => messages,
                _ = tokio::time::sleep(SILENCE) => {
                    return Ok((read_any, format!("nothing from the server for {SILENCE:?}")))
                }
                _ = connections.changed() => {
                    return Ok((read_any, "the connection was re-established".to_string()))
                }
            };
            let Some(messages) = messages else {
                return Err(format!(
                    "the subscription to the JetStream stream {} ended",
                    self.stream_name
                ));
            };
            let chunk = self.gather(messages)?;
            if let Some(reason) = chunk.broken {
                return Ok((read_any, reason));
            }
            if let Some(next) = chunk.next {
                self.ingest(next, chunk.events);
                read_any = true;
            }
            // Answered once the events before them are ingested: the server's window of
            // unanswered deliveries is the back-pressure.
            let client = self.js.client();
            for reply in chunk.replies {
                client
                    .publish(reply, bytes::Bytes::new())
                    .await
                    .map_err(|err| {
                        format!("cannot answer the flow control of {}: {err}", self.label)
                    })?;
            }
        }
    }

    /// Appends a chunk's events to the batch, and notes what else it held.
    fn gather(&mut self, messages: Vec<Message>) -> Result<Chunk, String> {
        self.batch.clear();
        let mut chunk = Chunk::default();
        let mut last = None;
        for message in messages {
            match message.status {
                None | Some(StatusCode::OK) => {
                    append_record(&mut self.batch, &message.payload);
                    chunk.events += 1;
                    last = Some(message);
                }
                Some(StatusCode::IDLE_HEARTBEAT) => {
                    if let Some(reply) = message.reply {
                        chunk.replies.push(reply);
                        continue;
                    }
                    let headers = message.headers.as_ref();
                    if let Some(stalled) = headers.and_then(|h| h.get(CONSUMER_STALLED)) {
                        chunk.replies.push(stalled.as_str().into());
                    }
                    let last = headers
                        .and_then(|h| h.get(async_nats::header::NATS_LAST_CONSUMER))
                        .and_then(|value| value.as_str().parse::<u64>().ok());
                    if let Some(last) = last {
                        if last != self.delivered + chunk.events {
                            chunk.broken = Some(format!(
                                "the server delivered up to {last}, {} arrived",
                                self.delivered + chunk.events
                            ));
                            return Ok(chunk);
                        }
                    }
                }
                Some(status) => {
                    chunk.broken = Some(format!(
                        "the server ended the consumer: {status} {}",
                        message.description.unwrap_or_default()
                    ));
                    return Ok(chunk);
                }
            }
        }
        if let Some(last) = last {
            self.check_last(last, &mut chunk)?;
        }
        Ok(chunk)
    }

    /// Notes the position after the chunk's `last` event, or that a delivery before it
    /// was lost: consumer sequences run without gaps and in order on one subscription, so
    /// the last one tells whether all before it arrived.
    fn check_last(&self, last: Message, chunk: &mut Chunk) -> Result<(), String> {
        let message = jetstream::Message {
            message: last,
            context: self.js.clone(),
        };
        let info = message.info().map_err(|err| {
            format!(
                "a message of {} has no stream sequence: {err}",
                self.stream_name
            )
        })?;
        let expected = self.delivered + chunk.events;
        if info.consumer_sequence == expected {
            chunk.next = Some(i64::try_from(info.stream_sequence + 1).unwrap_or(i64::MAX));
        } else {
            chunk.broken = Some(format!(
                "deliveries were lost: consumer sequence {} where {expected} was due",
                info.consumer_sequence
            ));
        }
        Ok(())
    }

    /// Ingests the batch with the position after it, `next`.
    fn ingest(&mut self, next: i64, events: u64) {
        let origin = BatchOrigin {
            counters: self.counters,
            log_rejects: true,
            reaches: Some(StreamOffset {
                source: self.label.clone(),
                partition: PARTITION,
                next_offset: next,
            }),
        };
        ingest_batch(self.state, &self.batch, origin);
        // No await since the ingest: a cancelled consumer never leaves the two apart.
        self.positions.set(PARTITION, next);
        self.delivered += events;
    }
}

/// Connects to the source's server; once connected, async-nats reconnects by itself and
/// the connection events keep the stream's gauge true to the connection.
async fn connect(
    source: &EventSource,
    counters: &Arc<SourceCounters>,
) -> Result<(Context, watch::Receiver<u64>), String> {
    let (connections, connected) = watch::channel(0);
    let mut options = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .event_callback(connection_events(
            source.to_string(),
            Arc::clone(counters),
            connections,
        ));
    if let Some(credentials) = &source.credentials {
        options = options.user_and_password(credentials.user.clone(), credentials.password.clone());
    }
    let client = options
        .connect(source.server.as_str())
        .await
        .map_err(|err| format!("cannot connect to NATS at {}: {err}", source.server))?;
    Ok((jetstream::new(client), connected))
}

/// The JetStream stream capturing the source's subject: the one that already does, else
/// a new one (see the module doc).
async fn capture(js: &Context, source: &EventSource) -> Result<Stream, String> {
    let subject = &source.name;
    let server = &source.server;
    match js.stream_by_subject(subject.clone()).await {
        Ok(name) => {
            return js.get_stream(&name).await.map_err(|err| {
                format!("cannot open the JetStream stream {name} capturing {subject}: {err}")
            })
        }
        Err(err) if err.kind() == GetStreamByNameErrorKind::NotFound => {}
        Err(err) => {
            return Err(format!(
                "cannot look up the JetStream stream of {subject} on {server}: {err}; the \
                 server must run with JetStream enabled (nats-server -js)"
            ))
        }
    }
    let name = stream_name_for(subject);
    let config = StreamConfig {
        name: name.clone(),
        subjects: vec![subject.clone()],
        storage: StorageType::File,
        max_age: ACCESS_RETENTION,
        discard: DiscardPolicy::Old,
        ..Default::default()
    };
    let stream = js.create_stream(config).await.map_err(|err| {
        format!(
            "cannot create the JetStream stream {name} capturing {subject} on {server}: \
             {err}; the server must run with JetStream enabled (nats-server -js), or create \
             a stream capturing the subject yourself (the service reads it)"
        )
    })?;
    tracing::info!(source = %source, stream = %name, retention = ?ACCESS_RETENTION,
        "created a JetStream stream capturing the access-event subject");
    Ok(stream)
}

/// The name of the stream the service creates for `subject`: stream names hold no `.`,
/// `*`, `>` or white space.
fn stream_name_for(subject: &str) -> String {
    let tail: String = subject
        .chars()
        .map(|c| match c {
            '*' => 'S',
            '>' => 'G',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c,
            _ => '_',
        })
        .collect();
    format!("{ACCESS_STREAM_PREFIX}{tail}")
}

/// Where to start reading: this process's position, else the catalog's, else the
/// stream's first event; a position the stream cannot resume is logged.
async fn start_at(
    state: &AppState,
    label: &str,
    positions: &Positions,
    stream: &mut Stream,
) -> Result<DeliverPolicy, String> {
    let next = match positions.get(PARTITION) {
        Some(next) => Some(next),
        None => state
            .catalog
            .stream_offsets(label)
            .await
            .map_err(|err| format!("cannot read the stored position of {label}: {err}"))?
            .into_iter()
            .find(|offset| offset.partition == PARTITION)
            .map(|offset| offset.next_offset),
    };
    let Some(next) = next.and_then(|next| u64::try_from(next).ok()) else {
        return Ok(DeliverPolicy::All);
    };
    let info = stream
        .info()
        .await
        .map_err(|err| format!("cannot read the state of the stream of {label}: {err}"))?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    Ok(match resume(next, first, last) {
        Resume::From(sequence) => DeliverPolicy::ByStartSequence {
            start_sequence: sequence,
        },
        Resume::Reset => {
            tracing::warn!(source = %label, stored = next, last,
                "the stored position is past the stream's end (the stream was deleted and \
                 created again); reading from its first event");
            DeliverPolicy::All
        }
        Resume::Expired => {
            tracing::warn!(source = %label, stored = next, first,
                "events before the stream's first were removed by its limits before the \
                 service read them; they are not counted");
            DeliverPolicy::All
        }
    })
}

/// What a stored position means for a stream holding sequences `first..=last`.
#[derive(Debug, PartialEq, Eq)]
enum Resume {
    /// Read from this sequence.
    From(u64),
    /// The position is past the end: the stream was reset.
    Reset,
    /// Events before the stream's first were removed unread.
    Expired,
}

fn resume(next: u64, first: u64, last: u64) -> Resume {
    if next > last + 1 {
        Resume::Reset
    } else if next < first {
        Resume::Expired
    } else {
        Resume::From(next)
    }
}

/// The client's connection events: losses and returns logged (the stream's gauge
/// follows; each return counted in `connections`, which makes the reader recreate its
/// consumer), slow-consumer drops logged at most once per [`SLOW_LOG_EVERY`].
fn connection_events(
    source: String,
    counters: Arc<SourceCounters>,
    connections: watch::Sender<u64>,
) -> impl Fn(async_nats::Event) -> futures::future::Ready<()> + Send + Sync + 'static {
    let last_slow: Mutex<Option<Instant>> = Mutex::new(None);
    move |event| {
        match event {
            async_nats::Event::Disconnected => {
                counters.up.store(false, Ordering::Relaxed);
                tracing::warn!(source = %source,
                    "access-event stream disconnected; reconnecting with backoff");
            }
            async_nats::Event::Connected => {
                counters.up.store(true, Ordering::Relaxed);
                connections.send_modify(|count| *count += 1);
                tracing::info!(source = %source, "access-event stream connected");
            }
            async_nats::Event::SlowConsumer(_) => {
                let mut last = lock(&last_slow);
                if !last.is_some_and(|at| at.elapsed() < SLOW_LOG_EVERY) {
                    *last = Some(Instant::now());
                    tracing::warn!(source = %source,
                        "access events arrive faster than they are ingested; the consumer \
                         reads the skipped ones again from the stream");
                }
            }
            other => tracing::info!(source = %source, event = %other, "NATS connection event"),
        }
        futures::future::ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_hold_no_subject_separators_or_wildcards() {
        assert_eq!(
            stream_name_for("strata.access"),
            "strata_access_strata_access"
        );
        assert_eq!(stream_name_for("a.*.>"), "strata_access_a_S_G");
    }

    #[test]
    fn a_stored_position_resumes_only_inside_the_stream() {
        assert_eq!(resume(5, 1, 10), Resume::From(5));
        // Everything read: wait for the next event.
        assert_eq!(resume(11, 1, 10), Resume::From(11));
        assert_eq!(resume(12, 1, 10), Resume::Reset);
        // An empty stream recreated after the position was stored.
        assert_eq!(resume(12, 0, 0), Resume::Reset);
        assert_eq!(resume(3, 5, 10), Resume::Expired);
    }
}
