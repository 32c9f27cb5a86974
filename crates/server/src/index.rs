//! The in-memory view of the catalog's objects, and the per-key locks that order reads,
//! writes and placement switches.
//!
//! The catalog is the record; [`ObjectIndex`] mirrors its objects and current placements
//! so that the read path, listings and planning never query the database. Only this
//! process writes the catalog, and every change is written to the catalog first, then to
//! the index, so the index never shows what is not durable.
//!
//! [`KeyLocks`] are striped async read-write locks. A read holds its key's read lock from
//! the lookup until its last byte is read, so a write (which replaces the bytes) and a
//! move's switch (after which the old copy is deleted) wait for reads in progress, and a
//! read never sees bytes that do not match the metadata it looked up. Nobody holds two
//! stripes at once, so the locks cannot deadlock.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::{Arc, RwLock};
use strata_heat::TierId;

use serde::Serialize;
use strata_catalog::ChunkHashes;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard};

/// Lock stripes: enough that unrelated keys rarely share one.
const STRIPES: usize = 4096;

/// One object as the service sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEntry {
    /// Size in bytes (raw: what a GET returns).
    pub size: u64,
    /// Bytes its current copy takes on its tier: `size` on a plain tier, the frames, table
    /// and trailer on a packed one.
    pub stored: u64,
    /// BLAKE3 of the content.
    pub hash: [u8; 32],
    /// Last write.
    pub mtime_ms: i64,
    /// Grows on every write.
    pub generation: i64,
    /// First write.
    pub created_ms: i64,
    /// The tier of its current copy.
    pub tier: TierId,
    /// When that copy became current.
    pub placed_ms: i64,
    /// The BLAKE3 value of each 1 MiB chunk, which every read checks a chunk against
    /// before serving it; `None` until an object written before they were recorded has
    /// been read (and checked whole) once.
    pub chunk_hashes: Option<ChunkHashes>,
}

/// Bytes and objects on a tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TierUsage {
    /// Bytes the current copies take on the tier (stored bytes: compressed on a packed
    /// tier). Capacities count these.
    pub bytes: u64,
    /// Raw bytes of the objects whose current copy is on the tier.
    pub raw_bytes: u64,
    /// Current copies.
    pub objects: u64,
    /// Bytes of moves running into the tier.
    pub incoming_bytes: u64,
}

impl TierUsage {
    fn hold(&mut self, entry: &ObjectEntry) {
        self.bytes = self.bytes.saturating_add(entry.stored);
        self.raw_bytes = self.raw_bytes.saturating_add(entry.size);
        self.objects += 1;
    }

    fn release(&mut self, entry: &ObjectEntry) {
        self.bytes = self.bytes.saturating_sub(entry.stored);
        self.raw_bytes = self.raw_bytes.saturating_sub(entry.size);
        self.objects = self.objects.saturating_sub(1);
    }
}

#[derive(Debug)]
struct Inner {
    objects: BTreeMap<String, ObjectEntry>,
    usage: Vec<TierUsage>,
}

/// Objects by key, with per-tier usage.
#[derive(Debug)]
pub struct ObjectIndex {
    inner: RwLock<Inner>,
}

impl ObjectIndex {
    /// An empty index for `tiers` tiers.
    pub fn new(tiers: usize) -> Self {
        ObjectIndex {
            inner: RwLock::new(Inner {
                objects: BTreeMap::new(),
                usage: vec![TierUsage::default(); tiers],
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An object.
    pub fn get(&self, key: &str) -> Option<ObjectEntry> {
        self.read().objects.get(key).cloned()
    }

    /// Whether an object exists.
    pub fn contains(&self, key: &str) -> bool {
        self.read().objects.contains_key(key)
    }

    /// An existing key that `key` cannot live beside on a file-system tier: one that is a
    /// folder of `key` (`a` for `a/b`) or has `key` as a folder (`a/b` for `a`).
    pub fn conflicting_key(&self, key: &str) -> Option<String> {
        let inner = self.read();
        let mut folder = key;
        while let Some((parent, _)) = folder.rsplit_once('/') {
            if inner.objects.contains_key(parent) {
                return Some(parent.to_string());
            }
            folder = parent;
        }
        let below = format!("{key}/");
        inner
            .objects
            .range(below.clone()..)
            .next()
            .filter(|(other, _)| other.starts_with(&below))
            .map(|(other, _)| other.clone())
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// No object held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces an object.
    pub fn upsert(&self, key: &str, entry: ObjectEntry) {
        let mut inner = self.write();
        let Inner { objects, usage } = &mut *inner;
        if let Some(old) = objects.get(key) {
            if let Some(tier) = usage.get_mut(old.tier.index()) {
                tier.release(old);
            }
        }
        if let Some(tier) = usage.get_mut(entry.tier.index()) {
            tier.hold(&entry);
        }
        objects.insert(key.to_string(), entry);
    }

    /// Removes an object.
    pub fn remove(&self, key: &str) -> Option<ObjectEntry> {
        let mut inner = self.write();
        let old = inner.objects.remove(key)?;
        if let Some(tier) = inner.usage.get_mut(old.tier.index()) {
            tier.release(&old);
        }
        Some(old)
    }

    /// Moves an object's current copy to another tier, where it takes `stored` bytes.
    pub fn set_tier(&self, key: &str, tier: TierId, placed_ms: i64, stored: u64) {
        let mut inner = self.write();
        let Inner { objects, usage } = &mut *inner;
        let Some(entry) = objects.get_mut(key) else {
            return;
        };
        if let Some(old) = usage.get_mut(entry.tier.index()) {
            old.release(entry);
        }
        entry.tier = tier;
        entry.placed_ms = placed_ms;
        entry.stored = stored;
        if let Some(new) = usage.get_mut(tier.index()) {
            new.hold(entry);
        }
    }

    /// Records the chunk values of an object checked whole, if it is still at
    /// `generation`.
    pub fn set_chunk_hashes(&self, key: &str, generation: i64, chunk_hashes: ChunkHashes) {
        let mut inner = self.write();
        if let Some(entry) = inner.objects.get_mut(key) {
            if entry.generation == generation {
                entry.chunk_hashes = Some(chunk_hashes);
            }
        }
    }

    /// Counts bytes of a move running into `tier` (`add` false: the move ended).
    pub fn incoming(&self, tier: TierId, bytes: u64, add: bool) {
        let mut inner = self.write();
        if let Some(usage) = inner.usage.get_mut(tier.index()) {
            usage.incoming_bytes = if add {
                usage.incoming_bytes.saturating_add(bytes)
            } else {
                usage.incoming_bytes.saturating_sub(bytes)
            };
        }
    }

    /// Usage of every tier, in tier order.
    pub fn usage(&self) -> Vec<TierUsage> {
        self.read().usage.clone()
    }

    /// Up to `limit` objects whose key starts with `prefix` and sorts after `start_after`,
    /// in key order, and whether more follow.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> (Vec<(String, ObjectEntry)>, bool) {
        let inner = self.read();
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let mut out = Vec::new();
        let mut more = false;
        for (key, entry) in inner.objects.range((lower, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            out.push((key.clone(), entry.clone()));
        }
        (out, more)
    }

    /// Every object, in key order (for a planning pass).
    pub fn snapshot(&self) -> Vec<(String, ObjectEntry)> {
        self.read()
            .objects
            .iter()
            .map(|(key, entry)| (key.clone(), entry.clone()))
            .collect()
    }

    /// The objects whose current copy is on `tier`.
    pub fn on_tier(&self, tier: TierId) -> Vec<(String, ObjectEntry)> {
        self.read()
            .objects
            .iter()
            .filter(|(_, entry)| entry.tier == tier)
            .map(|(key, entry)| (key.clone(), entry.clone()))
            .collect()
    }
}

/// One exclusive gate per key for PUTs, which stream a new object's bytes to its tier
/// before they take the key's write lock (readers of the old object go on meanwhile): two
/// PUTs of one key would share the tier's staging file, so the second waits for the first.
/// Not striped: a long upload holds up only the writers of its own key.
#[derive(Debug, Default)]
pub struct KeyGates {
    gates: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A key's gate, held until dropped.
#[derive(Debug)]
pub struct KeyGate<'a> {
    gates: &'a KeyGates,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyGates {
    /// Waits for `key`'s gate.
    pub async fn enter(&self, key: &str) -> KeyGate<'_> {
        let gate = Arc::clone(
            crate::state::lock(&self.gates)
                .entry(key.to_string())
                .or_default(),
        );
        KeyGate {
            gates: self,
            key: key.to_string(),
            guard: Some(gate.lock_owned().await),
        }
    }
}

impl Drop for KeyGate<'_> {
    fn drop(&mut self) {
        let mut gates = crate::state::lock(&self.gates.gates);
        drop(self.guard.take());
        // Nobody else holds or waits for it: forget it.
        if gates
            .get(&self.key)
            .is_some_and(|gate| Arc::strong_count(gate) == 1)
        {
            gates.remove(&self.key);
        }
    }
}

/// Striped async read-write locks keyed by object key.
#[derive(Debug)]
pub struct KeyLocks {
    stripes: Box<[Arc<tokio::sync::RwLock<()>>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for KeyLocks {
    fn default() -> Self {
        KeyLocks {
            stripes: (0..STRIPES)
                .map(|_| Arc::new(tokio::sync::RwLock::new(())))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl KeyLocks {
    fn stripe(&self, key: &str) -> Arc<tokio::sync::RwLock<()>> {
        let slot = (self.hasher.hash_one(key) as usize) % self.stripes.len();
        Arc::clone(&self.stripes[slot])
    }

    /// Shared: reads of the key's bytes.
    pub async fn read(&self, key: &str) -> OwnedRwLockReadGuard<()> {
        self.stripe(key).read_owned().await
    }

    /// Exclusive: replacing the key's bytes, deleting it, switching its placement.
    pub async fn write(&self, key: &str) -> OwnedRwLockWriteGuard<()> {
        self.stripe(key).write_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, tier: usize) -> ObjectEntry {
        ObjectEntry {
            size,
            stored: size,
            hash: [0; 32],
            mtime_ms: 0,
            generation: 1,
            created_ms: 0,
            tier: TierId::from_index(tier),
            placed_ms: 0,
            chunk_hashes: None,
        }
    }

    #[test]
    fn usage_follows_writes_moves_and_deletes() {
        let index = ObjectIndex::new(3);
        index.upsert("a", entry(10, 1));
        index.upsert("b", entry(5, 1));
        index.upsert("a", entry(20, 1));
        assert_eq!(index.usage()[1].bytes, 25);
        index.set_tier("a", TierId::HOTTEST, 7, 12);
        assert_eq!((index.usage()[0].bytes, index.usage()[1].bytes), (12, 5));
        assert_eq!(index.usage()[0].raw_bytes, 20);
        assert_eq!(index.get("a").unwrap().stored, 12);
        assert_eq!(index.get("a").unwrap().placed_ms, 7);
        index.remove("b");
        assert_eq!(index.usage()[1], TierUsage::default());
    }

    #[test]
    fn listing_by_prefix_pages_in_key_order() {
        let index = ObjectIndex::new(1);
        for key in ["a/1", "a/2", "a/3", "b/1", "a"] {
            index.upsert(key, entry(1, 0));
        }
        let (page, more) = index.list("a/", None, 2);
        assert_eq!(
            page.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["a/1", "a/2"]
        );
        assert!(more);
        let (page, more) = index.list("a/", Some("a/2"), 2);
        assert_eq!(page.len(), 1);
        assert!(!more);
        let (all, _) = index.list("", None, 100);
        assert_eq!(all.len(), 5);
    }

    #[test]
    fn a_key_cannot_be_an_object_and_a_folder() {
        let index = ObjectIndex::new(1);
        for key in ["a/1", "b/1/2", "c"] {
            index.upsert(key, entry(1, 0));
        }
        assert_eq!(index.conflicting_key("a/1/x").as_deref(), Some("a/1"));
        assert_eq!(index.conflicting_key("b").as_deref(), Some("b/1/2"));
        assert_eq!(index.conflicting_key("b/1").as_deref(), Some("b/1/2"));
        assert_eq!(index.conflicting_key("c/d/e").as_deref(), Some("c"));
        assert_eq!(index.conflicting_key("a/2"), None);
        assert_eq!(index.conflicting_key("a/1"), None, "itself is no conflict");
        assert_eq!(index.conflicting_key("a1"), None);
    }
}
