//! Which score says "read in the next window", and from what threshold: chosen walk-forward
//! on the forecasts of past windows and what followed them ([`ScoredPairs::choose`]).
//!
//! The trees forecast a count of reads (squared loss); "read at all" is another question: a
//! count ranks an object with a small chance of many reads above one with a large chance of
//! one read. The read table ([`super::read_table`]) estimates that chance itself, from the
//! trees' count, the object's recent reads and its neighbours' heat. Neither ranks best on
//! every trace, so each boundary takes the score whose cut did best on past pairs (none of
//! them from the window it predicts). The life table's chance ([`super::IdleModel`]) was
//! tried as a third and dropped: chosen on past windows, its cuts did not hold on the next
//! (docs/BENCHMARKS.md, "Session 17").

use super::model::{floor_cut, FloorCut};

/// An object's forecasts at a boundary, each a candidate score.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Forecasts {
    /// The trees' forecast of next-window reads.
    pub trees: f64,
    /// The read table's chance of a read in the next window.
    pub table: f64,
}

/// A score of "read in the next window", from an object's forecasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadScore {
    /// The trees' forecast of next-window reads.
    Trees,
    /// The read table's chance of a read in the next window.
    Table,
}

impl ReadScore {
    /// Every score, in the order ties are broken (the first wins).
    pub const ALL: [ReadScore; 2] = [ReadScore::Trees, ReadScore::Table];

    /// The score's name, as notes and docs say it.
    pub fn name(self) -> &'static str {
        match self {
            ReadScore::Trees => "trees",
            ReadScore::Table => "read-table",
        }
    }

    /// The score of an object with these forecasts.
    pub fn of(self, forecasts: &Forecasts) -> f64 {
        match self {
            ReadScore::Trees => forecasts.trees,
            ReadScore::Table => forecasts.table,
        }
    }
}

/// The rule a boundary predicts with: "read" for every object whose `score` is at or above
/// `cut.threshold`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadRule {
    /// The score ranked.
    pub score: ReadScore,
    /// Its cut, and how it did on the past pairs.
    pub cut: FloorCut,
}

/// Past forecasts and whether their object was then read, at most `capacity`, the oldest
/// dropped first: out of sample, unlike the trees' training rows.
#[derive(Clone, Debug)]
pub struct ScoredPairs {
    capacity: usize,
    forecasts: Vec<Forecasts>,
    reads: Vec<f64>,
    /// Per pair, the window it was scored in (counted by [`ScoredPairs::trim`]).
    windows: Vec<u32>,
    window: u32,
}

/// Windows of pairs, the most recent, that judge each score's cut chosen on the pairs
/// before them ([`ScoredPairs::choose`]).
pub const VALIDATION_WINDOWS: u32 = 2;

impl ScoredPairs {
    /// An empty record keeping at most `capacity` pairs.
    pub fn new(capacity: usize) -> Self {
        ScoredPairs {
            capacity,
            forecasts: Vec::new(),
            reads: Vec::new(),
            windows: Vec::new(),
            window: 0,
        }
    }

    /// Adds one object's forecasts of a window that ended, and whether it was read in it.
    pub fn push(&mut self, forecasts: Forecasts, read: bool) {
        self.forecasts.push(forecasts);
        self.reads.push(if read { 1.0 } else { 0.0 });
        self.windows.push(self.window);
    }

    /// Ends a window's pushes: drops the oldest pairs beyond the capacity.
    pub fn trim(&mut self) {
        self.window = self.window.wrapping_add(1);
        let excess = self.reads.len().saturating_sub(self.capacity);
        self.windows.drain(..excess);
        self.forecasts.drain(..excess);
        self.reads.drain(..excess);
    }

    /// Pairs kept.
    pub fn len(&self) -> usize {
        self.reads.len()
    }

    /// Whether no pair is kept.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    /// The score and cut to predict with, among `scores` (`None` for an empty list): the
    /// score whose cut, chosen on the pairs before the last [`VALIDATION_WINDOWS`] windows,
    /// did best on those windows' pairs ([`FloorCut::better_than`]), with its cut chosen on
    /// every pair kept ([`floor_cut`]: the best F1 among the cuts with precision of at least
    /// `min_precision` and accuracy of at least `min_accuracy`, else the most accurate cut).
    /// Judging out of sample matters: the chances of the tables and the trees' counts drift
    /// from window to window as they learn, and a score whose cut fits the past well may
    /// not hold on the next window. With too few pairs before the validation windows (fewer
    /// than a thousand), the score whose cut did best on every pair.
    pub fn choose(
        &self,
        scores: &[ReadScore],
        min_precision: f64,
        min_accuracy: f64,
    ) -> Option<ReadRule> {
        let split = self
            .windows
            .partition_point(|&w| self.window.wrapping_sub(w) > VALIDATION_WINDOWS);
        let holdout = split >= 1_000 && split < self.len();
        let mut best: Option<(ReadScore, FloorCut)> = None;
        let mut values = Vec::with_capacity(self.len());
        for &score in scores {
            values.clear();
            values.extend(self.forecasts.iter().map(|forecasts| score.of(forecasts)));
            let judged = if holdout {
                let fitted = floor_cut(
                    &values[..split],
                    &self.reads[..split],
                    min_precision,
                    min_accuracy,
                );
                judge(
                    fitted.threshold,
                    &values[split..],
                    &self.reads[split..],
                    min_precision,
                    min_accuracy,
                )
            } else {
                floor_cut(&values, &self.reads, min_precision, min_accuracy)
            };
            if best.is_none_or(|(_, best)| judged.better_than(&best)) {
                best = Some((score, judged));
            }
        }
        let (score, _) = best?;
        values.clear();
        values.extend(self.forecasts.iter().map(|forecasts| score.of(forecasts)));
        Some(ReadRule {
            score,
            cut: floor_cut(&values, &self.reads, min_precision, min_accuracy),
        })
    }
}

/// How "read" at or above `threshold` does on the pairs (`values`, `reads`), as a
/// [`FloorCut`].
fn judge(
    threshold: f64,
    values: &[f64],
    reads: &[f64],
    min_precision: f64,
    min_accuracy: f64,
) -> FloorCut {
    let (mut predicted, mut true_positives, mut positives) = (0usize, 0usize, 0usize);
    for (&value, &read) in values.iter().zip(reads) {
        let read = read > 0.0;
        positives += usize::from(read);
        if value >= threshold {
            predicted += 1;
            true_positives += usize::from(read);
        }
    }
    let false_positives = predicted - true_positives;
    let gain = true_positives as i64 - false_positives as i64;
    let right = reads.len() as i64 - positives as i64 + gain;
    let f1 = if predicted + positives == 0 {
        0.0
    } else {
        2.0 * true_positives as f64 / (predicted + positives) as f64
    };
    FloorCut {
        threshold,
        meets_floor: gain > 0
            && true_positives as f64 >= min_precision * predicted as f64
            && right as f64 >= min_accuracy * reads.len() as f64,
        f1,
        gain,
    }
}
