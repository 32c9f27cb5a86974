//! What every handler and background task shares: the configuration, the tiers, the
//! catalog, the in-memory index and tracker, the mover, metrics and the event channel.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use strata_catalog::{DecisionRecord, EngineCatalog, TieringCatalog};
use strata_heat::{AccessTracker, TierId, TieringConfig};
use tokio::sync::{broadcast, watch, Notify};

use crate::index::{KeyGates, KeyLocks, ObjectEntry, ObjectIndex, TierUsage};
use crate::metrics::{Gauges, Metrics};
use crate::mover::Mover;
use crate::retry::Backoff;
use crate::tiers::{Tier, Tiers};

/// Milliseconds since the Unix epoch (0 for a clock before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Locks a std mutex, ignoring poisoning (every critical section leaves its data whole).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Bounds on what clients may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest object a PUT accepts, bytes (a policy limit: bodies stream, memory does not
    /// grow with it).
    pub max_object_size: u64,
    /// Largest access-event batch, bytes.
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    /// 5 TiB objects (S3's largest: a policy limit, objects stream to their tier), 64 MiB
    /// event batches.
    fn default() -> Self {
        Limits {
            max_object_size: 5 << 40,
            max_batch_bytes: 64 << 20,
        }
    }
}

/// A move job's transition, sent to `/v1/events` subscribers.
#[derive(Clone, Debug, Serialize)]
pub struct JobEvent {
    /// Job id.
    pub id: i64,
    /// Object key.
    pub key: String,
    /// Tier it leaves.
    pub from: String,
    /// Tier it goes to.
    pub to: String,
    /// New state.
    pub state: String,
    /// Why the move was planned.
    pub reason: String,
    /// Why it failed, was skipped or cancelled.
    pub error: Option<String>,
    /// When.
    pub ts_ms: i64,
}

/// Decisions waiting to be written, and the last one recorded per key (so a wait repeated
/// by every pass is recorded once, not once per pass).
#[derive(Debug, Default)]
pub struct DecisionLog {
    pending: Vec<DecisionRecord>,
    last: HashMap<String, (String, String)>,
}

impl DecisionLog {
    /// Queues a decision; with `dedupe`, only if its reason or action differs from the
    /// key's last one.
    pub fn push(&mut self, decision: DecisionRecord, dedupe: bool) {
        let signature = (decision.reason.clone(), decision.action.clone());
        if dedupe && self.last.get(&decision.key) == Some(&signature) {
            return;
        }
        self.last.insert(decision.key.clone(), signature);
        self.pending.push(decision);
    }

    /// Forgets a deleted key.
    pub fn forget(&mut self, key: &str) {
        self.last.remove(key);
    }

    /// The queued decisions.
    pub fn take(&mut self) -> Vec<DecisionRecord> {
        std::mem::take(&mut self.pending)
    }

    /// Queued decisions of one key, oldest first.
    pub fn pending_for(&self, key: &str) -> Vec<DecisionRecord> {
        self.pending
            .iter()
            .filter(|decision| decision.key == key)
            .cloned()
            .collect()
    }

    /// Puts back decisions that could not be written.
    pub fn requeue(&mut self, mut decisions: Vec<DecisionRecord>) {
        decisions.append(&mut self.pending);
        self.pending = decisions;
    }
}

/// The shared state.
pub struct AppState {
    /// The configuration in force.
    pub config: TieringConfig,
    /// Its `[[policy]]` list, compiled against the tiers (`GET /v1/policies`, a PUT's first
    /// placement, manual moves, explain).
    pub policies: strata_heat::PolicySet,
    /// The tiers, hot → cold.
    pub tiers: Tiers,
    /// The catalog, through the engine-neutral trait.
    pub catalog: Arc<dyn TieringCatalog>,
    /// The engine behind `catalog` (SQLite or PostgreSQL), for its name and closing it
    /// cleanly.
    pub engine: EngineCatalog,
    /// Objects and tier usage.
    pub index: ObjectIndex,
    /// Per-key read/write locks.
    pub locks: KeyLocks,
    /// Per-key gates of PUTs streaming their bytes.
    pub uploads: KeyGates,
    /// The group commit of object writes.
    pub commits: crate::group_commit::GroupCommit,
    /// Access statistics.
    pub tracker: Mutex<AccessTracker>,
    /// Held for the whole of an access statistics flush ([`crate::access::flush`]): two
    /// flushes committing out of order would store an older position or statistics row
    /// over a newer one.
    pub flushing: tokio::sync::Mutex<()>,
    /// Counters.
    pub metrics: Metrics,
    /// The sources of access events (the batch endpoint, `--events` streams): counters
    /// and the Kafka positions waiting for the next flush.
    pub streams: crate::streams::StreamRegistry,
    /// Job transitions for `/v1/events`.
    pub events: broadcast::Sender<JobEvent>,
    /// Request bounds.
    pub limits: Limits,
    /// Connection bounds and request timeouts.
    pub http: crate::http::HttpLimits,
    /// Retry policy of store calls.
    pub backoff: Backoff,
    /// Move jobs.
    pub mover: Mover,
    /// Woken when spikes are detected: the reactive pass runs at once.
    pub planner_wake: Notify,
    /// How often the periodic planning pass runs.
    pub plan_interval: Duration,
    /// Decisions to write.
    pub decisions: Mutex<DecisionLog>,
    /// Copies of deleted objects whose bytes could not be deleted yet: (key, tier index).
    pub retire_backlog: Mutex<HashSet<(String, TierId)>>,
    /// Becomes true when the service shuts down (ends event streams).
    pub shutdown: watch::Receiver<bool>,
    /// The forecast: access history, the model in force, the proactive cycle.
    pub forecast: crate::forecast::ForecastState,
    /// The figures over time the dashboard charts (`GET /v1/trends`).
    pub trends: crate::trends::Trends,
    /// The throttle of moves (`[bandwidth]`), for `/healthz` and `/metrics`.
    pub bandwidth: Option<strata_store::BandwidthControl>,
    /// Keys with an unfinished `lazy_reencode` job planned by this process
    /// ([`crate::redundancy_worker`]): one job per key, at most a bounded number.
    pub reencodes: Mutex<std::collections::HashSet<String>>,
    /// Keys whose `lazy_reencode` failed, and when (ms): reads do not plan another for
    /// [`crate::redundancy_worker::REPLAN_FAILED_AFTER_MS`] (a full or failing domain
    /// would otherwise fail one job per read); an operator can retry the failed job.
    pub reencode_failures: Mutex<std::collections::HashMap<String, i64>>,
    /// The turn of `lazy_reencode` jobs: one permit, held by the one running; the others
    /// wait for it in order (tokio's semaphore is fair).
    pub reencode_turn: tokio::sync::Semaphore,
    /// Where re-encodes and repairs run: at the lowest CPU priority.
    pub background: crate::background::Background,
    /// Object requests in flight, which re-encodes wait to be over.
    pub foreground: Arc<crate::background::Foreground>,
    /// Tokens, Host and Origin checks, the audit log ([`crate::auth`]).
    pub access: crate::auth::AccessControl,
}

impl AppState {
    /// A tier by name.
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|tier| tier.name() == name)
    }

    /// The tier new objects land on.
    pub fn default_tier(&self) -> &Tier {
        self.tier(&self.config.default_tier)
            .unwrap_or(&self.tiers[TierId::from_index(self.tiers.len() / 2)])
    }

    /// The tier a new object of `key` lands on: the default tier, or the allowed tier
    /// nearest it when the key's `[[policy]]` forbids the default one.
    pub fn new_object_tier(&self, key: &str) -> &Tier {
        let default = self.default_tier();
        let policy = self.policies.matching(key);
        let index = self.policies.initial_tier(policy, default.id.index());
        if index == default.id.index() {
            return default;
        }
        &self.tiers[TierId::from_index(index)]
    }

    /// The bytes the planner books for an object: the most its copy can take on any tier
    /// (its raw size; on a packed tier, plus a frame header and table entry per chunk and
    /// the trailer), so a move never lands where it does not fit, and never less than its
    /// current copy takes. Tier usage counts stored bytes; this is their upper bound.
    pub fn planning_size(&self, entry: &ObjectEntry) -> u64 {
        self.tiers
            .iter()
            .map(|tier| tier.format.stored_bound(entry.size))
            .max()
            .unwrap_or(entry.size)
            .max(entry.stored)
    }

    /// Bytes committed on the tier `name` for planning: stored bytes of its current copies
    /// plus the reservations of moves running into it.
    pub fn committed_bytes(&self, usage: &[TierUsage], name: &str) -> u64 {
        self.tier(name)
            .and_then(|tier| usage.get(tier.id.index()))
            .map_or(0, |u| u.bytes.saturating_add(u.incoming_bytes))
    }

    /// Sends a job transition to subscribers (none listening is fine).
    pub fn emit(&self, event: JobEvent) {
        let _ = self.events.send(event);
    }

    /// Counts a retried store call and logs it.
    pub fn note_retry(&self, what: &str, error: &dyn std::fmt::Display, attempt: u32) {
        self.metrics
            .store_retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(%error, attempt, "retrying {what}");
    }

    /// Values for `/metrics`.
    pub fn gauges(&self) -> Gauges {
        let usage = self.index.usage();
        let (tracked, dirty) = {
            let tracker = lock(&self.tracker);
            (tracker.len() as u64, tracker.dirty_len() as u64)
        };
        Gauges {
            tiers: self
                .tiers
                .iter()
                .zip(usage)
                .map(|(tier, usage)| {
                    (
                        tier.name().to_string(),
                        usage.bytes,
                        usage.objects,
                        usage.incoming_bytes,
                        tier.config.capacity,
                        tier.config.cost_per_gb_month,
                    )
                })
                .collect(),
            objects: self.index.len() as u64,
            tracked,
            dirty,
            moves_running: self.mover.running_count() as u64,
            throttles: self.throttle_gauges(),
            degraded_reads: self.degraded_reads(),
            store_ops: self.store_ops(),
        }
    }

    /// Per tier store: its backend's counts of each operation.
    fn store_ops(&self) -> Vec<(String, usize, strata_store::StoreOp, strata_store::OpStats)> {
        let mut ops = Vec::new();
        for tier in self.tiers.iter() {
            for (domain, metrics) in tier.store_metrics.iter().enumerate() {
                for op in strata_store::StoreOp::ALL {
                    ops.push((tier.name().to_string(), domain, op, metrics.get(op)));
                }
            }
        }
        ops
    }

    /// Per tier with failure domains: its degraded reads so far (client reads and moves).
    fn degraded_reads(&self) -> Vec<(String, u64)> {
        self.tiers
            .iter()
            .filter_map(|tier| {
                let handles = [&tier.store, &tier.moves.source, &tier.moves.target];
                let counts: Option<Vec<u64>> = handles
                    .iter()
                    .map(|handle| {
                        handle.domains().map(|domains| {
                            domains
                                .store
                                .counters()
                                .degraded_reads
                                .load(std::sync::atomic::Ordering::Relaxed)
                        })
                    })
                    .collect();
                counts.map(|counts| (tier.name().to_string(), counts.iter().sum()))
            })
            .collect()
    }

    /// Unfinished `lazy_reencode` jobs the service planned (by key).
    pub fn reencodes_queued(&self) -> usize {
        lock(&self.reencodes).len()
    }

    /// Per tier store and lane: bytes through the moves' throttle and its limit in force.
    fn throttle_gauges(&self) -> Vec<(String, &'static str, u64, Option<u64>)> {
        let Some(control) = &self.bandwidth else {
            return Vec::new();
        };
        let mut gauges = Vec::new();
        for store in control.status().stores {
            let s = store.status;
            for (direction, lane) in [("read", s.read), ("write", s.write)] {
                gauges.push((
                    store.store.clone(),
                    direction,
                    lane.admitted_bytes,
                    lane.cap,
                ));
            }
        }
        gauges
    }
}
