//! A service started in-process on a temporary data directory, and small HTTP helpers.
#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata_heat::TieringConfig;
use strata_server::{Limits, RunningServer, ServeOptions};
use strata_store::{S3Options, Store, StoreUri};

/// Three local tiers with no minimum residency; classification by recency only (the
/// per-day counts are out of reach), so tests control classes with time; the periodic pass
/// effectively off (tests run it with `POST /v1/plan`).
pub const TEST_RULES: &str = r#"
default_tier = "warm"

[server]
listen = "127.0.0.1:0"

[[tier]]
name = "hot"
cost_per_gb_month = 0.2

[[tier]]
name = "warm"
cost_per_gb_month = 0.05

[[tier]]
name = "cold"
cost_per_gb_month = 0.01

[rules]
hot_per_day = 1000000
warm_per_day = 1000000
hot_within = "1h"
warm_within = "2h"
spike_factor = 8
spike_min_events = 20
demotion_interval = "1h"

[tracking]
flush_interval = "1s"
"#;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub server: Option<RunningServer>,
    pub base: String,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
}

pub fn config(dir: &Path, toml: &str) -> TieringConfig {
    let text = toml.replace(
        "[server]\n",
        &format!("[server]\ndata_dir = {:?}\n", dir.display().to_string()),
    );
    TieringConfig::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

pub async fn start_in(dir: tempfile::TempDir, toml: &str, limits: Limits) -> TestServer {
    start_with(dir, toml, limits, S3Options::default()).await
}

/// Like [`start_in`], with S3 settings for S3 tiers.
pub async fn start_with(
    dir: tempfile::TempDir,
    toml: &str,
    limits: Limits,
    s3: S3Options,
) -> TestServer {
    let mut options = ServeOptions::new(config(dir.path(), toml));
    options.limits = limits;
    options.s3 = s3;
    start_options(dir, options).await
}

/// A service on `dir` (which `options`' configuration names) started with `options`.
pub async fn start_options(dir: tempfile::TempDir, options: ServeOptions) -> TestServer {
    let server = strata_server::start(options).await.unwrap();
    let addr = server.addr;
    TestServer {
        dir,
        server: Some(server),
        base: format!("http://{addr}"),
        addr,
        client: reqwest::Client::new(),
    }
}

pub async fn start(toml: &str) -> TestServer {
    start_in(tempfile::tempdir().unwrap(), toml, Limits::default()).await
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn tier_dir(&self, tier: &str) -> PathBuf {
        self.dir.path().join("tiers").join(tier)
    }

    pub async fn put(&self, key: &str, body: &[u8]) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/v1/objects/{key}")))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json_value().await
    }

    pub async fn post(&self, path: &str, body: &[u8]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn object(&self, key: &str) -> Vec<u8> {
        let response = self.get(&format!("/v1/objects/{key}")).await;
        assert_eq!(response.status(), 200, "GET {key}");
        response.bytes().await.unwrap().to_vec()
    }

    pub async fn tier_of(&self, key: &str) -> String {
        let response = self
            .client
            .head(self.url(&format!("/v1/objects/{key}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "HEAD {key}");
        response.headers()["x-strata-tier"]
            .to_str()
            .unwrap()
            .to_string()
    }

    /// `n` read events for `key`, stamped now.
    pub async fn reads(&self, key: &str, n: usize) -> serde_json::Value {
        let body: String = (0..n)
            .map(|_| format!("{{\"key\":{key:?},\"op\":\"read\",\"bytes\":1}}\n"))
            .collect();
        let response = self.post("/v1/access-events", body.as_bytes()).await;
        assert_eq!(response.status(), 200);
        response.json_value().await
    }

    pub async fn stop(&mut self) -> tempfile::TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

pub trait JsonValue {
    fn json_value(self) -> impl Future<Output = serde_json::Value>;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A raw HTTP/1.1 request (for paths a URL library would normalise); returns the status
/// and the body.
pub fn raw(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// S3 settings for moto (which accepts any credentials).
pub fn moto_s3_options() -> S3Options {
    S3Options {
        access_key_id: Some(strata_store::testing::TEST_KEY_ID.into()),
        secret_access_key: Some(strata_store::testing::TEST_SECRET.into()),
        region: Some("us-east-1".into()),
        ..S3Options::default()
    }
}

/// The S3 tier store of `rules_with_s3_tier` opened directly on moto (bypassing the
/// service and any proxy), to look at or damage what the service wrote.
pub async fn direct_store(bucket: &str) -> Store {
    let endpoint = strata_store::testing::moto().endpoint();
    let uri = StoreUri::parse(&format!("s3://{bucket}/tier?endpoint={endpoint}")).unwrap();
    Store::open(&uri, &moto_s3_options()).await.unwrap()
}

/// Three tiers as in [`TEST_RULES`], tier `s3_tier` on S3 at `endpoint` (bucket
/// `bucket`, prefix `tier`), the others local.
pub fn rules_with_s3_tier(s3_tier: &str, bucket: &str, endpoint: &str) -> String {
    TEST_RULES.replace(
        &format!("name = \"{s3_tier}\"\n"),
        &format!("name = \"{s3_tier}\"\nstore = \"s3://{bucket}/tier?endpoint={endpoint}\"\n"),
    )
}

#[allow(unused_imports)] // each test binary uses its own subset
pub use strata_server::testing::{bytes, files_on};
