//! Multipart uploads through the S3 front door: parts staged on disk and stitched by
//! streaming, listed, resumed after a client died midway, aborted, refused when
//! malformed, wrong or oversized; and a 64 MiB object that never sits in memory whole.
//! (Listing and expiry of uploads: `s3_uploads.rs`, apart, so that this binary's memory
//! measurement sees no other test's servers.)

mod s3_common;

use std::time::Duration;

use bytes::Bytes;
use s3_common::*;
use strata_server::Limits;

fn multipart_etag(parts: &[&[u8]]) -> String {
    use md5::Digest as _;
    let mut joined = Vec::new();
    for part in parts {
        joined.extend_from_slice(&md5::Md5::digest(part));
    }
    format!("\"{}-{}\"", md5_hex(&joined), parts.len())
}

#[tokio::test]
async fn create_upload_list_complete() {
    let front = start_default().await;
    let id = create(&front, "/strata/mp/one").await;
    let parts: Vec<Vec<u8>> = vec![vec![1u8; 300_000], vec![2u8; 300_000], b"tail".to_vec()];
    let mut listed = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let number = i as u32 + 1;
        let answer = upload_part(&front, "/strata/mp/one", &id, number, part.clone().into()).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("etag"), format!("\"{}\"", md5_hex(part)));
        listed.push((number, answer.header("etag")));
    }
    let list = front
        .request(
            "GET",
            "/strata/mp/one",
            &[("uploadId", id.as_str())],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.tags("PartNumber"), ["1", "2", "3"]);
    assert_eq!(list.tags("Size"), ["300000", "300000", "4"]);
    // Nothing visible before the completion.
    assert_eq!(front.get("/strata/mp/one").await.status, 404);

    let done = complete(&front, "/strata/mp/one", &id, completion(&listed)).await;
    assert_eq!(done.status, 200, "{}", done.text());
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let etag = multipart_etag(&refs);
    assert_eq!(done.tag("ETag").replace("&quot;", "\""), etag);
    let read = front.get("/strata/mp/one").await;
    assert_eq!(read.body, parts.concat());
    assert_eq!(read.header("etag"), etag);
    // Read over /v1/objects too; the staging directory is gone.
    let native = front.server.get("/v1/objects/mp/one").await;
    assert_eq!(native.bytes().await.unwrap().to_vec(), parts.concat());
    assert_eq!(std::fs::read_dir(staging(&front)).unwrap().count(), 0);
    // The upload is over.
    let again = upload_part(&front, "/strata/mp/one", &id, 1, b"x".to_vec().into()).await;
    assert_eq!(again.code(), "NoSuchUpload");
}

#[tokio::test]
async fn an_upload_killed_midway_resumes_or_aborts() {
    let front = start_default().await;
    let id = create(&front, "/strata/mp/resumed").await;
    let first = vec![5u8; 200_000];
    let one = upload_part(&front, "/strata/mp/resumed", &id, 1, first.clone().into()).await;
    // Part 2's client dies after 64 KiB of the 200,000 bytes it announced.
    let broken = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from(vec![6u8; 65_536])),
        Err(std::io::Error::other("client killed")),
    ]);
    let url = format!("{}/strata/mp/resumed", front.endpoint);
    let signed = sign(
        &Signer::default(),
        front.endpoint.trim_start_matches("http://"),
        "PUT",
        "/strata/mp/resumed",
        &[("partNumber", "2"), ("uploadId", id.as_str())],
        &[],
    );
    let mut request = front
        .client
        .put(format!("{url}?partNumber=2&uploadId={id}"))
        .header("content-length", "200000")
        .body(reqwest::Body::wrap_stream(broken));
    for (name, value) in signed.into_iter().filter(|(name, _)| name != "host") {
        request = request.header(name, value);
    }
    assert!(request.send().await.is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // ListParts shows what arrived whole: part 1 only; no half part is left behind.
    let list = front
        .request(
            "GET",
            "/strata/mp/resumed",
            &[("uploadId", id.as_str())],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(list.tags("PartNumber"), ["1"]);
    let files: Vec<String> = std::fs::read_dir(staging(&front).join(&id))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files.iter().any(|name| name.ends_with(".tmp")),
        "{files:?}"
    );

    let second = vec![6u8; 200_000];
    let two = upload_part(&front, "/strata/mp/resumed", &id, 2, second.clone().into()).await;
    let done = complete(
        &front,
        "/strata/mp/resumed",
        &id,
        completion(&[(1, one.header("etag")), (2, two.header("etag"))]),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(
        front.get("/strata/mp/resumed").await.body,
        [first, second].concat()
    );

    // Another one, aborted: its staged parts are removed.
    let id = create(&front, "/strata/mp/aborted").await;
    upload_part(&front, "/strata/mp/aborted", &id, 1, vec![1u8; 1000].into()).await;
    assert!(staging(&front).join(&id).exists());
    let aborted = front
        .request(
            "DELETE",
            "/strata/mp/aborted",
            &[("uploadId", id.as_str())],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(aborted.status, 204, "{}", aborted.text());
    assert!(!staging(&front).join(&id).exists());
    let list = front
        .request(
            "GET",
            "/strata/mp/aborted",
            &[("uploadId", id.as_str())],
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(list.status, 404);
    assert_eq!(list.code(), "NoSuchUpload");
    assert_eq!(front.get("/strata/mp/aborted").await.status, 404);
}

#[tokio::test]
async fn malformed_wrong_and_oversized_parts_are_refused() {
    let limits = Limits {
        max_object_size: 100_000,
        ..Limits::default()
    };
    let front = start_front("", limits).await;
    let id = create(&front, "/strata/mp/bad").await;
    let one = upload_part(&front, "/strata/mp/bad", &id, 1, vec![1u8; 1000].into()).await;

    let malformed = complete(
        &front,
        "/strata/mp/bad",
        &id,
        "<CompleteMultipartUpload><Part>".into(),
    )
    .await;
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    assert_eq!(malformed.code(), "MalformedXML");
    let empty = complete(&front, "/strata/mp/bad", &id, completion(&[])).await;
    assert_eq!(empty.code(), "MalformedXML");

    let wrong_etag = complete(
        &front,
        "/strata/mp/bad",
        &id,
        completion(&[(1, "\"00ff\"".into())]),
    )
    .await;
    assert_eq!(wrong_etag.code(), "InvalidPart");
    let missing = complete(
        &front,
        "/strata/mp/bad",
        &id,
        completion(&[(1, one.header("etag")), (2, "\"00\"".into())]),
    )
    .await;
    assert_eq!(missing.code(), "InvalidPart");
    let order = complete(
        &front,
        "/strata/mp/bad",
        &id,
        completion(&[(2, "\"00\"".into()), (1, one.header("etag"))]),
    )
    .await;
    assert_eq!(order.code(), "InvalidPartOrder");

    let too_large = upload_part(&front, "/strata/mp/bad", &id, 2, vec![2u8; 200_000].into()).await;
    assert_eq!(too_large.code(), "EntityTooLarge", "{}", too_large.text());
    let unknown = upload_part(
        &front,
        "/strata/mp/bad",
        "0123456789abcdef0123456789abcdef",
        1,
        vec![1u8].into(),
    )
    .await;
    assert_eq!(unknown.code(), "NoSuchUpload");
    let traversal = upload_part(&front, "/strata/mp/bad", "../../etc", 1, vec![1u8].into()).await;
    assert_eq!(traversal.code(), "NoSuchUpload");

    // The good part still completes.
    let done = complete(
        &front,
        "/strata/mp/bad",
        &id,
        completion(&[(1, one.header("etag"))]),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text());
}

/// The process's resident memory, bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// `len` bytes of a repeatable pattern, generated 256 KiB at a time.
fn generated(seed: u8, len: usize) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    const STEP: usize = 256 << 10;
    futures::stream::iter((0..len).step_by(STEP).map(move |at| {
        let n = STEP.min(len - at);
        Ok(Bytes::from(
            (0..n)
                .map(|i| ((at + i) as u8).wrapping_mul(seed))
                .collect::<Vec<u8>>(),
        ))
    }))
}

#[tokio::test]
async fn a_64_mib_upload_never_sits_in_memory_whole() {
    const PART: usize = 32 << 20;
    let front = start_default().await;
    let id = create(&front, "/strata/mp/large").await;
    let baseline = rss();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut listed = Vec::new();
    let mut expected = md5::Md5::default();
    let mut part_md5s = Vec::new();
    for number in 1..=2u32 {
        let seed = number as u8 * 2 + 1;
        let mut part_md5 = md5::Md5::default();
        let mut chunks = Box::pin(generated(seed, PART));
        while let Some(chunk) = futures::StreamExt::next(&mut chunks).await {
            let chunk = chunk.unwrap();
            md5::Digest::update(&mut expected, &chunk);
            md5::Digest::update(&mut part_md5, &chunk);
        }
        part_md5s.push(md5::Digest::finalize(part_md5).to_vec());
        let body = reqwest::Body::wrap_stream(generated(seed, PART));
        let number_text = number.to_string();
        let answer = front
            .request_as(
                Some(&Signer::default()),
                "PUT",
                "/strata/mp/large",
                &[
                    ("partNumber", number_text.as_str()),
                    ("uploadId", id.as_str()),
                ],
                &[("content-length", PART.to_string())],
                body,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        listed.push((number, answer.header("etag")));
    }
    let done = complete(&front, "/strata/mp/large", &id, completion(&listed)).await;
    assert_eq!(done.status, 200, "{}", done.text());

    // Read back as a stream, hashed as it comes.
    let signed = sign(
        &Signer::default(),
        front.endpoint.trim_start_matches("http://"),
        "GET",
        "/strata/mp/large",
        &[],
        &[],
    );
    let mut request = front
        .client
        .get(format!("{}/strata/mp/large", front.endpoint));
    for (name, value) in signed.into_iter().filter(|(name, _)| name != "host") {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut read = md5::Md5::default();
    let mut total = 0usize;
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        let chunk = chunk.unwrap();
        total += chunk.len();
        md5::Digest::update(&mut read, &chunk);
    }
    sampler.abort();
    assert_eq!(total, 2 * PART);
    assert_eq!(md5::Digest::finalize(read), md5::Digest::finalize(expected));
    let growth = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(baseline);
    // Whole, the object is 64 MiB and each part 32 MiB: the peak stays under one part.
    eprintln!("resident memory grew by {growth} bytes over the upload and read-back");
    assert!(
        growth < PART as u64,
        "resident memory grew by {growth} bytes"
    );
    let joined: Vec<u8> = part_md5s.concat();
    assert_eq!(
        done.tag("ETag").replace("&quot;", "\""),
        format!("\"{}-2\"", md5_hex(&joined))
    );
}
