//! End to end: `strata serve` with its cold tier on Azure Blob (Azurite), on Google Cloud
//! Storage (fake-gcs-server) and on OpenStack Swift (a one-node cluster of PyPI's `swift`),
//! all on loopback. An object is PUT, moved to the cloud tier, found there as a plain
//! object, and read back whole through the service; from Swift it is also moved back.

mod serve_common;

use std::time::Duration;

use serve_common::*;
use strata_store::testing::emulators::{azurite, fake_gcs, AZURITE_ACCOUNT, AZURITE_KEY};
use strata_store::testing::swift::swift;
use strata_store::{AzblobOptions, S3Options, Store, StoreUri};

const WAIT: Duration = Duration::from_secs(60);

/// Deterministic bytes, 3 MiB and a bit: more than one read span.
fn payload() -> Vec<u8> {
    (0..3 * 1024 * 1024 + 333)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// The keys stored under `uri` (read with the store crate, as any client of the cloud would).
fn keys_on(uri: &str, options: &S3Options) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&StoreUri::parse(uri).unwrap(), options)
            .await
            .unwrap();
        let entries = store.list(&mut |_| {}).await.unwrap();
        entries.into_iter().map(|e| e.path).collect()
    })
}

/// PUT, `strata move KEY cold`, the object on the cloud tier, GET back byte-identical;
/// with `and_back`, then `strata move KEY warm`: off the cloud tier, still byte-identical.
fn cold_tier_round_trip(cold: &str, env: &[(&str, &str)], options: &S3Options, and_back: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let path = dir.path().join("strata.toml");
    // Rules that never move anything by themselves: the test moves by hand.
    std::fs::write(&path, config(&data_dir, cold, "1h", "2h", "1h")).unwrap();
    let service = Service::start_with_env(&path, &data_dir, &[], env);
    let key = "results/run-7.bin";
    let data = payload();

    let (status, _, body) =
        http(&service.url, "PUT", &format!("/v1/objects/{key}"), &data).unwrap();
    assert!(
        (200..300).contains(&status),
        "PUT: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let moved = service.run(&["move", key, "cold"]);
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    let job = ended_move(&service.url, key, WAIT);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["to_tier"], "cold", "{job}");

    // The tier keeps its objects under `objects/`, as plain blobs of the cloud.
    let on_cloud = keys_on(cold, options);
    assert_eq!(on_cloud, [format!("objects/{key}")]);

    let (status, _, body) = http(&service.url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
    assert_eq!(status, 200);
    assert!(
        body == data,
        "the object read back from the cloud tier differs"
    );
    if and_back {
        move_back_to_warm(&service, key, &data, cold, options);
    }
    service.stop();
}

/// `strata move KEY warm` from the cloud tier: the job ends done, the cloud tier no longer
/// holds the object, and the service still returns its bytes.
fn move_back_to_warm(service: &Service, key: &str, data: &[u8], cold: &str, options: &S3Options) {
    let moved = service.run(&["move", key, "warm"]);
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    let job = eventually(WAIT, "the move back to warm to end", || {
        let job = ended_move(&service.url, key, WAIT);
        (job["to_tier"] == "warm").then_some(job)
    });
    assert_eq!(job["state"], "done", "{job}");
    assert!(keys_on(cold, options).is_empty(), "left on the cloud tier");
    let (status, _, body) = http(&service.url, "GET", &format!("/v1/objects/{key}"), b"").unwrap();
    assert_eq!(status, 200);
    assert!(body == data, "the object moved back from the cloud differs");
}

#[test]
fn a_cold_tier_on_azure_blob_takes_and_returns_objects() {
    let azurite = azurite();
    let container = azurite.new_namespace();
    let cold = format!(
        "azblob://{container}/tiers/cold?endpoint={}",
        azurite.endpoint()
    );
    let env = [
        ("AZURE_STORAGE_ACCOUNT", AZURITE_ACCOUNT),
        ("AZURE_STORAGE_KEY", AZURITE_KEY),
    ];
    let options = S3Options {
        azblob: AzblobOptions {
            account: Some(AZURITE_ACCOUNT.into()),
            account_key: Some(AZURITE_KEY.into()),
            ..AzblobOptions::default()
        },
        ..S3Options::default()
    };
    cold_tier_round_trip(&cold, &env, &options, false);
}

#[test]
fn a_cold_tier_on_gcs_takes_and_returns_objects() {
    let gcs = fake_gcs();
    let bucket = gcs.new_namespace();
    let cold = format!("gs://{bucket}/tiers/cold?endpoint={}", gcs.endpoint());
    cold_tier_round_trip(&cold, &[], &S3Options::default(), false);
}

#[test]
fn a_swift_tier_takes_objects_and_gives_them_back() {
    let server = swift();
    let container = server.new_container();
    let cold = format!("swift://{container}/tiers/cold");
    // v1 authentication from the service's environment (ST_AUTH, ST_USER, ST_KEY).
    let env = server.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let options = S3Options {
        swift: server.options(),
        ..S3Options::default()
    };
    cold_tier_round_trip(&cold, &env, &options, true);
}
