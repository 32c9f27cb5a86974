//! Background work at a low CPU priority: re-encodes and repairs of redundant tiers run on
//! their own small runtime whose threads have the lowest scheduling priority (nice 19), so
//! on a busy machine the kernel gives client reads the CPU first, and the background work
//! takes what is left. This is how "the reader never waits" holds on a machine with few
//! cores: a re-encode decodes, hashes and writes a whole object, which on two cores would
//! otherwise take turns with the reads it follows.
//!
//! A lower priority is not enough: on two cores, the kernel work a re-encode causes (pages
//! copied and freed, files created, flushed, renamed and unlinked) is not done at the
//! thread's nice value, and the reads it overlaps were measured 2-3x slower at p99. So
//! re-encodes also wait for a quiet moment ([`Foreground::quiet`]): they start only once no
//! object request has been in flight for [`QUIET`], as ZFS's scrub waits out
//! `zfs_scan_idle` after the last client I/O, and at most [`MAX_DEFERRAL`] (then they run
//! anyway, so a service that is never idle still re-encodes, one object per
//! `MAX_DEFERRAL` at least).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use tokio::runtime::{Builder, Handle, Runtime};

/// The nice value of background threads (the lowest priority Linux has).
const BACKGROUND_NICE: libc::c_int = 19;

/// The low-priority runtime. Dropped without waiting (its tasks are cancelled; their work is
/// crash-safe by design).
#[derive(Debug)]
pub struct Background {
    runtime: Option<Runtime>,
}

impl Background {
    /// A runtime with one worker thread (and its blocking pool) at nice 19; `None` when the
    /// threads could not be started (background work then runs on the caller's runtime).
    pub fn start() -> Background {
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("strata-background")
            .on_thread_start(lower_priority)
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => Background {
                runtime: Some(runtime),
            },
            Err(err) => {
                tracing::warn!(%err, "cannot start the background runtime; re-encodes and \
                    repairs run at normal priority");
                Background { runtime: None }
            }
        }
    }

    /// Runs `work` on the background runtime and waits for its result (on the caller's
    /// runtime when there is no background one); `None` when the runtime stopped first
    /// (the service is shutting down).
    pub async fn run<F>(&self, work: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(handle) = self.handle() else {
            return Some(work.await);
        };
        match handle.spawn(work).await {
            Ok(output) => Some(output),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => None,
        }
    }

    fn handle(&self) -> Option<Handle> {
        self.runtime
            .as_ref()
            .map(|runtime| runtime.handle().clone())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// How long no object request must have been in flight before background work starts.
pub const QUIET: Duration = Duration::from_millis(20);
/// The longest background work waits for a quiet moment before it runs anyway.
pub const MAX_DEFERRAL: Duration = Duration::from_secs(10);

/// What clients are doing: object requests in flight, and when the last one ended.
#[derive(Debug)]
pub struct Foreground {
    in_flight: AtomicUsize,
    /// Milliseconds from `epoch` to the end of the last request.
    last_end_ms: AtomicU64,
    epoch: Instant,
}

impl Default for Foreground {
    fn default() -> Foreground {
        Foreground {
            in_flight: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Foreground {
    /// Counts a request in flight until the guard is dropped (with the response's body,
    /// see [`WhileSent`]).
    pub fn enter(self: &Arc<Foreground>) -> ForegroundGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        ForegroundGuard(Arc::clone(self))
    }

    /// How long no request has been in flight (zero while one is).
    pub fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        let since = Duration::from_millis(self.last_end_ms.load(Ordering::SeqCst));
        self.epoch.elapsed().saturating_sub(since)
    }

    /// Waits until no request has been in flight for `quiet`, or `at_most`; true when the
    /// quiet moment came.
    pub async fn quiet(&self, quiet: Duration, at_most: Duration) -> bool {
        let deadline = Instant::now() + at_most;
        loop {
            let idle = self.idle_for();
            if idle >= quiet {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let nap = (quiet - idle).min(deadline - now);
            tokio::time::sleep(nap.max(Duration::from_millis(1))).await;
        }
    }
}

/// One object request in flight ([`Foreground::enter`]).
#[derive(Debug)]
pub struct ForegroundGuard(Arc<Foreground>);

impl Drop for ForegroundGuard {
    fn drop(&mut self) {
        let foreground = &self.0;
        let now = foreground.epoch.elapsed().as_millis() as u64;
        foreground.last_end_ms.fetch_max(now, Ordering::SeqCst);
        foreground.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted in flight until it is sent (or dropped):
/// a GET's bytes are read from the tier while the body streams, after the handler returned.
pub struct WhileSent<B> {
    body: B,
    _guard: ForegroundGuard,
}

impl<B> WhileSent<B> {
    /// `body`, counted with `guard` until it is dropped.
    pub fn new(body: B, guard: ForegroundGuard) -> WhileSent<B> {
        WhileSent {
            body,
            _guard: guard,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for WhileSent<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Lowers the calling thread's scheduling priority (Linux: per thread).
fn lower_priority() {
    // SAFETY: setpriority(2) on the calling thread (who = 0); no memory is touched.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE) };
    if result != 0 {
        tracing::debug!("cannot lower a background thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn foreground() -> Arc<Foreground> {
        Arc::new(Foreground::default())
    }

    #[tokio::test(start_paused = true)]
    async fn background_work_waits_while_a_request_is_in_flight_until_its_deferral_ends() {
        let foreground = foreground();
        let _reading = foreground.enter();
        let started = Instant::now();
        let quiet = foreground.quiet(QUIET, MAX_DEFERRAL).await;
        assert!(!quiet, "a request in flight is not a quiet moment");
        assert_eq!(started.elapsed(), MAX_DEFERRAL);
    }

    #[tokio::test(start_paused = true)]
    async fn background_work_starts_once_no_request_has_run_for_the_quiet_period() {
        let foreground = foreground();
        tokio::time::sleep(QUIET).await;
        assert!(foreground.quiet(QUIET, MAX_DEFERRAL).await);
        let request = foreground.enter();
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(request);
        let ended = Instant::now();
        assert!(foreground.quiet(QUIET, MAX_DEFERRAL).await);
        let waited = ended.elapsed();
        assert!(
            waited >= QUIET && waited < QUIET + Duration::from_millis(5),
            "waited {waited:?} after the request ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_body_keeps_its_request_in_flight_until_dropped() {
        let foreground = foreground();
        let body = WhileSent::new(axum::body::Body::from("bytes"), foreground.enter());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(foreground.idle_for(), Duration::ZERO);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        drop(body);
        tokio::time::sleep(QUIET).await;
        assert_eq!(foreground.idle_for(), QUIET);
    }
}
