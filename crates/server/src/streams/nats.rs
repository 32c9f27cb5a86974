//! Access events from a NATS subject (`--events nats://HOST:PORT/SUBJECT`): a core
//! subscription (async-nats), each message one or more NDJSON records.
//!
//! Messages that are ready are gathered into one batch (up to
//! [`super::MAX_BATCH_RECORDS`]) and ingested under one tracker lock, so a burst costs a
//! lock per batch, not per message. Once connected, async-nats reconnects by itself (the
//! subscription survives); the callback logs the losses and returns and keeps the
//! `strata_event_stream_up` gauge true. A first connection that fails returns an error to
//! the supervisor, which retries with backoff.
//!
//! Core NATS keeps nothing for a subscriber that is away: events published while the
//! service is down, disconnected, or too slow to take them (the client's buffer full:
//! logged as a slow consumer) are not counted. Heat is a statistic, so that loss is
//! tolerable; a JetStream durable consumer would remove it (not built yet).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use super::{append_record, EventSource, SourceCounters, MAX_BATCH_RECORDS};
use crate::access::{ingest_batch, BatchOrigin};
use crate::state::{lock, AppState};

/// Messages the client buffers for the subscription before it drops them (slow
/// consumer): about a second of events at the rates the service ingests.
const SUBSCRIPTION_CAPACITY: usize = 1 << 20;

/// How long the first connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// At most one slow-consumer warning this often.
const SLOW_LOG_EVERY: Duration = Duration::from_secs(10);

/// Subscribes to the source's subject and ingests its messages until the connection is
/// closed for good; returns why it ended.
pub async fn consume(
    state: &Arc<AppState>,
    source: &EventSource,
    counters: &Arc<SourceCounters>,
) -> Result<(), String> {
    let mut options = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .event_callback(connection_events(source.to_string(), Arc::clone(counters)));
    if let Some(credentials) = &source.credentials {
        options = options.user_and_password(credentials.user.clone(), credentials.password.clone());
    }
    let client = options
        .connect(source.server.as_str())
        .await
        .map_err(|err| format!("cannot connect to NATS at {}: {err}", source.server))?;
    let subscriber = client
        .subscribe(source.name.clone())
        .await
        .map_err(|err| format!("cannot subscribe to {}: {err}", source.name))?;
    counters.up.store(true, Ordering::Relaxed);
    tracing::info!(source = %source, "consuming access events");
    let mut ready = subscriber.ready_chunks(MAX_BATCH_RECORDS);
    let mut batch = Vec::new();
    while let Some(messages) = ready.next().await {
        batch.clear();
        for message in &messages {
            append_record(&mut batch, &message.payload);
        }
        let origin = BatchOrigin {
            counters,
            log_rejects: true,
            reaches: None,
        };
        ingest_batch(state, &batch, origin);
    }
    Err("the NATS connection was closed".to_string())
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
                        "access events arrive faster than they are ingested; NATS drops \
                         the excess (core subscriptions keep nothing)");
                }
            }
            other => tracing::info!(source = %source, event = %other, "NATS connection event"),
        }
        futures::future::ready(())
    }
}
