//! Packed tiers on an in-process service: objects demoted to a `layout = "packed"` cold tier
//! (local disk, and S3 on moto) read back byte-identical, whole and by ranges that cross
//! frame boundaries; the text object takes fewer bytes there than its raw size, and the
//! tiers' usage counts those stored bytes; a promotion to a plain tier restores the plain
//! bytes; a damaged frame fails GET with `object_damaged` (never wrong bytes) and fails a
//! move, from the packed tier (source check) and onto it (verify); a restart relearns the
//! stored sizes, and a layout change of a tier that holds objects is refused by name.
//!
//! Classes are recency-only with windows of 0 s, so every object is cold as soon as it is
//! written: `POST /v1/plan` demotes, and a burst of read events promotes (reactive pass).

mod common;

use std::ops::Range;
use std::time::Duration;

use common::*;
use strata_server::{Limits, ServeOptions};
use strata_store::testing::proxy::{Fault, Proxy};
use strata_store::testing::{moto, new_bucket};
use strata_store::Store;

const WAIT: Duration = Duration::from_secs(60);
const MIB: usize = 1 << 20;

/// [`TEST_RULES`] (or `base`) with a packed cold tier and every object cold at once.
fn packed_rules(base: &str, codec: &str) -> String {
    base.replace(
        "name = \"cold\"\n",
        &format!("name = \"cold\"\nlayout = \"packed\"\ncodec = \"{codec}\"\n"),
    )
    .replace("hot_within = \"1h\"", "hot_within = \"0s\"")
    .replace("warm_within = \"2h\"", "warm_within = \"0s\"")
}

/// Log lines: compressible, but not a short repeated pattern.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "2025-12-01T{:02}:{:02}:{:02}Z station={:03} t2m={}.{} rh=0.{:02} ok\n",
                (i / 3600) % 24,
                (i / 60) % 60,
                i % 60,
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

async fn head(server: &TestServer, key: &str) -> reqwest::Response {
    let response = server
        .client
        .head(server.url(&format!("/v1/objects/{key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "HEAD {key}");
    response
}

async fn last_job(server: &TestServer, key: &str) -> Option<serde_json::Value> {
    let jobs = server.json(&format!("/v1/jobs?key={key}")).await;
    jobs["jobs"].as_array().unwrap().first().cloned()
}

async fn job_ended(server: &TestServer, key: &str, state: &str) -> serde_json::Value {
    eventually(WAIT, &format!("{key}'s last job to be {state}"), || async {
        last_job(server, key)
            .await
            .filter(|job| job["state"] == state)
    })
    .await
}

/// Waits until a move of `key` to `to` is done (its old copy retired).
async fn move_done(server: &TestServer, key: &str, to: &str) {
    eventually(WAIT, &format!("{key}'s move to {to}"), || async {
        let jobs = server.json(&format!("/v1/jobs?key={key}")).await;
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|job| job["to_tier"] == to && job["state"] == "done")
            .then_some(())
    })
    .await;
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Runs a periodic pass once the clock has moved on from every access made so far: an
/// access in the pass's own millisecond is "within 0s", so hot.
async fn plan(server: &TestServer) {
    let accessed = now_ms();
    while now_ms() <= accessed {
        tokio::task::yield_now().await;
    }
    let pass = server.post("/v1/plan", b"").await;
    assert_eq!(pass.status(), 200);
}

/// Demotes everything (a periodic pass) and waits until `keys` are on the cold tier.
async fn demote_all(server: &TestServer, keys: &[&str]) {
    plan(server).await;
    for key in keys {
        move_done(server, key, "cold").await;
    }
}

async fn ranged(server: &TestServer, key: &str, range: &str) -> reqwest::Response {
    server
        .client
        .get(server.url(&format!("/v1/objects/{key}")))
        .header("range", range)
        .send()
        .await
        .unwrap()
}

/// First and last byte, a range across one frame boundary, one across three frames, a
/// suffix and an open end: each byte-identical, with its Content-Range.
async fn check_ranges(server: &TestServer, key: &str, data: &[u8]) {
    let n = data.len();
    assert!(n > 2 * MIB + 10);
    let cases: Vec<(String, Range<usize>)> = vec![
        ("bytes=0-0".to_string(), 0..1),
        (format!("bytes={}-{}", n - 1, n - 1), n - 1..n),
        (
            format!("bytes={}-{}", MIB - 10, MIB + 9),
            MIB - 10..MIB + 10,
        ),
        (
            format!("bytes={}-{}", MIB - 1, 2 * MIB),
            MIB - 1..2 * MIB + 1,
        ),
        ("bytes=-5".to_string(), n - 5..n),
        (format!("bytes={}-", 2 * MIB + 3), 2 * MIB + 3..n),
    ];
    for (header, range) in cases {
        let response = ranged(server, key, &header).await;
        assert_eq!(response.status(), 206, "{key} {header}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {}-{}/{n}", range.start, range.end - 1).as_str(),
            "{key} {header}"
        );
        let body = response.bytes().await.unwrap();
        assert!(
            body[..] == data[range.clone()],
            "{key} {header}: wrong bytes"
        );
    }
}

/// The object's view in a listing.
async fn listed(server: &TestServer, key: &str) -> serde_json::Value {
    let listing = server.json(&format!("/v1/objects?prefix={key}")).await;
    listing["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("{key} not listed: {listing}"))
}

async fn tier_view(server: &TestServer, name: &str) -> serde_json::Value {
    let tiers = server.json("/v1/tiers").await;
    tiers["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap()
}

async fn assert_damaged(server: &TestServer, key: &str) {
    let response = server.get(&format!("/v1/objects/{key}")).await;
    assert_eq!(response.status(), 500, "a damaged copy is not served");
    let error = response.json_value().await;
    assert_eq!(error["error"]["code"], "object_damaged", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(key) && message.contains("tier cold") && message.contains("frame 1"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packed_local_tier_serves_compresses_promotes_and_reports_damage() {
    let rules = packed_rules(TEST_RULES, "auto");
    let mut server = start(&rules).await;
    let log = text(2 * MIB + 300_000);
    let blob = bytes(2 * MIB + 200_000, 7);
    let objects: [(&str, &[u8]); 4] = [
        ("logs/day-1.log", &log),
        ("runs/blob.bin", &blob),
        ("empty", b""),
        ("tiny", b"ten bytes!"),
    ];
    for (key, data) in objects {
        assert_eq!(server.put(key, data).await.status(), 201, "{key}");
    }
    let keys: Vec<&str> = objects.iter().map(|(key, _)| *key).collect();
    demote_all(&server, &keys).await;

    // Whole objects, sizes, ranges.
    for (key, data) in objects {
        assert!(server.object(key).await == data, "{key} reads back");
        let response = head(&server, key).await;
        assert_eq!(
            response.headers()["content-length"],
            data.len().to_string().as_str(),
            "{key}: HEAD reports the raw size"
        );
    }
    check_ranges(&server, "logs/day-1.log", &log).await;
    check_ranges(&server, "runs/blob.bin", &blob).await;
    assert_eq!(ranged(&server, "empty", "bytes=0-").await.status(), 416);

    // The text takes far fewer bytes than its raw size; the random blob a little more; the
    // tier's usage counts the stored bytes, which are the files' sizes.
    let cold_dir = server.tier_dir("cold").join("objects");
    let mut stored_total = 0;
    for (key, data) in objects {
        let view = listed(&server, key).await;
        assert_eq!(view["size"], data.len());
        let stored = view["stored_size"].as_u64().unwrap();
        let file = std::fs::metadata(cold_dir.join(key)).unwrap().len();
        assert_eq!(stored, file, "{key}: stored_size is the file's size");
        stored_total += stored;
    }
    let log_stored = listed(&server, "logs/day-1.log").await["stored_size"]
        .as_u64()
        .unwrap();
    assert!(
        log_stored < log.len() as u64 / 3,
        "text compresses: {log_stored} of {}",
        log.len()
    );
    let blob_stored = listed(&server, "runs/blob.bin").await["stored_size"]
        .as_u64()
        .unwrap();
    assert!(
        blob_stored > blob.len() as u64,
        "random bytes are stored raw in frames"
    );
    let on_disk = std::fs::read(cold_dir.join("logs/day-1.log")).unwrap();
    assert!(
        on_disk != log && on_disk.ends_with(b"STPT"),
        "packed on disk"
    );
    let cold = tier_view(&server, "cold").await;
    assert_eq!(cold["layout"], "packed");
    assert_eq!(cold["used_bytes"], stored_total);
    let raw_total: usize = objects.iter().map(|(_, data)| data.len()).sum();
    assert_eq!(cold["raw_bytes"], raw_total);
    let explain = server.json("/v1/explain/logs/day-1.log").await;
    assert_eq!(explain["object"]["stored_size"], log_stored);

    // Promotion to a plain tier restores the plain bytes.
    server.reads("logs/day-1.log", 40).await;
    move_done(&server, "logs/day-1.log", "hot").await;
    assert_eq!(server.tier_of("logs/day-1.log").await, "hot");
    let plain = std::fs::read(server.tier_dir("hot").join("objects/logs/day-1.log")).unwrap();
    assert!(plain == log, "the plain copy is the original file");
    assert!(
        !cold_dir.join("logs/day-1.log").exists(),
        "packed copy retired"
    );
    assert_eq!(
        listed(&server, "logs/day-1.log").await["stored_size"],
        log.len()
    );

    // A byte flipped in frame 1 on the packed tier: GET fails by name, frame 0 still
    // serves, and a move off the tier fails its source check; the object stays.
    let path = cold_dir.join("runs/blob.bin");
    let mut damaged = std::fs::read(&path).unwrap();
    damaged[MIB + 64 + 5000] ^= 0x01;
    std::fs::write(&path, &damaged).unwrap();
    assert_damaged(&server, "runs/blob.bin").await;
    let response = ranged(&server, "runs/blob.bin", "bytes=10-19").await;
    assert_eq!(response.status(), 206);
    assert!(response.bytes().await.unwrap()[..] == blob[10..20]);
    server.reads("runs/blob.bin", 40).await;
    let job = job_ended(&server, "runs/blob.bin", "failed").await;
    let error = job["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("source_damaged") && error.contains("frame 1"),
        "{error}"
    );
    assert_eq!(server.tier_of("runs/blob.bin").await, "cold");
    assert!(files_on(&server.tier_dir("hot"))
        .iter()
        .all(|file| file != "runs/blob.bin"));

    // A restart learns the stored sizes from the tier again.
    let before = tier_view(&server, "cold").await;
    let dir = server.stop().await;
    let mut server = start_in(dir, &rules, Limits::default()).await;
    let after = tier_view(&server, "cold").await;
    assert_eq!(after["used_bytes"], before["used_bytes"]);
    assert_eq!(after["objects"], before["objects"]);
    assert!(server.object("tiny").await == b"ten bytes!");
    assert!(server.object("empty").await.is_empty());
    assert!(server.object("logs/day-1.log").await == log);

    // The cold tier holds packed objects: it cannot be made plain.
    let dir = server.stop().await;
    let plain_rules = rules.replace("layout = \"packed\"\n", "");
    let options = ServeOptions::new(config(dir.path(), &plain_rules));
    let err = match strata_server::start(options).await {
        Ok(_) => panic!("a packed tier turned plain was served"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("tier[2].layout") && err.contains("packed"),
        "{err}"
    );
}

/// Flips one byte of an S3 object in place (directly on moto).
async fn flip_on_s3(store: &Store, path: &str, at: usize) {
    let mut data = store.read_all(path).await.unwrap().to_vec();
    data[at] ^= 0x01;
    store
        .write_atomic(path, bytes::Bytes::from(data))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packed_s3_tier_serves_ranges_and_reports_damage() {
    let bucket = new_bucket();
    let rules = packed_rules(
        &rules_with_s3_tier("cold", &bucket, &moto().endpoint()),
        "zstd:19",
    );
    let server = start_with(
        tempfile::tempdir().unwrap(),
        &rules,
        Limits::default(),
        moto_s3_options(),
    )
    .await;
    let s3 = direct_store(&bucket).await;
    let log = text(2 * MIB + 123_456);
    let blob = bytes(2 * MIB + 99_999, 3);
    for (key, data) in [("a/log.txt", &log), ("a/blob.bin", &blob)] {
        assert_eq!(server.put(key, data).await.status(), 201);
    }
    assert_eq!(server.put("a/empty", b"").await.status(), 201);
    demote_all(&server, &["a/log.txt", "a/blob.bin", "a/empty"]).await;

    assert!(server.object("a/log.txt").await == log);
    assert!(server.object("a/blob.bin").await == blob);
    assert!(server.object("a/empty").await.is_empty());
    check_ranges(&server, "a/log.txt", &log).await;
    check_ranges(&server, "a/blob.bin", &blob).await;
    let stored = s3.stat("objects/a/log.txt").await.unwrap().unwrap().size;
    assert!(
        stored < log.len() as u64 / 3,
        "zstd:19 on S3: {stored} of {}",
        log.len()
    );
    assert_eq!(listed(&server, "a/log.txt").await["stored_size"], stored);
    let cold = tier_view(&server, "cold").await;
    assert!(cold["used_bytes"].as_u64().unwrap() < cold["raw_bytes"].as_u64().unwrap());

    // Promoted to the plain hot tier: the file there is the original.
    server.reads("a/log.txt", 40).await;
    move_done(&server, "a/log.txt", "hot").await;
    let plain = std::fs::read(server.tier_dir("hot").join("objects/a/log.txt")).unwrap();
    assert!(plain == log, "the plain copy is the original file");
    assert_eq!(s3.stat("objects/a/log.txt").await.unwrap(), None);

    // A damaged frame on S3: refused by name, never served.
    flip_on_s3(&s3, "objects/a/blob.bin", MIB + 64 + 777).await;
    assert_damaged(&server, "a/blob.bin").await;
    let response = ranged(&server, "a/blob.bin", &format!("bytes={}-", MIB + 10)).await;
    assert_eq!(response.status(), 500, "the damaged frame is in the range");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_damaged_on_a_packed_tier_fails_its_verify_and_is_not_switched() {
    let bucket = new_bucket();
    let proxy = Proxy::start(&moto().endpoint()).await;
    let rules = packed_rules(
        &rules_with_s3_tier("cold", &bucket, &proxy.endpoint()),
        "zstd:3",
    );
    let server = start_with(
        tempfile::tempdir().unwrap(),
        &rules,
        Limits::default(),
        moto_s3_options(),
    )
    .await;
    let s3 = direct_store(&bucket).await;
    let key = "v/data.txt";
    let data = text(MIB + 500_000);
    assert_eq!(server.put(key, &data).await.status(), 201);

    // The copy's PUT reaches S3 and its answer waits; meanwhile a byte of frame 1 is
    // flipped in the store, so the verify reads back a damaged copy.
    let copy_path = format!("tier/objects/{key}");
    proxy.hold("PUT", &copy_path);
    plan(&server).await;
    proxy
        .wait_for("PUT", &copy_path, "the copy to reach the store", |a| {
            a.held && a.forwarded.is_some()
        })
        .await;
    let on_s3 = s3.read_all(&format!("objects/{key}")).await.unwrap();
    let table = on_s3.len() - 32 - 2 * 40;
    let frame_1 = u64::from_le_bytes(on_s3[table..table + 8].try_into().unwrap()) as usize;
    flip_on_s3(&s3, &format!("objects/{key}"), frame_1 + 100).await;
    proxy.release();

    let job = job_ended(&server, key, "failed").await;
    let error = job["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("verify_mismatch") && error.contains("frame 1"),
        "{error}"
    );
    assert_eq!(server.tier_of(key).await, "warm");
    assert!(server.object(key).await == data);
    assert_eq!(
        s3.stat(&format!("objects/{key}")).await.unwrap(),
        None,
        "the damaged copy is deleted"
    );

    // The next pass retries the move, which now succeeds.
    plan(&server).await;
    move_done(&server, key, "cold").await;
    assert!(server.object(key).await == data);
}

/// A packed tier's capacity counts stored bytes: two text objects whose raw sizes add up to
/// more than the capacity both fit, compressed; the tier never holds more than it may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packed_tier_capacity_counts_stored_bytes() {
    let rules = packed_rules(TEST_RULES, "zstd:3").replace(
        "layout = \"packed\"\n",
        "layout = \"packed\"\ncapacity = \"1M\"\n",
    );
    let server = start(&rules).await;
    let first = text(600_000);
    let second = text(600_001);
    assert_eq!(server.put("cap/first.log", &first).await.status(), 201);
    demote_all(&server, &["cap/first.log"]).await;
    assert_eq!(server.put("cap/second.log", &second).await.status(), 201);
    demote_all(&server, &["cap/second.log"]).await;
    let cold = tier_view(&server, "cold").await;
    assert_eq!(cold["capacity_bytes"], MIB);
    assert_eq!(cold["raw_bytes"], first.len() + second.len());
    let used = cold["used_bytes"].as_u64().unwrap();
    assert!(used <= MIB as u64 / 4, "{cold}");
    assert_eq!(cold["free_bytes"], MIB as u64 - used);
    assert!(server.object("cap/first.log").await == first);
    assert!(server.object("cap/second.log").await == second);
}

/// A write to an object on a packed S3 tier whose PUT lands but is answered 403: the write
/// fails, and reconciling its intent decodes the packed bytes on the tier, finds the new
/// content (by the BLAKE3 of the raw bytes) and adopts it; a restart agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_on_a_packed_tier_is_reconciled_by_its_decoded_bytes() {
    let bucket = new_bucket();
    let proxy = Proxy::start(&moto().endpoint()).await;
    let rules = packed_rules(
        &rules_with_s3_tier("cold", &bucket, &proxy.endpoint()),
        "auto",
    );
    let mut server = start_with(
        tempfile::tempdir().unwrap(),
        &rules,
        Limits::default(),
        moto_s3_options(),
    )
    .await;
    let key = "r/run.log";
    let first = text(MIB + 1000);
    let second = text(MIB + 2000);
    assert_eq!(server.put(key, &first).await.status(), 201);
    demote_all(&server, &[key]).await;

    // Written where it is (the packed cold tier); the store keeps the bytes, the client
    // hears 403.
    proxy.inject(
        Fault::new("PUT", &format!("tier/objects/{key}"), 1, 403)
            .after_forwarding()
            .s3("AccessDenied", "Access Denied"),
    );
    let response = server.put(key, &second).await;
    assert_eq!(response.status(), 502, "the write is reported failed");
    let view = listed(&server, key).await;
    assert_eq!(
        view["generation"], 2,
        "the landed bytes were adopted: {view}"
    );
    assert_eq!(view["size"], second.len());
    assert_eq!(view["hash"], blake3::hash(&second).to_hex().as_str());
    assert!(view["stored_size"].as_u64().unwrap() < second.len() as u64 / 3);
    assert!(server.object(key).await == second);

    let dir = server.stop().await;
    let server = start_with(dir, &rules, Limits::default(), moto_s3_options()).await;
    assert_eq!(server.server.as_ref().unwrap().recovery.writes_adopted, 0);
    assert!(server.object(key).await == second);
    assert_eq!(listed(&server, key).await["generation"], 2);
}
