//! Access traces: reading recorded workloads so that policies can be replayed on them
//! (`strata eval`, `strata train --trace`).
//!
//! A trace is a sequence of [`TraceRequest`]s in time order. Keys are interned as they are
//! read into dense object ids (`0..objects`), so replaying a trace takes memory proportional
//! to the number of distinct objects, not to the number of requests: readers stream.
//!
//! Formats ([`TraceFormat`]) are detected from the file name or given explicitly; every
//! format may be compressed (zstd, xz, gzip, bzip2), detected from the name's extension or
//! the file's magic bytes. A trace without a clock uses the request index as logical time,
//! `time_scale` seconds per request. Objects whose size the trace does not give get
//! [`DEFAULT_OBJECT_SIZE`].

use std::fmt;
use std::path::PathBuf;

use crate::stats::Op;

/// Size given to objects whose trace records no size: 1 MiB.
pub const DEFAULT_OBJECT_SIZE: u64 = 1 << 20;

/// One request of a trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceRequest {
    /// When it happened, in milliseconds from the start of the trace (the first request's
    /// time is 0; logical time for traces without a clock).
    pub time_ms: i64,
    /// The object, as a dense id (`0..objects`) in order of first appearance.
    pub object: u32,
    /// What was done.
    pub op: Op,
    /// The object's size in bytes as this request reports it, when the trace says.
    pub size: Option<u64>,
}

/// The trace formats Strata reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceFormat {
    /// libCacheSim's `oracleGeneral` binary: little-endian records of
    /// `u32 time, u64 id, u32 size, i64 next_access_vtime` (24 bytes).
    OracleGeneral,
    /// The CloudPhysics block I/O CSV of libCacheSim's data directory.
    CloudPhysicsCsv,
    /// The MSR Cambridge block I/O CSV (SNIA IOTTA).
    MsrCsv,
    /// ARC's `.lis` traces: `start_block count ignored request_number` per line.
    ArcLis,
    /// cache2k's traces: big-endian `i32` keys, no clock.
    Cache2k,
    /// LIRS traces: one key per line, no clock.
    Lirs,
    /// The SNIA Tencent cloud photo trace.
    TencentPhoto,
    /// The generic form: CSV with a header naming at least `key`, optionally `time`
    /// (seconds), `op` (`read`, `write`, `delete`) and `bytes`, in any order.
    Csv,
}

/// A trace that cannot be read: which file, where in it, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceError {
    /// The trace file.
    pub path: PathBuf,
    /// Where: `line 12`, `record 4,113 (byte 98,712)`, or empty for the whole file.
    pub location: String,
    /// What is wrong and what to do.
    pub reason: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "trace {}: {}", self.path.display(), self.reason)
        } else {
            write!(
                f,
                "trace {}, {}: {}",
                self.path.display(),
                self.location,
                self.reason
            )
        }
    }
}

impl std::error::Error for TraceError {}

/// One pass over a trace: what a replay needs to know before it starts.
///
/// (Stand-in with the fields of H7's published API until `feat/h7` is merged; replaced by
/// H7's definition on merge.)
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSummary {
    /// The format read.
    pub format: TraceFormat,
    /// Whether the trace has a clock.
    pub has_clock: bool,
    /// Requests.
    pub requests: u64,
    /// Distinct objects.
    pub objects: u32,
    /// Per object id: its size (the largest the trace reports, else DEFAULT_OBJECT_SIZE).
    pub sizes: Vec<u64>,
    /// Time of the last request (the first is 0).
    pub span_ms: i64,
    /// Reads.
    pub reads: u64,
    /// Writes.
    pub writes: u64,
    /// Deletes.
    pub deletes: u64,
}
