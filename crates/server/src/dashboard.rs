//! The web dashboard at `/ui`: its assets, embedded in the binary at build time from
//! `crates/server/ui/` (plain HTML, CSS and JavaScript, no build step), and the model
//! status its model pane reads (`GET /v1/model`).
//!
//! **Authentication.** The assets hold no data, so they are served to anyone, like
//! `/openapi.json`; every figure the page shows comes from the API, which the page calls
//! with `Authorization: Bearer` when the service has tokens. The page asks for the token
//! once and keeps it in the tab's `sessionStorage`; it reads the event stream
//! (`/v1/events`) with `fetch` and a streamed body rather than `EventSource`, so the token
//! travels in the header there too and never in a URL (URLs end up in logs and history).
//! The page is same-origin, so its requests pass the Host and Origin checks
//! ([`crate::auth::hosts`]); a restrictive Content-Security-Policy keeps it from loading or
//! sending anything elsewhere.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::ApiError;
use crate::state::{lock, AppState};

/// An embedded file: its name under `/ui/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

/// Every file of `crates/server/ui/`; `index.html` is also served at `/ui`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        media_type: "text/html; charset=utf-8",
        body: include_str!("../ui/index.html"),
    },
    Asset {
        name: "app.css",
        media_type: "text/css; charset=utf-8",
        body: include_str!("../ui/app.css"),
    },
    Asset {
        name: "app.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("../ui/app.js"),
    },
    Asset {
        name: "charts.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("../ui/charts.js"),
    },
];

/// Only this origin's scripts, styles and API; no frames, no inline script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The asset called `name`, if embedded.
fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

fn serve(asset: &Asset) -> Response {
    let headers: [(HeaderName, HeaderValue); 4] = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.media_type),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // A new binary brings new assets: never serve a stale page against a newer API.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, asset.body).into_response()
}

/// `GET /ui`: the dashboard's page.
pub async fn index() -> Response {
    match asset("index.html") {
        Some(page) => serve(page),
        None => ApiError::internal("the dashboard's index.html is not embedded").into_response(),
    }
}

/// `GET /ui/{asset}`: one of the dashboard's files (`/ui/` itself is the page).
pub async fn file(Path(name): Path<String>) -> Result<Response, ApiError> {
    let name = if name.is_empty() { "index.html" } else { &name };
    asset(name).map(serve).ok_or_else(|| {
        ApiError::not_found(format!(
            "the dashboard has no file {name:?}; open /ui for its page"
        ))
    })
}

/// `GET /v1/model`: the forecast model in force (version, file, when it was trained and
/// what training measured), or why decisions fall back to the rules; whether a training
/// runs now; the proactive cycle's last run.
pub async fn model_status(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let forecast = &state.forecast;
    let model = match forecast.model() {
        Ok(model) => serde_json::json!({
            "version": model.info.version,
            "file": model.path,
            "trained_at_ms": model.info.trained_at_ms,
            "metrics": model.info,
            "fallback": null,
        }),
        Err(reason) => serde_json::json!({ "version": null, "fallback": reason }),
    };
    Json(serde_json::json!({
        "model": model,
        "training": forecast.training.try_lock().is_err(),
        "proactive": *lock(&forecast.cycle),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_with_its_media_type() {
        for name in ["index.html", "app.css", "app.js", "charts.js"] {
            let found = asset(name).unwrap_or_else(|| panic!("{name} is not embedded"));
            assert!(!found.body.is_empty(), "{name} is empty");
            let extension = name.rsplit('.').next().unwrap();
            let expected = match extension {
                "html" => "text/html",
                "css" => "text/css",
                _ => "text/javascript",
            };
            assert!(found.media_type.starts_with(expected), "{name}");
        }
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("secrets").is_none());
    }

    #[test]
    fn the_page_loads_only_its_own_scripts_and_no_inline_code() {
        let page = asset("index.html").unwrap().body;
        for script in page.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap();
            assert!(
                tag.contains("src=\"/ui/"),
                "inline or foreign script: {tag}"
            );
        }
        for handler in ["onclick=", "onload=", "onsubmit=", "oninput=", "onchange="] {
            assert!(!page.contains(handler), "inline {handler} in index.html");
        }
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
        assert!(CONTENT_SECURITY_POLICY.contains("connect-src 'self'"));
    }

    #[tokio::test]
    async fn assets_are_served_with_their_type_and_unknown_names_are_404() {
        let response = file(Path("app.js".to_string())).await.unwrap();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        let page = file(Path(String::new())).await.unwrap();
        assert!(page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let missing = file(Path("nope.js".to_string())).await.unwrap_err();
        assert_eq!(missing.status, axum::http::StatusCode::NOT_FOUND);
        assert!(missing.message.contains("nope.js"), "{}", missing.message);
    }
}
