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
//! with an ordered consumer (ephemeral, no acknowledgements: the catalog, not the server,
//! holds the position) that starts at the stored sequence, or at the position this process
//! reached before a reconnection ([`super::Positions`]). The ordered consumer checks that
//! no delivery is skipped and recreates itself from the last sequence it delivered when one
//! is, so a batch's position always covers every event before it.
//!
//! Pulling applies back-pressure: the server hands out a bounded batch at a time, so a
//! slow service delays events instead of losing them. A stored position past the stream's
//! end (the stream was deleted and created again) cannot be resumed: the stream is read
//! from its first event again, and the log says so; one before the stream's first event
//! (the events expired before the service read them) is logged as a loss.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::context::GetStreamByNameErrorKind;
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, StorageType, Stream};
use async_nats::jetstream::{self, Context};
use futures::StreamExt as _;
use strata_catalog::StreamOffset;

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

/// Reads the source's subject through JetStream and ingests its events until the
/// consumer fails; returns why.
pub async fn consume(
    state: &Arc<AppState>,
    source: &EventSource,
    counters: &Arc<SourceCounters>,
    positions: &Positions,
) -> Result<(), String> {
    let js = connect(source, counters).await?;
    let mut stream = capture(&js, source).await?;
    let label = source.to_string();
    let start = start_at(state, &label, positions, &mut stream).await?;
    let stream_name = stream.cached_info().config.name.clone();
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: source.name.clone(),
            deliver_policy: start,
            ..Default::default()
        })
        .await
        .map_err(|err| {
            format!("cannot create a consumer on the JetStream stream {stream_name}: {err}")
        })?;
    let messages = consumer
        .messages()
        .await
        .map_err(|err| format!("cannot read the JetStream stream {stream_name}: {err}"))?;
    counters.up.store(true, Ordering::Relaxed);
    tracing::info!(source = %label, stream = %stream_name, start = ?start,
        "consuming access events");
    let mut ready = messages.ready_chunks(MAX_BATCH_RECORDS);
    let mut batch = Vec::new();
    while let Some(results) = ready.next().await {
        batch.clear();
        let mut last = None;
        let mut failure = None;
        for result in results {
            match result {
                Ok(message) => {
                    append_record(&mut batch, &message.payload);
                    last = Some(message);
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        if let Some(message) = last {
            let sequence = message
                .info()
                .map_err(|err| format!("a message of {stream_name} has no stream sequence: {err}"))?
                .stream_sequence;
            let next = i64::try_from(sequence + 1).unwrap_or(i64::MAX);
            let origin = BatchOrigin {
                counters,
                log_rejects: true,
                reaches: Some(StreamOffset {
                    source: label.clone(),
                    partition: PARTITION,
                    next_offset: next,
                }),
            };
            ingest_batch(state, &batch, origin);
            // No await since the ingest: a cancelled consumer never leaves the two apart.
            positions.set(PARTITION, next);
        }
        if let Some(err) = failure {
            return Err(format!(
                "reading the JetStream stream {stream_name} failed: {err}"
            ));
        }
    }
    Err(format!(
        "the consumer of the JetStream stream {stream_name} ended"
    ))
}

/// Connects to the source's server; once connected, async-nats reconnects by itself and
/// the connection events keep the stream's gauge true to the connection.
async fn connect(source: &EventSource, counters: &Arc<SourceCounters>) -> Result<Context, String> {
    let mut options = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .event_callback(connection_events(source.to_string(), Arc::clone(counters)));
    if let Some(credentials) = &source.credentials {
        options = options.user_and_password(credentials.user.clone(), credentials.password.clone());
    }
    let client = options
        .connect(source.server.as_str())
        .await
        .map_err(|err| format!("cannot connect to NATS at {}: {err}", source.server))?;
    Ok(jetstream::new(client))
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
/// follows), slow-consumer drops logged at most once per [`SLOW_LOG_EVERY`].
fn connection_events(
    source: String,
    counters: Arc<SourceCounters>,
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
