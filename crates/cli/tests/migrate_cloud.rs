//! `strata migrate` to and from Azure Blob (Azurite), Google Cloud Storage
//! (fake-gcs-server) and OpenStack Swift (a one-node cluster of PyPI's `swift`), all on
//! loopback: a directory of real files from the shared data set, read in place, goes up, is
//! verified there, comes back byte-identical.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use strata_store::testing::emulators::{azurite, fake_gcs, AZURITE_ACCOUNT, AZURITE_KEY};
use strata_store::testing::swift::{swift, SWIFT_KEY};

/// Real files (ROOT files of particle physics, 10 MB, one over 8 MiB so that it goes up in
/// several blocks or resumable chunks), read where they lie.
const DATASET: &str = "/work/shared/data/scientific/hep";

/// Runs `strata ARGS` with the environment `env`.
fn run_with(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = sb.strata();
    cmd.args(args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().expect("run strata")
}

/// Up to `remote`, verify there, back to a local directory: byte-identical, same root
/// hash, and no credential printed.
fn round_trip(remote: &str, env: &[(&str, &str)], secret: Option<&str>) {
    let sb = Sandbox::new();
    let back = sb.path("back");
    let files = list_files(Path::new(DATASET));
    assert!(
        files.len() >= 3,
        "the shared data set is missing: {files:?}"
    );

    let out = run_with(&sb, &["migrate", DATASET, remote, "--json"], env);
    assert!(out.status.success(), "{}", stderr(&out));
    let up = json(&out);
    assert_eq!(up["files"], files.len());

    let out = run_with(&sb, &["verify", remote, "--json"], env);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(json(&out)["files_ok"], files.len());

    let out = run_with(
        &sb,
        &["migrate", remote, back.to_str().unwrap(), "--json"],
        env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["root_hash"], up["root_hash"]);
    assert_eq!(list_files(&back), files);
    for rel in &files {
        let original = std::fs::read(Path::new(DATASET).join(rel)).unwrap();
        let copy = std::fs::read(back.join(rel)).unwrap();
        assert!(original == copy, "{rel} differs after the round trip");
    }

    if let Some(secret) = secret {
        let status = stdout(&run_with(&sb, &["status"], env));
        assert!(
            status.contains(remote.split('?').next().unwrap()),
            "{status}"
        );
        assert!(!status.contains(secret), "{status}");
    }
}

#[test]
fn migrate_to_azure_blob_and_back_is_byte_identical() {
    let azurite = azurite();
    let container = azurite.new_namespace();
    let remote = format!("azblob://{container}/hep?endpoint={}", azurite.endpoint());
    let env = [
        ("AZURE_STORAGE_ACCOUNT", AZURITE_ACCOUNT),
        ("AZURE_STORAGE_KEY", AZURITE_KEY),
    ];
    round_trip(&remote, &env, Some(AZURITE_KEY));
}

#[test]
fn migrate_to_gcs_and_back_is_byte_identical() {
    let gcs = fake_gcs();
    let bucket = gcs.new_namespace();
    let host = gcs.endpoint().trim_start_matches("http://").to_string();
    // The endpoint comes from the environment, as Google's client libraries take it.
    let env = [("STORAGE_EMULATOR_HOST", host.as_str())];
    round_trip(&format!("gs://{bucket}/hep"), &env, None);
}

#[test]
fn a_missing_container_fails_the_migration_naming_it() {
    let sb = Sandbox::new();
    let remote = format!(
        "azblob://no-such-container/x?endpoint={}",
        azurite().endpoint()
    );
    let env = [
        ("AZURE_STORAGE_ACCOUNT", AZURITE_ACCOUNT),
        ("AZURE_STORAGE_KEY", AZURITE_KEY),
    ];
    let out = run_with(&sb, &["migrate", DATASET, &remote], &env);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("the container of azblob://no-such-container"),
        "{err}"
    );
    assert!(!err.contains(AZURITE_KEY), "{err}");
}

/// The environment `strata` reads for the shared Swift cluster (ST_AUTH, ST_USER, ST_KEY).
fn swift_env() -> Vec<(&'static str, String)> {
    swift().env()
}

fn as_pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

#[test]
fn migrate_to_swift_and_back_is_byte_identical() {
    let container = swift().new_container();
    // v1 authentication from the environment, as the `swift` client takes it; the 11 MB
    // file goes up as a static large object of 8 MiB segments.
    let env = swift_env();
    round_trip(
        &format!("swift://{container}/hep"),
        &as_pairs(&env),
        Some(SWIFT_KEY),
    );
}

#[test]
fn a_wrong_swift_key_fails_the_migration_naming_the_container() {
    let sb = Sandbox::new();
    let container = swift().new_container();
    let remote = format!("swift://{container}/x");
    let mut env = swift_env();
    let wrong = "WRONG-SWIFT-KEY";
    env.retain(|(name, _)| *name != "ST_KEY");
    env.push(("ST_KEY", wrong.to_string()));
    let out = run_with(&sb, &["migrate", DATASET, &remote], &as_pairs(&env));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&remote), "{err}");
    assert!(err.contains("ST_KEY"), "{err}");
    assert!(!err.contains(wrong), "{err}");
}
