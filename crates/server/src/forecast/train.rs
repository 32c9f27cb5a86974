//! Training one model on a whole history: the catalog's access history (what the service
//! recorded) or a recorded trace (strata-heat's readers). Rows are labelled by strata-heat's
//! [`Labeler`] (features at each window boundary, target = reads in the window after), one
//! model is trained on all of them, and its metrics are measured on its own rows. CPU-bound
//! and synchronous: the service runs it in a blocking task.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use strata_catalog::HistoryBucket;
use strata_heat::forecast::offline::{hour_requests, HourCounts, Labeler, TrainingSet};
use strata_heat::forecast::{ForecastModel, ForecastSettings};
use strata_heat::trace::{TraceOptions, TraceReader, TraceRequest, DEFAULT_OBJECT_SIZE};

use super::store::ModelInfo;

/// A trained model and its information (version 0 until saved).
#[derive(Debug)]
pub struct Trained {
    /// The trees.
    pub model: ForecastModel,
    /// What it learned from and how well.
    pub info: ModelInfo,
}

/// Trains on the access history `buckets` (ordered by hour), with windows of `window_ms`
/// (at least an hour), everything before `now_ms` recorded. `sizes` gives the objects'
/// sizes (objects no longer held get [`DEFAULT_OBJECT_SIZE`]).
pub fn from_history(
    buckets: &[HistoryBucket],
    sizes: &HashMap<String, u64>,
    window_ms: i64,
    now_ms: i64,
    source: String,
) -> Result<Trained, String> {
    let started = Instant::now();
    if buckets.is_empty() {
        return Err(format!(
            "the {source} is empty: nothing to learn from; let the service record accesses \
             (reads, writes, POST /v1/access-events) for at least two windows, or train on a \
             trace with --trace FILE"
        ));
    }
    let mut labeler = Labeler::new(window_ms, ForecastSettings::default());
    let mut ids = Interner::default();
    for hour in buckets.chunk_by(|a, b| a.hour_ms == b.hour_ms) {
        feed_hour(&mut labeler, &mut ids, hour, sizes, now_ms);
    }
    finish(labeler.finish(now_ms), window_ms, source, started)
}

/// Feeds one hour of history to `labeler`, its requests in time order.
pub(super) fn feed_hour(
    labeler: &mut Labeler,
    ids: &mut Interner,
    hour: &[HistoryBucket],
    sizes: &HashMap<String, u64>,
    before_ms: i64,
) {
    let mut requests: Vec<TraceRequest> = Vec::new();
    for bucket in hour {
        let counts = ids.counts(bucket, sizes);
        requests.extend(hour_requests(&counts, before_ms));
    }
    requests.sort_by_key(|request| request.time_ms);
    for request in &requests {
        labeler.record(request);
    }
}

/// Keys to dense ids, in order of first appearance.
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    /// The id of `key`, new keys getting the next one.
    pub fn id(&mut self, key: &str) -> u32 {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        self.ids.insert(key.to_string(), id);
        id
    }

    /// A history bucket as strata-heat's counts.
    pub fn counts(&mut self, bucket: &HistoryBucket, sizes: &HashMap<String, u64>) -> HourCounts {
        HourCounts {
            object: self.id(&bucket.key),
            hour_ms: bucket.hour_ms,
            reads: u32::try_from(bucket.reads).unwrap_or(u32::MAX),
            writes: u32::try_from(bucket.writes).unwrap_or(u32::MAX),
            size: sizes
                .get(&bucket.key)
                .copied()
                .unwrap_or(DEFAULT_OBJECT_SIZE),
        }
    }
}

/// Trains on a recorded trace (any format strata-heat reads) with windows of `window_ms`.
pub fn from_trace(path: &Path, options: &TraceOptions, window_ms: i64) -> Result<Trained, String> {
    let started = Instant::now();
    let reader = TraceReader::open(path, options).map_err(|err| err.to_string())?;
    let mut labeler = Labeler::new(window_ms, ForecastSettings::default());
    let mut end_ms = 0;
    for request in reader {
        let request = request.map_err(|err| err.to_string())?;
        end_ms = request.time_ms;
        labeler.record(&request);
    }
    let source = format!("trace {}", path.display());
    finish(labeler.finish(end_ms), window_ms, source, started)
}

fn finish(
    set: TrainingSet,
    window_ms: i64,
    source: String,
    started: Instant,
) -> Result<Trained, String> {
    let model = set
        .train()
        .map_err(|err| format!("cannot train on the {source}: {err}"))?;
    let (precision, npv) = confidences(&model, &set);
    let metrics = &model.metrics;
    let info = ModelInfo {
        version: 0,
        trained_at_ms: crate::state::now_ms(),
        source,
        window_ms,
        training_seconds: started.elapsed().as_secs_f64(),
        rows: metrics.rows,
        objects: set.objects,
        windows: set.windows,
        positive_share: metrics.positive_share,
        rmse: metrics.rmse,
        f1: metrics.f1,
        precision,
        negative_predictive_value: npv,
        threshold: model.threshold,
    };
    Ok(Trained { model, info })
}

/// Precision of "read" and negative predictive value of "not read" at the model's
/// threshold, on the training rows (1 when a side has no prediction: nothing was wrong).
fn confidences(model: &ForecastModel, set: &TrainingSet) -> (f64, f64) {
    let predicted = model.predict(&set.rows);
    let (mut tp, mut fp, mut tn, mut fneg) = (0u64, 0u64, 0u64, 0u64);
    for (p, &y) in predicted.iter().zip(&set.reads) {
        match (*p >= model.threshold, y > 0.0) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fneg += 1,
        }
    }
    let share = |good: u64, bad: u64| {
        if good + bad == 0 {
            1.0
        } else {
            good as f64 / (good + bad) as f64
        }
    };
    (share(tp, fp), share(tn, fneg))
}
