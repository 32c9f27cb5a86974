//! `POST /v1/scrub[?tier=NAME]` (`strata scrub [TIER]`): reads every object of a tier in
//! full, repairs what it can, reports what it cannot.
//!
//! On a tier with failure domains, for each object the catalog places there (under the
//! key's read lock, so no write of it races the repair): what a crash left of a second
//! encoding is settled (`RedundantStore::settle`), every replica or fragment is read and
//! verified (`check`), missing and damaged ones are rewritten from the good ones
//! (`repair`), and the object is read back through the tier's codec and compared with the
//! catalog's BLAKE3. Pieces of objects the catalog does not know (orphans: a write or
//! delete cut short by a crash) are removed, under the key's write lock and only when no
//! write of the key is in flight. On a tier with one store, each object is read and
//! checked against the catalog's BLAKE3; damage there is reported (there is no second
//! copy to repair from).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::redundancy_worker::class_of;
use crate::state::AppState;
use crate::tier_codec::hash_stored;
use crate::tiers::{Tier, OBJECTS_DIR};

/// Query of `POST /v1/scrub`.
#[derive(Debug, Default, Deserialize)]
pub struct ScrubQuery {
    /// Only this tier (default: every tier).
    pub tier: Option<String>,
}

/// What a scrub found on one tier.
#[derive(Debug, Default, Serialize)]
pub struct TierScrub {
    /// The tier.
    pub tier: String,
    /// Its redundancy (`none` for a tier with one store).
    pub redundancy: String,
    /// Objects read.
    pub objects: u64,
    /// Objects every piece of which verified.
    pub healthy: u64,
    /// Objects with missing or damaged pieces that were rewritten.
    pub repaired: u64,
    /// Pieces rewritten.
    pub pieces_repaired: u64,
    /// Objects not encoded as their class asks on this tier (a read re-encodes them).
    pub not_at_policy: u64,
    /// Pieces of a second encoding, or of objects the catalog does not know, removed.
    pub orphans_removed: u64,
    /// Objects that could not be repaired or do not match the catalog, with why.
    pub unrepairable: Vec<Unrepairable>,
}

/// An object a scrub could not make whole.
#[derive(Debug, Serialize)]
pub struct Unrepairable {
    /// The object's key.
    pub key: String,
    /// What is wrong, and which domains.
    pub detail: String,
}

/// The answer of `POST /v1/scrub`.
#[derive(Debug, Serialize)]
pub struct ScrubReport {
    /// Per tier scrubbed.
    pub tiers: Vec<TierScrub>,
}

/// `POST /v1/scrub`.
pub async fn scrub(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ScrubQuery>,
) -> Result<Json<ScrubReport>, ApiError> {
    let tiers: Vec<&Tier> = match &query.tier {
        None => state.tiers.iter().collect(),
        Some(name) => vec![state.tier(name).ok_or_else(|| {
            ApiError::not_found(format!(
                "no tier {name:?}; the tiers are {}",
                state
                    .tiers
                    .iter()
                    .map(|t| format!("{:?}", t.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?],
    };
    let mut report = ScrubReport { tiers: Vec::new() };
    for tier in tiers {
        report.tiers.push(scrub_tier(&state, tier).await?);
    }
    Ok(Json(report))
}

async fn scrub_tier(state: &AppState, tier: &Tier) -> Result<TierScrub, ApiError> {
    // Under the bandwidth policy, like every background transfer.
    let tier = &tier.as_move_target();
    let mut found = TierScrub {
        tier: tier.name().to_string(),
        redundancy: tier.config.redundancy.clone(),
        ..TierScrub::default()
    };
    for (key, _) in state.index.on_tier(tier.id) {
        let _gate = state.uploads.enter(&key).await;
        let _reading = state.locks.read(&key).await;
        let Some(entry) = state.index.get(&key).filter(|e| e.tier == tier.id) else {
            continue;
        };
        found.objects += 1;
        if let Some(problem) = scrub_pieces(state, tier, &key, &entry.hash, &mut found).await {
            found.unrepairable.push(Unrepairable {
                key,
                detail: problem,
            });
            continue;
        }
        let whole = match hash_stored(state, tier, &key, entry.size).await {
            Ok((_, hash)) => hash == entry.hash,
            Err(err) => {
                found.unrepairable.push(Unrepairable {
                    key,
                    detail: err.to_string(),
                });
                continue;
            }
        };
        if !whole {
            found.unrepairable.push(Unrepairable {
                key,
                detail: format!(
                    "its bytes do not match the catalog's BLAKE3 {}; write the object again",
                    hex::encode(entry.hash)
                ),
            });
        }
    }
    found.orphans_removed += remove_orphans(state, tier).await?;
    Ok(found)
}

/// Settles, checks and repairs the pieces of one object on a tier with domains (a repair
/// copies only bytes that hash to `hash`, the catalog's); the problem when it cannot be
/// made whole. Counts into `found`.
async fn scrub_pieces(
    state: &AppState,
    tier: &Tier,
    key: &str,
    hash: &[u8; 32],
    found: &mut TierScrub,
) -> Option<String> {
    let Some(domains) = tier.store.domains() else {
        found.healthy += 1;
        return None;
    };
    let rel = Tier::object_path(key);
    let wanted = tier
        .wanted_redundancy(class_of(state, key))
        .unwrap_or(domains.default);
    match domains.store.settle(&rel, wanted).await {
        Ok(settled) => found.orphans_removed += settled.removed.len() as u64,
        Err(err) => return Some(err.to_string()),
    }
    let health = match domains.store.check(&rel).await {
        Ok(health) => health,
        Err(err) => return Some(err.to_string()),
    };
    if health.encoding != wanted {
        found.not_at_policy += 1;
    }
    if health.is_healthy() {
        found.healthy += 1;
        return None;
    }
    match domains.store.repair(&rel, Some(hash)).await {
        Ok(outcome) if outcome.not_repaired.is_empty() => {
            found.repaired += 1;
            found.pieces_repaired += outcome.repaired.len() as u64;
            None
        }
        Ok(outcome) => Some(format!(
            "{} pieces could not be rewritten: {}",
            outcome.not_repaired.len(),
            outcome
                .not_repaired
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(err) => Some(err.to_string()),
    }
}

/// Removes the pieces of objects the catalog does not know on a tier with domains.
async fn remove_orphans(state: &AppState, tier: &Tier) -> Result<u64, ApiError> {
    let Some(domains) = tier.store.domains() else {
        return Ok(0);
    };
    let prefix = format!("{OBJECTS_DIR}/");
    let rels = domains
        .store
        .list_rels(&prefix)
        .await
        .map_err(|err| ApiError::unavailable("store_unavailable", err.to_string()))?;
    let intents: BTreeSet<String> = state
        .catalog
        .write_intents()
        .await?
        .into_iter()
        .map(|intent| intent.key)
        .collect();
    let mut removed = 0;
    for rel in rels {
        let Some(key) = rel.strip_prefix(&prefix) else {
            continue;
        };
        let _gate = state.uploads.enter(key).await;
        let _writing = state.locks.write(key).await;
        let known = state.index.contains(key)
            || intents.contains(key)
            || !state.catalog.placements(key).await?.is_empty();
        if known {
            continue;
        }
        if domains.store.delete(&rel).await.is_ok() {
            tracing::info!(%key, tier = tier.name(), "scrub removed an orphan object's pieces");
            removed += 1;
        }
    }
    Ok(removed)
}
