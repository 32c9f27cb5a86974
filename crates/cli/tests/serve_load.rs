//! Under load: 100 concurrent readers while objects move between all three tiers (local hot
//! and warm, S3 cold). The readers' attention shifts from one group of objects to the next,
//! and a thin tail of reads reaches every object now and then, so objects are promoted
//! (spikes and recency) and demoted (to warm, to S3) while being read. Every read is checked byte for byte: zero failed or wrong reads, zero lost
//! objects, and afterwards the catalog and the tiers agree.

mod serve_common;

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serve_common::*;
use strata_store::testing::new_bucket;

const OBJECTS: usize = 40;
const READERS: usize = 100;
const GROUP: usize = 8;
const RUN: Duration = Duration::from_secs(24);
const SHIFT: Duration = Duration::from_secs(4);

#[test]
fn a_hundred_readers_while_objects_move() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let bucket = new_bucket();
    let config_path = dir.path().join("strata.toml");
    fs::write(
        &config_path,
        config(&data_dir, &s3_store(&bucket), "1s", "3s", "1s"),
    )
    .unwrap();
    let service = Service::start(&config_path, &data_dir, &["--move-concurrency", "4"]);
    let url = service.url.clone();

    let keys: Vec<String> = (0..OBJECTS).map(|i| format!("load/obj-{i:02}")).collect();
    let contents: Vec<Vec<u8>> = (0..OBJECTS)
        .map(|i| bytes(16_384 + (i * 12_289) % 500_000, 500 + i as u64))
        .collect();
    for (key, data) in keys.iter().zip(&contents) {
        let (status, _, _) = http(&url, "PUT", &format!("/v1/objects/{key}"), data).unwrap();
        assert_eq!(status, 201);
    }
    let keys = Arc::new(keys);
    let contents = Arc::new(contents);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reads = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (done_before, _) = job_counts(&url);
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(READERS)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut tasks = Vec::new();
        for reader in 0..READERS {
            let (client, url, keys, contents) = (
                client.clone(),
                url.clone(),
                Arc::clone(&keys),
                Arc::clone(&contents),
            );
            let (reads, failures) = (Arc::clone(&reads), Arc::clone(&failures));
            tasks.push(tokio::spawn(async move {
                let mut n = reader as u64 * 7919;
                while started.elapsed() < RUN {
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let group = (started.elapsed().as_millis() / SHIFT.as_millis()) as usize;
                    // Most reads go to the current group; a thin tail reaches every object
                    // now and then, so idle objects flip between classes while being read.
                    let i = if n >> 57 != 0 {
                        (group * GROUP + (n >> 32) as usize % GROUP) % OBJECTS
                    } else {
                        (n >> 32) as usize % OBJECTS
                    };
                    let expected = &contents[i];
                    let ranged = (n >> 20).is_multiple_of(4) && expected.len() > 1000;
                    let mut request = client.get(format!("{url}/v1/objects/{}", keys[i]));
                    if ranged {
                        request = request.header("range", "bytes=1000-");
                    }
                    let ok = match request.send().await {
                        Ok(response) if response.status().is_success() => {
                            match response.bytes().await {
                                Ok(body) if ranged => body.as_ref() == &expected[1000..],
                                Ok(body) => body.as_ref() == &expected[..],
                                Err(_) => false,
                            }
                        }
                        Ok(response) => {
                            eprintln!("read of {} answered {}", keys[i], response.status());
                            false
                        }
                        Err(err) => {
                            eprintln!("read of {} failed: {err}", keys[i]);
                            false
                        }
                    };
                    reads.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    let reads = reads.load(Ordering::Relaxed);
    let failures = failures.load(Ordering::Relaxed);
    let (done_after, _) = job_counts(&url);
    let moved = done_after - done_before;
    let jobs = get_json(&url, "/v1/jobs?limit=10000&state=done");
    let directions: std::collections::BTreeSet<String> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            format!(
                "{}->{}",
                j["from_tier"].as_str().unwrap(),
                j["to_tier"].as_str().unwrap()
            )
        })
        .collect();
    eprintln!(
        "{reads} reads by {READERS} readers in {:?}, {failures} failed; {moved} moves done \
         meanwhile ({directions:?})",
        started.elapsed()
    );
    assert_eq!(failures, 0, "failed or wrong reads");
    assert!(reads > 1000, "only {reads} reads");
    assert!(moved >= 20, "only {moved} moves happened during the reads");
    let rank = |tier: &str| {
        ["hot", "warm", "cold"]
            .iter()
            .position(|t| *t == tier)
            .unwrap()
    };
    let (mut up, mut down, mut s3) = (0, 0, 0);
    for direction in &directions {
        let (from, to) = direction.split_once("->").unwrap();
        if rank(to) < rank(from) {
            up += 1
        } else {
            down += 1
        }
        if from == "cold" || to == "cold" {
            s3 += 1
        }
    }
    assert!(
        up > 0 && down > 0 && s3 > 0,
        "moves in every direction expected: {directions:?}"
    );

    // Quiet: let the moves in flight finish, then nothing is lost and everything agrees.
    eventually(Duration::from_secs(60), "moves to finish", || {
        let (_, active) = job_counts(&url);
        (active == 0).then_some(())
    });
    let listing = get_json(&url, "/v1/objects?limit=1000");
    assert_eq!(listing["objects"].as_array().unwrap().len(), OBJECTS);
    service.stop();
    // A move planned just before the stop is resumed by the next start; a start that plans
    // nothing new lets it finish before the tiers are compared with the catalog.
    let quiet = dir.path().join("quiet.toml");
    fs::write(
        &quiet,
        config(&data_dir, &s3_store(&bucket), "0s", "1h", "1h"),
    )
    .unwrap();
    let service = Service::start(&quiet, &data_dir, &[]);
    eventually(Duration::from_secs(60), "resumed moves to finish", || {
        let (_, active) = job_counts(&service.url);
        (active == 0).then_some(())
    });
    service.stop();
    check_consistency(&data_dir, &bucket, &keys);
}
