//! The HTTP surface: the router, the list of its routes (checked against the OpenAPI
//! document by a test), the small handlers (health, tiers, metrics, the document), and the
//! JSON answers for unknown routes and methods.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use strata_heat::{AccessSummary, Class};

use crate::background::WhileSent;
use crate::error::{json_errors, ApiError};
use crate::state::{lock, now_ms, AppState};
use crate::{access, chaos, dashboard, explain, forecast, jobs, objects, planning, trends};

/// The OpenAPI 3.1 document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every route: (axum path, OpenAPI path, methods). The router below is built from the
/// same paths; a test checks each one against the router and the OpenAPI document.
pub const ROUTES: &[(&str, &str, &[&str])] = &[
    ("/healthz", "/healthz", &["get"]),
    ("/metrics", "/metrics", &["get"]),
    ("/openapi.json", "/openapi.json", &["get"]),
    ("/v1/objects", "/v1/objects", &["get"]),
    (
        "/v1/objects/{*key}",
        "/v1/objects/{key}",
        &["get", "head", "put", "delete"],
    ),
    ("/v1/access-events", "/v1/access-events", &["post"]),
    ("/v1/tiers", "/v1/tiers", &["get"]),
    ("/v1/jobs", "/v1/jobs", &["get"]),
    ("/v1/jobs/{id}", "/v1/jobs/{id}", &["get"]),
    ("/v1/jobs/{id}/cancel", "/v1/jobs/{id}/cancel", &["post"]),
    ("/v1/jobs/{id}/retry", "/v1/jobs/{id}/retry", &["post"]),
    ("/v1/plan", "/v1/plan", &["get", "post"]),
    ("/v1/scrub", "/v1/scrub", &["post"]),
    ("/v1/keys/rotate", "/v1/keys/rotate", &["post"]),
    ("/v1/explain/{*key}", "/v1/explain/{key}", &["get"]),
    ("/v1/predictions/{*key}", "/v1/predictions/{key}", &["get"]),
    ("/v1/model/train", "/v1/model/train", &["post"]),
    ("/v1/events", "/v1/events", &["get"]),
    ("/v1/policies", "/v1/policies", &["get"]),
    ("/v1/moves", "/v1/moves", &["post"]),
    ("/v1/chaos", "/v1/chaos", &["get", "post", "delete"]),
    ("/v1/model", "/v1/model", &["get"]),
    ("/v1/trends", "/v1/trends", &["get"]),
    ("/ui", "/ui", &["get"]),
    ("/ui/{*asset}", "/ui/{asset}", &["get"]),
];

/// The router over `state`.
/// Request bodies are read by [`crate::http::read_body`], which enforces each route's
/// limit (`--max-object-size`, `--max-batch-size`) before reading; every error answer is
/// JSON ([`json_errors`]).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/objects", get(objects::list_objects))
        .route(
            "/v1/objects/{*key}",
            get(objects::get_object)
                .head(objects::head_object)
                .put(objects::put_object)
                .delete(objects::delete_object),
        )
        .route("/v1/access-events", post(access::ingest))
        .route("/v1/tiers", get(tiers))
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/jobs/{id}/retry", post(jobs::retry))
        .route("/v1/plan", get(planning::dry_run).post(planning::run_now))
        .route("/v1/scrub", post(crate::scrub::scrub))
        .route("/v1/keys/rotate", post(crate::key_rotation::rotate))
        .route("/v1/explain/{*key}", get(explain::explain))
        .route("/v1/policies", get(crate::policies::list))
        .route("/v1/moves", post(crate::policies::request_move))
        .route(
            "/v1/predictions/{*key}",
            get(forecast::predict::predictions),
        )
        .route("/v1/model/train", post(forecast::predict::train_now))
        .route("/v1/events", get(jobs::events))
        .route(
            "/v1/chaos",
            get(chaos::list).post(chaos::add).delete(chaos::clear),
        )
        .route("/v1/model", get(dashboard::model_status))
        .route("/v1/trends", get(trends::trends))
        .route("/ui", get(dashboard::index))
        .route("/ui/{*asset}", get(dashboard::file))
        // Inner first: the guard answers 401 and 403 inside the counting.
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::auth::guard,
        ))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            count_answers,
        ))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(json_errors))
        // Outermost: the id goes on every answer, errors rewrapped above included.
        .layer(middleware::from_fn(crate::request_id::request_id))
        .with_state(state)
}

async fn count_answers(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    // Object requests are the foreground that background work waits for (crate::background).
    let guard = route
        .starts_with("/v1/objects")
        .then(|| state.foreground.enter());
    let response = next.run(request).await;
    state
        .metrics
        .http_answer(&method, &route, response.status().as_u16());
    match guard {
        Some(guard) => response.map(|body| Body::new(WhileSent::new(body, guard))),
        None => response,
    }
}

async fn no_route(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no route {} {}; the API is described at /openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; see /openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    // Whether the API asks for a token (null: the catalog did not answer).
    let tokens_required = state.access.tokens_required().await.ok();
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "objects": state.index.len(),
        "tiers": state.tiers.len(),
        "forecast": state.forecast.health(),
        "bandwidth": crate::layers::health(state.bandwidth.as_ref()),
        "insecure": state.access.insecure_warning,
        "tokens_required": tokens_required,
        "chaos": chaos::active(&state),
    }))
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = state.metrics.render(&state.gauges());
    state.streams.render(&mut text);
    state.access.render(&mut text);
    chaos::render(&state, &mut text);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// A tier with its usage and cost, as `GET /v1/tiers` shows it.
#[derive(Debug, Serialize)]
pub struct TierView {
    name: String,
    /// 0 for the hottest.
    rank: usize,
    /// The store, without credentials.
    store: String,
    layout: strata_heat::Layout,
    codec: String,
    capacity_bytes: Option<u64>,
    /// Bytes stored on the tier by current copies (compressed frames, table and trailer
    /// on a packed tier; raw bytes on a plain one): what capacity and `free_bytes` count.
    used_bytes: u64,
    /// Raw bytes of the objects whose current copy is here.
    raw_bytes: u64,
    objects: u64,
    incoming_bytes: u64,
    free_bytes: Option<u64>,
    cost_per_gb_month: f64,
    /// Storage cost of the bytes on the tier, per month (GB of 10^9 bytes).
    monthly_cost: f64,
    read_latency_ms: f64,
    retrieval_cost_per_gb: f64,
    egress_cost_per_gb: f64,
    min_residency_ms: u128,
    /// Classes whose objects live here.
    classes: Vec<&'static str>,
    /// How objects are kept over the tier's failure domains (`none`, `replicate:N`,
    /// `ec:K+M`), as configured.
    redundancy: String,
    /// Failure domains (stores) of the tier.
    domains: usize,
    /// New objects land here.
    default: bool,
}

async fn tiers(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    // Every object is classified: off the async workers, a page of keys at a time.
    let counting = state.clone();
    let by_class = tokio::task::spawn_blocking(move || objects_by_class(&counting))
        .await
        .unwrap_or_default();
    let usage = state.index.usage();
    let classes = &state.config.classes;
    let views: Vec<TierView> = state
        .tiers
        .iter()
        .zip(usage)
        .map(|(tier, usage)| {
            let c = &tier.config;
            let mut tier_classes = Vec::new();
            for (class, names) in [
                ("hot", &classes.hot),
                ("warm", &classes.warm),
                ("cold", &classes.cold),
            ] {
                if names.contains(&c.name) {
                    tier_classes.push(class);
                }
            }
            TierView {
                name: c.name.clone(),
                rank: tier.id.index(),
                store: tier.store.display(),
                layout: c.layout,
                codec: c.codec.clone(),
                capacity_bytes: c.capacity,
                used_bytes: usage.bytes,
                raw_bytes: usage.raw_bytes,
                objects: usage.objects,
                incoming_bytes: usage.incoming_bytes,
                free_bytes: c
                    .capacity
                    .map(|cap| cap.saturating_sub(usage.bytes + usage.incoming_bytes)),
                cost_per_gb_month: c.cost_per_gb_month,
                monthly_cost: usage.bytes as f64 / 1e9 * c.cost_per_gb_month,
                read_latency_ms: c.read_latency_ms,
                retrieval_cost_per_gb: c.retrieval_cost_per_gb,
                egress_cost_per_gb: c.egress_cost_per_gb,
                min_residency_ms: c.min_residency.as_millis(),
                classes: tier_classes,
                redundancy: c.redundancy.clone(),
                domains: c.domains().len(),
                default: c.name == state.config.default_tier,
            }
        })
        .collect();
    let total: f64 = views.iter().map(|view| view.monthly_cost).sum();
    Json(serde_json::json!({
        "tiers": views,
        "default_tier": state.config.default_tier,
        "total_monthly_cost": total,
        "objects_by_class": by_class,
    }))
}

/// How many objects each class holds now: the classification rules applied to every
/// object's access statistics, as `GET /v1/objects?heat=true` applies them to one page.
/// Keys are read a page at a time and the tracker is locked per page, so counting a large
/// index never holds up the accesses being recorded.
fn objects_by_class(state: &AppState) -> BTreeMap<Class, u64> {
    const PAGE: usize = 4096;
    let rules = state.config.classification_rules();
    let now = now_ms();
    let mut counts: BTreeMap<Class, u64> = [Class::Hot, Class::Warm, Class::Cold]
        .into_iter()
        .map(|class| (class, 0))
        .collect();
    let mut after: Option<String> = None;
    loop {
        let (page, more) = state.index.list("", after.as_deref(), PAGE);
        let tracker = lock(&state.tracker);
        for (key, _) in &page {
            let summary = tracker
                .summary(key, now)
                .unwrap_or(AccessSummary::never_accessed(now));
            *counts.entry(rules.classify(&summary).class).or_default() += 1;
        }
        drop(tracker);
        match page.last() {
            Some((key, _)) if more => after = Some(key.clone()),
            _ => return counts,
        }
    }
}
