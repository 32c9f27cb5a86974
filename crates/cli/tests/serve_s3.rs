//! End to end: the real `strata serve` with an S3-compatible server (moto) as the cold tier,
//! driven by the real CLI. Objects are put, a spike promotes one at once
//! (`reactive_access_spike`), idle ones are demoted to S3 (`rule_cold`), a spike on an S3
//! object brings it back, `explain` tells why, and every object reads back byte-identical.

mod serve_common;

use std::fs;
use std::time::Duration;

use serve_common::*;
use strata_store::testing::{new_bucket, TEST_SECRET};

const WAIT: Duration = Duration::from_secs(60);

fn tier_of(service: &Service, key: &str) -> String {
    let objects = service.json(&["ls", key]);
    objects
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == key)
        .map(|o| o["tier"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn done_job(service: &Service, key: &str, to: &str) -> Option<serde_json::Value> {
    let jobs = service.json(&["moves", "--key", key]);
    jobs.as_array()
        .unwrap()
        .iter()
        .find(|job| job["state"] == "done" && job["to_tier"] == to)
        .cloned()
}

#[test]
fn promotion_and_demotion_with_an_s3_cold_tier() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let bucket = new_bucket();
    let config = dir.path().join("strata.toml");
    fs::write(&config, config_text(&data_dir, &bucket)).unwrap();
    let service = Service::start(&config, &data_dir, &[]);

    // Objects of several sizes, one empty, one over the 4 MiB read chunk.
    let sizes = [0usize, 1, 4096, 300_000, (5 << 20) + 3];
    let mut files = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let path = dir.path().join(format!("in-{i}.bin"));
        fs::write(&path, bytes(*size, i as u64)).unwrap();
        let key = format!("runs/7/part-{i}.nc");
        let put = service.json(&["put", path.to_str().unwrap(), &key]);
        assert_eq!(put["tier"], "warm", "{put}");
        assert_eq!(put["size"], *size);
        files.push((key, path));
    }
    let hot_key = files[3].0.clone();

    // A burst of reads: promoted at once, by the reactive path.
    let access = service.json(&["access", &hot_key, "--count", "40"]);
    assert_eq!(access["accepted"], 40);
    assert_eq!(access["spikes"], 1);
    let job = eventually(WAIT, "the spike's promotion", || {
        done_job(&service, &hot_key, "hot")
    });
    assert_eq!(job["reason"], "reactive_access_spike");
    assert_eq!(job["from_tier"], "warm");
    assert_eq!(tier_of(&service, &hot_key), "hot");

    // The others go cold once idle past warm_within, and are demoted to S3.
    for (key, _) in files.iter().filter(|(key, _)| *key != hot_key) {
        let job = eventually(WAIT, &format!("{key}'s demotion"), || {
            done_job(&service, key, "cold")
        });
        assert_eq!(job["reason"], "rule_cold", "{job}");
        assert_eq!(job["from_tier"], "warm");
    }
    let on_s3 = s3_keys(&bucket, "tiers/cold");
    let mut expected: Vec<String> = files
        .iter()
        .filter(|(key, _)| *key != hot_key)
        .map(|(key, _)| key.clone())
        .collect();
    expected.sort();
    assert_eq!(on_s3, expected, "the cold copies are plain S3 objects");
    assert!(
        files_on(&service.tier_dir("warm")).is_empty(),
        "warm copies retired"
    );
    assert_eq!(
        files_on(&service.tier_dir("hot")),
        std::slice::from_ref(&hot_key)
    );

    // Why? `explain` says, with the recorded reasons.
    let explain = service.json(&["explain", &files[0].0]);
    assert_eq!(explain["tier"], "cold");
    assert!(
        explain["why_here"].as_str().unwrap().contains("rule_cold"),
        "{explain}"
    );
    let text = service.run(&["explain", &hot_key]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("moved from warm by job") && text.contains("reactive_access_spike"),
        "{text}"
    );

    // A spike on an S3 object brings it back up: read from S3, copied to the hot tier.
    let back_key = files[4].0.clone();
    let access = service.json(&["access", &back_key, "--count", "40"]);
    assert_eq!(access["spikes"], 1);
    let job = eventually(WAIT, "the promotion from S3", || {
        done_job(&service, &back_key, "hot")
    });
    assert_eq!(job["from_tier"], "cold");
    assert_eq!(job["reason"], "reactive_access_spike");

    // Every object reads back byte-identical, wherever it is.
    for (key, path) in &files {
        let out = dir.path().join("out.bin");
        let got = service.json(&["get", key, "--output", out.to_str().unwrap()]);
        assert_eq!(
            fs::read(&out).unwrap(),
            fs::read(path).unwrap(),
            "{key} from {}",
            got["tier"]
        );
        let stdout = service.run(&["get", key]);
        assert!(stdout.status.success());
        assert_eq!(
            stdout.stdout,
            fs::read(path).unwrap(),
            "{key} on standard output"
        );
    }

    // Tiers, metrics and the job list, as text and JSON, without secrets.
    let tiers = service.json(&["tiers"]);
    let held: u64 = tiers["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["objects"].as_u64().unwrap())
        .sum();
    assert_eq!(held, files.len() as u64);
    assert_eq!(tiers["tiers"][2]["name"], "cold");
    let tiers_text = String::from_utf8_lossy(&service.run(&["tiers"]).stdout).into_owned();
    assert!(
        tiers_text.contains(&bucket) && !tiers_text.contains(TEST_SECRET),
        "{tiers_text}"
    );
    let metrics = service.json(&["metrics"]);
    assert!(
        metrics["strata_moves_total{state=\"done\"}"]
            .as_f64()
            .unwrap()
            >= 6.0
    );
    let objects = service.json(&["objects"]);
    assert_eq!(objects.as_array().unwrap().len(), files.len());
    let listing = String::from_utf8_lossy(&service.run(&["moves"]).stdout).into_owned();
    assert!(listing.contains("reactive_access_spike") && listing.contains("rule_cold"));

    // rm deletes every copy, on S3 too.
    let removed = service.json(&["rm", &files[0].0, &files[1].0]);
    assert_eq!(removed["removed"].as_array().unwrap().len(), 2);
    let left_on_s3 = s3_keys(&bucket, "tiers/cold");
    assert!(
        !left_on_s3.contains(&files[0].0) && !left_on_s3.contains(&files[1].0),
        "{left_on_s3:?}"
    );
    let missing = service.run(&["get", &files[0].0]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not_found"));
    service.stop();
}

fn config_text(data_dir: &std::path::Path, bucket: &str) -> String {
    // hot_within 0s: only a spike makes an object hot; idle 4 s makes it cold.
    config(data_dir, &s3_store(bucket), "0s", "4s", "1s")
}

#[test]
fn a_service_without_config_runs_three_local_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = strata()
        .current_dir(dir.path())
        .args(["--json", "serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let started: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(started["default_tier"], "warm");
    let names: Vec<&str> = started["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hot", "warm", "cold"]);
    let url = started["listening"].as_str().unwrap().to_string();
    let file = dir.path().join("hello.txt");
    fs::write(&file, "hello").unwrap();
    let out = strata()
        .env("STRATA_SERVER", &url)
        .args(["put", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir
        .path()
        .join("strata-data/tiers/warm/objects/hello.txt")
        .is_file());
    assert!(dir.path().join("strata-data/catalog.db").is_file());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn config_errors_name_the_field_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.toml");
    fs::write(&config, "[[tier]]\nname = \"fast\"\ncapacity = \"12X\"\n").unwrap();
    let out = strata()
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tier[0].capacity") && err.contains("12X"),
        "{err}"
    );
}

#[test]
fn the_shipped_example_config_parses_and_is_servable() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/strata.example.toml");
    let config = strata_heat::TieringConfig::load(std::path::Path::new(path))
        .unwrap_or_else(|e| panic!("{e}"));
    strata_server::check_servable(&config).unwrap();
    let names: Vec<&str> = config.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["nvme", "disk", "archive"]);
    assert!(config.tiers[2].store.starts_with("s3://"));
    assert_eq!(config.default_tier, "disk");
}
