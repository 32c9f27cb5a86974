//! The demotions the `rules` policy's passes have not reached yet, kept in the order the
//! planner considers them, so that a pass takes the few its budget allows without
//! classifying the whole backlog again. Sorted runs keep the order (see [`SortedRuns`]): a
//! removal (every access of a waiting object makes one) only forgets the object's entry,
//! which the runs drop when it comes first or when removed entries outnumber the live ones.
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
use crate::eval::{prefetch, TierIndex};
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

/// An entry in the runs, with the insertion that made it: an object's entry is live while
/// its insertion is the object's latest and it was not removed since. Removing leaves the
/// entry in the runs (a walk drops it when it comes first), so that an access, which
/// takes its object out of the backlog, costs no search of the runs.
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
    heap: SortedRuns,
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
            heap: SortedRuns::default(),
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

    /// Room for the memberships of objects `0..objects`, so that they do not grow (and
    /// copy) as demotions of new objects come.
    pub(super) fn reserve(&mut self, objects: usize) {
        if self.members.len() < objects {
            self.members.resize(objects, Member::OUT);
        }
    }

    /// Starts loading what a removal of `object` reads (see [`prefetch`]).
    #[inline]
    pub(super) fn prefetch(&self, object: u32) {
        if let Some(member) = self.members.get(object as usize) {
            prefetch(member);
        }
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

/// The backlog's entries in order, as sorted runs: what a pass pushes is sorted as one
/// run when the next walk starts (in cache: a pass's few thousand at most), and runs of
/// similar length are merged, so that there are O(log n) of them; a pop takes the least of
/// their first items. Why not a heap: a pop from a heap of a million entries, which does
/// not stay in cache, waits for memory at each of its levels, where a run is read in
/// order. Pops in the order of `Queued`'s (total) order, as a heap would.
#[derive(Clone, Debug, Default)]
struct SortedRuns {
    /// Each sorted from its `head` on, none empty.
    runs: Vec<Run>,
    /// Pushed since the last pop, in no order.
    fresh: Vec<Queued>,
    /// Items in all.
    len: usize,
    /// The buffer of a run merged away, kept for the next merge: a merge into fresh
    /// memory would have the kernel clear megabytes of new pages each time.
    spare: Vec<Queued>,
}

#[derive(Clone, Debug)]
struct Run {
    items: Vec<Queued>,
    /// Items before it were popped.
    head: usize,
}

impl Run {
    fn rest(&self) -> &[Queued] {
        &self.items[self.head..]
    }
}

impl SortedRuns {
    fn len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        self.runs.clear();
        self.spare = Vec::new();
        self.fresh.clear();
        self.len = 0;
    }

    fn push(&mut self, item: Queued) {
        self.fresh.push(item);
        self.len += 1;
    }

    /// Every item, in no order.
    fn iter(&self) -> impl Iterator<Item = &Queued> + '_ {
        self.runs.iter().flat_map(Run::rest).chain(&self.fresh)
    }

    fn pop(&mut self) -> Option<Queued> {
        self.settle();
        let (index, _) = self
            .runs
            .iter()
            .enumerate()
            .filter_map(|(index, run)| run.rest().first().map(|first| (index, first)))
            .min_by(|a, b| a.1.cmp(b.1))?;
        let run = &mut self.runs[index];
        let item = run.items[run.head];
        run.head += 1;
        if run.head == run.items.len() {
            self.runs.remove(index);
        }
        self.len -= 1;
        Some(item)
    }

    /// Sorts the items pushed since the last pop into a run, and merges the last runs
    /// while the last is at least half as long as the one before it (so each is at
    /// most about half the one before, and an item is merged O(log n) times).
    fn settle(&mut self) {
        if self.fresh.is_empty() {
            return;
        }
        let mut fresh = std::mem::take(&mut self.fresh);
        fresh.sort_unstable();
        self.runs.push(Run {
            items: fresh,
            head: 0,
        });
        while let [.., before, last] = self.runs.as_slice() {
            if before.rest().len() > 2 * last.rest().len() {
                break;
            }
            let mut merged = std::mem::take(&mut self.spare);
            merge(before.rest(), last.rest(), &mut merged);
            self.runs.pop();
            if let Some(before) = self.runs.last_mut() {
                let replaced = std::mem::replace(
                    before,
                    Run {
                        items: merged,
                        head: 0,
                    },
                );
                self.spare = replaced.items;
            }
        }
    }

    /// Keeps the items `keep` says (linear; the runs stay sorted).
    fn retain(&mut self, mut keep: impl FnMut(&Queued) -> bool) {
        for run in &mut self.runs {
            let kept: Vec<Queued> = run.rest().iter().copied().filter(|q| keep(q)).collect();
            *run = Run {
                items: kept,
                head: 0,
            };
        }
        self.runs.retain(|run| !run.items.is_empty());
        self.fresh.retain(|q| keep(q));
        self.len = self.iter().count();
    }
}

/// Two sorted runs as one, in `merged` (emptied first).
fn merge(a: &[Queued], b: &[Queued], merged: &mut Vec<Queued>) {
    merged.clear();
    merged.reserve(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        if y < x {
            merged.push(*y);
            j += 1;
        } else {
            merged.push(*x);
            i += 1;
        }
    }
    merged.extend_from_slice(&a[i..]);
    merged.extend_from_slice(&b[j..]);
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
    fn sorted_runs_pop_in_order_after_batches_of_pushes_pops_and_a_retain() {
        let queued = |n: u64| Queued {
            entry: Entry {
                class: [Class::Cold, Class::Warm, Class::Hot][(n % 3) as usize],
                coldness: ((n * 7919) % 101) as f64 / 7.0,
                last_access_ms: (n % 5) as i64,
                object: (n % 13) as u32,
            },
            insertion: n,
        };
        // Batches of varied sizes between pops, so that runs of many lengths are merged;
        // the model is a sorted set of what is in.
        let mut runs = SortedRuns::default();
        let mut model = std::collections::BTreeSet::new();
        let mut n = 0;
        for batch in [1, 300, 2, 7, 150, 0, 40, 1, 1, 90, 500, 3] {
            for _ in 0..batch {
                runs.push(queued(n));
                model.insert(queued(n));
                n += 1;
            }
            for _ in 0..(batch % 37) {
                assert_eq!(runs.pop(), model.pop_first());
            }
            assert_eq!(runs.len(), model.len());
            if batch == 90 {
                runs.retain(|q| q.insertion % 2 == 0);
                model.retain(|q| q.insertion % 2 == 0);
            }
        }
        let rest: Vec<Queued> = std::iter::from_fn(|| runs.pop()).collect();
        assert_eq!(rest, model.into_iter().collect::<Vec<_>>());
        assert_eq!(runs.len(), 0);
    }
}
