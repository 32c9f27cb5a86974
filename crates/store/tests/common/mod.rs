//! Test harness: stores of every kind, and two real S3 servers on loopback: moto, and
//! SeaweedFS (only for the suites that name it, `seaweedfs_behaviours!`); OpenStack Swift
//! likewise (`swift_behaviours!`).
//!
//! Each server is started once per test binary, on a free port, by a thread that lives as long as
//! the process; the server gets SIGKILL when the process exits (PR_SET_PDEATHSIG), so no
//! server outlives `cargo test`. If `moto_server` is missing, S3 tests fail and say how to
//! install it.

#![allow(dead_code)]

pub use strata_store::testing::emulators::{azurite, fake_gcs, AZURITE_ACCOUNT, AZURITE_KEY};
pub use strata_store::testing::*;
use strata_store::{AzblobOptions, S3Options, Store, StoreUri};

/// Moto's test keys, and Azurite's well-known account (fake-gcs-server needs none).
pub fn test_s3_options() -> S3Options {
    S3Options {
        access_key_id: Some(TEST_KEY_ID.into()),
        secret_access_key: Some(TEST_SECRET.into()),
        region: Some("us-east-1".into()),
        azblob: AzblobOptions {
            account: Some(AZURITE_ACCOUNT.into()),
            account_key: Some(AZURITE_KEY.into()),
            ..AzblobOptions::default()
        },
        ..S3Options::default()
    }
}

/// One `#[tokio::test]` per store kind for each behaviour: `behaviours!(a, b)` runs the
/// test file's `async fn a(Fixture)` and `b` on memory, local, S3 (moto), Azure Blob
/// (Azurite) and GCS (fake-gcs-server) stores. The file
/// must have `fixture` and `Kind` in scope (`use common::{fixture, Kind}`).
#[allow(unused_macros)]
macro_rules! behaviours {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::fixture(super::Kind::Memory).await).await }) *
        }
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::fixture(super::Kind::Local).await).await }) *
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::fixture(super::Kind::S3).await).await }) *
        }
        mod azblob {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::fixture(super::Kind::Azblob).await).await }) *
        }
        mod gcs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::fixture(super::Kind::Gcs).await).await }) *
        }
    };
}

/// The same as `behaviours!`, on S3 stores of a real SeaweedFS (a second S3 implementation
/// beside moto, one that enforces SigV4).
#[allow(unused_macros)]
macro_rules! seaweedfs_behaviours {
    ($($name:ident),* $(,)?) => {
        mod seaweedfs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::fixture(super::Kind::SeaweedFs).await).await }) *
        }
    };
}

/// The same as `behaviours!`, on Swift stores of a real one-node Swift cluster (proxy,
/// account, container and object servers from PyPI's `swift`).
#[allow(unused_macros)]
macro_rules! swift_behaviours {
    ($($name:ident),* $(,)?) => {
        mod swift {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::fixture(super::Kind::Swift).await).await }) *
        }
    };
}

/// The kinds of store every behaviour test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Local,
    /// S3 on moto.
    S3,
    Azblob,
    Gcs,
    /// S3 on SeaweedFS.
    SeaweedFs,
    /// OpenStack Swift, with v1 (tempauth) authentication.
    Swift,
}

/// A fresh, empty store of one kind (and what keeps it alive).
pub struct Fixture {
    pub kind: Kind,
    pub store: Store,
    pub dir: Option<tempfile::TempDir>,
}

pub async fn fixture(kind: Kind) -> Fixture {
    let mut options = test_s3_options();
    let (uri, dir) = match kind {
        Kind::Memory => (format!("memory://{}/some/prefix", unique("mem")), None),
        Kind::Local => {
            let dir = tempfile::tempdir().expect("temp dir");
            let root = dir.path().join("root");
            (root.display().to_string(), Some(dir))
        }
        Kind::S3 => {
            let bucket = new_bucket();
            (
                format!("s3://{bucket}/some/prefix?endpoint={}", moto().endpoint()),
                None,
            )
        }
        Kind::Azblob => {
            let azurite = azurite();
            let container = azurite.new_namespace();
            let endpoint = azurite.endpoint();
            (
                format!("azblob://{container}/some/prefix?endpoint={endpoint}"),
                None,
            )
        }
        Kind::Gcs => {
            let gcs = fake_gcs();
            let bucket = gcs.new_namespace();
            let endpoint = gcs.endpoint();
            (
                format!("gs://{bucket}/some/prefix?endpoint={endpoint}"),
                None,
            )
        }
        Kind::SeaweedFs => {
            let server = seaweedfs::seaweedfs();
            let bucket = server.new_bucket();
            (
                format!("s3://{bucket}/some/prefix?endpoint={}", server.endpoint()),
                None,
            )
        }
        Kind::Swift => {
            let server = swift::swift();
            options.swift = server.options();
            let container = server.new_container();
            (format!("swift://{container}/some/prefix"), None)
        }
    };
    let uri = StoreUri::parse(&uri).expect("test URI parses");
    let store = Store::open(&uri, &options).await.expect("open store");
    store.ensure_root().await.expect("create root");
    Fixture { kind, store, dir }
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
