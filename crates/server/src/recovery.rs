//! Making the catalog and the tiers agree: at start-up after a crash, after a failed write,
//! and periodically for copies whose delete failed.
//!
//! What can be left behind, and what is done about it:
//!
//! - **a write intent**: the process died (or the store call failed) between recording the
//!   intent and recording the write. The bytes on the tier are the old content, the new
//!   content, or absent. They are hashed: the old content drops the intent; new content
//!   is adopted as the object's next version (the write happened, it just was not
//!   acknowledged); no bytes drops the intent. The catalog then describes the bytes again.
//!   On a packed tier the bytes are decoded first (every frame checked) and the raw bytes
//!   hashed, since an object's hash is over its raw bytes; bytes that do not decode are
//!   damage, never adopted.
//! - **a `copying` or `retiring` placement whose job is finished or absent**: its bytes are
//!   deleted, then its row.
//! - **an unfinished move job**: queued again; the mover restarts it from the copy (before
//!   the switch) or finishes its retire (after).
//! - **staged copies** of interrupted atomic writes and streamed uploads on local tiers:
//!   every tier's staging area (`<tier store>/.strata/staging/`, outside the key namespace
//!   `objects/`) is cleared of the copies whose writer is gone and of every upload's
//!   `.part` file (the service never resumes one), so no object can be taken for one. Tiers written before staging moved there
//!   may hold old-style temporary files beside a key (`.<name>.strata-tmp.<pid>.<n>`):
//!   those are removed only beside a key that was being written or copied, and only when
//!   the name is not itself an object the catalog knows.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use strata_catalog::{MoveFilter, ObjectWrite, PlacementState};

use crate::error::ServeError;
use crate::index::ObjectEntry;
use crate::mover::store_call;
use crate::objects::entry_of;
use crate::state::{lock, now_ms, AppState};
use crate::tier_codec::verified::hash_chunks;
use crate::tier_codec::{read_all_from_tier, TierBytes, TierReadError};
use crate::tiers::Tier;

/// What recovery did at start-up.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RecoveryReport {
    /// Interrupted writes whose new content was adopted.
    pub writes_adopted: u64,
    /// Interrupted writes that left the old content (or nothing).
    pub writes_dropped: u64,
    /// Copies deleted (of finished or cancelled moves, and of deleted objects).
    pub copies_removed: u64,
    /// Temporary files of interrupted writes removed.
    pub temp_files_removed: u64,
    /// Unfinished move jobs queued again.
    pub jobs_resumed: u64,
}

/// Makes a write intent's catalog record agree with the bytes on the tier, then drops the
/// intent. Called with the key's write lock held (or before the service answers).
/// Returns whether the bytes on the tier were adopted as a new version.
pub async fn reconcile_intent(state: &AppState, key: &str, tier: &Tier) -> Result<bool, String> {
    let path = Tier::object_path(key);
    let existing = state.index.get(key);
    let stat = store_call(state, "a recovery stat", || tier.store.stat(&path))
        .await
        .map_err(|err| err.to_string())?;
    let adopt = match (&existing, stat) {
        (_, None) => false,
        (Some(entry), Some(_)) if entry.tier != tier.id => {
            // Not this tier's object any more: the bytes are an orphan.
            store_call(state, "an orphan delete", || tier.store.delete(&path))
                .await
                .map_err(|err| err.to_string())?;
            false
        }
        (existing, Some(_)) => {
            let read = match read_all_from_tier(state, tier, key).await {
                Ok(read) => Some(read),
                Err(TierReadError::Damaged(damage)) => {
                    undecodable(state, key, tier, existing.is_some(), &damage).await?;
                    None
                }
                Err(TierReadError::Store(err)) => return Err(err.to_string()),
            };
            match read {
                None => false,
                Some(read) => adopt_if_new(state, key, tier, existing.as_ref(), read).await?,
            }
        }
    };
    if !adopt {
        state
            .catalog
            .abandon_write(key, tier.name())
            .await
            .map_err(|err| err.to_string())?;
    }
    Ok(adopt)
}

/// Adopts the bytes under a write intent as the object's next version unless they are its
/// current content (or a copy being retired owns them). Returns whether it adopted them.
async fn adopt_if_new(
    state: &AppState,
    key: &str,
    tier: &Tier,
    existing: Option<&ObjectEntry>,
    read: TierBytes,
) -> Result<bool, String> {
    let (hash, chunk_hashes) = hash_chunks(read.raw.clone()).await;
    let size = read.raw.len() as u64;
    if existing.is_some_and(|entry| entry.hash == hash && entry.size == size) {
        return Ok(false);
    }
    let placements = state
        .catalog
        .placements(key)
        .await
        .map_err(|err| err.to_string())?;
    let blocked = existing.is_none()
        && placements
            .iter()
            .any(|p| p.tier == tier.name() && p.state != PlacementState::Current);
    if blocked {
        // A copy being retired: the sweep deletes it.
        return Ok(false);
    }
    let write = ObjectWrite {
        key: key.to_string(),
        tier: tier.name().to_string(),
        size,
        hash,
        chunk_hashes,
        now_ms: now_ms(),
    };
    let placed = state
        .catalog
        .commit_write(&write)
        .await
        .map_err(|err| err.to_string())?;
    state
        .index
        .upsert(key, entry_of(&placed, tier.id, read.stored_len));
    tracing::warn!(%key, tier = tier.name(), generation = placed.object.generation,
        "an interrupted write had replaced the bytes; adopted them as the object's content");
    Ok(true)
}

/// Bytes under a write intent that do not decode (packed tiers only: any bytes are some
/// content on a plain tier). Writes are atomic, so this is damage, not a half-written
/// object: there is nothing to adopt. Bytes of an object recorded on this tier stay (its
/// reads report the damage); bytes no record names are deleted unless a copy being retired
/// owns them (the sweep deletes those).
async fn undecodable(
    state: &AppState,
    key: &str,
    tier: &Tier,
    recorded_here: bool,
    damage: &crate::tier_codec::Damage,
) -> Result<(), String> {
    if recorded_here {
        tracing::error!(%damage, "an interrupted write left bytes that do not decode; the \
            object keeps its record and its reads fail until it is written again");
        return Ok(());
    }
    let placements = state
        .catalog
        .placements(key)
        .await
        .map_err(|err| err.to_string())?;
    if placements.iter().any(|p| p.tier == tier.name()) {
        return Ok(());
    }
    tracing::warn!(%damage, "bytes no object owns do not decode; deleted");
    let path = Tier::object_path(key);
    store_call(state, "an orphan delete", || tier.store.delete(&path))
        .await
        .map_err(|err| err.to_string())
}

/// Deletes copies whose move is over (or whose object is gone): `copying` and `retiring`
/// placements not owned by an unfinished job. Each is handled under its key's write lock
/// and re-read there, so a write of the same key cannot interleave. Returns the count.
pub async fn sweep(state: &AppState) -> Result<u64, String> {
    let in_flight = state
        .catalog
        .placements_in_flight()
        .await
        .map_err(|err| err.to_string())?;
    let keys: BTreeSet<String> = in_flight.into_iter().map(|p| p.key).collect();
    let mut removed = 0;
    for key in keys {
        let guard = state.locks.write(&key).await;
        let placements = state
            .catalog
            .placements(&key)
            .await
            .map_err(|err| err.to_string())?;
        for placement in placements {
            if placement.state == PlacementState::Current {
                continue;
            }
            if let Some(id) = placement.job_id {
                if state.mover.is_running_job(id) {
                    continue;
                }
                let job = state
                    .catalog
                    .move_job(id)
                    .await
                    .map_err(|err| err.to_string())?;
                if job.is_some_and(|job| job.state.is_active()) {
                    continue;
                }
            }
            let Some(tier) = state.tier(&placement.tier) else {
                tracing::warn!(key = %placement.key, tier = %placement.tier,
                    "a copy on a tier that is no longer configured is left alone");
                continue;
            };
            if state
                .index
                .get(&key)
                .is_some_and(|entry| entry.tier == tier.id)
            {
                continue;
            }
            let path = Tier::object_path(&key);
            if let Err(err) = store_call(state, "a leftover copy's delete", || {
                tier.store.delete(&path)
            })
            .await
            {
                tracing::warn!(%key, tier = tier.name(), %err, "cannot delete a leftover copy yet");
                continue;
            }
            state
                .catalog
                .remove_placement(&key, tier.name(), placement.state)
                .await
                .map_err(|err| err.to_string())?;
            lock(&state.retire_backlog).remove(&(key.clone(), tier.id));
            removed += 1;
        }
        drop(guard);
    }
    Ok(removed)
}

/// Removes the old-style temporary files (`.<name>.strata-tmp.<pid>.<n>`, written
/// beside the key by earlier versions) of `key` on a local tier. A file whose key the
/// catalog knows (an object, a copy, a write intent) is an object that merely looks like a
/// temporary name, and stays.
async fn remove_legacy_temp_files(
    state: &AppState,
    tier: &Tier,
    key: &str,
    intents: &BTreeSet<String>,
) -> Result<u64, ServeError> {
    let Some(file) = tier.local_file(key) else {
        return Ok(0);
    };
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return Ok(0);
    };
    let prefix = format!(".{}.strata-tmp.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let folder = key.rsplit_once('/').map(|(folder, _)| folder);
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let is_legacy_temp = file_name.strip_prefix(&prefix).is_some_and(|rest| {
            rest.split_once('.').is_some_and(|(pid, n)| {
                [pid, n]
                    .iter()
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            })
        });
        if !is_legacy_temp || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let sibling = match folder {
            Some(folder) => format!("{folder}/{file_name}"),
            None => file_name,
        };
        let known = state.index.contains(&sibling)
            || intents.contains(&sibling)
            || !state.catalog.placements(&sibling).await?.is_empty();
        if known {
            tracing::info!(key = %sibling, tier = tier.name(),
                "an object whose name looks like an old temporary file is kept");
            continue;
        }
        if std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Clears every tier's staging area of what interrupted atomic writes left; a tier whose
/// staging area cannot be cleared is logged and left for the next start.
async fn clear_staging(state: &AppState) -> u64 {
    let mut removed = 0;
    for tier in &state.tiers {
        match tier.store.remove_interrupted_writes().await {
            Ok(count) => removed += count,
            Err(err) => tracing::warn!(tier = tier.name(), %err,
                "cannot clear the staging area of interrupted writes; retried at the next start"),
        }
    }
    removed
}

/// Start-up recovery, before the service answers and before any job runs.
pub async fn recover(state: &Arc<AppState>) -> Result<RecoveryReport, ServeError> {
    let mut report = RecoveryReport::default();
    let intents = state.catalog.write_intents().await?;
    let in_flight = state.catalog.placements_in_flight().await?;
    let mut touched: BTreeSet<(String, String)> = in_flight
        .iter()
        .map(|p| (p.key.clone(), p.tier.clone()))
        .collect();
    for intent in &intents {
        touched.insert((intent.key.clone(), intent.tier.clone()));
        let Some(tier) = state.tier(&intent.tier) else {
            tracing::warn!(key = %intent.key, tier = %intent.tier, "a write intent on an unconfigured tier is dropped");
            state
                .catalog
                .abandon_write(&intent.key, &intent.tier)
                .await?;
            continue;
        };
        let adopted = reconcile_intent(state, &intent.key, tier)
            .await
            .map_err(|err| ServeError::Recovery(format!("write of {:?}: {err}", intent.key)))?;
        if adopted {
            report.writes_adopted += 1;
        } else {
            report.writes_dropped += 1;
        }
    }
    report.temp_files_removed = clear_staging(state).await;
    let intent_keys: BTreeSet<String> = intents.iter().map(|i| i.key.clone()).collect();
    for (key, tier) in &touched {
        if let Some(tier) = state.tier(tier) {
            report.temp_files_removed +=
                remove_legacy_temp_files(state, tier, key, &intent_keys).await?;
        }
    }
    report.copies_removed = sweep(state).await.map_err(ServeError::Recovery)?;
    let mut active = state
        .catalog
        .move_jobs(&MoveFilter {
            active_only: true,
            ..MoveFilter::default()
        })
        .await?;
    active.sort_by_key(|job| job.id);
    for job in &active {
        state.mover.enqueue(job.id);
    }
    report.jobs_resumed = active.len() as u64;
    Ok(report)
}
