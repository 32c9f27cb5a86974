//! The proactive cycle (`[forecast] proactive_interval`; off by default): every interval,
//! each object with access history and no unfinished move is forecast for the next
//! window, and moved to the tier strata-heat's optimiser (`cheapest_tier`) finds cheapest
//! for that many reads (storage, the reads' cost with latency price and miss penalty, the
//! move spread over the stay it commits to), with reason `proactive_prediction`: objects
//! forecast hot move up before the demand, objects forecast cold move down.
//!
//! As the rules planner does: a demotion minimum residency holds back is not asked for,
//! a move into a tier whose capacity (stored bytes plus moves running into it plus what
//! this cycle booked) cannot take the object is not made, at most `[rules]
//! max_moves_per_pass` moves a cycle (largest saving first), and every move is a move job
//! (copy, verify, switch, retire) with an idempotency key and a recorded decision. Without
//! a usable model the cycle does nothing and its status says why (`/healthz`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use strata_catalog::{CreatedMove, DecisionRecord, MoveFilter, MoveSpec};
use strata_heat::optimise::TierChoice;
use strata_heat::units::human_duration_ms;
use strata_heat::TierId;
use tokio::sync::watch;

use super::predict::{choose, class_of, forecast};
use super::store::LoadedModel;
use crate::index::ObjectEntry;
use crate::planning::idempotency_key;
use crate::state::{lock, now_ms, AppState};

/// The reason code of the cycle's moves.
pub const REASON: &str = "proactive_prediction";

/// Runs the cycle every `[forecast] proactive_interval` until `shutdown` (returns at once
/// when the cycle is off).
pub async fn proactive_loop(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let Some(interval) = state.config.forecast.proactive_interval else {
        lock(&state.forecast.cycle).status = "off: [forecast] proactive_interval is not set".into();
        return;
    };
    lock(&state.forecast.cycle).interval_ms = i64::try_from(interval.as_millis()).ok();
    let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        let now = now_ms();
        let (forecast, moves, status) = match run_cycle(&state, now).await {
            Ok(done) => done,
            Err(reason) => {
                tracing::warn!(%reason, "proactive cycle failed");
                (0, 0, format!("failed: {reason}"))
            }
        };
        let mut cycle = lock(&state.forecast.cycle);
        cycle.last_run_ms = Some(now);
        cycle.forecast = forecast;
        cycle.moves = moves;
        cycle.status = status;
    }
}

/// A move the cycle wants.
struct Wanted {
    key: String,
    entry: ObjectEntry,
    reads: f64,
    choice: TierChoice,
}

/// One cycle: (objects forecast, moves queued, a sentence).
pub async fn run_cycle(state: &AppState, now: i64) -> Result<(usize, usize, String), String> {
    let model = match state.forecast.model() {
        Ok(model) => model,
        Err(reason) => return Ok((0, 0, format!("idle: {reason}"))),
    };
    if let Err(err) = crate::access::flush(state).await {
        tracing::warn!(%err, "access flush before the proactive cycle failed");
    }
    let since = now.saturating_sub(state.config.forecast.history_ms());
    let buckets = state
        .catalog
        .access_history(since, None)
        .await
        .map_err(|err| err.to_string())?;
    let moving: HashSet<String> = state
        .catalog
        .move_jobs(&MoveFilter {
            active_only: true,
            ..MoveFilter::default()
        })
        .await
        .map_err(|err| err.to_string())?
        .into_iter()
        .map(|job| job.key)
        .collect();
    let with_history: HashSet<&str> = buckets.iter().map(|b| b.key.as_str()).collect();
    let objects: Vec<(String, ObjectEntry)> = state
        .index
        .snapshot()
        .into_iter()
        .filter(|(key, _)| with_history.contains(key.as_str()) && !moving.contains(key))
        .collect();
    let sizes: Vec<(&str, u64)> = objects
        .iter()
        .map(|(key, entry)| (key.as_str(), entry.size))
        .collect();
    let forecasts = forecast(&model, &buckets, &sizes, now);
    let mut wanted: Vec<Wanted> = objects
        .into_iter()
        .zip(&forecasts.objects)
        .filter_map(|((key, entry), f)| {
            let choice = choose(
                state,
                &entry,
                f.predicted_reads,
                forecasts.window_ms,
                now,
                true,
            );
            // Never toward a tier the key's `[[policy]]` forbids: the forecast's cheapest
            // tier is then no move at all (the rules pass keeps such objects on allowed tiers).
            let allowed = state
                .policies
                .allows(state.policies.matching(&key), choice.tier_id().index());
            (allowed && choice.tier_id() != entry.tier).then_some(Wanted {
                key,
                entry,
                reads: f.predicted_reads,
                choice,
            })
        })
        .collect();
    wanted.sort_by(|a, b| {
        b.choice
            .saving_per_window
            .total_cmp(&a.choice.saving_per_window)
    });
    let forecast_count = forecasts.objects.len();
    let (queued, no_room) = queue(state, &model, wanted, forecasts.window_ms, now).await?;
    let mut status = format!(
        "model {}: {forecast_count} objects forecast for the window starting in {}, {queued} \
         moves queued",
        model.info.version,
        human_duration_ms(forecasts.window_start_ms - now)
    );
    if no_room > 0 {
        status.push_str(&format!(", {no_room} left where they are for want of room"));
    }
    Ok((forecast_count, queued, status))
}

/// Books room and queues the moves, largest saving first: (queued, refused for room).
async fn queue(
    state: &AppState,
    model: &LoadedModel,
    wanted: Vec<Wanted>,
    window_ms: i64,
    now: i64,
) -> Result<(usize, usize), String> {
    let usage = state.index.usage();
    let mut booked: HashMap<TierId, u64> = HashMap::new();
    let (mut queued, mut no_room) = (0, 0);
    for want in wanted {
        if queued >= state.config.rules.max_moves_per_pass {
            break;
        }
        let to = want.choice.tier_id();
        let Some(target) = state.tiers.get(to) else {
            continue;
        };
        let size = state.planning_size(&want.entry);
        let used = state.committed_bytes(&usage, target.name()) + booked.get(&to).unwrap_or(&0);
        if target
            .config
            .capacity
            .is_some_and(|capacity| used.saturating_add(size) > capacity)
        {
            no_room += 1;
            continue;
        }
        if create_job(state, model, &want, window_ms, now).await? {
            *booked.entry(to).or_default() += size;
            queued += 1;
        }
    }
    Ok((queued, no_room))
}

/// Records the move job and its decision and queues it; false when an equal job exists
/// or the object has another unfinished one.
async fn create_job(
    state: &AppState,
    model: &LoadedModel,
    want: &Wanted,
    window_ms: i64,
    now: i64,
) -> Result<bool, String> {
    let from = state.tiers[want.entry.tier].name();
    let to = state.tiers[want.choice.tier_id()].name();
    let class = class_of(state, want.choice.tier_id());
    let info = &model.info;
    let read = want.reads >= info.threshold;
    let (confidence_kind, confidence) = if read {
        ("precision", info.precision)
    } else {
        ("negative predictive value", info.negative_predictive_value)
    };
    let direction = if want.choice.tier_id() < want.entry.tier {
        "up before the demand"
    } else {
        "down"
    };
    let explanation = format!(
        "forecast {:.1} reads in the next {} window (model {}, {confidence_kind} {:.0}%): \
         {class}; {to} is the cheapest tier for that, saving ${:.3e} a window over staying on \
         {from}, so it moves {direction}",
        want.reads,
        human_duration_ms(window_ms),
        info.version,
        confidence * 100.0,
        want.choice.saving_per_window,
    );
    let inputs_json = serde_json::json!({
        "predicted_reads": want.reads,
        "class": class,
        "confidence": confidence,
        "model_version": info.version,
        "window_ms": window_ms,
        "saving_per_window": want.choice.saving_per_window,
        "cost_per_window": want.choice.cost_per_window,
    })
    .to_string();
    let spec = MoveSpec {
        idempotency_key: idempotency_key(&want.key, &want.entry, from, to),
        key: want.key.clone(),
        from_tier: from.to_string(),
        to_tier: to.to_string(),
        generation: want.entry.generation,
        size: want.entry.size,
        reason: REASON.to_string(),
        explanation: explanation.clone(),
        inputs_json: inputs_json.clone(),
        after: Vec::new(),
    };
    let created = state
        .catalog
        .create_move(&spec, now)
        .await
        .map_err(|err| err.to_string())?;
    let CreatedMove::Created(job) = created else {
        return Ok(false);
    };
    state.metrics.move_planned(REASON);
    lock(&state.decisions).push(
        DecisionRecord {
            key: want.key.clone(),
            ts_ms: now,
            class: class.to_string(),
            reason: REASON.to_string(),
            action: format!("move:{from}->{to}"),
            explanation,
            inputs_json,
            job_id: Some(job.id),
        },
        false,
    );
    tracing::info!(job = job.id, key = %job.key, from, to, reason = REASON, "move planned");
    state.mover.enqueue(job.id);
    Ok(true)
}
