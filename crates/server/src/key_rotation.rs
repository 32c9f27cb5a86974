//! Key rotation (`POST /v1/keys/rotate[?tier=NAME]`, `strata key rotate`): every object of
//! an encrypted tier still sealed under a key other than the tier's current one gets a
//! move job from the tier to itself with reason [`KEY_ROTATION`], which the mover runs
//! in the background like a re-encode ([`crate::mover`]'s `rotate`): the object read and
//! opened with the key its frames name, written again under the current key, checked
//! against the catalog's BLAKE3, published in place of the old copy, and read back.
//!
//! Which key an object is under is read from the stored object itself: the header of its
//! first frame (48 bytes, one ranged read), not recorded in the catalog, so nothing can
//! drift from the bytes. The jobs are durable in the catalog: a service stopped midway
//! resumes them at its next start on its own, and the command run again plans only what
//! is still under an old key (an object already under the current key is skipped, here
//! and again when its job runs).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use strata_catalog::{CreatedMove, MoveSpec};
use strata_codec::format::encrypted::{
    is_encrypted, read_header_alone, KeyId, ENCRYPTED_HEADER_LEN,
};

use crate::error::ApiError;
use crate::mover::store_call;
use crate::state::{now_ms, AppState};
use crate::tiers::Tier;

/// The reason code of key rotation jobs.
pub const KEY_ROTATION: &str = "key_rotation";

/// Query of `POST /v1/keys/rotate`.
#[derive(Debug, Default, Deserialize)]
pub struct RotateQuery {
    /// Only this tier (default: every encrypted tier).
    pub tier: Option<String>,
}

/// What a rotation request found and planned on one tier.
#[derive(Debug, Default, Serialize)]
pub struct TierRotation {
    /// The tier.
    pub tier: String,
    /// The id of the key objects are sealed with from now on.
    pub current_key_id: String,
    /// Objects looked at.
    pub objects: u64,
    /// Objects already under the current key (or empty: no frame to seal).
    pub current: u64,
    /// Objects under an earlier key, or in clear, with a job queued (or still queued).
    pub queued: u64,
    /// Objects that could not be planned: under a key the tier no longer holds, or whose
    /// first frame could not be read. They are never served until the key is configured.
    pub problems: Vec<RotationProblem>,
}

/// An object a rotation cannot re-encrypt, and why.
#[derive(Debug, Serialize)]
pub struct RotationProblem {
    /// The object's key.
    pub key: String,
    /// What is wrong and what to do.
    pub detail: String,
}

/// The answer of `POST /v1/keys/rotate`.
#[derive(Debug, Serialize)]
pub struct RotationReport {
    /// Per encrypted tier.
    pub tiers: Vec<TierRotation>,
}

/// Which key an object's stored bytes are sealed with, from its first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedUnder {
    /// No frame at all (an empty object): nothing to rotate.
    Nothing,
    /// Frames in clear (written before the tier was encrypted).
    Clear,
    /// Sealed with this key.
    Key(KeyId),
}

/// `POST /v1/keys/rotate`.
pub async fn rotate(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RotateQuery>,
) -> Result<Json<RotationReport>, ApiError> {
    let tiers = encrypted_tiers(&state, query.tier.as_deref())?;
    let mut report = RotationReport { tiers: Vec::new() };
    for tier in tiers {
        report.tiers.push(plan_tier(&state, &tier).await?);
    }
    Ok(Json(report))
}

/// The tiers a rotation covers: `only`, or every encrypted tier.
fn encrypted_tiers(state: &AppState, only: Option<&str>) -> Result<Vec<Tier>, ApiError> {
    let encrypted: Vec<Tier> = state
        .tiers
        .iter()
        .filter(|tier| tier.format.keys().is_some())
        .cloned()
        .collect();
    let Some(name) = only else {
        return Ok(encrypted);
    };
    let Some(tier) = state.tier(name) else {
        return Err(ApiError::not_found(format!(
            "no tier {name:?}; the encrypted tiers are {}",
            names(&encrypted)
        )));
    };
    if tier.format.keys().is_none() {
        return Err(ApiError::bad_request(
            "not_encrypted",
            format!(
                "tier {name:?} is not encrypted, so it has no key to rotate; the encrypted tiers \
             are {}",
                names(&encrypted)
            ),
        ));
    }
    Ok(vec![tier.clone()])
}

fn names(tiers: &[Tier]) -> String {
    if tiers.is_empty() {
        return "none".to_string();
    }
    tiers
        .iter()
        .map(|tier| format!("{:?}", tier.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Looks at each object of `tier` and queues a rotation job for those under an old key.
async fn plan_tier(state: &AppState, tier: &Tier) -> Result<TierRotation, ApiError> {
    let keys = tier
        .format
        .keys()
        .cloned()
        .ok_or_else(|| ApiError::internal(format!("tier {:?} lost its keys", tier.name())))?;
    let current = keys.current_id();
    let known: Vec<KeyId> = std::iter::once(current)
        .chain(keys.previous_ids())
        .collect();
    let source = tier.as_move_source();
    let mut found = TierRotation {
        tier: tier.name().to_string(),
        current_key_id: current.to_string(),
        ..TierRotation::default()
    };
    for (key, entry) in state.index.on_tier(tier.id) {
        found.objects += 1;
        let sealed = match sealed_under(state, &source, &key, entry.size).await {
            Ok(sealed) => sealed,
            Err(detail) => {
                found.problems.push(RotationProblem { key, detail });
                continue;
            }
        };
        match sealed {
            SealedUnder::Nothing => found.current += 1,
            SealedUnder::Key(id) if id == current => found.current += 1,
            SealedUnder::Key(id) if !known.contains(&id) => {
                found.problems.push(RotationProblem {
                    key,
                    detail: removed_key(tier.name(), id),
                });
            }
            SealedUnder::Key(_) | SealedUnder::Clear => {
                queue_job(
                    state,
                    tier.name(),
                    &key,
                    entry.generation,
                    entry.size,
                    current,
                )
                .await?;
                found.queued += 1;
            }
        }
    }
    tracing::info!(tier = %found.tier, key_id = %found.current_key_id, objects = found.objects,
        queued = found.queued, problems = found.problems.len(), "key rotation planned");
    Ok(found)
}

/// The message for an object under a key the tier no longer holds.
pub fn removed_key(tier: &str, id: KeyId) -> String {
    format!(
        "sealed under key id {id}, which tier {tier:?} no longer holds; it cannot be read \
         or rotated: put the key with this id back in encryption_previous_key_files (or \
         encryption_previous_key_envs) and run `strata key rotate` again"
    )
}

/// Which key `key`'s copy on `tier` is sealed with: the header of its first frame.
pub async fn sealed_under(
    state: &AppState,
    tier: &Tier,
    key: &str,
    raw_len: u64,
) -> Result<SealedUnder, String> {
    if raw_len == 0 {
        return Ok(SealedUnder::Nothing);
    }
    let path = Tier::object_path(key);
    let head = store_call(state, "a key id read", || async {
        tier.store
            .open(&path)
            .await?
            .read_range(0, ENCRYPTED_HEADER_LEN as u64)
            .await
    })
    .await
    .map_err(|err| format!("its first frame on {:?} cannot be read: {err}", tier.name()))?;
    if !is_encrypted(&head) {
        return Ok(SealedUnder::Clear);
    }
    read_header_alone(&head[..ENCRYPTED_HEADER_LEN.min(head.len())])
        .map(|header| SealedUnder::Key(header.key_id))
        .map_err(|err| format!("its first frame on {:?} is damaged: {err}", tier.name()))
}

/// Queues (or finds queued) the rotation job of `key` at `generation` to key `current`.
async fn queue_job(
    state: &AppState,
    tier: &str,
    key: &str,
    generation: i64,
    size: u64,
    current: KeyId,
) -> Result<(), ApiError> {
    let mut spec = rotation_spec(tier, key, generation, size, current);
    let mut created = create(state, &spec).await?;
    if let CreatedMove::Existing(job) = &created {
        if !job.state.is_active() {
            // An earlier rotation of this version to the same key ended (failed, or
            // cancelled, or the key came back as current): this one is new.
            spec.idempotency_key = format!("{}:again-at:{}", spec.idempotency_key, now_ms());
            created = create(state, &spec).await?;
        }
    }
    if let CreatedMove::Created(job) = &created {
        state.metrics.key_rotation(tier, "queued");
        state.metrics.move_planned(KEY_ROTATION);
        tracing::debug!(job = job.id, %key, "key rotation queued");
    }
    if let CreatedMove::Created(job) | CreatedMove::Existing(job) = created {
        if job.state.is_active() {
            state.mover.enqueue(job.id);
        }
    }
    Ok(())
}

async fn create(state: &AppState, spec: &MoveSpec) -> Result<CreatedMove, ApiError> {
    state
        .catalog
        .create_move(spec, now_ms())
        .await
        .map_err(|err| ApiError::internal(format!("queueing a key rotation job: {err}")))
}

/// The job of re-encrypting `key` on `tier` under key `current`.
fn rotation_spec(tier: &str, key: &str, generation: i64, size: u64, current: KeyId) -> MoveSpec {
    MoveSpec {
        idempotency_key: format!("{KEY_ROTATION}:{tier}:{key}:{generation}:{current}"),
        key: key.to_string(),
        from_tier: tier.to_string(),
        to_tier: tier.to_string(),
        generation,
        size,
        reason: KEY_ROTATION.to_string(),
        explanation: format!(
            "strata key rotate: the object on tier {tier:?} is sealed under an earlier key; \
             it is written again under key id {current}, checked against its BLAKE3, and \
             published in place of the old copy"
        ),
        inputs_json: serde_json::json!({ "key_id": current.to_string() }).to_string(),
        after: Vec::new(),
    }
}
