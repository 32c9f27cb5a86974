//! Bandwidth control on a store: where [`Store`](crate::Store) meets `strata-throttle`.
//!
//! [`Store::with_throttle`](crate::Store::with_throttle) puts a store under a
//! [`Throttle`]. A throttle admits two things, bytes (the rate: caps, priority shares, the
//! controller's target) and request slots (the requests in flight the controller allows),
//! and it learns from one sample per finished request. Each is done in exactly one place, so
//! nothing is counted twice:
//!
//! - **Bytes** are paced by this module's `Gate`, at the [`Store`](crate::Store) and
//!   [`Upload`](crate::Upload) level, for every store: `read_range` and `read_all` (read
//!   lane), `Upload::write_at` and `write_atomic` (write lane) wait for their byte count
//!   before they touch the backend, in the store's priority class. Listing, `stat`,
//!   `delete`, publishing and reading back one's own staged bytes are not data transfers
//!   and pass freely. Pacing lives here and not in an OpenDAL layer for two reasons. Local
//!   stores bypass OpenDAL altogether (positional `pread`/`pwrite`, `fsync`, `rename`, which
//!   OpenDAL's `fs` service does not expose). And an OpenDAL layer runs *inside* OpenDAL's
//!   timeout layer: a multipart part that waited for its bytes behind a low cap would spend
//!   its 120-second budget in the queue, time out and fail the whole upload. Waiting before
//!   the call keeps the rate's waits outside every timeout.
//! - **Slots and samples**, for object stores reached over HTTP (S3), come from a
//!   [`ThrottleLayer`], a real `opendal::raw::Layer` that wraps the operator's HTTP
//!   transport. Every object GET and PUT (each multipart part, each retry) takes a slot
//!   ([`Throttle::acquire_slot`]: no tokens, its bytes were paced already) and reports one
//!   sample with its own latency, its body bytes and its outcome read from the HTTP status
//!   (429 and 503 are store pushback and carry `Retry-After`; below this layer, a Strata
//!   store's pushback transport has turned them into errors that carry it, and their
//!   outcome is read from those). Slots must be counted there:
//!   OpenDAL's multipart writer takes bytes from `write_at` and sends whole parts later,
//!   several at a time, so a slot held by `write_at` would not be a request in flight, and
//!   without a bound on requests in flight the controller overshoots before its first
//!   sample arrives. A slot wait is bounded by the requests in flight finishing, so it fits
//!   in the timeouts. Stores without HTTP requests (local files, memory) take the slot at
//!   the gate and report each gated call as one sample, with the outcome mapped from
//!   [`StoreError`] by [`outcome_of_store_error`].
//!
//! **Spacing PUTs on the wire.** Pacing at `write_at` holds the rate on average, but
//! OpenDAL keeps up to a part per file in memory before sending it whole, so the bytes
//! reach the wire in bursts of parts, and how much waits in memory varies (at file
//! boundaries most). The layer therefore also spaces PUTs at the operator's write cap (the
//! next may start `bytes / cap` after the previous one started), so that every 10-second
//! window, not only the average, holds the cap. This is timing only, nothing is charged
//! twice; the wait is bounded (20 s) so that it always fits in OpenDAL's timeouts.
//!
//! **Latency of a PUT.** The controller wants each request's delay without its body
//! transfer. A GET gives it directly (time to the response headers). A PUT's response only
//! comes after the whole body, and the transport cannot see when the last body byte left,
//! so the layer reports `duration - bytes × n / peak`, where `n` is the mean number of our
//! PUTs in flight during this one (itself included: they share the path) and `peak` the
//! best path throughput recent large PUTs have shown (ten one-minute buckets, like
//! LEDBAT's base delay; how it is measured below): a PUT that ran as fast as its share of
//! the path allows reports its round trip and server time; one slowed by a queue, or by a
//! competing flow taking a share of the link, reports the extra time as delay. Without
//! `n`, two of our own parts dividing an idle link would each report half their duration
//! as queueing, and the controller would hold itself at its floor on an empty path.
//! The peak itself is not scaled by `n`: a request is "in flight" from its start to its
//! response, which includes time its body is not on the wire (queued in socket buffers
//! before, the server digesting it after), so `bytes × n / duration` can exceed the path
//! (20 MB/s seen on a 10 MB/s link), and every later PUT then reports a queue that is not
//! there and the controller never takes the link back. `bytes / duration` never exceeds
//! the path, nor does the throughput of a busy period (bytes of the PUTs that finished
//! in it over its length, every byte of which crossed the path within it), which
//! approaches the path while our PUTs keep it busy: the peak is the better of the two,
//! so the sensor may under-read a queue, never invent one.
//! Requests of every size are comparable this way (the last part of a file is small),
//! which a whole-duration sample would not give.
//!
//! [`ThrottleStatus`] is the serialisable view of a throttle for progress lines, `--json`
//! output and `strata status`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use opendal::raw::{Layer, Servicer};
use opendal::{Buffer, HttpBody, HttpTransport, HttpTransporter, OperationContext};
use serde::{Deserialize, Serialize};
use strata_throttle::{Direction, Outcome, Permit, Phase, Priority, Throttle};

use crate::error::StoreError;

// ---------------------------------------------------------------------------------------
// Configuration

/// Target queueing delay of S3 throttles (see [`config_for`]).
pub const S3_TARGET_DELAY: Duration = Duration::from_millis(100);

/// The throttle configuration suited to `store`, for a given cap: congestion control (if
/// asked for) only where there is a network path to read, S3; local disks and memory get
/// the plain cap. For S3:
///
/// - a burst of four multipart parts (32 MiB), so that an upload starts at once instead of
///   waiting for its first chunks to trickle in at the controller's starting rate, in
///   whatever order the reads finished (the burst only fills OpenDAL's buffers sooner: the
///   wire still holds the cap, PUTs are spaced, and the slots bound what is in flight);
/// - a target queueing delay of 100 ms (RFC 6817's ceiling) instead of LEDBAT++'s 60 ms: a
///   sample is a whole HTTP request of megabytes, whose server time and TCP ramp vary by
///   tens of milliseconds without any queue (on a loopback S3 server, 60 ms cut a lone
///   upload to a third of its speed); a competing flow adds far more (a share of the link
///   stretches every body by its own length).
pub fn config_for(
    store: &crate::Store,
    limit: strata_throttle::BwLimit,
    congestion_control: bool,
) -> strata_throttle::GovernorConfig {
    let s3 = store.uri().scheme() == crate::StoreScheme::S3;
    let mut config = strata_throttle::GovernorConfig {
        limit,
        congestion_control: congestion_control && s3,
        burst: s3.then_some(4 * crate::dal::S3_PART_SIZE as u64),
        ..strata_throttle::GovernorConfig::default()
    };
    if s3 {
        config.controller.target_delay = S3_TARGET_DELAY;
    }
    config
}

// ---------------------------------------------------------------------------------------
// Admission

/// Admission of one store's data calls (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    throttle: Throttle,
    class: Priority,
    /// True when the gate reports each call as a sample (no [`ThrottleLayer`] does).
    samples: bool,
}

impl Gate {
    pub(crate) fn new(throttle: Throttle, class: Priority, samples: bool) -> Gate {
        Gate {
            throttle,
            class,
            samples,
        }
    }

    pub(crate) fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub(crate) fn class(&self) -> Priority {
        self.class
    }

    /// Runs `call`, which moves `bytes` in `direction`, once the throttle admits it.
    pub(crate) async fn admit<T>(
        &self,
        direction: Direction,
        bytes: u64,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if !self.samples {
            // The layer takes the slots of the HTTP requests this call makes.
            self.throttle.pace(direction, self.class, bytes).await;
            return call.await;
        }
        let permit = self.throttle.acquire(direction, self.class, bytes).await;
        let result = call.await;
        self.report(permit, result.as_ref().err());
        result
    }

    /// Like [`Gate::admit`] for a read whose size is only known when it is done
    /// (`read_all`): admitted as an empty request, its bytes charged as soon as they are
    /// known, so the average rate still holds.
    pub(crate) async fn admit_read_unsized(
        &self,
        call: impl Future<Output = Result<Bytes, StoreError>>,
    ) -> Result<Bytes, StoreError> {
        let direction = Direction::Read;
        let permit = match self.samples {
            true => Some(self.throttle.acquire_slot(direction, self.class).await),
            false => None,
        };
        let result = call.await;
        if let Ok(data) = &result {
            let n = data.len() as u64;
            self.throttle.pace(direction, self.class, n).await;
            if let Some(mut permit) = permit {
                permit.add_bytes(n);
                self.report(permit, None);
            }
        } else if let Some(permit) = permit {
            self.report(permit, result.as_ref().err());
        }
        result
    }

    fn report(&self, permit: Permit, error: Option<&StoreError>) {
        if !self.samples {
            return; // the layer samples; dropping the permit frees its slot
        }
        match error {
            None => permit.finish(Outcome::Ok, None),
            Some(e) => {
                if let Some(outcome) = outcome_of_store_error(e) {
                    permit.finish(outcome, None);
                }
            }
        }
    }
}

/// Runs `call` through `gate` when the store has one.
pub(crate) async fn gated<T>(
    gate: Option<&Gate>,
    direction: Direction,
    bytes: u64,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match gate {
        Some(gate) => gate.admit(direction, bytes, call).await,
        None => call.await,
    }
}

// ---------------------------------------------------------------------------------------
// Outcomes

/// What a failed store call says about the path to the store, for the congestion
/// controller. `None` when it says nothing: a missing file, refused credentials, a full
/// disk or bad input fail fast without having measured any queue.
///
/// Pushback that survived OpenDAL's retries (HTTP 429 and 503, S3 `SlowDown`, OpenDAL's
/// `RateLimited`) is [`Outcome::Throttled`]; an unreachable server or a timeout is
/// [`Outcome::Timeout`]; a connection reset is [`Outcome::Reset`]; other retryable
/// failures are [`Outcome::OtherError`].
pub fn outcome_of_store_error(error: &StoreError) -> Option<Outcome> {
    use std::io::ErrorKind;
    match error {
        StoreError::Unreachable { detail, .. } => Some(match outcome_of_text(detail) {
            Outcome::Reset => Outcome::Reset,
            _ => Outcome::Timeout,
        }),
        StoreError::Backend {
            detail,
            retryable: true,
            ..
        } => Some(outcome_of_text(detail)),
        StoreError::Io { source, .. } => match source.kind() {
            ErrorKind::TimedOut => Some(Outcome::Timeout),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
                Some(Outcome::Reset)
            }
            _ => None,
        },
        StoreError::RetryLater { detail, after, .. } => Some(match outcome_of_text(detail) {
            Outcome::Throttled { .. } => Outcome::Throttled {
                retry_after: Some(*after),
            },
            other => other,
        }),
        _ => None,
    }
}

/// Reads an error message: pushback, timeout, reset, or something else.
fn outcome_of_text(text: &str) -> Outcome {
    let t = text.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    if any(&[
        "ratelimited",
        "rate limited",
        "slowdown",
        "slow down",
        "too many requests",
        "service unavailable",
        "429",
        "503",
    ]) {
        Outcome::Throttled { retry_after: None }
    } else if any(&["timeout", "timed out"]) {
        Outcome::Timeout
    } else if any(&["reset", "broken pipe", "connection closed", "aborted"]) {
        Outcome::Reset
    } else {
        Outcome::OtherError
    }
}

/// The outcome of an HTTP request that got a response.
fn outcome_of_status(status: http::StatusCode, headers: &http::HeaderMap) -> Outcome {
    match status.as_u16() {
        429 | 503 => Outcome::Throttled {
            retry_after: retry_after(headers),
        },
        408 | 504 => Outcome::Timeout,
        500..=599 => Outcome::OtherError,
        // Any other answer, 404 included, crossed the path and back: a valid sample.
        _ => Outcome::Ok,
    }
}

/// `Retry-After`, in seconds or as an HTTP-date (capped, see [`crate::retry_after`]).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    crate::retry_after::from_headers(headers, std::time::SystemTime::now())
}

/// The outcome of an HTTP request that got no (complete) response.
fn outcome_of_dal_error(error: &opendal::Error) -> Outcome {
    use std::error::Error as _;
    if let Some(pushback) = crate::retry_after::pushback_of(error) {
        // An answer the store's pushback transport turned into an error: its status.
        return match pushback.status {
            429 | 503 => Outcome::Throttled {
                retry_after: pushback.retry_after,
            },
            504 => Outcome::Timeout,
            _ if pushback.is_rate_limit() => Outcome::Throttled {
                retry_after: pushback.retry_after,
            },
            _ => Outcome::OtherError,
        };
    }
    if error.kind() == opendal::ErrorKind::RateLimited {
        return Outcome::Throttled { retry_after: None };
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::TimedOut => return Outcome::Timeout,
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof => return Outcome::Reset,
                _ => {}
            }
        }
        cur = e.source();
    }
    let mut text = error.to_string();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(e) = cur {
        text.push(' ');
        text.push_str(&e.to_string());
        cur = e.source();
    }
    outcome_of_text(&text)
}

// ---------------------------------------------------------------------------------------
// Sensing: the OpenDAL layer

/// An OpenDAL layer that gives every object GET and PUT of the operator it is applied to a
/// request slot of a [`Throttle`] and feeds its congestion controller one sample per
/// request, measured at the HTTP transport (see the module doc). It paces no bytes: the
/// store does, before the OpenDAL call.
///
/// Strata applies it itself in [`Store::with_throttle`](crate::Store::with_throttle); it is
/// public for operators built outside a `Store`. Operations without a body to speak of
/// (HEAD, LIST, DELETE, multipart initiation and completion) are not sampled: their server
/// time, not the path, dominates them.
#[derive(Clone, Debug)]
pub struct ThrottleLayer {
    sensor: Arc<Sensor>,
}

impl ThrottleLayer {
    /// A layer whose requests take `throttle`'s slots in priority class `class`.
    pub fn new(throttle: Throttle, class: Priority) -> ThrottleLayer {
        ThrottleLayer {
            sensor: Arc::new(Sensor {
                throttle,
                class,
                next_put: Mutex::new(Duration::ZERO),
                peaks: Mutex::new([PeakRate::default(), PeakRate::default()]),
                puts: Mutex::new(Sharing::default()),
            }),
        }
    }
}

impl Layer for ThrottleLayer {
    fn apply_context(&self, _srv: Servicer, inner: OperationContext) -> OperationContext {
        // Keep forwarding to the transport below (the store's own HTTP client, with the
        // layers that wrapped it before), as OpenDAL's layer contract asks.
        let transport = SensingTransport {
            inner: inner.http_transport().clone(),
            sensor: self.sensor.clone(),
        };
        inner.with_http_transport(HttpTransporter::new(transport))
    }
}

/// Shared by the transport and the response bodies it hands out.
#[derive(Debug)]
struct Sensor {
    throttle: Throttle,
    class: Priority,
    /// When the next PUT may start (throttle clock), see the module doc.
    next_put: Mutex<Duration>,
    /// Best recent path throughput seen by one request (its own throughput times the
    /// requests that shared the path with it), per lane ([`Direction::index`]).
    peaks: Mutex<[PeakRate; 2]>,
    /// PUTs on the wire, to know how many shared the path with each one.
    puts: Mutex<Sharing>,
}

/// A PUT counted in [`Sensor::puts`] until it ends, or is dropped (cancelled).
struct OnWire {
    sensor: Arc<Sensor>,
    since: Duration,
    from: f64,
    ended: bool,
}

impl OnWire {
    fn start(sensor: &Arc<Sensor>) -> OnWire {
        let since = sensor.throttle.now();
        let from = sensor.sharing().start(since);
        OnWire {
            sensor: Arc::clone(sensor),
            since,
            from,
            ended: false,
        }
    }

    /// The mean number of PUTs in flight while this one was (itself included), and when
    /// it started.
    fn end(mut self, now: Duration) -> (f64, Duration) {
        self.ended = true;
        let sharing = self.sensor.sharing().end(now, self.since, self.from);
        (sharing, self.since)
    }
}

impl Drop for OnWire {
    fn drop(&mut self) {
        if !self.ended {
            let now = self.sensor.throttle.now();
            self.sensor.sharing().end(now, self.since, self.from);
        }
    }
}

/// Requests in flight and the time integral of their number: the mean number of requests
/// that were in flight during one request is the integral's growth over its duration.
#[derive(Debug, Default)]
struct Sharing {
    in_flight: u32,
    /// Request-seconds since the first request.
    integral: f64,
    last: Duration,
    /// Start of the current busy period (some PUT in flight ever since).
    busy_since: Duration,
    /// Bytes of the PUTs of the current busy period that have succeeded.
    busy_bytes: u64,
}

impl Sharing {
    fn advance(&mut self, now: Duration) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.integral += f64::from(self.in_flight) * dt;
        self.last = self.last.max(now);
    }

    /// A request starts: the integral to measure it from.
    fn start(&mut self, now: Duration) -> f64 {
        self.advance(now);
        if self.in_flight == 0 {
            self.busy_since = now;
            self.busy_bytes = 0;
        }
        self.in_flight += 1;
        self.integral
    }

    /// A PUT of `bytes` that started at `since` succeeded at `now`: the throughput of the
    /// current busy period so far, bytes of its finished PUTs over its length. Every one
    /// of those bytes crossed the path within the period, so this never exceeds the path;
    /// and while our PUTs keep the path busy it approaches it. `None` for a PUT from an
    /// earlier period.
    fn delivered(&mut self, bytes: u64, since: Duration, now: Duration) -> Option<f64> {
        if since < self.busy_since {
            return None;
        }
        self.busy_bytes = self.busy_bytes.saturating_add(bytes);
        let secs = now.saturating_sub(self.busy_since).as_secs_f64();
        (secs > 0.0).then(|| self.busy_bytes as f64 / secs)
    }

    /// The request that started at `since` (integral `from`) ends: the mean number of
    /// requests in flight during it, itself included (at least 1).
    fn end(&mut self, now: Duration, since: Duration, from: f64) -> f64 {
        self.advance(now);
        self.in_flight = self.in_flight.saturating_sub(1);
        let secs = now.saturating_sub(since).as_secs_f64();
        if secs > 0.0 {
            ((self.integral - from) / secs).max(1.0)
        } else {
            1.0
        }
    }
}

/// Requests smaller than this do not set the peak throughput: fixed costs dominate them.
const PEAK_MIN_BYTES: u64 = 256 << 10;

/// Longest a PUT waits for its place in the spacing (far below OpenDAL's 120-second I/O
/// timeout, which the wait counts against).
const MAX_SPACING_WAIT: Duration = Duration::from_secs(20);

impl Sensor {
    /// Waits for this PUT's place on the wire at the operator's write cap (see the module
    /// doc). The controller's own target is not spaced: it is a ceiling the controller
    /// raises as samples arrive, and spacing at its starting value would hold back the
    /// very samples it grows on.
    async fn space_put(&self, bytes: u64) {
        let cap = self.throttle.limit().for_direction(Direction::Write);
        let Some(rate) = cap.as_bytes_per_sec() else {
            return;
        };
        let now = self.throttle.now();
        let start = {
            let mut next = self.next_put.lock().unwrap_or_else(|e| e.into_inner());
            // Never further ahead than the longest wait: a backlog left by a lower rate
            // must not hold later PUTs.
            let start = (*next).max(now).min(now + MAX_SPACING_WAIT);
            *next = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            start
        };
        let wait = start.saturating_sub(now);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    fn sharing(&self) -> std::sync::MutexGuard<'_, Sharing> {
        self.puts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The delay a finished PUT reports: its duration less the time its body takes when
    /// it shares the path with the `sharing` requests that were in flight with it (itself
    /// included) at the best recent path throughput (see the module doc). Our own requests
    /// dividing the path between them is not a queue; a competing flow taking a share of
    /// it, or a queue, is.
    fn put_latency(
        &self,
        bytes: u64,
        start: Duration,
        finish: Duration,
        sharing: f64,
        busy_rate: Option<f64>,
    ) -> Duration {
        let duration = finish.saturating_sub(start);
        let secs = duration.as_secs_f64();
        let sharing = if sharing.is_finite() {
            sharing.max(1.0)
        } else {
            1.0
        };
        let mut peaks = self.peaks.lock().unwrap_or_else(|e| e.into_inner());
        let peak = &mut peaks[Direction::Write.index()];
        if bytes >= PEAK_MIN_BYTES && secs > 0.0 {
            // What this request achieved, or all of ours together over the busy period:
            // both lower bounds of the path (module doc).
            peak.update(finish, (bytes as f64 / secs).max(busy_rate.unwrap_or(0.0)));
        }
        match peak.get() {
            Some(rate) if rate > 0.0 => {
                duration.saturating_sub(Duration::from_secs_f64(bytes as f64 * sharing / rate))
            }
            _ => duration,
        }
    }

    /// Ends a request: its permit reports the sample and frees the slot.
    fn finish(
        &self,
        direction: Direction,
        mut permit: Permit,
        bytes: u64,
        outcome: Outcome,
        latency: Option<Duration>,
    ) {
        let secs = self
            .throttle
            .now()
            .saturating_sub(permit.admitted_at())
            .as_secs_f64();
        permit.add_bytes(bytes);
        permit.finish(outcome, latency);
        if tracing::enabled!(tracing::Level::TRACE) {
            let snap = self.throttle.snapshot(direction).controller;
            tracing::trace!(
                ?direction,
                bytes,
                secs,
                latency_ms = latency.map(|l| l.as_secs_f64() * 1000.0),
                ?outcome,
                target_rate = snap.target_rate,
                queuing_ms = snap.queuing_delay.as_secs_f64() * 1000.0,
                base_ms = snap.base_delay.map(|b| b.as_secs_f64() * 1000.0),
                slots = snap.in_flight_target,
                phase = ?snap.phase,
                "throttle sample"
            );
        }
    }
}

/// Which lane an HTTP request is sampled in, if any: PUTs with a body (objects and parts)
/// and GETs of object content (a `Range`, or no query: not a listing).
fn sampled_lane(req: &http::Request<Buffer>) -> Option<Direction> {
    match *req.method() {
        http::Method::PUT if !req.body().is_empty() => Some(Direction::Write),
        http::Method::GET
            if req.headers().contains_key(http::header::RANGE) || req.uri().query().is_none() =>
        {
            Some(Direction::Read)
        }
        _ => None,
    }
}

/// The HTTP transport of a throttled operator: forwards every request, samples some.
struct SensingTransport {
    inner: HttpTransporter,
    sensor: Arc<Sensor>,
}

impl HttpTransport for SensingTransport {
    async fn fetch(&self, req: http::Request<Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        let Some(direction) = sampled_lane(&req) else {
            return self.inner.fetch(req).await;
        };
        let sensor = &self.sensor;
        let bytes = req.body().len() as u64;
        if direction == Direction::Write {
            sensor.space_put(bytes).await;
        }
        let permit = sensor.throttle.acquire_slot(direction, sensor.class).await;
        let start = permit.admitted_at();
        let on_wire = (direction == Direction::Write).then(|| OnWire::start(sensor));
        let result = self.inner.fetch(req).await;
        let headers_at = sensor.throttle.now();
        let (sharing, on_wire_since) = on_wire.map_or((1.0, start), |w| w.end(headers_at));
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                let outcome = outcome_of_dal_error(&error);
                // An answer turned into an error below (pushback) still measured the path.
                let answered = crate::retry_after::pushback_of(&error).is_some();
                let latency = (answered && direction == Direction::Read)
                    .then(|| headers_at.saturating_sub(start));
                sensor.finish(direction, permit, bytes, outcome, latency);
                return Err(error);
            }
        };
        let outcome = outcome_of_status(response.status(), response.headers());
        match direction {
            Direction::Write => {
                let latency = (outcome == Outcome::Ok).then(|| {
                    let busy = sensor.sharing().delivered(bytes, on_wire_since, headers_at);
                    sensor.put_latency(bytes, start, headers_at, sharing, busy)
                });
                sensor.finish(direction, permit, bytes, outcome, latency);
                Ok(response)
            }
            Direction::Read if outcome != Outcome::Ok || !response.status().is_success() => {
                let latency = Some(headers_at.saturating_sub(start));
                sensor.finish(direction, permit, 0, outcome, latency);
                Ok(response)
            }
            Direction::Read => {
                // The request ends with its body: its bytes then, the headers' latency.
                let (parts, body) = response.into_parts();
                let sensor = Arc::clone(sensor);
                let body = body.map_inner(move |stream| {
                    Box::new(SampledBody {
                        inner: stream,
                        sensor,
                        permit: Some(permit),
                        latency: headers_at.saturating_sub(start),
                        bytes: 0,
                    })
                });
                Ok(http::Response::from_parts(parts, body))
            }
        }
    }
}

type BodyStream = Box<dyn Stream<Item = opendal::Result<Buffer>> + Send + Sync + Unpin + 'static>;

/// A GET's response body that ends the request (sample, slot) when the body ends. A body
/// dropped before its end (the reader gave up) frees the slot without a sample.
struct SampledBody {
    inner: BodyStream,
    sensor: Arc<Sensor>,
    permit: Option<Permit>,
    latency: Duration,
    bytes: u64,
}

impl Stream for SampledBody {
    type Item = opendal::Result<Buffer>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let outcome = match &item {
            Some(Ok(buf)) => {
                this.bytes += buf.len() as u64;
                return Poll::Ready(item);
            }
            Some(Err(error)) => outcome_of_dal_error(error),
            None => Outcome::Ok,
        };
        if let Some(permit) = this.permit.take() {
            let latency = (outcome == Outcome::Ok).then_some(this.latency);
            this.sensor
                .finish(Direction::Read, permit, this.bytes, outcome, latency);
        }
        Poll::Ready(item)
    }
}

/// The best value of a per-request throughput over ten one-minute buckets.
#[derive(Debug, Default)]
struct PeakRate {
    /// (minute index, best bytes/s in it), oldest first.
    buckets: VecDeque<(u64, f64)>,
}

impl PeakRate {
    const BUCKETS: usize = 10;

    fn update(&mut self, now: Duration, rate: f64) {
        if !rate.is_finite() {
            return;
        }
        let minute = now.as_secs() / 60;
        match self.buckets.back_mut() {
            Some((m, best)) if *m == minute => *best = best.max(rate),
            _ => {
                self.buckets.push_back((minute, rate));
                while self.buckets.len() > Self::BUCKETS {
                    self.buckets.pop_front();
                }
            }
        }
    }

    fn get(&self) -> Option<f64> {
        self.buckets.iter().map(|(_, r)| *r).reduce(f64::max)
    }
}

// ---------------------------------------------------------------------------------------
// Status

/// A store throttle's state for progress lines, `--json` output and `strata status`
/// (serialised as JSON; rates in bytes per second, `null` for "no limit").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottleStatus {
    /// The operator's cap in force, written as `--bwlimit` reads it (`off`, `20M`,
    /// `10M:off`).
    pub limit: String,
    /// Whether the congestion controller sets the rate below the cap.
    pub congestion_control: bool,
    /// Reads from the store.
    pub read: LaneStatus,
    /// Writes to the store.
    pub write: LaneStatus,
}

/// One lane (direction) of a [`ThrottleStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaneStatus {
    /// The rate admissions run at now: the cap, or the controller's target if lower.
    pub rate_limit: Option<u64>,
    /// The operator's cap for this lane.
    pub cap: Option<u64>,
    /// Delivered over the last second, as the controller measured it (`null` without
    /// congestion control).
    pub current_rate: Option<f64>,
    /// The controller's target rate before the cap (`null` without congestion control).
    pub target_rate: Option<f64>,
    /// The path's delay without queues (minimum seen), in milliseconds.
    pub base_delay_ms: Option<f64>,
    /// The estimated queueing delay now, in milliseconds.
    pub queuing_delay_ms: Option<f64>,
    /// The queueing delay the controller aims for, in milliseconds.
    pub target_delay_ms: f64,
    /// Multiplicative decreases so far (delay, errors and pushback).
    pub backoff_events: u64,
    /// Of which the store's pushback (HTTP 429/503).
    pub pushback_events: u64,
    /// Data requests holding a slot now.
    pub in_flight: usize,
    /// Data requests allowed in flight.
    pub in_flight_target: usize,
    /// Error fraction of recent requests.
    pub loss_rate: f64,
    /// `slow-start`, `steady`, `slowdown` (re-measuring the base delay), `paused`
    /// (Retry-After) or `fixed` (no congestion control).
    pub phase: String,
    /// Transfers waiting for admission.
    pub queued: usize,
    /// Bytes admitted so far (difference two statuses for a rate).
    pub admitted_bytes: u64,
}

impl ThrottleStatus {
    /// The state of `throttle` now.
    pub fn of(throttle: &Throttle) -> ThrottleStatus {
        let config = throttle.config();
        let control = config.congestion_control;
        let lane = |direction: Direction| {
            let snap = throttle.snapshot(direction);
            let c = snap.controller;
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            LaneStatus {
                rate_limit: snap.bucket_rate.as_bytes_per_sec(),
                cap: config.limit.for_direction(direction).as_bytes_per_sec(),
                current_rate: control.then_some(c.current_rate),
                target_rate: control.then_some(c.target_rate),
                base_delay_ms: c.base_delay.filter(|_| control).map(ms),
                queuing_delay_ms: control.then(|| ms(c.queuing_delay)),
                target_delay_ms: ms(c.target_delay),
                backoff_events: c.backoff_events,
                pushback_events: c.pushback_events,
                in_flight: snap.in_flight,
                in_flight_target: if control {
                    c.in_flight_target
                } else {
                    config.controller.concurrency.max
                },
                loss_rate: c.loss_rate,
                phase: if control {
                    phase_name(c.phase).to_string()
                } else {
                    "fixed".to_string()
                },
                queued: snap.queued.iter().sum(),
                admitted_bytes: snap.admitted_bytes.iter().sum(),
            }
        };
        ThrottleStatus {
            limit: config.limit.to_string(),
            congestion_control: control,
            read: lane(Direction::Read),
            write: lane(Direction::Write),
        }
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::SlowStart => "slow-start",
        Phase::Steady => "steady",
        Phase::Slowdown => "slowdown",
        Phase::Paused => "paused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_outcomes() {
        let backend = |detail: &str, retryable| StoreError::Backend {
            path: "s3://b/k".into(),
            detail: detail.into(),
            retryable,
        };
        let throttled = Some(Outcome::Throttled { retry_after: None });
        assert_eq!(
            outcome_of_store_error(&backend("SlowDown: Please reduce your request rate", true)),
            throttled
        );
        assert_eq!(
            outcome_of_store_error(&backend("RateLimited: too many requests", true)),
            throttled
        );
        assert_eq!(
            outcome_of_store_error(&backend("Unexpected: operation timeout reached", true)),
            Some(Outcome::Timeout)
        );
        assert_eq!(
            outcome_of_store_error(&backend("InternalError: boom", true)),
            Some(Outcome::OtherError)
        );
        assert_eq!(outcome_of_store_error(&backend("NoSuchKey", false)), None);
        let unreachable = StoreError::Unreachable {
            endpoint: "http://x".into(),
            detail: "connection refused".into(),
        };
        assert_eq!(outcome_of_store_error(&unreachable), Some(Outcome::Timeout));
        let reset = StoreError::Unreachable {
            endpoint: "http://x".into(),
            detail: "connection reset by peer".into(),
        };
        assert_eq!(outcome_of_store_error(&reset), Some(Outcome::Reset));
        let io = StoreError::Io {
            path: "p".into(),
            source: std::io::Error::from(std::io::ErrorKind::TimedOut),
        };
        assert_eq!(outcome_of_store_error(&io), Some(Outcome::Timeout));
        assert_eq!(
            outcome_of_store_error(&StoreError::NotFound { path: "p".into() }),
            None
        );
        assert_eq!(
            outcome_of_store_error(&StoreError::NoSpace { path: "p".into() }),
            None
        );
    }

    #[test]
    fn http_statuses_map_to_outcomes() {
        let mut h = http::HeaderMap::new();
        let ok = http::StatusCode::OK;
        assert_eq!(outcome_of_status(ok, &h), Outcome::Ok);
        assert_eq!(
            outcome_of_status(http::StatusCode::NOT_FOUND, &h),
            Outcome::Ok
        );
        assert_eq!(
            outcome_of_status(http::StatusCode::SERVICE_UNAVAILABLE, &h),
            Outcome::Throttled { retry_after: None }
        );
        h.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            outcome_of_status(http::StatusCode::TOO_MANY_REQUESTS, &h),
            Outcome::Throttled {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            outcome_of_status(http::StatusCode::GATEWAY_TIMEOUT, &h),
            Outcome::Timeout
        );
        assert_eq!(
            outcome_of_status(http::StatusCode::INTERNAL_SERVER_ERROR, &h),
            Outcome::OtherError
        );
        let limited = opendal::Error::new(opendal::ErrorKind::RateLimited, "slow down");
        assert_eq!(
            outcome_of_dal_error(&limited),
            Outcome::Throttled { retry_after: None }
        );
        let reset = opendal::Error::new(opendal::ErrorKind::Unexpected, "send failed")
            .set_source(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(outcome_of_dal_error(&reset), Outcome::Reset);
        // Answers the pushback transport turned into errors keep their status's outcome.
        let pushback = |status, retry_after| {
            crate::retry_after::Pushback {
                status,
                code: None,
                message: None,
                retry_after,
            }
            .into_dal_error(false)
        };
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            outcome_of_dal_error(&pushback(503, after)),
            Outcome::Throttled { retry_after: after }
        );
        assert_eq!(
            outcome_of_dal_error(&pushback(429, None)),
            Outcome::Throttled { retry_after: None }
        );
        assert_eq!(outcome_of_dal_error(&pushback(504, None)), Outcome::Timeout);
        assert_eq!(
            outcome_of_dal_error(&pushback(500, None)),
            Outcome::OtherError
        );
        let later = StoreError::RetryLater {
            path: "s3://b/k".into(),
            detail: "SlowDown: Please reduce your request rate (HTTP 503 Service Unavailable)"
                .into(),
            after: Duration::from_secs(3),
        };
        assert_eq!(
            outcome_of_store_error(&later),
            Some(Outcome::Throttled { retry_after: after })
        );
    }

    #[test]
    fn only_object_data_requests_are_sampled() {
        let req = |method: http::Method, uri: &str, body: &'static [u8], range: bool| {
            let mut b = http::Request::builder().method(method).uri(uri);
            if range {
                b = b.header(http::header::RANGE, "bytes=0-9");
            }
            b.body(Buffer::from(body)).unwrap()
        };
        use http::Method;
        let lane = |r| sampled_lane(&r);
        assert_eq!(
            lane(req(
                Method::PUT,
                "http://h/b/k?partNumber=1&uploadId=x",
                b"data",
                false
            )),
            Some(Direction::Write)
        );
        assert_eq!(lane(req(Method::PUT, "http://h/b/k", b"", false)), None);
        assert_eq!(
            lane(req(Method::GET, "http://h/b/k", b"", true)),
            Some(Direction::Read)
        );
        assert_eq!(
            lane(req(Method::GET, "http://h/b/k", b"", false)),
            Some(Direction::Read)
        );
        assert_eq!(
            lane(req(Method::GET, "http://h/b?list-type=2", b"", false)),
            None
        );
        assert_eq!(lane(req(Method::HEAD, "http://h/b/k", b"", false)), None);
        assert_eq!(
            lane(req(Method::POST, "http://h/b/k?uploads", b"", false)),
            None
        );
    }

    fn sensor() -> Sensor {
        Sensor {
            throttle: Throttle::new(Default::default()),
            class: Priority::Normal,
            next_put: Mutex::new(Duration::ZERO),
            peaks: Mutex::new([PeakRate::default(), PeakRate::default()]),
            puts: Mutex::new(Sharing::default()),
        }
    }

    #[test]
    fn put_latency_removes_the_body_time_at_the_peak_rate() {
        let sensor = sensor();
        let s = Duration::from_secs_f64;
        // 8 MiB in 1.05 s sets the peak (8 MiB/1.05 s): its own latency is zero.
        let mib = 1u64 << 20;
        assert_eq!(
            sensor.put_latency(8 * mib, s(0.0), s(1.05), 1.0, None),
            Duration::ZERO
        );
        // The same part at half the speed reports the extra 1.05 s as delay.
        let l = sensor.put_latency(8 * mib, s(2.0), s(4.1), 1.0, None);
        assert!((l.as_secs_f64() - 1.05).abs() < 1e-6, "{l:?}");
        // A small tail part pays its share of body time only.
        let l = sensor.put_latency(mib / 8, s(5.0), s(5.05), 1.0, None);
        assert!(
            l < Duration::from_millis(50) && l > Duration::from_millis(30),
            "{l:?}"
        );
    }

    #[test]
    fn our_own_parts_sharing_the_path_are_not_a_queue() {
        let sensor = sensor();
        let s = Duration::from_secs_f64;
        let mib = 1u64 << 20;
        assert_eq!(
            sensor.put_latency(8 * mib, s(0.0), s(1.0), 1.0, None),
            Duration::ZERO
        );
        // Two of our parts at once, each at half the speed: the path is full, no queue.
        assert_eq!(
            sensor.put_latency(8 * mib, s(1.0), s(3.0), 2.0, None),
            Duration::ZERO
        );
        // Two parts that each took four times as long: half the path went to someone else.
        let l = sensor.put_latency(8 * mib, s(3.0), s(7.0), 2.0, None);
        assert!((l.as_secs_f64() - 2.0).abs() < 1e-6, "{l:?}");
    }

    #[test]
    fn time_in_flight_off_the_wire_does_not_invent_a_queue() {
        let sensor = sensor();
        let s = Duration::from_secs_f64;
        let mib = 1u64 << 20;
        // Two parts "in flight" together, each done in 0.9 s: one was on the wire while
        // the other waited on the server. Scaled by the sharing they would claim a path
        // of 18.6 MB/s on what is a 9.4 MB/s link.
        sensor.put_latency(8 * mib, s(0.0), s(0.9), 2.0, None);
        sensor.put_latency(8 * mib, s(0.45), s(1.35), 2.0, None);
        // A lone part at the link's speed afterwards is not slowed by any queue.
        let l = sensor.put_latency(8 * mib, s(2.0), s(2.89), 1.0, None);
        assert_eq!(
            l,
            Duration::ZERO,
            "a lone part at link speed read {l:?} of queue"
        );
    }

    #[test]
    fn a_busy_period_measures_the_path_our_parts_share() {
        let s = Duration::from_secs;
        let mib = 1u64 << 20;
        let mut sharing = Sharing::default();
        let a = sharing.start(s(0));
        let b = sharing.start(s(1));
        sharing.end(s(2), s(0), a);
        assert_eq!(
            sharing.delivered(8 * mib, s(0), s(2)),
            Some(4.0 * mib as f64)
        );
        sharing.end(s(3), s(1), b);
        // 16 MiB crossed the path in the 3 s it was busy.
        let rate = sharing.delivered(8 * mib, s(1), s(3)).unwrap();
        assert!((rate - 16.0 * mib as f64 / 3.0).abs() < 1.0, "{rate}");
        // An idle gap starts a new period; a PUT of the old one no longer counts in it.
        let c = sharing.start(s(5));
        assert_eq!(sharing.delivered(8 * mib, s(1), s(6)), None);
        sharing.end(s(6), s(5), c);
        assert_eq!(
            sharing.delivered(8 * mib, s(5), s(6)),
            Some(8.0 * mib as f64)
        );

        // The peak takes the busy period's rate where it beats one PUT's: two parts that
        // each ran at half speed on a full path then make a lone slow part read as queued.
        let sensor = sensor();
        let sec = Duration::from_secs_f64;
        sensor.put_latency(8 * mib, sec(0.0), sec(2.0), 2.0, Some(8.0 * mib as f64));
        let l = sensor.put_latency(8 * mib, sec(3.0), sec(5.0), 1.0, None);
        assert!((l.as_secs_f64() - 1.0).abs() < 1e-6, "{l:?}");
    }

    #[test]
    fn sharing_is_the_mean_number_in_flight() {
        let s = Duration::from_secs;
        let mut sharing = Sharing::default();
        let a = sharing.start(s(0));
        let b = sharing.start(s(1));
        // a: alone for 1 s, then with b for 1 s.
        assert!((sharing.end(s(2), s(0), a) - 1.5).abs() < 1e-9);
        // b: with a for 1 s, then alone for 2 s.
        assert!((sharing.end(s(4), s(1), b) - 4.0 / 3.0).abs() < 1e-9);
        assert_eq!(sharing.in_flight, 0);
        // A request of zero length counts as alone.
        let c = sharing.start(s(5));
        assert_eq!(sharing.end(s(5), s(5), c), 1.0);
    }

    #[test]
    fn status_serialises_both_lanes() {
        let throttle = Throttle::new(strata_throttle::GovernorConfig {
            limit: strata_throttle::BwLimit::parse("4M:off").unwrap(),
            congestion_control: false,
            ..Default::default()
        });
        let status = ThrottleStatus::of(&throttle);
        assert_eq!(status.limit, "4M:off");
        assert_eq!(status.write.cap, Some(4 << 20));
        assert_eq!(status.read.cap, None);
        assert_eq!(status.write.phase, "fixed");
        assert_eq!(status.write.current_rate, None);
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["write"]["rate_limit"], 4 << 20);
        let back: ThrottleStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
    }
}
