//! The S3 front door's object metadata, the same on every engine: a row per key (written
//! again on overwrite), read by key and by a range of keys, walked in key order, deleted
//! unconditionally or only while it describes a given content, and kept across a reopen.

use std::collections::BTreeMap;

use strata_catalog::{S3MetaCatalog, S3ObjectMeta};

use super::super::{open_tiering, reopen_tiering};

fn meta(key: &str, fill: u8, etag: &str) -> S3ObjectMeta {
    S3ObjectMeta {
        key: key.into(),
        hash: [fill; 32],
        etag: etag.into(),
        content_type: Some("text/plain; charset=utf-8".into()),
        metadata: BTreeMap::from([
            ("owner".to_string(), "ada".to_string()),
            ("note".to_string(), "ünïcode, \"quoted\"".to_string()),
        ]),
        written_ms: 1_000 + i64::from(fill),
    }
}

#[tokio::test]
async fn s3_metadata_is_kept_replaced_ranged_and_survives_a_reopen() {
    let (guard, catalog) = open_tiering().await;
    assert_eq!(catalog.s3_meta("a").await.unwrap(), None);
    let first = meta("a", 1, "0cc175b9c0f1b6a831c399e269772661");
    catalog.put_s3_meta(&first).await.unwrap();
    assert_eq!(catalog.s3_meta("a").await.unwrap(), Some(first));
    // An overwrite replaces every column, a missing Content-Type and no metadata included.
    let second = S3ObjectMeta {
        content_type: None,
        metadata: BTreeMap::new(),
        ..meta("a", 2, "d41d8cd98f00b204e9800998ecf8427e-2")
    };
    catalog.put_s3_meta(&second).await.unwrap();
    for key in ["b/1", "b/2", "c"] {
        catalog.put_s3_meta(&meta(key, 3, "e")).await.unwrap();
    }
    catalog.close().await;

    let catalog = reopen_tiering(&guard).await;
    assert_eq!(catalog.s3_meta("a").await.unwrap(), Some(second));
    let between = catalog.s3_meta_between("b/", "b/2").await.unwrap();
    let keys: Vec<&str> = between.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["b/1", "b/2"]);
    assert_eq!(between[0], meta("b/1", 3, "e"));

    let page = catalog.s3_meta_hashes(None, 2).await.unwrap();
    assert_eq!(
        page,
        [("a".to_string(), [2; 32]), ("b/1".to_string(), [3; 32])]
    );
    let rest = catalog.s3_meta_hashes(Some("b/1"), 10).await.unwrap();
    let keys: Vec<&str> = rest.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, ["b/2", "c"]);
}

#[tokio::test]
async fn s3_metadata_deletes_only_the_content_it_is_told_of() {
    let (_guard, catalog) = open_tiering().await;
    catalog.put_s3_meta(&meta("k", 1, "x")).await.unwrap();
    // A cleanup that saw another content leaves the row (a newer write made it).
    assert!(!catalog.delete_s3_meta("k", Some(&[9; 32])).await.unwrap());
    assert!(catalog.s3_meta("k").await.unwrap().is_some());
    assert!(catalog.delete_s3_meta("k", Some(&[1; 32])).await.unwrap());
    assert_eq!(catalog.s3_meta("k").await.unwrap(), None);
    catalog.put_s3_meta(&meta("k", 1, "x")).await.unwrap();
    assert!(catalog.delete_s3_meta("k", None).await.unwrap());
    assert!(!catalog.delete_s3_meta("k", None).await.unwrap());
}
