//! The replay engine: where every object is, what each request and move costs in counts,
//! which moves are refused, and the prediction score of each window. The rules it keeps are
//! in the parent module's doc; this file keeps the books.
//!
//! Per object a fixed slot in a `Vec` indexed by object id (no map, no allocation per
//! request), and per tier the list of its residents (swap-remove with the position kept in
//! the slot), so a policy can scan a tier without scanning every object. The lists are
//! built at the first call of [`ReplayState::residents`] and kept from then on: until a
//! policy reads them (`rules` does only once a tier with a capacity could fill), a move
//! does not pay for them (two cache misses of its own).

use crate::config::{millis, TieringConfig};
use crate::placement::residency_holds;
use crate::stats::Op;
use crate::trace::{TraceRequest, DEFAULT_OBJECT_SIZE};

use super::class_books::{class_of, ClassBooks, Entry};
use super::metrics::Confusion;
use super::{Policy, Predictions, TierIndex, TierRecord};
use crate::cost::{Tally, TierTally};

/// `Slot::tier` of an object that does not exist (not yet seen, or deleted).
const ABSENT: u8 = u8::MAX;
/// A window index no window has.
const NEVER: u32 = u32::MAX;

/// Asks the CPU to start loading every cache line of `value`: a hint, with no effect on
/// any result. Why: a replay's per-object data (statistics, slots) spans tens of
/// megabytes, so the first touch of an object's data by a request waits for memory; the
/// replay announces each request a few requests ahead ([`Run::prefetch`]), so that these
/// loads overlap the work on the requests before it.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = (value as *const T).cast::<i8>();
        let size = std::mem::size_of::<T>().max(1);
        // The line of each 64th byte from the start, and the line of the last byte.
        for offset in (0..size).step_by(64).chain([size - 1]) {
            // SAFETY: a prefetch neither faults nor changes memory, and the address is
            // within `value`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
}

/// What became of a move a policy asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveOutcome {
    /// The object is on the target tier now.
    Moved,
    /// It already was.
    Stayed,
    /// The move was refused; the object stays where it is.
    Refused(Refusal),
}

/// Why the replay refused a move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A demotion before the source tier's minimum residency (counted).
    MinResidency,
    /// The target tier has no room for the object (counted).
    Capacity,
    /// The object does not exist now, or the tier index is out of range (a policy's bug;
    /// not counted).
    NoSuchObjectOrTier,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    size: u64,
    placed_at_ms: i64,
    born_ms: i64,
    /// Position in its tier's resident list (once the lists are kept).
    pos: u32,
    /// The window of `window_reads` and `window_writes`.
    counted_window: u32,
    window_reads: u32,
    window_writes: u32,
    /// The last window it was predicted to be read in.
    predicted_window: u32,
    /// The last window it was read in.
    read_window: u32,
    /// The window whose start found it on `start_tier`, once it left that tier in it.
    start_window: u32,
    start_tier: u8,
    tier: u8,
    /// Its class ([`super::class_books`]).
    class: u8,
    /// Reads so far.
    reads: u32,
}

impl Slot {
    /// The object as the class books see it, in `window`.
    fn entry(&self, window: u32) -> Entry {
        let counted = self.counted_window == window;
        Entry {
            class: self.class,
            size: self.size,
            tier: usize::from(self.tier),
            placed_at_ms: self.placed_at_ms,
            window_reads: if counted { self.window_reads } else { 0 },
            window_writes: if counted { self.window_writes } else { 0 },
        }
    }
}

/// The state of one policy's replay: placements, counts, refusals. Policies read it and
/// ask for moves through it ([`ReplayState::move_object`]), which applies them at once, so
/// that a policy knows whether its move happened.
pub struct ReplayState {
    now_ms: i64,
    window_ms: i64,
    window: u32,
    window_start_ms: i64,
    default_tier: u8,
    residency_ms: Vec<i64>,
    capacity: Vec<Option<u64>>,
    used: Vec<u64>,
    /// Per tier, its residents: kept once `keep_residents` (see the module's doc).
    residents: Vec<Vec<u32>>,
    keep_residents: bool,
    /// Objects on each tier.
    resident_count: Vec<u64>,
    slots: Vec<Slot>,
    sizes: Vec<u64>,
    existing: u64,
    /// Counts of the trace itself (to its last window's end).
    pub(super) tally: Tally,
    /// Counts of the censoring tail.
    pub(super) tail: Tally,
    pub(super) refused_residency: u64,
    pub(super) refused_capacity: u64,
    pub(super) confusion: Confusion,
    /// Objects read in the current window that existed at its start.
    read_list: Vec<u32>,
    predicted: u64,
    /// Tiers whose objects at the window's start are all predicted to be read.
    predicted_tiers: Vec<bool>,
    existing_at_start: u64,
    /// Per tier, the sum over its residents of size × the time they were placed there:
    /// with `used`, the storage of the residents so far without a scan of them.
    placed_byte_ms: Vec<i128>,
    /// For a replay run inside a policy ([`ReplayState::keep_journal`]): what a
    /// selection among replays needs without a scan of every object.
    journal: Option<Journal>,
    /// Per-class books, for a replay run inside a per-class selection
    /// ([`ReplayState::keep_classes`]).
    classes: Option<Box<ClassBooks>>,
}

/// The moves of a replay since they were last taken, and per tier the reads and writes of
/// the current and the last window by the tier their object is on now (what the censoring
/// tail would charge): kept only for a replay run inside a policy.
#[derive(Clone, Debug, Default)]
struct Journal {
    moved: Vec<u32>,
    current: Vec<TierTally>,
    last: Vec<TierTally>,
    /// Whether a request was served in the current window.
    active: bool,
    /// Per tier, the windows that started with objects on it.
    populated_windows: Vec<u32>,
}

impl Journal {
    /// Adds (or takes away) an object's counts of the current window on a tier.
    fn count(&mut self, slot: &Slot, window: u32, tier: usize, add: bool) {
        if slot.counted_window != window {
            return;
        }
        let Some(counts) = self.current.get_mut(tier) else {
            return;
        };
        counts.count_window(slot.window_reads, slot.window_writes, slot.size, add);
    }
}

impl ReplayState {
    /// A replay of objects with these sizes (by id) on a configuration's tiers.
    pub(super) fn new(config: &TieringConfig, sizes: Vec<u64>, window_ms: i64) -> Self {
        let tiers = config.tiers.len();
        let default_tier = config
            .tier_index(&config.default_tier)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(0);
        ReplayState {
            now_ms: 0,
            window_ms: window_ms.max(1),
            window: 0,
            window_start_ms: 0,
            default_tier,
            residency_ms: config
                .tiers
                .iter()
                .map(|t| millis(t.min_residency))
                .collect(),
            capacity: config.tiers.iter().map(|t| t.capacity).collect(),
            used: vec![0; tiers],
            residents: vec![Vec::new(); tiers],
            keep_residents: false,
            resident_count: vec![0; tiers],
            slots: Vec::with_capacity(sizes.len()),
            sizes,
            existing: 0,
            tally: Tally::new(tiers),
            tail: Tally::new(tiers),
            refused_residency: 0,
            refused_capacity: 0,
            confusion: Confusion::default(),
            read_list: Vec::new(),
            predicted: 0,
            predicted_tiers: vec![false; tiers],
            existing_at_start: 0,
            placed_byte_ms: vec![0; tiers],
            journal: None,
            classes: None,
        }
    }

    /// The replay's clock, ms from the trace's start.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The length of a window, ms.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// Tiers, hot → cold.
    pub fn tier_count(&self) -> usize {
        self.used.len()
    }

    /// Where new objects land.
    pub fn default_tier(&self) -> TierIndex {
        usize::from(self.default_tier)
    }

    /// Object ids seen so far (`0..objects()`).
    pub fn objects(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The tier an object is on, `None` when it does not exist now.
    #[inline]
    pub fn tier_of(&self, object: u32) -> Option<TierIndex> {
        self.slots
            .get(object as usize)
            .filter(|slot| slot.tier != ABSENT)
            .map(|slot| usize::from(slot.tier))
    }

    /// An object's size in bytes (0 for an id not seen yet).
    #[inline]
    pub fn size(&self, object: u32) -> u64 {
        self.slots.get(object as usize).map_or(0, |slot| slot.size)
    }

    /// When an object was placed on its current tier.
    pub fn placed_at_ms(&self, object: u32) -> Option<i64> {
        self.tier_of(object)
            .map(|_| self.slots[object as usize].placed_at_ms)
    }

    /// Bytes on a tier now.
    pub fn used_bytes(&self, tier: TierIndex) -> u64 {
        self.used.get(tier).copied().unwrap_or(0)
    }

    /// A tier's capacity (`None`: unlimited).
    pub fn capacity(&self, tier: TierIndex) -> Option<u64> {
        self.capacity.get(tier).copied().flatten()
    }

    /// A tier's minimum residency, ms.
    pub fn min_residency_ms(&self, tier: TierIndex) -> i64 {
        self.residency_ms.get(tier).copied().unwrap_or(0)
    }

    /// The objects on a tier, in no particular order. The first call builds every tier's
    /// list (a scan of all objects); from then on moves keep them.
    pub fn residents(&mut self, tier: TierIndex) -> &[u32] {
        if !self.keep_residents {
            self.keep_residents = true;
            for (index, slot) in self.slots.iter_mut().enumerate() {
                if let Some(list) = self.residents.get_mut(usize::from(slot.tier)) {
                    slot.pos = list.len() as u32;
                    list.push(index as u32);
                }
            }
        }
        self.residents.get(tier).map_or(&[], Vec::as_slice)
    }

    /// How many objects are on a tier.
    pub fn resident_count(&self, tier: TierIndex) -> u64 {
        self.resident_count.get(tier).copied().unwrap_or(0)
    }

    /// Starts loading the slot a request of `object` will read (see [`prefetch`]).
    #[inline]
    fn prefetch(&self, object: u32) {
        if let Some(slot) = self.slots.get(object as usize) {
            prefetch(slot);
        }
    }

    /// Moves an object now, unless the rules every policy obeys refuse it: a demotion
    /// before the source tier's minimum residency, or a target tier without room.
    pub fn move_object(&mut self, object: u32, to: TierIndex) -> MoveOutcome {
        let Some(from) = self.tier_of(object) else {
            return MoveOutcome::Refused(Refusal::NoSuchObjectOrTier);
        };
        if to >= self.tier_count() {
            return MoveOutcome::Refused(Refusal::NoSuchObjectOrTier);
        }
        if to == from {
            return MoveOutcome::Stayed;
        }
        let slot = self.slots[object as usize];
        if residency_holds(
            from,
            to,
            slot.placed_at_ms,
            self.residency_ms[from],
            self.now_ms,
        ) {
            self.refused_residency += 1;
            return MoveOutcome::Refused(Refusal::MinResidency);
        }
        if let Some(capacity) = self.capacity[to] {
            if self.used[to].saturating_add(slot.size) > capacity {
                self.refused_capacity += 1;
                return MoveOutcome::Refused(Refusal::Capacity);
            }
        }
        self.leave_tier(object);
        let out = &mut self.tally.tiers[from];
        out.moves_out += 1;
        out.moved_out_bytes += u128::from(slot.size);
        self.tally.tiers[to].moves_in += 1;
        self.enter_tier(object, to);
        if let Some(books) = &mut self.classes {
            books.moved(slot.class, from, to, slot.size);
        }
        if let Some(journal) = &mut self.journal {
            journal.moved.push(object);
        }
        MoveOutcome::Moved
    }

    /// Whether the minimum residency would refuse moving `object` to `to` now (not
    /// counted as a refusal): a policy retrying a refused move asks this first, so that a
    /// refusal counts once per move the policy wants, not once per retry.
    pub(super) fn residency_refuses(&self, object: u32, to: TierIndex) -> bool {
        let (Some(from), Some(slot)) = (self.tier_of(object), self.slots.get(object as usize))
        else {
            return false;
        };
        from != to
            && residency_holds(
                from,
                to,
                slot.placed_at_ms,
                self.residency_ms[from],
                self.now_ms,
            )
    }

    /// Keeps a journal of this replay's moves and of the objects accessed in each window,
    /// for a replay run inside a policy: [`ReplayState::take_moves`] and
    /// [`ReplayState::mark_to_market`] read it.
    pub(super) fn keep_journal(&mut self) {
        let tiers = self.tier_count();
        self.journal.get_or_insert_with(|| Journal {
            current: vec![TierTally::default(); tiers],
            last: vec![TierTally::default(); tiers],
            populated_windows: vec![0; tiers],
            ..Journal::default()
        });
    }

    /// The objects moved since the last call (in the order of their moves, an object once
    /// per move), appended to `into`; empty without a journal.
    pub(super) fn take_moves(&mut self, into: &mut Vec<u32>) {
        if let Some(journal) = &mut self.journal {
            into.append(&mut journal.moved);
        }
    }

    /// Adds this replay's record of each tier to `records`: the reads served there so far
    /// (summed) and the windows that started with objects on it (the most of any replay);
    /// nothing without a journal.
    pub(super) fn add_tier_records(&self, records: &mut [TierRecord]) {
        let Some(journal) = &self.journal else {
            return;
        };
        for ((record, &windows), counts) in records
            .iter_mut()
            .zip(&journal.populated_windows)
            .zip(&self.tally.tiers)
        {
            record.reads += counts.reads;
            record.populated_windows = record.populated_windows.max(windows);
        }
    }

    /// An estimate of the counts this replay would end with if the trace ended now: what it counted so
    /// far, the storage of every object up to now, and the censoring tail of
    /// [`ReplayState::finish`] (every object on its present tier for `tail_windows`
    /// windows, with the reads and writes of a window times `read_weight`). The window:
    /// the one that just ended until a request is served in the next; then a blend of the
    /// two, the window under way weighing by the share of it elapsed, so that a burst at a
    /// window's start is not taken as the rate of the whole tail. Uses only the past; needs
    /// the journal for the reads of the windows.
    pub(super) fn mark_to_market(&self, tail_windows: u32, read_weight: f64) -> Tally {
        let mut tally = self.tally.clone();
        let now = i128::from(self.now_ms);
        let tail_ms = u128::from(tail_windows) * self.window_ms as u128;
        for (tier, counts) in tally.tiers.iter_mut().enumerate() {
            let used = i128::from(self.used[tier]);
            let so_far = (used * now - self.placed_byte_ms[tier]).max(0);
            counts.byte_ms += so_far as u128 + tail_ms * u128::from(self.used[tier]);
        }
        let Some(journal) = &self.journal else {
            return tally;
        };
        let elapsed = if journal.active {
            self.window_elapsed()
        } else {
            0.0
        };
        let tail = f64::from(tail_windows) * read_weight;
        let blend =
            |current: f64, last: f64| (tail * (elapsed * current + (1.0 - elapsed) * last)).round();
        for ((counts, current), last) in tally
            .tiers
            .iter_mut()
            .zip(&journal.current)
            .zip(&journal.last)
        {
            counts.reads += blend(current.reads as f64, last.reads as f64) as u64;
            counts.read_bytes += blend(current.read_bytes as f64, last.read_bytes as f64) as u128;
            counts.writes += blend(current.writes as f64, last.writes as f64) as u64;
        }
        tally
    }

    /// Keeps per-class books ([`super::class_books`]) from now on, for a replay run inside
    /// a per-class selection (with its journal): [`ReplayState::class_mark`] reads them.
    /// Call before the first request.
    pub(super) fn keep_classes(&mut self) {
        let tiers = self.tier_count();
        self.classes
            .get_or_insert_with(|| Box::new(ClassBooks::new(tiers)));
    }

    /// An object's class now ([`super::class_books::class_of`]), `None` for an id not seen.
    pub(super) fn class_of(&self, object: u32) -> Option<u8> {
        self.slots.get(object as usize).map(|slot| slot.class)
    }

    /// A class's objects on a tier now: how many, and their bytes (zero without per-class
    /// books).
    pub(super) fn class_residents(&self, class: usize, tier: TierIndex) -> (u64, u64) {
        self.classes
            .as_ref()
            .map_or((0, 0), |books| books.residents(class, tier))
    }

    /// [`ReplayState::mark_to_market`] of one class's objects (empty counts without
    /// per-class books).
    pub(super) fn class_mark(&self, class: usize, tail_windows: u32, read_weight: f64) -> Tally {
        let Some(books) = &self.classes else {
            return Tally::new(self.tier_count());
        };
        let elapsed = if self.journal.as_ref().is_some_and(|j| j.active) {
            self.window_elapsed()
        } else {
            0.0
        };
        let tail_ms = u128::from(tail_windows) * self.window_ms as u128;
        let reads_times = f64::from(tail_windows) * read_weight;
        books.mark(class, self.now_ms, tail_ms, reads_times, elapsed)
    }

    /// The share of the current window elapsed, 0 to 1.
    fn window_elapsed(&self) -> f64 {
        if self.window_ms <= 0 {
            return 1.0;
        }
        let elapsed = self.now_ms.saturating_sub(self.window_start_ms) as f64;
        (elapsed / self.window_ms as f64).clamp(0.0, 1.0)
    }

    /// Puts an object on a tier, placed now.
    fn enter_tier(&mut self, object: u32, tier: TierIndex) {
        let slot = &mut self.slots[object as usize];
        slot.tier = tier as u8;
        slot.placed_at_ms = self.now_ms;
        if self.keep_residents {
            let list = &mut self.residents[tier];
            slot.pos = list.len() as u32;
            list.push(object);
        }
        self.resident_count[tier] += 1;
        self.used[tier] = self.used[tier].saturating_add(slot.size);
        self.placed_byte_ms[tier] += i128::from(slot.size) * i128::from(slot.placed_at_ms);
        if let Some(journal) = &mut self.journal {
            journal.count(slot, self.window, tier, true);
        }
        if let Some(books) = &mut self.classes {
            books.enter(&slot.entry(self.window));
        }
    }

    /// Takes an object off its tier, charging its storage there up to now.
    fn leave_tier(&mut self, object: u32) {
        let window = self.window;
        let slot = &mut self.slots[object as usize];
        if slot.start_window != window {
            slot.start_window = window;
            slot.start_tier = slot.tier;
        }
        let slot = *slot;
        let tier = usize::from(slot.tier);
        let stored = self.now_ms.saturating_sub(slot.placed_at_ms).max(0) as u128;
        self.tally.tiers[tier].byte_ms += stored * u128::from(slot.size);
        self.used[tier] = self.used[tier].saturating_sub(slot.size);
        self.placed_byte_ms[tier] -= i128::from(slot.size) * i128::from(slot.placed_at_ms);
        if let Some(journal) = &mut self.journal {
            journal.count(&slot, window, tier, false);
        }
        if let Some(books) = &mut self.classes {
            books.leave(&slot.entry(window), self.now_ms);
        }
        self.resident_count[tier] -= 1;
        if self.keep_residents {
            let list = &mut self.residents[tier];
            let pos = slot.pos as usize;
            list.swap_remove(pos);
            if let Some(&moved) = list.get(pos) {
                self.slots[moved as usize].pos = pos as u32;
            }
        }
        self.slots[object as usize].tier = ABSENT;
    }

    /// The slot of an object id, created (absent) the first time the id is seen.
    fn slot_index(&mut self, object: u32) -> usize {
        let index = object as usize;
        while self.slots.len() <= index {
            let id = self.slots.len();
            let size = self.sizes.get(id).copied().unwrap_or(DEFAULT_OBJECT_SIZE);
            self.slots.push(Slot {
                size,
                placed_at_ms: 0,
                born_ms: 0,
                pos: 0,
                counted_window: NEVER,
                window_reads: 0,
                window_writes: 0,
                predicted_window: NEVER,
                read_window: NEVER,
                start_window: NEVER,
                start_tier: ABSENT,
                tier: ABSENT,
                class: class_of(0, size),
                reads: 0,
            });
        }
        index
    }

    /// Serves one request on the tier the object is on (an object appears on the default
    /// tier at its first request, or at its first after a delete).
    fn serve(&mut self, request: &TraceRequest) {
        self.now_ms = self.now_ms.max(request.time_ms);
        let index = self.slot_index(request.object);
        let exists = self.slots[index].tier != ABSENT;
        if request.op == Op::Delete {
            if exists {
                self.leave_tier(request.object);
                self.existing -= 1;
            }
            return;
        }
        if !exists {
            self.slots[index].born_ms = self.now_ms;
            self.enter_tier(request.object, self.default_tier());
            self.existing += 1;
        }
        let window = self.window;
        let window_start = self.window_start_ms;
        let slot = &mut self.slots[index];
        if slot.counted_window != window {
            slot.counted_window = window;
            slot.window_reads = 0;
            slot.window_writes = 0;
        }
        // The request is charged to the class the object was in when it came; a read can
        // then move it to the next class, its reads of the window with it.
        let charged = slot.class;
        if request.op == Op::Read {
            slot.reads = slot.reads.saturating_add(1);
            let class = class_of(slot.reads, slot.size);
            if class != slot.class {
                if let Some(books) = &mut self.classes {
                    books.reclass(&slot.entry(window), class, self.now_ms);
                }
                slot.class = class;
            }
        }
        if let Some(books) = &mut self.classes {
            let read = request.op == Op::Read;
            let bytes = u128::from(request.size.unwrap_or(slot.size));
            let tier = usize::from(slot.tier);
            books.serve([charged, slot.class], tier, read, bytes, slot.size);
        }
        if let Some(journal) = &mut self.journal {
            let counts = &mut journal.current[usize::from(slot.tier)];
            if request.op == Op::Read {
                counts.reads += 1;
                counts.read_bytes += u128::from(slot.size);
            } else {
                counts.writes += 1;
            }
            journal.active = true;
        }
        let tier = &mut self.tally.tiers[usize::from(slot.tier)];
        if request.op == Op::Read {
            slot.window_reads = slot.window_reads.saturating_add(1);
            tier.reads += 1;
            tier.read_bytes += u128::from(request.size.unwrap_or(slot.size));
            if slot.read_window != window {
                slot.read_window = window;
                if slot.born_ms < window_start {
                    self.read_list.push(request.object);
                }
            }
        } else {
            slot.window_writes = slot.window_writes.saturating_add(1);
            tier.writes += 1;
        }
    }

    /// Scores the predictions of the window that ends now.
    fn close_window(&mut self) {
        let window = self.window;
        let both = self
            .read_list
            .iter()
            .filter(|&&o| {
                let slot = &self.slots[o as usize];
                let start_tier = if slot.start_window == window {
                    slot.start_tier
                } else {
                    slot.tier
                };
                slot.predicted_window == window
                    || self
                        .predicted_tiers
                        .get(usize::from(start_tier))
                        .is_some_and(|&all| all)
            })
            .count() as u64;
        self.confusion.add_window(
            self.existing_at_start,
            self.predicted,
            self.read_list.len() as u64,
            both,
        );
        self.read_list.clear();
    }

    /// Starts window `window` at `start_ms` and records the predictions made for it.
    fn open_window(&mut self, window: u32, start_ms: i64, predictions: &mut Predictions) {
        self.predicted = 0;
        self.predicted_tiers.fill(false);
        for tier in predictions.tiers.drain(..) {
            if let Some(all) = self.predicted_tiers.get_mut(tier) {
                if !*all {
                    *all = true;
                    self.predicted += self.resident_count[tier];
                }
            }
        }
        for object in predictions.read.drain(..) {
            let Some(slot) = self.slots.get_mut(object as usize) else {
                continue;
            };
            let on_predicted_tier = self
                .predicted_tiers
                .get(usize::from(slot.tier))
                .is_some_and(|&all| all);
            if slot.tier != ABSENT && !on_predicted_tier && slot.predicted_window != window {
                slot.predicted_window = window;
                self.predicted += 1;
            }
        }
        self.window = window;
        self.window_start_ms = start_ms;
        self.existing_at_start = self.existing;
        if let Some(journal) = &mut self.journal {
            for (windows, &count) in journal
                .populated_windows
                .iter_mut()
                .zip(&self.resident_count)
            {
                *windows += u32::from(count > 0);
            }
            std::mem::swap(&mut journal.current, &mut journal.last);
            journal.current.fill(TierTally::default());
            journal.active = false;
        }
        if let Some(books) = &mut self.classes {
            books.open_window();
        }
    }

    /// Closes the books at the end of the last window: storage up to `end_ms`, then the
    /// censoring tail, `tail_ms` at each object's final placement and its last window's
    /// reads and writes repeated `tail_windows` times.
    fn finish(&mut self, end_ms: i64, tail_windows: u32) {
        self.now_ms = end_ms;
        let tail_ms = u128::from(tail_windows) * self.window_ms as u128;
        let last = self.window;
        for index in 0..self.slots.len() {
            let slot = self.slots[index];
            if slot.tier == ABSENT {
                continue;
            }
            let tier = usize::from(slot.tier);
            let stored = end_ms.saturating_sub(slot.placed_at_ms).max(0) as u128;
            self.tally.tiers[tier].byte_ms += stored * u128::from(slot.size);
            let tail = &mut self.tail.tiers[tier];
            tail.byte_ms += tail_ms * u128::from(slot.size);
            if slot.counted_window == last {
                let reads = u64::from(slot.window_reads) * u64::from(tail_windows);
                tail.reads += reads;
                tail.read_bytes += u128::from(reads) * u128::from(slot.size);
                tail.writes += u64::from(slot.window_writes) * u64::from(tail_windows);
            }
        }
    }
}

/// One policy driven through a replay: its state, its clock of windows and wake-ups.
pub(super) struct Run {
    pub(super) policy: Box<dyn Policy>,
    pub(super) state: ReplayState,
    predictions: Predictions,
    /// The next window boundary's index.
    next_window: u32,
    /// Wake-ups before this are not honoured again (a policy that does not advance its
    /// wake-up cannot stall the replay).
    wake_floor: i64,
    /// The objects the policy named at the last boundary, when kept ([`Run::keep_predictions`]).
    kept: Option<Vec<u32>>,
}

impl Run {
    pub(super) fn new(policy: Box<dyn Policy>, state: ReplayState) -> Self {
        Run {
            policy,
            state,
            predictions: Predictions::default(),
            next_window: 0,
            wake_floor: i64::MIN,
            kept: None,
        }
    }

    /// Keeps the objects the policy names at each boundary ([`Run::predicted`]).
    pub(super) fn keep_predictions(&mut self) {
        self.kept.get_or_insert_with(Vec::new);
    }

    /// The objects the policy named at the last boundary (empty unless kept).
    pub(super) fn predicted(&self) -> &[u32] {
        self.kept.as_deref().unwrap_or(&[])
    }

    /// The policy's next wake-up that [`Run::advance_to`] would honour, if any.
    pub(super) fn next_wakeup_ms(&self) -> Option<i64> {
        self.policy.wakeup_ms().filter(|&at| at >= self.wake_floor)
    }

    /// Runs the window boundaries and the policy's wake-ups up to `time_ms` (included), in
    /// time order; a boundary goes before a wake-up at the same instant.
    pub(super) fn advance_to(&mut self, time_ms: i64) {
        loop {
            let boundary = i64::from(self.next_window).saturating_mul(self.state.window_ms);
            let wake = self
                .policy
                .wakeup_ms()
                .filter(|&at| at >= self.wake_floor && at <= time_ms);
            if boundary <= time_ms && wake.is_none_or(|at| boundary <= at) {
                self.boundary(boundary);
            } else if let Some(at) = wake {
                self.state.now_ms = self.state.now_ms.max(at);
                self.wake_floor = at.saturating_add(1);
                self.policy.on_wakeup(&mut self.state, at);
            } else {
                return;
            }
        }
    }

    fn boundary(&mut self, at_ms: i64) {
        let window = self.next_window;
        self.state.now_ms = self.state.now_ms.max(at_ms);
        if window > 0 {
            self.state.close_window();
        }
        self.predictions.read.clear();
        self.predictions.tiers.clear();
        self.policy
            .on_window(&mut self.state, at_ms, &mut self.predictions);
        if let Some(kept) = &mut self.kept {
            kept.clear();
            kept.extend_from_slice(self.predictions.objects());
        }
        self.state.open_window(window, at_ms, &mut self.predictions);
        self.next_window = window.saturating_add(1);
    }

    /// A request of `object` comes a few requests from now: starts loading what it will
    /// read (see [`prefetch`]).
    #[inline]
    pub(super) fn prefetch(&self, object: u32) {
        self.state.prefetch(object);
        self.policy.prefetch(object);
    }

    /// One request: served where the object is, then shown to the policy.
    #[inline]
    pub(super) fn request(&mut self, request: &TraceRequest) {
        self.advance_to(request.time_ms);
        self.state.serve(request);
        self.policy.on_request(&mut self.state, request);
    }

    /// Ends the replay at the end of the window of the last request (`last_ms`).
    pub(super) fn finish(&mut self, last_ms: Option<i64>, tail_windows: u32) {
        let Some(last_ms) = last_ms else {
            return;
        };
        let window_ms = self.state.window_ms;
        let end_ms = (last_ms / window_ms)
            .saturating_add(1)
            .saturating_mul(window_ms);
        self.advance_to(end_ms - 1);
        self.state.now_ms = end_ms;
        self.state.close_window();
        self.state.finish(end_ms, tail_windows);
    }
}

#[cfg(test)]
mod tests {
    use super::{ReplayState, Run};
    use crate::config::TieringConfig;
    use crate::eval::policies::static_::Static;
    use crate::stats::Op;
    use crate::trace::TraceRequest;
    use crate::units::{DAY_MS, HOUR_MS};

    const CONFIG: &str = include_str!("../../../server/strata.example.toml");

    fn read(time_ms: i64) -> TraceRequest {
        TraceRequest {
            time_ms,
            object: 0,
            op: Op::Read,
            size: None,
        }
    }

    /// The reads of the mark's tail, all tiers.
    fn tail_reads(run: &Run, read_weight: f64) -> u64 {
        let before: u64 = run.state.tally.tiers.iter().map(|t| t.reads).sum();
        let mark = run.state.mark_to_market(10, read_weight);
        mark.tiers.iter().map(|t| t.reads).sum::<u64>() - before
    }

    #[test]
    fn the_marks_tail_blends_the_window_under_way_by_its_elapsed_share() {
        let config = TieringConfig::parse(CONFIG).expect("example config");
        let mut state = ReplayState::new(&config, vec![4096], DAY_MS);
        state.keep_journal();
        let mut run = Run::new(Box::new(Static), state);
        // Window 0: a burst of 100 reads.
        for _ in 0..100 {
            run.request(&read(HOUR_MS));
        }
        // At the boundary, before a request of window 1: the burst, ten times.
        run.advance_to(DAY_MS);
        assert_eq!(tail_reads(&run, 1.0), 1000);
        assert_eq!(tail_reads(&run, 0.5), 500);
        // One read a quarter into window 1: a quarter of it, three quarters of the burst.
        run.request(&read(DAY_MS + 6 * HOUR_MS));
        assert_eq!(tail_reads(&run, 1.0), 753); // 10 × (0.25 × 1 + 0.75 × 100), rounded
                                                // At the end of window 1: nearly all of it.
        run.request(&read(2 * DAY_MS - 1));
        assert_eq!(tail_reads(&run, 1.0), 20);
    }

    #[test]
    fn asking_whether_the_residency_refuses_a_move_counts_no_refusal() {
        let config = TieringConfig::parse(CONFIG).expect("example config");
        let mut state = ReplayState::new(&config, vec![4096], DAY_MS);
        state.keep_journal();
        let mut run = Run::new(Box::new(Static), state);
        // Placed on disk (the default tier, 7 days of residency) an hour in.
        run.request(&read(HOUR_MS));
        let (nvme, disk, archive) = (0, 1, 2);
        assert_eq!(run.state.tier_of(0), Some(disk));
        assert!(run.state.residency_refuses(0, archive));
        assert!(!run.state.residency_refuses(0, nvme));
        assert_eq!(run.state.refused_residency, 0);
        assert!(matches!(
            run.state.move_object(0, archive),
            super::MoveOutcome::Refused(_)
        ));
        assert_eq!(run.state.refused_residency, 1);
        run.advance_to(8 * DAY_MS);
        assert!(!run.state.residency_refuses(0, archive));
        assert!(matches!(
            run.state.move_object(0, archive),
            super::MoveOutcome::Moved
        ));
        assert_eq!(run.state.refused_residency, 1);
    }
}
