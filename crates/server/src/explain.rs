//! `GET /v1/explain/{key}`: why an object is where it is, what it is now, and what the next
//! pass would do with it, from the recorded decisions and jobs and the live statistics.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use strata_catalog::{DecisionRecord, JobState, MoveFilter};
use strata_heat::units::human_duration_ms;
use strata_heat::{AccessSummary, ObjectState};

use crate::error::ApiError;
use crate::objects::{ObjectKey, ObjectView};
use crate::state::{lock, now_ms, AppState};

/// What the next periodic pass would do with the object, on its own.
#[derive(Debug, Serialize)]
pub struct Outlook {
    /// `stay`, `move` or `wait`.
    pub action: &'static str,
    /// Target tier, for a move or a wait.
    pub to: Option<String>,
    /// Reason code.
    pub reason: String,
    /// One sentence.
    pub explanation: String,
}

fn decision_json(decision: &DecisionRecord) -> serde_json::Value {
    serde_json::json!({
        "ts_ms": decision.ts_ms,
        "class": decision.class,
        "reason": decision.reason,
        "action": decision.action,
        "explanation": decision.explanation,
        "job_id": decision.job_id,
        "inputs": serde_json::from_str::<serde_json::Value>(&decision.inputs_json)
            .unwrap_or(serde_json::Value::Null),
    })
}

/// `GET /v1/explain/{key}`.
pub async fn explain(
    State(state): State<Arc<AppState>>,
    ObjectKey(key): ObjectKey,
) -> Result<Response, ApiError> {
    let entry = state
        .index
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("no object {key:?}")))?;
    let now = now_ms();
    let tier = state.tiers[entry.tier].name().to_string();
    let summary = lock(&state.tracker)
        .summary(&key, now)
        .unwrap_or(AccessSummary::never_accessed(now));
    let decision = state.config.classification_rules().classify(&summary);

    let usage = state.index.usage();
    let outlook = match state
        .config
        .planner(|name| state.committed_bytes(&usage, name))
    {
        Ok(planner) => {
            let plan = planner.plan(
                now,
                &[ObjectState {
                    key: key.clone(),
                    size: state.planning_size(&entry),
                    tier: tier.clone(),
                    placed_at_ms: entry.placed_ms,
                    decision,
                }],
            );
            if let Some(planned) = plan.moves.iter().find(|m| m.key == key) {
                Outlook {
                    action: "move",
                    to: Some(planned.to.clone()),
                    reason: planned.reason.code().to_string(),
                    explanation: planned.explanation.clone(),
                }
            } else if let Some(wait) = plan.waits.iter().find(|w| w.key == key) {
                Outlook {
                    action: "wait",
                    to: Some(wait.wanted.clone()),
                    reason: wait.reason.code().to_string(),
                    explanation: wait.explanation.clone(),
                }
            } else {
                let explanation = if decision.holds_in_place() {
                    format!("stays on {tier}: {}", decision.explain())
                } else {
                    format!("stays on {tier}: a {} object belongs there", decision.class)
                };
                Outlook {
                    action: "stay",
                    to: None,
                    reason: decision.reason.code().to_string(),
                    explanation,
                }
            }
        }
        Err(err) => Outlook {
            action: "stay",
            to: None,
            reason: "no_planner".to_string(),
            explanation: err.to_string(),
        },
    };

    let jobs = state
        .catalog
        .move_jobs(&MoveFilter {
            key: Some(key.clone()),
            limit: Some(20),
            ..MoveFilter::default()
        })
        .await?;
    let mut decisions: Vec<DecisionRecord> = lock(&state.decisions).pending_for(&key);
    decisions.reverse();
    decisions.extend(state.catalog.decisions(&key, 20).await?);

    let since = human_duration_ms(now - entry.placed_ms);
    let arrived_by = jobs
        .iter()
        .find(|job| job.state == JobState::Done && job.to_tier == tier);
    let why_here = match arrived_by {
        Some(job) => format!(
            "on {tier} for {since}: moved from {} by job {} ({}): {}",
            job.from_tier, job.id, job.reason, job.explanation
        ),
        None => match state.policies.policy_for(&key) {
            Some(policy) if state.new_object_tier(&key).id != state.default_tier().id => {
                format!(
                    "on {tier} for {since}: written there (new objects land on the default \
                     tier {}, which {} forbids, so this one on {})",
                    state.config.default_tier,
                    policy.label(),
                    state.new_object_tier(&key).name()
                )
            }
            _ => format!(
                "on {tier} for {since}: written there (new objects land on the default tier {})",
                state.config.default_tier
            ),
        },
    };
    let mut lines = vec![why_here.clone(), format!("now: {}", decision.explain())];
    // Damage a read found in the current content (not in an earlier, rewritten one).
    if let Some(damage) = decisions
        .iter()
        .find(|d| d.reason == "read_damage" && d.ts_ms >= entry.mtime_ms)
    {
        lines.push(format!("damaged: {}", damage.explanation));
    }
    let policy_line = crate::policies::explain_line(&state, &key);
    lines.extend(policy_line.clone());
    let forecast = crate::forecast::predict::object_view(&state, &key, &entry).await?;
    // Hourly reads and writes, for the dashboard's access chart.
    let history = crate::forecast::predict::key_history(&state, &key, now).await?;
    lines.push(forecast_line(&forecast));
    if let Some(active) = jobs.iter().find(|job| job.state.is_active()) {
        lines.push(format!(
            "moving: job {} is {} ({} → {}, {})",
            active.id, active.state, active.from_tier, active.to_tier, active.reason
        ));
    } else {
        lines.push(format!("next pass: {}", outlook.explanation));
    }

    let jobs_json: Vec<serde_json::Value> = jobs
        .iter()
        .map(|job| {
            serde_json::json!({
                "id": job.id,
                "state": job.state,
                "from_tier": job.from_tier,
                "to_tier": job.to_tier,
                "reason": job.reason,
                "explanation": job.explanation,
                "last_error": job.last_error,
                "created_ms": job.created_ms,
                "finished_ms": job.finished_ms,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "object": ObjectView::new(&state, &key, &entry),
        "tier": tier,
        "class": decision.class,
        "reason": decision.reason,
        "explanation": decision.explain(),
        "why_here": why_here,
        "lines": lines,
        "outlook": outlook,
        "access": summary,
        "decision_inputs": decision.inputs,
        "jobs": jobs_json,
        "decisions": decisions.iter().map(decision_json).collect::<Vec<_>>(),
        "policy": state
            .policies
            .policy_for(&key)
            .map(|policy| crate::policies::policy_json(&state.policies, policy)),
        "history": history,
        "forecast": match forecast {
            Ok(view) => view,
            Err(reason) => serde_json::json!({ "fallback": reason }),
        },
    }))
    .into_response())
}

/// The forecast in one line: predicted reads, class, confidence, model, the optimiser's
/// placement and its saving, and the features that drove it; or why there is none.
fn forecast_line(forecast: &Result<serde_json::Value, String>) -> String {
    let view = match forecast {
        Ok(view) => view,
        Err(reason) => return format!("forecast: none ({reason})"),
    };
    if view["idle"] == true {
        return format!(
            "forecast (model {}): idle for more than 48 windows, assumed unread; class {}, \
             best placed on {}",
            view["model_version"],
            str_of(&view["class"]),
            str_of(&view["placement"]["chosen_tier"])
        );
    }
    let drivers: Vec<String> = view["drivers"]
        .as_array()
        .map(|drivers| {
            drivers
                .iter()
                .map(|d| {
                    format!(
                        "{} = {} ({:+.2})",
                        str_of(&d["feature"]),
                        d["value"]
                            .as_f64()
                            .map_or("unknown".to_string(), |v| format!("{v:.2}")),
                        d["effect"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let placement = &view["placement"];
    format!(
        "forecast (model {}): {:.2} reads in the next {} window, class {} ({} {:.0}%); \
         optimiser: {} (saving ${:.3e} a window against staying on {}); driven by {}",
        view["model_version"],
        view["predicted_reads"].as_f64().unwrap_or(0.0),
        human_duration_ms(view["window_ms"].as_i64().unwrap_or(0)),
        str_of(&view["class"]),
        str_of(&view["confidence_kind"]).replace('_', " "),
        view["confidence"].as_f64().unwrap_or(0.0) * 100.0,
        str_of(&placement["chosen_tier"]),
        placement["saving_per_window"].as_f64().unwrap_or(0.0),
        str_of(&placement["current_tier"]),
        drivers.join(", ")
    )
}

fn str_of(value: &serde_json::Value) -> &str {
    value.as_str().unwrap_or_default()
}
