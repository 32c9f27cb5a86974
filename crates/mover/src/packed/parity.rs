//! Parity for packed stores: Reed-Solomon over the stored objects of a dataset version.
//!
//! ```text
//! DST/
//!   parity/<group-id>/<i>                  parity shard i (0..M) of a group
//!   .strata/parity/<root-hash>.json        ParityMap: k, m and every group
//!   .strata/parity/<root-hash>.copy.json   the same bytes, read when the primary is bad
//! ```
//!
//! - **Shards.** The objects the index of a version points at (chunk objects and packs),
//!   each taken whole, sorted by size (largest first) and cut into runs of K objects (the
//!   last may be shorter), so that objects of similar size share a group; each group gets
//!   M parity shards computed over its objects zero-padded to the longest
//!   (`strata_codec::parity`). A `P%` budget chooses K and M from the objects' sizes
//!   ([`super::parity_plan`]). Maps written before objects were sorted (index order) are
//!   read the same way: every group lists its members.
//! - **Names.** A group's id is BLAKE3 over K, M, the shard length and each member's key,
//!   length and BLAKE3: its parity objects are named by what they protect, so a re-run
//!   over the same objects names (and skips) the same shards, and new parity never
//!   overwrites shards an older map still points at.
//! - **Detection.** The map records every member's and every parity shard's length and
//!   BLAKE3, so a damaged shard is found by hashing it, without decoding. Objects not
//!   covered (no map) are checked by their content address instead: a pack's bytes hash
//!   to its name, a chunk object's frame decodes and its raw bytes hash to its name.
//! - **Placement.** Shard `i` of a group (members first, then parity) belongs to location
//!   `i mod L` ([`strata_codec::parity::location_of`]); losing one location then loses at
//!   most ⌈(K+M)/L⌉ shards of any group, which parity covers when L ≥ ⌈(K+M)/M⌉. A store
//!   is one location today (`locations: 1` in the map): parity covers lost and damaged
//!   objects, not the loss of the whole store; spreading shards over several stores is
//!   the next step and needs no format change.
//! - **Order.** Parity objects are written before the map; the map (primary, then copy)
//!   last. A crash leaves at worst unreferenced parity objects.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use strata_codec::compress::{decode_frame, read_header};
use strata_codec::parity::{shard_len_for, GroupCoder, ParityRequest, ParitySpec, STRIPE_ALIGN};
use strata_store::{Store, StoreError};

use super::format::PackedIndex;
use super::parity_plan::{plan_groups, Shortfall};
use super::read::PackedSource;
use super::sealed::{load_copies, write_copies, Loaded};
use crate::plan::layout;
use crate::retry::retry_store;
use crate::verify::{merge_ranges, DamagedFile, StoreIssue};
use crate::MoverError;

pub use strata_codec::format::parity_map::{
    group_id, map_copy_path, map_path, parity_key, ParityGroup, ParityMap, ShardRef, PARITY_DIR,
    PARITY_MAP_FORMAT, PARITY_MAP_VERSION,
};

/// Groups encoded at once (each holds one stripe of its members, see [`encode_and_write`]).
const GROUPS_IN_FLIGHT: usize = 2;

/// A parity map as loaded, with the state of both copies.
pub type LoadedParityMap = Loaded<ParityMap>;

/// Load the parity map of version `root` from its primary or its copy (no map and no
/// issue when the store has no parity; see [`load_copies`]).
pub async fn load_parity_map(store: &Store, root: &str) -> Result<LoadedParityMap, MoverError> {
    let check = |map: &ParityMap| {
        map.check_groups()?;
        if map.root_hash != root {
            return Err(format!(
                "it covers dataset version {}, not {root}",
                map.root_hash
            ));
        }
        Ok(())
    };
    load_copies(store, &map_path(root), &map_copy_path(root), &check).await
}

/// Where one chunk frame inside a stored object is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUse {
    /// Index of the file in the packed index.
    pub file: usize,
    /// Chunk number in the file.
    pub chunk: usize,
    /// Offset of the frame in the object.
    pub offset: u64,
    /// Length of the frame.
    pub len: u64,
}

/// One object of a packed version and every chunk that lives in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Object key.
    pub key: String,
    /// Expected length: the end of its last frame.
    pub len: u64,
    /// The chunks stored in it.
    pub uses: Vec<ObjectUse>,
}

/// The objects of an index, in order of first appearance.
pub fn objects_of(index: &PackedIndex) -> Vec<StoredObject> {
    let mut order: Vec<StoredObject> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for (file_no, file) in index.files.iter().enumerate() {
        for (chunk_no, locator) in file.chunks.iter().enumerate() {
            let slot = *at.entry(locator.object.as_str()).or_insert_with(|| {
                order.push(StoredObject {
                    key: locator.object.clone(),
                    len: 0,
                    uses: Vec::new(),
                });
                order.len() - 1
            });
            let object = &mut order[slot];
            object.len = object.len.max(locator.offset + locator.len);
            object.uses.push(ObjectUse {
                file: file_no,
                chunk: chunk_no,
                offset: locator.offset,
                len: locator.len,
            });
        }
    }
    order
}

/// The paths of the files that have a chunk in `object`, sorted, without duplicates.
pub fn files_using(index: &PackedIndex, object: &StoredObject) -> Vec<String> {
    let mut paths: Vec<String> = object
        .uses
        .iter()
        .map(|u| index.files[u.file].path.clone())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Check an object's bytes: its length; then its recorded BLAKE3 when a parity map gives
/// one (enough: the map was written from verified bytes); otherwise its content address
/// (a pack's bytes hash to its name; every frame of a chunk object decodes, which checks
/// its raw hash, and that raw hash is the object's name).
pub fn check_object(
    bytes: &[u8],
    object: &StoredObject,
    recorded: Option<&str>,
) -> Result<(), String> {
    if bytes.len() as u64 != object.len {
        return Err(format!(
            "{} bytes, expected {} (truncated, torn or replaced)",
            bytes.len(),
            object.len
        ));
    }
    if let Some(recorded) = recorded {
        return if blake3::hash(bytes).to_hex().as_str() == recorded {
            Ok(())
        } else {
            Err("content hash differs from the one recorded in the parity map".into())
        };
    }
    let name = object.key.rsplit('/').next().unwrap_or_default();
    if object.key.starts_with("packs/") {
        return if blake3::hash(bytes).to_hex().as_str() == name {
            Ok(())
        } else {
            Err("pack bytes do not hash to the pack's name".into())
        };
    }
    let mut seen = HashSet::new();
    for frame in &object.uses {
        if !seen.insert((frame.offset, frame.len)) {
            continue;
        }
        let slice = &bytes[frame.offset as usize..(frame.offset + frame.len) as usize];
        decode_frame(slice).map_err(|e| format!("frame at offset {}: {e}", frame.offset))?;
        let header = read_header(slice).map_err(|e| e.to_string())?;
        if hex::encode(header.raw_hash) != name {
            return Err("the frame holds another chunk than the object's name says".into());
        }
    }
    Ok(())
}

/// What [`write_parity`] does (announced before writing) and did.
#[derive(Debug, Clone, Serialize)]
pub struct ParityReport {
    /// What `--parity` asked for: `10%` or `ec:K+M`.
    pub requested: String,
    /// The shape written, `ec:K+M`.
    #[serde(serialize_with = "as_text")]
    pub spec: ParitySpec,
    /// The shape asked for (`ec:K+M`, or the budget's nominal shape).
    #[serde(serialize_with = "as_text")]
    pub nominal: ParitySpec,
    /// Parity bytes the nominal shape would have needed over the same objects.
    pub nominal_parity_bytes: u64,
    /// The largest object: no parity shard of its group can be shorter.
    pub largest_object: u64,
    /// Why the parity differs from what was asked, when it does.
    pub shortfall: Option<Shortfall>,
    /// Groups in the map.
    pub groups: usize,
    /// Groups whose parity was computed now (the others were already in place).
    pub groups_written: usize,
    /// Data objects covered.
    pub objects: usize,
    /// Bytes of the data objects.
    pub data_bytes: u64,
    /// Bytes of parity shards.
    pub parity_bytes: u64,
    /// The map written.
    pub map: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// A shape as people write it (`ec:K+M`).
fn as_text<S: serde::Serializer>(spec: &ParitySpec, out: S) -> Result<S::Ok, S::Error> {
    out.collect_str(spec)
}

/// Compute parity for the current version of the packed store at `store` and write the
/// shards and the map. Objects are checked before they are encoded: parity is never
/// computed over damaged bytes (run `strata repair` first). Groups the existing map
/// already covers with intact-looking shards are kept as they are. `announce` gets the
/// plan (shape, bytes, shortfall) before anything is written.
pub async fn write_parity(
    store: &Store,
    request: ParityRequest,
    jobs: usize,
    announce: impl FnOnce(&ParityReport),
) -> Result<ParityReport, MoverError> {
    request.spec.check().map_err(MoverError::InvalidOptions)?;
    let packed = PackedSource::open(store, None)
        .await?
        .ok_or_else(|| MoverError::InvalidOptions(format!(
            "{} is not a packed store: parity covers the packed layout (strata migrate --layout packed)",
            store.display()
        )))?;
    let root = packed.manifest().root_hash.clone();
    let previous = load_parity_map(store, &root).await?.doc;
    build_parity(
        store,
        packed.index(),
        &root,
        request,
        previous.as_ref(),
        &HashSet::new(),
        jobs,
        announce,
    )
    .await
}

/// Compute (or keep) every group of `index` and write the map. Groups of `previous` with
/// the same members and none of `force` among them are kept when their shards are present
/// with the right sizes.
#[allow(clippy::too_many_arguments)] // one call site each in write_parity and repair
pub(crate) async fn build_parity(
    store: &Store,
    index: &PackedIndex,
    root: &str,
    request: ParityRequest,
    previous: Option<&ParityMap>,
    force: &HashSet<String>,
    jobs: usize,
    announce: impl FnOnce(&ParityReport),
) -> Result<ParityReport, MoverError> {
    let started = Instant::now();
    let objects = objects_of(index);
    let plan = plan_groups(&objects, request);
    let spec = plan.spec;
    let mut report = ParityReport {
        requested: request.to_string(),
        spec,
        nominal: plan.nominal,
        nominal_parity_bytes: plan.nominal_parity_bytes,
        largest_object: plan.largest_object,
        shortfall: plan.shortfall,
        groups: plan.groups.len(),
        groups_written: 0,
        objects: objects.len(),
        data_bytes: plan.data_bytes,
        parity_bytes: plan.parity_bytes,
        map: map_path(root),
        seconds: 0.0,
    };
    announce(&report);
    let groups: Vec<Vec<StoredObject>> = plan
        .groups
        .iter()
        .map(|members| members.iter().map(|&i| objects[i].clone()).collect())
        .collect();
    let reusable: HashMap<Vec<(String, u64)>, &ParityGroup> = previous
        .filter(|p| p.k == spec.k && p.m == spec.m)
        .map(|p| {
            p.groups
                .iter()
                .map(|g| {
                    (
                        g.members.iter().map(|s| (s.key.clone(), s.len)).collect(),
                        g,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let results: Vec<(ParityGroup, bool)> = stream::iter(groups.iter())
        .map(|members| {
            let reusable = &reusable;
            async move {
                let signature: Vec<(String, u64)> =
                    members.iter().map(|o| (o.key.clone(), o.len)).collect();
                if let Some(group) = reusable.get(&signature) {
                    if !members.iter().any(|o| force.contains(&o.key))
                        && shards_present(store, &group.parity).await?
                    {
                        return Ok(((*group).clone(), false));
                    }
                }
                encode_and_write(store, members, spec, jobs)
                    .await
                    .map(|g| (g, true))
            }
        })
        .buffered(GROUPS_IN_FLIGHT)
        .try_collect()
        .await?;
    let groups_written = results.iter().filter(|(_, written)| *written).count();
    let groups: Vec<ParityGroup> = results.into_iter().map(|(g, _)| g).collect();
    let map = ParityMap {
        format: PARITY_MAP_FORMAT.into(),
        version: PARITY_MAP_VERSION,
        root_hash: root.to_string(),
        k: spec.k,
        m: spec.m,
        locations: 1,
        groups,
        self_hash: None,
    };
    write_map(store, &map).await?;
    if let Some(previous) = previous {
        let kept: HashSet<&str> = map
            .groups
            .iter()
            .flat_map(|g| g.parity.iter().map(|p| p.key.as_str()))
            .collect();
        for shard in previous.groups.iter().flat_map(|g| &g.parity) {
            if !kept.contains(shard.key.as_str()) {
                // Unreferenced now; a failure only leaves garbage behind.
                let _ = store.delete(&shard.key).await;
            }
        }
    }
    report.groups_written = groups_written;
    report.parity_bytes = map
        .groups
        .iter()
        .map(|g| g.shard_len * g.parity.len() as u64)
        .sum();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Whether `map`'s groups cover exactly `objects` (keys and lengths), in any order:
/// groups are sorted by size now, by index order in maps written before.
pub(crate) fn covers(map: &ParityMap, objects: &[StoredObject]) -> bool {
    let mut current: Vec<(&str, u64)> = objects.iter().map(|o| (o.key.as_str(), o.len)).collect();
    let mut covered: Vec<(&str, u64)> = map
        .groups
        .iter()
        .flat_map(|g| g.members.iter().map(|s| (s.key.as_str(), s.len)))
        .collect();
    current.sort_unstable();
    covered.sort_unstable();
    current == covered
}

/// Write the map, primary then copy.
pub(crate) async fn write_map(store: &Store, map: &ParityMap) -> Result<(), MoverError> {
    let json = map
        .to_json()
        .map_err(|e| MoverError::Internal(format!("the parity map does not serialise: {e}")))?;
    let root = &map.root_hash;
    write_copies(
        store,
        &map_path(root),
        &map_copy_path(root),
        Bytes::from(json),
    )
    .await
}

async fn shards_present(store: &Store, shards: &[ShardRef]) -> Result<bool, MoverError> {
    for shard in shards {
        match retry_store(|| store.stat(&shard.key)).await? {
            Some(entry) if entry.size == shard.len => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Read a group's members, check them, encode parity and write it.
///
/// Memory is bounded by the stripe, not the group: each member is first read whole, checked
/// and hashed on its own (two at a time), then the parity is computed stripe by stripe
/// ([`stripe_len`] bytes of every member at once), and every stripe is hashed again so that
/// a member that changed between the two reads is an error, never parity over bytes other
/// than the ones recorded. Before, a group's K members, the coder's copy of them and the
/// padding were all held at once (two groups of 20 4-MiB objects: over 300 MiB).
async fn encode_and_write(
    store: &Store,
    members: &[StoredObject],
    spec: ParitySpec,
    jobs: usize,
) -> Result<ParityGroup, MoverError> {
    let refs: Vec<ShardRef> = stream::iter(members)
        .map(|object| check_member(store, object))
        .buffered(CHECKS_IN_FLIGHT)
        .try_collect()
        .await?;
    let shard_len = shard_len_for(refs.iter().map(|r| r.len as usize));
    let mut hashers: Vec<blake3::Hasher> = members.iter().map(|_| blake3::Hasher::new()).collect();
    let mut parity: Vec<Vec<u8>> = vec![Vec::with_capacity(shard_len); spec.m];
    let mut coder = GroupCoder::new();
    let stripe = stripe_len(members.len());
    for offset in (0..shard_len).step_by(stripe) {
        let len = stripe.min(shard_len - offset);
        let pieces = read_stripe(store, members, offset as u64, len as u64, jobs).await?;
        for (hasher, piece) in hashers.iter_mut().zip(&pieces) {
            hasher.update(piece);
        }
        let (back, out) = tokio::task::spawn_blocking(move || {
            let slices: Vec<&[u8]> = pieces.iter().map(|p| p.as_ref()).collect();
            let out = coder.encode_stripe(&slices, spec.m, len);
            (coder, out)
        })
        .await
        .map_err(|e| MoverError::Internal(e.to_string()))?;
        coder = back;
        let out = out.map_err(|e| StoreError::Backend {
            path: refs[0].key.clone(),
            detail: e.to_string(),
            retryable: false,
        })?;
        for (p, o) in parity.iter_mut().zip(out) {
            p.extend_from_slice(&o);
        }
    }
    for (hasher, r) in hashers.iter().zip(&refs) {
        if hasher.finalize().to_hex().as_str() != r.blake3 {
            return Err(StoreError::Damaged {
                path: r.key.clone(),
                detail: "it changed while parity was computed over it; run the parity again".into(),
            }
            .into());
        }
    }
    let id = group_id(spec, shard_len as u64, &refs);
    let group = ParityGroup {
        id: id.clone(),
        shard_len: shard_len as u64,
        members: refs,
        parity: parity
            .iter()
            .enumerate()
            .map(|(i, p)| ShardRef {
                key: parity_key(&id, i),
                len: p.len() as u64,
                blake3: blake3::hash(p).to_hex().to_string(),
            })
            .collect(),
    };
    for (shard, bytes) in group.parity.iter().zip(parity) {
        let bytes = Bytes::from(bytes);
        retry_store(|| store.write_atomic(&shard.key, bytes.clone())).await?;
    }
    Ok(group)
}

/// Members read whole and checked at once, per group.
const CHECKS_IN_FLIGHT: usize = 2;
/// Bytes of all members' pieces of one stripe together, at most (but see [`stripe_len`]).
const STRIPE_BUDGET: usize = 32 << 20;

/// The stripe for a group of `k` members: [`STRIPE_BUDGET`] over `k`, 4 KiB to 1 MiB, a
/// multiple of [`STRIPE_ALIGN`].
fn stripe_len(k: usize) -> usize {
    let len = (STRIPE_BUDGET / k.max(1)).clamp(4 << 10, 1 << 20);
    len / STRIPE_ALIGN * STRIPE_ALIGN
}

/// Read `object` whole, check it (parity is never computed over damaged data: repair
/// first) and record its length and hash.
async fn check_member(store: &Store, object: &StoredObject) -> Result<ShardRef, MoverError> {
    let data = retry_store(|| store.read_all(&object.key)).await?;
    let object = object.clone();
    tokio::task::spawn_blocking(move || {
        check_object(&data, &object, None).map_err(|detail| StoreError::Damaged {
            path: object.key.clone(),
            detail,
        })?;
        Ok::<_, StoreError>(ShardRef {
            key: object.key.clone(),
            len: data.len() as u64,
            blake3: blake3::hash(&data).to_hex().to_string(),
        })
    })
    .await
    .map_err(|e| MoverError::Internal(e.to_string()))?
    .map_err(MoverError::from)
}

/// Every member's bytes in `[offset, offset + len)`, shorter or empty where it ends.
async fn read_stripe(
    store: &Store,
    members: &[StoredObject],
    offset: u64,
    len: u64,
    jobs: usize,
) -> Result<Vec<Bytes>, MoverError> {
    let pieces = stream::iter(members)
        .map(|o| async move {
            let end = o.len.min(offset + len);
            if end <= offset {
                return Ok(Bytes::new());
            }
            retry_store(|| store.read_range(&o.key, offset, end - offset)).await
        })
        .buffered(jobs.clamp(1, 8))
        .try_collect()
        .await?;
    Ok(pieces)
}

/// `strata verify --fast` on a packed store: every object a file's chunks live in is
/// present and long enough (a chunk object exactly as long as its frame).
pub async fn fast_check_files(packed: &PackedSource, jobs: usize) -> Vec<Option<DamagedFile>> {
    let index = packed.index();
    let store = packed.store();
    let objects = objects_of(index);
    let sizes: HashMap<String, Result<Option<u64>, String>> = stream::iter(objects.iter())
        .map(|o| async move {
            let size = retry_store(|| store.stat(&o.key))
                .await
                .map(|e| e.map(|e| e.size))
                .map_err(|e| e.to_string());
            (o.key.clone(), size)
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    let expected: HashMap<&str, u64> = objects.iter().map(|o| (o.key.as_str(), o.len)).collect();
    index
        .files
        .iter()
        .map(|file| {
            let layout = layout(index.chunk_size, file.size);
            let mut bad = Vec::new();
            let mut details = Vec::new();
            let mut missing = false;
            for (chunk, locator) in file.chunks.iter().enumerate() {
                let end = locator.offset + locator.len;
                let problem = match sizes.get(&locator.object) {
                    Some(Ok(None)) | None => {
                        missing = true;
                        Some(format!("object {} does not exist", locator.object))
                    }
                    Some(Err(error)) => Some(format!("object {}: {error}", locator.object)),
                    Some(Ok(Some(size))) if *size < end => Some(format!(
                        "object {} is {size} bytes, chunk {chunk} ends at {end}",
                        locator.object
                    )),
                    Some(Ok(Some(size)))
                        if locator.object.starts_with("chunks/")
                            && Some(size) != expected.get(locator.object.as_str()) =>
                    {
                        Some(format!(
                            "object {} is {size} bytes, its frame is {}",
                            locator.object, locator.len
                        ))
                    }
                    Some(Ok(Some(_))) => None,
                };
                if let Some(problem) = problem {
                    let (offset, len) = layout.chunk_range(chunk as u64);
                    bad.push((offset, offset + len));
                    details.push(problem);
                }
            }
            if file.chunks.len() as u64 != layout.chunk_count() {
                bad.push((0, file.size));
                details.push("the index lists the wrong number of chunks".into());
            }
            (!details.is_empty()).then(|| DamagedFile {
                path: file.path.clone(),
                problem: if missing { "missing" } else { "size" }.into(),
                detail: details.join("; "),
                ranges: merge_ranges(bad.into_iter()),
            })
        })
        .collect()
}

/// Check a packed store's parity: the map (both copies), that it covers the current
/// objects, and every parity shard (deep: hashed; fast: present with the right size).
pub async fn check_parity(
    packed: &PackedSource,
    deep: bool,
    jobs: usize,
) -> Result<Vec<StoreIssue>, MoverError> {
    let store = packed.store();
    let root = &packed.manifest().root_hash;
    let loaded = load_parity_map(store, root).await?;
    let mut issues = loaded.issues;
    let Some(map) = loaded.doc else {
        return Ok(issues);
    };
    if !covers(&map, &objects_of(packed.index())) {
        issues.push(StoreIssue {
            object: map_path(root),
            problem: "stale".into(),
            detail:
                "the parity map does not cover the current objects; `strata repair` recomputes it"
                    .into(),
        });
    }
    let shards: Vec<&ShardRef> = map.groups.iter().flat_map(|g| &g.parity).collect();
    let found: Vec<Option<StoreIssue>> = stream::iter(shards)
        .map(|shard| async move {
            let issue = |problem: &str, detail: String| {
                Some(StoreIssue {
                    object: shard.key.clone(),
                    problem: problem.into(),
                    detail,
                })
            };
            if deep {
                match retry_store(|| store.read_all(&shard.key)).await {
                    Err(StoreError::NotFound { .. }) => {
                        issue("missing", "parity shard is missing".into())
                    }
                    Err(error) => issue("unreadable", error.to_string()),
                    Ok(bytes) if bytes.len() as u64 != shard.len => issue(
                        "size",
                        format!(
                            "parity shard is {} bytes, expected {}",
                            bytes.len(),
                            shard.len
                        ),
                    ),
                    Ok(bytes) => {
                        let hash = tokio::task::spawn_blocking(move || {
                            blake3::hash(&bytes).to_hex().to_string()
                        })
                        .await
                        .unwrap_or_default();
                        if hash == shard.blake3 {
                            None
                        } else {
                            issue("content", "parity shard is damaged (hash mismatch)".into())
                        }
                    }
                }
            } else {
                match retry_store(|| store.stat(&shard.key)).await {
                    Ok(None) => issue("missing", "parity shard is missing".into()),
                    Ok(Some(entry)) if entry.size != shard.len => issue(
                        "size",
                        format!(
                            "parity shard is {} bytes, expected {}",
                            entry.size, shard.len
                        ),
                    ),
                    Ok(Some(_)) => None,
                    Err(error) => issue("unreadable", error.to_string()),
                }
            }
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    let mut found: Vec<StoreIssue> = found.into_iter().flatten().collect();
    found.sort_by(|a, b| a.object.cmp(&b.object));
    issues.extend(found);
    Ok(issues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stripe_of_every_member_stays_within_the_budget() {
        for k in [1, 2, 20, 21, 100, 1000, 8000, 65_535] {
            let stripe = stripe_len(k);
            assert_eq!(stripe % STRIPE_ALIGN, 0, "k {k}");
            assert!(((4 << 10)..=(1 << 20)).contains(&stripe), "k {k}: {stripe}");
            // The budget holds until the 4 KiB floor: 8,192 members.
            assert!(
                k * stripe <= STRIPE_BUDGET.max(k * (4 << 10)),
                "k {k}: {stripe}"
            );
        }
        assert_eq!(stripe_len(20), 1 << 20);
    }

    fn map() -> ParityMap {
        let members = vec![ShardRef {
            key: "chunks/ab/abcd".into(),
            len: 11,
            blake3: "00".repeat(32),
        }];
        ParityMap {
            format: PARITY_MAP_FORMAT.into(),
            version: 1,
            root_hash: "r".into(),
            k: 2,
            m: 1,
            locations: 1,
            groups: vec![ParityGroup {
                id: "g".into(),
                shard_len: 12,
                members,
                parity: vec![ShardRef {
                    key: parity_key("g", 0),
                    len: 12,
                    blake3: "11".repeat(32),
                }],
            }],
            self_hash: None,
        }
    }

    #[test]
    fn maps_cover_their_objects_in_any_group_order() {
        // Maps written before objects were sorted by size list them in index order.
        let object = |key: &str, len| StoredObject {
            key: key.into(),
            len,
            uses: Vec::new(),
        };
        let mut m = map();
        m.groups[0].members.push(ShardRef {
            key: "packs/cd/cdef".into(),
            len: 5,
            blake3: "22".repeat(32),
        });
        let objects = [object("packs/cd/cdef", 5), object("chunks/ab/abcd", 11)];
        assert!(covers(&m, &objects));
        assert!(!covers(&m, &objects[..1]));
        assert!(!covers(
            &m,
            &[object("packs/cd/cdef", 6), object("chunks/ab/abcd", 11)]
        ));
    }

    #[test]
    fn map_round_trips_and_detects_edits() {
        let m = map();
        let json = m.to_json().unwrap();
        let back = ParityMap::from_json(&json).unwrap();
        assert_eq!(
            ParityMap {
                self_hash: None,
                ..back
            },
            m
        );
        let text = String::from_utf8(json).unwrap();
        let edited = text.replace("\"len\": 11", "\"len\": 10");
        assert!(ParityMap::from_json(edited.as_bytes()).is_err());
        let newer = text.replace("\"version\": 1", "\"version\": 9");
        assert!(ParityMap::from_json(newer.as_bytes()).is_err());
        let mut bad = m.clone();
        bad.groups[0].shard_len = 14;
        assert!(ParityMap::from_json(&bad.to_json().unwrap()).is_err());
    }

    #[test]
    fn group_ids_depend_on_every_member_fact() {
        let spec = ParitySpec { k: 2, m: 1 };
        let base = map().groups[0].members.clone();
        let id = group_id(spec, 12, &base);
        let mut other = base.clone();
        other[0].blake3 = "22".repeat(32);
        assert_ne!(group_id(spec, 12, &other), id);
        assert_ne!(group_id(ParitySpec { k: 3, m: 1 }, 12, &base), id);
        assert_ne!(group_id(spec, 14, &base), id);
    }
}
