//! Access events: the NDJSON batch endpoint (`POST /v1/access-events`), the one ingest it
//! shares with the event streams ([`ingest_batch`], see [`crate::streams`]), and the flush
//! that writes changed statistics (with the stream positions they include, and queued
//! decisions) to the catalog.
//!
//! Ingest parses and records a batch under one lock of the tracker (strata-heat's
//! `ingest_ndjson`: no allocation for keys already known), so a batch of tens of thousands
//! of events costs one lock. Spikes found during ingest wake the reactive planner at once.
//!
//! The flush runs every `tracking.flush_interval`: it takes the dirty rows, encodes them
//! outside the lock, and writes them in one transaction. A failed write puts the rows back
//! (their newest values are written next time), so a restart loses at most one interval of
//! counts, and every row in the catalog is a complete statistics record.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use strata_catalog::{AccessFlush, StreamOffset};
use strata_heat::{AccessStats, BatchOutcome, NdjsonReport};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::http::read_body;
use crate::state::{lock, now_ms, AppState};

/// `POST /v1/access-events`: an NDJSON batch.
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(
        &headers,
        body,
        state.limits.max_batch_bytes as u64,
        state.http.body_timeout,
        "access-event batch",
    )
    .await?;
    let (outcome, report) = ingest_batch(&state, &body, BatchOrigin::http(&state));
    let status = if report.accepted == 0 && report.rejected > 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut body = serde_json::json!({
        "accepted": report.accepted,
        "rejected": report.rejected,
        "clamped": outcome.clamped,
        "new_keys": outcome.new_keys,
        "spikes": outcome.spikes,
        "errors": report.errors,
    });
    if status == StatusCode::BAD_REQUEST {
        body["error"] = serde_json::json!({
            "code": "invalid_events",
            "message": format!(
                "none of the {} lines is a valid access event; send one JSON object per line \
                 like {{\"key\": \"a/b\", \"op\": \"read\", \"ts\": 1767225600000}}",
                report.rejected
            ),
        });
    }
    Ok((status, Json(body)).into_response())
}

/// Where a batch of access events came from.
pub struct BatchOrigin<'a> {
    /// The source's counters (`http`, or a stream's).
    pub counters: &'a crate::streams::SourceCounters,
    /// Log malformed records (streams: nobody else sees them; the batch endpoint answers
    /// them to its client instead).
    pub log_rejects: bool,
    /// For a stream (Kafka, NATS JetStream): the position after the batch's last record,
    /// written with the statistics that include the batch.
    pub reaches: Option<StreamOffset>,
}

impl<'a> BatchOrigin<'a> {
    /// The batch endpoint.
    pub fn http(state: &'a AppState) -> Self {
        BatchOrigin {
            counters: &state.streams.http,
            log_rejects: false,
            reaches: None,
        }
    }
}

/// The one ingest of access events, for the batch endpoint and every stream alike:
/// parses and records an NDJSON batch under one lock of the tracker (with the position
/// the batch reaches, under the same lock, so the flush sees both or neither), adds it to
/// the access history, counts it, and wakes the reactive planner on a spike.
pub fn ingest_batch(
    state: &AppState,
    body: &[u8],
    origin: BatchOrigin<'_>,
) -> (BatchOutcome, NdjsonReport) {
    let now = now_ms();
    let (outcome, report) = {
        let mut tracker = lock(&state.tracker);
        // The history counts the batch in the tracker's parse of it (lock order: tracker,
        // then history, as everywhere).
        let mut history = lock(&state.forecast.history);
        let ingested = tracker.ingest_ndjson_with(now, body, |event| {
            crate::forecast::history::record_event(state, &mut history, now, event);
        });
        drop(history);
        if let Some(position) = origin.reaches {
            lock(&state.streams.pending).advance(position);
        }
        ingested
    };
    let metrics = &state.metrics;
    metrics
        .events_accepted
        .fetch_add(report.accepted as u64, Ordering::Relaxed);
    metrics
        .events_rejected
        .fetch_add(report.rejected as u64, Ordering::Relaxed);
    origin.counters.count(&report, origin.log_rejects);
    if outcome.spikes > 0 {
        metrics
            .spikes
            .fetch_add(outcome.spikes as u64, Ordering::Relaxed);
        state.planner_wake.notify_one();
    }
    (outcome, report)
}

/// Writes changed statistics, the stream positions they include and the access history,
/// in one catalog transaction (all put back on failure), then queued decisions; returns the
/// statistics rows written.
pub async fn flush(state: &AppState) -> Result<usize, String> {
    // One flush at a time: the flush loop, training and the proactive cycle all flush.
    let _flushing = state.flushing.lock().await;
    // Statistics, positions and history are taken under one lock of the tracker, which
    // ingest holds while it records a batch in all three: they match (lock order: tracker,
    // then the others).
    let (batch, decay, offsets, history) = {
        let mut tracker = lock(&state.tracker);
        let offsets = lock(&state.streams.pending).take();
        let history = lock(&state.forecast.history).take();
        (tracker.take_dirty(), *tracker.decay(), offsets, history)
    };
    let mut written = 0;
    if !batch.is_empty() || !offsets.is_empty() || !history.is_empty() {
        let encoded: Vec<(Arc<str>, String)> = batch
            .upserts
            .iter()
            .map(|(key, stats): &(Arc<str>, AccessStats)| {
                (Arc::clone(key), stats.encode_json(&decay))
            })
            .collect();
        let upserts: Vec<(&str, &str)> = encoded
            .iter()
            .map(|(key, json)| (&**key, json.as_str()))
            .collect();
        let removed: Vec<&str> = batch.removed.iter().map(|key| &**key).collect();
        let stored = AccessFlush {
            upserts: &upserts,
            removed: &removed,
            offsets: &offsets,
            history: &history,
        };
        match state.catalog.save_access_flush(&stored, now_ms()).await {
            Ok(()) => {
                written = upserts.len() + removed.len();
                state.metrics.flushes.fetch_add(1, Ordering::Relaxed);
                state
                    .metrics
                    .flushed_rows
                    .fetch_add(written as u64, Ordering::Relaxed);
            }
            Err(err) => {
                let mut tracker = lock(&state.tracker);
                tracker.requeue(&batch);
                lock(&state.streams.pending).requeue(offsets);
                lock(&state.forecast.history).requeue(history);
                drop(tracker);
                state.metrics.flush_errors.fetch_add(1, Ordering::Relaxed);
                return Err(err.to_string());
            }
        }
    }
    crate::forecast::history::prune_when_due(state, now_ms()).await;
    let decisions = lock(&state.decisions).take();
    if !decisions.is_empty() {
        if let Err(err) = state.catalog.record_decisions(&decisions).await {
            lock(&state.decisions).requeue(decisions);
            return Err(err.to_string());
        }
    }
    Ok(written)
}

/// Flushes every `interval` until `shutdown`, then once more.
pub async fn flush_loop(
    state: Arc<AppState>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        if let Err(err) = flush(&state).await {
            tracing::warn!(%err, "access statistics flush failed; retrying at the next one");
        }
    }
    if let Err(err) = flush(&state).await {
        tracing::warn!(%err, "final access statistics flush failed");
    }
}

/// Loads the catalog's statistics into the tracker (before ingest starts). Rows that
/// cannot be read are skipped and logged: one damaged row costs one object's history.
pub async fn load_stats(state: &AppState) -> Result<usize, String> {
    let rows = state
        .catalog
        .access_stats()
        .await
        .map_err(|err| err.to_string())?;
    let mut tracker = lock(&state.tracker);
    let decay = *tracker.decay();
    let mut loaded = 0;
    for (key, json) in rows {
        match AccessStats::decode_json(&json, &decay) {
            Ok(stats) => {
                tracker.load(&key, stats);
                loaded += 1;
            }
            Err(err) => tracing::warn!(%key, %err, "skipping unreadable access statistics"),
        }
    }
    Ok(loaded)
}
