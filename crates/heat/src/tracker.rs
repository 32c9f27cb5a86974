//! The in-memory map from object key to [`AccessStats`], fed by the read/write path and the
//! batch endpoint, flushed to the catalog a few seconds at a time.
//!
//! Owned here: ingest (one event, a batch, or an NDJSON body parsed and recorded in one
//! pass), clock-skew clamping, spike detection at ingest (so a spike is promoted at once,
//! not at the next planning pass), and the dirty set that makes each flush write only the
//! rows that changed since the previous one.
//!
//! The tracker is single-threaded (`&mut self`) and has no I/O: the server wraps it in a
//! mutex and runs the flush. One lock around a batch costs far less than a concurrent map's
//! per-event synchronisation, and ingest is well under a microsecond per event.
//!
//! Flush protocol: [`AccessTracker::take_dirty`] returns the changed rows and clears the
//! dirty marks; if writing them fails, [`AccessTracker::requeue`] marks them dirty again, so
//! the next flush writes their newest values. A crash loses at most what arrived since the
//! last successful flush, and every row written is a complete, consistent [`AccessStats`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::classify::SpikeRule;
use crate::event::{scan_ndjson, AccessEvent, EventRef, NdjsonReport};
use crate::stats::{AccessStats, AccessSummary, Decay, Op};
use crate::units::MINUTE_MS;

/// Settings of an [`AccessTracker`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackerConfig {
    /// Half-lives of the decayed counts.
    pub decay: Decay,
    /// The spike rule checked at every access.
    pub spike: SpikeRule,
    /// Events stamped further than this in the future (by the ingest's `now`) are counted
    /// at `now`: a producer's clock is wrong, but the access did happen.
    pub max_clock_skew_ms: i64,
}

impl Default for TrackerConfig {
    /// Decay 1h/24h, the default spike rule, five minutes of clock skew.
    fn default() -> Self {
        TrackerConfig {
            decay: Decay::default(),
            spike: SpikeRule::default(),
            max_clock_skew_ms: 5 * MINUTE_MS,
        }
    }
}

/// Counts from one ingest call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events recorded.
    pub recorded: usize,
    /// Of those, events stamped too far in the future and counted at `now`.
    pub clamped: usize,
    /// Keys seen for the first time.
    pub new_keys: usize,
    /// Objects that started spiking (see [`AccessTracker::take_spikes`]).
    pub spikes: usize,
}

/// Rows to write to the catalog: changed statistics, and keys whose statistics were dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlushBatch {
    /// Keys whose statistics changed since the last flush, with their current values.
    pub upserts: Vec<(Arc<str>, AccessStats)>,
    /// Keys removed with [`AccessTracker::remove`] since the last flush.
    pub removed: Vec<Arc<str>>,
}

impl FlushBatch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removed.is_empty()
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    stats: AccessStats,
    dirty: bool,
    spiking: bool,
}

/// Records one access into an object's statistics and its spike flag; true when a spike
/// starts with this access. The one spike detector, shared by the tracker and the `rules`
/// policy of `strata eval` (which keeps statistics per object id, not per key).
#[inline]
pub(crate) fn record_watching_spikes(
    stats: &mut AccessStats,
    spiking: &mut bool,
    config: &TrackerConfig,
    ts_ms: i64,
    op: Op,
    bytes: u64,
) -> bool {
    let decay = config.decay;
    let spike = config.spike;
    // A spike flag older than a fast half-life is stale: a new burst is a new spike.
    let was_spiking = *spiking
        && stats
            .last_access_ms()
            .is_some_and(|last| ts_ms.saturating_sub(last) < decay.fast_half_life_ms());
    stats.record(&decay, ts_ms, op, bytes);
    // Only reads move the rates (see crate::stats), so only a read can start a spike.
    let now_spiking = op == Op::Read && {
        let head = stats.last_access_ms().unwrap_or(ts_ms);
        let (fast, slow) = stats.rates_per_hour(&decay, head);
        // The window sum is only paid for when the cheap ratio test passes.
        fast >= spike.factor * slow && spike.holds(fast, slow, stats.count_1h(head))
    };
    if op == Op::Read {
        *spiking = now_spiking;
    }
    now_spiking && !was_spiking
}

/// Access statistics of every tracked object, keyed by object key.
#[derive(Debug)]
pub struct AccessTracker {
    config: TrackerConfig,
    map: HashMap<Arc<str>, Slot>,
    dirty: Vec<Arc<str>>,
    removed: Vec<Arc<str>>,
    spikes: Vec<Arc<str>>,
}

impl Default for AccessTracker {
    fn default() -> Self {
        AccessTracker::new(TrackerConfig::default())
    }
}

impl AccessTracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Self {
        AccessTracker {
            config,
            map: HashMap::new(),
            dirty: Vec::new(),
            removed: Vec::new(),
            spikes: Vec::new(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// The decay the statistics are kept with (needed to encode them for the catalog).
    pub fn decay(&self) -> &Decay {
        &self.config.decay
    }

    /// Objects tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No object tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records one access. `now_ms` is the ingest time, used only to clamp future stamps.
    /// The key is not validated here (the event parser and the object path do it).
    #[inline]
    pub fn record(&mut self, now_ms: i64, key: &str, ts_ms: i64, op: Op, bytes: u64) {
        let mut outcome = BatchOutcome::default();
        self.record_into(now_ms, key, ts_ms, op, bytes, &mut outcome);
    }

    #[inline]
    fn record_into(
        &mut self,
        now_ms: i64,
        key: &str,
        ts_ms: i64,
        op: Op,
        bytes: u64,
        outcome: &mut BatchOutcome,
    ) {
        let ts_ms = if ts_ms > now_ms.saturating_add(self.config.max_clock_skew_ms) {
            outcome.clamped += 1;
            now_ms
        } else {
            ts_ms
        };
        outcome.recorded += 1;
        let config = self.config;
        let slot = match self.map.get_mut(key) {
            Some(slot) => slot,
            None => {
                outcome.new_keys += 1;
                self.map.entry(Arc::from(key)).or_insert(Slot {
                    stats: AccessStats::new(),
                    dirty: false,
                    spiking: false,
                })
            }
        };
        let newly_spiking = record_watching_spikes(
            &mut slot.stats,
            &mut slot.spiking,
            &config,
            ts_ms,
            op,
            bytes,
        );
        let newly_dirty = !slot.dirty;
        slot.dirty = true;
        if newly_dirty || newly_spiking {
            // Only here is the key's Arc needed; the lookup above borrowed `key` as a &str.
            let shared = self
                .map
                .get_key_value(key)
                .map(|(shared, _)| Arc::clone(shared));
            if let Some(shared) = shared {
                if newly_dirty {
                    self.dirty.push(Arc::clone(&shared));
                }
                if newly_spiking {
                    outcome.spikes += 1;
                    self.spikes.push(shared);
                }
            }
        }
    }

    /// Records one event.
    pub fn record_event(&mut self, now_ms: i64, event: &AccessEvent) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        self.record_into(
            now_ms,
            &event.key,
            event.ts_ms,
            event.op,
            event.bytes,
            &mut outcome,
        );
        outcome
    }

    /// Records a batch of events, in order.
    pub fn record_batch(&mut self, now_ms: i64, events: &[AccessEvent]) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        for event in events {
            self.record_into(
                now_ms,
                &event.key,
                event.ts_ms,
                event.op,
                event.bytes,
                &mut outcome,
            );
        }
        outcome
    }

    /// Parses an NDJSON body (see [`crate::event`]) and records its valid events in one
    /// pass; keys already tracked are looked up without allocating.
    pub fn ingest_ndjson(&mut self, now_ms: i64, body: &[u8]) -> (BatchOutcome, NdjsonReport) {
        self.ingest_ndjson_with(now_ms, body, |_| {})
    }

    /// [`AccessTracker::ingest_ndjson`], handing each valid event to `also` as well, so a
    /// caller's own bookkeeping of the batch (the service's access history) costs no
    /// second parse.
    pub fn ingest_ndjson_with(
        &mut self,
        now_ms: i64,
        body: &[u8],
        mut also: impl FnMut(&EventRef<'_>),
    ) -> (BatchOutcome, NdjsonReport) {
        let mut outcome = BatchOutcome::default();
        let report = scan_ndjson(body, now_ms, |event| {
            self.record_into(
                now_ms,
                event.key,
                event.ts_ms,
                event.op,
                event.bytes,
                &mut outcome,
            );
            also(&event);
        });
        (outcome, report)
    }

    /// A copy of an object's statistics.
    pub fn snapshot(&self, key: &str) -> Option<AccessStats> {
        self.map.get(key).map(|slot| slot.stats)
    }

    /// An object's statistics as of `now_ms`.
    pub fn summary(&self, key: &str, now_ms: i64) -> Option<AccessSummary> {
        self.map
            .get(key)
            .map(|slot| slot.stats.summary(&self.config.decay, now_ms))
    }

    /// Every tracked object, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AccessStats)> {
        self.map.iter().map(|(key, slot)| (&**key, &slot.stats))
    }

    /// Puts statistics read from the catalog in place, without marking them dirty. Meant
    /// for start-up, before ingest begins; replaces (and returns) what was tracked.
    pub fn load(&mut self, key: &str, stats: AccessStats) -> Option<AccessStats> {
        let slot = Slot {
            stats,
            dirty: false,
            spiking: false,
        };
        if let Some(existing) = self.map.get_mut(key) {
            let previous = existing.stats;
            existing.stats = stats;
            return Some(previous);
        }
        self.map.insert(Arc::from(key), slot);
        None
    }

    /// Stops tracking an object (it was deleted); the next flush reports it as removed.
    pub fn remove(&mut self, key: &str) -> Option<AccessStats> {
        let (shared, slot) = self.map.remove_entry(key)?;
        self.removed.push(shared);
        Some(slot.stats)
    }

    /// The rows changed since the last call, with the dirty marks cleared. Keys are in the
    /// order they first changed.
    pub fn take_dirty(&mut self) -> FlushBatch {
        let mut batch = FlushBatch::default();
        for key in std::mem::take(&mut self.dirty) {
            if let Some(slot) = self.map.get_mut(&key) {
                if slot.dirty {
                    slot.dirty = false;
                    batch.upserts.push((key, slot.stats));
                }
            }
        }
        for key in std::mem::take(&mut self.removed) {
            // Removed, then recorded again before this flush: the upsert wins.
            if !self.map.contains_key(&key) {
                batch.removed.push(key);
            }
        }
        batch
    }

    /// Marks the rows of a batch that could not be written dirty again, so the next
    /// [`AccessTracker::take_dirty`] returns them with their newest values.
    pub fn requeue(&mut self, batch: &FlushBatch) {
        for (key, _) in &batch.upserts {
            if let Some(slot) = self.map.get_mut(key) {
                if !slot.dirty {
                    slot.dirty = true;
                    self.dirty.push(Arc::clone(key));
                }
            }
        }
        for key in &batch.removed {
            if !self.map.contains_key(key) {
                self.removed.push(Arc::clone(key));
            }
        }
    }

    /// Keys whose spike started since the last call, in order. The server plans these at
    /// once (reason `reactive_access_spike`) instead of waiting for the next pass.
    pub fn take_spikes(&mut self) -> Vec<Arc<str>> {
        std::mem::take(&mut self.spikes)
    }

    /// Keys with changes not yet taken by a flush.
    pub fn dirty_len(&self) -> usize {
        self.dirty.len() + self.removed.len()
    }
}
