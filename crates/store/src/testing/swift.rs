//! OpenStack Swift on loopback, for tests: the proxy, account, container and object
//! servers of PyPI's `swift` (with memcached for its tempauth tokens), configured and
//! started by `scripts/swift-server.sh run` (rings of one replica on one device, data in a
//! temporary directory, tempauth user `test:tester`), installed by
//! `scripts/install-test-deps.sh`.
//!
//! Like the other servers, the shared one is started once per test binary on a free port
//! by a thread that lives as long as the process; the script gets SIGKILL when the process
//! exits (PR_SET_PDEATHSIG) and its servers die with it (each runs under
//! `setpriv --pdeathsig KILL`). [`SwiftServer::dedicated`] starts a private one a test may
//! kill.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{free_port, unique};
use crate::SwiftOptions;

/// The tempauth user the script configures (account `AUTH_test`).
pub const SWIFT_USER: &str = "test:tester";
/// That user's key.
pub const SWIFT_KEY: &str = "testing";

/// How long a Swift cluster may take to come up (four Python servers on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running one-node Swift cluster on loopback.
#[derive(Debug)]
pub struct SwiftServer {
    /// The proxy's loopback port.
    pub port: u16,
    /// The pid of the script that runs the servers (killing it kills them).
    pub pid: u32,
    /// The servers' configuration and data (kept as long as they run).
    _dir: tempfile::TempDir,
}

impl SwiftServer {
    /// `http://127.0.0.1:PORT/auth/v1.0` (`ST_AUTH`).
    pub fn auth_url(&self) -> String {
        format!("http://127.0.0.1:{}/auth/v1.0", self.port)
    }

    /// `http://127.0.0.1:PORT/v1/AUTH_test` (`OS_STORAGE_URL`).
    pub fn storage_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/AUTH_test", self.port)
    }

    /// v1 authentication options for this server.
    pub fn options(&self) -> SwiftOptions {
        SwiftOptions {
            auth_url: Some(self.auth_url()),
            user: Some(SWIFT_USER.into()),
            key: Some(SWIFT_KEY.into()),
            ..SwiftOptions::default()
        }
    }

    /// The environment variables `strata` reads for this server (ST_AUTH, ST_USER, ST_KEY).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ST_AUTH", self.auth_url()),
            ("ST_USER", SWIFT_USER.into()),
            ("ST_KEY", SWIFT_KEY.into()),
        ]
    }

    /// A fresh token of the test user.
    pub fn token(&self) -> Result<String, String> {
        let headers = [("X-Auth-User", SWIFT_USER), ("X-Auth-Key", SWIFT_KEY)];
        let (status, head) = request(self.port, "GET", "/auth/v1.0", &headers)?;
        if status != 200 {
            return Err(format!("v1 authentication answered HTTP {status}"));
        }
        let head = head.split("\r\n\r\n").next().unwrap_or_default();
        head.lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("x-auth-token")
                    .then(|| value.trim().to_string())
            })
            .ok_or_else(|| "v1 authentication answered no X-Auth-Token".to_string())
    }

    /// Creates a fresh, empty container and returns its name.
    pub fn new_container(&self) -> String {
        let name = unique("strata-test");
        self.create_container(&name)
            .unwrap_or_else(|e| panic!("creating Swift container {name}: {e}"));
        name
    }

    /// Every object name in `container` (segments of large objects included), as Swift
    /// lists them.
    pub fn object_names(&self, container: &str) -> Vec<String> {
        let token = self.token().expect("token");
        let path = format!("/v1/AUTH_test/{container}");
        let (status, text) = request(self.port, "GET", &path, &[("X-Auth-Token", &token)])
            .unwrap_or_else(|e| panic!("listing {container}: {e}"));
        assert!(
            status == 200 || status == 204,
            "listing {container}: HTTP {status}"
        );
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        body.lines().map(str::to_string).collect()
    }

    fn create_container(&self, name: &str) -> Result<(), String> {
        let token = self.token()?;
        let path = format!("/v1/AUTH_test/{name}");
        let (status, _) = request(self.port, "PUT", &path, &[("X-Auth-Token", &token)])?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }

    /// A fresh cluster for this test alone (to kill it, say).
    pub fn dedicated() -> SwiftServer {
        start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Kills the cluster (SIGKILL) and waits until its proxy refuses connections.
    pub fn kill(&self) {
        super::kill_server(self.pid, self.port);
    }
}

/// A dedicated cluster dies with its handle (the shared one, in a static, with the process).
impl Drop for SwiftServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The shared Swift cluster of this test binary.
pub fn swift() -> &'static SwiftServer {
    static SWIFT: OnceLock<Result<SwiftServer, String>> = OnceLock::new();
    let started = SWIFT.get_or_init(|| {
        let server = start()?;
        super::emulators::remove_at_exit(server._dir.path().to_path_buf());
        Ok(server)
    });
    match started {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn start() -> Result<SwiftServer, String> {
    let venv = std::env::var_os("STRATA_SWIFT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/swift-venv"));
    if !venv.join("bin/swift-proxy-server").is_file() {
        return Err(format!(
            "Swift is not installed in {}, so the Swift tests cannot run; run \
             scripts/install-test-deps.sh (or scripts/swift-server.sh install)",
            venv.display()
        ));
    }
    // Under the system's temp dir: the object server keeps metadata in user xattrs, which
    // ext4, xfs and recent tmpfs all support.
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir for Swift: {e}"))?;
    let port = free_port();
    let mut cmd = Command::new("bash");
    cmd.arg(repo_path("scripts/swift-server.sh"))
        .arg("run")
        .arg(dir.path())
        .arg(port.to_string())
        .env("STRATA_SWIFT_VENV", &venv);
    let pid = super::spawn_for_process_lifetime(cmd)
        .map_err(|e| format!("cannot start scripts/swift-server.sh: {e}"))?;
    let server = SwiftServer {
        port,
        pid,
        _dir: dir,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        // Ready when a container can be made: proxy, auth, memcached and the account and
        // container servers all answer.
        match server.create_container("strata-ready") {
            Ok(()) => return Ok(server),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let logs = server._dir.path().display().to_string();
    Err(format!(
        "Swift did not come up on 127.0.0.1:{port} within {} s (last: {last}); see the \
         logs in {logs}",
        START_TIMEOUT.as_secs()
    ))
}

/// A bodiless HTTP/1.0 request (so no chunked answer to decode); returns the status code
/// and the whole response, head and body.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    super::http_exchange(port, "HTTP/1.0", method, path, headers, &[])
}
