//! A move from a tier to itself: re-encoding an object in place on a tier with failure
//! domains (reason `lazy_reencode`, planned by [`crate::redundancy_worker`]).
//!
//! The steps are the move's, on one tier: **copy** writes the object in the redundancy the
//! job was planned for (its `inputs.to`, the class's redundancy when the read planned it) (`RedundantStore::reencode`: the new replicas or fragments written and
//! verified in full before the old ones are removed, so a domain lost midway never leaves
//! fewer good pieces than the policy needs), **verify** reads the object back through the
//! tier's codec and compares its raw BLAKE3 with the catalog's, and the job is **done**:
//! nothing switches, since the object never leaves its tier.
//!
//! The job holds the key's upload gate and read lock throughout: readers go on (either
//! encoding answers with the same bytes), a write of the key waits until the re-encode is
//! over (its bytes would be staged at the same paths), so the old encoding removed at the
//! end can never be a newer write's bytes. A crash at any point
//! leaves a complete encoding (the old one until the new one is verified); the job is run
//! again at start, and `reencode` settles what the crash left.

use strata_catalog::{JobState, MoveJob};
use strata_redundancy::Redundancy;

use super::{emit, stop_reason, Outcome, RunningMove, Step};
use crate::redundancy_worker::class_of;
use crate::state::{lock, now_ms, AppState};
use crate::tier_codec::hash_stored;
use crate::tiers::Tier;

/// Runs a re-encode job on `tier` (the tier as a move's target sees it) to its end.
pub(super) async fn run(
    state: &AppState,
    job: &MoveJob,
    tier: &Tier,
    handle: &RunningMove,
) -> Outcome {
    // One re-encode at a time, in turn (the scheduler's `reencode_in_turn`).
    let result = reencode(state, job, tier, handle).await;
    record_end(state, job, result).await
}

/// Records how a job from a tier to itself (a re-encode, a key rotation) ended:
/// `Step::Switched` stands for "done".
pub(super) async fn record_end(
    state: &AppState,
    job: &MoveJob,
    result: Result<Step, String>,
) -> Outcome {
    lock(&state.reencodes).remove(&job.key);
    let (end_state, message) = match result {
        Ok(Step::Switched) => (JobState::Done, None),
        Ok(Step::End(end_state, message)) => (end_state, Some(message)),
        Ok(Step::Nothing) => return Outcome::Nothing,
        Err(message) => (JobState::Failed, Some(message)),
    };
    let now = now_ms();
    let recorded = match end_state {
        JobState::Done => state.catalog.finish_move(job.id, now).await,
        _ => {
            state
                .catalog
                .end_move(job.id, end_state, message.as_deref(), now)
                .await
        }
    };
    if let Err(err) = recorded {
        return Outcome::Later(format!("recording the end of the re-encode: {err}"));
    }
    if job.reason == crate::redundancy_worker::LAZY_REENCODE {
        crate::redundancy_worker::reencode_ended(state, &job.key, end_state == JobState::Failed);
    }
    if let Some(message) = &message {
        tracing::info!(job = job.id, key = %job.key, state = %end_state, %message,
            "re-encode ended");
    }
    emit(state, job, end_state, message);
    Outcome::Ended(end_state)
}

/// Re-encodes and verifies; `Step::Switched` stands for "done".
async fn reencode(
    state: &AppState,
    job: &MoveJob,
    tier: &Tier,
    handle: &RunningMove,
) -> Result<Step, String> {
    let Some(domains) = tier.store.domains() else {
        return Err(format!(
            "not_redundant: tier {:?} has one store and no redundancy, so there is nothing to \
             re-encode; this job can be left failed",
            tier.name()
        ));
    };
    // The key's upload gate first (a PUT streaming into this tier stages the same paths),
    // then its read lock: the order a PUT takes them in.
    let _gate = state.uploads.enter(&job.key).await;
    let _reading = state.locks.read(&job.key).await;
    if let Some(stop) = stop_reason(state, job, handle) {
        return Ok(stop);
    }
    let Some(entry) = state.index.get(&job.key) else {
        return Ok(Step::Nothing);
    };
    if entry.tier != tier.id {
        let now_on = state
            .tiers
            .get(entry.tier)
            .map_or("another tier", |t| t.name());
        return Ok(Step::End(
            JobState::Skipped,
            format!(
                "object_moved: the object is on {now_on:?} now, not on {:?}",
                tier.name()
            ),
        ));
    }
    // The encoding the job was planned for (resumed after a restart, it finishes what it
    // started); the class's own when the record has none.
    let planned = serde_json::from_str::<serde_json::Value>(&job.inputs_json)
        .ok()
        .and_then(|inputs| inputs["to"].as_str()?.parse::<Redundancy>().ok());
    let wanted = planned.unwrap_or_else(|| {
        tier.wanted_redundancy(class_of(state, &job.key))
            .unwrap_or(domains.default)
    });
    set_state(state, job, JobState::Copying).await?;
    let path = Tier::object_path(&job.key);
    // At background priority: readers get the CPU first (crate::background).
    let store = domains.store.clone();
    let rel = path.clone();
    let expected = entry.hash;
    state
        .background
        .run(async move { store.reencode(&rel, wanted, Some(&expected)).await })
        .await
        .ok_or_else(|| "the service is stopping; the re-encode resumes at start".to_string())?
        .map_err(|err| format!("re-encoding to {wanted} on {}: {err}", tier.name()))?;
    set_state(state, job, JobState::Verifying).await?;
    let (_, back_hash) = hash_stored(state, tier, &job.key, entry.size)
        .await
        .map_err(|err| {
            format!("verify_mismatch: the re-encoded object does not read back: {err}")
        })?;
    if back_hash != entry.hash {
        return Err(format!(
            "verify_mismatch: the object re-encoded as {wanted} on {} does not match its \
             BLAKE3 {}",
            tier.name(),
            hex::encode(entry.hash)
        ));
    }
    Ok(Step::Switched)
}

pub(super) async fn set_state(state: &AppState, job: &MoveJob, to: JobState) -> Result<(), String> {
    state
        .catalog
        .set_move_state(job.id, to, None, now_ms())
        .await
        .map_err(|err| err.to_string())?;
    emit(state, job, to, None);
    Ok(())
}
