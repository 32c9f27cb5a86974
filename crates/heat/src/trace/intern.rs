//! Keys to dense object ids, in order of first appearance.
//!
//! Numeric keys (block numbers, cache2k and oracleGeneral ids) are looked up by number and
//! named only once, when first seen; text keys are looked up by their bytes without an
//! allocation. Both maps hash with [`FxHasher`]: replay speed is bounded by these lookups,
//! and a trace is a local file the operator chose, so SipHash's resistance to crafted
//! collisions buys nothing here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// The multiplicative hash of rustc (`FxHasher`): one multiply per word, good spread for
/// integers and short strings.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// The object table of one reader: key → id and id → key.
#[derive(Default)]
pub(crate) struct Interner {
    numeric: HashMap<u64, u32, FxBuild>,
    // Text keys are shared between the map and the id table: one allocation per object.
    text: HashMap<Arc<str>, u32, FxBuild>,
    keys: Vec<Arc<str>>,
}

/// More distinct objects than a `u32` id can number.
#[derive(Debug)]
pub(crate) struct TooManyObjects;

impl Interner {
    /// The id of a numeric key; `name` spells the key the first time it is seen.
    #[inline]
    pub(crate) fn numeric(
        &mut self,
        key: u64,
        name: impl FnOnce() -> String,
    ) -> Result<u32, TooManyObjects> {
        if let Some(&id) = self.numeric.get(&key) {
            return Ok(id);
        }
        let id = self.next_id()?;
        self.numeric.insert(key, id);
        self.keys.push(name().into());
        Ok(id)
    }

    /// The id of a text key.
    #[inline]
    pub(crate) fn text(&mut self, key: &str) -> Result<u32, TooManyObjects> {
        if let Some(&id) = self.text.get(key) {
            return Ok(id);
        }
        let id = self.next_id()?;
        let shared: Arc<str> = key.into();
        self.text.insert(Arc::clone(&shared), id);
        self.keys.push(shared);
        Ok(id)
    }

    fn next_id(&self) -> Result<u32, TooManyObjects> {
        u32::try_from(self.keys.len()).map_err(|_| TooManyObjects)
    }

    /// Distinct objects so far.
    pub(crate) fn len(&self) -> u32 {
        // Ids are only handed out below u32::MAX + 1 (next_id), so this cannot truncate.
        self.keys.len() as u32
    }

    /// The key of an id.
    pub(crate) fn key(&self, id: u32) -> Option<&str> {
        self.keys.get(id as usize).map(|key| &**key)
    }
}
