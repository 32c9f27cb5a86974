//! The group commit's pipeline against the real `strata serve`:
//!
//! - SIGKILL in the middle of bursts of small PUTs (several rounds, killed at different
//!   points): after a restart every acknowledged PUT is readable with its bytes (or with
//!   those of the one PUT of its key that was in flight), a key whose first PUT was in
//!   flight is absent or whole, and the catalog's hash matches the bytes;
//! - a tier whose disk fills up during a burst (a small tmpfs: needs root, as CI and the
//!   dev machines run): the PUTs that do not fit answer 507 naming their key and leave
//!   nothing (no object, no staged file), the others are whole, and once room is made
//!   later PUTs succeed, all of it still true after a restart.

mod serve_common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serve_common::*;

const WRITERS: usize = 12;
const KEYS_PER_WRITER: usize = 10;
const WAIT: Duration = Duration::from_secs(60);

/// Content of the `n`th write of `key`: 16 KiB to 80 KiB, proper to both.
fn content(key: &str, n: usize) -> Vec<u8> {
    let seed = blake3::hash(format!("{key}#{n}").as_bytes());
    let mut out = vec![0; 16 * 1024 + (n * 7919) % (64 * 1024)];
    blake3::Hasher::new_keyed(seed.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Per key: the last acknowledged content, and the content of a PUT in flight.
#[derive(Default)]
struct Versions {
    acked: HashMap<String, Vec<u8>>,
    in_flight: HashMap<String, Vec<u8>>,
}

/// One writer: PUTs new versions of its keys, one at a time, until `stop` or the service
/// goes away.
fn writer(
    url: String,
    id: usize,
    versions: Arc<Mutex<Versions>>,
    acks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let key = format!("burst/w{id:02}/k{:02}", n % KEYS_PER_WRITER);
        let data = content(&key, n);
        versions
            .lock()
            .unwrap()
            .in_flight
            .insert(key.clone(), data.clone());
        match http(&url, "PUT", &format!("/v1/objects/{key}"), &data) {
            Ok((status, _, _)) if status == 200 || status == 201 => {
                let mut versions = versions.lock().unwrap();
                versions.in_flight.remove(&key);
                versions.acked.insert(key, data);
                acks.fetch_add(1, Ordering::SeqCst);
            }
            Ok((status, _, body)) => {
                panic!("PUT {key}: {status} {}", String::from_utf8_lossy(&body))
            }
            // The service was killed: this PUT stays in flight.
            Err(_) => return,
        }
    }
}

#[test]
fn killed_during_a_burst_of_puts_keeps_every_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let cold = data_dir.join("cold").display().to_string();
    let path = dir.path().join("strata.toml");
    std::fs::write(&path, config(&data_dir, &cold, "1h", "2h", "1h")).unwrap();
    let versions = Arc::new(Mutex::new(Versions::default()));
    // Killed after different numbers of acknowledged PUTs, so each kill lands at another
    // point of the pipeline (intents, flushes, renames, rows).
    for kill_after in [150, 37, 211, 90] {
        let service = Service::start(&path, &data_dir, &[]);
        let (acks, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                let (url, versions, acks, stop) = (
                    service.url.clone(),
                    Arc::clone(&versions),
                    Arc::clone(&acks),
                    Arc::clone(&stop),
                );
                std::thread::spawn(move || writer(url, id, versions, acks, stop))
            })
            .collect();
        // Killed in the middle of the burst: PUTs are queued, flushing and being recorded.
        eventually(WAIT, "a burst of acknowledged PUTs", || {
            (acks.load(Ordering::SeqCst) >= kill_after).then_some(())
        });
        service.kill();
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.join().unwrap();
        }
        let service = Service::start(&path, &data_dir, &[]);
        let mut versions = versions.lock().unwrap();
        check_reads(&service.url, &versions);
        // What was in flight and came through is now the acknowledged content.
        settle(&service.url, &mut versions);
        service.stop();
    }
}

/// Every acknowledged key reads back with its acknowledged bytes or, if a PUT of it was in
/// flight at the kill, with that PUT's bytes; the catalog's hash is the bytes'.
fn check_reads(url: &str, versions: &Versions) {
    assert!(
        versions.acked.len() >= 100,
        "too few keys written to mean anything"
    );
    for (key, in_flight) in &versions.in_flight {
        if versions.acked.contains_key(key) {
            continue;
        }
        // A first PUT cut by the kill: the key is absent, or holds that PUT's bytes whole.
        let (status, _, body) = http(url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
        assert!(
            status == 404 || (status == 200 && body == *in_flight),
            "{key}: a first PUT cut by the kill left {status} with {} bytes",
            body.len()
        );
    }
    for (key, acked) in &versions.acked {
        let (status, headers, body) = http(url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
        assert_eq!(
            status, 200,
            "{key}: an acknowledged PUT is gone after the kill"
        );
        let ok = body == *acked || versions.in_flight.get(key).is_some_and(|v| body == *v);
        assert!(
            ok,
            "{key}: neither the acknowledged nor the in-flight content"
        );
        let hash = headers
            .iter()
            .find(|(n, _)| n == "x-strata-hash")
            .map(|(_, v)| v.clone());
        assert_eq!(
            hash.as_deref(),
            Some(blake3::hash(&body).to_hex().as_str()),
            "{key}: catalog hash"
        );
    }
}

/// After a round: each key's acknowledged content becomes what the service now holds.
fn settle(url: &str, versions: &mut Versions) {
    let keys: Vec<String> = versions.in_flight.keys().cloned().collect();
    for key in keys {
        let (status, _, body) = http(url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
        if status == 200 {
            versions.acked.insert(key.clone(), body);
        }
        versions.in_flight.remove(&key);
    }
}

/// What a burst of PUTs on a filling disk came to: the keys acknowledged with their bytes,
/// and the keys refused.
#[derive(Default)]
struct Burst {
    acked: HashMap<String, Vec<u8>>,
    refused: Vec<String>,
}

/// 16 writers at once, each PUTting `per_writer` new objects of 16 KiB to 80 KiB under
/// `prefix`; a refusal must be a 507 naming its key.
fn burst(url: &str, prefix: &str, per_writer: usize) -> Burst {
    let outcome = Arc::new(Mutex::new(Burst::default()));
    let writers: Vec<_> = (0..16)
        .map(|id| {
            let (url, prefix, outcome) = (url.to_string(), prefix.to_string(), Arc::clone(&outcome));
            std::thread::spawn(move || {
                for n in 0..per_writer {
                    let key = format!("{prefix}/w{id:02}/o{n:02}");
                    let data = content(&key, 4 + n * 8);
                    let (status, _, body) =
                        http(&url, "PUT", &format!("/v1/objects/{key}"), &data).unwrap();
                    let body = String::from_utf8_lossy(&body).into_owned();
                    let mut outcome = outcome.lock().unwrap();
                    match status {
                        201 => {
                            outcome.acked.insert(key, data);
                        }
                        507 => {
                            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
                            let message = error["error"]["message"].as_str().unwrap_or_default();
                            assert!(
                                error["error"]["code"] == "tier_full"
                                    && message.contains(&format!("{key:?}"))
                                    && message.contains("free space"),
                                "{key}: a refusal that does not say which key, why or what to do: {body}"
                            );
                            outcome.refused.push(key);
                        }
                        _ => panic!("PUT {key} on a filling disk: {status} {body}"),
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    Arc::try_unwrap(outcome).ok().unwrap().into_inner().unwrap()
}

/// Every acknowledged key reads back whole, every refused one is absent.
fn check_burst(url: &str, burst: &Burst) {
    for (key, data) in &burst.acked {
        let (status, _, body) = http(url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
        assert!(
            status == 200 && body == *data,
            "{key}: acknowledged, then {status}"
        );
    }
    for key in &burst.refused {
        let (status, _, _) = http(url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
        assert_eq!(status, 404, "{key}: refused for a full disk, yet present");
    }
}

/// Files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_disk_that_fills_up_refuses_the_puts_that_do_not_fit_cleanly_and_later_ones_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let cold = data_dir.join("cold").display().to_string();
    let path = dir.path().join("strata.toml");
    std::fs::write(&path, config(&data_dir, &cold, "1h", "2h", "1h")).unwrap();
    // The default tier (warm) on a disk of 4 MiB: the 128 objects of the first burst take
    // about 6 MiB.
    let tier = data_dir.join("tiers").join("warm");
    let disk = SmallDisk::mount(&tier, "4m");
    let service = Service::start(&path, &data_dir, &[]);
    let first = burst(&service.url, "full", 8);
    assert!(
        !first.acked.is_empty() && !first.refused.is_empty(),
        "the disk should have filled part way: {} acknowledged, {} refused",
        first.acked.len(),
        first.refused.len()
    );
    check_burst(&service.url, &first);
    // Nothing of the refused PUTs is left on the tier: no staged file, no object file.
    let staged = files_under(&tier.join(".strata").join("staging"));
    assert!(staged.is_empty(), "staged files left: {staged:?}");
    let objects = files_under(&tier.join("objects")).len();
    assert_eq!(objects, first.acked.len(), "object files on the tier");
    // Room made: every object of the first burst deleted; a second burst fits whole.
    for key in first.acked.keys() {
        let (status, _, _) =
            http(&service.url, "DELETE", &format!("/v1/objects/{key}"), b"").unwrap();
        assert_eq!(status, 204, "DELETE {key}");
    }
    let second = burst(&service.url, "again", 2);
    assert!(
        second.refused.is_empty(),
        "PUTs refused once room was made: {:?}",
        second.refused
    );
    check_burst(&service.url, &second);
    // A restart (recovery) agrees.
    service.stop();
    let service = Service::start(&path, &data_dir, &[]);
    check_burst(&service.url, &second);
    for key in first.acked.keys().chain(&first.refused) {
        let (status, _, _) = http(&service.url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
        assert_eq!(
            status, 404,
            "{key}: deleted or refused, yet present after a restart"
        );
    }
    service.stop();
    drop(disk);
}
