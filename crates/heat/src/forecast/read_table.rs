//! The chance that an active object is read in the next window, counted walk-forward in a
//! table of cells ([`ReadTable`]): a calibration of the trees' count into "read at all",
//! by what else is known of the object when the trees forecast it.
//!
//! A cell is an object's trees' forecast (in 6 steps), its reads in the last window (5,
//! powers of two), in the last 16 windows (4), the windows since its last access (7,
//! powers of two), and how many of the objects first seen next to it (the 4 ids on each
//! side, [`NEIGHBOURS`]) were read in the last window (4 steps): 3,360 cells. Trace keys
//! are interned in order of first appearance, so ids next to each other are keys first
//! seen together (the blocks of one sequential run, the files of one upload): the heat of
//! its neighbours stands for the heat of keys that share its prefix, which trace objects do
//! not have. At each boundary the cells taken at the previous one are counted with whether
//! their object was read in the window that ended, then the chances are refreshed:
//! `(reads + PRIOR · base) / (objects + PRIOR)`, `base` being the share read over all cells,
//! so that a cell seen a few times leans on it. Only what happened before a boundary is
//! counted at it. Memory: the cells of the last boundary's objects and two small tables.

use super::features::{FeatureStore, FEATURES};

/// Ids on each side of an object whose reads in the last window make its neighbours' heat.
pub const NEIGHBOURS: u32 = 4;

/// Observations a cell needs before its own share outweighs the share over all cells.
const PRIOR: f64 = 20.0;

/// Steps of the trees' forecast: below 0.05, 0.15, 0.4, 1, 3 reads, and more.
const TREE_STEPS: [f64; 5] = [0.05, 0.15, 0.4, 1.0, 3.0];

/// Buckets of each dimension of a cell.
const TREES: usize = TREE_STEPS.len() + 1;
const LAST_1: usize = 5;
const LAST_16: usize = 4;
const IDLE: usize = 7;
const NEIGHBOUR_STEPS: usize = 4;

/// Cells of the table.
pub const CELLS: usize = TREES * LAST_1 * LAST_16 * IDLE * NEIGHBOUR_STEPS;

/// What an active object's cell is taken from at a boundary.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReadSignals {
    /// The trees' forecast of its next-window reads.
    pub trees: f64,
    /// Its reads in the last window.
    pub reads_last_1: f64,
    /// Its reads in the last 16 windows.
    pub reads_last_16: f64,
    /// Windows since its last access.
    pub windows_idle: f64,
    /// Objects among its [`NEIGHBOURS`] on each side read in the last window.
    pub neighbours_read: u32,
}

/// `value`'s bucket in powers of two (0, 1, 2–3, 4–7, …), at most `buckets − 1`.
fn log2_bucket(value: f64, buckets: usize) -> usize {
    if value.is_nan() || value < 1.0 {
        return 0;
    }
    let whole = value.min(f64::from(u32::MAX)) as u32;
    ((32 - whole.leading_zeros()) as usize).min(buckets - 1)
}

/// Columns of a feature row ([`super::FEATURE_NAMES`]) the signals are taken from.
const READS_LAST_1: usize = 0;
const READS_LAST_16: usize = 2;
const WINDOWS_SINCE_LAST_ACCESS: usize = 5;

impl ReadSignals {
    /// The signals of an object the trees forecast `trees` reads from its feature `row`
    /// (at least [`FEATURES`] columns), with `neighbours_read` of its neighbours read in the
    /// last window.
    pub fn from_row(trees: f64, row: &[f64], neighbours_read: u32) -> Self {
        let column = |index: usize| row.get(index).copied().unwrap_or(f64::NAN);
        debug_assert!(row.len() >= FEATURES);
        ReadSignals {
            trees,
            reads_last_1: column(READS_LAST_1),
            reads_last_16: column(READS_LAST_16),
            windows_idle: column(WINDOWS_SINCE_LAST_ACCESS),
            neighbours_read,
        }
    }

    /// The cell of these signals.
    pub fn cell(&self) -> usize {
        let trees = TREE_STEPS
            .iter()
            .filter(|&&step| self.trees >= step)
            .count();
        let last_16 = match self.reads_last_16 {
            r if r < 1.0 => 0,
            r if r < 4.0 => 1,
            r if r < 16.0 => 2,
            _ => 3,
        };
        let neighbours = match self.neighbours_read {
            0 => 0,
            1..=2 => 1,
            3..=5 => 2,
            _ => 3,
        };
        let mut cell = trees;
        cell = cell * LAST_1 + log2_bucket(self.reads_last_1, LAST_1);
        cell = cell * LAST_16 + last_16;
        cell = cell * IDLE + log2_bucket(self.windows_idle, IDLE);
        cell * NEIGHBOUR_STEPS + neighbours
    }
}

/// Walk-forward table of the chance of a read in the next window; see the module
/// documentation.
#[derive(Clone, Debug)]
pub struct ReadTable {
    objects: Vec<f64>,
    reads: Vec<f64>,
    chance: Vec<f64>,
    /// The cells taken at the last boundary, with their objects.
    pending: Vec<(u32, u16)>,
    /// Per id `i`: how many objects below `i` were read in the window that ended at the
    /// last boundary (`len + 1` entries), for the neighbours' heat.
    read_below: Vec<u32>,
}

impl Default for ReadTable {
    fn default() -> Self {
        ReadTable {
            objects: vec![0.0; CELLS],
            reads: vec![0.0; CELLS],
            chance: vec![0.0; CELLS],
            pending: Vec::new(),
            read_below: vec![0],
        }
    }
}

impl ReadTable {
    /// The boundary `now_ms`: counts the cells taken at the last boundary with whether
    /// their object was read in the window that ended (from `store`), and refreshes the
    /// chances. Call before [`ReadTable::take`] at the same boundary.
    pub fn label(&mut self, store: &FeatureStore, now_ms: i64) {
        for &(object, cell) in &self.pending {
            let cell = usize::from(cell);
            self.objects[cell] += 1.0;
            if store.reads_in_last_window(object, now_ms) > 0 {
                self.reads[cell] += 1.0;
            }
        }
        self.pending.clear();
        self.read_below.clear();
        self.read_below.push(0);
        let mut read_so_far = 0u32;
        for object in 0..store.len() {
            read_so_far += u32::from(store.reads_in_last_window(object, now_ms) > 0);
            self.read_below.push(read_so_far);
        }
        let total: f64 = self.objects.iter().sum();
        let read: f64 = self.reads.iter().sum();
        let base = if total > 0.0 { read / total } else { 0.0 };
        for ((chance, &objects), &reads) in
            self.chance.iter_mut().zip(&self.objects).zip(&self.reads)
        {
            *chance = (reads + PRIOR * base) / (objects + PRIOR);
        }
    }

    /// Objects among the [`NEIGHBOURS`] ids on each side of `object` read in the window that
    /// ended at the boundary last labelled ([`ReadTable::label`]).
    pub fn neighbours_read(&self, object: u32) -> u32 {
        let known = self.read_below.len() - 1;
        let at = (object as usize).min(known);
        let low = at.saturating_sub(NEIGHBOURS as usize);
        let high = (at + NEIGHBOURS as usize + 1).min(known);
        let around = self.read_below[high] - self.read_below[low];
        let itself = if at < known {
            self.read_below[at + 1] - self.read_below[at]
        } else {
            0
        };
        around - itself
    }

    /// Takes `object`'s cell at this boundary (counted at the next one) and returns the
    /// chance of a read the table gives it, from the windows before.
    pub fn take(&mut self, object: u32, signals: &ReadSignals) -> f64 {
        let cell = signals.cell();
        // CELLS < u16::MAX, so the cell fits.
        self.pending.push((object, cell as u16));
        self.chance[cell]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::FEATURE_NAMES;
    use crate::stats::Op;
    use crate::trace::TraceRequest;

    #[test]
    fn the_signals_come_from_the_columns_of_their_names() {
        assert_eq!(FEATURE_NAMES[READS_LAST_1], "reads_last_1");
        assert_eq!(FEATURE_NAMES[READS_LAST_16], "reads_last_16");
        assert_eq!(
            FEATURE_NAMES[WINDOWS_SINCE_LAST_ACCESS],
            "windows_since_last_access"
        );
    }

    #[test]
    fn every_cell_is_in_the_table_and_signals_that_differ_in_one_step_differ_in_cell() {
        let extreme = ReadSignals {
            trees: 1e9,
            reads_last_1: 1e9,
            reads_last_16: 1e9,
            windows_idle: 1e9,
            neighbours_read: 8,
        };
        assert_eq!(extreme.cell(), CELLS - 1);
        let nothing = ReadSignals {
            windows_idle: f64::NAN,
            ..ReadSignals::default()
        };
        assert_eq!(nothing.cell(), 0);
        let read_once = ReadSignals {
            reads_last_1: 1.0,
            ..ReadSignals::default()
        };
        assert_ne!(read_once.cell(), ReadSignals::default().cell());
    }

    #[test]
    fn a_cell_whose_objects_are_read_every_window_gets_a_high_chance_and_an_idle_one_a_low() {
        const W: i64 = 1000;
        let read = |object: u32, time_ms: i64| TraceRequest {
            time_ms,
            object,
            op: Op::Read,
            size: None,
        };
        let mut store = FeatureStore::new(W);
        let mut table = ReadTable::default();
        // Objects 0..10 are read in every window; objects 100..110 never after the first.
        for object in 100..110 {
            store.record(&read(object, 0));
        }
        let busy = ReadSignals {
            reads_last_1: 1.0,
            ..ReadSignals::default()
        };
        let idle = ReadSignals {
            windows_idle: 20.0,
            ..ReadSignals::default()
        };
        let (mut busy_chance, mut idle_chance) = (0.0, 0.0);
        for window in 1..50 {
            for object in 0..10 {
                store.record(&read(object, window * W - 1));
            }
            table.label(&store, window * W);
            for object in 0..10 {
                busy_chance = table.take(object, &busy);
            }
            for object in 100..110 {
                idle_chance = table.take(object, &idle);
            }
        }
        assert!(busy_chance > 0.9, "{busy_chance}");
        assert!(idle_chance < 0.1, "{idle_chance}");
        assert_eq!(table.neighbours_read(5), 8);
        assert_eq!(table.neighbours_read(0), 4);
        assert_eq!(table.neighbours_read(100), 0);
        assert_eq!(table.neighbours_read(1_000), 0);
    }
}
