//! Move jobs over HTTP: list, get, cancel, retry, and the server-sent event stream of their
//! transitions (`GET /v1/events`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use serde::{Deserialize, Serialize};
use strata_catalog::{JobState, MoveFilter, MoveId, MoveJob, RetriedMove};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::mover::store_call;
use crate::state::{now_ms, AppState};
use crate::tiers::Tier;

/// A job as the API shows it.
#[derive(Debug, Serialize)]
pub struct JobView {
    #[serde(flatten)]
    job: MoveJob,
    /// The inputs, as JSON rather than text.
    inputs: serde_json::Value,
    /// Whether it runs in this process now.
    running: bool,
}

impl JobView {
    fn new(state: &AppState, mut job: MoveJob) -> Self {
        let inputs = serde_json::from_str(&job.inputs_json).unwrap_or(serde_json::Value::Null);
        job.inputs_json = String::new();
        JobView {
            running: state.mover.is_running_job(job.id),
            inputs,
            job,
        }
    }
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    /// Only jobs in this state.
    pub state: Option<String>,
    /// Only jobs of this object.
    pub key: Option<String>,
    /// Only unfinished jobs.
    #[serde(default)]
    pub active: bool,
    /// At most this many, newest first (default 100).
    pub limit: Option<u32>,
}

/// `GET /v1/jobs`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<JobsQuery>,
) -> Result<Response, ApiError> {
    let job_state = query
        .state
        .as_deref()
        .map(|text| {
            text.parse::<JobState>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_state",
                    format!(
                        "unknown job state {text:?}; one of: {}",
                        JobState::ALL.map(JobState::as_str).join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    let jobs = state
        .catalog
        .move_jobs(&MoveFilter {
            state: job_state,
            active_only: query.active,
            key: query.key,
            limit: Some(query.limit.unwrap_or(100).clamp(1, 10_000)),
        })
        .await?;
    let jobs: Vec<JobView> = jobs
        .into_iter()
        .map(|job| JobView::new(&state, job))
        .collect();
    Ok(Json(serde_json::json!({ "jobs": jobs })).into_response())
}

async fn job_or_404(state: &AppState, id: MoveId) -> Result<MoveJob, ApiError> {
    state
        .catalog
        .move_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))
}

/// `GET /v1/jobs/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<MoveId>,
) -> Result<Response, ApiError> {
    let job = job_or_404(&state, id).await?;
    Ok(Json(JobView::new(&state, job)).into_response())
}

/// `POST /v1/jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<MoveId>,
) -> Result<Response, ApiError> {
    let job = job_or_404(&state, id).await?;
    if !job.state.is_active() {
        return Err(ApiError::conflict(
            "job_finished",
            format!("job {id} is already {}", job.state),
        ));
    }
    let switched = || {
        ApiError::conflict(
            "already_switched",
            format!("job {id} has switched the placement; its old copy is being retired"),
        )
    };
    match state.mover.cancel_job(id) {
        Some(true) => return Err(switched()),
        Some(false) => {
            let job = job_or_404(&state, id).await?;
            return Ok((StatusCode::ACCEPTED, Json(JobView::new(&state, job))).into_response());
        }
        None => {}
    }
    if job.state == JobState::Retiring {
        return Err(switched());
    }
    // Not running (queued, or waiting to resume after a restart): its copy, if any, is
    // deleted before the job ends, under the key's lock.
    let guard = state.locks.write(&job.key).await;
    if let Some(to) = state.tier(&job.to_tier) {
        let current_there = state
            .index
            .get(&job.key)
            .is_some_and(|entry| entry.tier == to.id);
        if job.state != JobState::Planned && !current_there {
            let path = Tier::object_path(&job.key);
            store_call(&state, "a cancelled move's cleanup", || {
                to.store.delete(&path)
            })
            .await?;
        }
    }
    state
        .catalog
        .end_move(
            id,
            JobState::Cancelled,
            Some("cancelled: stopped by an operator"),
            now_ms(),
        )
        .await?;
    drop(guard);
    let job = job_or_404(&state, id).await?;
    state.emit(crate::state::JobEvent {
        id,
        key: job.key.clone(),
        from: job.from_tier.clone(),
        to: job.to_tier.clone(),
        state: job.state.as_str().to_string(),
        reason: job.reason.clone(),
        error: job.last_error.clone(),
        ts_ms: now_ms(),
    });
    Ok(Json(JobView::new(&state, job)).into_response())
}

/// `POST /v1/jobs/{id}/retry`.
pub async fn retry(
    State(state): State<Arc<AppState>>,
    Path(id): Path<MoveId>,
) -> Result<Response, ApiError> {
    job_or_404(&state, id).await?;
    match state.catalog.retry_move(id, now_ms()).await? {
        RetriedMove::Retried(job) => {
            state.mover.enqueue(job.id);
            Ok(Json(JobView::new(&state, *job)).into_response())
        }
        RetriedMove::NotRetryable(job_state) => Err(ApiError::conflict(
            "not_retryable",
            format!("job {id} is {job_state}; only failed, cancelled or skipped jobs are retried"),
        )),
        RetriedMove::ObjectBusy(other) => Err(ApiError::conflict(
            "object_busy",
            format!("the object already has an unfinished job {other}"),
        )),
    }
}

/// `GET /v1/events`: job transitions as server-sent events (`event: job`, JSON data). The
/// first event, `ready`, says the subscription is live.
pub async fn events(
    State(state): State<Arc<AppState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.events.subscribe();
    let ready = futures::stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    let jobs = futures::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(event) => {
                let data = serde_json::to_string(&event).unwrap_or_default();
                Event::default().event("job").data(data)
            }
            Err(RecvError::Lagged(missed)) => {
                let data = serde_json::json!({ "missed": missed }).to_string();
                Event::default().event("lagged").data(data)
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    let mut shutdown = state.shutdown.clone();
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let stream = futures::StreamExt::take_until(futures::StreamExt::chain(ready, jobs), stop);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
