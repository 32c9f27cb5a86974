//! Per-object, per-window features from access history, kept in vectors indexed by object
//! id (memory proportional to the objects, a few field updates per request).
//!
//! Features are taken at a window boundary `now_ms` (the start of window `k`) and describe
//! only what happened before it; the target is what happens in window `k`. Durations are
//! counted in windows so that one model fits traces of any clock.
//!
//! The issue also names the heat of keys sharing an object's prefix: trace objects are
//! dense ids without prefixes, so that feature is not computed here.

use crate::stats::Op;
use crate::trace::TraceRequest;
use crate::units::{DAY_MS, HOUR_MS};

/// Windows of read counts kept per object (the longest horizon).
pub const RING: usize = 16;

/// The features, in the order of a feature row.
pub const FEATURE_NAMES: [&str; 14] = [
    "reads_last_1",
    "reads_last_4",
    "reads_last_16",
    "decayed_reads_fast",
    "decayed_reads_slow",
    "windows_since_last_access",
    "inter_arrival_mean_windows",
    "inter_arrival_var_windows",
    "log2_size",
    "age_windows",
    "read_share",
    "hour_of_day",
    "day_of_week",
    "writes_last_1",
];

/// Columns of a feature row.
pub const FEATURES: usize = FEATURE_NAMES.len();

/// Half-lives of the decayed read rates, in windows.
const FAST_HALF_LIFE: f64 = 1.0;
const SLOW_HALF_LIFE: f64 = 8.0;

/// One object's history.
#[derive(Clone, Copy, Debug)]
struct History {
    first_ms: i64,
    last_ms: i64,
    /// The window of the last access (`ring` holds windows `last_window - 15..=last_window`).
    last_window: u32,
    ring: [u16; RING],
    writes_last_window: u16,
    reads: u32,
    writes: u32,
    fast: f64,
    slow: f64,
    rate_at_ms: i64,
    gaps: u32,
    gap_mean: f64,
    gap_m2: f64,
}

const UNSEEN: History = History {
    first_ms: i64::MIN,
    last_ms: i64::MIN,
    last_window: 0,
    ring: [0; RING],
    writes_last_window: 0,
    reads: 0,
    writes: 0,
    fast: 0.0,
    slow: 0.0,
    rate_at_ms: 0,
    gaps: 0,
    gap_mean: 0.0,
    gap_m2: 0.0,
};

/// Access histories of every object seen, by id.
#[derive(Clone, Debug)]
pub struct FeatureStore {
    window_ms: i64,
    histories: Vec<History>,
}

impl FeatureStore {
    /// An empty store for windows of `window_ms` (at least 1).
    pub fn new(window_ms: i64) -> Self {
        FeatureStore {
            window_ms: window_ms.max(1),
            histories: Vec::new(),
        }
    }

    /// The window length, ms.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// Records one request (a delete forgets the object's history).
    pub fn record(&mut self, request: &TraceRequest) {
        let index = request.object as usize;
        if self.histories.len() <= index {
            self.histories.resize(index + 1, UNSEEN);
        }
        let window_ms = self.window_ms;
        let h = &mut self.histories[index];
        if request.op == Op::Delete {
            *h = UNSEEN;
            return;
        }
        // Requests come in time order; one that does not is counted at the latest time seen
        // (never a negative gap, never a window behind the ring).
        let now = if h.first_ms == i64::MIN {
            request.time_ms
        } else {
            request.time_ms.max(h.last_ms)
        };
        let window = u32::try_from(now / window_ms).unwrap_or(u32::MAX);
        if h.first_ms == i64::MIN {
            h.first_ms = now;
            h.rate_at_ms = now;
            h.last_window = window;
        } else {
            let gap = (now - h.last_ms) as f64 / window_ms as f64;
            h.gaps += 1;
            let delta = gap - h.gap_mean;
            h.gap_mean += delta / f64::from(h.gaps);
            h.gap_m2 += delta * (gap - h.gap_mean);
        }
        if window != h.last_window {
            // Clear the windows between the last access and this one (at most the ring).
            let skipped = (window - h.last_window).min(RING as u32);
            for step in 1..=skipped {
                h.ring[((h.last_window + step) as usize) % RING] = 0;
            }
            h.writes_last_window = 0;
            h.last_window = window;
        }
        h.last_ms = now;
        if request.op == Op::Read {
            let slot = &mut h.ring[(window as usize) % RING];
            *slot = slot.saturating_add(1);
            h.reads = h.reads.saturating_add(1);
            let elapsed = (now - h.rate_at_ms).max(0) as f64 / window_ms as f64;
            h.fast = h.fast * (-elapsed / FAST_HALF_LIFE).exp2() + 1.0;
            h.slow = h.slow * (-elapsed / SLOW_HALF_LIFE).exp2() + 1.0;
            h.rate_at_ms = now;
        } else {
            h.writes_last_window = h.writes_last_window.saturating_add(1);
            h.writes = h.writes.saturating_add(1);
        }
    }

    /// The last access of an object, if it has one.
    pub fn last_access_ms(&self, object: u32) -> Option<i64> {
        self.histories
            .get(object as usize)
            .map(|h| h.last_ms)
            .filter(|&ms| ms != i64::MIN)
    }

    /// An object's last read (ms), if it has one (its first access if it was never read).
    pub fn last_read_ms(&self, object: u32) -> Option<i64> {
        self.histories
            .get(object as usize)
            .filter(|h| h.first_ms != i64::MIN)
            .map(|h| h.rate_at_ms)
    }

    /// An object's reads over its life (0 if never seen).
    pub fn reads(&self, object: u32) -> u32 {
        self.histories.get(object as usize).map_or(0, |h| h.reads)
    }

    /// An object's reads in the window that ends at the boundary `now_ms`.
    pub fn reads_in_last_window(&self, object: u32, now_ms: i64) -> u32 {
        let current = u32::try_from(now_ms / self.window_ms).unwrap_or(u32::MAX);
        current
            .checked_sub(1)
            .map_or(0, |window| self.reads_in_window(object, window))
    }

    /// An object's reads so far in window `window` (0 if that is not its last accessed one).
    pub fn reads_in_window(&self, object: u32, window: u32) -> u32 {
        match self.histories.get(object as usize) {
            Some(h) if h.first_ms != i64::MIN && h.last_window == window => {
                u32::from(h.ring[(window as usize) % RING])
            }
            _ => 0,
        }
    }

    /// Ids below this may have a history.
    pub fn len(&self) -> u32 {
        u32::try_from(self.histories.len()).unwrap_or(u32::MAX)
    }

    /// Whether no object was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.histories.is_empty()
    }

    /// An object's reads per window over its whole life up to `now_ms` (0 if never seen):
    /// the floor under a forecast, so that a zero forecast does not send an object that is
    /// read now and then to a tier where reads are dear.
    pub fn lifetime_reads_per_window(&self, object: u32, now_ms: i64) -> f64 {
        let Some(h) = self
            .histories
            .get(object as usize)
            .filter(|h| h.first_ms != i64::MIN)
        else {
            return 0.0;
        };
        let age = ((now_ms - h.first_ms) as f64 / self.window_ms as f64).max(1.0);
        f64::from(h.reads) / age
    }

    /// Appends the features of `object` at the window boundary `now_ms` (every access
    /// recorded so far must be before it) to `row`; `size` is the object's size in bytes.
    pub fn features(&self, object: u32, size: u64, now_ms: i64, row: &mut Vec<f64>) {
        let h = self.histories.get(object as usize).unwrap_or(&UNSEEN);
        let w = self.window_ms as f64;
        let current = u32::try_from(now_ms / self.window_ms).unwrap_or(u32::MAX);
        let reads_since = |horizon: u32| -> f64 {
            (1..=horizon)
                .filter_map(|back| current.checked_sub(back))
                .filter(|&win| {
                    h.first_ms != i64::MIN
                        && win <= h.last_window
                        && h.last_window - win < RING as u32
                })
                .map(|win| f64::from(h.ring[(win as usize) % RING]))
                .sum()
        };
        let seen = h.first_ms != i64::MIN;
        let since_rate = (now_ms - h.rate_at_ms).max(0) as f64 / w;
        let (since_last, age) = if seen {
            (
                (now_ms - h.last_ms) as f64 / w,
                (now_ms - h.first_ms) as f64 / w,
            )
        } else {
            (f64::NAN, 0.0)
        };
        let accesses = f64::from(h.reads) + f64::from(h.writes);
        let writes_last_1 = if seen && current.checked_sub(1) == Some(h.last_window) {
            f64::from(h.writes_last_window)
        } else {
            0.0
        };
        row.extend_from_slice(&[
            reads_since(1),
            reads_since(4),
            reads_since(16),
            h.fast * (-since_rate / FAST_HALF_LIFE).exp2(),
            h.slow * (-since_rate / SLOW_HALF_LIFE).exp2(),
            since_last,
            if h.gaps > 0 { h.gap_mean } else { f64::NAN },
            if h.gaps > 1 {
                h.gap_m2 / f64::from(h.gaps - 1)
            } else {
                f64::NAN
            },
            (size.max(1) as f64).log2(),
            age,
            if accesses > 0.0 {
                f64::from(h.reads) / accesses
            } else {
                f64::NAN
            },
            ((now_ms / HOUR_MS) % 24) as f64,
            ((now_ms / DAY_MS) % 7) as f64,
            writes_last_1,
        ]);
    }
}
