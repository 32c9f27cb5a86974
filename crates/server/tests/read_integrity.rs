//! Every read is checked against the content's BLAKE3, chunk by chunk, before its bytes
//! reach the client (issue 10, case 3): a bit flipped on disk answers an error, never the
//! bytes; damage found after the status went out ends the body before the damaged chunk;
//! the undamaged chunks of a damaged object still read by range; a copy replaced by another
//! valid object is refused on a packed tier too; an object recorded before chunk values
//! were kept is checked whole, then gets them; a damaged copy is served from another good
//! copy of the same generation. Damage is counted in `/metrics` and shown by explain.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use sqlx::{Connection, SqliteConnection};
use strata_catalog::{ChunkHashes, SqliteCatalog, TieringCatalog};
use strata_server::Limits;
use strata_store::testing::proxy::Proxy;
use strata_store::testing::{moto, new_bucket};

const MIB: usize = 1 << 20;
const WAIT: Duration = Duration::from_secs(60);

/// [`TEST_RULES`] with the default tier (warm) in the packed layout.
fn packed_warm() -> String {
    TEST_RULES.replace(
        "name = \"warm\"\n",
        "name = \"warm\"\nlayout = \"packed\"\n",
    )
}

/// Flips one bit of the byte at `offset` of `path`.
fn flip_bit(path: &Path, offset: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[offset] ^= 0x10;
    std::fs::write(path, data).unwrap();
}

fn object_file(server: &TestServer, tier: &str, key: &str) -> std::path::PathBuf {
    server.tier_dir(tier).join("objects").join(key)
}

async fn ranged(server: &TestServer, key: &str, first: usize, last: usize) -> reqwest::Response {
    server
        .client
        .get(server.url(&format!("/v1/objects/{key}")))
        .header("range", format!("bytes={first}-{last}"))
        .send()
        .await
        .unwrap()
}

/// The value of one sample of `/metrics` (0 when absent).
async fn metric(server: &TestServer, sample: &str) -> u64 {
    let text = server.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .map_or(0, |value| value.parse().unwrap())
}

/// The body as far as it arrives, and whether it ended cleanly.
async fn body_as_far_as_it_goes(mut response: reqwest::Response) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return (body, true),
            Err(_) => return (body, false),
        }
    }
}

/// Asserts an `object_damaged` error answer for `key`, naming the key and tier, without
/// the object's hash header.
async fn assert_damaged(response: reqwest::Response, key: &str, tier: &str) {
    assert_eq!(response.status(), 500, "GET {key}");
    assert!(response.headers().get("x-strata-hash").is_none());
    let error = response.json_value().await;
    assert_eq!(error["error"]["code"], "object_damaged", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(key) && message.contains(tier), "{message}");
}

#[tokio::test]
async fn a_bit_flipped_plain_object_answers_an_error_not_its_bytes() {
    let server = start(TEST_RULES).await;
    let damage = "strata_read_damage_total{tier=\"warm\"}";
    for (key, len, at) in [
        ("small/one-chunk.bin", 300_000, 150_000),
        ("big/first-chunk.bin", 5 * MIB, 1000),
        // Found in the span read before the status goes out.
        ("big/third-mib.bin", 5 * MIB, 2 * MIB + MIB / 2),
    ] {
        assert_eq!(server.put(key, &bytes(len, 1)).await.status(), 201);
        let before = metric(&server, damage).await;
        flip_bit(&object_file(&server, "warm", key), at);

        assert_damaged(server.get(&format!("/v1/objects/{key}")).await, key, "warm").await;
        assert_eq!(metric(&server, damage).await, before + 1, "{key}");
        let explain = server.json(&format!("/v1/explain/{key}")).await;
        let lines = explain["lines"].to_string();
        assert!(
            lines.contains("damaged:") && lines.contains("write the object again"),
            "{explain}"
        );
    }
    // Writing the object again repairs it.
    let key = "small/one-chunk.bin";
    let fresh = bytes(300_000, 2);
    assert_eq!(server.put(key, &fresh).await.status(), 200);
    assert!(server.object(key).await == fresh);
}

#[tokio::test]
async fn damage_found_mid_stream_ends_the_body_before_the_damaged_chunk() {
    let server = start(TEST_RULES).await;
    let key = "climate/t2m.nc";
    let data = bytes(9 * MIB, 3);
    assert_eq!(server.put(key, &data).await.status(), 201);
    // A bit of the sixth MiB, after the first span (checked before the status).
    flip_bit(&object_file(&server, "warm", key), 5 * MIB + MIB / 2);

    let response = server.get(&format!("/v1/objects/{key}")).await;
    assert_eq!(response.status(), 200, "the first span is good");
    let (body, clean) = body_as_far_as_it_goes(response).await;
    assert!(!clean, "the body must not end as if complete");
    assert!(
        body.len() <= 5 * MIB,
        "{} bytes arrived: the damaged chunk starts at {}",
        body.len(),
        5 * MIB
    );
    assert!(
        body[..] == data[..body.len()],
        "what arrived is the object's"
    );
    assert_eq!(
        metric(&server, "strata_read_damage_total{tier=\"warm\"}").await,
        1
    );
}

#[tokio::test]
async fn ranges_of_the_undamaged_chunks_of_a_damaged_object_still_read() {
    let server = start(TEST_RULES).await;
    let key = "climate/rh.nc";
    let data = bytes(5 * MIB, 4);
    assert_eq!(server.put(key, &data).await.status(), 201);
    flip_bit(&object_file(&server, "warm", key), 2 * MIB + 7);

    for (first, last) in [(0, 2 * MIB - 1), (3 * MIB, 5 * MIB - 1), (MIB - 5, MIB + 5)] {
        let response = ranged(&server, key, first, last).await;
        assert_eq!(response.status(), 206, "bytes {first}-{last}");
        let body = response.bytes().await.unwrap();
        assert!(body[..] == data[first..=last], "bytes {first}-{last}");
    }
    // A range that starts in the damaged chunk answers the damage.
    assert_damaged(
        ranged(&server, key, 2 * MIB + 100, 2 * MIB + 200).await,
        key,
        "warm",
    )
    .await;
}

#[tokio::test]
async fn good_objects_stream_intact_whole_and_by_ranges_across_chunk_boundaries() {
    for rules in [TEST_RULES.to_string(), packed_warm()] {
        let server = start(&rules).await;
        let key = "series/run-1.dat";
        let data = bytes(5 * MIB + 123, 5);
        assert_eq!(server.put(key, &data).await.status(), 201);
        assert!(server.object(key).await == data);
        let len = data.len();
        for (first, last) in [
            (MIB - 3, MIB + 2),
            (100, 4 * MIB + 50),
            (2 * MIB, 3 * MIB - 1),
            (len - 10, len - 1),
            (0, 0),
        ] {
            let response = ranged(&server, key, first, last).await;
            assert_eq!(response.status(), 206, "bytes {first}-{last}");
            let body = response.bytes().await.unwrap();
            assert!(body[..] == data[first..=last], "bytes {first}-{last}");
        }
        for (key, data) in [("tiny/empty", Vec::new()), ("tiny/one", vec![42u8])] {
            assert_eq!(server.put(key, &data).await.status(), 201);
            assert_eq!(server.object(key).await, data);
        }
        assert_eq!(
            metric(&server, "strata_read_damage_total{tier=\"warm\"}").await,
            0
        );
    }
}

#[tokio::test]
async fn a_packed_copy_replaced_by_another_valid_object_is_refused() {
    let server = start(&packed_warm()).await;
    // Incompressible, of one length: both are stored as frames of the same sizes, so the
    // swapped file decodes and checks as a packed object, of the wrong key.
    let (a, b) = (bytes(2 * MIB + 5, 6), bytes(2 * MIB + 5, 7));
    assert_eq!(server.put("a.bin", &a).await.status(), 201);
    assert_eq!(server.put("b.bin", &b).await.status(), 201);
    std::fs::copy(
        object_file(&server, "warm", "b.bin"),
        object_file(&server, "warm", "a.bin"),
    )
    .unwrap();

    assert_damaged(server.get("/v1/objects/a.bin").await, "a.bin", "warm").await;
    assert_eq!(
        metric(&server, "strata_read_damage_total{tier=\"warm\"}").await,
        1
    );
    assert!(server.object("b.bin").await == b);
}

/// Sets the chunk values of every object to NULL, as a catalog from before they were kept.
async fn forget_chunk_values(catalog: &Path) {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", catalog.display()))
        .await
        .unwrap();
    let done = sqlx::query("UPDATE objects SET chunk_hashes = NULL")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(done.rows_affected() > 0);
    conn.close().await.unwrap();
}

async fn recorded_chunk_values(catalog: &Path, key: &str) -> Option<ChunkHashes> {
    let catalog = SqliteCatalog::open(catalog).await.unwrap();
    let placed = catalog.placed_object(key).await.unwrap().unwrap();
    catalog.close().await;
    placed.object.chunk_hashes
}

#[tokio::test]
async fn an_object_without_chunk_values_is_checked_whole_then_gets_them() {
    let mut server = start(TEST_RULES).await;
    let (good, bad) = ("legacy/good.bin", "legacy/bad.bin");
    let good_data = bytes(3 * MIB + 7, 8);
    assert_eq!(server.put(good, &good_data).await.status(), 201);
    assert_eq!(server.put(bad, &bytes(2 * MIB + 1, 9)).await.status(), 201);
    let dir = server.stop().await;
    let catalog = dir.path().join("catalog.db");
    forget_chunk_values(&catalog).await;

    let mut server = start_in(dir, TEST_RULES, Limits::default()).await;
    // Damage in the last chunk: found before any byte of the first is served.
    flip_bit(&object_file(&server, "warm", bad), 2 * MIB);
    assert_damaged(ranged(&server, bad, 0, 99).await, bad, "warm").await;
    assert_eq!(
        metric(&server, "strata_read_damage_total{tier=\"warm\"}").await,
        1
    );
    let response = ranged(&server, good, MIB + 5, 2 * MIB + 5).await;
    assert_eq!(response.status(), 206);
    let body = response.bytes().await.unwrap();
    assert!(body[..] == good_data[MIB + 5..=2 * MIB + 5]);
    assert!(
        server.object(good).await == good_data,
        "read again, by chunks"
    );

    let dir = server.stop().await;
    assert_eq!(
        recorded_chunk_values(&catalog, good).await,
        Some(ChunkHashes::compute(&good_data).1),
        "the checked object's values are recorded"
    );
    assert_eq!(recorded_chunk_values(&catalog, bad).await, None);
    drop(dir);
}

/// The object's current copy (local warm tier) is damaged while its move to the hot tier
/// (S3 behind a proxy that holds the copy's answer) has written a complete copy: the read
/// is served from that copy, checked chunk by chunk, and the move then finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_copy_is_served_from_another_copy_of_the_same_generation() {
    let bucket = new_bucket();
    let proxy = Proxy::start(&moto().endpoint()).await;
    let rules = rules_with_s3_tier("hot", &bucket, &proxy.endpoint());
    let server = start_with(
        tempfile::tempdir().unwrap(),
        &rules,
        Limits::default(),
        moto_s3_options(),
    )
    .await;
    let key = "climate/run-3/wind.nc";
    let data = bytes(6 * MIB + 11, 10);
    assert_eq!(server.put(key, &data).await.status(), 201);

    let copy_path = format!("tier/objects/{key}");
    proxy.hold("PUT", &copy_path);
    server.reads(key, 30).await;
    proxy
        .wait_for(
            "PUT",
            &copy_path,
            "the move's copy to reach the store",
            |a| a.held && a.forwarded.is_some(),
        )
        .await;
    // The fifth MiB of the current copy: the first span (four chunks) is served from it,
    // the rest, once the damage is found, from the move's copy.
    flip_bit(&object_file(&server, "warm", key), 4 * MIB + 3);

    let response = server.get(&format!("/v1/objects/{key}")).await;
    assert_eq!(response.status(), 200);
    let (body, clean) = body_as_far_as_it_goes(response).await;
    assert!(clean && body == data, "the whole object, from good copies");
    assert_eq!(
        metric(&server, "strata_read_damage_total{tier=\"warm\"}").await,
        1
    );
    assert_eq!(metric(&server, "strata_read_failovers_total").await, 1);

    proxy.release();
    eventually(WAIT, "the move to finish", || async {
        let jobs = server.json(&format!("/v1/jobs?key={key}")).await;
        (jobs["jobs"][0]["state"] == "done").then_some(())
    })
    .await;
    assert_eq!(server.tier_of(key).await, "hot");
    assert!(server.object(key).await == data);
}
