//! Sensing: the OpenDAL layer on an S3 store's HTTP transport that takes request slots
//! and reports one congestion sample per object GET and PUT (see [`crate::throttled`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use opendal::raw::{Layer, Servicer};
use opendal::{Buffer, HttpBody, HttpTransport, HttpTransporter, OperationContext};
use strata_throttle::{Direction, Outcome, Permit, Priority, Throttle};

use super::{outcome_of_dal_error, outcome_of_status};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
