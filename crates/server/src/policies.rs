//! `[[policy]]` at the service's surface: `GET /v1/policies` (what each policy allows and
//! why each other tier is excluded), `POST /v1/moves` (a manual move, refused when the key's
//! policy forbids the target), and the policy lines of `strata explain`.
//!
//! Policies are read from `strata.toml` only, at start-up: there is no `PUT /v1/policies`.
//! A policy no tier satisfies is refused at load with its reason, and the file stays the one
//! record of what is in force; a change takes a restart, after which the periodic pass moves
//! objects that the new policies forbid where they are (reason `policy`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use strata_catalog::{CreatedMove, DecisionRecord, MoveSpec};
use strata_heat::{CompiledPolicy, PolicySet};

use crate::error::ApiError;
use crate::http::read_body;
use crate::state::{lock, now_ms, AppState};

/// Largest body of `POST /v1/moves`.
const MAX_MOVE_REQUEST: u64 = 64 * 1024;

/// One policy as the API shows it: its configuration, and each tier's verdict.
pub fn policy_json(set: &PolicySet, policy: &CompiledPolicy) -> serde_json::Value {
    let tiers: Vec<serde_json::Value> = policy
        .verdicts()
        .iter()
        .enumerate()
        .map(|(t, verdict)| {
            serde_json::json!({
                "tier": set.tier_name(t),
                "allowed": policy.allows(t),
                "excluded_by": policy.why_excluded(t),
                "verdict": verdict,
            })
        })
        .collect();
    let allowed: Vec<&str> = policy.allowed_tiers().map(|t| set.tier_name(t)).collect();
    serde_json::json!({
        "policy": policy.config(),
        "allowed_tiers": allowed,
        "tiers": tiers,
    })
}

/// `GET /v1/policies`: every `[[policy]]`, in declaration order, with its allowed tiers.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let set = &state.policies;
    let policies: Vec<serde_json::Value> = set
        .policies()
        .iter()
        .map(|policy| policy_json(set, policy))
        .collect();
    Json(serde_json::json!({
        "rule": "the policy with the longest prefix a key starts with governs it",
        "changeable_at_run_time": false,
        "policies": policies,
    }))
}

/// `strata explain`'s line for `key`'s policy, or `None` without one.
pub fn explain_line(state: &AppState, key: &str) -> Option<String> {
    let set = &state.policies;
    let policy = set.policy_for(key)?;
    let allowed: Vec<&str> = policy.allowed_tiers().map(|t| set.tier_name(t)).collect();
    let excluded: Vec<String> = (0..policy.verdicts().len())
        .filter_map(|t| {
            policy
                .why_excluded(t)
                .map(|why| format!("{} ({why})", set.tier_name(t)))
        })
        .collect();
    let mut line = format!("policy: {} allows {}", policy.label(), allowed.join(", "));
    if !excluded.is_empty() {
        line.push_str(&format!("; excludes {}", excluded.join("; ")));
    }
    Some(line)
}

/// The body of `POST /v1/moves`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveRequest {
    key: String,
    to: String,
}

/// `POST /v1/moves` (`{"key": ..., "to": TIER}`): queues a move of an object to a tier,
/// unless its policy forbids that tier (422 `policy_forbids`, naming the policy and the
/// constraint), the tier is unknown (422 `unknown_tier`), the object is there already or is
/// moving (409).
pub async fn request_move(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(
        &headers,
        body,
        MAX_MOVE_REQUEST,
        state.http.body_timeout,
        "move request",
    )
    .await?;
    let request: MoveRequest = serde_json::from_slice(&body).map_err(|err| {
        ApiError::bad_request(
            "invalid_move_request",
            format!("the move request is not valid: {err}; send {{\"key\": KEY, \"to\": TIER}}"),
        )
    })?;
    let (key, to) = (request.key, request.to);
    let entry = state
        .index
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("no object {key:?}")))?;
    let Some(target) = state.tier(&to) else {
        let names: Vec<&str> = state.tiers.iter().map(|tier| tier.name()).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_tier",
            format!(
                "no tier {to:?} to move {key:?} to; use one of {}",
                names.join(", ")
            ),
        ));
    };
    let policy = state.policies.matching(&key);
    if let Some(forbids) = state.policies.forbids_text(policy, target.id.index()) {
        let allowed: Vec<&str> = state
            .policies
            .get(policy.unwrap_or_default())
            .map(|p| {
                p.allowed_tiers()
                    .map(|t| state.policies.tier_name(t))
                    .collect()
            })
            .unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "policy_forbids",
            format!(
                "cannot move {key:?} to {to}: {forbids}; move it to one of {} or change the \
                 policy in strata.toml",
                allowed.join(", ")
            ),
        ));
    }
    let from = state.tiers[entry.tier].name().to_string();
    if entry.tier == target.id {
        return Err(ApiError::conflict(
            "already_there",
            format!("{key:?} is on {to} already"),
        ));
    }
    let now = now_ms();
    let explanation = format!("moved {from} → {to} on an operator's request");
    let spec = MoveSpec {
        idempotency_key: crate::planning::idempotency_key(&key, &entry, &from, &to),
        key: key.clone(),
        from_tier: from.clone(),
        to_tier: to.clone(),
        generation: entry.generation,
        size: entry.size,
        reason: "manual".to_string(),
        explanation: explanation.clone(),
        inputs_json: "{}".to_string(),
        after: Vec::new(),
    };
    let job = match state.catalog.create_move(&spec, now).await? {
        CreatedMove::Created(job) => {
            state.metrics.move_planned("manual");
            job
        }
        CreatedMove::Existing(job) if job.state.is_active() => job,
        CreatedMove::Existing(_) | CreatedMove::ObjectBusy(_) => {
            return Err(ApiError::conflict(
                "object_moving",
                format!("{key:?} has an unfinished move; wait for it or cancel it first"),
            ))
        }
    };
    lock(&state.decisions).push(
        DecisionRecord {
            key: key.clone(),
            ts_ms: now,
            class: "manual".to_string(),
            reason: "manual".to_string(),
            action: format!("move:{from}->{to}"),
            explanation,
            inputs_json: "{}".to_string(),
            job_id: Some(job.id),
        },
        false,
    );
    state.mover.enqueue(job.id);
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "job": job.id, "key": key, "from": from, "to": to })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use strata_heat::config::failures_tolerated;
    use strata_redundancy::Redundancy;

    /// The heat crate reads a tier's redundancy for `min_redundancy` on its own (it may not
    /// depend on the redundancy crate); both must count failures alike.
    #[test]
    fn policies_count_failures_as_the_redundancy_crate_does() {
        for spec in [
            "none",
            "replicate:1",
            "replicate:2",
            "replicate:3",
            "ec:4+2",
            "ec:2+1",
            "ec:10+4",
            " Replicate:2 ",
            "EC: 4 + 2",
        ] {
            let parsed: Redundancy = spec.parse().unwrap();
            assert_eq!(
                failures_tolerated(spec),
                Some(parsed.losses_tolerated()),
                "{spec}"
            );
        }
        for spec in ["raid6", "replicate:x", "replicate:0", "ec:4", "ec:4+0"] {
            assert!(spec.parse::<Redundancy>().is_err(), "{spec}");
            assert_eq!(failures_tolerated(spec), None, "{spec}");
        }
    }
}
