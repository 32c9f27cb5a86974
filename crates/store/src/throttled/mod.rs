//! Bandwidth control on a store: where [`Store`](crate::Store) meets `strata-throttle`.
//!
//! [`Store::with_throttle`](crate::Store::with_throttle) puts a store under a
//! [`Throttle`]. A throttle admits two things, bytes (the rate: caps, priority shares, the
//! controller's target) and request slots (the requests in flight the controller allows),
//! and it learns from one sample per finished request. Each is done in exactly one place, so
//! nothing is counted twice:
//!
//! - **Bytes** are paced by this module's `Gate`, in a store layer (`GatedStore`, in
//!   `throttled/gate.rs`, composed by [`crate::layers`]) over every backend and its
//!   uploads: `read_range` and `read_all` (read
//!   lane), `Upload::write_at` and `write_atomic` (write lane) wait for their byte count
//!   before they touch the backend, in the store's priority class. Listing, `stat`,
//!   `delete`, publishing and reading back one's own staged bytes are not data transfers
//!   and pass freely. Pacing lives in Strata's own store layer and not in an OpenDAL layer for two reasons. Local
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

mod gate;
mod sensing;

pub(crate) use gate::{Gate, GatedStore};
pub use sensing::ThrottleLayer;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_throttle::{Direction, Outcome, Phase, Throttle};

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
    let s3 = store.uri().scheme().is_remote();
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
