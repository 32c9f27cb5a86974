//! The async adapter: one shareable [`Throttle`] per store, for the OpenDAL layer.
//!
//! This module owns waiting. It wraps a [`Governor`] in a mutex, runs it on tokio's clock
//! (so tokio's paused test time drives it deterministically) and turns its "poll again in
//! this long" answers into sleeps. There is no background task: every waiter polls the
//! governor when it wakes, admits whatever is due (its own transfer or others'), and wakes
//! the others through a [`Notify`] when it admitted something or freed a slot.
//!
//! Usage in a store layer, per HTTP request:
//!
//! ```no_run
//! # use strata_throttle::*;
//! # async fn put(t: &Throttle, body: &[u8]) {
//! let permit = t.acquire(Direction::Write, Priority::Normal, body.len() as u64).await;
//! // ... send the request; measure the response latency (time to first byte of a GET,
//! // time from the last body byte of a PUT to its response) if you can ...
//! permit.finish(Outcome::Ok, None);
//! # }
//! ```
//!
//! Streams longer than one acquisition call [`Throttle::pace`] for each further piece of
//! the body and [`Permit::add_bytes`] so the sample counts them.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::congestion::{Outcome, Sample};
use crate::governor::{Governor, GovernorConfig, Grant, LaneSnapshot};
use crate::rate::{BwLimit, Direction};
use crate::share::{Priority, Ticket};

/// Tokio's clock (pausable in tests), counted from creation.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> TokioClock {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> TokioClock {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// Shortest single sleep (the timer's resolution).
const MIN_SLEEP: Duration = Duration::from_millis(1);
/// Longest single sleep; waiters re-poll at least this often.
const MAX_SLEEP: Duration = Duration::from_secs(60);

struct Inner {
    gov: Mutex<Governor<TokioClock>>,
    notify: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Governor<TokioClock>> {
        // A panic while holding the lock cannot leave the governor inconsistent in a way
        // that matters more than stopping all transfers would; keep going.
        self.gov.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A store's throttle, cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Throttle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("limit", &self.limit())
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle on tokio's clock. Must be created inside a tokio runtime context only if
    /// tokio's paused time is used; otherwise anywhere.
    pub fn new(cfg: GovernorConfig) -> Throttle {
        Throttle {
            inner: Arc::new(Inner {
                gov: Mutex::new(Governor::new(TokioClock::new(), cfg)),
                notify: Notify::new(),
            }),
        }
    }

    /// Waits until a new request of `bytes` may start in `class`, and returns its permit
    /// (which holds one request slot until finished or dropped). Cancel-safe: dropping the
    /// future gives the place back.
    pub async fn acquire(&self, direction: Direction, class: Priority, bytes: u64) -> Permit {
        let grant = self.wait(direction, Admission::Request(class, bytes)).await;
        Permit {
            inner: self.inner.clone(),
            grant,
            bytes,
            finished: false,
        }
    }

    /// Waits until `bytes` more of a request that already holds a permit may be sent.
    pub async fn pace(&self, direction: Direction, class: Priority, bytes: u64) {
        let _ = self.wait(direction, Admission::Pace(class, bytes)).await;
    }

    /// Waits for a request slot only, for a request whose bytes were already paced with
    /// [`Throttle::pace`] (e.g. a store paces the bytes it hands to a client library, and
    /// the library's HTTP requests take the slots). Slot-only requests do not wait behind
    /// transfers waiting for tokens. Report the request's bytes with [`Permit::add_bytes`].
    pub async fn acquire_slot(&self, direction: Direction, class: Priority) -> Permit {
        let grant = self.wait(direction, Admission::Slot(class)).await;
        Permit {
            inner: self.inner.clone(),
            grant,
            bytes: 0,
            finished: false,
        }
    }

    /// Feeds a sample measured outside of a [`Permit`].
    pub fn record(&self, direction: Direction, sample: &Sample) {
        self.inner.lock().record(direction, sample);
        self.inner.notify.notify_waiters();
    }

    /// Changes the operator's cap now (control file, SIGHUP, timetable, API).
    pub fn set_limit(&self, limit: BwLimit) {
        self.inner.lock().set_limit(limit);
        self.inner.notify.notify_waiters();
    }

    /// The operator's cap in force.
    pub fn limit(&self) -> BwLimit {
        self.inner.lock().limit()
    }

    /// The configuration in force (its `limit` follows [`Throttle::set_limit`]).
    pub fn config(&self) -> GovernorConfig {
        *self.inner.lock().config()
    }

    /// A lane's state for metrics and `strata status`.
    pub fn snapshot(&self, direction: Direction) -> LaneSnapshot {
        self.inner.lock().snapshot(direction)
    }

    /// The throttle clock's time (the time base of samples and snapshots).
    pub fn now(&self) -> Duration {
        self.inner.lock().now()
    }

    async fn wait(&self, direction: Direction, admission: Admission) -> Grant {
        let ticket = {
            let mut gov = self.inner.lock();
            match admission {
                Admission::Request(class, bytes) => gov.enqueue(direction, class, bytes, true),
                Admission::Pace(class, bytes) => gov.enqueue(direction, class, bytes, false),
                Admission::Slot(class) => gov.enqueue_slot(direction, class),
            }
        };
        let mut pending = Pending {
            inner: &self.inner,
            direction,
            ticket,
            done: false,
        };
        loop {
            let notified = self.inner.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let (grant, wake, others) = {
                let mut gov = self.inner.lock();
                let before = gov.untaken_grants();
                let wake = gov.poll();
                let admitted = gov.untaken_grants().saturating_sub(before);
                let grant = gov.take_grant(ticket);
                let mine = usize::from(grant.is_some() && admitted > 0);
                (grant, wake, admitted > mine)
            };
            // Wake the owners of what this poll admitted (only new grants, or waiters
            // would keep waking each other without time passing).
            if others {
                self.inner.notify.notify_waiters();
            }
            if let Some(grant) = grant {
                pending.done = true;
                return grant;
            }
            // Tokio's timer has millisecond resolution: a shorter sleep can return at once
            // without the (paused) clock moving, which would spin.
            let sleep = wake.unwrap_or(MAX_SLEEP).clamp(MIN_SLEEP, MAX_SLEEP);
            let _ = tokio::time::timeout(sleep, notified).await;
        }
    }
}

/// What a waiter asks for.
#[derive(Clone, Copy)]
enum Admission {
    /// Tokens and a slot: a new request.
    Request(Priority, u64),
    /// Tokens only: more bytes of a request.
    Pace(Priority, u64),
    /// A slot only: a request whose bytes were paced.
    Slot(Priority),
}

/// Withdraws a queued transfer whose waiting future was dropped.
struct Pending<'a> {
    inner: &'a Arc<Inner>,
    direction: Direction,
    ticket: Ticket,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.inner.lock().cancel(self.direction, self.ticket);
            self.inner.notify.notify_waiters();
        }
    }
}

/// One admitted request. Report how it ended with [`Permit::finish`]; dropping it frees
/// its slot without a sample (e.g. the request was cancelled).
pub struct Permit {
    inner: Arc<Inner>,
    grant: Grant,
    bytes: u64,
    finished: bool,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("grant", &self.grant)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Permit {
    /// When the request was admitted (throttle clock).
    pub fn admitted_at(&self) -> Duration {
        self.grant.admitted_at
    }

    /// Counts `n` more body bytes (paced with [`Throttle::pace`]) in this request's sample.
    pub fn add_bytes(&mut self, n: u64) {
        self.bytes = self.bytes.saturating_add(n);
    }

    /// Reports the outcome (and the response latency if measured) and frees the slot.
    pub fn finish(mut self, outcome: Outcome, latency: Option<Duration>) {
        self.finished = true;
        self.inner
            .lock()
            .finish(&self.grant, self.bytes, outcome, latency);
        self.inner.notify.notify_waiters();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.finished {
            self.inner.lock().release(&self.grant);
            self.inner.notify.notify_waiters();
        }
    }
}
