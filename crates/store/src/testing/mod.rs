//! Test support shared by every crate's tests (feature `testing`): two real S3-compatible
//! servers on loopback, moto (accepts any credentials) and SeaweedFS ([`seaweedfs`], enforces
//! SigV4), Azure Blob and GCS emulators ([`emulators`]), OpenStack Swift ([`swift`]), and a
//! fault-injecting HTTP proxy to put in front of them ([`proxy`]).
//!
//! Moto is started once per test binary, on a free port, by a thread that lives as long as
//! the process; the server gets SIGKILL when the process exits (PR_SET_PDEATHSIG), so no
//! server outlives `cargo test`. If `moto_server` is missing, S3 tests fail and say how to
//! install it (`scripts/s3-server.sh install`).

pub mod emulators;
pub mod proxy;
pub mod seaweedfs;
pub mod swift;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// Credentials moto accepts (it accepts anything unless auth is turned on).
/// Access key id for tests.
pub const TEST_KEY_ID: &str = "testing-key-id";
/// Secret key for tests.
pub const TEST_SECRET: &str = "testing-secret-key-value";

/// A moto server on loopback.
pub struct Moto {
    /// The loopback port it listens on.
    pub port: u16,
}

impl Moto {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The shared moto server of this test binary (accepts any credentials).
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
    match MOTO.get_or_init(|| start_moto(&[])) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

/// A second moto with authentication on: unknown access keys get 403 InvalidAccessKeyId.
pub fn moto_with_auth() -> &'static Moto {
    static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
    match MOTO.get_or_init(|| start_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")])) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

fn find_moto() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STRATA_MOTO_SERVER") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/moto-venv/bin/moto_server");
        venv.is_file().then_some(venv)
    })
}

/// A port nothing listens on (bound then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn start_moto(env: &[(&'static str, &'static str)]) -> Result<Moto, String> {
    let Some(bin) = find_moto() else {
        return Err("moto_server is not installed, so the S3 tests cannot run; \
                    run `scripts/s3-server.sh install` (or `pip install 'moto[server]'`)"
            .into());
    };
    let port = free_port();
    let mut cmd = Command::new(&bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn_for_process_lifetime(cmd).map_err(|e| {
        format!(
            "cannot start moto_server ({e}); run `scripts/s3-server.sh install` \
             (or `pip install 'moto[server]'`)"
        )
    })?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http(port, "GET", "/").is_ok() {
            return Ok(Moto { port });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "moto_server did not answer on 127.0.0.1:{port} within 30 s"
    ))
}

/// Starts `cmd` (output discarded) as a server that lives as long as this process: the
/// child gets SIGKILL when the process exits (PR_SET_PDEATHSIG), so no server outlives
/// `cargo test`, and SIGKILL also stops servers that ignore SIGTERM (SeaweedFS). Returns
/// the child's pid.
pub fn spawn_for_process_lifetime(mut cmd: Command) -> Result<u32, String> {
    let (tx, rx) = mpsc::channel();
    // The spawning thread must outlive the tests: PR_SET_PDEATHSIG fires when the thread
    // that forked the child exits.
    std::thread::spawn(move || {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn();
        let _ = tx.send(child.map(|c| c.id()).map_err(|e| e.to_string()));
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .map_err(|e| format!("server launcher thread died: {e}"))?
}

/// A bare HTTP/1.1 request without a body; returns the status code.
pub fn http(port: u16, method: &str, path: &str) -> Result<u16, String> {
    http_with_body(port, method, path, b"")
}

/// A bare HTTP/1.1 request with `body` (unsigned); returns the status code.
pub fn http_with_body(port: u16, method: &str, path: &str, body: &[u8]) -> Result<u16, String> {
    http_exchange(port, "HTTP/1.1", method, path, &[], body).map(|(status, _)| status)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique within this process run.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Creates a fresh bucket on the shared moto and returns its name.
pub fn new_bucket() -> String {
    let moto = moto();
    let bucket = unique("strata-test");
    let status = http(moto.port, "PUT", &format!("/{bucket}")).expect("create bucket");
    assert_eq!(status, 200, "creating bucket {bucket} failed");
    bucket
}

/// One HTTP request on a fresh connection to `127.0.0.1:port` (`Connection: close`, so the
/// answer ends with the connection), for fixtures that talk to a server before any client
/// of the store exists. `version` is `HTTP/1.0` where a chunked answer must be avoided.
/// Returns the status code and the whole response, head and body, as text.
pub(crate) fn http_exchange(
    port: u16,
    version: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} {path} {version}\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {text}"))?;
    Ok((status, text))
}

/// Kills `pid`, a server this process started (SIGKILL, which servers ignoring SIGTERM
/// obey too), and waits up to 10 s until its `port` refuses connections.
pub(crate) fn kill_server(pid: u32, port: u16) {
    // SAFETY: kill(2) on a pid this process started; no memory is touched.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
