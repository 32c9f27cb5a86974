//! A real Prometheus for the tests, on 127.0.0.1: Debian's `prometheus` (installed by
//! `scripts/install-test-deps.sh`), started on a free port with its storage in a temporary
//! directory and a generated configuration that scrapes the given targets every second
//! (job `strata`) and loads the given rule files; ready when `/-/ready` answers, killed when
//! the test binary exits (see [`super::children`]). Queries go through its HTTP API
//! ([`Prometheus::query`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strata_store::testing::free_port;

use super::children;

/// A running Prometheus.
pub struct Prometheus {
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    pid: u32,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`HOST:PORT`, path `/metrics`) every second as
    /// job `strata`, with `rules` loaded; returns once it is ready.
    pub fn start(targets: &[String], rules: &[PathBuf]) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir for prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_text(targets, rules)).unwrap();
        let port = free_port();
        let mut cmd = Command::new(super::installed("prometheus", "prometheus"));
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let pid = children::spawn(cmd);
        let server = Prometheus {
            port,
            pid,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if server
                .get("/-/ready")
                .is_ok_and(|(status, _)| status == 200)
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready on 127.0.0.1:{port} within 60 s");
    }

    /// `GET path` (HTTP/1.0, so the answer is never chunked): status and body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        Ok((status, body.to_string()))
    }

    /// An instant query through `/api/v1/query`: the result vector (empty when the query
    /// matched nothing); panics when Prometheus refuses the query, with its error.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let (status, body) = self
            .get(&format!("/api/v1/query?query={}", url_encode(promql)))
            .expect("query prometheus");
        let answer: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("prometheus answered {status} not JSON ({e}): {body}"));
        assert_eq!(
            answer["status"], "success",
            "prometheus refused `{promql}`: {answer}"
        );
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `/api/v1/<what>` (e.g. `rules`, `targets`) as JSON.
    pub fn api(&self, what: &str) -> serde_json::Value {
        let (_, body) = self
            .get(&format!("/api/v1/{what}"))
            .expect("prometheus API");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        children::signal(self.pid, libc::SIGKILL);
        children::wait(self.pid);
    }
}

/// The configuration: one job, `strata`, over `targets`, scraped every second.
fn config_text(targets: &[String], rules: &[PathBuf]) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let rules: Vec<String> = rules
        .iter()
        .map(|r| format!("  - '{}'", r.display()))
        .collect();
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n{}\n\
         scrape_configs:\n  - job_name: strata\n    static_configs:\n      - targets: [{}]\n",
        if rules.is_empty() {
            "  []".to_string()
        } else {
            rules.join("\n")
        },
        targets.join(", ")
    )
}

/// Percent-encodes a query string value.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The repository's root (for `deploy/`).
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}
