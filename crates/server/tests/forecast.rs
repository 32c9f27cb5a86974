//! The forecast in the service: the access history recorded per object and hour, training
//! on it (`POST /v1/model/train`), predictions (`GET /v1/predictions/{key}`), and a model
//! that is missing, truncated or of another format: the service runs on, decides by the
//! rules and says so in `/healthz`, `explain` and `predict`, naming the file and `strata
//! train`.

mod common;

use std::time::Duration;

use common::*;
use strata_catalog::{SqliteCatalog, TieringCatalog};
use strata_heat::forecast::{ForecastModel, FEATURES};
use strata_server::forecast::store::{self, ModelInfo};

const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// NDJSON read events of `key` at each time.
fn events(key: &str, times: impl IntoIterator<Item = i64>) -> String {
    times
        .into_iter()
        .map(|ts| format!("{{\"key\":{key:?},\"op\":\"read\",\"ts\":{ts},\"bytes\":10}}\n"))
        .collect()
}

/// Three days of history: `busy` read 3 times every other hour, `quiet` once a day.
fn three_days(now: i64) -> String {
    let start = (now / HOUR - 72) * HOUR;
    let busy = (0..36).flat_map(|h| (0..3).map(move |i| start + 2 * h * HOUR + i * 60_000));
    let quiet = (0..3).map(|d| start + d * 24 * HOUR + 5 * 60_000);
    events("busy", busy) + &events("quiet", quiet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accesses_are_recorded_as_hourly_history_in_the_catalog() {
    let mut server = start(TEST_RULES).await;
    let now = now_ms();
    assert_eq!(server.put("a", b"hello").await.status(), 201);
    assert_eq!(server.object("a").await, b"hello");
    assert_eq!(server.object("a").await, b"hello");
    let two_days_ago = now - 48 * HOUR;
    let body = events("b", [two_days_ago, two_days_ago + 1]);
    assert_eq!(
        server
            .post("/v1/access-events", body.as_bytes())
            .await
            .status(),
        200
    );
    let dir = server.stop().await;

    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .unwrap();
    let history = catalog.access_history(0, None).await.unwrap();
    catalog.close().await;
    let a: Vec<_> = history.iter().filter(|b| b.key == "a").collect();
    let (reads, writes): (u64, u64) = a
        .iter()
        .fold((0, 0), |(r, w), b| (r + b.reads, w + b.writes));
    assert_eq!((reads, writes), (2, 1), "{history:?}");
    assert!(a.iter().all(|b| b.hour_ms % HOUR == 0 && b.hour_ms <= now));
    let b: Vec<_> = history.iter().filter(|b| b.key == "b").collect();
    assert_eq!(b.len(), 1, "{history:?}");
    assert_eq!(
        b[0].hour_ms,
        two_days_ago / HOUR * HOUR,
        "counted in its own hour"
    );
    assert_eq!((b[0].reads, b[0].bytes), (2, 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_on_the_history_puts_a_versioned_model_in_force() {
    let server = start(TEST_RULES).await;
    assert_eq!(server.put("busy", b"b").await.status(), 201);
    // Nothing read yet: nothing to learn, said so.
    let refused = server.post("/v1/model/train", b"").await;
    assert_eq!(refused.status(), 422);
    let refused = refused.json_value().await;
    assert_eq!(refused["error"]["code"], "cannot_train");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing to learn"),
        "{refused}"
    );

    let body = three_days(now_ms());
    server.post("/v1/access-events", body.as_bytes()).await;
    let first = server.post("/v1/model/train", b"").await;
    assert_eq!(first.status(), 200);
    let first = first.json_value().await;
    assert_eq!(first["version"], 1);
    let metrics = &first["metrics"];
    assert!(metrics["rows"].as_u64().unwrap() > 0, "{first}");
    assert!(metrics["positive_share"].as_f64().unwrap() > 0.0);
    assert_eq!(metrics["window_ms"], HOUR);
    let file = std::path::PathBuf::from(first["file"].as_str().unwrap());
    assert_eq!(file, server.dir.path().join("models/model-000001.json"));
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        first["size_bytes"].as_u64().unwrap()
    );
    let second = server.post("/v1/model/train", b"").await.json_value().await;
    assert_eq!(second["version"], 2);

    let health = server.json("/healthz").await;
    assert_eq!(health["forecast"]["model"]["version"], 2, "{health}");
    let prediction = server.json("/v1/predictions/busy").await;
    assert_eq!(prediction["model_version"], 2);
    assert!(["hot", "warm", "cold"].contains(&prediction["class"].as_str().unwrap()));
    let confidence = prediction["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence), "{prediction}");
    assert_eq!(
        prediction["features"].as_object().unwrap().len(),
        FEATURES,
        "{prediction}"
    );
    let explain = server.json("/v1/explain/busy").await;
    assert_eq!(explain["forecast"]["model_version"], 2);
    assert!(
        explain["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("forecast (model 2)")),
        "{explain}"
    );

    let unknown = server.get("/v1/predictions/no/such/key").await;
    assert_eq!(unknown.status(), 404);
    let unknown = unknown.json_value().await;
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no/such/key"),
        "{unknown}"
    );
}

/// Checks that the service, running without a usable model, says why and what to do in
/// `/healthz`, `predict` (503 `no_model`) and `explain`, naming `needle`.
async fn falls_back_to_the_rules(server: &TestServer, needle: &str) {
    let health = server.json("/healthz").await;
    assert_eq!(health["status"], "ok");
    let fallback = health["forecast"]["model"]["fallback"].as_str().unwrap();
    for said in [needle, "fall back to the rules", "strata train"] {
        assert!(fallback.contains(said), "{said:?} not in {fallback}");
    }
    let predict = server.get("/v1/predictions/a").await;
    assert_eq!(predict.status(), 503);
    let predict = predict.json_value().await;
    assert_eq!(predict["error"]["code"], "no_model");
    assert!(
        predict["error"]["message"]
            .as_str()
            .unwrap()
            .contains(needle),
        "{predict}"
    );
    let explain = server.json("/v1/explain/a").await;
    assert!(
        explain["forecast"]["fallback"]
            .as_str()
            .unwrap()
            .contains(needle),
        "{explain}"
    );
    assert!(explain["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().starts_with("forecast: none")));
    // Decisions go on by the rules.
    assert_eq!(server.post("/v1/plan", b"").await.status(), 200);
}

async fn start_with_model_file(contents: Option<Vec<u8>>) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    if let Some(contents) = contents {
        let models = store::models_dir(dir.path());
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join(store::file_name(3)), contents).unwrap();
    }
    let server = start_in(dir, TEST_RULES, Default::default()).await;
    assert_eq!(server.put("a", b"x").await.status(), 201);
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_falls_back_to_the_rules_and_says_so() {
    let server = start_with_model_file(None).await;
    let dir = store::models_dir(server.dir.path());
    falls_back_to_the_rules(&server, &format!("no forecast model in {}", dir.display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_model_file_falls_back_naming_the_file() {
    let server = start_with_model_file(Some(b"{\"format_version\": 1, \"featu".to_vec())).await;
    let file = store::models_dir(server.dir.path()).join("model-000003.json");
    falls_back_to_the_rules(&server, &file.display().to_string()).await;
    let health = server.json("/healthz").await;
    assert!(health["forecast"]["model"]["fallback"]
        .as_str()
        .unwrap()
        .contains("not a forecast model"));
}

/// A small model and its information, as `strata train` would store them.
fn small_model() -> (ForecastModel, ModelInfo) {
    let rows: Vec<f64> = (0..40 * FEATURES).map(|i| (i % 7) as f64).collect();
    let reads: Vec<f64> = (0..40).map(|i| (i % 3) as f64).collect();
    let model = ForecastModel::train(&rows, &reads).unwrap();
    let info = ModelInfo {
        version: 0,
        trained_at_ms: 0,
        source: "test".into(),
        window_ms: HOUR,
        training_seconds: 0.0,
        rows: 40,
        objects: 1,
        windows: 40,
        positive_share: 0.6,
        rmse: 0.0,
        f1: 1.0,
        precision: 1.0,
        negative_predictive_value: 1.0,
        threshold: model.threshold,
    };
    (model, info)
}

#[test]
fn only_the_last_five_models_are_kept_and_versions_grow() {
    let dir = tempfile::tempdir().unwrap();
    let (model, mut info) = small_model();
    for expected in 1..=7 {
        let saved = store::save(dir.path(), &model, &mut info).unwrap();
        assert_eq!((saved.version, info.version), (expected, expected));
    }
    let kept: Vec<u64> = store::versions(dir.path())
        .unwrap()
        .into_iter()
        .map(|(version, _)| version)
        .collect();
    assert_eq!(kept, vec![3, 4, 5, 6, 7]);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 5, "no temporary file left: {names:?}");
    assert_eq!(
        store::load(&dir.path().join("model-000007.json"))
            .unwrap()
            .info
            .version,
        7
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_of_another_format_version_is_refused_naming_the_file() {
    // A model as `strata train` writes it, then marked as written by a future Strata.
    let scratch = tempfile::tempdir().unwrap();
    let (model, mut info) = small_model();
    let saved = store::save(scratch.path(), &model, &mut info).unwrap();
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&saved.path).unwrap()).unwrap();
    json["format_version"] = 99.into();

    let server = start_with_model_file(Some(json.to_string().into_bytes())).await;
    let file = store::models_dir(server.dir.path()).join("model-000003.json");
    falls_back_to_the_rules(&server, &file.display().to_string()).await;
    let health = server.json("/healthz").await;
    let fallback = health["forecast"]["model"]["fallback"].as_str().unwrap();
    assert!(fallback.contains("model format 99"), "{fallback}");

    // A model trained now replaces it and is used at once.
    let body = three_days(now_ms());
    server.post("/v1/access-events", body.as_bytes()).await;
    let trained = server.post("/v1/model/train", b"").await.json_value().await;
    assert_eq!(trained["version"], 4, "{trained}");
    let prediction = eventually(Duration::from_secs(10), "a prediction", || async {
        let response = server.get("/v1/predictions/a").await;
        (response.status() == 200).then_some(())
    })
    .await;
    let _: () = prediction;
}
