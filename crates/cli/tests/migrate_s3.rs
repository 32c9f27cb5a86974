//! End-to-end against a real S3-compatible server (moto on loopback): local → S3 → local,
//! verify on S3, and damage on S3 detected.

mod common;

use std::fs;

use common::*;
use strata_store::testing::{moto, new_bucket, TEST_KEY_ID, TEST_SECRET};

#[test]
fn local_to_s3_and_back_is_byte_identical_and_verifiable() {
    let sb = Sandbox::new();
    let (src, back) = (sb.path("src"), sb.path("back"));
    let files = sample_tree(&src);
    random_file(&src.join("big/twenty-megs"), 20 << 20, 77);
    let bucket = new_bucket();
    let remote = format!("s3://{bucket}/datasets/run1");

    let out = sb.run_s3(&[
        "migrate",
        src.to_str().unwrap(),
        &remote,
        "--chunk-size",
        "1M",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let up = json(&out);
    assert_eq!(up["files"], files.len() + 1);
    assert!(!stderr(&out).contains(TEST_SECRET));

    let out = sb.run_s3(&["verify", &remote, "--json"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(json(&out)["files_ok"], files.len() + 1);

    let out = sb.run_s3(&["migrate", &remote, back.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let down = json(&out);
    assert_eq!(
        down["root_hash"], up["root_hash"],
        "same dataset, same root hash"
    );
    assert_same_files(&src, &back, &files);
    assert_eq!(
        fs::read(src.join("big/twenty-megs")).unwrap(),
        fs::read(back.join("big/twenty-megs")).unwrap()
    );
    assert_eq!(
        b3sum(&back.join("big/twenty-megs")),
        b3sum(&src.join("big/twenty-megs"))
    );

    // The job list names the S3 side without secrets.
    let status = stdout(&sb.run(&["status"]));
    assert!(
        status.contains(&bucket) && !status.contains(TEST_SECRET),
        "{status}"
    );
}

#[test]
fn damage_on_s3_is_found_by_verify() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    sample_tree(&src);
    let bucket = new_bucket();
    let remote = format!("s3://{bucket}/ds");
    let out = sb.run_s3(&[
        "migrate",
        src.to_str().unwrap(),
        &remote,
        "--chunk-size",
        "64K",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Replace one object with other bytes of the same size, behind Strata's back.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let options = strata_store::S3Options {
            endpoint: Some(moto().endpoint()),
            access_key_id: Some(TEST_KEY_ID.into()),
            secret_access_key: Some(TEST_SECRET.into()),
            region: Some("us-east-1".into()),
            ..Default::default()
        };
        let store =
            strata_store::Store::open(&strata_store::StoreUri::parse(&remote).unwrap(), &options)
                .await
                .unwrap();
        let mut data = store.read_all("big/many").await.unwrap().to_vec();
        data[700_000] ^= 0xff;
        store.write_atomic("big/many", data.into()).await.unwrap();
        store.delete("small/f010").await.unwrap();
    });

    let out = sb.run_s3(&["verify", &remote, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = json(&out);
    let damaged = report["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 2, "{damaged:?}");
    let many = damaged.iter().find(|d| d["path"] == "big/many").unwrap();
    assert_eq!(many["ranges"], serde_json::json!([[655360, 720896]]));
    assert!(damaged
        .iter()
        .any(|d| d["path"] == "small/f010" && d["problem"] == "missing"));
}
