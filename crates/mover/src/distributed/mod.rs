//! Distributed runs: a job's chunk tasks on NATS JetStream and the workers that run them.
//!
//! - [`task`]: the task message (a contiguous range of a job's planned files) and how a
//!   plan is cut into tasks, smaller towards the end;
//! - [`queue`]: the work-queue stream and the durable consumer the workers share;
//! - [`submit`]: `strata migrate --queue`, planning in the catalog and publishing;
//! - [`worker`]: `strata worker`, running each task through the single-node copy path;
//! - [`finish`]: which task finishes a job (decided in a catalog transaction), and the
//!   manifest it writes;
//! - [`file_finish`]: a large file split into range tasks: how each task ends its range
//!   and which task publishes the file.
//!
//! The catalog stays the one record of progress: workers record verified chunks and
//! finished files exactly as a single-node run does, so a job started with `--queue` can
//! be finished by `strata migrate` without it, and the other way round.

pub mod file_finish;
pub mod finish;
pub mod queue;
pub mod submit;
pub mod task;
pub mod worker;

pub use finish::JobEnd;
pub use queue::TaskQueue;
pub use submit::{submit, Submitted};
pub use task::ChunkTask;
pub use worker::{OpenStores, Worker, WorkerOptions};
