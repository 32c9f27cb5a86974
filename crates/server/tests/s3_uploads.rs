//! Multipart uploads in progress through the S3 front door: listed (ListMultipartUploads:
//! prefix, markers, delimiter, max-uploads) and, once abandoned for `[s3]
//! multipart_expiry`, removed with their staged parts at start-up and while the service
//! runs, counted in `/metrics`.

mod s3_common;

use std::time::Duration;

use s3_common::*;
use strata_server::Limits;

async fn list_uploads(front: &Front, query: &[(&str, &str)]) -> Answer {
    let mut query = query.to_vec();
    query.push(("uploads", ""));
    front
        .request("GET", "/strata", &query, &[], Vec::new())
        .await
}

#[tokio::test]
async fn list_multipart_uploads_by_prefix_markers_and_delimiter() {
    let front = start_default().await;
    let a = create(&front, "/strata/up/a").await;
    let mut b = [
        create(&front, "/strata/up/b").await,
        create(&front, "/strata/up/b").await,
    ];
    b.sort();
    let other = create(&front, "/strata/else/x").await;
    // A completed upload is no longer listed.
    let done = create(&front, "/strata/up/done").await;
    let part = upload_part(&front, "/strata/up/done", &done, 1, b"x".to_vec().into()).await;
    let completed = complete(
        &front,
        "/strata/up/done",
        &done,
        completion(&[(1, part.header("etag"))]),
    )
    .await;
    assert_eq!(completed.status, 200, "{}", completed.text());

    let all = list_uploads(&front, &[("prefix", "up/")]).await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(all.tags("Key"), ["up/a", "up/b", "up/b"]);
    assert_eq!(
        all.tags("UploadId"),
        [a.clone(), b[0].clone(), b[1].clone()]
    );
    assert_eq!(all.tag("IsTruncated"), "false");
    assert!(!all.tag("Initiated").is_empty(), "{}", all.text());

    // Two at a time: the page ends inside b's uploads and the markers resume there.
    let first = list_uploads(&front, &[("prefix", "up/"), ("max-uploads", "2")]).await;
    assert_eq!(first.tags("UploadId"), [a.clone(), b[0].clone()]);
    assert_eq!(first.tag("IsTruncated"), "true");
    assert_eq!(first.tag("NextKeyMarker"), "up/b");
    assert_eq!(first.tag("NextUploadIdMarker"), b[0]);
    let rest = list_uploads(
        &front,
        &[
            ("prefix", "up/"),
            ("key-marker", "up/b"),
            ("upload-id-marker", b[0].as_str()),
        ],
    )
    .await;
    assert_eq!(rest.tags("UploadId"), [b[1].clone()]);
    assert_eq!(rest.tag("IsTruncated"), "false");

    let rolled = list_uploads(&front, &[("delimiter", "/")]).await;
    assert!(rolled.tags("UploadId").is_empty(), "{}", rolled.text());
    assert_eq!(
        rolled.tags("CommonPrefixes"),
        ["<Prefix>else/</Prefix>", "<Prefix>up/</Prefix>"]
    );
    let everything = list_uploads(&front, &[]).await;
    assert!(everything.tags("UploadId").contains(&other));

    let bad = list_uploads(&front, &[("max-uploads", "-1")]).await;
    assert_eq!(bad.code(), "InvalidArgument", "{}", bad.text());
    let unknown = front
        .request("GET", "/nosuch", &[("uploads", "")], &[], Vec::new())
        .await;
    assert_eq!(unknown.code(), "NoSuchBucket");
}

/// Sets the modification time of `dir` and everything in it to two hours ago.
fn age(dir: &std::path::Path) {
    let past = std::time::SystemTime::now() - Duration::from_secs(7200);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::File::open(&path)
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
    std::fs::File::open(dir)
        .unwrap()
        .set_modified(past)
        .unwrap();
}

#[tokio::test]
async fn abandoned_uploads_expire_at_start_up_and_fresh_ones_stay() {
    let expiry = "\n[s3]\nmultipart_expiry = \"1h\"\n";
    let front = start_front(expiry, Limits::default()).await;
    let old = create(&front, "/strata/mp/old").await;
    upload_part(&front, "/strata/mp/old", &old, 1, vec![1u8; 1000].into()).await;
    let fresh = create(&front, "/strata/mp/fresh").await;
    age(&staging(&front).join(&old));

    let front = front.restart(expiry).await;
    assert!(!staging(&front).join(&old).exists());
    assert!(staging(&front).join(&fresh).exists());
    let gone = upload_part(&front, "/strata/mp/old", &old, 2, b"x".to_vec().into()).await;
    assert_eq!(gone.code(), "NoSuchUpload");
    let listed = list_uploads(&front, &[("prefix", "mp/")]).await;
    assert_eq!(listed.tags("UploadId"), [fresh]);
    let metrics = front.metrics().await;
    assert!(
        metrics.contains("strata_s3_uploads_expired_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn abandoned_uploads_expire_while_the_service_runs() {
    let front = start_front("\n[s3]\nmultipart_expiry = \"2s\"\n", Limits::default()).await;
    let id = create(&front, "/strata/mp/idle").await;
    let dir = staging(&front).join(&id);
    age(&dir);
    // Counted once removed: waiting for the count waits for the removal.
    common::eventually(
        Duration::from_secs(60),
        "the expired upload's removal",
        || {
            let front = &front;
            async move {
                let metrics = front.metrics().await;
                metrics
                    .contains("strata_s3_uploads_expired_total 1\n")
                    .then_some(())
            }
        },
    )
    .await;
    assert!(!dir.exists());
    let gone = upload_part(&front, "/strata/mp/idle", &id, 1, b"x".to_vec().into()).await;
    assert_eq!(gone.code(), "NoSuchUpload");
}

#[test]
fn a_zero_multipart_expiry_is_refused_naming_the_field() {
    let err = strata_heat::TieringConfig::parse("[s3]\nmultipart_expiry = \"0s\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("s3.multipart_expiry"), "{err}");
}

#[tokio::test]
async fn a_zero_multipart_expiry_built_in_code_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path(), &toml(""));
    config.s3.multipart_expiry = Duration::ZERO;
    let mut options = strata_server::ServeOptions::new(config);
    options.s3_front_keys = Some((ACCESS.to_string(), SECRET.to_string()));
    let err = match strata_server::start(options).await {
        Ok(_) => panic!("a service with a zero multipart expiry started"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("s3.multipart_expiry"), "{err}");
}
