//! The forecast model: gradient-boosted regression trees (`forust-ml`, squared loss) from a
//! feature row ([`super::features`]) to the reads of the next window, with the threshold
//! that turns a predicted count into "will be read", and its training metrics. Saved as
//! versioned JSON.

use std::path::Path;

use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use serde::{Deserialize, Serialize};

use super::features::{FEATURES, FEATURE_NAMES};

/// The format of a saved model; a file of another version is refused.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// Boosting rounds, depth and learning rate: small trees, enough rounds to fit rates and
/// periodic patterns, cheap enough to retrain every few windows on 200,000 rows.
const ITERATIONS: usize = 40;
const MAX_DEPTH: usize = 5;
const LEARNING_RATE: f32 = 0.2;

/// What training measured, on its own rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingMetrics {
    /// Rows trained on.
    pub rows: usize,
    /// Share of rows whose object was read in the next window.
    pub positive_share: f64,
    /// Root mean squared error of the predicted reads.
    pub rmse: f64,
    /// F1 of "read" at the chosen threshold.
    pub f1: f64,
}

/// A trained forecast.
#[derive(Serialize, Deserialize)]
pub struct ForecastModel {
    /// [`MODEL_FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The feature columns, in order.
    pub features: Vec<String>,
    /// A predicted count at or above this means "will be read in the next window".
    pub threshold: f64,
    /// Training metrics.
    pub metrics: TrainingMetrics,
    booster: GradientBooster,
}

impl std::fmt::Debug for ForecastModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The booster has no Debug; its trees say little to a reader anyway.
        f.debug_struct("ForecastModel")
            .field("format_version", &self.format_version)
            .field("threshold", &self.threshold)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

/// Why a model could not be trained, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Training failed.
    #[error("training the forecast model failed: {0}")]
    Train(String),
    /// The model file could not be read or written.
    #[error("model file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong and what to do.
        reason: String,
    },
}

impl ForecastModel {
    /// Trains on `rows` (row-major, [`FEATURES`] columns each) and their next-window reads.
    pub fn train(rows: &[f64], reads: &[f64]) -> Result<Self, ModelError> {
        if reads.is_empty() || rows.len() != reads.len() * FEATURES {
            return Err(ModelError::Train(format!(
                "{} values for {} targets of {FEATURES} features",
                rows.len(),
                reads.len()
            )));
        }
        let columns = column_major(rows, reads.len());
        let matrix = Matrix::new(&columns, reads.len(), FEATURES);
        // Squared loss: the target is a count (forust's default log loss expects 0/1 labels).
        let mut booster = GradientBooster::default()
            .set_objective_type(ObjectiveType::SquaredLoss)
            .set_iterations(ITERATIONS)
            .set_max_depth(MAX_DEPTH)
            .set_learning_rate(LEARNING_RATE)
            .set_parallel(false);
        booster
            .fit_unweighted(&matrix, reads, None)
            .map_err(|err| ModelError::Train(err.to_string()))?;
        let predicted: Vec<f64> = booster.predict(&matrix, false);
        let (threshold, f1) = best_threshold(&predicted, reads);
        let rmse = (predicted
            .iter()
            .zip(reads)
            .map(|(p, y)| (p - y) * (p - y))
            .sum::<f64>()
            / reads.len() as f64)
            .sqrt();
        Ok(ForecastModel {
            format_version: MODEL_FORMAT_VERSION,
            features: FEATURE_NAMES.iter().map(|name| name.to_string()).collect(),
            threshold,
            metrics: TrainingMetrics {
                rows: reads.len(),
                positive_share: reads.iter().filter(|&&y| y > 0.0).count() as f64
                    / reads.len() as f64,
                rmse,
                f1,
            },
            booster,
        })
    }

    /// Predicted next-window reads (never negative) for row-major feature rows.
    pub fn predict(&self, rows: &[f64]) -> Vec<f64> {
        let count = rows.len() / FEATURES;
        if count == 0 {
            return Vec::new();
        }
        let columns = column_major(rows, count);
        let matrix = Matrix::new(&columns, count, FEATURES);
        self.booster
            .predict(&matrix, false)
            .into_iter()
            .map(|p| if p.is_finite() { p.max(0.0) } else { 0.0 })
            .collect()
    }

    /// Writes the model as JSON to `path`.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let file_error = |reason: String| ModelError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = serde_json::to_string(self)
            .map_err(|err| file_error(format!("cannot encode the model: {err}")))?;
        std::fs::write(path, text)
            .map_err(|err| file_error(format!("cannot write it: {err}; check the directory")))
    }

    /// Reads a model written by [`ForecastModel::save`].
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let file_error = |reason: String| ModelError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|err| file_error(format!("cannot read it: {err}")))?;
        let model: ForecastModel = serde_json::from_str(&text).map_err(|err| {
            file_error(format!(
                "not a forecast model ({err}); train a new one with `strata train`"
            ))
        })?;
        if model.format_version != MODEL_FORMAT_VERSION {
            return Err(file_error(format!(
                "model format {} (this Strata reads format {MODEL_FORMAT_VERSION}); train a \
                 new one with `strata train`",
                model.format_version
            )));
        }
        if model.features != FEATURE_NAMES {
            return Err(file_error(
                "its features differ from this Strata's; train a new one with `strata train`"
                    .to_string(),
            ));
        }
        Ok(model)
    }
}

/// Row-major rows to the column-major layout forust reads.
fn column_major(rows: &[f64], count: usize) -> Vec<f64> {
    let mut columns = vec![0.0; rows.len()];
    for (r, row) in rows.chunks_exact(FEATURES).enumerate() {
        for (c, &value) in row.iter().enumerate() {
            columns[c * count + r] = value;
        }
    }
    columns
}

/// The threshold on predicted reads that maximises F1 of "read" against `reads > 0` among
/// those whose precision is at least one half, and that F1 (`f64::INFINITY` and 0 when
/// nothing is ever read or no threshold is that precise). Precision of one half is where
/// predicting "read" starts to beat predicting "not read" for everything: each predicted
/// read right adds one to the correct predictions and each wrong one takes one away, so
/// the predictions' accuracy is above the base rate exactly when the true positives
/// outnumber the false ones.
pub fn best_threshold(predicted: &[f64], reads: &[f64]) -> (f64, f64) {
    best_threshold_at(predicted, reads, 0.5)
}

/// One cut of a list of predictions: "read" for every prediction at or above `threshold`.
struct Cut {
    threshold: f64,
    /// Predictions at or above the threshold.
    predicted_reads: usize,
    /// Those of them whose object was read.
    true_positives: usize,
}

impl Cut {
    /// Predicted reads that were wrong.
    fn false_positives(&self) -> usize {
        self.predicted_reads - self.true_positives
    }

    /// Its F1 against `positives` objects read in all.
    fn f1(&self, positives: usize) -> f64 {
        2.0 * self.true_positives as f64 / (self.predicted_reads + positives) as f64
    }
}

/// Every cut between distinct predicted values, from the highest threshold down (each
/// threshold rule below picks one of them).
fn cuts(predicted: &[f64], reads: &[f64]) -> Vec<Cut> {
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    order.sort_by(|&a, &b| predicted[b].total_cmp(&predicted[a]));
    let mut cuts = Vec::new();
    let mut true_positives = 0usize;
    for (rank, &i) in order.iter().enumerate() {
        if reads[i] > 0.0 {
            true_positives += 1;
        }
        // Only cut between distinct predictions.
        if order
            .get(rank + 1)
            .is_some_and(|&next| predicted[next] == predicted[i])
        {
            continue;
        }
        cuts.push(Cut {
            threshold: predicted[i],
            predicted_reads: rank + 1,
            true_positives,
        });
    }
    cuts
}

/// As [`best_threshold`], among thresholds whose precision is at least `min_precision`.
pub fn best_threshold_at(predicted: &[f64], reads: &[f64], min_precision: f64) -> (f64, f64) {
    let positives = reads.iter().filter(|&&y| y > 0.0).count();
    if positives == 0 {
        return (f64::INFINITY, 0.0);
    }
    let (mut best, mut best_f1) = (f64::INFINITY, 0.0);
    for cut in cuts(predicted, reads) {
        if (cut.true_positives as f64) < min_precision * cut.predicted_reads as f64
            || cut.true_positives <= cut.false_positives()
        {
            continue;
        }
        let f1 = cut.f1(positives);
        if f1 > best_f1 {
            best_f1 = f1;
            best = cut.threshold;
        }
    }
    (best, best_f1)
}

/// The threshold on predicted values that maximises the accuracy of "read" against
/// `reads > 0`: the cut with the most true positives over false ones (each predicted read
/// right adds one correct prediction to always predicting "not read", each wrong one takes
/// one away); `f64::INFINITY` when no cut has more true positives than false ones.
pub fn accuracy_threshold(predicted: &[f64], reads: &[f64]) -> f64 {
    most_accurate_cut(&cuts(predicted, reads), positives(reads)).threshold
}

/// Pairs whose object was read.
fn positives(reads: &[f64]) -> usize {
    reads.iter().filter(|&&y| y > 0.0).count()
}

/// The cut of [`accuracy_threshold`] among `cuts`, scored ("no read" for every pair when no
/// cut has more true positives than false ones).
fn most_accurate_cut(cuts: &[Cut], positives: usize) -> FloorCut {
    let mut best = FloorCut {
        threshold: f64::INFINITY,
        meets_floor: false,
        f1: 0.0,
        gain: 0,
    };
    for cut in cuts {
        let gain = cut.true_positives as i64 - cut.false_positives() as i64;
        if gain > best.gain {
            best = FloorCut {
                threshold: cut.threshold,
                meets_floor: false,
                f1: cut.f1(positives),
                gain,
            };
        }
    }
    best
}

/// The cut [`floor_cut`] takes on a list of scored pairs, and how it scored on them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloorCut {
    /// "Read" for every prediction at or above it (`f64::INFINITY`: none).
    pub threshold: f64,
    /// Whether it has the precision and the accuracy asked for.
    pub meets_floor: bool,
    /// Its F1 on the pairs.
    pub f1: f64,
    /// Its true positives less its false ones: how many pairs above the base rate its
    /// accuracy is (each right "read" adds one, each wrong one takes one away).
    pub gain: i64,
}

impl FloorCut {
    /// Whether this cut is better for the floor of issue 11 than `other` (both on the same
    /// pairs): one that meets the floor beats one that does not; between two that do, the
    /// higher F1; between two that do not, the more accurate, then the higher F1.
    pub fn better_than(&self, other: &FloorCut) -> bool {
        match (self.meets_floor, other.meets_floor) {
            (true, false) => true,
            (false, true) => false,
            (true, true) => self.f1 > other.f1,
            (false, false) => (self.gain, self.f1) > (other.gain, other.f1),
        }
    }
}

/// The threshold for next-window prediction of `strata eval`'s floor (accuracy at least
/// `min_accuracy` and above the base rate, F1 as high as it goes): the threshold of
/// [`floor_cut`].
pub fn floor_threshold(
    predicted: &[f64],
    reads: &[f64],
    min_precision: f64,
    min_accuracy: f64,
) -> f64 {
    floor_cut(predicted, reads, min_precision, min_accuracy).threshold
}

/// The cut with the best F1 among those with precision at least `min_precision` (above one
/// half: accuracy above the base rate, with a margin for drift) and accuracy at least
/// `min_accuracy` on these pairs; when no cut is both, the one of [`accuracy_threshold`].
pub fn floor_cut(
    predicted: &[f64],
    reads: &[f64],
    min_precision: f64,
    min_accuracy: f64,
) -> FloorCut {
    let positives = positives(reads);
    let pairs = reads.len();
    let cuts = cuts(predicted, reads);
    let mut best: Option<FloorCut> = None;
    for cut in &cuts {
        let gain = cut.true_positives as i64 - cut.false_positives() as i64;
        let right = pairs - positives + cut.true_positives - cut.false_positives();
        let precise = cut.true_positives as f64 >= min_precision * cut.predicted_reads as f64;
        let accurate = right as f64 >= min_accuracy * pairs as f64;
        if !(precise && accurate && gain > 0) {
            continue;
        }
        let f1 = cut.f1(positives);
        if best.is_none_or(|best| f1 > best.f1) {
            best = Some(FloorCut {
                threshold: cut.threshold,
                meets_floor: true,
                f1,
                gain,
            });
        }
    }
    best.unwrap_or_else(|| most_accurate_cut(&cuts, positives))
}
