//! Background work at a low CPU priority: re-encodes and repairs of redundant tiers run on
//! their own small runtime whose threads have the lowest scheduling priority (nice 19), so
//! on a busy machine the kernel gives client reads the CPU first, and the background work
//! takes what is left. This is how "the reader never waits" holds on a machine with few
//! cores: a re-encode decodes, hashes and writes a whole object, which on two cores would
//! otherwise take turns with the reads it follows.

use std::future::Future;

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

/// Lowers the calling thread's scheduling priority (Linux: per thread).
fn lower_priority() {
    // SAFETY: setpriority(2) on the calling thread (who = 0); no memory is touched.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE) };
    if result != 0 {
        tracing::debug!("cannot lower a background thread's priority");
    }
}
