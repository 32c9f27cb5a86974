//! SIGKILL in the middle of moves (and of writes): after a restart every object is readable
//! with the content of an acknowledged (or the interrupted) write, exactly one placement is
//! current, and no copy is left behind on a local tier or on S3. Run twice: with a plain
//! cold tier on S3, and with a packed one (compressed frames; recovery decodes them).

mod serve_common;

use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serve_common::*;
use strata_store::testing::new_bucket;

const OBJECTS: usize = 24;
const SIZE: usize = 3 << 20;
const WAIT: Duration = Duration::from_secs(90);

/// Versions of each key: the acknowledged one, and one whose PUT was in flight.
#[derive(Default)]
struct Versions {
    acked: HashMap<String, Vec<u8>>,
    in_flight: HashMap<String, Vec<u8>>,
}

fn key(i: usize) -> String {
    format!("sim/run-{:02}/field-{i:02}.bin", i % 5)
}

fn spike_all(url: &str, keys: &[String]) {
    let mut body = String::new();
    for key in keys {
        for _ in 0..40 {
            body.push_str(&format!("{{\"key\":{key:?},\"op\":\"read\"}}\n"));
        }
    }
    let (status, _, reply) = http(url, "POST", "/v1/access-events", body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
}

/// Waits until at least `done` moves are done and `active` are still unfinished, then kills.
fn kill_mid_moves(service: Service, done_before: usize) -> (usize, usize) {
    let url = service.url.clone();
    let counts = eventually(WAIT, "moves to be under way", || {
        let (done, active) = job_counts(&url);
        (done >= done_before + 2 && active >= 2).then_some((done, active))
    });
    service.kill();
    counts
}

fn wait_settled(url: &str) -> usize {
    eventually(WAIT, "every move to finish", || {
        let (done, active) = job_counts(url);
        (active == 0).then_some(done)
    })
}

fn check_reads(url: &str, versions: &Versions, keys: &[String]) {
    for key in keys {
        let (status, headers, body) = http(url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
        assert_eq!(status, 200, "{key} unreadable after the restart");
        let acked = &versions.acked[key];
        let ok = body == *acked || versions.in_flight.get(key).is_some_and(|v| body == *v);
        assert!(
            ok,
            "{key}: content is neither the acknowledged nor the interrupted write"
        );
        let hash = headers
            .iter()
            .find(|(name, _)| name == "x-strata-hash")
            .map(|(_, value)| value.clone())
            .unwrap();
        assert_eq!(
            hash,
            blake3::hash(&body).to_hex().as_str(),
            "{key}: catalog hash"
        );
    }
}

/// Log lines: compressible, not a short repeated pattern.
fn text(len: usize, seed: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut i = seed as u64 * 1_000_003;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "t={i} station={:03} t2m={}.{} rh=0.{:02} ok\n",
                i % 97,
                260 + i % 31,
                i % 10,
                i % 89
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn killed_in_the_middle_of_moves_and_writes() {
    kill_rounds(None);
}

#[test]
fn killed_in_the_middle_of_moves_and_writes_with_a_packed_cold_tier() {
    kill_rounds(Some("auto"));
}

/// The rounds, with the cold tier packed with `packed` (a codec policy), or plain. Packed,
/// every other object is compressible text.
fn kill_rounds(packed: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let bucket = new_bucket();
    let layout = |config: String| match packed {
        Some(codec) => with_packed_cold(&config, codec),
        None => config,
    };
    // Spikes only (no demotion) for the first rounds; then everything idle goes cold.
    let promote = dir.path().join("promote.toml");
    fs::write(
        &promote,
        layout(config(&data_dir, &s3_store(&bucket), "0s", "1h", "1h")),
    )
    .unwrap();
    // Every later service runs without spikes: round 1's 40 reads per key, if flushed
    // before its kill, would keep every object "spiking", so hot, for an hour (nothing
    // would demote), and the reads that check content would start promotions of their own.
    let no_spikes =
        |config: String| config.replace("spike_min_events = 20", "spike_min_events = 1000000000");
    let calm = dir.path().join("calm.toml");
    fs::write(
        &calm,
        no_spikes(layout(config(
            &data_dir,
            &s3_store(&bucket),
            "0s",
            "1h",
            "1h",
        ))),
    )
    .unwrap();
    let demote = dir.path().join("demote.toml");
    fs::write(
        &demote,
        no_spikes(layout(config(
            &data_dir,
            &s3_store(&bucket),
            "0s",
            "1s",
            "1s",
        ))),
    )
    .unwrap();
    let args = ["--move-concurrency", "2"];

    let keys: Vec<String> = (0..OBJECTS).map(key).collect();
    let mut versions = Versions::default();
    let service = Service::start(&promote, &data_dir, &args);
    for (i, key) in keys.iter().enumerate() {
        let data = if packed.is_some() && i % 2 == 0 {
            text(SIZE, i)
        } else {
            bytes(SIZE, i as u64)
        };
        let (status, _, _) =
            http(&service.url, "PUT", &format!("/v1/objects/{key}"), &data).unwrap();
        assert_eq!(status, 201);
        versions.acked.insert(key.clone(), data);
    }

    // Round 1: 24 promotions warm → hot, killed part way.
    spike_all(&service.url, &keys);
    let (done, active) = kill_mid_moves(service, 0);
    eprintln!("round 1 killed with {done} moves done, {active} unfinished");
    let service = Service::start(&calm, &data_dir, &args);
    eprintln!("round 1 recovery: {}", service.started["recovery"]);
    assert!(
        service.started["recovery"]["jobs_resumed"]
            .as_u64()
            .unwrap()
            >= 2
    );
    let done = wait_settled(&service.url);
    check_reads(&service.url, &versions, &keys);
    service.stop();
    check_consistency(&data_dir, &bucket, &keys);

    // Round 2: everything idle demotes to S3 while writers replace some objects; killed
    // part way, writes in flight included.
    let service = Service::start(&demote, &data_dir, &args);
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Mutex::new(versions));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (url, stop, shared) = (service.url.clone(), Arc::clone(&stop), Arc::clone(&shared));
            let keys: Vec<String> = keys.iter().skip(w).step_by(6).cloned().collect();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let key = &keys[n as usize % keys.len()];
                    let data = bytes(SIZE / 2 + n as usize, 1000 + n * 7 + w as u64);
                    shared
                        .lock()
                        .unwrap()
                        .in_flight
                        .insert(key.clone(), data.clone());
                    match http(&url, "PUT", &format!("/v1/objects/{key}"), &data) {
                        Ok((200, _, _)) => {
                            let mut versions = shared.lock().unwrap();
                            versions.in_flight.remove(key);
                            versions.acked.insert(key.clone(), data);
                        }
                        // Killed mid-request: stays "in flight".
                        _ => return,
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(150));
                }
            })
        })
        .collect();
    let (done2, active) = kill_mid_moves(service, done);
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    let versions = Arc::try_unwrap(shared).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "round 2 killed with {done2} moves done, {active} unfinished, {} writes in flight",
        versions.in_flight.len()
    );

    // Restart: recovery finishes or cleans up every move and write.
    let service = Service::start(&demote, &data_dir, &args);
    eprintln!("round 2 recovery: {}", service.started["recovery"]);
    let all_cold = eventually(WAIT, "everything to settle on cold", || {
        let (_, active) = job_counts(&service.url);
        let listing = get_json(&service.url, "/v1/objects?limit=1000");
        let cold = listing["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["tier"] == "cold")
            .count();
        (active == 0 && cold == OBJECTS).then_some(cold)
    });
    assert_eq!(all_cold, OBJECTS);
    // Reads (which make objects warm again) come after the placement check.
    service.stop();
    check_consistency(&data_dir, &bucket, &keys);
    if packed.is_some() {
        check_packed(&bucket, &versions, &keys);
    }
    let service = Service::start(&calm, &data_dir, &args);
    check_reads(&service.url, &versions, &keys);
    service.stop();
}

/// Every cold copy on S3 is a packed object; the text ones take far less than their raw
/// size.
fn check_packed(bucket: &str, versions: &Versions, keys: &[String]) {
    let mut compressed = 0;
    for key in keys {
        let stored = s3_object(bucket, "tiers/cold", key);
        assert!(stored.ends_with(b"STPT"), "{key} is not packed on S3");
        let raw = &versions.acked[key];
        let untouched = !versions.in_flight.contains_key(key);
        if untouched && raw.starts_with(b"t=") && stored.len() < raw.len() / 3 {
            compressed += 1;
        }
    }
    assert!(compressed >= 4, "only {compressed} text objects compressed");
}
