//! Forecast of next-window reads per object, trained walk-forward ([`Forecaster`]): at each
//! window boundary only the history before it is used. See `docs/ARCHITECTURE.md`,
//! "Forecast".
//!
//! - [`features`]: per-object history and the feature row at a boundary;
//! - [`model`]: gradient-boosted trees over the rows, saved as versioned JSON;
//! - [`idle`]: the time to an object's next read, a walk-forward life table of idle time;
//! - [`read_score`]: which forecast says "read in the next window", chosen walk-forward;
//! - [`read_table`]: the chance of a read in the next window, counted walk-forward per cell.

pub mod features;
pub mod idle;
pub mod model;
pub mod offline;
pub mod read_score;
pub mod read_table;
pub mod rows;

use crate::trace::TraceRequest;

pub use features::{FeatureStore, FEATURES, FEATURE_NAMES};
pub use idle::IdleModel;
pub use model::{ForecastModel, ModelError, TrainingMetrics, MODEL_FORMAT_VERSION};
pub use rows::BoundaryRows;

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
    rows: BoundaryRows,
    idle: IdleModel,
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
            rows: BoundaryRows::new(window_ms, settings),
            idle: IdleModel::new(window_ms),
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
        self.rows.record(request);
    }

    fn window_of(&self, time_ms: i64) -> u32 {
        u32::try_from(time_ms / self.rows.window_ms()).unwrap_or(u32::MAX)
    }

    /// The window starting at `now_ms` begins: learn from the one that ended, then forecast
    /// the one that starts. `size` gives an object's size in bytes.
    /// A failed (re)training keeps the previous model, if any, and is kept in
    /// [`Forecaster::training_error`].
    pub fn boundary(&mut self, now_ms: i64, size: impl Fn(u32) -> u64) {
        let window = self.window_of(now_ms);
        self.idle.boundary(now_ms, self.rows.store());
        self.forecast.idle.clear();
        self.forecast.predicted.clear();
        self.rows.boundary(now_ms, size, &mut self.forecast.idle);
        let labelled = self.rows.labelled();
        let due = match self.model {
            None => labelled.windows >= self.settings.first_train_windows,
            Some(_) => window.saturating_sub(self.trained_at) >= self.settings.retrain_every,
        };
        if due && !labelled.is_empty() {
            match ForecastModel::train(&labelled.rows, &labelled.reads) {
                Ok(model) => self.model = Some(model),
                Err(err) => self.training_error = Some(err.to_string()),
            }
            self.trained_at = window;
        }
        if let Some(model) = &self.model {
            let (objects, rows) = self.rows.pending();
            let reads = model.predict(rows);
            self.forecast
                .predicted
                .extend(objects.iter().copied().zip(reads));
        }
    }

    /// The objects the last boundary forecast and their feature rows (row-major,
    /// [`FEATURES`] columns each), in the order of [`Forecast::predicted`].
    pub fn rows(&self) -> (&[u32], &[f64]) {
        self.rows.pending()
    }

    /// The per-object histories.
    pub fn store(&self) -> &FeatureStore {
        self.rows.store()
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
}
