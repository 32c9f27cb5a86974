//! What the catalog stores for distributed runs: the workers that announce themselves
//! ([`WorkerRecord`]) and the claim that decides which task finishes a job
//! ([`FinishClaim`]). The queue itself (NATS JetStream) is not here: the catalog only keeps
//! what `strata status` shows and what must be decided in one transaction.

use serde::{Deserialize, Serialize};

use crate::model::JobId;

/// A `strata worker` process as it announces itself (refreshed with every heartbeat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Unique id of the worker process (host, pid and start time).
    pub id: String,
    /// Host name of the node it runs on.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// CPU cores available to it.
    pub cores: u32,
    /// Its bandwidth cap in bytes per second (`--bwlimit`), if any.
    pub bandwidth_cap: Option<u64>,
    /// Bytes per second it copied over its recent tasks (0 until it has finished one).
    pub throughput: u64,
    /// Bytes it copied since it started.
    pub bytes_done: u64,
    /// Tasks it finished since it started.
    pub tasks_done: u64,
    /// When it started, in Unix seconds.
    pub started_at: i64,
    /// Its last heartbeat, in Unix seconds.
    pub heartbeat_at: i64,
    /// The job of the task it holds, if any.
    pub job: Option<JobId>,
    /// The task it holds (e.g. `files 0-31`), if any.
    pub task: Option<String>,
}

/// The answer to [`crate::Catalog::claim_job_finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishClaim {
    /// Files of the job are still pending: another task finishes it.
    NotYet {
        /// Files not yet in a final state.
        pending: u64,
    },
    /// This task finishes the job: write the manifest (or, with failed files, mark the job
    /// failed).
    Yours {
        /// Files that failed.
        failed: u64,
    },
    /// Another task of this run claimed the job's finish.
    Taken,
    /// The job is already done.
    AlreadyDone,
}

/// The answer to [`crate::Catalog::claim_file_finish`]: which range task of a file split
/// across workers merges its hash and publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFinishClaim {
    /// Chunks of the file are not verified yet: the task that verifies the last one
    /// finishes the file.
    NotYet {
        /// Chunks of the file not yet recorded as verified.
        missing: u64,
    },
    /// This task finishes the file: merge its hash from the recorded chunk values,
    /// publish the staged copy and record the file done.
    Yours,
    /// Another task of this run claimed the file's finish.
    Taken,
    /// The file is no longer pending (done, skipped or failed): nothing to finish.
    AlreadyFinished,
}
