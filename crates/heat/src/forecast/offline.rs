//! Offline training (`strata train`, the service's `POST /v1/model/train`): one pass over a
//! history in time order, rows labelled exactly as the walk-forward [`super::Forecaster`]
//! labels them (features of every active object at each window boundary, target = its
//! reads in the window that starts), then one model trained on all of them.
//!
//! The service keeps its history per object and hour ([`HourCounts`]); [`hour_requests`]
//! turns an hour back into requests spread evenly over it, so the same [`Labeler`] and
//! [`super::FeatureStore`] serve recorded traces and the service's history alike.

use super::model::{ForecastModel, ModelError};
use super::rows::BoundaryRows;
use super::ForecastSettings;
use crate::stats::Op;
use crate::trace::{TraceRequest, DEFAULT_OBJECT_SIZE};
use crate::units::HOUR_MS;

/// Labelled rows: features at a boundary and the reads of the window after it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingSet {
    /// Row-major, [`FEATURES`] columns each.
    pub rows: Vec<f64>,
    /// Reads in the next window, one per row.
    pub reads: Vec<f64>,
    /// Window boundaries whose rows were labelled.
    pub windows: u32,
    /// Distinct objects seen.
    pub objects: u32,
}

impl TrainingSet {
    /// Rows.
    pub fn len(&self) -> usize {
        self.reads.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    /// Rows whose object was read in the next window.
    pub fn positives(&self) -> usize {
        self.reads.iter().filter(|&&reads| reads > 0.0).count()
    }

    /// One model on every row. Refused (saying why) without rows or without a single read
    /// in a labelled window: there is nothing to learn, and a model that never predicts a
    /// read has no threshold.
    pub fn train(&self) -> Result<ForecastModel, ModelError> {
        if self.is_empty() {
            return Err(ModelError::Train(
                "no labelled window yet, so nothing to learn: the history must span at least \
                 two windows, with accesses in the first"
                    .to_string(),
            ));
        }
        if self.positives() == 0 {
            return Err(ModelError::Train(format!(
                "none of the {} rows was read in its next window: there is nothing to learn \
                 yet; record more reads (or give a trace) and train again",
                self.len()
            )));
        }
        ForecastModel::train(&self.rows, &self.reads)
    }
}

/// Walks requests in time order and labels the rows of each window boundary with the
/// walk-forward forecaster's own [`BoundaryRows`], without training in between.
pub struct Labeler {
    rows: BoundaryRows,
    sizes: Vec<u64>,
    objects: u32,
    next_boundary: Option<i64>,
    /// Objects dropped from the active ones at a boundary (not needed here).
    dropped: Vec<u32>,
}

impl Labeler {
    /// A labeler for windows of `window_ms` (at least 1).
    pub fn new(window_ms: i64, settings: ForecastSettings) -> Self {
        Labeler {
            rows: BoundaryRows::new(window_ms, settings),
            sizes: Vec::new(),
            objects: 0,
            next_boundary: None,
            dropped: Vec::new(),
        }
    }

    /// Records a request (requests must come in time order; a late one is counted at the
    /// latest time seen, as the feature store does).
    pub fn record(&mut self, request: &TraceRequest) {
        self.advance_to(request.time_ms);
        self.rows.record(request);
        let index = request.object as usize;
        if self.sizes.len() <= index {
            self.sizes.resize(index + 1, DEFAULT_OBJECT_SIZE);
            self.objects = self.objects.max(request.object.saturating_add(1));
        }
        if let Some(size) = request.size {
            self.sizes[index] = size;
        }
    }

    /// Processes every boundary up to `time_ms`; with nothing active, jumps to the last.
    fn advance_to(&mut self, time_ms: i64) {
        let w = self.rows.window_ms();
        let last = time_ms.div_euclid(w) * w;
        let Some(mut boundary) = self.next_boundary else {
            self.next_boundary = Some(last + w);
            return;
        };
        while boundary <= last {
            if !self.rows.has_active() {
                boundary = last;
            }
            let sizes = &self.sizes;
            self.rows
                .boundary(boundary, |object| sizes[object as usize], &mut self.dropped);
            self.dropped.clear();
            boundary += w;
        }
        self.next_boundary = Some(boundary);
    }

    /// Ends the history at `end_ms` (everything before it was recorded): the boundaries up
    /// to it are processed; rows whose window is not over by then stay unlabelled.
    pub fn finish(mut self, end_ms: i64) -> TrainingSet {
        if self.next_boundary.is_some() {
            self.advance_to(end_ms);
        }
        let objects = self.objects;
        let mut set = self.rows.into_labelled();
        set.objects = objects;
        set
    }
}

/// One object's accesses in one hour, as the service keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourCounts {
    /// The object's id.
    pub object: u32,
    /// The start of the hour, ms.
    pub hour_ms: i64,
    /// Reads in the hour.
    pub reads: u32,
    /// Writes in the hour.
    pub writes: u32,
    /// The object's size, bytes.
    pub size: u64,
}

/// The requests of an hour, spread evenly over it (writes first: an object is written
/// before it is read), none at or after `before_ms`. The history keeps no finer time, so a
/// window shorter than an hour could not be labelled from it.
pub fn hour_requests(counts: &HourCounts, before_ms: i64) -> impl Iterator<Item = TraceRequest> {
    let total = u64::from(counts.reads) + u64::from(counts.writes);
    let counts = *counts;
    let latest = (before_ms - 1).max(counts.hour_ms);
    (0..total).map(move |i| {
        let offset = (i as i128 * HOUR_MS as i128 / total.max(1) as i128) as i64;
        TraceRequest {
            time_ms: (counts.hour_ms + offset).min(latest),
            object: counts.object,
            op: if i < u64::from(counts.writes) {
                Op::Write
            } else {
                Op::Read
            },
            size: Some(counts.size),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::FEATURES;

    fn read(time_ms: i64, object: u32) -> TraceRequest {
        TraceRequest {
            time_ms,
            object,
            op: Op::Read,
            size: Some(1024),
        }
    }

    #[test]
    fn rows_are_labelled_with_the_reads_of_the_next_window_only() {
        // Object 0 read twice in window 0, three times in window 1, once in window 3.
        let mut labeler = Labeler::new(HOUR_MS, ForecastSettings::default());
        for time in [
            10,
            20,
            HOUR_MS + 1,
            HOUR_MS + 2,
            HOUR_MS + 3,
            3 * HOUR_MS + 5,
        ] {
            labeler.record(&read(time, 0));
        }
        let set = labeler.finish(4 * HOUR_MS);
        // Boundaries 1, 2, 3 and 4 h: rows at 1, 2 and 3 h are labelled (1 h's row with
        // window 1, ...); the row at 4 h has no finished window.
        assert_eq!(set.reads, vec![3.0, 0.0, 1.0]);
        assert_eq!(set.rows.len(), 3 * FEATURES);
        assert_eq!(set.windows, 3);
        assert_eq!(set.objects, 1);
    }

    #[test]
    fn an_hour_is_spread_over_the_hour_writes_first_and_never_past_the_end() {
        let counts = HourCounts {
            object: 3,
            hour_ms: 5 * HOUR_MS,
            reads: 3,
            writes: 1,
            size: 7,
        };
        let requests: Vec<TraceRequest> = hour_requests(&counts, i64::MAX).collect();
        let times: Vec<i64> = requests.iter().map(|r| r.time_ms - 5 * HOUR_MS).collect();
        assert_eq!(times, vec![0, HOUR_MS / 4, HOUR_MS / 2, 3 * HOUR_MS / 4]);
        assert_eq!(requests[0].op, Op::Write);
        assert!(requests[1..].iter().all(|r| r.op == Op::Read));
        let capped: Vec<i64> = hour_requests(&counts, 5 * HOUR_MS + 10)
            .map(|r| r.time_ms)
            .collect();
        assert!(capped.iter().all(|&t| t < 5 * HOUR_MS + 10), "{capped:?}");
    }
}
