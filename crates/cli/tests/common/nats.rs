//! A real NATS server with JetStream for the tests, on 127.0.0.1: Debian's `nats-server`
//! (installed by `scripts/install-test-deps.sh`), started with its storage in a temporary
//! directory on free ports, ready when `/healthz?js-enabled-only=true` answers, and killed
//! when the test binary exits (see [`super::children`]). [`shared`] is the one server of a
//! test binary; a test that stops and restarts its server starts its own ([`NatsServer::start`],
//! or [`NatsServer::start_on`] a port chosen beforehand), stopped when it is dropped. The
//! distributed-migration tests and the access-event stream tests share it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use strata_store::testing::{free_port, http};

use super::children;

/// A running (or stopped) NATS server.
pub struct NatsServer {
    /// Client port.
    pub port: u16,
    monitor: u16,
    store: PathBuf,
    jetstream: bool,
    pid: Mutex<Option<u32>>,
    _dir: Option<tempfile::TempDir>,
}

/// The server shared by the tests of this binary.
pub fn shared() -> &'static NatsServer {
    static SERVER: OnceLock<NatsServer> = OnceLock::new();
    SERVER.get_or_init(NatsServer::start)
}

fn binary() -> PathBuf {
    super::installed("nats-server", "nats-server")
}

impl NatsServer {
    /// Starts a server with JetStream on free ports, its storage in a new temporary
    /// directory; returns once it is ready.
    pub fn start() -> NatsServer {
        NatsServer::start_on(free_port())
    }

    /// [`NatsServer::start`] on `port`, chosen beforehand (a client told to use it before
    /// the server is there).
    pub fn start_on(port: u16) -> NatsServer {
        NatsServer::launched(port, true)
    }

    /// A server without JetStream (core NATS only), for the refusals of what needs it.
    pub fn start_without_jetstream() -> NatsServer {
        NatsServer::launched(free_port(), false)
    }

    fn launched(port: u16, jetstream: bool) -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir for nats");
        let server = NatsServer {
            port,
            monitor: free_port(),
            store: dir.path().to_path_buf(),
            jetstream,
            pid: Mutex::new(None),
            _dir: Some(dir),
        };
        server.launch();
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its storage directory.
    pub fn store(&self) -> &Path {
        &self.store
    }

    fn launch(&self) {
        let mut cmd = Command::new(binary());
        if self.jetstream {
            cmd.arg("-js");
        }
        cmd.args(["-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string()])
            .arg("-sd")
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let pid = children::spawn(cmd);
        *self.pid.lock().unwrap() = Some(pid);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let health = if self.jetstream {
                "/healthz?js-enabled-only=true"
            } else {
                "/healthz"
            };
            if http(self.monitor, "GET", health) == Ok(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nats-server did not become ready on 127.0.0.1:{} within 30 s",
            self.port
        );
    }

    /// Kills the server (SIGKILL) and waits until it has exited.
    pub fn stop(&self) {
        if let Some(pid) = self.pid.lock().unwrap().take() {
            children::signal(pid, libc::SIGKILL);
            children::wait(pid);
        }
    }

    /// Starts it again on the same ports with the same storage (streams and consumers
    /// survive, as on a real restart).
    pub fn restart(&self) {
        self.stop();
        self.launch();
    }
}

/// A server of a test's own stops with it (the shared one lives as long as the process).
impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
