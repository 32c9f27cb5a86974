//! The parity map of a packed dataset version and the names of its parity shards
//! (`strata migrate --layout packed --parity`). Computing, writing, checking and repairing
//! parity is `strata_mover::packed::parity`; the Reed-Solomon code is
//! [`crate::parity`]; `docs/FORMATS.md` specifies the map.
//!
//! - **Names.** A group's id ([`group_id`]) is BLAKE3 over the domain tag
//!   `strata-parity-group/1`, K, M and the shard length (u64 LE each), then per member its
//!   key length (u64 LE), key bytes, length (u64 LE) and the ASCII of its hex BLAKE3: parity
//!   objects are named by what they protect. Shard `i` is `parity/<group id>/<i>`.
//! - **The map** is sealed ([`super::sealed`]) and written pretty, at
//!   `.strata/parity/<root>.json` and `.strata/parity/<root>.copy.json`.

use serde::{Deserialize, Serialize};

use super::sealed::{seal, unseal, Sealed};
use crate::parity::{shard_len_for, ParitySpec};

/// Folder of the parity maps, one per dataset version.
pub const PARITY_DIR: &str = ".strata/parity";
/// The `format` marker of a parity map.
pub const PARITY_MAP_FORMAT: &str = "strata-parity-map";
/// The newest parity map version this build writes and reads (newer ones are refused).
pub const PARITY_MAP_VERSION: u32 = 1;

/// One shard of a group: an object key, its length and BLAKE3 (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRef {
    /// Object key relative to the store root.
    pub key: String,
    /// Length in bytes.
    pub len: u64,
    /// BLAKE3 of the object's bytes, hex.
    pub blake3: String,
}

/// K (or fewer) data objects and their M parity shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParityGroup {
    /// BLAKE3 over K, M, the shard length and the members (see the module docs), hex.
    pub id: String,
    /// Length of every parity shard: the longest member rounded up to even.
    pub shard_len: u64,
    /// The data objects, in order.
    pub members: Vec<ShardRef>,
    /// The parity shards, in order.
    pub parity: Vec<ShardRef>,
}

/// `.strata/parity/<root-hash>.json`: the parity of one dataset version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParityMap {
    /// Always [`PARITY_MAP_FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The dataset version (root hash) whose objects are covered.
    pub root_hash: String,
    /// Data shards per group.
    pub k: usize,
    /// Parity shards per group.
    pub m: usize,
    /// Storage locations the shards are spread over (1: one store).
    pub locations: usize,
    /// The groups, in index order.
    pub groups: Vec<ParityGroup>,
    /// BLAKE3 of the map's canonical JSON without this field (as for the manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_hash: Option<String>,
}

impl Sealed for ParityMap {
    const WHAT: &'static str = "the parity map";
    const LEGACY: bool = false;
    const OPTIONAL: bool = true;
    const PRETTY: bool = true;
    const LOST: &'static str = "parity cannot be used; the data is still checked by its hashes";

    fn self_hash_mut(&mut self) -> &mut Option<String> {
        &mut self.self_hash
    }

    fn identify(&self) -> Result<(), String> {
        if self.format != PARITY_MAP_FORMAT {
            return Err("not a Strata parity map".into());
        }
        if self.version > PARITY_MAP_VERSION {
            return Err(format!(
                "parity map version {} is newer than this Strata understands; upgrade strata",
                self.version
            ));
        }
        Ok(())
    }
}

impl ParityMap {
    /// Serialise with a fresh self-hash ([`seal`]).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        seal(self)
    }

    /// Parse and check a map: format, version, self-hash, group shapes.
    pub fn from_json(bytes: &[u8]) -> Result<ParityMap, String> {
        let (map, _) = unseal::<ParityMap>(bytes)?;
        map.check_groups()?;
        Ok(map)
    }

    /// Check every group's shape against k, m and its members.
    pub fn check_groups(&self) -> Result<(), String> {
        for group in &self.groups {
            let shard_len = shard_len_for(group.members.iter().map(|s| s.len as usize)) as u64;
            if group.members.is_empty()
                || group.members.len() > self.k
                || group.parity.len() != self.m
                || group.shard_len != shard_len
                || group.parity.iter().any(|p| p.len != shard_len)
            {
                return Err(format!("group {} is malformed", group.id));
            }
        }
        Ok(())
    }

    /// The spec the map was written with.
    pub fn spec(&self) -> ParitySpec {
        ParitySpec {
            k: self.k,
            m: self.m,
        }
    }
}

/// Where the parity map of dataset version `root` lives.
pub fn map_path(root: &str) -> String {
    format!("{PARITY_DIR}/{root}.json")
}

/// Where the copy of the parity map of version `root` lives.
pub fn map_copy_path(root: &str) -> String {
    format!("{PARITY_DIR}/{root}.copy.json")
}

/// The id of a group (see the module docs).
pub fn group_id(spec: ParitySpec, shard_len: u64, members: &[ShardRef]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"strata-parity-group/1");
    for n in [spec.k as u64, spec.m as u64, shard_len] {
        h.update(&n.to_le_bytes());
    }
    for s in members {
        h.update(&(s.key.len() as u64).to_le_bytes());
        h.update(s.key.as_bytes());
        h.update(&s.len.to_le_bytes());
        h.update(s.blake3.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// The key of parity shard `i` of group `id`.
pub fn parity_key(id: &str, i: usize) -> String {
    format!("parity/{id}/{i}")
}
