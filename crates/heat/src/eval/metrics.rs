//! Next-window prediction metrics: at each window boundary every policy says which existing
//! objects will be read in the window that starts; the replay compares with what happens.
//!
//! Counted over every (object, window) pair where the object existed at the window's start
//! (objects that appear during a window are not predicted for it). A ratio with a zero
//! denominator is reported as 0 (e.g. the precision of a policy that never predicts a read),
//! so that every number is finite in JSON.

use serde::Serialize;

/// Counts of predicted against actual reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// Predicted read, was read.
    pub true_positives: u64,
    /// Predicted read, was not read.
    pub false_positives: u64,
    /// Predicted not read, was read.
    pub false_negatives: u64,
    /// Predicted not read, was not read.
    pub true_negatives: u64,
}

/// The usual scores of a [`Confusion`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PredictionMetrics {
    /// Share of pairs predicted right.
    pub accuracy: f64,
    /// Share of predicted reads that happened.
    pub precision: f64,
    /// Share of reads that were predicted.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Share of the majority class: the accuracy of always predicting it.
    pub base_rate: f64,
    /// (object, window) pairs scored.
    pub pairs: u64,
    /// The counts.
    #[serde(flatten)]
    pub counts: Confusion,
}

impl Confusion {
    /// Adds one window: `predicted` objects said to be read, `read` objects read (both
    /// among the `existing` at its start), `both` of them in both sets.
    pub fn add_window(&mut self, existing: u64, predicted: u64, read: u64, both: u64) {
        let fp = predicted.saturating_sub(both);
        let fn_ = read.saturating_sub(both);
        self.true_positives += both;
        self.false_positives += fp;
        self.false_negatives += fn_;
        self.true_negatives += existing.saturating_sub(both + fp + fn_);
    }

    /// Pairs counted.
    pub fn pairs(&self) -> u64 {
        self.true_positives + self.false_positives + self.false_negatives + self.true_negatives
    }

    /// The scores.
    pub fn metrics(&self) -> PredictionMetrics {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let tp = self.true_positives;
        let pairs = self.pairs();
        let precision = ratio(tp, tp + self.false_positives);
        let recall = ratio(tp, tp + self.false_negatives);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        let positives = tp + self.false_negatives;
        PredictionMetrics {
            accuracy: ratio(tp + self.true_negatives, pairs),
            precision,
            recall,
            f1,
            base_rate: ratio(positives.max(pairs - positives), pairs),
            pairs,
            counts: *self,
        }
    }
}
