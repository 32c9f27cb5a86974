//! `strata repair DST [--from SRC]`: find what is damaged or missing, rebuild it, and say
//! what could not be rebuilt.
//!
//! 1. **Metadata.** The manifest is read from its primary or its copy; a bad one of the
//!    two is rewritten from the good one. The same for the parity map.
//! 2. **Scan.** Every object of the current version and every parity shard is read and
//!    checked ([`check_object`]: length, then the hash the parity map records, else the
//!    content address). A missing, truncated or damaged object is *bad*.
//! 3. **Parity.** A group with at most M bad shards is rebuilt (`strata_codec::parity`);
//!    each rebuilt shard must hash to what the map records, or it is not written.
//! 4. **Source** (`--from SRC`, a plain copy of the dataset). Bad objects parity cannot
//!    rebuild are re-made from the source files: each chunk is read, must hash to what the
//!    index and manifest record, and is framed again with the codec it had. Deterministic
//!    codecs give back the identical object under the same key. When they do not (or a
//!    pack keeps only some of its files), the new object is written under its own content
//!    address and the current index is rewritten to point at it (same path: the dataset,
//!    and so its root hash, is unchanged). Older indexes are left as they are.
//! 5. **Parity refresh.** When the index changed, or a group's parity could not be rebuilt
//!    but its data now can be read, parity is recomputed for those groups and the map
//!    rewritten.
//!
//! Every write is `write_atomic` (temp file, fsync, rename, fsync directory locally; one
//! PUT on object stores), objects before the index, the index before the map, and every
//! object is read back and checked after it is written. Bytes that fail a check are never
//! written: damage beyond what parity covers, without a source that matches, is reported
//! with the files it affects.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use strata_codec::compress::{decode_frame, encode_frame, read_header, Codec, CodecSpec, Filter};
use strata_codec::parity::reconstruct;
use strata_codec::{DatasetManifest, MANIFEST_COPY_PATH, MANIFEST_PATH};
use strata_store::{Store, StoreError};

use super::format::{pack_key, ChunkLocator, PackedIndex};
use super::parity::{
    build_parity, check_object, files_using, load_parity_map, map_copy_path, map_path, objects_of,
    ObjectUse, ParityGroup, ShardRef, StoredObject,
};
use super::read::PackedSource;
use crate::plan::layout;
use crate::retry::with_backoff;
use crate::verify::{load_manifest_checked, verify_dataset_mode, VerifyMode};
use crate::MoverError;

/// An object (or metadata file) that was rebuilt.
#[derive(Debug, Clone, Serialize)]
pub struct RepairedObject {
    /// Object key or metadata path, relative to the store root.
    pub object: String,
    /// `parity`, `source` or `copy` (metadata rewritten from its intact copy).
    pub how: String,
    /// Where the rebuilt bytes went, when not back under `object` (a new content address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// Files with chunks in it.
    pub files: Vec<String>,
}

/// Something that could not be rebuilt.
#[derive(Debug, Clone, Serialize)]
pub struct UnrepairableObject {
    /// Object key or metadata path.
    pub object: String,
    /// The files still damaged because of it (empty for parity shards and metadata).
    pub paths: Vec<String>,
    /// Why, and what to do.
    pub reason: String,
}

/// The outcome of `strata repair`.
#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    /// The store repaired.
    pub destination: String,
    /// Root hash of the dataset version repaired.
    pub root_hash: String,
    /// Objects (data and parity) checked.
    pub objects_checked: usize,
    /// Objects and metadata files found damaged or missing.
    pub damaged: usize,
    /// What was rebuilt.
    pub repaired: Vec<RepairedObject>,
    /// What could not be.
    pub unrepairable: Vec<UnrepairableObject>,
    /// Files still damaged, sorted: every path of `unrepairable`.
    pub files_affected: Vec<String>,
    /// Whether the current index was rewritten to point at new objects.
    pub index_rewritten: bool,
    /// Whether parity was recomputed for some groups.
    pub parity_recomputed: bool,
    /// Bytes read again from `--from SRC` (plain layout: only damaged chunks travel).
    pub bytes_from_source: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl RepairReport {
    /// True when everything found damaged was rebuilt.
    pub fn is_ok(&self) -> bool {
        self.unrepairable.is_empty()
    }
}

/// Check `bytes`, write them atomically to `key`, read them back and check again.
async fn write_checked(
    store: &Store,
    key: &str,
    bytes: Bytes,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    check(&bytes).map_err(|e| format!("rebuilt bytes fail their check ({e}); not written"))?;
    with_backoff(|| store.write_atomic(key, bytes.clone()))
        .await
        .map_err(|e| format!("cannot write: {e}"))?;
    let back = with_backoff(|| store.read_all(key))
        .await
        .map_err(|e| format!("cannot read back after writing: {e}"))?;
    check(&back).map_err(|e| format!("written but does not read back intact ({e})"))
}

/// Repair the dataset at `store`, from its parity and, for what parity cannot rebuild,
/// from `from` (a plain copy of the dataset: the migration's source, or a restore).
pub async fn repair(
    store: &Store,
    from: Option<&Store>,
    jobs: usize,
) -> Result<RepairReport, MoverError> {
    let started = Instant::now();
    let jobs = jobs.max(1);
    store.check_reachable().await?;
    let loaded = load_manifest_checked(store).await?;
    let manifest = loaded.manifest.clone();
    let mut report = RepairReport {
        destination: store.display(),
        root_hash: manifest.root_hash.clone(),
        objects_checked: 0,
        damaged: 0,
        repaired: Vec::new(),
        unrepairable: Vec::new(),
        files_affected: Vec::new(),
        index_rewritten: false,
        parity_recomputed: false,
        bytes_from_source: 0,
        seconds: 0.0,
    };
    let is_manifest = |b: &[u8]| {
        DatasetManifest::from_json(b)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    for (path, bad) in [
        (MANIFEST_PATH, !loaded.primary_ok),
        (MANIFEST_COPY_PATH, loaded.copy_expected && !loaded.copy_ok),
    ] {
        if bad {
            report.damaged += 1;
            metadata_from_copy(store, path, loaded.bytes.clone(), is_manifest, &mut report).await;
        }
    }
    if manifest.layout.as_deref() == Some("packed") {
        repair_packed(store, from, jobs, &mut report).await?;
    } else {
        repair_plain(store, from, jobs, &manifest, &mut report).await?;
    }
    let mut affected: BTreeSet<String> = BTreeSet::new();
    for u in &report.unrepairable {
        affected.extend(u.paths.iter().cloned());
    }
    report.files_affected = affected.into_iter().collect();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn metadata_from_copy(
    store: &Store,
    path: &str,
    bytes: Bytes,
    check: impl Fn(&[u8]) -> Result<(), String>,
    report: &mut RepairReport,
) {
    match write_checked(store, path, bytes, check).await {
        Ok(()) => report.repaired.push(RepairedObject {
            object: path.into(),
            how: "copy".into(),
            moved_to: None,
            files: vec![],
        }),
        Err(reason) => report.unrepairable.push(UnrepairableObject {
            object: path.into(),
            paths: vec![],
            reason,
        }),
    }
}

/// What a scan found wrong with one object.
type Findings = HashMap<String, String>;

async fn repair_packed(
    store: &Store,
    from: Option<&Store>,
    jobs: usize,
    report: &mut RepairReport,
) -> Result<(), MoverError> {
    let packed = PackedSource::open(store)
        .await?
        .ok_or_else(|| MoverError::Manifest {
            location: store.display(),
            reason: "the manifest says packed but the layout marker is missing".into(),
        })?;
    let manifest = packed.manifest().clone();
    let mut index = packed.index().clone();
    let root = manifest.root_hash.clone();
    let loaded_map = load_parity_map(store, &root).await?;
    let map = loaded_map.map.clone();
    let objects = objects_of(&index);
    let by_key: HashMap<&str, &StoredObject> =
        objects.iter().map(|o| (o.key.as_str(), o)).collect();
    let recorded: HashMap<&str, &ShardRef> = map
        .iter()
        .flat_map(|m| &m.groups)
        .flat_map(|g| g.members.iter().chain(&g.parity))
        .map(|s| (s.key.as_str(), s))
        .collect();
    let parity_shards: Vec<&ShardRef> = map
        .iter()
        .flat_map(|m| &m.groups)
        .flat_map(|g| &g.parity)
        .collect();

    // 2. Scan.
    let mut bad: Findings = stream::iter(objects.iter())
        .map(|object| {
            let hash = recorded.get(object.key.as_str()).map(|s| s.blake3.clone());
            async move {
                let found = match with_backoff(|| store.read_all(&object.key)).await {
                    Err(StoreError::NotFound { .. }) => Some("missing".to_string()),
                    Err(error) => Some(format!("unreadable: {error}")),
                    Ok(bytes) => {
                        let object = object.clone();
                        tokio::task::spawn_blocking(move || {
                            check_object(&bytes, &object, hash.as_deref()).err()
                        })
                        .await
                        .unwrap_or_else(|e| Some(e.to_string()))
                    }
                };
                found.map(|reason| (object.key.clone(), reason))
            }
        })
        .buffer_unordered(jobs)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    let parity_bad: Findings = stream::iter(parity_shards.iter().copied())
        .map(|shard| async move {
            let found = match with_backoff(|| store.read_all(&shard.key)).await {
                Err(StoreError::NotFound { .. }) => Some("missing".to_string()),
                Err(error) => Some(format!("unreadable: {error}")),
                Ok(bytes) => {
                    let shard = shard.clone();
                    tokio::task::spawn_blocking(move || check_shard(&bytes, &shard).err())
                        .await
                        .unwrap_or_else(|e| Some(e.to_string()))
                }
            };
            found.map(|reason| (shard.key.clone(), reason))
        })
        .buffer_unordered(jobs)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    report.objects_checked += objects.len() + parity_shards.len();
    report.damaged += bad.len() + parity_bad.len();
    bad.extend(parity_bad);
    tracing::info!(damaged = bad.len(), "repair scan done");

    // 3. Parity.
    let mut beyond_parity: HashMap<String, String> = HashMap::new();
    let mut force: HashSet<String> = HashSet::new();
    if let Some(map) = &map {
        for group in &map.groups {
            let lost: Vec<&ShardRef> = group
                .members
                .iter()
                .chain(&group.parity)
                .filter(|s| bad.contains_key(&s.key))
                .collect();
            if lost.is_empty() {
                continue;
            }
            let total = group.members.len() + group.parity.len();
            if lost.len() > map.m {
                let why = format!(
                    "{} of the {total} shards of its parity group are damaged or missing, parity covers {}",
                    lost.len(),
                    map.m
                );
                for shard in &lost {
                    beyond_parity.insert(shard.key.clone(), why.clone());
                }
                force.extend(group.members.iter().map(|s| s.key.clone()));
                continue;
            }
            match rebuild_group(store, group, &bad).await {
                Ok(rebuilt) => {
                    for (shard, bytes) in rebuilt {
                        let object = by_key.get(shard.key.as_str()).copied();
                        let check = |b: &[u8]| {
                            check_shard(b, &shard)?;
                            match object {
                                Some(object) => check_object(b, object, None),
                                None => Ok(()),
                            }
                        };
                        let files = object.map(|o| files_using(&index, o)).unwrap_or_default();
                        match write_checked(store, &shard.key, bytes, check).await {
                            Ok(()) => {
                                bad.remove(&shard.key);
                                report.repaired.push(RepairedObject {
                                    object: shard.key.clone(),
                                    how: "parity".into(),
                                    moved_to: None,
                                    files,
                                });
                            }
                            Err(reason) => {
                                beyond_parity.insert(shard.key.clone(), reason);
                            }
                        }
                    }
                }
                Err(reason) => {
                    for shard in &lost {
                        beyond_parity.insert(shard.key.clone(), reason.clone());
                    }
                    force.extend(group.members.iter().map(|s| s.key.clone()));
                }
            }
        }
    }

    // 4. Source.
    let mut index_changed = false;
    let to_fix: Vec<&StoredObject> = objects
        .iter()
        .filter(|o| bad.contains_key(&o.key))
        .collect();
    for object in to_fix {
        let why = beyond_parity
            .get(&object.key)
            .cloned()
            .unwrap_or_else(|| match &map {
                Some(_) => "parity could not rebuild it".into(),
                None => "the store has no parity".into(),
            });
        let found = bad.get(&object.key).cloned().unwrap_or_default();
        let old = with_backoff(|| store.read_all(&object.key)).await.ok();
        let affected = damaged_files(&index, object, old.as_deref());
        let Some(source) = from else {
            report.unrepairable.push(UnrepairableObject {
                object: object.key.clone(),
                paths: affected,
                reason: format!(
                    "{found}; {why}; give a copy of the dataset with `strata repair DST --from SRC`"
                ),
            });
            continue;
        };
        let recorded_ref = recorded.get(object.key.as_str()).copied();
        let fix = if object.key.starts_with("packs/") {
            pack_from_source(source, &index, object, old.as_deref()).await
        } else {
            chunk_from_source(source, &index, object, old.as_deref(), recorded_ref).await
        };
        let fix = match fix {
            Ok(fix) => fix,
            Err((paths, reason)) => {
                report.unrepairable.push(UnrepairableObject {
                    object: object.key.clone(),
                    paths: if paths.is_empty() { affected } else { paths },
                    reason: format!("{found}; {why}; from the source: {reason}"),
                });
                continue;
            }
        };
        let written = StoredObject {
            key: fix.key.clone(),
            len: fix.bytes.len() as u64,
            uses: if fix.relocate.is_empty() {
                object.uses.clone()
            } else {
                fix.relocate
                    .iter()
                    .map(|(file, chunk, l)| ObjectUse {
                        file: *file,
                        chunk: *chunk,
                        offset: l.offset,
                        len: l.len,
                    })
                    .collect()
            },
        };
        let result = write_checked(store, &fix.key, Bytes::from(fix.bytes), |b| {
            check_object(b, &written, None)
        })
        .await;
        if let Err(reason) = result {
            report.unrepairable.push(UnrepairableObject {
                object: object.key.clone(),
                paths: affected,
                reason: format!("{found}; {why}; from the source: {reason}"),
            });
            continue;
        }
        if !fix.relocate.is_empty() {
            index_changed = true;
            force.insert(fix.key.clone());
            for (file, chunk, locator) in &fix.relocate {
                index.files[*file].chunks[*chunk] = locator.clone();
            }
        }
        report.repaired.push(RepairedObject {
            object: object.key.clone(),
            how: "source".into(),
            moved_to: (fix.key != object.key).then(|| fix.key.clone()),
            files: files_using(&index, &written),
        });
        bad.remove(&object.key);
    }
    if index_changed {
        let path = manifest.index.clone().unwrap_or_default();
        let json = Bytes::from(serde_json::to_vec(&index).unwrap_or_default());
        let check = |b: &[u8]| {
            PackedIndex::from_json(b)
                .map(|_| ())
                .map_err(|e| format!("index does not parse: {e}"))
        };
        match write_checked(store, &path, json, check).await {
            Ok(()) => report.index_rewritten = true,
            Err(reason) => report.unrepairable.push(UnrepairableObject {
                object: path,
                paths: vec![],
                reason: format!(
                    "the index could not be rewritten to point at the repaired objects: {reason}"
                ),
            }),
        }
    }

    // 5. Parity refresh, and the map's copies.
    let Some(map) = map else {
        for issue in loaded_map.issues {
            report.damaged += 1;
            report.unrepairable.push(UnrepairableObject {
                object: issue.object,
                paths: vec![],
                reason: format!(
                    "{}; write parity again with `strata migrate SRC DST --layout packed --parity ...`",
                    issue.detail
                ),
            });
        }
        return Ok(());
    };
    let parity_unrebuilt: Vec<&String> = bad.keys().filter(|k| k.starts_with("parity/")).collect();
    let objects_now = objects_of(&index);
    let covered: Vec<(&str, u64)> = map
        .groups
        .iter()
        .flat_map(|g| g.members.iter().map(|s| (s.key.as_str(), s.len)))
        .collect();
    let current: Vec<(&str, u64)> = objects_now
        .iter()
        .map(|o| (o.key.as_str(), o.len))
        .collect();
    let stale = covered != current;
    let unhealthy_data = objects_now.iter().any(|o| bad.contains_key(&o.key));
    if (stale || !parity_unrebuilt.is_empty() || index_changed) && !unhealthy_data {
        match build_parity(store, &index, &root, map.spec(), Some(&map), &force, jobs).await {
            Ok(_) => {
                report.parity_recomputed = true;
                for key in parity_unrebuilt {
                    report.repaired.push(RepairedObject {
                        object: key.clone(),
                        how: "recomputed".into(),
                        moved_to: None,
                        files: vec![],
                    });
                }
                for (path, ok) in [
                    (map_path(&root), loaded_map.primary_ok),
                    (map_copy_path(&root), loaded_map.copy_ok),
                ] {
                    if !ok {
                        report.damaged += 1;
                        report.repaired.push(RepairedObject {
                            object: path,
                            how: "recomputed".into(),
                            moved_to: None,
                            files: vec![],
                        });
                    }
                }
            }
            Err(error) => report.unrepairable.push(UnrepairableObject {
                object: map_path(&root),
                paths: vec![],
                reason: format!("parity could not be recomputed: {error}"),
            }),
        }
        return Ok(());
    }
    for key in parity_unrebuilt {
        report.unrepairable.push(UnrepairableObject {
            object: key.clone(),
            paths: vec![],
            reason: format!(
                "{}; {}; parity is recomputed once every object of its group is intact \
                 (repair them with `--from SRC`)",
                bad.get(key).cloned().unwrap_or_default(),
                beyond_parity.get(key).cloned().unwrap_or_default()
            ),
        });
    }
    if let Some(bytes) = loaded_map.bytes {
        let is_map = |b: &[u8]| super::parity::ParityMap::from_json(b).map(|_| ());
        for (path, ok) in [
            (map_path(&root), loaded_map.primary_ok),
            (map_copy_path(&root), loaded_map.copy_ok),
        ] {
            if !ok {
                report.damaged += 1;
                metadata_from_copy(store, &path, bytes.clone(), is_map, report).await;
            }
        }
    }
    Ok(())
}

/// Check a parity shard (or any shard the map records) by length and hash.
fn check_shard(bytes: &[u8], shard: &ShardRef) -> Result<(), String> {
    if bytes.len() as u64 != shard.len {
        return Err(format!("{} bytes, expected {}", bytes.len(), shard.len));
    }
    if blake3::hash(bytes).to_hex().as_str() != shard.blake3 {
        return Err("content hash differs from the one recorded in the parity map".into());
    }
    Ok(())
}

/// Rebuild the bad shards of a group from the intact ones.
async fn rebuild_group(
    store: &Store,
    group: &ParityGroup,
    bad: &Findings,
) -> Result<Vec<(ShardRef, Bytes)>, String> {
    let k = group.members.len();
    let m = group.parity.len();
    let all: Vec<&ShardRef> = group.members.iter().chain(&group.parity).collect();
    let mut shards: Vec<Option<Vec<u8>>> = Vec::with_capacity(all.len());
    for shard in &all {
        if bad.contains_key(&shard.key) {
            shards.push(None);
            continue;
        }
        // Read again and check: only shards that hash right are used.
        let bytes = with_backoff(|| store.read_all(&shard.key)).await.ok();
        shards.push(
            bytes
                .filter(|b| check_shard(b, shard).is_ok())
                .map(|b| b.to_vec()),
        );
    }
    let wanted: Vec<usize> = (0..all.len()).filter(|&i| shards[i].is_none()).collect();
    let shard_len = group.shard_len as usize;
    let shards = tokio::task::spawn_blocking(move || {
        reconstruct(&mut shards, k, m, shard_len).map(|()| shards)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    Ok(wanted
        .into_iter()
        .map(|i| {
            let mut bytes = shards[i].clone().unwrap_or_default();
            bytes.truncate(all[i].len as usize);
            (all[i].clone(), Bytes::from(bytes))
        })
        .collect())
}

/// New bytes for a bad object, made from the source.
struct SourceFix {
    /// Where they go: the same key, or a new content address.
    key: String,
    bytes: Vec<u8>,
    /// Index entries to point at the new bytes (file, chunk, locator); empty when the
    /// bytes are identical in length and place to what the index records.
    relocate: Vec<(usize, usize, ChunkLocator)>,
}

/// The codec and filter a chunk was stored with: from its index label, else from the old
/// frame's header, else none.
fn codec_of(label: &str, old_frame: Option<&[u8]>) -> (Codec, Filter) {
    if let Ok(CodecSpec::Fixed { codec, filter }) = CodecSpec::parse(label) {
        return (codec, filter.unwrap_or(Filter::None));
    }
    if let Some(header) = old_frame.and_then(|f| read_header(f).ok()) {
        return (header.codec, header.filter);
    }
    (Codec::None, Filter::None)
}

fn label_of(index: &PackedIndex, file: usize, chunk: usize) -> String {
    index.files[file].chunks[chunk].codec.clone()
}

async fn chunk_from_source(
    source: &Store,
    index: &PackedIndex,
    object: &StoredObject,
    old: Option<&[u8]>,
    recorded: Option<&ShardRef>,
) -> Result<SourceFix, (Vec<String>, String)> {
    let name = object
        .key
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut tried = Vec::new();
    let mut raw = None;
    for u in &object.uses {
        let file = &index.files[u.file];
        let (offset, len) = layout(index.chunk_size, file.size).chunk_range(u.chunk as u64);
        match with_backoff(|| source.read_range(&file.path, offset, len)).await {
            Ok(data) if blake3::hash(&data).to_hex().as_str() == name => {
                raw = Some((data, u));
                break;
            }
            Ok(_) => tried.push(format!(
                "{}: the source's bytes {offset}..{} differ from the manifest",
                file.path,
                offset + len
            )),
            Err(error) => tried.push(format!("{}: {error}", file.path)),
        }
    }
    let Some((raw, first)) = raw else {
        return Err((vec![], tried.join("; ")));
    };
    let label = label_of(index, first.file, first.chunk);
    let (codec, filter) = codec_of(&label, old);
    let frame = tokio::task::spawn_blocking(move || {
        let frame = encode_frame(&raw, codec, filter);
        decode_frame(&frame).map(|_| frame)
    })
    .await
    .map_err(|e| (vec![], e.to_string()))?
    .map_err(|e| (vec![], format!("the re-encoded frame does not decode: {e}")))?;
    let same_bytes = recorded.is_none_or(|r| blake3::hash(&frame).to_hex().as_str() == r.blake3);
    let relocate = if frame.len() as u64 == object.len && same_bytes {
        vec![]
    } else {
        let len = frame.len() as u64;
        object
            .uses
            .iter()
            .map(|u| {
                let locator = ChunkLocator {
                    object: object.key.clone(),
                    offset: 0,
                    len,
                    codec: label.clone(),
                };
                (u.file, u.chunk, locator)
            })
            .collect()
    };
    Ok(SourceFix {
        key: object.key.clone(),
        bytes: frame,
        relocate,
    })
}

/// Rebuild a pack: frames that still decode to their file are kept, the others are
/// framed again from the source. All or nothing: when a damaged frame cannot be rebuilt,
/// nothing is written and the files whose frames are damaged are returned.
async fn pack_from_source(
    source: &Store,
    index: &PackedIndex,
    object: &StoredObject,
    old: Option<&[u8]>,
) -> Result<SourceFix, (Vec<String>, String)> {
    let mut uses = object.uses.clone();
    uses.sort_by_key(|u| (u.offset, u.file));
    let mut frames: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for u in &uses {
        let file = &index.files[u.file];
        let old_frame = old.and_then(|o| o.get(u.offset as usize..(u.offset + u.len) as usize));
        if let Some(frame) = old_frame.filter(|f| frame_holds(f, &file.blake3)) {
            frames.push((u.file, u.chunk, frame.to_vec()));
            continue;
        }
        let data = if file.size == 0 {
            Ok(Bytes::new())
        } else {
            with_backoff(|| source.read_range(&file.path, 0, file.size)).await
        };
        match data {
            Ok(data) if blake3::hash(&data).to_hex().as_str() == file.blake3 => {
                let (codec, filter) = codec_of(&label_of(index, u.file, u.chunk), old_frame);
                let frame = tokio::task::spawn_blocking(move || encode_frame(&data, codec, filter))
                    .await
                    .map_err(|e| (vec![file.path.clone()], e.to_string()))?;
                frames.push((u.file, u.chunk, frame));
            }
            Ok(_) => failed.push((
                file.path.clone(),
                "the source file differs from the manifest".to_string(),
            )),
            Err(error) => failed.push((file.path.clone(), error.to_string())),
        }
    }
    if !failed.is_empty() {
        let reason = failed
            .iter()
            .map(|(p, r)| format!("{p}: {r}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut paths: Vec<String> = failed.into_iter().map(|(p, _)| p).collect();
        paths.sort();
        paths.dedup();
        return Err((paths, reason));
    }
    let mut pack = Vec::new();
    let mut relocate = Vec::new();
    for (file, chunk, frame) in frames {
        relocate.push((
            file,
            chunk,
            ChunkLocator {
                object: String::new(),
                offset: pack.len() as u64,
                len: frame.len() as u64,
                codec: label_of(index, file, chunk),
            },
        ));
        pack.extend_from_slice(&frame);
    }
    let key = pack_key(&blake3::hash(&pack).to_hex());
    if key == object.key {
        relocate.clear();
    }
    for (_, _, locator) in &mut relocate {
        locator.object = key.clone();
    }
    Ok(SourceFix {
        key,
        bytes: pack,
        relocate,
    })
}

/// Whether `frame` decodes to the content of a one-chunk file with hash `blake3_hex`.
fn frame_holds(frame: &[u8], blake3_hex: &str) -> bool {
    decode_frame(frame).is_ok_and(|raw| blake3::hash(&raw).to_hex().as_str() == blake3_hex)
}

/// The files a bad object actually damages: all its files when it is gone, else those
/// whose frame in it no longer decodes (a bit flip in a pack damages one file, not all).
fn damaged_files(index: &PackedIndex, object: &StoredObject, old: Option<&[u8]>) -> Vec<String> {
    let Some(old) = old else {
        return files_using(index, object);
    };
    let name = object.key.rsplit('/').next().unwrap_or_default();
    let mut paths: Vec<String> = object
        .uses
        .iter()
        .filter(|u| {
            let frame = old.get(u.offset as usize..(u.offset + u.len) as usize);
            let intact = frame.is_some_and(|f| {
                decode_frame(f).is_ok()
                    && (object.key.starts_with("packs/")
                        || read_header(f).is_ok_and(|h| hex::encode(h.raw_hash) == name))
            });
            !intact
        })
        .map(|u| index.files[u.file].path.clone())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Plain layout: files are files. Damaged ones are copied again from the source, checked
/// against the manifest chunk by chunk before they replace anything.
async fn repair_plain(
    store: &Store,
    from: Option<&Store>,
    jobs: usize,
    manifest: &DatasetManifest,
    report: &mut RepairReport,
) -> Result<(), MoverError> {
    let verified = verify_dataset_mode(store, jobs, VerifyMode::Deep).await?;
    report.objects_checked += manifest.files.len();
    report.damaged += verified.damaged.len();
    for damaged in verified.damaged {
        let Some(source) = from else {
            report.unrepairable.push(UnrepairableObject {
                object: damaged.path.clone(),
                paths: vec![damaged.path.clone()],
                reason: format!(
                    "{}: {}; plain files have no parity: give a copy with `strata repair DST --from SRC`",
                    damaged.problem, damaged.detail
                ),
            });
            continue;
        };
        let Some(file) = manifest.files.iter().find(|f| f.path == damaged.path) else {
            continue;
        };
        // Only the damaged chunks travel from the source; intact ones are re-read where
        // they are. A missing or resized file has nothing intact.
        let whole = damaged.problem != "content" || damaged.ranges.is_empty();
        let ranges = if whole {
            vec![(0, file.size)]
        } else {
            damaged.ranges.clone()
        };
        match copy_plain_file(source, store, file, manifest.chunk_size, &ranges).await {
            Ok(fetched) => report.bytes_from_source += fetched,
            Err(reason) => {
                report.unrepairable.push(UnrepairableObject {
                    object: file.path.clone(),
                    paths: vec![file.path.clone()],
                    reason: format!("{}; from the source: {reason}", damaged.problem),
                });
                continue;
            }
        }
        {
            report.repaired.push(RepairedObject {
                object: file.path.clone(),
                how: "source".into(),
                moved_to: None,
                files: vec![file.path.clone()],
            });
        }
    }
    Ok(())
}

/// Rebuild one file in a staged upload: chunks overlapping `damaged` byte ranges come from
/// `source`, the others are re-read from the damaged file itself (and come from the source
/// after all if they do not match the manifest). Every chunk is checked against the
/// manifest and the file is published only when it hashes right. Returns the bytes read
/// from the source.
async fn copy_plain_file(
    source: &Store,
    store: &Store,
    file: &strata_codec::ManifestFile,
    chunk_size: u64,
    damaged: &[(u64, u64)],
) -> Result<u64, String> {
    let mut fetched = 0;
    let layout = layout(chunk_size, file.size);
    let upload = store
        .begin_upload(&file.path, file.size, false)
        .await
        .map_err(|e| e.to_string())?;
    let mut values = Vec::new();
    for chunk in 0..layout.chunk_count() {
        let (offset, len) = layout.chunk_range(chunk);
        let expected = file.chunks.get(chunk as usize);
        let overlaps = damaged
            .iter()
            .any(|(start, end)| offset < *end && *start < offset + len.max(1));
        let kept = if len == 0 || overlaps || (expected.is_none() && layout.chunk_count() > 1) {
            None
        } else {
            match store.read_range(&file.path, offset, len).await {
                Ok(data)
                    if expected
                        .is_some_and(|e| *e == hex::encode(layout.chunk_value(chunk, &data))) =>
                {
                    Some(data)
                }
                _ => None,
            }
        };
        let data = if let Some(data) = kept {
            data
        } else if len == 0 {
            Bytes::new()
        } else {
            match with_backoff(|| source.read_range(&file.path, offset, len)).await {
                Ok(data) => {
                    fetched += len;
                    data
                }
                Err(error) => {
                    let _ = upload.abort().await;
                    return Err(error.to_string());
                }
            }
        };
        let value = layout.chunk_value(chunk, &data);
        if expected.is_some_and(|e| *e != hex::encode(value)) {
            let _ = upload.abort().await;
            return Err(format!(
                "the source's bytes {offset}..{} differ from the manifest",
                offset + len
            ));
        }
        values.push(value);
        if len > 0 {
            if let Err(error) = upload.write_at(offset, data).await {
                let _ = upload.abort().await;
                return Err(error.to_string());
            }
        }
    }
    let hash = layout.merge(&values).map(hex::encode).unwrap_or_default();
    if hash != file.blake3 {
        let _ = upload.abort().await;
        return Err("the source file differs from the manifest".into());
    }
    let mtime = file
        .mtime_ns
        .and_then(|ns| u64::try_from(ns).ok())
        .map(|ns| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns));
    upload
        .publish(mtime, file.mode)
        .await
        .map_err(|e| e.to_string())?;
    Ok(fetched)
}
