//! Time to an object's next read, learned walk-forward as a discrete-time hazard.
//!
//! Most of what the offline optimum saves comes from knowing that an object will not be
//! read for a long time (it can go to a tier where storage is cheap and reads are dear), so
//! besides the next window's reads ([`super::ForecastModel`]) the forecast learns how long
//! objects stay unread. At each window boundary every object is in a cell: its class (its
//! reads so far, in powers of two) and its idle age (windows since its last read, in powers
//! of two). The cell's hazard is the share of the objects in it at a boundary that were read
//! in the window after; objects still unread at the end are counted as at risk for the
//! windows they were seen (right-censored, as in a life table), never as "never read
//! again". The chance of a read in the next `H` windows of an object idle for `a` windows
//! is `1 − Π (1 − hazard(class, a + j))` for `j < H`; ages past the oldest observed use the
//! oldest observed hazard. Sparse cells lean on the cell of the same age over all classes
//! ([`PRIOR_WEIGHT`] boundaries' worth); no hazard is below Laplace's rule of succession
//! for its cell, `(reads + 1) / (at risk + 2)`: the decisions it feeds are lopsided (a read
//! on an archive costs more than months of storage saved), and a cell that has seen few
//! objects must not promise that none of them will be read. Only what happened before a boundary is counted
//! at it. Memory: two bytes per object and two small tables.
//!
//! It also learns, per class, how many reads a window has in which an object is read at all
//! (a histogram, the window of an object's first appearance counted in the class of no
//! reads): what the reads of an object so far in a window predict about the rest of its
//! burst ([`IdleModel::more_reads`]).

use super::features::FeatureStore;

/// Idle ages in powers of two: 0, 1, 2–3, 4–7, …, 2^17 windows and more.
pub const AGE_BUCKETS: usize = 19;
/// Classes by reads so far: 0, 1, 2–3, 4–7, …, 64 and more.
pub const CLASSES: usize = 8;
/// Reads a window counted one by one in the burst histogram; more go in the last bin.
pub const BURST_BINS: usize = 64;
/// Observations a cell needs before its own hazard outweighs its age's over all classes.
pub const PRIOR_WEIGHT: f64 = 20.0;

const NONE: u16 = u16::MAX;

/// Idle ages (windows) [`DemotionTable`] tells apart; older ones are taken as this old, and
/// look-aheads are at most this long.
pub const DEMOTION_AGES: usize = 256;

/// When a demotion of an idle object pays against waiting (a ski-rental decision, learned):
/// per class and idle age `a`, the largest ratio over look-aheads `k` of `P(read within k
/// windows)` to the expected windows it stays unread within them. Demoting now rather than
/// after `k` more idle windows costs the read on the colder tier (and the moves back) with
/// the first, and saves the storage difference for the second; so the demotion pays against
/// every later one when `storage saved per window / (dearer read + moves)` is at least the
/// ratio. Looking at every `k`, not only the next few windows, keeps up an object whose
/// class is read again at older idle ages than its own (a hazard that rises again: a loop
/// over the data), which the next windows' hazard alone would miss.
#[derive(Clone, Debug)]
pub struct DemotionTable {
    ratio: Vec<f64>,
}

impl DemotionTable {
    /// The least `storage saved per window / (dearer read + moves)` at which an object with
    /// `reads` reads so far, idle for `age` windows, is better demoted now than later.
    pub fn threshold(&self, reads: u32, age: u64) -> f64 {
        let class = cell(reads, 0) / AGE_BUCKETS;
        let age = (age as usize).min(DEMOTION_AGES - 1);
        self.ratio[class * DEMOTION_AGES + age]
    }
}

/// What an event not seen in the windows so far (a scan of idle objects) is taken to do to
/// one idle object over a stay of some windows: Laplace's rule for the first such event.
/// With a uniform prior on its chance `p` per window and none in `seen` windows, the chance
/// that none comes in the next `j` is `(seen + 1) / (seen + j + 1)`; the event reads a share
/// `reach` of idle objects. Why not a chance per window: an object read by a scan is moved
/// back up at its first read, so only the first event within a stay costs its read on the
/// slow tier; charging `reach / (seen + 2)` in every window of the stay counts later events
/// again, and over a long stay charges several reads where one is at stake.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnseenEvent {
    /// Windows in the stay.
    pub windows: f64,
    /// The chance that the object is read by such an event within the stay.
    pub chance: f64,
    /// Windows of the stay expected to end with the object not yet read by one (a window
    /// counts only if no event came by its end).
    pub unread: f64,
}

impl UnseenEvent {
    /// Over a stay of `windows` (whole windows, at least 1) after `seen` windows without the
    /// event, reaching `reach` of idle objects.
    pub fn over(seen: u32, windows: u32, reach: f64) -> Self {
        let seen = f64::from(seen);
        let reach = reach.clamp(0.0, 1.0);
        let windows = windows.max(1);
        let mut unread = 0.0;
        for j in 1..=windows {
            let j = f64::from(j);
            unread += 1.0 - reach * j / (seen + j + 1.0);
        }
        let stay = f64::from(windows);
        UnseenEvent {
            windows: stay,
            chance: reach * stay / (seen + stay + 1.0),
            unread,
        }
    }
}

/// The cell of an object idle for `age` windows with `reads` reads so far.
fn cell(reads: u32, age: u64) -> usize {
    let class = ((32 - reads.leading_zeros()) as usize).min(CLASSES - 1);
    let bucket = ((64 - age.leading_zeros()) as usize).min(AGE_BUCKETS - 1);
    class * AGE_BUCKETS + bucket
}

/// The first idle age of bucket `bucket`.
fn bucket_start(bucket: usize) -> u64 {
    if bucket == 0 {
        0
    } else {
        1 << (bucket - 1)
    }
}

/// Walk-forward life table of idle time; see the module documentation.
#[derive(Clone, Debug)]
pub struct IdleModel {
    window_ms: i64,
    at_risk: Vec<f64>,
    events: Vec<f64>,
    /// `ln(1 − hazard)` per cell, as of the last boundary.
    log_stay: Vec<f64>,
    /// Per class and reads `n` of a window (1..BURST_BINS, the last bin for more): windows
    /// with `n` reads, and the reads of those windows.
    burst_windows: Vec<f64>,
    burst_reads: Vec<f64>,
    /// Per object: its cell at the last boundary, or [`NONE`].
    previous: Vec<u16>,
    previous_boundary_ms: i64,
    boundaries: u32,
}

impl IdleModel {
    /// An empty table for windows of `window_ms`.
    pub fn new(window_ms: i64) -> Self {
        IdleModel {
            window_ms: window_ms.max(1),
            at_risk: vec![0.0; CLASSES * AGE_BUCKETS],
            events: vec![0.0; CLASSES * AGE_BUCKETS],
            log_stay: vec![0.0; CLASSES * AGE_BUCKETS],
            burst_windows: vec![0.0; CLASSES * BURST_BINS],
            burst_reads: vec![0.0; CLASSES * BURST_BINS],
            previous: Vec::new(),
            previous_boundary_ms: i64::MIN,
            boundaries: 0,
        }
    }

    /// Boundaries seen: the longest idle time the table has evidence of, in windows.
    pub fn boundaries(&self) -> u32 {
        self.boundaries
    }

    /// The window boundary `now_ms`: counts, for every object that had a cell at the last
    /// boundary, whether it was read in the window that ended, then takes every object's
    /// cell now and recomputes the hazards.
    pub fn boundary(&mut self, now_ms: i64, store: &FeatureStore) {
        let objects = store.len() as usize;
        self.previous.resize(objects, NONE);
        for object in 0..objects {
            let id = object as u32;
            let before = self.previous[object];
            let window_reads = store.reads_in_last_window(id, now_ms);
            if before != NONE {
                let before = usize::from(before);
                self.at_risk[before] += 1.0;
                let read = store
                    .last_read_ms(id)
                    .is_some_and(|at| at >= self.previous_boundary_ms);
                if read {
                    self.events[before] += 1.0;
                    self.count_burst(before / AGE_BUCKETS, window_reads);
                }
            } else if window_reads > 0 {
                // Appeared in the window that ended: its first burst, in the class of no reads.
                self.count_burst(0, window_reads);
            }
            self.previous[object] = match store.last_read_ms(id) {
                Some(last) if last < now_ms => {
                    let age = ((now_ms - last) / self.window_ms) as u64;
                    cell(store.reads(id), age) as u16
                }
                _ => NONE,
            };
        }
        self.previous_boundary_ms = now_ms;
        self.boundaries += 1;
        self.refresh();
    }

    fn count_burst(&mut self, class: usize, reads: u32) {
        if reads == 0 {
            return;
        }
        let bin = (reads as usize).min(BURST_BINS - 1);
        self.burst_windows[class * BURST_BINS + bin] += 1.0;
        self.burst_reads[class * BURST_BINS + bin] += f64::from(reads);
    }

    /// Recomputes `log_stay` from the counts.
    fn refresh(&mut self) {
        // Each age over all classes, with ages never observed taking the last observed.
        let mut by_age = [0.0f64; AGE_BUCKETS];
        let mut last = 0.0;
        for (bucket, slot) in by_age.iter_mut().enumerate() {
            let (mut risk, mut events) = (0.0, 0.0);
            for class in 0..CLASSES {
                risk += self.at_risk[class * AGE_BUCKETS + bucket];
                events += self.events[class * AGE_BUCKETS + bucket];
            }
            if risk > 0.0 {
                // Laplace's rule: no read seen yet is evidence of a small hazard, not of
                // none (a hazard of 0 would call any stay on a slow tier safe).
                last = (events + 1.0) / (risk + 2.0);
            }
            *slot = last;
        }
        for class in 0..CLASSES {
            let mut class_last = None;
            for (bucket, &prior) in by_age.iter().enumerate() {
                let index = class * AGE_BUCKETS + bucket;
                let risk = self.at_risk[index];
                let hazard = if risk > 0.0 {
                    // Never below Laplace's estimate for the cell alone: no read in `risk`
                    // windows does not show a hazard far below 1 / risk.
                    let h = ((self.events[index] + PRIOR_WEIGHT * prior) / (risk + PRIOR_WEIGHT))
                        .max((self.events[index] + 1.0) / (risk + 2.0));
                    class_last = Some(h);
                    h
                } else {
                    class_last.unwrap_or(prior)
                };
                // A hazard of 1 would make every longer stay impossible; keep it below.
                self.log_stay[index] = (1.0 - hazard.min(0.999_999)).ln();
            }
        }
    }

    /// The chance that `object` is read at least once in the next `windows` windows from the
    /// boundary `now_ms` (1 for an object never seen: nothing is known).
    pub fn read_probability(
        &self,
        store: &FeatureStore,
        object: u32,
        now_ms: i64,
        windows: f64,
    ) -> f64 {
        let Some(last) = store.last_read_ms(object) else {
            return 1.0;
        };
        let age = ((now_ms - last).max(0) / self.window_ms) as u64;
        self.read_probability_at(store.reads(object), age, windows)
    }

    /// The chance that an object with `reads` reads so far, unread for `age` windows, is
    /// read at least once in the next `windows` windows.
    pub fn read_probability_at(&self, reads: u32, age: u64, windows: f64) -> f64 {
        let first = cell(reads, age);
        let row = first - first % AGE_BUCKETS;
        let mut log_stay = 0.0;
        let mut at = age as f64;
        let end = age as f64 + windows.max(0.0);
        let mut bucket = first - row;
        while at < end {
            let bucket_end = if bucket + 1 < AGE_BUCKETS {
                bucket_start(bucket + 1) as f64
            } else {
                f64::INFINITY
            };
            let span = bucket_end.min(end) - at;
            log_stay += span * self.log_stay[row + bucket];
            at += span;
            bucket += 1;
        }
        1.0 - log_stay.exp()
    }

    /// The ski-rental table of demotions ([`DemotionTable`]), looking at most `horizon`
    /// windows ahead (the evidence the table has: its [`IdleModel::boundaries`]), for idle
    /// ages up to [`DEMOTION_AGES`].
    pub fn demotion_table(&self, horizon: u32) -> DemotionTable {
        let horizon = (horizon as usize).clamp(1, DEMOTION_AGES);
        let span = DEMOTION_AGES + horizon;
        let mut ratio = vec![0.0; CLASSES * DEMOTION_AGES];
        let mut stay = vec![0.0; span];
        for class in 0..CLASSES {
            let row = class * AGE_BUCKETS;
            for (age, slot) in stay.iter_mut().enumerate() {
                *slot = self.log_stay[row + cell(0, age as u64)].exp();
            }
            for age in 0..DEMOTION_AGES {
                // Over look-aheads of 1..=horizon windows: the chance of a read within it
                // against the windows the object stays unread in it (survival summed).
                let (mut survive, mut unread, mut best) = (1.0f64, 0.0f64, 0.0f64);
                for &next in &stay[age..age + horizon] {
                    unread += survive;
                    survive *= next;
                    best = best.max((1.0 - survive) / unread);
                }
                ratio[class * DEMOTION_AGES + age] = best;
            }
        }
        DemotionTable { ratio }
    }

    /// Mean reads of a window in which an object of `reads` reads before it is read at all
    /// (1 before anything was learned).
    pub fn reads_when_read(&self, reads: u32) -> f64 {
        self.more_reads(reads, 0)
    }

    /// Expected further reads in the current window of an object that had `reads` reads
    /// before it and `so_far` in it: over past windows of its class with at least
    /// `so_far` reads, their mean reads less `so_far` (0 before anything was learned, or
    /// when no window had that many; `so_far` = 0 gives the mean reads of a read window,
    /// 1 before anything was learned).
    pub fn more_reads(&self, reads: u32, so_far: u32) -> f64 {
        let class = cell(reads, 0) / AGE_BUCKETS;
        let bins = class * BURST_BINS..(class + 1) * BURST_BINS;
        let from = (so_far as usize).clamp(1, BURST_BINS - 1);
        let windows: f64 = self.burst_windows[bins.clone()][from..].iter().sum();
        let total: f64 = self.burst_reads[bins][from..].iter().sum();
        if windows > 0.0 {
            (total / windows - f64::from(so_far)).max(0.0)
        } else if so_far == 0 {
            1.0
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Op;
    use crate::trace::TraceRequest;

    const W: i64 = 1000;

    fn read(object: u32, time_ms: i64) -> TraceRequest {
        TraceRequest {
            time_ms,
            object,
            op: Op::Read,
            size: None,
        }
    }

    #[test]
    fn objects_read_every_window_are_likely_read_and_objects_never_reread_are_not() {
        let mut store = FeatureStore::new(W);
        let mut model = IdleModel::new(W);
        // Object 0 is read in every window; objects 1..=50 once each, at the start, never again.
        for object in 1..=50 {
            store.record(&read(object, 0));
        }
        for window in 0..40 {
            store.record(&read(0, window * W + 10));
            model.boundary((window + 1) * W, &store);
        }
        let now = 40 * W;
        let busy = model.read_probability(&store, 0, now, 1.0);
        let idle = model.read_probability(&store, 7, now, 10.0);
        assert!(busy > 0.9, "busy object: {busy}");
        assert!(idle < 0.05, "object idle since the start: {idle}");
        assert!(model.read_probability(&store, 7, now, 100.0) >= idle);
        assert_eq!(model.read_probability(&store, 999, now, 1.0), 1.0);
    }

    #[test]
    fn a_read_in_a_window_is_counted_only_after_its_boundary() {
        let mut store = FeatureStore::new(W);
        let mut model = IdleModel::new(W);
        store.record(&read(0, 10));
        model.boundary(W, &store);
        let before = model.read_probability(&store, 0, W, 1.0);
        // A read inside the next window changes nothing until that window's boundary.
        store.record(&read(0, W + 10));
        assert_eq!(model.at_risk.iter().sum::<f64>(), 0.0);
        model.boundary(2 * W, &store);
        assert_eq!(model.at_risk.iter().sum::<f64>(), 1.0);
        assert_eq!(model.events.iter().sum::<f64>(), 1.0);
        assert!(model.read_probability(&store, 0, 2 * W, 1.0) >= before);
    }

    #[test]
    fn bursts_teach_the_reads_of_a_read_window() {
        let mut store = FeatureStore::new(W);
        let mut model = IdleModel::new(W);
        store.record(&read(0, 10));
        model.boundary(W, &store);
        for i in 0..5 {
            store.record(&read(0, W + i));
        }
        model.boundary(2 * W, &store);
        assert_eq!(model.reads_when_read(1), 5.0);
        assert_eq!(model.more_reads(1, 2), 3.0);
        assert_eq!(model.more_reads(1, 6), 0.0);
        assert_eq!(model.reads_when_read(1_000), 1.0);
        // The window object 0 appeared in (one read) counts for objects never read before.
        assert_eq!(model.reads_when_read(0), 1.0);
        assert_eq!(model.more_reads(0, 1), 0.0);
    }

    #[test]
    fn an_unseen_event_is_counted_once_per_stay_by_laplaces_rule() {
        // After 8 windows without the event, over 2 more: none with chance 9/11.
        let event = UnseenEvent::over(8, 2, 1.0);
        assert!((event.chance - 2.0 / 11.0).abs() < 1e-12);
        // Window 1 ends unread with chance 9/10, window 2 with 9/11.
        assert!((event.unread - (0.9 + 9.0 / 11.0)).abs() < 1e-12);
        // Reaching half of the idle objects halves the chance for one of them.
        let half = UnseenEvent::over(8, 2, 0.5);
        assert!((half.chance - 1.0 / 11.0).abs() < 1e-12);
        // Over a stay as long as the windows seen the chance stays near a half of the
        // reach, where a chance per window would add up to more than the reach.
        let long = UnseenEvent::over(100, 100, 0.5);
        assert!((long.chance - 50.0 / 201.0).abs() < 1e-12);
        assert!(long.chance < 100.0 * 0.5 / 102.0);
        assert!(long.unread > 80.0 && long.unread < 100.0, "{}", long.unread);
        assert_eq!(UnseenEvent::over(5, 0, 0.5).windows, 1.0);
    }

    #[test]
    fn the_demotion_table_sends_down_objects_never_read_again_and_keeps_a_daily_cycle_up() {
        // Objects 0..50 are read once at the start and never again; objects 100..124 are
        // read every 24th window (a daily cycle of hourly windows), each in its own hour.
        let mut store = FeatureStore::new(W);
        let mut model = IdleModel::new(W);
        for object in 0..50 {
            store.record(&read(object, 0));
        }
        for window in 0..24 * 8 {
            let object = 100 + (window % 24) as u32;
            store.record(&read(object, window * W + 10));
            model.boundary((window + 1) * W, &store);
        }
        let table = model.demotion_table(model.boundaries());
        // Read once long ago: the chance of a read per idle window is small at every
        // look-ahead, so a small storage saving against the read already pays.
        let never = table.threshold(1, 150);
        // Read every 24 windows, now idle for 20: the read due in a few windows keeps the
        // ratio far above that of objects never read again, and never below the hazard of
        // the next window alone.
        let cycle = table.threshold(8, 20);
        assert!(never < 0.005, "objects never read again: {never}");
        assert!(
            cycle > 5.0 * never,
            "a daily cycle before its read: {cycle} vs {never}"
        );
        assert!(cycle >= 1.0 - model.log_stay[cell(8, 20)].exp());
        // Ages past the table's last are taken as its last.
        assert_eq!(
            table.threshold(1, DEMOTION_AGES as u64 + 5),
            table.threshold(1, DEMOTION_AGES as u64 - 1)
        );
    }
}
