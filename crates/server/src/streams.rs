//! Access events from streams: `strata serve --events nats://HOST:PORT/SUBJECT` and
//! `--events kafka://HOST:PORT/TOPIC` (or `[server] events = [...]`).
//!
//! It owns the stream URLs ([`source`]), one consumer task per stream ([`nats`],
//! [`kafka`]) kept alive by [`supervise`] (a stream that is down or drops is retried with
//! backoff, and the log says so; the service keeps serving meanwhile), the per-source
//! counters shown on `/metrics`, the rate-limited log of malformed records, and the
//! stream positions waiting to be written with the statistics that include them
//! ([`PendingOffsets`]) or ingested by this process ([`Positions`]).
//!
//! Every record, whatever its stream, goes through the ingest of `POST
//! /v1/access-events` ([`crate::access::ingest_batch`]): the same NDJSON form, the same
//! checks, the same tracker. A malformed record is counted and skipped, never fatal.
//!
//! Exactly once, for both streams: a batch's records (in the tracker and the access
//! history) and the position after them (a Kafka partition's offset, a JetStream stream's
//! sequence, in [`PendingOffsets`]) enter under one lock, and the statistics flush takes
//! all three under it and writes them in one catalog transaction
//! (`TieringCatalog::save_access_flush`). The catalog's positions therefore always match
//! the catalog's statistics and history, and a restart resumes from there: events
//! published while the service is down are read when it starts, and those whose counts a
//! SIGKILL lost are read again, once.

pub mod kafka;
pub mod nats;
pub mod source;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_catalog::StreamOffset;
use strata_heat::NdjsonReport;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use source::{EventSource, StreamKind};

use crate::state::{lock, AppState};

/// First wait before a stream that failed is tried again; doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between attempts to reach a stream.
const RETRY_MAX: Duration = Duration::from_secs(10);
/// At most one log line about malformed records per source this often.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);
/// Records gathered into one ingest batch at most (one tracker lock per batch).
pub const MAX_BATCH_RECORDS: usize = 8192;

/// What one source counted, for `/metrics`.
#[derive(Debug)]
pub struct SourceCounters {
    /// `http`, or the stream's URL without credentials.
    pub source: String,
    /// Events accepted.
    pub accepted: AtomicU64,
    /// Malformed records (lines) skipped.
    pub rejected: AtomicU64,
    /// Whether the stream is connected now (always true for `http`).
    pub up: AtomicBool,
    rejects: Mutex<RejectLog>,
}

/// When malformed records were last logged, and how many since.
#[derive(Debug, Default)]
struct RejectLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl SourceCounters {
    fn new(source: String, up: bool) -> Self {
        SourceCounters {
            source,
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            up: AtomicBool::new(up),
            rejects: Mutex::new(RejectLog::default()),
        }
    }

    /// Counts a batch's events; malformed records of a stream are logged, at most once
    /// per [`REJECT_LOG_EVERY`] (a producer sending garbage must not flood the log).
    pub fn count(&self, report: &NdjsonReport, log_rejects: bool) {
        self.accepted
            .fetch_add(report.accepted as u64, Ordering::Relaxed);
        if report.rejected == 0 {
            return;
        }
        self.rejected
            .fetch_add(report.rejected as u64, Ordering::Relaxed);
        if !log_rejects {
            return;
        }
        let mut log = lock(&self.rejects);
        log.unlogged += report.rejected as u64;
        if log
            .last
            .is_some_and(|last| last.elapsed() < REJECT_LOG_EVERY)
        {
            return;
        }
        let example = report
            .errors
            .first()
            .map_or_else(String::new, |error| error.reason.clone());
        tracing::warn!(
            source = %self.source,
            skipped = log.unlogged,
            %example,
            "malformed access events skipped (send one JSON object per line like \
             {{\"key\": \"a/b\", \"op\": \"read\"}}); counted in \
             strata_access_events_rejected_total"
        );
        log.last = Some(Instant::now());
        log.unlogged = 0;
    }
}

/// Stream positions ingested but not yet written: per (source, partition), the offset of
/// the next record (NATS: partition 0, the next stream sequence). Taken by the flush
/// together with the statistics.
#[derive(Debug, Default)]
pub struct PendingOffsets {
    next: BTreeMap<(String, i32), i64>,
}

impl PendingOffsets {
    /// Records that the statistics now include everything before `offset`.
    pub fn advance(&mut self, offset: StreamOffset) {
        let slot = self
            .next
            .entry((offset.source, offset.partition))
            .or_insert(offset.next_offset);
        *slot = (*slot).max(offset.next_offset);
    }

    /// The positions to write, leaving none pending.
    pub fn take(&mut self) -> Vec<StreamOffset> {
        std::mem::take(&mut self.next)
            .into_iter()
            .map(|((source, partition), next_offset)| StreamOffset {
                source,
                partition,
                next_offset,
            })
            .collect()
    }

    /// Puts back positions whose write failed (a newer one recorded meanwhile wins).
    pub fn requeue(&mut self, offsets: Vec<StreamOffset>) {
        for offset in offsets {
            self.advance(offset);
        }
    }
}

/// Per partition (NATS: 0), the position of the next record this process has not
/// ingested yet; kept across reconnections by the supervisor. A reconnection resumes from
/// here, not from the catalog, whose positions lag by up to a flush (resuming from them
/// would count those records twice).
#[derive(Clone, Debug, Default)]
pub struct Positions(Arc<Mutex<BTreeMap<i32, i64>>>);

impl Positions {
    /// Records that everything before `next` in `partition` has been ingested.
    pub fn set(&self, partition: i32, next: i64) {
        lock(&self.0).insert(partition, next);
    }

    /// The position of `partition`, if this process has ingested from it.
    pub fn get(&self, partition: i32) -> Option<i64> {
        lock(&self.0).get(&partition).copied()
    }

    /// Every partition's position.
    pub fn all(&self) -> Vec<(i32, i64)> {
        lock(&self.0).iter().map(|(p, o)| (*p, *o)).collect()
    }
}

/// Reads one counter of a source.
type CounterOf = fn(&SourceCounters) -> u64;

/// The sources of access events and their counters.
#[derive(Debug)]
pub struct StreamRegistry {
    /// The batch endpoint's counters.
    pub http: Arc<SourceCounters>,
    streams: Mutex<Vec<Arc<SourceCounters>>>,
    /// Stream positions waiting for the next flush; locked only while the tracker is.
    pub pending: Mutex<PendingOffsets>,
}

impl Default for StreamRegistry {
    fn default() -> Self {
        StreamRegistry {
            http: Arc::new(SourceCounters::new("http".to_string(), true)),
            streams: Mutex::new(Vec::new()),
            pending: Mutex::new(PendingOffsets::default()),
        }
    }
}

impl StreamRegistry {
    fn register(&self, source: &EventSource) -> Arc<SourceCounters> {
        let counters = Arc::new(SourceCounters::new(source.to_string(), false));
        lock(&self.streams).push(Arc::clone(&counters));
        counters
    }

    /// The per-source counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let mut all = vec![Arc::clone(&self.http)];
        all.extend(lock(&self.streams).iter().cloned());
        let families: [(&str, &str, CounterOf); 2] = [
            (
                "strata_access_events_accepted_total",
                "Access events accepted, by source (http or a stream URL).",
                |c| c.accepted.load(Ordering::Relaxed),
            ),
            (
                "strata_access_events_rejected_total",
                "Malformed access-event records skipped, by source (http or a stream URL).",
                |c| c.rejected.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for counters in &all {
                let _ = writeln!(
                    out,
                    "{name}{{source=\"{}\"}} {}",
                    crate::metrics::label(&counters.source),
                    value(counters)
                );
            }
        }
        let name = "strata_event_stream_up";
        let _ = writeln!(
            out,
            "# HELP {name} Whether an access-event stream is connected (1) or being retried (0)."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        for counters in all.iter().skip(1) {
            let up = u8::from(counters.up.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\"}} {up}",
                crate::metrics::label(&counters.source)
            );
        }
    }
}

/// Starts one consumer per source; each runs until `shutdown`.
pub fn start(
    state: &Arc<AppState>,
    sources: Vec<EventSource>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    sources
        .into_iter()
        .map(|source| {
            let counters = state.streams.register(&source);
            tokio::spawn(supervise(
                Arc::clone(state),
                source,
                counters,
                shutdown.clone(),
            ))
        })
        .collect()
}

/// Runs a stream's consumer until `shutdown`; when it cannot reach the stream or loses
/// it, logs why and tries again after a wait that doubles up to [`RETRY_MAX`] (back to
/// [`RETRY_FIRST`] after a connection that worked).
async fn supervise(
    state: Arc<AppState>,
    source: EventSource,
    counters: Arc<SourceCounters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut wait = RETRY_FIRST;
    // How far the stream has been ingested in this process, which a reconnection resumes
    // from (the catalog's positions lag by up to a flush).
    let positions = Positions::default();
    loop {
        let attempt = async {
            match source.kind {
                StreamKind::Nats => nats::consume(&state, &source, &counters, &positions).await,
                StreamKind::Kafka => kafka::consume(&state, &source, &counters, &positions).await,
            }
        };
        let ended = tokio::select! {
            ended = attempt => ended,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        if counters.up.swap(false, Ordering::Relaxed) {
            wait = RETRY_FIRST;
        }
        let reason = ended
            .err()
            .unwrap_or_else(|| "the stream ended".to_string());
        tracing::warn!(
            source = %source,
            %reason,
            retry_in = ?wait,
            "access-event stream unavailable; the service keeps serving and tries again"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// Appends `payload` to an NDJSON batch, ending it with a newline if it has none (a
/// record without one would otherwise run into the next).
pub fn append_record(batch: &mut Vec<u8>, payload: &[u8]) {
    batch.extend_from_slice(payload);
    if payload.last() != Some(&b'\n') {
        batch.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(partition: i32, next_offset: i64) -> StreamOffset {
        StreamOffset {
            source: "kafka://b:9092/t".into(),
            partition,
            next_offset,
        }
    }

    #[test]
    fn pending_offsets_keep_the_furthest_position_through_a_failed_write() {
        let mut pending = PendingOffsets::default();
        pending.advance(offset(0, 5));
        pending.advance(offset(1, 3));
        pending.advance(offset(0, 9));
        let taken = pending.take();
        assert_eq!(taken, [offset(0, 9), offset(1, 3)]);
        assert!(pending.take().is_empty());
        // Ingest went on while the write failed: the newer position wins on requeue.
        pending.advance(offset(0, 12));
        pending.requeue(taken);
        assert_eq!(pending.take(), [offset(0, 12), offset(1, 3)]);
    }

    #[test]
    fn records_are_separated_by_exactly_one_newline() {
        let mut batch = Vec::new();
        append_record(&mut batch, b"{\"key\":\"a\"}");
        append_record(&mut batch, b"{\"key\":\"b\"}\n");
        assert_eq!(batch, b"{\"key\":\"a\"}\n{\"key\":\"b\"}\n");
    }

    #[test]
    fn metrics_name_each_source_without_credentials() {
        let registry = StreamRegistry::default();
        let source = EventSource::parse("nats://u:secret1@127.0.0.1:4222/a.b").unwrap();
        let counters = registry.register(&source);
        let report = NdjsonReport {
            accepted: 2,
            rejected: 1,
            errors: Vec::new(),
        };
        counters.count(&report, false);
        let mut text = String::new();
        registry.render(&mut text);
        assert!(text.contains(
            "strata_access_events_rejected_total{source=\"nats://127.0.0.1:4222/a.b\"} 1"
        ));
        assert!(text.contains("strata_access_events_accepted_total{source=\"http\"} 0"));
        assert!(text.contains("strata_event_stream_up{source=\"nats://127.0.0.1:4222/a.b\"} 0"));
        assert!(!text.contains("secret1"));
    }
}
