//! `strata repair DST [--from SRC]`: find what is damaged or missing, rebuild it, and say
//! what could not be rebuilt.
//!
//! 1. **Metadata.** The manifest is read from its primary or its copy; a bad one of the
//!    two is rewritten from the good one. The same for the packed index (before anything
//!    else: it says where every object is) and the parity map. Parity covers the data
//!    objects, not this metadata: when both copies of the index are bad, every file is
//!    reported unrepairable, with how to write the index again.
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
use strata_codec::parity::{reconstruct, ParityRequest};
use strata_codec::{DatasetManifest, MANIFEST_COPY_PATH, MANIFEST_PATH};
use strata_store::{Store, StoreError};

use super::format::{index_copy_path, index_path, LayoutMarker, PackedIndex, LAYOUT_PATH};
use super::parity::{
    build_parity, check_object, covers, files_using, load_parity_map, map_copy_path, map_path,
    objects_of, ObjectUse, ParityGroup, ShardRef, StoredObject,
};
use super::read::{is_packed, load_index, PackedSource};
use crate::retry::retry_store;
use crate::verify::load_manifest_checked;
use crate::MoverError;

mod plain;
mod source;

use plain::repair_plain;
use source::{chunk_from_source, damaged_files, pack_from_source};

/// An object (or metadata file) that was rebuilt.
#[derive(Debug, Clone, Serialize)]
pub struct RepairedObject {
    /// Object key or metadata path, relative to the store root.
    pub object: String,
    /// `parity`, `source`, `copy` (metadata rewritten from its intact copy) or `manifest`
    /// (the layout marker, or a plain dataset's `.strata/b3sums`, written from the manifest).
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
    retry_store(|| store.write_atomic(key, bytes.clone()))
        .await
        .map_err(|e| format!("cannot write: {e}"))?;
    let back = retry_store(|| store.read_all(key))
        .await
        .map_err(|e| format!("cannot read back after writing: {e}"))?;
    check(&back).map_err(|e| format!("written but does not read back intact ({e})"))
}

/// Refuse to repair an encrypted dataset: rebuilding frames re-encodes them from a source
/// and writes the marker and index again, none of which seals yet, and a repair must
/// never write plaintext into an encrypted dataset.
async fn refuse_encrypted(store: &Store) -> Result<(), MoverError> {
    match crate::encryption::dataset_encryption(store).await? {
        None => Ok(()),
        Some(sealed) => Err(MoverError::InvalidOptions(format!(
            "{} is an encrypted dataset (key id {}): strata repair cannot rebuild encrypted \
             frames yet and refuses rather than write anything in clear; check it with \
             `strata verify {} --encryption-key-file PATH` and, if damaged, migrate it again \
             from its source with --encrypt into a new destination",
            store.display(),
            sealed.key_id,
            store.display()
        ))),
    }
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
    refuse_encrypted(store).await?;
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
            rewrite_metadata(
                store,
                path,
                loaded.bytes.clone(),
                is_manifest,
                "copy",
                &mut report,
            )
            .await;
        }
    }
    if manifest.layout.as_deref() == Some("packed") {
        repair_packed(store, from, jobs, &manifest, &mut report).await?;
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

/// Write a metadata file again (from its intact copy, or from the manifest: `how`),
/// checked before and after, and report it as repaired or not.
async fn rewrite_metadata(
    store: &Store,
    path: &str,
    bytes: Bytes,
    check: impl Fn(&[u8]) -> Result<(), String>,
    how: &str,
    report: &mut RepairReport,
) {
    match write_checked(store, path, bytes, check).await {
        Ok(()) => report.repaired.push(RepairedObject {
            object: path.into(),
            how: how.into(),
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
    manifest: &DatasetManifest,
    report: &mut RepairReport,
) -> Result<(), MoverError> {
    if !is_packed(store).await? {
        // The manifest says packed: the marker is written again from it.
        report.damaged += 1;
        let marker = LayoutMarker::packed(manifest.chunk_size).to_json();
        let is_marker = |b: &[u8]| {
            serde_json::from_slice::<LayoutMarker>(b)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        rewrite_metadata(
            store,
            LAYOUT_PATH,
            Bytes::from(marker),
            is_marker,
            "manifest",
            report,
        )
        .await;
    }
    // 1. The index: a bad copy is rewritten from the good one; with neither usable no
    // object can be located, and parity does not cover the index.
    let loaded_index = load_index(store, manifest).await?;
    let Some(index_bytes) = loaded_index.bytes.clone() else {
        let paths: Vec<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
        for issue in loaded_index.issues {
            report.damaged += 1;
            report.unrepairable.push(UnrepairableObject {
                object: issue.object,
                paths: paths.clone(),
                reason: issue.detail,
            });
        }
        return Ok(());
    };
    let is_index = |b: &[u8]| PackedIndex::from_json(b).and_then(|i| i.check_against(manifest));
    for path in loaded_index.to_rewrite() {
        report.damaged += 1;
        rewrite_metadata(store, &path, index_bytes.clone(), is_index, "copy", report).await;
    }
    let packed = PackedSource::from_loaded(store, manifest.clone(), loaded_index)?;
    let mut index = packed.index().clone();
    let root = manifest.root_hash.clone();
    let loaded_map = load_parity_map(store, &root).await?;
    let map = loaded_map.doc.clone();
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
                let found = match retry_store(|| store.read_all(&object.key)).await {
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
            let found = match retry_store(|| store.read_all(&shard.key)).await {
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
        let old = retry_store(|| store.read_all(&object.key)).await.ok();
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
        let path = packed_index_path(manifest);
        match rewrite_index(store, &path, &index, is_index).await {
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
    let stale = !covers(&map, &objects_now);
    let unhealthy_data = objects_now.iter().any(|o| bad.contains_key(&o.key));
    if (stale || !parity_unrebuilt.is_empty() || index_changed) && !unhealthy_data {
        let request = ParityRequest::exact(map.spec());
        match build_parity(
            store,
            &index,
            &root,
            request,
            Some(&map),
            &force,
            jobs,
            |_| {},
        )
        .await
        {
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
                rewrite_metadata(store, &path, bytes.clone(), is_map, "copy", report).await;
            }
        }
    }
    Ok(())
}

/// The index path the manifest names.
fn packed_index_path(manifest: &DatasetManifest) -> String {
    manifest
        .index
        .clone()
        .unwrap_or_else(|| index_path(&manifest.root_hash))
}

/// Seal `index` and write it over both copies, primary first, each checked after writing.
/// A crash in between leaves a primary the loader prefers and a stale copy the next repair
/// rewrites.
async fn rewrite_index(
    store: &Store,
    path: &str,
    index: &PackedIndex,
    check: impl Fn(&[u8]) -> Result<(), String> + Copy,
) -> Result<(), String> {
    let json = Bytes::from(
        index
            .to_json()
            .map_err(|e| format!("the index does not serialise: {e}"))?,
    );
    for path in [path.to_string(), index_copy_path(path)] {
        write_checked(store, &path, json.clone(), check).await?;
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
        let bytes = retry_store(|| store.read_all(&shard.key)).await.ok();
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
