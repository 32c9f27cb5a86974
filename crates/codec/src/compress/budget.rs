//! A process-wide bound on the heavy encoders running at once.
//!
//! The strong codecs hold large match-finder tables while they run: xz (LZMA2, preset 6)
//! about 48 MiB for a 4 MiB chunk (its dictionary is sized to the input, see
//! [`super::codec`]), zstd ≥ 12 tens of MiB, bzip2 about 8 MiB. The mover runs `--jobs`
//! chunks at once (8 by default), each on its own blocking thread, so without a bound
//! `--codec max` held one xz table per job and peaked at 750 MiB on a 58 MiB dataset.
//! Running more encoders than cores gains no speed, so every heavy compression takes a
//! [`Permit`] first: at most [`heavy_limit`] (the cores, at most [`MAX_HEAVY`]) run at once,
//! whatever `--jobs` is, and the others wait their turn on their own threads.

use std::sync::{Condvar, Mutex, OnceLock};

/// The most heavy encoders that run at once on any machine: with xz's 48 MiB tables this
/// keeps them within 192 MiB.
pub const MAX_HEAVY: usize = 4;

#[derive(Default)]
struct State {
    running: usize,
    peak: usize,
}

fn gate() -> &'static (Mutex<State>, Condvar) {
    static GATE: OnceLock<(Mutex<State>, Condvar)> = OnceLock::new();
    GATE.get_or_init(|| (Mutex::new(State::default()), Condvar::new()))
}

/// How many heavy encoders may run at once: the cores of this machine, 1 to [`MAX_HEAVY`].
pub fn heavy_limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_HEAVY)
    })
}

/// The most heavy encoders that ran at once in this process so far.
pub fn heavy_peak() -> usize {
    lock().peak
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    // The state is two counters: a panic elsewhere cannot leave it inconsistent.
    gate().0.lock().unwrap_or_else(|e| e.into_inner())
}

/// The right to run one heavy encoder; released when dropped.
#[derive(Debug)]
pub struct Permit(());

impl Permit {
    /// Wait (blocking this thread) until fewer than [`heavy_limit`] heavy encoders run.
    pub fn acquire() -> Permit {
        let mut state = lock();
        while state.running >= heavy_limit() {
            state = gate().1.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.running += 1;
        state.peak = state.peak.max(state.running);
        Permit(())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = lock();
        state.running = state.running.saturating_sub(1);
        drop(state);
        gate().1.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_never_exceed_the_limit_and_are_returned() {
        let threads: Vec<_> = (0..4 * heavy_limit() + 2)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..50 {
                        let _p = Permit::acquire();
                        std::hint::black_box(lock().running);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(heavy_peak() <= heavy_limit());
        assert!(heavy_peak() >= 1);
        // Every permit came back: one more can be taken at once even at limit 1.
        drop(Permit::acquire());
    }
}
