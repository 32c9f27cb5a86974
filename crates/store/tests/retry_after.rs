//! `Retry-After` on S3 pushback, end to end through a real S3 server: a fault-injecting
//! reverse proxy on loopback (`strata_store::testing::proxy`) answers chosen requests with 429, 503, 500 or 403
//! (with `Retry-After` in seconds or as an HTTP-date) and forwards everything else to moto.
//! Waits are asserted on the proxy's record of when requests arrived (the client's
//! behaviour), never as performance timings.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{data, moto, new_bucket, test_s3_options, TEST_KEY_ID, TEST_SECRET};
use strata_store::testing::proxy::{Arrival, Fault, Proxy};
use strata_store::{Store, StoreError, StoreUri};
use strata_throttle::{GovernorConfig, Priority, Throttle};

// ---------------------------------------------------------------------------------------
// Fixtures

/// A bucket with a store straight on moto (to check what really is there) and one
/// behind a fresh proxy.
struct Setup {
    direct: Store,
    proxied: Store,
    proxy: Proxy,
}

async fn setup() -> Setup {
    let bucket = new_bucket();
    let proxy = Proxy::start(&moto().endpoint()).await;
    let open = |endpoint: String| {
        let bucket = bucket.clone();
        async move {
            let uri = StoreUri::parse(&format!("s3://{bucket}?endpoint={endpoint}")).unwrap();
            Store::open(&uri, &test_s3_options()).await.unwrap()
        }
    };
    Setup {
        direct: open(moto().endpoint()).await,
        proxied: open(proxy.endpoint()).await,
        proxy,
    }
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(TEST_SECRET), "secret in {text}");
    assert!(!text.contains(TEST_KEY_ID), "key id in {text}");
}

/// Gaps between consecutive arrivals.
fn gaps(arrivals: &[Arrival]) -> Vec<Duration> {
    arrivals
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests

/// A long `Retry-After` is not retried early inside the store: the error comes out after
/// one request, carrying the duration, retryable, and saying what the server said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_a_long_retry_after_comes_out_at_once_with_its_duration() {
    let s = setup().await;
    let content = data(10_000, 1);
    s.direct
        .write_atomic("busy/a.bin", Bytes::from(content.clone()))
        .await
        .unwrap();
    s.proxy.inject(
        Fault::new("GET", "busy/a.bin", usize::MAX, 503)
            .header("Retry-After", "5")
            .s3("SlowDown", "Please reduce your request rate."),
    );
    let err = s.proxied.read_all("busy/a.bin").await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)), "{err}");
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, StoreError::RetryLater { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("SlowDown: Please reduce your request rate."),
        "{msg}"
    );
    assert!(
        msg.contains("HTTP 503") && msg.contains("after 5 s"),
        "{msg}"
    );
    assert!(msg.contains("busy/a.bin") && !msg.contains('\n'), "{msg}");
    assert_no_secret(&msg);
    assert_no_secret(&format!("{err:?}"));
    assert_eq!(s.proxy.arrivals("GET", "busy/a.bin").len(), 1);
}

/// The HTTP-date form, read relative to the answer's `Date` (so the test does not depend on
/// the clocks), on a PUT answered 429: nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_an_http_date_carries_the_time_until_that_date() {
    let s = setup().await;
    s.proxy.inject(
        Fault::new("PUT", "dated/b.bin", 1, 429)
            .header("Date", "Sun, 06 Nov 1994 08:49:37 GMT")
            .header("Retry-After", "Sun, 06 Nov 1994 08:49:40 GMT")
            .s3("TooManyRequests", "Too many requests"),
    );
    let err = s
        .proxied
        .write_atomic("dated/b.bin", Bytes::from_static(b"payload"))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)), "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("HTTP 429"), "{err}");
    assert_eq!(s.proxy.arrivals("PUT", "dated/b.bin").len(), 1);
    assert_eq!(s.direct.stat("dated/b.bin").await.unwrap(), None);
    // The next try goes through.
    s.proxied
        .write_atomic("dated/b.bin", Bytes::from_static(b"payload"))
        .await
        .unwrap();
    assert_eq!(
        &s.direct.read_all("dated/b.bin").await.unwrap()[..],
        b"payload"
    );
}

/// A `Retry-After` of one second is within what the store's own short retries wait: the
/// call succeeds, and the retries came at least a second apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_retry_after_is_honoured_by_the_stores_own_retries() {
    let s = setup().await;
    let content = data(50_000, 2);
    s.direct
        .write_atomic("short/c.bin", Bytes::from(content.clone()))
        .await
        .unwrap();
    s.proxy.inject(
        Fault::new("GET", "short/c.bin", 1, 503)
            .header("Retry-After", "1")
            .s3("SlowDown", "Please reduce your request rate."),
    );
    s.proxy.inject(
        Fault::new("GET", "short/c.bin", 1, 429)
            .header("Retry-After", "1")
            .s3("TooManyRequests", "Too many requests"),
    );
    let read = s.proxied.read_all("short/c.bin").await.unwrap();
    let first_diff = read.iter().zip(&content).position(|(a, b)| a != b);
    assert!(
        read[..] == content[..],
        "read {} bytes, wrote {}, first difference at {first_diff:?}",
        read.len(),
        content.len()
    );
    let arrivals = s.proxy.arrivals("GET", "short/c.bin");
    let statuses: Vec<Option<u16>> = arrivals.iter().map(|a| a.faulted).collect();
    assert_eq!(statuses, [Some(503), Some(429), None]);
    for gap in gaps(&arrivals) {
        assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    }
}

/// A 5xx without `Retry-After` that outlasts the store's own retries comes out retryable
/// (OpenDAL marks every error its retry layer returns `persistent`; the status decides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisting_500_comes_out_retryable_without_a_retry_after() {
    let s = setup().await;
    s.proxy.inject(
        Fault::new("PUT", "broken/d.bin", usize::MAX, 500)
            .s3("InternalError", "We encountered an internal error."),
    );
    let err = s
        .proxied
        .write_atomic("broken/d.bin", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.retry_after(), None);
    assert!(err.to_string().contains("InternalError"), "{err}");
    // The first try and the store's three quick retries.
    assert_eq!(s.proxy.arrivals("PUT", "broken/d.bin").len(), 4);
}

/// Refused access is not retried at all, and carries no `Retry-After` even if the answer
/// had one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_is_not_retried() {
    let s = setup().await;
    s.direct
        .write_atomic("secret/e.bin", Bytes::from_static(b"hidden"))
        .await
        .unwrap();
    s.proxy.inject(
        Fault::new("GET", "secret/e.bin", usize::MAX, 403)
            .header("Retry-After", "1")
            .s3("AccessDenied", "Access Denied"),
    );
    let err = s.proxied.read_all("secret/e.bin").await.unwrap_err();
    assert!(matches!(err, StoreError::Auth { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(err.retry_after(), None);
    assert_no_secret(&err.to_string());
    assert_eq!(s.proxy.arrivals("GET", "secret/e.bin").len(), 1);
}

/// Throttled stores keep feeding the controller their pushback (the throttle's sensing
/// layer sits above the pushback transport) and their errors carry `Retry-After` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_store_sees_the_pushback_and_its_error_carries_retry_after() {
    let s = setup().await;
    let throttle = Throttle::new(GovernorConfig::default());
    let store = s.proxied.clone().with_throttle(throttle, Priority::Normal);
    s.direct
        .write_atomic("throttled/f.bin", Bytes::from(data(20_000, 3)))
        .await
        .unwrap();
    s.proxy.inject(
        Fault::new("GET", "throttled/f.bin", usize::MAX, 503)
            .header("Retry-After", "7")
            .s3("SlowDown", "Please reduce your request rate."),
    );
    let err = store
        .read_range("throttled/f.bin", 0, 100)
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)), "{err}");
    let read = store.throttle_status().unwrap().read;
    assert!(read.pushback_events >= 1, "{read:?}");
    assert_eq!(s.proxy.arrivals("GET", "throttled/f.bin").len(), 1);
}

/// A multipart part cannot be retried by the caller (a failed part fails the upload), so
/// the store honours a part's long `Retry-After` itself: the part is sent again no sooner
/// than asked, and the upload completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_part_waits_out_its_retry_after_and_the_upload_completes() {
    const MIB: usize = 1 << 20;
    let s = setup().await;
    let content = data(9 * MIB + 123, 4);
    s.proxy.inject(
        Fault::new("PUT", "multi/g.bin?partNumber=", 1, 503)
            .header("Retry-After", "3")
            .s3("SlowDown", "Please reduce your request rate."),
    );
    let upload = s
        .proxied
        .begin_upload("multi/g.bin", content.len() as u64, false)
        .await
        .unwrap();
    for (i, chunk) in content.chunks(MIB).enumerate() {
        upload
            .write_at((i * MIB) as u64, Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    upload.publish(None, None).await.unwrap();
    let stored = s.direct.read_all("multi/g.bin").await.unwrap();
    assert!(
        stored[..] == content[..],
        "the upload is complete and intact"
    );

    let parts = s.proxy.arrivals("PUT", "multi/g.bin?partNumber=");
    let part_of = |a: &Arrival| {
        let query = a.path.split_once('?').map(|(_, q)| q).unwrap_or("");
        query
            .split('&')
            .find(|p| p.starts_with("partNumber="))
            .map(str::to_string)
    };
    let refused = parts.iter().find(|a| a.faulted == Some(503)).unwrap();
    let resent = parts
        .iter()
        .find(|a| a.faulted.is_none() && part_of(a) == part_of(refused))
        .unwrap();
    let gap = resent.at.duration_since(refused.at);
    assert!(gap >= Duration::from_secs(3), "part resent after {gap:?}");
}
