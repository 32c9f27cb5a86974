//! The labelled rows both trainers learn from: the walk-forward [`super::Forecaster`] of
//! `strata eval` and the offline [`super::offline::Labeler`] of `strata train`.
//!
//! Requests are recorded in time order; at each window boundary the rows taken at the
//! previous boundary are labelled with the reads of the window that ended (an evenly spaced
//! sample of at most `max_rows / retrain_every` rows a boundary, the last `max_rows` kept),
//! then the features of every active object (accessed within `active_windows`) are taken
//! for the window that starts.

use super::features::{FeatureStore, FEATURES};
use super::offline::TrainingSet;
use super::ForecastSettings;
use crate::stats::Op;
use crate::trace::TraceRequest;

/// Active objects, their reads per window, and the rows of boundaries.
pub struct BoundaryRows {
    settings: ForecastSettings,
    store: FeatureStore,
    active: Vec<u32>,
    in_active: Vec<bool>,
    /// Reads per object in `count_window`.
    window_reads: Vec<u32>,
    count_window: Vec<i64>,
    /// Rows of the last boundary awaiting their labels.
    pending_objects: Vec<u32>,
    pending_rows: Vec<f64>,
    pending_window: i64,
    labelled: TrainingSet,
}

impl BoundaryRows {
    /// Rows for windows of `window_ms`.
    pub fn new(window_ms: i64, settings: ForecastSettings) -> Self {
        BoundaryRows {
            settings,
            store: FeatureStore::new(window_ms),
            active: Vec::new(),
            in_active: Vec::new(),
            window_reads: Vec::new(),
            count_window: Vec::new(),
            pending_objects: Vec::new(),
            pending_rows: Vec::new(),
            pending_window: 0,
            labelled: TrainingSet::default(),
        }
    }

    /// The per-object histories.
    pub fn store(&self) -> &FeatureStore {
        &self.store
    }

    /// The window length, ms.
    pub fn window_ms(&self) -> i64 {
        self.store.window_ms()
    }

    /// Whether any object is active or awaits its label.
    pub fn has_active(&self) -> bool {
        !self.active.is_empty() || !self.pending_objects.is_empty()
    }

    /// Records a request (it must not be earlier than the last boundary).
    pub fn record(&mut self, request: &TraceRequest) {
        self.store.record(request);
        let index = request.object as usize;
        if self.in_active.len() <= index {
            self.in_active.resize(index + 1, false);
            self.window_reads.resize(index + 1, 0);
            self.count_window.resize(index + 1, i64::MIN);
        }
        if request.op == Op::Read {
            let window = request.time_ms.div_euclid(self.window_ms());
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

    /// The boundary `now_ms`: labels the last boundary's rows with the window that ended,
    /// drops objects idle for `active_windows` from the active ones (appending them to
    /// `dropped`), and takes the rows of the rest; `size` gives an object's size in bytes.
    pub fn boundary(&mut self, now_ms: i64, size: impl Fn(u32) -> u64, dropped: &mut Vec<u32>) {
        self.label_pending();
        let horizon = i64::from(self.settings.active_windows) * self.window_ms();
        let mut active = std::mem::take(&mut self.active);
        active.retain(|&object| {
            let recent = self
                .store
                .last_access_ms(object)
                .is_some_and(|last| now_ms - last <= horizon);
            if !recent {
                self.in_active[object as usize] = false;
                dropped.push(object);
            }
            recent
        });
        self.pending_objects.clone_from(&active);
        self.active = active;
        self.pending_window = now_ms.div_euclid(self.window_ms());
        self.pending_rows.clear();
        for &object in &self.pending_objects {
            self.store
                .features(object, size(object), now_ms, &mut self.pending_rows);
        }
    }

    /// The objects of the last boundary's rows, and the rows (row-major, [`FEATURES`]
    /// columns each).
    pub fn pending(&self) -> (&[u32], &[f64]) {
        (&self.pending_objects, &self.pending_rows)
    }

    /// The rows labelled so far (the most recent `max_rows`).
    pub fn labelled(&self) -> &TrainingSet {
        &self.labelled
    }

    /// The rows labelled, taken.
    pub fn into_labelled(self) -> TrainingSet {
        self.labelled
    }

    /// Labels the rows of the last boundary with the reads of the window that ended, and
    /// keeps a bounded, evenly spaced sample of them.
    fn label_pending(&mut self) {
        if self.pending_objects.is_empty() {
            return;
        }
        let per_window =
            (self.settings.max_rows / self.settings.retrain_every.max(1) as usize).max(1);
        let stride = self.pending_objects.len().div_ceil(per_window);
        let set = &mut self.labelled;
        for (i, &object) in self.pending_objects.iter().enumerate().step_by(stride) {
            let index = object as usize;
            let reads = if self.count_window[index] == self.pending_window {
                self.window_reads[index]
            } else {
                0
            };
            set.reads.push(f64::from(reads));
            set.rows
                .extend_from_slice(&self.pending_rows[i * FEATURES..(i + 1) * FEATURES]);
        }
        let excess = set.reads.len().saturating_sub(self.settings.max_rows);
        if excess > 0 {
            set.reads.drain(..excess);
            set.rows.drain(..excess * FEATURES);
        }
        set.windows += 1;
    }
}
