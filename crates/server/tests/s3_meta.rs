//! What S3 clients see of an object beyond its bytes, kept in the catalog: the MD5 ETag
//! (single and multipart), `Content-Type` and `x-amz-meta-*` user metadata the same after
//! a restart, copied or replaced by CopyObject, dropped (back to the derived ETag) when the
//! object is overwritten or deleted natively, the stale rows removed by the cleanup; and
//! the front door's writes and deletes in the audit log with the S3 access key id.

mod s3_common;

use s3_common::*;
use strata_catalog::{S3MetaCatalog, SqliteCatalog};

async fn head(front: &Front, path: &str) -> Answer {
    front.request("HEAD", path, &[], &[], Vec::new()).await
}

fn described(answer: &Answer) -> (String, String, String) {
    (
        answer.header("etag"),
        answer.header("content-type"),
        answer.header("x-amz-meta-owner"),
    )
}

async fn put_with_meta(front: &Front, path: &str, body: &[u8]) -> Answer {
    front
        .request(
            "PUT",
            path,
            &[],
            &[
                ("content-type", "text/csv; charset=utf-8".to_string()),
                ("x-amz-meta-owner", "ada".to_string()),
            ],
            body.to_vec(),
        )
        .await
}

/// The row the catalog at `dir` holds for `key` (the service stopped).
async fn row_in(dir: &std::path::Path, key: &str) -> Option<strata_catalog::S3ObjectMeta> {
    let catalog = SqliteCatalog::open(&dir.join("catalog.db")).await.unwrap();
    let row = catalog.s3_meta(key).await.unwrap();
    catalog.close().await;
    row
}

#[tokio::test]
async fn etags_content_type_and_metadata_survive_a_restart() {
    let front = start_default().await;
    let body = b"a,b\n1,2\n";
    let put = put_with_meta(&front, "/strata/meta/table.csv", body).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let md5 = format!("\"{}\"", md5_hex(body));
    let expected = (
        md5.clone(),
        "text/csv; charset=utf-8".to_string(),
        "ada".to_string(),
    );
    assert_eq!(
        described(&head(&front, "/strata/meta/table.csv").await),
        expected
    );
    // A plain PUT: its MD5, the default type, no metadata.
    front.put("/strata/meta/plain", b"plain").await;

    // A multipart upload with metadata given at its creation.
    let created = front
        .request(
            "POST",
            "/strata/meta/multi",
            &[("uploads", "")],
            &[
                ("content-type", "image/png".to_string()),
                ("x-amz-meta-owner", "grace".to_string()),
            ],
            Vec::new(),
        )
        .await;
    let id = created.tag("UploadId");
    let part = front
        .request(
            "PUT",
            "/strata/meta/multi",
            &[("partNumber", "1"), ("uploadId", id.as_str())],
            &[],
            b"png bytes".to_vec(),
        )
        .await;
    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part>\
         </CompleteMultipartUpload>",
        part.header("etag")
    );
    let done = front
        .request(
            "POST",
            "/strata/meta/multi",
            &[("uploadId", id.as_str())],
            &[],
            xml,
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    let multi_etag = done.tag("ETag").replace("&quot;", "\"");
    assert!(multi_etag.ends_with("-1\""), "{multi_etag}");

    let front = front.restart("").await;
    let get = front.get("/strata/meta/table.csv").await;
    assert_eq!(get.body, body);
    assert_eq!(described(&get), expected);
    assert_eq!(
        described(&head(&front, "/strata/meta/table.csv").await),
        expected
    );
    let plain = head(&front, "/strata/meta/plain").await;
    assert_eq!(
        described(&plain),
        (
            format!("\"{}\"", md5_hex(b"plain")),
            "application/octet-stream".to_string(),
            String::new()
        )
    );
    let multi = head(&front, "/strata/meta/multi").await;
    assert_eq!(
        described(&multi),
        (
            multi_etag.clone(),
            "image/png".to_string(),
            "grace".to_string()
        )
    );
    // Listings show the recorded ETags too, and If-Match holds across the restart.
    let listed = front
        .request(
            "GET",
            "/strata",
            &[("list-type", "2"), ("prefix", "meta/")],
            &[],
            Vec::new(),
        )
        .await;
    let etags: Vec<String> = listed
        .tags("ETag")
        .iter()
        .map(|etag| etag.replace("&quot;", "\""))
        .collect();
    assert_eq!(
        etags,
        [
            multi_etag,
            format!("\"{}\"", md5_hex(b"plain")),
            md5.clone()
        ]
    );
    let matched = front
        .request(
            "GET",
            "/strata/meta/table.csv",
            &[],
            &[("if-match", md5)],
            Vec::new(),
        )
        .await;
    assert_eq!(matched.status, 200);
}

#[tokio::test]
async fn native_writes_and_deletes_fall_back_and_stale_rows_are_swept() {
    let front = start_default().await;
    put_with_meta(&front, "/strata/n/over", b"s3 bytes").await;
    put_with_meta(&front, "/strata/n/gone", b"s3 bytes").await;
    // Overwritten through /v1/objects: the row describes other content, so it is not
    // used: the derived ETag, no metadata. Never the old MD5.
    front.server.put("n/over", b"native bytes").await;
    let over = head(&front, "/strata/n/over").await;
    let (etag, content_type, owner) = described(&over);
    assert!(etag.ends_with("-1\"") && etag.len() == 36, "{etag}");
    assert_eq!(
        (content_type.as_str(), owner.as_str()),
        ("application/octet-stream", "")
    );
    // Deleted through /v1/objects: the row stays until the cleanup.
    let deleted = front
        .server
        .client
        .delete(front.server.url("/v1/objects/n/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // The start-up sweep removes both stale rows.
    let front = front.restart("").await;
    let metrics = front.metrics().await;
    assert!(
        metrics.contains("strata_s3_meta_stale_removed_total 2\n"),
        "{metrics}"
    );
    assert_eq!(described(&head(&front, "/strata/n/over").await).0, etag);

    // A delete through the front door removes its row at once.
    put_with_meta(&front, "/strata/n/s3-deleted", b"x").await;
    let delete = front
        .request("DELETE", "/strata/n/s3-deleted", &[], &[], Vec::new())
        .await;
    assert_eq!(delete.status, 204);
    let mut server = front.server;
    let dir = server.stop().await;
    for key in ["n/over", "n/gone", "n/s3-deleted"] {
        assert_eq!(row_in(dir.path(), key).await, None, "{key}");
    }
}

#[tokio::test]
async fn copies_keep_or_replace_the_metadata() {
    let front = start_default().await;
    put_with_meta(&front, "/strata/c/src", b"copied").await;
    let copy = |target: &'static str, headers: Vec<(&'static str, String)>| {
        let front = &front;
        async move {
            let mut all = vec![("x-amz-copy-source", "/strata/c/src".to_string())];
            all.extend(headers);
            front.request("PUT", target, &[], &all, Vec::new()).await
        }
    };
    let kept = copy("/strata/c/kept", vec![]).await;
    assert_eq!(kept.status, 200, "{}", kept.text());
    let md5 = format!("\"{}\"", md5_hex(b"copied"));
    assert_eq!(
        described(&head(&front, "/strata/c/kept").await),
        (
            md5.clone(),
            "text/csv; charset=utf-8".to_string(),
            "ada".to_string()
        )
    );
    let replaced = copy(
        "/strata/c/replaced",
        vec![
            ("x-amz-metadata-directive", "REPLACE".to_string()),
            ("content-type", "text/plain".to_string()),
            ("x-amz-meta-owner", "linus".to_string()),
        ],
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(
        described(&head(&front, "/strata/c/replaced").await),
        (md5, "text/plain".to_string(), "linus".to_string())
    );
    let bad = copy(
        "/strata/c/bad",
        vec![("x-amz-metadata-directive", "MERGE".to_string())],
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let too_much = front
        .request(
            "PUT",
            "/strata/c/big-meta",
            &[],
            &[("x-amz-meta-owner", "x".repeat(3000))],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(too_much.code(), "MetadataTooLarge", "{}", too_much.text());
    assert_eq!(front.get("/strata/c/big-meta").await.status, 404);
}

#[tokio::test]
async fn s3_writes_and_deletes_are_audited_with_the_access_key_id() {
    let front = start_default().await;
    assert_eq!(front.put("/strata/au/a", b"x").await.status, 200);
    front.get("/strata/au/a").await;
    let delete = front
        .request("DELETE", "/strata/au/a", &[], &[], Vec::new())
        .await;
    assert_eq!(delete.status, 204);
    let forged = Signer {
        secret: "not-the-secret".to_string(),
        ..Signer::default()
    };
    let refused = front
        .request_as(
            Some(&forged),
            "PUT",
            "/strata/au/b",
            &[],
            &[],
            b"x".to_vec().into(),
        )
        .await;
    assert_eq!(refused.code(), "SignatureDoesNotMatch");

    let path = front.server.server.as_ref().unwrap().audit_log();
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|line: &serde_json::Value| line["route"].as_str().unwrap_or("").starts_with("s3 "))
        .collect();
    let seen: Vec<(&str, &str, &str, u64)> = lines
        .iter()
        .map(|line| {
            (
                line["method"].as_str().unwrap(),
                line["key"].as_str().unwrap_or(""),
                line["token"].as_str().unwrap_or(""),
                line["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("PUT", "au/a", ACCESS, 200),
            ("DELETE", "au/a", ACCESS, 204),
            ("PUT", "au/b", ACCESS, 403),
        ],
        "{text}"
    );
    assert!(!text.contains(SECRET) && !text.contains("not-the-secret"));
    assert!(!text.contains("Signature="), "{text}");
}

#[tokio::test]
async fn a_damaged_metadata_row_never_keeps_the_object_from_being_read() {
    let front = start_default().await;
    let body = b"bytes that must stay readable";
    assert_eq!(
        put_with_meta(&front, "/strata/d/obj", body).await.status,
        200
    );
    let mut server = front.server;
    let dir = server.stop().await;
    // Damage the row behind the service's back: metadata that is not JSON.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("catalog.db").display()
    ))
    .await
    .unwrap();
    let damaged = sqlx::query("UPDATE s3_object_meta SET metadata = '{not json' WHERE key = ?")
        .bind("d/obj")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(damaged.rows_affected(), 1);
    pool.close().await;

    let front = start_front_in(dir, "", strata_server::Limits::default()).await;
    // HEAD, GET and the listing answer, with the derived ETag and no metadata.
    let head = head(&front, "/strata/d/obj").await;
    assert_eq!(head.status, 200, "{}", head.text());
    let (etag, content_type, owner) = described(&head);
    assert!(etag.ends_with("-1\"") && etag.len() == 36, "{etag}");
    assert_eq!(
        (content_type.as_str(), owner.as_str()),
        ("application/octet-stream", "")
    );
    let get = front
        .request("GET", "/strata/d/obj", &[], &[], Vec::new())
        .await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body, body.to_vec());
    let list = front
        .request("GET", "/strata", &[("list-type", "2")], &[], Vec::new())
        .await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert!(list.text().contains("<Key>d/obj</Key>"), "{}", list.text());
}
