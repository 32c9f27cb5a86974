//! Forecast of next-window reads per object, trained walk-forward ([`Forecaster`]): at each
//! window boundary only the history before it is used. See `docs/ARCHITECTURE.md`,
//! "Forecast".
//!
//! - [`features`]: per-object history and the feature row at a boundary;
//! - [`model`]: gradient-boosted trees over the rows, saved as versioned JSON;
//! - [`idle`]: the time to an object's next read, a walk-forward life table of idle time.

pub mod features;
pub mod idle;
pub mod model;
pub mod offline;

use crate::stats::Op;
use crate::trace::TraceRequest;

pub use features::{FeatureStore, FEATURES, FEATURE_NAMES};
pub use idle::IdleModel;
pub use model::{ForecastModel, ModelError, TrainingMetrics, MODEL_FORMAT_VERSION};

/// When to train and on what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForecastSettings {
    /// Windows of labelled rows before the first model.
    pub first_train_windows: u32,
    /// Windows between retrainings.
    pub retrain_every: u32,
    /// Training rows kept (the most recent).
    pub max_rows: usize,
    /// An object is forecast while its last access is within this many windows; older,
    /// it is assumed idle (no read in the next window) until its next access.
    pub active_windows: u32,
}

impl Default for ForecastSettings {
    fn default() -> Self {
        ForecastSettings {
            first_train_windows: 8,
            retrain_every: 8,
            max_rows: 200_000,
            // Two days of hourly windows: a daily pattern stays in view between its bursts.
            active_windows: 48,
        }
    }
}

/// What a boundary forecast.
#[derive(Clone, Debug, Default)]
pub struct Forecast {
    /// Active objects and their predicted reads in the window that starts (empty before
    /// the first model).
    pub predicted: Vec<(u32, f64)>,
    /// Objects that just became idle (no forecast, assumed unread).
    pub idle: Vec<u32>,
}

/// Walk-forward forecaster: records requests, and at each window boundary labels the rows
/// of the previous boundary with the reads of the window that ended, (re)trains when due,
/// and predicts the window that starts.
pub struct Forecaster {
    settings: ForecastSettings,
    store: FeatureStore,
    idle: IdleModel,
    active: Vec<u32>,
    in_active: Vec<bool>,
    /// Reads per object in `count_window`.
    window_reads: Vec<u32>,
    count_window: Vec<u32>,
    /// Rows of the last boundary awaiting their labels.
    pending_objects: Vec<u32>,
    pending_rows: Vec<f64>,
    pending_window: u32,
    train_rows: Vec<f64>,
    train_reads: Vec<f64>,
    labelled_windows: u32,
    trained_at: u32,
    model: Option<ForecastModel>,
    training_error: Option<String>,
    forecast: Forecast,
}

impl Forecaster {
    /// A forecaster for windows of `window_ms`.
    pub fn new(window_ms: i64, settings: ForecastSettings) -> Self {
        Forecaster {
            settings,
            store: FeatureStore::new(window_ms),
            idle: IdleModel::new(window_ms),
            active: Vec::new(),
            in_active: Vec::new(),
            window_reads: Vec::new(),
            count_window: Vec::new(),
            pending_objects: Vec::new(),
            pending_rows: Vec::new(),
            pending_window: 0,
            train_rows: Vec::new(),
            train_reads: Vec::new(),
            labelled_windows: 0,
            trained_at: 0,
            model: None,
            training_error: None,
            forecast: Forecast::default(),
        }
    }

    /// The current model, once trained.
    pub fn model(&self) -> Option<&ForecastModel> {
        self.model.as_ref()
    }

    /// Records a request (it must not be earlier than the last boundary).
    pub fn record(&mut self, request: &TraceRequest) {
        self.store.record(request);
        let index = request.object as usize;
        if self.in_active.len() <= index {
            self.in_active.resize(index + 1, false);
            self.window_reads.resize(index + 1, 0);
            self.count_window.resize(index + 1, u32::MAX);
        }
        if request.op == Op::Read {
            let window = self.window_of(request.time_ms);
            if self.count_window[index] != window {
                self.count_window[index] = window;
                self.window_reads[index] = 0;
            }
            self.window_reads[index] = self.window_reads[index].saturating_add(1);
        }
        if request.op != Op::Delete && !self.in_active[index] {
            self.in_active[index] = true;
            self.active.push(request.object);
        }
    }

    fn window_of(&self, time_ms: i64) -> u32 {
        u32::try_from(time_ms / self.store.window_ms()).unwrap_or(u32::MAX)
    }

    /// The window starting at `now_ms` begins: learn from the one that ended, then forecast
    /// the one that starts. `size` gives an object's size in bytes.
    /// A failed (re)training keeps the previous model, if any, and is kept in
    /// [`Forecaster::training_error`].
    pub fn boundary(&mut self, now_ms: i64, size: impl Fn(u32) -> u64) {
        let window = self.window_of(now_ms);
        self.idle.boundary(now_ms, &self.store);
        self.label_pending();
        let due = match self.model {
            None => self.labelled_windows >= self.settings.first_train_windows,
            Some(_) => window.saturating_sub(self.trained_at) >= self.settings.retrain_every,
        };
        if due && !self.train_reads.is_empty() {
            match ForecastModel::train(&self.train_rows, &self.train_reads) {
                Ok(model) => self.model = Some(model),
                Err(err) => self.training_error = Some(err.to_string()),
            }
            self.trained_at = window;
        }
        self.forecast.idle.clear();
        self.forecast.predicted.clear();
        self.collect_active(now_ms);
        self.pending_window = window;
        self.pending_rows.clear();
        for &object in &self.pending_objects {
            self.store
                .features(object, size(object), now_ms, &mut self.pending_rows);
        }
        if let Some(model) = &self.model {
            let reads = model.predict(&self.pending_rows);
            self.forecast
                .predicted
                .extend(self.pending_objects.iter().copied().zip(reads));
        }
    }

    /// The per-object histories.
    pub fn store(&self) -> &FeatureStore {
        &self.store
    }

    /// How long objects stay unread, as of the last boundary.
    pub fn idle(&self) -> &IdleModel {
        &self.idle
    }

    /// What the last boundary forecast.
    pub fn forecast(&self) -> &Forecast {
        &self.forecast
    }

    /// The last training failure, if any.
    pub fn training_error(&self) -> Option<&str> {
        self.training_error.as_deref()
    }

    /// Drops objects idle for `active_windows` from the active list (into
    /// `forecast.idle`); the rest become the pending rows' objects.
    fn collect_active(&mut self, now_ms: i64) {
        let horizon = self.settings.active_windows as i64 * self.store.window_ms();
        let mut active = std::mem::take(&mut self.active);
        active.retain(|&object| {
            let recent = self
                .store
                .last_access_ms(object)
                .is_some_and(|last| now_ms - last <= horizon);
            if !recent {
                self.in_active[object as usize] = false;
                self.forecast.idle.push(object);
            }
            recent
        });
        self.pending_objects.clone_from(&active);
        self.active = active;
    }

    /// Labels the rows of the last boundary with the reads of the window that ended, and
    /// keeps a bounded, evenly spaced sample of them for training.
    fn label_pending(&mut self) {
        if self.pending_objects.is_empty() {
            return;
        }
        let per_window =
            (self.settings.max_rows / self.settings.retrain_every.max(1) as usize).max(1);
        let stride = self.pending_objects.len().div_ceil(per_window);
        for (i, &object) in self.pending_objects.iter().enumerate().step_by(stride) {
            let index = object as usize;
            let reads = if self.count_window.get(index) == Some(&self.pending_window) {
                self.window_reads[index]
            } else {
                0
            };
            self.train_reads.push(f64::from(reads));
            self.train_rows
                .extend_from_slice(&self.pending_rows[i * FEATURES..(i + 1) * FEATURES]);
        }
        let excess = self
            .train_reads
            .len()
            .saturating_sub(self.settings.max_rows);
        if excess > 0 {
            self.train_reads.drain(..excess);
            self.train_rows.drain(..excess * FEATURES);
        }
        self.labelled_windows += 1;
    }
}
