//! Store pushback with its `Retry-After`: an S3 answer of 429 or 5xx, caught at the HTTP
//! transport and carried, with the server's `Retry-After`, into the [`StoreError`] of the
//! request that got it ([`StoreError::retry_after`]).
//!
//! **Where it is caught.** Every S3 operator (data and probe, throttled or not) gets a
//! [`PushbackTransport`] right above its HTTP client. On a response with status 429, 500,
//! 502, 503 or 504 it reads the (small) error body for the S3 error code and message and
//! returns its own `opendal::Error`, whose *source* is a typed [`Pushback`] holding the
//! status, the code, the message and the parsed `Retry-After`. The error is the request's
//! own object, so the value travels with it through OpenDAL's layers to
//! [`from_dal`](crate::error::from_dal), which downcasts the source: no state is shared
//! between requests, and any number of requests can be in flight. The two alternatives
//! were weaker: a transport that records the last `Retry-After` for the error conversion to
//! pick up needs a per-request key that OpenDAL does not pass down (multipart parts run on
//! spawned tasks, so not even a task-local would do), and parsing OpenDAL's error context
//! relies on `Debug` output of the response parts inside its `Display` text, which
//! `opendal::Error` does not expose otherwise and which no version promises to keep.
//!
//! The typed source also restores what OpenDAL's retry layer erases: it marks every error
//! it returns `persistent`, so `is_temporary` cannot say afterwards whether a 503 is worth
//! retrying. The status can.
//!
//! **OpenDAL's retry layer.** It retries temporary errors itself, after 1 s, 2 s and 4 s
//! (plus jitter), whatever the server asked. So a pushback whose `Retry-After` is at most
//! [`OPENDAL_RETRY_MIN_DELAY`] (or absent) stays temporary: the layer's first wait already
//! honours it. A longer `Retry-After` makes the error permanent for OpenDAL: it comes out
//! at once, as [`StoreError::RetryLater`], and the caller's retry loop (the service's
//! `retry.rs`, the mover's `with_backoff`) waits at least that long before trying again;
//! waiting inside the transport instead would spend OpenDAL's per-attempt timeout and hold
//! a throttle slot while idle. One exception: a multipart *part* cannot be retried by the
//! caller (a failed part fails the whole upload), and OpenDAL's concurrent multipart writer
//! sends a part again *at once* when its error is temporary (the retry layer's delay applies
//! to the writer's call, not to the part). So for a part the transport itself waits the
//! `Retry-After` (at most [`MAX_IN_PLACE_WAIT`], well inside the 120-second I/O timeout of
//! one attempt) before it answers with a temporary error: the part is sent again no sooner
//! than the server asked, and the upload goes on.
//!
//! `Retry-After` is read in both forms of RFC 9110: delta-seconds and an HTTP-date (the
//! latter relative to the response's `Date` when it has one, so a skewed local clock does
//! not matter), and capped at [`MAX_RETRY_AFTER`].

use std::fmt;
use std::time::{Duration, SystemTime};

use opendal::{Buffer, HttpBody, HttpTransport, HttpTransporter};

/// The first delay of the OpenDAL retry layer on S3 operators. A `Retry-After` up to this
/// long is honoured by that layer's own wait; a longer one goes to the caller.
pub(crate) const OPENDAL_RETRY_MIN_DELAY: Duration = Duration::from_secs(1);

/// The longest `Retry-After` taken from a server; longer ones are cut to this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Longest a multipart part's answer is held back to honour its `Retry-After` in place.
pub(crate) const MAX_IN_PLACE_WAIT: Duration = Duration::from_secs(30);

/// Largest error body read for its S3 code and message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Statuses that say "try again later": throttling and server errors.
fn is_pushback(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// A store's pushback: what the server answered, as the source of an `opendal::Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pushback {
    /// The HTTP status (429 or 5xx).
    pub status: u16,
    /// The S3 error code (`SlowDown`, `ServiceUnavailable`, ...), when the body has one.
    pub code: Option<String>,
    /// The S3 error message, when the body has one.
    pub message: Option<String>,
    /// The server's `Retry-After`, capped at [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
}

impl Pushback {
    /// One line: the server's code and message, and the status.
    pub fn summary(&self) -> String {
        let reason = http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let status = format!("HTTP {} {reason}", self.status);
        let status = status.trim_end();
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => format!("{code}: {message} ({status})"),
            (Some(code), None) => format!("{code} ({status})"),
            _ => status.to_string(),
        }
    }

    /// Whether the server says it limits the request rate (429, or an S3 code that says
    /// so), as opposed to being unavailable or failing.
    pub fn is_rate_limit(&self) -> bool {
        self.status == 429
            || matches!(
                self.code.as_deref(),
                Some("SlowDown" | "TooManyRequests" | "RequestLimitExceeded" | "Throttling")
            )
    }

    /// The `opendal::Error` a pushback answer becomes: temporary (OpenDAL's retry layer
    /// tries again) when `in_place` or when its `Retry-After` is short enough for that
    /// layer's first wait; otherwise permanent, for the caller's retry loop.
    pub(crate) fn into_dal_error(self, in_place: bool) -> opendal::Error {
        // The kinds OpenDAL's S3 service gives these answers.
        let kind = if self.is_rate_limit() {
            opendal::ErrorKind::RateLimited
        } else {
            opendal::ErrorKind::Unexpected
        };
        let temporary = in_place
            || self
                .retry_after
                .is_none_or(|after| after <= OPENDAL_RETRY_MIN_DELAY);
        opendal::Error::new(kind, self.summary())
            .with_context("status", self.status)
            .with_temporary(temporary)
            .set_source(self)
    }
}

impl fmt::Display for Pushback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())?;
        if let Some(after) = self.retry_after {
            write!(f, ", Retry-After {}", show_secs(after))?;
        }
        Ok(())
    }
}

impl std::error::Error for Pushback {}

/// A duration as whole seconds for messages, rounded up (`2 s`).
pub(crate) fn show_secs(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    format!("{secs} s")
}

/// The [`Pushback`] an OpenDAL error came from, if it did.
pub(crate) fn pushback_of(err: &opendal::Error) -> Option<&Pushback> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = cur {
        if let Some(p) = e.downcast_ref::<Pushback>() {
            return Some(p);
        }
        cur = e.source();
    }
    None
}

/// The HTTP transport of every S3 operator: forwards each request and turns a pushback
/// answer into an error that carries its `Retry-After` (see the module doc).
pub(crate) struct PushbackTransport {
    inner: HttpTransporter,
}

impl PushbackTransport {
    /// Wraps `inner`.
    pub(crate) fn new(inner: HttpTransporter) -> PushbackTransport {
        PushbackTransport { inner }
    }
}

impl HttpTransport for PushbackTransport {
    async fn fetch(&self, req: http::Request<Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        let part = is_part_upload(&req);
        let response = self.inner.fetch(req).await?;
        if !is_pushback(response.status()) {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let retry_after = from_headers(response.headers(), SystemTime::now());
        let (_, mut body) = response.into_parts();
        // A body that cannot be read still leaves the status and the header.
        let text = body.to_buffer().await.map(|b| b.to_bytes()).ok();
        let (code, message) = text
            .as_deref()
            .map(|bytes| s3_error_fields(&bytes[..bytes.len().min(MAX_ERROR_BODY)]))
            .unwrap_or_default();
        if part {
            // Honoured here: OpenDAL sends a failed part again as soon as it sees the error.
            if let Some(after) = retry_after {
                tokio::time::sleep(after.min(MAX_IN_PLACE_WAIT)).await;
            }
        }
        Err(Pushback {
            status,
            code,
            message,
            retry_after,
        }
        .into_dal_error(part))
    }
}

/// A multipart upload's part: `PUT ...?partNumber=N&uploadId=...`.
fn is_part_upload(req: &http::Request<Buffer>) -> bool {
    req.method() == http::Method::PUT
        && req.uri().query().is_some_and(|q| {
            q.split('&').any(|p| p.starts_with("partNumber="))
                && q.split('&').any(|p| p.starts_with("uploadId="))
        })
}

/// `Code` and `Message` of an S3 XML error body.
fn s3_error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let len = text.get(start..)?.find(&close)?;
        let value = unescape_xml(text.get(start..start + len)?.trim());
        (!value.is_empty()).then_some(crate::error::one_line(&value))
    };
    (field("Code"), field("Message"))
}

fn unescape_xml(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The `Retry-After` of a response, relative to its `Date` (else to `now`), capped.
pub(crate) fn from_headers(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let base = headers
        .get(http::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or(now);
    parse(value, base)
}

/// Parses a `Retry-After` value: delta-seconds (a fraction is accepted) or an HTTP-date,
/// taken relative to `now` (a date in the past is zero). Capped at [`MAX_RETRY_AFTER`].
pub(crate) fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let after = if value.starts_with(|c: char| c.is_ascii_digit()) && !value.contains(' ') {
        let secs: f64 = value.parse().ok()?;
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let at = parse_http_date(value)?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(after.min(MAX_RETRY_AFTER))
}

/// An HTTP-date in any of RFC 9110's three forms: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and
/// asctime (`Sun Nov  6 08:49:37 1994`).
pub(crate) fn parse_http_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

/// Formats `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
#[cfg(test)]
fn format_http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn delta_seconds_are_read_and_capped() {
        let now = at(1_000);
        assert_eq!(parse("1", now), Some(Duration::from_secs(1)));
        assert_eq!(parse(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse("0.5", now), Some(Duration::from_millis(500)));
        assert_eq!(parse("0", now), Some(Duration::ZERO));
        assert_eq!(parse("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse("99999999999999999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse("-1", now), None);
        assert_eq!(parse("", now), None);
        assert_eq!(parse("soon", now), None);
        assert_eq!(parse("1e400", now), None);
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        // 784111777 = Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example).
        let expected = Some(at(784_111_777));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), expected);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("Sun, 31 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(parse_http_date(""), None);
        assert_eq!(
            format_http_date(at(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        for secs in [0, 951_782_400, 1_709_164_800, 4_102_444_799] {
            assert_eq!(parse_http_date(&format_http_date(at(secs))), Some(at(secs)));
        }
    }

    #[test]
    fn a_date_is_relative_to_now_and_a_past_one_is_zero() {
        let now = at(784_111_770);
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:37 GMT", at(784_111_800)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse("Mon, 07 Nov 1994 08:49:37 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn a_date_is_taken_relative_to_the_response_date() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:40 GMT".parse().unwrap(),
        );
        headers.insert(
            http::header::DATE,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        // The local clock is a day ahead: the server's own Date still gives 3 s.
        let skewed = at(784_111_777 + 86_400);
        assert_eq!(from_headers(&headers, skewed), Some(Duration::from_secs(3)));
        headers.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(from_headers(&headers, skewed), Some(Duration::from_secs(2)));
        headers.remove(http::header::RETRY_AFTER);
        assert_eq!(from_headers(&headers, skewed), None);
    }

    #[test]
    fn pushback_errors_carry_their_value_and_say_who_retries() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>\
                     <Message>Please reduce your request rate &amp; retry</Message></Error>";
        let (code, message) = s3_error_fields(body);
        assert_eq!(code.as_deref(), Some("SlowDown"));
        assert_eq!(
            message.as_deref(),
            Some("Please reduce your request rate & retry")
        );
        let pushback = |status, retry_after| Pushback {
            status,
            code: code.clone(),
            message: message.clone(),
            retry_after,
        };
        // Short: OpenDAL's own retry (1 s at least) honours it.
        let short = pushback(503, Some(Duration::from_secs(1))).into_dal_error(false);
        assert!(short.is_temporary());
        assert_eq!(
            pushback_of(&short).and_then(|p| p.retry_after),
            Some(Duration::from_secs(1))
        );
        // Long: handed to the caller's loop at once.
        let long = pushback(429, Some(Duration::from_secs(5))).into_dal_error(false);
        assert!(!long.is_temporary());
        assert_eq!(long.kind(), opendal::ErrorKind::RateLimited);
        assert_eq!(
            pushback_of(&long).map(Pushback::summary).as_deref(),
            Some("SlowDown: Please reduce your request rate & retry (HTTP 429 Too Many Requests)")
        );
        assert!(pushback(500, None).into_dal_error(false).is_temporary());
        // A multipart part stays with OpenDAL's in-place retry whatever it waits.
        assert!(pushback(503, Some(Duration::from_secs(9)))
            .into_dal_error(true)
            .is_temporary());
        let bare = Pushback {
            status: 503,
            code: None,
            message: None,
            retry_after: None,
        };
        assert_eq!(bare.summary(), "HTTP 503 Service Unavailable");
        // The kinds OpenDAL's S3 service would give: SlowDown is a rate limit, a bare 503 not.
        assert_eq!(short.kind(), opendal::ErrorKind::RateLimited);
        assert_eq!(
            bare.into_dal_error(false).kind(),
            opendal::ErrorKind::Unexpected
        );
        assert_eq!(s3_error_fields(b"<html>busy</html>"), (None, None));
        assert_eq!(show_secs(Duration::from_millis(1500)), "2 s");
        let req = |method: http::Method, uri: &str| {
            http::Request::builder()
                .method(method)
                .uri(uri)
                .body(Buffer::new())
                .unwrap()
        };
        use http::Method;
        assert!(is_part_upload(&req(
            Method::PUT,
            "http://h/b/k?partNumber=3&uploadId=xyz"
        )));
        assert!(!is_part_upload(&req(Method::PUT, "http://h/b/k")));
        assert!(!is_part_upload(&req(
            Method::POST,
            "http://h/b/k?uploadId=xyz"
        )));
    }
}
