//! Configurations that would lose or mix objects are refused at start-up, before anything
//! is written; the shipped examples are safe to run as they are.

mod common;

use std::path::Path;

use common::*;
use strata_server::{Limits, ServeError, ServeOptions};

/// Two tiers, `first` and `second`, on the given stores, the data dir at `data_dir`.
fn two_tiers(data_dir: &Path, first: &str, second: &str) -> strata_heat::TieringConfig {
    let text = format!(
        "default_tier = \"first\"\n[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\
         [[tier]]\nname = \"first\"\nstore = {first:?}\n\
         [[tier]]\nname = \"second\"\nstore = {second:?}\n",
        data_dir.display().to_string()
    );
    strata_heat::TieringConfig::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts the service and expects a refusal; returns its message.
async fn refused(options: ServeOptions) -> String {
    match strata_server::start(options).await {
        Ok(server) => {
            server.shutdown().await;
            panic!("the service started")
        }
        Err(err @ ServeError::Config { .. }) => err.to_string(),
        Err(other) => panic!("refused for another reason: {other}"),
    }
}

#[tokio::test]
async fn overlapping_tier_stores_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().display().to_string();
    let data = root.path().join("data");
    let shared = format!("{base}/shared");
    // (first store, second store, the two locations the message must name)
    let cases = [
        (
            shared.clone(),
            format!("file://{shared}/"),
            [&shared, &shared],
        ),
        (
            shared.clone(),
            format!("{shared}/./x/.."),
            [&shared, &shared],
        ),
        (
            shared.clone(),
            format!("{shared}/objects"),
            [&shared, &shared],
        ),
        (
            format!("{shared}/inner"),
            shared.clone(),
            [&shared, &shared],
        ),
        (
            "s3://bucket-a/tiers?endpoint=http://127.0.0.1:9".into(),
            "s3://bucket-a/tiers/cold?endpoint=http://127.0.0.1:9".into(),
            [&"tiers".to_string(), &"tiers/cold".to_string()],
        ),
        (
            "memory://m".into(),
            "memory://m/sub".into(),
            [&"m".into(), &"m/sub".into()],
        ),
    ];
    for (first, second, named) in cases {
        let options = ServeOptions::new(two_tiers(&data, &first, &second));
        let message = refused(options).await;
        for part in [
            "tier[1].store",
            "\"first\"",
            "\"second\"",
            named[0],
            named[1],
        ] {
            assert!(message.contains(part), "{first} / {second}: {message}");
        }
        assert!(
            !data.exists(),
            "{first} / {second}: the data dir was created"
        );
        assert!(
            !Path::new(&shared).exists(),
            "{first} / {second}: a store was created"
        );
    }
}

#[tokio::test]
async fn a_tier_store_that_is_or_contains_the_data_dir_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let data_text = data.display().to_string();
    let parent = root.path().display().to_string();
    let other = format!("{parent}/other");
    for store in [data_text.clone(), format!("{data_text}/"), parent.clone()] {
        let options = ServeOptions::new(two_tiers(&data, &store, &other));
        let message = refused(options).await;
        for part in ["tier[0].store", "\"first\"", "the data dir", &data_text] {
            assert!(message.contains(part), "{store}: {message}");
        }
        assert!(!data.exists(), "{store}: the data dir was created");
        assert!(!Path::new(&other).exists(), "{store}: a store was created");
    }
}

#[tokio::test]
async fn a_catalog_inside_a_tier_store_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let tier = root.path().join("tier");
    let catalog = tier.join("objects/catalog.db");
    let mut options = ServeOptions::new(two_tiers(
        &data,
        &tier.display().to_string(),
        &data.join("tiers/second").display().to_string(),
    ));
    options.catalog_path = Some(catalog.clone());
    let message = refused(options).await;
    for part in [
        "tier[0].store",
        "the catalog",
        &catalog.display().to_string(),
        &tier.display().to_string(),
    ] {
        assert!(message.contains(part), "{message}");
    }
    assert!(!tier.exists() && !data.exists(), "something was created");
}

#[tokio::test]
async fn tier_stores_under_the_data_dir_that_overlap_nothing_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let config = two_tiers(
        &data,
        &data.join("tiers/first").display().to_string(),
        &data.join("second").display().to_string(),
    );
    let server = strata_server::start(ServeOptions::new(config))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    server.shutdown().await;
    // And the three default tiers under the data dir.
    let mut server = start_in(dir, TEST_RULES, Limits::default()).await;
    assert_eq!(server.put("k", b"v").await.status(), 201);
    server.stop().await;
}

#[test]
fn the_shipped_example_configs_listen_on_loopback_only() {
    for example in ["/strata.example.toml", "/../heat/strata.example.toml"] {
        let path = format!("{}{example}", env!("CARGO_MANIFEST_DIR"));
        let config =
            strata_heat::TieringConfig::load(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
        let addr: std::net::SocketAddr = config
            .server
            .listen
            .parse()
            .unwrap_or_else(|e| panic!("{path}: {}: {e}", config.server.listen));
        assert!(
            addr.ip().is_loopback(),
            "{path} listens on {addr}: the service has no authentication yet"
        );
    }
}
