//! Chaos controls: faults switched on in a tier's stores while the service runs, for
//! drills ("does a move ride out a throttling store?") and for the dashboard.
//!
//! - `POST /v1/chaos` (admin) adds a rule to one tier: latency, a 429 or 503 (with a
//!   `Retry-After` if given), a timeout, or corruption, for a number of operations and/or
//!   a duration; the body is parsed by [`strata_store::chaos::ChaosRequest`], which says
//!   what is wrong with a bad one;
//! - `GET /v1/chaos` lists the rules in force per tier and what each injected;
//! - `DELETE /v1/chaos` (optionally `?tier=NAME`) ends them.
//!
//! The rules live in each tier's [`strata_store::chaos::Chaos`], shared by its client and
//! move stores, applied in the same store layer as the `STRATA_FAULTS` plan, which they
//! leave as it is. `/healthz` shows the rules in force (`chaos`), `/metrics` the faults
//! injected (`strata_chaos_injected_total{tier,fault}`) and the rules in force
//! (`strata_chaos_rules{tier}`).
//!
//! **What a client sees.** Store calls are retried with backoff ([`crate::retry`]), moves'
//! and client reads' alike, so a few injected 429s, 503s or timeouts slow a move or a GET
//! down and do not fail it. A store that keeps failing makes a GET answer 503
//! `store_unavailable`, retryable, with the store's `Retry-After` when it gave one (else 1),
//! once the attempts are spent. Corruption is caught by the read path's checks: the copy
//! is reported damaged and none of it is served.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use strata_store::chaos::{ChaosRequest, ChaosRuleStatus};

use crate::error::ApiError;
use crate::http::read_body;
use crate::metrics::label;
use crate::state::AppState;

/// Largest `POST /v1/chaos` body (a rule is a line of JSON).
const MAX_CHAOS_BODY: u64 = 16 << 10;

/// One tier's chaos as the API shows it.
#[derive(Debug, Serialize)]
pub struct TierChaos {
    /// The tier.
    pub tier: String,
    /// Its rules in force.
    pub rules: Vec<ChaosRuleStatus>,
}

/// Every tier's rules in force; tiers without any are left out.
pub fn active(state: &AppState) -> Vec<TierChaos> {
    state
        .tiers
        .iter()
        .map(|tier| TierChaos {
            tier: tier.name().to_string(),
            rules: tier.chaos.active(),
        })
        .filter(|tier| !tier.rules.is_empty())
        .collect()
}

/// `POST /v1/chaos`: adds a rule to a tier; answers 201 with the rule's id and the tier's
/// rules in force.
pub async fn add(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = read_body(
        &headers,
        body,
        MAX_CHAOS_BODY,
        state.http.body_timeout,
        "chaos rule",
    )
    .await?;
    let request = ChaosRequest::parse_json(&body)
        .map_err(|message| ApiError::bad_request("bad_chaos_rule", message))?;
    let Some(tier) = state.tiers.iter().find(|t| t.name() == request.tier) else {
        let names: Vec<&str> = state.tiers.iter().map(|t| t.name()).collect();
        return Err(ApiError::bad_request(
            "unknown_tier",
            format!(
                "no tier {:?}; the tiers are {}",
                request.tier,
                names.join(", ")
            ),
        ));
    };
    let id = tier.chaos.add(request.rule);
    tracing::warn!(
        tier = tier.name(),
        rule = id,
        "chaos rule added: the tier's stores fail on purpose until it ends"
    );
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": id,
            "tier": tier.name(),
            "rules": tier.chaos.active(),
        })),
    ))
}

/// `GET /v1/chaos`.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "tiers": active(&state) }))
}

/// The query of `DELETE /v1/chaos`.
#[derive(Debug, Deserialize)]
pub struct ClearQuery {
    /// Only this tier's rules.
    tier: Option<String>,
}

/// `DELETE /v1/chaos[?tier=NAME]`: ends every rule (of one tier); answers how many were
/// in force.
pub async fn clear(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ClearQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(name) = &query.tier {
        if !state.tiers.iter().any(|t| t.name() == name) {
            return Err(ApiError::bad_request(
                "unknown_tier",
                format!("no tier {name:?}; leave out ?tier= to clear every tier"),
            ));
        }
    }
    let cleared: usize = state
        .tiers
        .iter()
        .filter(|t| query.tier.as_deref().is_none_or(|name| t.name() == name))
        .map(|t| t.chaos.clear())
        .sum();
    tracing::info!(cleared, "chaos rules cleared");
    Ok(Json(serde_json::json!({ "cleared": cleared })))
}

/// The chaos part of `/metrics`: faults injected by tier and fault, rules in force by tier.
pub fn render(state: &AppState, out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP strata_chaos_injected_total Store calls made faulty by chaos rules \
         (POST /v1/chaos), by tier and fault."
    );
    let _ = writeln!(out, "# TYPE strata_chaos_injected_total counter");
    for tier in &state.tiers {
        for (fault, count) in tier.chaos.injected() {
            let _ = writeln!(
                out,
                "strata_chaos_injected_total{{tier=\"{}\",fault=\"{fault}\"}} {count}",
                label(tier.name())
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP strata_chaos_rules Chaos rules in force, by tier."
    );
    let _ = writeln!(out, "# TYPE strata_chaos_rules gauge");
    for tier in &state.tiers {
        let _ = writeln!(
            out,
            "strata_chaos_rules{{tier=\"{}\"}} {}",
            label(tier.name()),
            tier.chaos.active().len()
        );
    }
}
