//! How the process's allocator treats the buffers of I/O spans (glibc's malloc; other
//! allocators are left as they are).
//!
//! glibc gives every thread that allocates its own arena and keeps freed buffers there;
//! with many I/O threads that multiplies resident memory, so a few arenas are used.
//!
//! A copy allocates and frees a span buffer (256 KiB to 4 MiB) for every read, at rates of
//! thousands per second. glibc's malloc serves requests above its mmap threshold with fresh
//! `mmap`s, and hands free memory at the top of each arena back to the kernel once it
//! exceeds its trim threshold (`madvise`, `brk`): each new span is then fresh pages, faulted
//! in and zeroed by the kernel. Measured on a 2 GiB local migration (`migrate_bench`
//! example, docs/BENCHMARKS.md): page faults, zeroing and `madvise` took about a fifth of
//! the CPU; raising both thresholds took the wall time from 3.6-4.3 s to 2.7-3.1 s (system
//! time 2.5-2.8 s to 1.9-2.4 s) for 2 MB more peak RSS. Swapping the allocator was measured too and is worse here: mimalloc
//! kept 130 to 290 MB, jemalloc spent more system time than glibc.
//!
//! `STRATA_MALLOC_DEFAULTS=1` in the environment keeps glibc's own thresholds (the arenas
//! are still limited): the same binary measured both ways.

/// The largest request served by `mmap` instead of the heap: above every span size.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory kept at the top of an arena before it is given back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 256 << 20;

/// Arenas for all threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = 2;

/// Tunes the allocator for I/O spans: few arenas, freed span buffers kept in the process
/// for the next span (glibc only; a no-op elsewhere). Call once, at start, before any
/// other thread runs.
pub fn tune_for_spans() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc's tunables; it is called before other threads
    // start, and a refused value leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
        if std::env::var_os("STRATA_MALLOC_DEFAULTS").is_some() {
            return;
        }
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
