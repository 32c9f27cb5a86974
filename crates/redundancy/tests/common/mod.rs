//! What the redundancy test suites share: domains in temporary directories, test data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use strata_redundancy::placement::placement;
use strata_redundancy::{Redundancy, RedundantStore};
use strata_store::{S3Options, Store, StoreUri};

/// One mebibyte.
pub const MIB: usize = 1 << 20;

pub fn r(text: &str) -> Redundancy {
    text.parse().unwrap()
}

pub fn data(len: usize, seed: u64) -> Bytes {
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    Bytes::from(v)
}

pub async fn open(path: &Path) -> Store {
    let uri = StoreUri::parse(path.to_str().unwrap()).unwrap();
    Store::open(&uri, &S3Options::default()).await.unwrap()
}

/// `n` domain directories under one temporary directory.
pub struct Tier {
    pub _dir: tempfile::TempDir,
    pub roots: Vec<PathBuf>,
    pub rs: RedundantStore,
}

impl Tier {
    pub async fn new(n: usize) -> Tier {
        Tier::with(n, |_, store| store).await
    }

    pub async fn with(n: usize, layer: impl Fn(usize, Store) -> Store) -> Tier {
        let dir = tempfile::tempdir().unwrap();
        let mut roots = Vec::new();
        let mut stores = Vec::new();
        for i in 0..n {
            let root = dir.path().join(format!("d{i}"));
            std::fs::create_dir_all(&root).unwrap();
            stores.push(layer(i, open(&root).await));
            roots.push(root);
        }
        Tier {
            _dir: dir,
            roots,
            rs: RedundantStore::new(stores),
        }
    }

    pub fn order(&self, rel: &str) -> Vec<usize> {
        placement(self.rs.domains(), rel)
    }
}
