//! The HTTP API on an in-process service: objects, validation, errors as JSON, tiers,
//! metrics, health, and the OpenAPI document against the router.

mod common;

use common::*;
use strata_server::{Limits, OPENAPI, ROUTES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_put_get_head_range_list_delete() {
    let mut server = start(TEST_RULES).await;
    let data = bytes(10_000, 1);

    let response = server.put("runs/7/t2m.nc", &data).await;
    assert_eq!(response.status(), 201);
    let created = response.json_value().await;
    assert_eq!(
        created["tier"], "warm",
        "new objects land on the default tier"
    );
    assert_eq!(created["generation"], 1);
    assert_eq!(created["hash"], blake3::hash(&data).to_hex().as_str());
    assert_eq!(created["size"], 10_000);

    // The bytes are a plain file on the tier.
    assert_eq!(
        std::fs::read(server.tier_dir("warm").join("objects/runs/7/t2m.nc")).unwrap(),
        data
    );

    let response = server.get("/v1/objects/runs/7/t2m.nc").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["x-strata-tier"], "warm");
    assert_eq!(headers["content-length"], "10000");
    assert_eq!(
        headers["etag"].to_str().unwrap(),
        format!("\"{}\"", blake3::hash(&data).to_hex())
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), &data[..]);

    let response = server
        .client
        .get(server.url("/v1/objects/runs/7/t2m.nc"))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()["content-range"], "bytes 100-199/10000");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &data[100..200]);

    let response = server
        .client
        .get(server.url("/v1/objects/runs/7/t2m.nc"))
        .header("range", "bytes=20000-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(
        response.json_value().await["error"]["code"],
        "range_not_satisfiable"
    );

    let head = server
        .client
        .head(server.url("/v1/objects/runs/7/t2m.nc"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "10000");

    // Replace: same tier, next generation.
    let data2 = bytes(5_000, 2);
    let response = server.put("runs/7/t2m.nc", &data2).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json_value().await["generation"], 2);
    assert_eq!(server.object("runs/7/t2m.nc").await, data2);

    for key in ["runs/7/u10.nc", "runs/8/t2m.nc", "other"] {
        assert_eq!(server.put(key, b"x").await.status(), 201);
    }
    let listing = server.json("/v1/objects?prefix=runs/7/").await;
    let keys: Vec<&str> = listing["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["runs/7/t2m.nc", "runs/7/u10.nc"]);
    let page = server.json("/v1/objects?limit=2").await;
    assert_eq!(page["truncated"], true);
    let next = page["next_start_after"].as_str().unwrap().to_string();
    let rest = server
        .json(&format!("/v1/objects?limit=10&start_after={next}"))
        .await;
    assert_eq!(rest["objects"].as_array().unwrap().len(), 2);

    let response = server
        .client
        .delete(server.url("/v1/objects/runs/7/t2m.nc"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(!server
        .tier_dir("warm")
        .join("objects/runs/7/t2m.nc")
        .exists());
    let response = server.get("/v1/objects/runs/7/t2m.nc").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json_value().await["error"]["code"], "not_found");

    // A new object under a deleted key starts over.
    let response = server.put("runs/7/t2m.nc", b"again").await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.json_value().await["generation"], 1);

    // Everything survives a restart.
    let dir = server.stop().await;
    let server = start_in(dir, TEST_RULES, Limits::default()).await;
    assert_eq!(server.object("runs/7/t2m.nc").await, b"again");
    assert_eq!(server.object("other").await, b"x");
    assert_eq!(
        server.json("/v1/objects").await["objects"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_bodies_and_routes_are_validated_with_json_errors() {
    let server = start_in(
        tempfile::tempdir().unwrap(),
        TEST_RULES,
        Limits {
            max_object_size: 1000,
            max_batch_bytes: 500,
        },
    )
    .await;
    for path in [
        "/v1/objects/a/../b",
        "/v1/objects/a/./b",
        "/v1/objects/a//b",
        "/v1/objects/a%00b",
    ] {
        let (status, body) = raw(server.addr, "PUT", path);
        assert_eq!(status, 400, "{path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"]["code"], "invalid_key", "{path}");
        assert!(json["error"]["message"].as_str().unwrap().contains("key"));
    }
    let long = "k".repeat(5000);
    let response = server.put(&long, b"x").await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json_value().await["error"]["code"], "invalid_key");

    let response = server.put("big", &vec![0u8; 1001]).await;
    assert_eq!(response.status(), 413);
    let json = response.json_value().await;
    assert_eq!(json["error"]["code"], "payload_too_large");
    assert!(server.get("/v1/objects/big").await.status() == 404);

    let response = server.post("/v1/access-events", &vec![b' '; 501]).await;
    assert_eq!(response.status(), 413);

    let response = server
        .client
        .put(server.url("/v1/objects/checked"))
        .header("x-strata-hash", "00".repeat(32))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json_value().await["error"]["code"],
        "hash_mismatch"
    );

    assert_eq!(server.put("folder/file", b"x").await.status(), 201);
    for clash in ["folder", "folder/file/deeper"] {
        let response = server.put(clash, b"y").await;
        assert_eq!(response.status(), 409, "{clash}");
        assert_eq!(response.json_value().await["error"]["code"], "key_conflict");
    }

    let response = server.get("/v1/nothing").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json_value().await["error"]["code"], "no_route");
    let response = server.post("/v1/tiers", b"").await;
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.json_value().await["error"]["code"],
        "method_not_allowed"
    );
    let response = server.get("/v1/jobs/notanumber").await;
    assert_eq!(response.status(), 400);
    let response = server.get("/v1/jobs?state=bogus").await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json_value().await["error"]["code"],
        "invalid_state"
    );

    // An access batch with no valid line is refused, with each line's reason.
    let response = server
        .post(
            "/v1/access-events",
            b"not json\n{\"key\":\"../x\",\"op\":\"read\"}\n",
        )
        .await;
    assert_eq!(response.status(), 400);
    let json = response.json_value().await;
    assert_eq!(json["error"]["code"], "invalid_events");
    assert_eq!(json["rejected"], 2);
    assert_eq!(json["errors"][1]["line"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_served_and_documented() {
    let server = start(TEST_RULES).await;
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (_, documented, methods) in ROUTES {
        let entry = paths
            .get(*documented)
            .unwrap_or_else(|| panic!("{documented} is not in the OpenAPI document"));
        for method in *methods {
            assert!(
                entry.get(*method).is_some(),
                "{method} {documented} is not documented"
            );
        }
        let documented_methods = entry
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| *m != "parameters")
            .count();
        assert_eq!(
            documented_methods,
            methods.len(),
            "{documented} documents methods the router does not serve"
        );
    }
    assert_eq!(
        paths.len(),
        ROUTES.len(),
        "documented paths not in the router"
    );
    // Every $ref resolves.
    let text = OPENAPI;
    for reference in text.split("\"$ref\": \"#/").skip(1) {
        let target = reference.split('"').next().unwrap();
        let mut node = &doc;
        for part in target.split('/') {
            node = node
                .get(part)
                .unwrap_or_else(|| panic!("dangling $ref #/{target}"));
        }
    }
    // The document is served, and every route answers (not the router's fallbacks).
    assert_eq!(server.json("/openapi.json").await, doc);
    server.put("some/key", b"x").await;
    for (path, _, methods) in ROUTES {
        let concrete = path.replace("{*key}", "some/key").replace("{id}", "999999");
        for method in *methods {
            let request = server.client.request(
                method.to_uppercase().parse().unwrap(),
                server.url(&concrete),
            );
            let response = if *path == "/v1/events" {
                // A stream: its headers are enough.
                request.send().await.unwrap()
            } else {
                request.body("").send().await.unwrap()
            };
            let status = response.status();
            assert!(
                status != 405,
                "{method} {concrete} answered 405: the router does not match ROUTES"
            );
            if status == 404 && *method != "head" {
                let json = response.json_value().await;
                assert_ne!(json["error"]["code"], "no_route", "{method} {concrete}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_tiers_and_metrics() {
    let server = start(TEST_RULES).await;
    let health = server.json("/healthz").await;
    assert_eq!(health["status"], "ok");
    server.put("a", &bytes(2_000_000_000 / 1000, 3)).await;
    let reply = server.get("/v1/objects/a").await;
    assert_eq!(reply.status(), 200);
    reply.bytes().await.unwrap();

    let tiers = server.json("/v1/tiers").await;
    let list = tiers["tiers"].as_array().unwrap();
    assert_eq!(
        list.iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["hot", "warm", "cold"]
    );
    let warm = &list[1];
    assert_eq!(warm["used_bytes"], 2_000_000);
    assert_eq!(warm["objects"], 1);
    assert_eq!(warm["default"], true);
    assert_eq!(warm["classes"], serde_json::json!(["warm"]));
    let cost = warm["monthly_cost"].as_f64().unwrap();
    assert!((cost - 0.002 * 0.05).abs() < 1e-12, "{cost}");

    let text = server.get("/metrics").await.text().await.unwrap();
    for needle in [
        "strata_object_reads_total 1",
        "strata_object_writes_total 1",
        "strata_tier_used_bytes{tier=\"warm\"} 2000000",
        "strata_objects 1",
        "strata_object_get_seconds_count 1",
        "strata_http_requests_total{method=\"PUT\",route=\"/v1/objects/{*key}\",status=\"201\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_stream_in_chunks() {
    let server = start(TEST_RULES).await;
    let data = bytes(9 << 20, 9);
    assert_eq!(server.put("big/one", &data).await.status(), 201);
    assert_eq!(server.object("big/one").await, data);
    let response = server
        .client
        .get(server.url("/v1/objects/big/one"))
        .header("range", format!("bytes={}-", (4 << 20) - 10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        &data[(4 << 20) - 10..]
    );
}

#[test]
fn the_shipped_example_config_is_servable() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/strata.example.toml"));
    let config = strata_heat::TieringConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
    strata_server::check_servable(&config).unwrap();
    assert_eq!(config.tiers.len(), 3);
    assert!(config.tiers[0].store.starts_with("/srv/"));
    assert!(config.tiers[2].store.starts_with("s3://"));
    assert_eq!(config.default_tier, "disk");
    assert_eq!(config.tiers[2].layout, strata_heat::Layout::Packed);
    assert_eq!(config.tiers[2].codec, "zstd:19");
    // Its moves run under a bandwidth timetable.
    let bandwidth = config.bandwidth.as_ref().expect("a [bandwidth] section");
    assert!(bandwidth.limit.is_some() && bandwidth.congestion_control);
    assert_eq!(bandwidth.priority, strata_throttle::Priority::Background);
    // The heat crate's example packs two tiers; it is servable too.
    let packed = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../heat/strata.example.toml"
    ));
    let mut config = strata_heat::TieringConfig::load(packed).unwrap();
    strata_server::check_servable(&config).unwrap();
    // What still cannot work is refused by name: a codec the codec crate does not know.
    config.tiers[1].codec = "zstd:99".to_string();
    let err = strata_server::check_servable(&config)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tier[1].codec") && err.contains("zstd"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_its_model_status_and_trends() {
    let server = start(TEST_RULES).await;
    // The page and its scripts, with a policy that allows this origin only.
    let page = server.get("/ui").await;
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(page.text().await.unwrap().contains("/ui/app.js"));
    let script = server.get("/ui/app.js").await;
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let missing = server.get("/ui/nope.js").await;
    assert_eq!(missing.status(), 404);
    let body = missing.json_value().await;
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nope.js"));

    // No model yet: the status says why decisions use the rules.
    let model = server.json("/v1/model").await;
    assert_eq!(
        model["model"]["version"],
        serde_json::Value::Null,
        "{model}"
    );
    assert!(
        model["model"]["fallback"]
            .as_str()
            .unwrap()
            .contains("strata train"),
        "{model}"
    );
    assert_eq!(model["training"], false);

    // Trends end with a sample taken at the request: the object's bytes and cost.
    server.put("a", &bytes(1_000_000, 5)).await;
    let trends = server.json("/v1/trends").await;
    assert_eq!(
        trends["tiers"],
        serde_json::json!(["hot", "warm", "cold"]),
        "{trends}"
    );
    let samples = trends["samples"].as_array().unwrap();
    let now = samples.last().unwrap();
    assert_eq!(now["tier_bytes"], serde_json::json!([0, 1_000_000, 0]));
    let cost = now["monthly_cost"].as_f64().unwrap();
    assert!((cost - 0.001 * 0.05).abs() < 1e-12, "{cost}");
    assert_eq!(now["moved_bytes"], 0);

    // The tiers pane's redundancy column.
    let tiers = server.json("/v1/tiers").await;
    let warm = &tiers["tiers"][1];
    assert_eq!(warm["redundancy"], "none", "{tiers}");
    assert_eq!(warm["domains"], 1, "{tiers}");

    // explain carries the hourly history the object's access chart draws.
    server.get("/v1/objects/a").await.bytes().await.unwrap();
    let explained = server.json("/v1/explain/a").await;
    let history = explained["history"].as_array().unwrap();
    let reads: u64 = history.iter().map(|h| h["reads"].as_u64().unwrap()).sum();
    assert_eq!(reads, 1, "{explained}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_count_every_object_by_class_as_the_listing_classifies_it() {
    let server = start(TEST_RULES).await;
    for key in ["c1", "c2", "c3"] {
        server.put(key, &bytes(1_000, 1)).await;
    }
    server.get("/v1/objects/c1").await.bytes().await.unwrap();
    let listing = server.json("/v1/objects?heat=true").await;
    let mut expected = serde_json::json!({ "hot": 0, "warm": 0, "cold": 0 });
    for object in listing["objects"].as_array().unwrap() {
        let class = object["class"].as_str().unwrap();
        expected[class] = (expected[class].as_u64().unwrap() + 1).into();
    }
    let tiers = server.json("/v1/tiers").await;
    assert_eq!(tiers["objects_by_class"], expected, "{listing}");
    let counted: u64 = ["hot", "warm", "cold"]
        .iter()
        .map(|class| tiers["objects_by_class"][class].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 3, "{tiers}");
}
