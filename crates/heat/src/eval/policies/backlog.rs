//! The demotions the `rules` policy's passes have not reached yet, kept in the order the
//! planner considers them, so that a pass takes the few its budget allows without
//! classifying the whole backlog again.
//!
//! Why the order keeps: the planner orders demotions by class (coldest first), then
//! baseline rate, then last access, then key (`placement`'s `wanted_order`). Without an
//! access an object's baseline rate decays as `r(t) = r(t0)·e^{-k(t - t0)}` (`k` = ln 2 /
//! the slow half-life), the same factor for every object, so `ln r(t) + k·t` does not
//! change with time and orders them as `r(t)` does at any `t`. An access takes the object
//! out of the backlog; an object whose class may change (a warm one, once its last access
//! is older than `warm_within`) is classified again by then and its entry replaced. The two
//! orders agree except for rates equal to about 14 digits, and while no rate underflows to
//! zero: the policy stops using the backlog once its oldest entry has aged more than
//! [`Backlog::horizon_ms`].

use std::collections::BTreeSet;

use crate::classify::{Class, Decision};
use crate::eval::TierIndex;

#[derive(Clone, Copy, Debug)]
struct Entry {
    class: Class,
    /// `ln r(t) + k·t`.
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
    set: BTreeSet<Entry>,
    entry_of: Vec<Option<(Entry, Waiting, u64)>>,
    /// Bytes waiting to go to each tier.
    bytes_to: Vec<u64>,
    /// Bytes waiting to leave each tier.
    bytes_from: Vec<u64>,
    /// No entry's last access is older than this (while the backlog is not empty).
    oldest_access_ms: i64,
}

impl Backlog {
    pub(super) fn new(slow_half_life_ms: i64, tiers: usize) -> Self {
        Backlog {
            slow_per_ms: std::f64::consts::LN_2 / slow_half_life_ms.max(1) as f64,
            set: BTreeSet::new(),
            entry_of: Vec::new(),
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
    pub(super) fn usable(&self, now_ms: i64) -> bool {
        self.set.is_empty() || now_ms.saturating_sub(self.oldest_access_ms) < self.horizon_ms()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Adds a demotion classified at `now_ms` (replacing any entry of the object).
    pub(super) fn insert(&mut self, waiting: Waiting, decision: &Decision, size: u64, now_ms: i64) {
        self.remove(waiting.object);
        let last = decision.inputs.last_access_ms.unwrap_or(i64::MIN);
        let entry = Entry {
            class: decision.class,
            coldness: decision.inputs.slow_rate_per_hour.ln() + now_ms as f64 * self.slow_per_ms,
            last_access_ms: last,
            object: waiting.object,
        };
        let index = waiting.object as usize;
        if self.entry_of.len() <= index {
            self.entry_of.resize(index + 1, None);
        }
        if self.set.is_empty() {
            self.oldest_access_ms = last;
        }
        self.oldest_access_ms = self.oldest_access_ms.min(last);
        self.set.insert(entry);
        self.entry_of[index] = Some((entry, waiting, size));
        self.bytes_to[waiting.to] = self.bytes_to[waiting.to].saturating_add(size);
        self.bytes_from[waiting.from] = self.bytes_from[waiting.from].saturating_add(size);
    }

    /// Takes an object out, if it is in.
    pub(super) fn remove(&mut self, object: u32) {
        let Some(slot) = self.entry_of.get_mut(object as usize) else {
            return;
        };
        if let Some((entry, waiting, size)) = slot.take() {
            self.set.remove(&entry);
            self.bytes_to[waiting.to] = self.bytes_to[waiting.to].saturating_sub(size);
            self.bytes_from[waiting.from] = self.bytes_from[waiting.from].saturating_sub(size);
        }
    }

    /// Bytes waiting to go to `tier`.
    pub(super) fn bytes_to(&self, tier: TierIndex) -> u64 {
        self.bytes_to.get(tier).copied().unwrap_or(0)
    }

    /// Bytes waiting to leave `tier`.
    pub(super) fn bytes_from(&self, tier: TierIndex) -> u64 {
        self.bytes_from.get(tier).copied().unwrap_or(0)
    }

    /// The waiting demotions with their sizes, coldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Waiting, u64)> + '_ {
        self.set.iter().filter_map(|entry| {
            self.entry_of
                .get(entry.object as usize)
                .copied()
                .flatten()
                .map(|(_, waiting, size)| (waiting, size))
        })
    }
}
