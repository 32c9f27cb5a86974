//! # strata-store: where Strata's bytes live
//!
//! This crate owns every byte Strata reads from or writes to a store:
//!
//! - **naming stores**: [`StoreUri`] parses local paths, `file://`, `s3://`, `azblob://`,
//!   `gs://` and `memory://` URIs; [`S3Options`] carries endpoint, region and credentials
//!   from the environment (Azure's in [`AzblobOptions`], GCS's in [`GcsOptions`], inside it);
//! - **reading**: recursive [`Store::list`] (sorted, Strata's own `.strata/` directory
//!   excluded, odd files reported as [`ListWarning`]s instead of failing the run),
//!   [`Store::stat`], ranged [`Store::read_range`];
//! - **overlap**: [`Store::location`] normalises where a store's bytes live, and
//!   [`StoreLocation::overlap`] says whether two stores share any;
//! - **writing crash-safely**: [`Store::begin_upload`] stages a file under a temporary name
//!   (local: `<root>/.strata/staging/<hash>.part`, resumable after a crash; object stores:
//!   a multipart upload) and [`Upload::publish`] makes it visible atomically, so a partial
//!   file never appears under its final name; [`Store::write_atomic`] does the same for
//!   small files (local: staged in `<root>/.strata/staging/` too, never beside the final
//!   name; [`Store::remove_interrupted_writes`] clears what a crash left there);
//! - **bandwidth control**: [`Store::with_throttle`] puts every data transfer under a
//!   `strata_throttle::Throttle` (caps, timetables, priority classes, congestion control):
//!   admission before each call, samples from a [`ThrottleLayer`] on S3's HTTP transport,
//!   state as [`ThrottleStatus`] (see [`throttled`]); [`bandwidth::BandwidthControl`] keeps
//!   one throttle per store under a limit or timetable that can change while it runs;
//! - **layers**: every backend (local files, OpenDAL) and every layer (fault injection,
//!   the throttle's gate, [`StoreMetrics`]) implements one narrow trait, and
//!   [`layers`] composes them in one place for the CLI and the service;
//! - **memory for spans**: [`allocator::tune_for_spans`] keeps glibc from handing span
//!   buffers back to the kernel between reads;
//! - **errors for operators**: [`StoreError`] says what failed, where, what to do, and
//!   whether a retry can help.
//!
//! Object stores go through Apache OpenDAL (S3, Azure Blob, GCS and memory services;
//! `dal_cloud.rs` builds the Azure and GCS ones). Their data calls have
//! OpenDAL's timeout layer and a short retry layer (3 tries, 1 s backoff doubling, jitter)
//! so that one failed multipart part does not sink a whole file's upload; an error that
//! still comes out has been retried already, except a 429/503 whose `Retry-After` is over
//! a second: it comes out at once with [`StoreError::retry_after`] for the caller to wait. `check_reachable` never retries. Local stores use the file system directly: positional reads and writes
//! (`pread`/`pwrite`), `fsync` and `rename`, which OpenDAL's `fs` service does not expose.
//!
//! It does not own what the bytes mean (chunking, hashing, manifests: `strata-codec`,
//! `strata-mover`) nor when to retry a whole operation (callers read
//! [`StoreError::is_retryable`]).
//!
//! Secrets never leave [`S3Options`]: its `Debug`, the store's `Debug` and
//! [`Store::display`], and every error message are free of credentials.

#![deny(missing_docs)]

mod access;
pub mod allocator;
pub mod bandwidth;
pub mod chaos;
pub mod copy_local;
mod dal;
mod dal_cloud;
mod dal_swift;
mod error;
pub mod faults;
mod faults_layer;
pub mod layers;
mod list;
mod local;
pub mod metrics_layer;
mod options;
mod options_cloud;
mod overlap;
mod relpath;
mod retry_after;
pub mod small;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttled;
mod upload;
mod upload_dal;
mod upload_local;
mod uri;
mod uri_cloud;

pub use bandwidth::{BandwidthControl, BandwidthPolicy};
pub use error::StoreError;
pub use layers::Layers;
pub use metrics_layer::{OpStats, StoreMetrics, StoreOp};
pub use options::S3Options;
pub use options_cloud::{AzblobOptions, GcsOptions, SwiftOptions};
pub use overlap::{Overlap, StoreLocation};
pub use store::Store;
pub use throttled::{LaneStatus, ThrottleLayer, ThrottleStatus};
pub use upload::{PendingPublish, Upload};
pub use uri::{StoreScheme, StoreUri, DEFAULT_MEMORY_NAME};

use std::time::SystemTime;

/// The top-level directory of a store that holds Strata's own metadata (manifests,
/// staging files). Never listed as data.
pub const METADATA_DIR: &str = ".strata";

/// One regular file (or object) of a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the store root, `/`-separated, never starting with `/`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, when the store knows it.
    pub mtime: Option<SystemTime>,
    /// Unix permission bits (`mode & 0o7777`), for local files.
    pub mode: Option<u32>,
    /// The object's entity tag, where the store has one (S3): it changes whenever the
    /// content is replaced, even within the second that `mtime` resolves.
    pub etag: Option<String>,
}

/// Something found while listing that was skipped; the listing went on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListWarning {
    /// Path relative to the store root (as far as it could be read).
    pub path: String,
    /// What kind of problem.
    pub kind: ListWarningKind,
    /// One line for the operator: what was found and what was done.
    pub message: String,
}

/// Kinds of [`ListWarning`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListWarningKind {
    /// A symbolic link leads back to one of its own ancestors; not followed again.
    SymlinkLoop,
    /// A FIFO, socket or device; not a regular file, skipped.
    SpecialFile,
    /// A file or directory that could not be read (permission denied, dangling link, I/O
    /// error); skipped.
    Unreadable,
    /// A name that cannot be carried over (not UTF-8, or an object key with empty, `.` or
    /// `..` segments); skipped.
    InvalidName,
}

/// `Store` and `Upload` are shared across tasks and threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
    assert_send_sync::<Upload>();
    assert_send_sync::<StoreError>();
};
