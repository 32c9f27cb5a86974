//! # strata-mover
//!
//! Jobs that move data: plan first, then execute, then prove. It owns
//!
//! - [`job`]: a migration as a front end asks for it (layout, parity after the data),
//!   checked before anything is copied;
//! - [`plan`]: listing the source, refusing unsafe source/destination pairs, turning the
//!   listing into a durable plan of files and chunk tasks in the catalog, and deciding
//!   what a re-run of the same job can keep;
//! - [`migrate`]: executing a plan with bounded concurrency (chunk-parallel for large
//!   files, file-parallel for small ones), hashing as bytes stream, verifying the staged
//!   copy, publishing each file only once verified, and writing the dataset manifest last;
//! - [`encryption`]: reading the keys of encryption at rest from a file or a variable;
//! - [`write_check`]: what a migration reads back before publishing (`--verify`);
//! - [`verify`]: re-reading a destination and checking every file and chunk against its
//!   manifest (or, fast, presence and sizes);
//! - [`packed`]: the packed layout, its parity (`--parity`) and `strata repair`;
//! - [`pipeline`]: the chunk pipeline of a stream of bytes (read ahead, hash, transform,
//!   write, overlapped) that the service's writes, moves, re-encodes and scrubs run on;
//! - [`progress`]: counters the CLI renders as a progress bar, and the final report;
//! - [`distributed`]: chunk tasks on NATS JetStream (`strata migrate --queue`) and the
//!   `strata worker` that runs them through the same copy path;
//! - [`settle`]: sources that change under a copy (never published; copied again once
//!   they stop changing, or reported).
//!
//! A job is identified by its (source, destination) pair. Every verified chunk and every
//! finished file is recorded in the catalog, so a job killed at any moment is finished by
//! running the same command again, redoing only what was not yet verified.

mod chunk;
pub mod distributed;
pub mod encryption;
pub mod error;
pub mod job;
mod job_manifest;
pub mod migrate;
pub mod packed;
pub mod pipeline;
pub mod plan;
pub mod progress;
mod publisher;
mod recorder;
pub mod retry;
pub mod settle;
pub mod small;
pub mod source;
pub mod verify;
pub mod write_check;

pub use error::MoverError;
pub use job::{MigrationJob, TargetLayout};
pub use migrate::{migrate, MigrateOptions};
pub use packed::parity::{write_parity, ParityReport};
pub use packed::parity_plan::Shortfall;
pub use packed::repair::{repair, RepairReport};
pub use packed::write::migrate_packed;
pub use plan::{Plan, PlanSummary};
pub use progress::{MigrationReport, Progress};
pub use settle::{Deferral, SettleOptions};
pub use source::DatasetSource;
pub use verify::{verify_dataset, verify_dataset_mode, VerifyMode, VerifyReport};
pub use write_check::WriteCheck;

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers the crate's unit tests share.

    use strata_store::{S3Options, Store, StoreUri};

    /// The store at `uri` (a test's `memory://` or local path).
    pub(crate) async fn store(uri: &str) -> Store {
        Store::open(&StoreUri::parse(uri).unwrap(), &S3Options::default())
            .await
            .unwrap()
    }
}
