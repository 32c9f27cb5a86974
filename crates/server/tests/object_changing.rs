//! An object written while its move is in flight is not moved with stale bytes: the job
//! ends `skipped` with `object_changing`, the object keeps the new bytes, and no copy is
//! left on the target tier. The interleaving is made deterministic by an S3 tier behind a
//! proxy that holds one store request's answer until the test has written the object.
//! Each case runs with the S3 tier plain and packed (compressed frames): the generation
//! check does not depend on how the bytes are stored.

mod common;

use std::time::Duration;

use common::*;
use strata_server::Limits;
use strata_store::testing::proxy::Proxy;
use strata_store::testing::{moto, new_bucket};
use strata_store::Store;

const WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Plain,
    Packed,
}

async fn s3_server(s3_tier: &str, layout: Layout) -> (TestServer, Proxy, Store) {
    let bucket = new_bucket();
    let proxy = Proxy::start(&moto().endpoint()).await;
    let mut rules = rules_with_s3_tier(s3_tier, &bucket, &proxy.endpoint());
    if layout == Layout::Packed {
        let name = format!("name = \"{s3_tier}\"\n");
        rules = rules.replace(&name, &format!("{name}layout = \"packed\"\n"));
    }
    let server = start_with(
        tempfile::tempdir().unwrap(),
        &rules,
        Limits::default(),
        moto_s3_options(),
    )
    .await;
    (server, proxy, direct_store(&bucket).await)
}

async fn job_of(server: &TestServer, key: &str) -> Option<serde_json::Value> {
    let jobs = server.json(&format!("/v1/jobs?key={key}")).await;
    jobs["jobs"].as_array().unwrap().first().cloned()
}

async fn job_ended(server: &TestServer, key: &str) -> serde_json::Value {
    eventually(WAIT, &format!("{key}'s job to end"), || async {
        job_of(server, key).await.filter(|job| {
            !matches!(
                job["state"].as_str(),
                Some("planned" | "copying" | "verifying" | "switching" | "retiring")
            )
        })
    })
    .await
}

/// The bytes on the S3 tier are `raw` as the layout stores it: the raw bytes on a plain
/// tier; frames ending in the packed trailer's magic on a packed one (the object's content
/// is checked through the service, which decodes them).
fn assert_stored(layout: Layout, stored: &[u8], raw: &[u8]) {
    match layout {
        Layout::Plain => assert!(stored == raw, "the current copy holds the new bytes"),
        Layout::Packed => assert!(
            stored != raw && stored.ends_with(b"STPT"),
            "the tier stores packed frames"
        ),
    }
}

fn assert_object_changing(job: &serde_json::Value) {
    assert_eq!(job["state"], "skipped", "{job}");
    assert!(
        job["last_error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("object_changing"),
        "{job}"
    );
}

/// The object is overwritten while the move's copy is being written to the target (an S3
/// hot tier): the switch sees the new generation, deletes the copy, and skips the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_the_copy_skips_the_move_and_leaves_no_stale_copy() {
    write_during_the_copy(Layout::Plain).await;
}

/// The same with a packed target tier: a copy encoded from the old bytes never becomes
/// current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_the_copy_to_a_packed_tier_leaves_no_stale_copy() {
    write_during_the_copy(Layout::Packed).await;
}

async fn write_during_the_copy(layout: Layout) {
    let (server, proxy, hot) = s3_server("hot", layout).await;
    let first = bytes(200_000, 1);
    let second = bytes(150_000, 2);
    let key = "climate/run-9/t2m.nc";
    let copy_path = format!("tier/objects/{key}");
    assert_eq!(server.put(key, &first).await.status(), 201);

    // The copy's PUT reaches the store and its answer waits there.
    proxy.hold("PUT", &copy_path);
    server.reads(key, 30).await;
    proxy
        .wait_for("PUT", &copy_path, "the copy to reach the store", |a| {
            a.held && a.forwarded.is_some()
        })
        .await;
    let job = job_of(&server, key).await.unwrap();
    assert_eq!(job["state"], "copying", "{job}");

    // A client overwrites the object meanwhile: it is written where it is (warm).
    let response = server.put(key, &second).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json_value().await["generation"], 2);
    proxy.release();

    let job = job_ended(&server, key).await;
    assert_object_changing(&job);
    assert_eq!(server.tier_of(key).await, "warm");
    assert!(
        server.object(key).await == second,
        "the new bytes are served"
    );
    assert_eq!(files_on(&server.tier_dir("warm")), [key]);
    let warm_file = std::fs::read(server.tier_dir("warm").join("objects").join(key)).unwrap();
    assert!(warm_file == second, "the current copy holds the new bytes");
    assert_eq!(
        hot.stat(&format!("objects/{key}")).await.unwrap(),
        None,
        "the stale copy on the target tier is deleted"
    );
    assert!(!proxy.arrivals("DELETE", &copy_path).is_empty());

    // explain shows the job and why it stopped.
    let explain = server.json(&format!("/v1/explain/{key}")).await;
    let reasons: Vec<&str> = explain["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["last_error"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("object_changing")),
        "{explain}"
    );

    // The next pass plans the new content, and what lands on the hot tier is the new bytes.
    let pass = server.post("/v1/plan", b"").await;
    assert_eq!(pass.status(), 200);
    eventually(WAIT, "the new content to be moved", || async {
        let jobs = server.json(&format!("/v1/jobs?key={key}")).await;
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["state"] == "done" && j["generation"] == 2)
            .then_some(())
    })
    .await;
    assert_eq!(server.tier_of(key).await, "hot");
    let on_s3 = hot.read_all(&format!("objects/{key}")).await.unwrap();
    assert_stored(layout, &on_s3, &second);
    assert!(server.object(key).await == second);
}

/// The object is overwritten while the move reads its source copy (an S3 warm tier): the
/// write's bytes are already in the store, its record not yet committed, so the move reads
/// bytes that do not match the object's recorded hash. That is a write in flight, not
/// damage: the move waits for it and ends `object_changing`, not `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_landing_while_the_move_reads_the_source_is_object_changing_not_damage() {
    write_while_the_move_reads(Layout::Plain).await;
}

/// The same with a packed source tier: the frames of the new bytes decode cleanly but do
/// not hash to the recorded object, and that is a write in flight, not damage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_landing_while_the_move_reads_a_packed_source_is_object_changing() {
    write_while_the_move_reads(Layout::Packed).await;
}

async fn write_while_the_move_reads(layout: Layout) {
    let (server, proxy, warm) = s3_server("warm", layout).await;
    let first = bytes(200_000, 3);
    let second = bytes(200_000, 4);
    let key = "logs/day-1.gz";
    let source_path = format!("tier/objects/{key}");
    assert_eq!(server.put(key, &first).await.status(), 201);
    assert_eq!(server.tier_of(key).await, "warm");

    let running = server.server.as_ref().unwrap();
    running.set_moves_paused(true);
    server.reads(key, 30).await;
    eventually(WAIT, "the move to be planned", || async {
        job_of(&server, key)
            .await
            .filter(|job| job["state"] == "planned")
    })
    .await;

    // The overwrite's PUT lands in the store; its answer (and so its commit) waits.
    proxy.hold("PUT", &source_path);
    let (client, url, body) = (
        server.client.clone(),
        server.url(&format!("/v1/objects/{key}")),
        second.clone(),
    );
    let overwrite =
        tokio::spawn(async move { client.put(url).body(body).send().await.unwrap().status() });
    proxy
        .wait_for(
            "PUT",
            &source_path,
            "the overwrite to reach the store",
            |a| a.held && a.forwarded == Some(200),
        )
        .await;

    // The move reads the source now: the new bytes, under the old record.
    running.set_moves_paused(false);
    proxy
        // The move reads its source in ranges (206) or whole (200, a small packed copy).
        .wait_for("GET", &source_path, "the move's source read", |a| {
            matches!(a.answered, Some(200 | 206))
        })
        .await;
    proxy.release();
    assert_eq!(overwrite.await.unwrap(), 200);

    let job = job_ended(&server, key).await;
    assert_object_changing(&job);
    assert_eq!(server.tier_of(key).await, "warm");
    assert!(server.object(key).await == second);
    let on_s3 = warm.read_all(&format!("objects/{key}")).await.unwrap();
    assert_stored(layout, &on_s3, &second);
    assert!(
        files_on(&server.tier_dir("hot")).is_empty(),
        "no copy on the target tier"
    );
}
