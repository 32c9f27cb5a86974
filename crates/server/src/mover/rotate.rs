//! A key rotation job (reason [`KEY_ROTATION`], planned by `strata key rotate`): an object
//! of an encrypted tier written again on the same tier under the tier's current key.
//!
//! The steps are the move's, on one tier: **copy** reads the object through the tier's
//! codec (each frame opened with the key its header names, its raw BLAKE3 compared with
//! the catalog's as it streams) and writes it, sealed with the current key, to a staged
//! upload (nothing visible yet); **switch** publishes the staged copy in place of the old
//! one under the key's write lock (an atomic rename on one store, the redundancy crate's
//! publish of new fragments or replicas on a tier with domains): readers see the old copy
//! or the new one, whole, never neither; the published copy is then read back and its raw
//! BLAKE3 compared with the catalog's before the job turns **retiring** and **done** (the
//! old copy was retired by the publish itself). The job's states follow a move's
//! (copying, verifying, switching, retiring, done), so `strata moves` shows where
//! each rotation is. An object already under the current key (rotated by an earlier run, or written
//! since) is skipped.
//!
//! The job holds the key's upload gate throughout, so no PUT of the key stages meanwhile;
//! a write or delete that got in first ends the job (`object_changing`,
//! `object_deleted`). A crash before the publish leaves the old copy; after it, the new
//! one; the job, durable in the catalog, runs again at start and finds what is left.

use strata_catalog::{JobState, MoveJob};
use strata_codec::format::encrypted::KeyId;

use super::reencode::{record_end, set_state};
use super::{copy, stop_reason, store_call, Outcome, RunningMove, Step};
use crate::key_rotation::{removed_key, sealed_under, SealedUnder, KEY_ROTATION};
use crate::state::AppState;
use crate::tier_codec::hash_stored;
use crate::tiers::Tier;

/// Runs a key rotation job on `tier` (the tier as a move's target sees it) to its end.
pub(super) async fn run(
    state: &AppState,
    job: &MoveJob,
    tier: &Tier,
    handle: &RunningMove,
) -> Outcome {
    let result = rotate(state, job, tier, handle).await;
    if let Ok(Step::Switched) = &result {
        tracing::info!(job = job.id, key = %job.key, tier = %tier.name(), "key rotated");
    }
    let outcome = record_end(state, job, result).await;
    if let Outcome::Ended(end_state) = &outcome {
        state
            .metrics
            .key_rotation(tier.name(), &end_state.to_string());
    }
    outcome
}

/// Re-encrypts, publishes and verifies; `Step::Switched` stands for "done".
async fn rotate(
    state: &AppState,
    job: &MoveJob,
    tier: &Tier,
    handle: &RunningMove,
) -> Result<Step, String> {
    let Some(keys) = tier.format.keys() else {
        return Err(format!(
            "not_encrypted: tier {:?} has no encryption key now, so {KEY_ROTATION} has \
             nothing to do; this job can be left failed",
            tier.name()
        ));
    };
    let current = keys.current_id();
    let known: Vec<_> = keys.previous_ids();
    let _gate = state.uploads.enter(&job.key).await;
    if let Some(stop) = stop_reason(state, job, handle) {
        return Ok(stop);
    }
    let Some(entry) = state.index.get(&job.key) else {
        return Ok(Step::Nothing);
    };
    if entry.tier != tier.id {
        return Ok(Step::End(
            JobState::Skipped,
            format!("object_moved: the object is not on {:?} now", tier.name()),
        ));
    }
    match sealed_under(state, tier, &job.key, entry.size).await? {
        SealedUnder::Nothing => return already_current(state, job, tier, current).await,
        SealedUnder::Key(id) if id == current => {
            return already_current(state, job, tier, current).await
        }
        SealedUnder::Key(id) if !known.contains(&id) => return Err(removed_key(tier.name(), id)),
        SealedUnder::Key(_) | SealedUnder::Clear => {}
    }
    set_state(state, job, JobState::Copying).await?;
    let reserved = tier.format.stored_bound(job.size);
    let upload = match copy::stage(state, job, tier, tier, &entry, reserved, handle).await? {
        Ok(upload) => upload,
        Err(step) => return Ok(step),
    };
    // The source was read whole and matched the object's BLAKE3 as it was staged.
    set_state(state, job, JobState::Verifying).await?;
    set_state(state, job, JobState::Switching).await?;
    let guard = state.locks.write(&job.key).await;
    if let Some(stop) = stop_reason(state, job, handle) {
        drop(guard);
        if let Err(err) = upload.abort().await {
            tracing::warn!(job = job.id, key = %job.key, %err,
                "cannot remove the staged bytes of an abandoned key rotation");
        }
        return Ok(stop);
    }
    store_call(state, "a key rotation's publish", || upload.finish())
        .await
        .map_err(|err| format!("publishing the re-encrypted copy on {}: {err}", tier.name()))?;
    drop(guard);
    verify(state, job, tier, &entry.hash, entry.size).await?;
    // The publish replaced the old copy: nothing is left to retire.
    set_state(state, job, JobState::Retiring).await?;
    Ok(Step::Switched)
}

/// Reads the published copy back and compares its raw BLAKE3 with the catalog's.
async fn verify(
    state: &AppState,
    job: &MoveJob,
    tier: &Tier,
    hash: &[u8; 32],
    size: u64,
) -> Result<(), String> {
    let (_, back_hash) = hash_stored(state, tier, &job.key, size)
        .await
        .map_err(|err| {
            format!("verify_mismatch: the re-encrypted object does not read back: {err}")
        })?;
    if &back_hash != hash {
        return Err(format!(
            "verify_mismatch: the object re-encrypted on {} does not match its BLAKE3 {}",
            tier.name(),
            hex::encode(hash)
        ));
    }
    Ok(())
}

/// The object is under the current key already: skipped, or, when this job published it
/// before a restart (it had reached switching or retiring), done.
async fn already_current(
    state: &AppState,
    job: &MoveJob,
    tier: &Tier,
    current: KeyId,
) -> Result<Step, String> {
    match job.state {
        JobState::Retiring => Ok(Step::Switched),
        JobState::Switching => {
            set_state(state, job, JobState::Retiring).await?;
            Ok(Step::Switched)
        }
        _ => Ok(Step::End(
            JobState::Skipped,
            format!(
                "already_current: the object on {:?} is sealed under the current key id \
                 {current} already",
                tier.name()
            ),
        )),
    }
}
