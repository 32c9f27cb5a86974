//! The group commit of object writes, against the real service on a local tier: many
//! concurrent PUTs made durable together are each readable with their own bytes and
//! recorded in the catalog (they survive a restart, which rebuilds the index from it);
//! a flush that fails fails every PUT of its group with an error naming the key, and
//! leaves nothing of them visible (old versions stay, new keys stay absent).

mod common;

use common::*;
use strata_server::{Limits, ServeOptions};
use strata_store::faults::FaultPlan;

/// 64 KiB of content proper to `key` and `version`.
fn content(key: &str, version: u8) -> Vec<u8> {
    let seed = blake3::hash(format!("{key}/{version}").as_bytes());
    let mut out = Vec::with_capacity(64 << 10);
    let mut reader = blake3::Hasher::new_keyed(seed.as_bytes()).finalize_xof();
    out.resize(64 << 10, 0);
    reader.fill(&mut out);
    out
}

/// PUTs every `(key, body)` at once; their answers' statuses and bodies, in order.
async fn put_all(server: &TestServer, writes: &[(String, Vec<u8>)]) -> Vec<(u16, String)> {
    let puts = writes.iter().map(|(key, body)| async move {
        let reply = server.put(key, body).await;
        let status = reply.status().as_u16();
        (status, reply.text().await.unwrap())
    });
    futures::future::join_all(puts).await
}

/// Every key's GET: its status and bytes.
async fn get_all(server: &TestServer, keys: &[String]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    for key in keys {
        let reply = server.get(&format!("/v1/objects/{key}")).await;
        let status = reply.status().as_u16();
        out.push((status, reply.bytes().await.unwrap().to_vec()));
    }
    out
}

/// A service on `dir` with `faults` on its tier stores.
async fn start_faulted(dir: tempfile::TempDir, faults: &str) -> TestServer {
    let mut options = ServeOptions::new(config(dir.path(), TEST_RULES));
    options.limits = Limits::default();
    options.faults = Some(FaultPlan::parse(faults).unwrap());
    start_options(dir, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_are_each_durable_readable_and_recorded() {
    let mut server = start(TEST_RULES).await;
    let keys: Vec<String> = (0..64)
        .map(|i| format!("burst/d{}/obj-{i:02}", i % 4))
        .collect();
    let first: Vec<_> = keys.iter().map(|k| (k.clone(), content(k, 1))).collect();
    for (status, body) in put_all(&server, &first).await {
        assert_eq!(status, 201, "{body}");
    }
    // A second burst replaces every object while reads of the first go on.
    let second: Vec<_> = keys.iter().map(|k| (k.clone(), content(k, 2))).collect();
    for (status, body) in put_all(&server, &second).await {
        assert_eq!(status, 200, "{body}");
        let view: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(view["generation"], 2, "{body}");
    }
    for ((status, bytes), (key, want)) in get_all(&server, &keys).await.into_iter().zip(&second) {
        assert_eq!(status, 200, "{key}");
        assert!(bytes == *want, "{key}: wrong bytes");
    }
    // The catalog holds every write: a restart rebuilds the index from it alone.
    let dir = server.stop().await;
    let server = start_in(dir, TEST_RULES, Limits::default()).await;
    for ((status, bytes), (key, want)) in get_all(&server, &keys).await.into_iter().zip(&second) {
        assert_eq!(status, 200, "{key} lost by the restart");
        assert!(bytes == *want, "{key}: wrong bytes after the restart");
    }
    let listed = server.json("/v1/objects?prefix=burst/").await;
    assert_eq!(listed["objects"].as_array().unwrap().len(), 64);
    for object in listed["objects"].as_array().unwrap() {
        assert_eq!(object["generation"], 2, "{object}");
        assert_eq!(object["size"], 64 << 10, "{object}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_flush_fails_every_put_and_leaves_nothing_visible() {
    // Old versions of half the keys, written without faults.
    let mut server = start(TEST_RULES).await;
    let keys: Vec<String> = (0..16).map(|i| format!("failing/obj-{i:02}")).collect();
    let old: Vec<_> = keys[..8]
        .iter()
        .map(|k| (k.clone(), content(k, 1)))
        .collect();
    for (status, body) in put_all(&server, &old).await {
        assert_eq!(status, 201, "{body}");
    }
    let dir = server.stop().await;
    // Every publish (flush, rename) of the tiers fails: new versions of all 16 keys at once.
    let mut server = start_faulted(dir, "any:publish:error=permanent").await;
    let new: Vec<_> = keys.iter().map(|k| (k.clone(), content(k, 2))).collect();
    for ((status, body), (key, _)) in put_all(&server, &new).await.into_iter().zip(&new) {
        assert!(
            status >= 500,
            "{key}: a failed flush answered {status}: {body}"
        );
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("{key:?}")) && message.contains("could not be made durable"),
            "{key}: the error does not say what failed for which key: {body}"
        );
    }
    let check = |got: Vec<(u16, Vec<u8>)>| {
        for ((status, bytes), key) in got.into_iter().zip(&keys) {
            match old.iter().find(|(k, _)| k == key) {
                Some((_, want)) => {
                    assert_eq!(status, 200, "{key}: its old version is gone");
                    assert!(bytes == *want, "{key}: not its old version");
                }
                None => assert_eq!(status, 404, "{key}: a failed new key is visible"),
            }
        }
    };
    check(get_all(&server, &keys).await);
    let listed = server.json("/v1/objects?prefix=failing/").await;
    assert_eq!(listed["objects"].as_array().unwrap().len(), 8);
    for object in listed["objects"].as_array().unwrap() {
        assert_eq!(object["generation"], 1, "{object}");
    }
    // Nothing of the failed writes is on the tier under the object paths.
    let tier = server.tier_dir("warm").join("objects").join("failing");
    let mut files: Vec<_> = std::fs::read_dir(&tier)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let want: Vec<String> = (0..8).map(|i| format!("obj-{i:02}")).collect();
    assert_eq!(files, want);
    // And a restart (recovery) agrees.
    let dir = server.stop().await;
    let server = start_in(dir, TEST_RULES, Limits::default()).await;
    check(get_all(&server, &keys).await);
}
