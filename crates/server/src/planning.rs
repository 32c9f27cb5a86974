//! Decisions: classify objects from their access statistics (strata-heat's rules), plan
//! placements that never overfill a tier, and turn each planned move into a job.
//!
//! Two passes:
//!
//! - **reactive**, as soon as ingest reports a spike: only the spiking objects (and the
//!   residents of the hot tiers, when those have a capacity, as eviction candidates) are
//!   planned with `plan_spikes`, so a burst is promoted at once with reason
//!   `reactive_access_spike`;
//! - **periodic**, every `rules.demotion_interval` (or `--plan-interval`): every object not
//!   already moving, promotions and demotions (minimum residency respected), then the cost
//!   optimiser's moves (reason `cost_optimisation`, [`crate::cost_plan`]) and the plan's
//!   projected monthly cost.
//!
//! Sizes: tiers' usage counts stored bytes (compressed on packed tiers); an object is
//! booked at [`AppState::planning_size`], the most its copy can take on any tier, since
//! what it takes on a packed tier is known only once it is encoded. The mover checks the
//! exact stored size against the target's capacity before writing the copy.
//!
//! Every move planned becomes a job whose idempotency key names the object, its
//! generation, its placement and the target, so the same decision made twice makes one
//! job. Every move and every wait is recorded as a decision with its reason and inputs
//! (waits only when they change), which is what `strata explain` reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use strata_catalog::{
    CreatedMove, DecisionRecord, JobState, MoveFilter, MoveId, MoveSpec, RetriedMove,
};
use strata_heat::{AccessSummary, ObjectState, PlacementPlan, TierId};
use tokio::sync::watch;

use crate::cost_plan::{expected_reads_per_window, CostProjection, PassObjects, WINDOW_MS};
use crate::error::ApiError;
use crate::index::ObjectEntry;
use crate::state::{lock, now_ms, AppState};

/// A failed move re-planned by a later pass is retried automatically up to this many
/// attempts in all; after that only an operator's retry runs it again.
const MAX_AUTO_ATTEMPTS: u32 = 3;

/// Which objects a pass plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything: promotions, demotions, relief of over-full tiers.
    Full,
    /// Objects whose spike started since the last reactive pass.
    Spikes,
}

/// A pass's plan and the jobs it created.
#[derive(Debug, Serialize)]
pub struct PassResult {
    /// The plan.
    pub plan: PlacementPlan,
    /// Jobs created (or found again) for its moves.
    pub jobs: Vec<MoveId>,
    /// The plan's projected monthly cost before and after, and each move's saving (full
    /// passes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub costs: Option<CostProjection>,
}

/// The idempotency key of a move: object, generation, placement, target.
pub fn idempotency_key(key: &str, entry: &ObjectEntry, from: &str, to: &str) -> String {
    format!(
        "move:{key}:g{}:{from}@{}->{to}",
        entry.generation, entry.placed_ms
    )
}

/// Runs one pass; with `execute`, records and queues its moves and decisions.
pub async fn run_pass(
    state: &AppState,
    scope: Scope,
    execute: bool,
) -> Result<PassResult, ApiError> {
    let now = now_ms();
    let moving: HashSet<String> = state
        .catalog
        .move_jobs(&MoveFilter {
            active_only: true,
            ..MoveFilter::default()
        })
        .await?
        .into_iter()
        .map(|job| job.key)
        .collect();
    let candidates: Vec<(String, ObjectEntry)> = match scope {
        Scope::Full => state.index.snapshot(),
        Scope::Spikes => {
            let spiking = lock(&state.tracker).take_spikes();
            let mut chosen: BTreeMap<String, ObjectEntry> = spiking
                .iter()
                .filter_map(|key| state.index.get(key).map(|entry| (key.to_string(), entry)))
                .collect();
            if !chosen.is_empty() {
                for tier in state
                    .config
                    .class_tiers()
                    .hot
                    .iter()
                    .map(|&t| TierId::from_index(t))
                {
                    if state.tiers[tier].config.capacity.is_some() {
                        chosen.extend(state.index.on_tier(tier));
                    }
                }
            }
            chosen.into_iter().collect()
        }
    };
    let rules = state.config.classification_rules();
    let (states, reads): (Vec<ObjectState>, Vec<f64>) = {
        let tracker = lock(&state.tracker);
        candidates
            .iter()
            .filter(|(key, _)| !moving.contains(key))
            .map(|(key, entry)| {
                let summary = tracker
                    .summary(key, now)
                    .unwrap_or(AccessSummary::never_accessed(now));
                let object = ObjectState {
                    key: key.clone(),
                    size: state.planning_size(entry),
                    tier: state.tiers[entry.tier].name().to_string(),
                    placed_at_ms: entry.placed_ms,
                    decision: rules.classify(&summary),
                };
                (object, expected_reads_per_window(&summary, WINDOW_MS))
            })
            .unzip()
    };
    let usage = state.index.usage();
    let planner = state
        .config
        .planner(|name| state.committed_bytes(&usage, name))
        .map_err(|err| ApiError::internal(format!("cannot plan: {err}")))?;
    let (plan, costs) = match scope {
        Scope::Full => {
            let mut plan = planner.plan(now, &states);
            let objects = PassObjects {
                states: &states,
                reads: &reads,
            };
            let costs =
                crate::cost_plan::optimise(&state.config, &planner, now, objects, &mut plan).await;
            (plan, Some(costs))
        }
        Scope::Spikes => (planner.plan_spikes(now, &states), None),
    };
    let counter = match scope {
        Scope::Full => &state.metrics.passes_periodic,
        Scope::Spikes => &state.metrics.passes_reactive,
    };
    if execute {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    let jobs = if execute && !(plan.moves.is_empty() && plan.waits.is_empty()) {
        let entries: HashMap<&str, &ObjectEntry> = candidates
            .iter()
            .map(|(key, entry)| (key.as_str(), entry))
            .collect();
        record_plan(state, &plan, &entries, now).await?
    } else {
        Vec::new()
    };
    Ok(PassResult { plan, jobs, costs })
}

async fn record_plan(
    state: &AppState,
    plan: &PlacementPlan,
    entries: &HashMap<&str, &ObjectEntry>,
    now: i64,
) -> Result<Vec<MoveId>, ApiError> {
    let mut ids: Vec<Option<MoveId>> = vec![None; plan.moves.len()];
    let mut jobs = Vec::new();
    for (index, planned) in plan.moves.iter().enumerate() {
        let Some(entry) = entries.get(planned.key.as_str()) else {
            continue;
        };
        let inputs_json = serde_json::to_string(&planned.inputs).unwrap_or_else(|_| "{}".into());
        let spec = MoveSpec {
            idempotency_key: idempotency_key(&planned.key, entry, &planned.from, &planned.to),
            key: planned.key.clone(),
            from_tier: planned.from.clone(),
            to_tier: planned.to.clone(),
            generation: entry.generation,
            size: entry.size,
            reason: planned.reason.code().to_string(),
            explanation: planned.explanation.clone(),
            inputs_json: inputs_json.clone(),
            after: planned.after.iter().filter_map(|&i| ids[i]).collect(),
        };
        let job = match state.catalog.create_move(&spec, now).await? {
            CreatedMove::Created(job) => {
                state.metrics.move_planned(planned.reason.code());
                lock(&state.decisions).push(
                    DecisionRecord {
                        key: planned.key.clone(),
                        ts_ms: now,
                        class: planned.inputs.decision.class.as_str().to_string(),
                        reason: planned.reason.code().to_string(),
                        action: format!("move:{}->{}", planned.from, planned.to),
                        explanation: planned.explanation.clone(),
                        inputs_json,
                        job_id: Some(job.id),
                    },
                    false,
                );
                tracing::info!(job = job.id, key = %job.key, from = %job.from_tier,
                    to = %job.to_tier, reason = %job.reason, "move planned");
                Some(job)
            }
            CreatedMove::Existing(job)
                if job.state == JobState::Failed && job.attempts < MAX_AUTO_ATTEMPTS =>
            {
                match state.catalog.retry_move(job.id, now).await? {
                    RetriedMove::Retried(job) => Some(*job),
                    _ => None,
                }
            }
            CreatedMove::Existing(job) if job.state.is_active() => Some(job),
            CreatedMove::Existing(_) | CreatedMove::ObjectBusy(_) => None,
        };
        if let Some(job) = job {
            ids[index] = Some(job.id);
            state.mover.enqueue(job.id);
            jobs.push(job.id);
        }
    }
    let mut log = lock(&state.decisions);
    for wait in &plan.waits {
        let inputs = serde_json::json!({ "decision": wait.decision, "until_ms": wait.until_ms });
        log.push(
            DecisionRecord {
                key: wait.key.clone(),
                ts_ms: now,
                class: wait.decision.class.as_str().to_string(),
                reason: wait.reason.code().to_string(),
                action: format!("wait:{}->{}", wait.on, wait.wanted),
                explanation: wait.explanation.clone(),
                inputs_json: inputs.to_string(),
                job_id: None,
            },
            true,
        );
    }
    Ok(jobs)
}

/// Runs the reactive pass whenever spikes are reported and the periodic pass every
/// interval, until `shutdown`.
pub async fn planner_loop(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut next = tokio::time::Instant::now() + state.plan_interval;
    loop {
        let scope = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = state.planner_wake.notified() => Scope::Spikes,
            _ = tokio::time::sleep_until(next) => {
                next = tokio::time::Instant::now() + state.plan_interval;
                Scope::Full
            }
        };
        if let Err(err) = run_pass(&state, scope, true).await {
            tracing::warn!(?scope, error = %err.message, "planning pass failed");
        }
    }
}

/// `GET /v1/plan`: what a periodic pass would do now, without doing it.
pub async fn dry_run(State(state): State<Arc<AppState>>) -> Result<Json<PassResult>, ApiError> {
    Ok(Json(run_pass(&state, Scope::Full, false).await?))
}

/// `POST /v1/plan`: runs a periodic pass now and queues its moves.
pub async fn run_now(State(state): State<Arc<AppState>>) -> Result<Json<PassResult>, ApiError> {
    Ok(Json(run_pass(&state, Scope::Full, true).await?))
}
