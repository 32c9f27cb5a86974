//! Predictions of the next window: each object's history replayed into strata-heat's
//! feature store, its features taken at the next window boundary and given to the model.
//! The class is that of the tier strata-heat's optimiser (`cheapest_tier`) finds cheapest
//! for the forecast; the confidence is the model's training precision for a "read"
//! forecast (a predicted count at or above its threshold), its negative predictive value
//! for "not read". `GET /v1/predictions/{key}` and `POST /v1/model/train` live here.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use strata_catalog::HistoryBucket;
use strata_heat::forecast::{FeatureStore, ForecastSettings, FEATURES, FEATURE_NAMES};
use strata_heat::optimise::{cheapest_tier, Demand, TierChoice};
use strata_heat::TierId;

use super::store::{self, LoadedModel};
use super::train::{self, Interner};
use crate::error::ApiError;
use crate::index::ObjectEntry;
use crate::objects::ObjectKey;
use crate::state::{lock, now_ms, AppState};

/// Features shown as having driven a forecast.
const DRIVERS: usize = 3;

/// One object's forecast.
#[derive(Clone, Debug)]
pub struct ObjectForecast {
    /// Predicted reads in the next window (0 for an idle object).
    pub predicted_reads: f64,
    /// Idle longer than the forecast's horizon (48 windows): assumed unread, not forecast.
    pub idle: bool,
    /// Its features at the boundary (empty without history).
    pub row: Vec<f64>,
}

/// Forecasts of objects at the next window boundary.
#[derive(Debug)]
pub struct Forecasts {
    /// The boundary: the start of the window forecast.
    pub window_start_ms: i64,
    /// The window, ms.
    pub window_ms: i64,
    /// Per object, in the order asked.
    pub objects: Vec<ObjectForecast>,
}

/// Forecasts `objects` (key, size) from `buckets` (their history, ordered by hour) with
/// `model`, everything before `now_ms` recorded.
pub fn forecast(
    model: &LoadedModel,
    buckets: &[HistoryBucket],
    objects: &[(&str, u64)],
    now_ms: i64,
) -> Forecasts {
    let window_ms = model.info.window_ms.max(1);
    let start = now_ms.div_euclid(window_ms) * window_ms;
    let start = if start < now_ms {
        start + window_ms
    } else {
        start
    };
    let sizes: HashMap<String, u64> = objects
        .iter()
        .map(|(key, size)| (key.to_string(), *size))
        .collect();
    let mut store = FeatureStore::new(window_ms);
    let mut ids = Interner::default();
    for hour in buckets.chunk_by(|a, b| a.hour_ms == b.hour_ms) {
        let mut requests = Vec::new();
        for bucket in hour {
            let counts = ids.counts(bucket, &sizes);
            requests.extend(strata_heat::forecast::offline::hour_requests(
                &counts,
                start.min(now_ms + 1),
            ));
        }
        requests.sort_by_key(|r| r.time_ms);
        for request in &requests {
            store.record(request);
        }
    }
    let horizon = i64::from(ForecastSettings::default().active_windows) * window_ms;
    let mut rows = Vec::new();
    let mut out = Vec::with_capacity(objects.len());
    let mut active = Vec::new();
    for (i, (key, size)) in objects.iter().enumerate() {
        let id = ids.id(key);
        let mut row = Vec::with_capacity(FEATURES);
        store.features(id, *size, start, &mut row);
        let idle = store
            .last_access_ms(id)
            .is_none_or(|last| start - last > horizon);
        if !idle {
            rows.extend_from_slice(&row);
            active.push(i);
        }
        out.push(ObjectForecast {
            predicted_reads: 0.0,
            idle,
            row,
        });
    }
    for (i, reads) in active.into_iter().zip(model.model.predict(&rows)) {
        out[i].predicted_reads = reads;
    }
    Forecasts {
        window_start_ms: start,
        window_ms,
        objects: out,
    }
}

/// A feature and how much it moved the forecast: the forecast minus the forecast with
/// that feature unknown (the trees' missing-value branch).
#[derive(Clone, Debug, Serialize)]
pub struct Driver {
    /// The feature.
    pub feature: &'static str,
    /// This object's value (`null` when unknown).
    pub value: Option<f64>,
    /// Predicted reads it adds (negative: it lowers the forecast).
    pub effect: f64,
}

/// The [`DRIVERS`] features that moved this row's forecast most.
pub fn drivers(model: &LoadedModel, row: &[f64], predicted: f64) -> Vec<Driver> {
    if row.len() != FEATURES {
        return Vec::new();
    }
    let mut probes = Vec::with_capacity(FEATURES * FEATURES);
    for column in 0..FEATURES {
        let mut probe = row.to_vec();
        probe[column] = f64::NAN;
        probes.extend(probe);
    }
    let without = model.model.predict(&probes);
    let mut found: Vec<Driver> = FEATURE_NAMES
        .iter()
        .zip(row)
        .zip(without)
        .map(|((&feature, &value), without)| Driver {
            feature,
            value: value.is_finite().then_some(value),
            effect: predicted - without,
        })
        .collect();
    found.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
    found.truncate(DRIVERS);
    found
}

/// The class of a tier: the first of hot, warm, cold whose tiers include it.
pub fn class_of(state: &AppState, tier: TierId) -> &'static str {
    let classes = state.config.class_tiers();
    if classes.hot.contains(&tier.index()) {
        "hot"
    } else if classes.cold.contains(&tier.index()) {
        "cold"
    } else {
        "warm"
    }
}

/// The optimiser's choice for an object expected to be read `reads` times a window; with
/// `residency`, a demotion minimum residency holds back is not chosen.
pub fn choose(
    state: &AppState,
    entry: &ObjectEntry,
    reads: f64,
    window_ms: i64,
    now_ms: i64,
    residency: bool,
) -> TierChoice {
    let demand = Demand {
        size: entry.size,
        from: entry.tier.index(),
        placed_at_ms: if residency { entry.placed_ms } else { i64::MIN },
        reads_per_window: reads,
    };
    let prices = strata_heat::cost::CostModel::new(&state.config);
    cheapest_tier(&prices, &demand, now_ms, window_ms, |tier| {
        state.tiers.get(TierId::from_index(tier)).map_or(0, |t| {
            i64::try_from(t.config.min_residency.as_millis()).unwrap_or(i64::MAX)
        })
    })
}

/// One object's forecast as the API and `strata explain` show it.
pub fn view(
    state: &AppState,
    model: &LoadedModel,
    key: &str,
    entry: &ObjectEntry,
    forecasts: &Forecasts,
    now_ms: i64,
) -> serde_json::Value {
    let Some(forecast) = forecasts.objects.first() else {
        return serde_json::Value::Null;
    };
    let info = &model.info;
    let reads = forecast.predicted_reads;
    let read = reads >= info.threshold;
    let wanted = choose(state, entry, reads, forecasts.window_ms, now_ms, false);
    let placement = choose(state, entry, reads, forecasts.window_ms, now_ms, true);
    let features: serde_json::Map<String, serde_json::Value> = FEATURE_NAMES
        .iter()
        .zip(&forecast.row)
        .map(|(name, value)| (name.to_string(), serde_json::json!(value)))
        .collect();
    let drivers = if forecast.idle {
        Vec::new()
    } else {
        drivers(model, &forecast.row, reads)
    };
    serde_json::json!({
        "key": key,
        "predicted_reads": reads,
        "read": read,
        "idle": forecast.idle,
        "class": class_of(state, wanted.tier_id()),
        "tier": state.tiers[wanted.tier_id()].name(),
        "confidence": if read { info.precision } else { info.negative_predictive_value },
        "confidence_kind": if read { "precision" } else { "negative_predictive_value" },
        "threshold": info.threshold,
        "model_version": info.version,
        "window_ms": forecasts.window_ms,
        "window_start_ms": forecasts.window_start_ms,
        "features": features,
        "drivers": drivers,
        "placement": {
            "current_tier": state.tiers[entry.tier].name(),
            "chosen_tier": state.tiers[placement.tier_id()].name(),
            "saving_per_window": placement.saving_per_window,
            "cost_per_window": placement.cost_per_window,
        },
    })
}

/// The history of one key since the retention: the catalog's rows plus the counts not yet
/// flushed.
pub async fn key_history(
    state: &AppState,
    key: &str,
    now_ms: i64,
) -> Result<Vec<HistoryBucket>, ApiError> {
    let since = now_ms.saturating_sub(state.config.forecast.history_ms());
    let mut buckets = state.catalog.access_history(since, Some(key)).await?;
    for pending in lock(&state.forecast.history).pending_for(key) {
        match buckets.iter_mut().find(|b| b.hour_ms == pending.hour_ms) {
            Some(b) => {
                b.reads += pending.reads;
                b.writes += pending.writes;
                b.bytes += pending.bytes;
            }
            None => buckets.push(pending),
        }
    }
    buckets.sort_by_key(|b| b.hour_ms);
    Ok(buckets)
}

/// One object's forecast, or why there is none (`Err`: the fallback sentence).
pub async fn object_view(
    state: &AppState,
    key: &str,
    entry: &ObjectEntry,
) -> Result<Result<serde_json::Value, String>, ApiError> {
    let model = match state.forecast.model() {
        Ok(model) => model,
        Err(reason) => return Ok(Err(reason)),
    };
    let now = now_ms();
    let buckets = key_history(state, key, now).await?;
    let forecasts = forecast(&model, &buckets, &[(key, entry.size)], now);
    Ok(Ok(view(state, &model, key, entry, &forecasts, now)))
}

/// `GET /v1/predictions/{key}`: the object's forecast for the next window.
pub async fn predictions(
    State(state): State<Arc<AppState>>,
    ObjectKey(key): ObjectKey,
) -> Result<Json<serde_json::Value>, ApiError> {
    let entry = state
        .index
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("no object {key:?}")))?;
    match object_view(&state, &key, &entry).await? {
        Ok(view) => Ok(Json(view)),
        Err(reason) => Err(ApiError::unavailable("no_model", reason)),
    }
}

/// `POST /v1/model/train`: trains on the access history (flushed first), stores the model
/// as the next version and puts it in force.
pub async fn train_now(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Ok(_training) = state.forecast.training.try_lock() else {
        return Err(ApiError::conflict(
            "training_running",
            "a training is already running; wait for its answer and ask again",
        ));
    };
    if let Err(err) = crate::access::flush(&state).await {
        tracing::warn!(%err, "access flush before training failed; training on what is stored");
    }
    let now = now_ms();
    let since = now.saturating_sub(state.config.forecast.history_ms());
    let buckets = state.catalog.access_history(since, None).await?;
    let sizes: HashMap<String, u64> = state
        .index
        .snapshot()
        .into_iter()
        .map(|(key, entry)| (key, entry.size))
        .collect();
    let window_ms = state.config.forecast.window_ms();
    let source = format!("access history of {}", state.engine.path().display());
    let dir = state.forecast.dir().to_path_buf();
    let saved = tokio::task::spawn_blocking(move || {
        let mut trained = train::from_history(&buckets, &sizes, window_ms, now, source)?;
        let saved = store::save(&dir, &trained.model, &mut trained.info)?;
        Ok::<_, String>((saved, trained.info))
    })
    .await
    .map_err(|err| ApiError::internal(format!("the training task failed: {err}")))?
    .map_err(|reason| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "cannot_train", reason))?;
    let (saved, info) = saved;
    // Put it in force now (a damaged file would say so here).
    if let Err(reason) = state.forecast.model() {
        return Err(ApiError::internal(reason));
    }
    tracing::info!(version = saved.version, path = %saved.path.display(), rows = info.rows,
        "forecast model trained");
    Ok(Json(serde_json::json!({
        "version": saved.version,
        "file": saved.path,
        "size_bytes": saved.size_bytes,
        "metrics": info,
    })))
}
