//! The real `strata serve` as a child process, and a small HTTP client, for the service's
//! end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use strata_store::testing::{moto, TEST_KEY_ID, TEST_SECRET};

mod small_disk;
#[allow(unused_imports)] // each test binary uses its own subset
pub use small_disk::SmallDisk;

/// A `strata.toml` for tests: hot and warm on local disk under the data dir, cold on S3
/// (`cold_store`), no residency, recency-only classes with short windows, a periodic pass
/// every `pass` and a flush every second.
pub fn config(
    data_dir: &Path,
    cold_store: &str,
    hot_within: &str,
    warm_within: &str,
    pass: &str,
) -> String {
    format!(
        r#"default_tier = "warm"

[server]
listen = "127.0.0.1:0"
data_dir = {data_dir:?}

[[tier]]
name = "hot"
cost_per_gb_month = 0.20

[[tier]]
name = "warm"
cost_per_gb_month = 0.05

[[tier]]
name = "cold"
store = {cold_store:?}
cost_per_gb_month = 0.004

[rules]
hot_per_day = 1000000000
warm_per_day = 1000000000
hot_within = {hot_within:?}
warm_within = {warm_within:?}
spike_factor = 8
spike_min_events = 20
demotion_interval = {pass:?}

[tracking]
flush_interval = "1s"
"#,
        data_dir = data_dir.display().to_string(),
    )
}

/// `config` with its cold tier packed with `codec`.
pub fn with_packed_cold(config: &str, codec: &str) -> String {
    config.replace(
        "name = \"cold\"\n",
        &format!("name = \"cold\"\nlayout = \"packed\"\ncodec = \"{codec}\"\n"),
    )
}

/// An S3 store URI on the shared moto server.
pub fn s3_store(bucket: &str) -> String {
    format!(
        "s3://{bucket}/tiers/cold?endpoint={}&region=us-east-1",
        moto().endpoint()
    )
}

/// A running `strata serve`.
pub struct Service {
    pub child: Child,
    /// Kept open: the service must not get SIGPIPE if it prints more.
    stdout: BufReader<std::process::ChildStdout>,
    pub url: String,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    /// The start-up line (`listening`, `tiers`, `recovery`, ...).
    pub started: serde_json::Value,
}

/// `strata` with S3 credentials for moto and nothing else leaking in.
pub fn strata() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.env("AWS_ACCESS_KEY_ID", TEST_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("STRATA_CONFIG")
        .env_remove("STRATA_SERVER")
        .env_remove("STRATA_TOKEN")
        .env_remove("STRATA_CA_CERT")
        .env_remove("STRATA_LOG");
    cmd
}

impl Service {
    /// Starts `strata serve --config CONFIG` and waits until it listens.
    pub fn start(config: &Path, data_dir: &Path, extra: &[&str]) -> Service {
        Service::start_with_env(config, data_dir, extra, &[])
    }

    /// [`Service::start`] with extra environment variables (`STRATA_FAULTS`, ...).
    pub fn start_with_env(
        config: &Path,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let mut child = strata()
            .envs(env.iter().copied())
            .args(["--json", "serve", "--config"])
            .arg(config)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strata serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if line.is_empty() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "strata serve did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let started: serde_json::Value = serde_json::from_str(&line).unwrap();
        Service {
            child,
            stdout,
            url: started["listening"]
                .as_str()
                .unwrap_or_else(|| panic!("strata serve did not start: {line}"))
                .to_string(),
            config: config.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            started,
        }
    }

    /// `strata ARGS --server URL`.
    pub fn run(&self, args: &[&str]) -> Output {
        strata()
            .args(args)
            .args(["--server", &self.url])
            .output()
            .unwrap()
    }

    /// `strata --json ARGS --server URL`, which must succeed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = strata()
            .arg("--json")
            .args(args)
            .args(["--server", &self.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "strata {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// SIGKILL: no shutdown, no final flush.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "strata serve exited with {status}");
    }

    /// What the service writes on standard error, up to the first line containing
    /// `needle` (read on a thread: panics after `timeout` without such a line), then SIGKILL.
    pub fn kill_after_logging(mut self, needle: &str, timeout: std::time::Duration) -> String {
        use std::io::BufRead;
        let stderr = self
            .child
            .stderr
            .take()
            .expect("the service's standard error");
        let (lines, seen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + timeout;
        let mut text = String::new();
        let found = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match seen.recv_timeout(left) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                    if line.contains(needle) {
                        break true;
                    }
                }
                Err(_) => break false,
            }
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        assert!(
            found,
            "no {needle:?} in the service's log within {timeout:?}: {text}"
        );
        text
    }

    /// SIGKILL, then everything the service wrote on standard error.
    pub fn kill_and_stderr(mut self) -> String {
        use std::io::Read;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }

    pub fn tier_dir(&self, tier: &str) -> PathBuf {
        self.data_dir.join("tiers").join(tier)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[allow(unused_imports)] // each test binary uses its own subset
pub use strata_server::testing::{bytes, files_on};

fn s3_tier_store(
    runtime: &tokio::runtime::Runtime,
    bucket: &str,
    prefix: &str,
) -> strata_store::Store {
    runtime.block_on(async {
        let uri = strata_store::StoreUri::parse(&format!(
            "s3://{bucket}/{prefix}?endpoint={}&region=us-east-1",
            moto().endpoint()
        ))
        .unwrap();
        let s3 = strata_store::S3Options {
            access_key_id: Some(TEST_KEY_ID.into()),
            secret_access_key: Some(TEST_SECRET.into()),
            ..strata_store::S3Options::default()
        };
        strata_store::Store::open(&uri, &s3).await.unwrap()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Keys of the objects under `objects/` in an S3 bucket prefix (moto), sorted.
pub fn s3_keys(bucket: &str, prefix: &str) -> Vec<String> {
    let runtime = runtime();
    let store = s3_tier_store(&runtime, bucket, prefix);
    runtime.block_on(async {
        let mut warn = |_| {};
        let mut keys: Vec<String> = store
            .list(&mut warn)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|entry| entry.path.strip_prefix("objects/").map(str::to_string))
            .collect();
        keys.sort();
        keys
    })
}

/// The stored bytes of object `key` in an S3 bucket prefix (moto).
pub fn s3_object(bucket: &str, prefix: &str, key: &str) -> Vec<u8> {
    let runtime = runtime();
    let store = s3_tier_store(&runtime, bucket, prefix);
    runtime
        .block_on(store.read_all(&format!("objects/{key}")))
        .unwrap()
        .to_vec()
}

/// An HTTP answer: status, lower-cased headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.1 request on a fresh connection.
pub fn http(base: &str, method: &str, path: &str, body: &[u8]) -> std::io::Result<Answer> {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, response[split + 4..].to_vec()))
}

/// GET `path` as JSON.
pub fn get_json(base: &str, path: &str) -> serde_json::Value {
    let (status, _, body) = http(base, "GET", path, b"").unwrap();
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

/// Jobs (done, unfinished) as the service reports them.
pub fn job_counts(base: &str) -> (usize, usize) {
    let jobs = get_json(base, "/v1/jobs?limit=10000");
    let jobs = jobs["jobs"].as_array().unwrap();
    let done = jobs.iter().filter(|j| j["state"] == "done").count();
    let active = jobs
        .iter()
        .filter(|j| {
            ["planned", "copying", "verifying", "switching", "retiring"]
                .contains(&j["state"].as_str().unwrap())
        })
        .count();
    (done, active)
}

/// With the service stopped: the catalog holds exactly `keys`, each with exactly one
/// placement, current; nothing copying, retiring or half-written; and the tiers hold
/// exactly the current copies (local hot and warm, S3 cold), no temporary files.
pub fn check_consistency(data_dir: &Path, bucket: &str, keys: &[String]) {
    use strata_catalog::{PlacementState, SqliteCatalog, TieringCatalog};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (placed, in_flight, intents, per_key) = runtime.block_on(async {
        let catalog = SqliteCatalog::open(&data_dir.join("catalog.db"))
            .await
            .unwrap();
        let placed = catalog.placed_objects().await.unwrap();
        let in_flight = catalog.placements_in_flight().await.unwrap();
        let intents = catalog.write_intents().await.unwrap();
        let mut per_key = Vec::new();
        for key in keys {
            per_key.push((key.clone(), catalog.placements(key).await.unwrap()));
        }
        catalog.close().await;
        (placed, in_flight, intents, per_key)
    });
    let mut held: Vec<String> = placed.iter().map(|p| p.object.key.clone()).collect();
    held.sort();
    let mut wanted = keys.to_vec();
    wanted.sort();
    assert_eq!(held, wanted, "objects lost or gained");
    for (key, placements) in per_key {
        assert_eq!(placements.len(), 1, "{key}: {placements:?}");
        assert_eq!(placements[0].state, PlacementState::Current, "{key}");
    }
    assert!(in_flight.is_empty(), "copies left in flight: {in_flight:?}");
    assert!(intents.is_empty(), "writes left half-done: {intents:?}");
    for tier in ["hot", "warm"] {
        let mut on_tier: Vec<String> = placed
            .iter()
            .filter(|p| p.tier == tier)
            .map(|p| p.object.key.clone())
            .collect();
        on_tier.sort();
        assert_eq!(
            files_on(&data_dir.join("tiers").join(tier)),
            on_tier,
            "files on {tier} do not match its current copies"
        );
    }
    let mut on_cold: Vec<String> = placed
        .iter()
        .filter(|p| p.tier == "cold")
        .map(|p| p.object.key.clone())
        .collect();
    on_cold.sort();
    assert_eq!(
        s3_keys(bucket, "tiers/cold"),
        on_cold,
        "S3 objects do not match the cold copies"
    );
}

/// Starts `strata serve --config CONFIG`, which must exit on its own (a configuration it
/// refuses) within `timeout`; its exit code and standard error.
pub fn refused_start(config: &Path, timeout: Duration) -> (Option<i32>, String) {
    let mut child = strata()
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("strata serve kept running on {}", config.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `strata.toml` of three local tiers (hot, warm, cold, all under `dir/data`) where new
/// objects land on hot, an object is hot for a second after a read and warm for an hour,
/// and warm objects belong on warm: the rules move a new object hot → warm once it cooled.
/// No periodic pass during a test. `extra` is appended. Returns (config, data dir).
pub fn cooling_config(dir: &Path, extra: &str) -> (PathBuf, PathBuf) {
    let data_dir = dir.join("data");
    let cold = data_dir.join("cold").display().to_string();
    let path = dir.join("strata.toml");
    let text = config(&data_dir, &cold, "1s", "1h", "1h")
        .replace("default_tier = \"warm\"", "default_tier = \"hot\"")
        + "\n[classes]\nhot = [\"hot\"]\nwarm = [\"warm\"]\ncold = [\"cold\"]\n"
        + extra;
    std::fs::write(&path, text).unwrap();
    (path, data_dir)
}

/// `strata --json ARGS --server URL`, which must succeed.
pub fn cli_json(url: &str, args: &[&str]) -> serde_json::Value {
    let out = strata()
        .arg("--json")
        .args(args)
        .args(["--server", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "strata {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// PUTs `data` as `key` on the service at `url`, then reports three reads of it (recorded
/// accesses): under [`cooling_config`] it is hot for a second, then warm.
pub fn put_and_access(url: &str, key: &str, data: &[u8]) {
    let (status, _, body) = http(url, "PUT", &format!("/v1/objects/{key}"), data).unwrap();
    assert!(
        (200..300).contains(&status),
        "PUT {key}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    cli_json(url, &["access", key, "--count", "3"]);
}

/// Waits (up to `timeout`) until the rules plan a move of `key`, then runs the plan.
pub fn run_planned_move(url: &str, key: &str, timeout: Duration) {
    eventually(timeout, "a planned move of the object", || {
        let result = cli_json(url, &["plan"]);
        let moves = result["plan"]["moves"].as_array()?;
        moves.iter().any(|m| m["key"] == key).then_some(())
    });
    let ran = cli_json(url, &["plan", "--run"]);
    assert!(
        ran["jobs"].as_array().is_some_and(|jobs| !jobs.is_empty()),
        "{ran}"
    );
}

/// The latest move job of `key` once it has ended (done, failed, ...).
pub fn ended_move(url: &str, key: &str, timeout: Duration) -> serde_json::Value {
    eventually(timeout, "the move job to end", || {
        let jobs = get_json(url, &format!("/v1/jobs?key={key}"));
        let job = jobs["jobs"].as_array()?.first()?.clone();
        ["done", "failed", "cancelled", "skipped"]
            .contains(&job["state"].as_str()?)
            .then_some(job)
    })
}
