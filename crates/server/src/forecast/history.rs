//! The access history the forecast learns from: every read (GET) and write (PUT) of the
//! API and every event of `POST /v1/access-events`, counted per object and per hour of the
//! access's own time, buffered in memory and added to the catalog's `access_history` table
//! by the access statistics flush, in the transaction of the statistics and stream
//! positions of the same accesses (a failed write keeps all three for the next one).
//! Hours older than `[forecast] history` are pruned, at most once an hour.
//!
//! HEAD is not counted: it reads no bytes from a tier (the access tracker does not count it
//! either), and the forecast must learn the reads that cost something.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use strata_catalog::HistoryBucket;
use strata_heat::units::HOUR_MS;
use strata_heat::{EventRef, Op};

use crate::state::{lock, AppState};

/// Counts of one hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    reads: u64,
    writes: u64,
    bytes: u64,
}

/// Counts not yet written, by key, then by hour start.
#[derive(Debug, Default)]
pub struct HistoryBuffer {
    keys: HashMap<String, HashMap<i64, Counts>>,
}

impl HistoryBuffer {
    /// Counts one access at `ts_ms` (deletes are not counted).
    pub fn record(&mut self, key: &str, ts_ms: i64, op: Op, bytes: u64) {
        let hour = ts_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let hours = match self.keys.get_mut(key) {
            Some(hours) => hours,
            None => self.keys.entry(key.to_string()).or_default(),
        };
        let counts = hours.entry(hour).or_default();
        match op {
            Op::Read => counts.reads = counts.reads.saturating_add(1),
            Op::Write => counts.writes = counts.writes.saturating_add(1),
            Op::Delete => return,
        }
        counts.bytes = counts.bytes.saturating_add(bytes);
    }

    /// Everything buffered, emptying the buffer.
    pub fn take(&mut self) -> Vec<HistoryBucket> {
        std::mem::take(&mut self.keys)
            .into_iter()
            .flat_map(|(key, hours)| {
                hours.into_iter().map(move |(hour_ms, c)| HistoryBucket {
                    key: key.clone(),
                    hour_ms,
                    reads: c.reads,
                    writes: c.writes,
                    bytes: c.bytes,
                })
            })
            .filter(|b| b.reads + b.writes > 0)
            .collect()
    }

    /// Puts back counts that could not be written (added to anything recorded since).
    pub fn requeue(&mut self, buckets: Vec<HistoryBucket>) {
        for b in buckets {
            let counts = self
                .keys
                .entry(b.key)
                .or_default()
                .entry(b.hour_ms)
                .or_default();
            counts.reads = counts.reads.saturating_add(b.reads);
            counts.writes = counts.writes.saturating_add(b.writes);
            counts.bytes = counts.bytes.saturating_add(b.bytes);
        }
    }

    /// The buffered counts of one key, by hour.
    pub fn pending_for(&self, key: &str) -> Vec<HistoryBucket> {
        let Some(hours) = self.keys.get(key) else {
            return Vec::new();
        };
        let mut out: Vec<HistoryBucket> = hours
            .iter()
            .map(|(&hour_ms, c)| HistoryBucket {
                key: key.to_string(),
                hour_ms,
                reads: c.reads,
                writes: c.writes,
                bytes: c.bytes,
            })
            .collect();
        out.sort_by_key(|b| b.hour_ms);
        out
    }
}

/// The time an access is counted at: its own, unless further in the future than the
/// tracker's clock skew allows (then now, as the tracker counts it).
fn counted_at(state: &AppState, now_ms: i64, ts_ms: i64) -> i64 {
    let skew = i64::try_from(state.config.tracking.max_clock_skew.as_millis()).unwrap_or(i64::MAX);
    if ts_ms > now_ms.saturating_add(skew) {
        now_ms
    } else {
        ts_ms
    }
}

/// Counts an access of the API's read or write path.
pub fn record(state: &AppState, key: &str, now_ms: i64, op: Op, bytes: u64) {
    lock(&state.forecast.history).record(key, now_ms, op, bytes);
}

/// Counts one valid event of an access-event batch, as the tracker's parse of the batch
/// hands it over (one parse for both).
pub fn record_event(
    state: &AppState,
    history: &mut HistoryBuffer,
    now_ms: i64,
    event: &EventRef<'_>,
) {
    let ts = counted_at(state, now_ms, event.ts_ms);
    history.record(event.key, ts, event.op, event.bytes);
}

/// At most once an hour, prunes the hours past the retention (a failure is logged: the
/// next hour tries again). Called by the access statistics flush, which writes the
/// buffered counts with the statistics.
pub async fn prune_when_due(state: &AppState, now_ms: i64) {
    let last = state.forecast.last_prune_ms.load(Ordering::Relaxed);
    if now_ms - last < HOUR_MS {
        return;
    }
    state
        .forecast
        .last_prune_ms
        .store(now_ms, Ordering::Relaxed);
    let before = now_ms.saturating_sub(state.config.forecast.history_ms());
    match state.catalog.prune_access_history(before).await {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "access history past the retention pruned"),
        Err(err) => tracing::warn!(%err, "pruning the access history failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_are_counted_per_key_and_hour_and_requeued_on_failure() {
        let mut buffer = HistoryBuffer::default();
        buffer.record("a", 10, Op::Read, 5);
        buffer.record("a", HOUR_MS - 1, Op::Read, 5);
        buffer.record("a", HOUR_MS, Op::Write, 7);
        buffer.record("b", 3, Op::Delete, 0);
        assert_eq!(
            buffer.pending_for("a"),
            vec![
                HistoryBucket {
                    key: "a".into(),
                    hour_ms: 0,
                    reads: 2,
                    writes: 0,
                    bytes: 10,
                },
                HistoryBucket {
                    key: "a".into(),
                    hour_ms: HOUR_MS,
                    reads: 0,
                    writes: 1,
                    bytes: 7,
                },
            ]
        );
        let mut taken = buffer.take();
        taken.sort_by_key(|b| b.hour_ms);
        assert_eq!(taken.len(), 2, "a delete alone is no history: {taken:?}");
        buffer.record("a", 20, Op::Read, 1);
        buffer.requeue(taken);
        assert_eq!(buffer.pending_for("a")[0].reads, 3);
    }
}
