//! SIGKILL of the real `strata serve` in the middle of a burst of small PUTs made durable
//! by the group commit: after a restart every acknowledged PUT is readable with its bytes
//! (or with those of the one PUT of its key that was in flight), and the catalog's hash
//! matches them.

mod serve_common;

use std::collections::HashMap;
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
    for round in 0..2 {
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
            (acks.load(Ordering::SeqCst) >= 150 * (round + 1)).then_some(())
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
