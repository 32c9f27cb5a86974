//! The background half of redundant tiers: what a read found is dealt with here, after the
//! reader has its bytes.
//!
//! Reads of a tier with failure domains post a [`ReadNotice`] (see [`crate::tier_store`]).
//! This loop takes each one and:
//!
//! - **lazy rebuild**: a read served through missing or damaged domains (degraded) has the
//!   object repaired (`RedundantStore::repair`: the lost replicas or fragments rewritten
//!   from the good ones, verified before they are published), at most
//!   [`REPAIR_CONCURRENCY`] at a time, one repair per object at once, through the tier's
//!   move stores (under the `[bandwidth]` throttle);
//! - **lazy re-encode**: a read of an object whose encoding is not the one its class asks
//!   for on that tier (`[redundancy]`, e.g. `hot = "replicate:3"`, `cold = "ec:4+2"`) plans
//!   a move job from the tier to itself with reason `lazy_reencode`, which the mover runs
//!   like any other job but one at a time, each once no object request has been in
//!   flight for a moment (`crate::background::Foreground`; under the bandwidth policy,
//!   visible in `strata jobs`, resumed after a crash); at most [`MAX_REENCODES_QUEUED`]
//!   such jobs are unfinished at once, a read beyond that plans nothing (the next read
//!   asks again), and a key whose re-encode failed is not planned again for
//!   [`REPLAN_FAILED_AFTER_MS`].
//!
//! The class is the rules' classification of the object's access statistics (the same
//! one the planner and `strata explain` use).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use strata_catalog::{CreatedMove, MoveSpec};
use strata_heat::{AccessSummary, Class, TierId};
use strata_redundancy::Redundancy;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::state::{lock, now_ms, AppState};
use crate::tier_store::ReadNotice;

/// Read notices waiting at most; a read that finds the queue full posts nothing (the
/// next read of the object asks again), so a burst of reads never grows memory.
pub const NOTICE_QUEUE: usize = 4096;
/// Repairs running at once.
pub const REPAIR_CONCURRENCY: usize = 2;
/// Unfinished `lazy_reencode` jobs at most; reads beyond that plan none.
pub const MAX_REENCODES_QUEUED: usize = 64;
/// How long after a key's `lazy_reencode` failed reads plan none for it (ten minutes).
pub const REPLAN_FAILED_AFTER_MS: i64 = 10 * 60 * 1000;
/// The reason code of re-encode jobs.
pub const LAZY_REENCODE: &str = "lazy_reencode";

/// The rules' class of `key` now.
pub fn class_of(state: &AppState, key: &str) -> Class {
    let now = now_ms();
    let summary = lock(&state.tracker)
        .summary(key, now)
        .unwrap_or(AccessSummary::never_accessed(now));
    state.config.classification_rules().classify(&summary).class
}

/// Takes read notices until shutdown.
pub async fn redundancy_loop(
    state: Arc<AppState>,
    mut notices: mpsc::Receiver<ReadNotice>,
    mut shutdown: watch::Receiver<bool>,
) {
    let repairs = Arc::new(Semaphore::new(REPAIR_CONCURRENCY));
    let repairing: Arc<Mutex<HashSet<(TierId, String)>>> = Arc::default();
    loop {
        let notice = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            notice = notices.recv() => match notice {
                Some(notice) => notice,
                None => break,
            },
        };
        if notice.degraded {
            start_repair(&state, &repairs, &repairing, &notice);
        }
        if let Err(err) = consider_reencode(&state, &notice).await {
            tracing::warn!(rel = %notice.rel, %err, "cannot plan a lazy re-encode");
        }
    }
}

/// Repairs the object of a degraded read in the background (once at a time per object).
fn start_repair(
    state: &Arc<AppState>,
    repairs: &Arc<Semaphore>,
    repairing: &Arc<Mutex<HashSet<(TierId, String)>>>,
    notice: &ReadNotice,
) {
    let Some(tier) = state.tiers.get(notice.tier) else {
        return;
    };
    let Some(domains) = tier.moves.target.domains() else {
        return;
    };
    let id = (notice.tier, notice.rel.clone());
    if !lock(repairing).insert(id.clone()) {
        return;
    }
    let store = domains.store.clone();
    let (state, repairs, repairing) = (
        Arc::clone(state),
        Arc::clone(repairs),
        Arc::clone(repairing),
    );
    tokio::spawn(async move {
        if let Ok(_permit) = repairs.acquire().await {
            // As a re-encode: no write of the key may stage or publish meanwhile.
            let key = id.1.strip_prefix("objects/").unwrap_or(&id.1).to_string();
            let _gate = state.uploads.enter(&key).await;
            let _reading = state.locks.read(&key).await;
            let rel = id.1.clone();
            // Only bytes that are the object the catalog knows are copied into new pieces.
            let expected = state
                .index
                .get(&key)
                .filter(|entry| entry.tier == id.0)
                .map(|entry| entry.hash);
            let repaired = state
                .background
                .run(async move { store.repair(&rel, expected.as_ref()).await })
                .await;
            match repaired {
                // The service is stopping: the next read after the start asks again.
                None => {}
                Some(Ok(outcome)) => {
                    state
                        .metrics
                        .redundancy_repairs
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(rel = %id.1, ?outcome, "repaired after a degraded read");
                }
                Some(Err(err)) => {
                    state
                        .metrics
                        .redundancy_repair_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(rel = %id.1, %err, "a degraded object could not be repaired");
                }
            }
        }
        lock(&repairing).remove(&id);
    });
}

/// Plans a `lazy_reencode` job when the object read is not encoded as its class asks.
async fn consider_reencode(state: &AppState, notice: &ReadNotice) -> Result<(), String> {
    let Some(tier) = state.tiers.get(notice.tier) else {
        return Ok(());
    };
    let Some(key) = notice.rel.strip_prefix("objects/") else {
        return Ok(());
    };
    let Some(wanted) = tier.wanted_redundancy(class_of(state, key)) else {
        return Ok(());
    };
    if wanted == notice.encoding
        || state.mover.running(key).is_some()
        || lock(&state.reencodes).contains(key)
        || failed_lately(state, key)
    {
        return Ok(());
    }
    let Some(entry) = state.index.get(key) else {
        return Ok(());
    };
    if entry.tier != tier.id || state.reencodes_queued() >= MAX_REENCODES_QUEUED {
        return Ok(());
    }
    let mut spec = reencode_spec(
        tier.name(),
        key,
        entry.generation,
        entry.size,
        notice.encoding,
        wanted,
    );
    let mut created = create(state, &spec).await?;
    if let CreatedMove::Existing(job) = &created {
        if !job.state.is_active() {
            // The same re-encode of this version ended before (done, then the class
            // changed back; cancelled; or an object deleted and written again with its
            // generation): this one is new.
            spec.idempotency_key = format!("{}:again-at:{}", spec.idempotency_key, now_ms());
            created = create(state, &spec).await?;
        }
    }
    match created {
        CreatedMove::Created(job) | CreatedMove::Existing(job) if job.state.is_active() => {
            tracing::info!(job = job.id, %key, from = %notice.encoding, to = %wanted,
                "lazy re-encode planned");
            lock(&state.reencodes).insert(key.to_string());
            state.mover.enqueue(job.id);
        }
        _ => {}
    }
    Ok(())
}

/// Whether `key`'s last re-encode failed less than [`REPLAN_FAILED_AFTER_MS`] ago.
fn failed_lately(state: &AppState, key: &str) -> bool {
    lock(&state.reencode_failures)
        .get(key)
        .is_some_and(|&at| now_ms() - at < REPLAN_FAILED_AFTER_MS)
}

/// Records how a re-encode of `key` ended: a failure holds off new plans for the key
/// for a while ([`failed_lately`]); anything else clears it. Old failures are forgotten.
pub fn reencode_ended(state: &AppState, key: &str, failed: bool) {
    let mut failures = lock(&state.reencode_failures);
    let now = now_ms();
    failures.retain(|_, at| now - *at < REPLAN_FAILED_AFTER_MS);
    if failed {
        failures.insert(key.to_string(), now);
    } else {
        failures.remove(key);
    }
}

async fn create(state: &AppState, spec: &MoveSpec) -> Result<CreatedMove, String> {
    state
        .catalog
        .create_move(spec, now_ms())
        .await
        .map_err(|err| err.to_string())
}

/// The job of re-encoding `key` on `tier` from `from` to `to`.
fn reencode_spec(
    tier: &str,
    key: &str,
    generation: i64,
    size: u64,
    from: Redundancy,
    to: Redundancy,
) -> MoveSpec {
    MoveSpec {
        idempotency_key: format!("{LAZY_REENCODE}:{tier}:{key}:{generation}:{to}"),
        key: key.to_string(),
        from_tier: tier.to_string(),
        to_tier: tier.to_string(),
        generation,
        size,
        reason: LAZY_REENCODE.to_string(),
        explanation: format!(
            "a read found the object stored as {from} on tier {tier:?}, and its class asks \
             for {to} there; it is re-encoded in the background (written and verified as \
             {to} before the {from} pieces are removed)"
        ),
        inputs_json: serde_json::json!({ "from": from.to_string(), "to": to.to_string() })
            .to_string(),
        after: Vec::new(),
    }
}
