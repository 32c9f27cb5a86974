//! The S3 front door over the service's objects: every single-object operation, listings,
//! errors, signatures, and that it is the same object path as `/v1/objects` (heat, tiers).

mod s3_common;

use std::time::{Duration, SystemTime};

use s3_common::*;
use strata_server::Limits;

#[tokio::test]
async fn put_get_head_delete_round_trip_with_md5_etags() {
    let front = start_default().await;
    let body = b"hello, front door".to_vec();
    let put = front.put("/strata/docs/a.txt", &body).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let etag = format!("\"{}\"", md5_hex(&body));
    assert_eq!(put.header("etag"), etag);

    let get = front.get("/strata/docs/a.txt").await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body, body);
    assert_eq!(get.header("etag"), etag);
    assert_eq!(get.header("content-length"), body.len().to_string());

    let head = front
        .request("HEAD", "/strata/docs/a.txt", &[], &[], Vec::new())
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), etag);
    assert_eq!(head.header("content-length"), body.len().to_string());
    assert!(!head.header("last-modified").is_empty());

    // The same object over /v1/objects, and back.
    let native = front.server.get("/v1/objects/docs/a.txt").await;
    assert_eq!(native.bytes().await.unwrap().to_vec(), body);
    front.server.put("docs/b.txt", b"written natively").await;
    let back = front.get("/strata/docs/b.txt").await;
    assert_eq!(back.body, b"written natively");
    // Not the MD5 (written natively): the multipart form, which clients never compare
    // with an MD5 of the bytes, stable across reads.
    let native_etag = back.header("etag");
    assert!(
        native_etag.starts_with('"') && native_etag.ends_with("-1\"") && native_etag.len() == 36,
        "{native_etag}"
    );
    assert_ne!(native_etag[1..33], md5_hex(b"written natively"));
    assert_eq!(
        front.get("/strata/docs/b.txt").await.header("etag"),
        native_etag
    );

    let delete = front
        .request("DELETE", "/strata/docs/a.txt", &[], &[], Vec::new())
        .await;
    assert_eq!(delete.status, 204);
    let gone = front.get("/strata/docs/a.txt").await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.code(), "NoSuchKey");
    // Deleting what is not there is no error, as S3's DELETE.
    let again = front
        .request("DELETE", "/strata/docs/a.txt", &[], &[], Vec::new())
        .await;
    assert_eq!(again.status, 204);
    let native = front.server.get("/v1/objects/docs/a.txt").await;
    assert_eq!(native.status(), 404);
}

#[tokio::test]
async fn ranges_and_conditional_headers() {
    let front = start_default().await;
    let body: Vec<u8> = (0..=255u8).collect();
    let etag = front.put("/strata/r", &body).await.header("etag");

    let range = |text: &str| vec![("range", text.to_string())];
    let part = front
        .request("GET", "/strata/r", &[], &range("bytes=10-19"), Vec::new())
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &body[10..20]);
    assert_eq!(part.header("content-range"), "bytes 10-19/256");
    let suffix = front
        .request("GET", "/strata/r", &[], &range("bytes=-6"), Vec::new())
        .await;
    assert_eq!(suffix.body, &body[250..]);
    let outside = front
        .request("GET", "/strata/r", &[], &range("bytes=300-"), Vec::new())
        .await;
    assert_eq!(outside.status, 416, "{}", outside.text());
    assert_eq!(outside.code(), "InvalidRange");

    let cond = |name: &'static str, value: String| vec![(name, value)];
    let matching = front
        .request(
            "GET",
            "/strata/r",
            &[],
            &cond("if-match", etag.clone()),
            Vec::new(),
        )
        .await;
    assert_eq!(matching.status, 200);
    let mismatch = front
        .request(
            "GET",
            "/strata/r",
            &[],
            &cond("if-match", "\"0000\"".into()),
            Vec::new(),
        )
        .await;
    assert_eq!(mismatch.status, 412);
    assert_eq!(mismatch.code(), "PreconditionFailed");
    let not_modified = front
        .request(
            "GET",
            "/strata/r",
            &[],
            &cond("if-none-match", etag.clone()),
            Vec::new(),
        )
        .await;
    assert_eq!(not_modified.status, 304);
    let changed = front
        .request(
            "GET",
            "/strata/r",
            &[],
            &cond("if-none-match", "\"0000\"".into()),
            Vec::new(),
        )
        .await;
    assert_eq!(changed.status, 200);
    let future = "Fri, 01 Jan 2100 00:00:00 GMT".to_string();
    let past = "Mon, 01 Jan 2001 00:00:00 GMT".to_string();
    let since_future = front
        .request(
            "GET",
            "/strata/r",
            &[],
            &cond("if-modified-since", future.clone()),
            Vec::new(),
        )
        .await;
    assert_eq!(since_future.status, 304);
    let since_past = front
        .request(
            "GET",
            "/strata/r",
            &[],
            &cond("if-modified-since", past.clone()),
            Vec::new(),
        )
        .await;
    assert_eq!(since_past.status, 200);
    let unmodified_past = front
        .request(
            "GET",
            "/strata/r",
            &[],
            &cond("if-unmodified-since", past),
            Vec::new(),
        )
        .await;
    assert_eq!(unmodified_past.status, 412);
    let head = front
        .request(
            "HEAD",
            "/strata/r",
            &[],
            &cond("if-none-match", etag),
            Vec::new(),
        )
        .await;
    assert_eq!(head.status, 304);
}

#[tokio::test]
async fn list_objects_v2_prefix_delimiter_pages() {
    let front = start_front("\n[s3]\nbuckets = [\"logs\"]\n", Limits::default()).await;
    for key in ["a/1", "a/2", "a/b/3", "c", "d/4", "d/5", "e"] {
        assert_eq!(
            front
                .put(&format!("/strata/{key}"), key.as_bytes())
                .await
                .status,
            200
        );
    }
    front.put("/logs/x/1", b"log").await;

    let all = front
        .request("GET", "/strata", &[("list-type", "2")], &[], Vec::new())
        .await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(
        all.tags("Key"),
        ["a/1", "a/2", "a/b/3", "c", "d/4", "d/5", "e", "logs/x/1"]
    );
    assert_eq!(all.tag("IsTruncated"), "false");

    let rolled = front
        .request(
            "GET",
            "/strata",
            &[("list-type", "2"), ("delimiter", "/")],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(rolled.tags("Key"), ["c", "e"]);
    assert_eq!(rolled.tags("Prefix")[1..], ["a/", "d/", "logs/"]);

    let under_a = front
        .request(
            "GET",
            "/strata",
            &[("list-type", "2"), ("prefix", "a/"), ("delimiter", "/")],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(under_a.tags("Key"), ["a/1", "a/2"]);
    assert_eq!(under_a.tags("Prefix")[1..], ["a/b/"]);

    // Pages of two, with the delimiter: a/, c | d/, e | logs/.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut query = vec![("list-type", "2"), ("delimiter", "/"), ("max-keys", "2")];
        if let Some(token) = &token {
            query.push(("continuation-token", token.as_str()));
        }
        let page = front
            .request("GET", "/strata", &query, &[], Vec::new())
            .await;
        assert_eq!(
            page.tag("KeyCount"),
            (page.tags("Key").len() + page.tags("Prefix").len() - 1).to_string()
        );
        seen.extend(page.tags("Key"));
        seen.extend(page.tags("Prefix").into_iter().skip(1));
        if page.tag("IsTruncated") == "false" {
            token = None;
            break;
        }
        token = Some(page.tag("NextContinuationToken"));
    }
    assert!(token.is_none());
    seen.sort();
    assert_eq!(seen, ["a/", "c", "d/", "e", "logs/"]);

    // The extra bucket is its prefix.
    let logs = front
        .request("GET", "/logs", &[("list-type", "2")], &[], Vec::new())
        .await;
    assert_eq!(logs.tags("Key"), ["x/1"]);
    assert_eq!(front.get("/logs/x/1").await.body, b"log");
    let bad_token = front
        .request(
            "GET",
            "/strata",
            &[("list-type", "2"), ("continuation-token", "zz")],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(bad_token.status, 400);
    // Version 1 lists the same.
    let v1 = front
        .request(
            "GET",
            "/strata",
            &[("prefix", "d/"), ("max-keys", "1")],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(v1.tags("Key"), ["d/4"]);
    assert_eq!(v1.tag("IsTruncated"), "true");
}

#[tokio::test]
async fn buckets_listed_and_unknown_ones_refused() {
    let front = start_front("\n[s3]\nbuckets = [\"logs\"]\n", Limits::default()).await;
    let buckets = front.get("/").await;
    assert_eq!(buckets.status, 200);
    assert_eq!(buckets.tags("Name"), ["strata", "logs"]);
    let head = front.request("HEAD", "/logs", &[], &[], Vec::new()).await;
    assert_eq!(head.status, 200);
    let missing = front.get("/nope/key").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "NoSuchBucket");
    let head_missing = front.request("HEAD", "/nope", &[], &[], Vec::new()).await;
    assert_eq!(head_missing.status, 404);
}

#[tokio::test]
async fn copy_and_delete_objects() {
    let front = start_default().await;
    front.put("/strata/src", b"copied bytes").await;
    let copy = front
        .request(
            "PUT",
            "/strata/dst",
            &[],
            &[("x-amz-copy-source", "/strata/src".to_string())],
            Vec::new(),
        )
        .await;
    assert_eq!(copy.status, 200, "{}", copy.text());
    assert_eq!(
        copy.tag("ETag").trim_matches('"').replace("&quot;", ""),
        md5_hex(b"copied bytes")
    );
    assert_eq!(front.get("/strata/dst").await.body, b"copied bytes");
    let missing = front
        .request(
            "PUT",
            "/strata/dst2",
            &[],
            &[("x-amz-copy-source", "/strata/none".to_string())],
            Vec::new(),
        )
        .await;
    assert_eq!(missing.code(), "NoSuchKey");

    let xml = "<Delete><Object><Key>src</Key></Object><Object><Key>dst</Key></Object>\
               <Object><Key>never</Key></Object></Delete>";
    let md5 = {
        use md5::Digest as _;
        base64_encode(&md5::Md5::digest(xml.as_bytes()))
    };
    let deleted = front
        .request(
            "POST",
            "/strata",
            &[("delete", "")],
            &[("content-md5", md5)],
            xml.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.tags("Key"), ["src", "dst", "never"]);
    assert_eq!(front.get("/strata/src").await.status, 404);
    assert_eq!(front.get("/strata/dst").await.status, 404);
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn signatures_keys_and_clock_skew_are_checked() {
    let front = start_default().await;
    front.put("/strata/k", b"v").await;
    let bad_secret = Signer {
        secret: "not-the-secret".into(),
        ..Signer::default()
    };
    let wrong = front
        .request_as(
            Some(&bad_secret),
            "GET",
            "/strata/k",
            &[],
            &[],
            Vec::new().into(),
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.code(), "SignatureDoesNotMatch");
    assert!(!wrong.text().contains(SECRET), "the secret never shows");

    let unknown = Signer {
        access: "NOBODY".into(),
        ..Signer::default()
    };
    let unknown = front
        .request_as(
            Some(&unknown),
            "GET",
            "/strata/k",
            &[],
            &[],
            Vec::new().into(),
        )
        .await;
    assert_eq!(unknown.status, 403);
    assert_eq!(unknown.code(), "InvalidAccessKeyId");

    let skewed = Signer {
        time: SystemTime::now() - Duration::from_secs(20 * 60),
        ..Signer::default()
    };
    let late = front
        .request_as(
            Some(&skewed),
            "GET",
            "/strata/k",
            &[],
            &[],
            Vec::new().into(),
        )
        .await;
    assert_eq!(late.status, 403);
    assert_eq!(late.code(), "RequestTimeTooSkewed");
    let within = Signer {
        time: SystemTime::now() - Duration::from_secs(5 * 60),
        ..Signer::default()
    };
    let ok = front
        .request_as(
            Some(&within),
            "GET",
            "/strata/k",
            &[],
            &[],
            Vec::new().into(),
        )
        .await;
    assert_eq!(ok.status, 200);

    let anonymous = front
        .request_as(None, "GET", "/strata/k", &[], &[], Vec::new().into())
        .await;
    assert_eq!(anonymous.status, 403);
    assert_eq!(anonymous.code(), "AccessDenied");
}

#[tokio::test]
async fn anonymous_reads_only_when_allowed() {
    let front = start_front("\n[s3]\nallow_anonymous = true\n", Limits::default()).await;
    front.put("/strata/public", b"open").await;
    let read = front
        .request_as(None, "GET", "/strata/public", &[], &[], Vec::new().into())
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, b"open");
    let write = front
        .request_as(
            None,
            "PUT",
            "/strata/public",
            &[],
            &[],
            b"mine".to_vec().into(),
        )
        .await;
    assert_eq!(write.status, 403);
    assert_eq!(write.code(), "AccessDenied");
    assert_eq!(front.get("/strata/public").await.body, b"open");
}

#[tokio::test]
async fn oversized_objects_are_refused() {
    let limits = Limits {
        max_object_size: 1024,
        ..Limits::default()
    };
    let front = start_front("", limits).await;
    let large = front.put("/strata/big", &[7u8; 4096]).await;
    assert_eq!(large.status, 400, "{}", large.text());
    assert_eq!(large.code(), "EntityTooLarge");
    assert_eq!(front.get("/strata/big").await.status, 404);
    let bad_key = front.put("/strata/a/../b", b"x").await;
    assert!(bad_key.status >= 400);
}

/// Reads a key's access count over the last hour from `/v1/objects?heat=true`.
async fn reads_in_the_last_hour(front: &Front, key: &str) -> i64 {
    let listed = front
        .server
        .json(&format!("/v1/objects?prefix={key}&heat=true"))
        .await;
    listed["objects"][0]["access"]["count_1h"]
        .as_f64()
        .unwrap_or(-1.0) as i64
}

#[tokio::test]
async fn s3_reads_feed_heat_and_tiered_objects_stay_served() {
    let front = start_default().await;
    let body = vec![42u8; 3 << 20];
    front.put("/strata/hot/one", &body).await;
    let before = reads_in_the_last_hour(&front, "hot/one").await;
    assert_eq!(front.get("/strata/hot/one").await.body, body);
    let after = reads_in_the_last_hour(&front, "hot/one").await;
    assert_eq!(after, before + 1, "one S3 GET, one access");

    // Moved to the cold tier by a move job, still served by the front door.
    let moved = front
        .server
        .client
        .post(front.server.url("/v1/moves"))
        .header("content-type", "application/json")
        .body(r#"{"key":"hot/one","to":"cold"}"#)
        .send()
        .await
        .unwrap();
    assert!(
        moved.status().is_success(),
        "{}",
        moved.text().await.unwrap()
    );
    let mut tier = String::new();
    for _ in 0..600 {
        let listed = front.server.json("/v1/objects?prefix=hot/one").await;
        tier = listed["objects"][0]["tier"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if tier == "cold" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tier, "cold");
    let read = front.get("/strata/hot/one").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, body);
    assert_eq!(read.header("etag"), format!("\"{}\"", md5_hex(&body)));
}

#[tokio::test]
async fn a_real_s3_client_round_trips() {
    let front = start_default().await;
    let builder = opendal::services::S3::default()
        .bucket("strata")
        .endpoint(&front.endpoint)
        .region("us-east-1")
        .access_key_id(ACCESS)
        .secret_access_key(SECRET)
        .disable_config_load()
        .disable_ec2_metadata();
    let op = opendal::Operator::new(builder).unwrap();
    let transport = opendal::HttpTransporter::new(
        opendal_http_transport_reqwest::ReqwestTransport::new(reqwest::Client::new()),
    );
    let context = op.base_context().with_http_transport(transport);
    let op = op.with_context(context);
    op.write("dal/one", b"through opendal".to_vec())
        .await
        .unwrap();
    assert_eq!(
        op.read("dal/one").await.unwrap().to_vec(),
        b"through opendal"
    );
    // Its multipart writer: three parts of 5 MiB, 5 MiB and 1 MiB.
    let data: Vec<u8> = (0..(11u32 << 20)).map(|i| (i % 251) as u8).collect();
    let mut writer = op.writer_with("dal/big").chunk(5 << 20).await.unwrap();
    writer.write(data.clone()).await.unwrap();
    writer.close().await.unwrap();
    let read = op.read("dal/big").await.unwrap().to_vec();
    assert_eq!(read.len(), data.len());
    assert!(read == data);
    let listed: Vec<String> = op
        .list_with("dal/")
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.path().to_string())
        .collect();
    assert!(listed.contains(&"dal/one".to_string()), "{listed:?}");
    op.delete("dal/one").await.unwrap();
    assert!(!op.exists("dal/one").await.unwrap());
}

#[tokio::test]
async fn token_key_pairs_carry_the_tokens_scope_and_prefix() {
    use strata_catalog::{SqliteCatalog, TokenCatalog, TokenScope};
    use strata_server::s3::token_keys;

    let front = start_default().await;
    front.put("/strata/team/a", b"team data").await;
    front.put("/strata/other/b", b"other data").await;
    let data_dir = front.server.dir.path();
    let catalog = SqliteCatalog::open(&data_dir.join("catalog.db"))
        .await
        .unwrap();
    let now = strata_server::state::now_ms();
    let reader = strata_server::auth::token::issue(TokenScope::Read, None, now, None);
    let writer =
        strata_server::auth::token::issue(TokenScope::Write, Some("team/".into()), now, None);
    catalog.create_token(&reader.record).await.unwrap();
    catalog.create_token(&writer.record).await.unwrap();
    let master = token_keys::master_key(data_dir).unwrap();
    let signer = |id: &str| {
        let access = token_keys::access_key_id(id);
        Signer {
            secret: token_keys::secret(&master, &access),
            access,
            ..Signer::default()
        }
    };
    let reader_keys = signer(&reader.record.id);
    let writer_keys = signer(&writer.record.id);
    let as_reader = |method: &'static str, path: &'static str, body: &'static [u8]| {
        front.request_as(
            Some(&reader_keys),
            method,
            path,
            &[],
            &[],
            body.to_vec().into(),
        )
    };

    // A read token reads anything and writes nothing.
    assert_eq!(
        as_reader("GET", "/strata/other/b", b"").await.body,
        b"other data"
    );
    let refused = as_reader("PUT", "/strata/team/a", b"overwritten").await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.code(), "AccessDenied");
    assert_eq!(front.get("/strata/team/a").await.body, b"team data");

    // A prefix token sees and writes only its prefix.
    let as_writer = |method: &'static str,
                     path: &'static str,
                     query: &'static [(&'static str, &'static str)]| {
        front.request_as(
            Some(&writer_keys),
            method,
            path,
            query,
            &[],
            b"new".to_vec().into(),
        )
    };
    assert_eq!(as_writer("PUT", "/strata/team/c", &[]).await.status, 200);
    assert_eq!(
        as_writer("GET", "/strata/other/b", &[]).await.code(),
        "AccessDenied"
    );
    assert_eq!(
        as_writer("PUT", "/strata/other/b", &[]).await.code(),
        "AccessDenied"
    );
    let listed = as_writer("GET", "/strata", &[("list-type", "2"), ("prefix", "team/")]).await;
    assert_eq!(listed.tags("Key"), ["team/a", "team/c"]);
    let above = as_writer("GET", "/strata", &[("list-type", "2")]).await;
    assert_eq!(above.code(), "AccessDenied");
    // Uploads in progress name keys too: listed under the prefix only.
    let uploads = as_writer("GET", "/strata", &[("uploads", ""), ("prefix", "team/")]).await;
    assert_eq!(uploads.status, 200, "{}", uploads.text());
    let all_uploads = as_writer("GET", "/strata", &[("uploads", "")]).await;
    assert_eq!(all_uploads.code(), "AccessDenied");

    // Revoked: its key pair is unknown from then on.
    catalog.revoke_token(&writer.record.id, now).await.unwrap();
    let revoked = as_writer("GET", "/strata/team/a", &[]).await;
    assert_eq!(revoked.code(), "InvalidAccessKeyId");
    catalog.close().await;
}
