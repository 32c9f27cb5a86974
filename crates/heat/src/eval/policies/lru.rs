//! `lru`: the first tier as an LRU cache, the second as what backs it.
//!
//! The cache holds the first tier's capacity, or, when that tier is unlimited, 10% of the
//! trace's bytes (the sum of its objects' sizes): a cache that holds everything would make
//! every read a promotion and teach nothing. A read of an object not in the cache promotes it
//! right after the read, evicting the least recently used objects to the second tier until
//! it fits; if an eviction is refused (the victim's minimum residency on the first tier), the
//! promotion is given up for this read. A read of a cached object makes it the most recent.
//! Writes change nothing; a delete drops the object from the cache. Objects are predicted
//! to be read in the next window when they are on the cache's tier (the cached objects, and
//! new objects not read yet when the first tier is the default tier). With one tier it
//! never moves.

use super::recency::RecencyLists;
use crate::config::TieringConfig;
use crate::eval::{MoveOutcome, Policy, PrepareContext, Predictions, ReplayState};
use crate::stats::Op;
use crate::trace::TraceRequest;

const CACHE: usize = 0;
const BACKING: usize = 1;

/// The LRU cache policy.
#[derive(Clone, Debug)]
pub struct Lru {
    tier_capacity: Option<u64>,
    tiers: usize,
    capacity: u64,
    cached_bytes: u64,
    lists: RecencyLists,
}

impl Lru {
    /// An LRU cache on the first tier of `config`.
    pub fn new(config: &TieringConfig) -> Self {
        let tier_capacity = config.tiers.first().and_then(|tier| tier.capacity);
        Lru {
            tier_capacity,
            tiers: config.tiers.len(),
            capacity: tier_capacity.unwrap_or(0),
            cached_bytes: 0,
            lists: RecencyLists::new(1),
        }
    }

    /// The cache's size in bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.capacity
    }

    /// Evicts the least recently used objects until `bytes` more fit; false if it cannot.
    fn make_room(&mut self, state: &mut ReplayState, bytes: u64) -> bool {
        while self.cached_bytes.saturating_add(bytes) > self.capacity {
            let Some(victim) = self.lists.oldest(CACHE) else {
                return false;
            };
            match state.move_object(victim, BACKING) {
                MoveOutcome::Moved | MoveOutcome::Stayed => self.forget(state, victim),
                MoveOutcome::Refused(_) => return false,
            }
        }
        true
    }

    fn forget(&mut self, state: &ReplayState, object: u32) {
        if self.lists.list_of(object).is_some() {
            self.lists.remove(object);
            self.cached_bytes = self.cached_bytes.saturating_sub(state.size(object));
        }
    }

    fn read(&mut self, state: &mut ReplayState, object: u32) {
        let size = state.size(object);
        if self.lists.list_of(object).is_some() {
            self.lists.touch(CACHE, object);
            return;
        }
        if size > self.capacity || !self.make_room(state, size) {
            return;
        }
        // An object may already be on the first tier (the default tier): it joins the cache.
        if state.tier_of(object) == Some(CACHE) || state.move_object(object, CACHE) == MoveOutcome::Moved
        {
            self.lists.touch(CACHE, object);
            self.cached_bytes = self.cached_bytes.saturating_add(size);
        }
    }
}

impl Policy for Lru {
    fn name(&self) -> &str {
        "lru"
    }

    fn prepare(&mut self, context: &PrepareContext<'_, '_>) -> Result<(), crate::eval::EvalError> {
        if self.tier_capacity.is_none() {
            let total: u64 = context
                .summary
                .sizes
                .iter()
                .fold(0u64, |sum, &size| sum.saturating_add(size));
            self.capacity = total / 10;
        }
        Ok(())
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        if self.tiers < 2 {
            return;
        }
        match request.op {
            Op::Read => self.read(state, request.object),
            Op::Delete => self.forget(state, request.object),
            Op::Write => {}
        }
    }

    fn on_window(&mut self, _state: &mut ReplayState, _now_ms: i64, predictions: &mut Predictions) {
        predictions.will_read_tier(CACHE);
    }
}
