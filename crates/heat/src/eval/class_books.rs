//! Per-class books of a replay: the costs of a replay attributed to classes of objects, for
//! the per-class selection of `learned` (`policies/selection.rs`).
//!
//! An object's class is known walk-forward, from what the trace showed of it so far: the
//! reads so far in powers of two (0, 1, 2-3, 4-7, … 64 and more: 8 buckets) times its size
//! (under [`SMALL_OBJECT`] or not): [`CLASSES`] classes, the same in every replay of the
//! same trace, whatever the placement. Everything a replay counts for an object (storage
//! while it is on a tier, its reads and writes, its moves) goes to the class it is in at
//! the time; an object whose class changes takes its storage and its reads of the current
//! window with it from then on. Memory: one byte per object (in its slot) and a few arrays
//! per class.

use crate::cost::{Tally, TierTally};

/// Buckets of reads so far: 0, 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64 and more.
const READ_BUCKETS: u32 = 8;

/// Objects under this many bytes are in the small half of the classes.
pub const SMALL_OBJECT: u64 = 64 * 1024;

/// How many classes there are.
pub const CLASSES: usize = READ_BUCKETS as usize * 2;

/// The class of an object read `reads` times so far, of `size` bytes.
pub fn class_of(reads: u32, size: u64) -> u8 {
    let bucket = (u32::BITS - reads.leading_zeros()).min(READ_BUCKETS - 1);
    (bucket * 2 + u32::from(size >= SMALL_OBJECT)) as u8
}

/// One class's objects on one tier.
#[derive(Clone, Copy, Debug, Default)]
struct Residents {
    /// Storage charged so far, bytes × ms (negative while an object that joined the class
    /// carries the storage from before it joined).
    stored: i128,
    /// Bytes on the tier now.
    used: u64,
    /// Sum over the residents of size × the time placed on the tier.
    placed: i128,
    /// Objects on the tier now.
    count: u64,
}

/// An object as the books see it: its class, size, tier, when it was placed there, and its
/// reads and writes of the current window (zero if counted in another window).
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub class: u8,
    pub size: u64,
    pub tier: usize,
    pub placed_at_ms: i64,
    pub window_reads: u32,
    pub window_writes: u32,
}

/// Per class: counts, residents by tier, and the reads of the current and last window by
/// tier.
#[derive(Clone, Debug)]
pub(super) struct ClassBooks {
    tally: Vec<Tally>,
    residents: Vec<Vec<Residents>>,
    current: Vec<Vec<TierTally>>,
    last: Vec<Vec<TierTally>>,
}

impl ClassBooks {
    /// Empty books on `tiers` tiers.
    pub fn new(tiers: usize) -> Self {
        ClassBooks {
            tally: vec![Tally::new(tiers); CLASSES],
            residents: vec![vec![Residents::default(); tiers]; CLASSES],
            current: vec![vec![TierTally::default(); tiers]; CLASSES],
            last: vec![vec![TierTally::default(); tiers]; CLASSES],
        }
    }

    /// The books of `entry`'s class on its tier.
    fn resident_mut(&mut self, entry: &Entry) -> Option<&mut Residents> {
        self.residents
            .get_mut(usize::from(entry.class))
            .and_then(|c| c.get_mut(entry.tier))
    }

    /// An object enters a tier (placed at `entry.placed_at_ms`).
    pub fn enter(&mut self, entry: &Entry) {
        let Some(r) = self.resident_mut(entry) else {
            return;
        };
        r.used = r.used.saturating_add(entry.size);
        r.placed += i128::from(entry.size) * i128::from(entry.placed_at_ms);
        r.count += 1;
        self.count_window(entry, true);
    }

    /// An object leaves its tier at `now_ms`: its storage there is charged to its class.
    pub fn leave(&mut self, entry: &Entry, now_ms: i64) {
        let Some(r) = self.resident_mut(entry) else {
            return;
        };
        let size = i128::from(entry.size);
        r.stored += size * i128::from(now_ms.saturating_sub(entry.placed_at_ms).max(0));
        r.used = r.used.saturating_sub(entry.size);
        r.placed -= size * i128::from(entry.placed_at_ms);
        r.count = r.count.saturating_sub(1);
        self.count_window(entry, false);
    }

    /// An object changes class at `now_ms` (on its tier): the storage so far stays with the
    /// old class, from now on it goes to `to`.
    pub fn reclass(&mut self, entry: &Entry, to: u8, now_ms: i64) {
        self.leave(entry, now_ms);
        let moved = Entry {
            class: to,
            ..*entry
        };
        self.enter(&moved);
        let held =
            i128::from(entry.size) * i128::from(now_ms.saturating_sub(entry.placed_at_ms).max(0));
        if let Some(r) = self
            .residents
            .get_mut(usize::from(to))
            .and_then(|c| c.get_mut(entry.tier))
        {
            r.stored -= held;
        }
    }

    /// Adds (or takes away) an object's counts of the current window.
    fn count_window(&mut self, entry: &Entry, add: bool) {
        let Some(counts) = self
            .current
            .get_mut(usize::from(entry.class))
            .and_then(|c| c.get_mut(entry.tier))
        else {
            return;
        };
        counts.count_window(entry.window_reads, entry.window_writes, entry.size, add);
    }

    /// A request served on `tier`: its cost charged to class `charged` (the object's when
    /// the request came), its count in the window to class `counted` (the object's now).
    pub fn serve(
        &mut self,
        [charged, counted]: [u8; 2],
        tier: usize,
        read: bool,
        bytes: u128,
        size: u64,
    ) {
        let class = usize::from(charged);
        if let Some(t) = self
            .tally
            .get_mut(class)
            .and_then(|t| t.tiers.get_mut(tier))
        {
            if read {
                t.reads += 1;
                t.read_bytes += bytes;
            } else {
                t.writes += 1;
            }
        }
        let class = usize::from(counted);
        if let Some(c) = self.current.get_mut(class).and_then(|c| c.get_mut(tier)) {
            if read {
                c.reads += 1;
                c.read_bytes += u128::from(size);
            } else {
                c.writes += 1;
            }
        }
    }

    /// A move of an object of `class` from `from` to `to`.
    pub fn moved(&mut self, class: u8, from: usize, to: usize, size: u64) {
        let Some(tally) = self.tally.get_mut(usize::from(class)) else {
            return;
        };
        if let Some(out) = tally.tiers.get_mut(from) {
            out.moves_out += 1;
            out.moved_out_bytes += u128::from(size);
        }
        if let Some(into) = tally.tiers.get_mut(to) {
            into.moves_in += 1;
        }
    }

    /// A new window starts: the current window's counts become the last's.
    pub fn open_window(&mut self) {
        std::mem::swap(&mut self.current, &mut self.last);
        for class in &mut self.current {
            class.fill(TierTally::default());
        }
    }

    /// A class's objects on a tier now: how many, and their bytes.
    pub fn residents(&self, class: usize, tier: usize) -> (u64, u64) {
        self.residents
            .get(class)
            .and_then(|c| c.get(tier))
            .map_or((0, 0), |r| (r.count, r.used))
    }

    /// A class's mark to market (see `ReplayState::mark_to_market`): its counts so far, its
    /// storage up to `now_ms`, `tail_ms` more of its present placement, and its reads of
    /// the blended window times `reads_times`. `elapsed`: the share of the window under way
    /// that weighs its reads (the rest is the last window's).
    pub fn mark(
        &self,
        class: usize,
        now_ms: i64,
        tail_ms: u128,
        reads_times: f64,
        elapsed: f64,
    ) -> Tally {
        let (Some(tally), Some(residents), Some(current), Some(last)) = (
            self.tally.get(class),
            self.residents.get(class),
            self.current.get(class),
            self.last.get(class),
        ) else {
            return Tally::default();
        };
        let mut tally = tally.clone();
        let blend = |current: f64, last: f64| {
            (reads_times * (elapsed * current + (1.0 - elapsed) * last)).round()
        };
        for (((counts, r), current), last) in
            tally.tiers.iter_mut().zip(residents).zip(current).zip(last)
        {
            let stored = r.stored + i128::from(r.used) * i128::from(now_ms) - r.placed;
            counts.byte_ms += stored.max(0) as u128 + tail_ms * u128::from(r.used);
            counts.reads += blend(current.reads as f64, last.reads as f64) as u64;
            counts.read_bytes += blend(current.read_bytes as f64, last.read_bytes as f64) as u128;
            counts.writes += blend(current.writes as f64, last.writes as f64) as u64;
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::{class_of, ClassBooks, Entry, SMALL_OBJECT};

    #[test]
    fn classes_are_reads_in_powers_of_two_times_two_sizes() {
        assert_eq!(class_of(0, 10), 0);
        assert_eq!(class_of(0, SMALL_OBJECT), 1);
        assert_eq!(class_of(1, 10), 2);
        assert_eq!(class_of(3, 10), 4);
        assert_eq!(class_of(4, 10), 6);
        assert_eq!(class_of(1000, SMALL_OBJECT), 15);
        assert_eq!(class_of(u32::MAX, 0), 14);
    }

    #[test]
    fn an_object_changing_class_takes_its_storage_from_then_on() {
        let mut books = ClassBooks::new(2);
        let entry = Entry {
            class: 0,
            size: 10,
            tier: 1,
            placed_at_ms: 100,
            window_reads: 0,
            window_writes: 0,
        };
        books.enter(&entry);
        books.reclass(&entry, 2, 300);
        books.leave(&Entry { class: 2, ..entry }, 1000);
        let old = books.mark(0, 1000, 0, 0.0, 0.0);
        let new = books.mark(2, 1000, 0, 0.0, 0.0);
        assert_eq!(old.tiers[1].byte_ms, 10 * 200);
        assert_eq!(new.tiers[1].byte_ms, 10 * 700);
    }
}
