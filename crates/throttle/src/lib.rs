//! # strata-throttle: bandwidth control that yields
//!
//! This crate owns how fast Strata may talk to a store: the operator's cap and weekly
//! timetable, the split of that bandwidth between priority classes, and a congestion
//! controller that backs off when the path or the store is busy and grows again when it
//! clears. It is a pure, deterministic core (every part reads time through [`Clock`]) plus
//! a thin async adapter ([`Throttle`], feature `tokio`, on by default) that the store crate
//! drives: it paces each data call's bytes before the call, and an OpenDAL layer on the HTTP
//! transport takes request slots and reports samples (`strata_store::throttled`). It does
//! no I/O itself.
//!
//! | module | owns |
//! | --- | --- |
//! | [`Rate`], [`BwLimit`] | `--bwlimit` syntax: `20M` (binary units, bare number = KiB/s as in rclone), `off`, `WRITE:READ` |
//! | [`Schedule`] | rclone-style weekly timetable, `rate_at(weekday, minute)` |
//! | [`TokenBucket`] | the cap, with a burst of 250 ms of rate |
//! | [`Scheduler`] | start-time fair queueing between [`Priority`] classes, request slots |
//! | [`Controller`] | LEDBAT++-style delay control, error control, slot tuning ([`ConcurrencyTuner`]) |
//! | [`Governor`] | one store: read and write lanes, each bucket + scheduler + controller |
//! | [`Throttle`] | the async adapter: `acquire`, `acquire_slot`, `pace`, `record`, `set_limit`, `snapshot` |
//! | [`sim`] | a deterministic simulated link for tests and `strata bench` |
//!
//! ## The control scheme, and why
//!
//! Strata's bulk traffic must yield: to interactive users on the same uplink, to other
//! tenants of an object store, and to the store itself when it pushes back. Loss-based
//! control (Reno, CUBIC) fills buffers before it reacts, so it never yields; pure
//! delay-based background control (LEDBAT, RFC 6817) yields well but is known to collapse
//! on paths where loss or errors are not congestion, to ramp slowly, and to misjudge the
//! base delay when flows arrive late. The controller therefore combines:
//!
//! 1. **LEDBAT++ delay control** (RFC 6817; draft-irtf-iccrg-ledbat-plus-plus). Per request,
//!    the delay sample is its response latency ([`Sample::latency`]: time to first byte of
//!    a GET, time from the last body byte of a PUT to its response) or, if the layer cannot
//!    measure that, its whole duration. Queueing delay = min of the last 4 samples (recent
//!    ones) − base delay (min over ten 1-minute buckets). Target **60 ms** (LEDBAT++'s
//!    value). Below target the rate grows additively, `off_target × 20 % of the recent
//!    peak delivery rate` per second (the step scales with the path like CUBIC's, so
//!    recovery takes seconds on any link speed, and it is time-based, so it is fair across
//!    RTTs: LEDBAT++'s reason for its slower, RTT-scaled gain). Each successful sample
//!    grants the seconds its bytes stand for at the current rate (`bytes / rate`, at most
//!    4 s), as LEDBAT grows by bytes acknowledged: a lane of large, sparse requests grows
//!    back as fast as one of many small ones. Above target it is cut
//!    multiplicatively by `(delay − target)/target`, at most halved, at most once per half
//!    round trip, from the rate actually delivered. Slow start (doubling per round trip,
//!    ACK-clocked) until the delay first reaches ¾ of the target, as in LEDBAT++.
//!    LEDBAT++'s **periodic slowdown**: every 30 s the rate drops to a quarter for two round
//!    trips so the queue drains and the base delay is re-measured (skipped when the queue is
//!    already near empty, so a quiet path pays nothing).
//! 2. **Error control.** `Throttled` (HTTP 429, 503, S3 SlowDown) halves the rate and the
//!    request slots and pauses the lane until `Retry-After` (clamped to 5 minutes).
//!    Timeouts, resets and other errors are congestion only when they exceed **10 %** of
//!    the last ~128 requests (EWMA) or 4 fail in a row, with at most one such cut per 128
//!    requests: random loss without a delay rise is not congestion. This is the remedy BBRv2
//!    and Copa use against the lossy-path collapse of loss-driven control (BBRv2's
//!    per-round loss threshold); the delay signal stays the primary one.
//! 3. **Rate validation** (RFC 7661's idea): the rate only grows while work actually waited
//!    for tokens, and never beyond twice the recent peak delivery, so an idle or slot-bound
//!    lane cannot bank a burst.
//! 4. **Request slots, FTS3-style.** Like CERN FTS3's optimizer tuning active transfers per
//!    link, [`ConcurrencyTuner`] adds slots while throughput keeps rising and slots are the
//!    binding limit, undoes a probe that buys nothing, and cuts on pushback; Little's law
//!    (`2 × rate × base delay / request size + 1`) caps the slots so they follow the rate
//!    down under congestion instead of queueing.
//! 5. A **floor** of one request per four request durations (at least one a second), like
//!    LEDBAT's two-packet minimum window: a lane that yielded keeps sampling the path and
//!    notices when it clears.
//!
//! All parameters live in [`ControllerConfig`] (defaults above) and [`ConcurrencyConfig`]
//! (4 slots at start, 1..=64).
//!
//! ## Live limit changes
//!
//! [`Throttle::set_limit`] (and [`Governor::set_limit`]) applies a new [`BwLimit`] at
//! once: the next admission uses it, waiters re-poll immediately, nothing already admitted
//! is recalled. The caller decides where limits come from. The CLI's `--bwlimit-file`
//! (checked every 5 s, re-read on SIGHUP; `commands/throttle_args.rs`) parses the text with
//! [`Schedule::parse`] (a lone rate is a constant timetable), evaluates it with
//! [`Schedule::limit_at`] for [`WeekTime::from_unix`] and sleeps until
//! [`Schedule::minutes_to_next_change`] before evaluating again.
//!
//! ## Known limits
//!
//! - Requests much larger than `capacity × target delay` (4 MiB parts on a 10 MiB/s link)
//!   make the delay signal coarse: the lane yields less to competing TCP and recovers slowly
//!   after a large capacity drop (the base delay keeps the faster link's minimum for up to
//!   ten minutes, as in LEDBAT). Smaller parts, or pacing a stream in pieces with
//!   [`Throttle::pace`], fix it.
//! - With at most 64 slots, a path needing more requests in flight than that (1 MiB parts
//!   at 500 MiB/s over 200 ms) is slot-bound; raise [`ConcurrencyConfig::max`].
//! - Like every delay-based scheme, yielding to a loss-based flow needs a bottleneck buffer
//!   deeper than the target delay; with a shallower one, only the error control acts.

mod bucket;
mod clock;
mod concurrency;
mod congestion;
mod governor;
mod rate;
mod schedule;
mod share;
pub mod sim;

pub use bucket::{TokenBucket, DEFAULT_BURST_TIME};
pub use clock::{Clock, MonotonicClock, SimClock};
pub use concurrency::{ConcurrencyConfig, ConcurrencyTuner};
pub use congestion::{Controller, ControllerConfig, Outcome, Phase, Sample, Snapshot};
pub use governor::{Governor, GovernorConfig, Grant, LaneSnapshot};
pub use rate::{BwLimit, Direction, Rate, RateError};
pub use schedule::{Schedule, ScheduleError, WeekTime, Weekday};
pub use share::{Pressure, Priority, Scheduler, Ticket, Weights};
#[cfg(feature = "tokio")]
mod throttle;
#[cfg(feature = "tokio")]
pub use throttle::{Permit, Throttle, TokioClock};
