//! Tiers with their own redundancy through the real `strata serve`: a tier over several
//! failure domains (`stores = [...]`) keeps `replicate:N` copies or `ec:K+M` fragments,
//! serves reads with domains lost, rebuilds what a read found missing, re-encodes an
//! object whose class changed (`lazy_reencode`), and `strata scrub` repairs or reports;
//! configurations that cannot keep their promise are refused at start-up.

mod serve_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serve_common::*;

const WAIT: Duration = Duration::from_secs(60);
const KEY: &str = "runs/7/field.bin";

/// `n` domain directories under `dir`, as TOML list items.
fn domains(dir: &Path, tier: &str, n: usize) -> (Vec<PathBuf>, String) {
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("{tier}-d{i}"))).collect();
    let list = paths
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    (paths, list)
}

/// One hot tier on a single store and one tier `red` over `domains` with `redundancy`,
/// where new objects land; objects are hot for an hour after an access. `extra` is
/// appended.
fn write_config(dir: &Path, domains: &str, redundancy: &str, extra: &str) -> (PathBuf, PathBuf) {
    let data_dir = dir.join("data");
    let text = format!(
        r#"default_tier = "red"

[server]
listen = "127.0.0.1:0"
data_dir = {data:?}

[[tier]]
name = "hot"

[[tier]]
name = "red"
stores = [{domains}]
redundancy = {redundancy:?}

[classes]
hot = ["hot"]
warm = ["red"]
cold = ["red"]

[rules]
hot_per_day = 1000000000
warm_per_day = 1000000000
hot_within = "1h"
warm_within = "2h"
demotion_interval = "1h"

[tracking]
flush_interval = "1s"
{extra}"#,
        data = data_dir.display().to_string(),
    );
    let path = dir.join("strata.toml");
    std::fs::write(&path, text).unwrap();
    (path, data_dir)
}

/// Distinct bytes, so a piece of the wrong place would not match.
fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 131 % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

fn put(service: &Service, data: &[u8]) {
    put_key(service, KEY, data);
}

fn put_key(service: &Service, key: &str, data: &[u8]) {
    let (status, _, body) = http(&service.url, "PUT", &format!("/v1/objects/{key}"), data).unwrap();
    assert!(
        (200..300).contains(&status),
        "PUT {status}: {}",
        String::from_utf8_lossy(&body)
    );
}

fn get(service: &Service) -> (u16, Vec<u8>) {
    get_key(service, KEY)
}

fn get_key(service: &Service, key: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = http(&service.url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
    (status, body)
}

/// The state of the newest job of `key`, if it has one.
fn job_state(service: &Service, key: &str) -> Option<String> {
    let jobs = get_json(&service.url, &format!("/v1/jobs?key={key}"));
    let state = jobs["jobs"].as_array()?.first()?["state"]
        .as_str()?
        .to_string();
    Some(state)
}

/// Every regular file under `root` outside Strata's `.strata/` directory.
fn data_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".strata") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// The plain replicas of KEY on the domains.
fn replicas(domains: &[PathBuf]) -> Vec<Vec<u8>> {
    domains
        .iter()
        .filter_map(|d| std::fs::read(d.join("objects").join(KEY)).ok())
        .collect()
}

/// Asserts that exactly `n` domains hold a plain replica of KEY with `data` (never prints
/// the bytes).
fn assert_replicas(domains: &[PathBuf], data: &[u8], n: usize) {
    let found = replicas(domains);
    let good = found.iter().filter(|r| r.as_slice() == data).count();
    assert!(
        found.len() == n && good == n,
        "{} replicas, {good} with the object's bytes; expected {n}",
        found.len()
    );
}

/// Whether exactly `n` domains hold a plain replica with `data`.
fn has_replicas(domains: &[PathBuf], data: &[u8], n: usize) -> bool {
    let found = replicas(domains);
    found.len() == n && found.iter().all(|r| r.as_slice() == data)
}

/// The EC fragment files on the domains (anything under `ec/`).
fn fragments(domains: &[PathBuf]) -> Vec<PathBuf> {
    domains
        .iter()
        .flat_map(|d| data_files(&d.join("ec")))
        .collect()
}

fn metric(service: &Service, line_start: &str) -> f64 {
    let (_, _, body) = http(&service.url, "GET", "/metrics", b"").unwrap();
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Starts `strata serve` on a configuration it must refuse: exit 2, the field and `what`
/// named, nothing written in the data dir or the domains.
fn assert_refused(config: &Path, data_dir: &Path, field: &str, what: &str, domains: &[PathBuf]) {
    let (code, err) = refused_start(config, WAIT);
    assert_eq!(code, Some(2), "{field}: {err}");
    assert!(err.contains(field) && err.contains(what), "{field}: {err}");
    assert!(!data_dir.exists(), "{field}: the data dir was written");
    for domain in domains {
        assert!(
            !domain.exists(),
            "{field}: domain {} was created",
            domain.display()
        );
    }
}

#[test]
fn configurations_that_cannot_keep_their_redundancy_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (three, list3) = domains(dir.path(), "red", 3);
    let same = format!("{list3}, {:?}", three[0].display().to_string());
    for (domains_text, redundancy, extra, field, what) in [
        (list3.as_str(), "ec:4+2", "", "tier[1].redundancy", "ec:4+2"),
        (
            list3.as_str(),
            "replicate:4",
            "",
            "tier[1].redundancy",
            "replicate:4",
        ),
        (list3.as_str(), "raid5", "", "tier[1].redundancy", "raid5"),
        (
            same.as_str(),
            "replicate:2",
            "",
            "tier[1].stores[3]",
            "same location",
        ),
        (
            list3.as_str(),
            "replicate:2",
            "\n[redundancy]\nhot = \"replicate:5\"\n",
            "redundancy.hot",
            "replicate:5",
        ),
        (
            list3.as_str(),
            "none",
            "\n[redundancy]\ncold = \"ec:0+2\"\n",
            "redundancy.cold",
            "ec:0+2",
        ),
    ] {
        let (config, data_dir) = write_config(dir.path(), domains_text, redundancy, extra);
        assert_refused(&config, &data_dir, field, what, &three);
    }
    // `store` and `stores` together.
    let (config, data_dir) = write_config(dir.path(), &list3, "replicate:2", "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("stores = [", "store = \"/tmp/x\"\nstores = [");
    std::fs::write(&config, text).unwrap();
    assert_refused(&config, &data_dir, "tier[1].stores", "not both", &three);
}

#[test]
fn replicated_tier_serves_reads_with_two_domains_removed_and_rebuilds_them() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, list) = domains(dir.path(), "red", 3);
    let (config, data_dir) = write_config(dir.path(), &list, "replicate:3", "");
    let service = Service::start(&config, &data_dir, &[]);
    let data = content((3 << 20) + 17);
    put(&service, &data);
    // Each replica is a plain file with the object's bytes, readable without Strata.
    assert_replicas(&domains, &data, 3);

    for lost in &domains[..2] {
        std::fs::remove_dir_all(lost).unwrap();
    }
    let (status, body) = get(&service);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body == data, "a degraded read returned other bytes");
    assert!(metric(&service, "strata_degraded_reads_total{tier=\"red\"} ") >= 1.0);
    // The read scheduled a rebuild; the reader did not wait for it.
    eventually(WAIT, "the lost replicas rebuilt", || {
        has_replicas(&domains, &data, 3).then_some(())
    });
    let scrub = service.json(&["scrub", "red"]);
    let tier = &scrub["tiers"][0];
    assert_eq!(tier["objects"], 1, "{scrub}");
    assert_eq!(tier["healthy"], 1, "{scrub}");
}

#[test]
fn ec_tier_reads_through_two_lost_fragments_and_scrub_repairs_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, list) = domains(dir.path(), "red", 6);
    let (config, data_dir) = write_config(dir.path(), &list, "ec:4+2", "");
    let service = Service::start(&config, &data_dir, &[]);
    let data = content((5 << 20) + 3);
    put(&service, &data);
    let pieces = fragments(&domains);
    assert_eq!(pieces.len(), 6, "one fragment per domain: {pieces:?}");
    assert!(
        replicas(&domains).is_empty(),
        "an EC tier keeps no plain copy"
    );

    // One fragment corrupted in the middle of its shards, another deleted.
    let mut bytes = std::fs::read(&pieces[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&pieces[0], &bytes).unwrap();
    std::fs::remove_file(&pieces[1]).unwrap();
    let (status, body) = get(&service);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body == data, "a degraded EC read returned other bytes");

    let scrub = service.json(&["scrub", "red"]);
    let tier = &scrub["tiers"][0];
    assert_eq!(
        tier["unrepairable"].as_array().map(Vec::len),
        Some(0),
        "{scrub}"
    );
    eventually(WAIT, "every fragment whole again", || {
        let again = service.json(&["scrub", "red"]);
        (again["tiers"][0]["healthy"] == 1).then_some(())
    });
    assert_eq!(fragments(&domains).len(), 6);

    // Three of six domains lost: more than ec:4+2 tolerates. The read fails, never with
    // other bytes, and scrub names the object and exits 1.
    for lost in &domains[..3] {
        std::fs::remove_dir_all(lost).unwrap();
    }
    let (status, body) = get(&service);
    assert!(
        status >= 500,
        "GET answered {status} with 3 of 6 domains lost"
    );
    assert!(body != data);
    let out = service.run(&["scrub", "red"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(KEY), "{text}");
}

#[test]
fn a_read_of_an_object_whose_class_changed_re_encodes_it_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, list) = domains(dir.path(), "red", 6);
    // Cold and warm objects are erasure-coded, hot ones replicated three times; the tier
    // "hot" is not the hot class's home here, so the object stays on "red".
    let extra = "\n[redundancy]\nhot = \"replicate:3\"\n";
    let (config, data_dir) = write_config(dir.path(), &list, "ec:4+2", extra);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("hot = [\"hot\"]", "hot = [\"red\"]");
    std::fs::write(&config, text).unwrap();
    let service = Service::start(&config, &data_dir, &[]);
    let data = content((2 << 20) + 5);
    put(&service, &data);
    assert_eq!(fragments(&domains).len(), 6);

    // Accesses make it hot; the next read answers first, then plans the re-encode.
    let out = service.run(&["access", KEY, "--count", "5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = eventually(WAIT, "a lazy_reencode job done", || {
        let (status, body) = get(&service);
        assert_eq!(status, 200);
        assert!(
            body == data,
            "a read during the re-encode returned other bytes"
        );
        let jobs = get_json(&service.url, &format!("/v1/jobs?key={KEY}"));
        let job = jobs["jobs"].as_array()?.first()?.clone();
        (job["state"] == "done").then_some(job)
    });
    assert_eq!(job["reason"], "lazy_reencode", "{job}");
    assert_eq!(job["from_tier"], job["to_tier"], "{job}");
    assert_replicas(&domains, &data, 3);
    assert!(
        fragments(&domains).is_empty(),
        "the old fragments were not retired: {:?}",
        fragments(&domains)
    );
    let (status, body) = get(&service);
    assert_eq!(status, 200);
    assert!(body == data);
}

/// A configuration where a read of a hot object re-encodes it ec:4+2 → replicate:3, with
/// the service's domain writes slowed by `STRATA_FAULTS` so the re-encode is caught midway.
fn reencode_setup(dir: &Path) -> (Vec<PathBuf>, PathBuf, PathBuf) {
    let (domains, list) = domains(dir, "red", 6);
    let extra = "\n[redundancy]\nhot = \"replicate:3\"\n";
    let (config, data_dir) = write_config(dir, &list, "ec:4+2", extra);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("hot = [\"hot\"]", "hot = [\"red\"]");
    std::fs::write(&config, text).unwrap();
    (domains, config, data_dir)
}

/// Puts the object, makes it hot and reads it: the read plans its re-encode. Returns once
/// the job is copying.
fn start_reencode(service: &Service, data: &[u8]) {
    put(service, data);
    let out = service.run(&["access", KEY, "--count", "5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(WAIT, "the re-encode copying", || {
        let (status, body) = get(service);
        assert!(status == 200 && body == data, "a read returned other bytes");
        let jobs = get_json(&service.url, &format!("/v1/jobs?key={KEY}"));
        let job = jobs["jobs"].as_array()?.first()?.clone();
        (job["state"] == "copying").then_some(())
    });
}

#[test]
fn a_service_killed_during_a_re_encode_leaves_the_object_whole_at_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, config, data_dir) = reencode_setup(dir.path());
    let slow = [("STRATA_FAULTS", "dst:publish:latency=2s")];
    let service = Service::start_with_env(&config, &data_dir, &[], &slow);
    let data = content((3 << 20) + 11);
    start_reencode(&service, &data);
    // The accesses that made it hot are in the catalog (so its class survives the crash).
    eventually(WAIT, "the access statistics flushed", || {
        (metric(&service, "strata_access_dirty_rows ") == 0.0).then_some(())
    });
    service.kill();
    // Killed midway: the old encoding is whole (the new one is not verified yet).
    assert_eq!(
        fragments(&domains).len(),
        6,
        "the old fragments went before the new copies"
    );
    assert!(
        replicas(&domains).len() < 3,
        "the re-encode was not caught midway"
    );

    let service = Service::start(&config, &data_dir, &[]);
    let (status, body) = get(&service);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body == data, "after the crash a read returned other bytes");
    eventually(WAIT, "the resumed re-encode done", || {
        let jobs = get_json(&service.url, &format!("/v1/jobs?key={KEY}"));
        let job = jobs["jobs"].as_array()?.first()?.clone();
        (job["state"] == "done").then_some(())
    });
    assert_replicas(&domains, &data, 3);
    assert!(
        fragments(&domains).is_empty(),
        "orphan fragments: {:?}",
        fragments(&domains)
    );
    let scrub = service.json(&["scrub", "red"]);
    assert_eq!(scrub["tiers"][0]["healthy"], 1, "{scrub}");
    assert_eq!(scrub["tiers"][0]["not_at_policy"], 0, "{scrub}");
    let (status, body) = get(&service);
    assert!(status == 200 && body == data);
}

#[test]
fn a_hundred_concurrent_readers_get_the_right_bytes_during_a_re_encode() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, config, data_dir) = reencode_setup(dir.path());
    let slow = [("STRATA_FAULTS", "dst:publish:latency=300ms")];
    let service = Service::start_with_env(&config, &data_dir, &[], &slow);
    let data = content((1 << 20) + 7);
    start_reencode(&service, &data);
    let url = service.url.clone();
    let readers: Vec<_> = (0..100)
        .map(|_| {
            let (url, data) = (url.clone(), data.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                let until = Instant::now() + Duration::from_secs(3);
                while Instant::now() < until {
                    let (status, _, body) =
                        http(&url, "GET", &format!("/v1/objects/{KEY}"), b"").unwrap();
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                    assert!(body == data, "a concurrent read returned other bytes");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let reads: u32 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads >= 100);
    eventually(WAIT, "the re-encode done", || {
        let jobs = get_json(&service.url, &format!("/v1/jobs?key={KEY}"));
        let job = jobs["jobs"].as_array()?.first()?.clone();
        (job["state"] == "done").then_some(())
    });
    assert_replicas(&domains, &data, 3);
    assert!(fragments(&domains).is_empty());
}

#[test]
fn a_re_encode_whose_object_is_deleted_while_it_waits_its_turn_holds_up_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, config, data_dir) = reencode_setup(dir.path());
    // Each re-encode's publish is slow, so the later ones wait their turn.
    let slow = [("STRATA_FAULTS", "dst:publish:latency=500ms")];
    let service = Service::start_with_env(&config, &data_dir, &[], &slow);
    let keys = ["turns/a.bin", "turns/b.bin", "turns/c.bin"];
    let data = content((1 << 20) + 3);
    for key in keys {
        put_key(&service, key, &data);
        let out = service.run(&["access", key, "--count", "5"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Each read answers, then plans the key's re-encode; one runs, the others wait.
    for key in keys {
        let (status, body) = get_key(&service, key);
        assert!(status == 200 && body == data, "GET {key}: {status}");
    }
    eventually(WAIT, "three re-encodes planned", || {
        keys.iter()
            .all(|key| job_state(&service, key).is_some())
            .then_some(())
    });
    let (status, _, body) = http(
        &service.url,
        "DELETE",
        &format!("/v1/objects/{}", keys[1]),
        b"",
    )
    .unwrap();
    assert!(
        (200..300).contains(&status),
        "{}",
        String::from_utf8_lossy(&body)
    );
    for key in [keys[0], keys[2]] {
        eventually(WAIT, "the other re-encodes done", || {
            (job_state(&service, key)? == "done").then_some(())
        });
    }
    let deleted = job_state(&service, keys[1]).unwrap();
    assert!(
        deleted == "cancelled" || deleted == "done",
        "the deleted object's re-encode is {deleted}"
    );
    for key in [keys[0], keys[2]] {
        let copies = domains
            .iter()
            .filter_map(|d| std::fs::read(d.join("objects").join(key)).ok())
            .filter(|copy| *copy == data)
            .count();
        assert_eq!(copies, 3, "{key} has {copies} good replicas");
    }
    // The deleted key can be written and re-encoded again: nothing of its old job is left
    // holding a place in the re-encode queue, and its ended job (same key, same
    // generation, same encodings) does not stand for the new one.
    let again = content((1 << 20) + 9);
    put_key(&service, keys[1], &again);
    let out = service.run(&["access", keys[1], "--count", "5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(WAIT, "the new object's re-encode done", || {
        let (status, body) = get_key(&service, keys[1]);
        assert!(status == 200 && body == again, "GET {}: {status}", keys[1]);
        (job_state(&service, keys[1])? == "done").then_some(())
    });
}

/// A tmpfs of `size` mounted at `at` until dropped (the tests run as root).
/// The domains (indices into `domains`) that `replicate:N` puts `key`'s copies on, as the
/// service places them (rendezvous order of the object's path in the tier).
fn replica_domains(domains: &[PathBuf], key: &str, copies: usize) -> Vec<usize> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stores: Vec<strata_store::Store> = domains
        .iter()
        .map(|path| {
            let uri = strata_store::StoreUri::parse(&path.display().to_string()).unwrap();
            runtime
                .block_on(strata_store::Store::open(&uri, &Default::default()))
                .unwrap()
        })
        .collect();
    let rel = strata_server::tiers::Tier::object_path(key);
    let mut order = strata_redundancy::placement::placement(&stores, &rel);
    order.truncate(copies);
    order
}

#[test]
fn a_domain_that_fills_up_fails_re_encodes_cleanly_and_a_retry_finishes_once_room_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, config, data_dir) = reencode_setup(dir.path());
    // Domain 5 is a small disk: room for its fragments, and then not for a whole replica.
    let disk = SmallDisk::mount(&domains[5], "24m");
    let service = Service::start(&config, &data_dir, &[]);
    // Placement hashes the domains' paths, which are random: the first key is one whose
    // replicas include the small domain, so that at least one re-encode must fail.
    let on_small = (0..)
        .map(|i| format!("full/o{i}.bin"))
        .find(|key| replica_domains(&domains, key, 3).contains(&5))
        .unwrap();
    let mut keys = vec![on_small.clone()];
    keys.extend(
        (0..)
            .map(|i| format!("full/o{i}.bin"))
            .filter(|key| *key != on_small)
            .take(3),
    );
    let objects: Vec<Vec<u8>> = (0..4).map(|i| content((4 << 20) + i)).collect();
    for (key, data) in keys.iter().zip(&objects) {
        put_key(&service, key, data);
        let out = service.run(&["access", key, "--count", "5"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Leave half a MiB: each re-encode that frees a 1 MiB fragment there cannot make room
    // for a 4 MiB replica, however many ran before.
    let filler = domains[5].join("filler");
    std::fs::write(&filler, vec![0u8; (disk.free() - (512 << 10)) as usize]).unwrap();
    for (key, data) in keys.iter().zip(&objects) {
        let (status, body) = get_key(&service, key);
        assert!(status == 200 && body == *data, "GET {key}: {status}");
    }
    let ended = |key: &str| {
        let state = job_state(&service, key)?;
        ["done", "failed"]
            .contains(&state.as_str())
            .then_some(state)
    };
    let states: Vec<String> = keys
        .iter()
        .map(|key| eventually(WAIT, "the re-encodes ended", || ended(key)))
        .collect();
    let failed: Vec<&String> = keys
        .iter()
        .zip(&states)
        .filter(|(_, state)| *state == "failed")
        .map(|(key, _)| key)
        .collect();
    assert!(
        failed.contains(&&keys[0]),
        "{} has a replica on the full domain, yet its re-encode ended {states:?}",
        keys[0]
    );
    for key in &failed {
        let jobs = get_json(&service.url, &format!("/v1/jobs?key={key}"));
        let error = jobs["jobs"][0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains(&domains[5].display().to_string()), "{error}");
    }
    // Every object reads back whole, the failed ones from their fragments, which are all
    // still there; nothing staged is left on any domain.
    for (key, data) in keys.iter().zip(&objects) {
        let (status, body) = get_key(&service, key);
        assert!(
            status == 200 && body == *data,
            "GET {key} after the re-encodes: {status}"
        );
    }
    for key in &failed {
        let pieces = fragments(&domains)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(key.as_str()))
            .count();
        assert_eq!(pieces, 6, "{key}: {pieces} fragments left");
    }
    assert!(
        staged_pieces(&domains).is_empty(),
        "{:?}",
        staged_pieces(&domains)
    );

    // Room made: an operator's retry finishes each failed re-encode.
    std::fs::remove_file(&filler).unwrap();
    for key in &failed {
        let jobs = get_json(&service.url, &format!("/v1/jobs?key={key}"));
        let id = jobs["jobs"][0]["id"].as_u64().unwrap();
        let (status, _, body) =
            http(&service.url, "POST", &format!("/v1/jobs/{id}/retry"), b"").unwrap();
        assert!(
            (200..300).contains(&status),
            "{}",
            String::from_utf8_lossy(&body)
        );
        eventually(WAIT, "the retried re-encode done", || {
            (job_state(&service, key)? == "done").then_some(())
        });
    }
    for (key, data) in keys.iter().zip(&objects) {
        let copies = domains
            .iter()
            .filter_map(|d| std::fs::read(d.join("objects").join(key)).ok())
            .filter(|copy| copy == data)
            .count();
        assert_eq!(copies, 3, "{key}: {copies} good replicas");
    }
    assert!(fragments(&domains).is_empty(), "{:?}", fragments(&domains));
    service.stop();
}

/// PUTs `data` to `key` as a chunked body (no `Content-Length`: the length is known only
/// at its end), 1 MiB a chunk; `break_after`: close the connection after that many bytes.
/// The status line's code, or `None` when broken off.
fn put_chunked(
    service: &Service,
    key: &str,
    data: &[u8],
    break_after: Option<usize>,
) -> Option<u16> {
    use std::io::{Read, Write};
    let host = service.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "PUT /v1/objects/{key} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let stop = break_after.unwrap_or(data.len());
    for piece in data[..stop].chunks(1 << 20) {
        write!(stream, "{:x}\r\n", piece.len()).unwrap();
        stream.write_all(piece).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    if break_after.is_some() {
        stream.shutdown(std::net::Shutdown::Both).unwrap();
        return None;
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
}

/// The service's peak resident memory so far (`VmHWM`), in MiB.
fn peak_rss_mib(service: &Service) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", service.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    eprintln!("service VmHWM {kib} kB");
    kib >> 10
}

/// Files in the service's spool directory (writes of unknown length to tiers with domains).
fn spooled(data_dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(data_dir.join("spool")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_chunked_put_larger_than_memory_s_share_spools_to_disk_and_lands_as_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, list) = domains(dir.path(), "red", 6);
    let (config, data_dir) = write_config(dir.path(), &list, "ec:4+2", "");
    let service = Service::start(&config, &data_dir, &[]);
    // Past the 8 MiB kept in memory: the rest waits in the spool until the length is known,
    // so the service's peak memory stays far below the object's size.
    let data = content((160 << 20) + 77);
    assert_eq!(put_chunked(&service, KEY, &data, None), Some(201));
    let peak = peak_rss_mib(&service);
    assert!(
        peak < 128,
        "the service peaked at {peak} MiB for a 160 MiB chunked PUT: the object was held in memory"
    );
    let (status, body) = get(&service);
    assert_eq!(status, 200);
    assert!(body == data, "the chunked PUT read back other bytes");
    assert_eq!(fragments(&domains).len(), 6, "one fragment per domain");
    assert!(spooled(&data_dir).is_empty(), "{:?}", spooled(&data_dir));

    // A client that breaks off past the memory share leaves the old object, no fragments of
    // the broken write and nothing in the spool.
    assert_eq!(
        put_chunked(&service, KEY, &content(30 << 20), Some(15 << 20)),
        None
    );
    eventually(WAIT, "the broken-off write to be abandoned", || {
        spooled(&data_dir).is_empty().then_some(())
    });
    let (status, body) = get(&service);
    assert_eq!(status, 200);
    assert!(body == data, "a broken-off PUT changed the object");
    assert_eq!(fragments(&domains).len(), 6, "{:?}", fragments(&domains));
}

/// Files in the staging areas of `domains` (pieces being written, not yet published).
fn staged_pieces(domains: &[PathBuf]) -> Vec<PathBuf> {
    domains
        .iter()
        .filter_map(|d| std::fs::read_dir(d.join(".strata").join("staging")).ok())
        .flat_map(|entries| entries.map(|e| e.unwrap().path()))
        .collect()
}

#[test]
fn a_service_killed_during_a_rebuild_keeps_the_object_readable_and_rebuilds_it_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (domains, list) = domains(dir.path(), "red", 6);
    let (config, data_dir) = write_config(dir.path(), &list, "ec:4+2", "");
    // The rebuild's publish is slowed, so the kill catches it with its fragment staged.
    let slow = [("STRATA_FAULTS", "dst:publish:latency=3s")];
    let service = Service::start_with_env(&config, &data_dir, &[], &slow);
    let data = content((5 << 20) + 9);
    put(&service, &data);
    let pieces = fragments(&domains);
    assert_eq!(pieces.len(), 6);
    std::fs::remove_file(&pieces[2]).unwrap();
    let (status, body) = get(&service);
    assert!(status == 200 && body == data, "the degraded read failed");
    eventually(WAIT, "the rebuild to stage the lost fragment", || {
        (!staged_pieces(&domains).is_empty()).then_some(())
    });
    service.kill();
    assert_eq!(
        fragments(&domains).len(),
        5,
        "the rebuild was not caught midway"
    );

    let service = Service::start(&config, &data_dir, &[]);
    assert!(
        staged_pieces(&domains).is_empty(),
        "the killed rebuild's staged pieces survived the restart: {:?}",
        staged_pieces(&domains)
    );
    let (status, body) = get(&service);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body == data, "after the crash a read returned other bytes");
    eventually(WAIT, "every fragment whole again", || {
        let scrub = service.json(&["scrub", "red"]);
        (scrub["tiers"][0]["healthy"] == 1).then_some(())
    });
    assert_eq!(fragments(&domains).len(), 6, "{:?}", fragments(&domains));
    let (status, body) = get(&service);
    assert!(status == 200 && body == data);
}
