//! The demotions the `rules` policy's passes have not reached yet, kept in the order the
//! planner considers them, so that a pass takes the few its budget allows without
//! classifying the whole backlog again. A heap keeps the order: a removal (every
//! access of a waiting object makes one) only forgets the object's entry, which the heap
//! drops when it comes to the top or when removed entries outnumber the live ones.
//!
//! Why the order keeps: the planner orders demotions by class (coldest first), then
//! baseline rate, then last access, then key (`placement`'s `wanted_order`). Without an
//! access an object's baseline rate decays as `r(t) = r(l)·e^{-k(t - l)}` from its value at
//! the last access `l` (`k` = ln 2 / the slow half-life), the same factor for every object,
//! so `ln r(l) + k·l` does not change with time and orders them as `r(t)` does at any `t`.
//! It is computed from the statistics alone, never from the time of the pass that inserts
//! the entry, so objects with the same history get the same key and tie, as they do in the
//! planner (then the key, the object id, decides). An access takes the object
//! out of the backlog; an object whose class may change (a warm one, once its last access
//! is older than `warm_within`) is classified again by then and its entry replaced. The two
//! orders agree except for keys equal to rounding (`4·2^-2` and `2·2^-1` are one real
//! number, but the planner's floats may differ in the last digit): the policy takes the
//! entries that may tie ([`Rank::may_tie`]) with the last one its budget reaches as well,
//! and orders those as the planner does. They agree while no rate underflows to
//! zero: the policy stops using the backlog once the last access of one of its entries is
//! older than [`Backlog::horizon_ms`]. An object never read has a rate of exactly zero,
//! which cannot underflow and orders the same at every time (first of its class, as the
//! planner puts it), so it does not count.

use super::classes::Look;
use crate::classify::Class;
use crate::eval::TierIndex;
use crate::stats::Decay;

/// `Member::insertion` of an object not in the backlog (insertions count from 1).
const ABSENT: u64 = 0;

/// The last access of an object never read: first, as the planner orders it.
const NEVER_READ: i64 = i64::MIN;

#[derive(Clone, Copy, Debug)]
struct Entry {
    class: Class,
    /// `ln r(l) + k·(l - origin)`: see the module's doc.
    coldness: f64,
    last_access_ms: i64,
    object: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.class
            .cmp(&other.class)
            .then(self.coldness.total_cmp(&other.coldness))
            .then(self.last_access_ms.cmp(&other.last_access_ms))
            .then(self.object.cmp(&other.object))
    }
}

/// An entry in the heap, with the insertion that made it: an object's entry is live while
/// its insertion is the object's latest and it was not removed since. Removing leaves the
/// entry in the heap (a walk drops it when it comes to the top), so that an access, which
/// takes its object out of the backlog, costs no search of the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    entry: Entry,
    insertion: u64,
}

/// An object's place in the backlog: the insertion of its live entry ([`ABSENT`]: none),
/// and its demotion's size and tiers.
#[derive(Clone, Copy, Debug)]
struct Member {
    insertion: u64,
    size: u64,
    from: u32,
    to: u32,
}

impl Member {
    const OUT: Member = Member {
        insertion: ABSENT,
        size: 0,
        from: 0,
        to: 0,
    };
}

/// Keys closer than this (relative) may be ordered otherwise by the planner's rounding.
const TIE: f64 = 1e-9;

/// Where an entry stands in the backlog's order.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rank {
    class: Class,
    coldness: f64,
}

impl Rank {
    /// Whether the planner might order the two entries either way: same class, and keys
    /// equal but for rounding (the planner's rates carry a few units in the last place,
    /// the keys a few units of their magnitude's).
    pub(super) fn may_tie(&self, other: &Rank) -> bool {
        let (a, b) = (self.coldness, other.coldness);
        self.class == other.class && (a == b || (a - b).abs() <= TIE * a.abs().max(1.0))
    }
}

/// A demotion waiting for the budget: the object, its tier and its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Waiting {
    pub(super) object: u32,
    pub(super) from: TierIndex,
    pub(super) to: TierIndex,
}

/// The backlog, coldest first.
#[derive(Clone, Debug)]
pub(super) struct Backlog {
    /// `k`, per ms.
    slow_per_ms: f64,
    /// A fixed time near the entries' last accesses (the first one inserted), so that
    /// `k·(l - origin)` stays small and keeps the rate's digits.
    origin_ms: Option<i64>,
    /// The live entries, coldest on top, and removed ones not yet dropped.
    heap: QuadHeap,
    /// Insertions so far: each one's number.
    insertions: u64,
    /// Live entries.
    live: usize,
    /// The entries the last walk took off the heap: put back by the next walk if still
    /// live (most are not: a walk shows a pass the demotions it makes, which leave).
    walked: Vec<Queued>,
    /// Per object id, its membership: what a removal needs, on one cache line, since
    /// every request and every active object a pass looks at removes its object (a list
    /// of the live entries would cost a removal a second and a third line).
    members: Vec<Member>,
    /// Bytes waiting to go to each tier.
    bytes_to: Vec<u64>,
    /// Bytes waiting to leave each tier.
    bytes_from: Vec<u64>,
    /// No read entry's last access is older than this; `i64::MAX` when none was read.
    /// Lowered by inserts, and raised to the true oldest only when it looks too old (see
    /// [`Backlog::usable`]), so that removals stay O(log n).
    oldest_access_ms: i64,
}

impl Backlog {
    /// A backlog for statistics kept with `decay`, over `tiers` tiers.
    pub(super) fn new(decay: &Decay, tiers: usize) -> Self {
        Backlog {
            slow_per_ms: std::f64::consts::LN_2 / decay.slow_half_life_ms().max(1) as f64,
            origin_ms: None,
            heap: QuadHeap::default(),
            insertions: 0,
            live: 0,
            walked: Vec::new(),
            members: Vec::new(),
            bytes_to: vec![0; tiers],
            bytes_from: vec![0; tiers],
            oldest_access_ms: i64::MAX,
        }
    }

    /// How long an entry may age before rates could underflow (e^-700 is still normal).
    pub(super) fn horizon_ms(&self) -> i64 {
        (700.0 / self.slow_per_ms) as i64
    }

    /// Whether the order can still be trusted at `now_ms`.
    pub(super) fn usable(&mut self, now_ms: i64) -> bool {
        let horizon = self.horizon_ms();
        let fresh = |oldest: i64| now_ms.saturating_sub(oldest) < horizon;
        if fresh(self.oldest_access_ms) {
            return true;
        }
        // The entry that set it may have left: find the true oldest, once per time it
        // looks too old (at most one scan per horizon while entries stay fresh).
        self.oldest_access_ms = self
            .heap
            .items
            .iter()
            .chain(&self.walked)
            .filter(|queued| self.live(queued).is_some())
            .map(|queued| queued.entry.last_access_ms)
            .filter(|&last| last != NEVER_READ)
            .min()
            .unwrap_or(i64::MAX);
        fresh(self.oldest_access_ms)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds a demotion (replacing any entry of the object): its class, and its baseline
    /// rate as of its last access (`AccessStats::rates_per_hour` at that time).
    pub(super) fn insert(
        &mut self,
        waiting: Waiting,
        look: &Look,
        baseline_at_last_access: f64,
        size: u64,
    ) {
        self.remove(waiting.object);
        let last = look.last_access_ms.unwrap_or(NEVER_READ);
        let coldness = if last == NEVER_READ {
            f64::NEG_INFINITY
        } else {
            let origin = *self.origin_ms.get_or_insert(last);
            baseline_at_last_access.ln() + last.saturating_sub(origin) as f64 * self.slow_per_ms
        };
        let entry = Entry {
            class: look.class,
            coldness,
            last_access_ms: last,
            object: waiting.object,
        };
        let index = waiting.object as usize;
        if self.members.len() <= index {
            self.members.resize(index + 1, Member::OUT);
        }
        if last != NEVER_READ {
            self.oldest_access_ms = self.oldest_access_ms.min(last);
        }
        self.insertions += 1;
        let insertion = self.insertions;
        if self.heap.len() > 2 * self.live + 64 {
            // Mostly removed entries: rebuild from the live ones (linear), so that the heap
            // stays proportional to the backlog.
            let members = &self.members;
            self.heap.retain(|queued| {
                members
                    .get(queued.entry.object as usize)
                    .is_some_and(|member| member.insertion == queued.insertion)
            });
        }
        self.heap.push(Queued { entry, insertion });
        self.members[index] = Member {
            insertion,
            size,
            from: waiting.from as u32,
            to: waiting.to as u32,
        };
        self.live += 1;
        self.bytes_to[waiting.to] = self.bytes_to[waiting.to].saturating_add(size);
        self.bytes_from[waiting.from] = self.bytes_from[waiting.from].saturating_add(size);
    }

    /// Takes an object out, if it is in.
    pub(super) fn remove(&mut self, object: u32) {
        let Some(member) = self.members.get_mut(object as usize) else {
            return;
        };
        if member.insertion == ABSENT {
            return;
        }
        let member = std::mem::replace(member, Member::OUT);
        self.live -= 1;
        let (to, from) = (member.to as usize, member.from as usize);
        self.bytes_to[to] = self.bytes_to[to].saturating_sub(member.size);
        self.bytes_from[from] = self.bytes_from[from].saturating_sub(member.size);
    }

    /// Bytes waiting to go to `tier`.
    pub(super) fn bytes_to(&self, tier: TierIndex) -> u64 {
        self.bytes_to.get(tier).copied().unwrap_or(0)
    }

    /// Bytes waiting to leave `tier`.
    pub(super) fn bytes_from(&self, tier: TierIndex) -> u64 {
        self.bytes_from.get(tier).copied().unwrap_or(0)
    }

    /// The demotion of a heap entry, if the entry is live.
    fn live(&self, queued: &Queued) -> Option<Waiting> {
        let object = queued.entry.object;
        let member = self.members.get(object as usize)?;
        (member.insertion == queued.insertion).then_some(Waiting {
            object,
            from: member.from as TierIndex,
            to: member.to as TierIndex,
        })
    }

    /// Shows `visit` the waiting demotions with their ranks, coldest first, until it
    /// returns false; costs O(log n) per demotion shown (and per removed one passed).
    pub(super) fn walk(&mut self, mut visit: impl FnMut(Waiting, Rank) -> bool) {
        self.restore();
        let mut walked = std::mem::take(&mut self.walked);
        while let Some(queued) = self.heap.pop() {
            let Some(waiting) = self.live(&queued) else {
                continue;
            };
            walked.push(queued);
            let rank = Rank {
                class: queued.entry.class,
                coldness: queued.entry.coldness,
            };
            if !visit(waiting, rank) {
                break;
            }
        }
        self.walked = walked;
    }

    /// Puts back on the heap the entries the last walk took that are still live.
    fn restore(&mut self) {
        let mut walked = std::mem::take(&mut self.walked);
        for queued in walked.drain(..) {
            if self.live(&queued).is_some() {
                self.heap.push(queued);
            }
        }
        self.walked = walked;
    }

    /// Takes every demotion out, coldest first.
    pub(super) fn drain(&mut self) -> Vec<Waiting> {
        let mut all: Vec<Waiting> = Vec::with_capacity(self.live);
        self.walk(|waiting, _| {
            all.push(waiting);
            true
        });
        for waiting in &all {
            self.remove(waiting.object);
        }
        self.heap.clear();
        self.walked.clear();
        all
    }
}

/// A min-heap of four children a node: half the levels of a binary heap, whose children
/// share a cache line or two, for a backlog of a million entries that does not stay in
/// cache. Pops in the order of `Queued`'s (total) order, as any heap would.
#[derive(Clone, Debug, Default)]
struct QuadHeap {
    items: Vec<Queued>,
}

impl QuadHeap {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn clear(&mut self) {
        self.items.clear();
    }

    fn push(&mut self, item: Queued) {
        self.items.push(item);
        let mut at = self.items.len() - 1;
        while at > 0 {
            let parent = (at - 1) / 4;
            if self.items[parent] <= item {
                break;
            }
            self.items[at] = self.items[parent];
            at = parent;
        }
        self.items[at] = item;
    }

    fn pop(&mut self) -> Option<Queued> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(last);
        }
        let top = self.items[0];
        self.sift_down(0, last);
        Some(top)
    }

    /// Puts `item` at `at` or below, moving smaller children up.
    fn sift_down(&mut self, mut at: usize, item: Queued) {
        let len = self.items.len();
        loop {
            let first = 4 * at + 1;
            if first >= len {
                break;
            }
            let children = &self.items[first..len.min(first + 4)];
            let (offset, &least) = children
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.cmp(b.1))
                .unwrap_or((0, &item));
            if item <= least {
                break;
            }
            self.items[at] = least;
            at = first + offset;
        }
        self.items[at] = item;
    }

    /// Keeps the items `keep` says, and restores the heap (linear).
    fn retain(&mut self, keep: impl FnMut(&Queued) -> bool) {
        self.items.retain(keep);
        for at in (0..self.items.len() / 4 + 1).rev() {
            if let Some(&item) = self.items.get(at) {
                self.sift_down(at, item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{AccessStats, Op};
    use crate::units::DAY_MS;

    fn cold(stats: &AccessStats, decay: &Decay, now_ms: i64) -> Look {
        let rules = crate::classify::Rules::default();
        Look::from(&rules.classify(&stats.summary(decay, now_ms)))
    }

    fn demotion(object: u32) -> Waiting {
        Waiting {
            object,
            from: 0,
            to: 1,
        }
    }

    #[test]
    fn a_never_read_entry_leaves_the_backlog_usable_and_a_long_unread_one_does_not() {
        let decay = Decay::default();
        let mut backlog = Backlog::new(&decay, 2);
        let never_read = AccessStats::new();
        backlog.insert(demotion(0), &cold(&never_read, &decay, 0), 0.0, 1);
        let late = 10 * backlog.horizon_ms();
        assert!(backlog.usable(late), "a zero rate cannot underflow");

        let mut read = AccessStats::new();
        read.record(&decay, DAY_MS, Op::Read, 1);
        let at_last = read.rates_per_hour(&decay, DAY_MS).1;
        backlog.insert(demotion(1), &cold(&read, &decay, 3 * DAY_MS), at_last, 1);
        assert!(backlog.usable(3 * DAY_MS));
        let past_horizon = DAY_MS + backlog.horizon_ms();
        assert!(!backlog.usable(past_horizon), "its rate may underflow");
        backlog.remove(1);
        assert!(backlog.usable(past_horizon), "the entry that aged has left");
        let order: Vec<u32> = backlog.drain().iter().map(|w| w.object).collect();
        assert_eq!(order, vec![0]);
    }

    #[test]
    fn the_heap_pops_in_order_after_pushes_pops_and_a_retain() {
        let queued = |n: u64| Queued {
            entry: Entry {
                class: [Class::Cold, Class::Warm, Class::Hot][(n % 3) as usize],
                coldness: ((n * 7919) % 101) as f64 / 7.0,
                last_access_ms: (n % 5) as i64,
                object: (n % 13) as u32,
            },
            insertion: n,
        };
        let mut heap = QuadHeap::default();
        let mut all: Vec<Queued> = (0..500).map(queued).collect();
        for &item in &all {
            heap.push(item);
        }
        all.sort();
        let first: Vec<Queued> = (0..40).filter_map(|_| heap.pop()).collect();
        assert_eq!(first, all[..40]);
        heap.retain(|q| q.insertion % 2 == 0);
        let rest: Vec<Queued> = std::iter::from_fn(|| heap.pop()).collect();
        let even: Vec<Queued> = all[40..]
            .iter()
            .copied()
            .filter(|q| q.insertion % 2 == 0)
            .collect();
        assert_eq!(rest, even);
        assert_eq!(heap.len(), 0);
    }
}
