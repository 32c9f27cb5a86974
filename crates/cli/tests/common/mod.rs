//! Helpers shared by the end-to-end tests: they run the real `strata` binary.
#![allow(dead_code)]

pub mod children;
pub mod nats;
pub mod prometheus;
pub mod slurm;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::{Rng, RngCore, SeedableRng};

/// A scratch area with its own catalog, so tests never share state.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    /// A catalog other than the sandbox's SQLite file (a `postgres://` URL).
    catalog_spec: Option<String>,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            catalog_spec: None,
        }
    }

    /// A sandbox whose commands use the catalog `spec` (e.g. a PostgreSQL database of
    /// `strata_testsupport::postgres`) instead of its own SQLite file.
    pub fn with_catalog(spec: String) -> Self {
        Self {
            catalog_spec: Some(spec),
            ..Self::new()
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn catalog(&self) -> PathBuf {
        self.path("catalog.db")
    }

    /// `strata` with this sandbox's catalog and no S3 environment leaking in. Tests write
    /// their sources just before migrating them, so `--settle` (which would defer every
    /// such file for 2 s) is off unless a test turns it on (`migrate_changing.rs`); the
    /// check that a source did not change during its copy stays on.
    pub fn strata(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        match &self.catalog_spec {
            Some(spec) => cmd.env("STRATA_CATALOG", spec),
            None => cmd.env("STRATA_CATALOG", self.catalog()),
        };
        cmd.env("STRATA_SETTLE", "0")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("STRATA_LOG");
        for cloud in [
            "AZURE_STORAGE_ACCOUNT",
            "AZURE_STORAGE_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
            "AZURE_STORAGE_CONNECTION_STRING",
            "STRATA_AZBLOB_ENDPOINT",
            "STORAGE_EMULATOR_HOST",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "GOOGLE_OAUTH_ACCESS_TOKEN",
        ] {
            cmd.env_remove(cloud);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.strata().args(args).output().expect("run strata")
    }

    /// Run `strata ARGS` against the test S3 server (moto on loopback) with its keys.
    pub fn run_s3(&self, args: &[&str]) -> Output {
        use strata_store::testing::{moto, TEST_KEY_ID, TEST_SECRET};
        self.strata()
            .args(args)
            .args(["--s3-endpoint", &moto().endpoint()])
            .env("AWS_ACCESS_KEY_ID", TEST_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
            .output()
            .expect("run strata")
    }
}

/// Copy the directory tree `from` to `to` (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            stdout(out),
            stderr(out)
        )
    })
}

/// Write `len` pseudo-random bytes.
pub fn random_file(path: &Path, len: usize, seed: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    fs::write(path, data).unwrap();
}

/// A tree with nested folders, an empty file, sizes around the 64 KiB chunk boundary,
/// multi-chunk files and many small files.
pub fn sample_tree(root: &Path) -> Vec<(String, usize)> {
    let mut files = vec![
        ("empty".to_string(), 0usize),
        ("one-byte".into(), 1),
        ("a/b/c/deep.bin".into(), 5000),
        ("edge/below".into(), 65535),
        ("edge/exact".into(), 65536),
        ("edge/above".into(), 65537),
        ("big/three-chunks-and-a-bit".into(), 3 * 65536 + 17),
        ("big/many".into(), 1_000_000),
        ("name with spaces.txt".into(), 300),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..40 {
        files.push((format!("small/f{i:03}"), rng.random_range(1..9000)));
    }
    for (i, (path, len)) in files.iter().enumerate() {
        random_file(&root.join(path), *len, i as u64);
    }
    files
}

/// Assert every file of `files` is byte-identical under both roots.
pub fn assert_same_files(src: &Path, dst: &Path, files: &[(String, usize)]) {
    for (path, _) in files {
        let a = fs::read(src.join(path)).unwrap();
        let b = fs::read(dst.join(path))
            .unwrap_or_else(|e| panic!("{path} missing at destination: {e}"));
        assert!(a == b, "{path} differs");
    }
}

/// What the reference `b3sum` prints for a file.
pub fn b3sum(path: &Path) -> String {
    let out = Command::new("b3sum")
        .arg("--no-names")
        .arg(path)
        .output()
        .expect("b3sum is required by the tests: run scripts/install-test-deps.sh");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// All regular files under `root`, relative, sorted, excluding `.strata`.
pub fn list_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".strata" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}

/// Where a system program the tests need is (`/usr/sbin`, `/usr/bin`, `/sbin`, `/bin`, then
/// the `PATH`); fails the test naming the Debian `package` to install when it is missing.
pub fn installed(program: &str, package: &str) -> PathBuf {
    let system = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(program));
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(program));
    system
        .chain(on_path)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is not installed: run scripts/install-test-deps.sh ({package})")
        })
}
