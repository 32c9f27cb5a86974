//! # strata-catalog
//!
//! Strata's metadata database. It owns
//!
//! - the data model of migration jobs ([`model`]): a job per (source, destination) pair,
//!   its plan of files, each file's progress, and the chunks whose copy has been verified;
//! - the [`Catalog`] trait, the one interface the mover and the CLI use, implemented by
//!   both engines;
//! - the embedded SQLite engine, [`SqliteCatalog`]: its file location
//!   ([`default_catalog_path`]), its numbered schema migrations (`migrations/`, embedded in
//!   the binary), and its durability settings;
//! - the PostgreSQL engine, [`PostgresCatalog`], for a catalog that processes on many
//!   nodes share: its migrations (`migrations/postgres/`), its row locks;
//! - opening either by the operator's spec ([`CatalogSpec`]: a file path or a
//!   `postgres://` URL whose password is never shown; [`EngineCatalog`]);
//! - errors that name the database file and say what to do ([`CatalogError`]);
//! - the workers of distributed runs and the claims deciding which task finishes a job,
//!   and which finishes a file split across tasks ([`workers`]);
//! - the API tokens of the tiering service, as hashes with their scope, prefix, expiry and
//!   revocation ([`tokens`], [`TokenCatalog`]);
//! - what the S3 front door keeps of an object written through it (ETag, `Content-Type`,
//!   user metadata, with the hash of the content they describe: [`s3_meta`],
//!   [`S3MetaCatalog`]);
//! - the integrity of its rows ([`integrity`]): a checksum per row, written on every write
//!   and checked on every read, a full check ([`SqliteCatalog::check`]), and the import of
//!   a job rebuilt from a destination's manifest ([`SqliteCatalog::import_completed_job`]).
//!
//! The engines share everything but their SQL dialect and settings: the row checksums
//! and the full check ([`integrity`]), the reading and verification of rows (`rows.rs`,
//! `tiering_rows.rs`), the checks of what callers pass in (`input.rs`), the job state
//! machine ([`lifecycle`]), and the queries themselves: written once in `src/portable/`
//! with `$n` placeholders and compiled per engine against the few phrases its
//! `dialect.rs` sets (row locks, transaction kinds). The behaviour suites
//! (`tests/behaviour/`, `tests/tiering_cases/`) run on both (`tests/sqlite.rs`,
//! `tests/tiering.rs`, `tests/postgres.rs`).
//!
//! # Adding a schema migration
//!
//! One numbering for both engines: add `migrations/NNNN_name.sql` (SQLite) and
//! `migrations/postgres/NNNN_name.sql` (PostgreSQL: `BIGINT` for `INTEGER`, `BYTEA` for
//! `BLOB`, an identity column for `AUTOINCREMENT`, no `WITHOUT ROWID` or `PRAGMA`) with
//! the same number and name, meaning the same schema. Each engine embeds its own
//! directory (`build.rs` lists the files, `src/migrations.rs` hands them to sqlx); a
//! number present in one and not the other is a bug the test
//! `migrations_are_numbered_alike` (`tests/postgres.rs`) catches. Row data a
//! migration needs the binary for (as 0003's checksums on SQLite) goes in the engine's
//! `check_and_migrate`, in the transaction that applies it.
//!
//! It does not own what the rows mean for a migration (the mover decides when a chunk is
//! verified or a plan replaced), nor the manifests stored beside the data, from which a
//! lost catalog is rebuilt (`strata catalog rebuild`, in the CLI).

pub mod error;
mod input;
pub mod integrity;
pub mod lifecycle;
mod location;
mod migrations;
pub mod model;
mod open;
mod postgres;
mod rows;
pub mod s3_meta;
mod sqlite;
pub mod tiering;
mod tiering_rows;
pub mod tokens;
pub mod workers;

use async_trait::async_trait;

pub use error::CatalogError;
pub use integrity::{
    CheckReport, CompletedFile, CompletedJob, CorruptRowReport, ImportedJob, ReplacedJob,
};
pub use lifecycle::{JobKind, JobState};
pub use location::{
    default_catalog_path, is_postgres_url, CatalogSpec, PostgresUrl, CATALOG_ENV, REDACTED_PASSWORD,
};
pub use model::{
    FileRecord, FileState, FileUpdate, JobId, JobSpec, JobSummary, PlannedFile, UnknownState,
    VerifiedChunk,
};
pub use open::EngineCatalog;
pub use postgres::PostgresCatalog;
pub use s3_meta::{S3MetaCatalog, S3ObjectMeta};
pub use sqlite::SqliteCatalog;
pub use tiering::{
    object_chunks, AccessFlush, ChunkHashes, CopyStart, CreatedMove, DecisionRecord, HistoryBucket,
    MoveFilter, MoveId, MoveJob, MoveSpec, ObjectRecord, ObjectWrite, PlacedObject, Placement,
    PlacementState, RetriedMove, StreamOffset, SwitchOutcome, TieringCatalog, WriteIntent,
    OBJECT_CHUNK_SIZE,
};
pub use tokens::{ApiToken, Revoked, TokenCatalog, TokenScope};
pub use workers::{FileFinishClaim, FinishClaim, WorkerRecord};

/// The catalog's operations, implemented once per database engine.
///
/// Contract every engine keeps (and the shared behaviour suite in `tests/` checks):
///
/// - **Atomicity**: each call is one transaction; a call that returns an error has changed
///   nothing.
/// - **Durability**: a call that returned `Ok` is durable to the extent of the engine's sync
///   setting (see [`SqliteCatalog`] for SQLite's). The mover tolerates losing the last
///   commits after a power loss, since it redoes unrecorded chunks, but never a corrupted
///   catalog.
/// - **Idempotence**: [`Catalog::record_verified_chunks`] is an upsert; recording the same
///   chunk again (in the same call or a later one) leaves one row with the last value.
/// - **Identity**: a job is identified by its (source, destination) pair, unique in the
///   catalog; ids are never reused.
/// - **Missing jobs**: every call that takes a [`JobId`] of a job that does not exist fails
///   with [`CatalogError::JobNotFound`], except [`Catalog::job`], which returns `None`.
/// - **Progress time**: every write to a job or its files and chunks sets the job's
///   `updated_at`, so a stalled job can be told from a running one.
/// - **Integrity**: a row that was altered or damaged behind the catalog's back is never
///   returned: the call that reads it (or updates it) fails with
///   [`CatalogError::CorruptRow`], so nothing is skipped or trusted on its word.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// The job migrating `source` to `destination`, if there is one.
    async fn find_job(
        &self,
        source: &str,
        destination: &str,
    ) -> Result<Option<JobSummary>, CatalogError>;

    /// Creates a job in state [`JobState::Planned`] with an empty plan. Fails with
    /// [`CatalogError::JobExists`] if the (source, destination) pair already has one, and
    /// with [`CatalogError::InvalidInput`] if the chunk size is 0 or above `i64::MAX` or
    /// the options are not JSON.
    async fn create_job(&self, spec: &JobSpec) -> Result<JobId, CatalogError>;

    /// The job with this id, if there is one.
    async fn job(&self, id: JobId) -> Result<Option<JobSummary>, CatalogError>;

    /// The options JSON the job was created with.
    async fn job_options(&self, id: JobId) -> Result<String, CatalogError>;

    /// Replaces the job's plan with `files`, dropping the old files and their verified
    /// chunks, in one transaction. Indexes must be exactly `0..files.len()` (any order) and
    /// sizes at most `i64::MAX`, else [`CatalogError::InvalidInput`]. Built for millions of
    /// files. Does not change the job's state.
    async fn replace_plan(&self, id: JobId, files: &[PlannedFile]) -> Result<(), CatalogError>;

    /// The job's plan with each file's progress, ordered by index.
    async fn load_files(&self, id: JobId) -> Result<Vec<FileRecord>, CatalogError>;

    /// The files of the plan with an index in `files`, with their progress, ordered by
    /// index: a distributed task's share, read without the rest of the plan (what a
    /// worker reads per task must not grow with the job).
    async fn load_file_range(
        &self,
        id: JobId,
        files: std::ops::Range<u32>,
    ) -> Result<Vec<FileRecord>, CatalogError>;

    /// Applies `updates` in order, in one transaction (a later update of the same index
    /// wins). Fails with [`CatalogError::UnknownFile`], changing nothing, if an index is
    /// not in the plan.
    async fn update_files(&self, id: JobId, updates: &[FileUpdate]) -> Result<(), CatalogError>;

    /// Records chunks as verified, in one transaction; idempotent (an upsert: the last
    /// value given for a (file, chunk) wins). Fails with [`CatalogError::UnknownFile`],
    /// changing nothing, if a file index is not in the plan.
    async fn record_verified_chunks(
        &self,
        id: JobId,
        chunks: &[VerifiedChunk],
    ) -> Result<(), CatalogError>;

    /// Every verified chunk of the job, ordered by (file index, chunk index).
    async fn verified_chunks(&self, id: JobId) -> Result<Vec<VerifiedChunk>, CatalogError>;

    /// The verified chunks of the files with an index in `files`, ordered by (file index,
    /// chunk index): a distributed task's share.
    async fn verified_chunks_of_files(
        &self,
        id: JobId,
        files: std::ops::Range<u32>,
    ) -> Result<Vec<VerifiedChunk>, CatalogError>;

    /// Forgets the verified chunks of one file, when its staged copy is discarded.
    /// Forgetting a file without chunks does nothing.
    async fn forget_chunks(&self, id: JobId, file_index: u32) -> Result<(), CatalogError>;

    /// Replans one file whose source changed during the run: its size, modification time
    /// and mode become `file`'s, it is pending again (no hash, no error), and its verified
    /// chunks are forgotten, in one transaction. Fails with [`CatalogError::UnknownFile`]
    /// if the plan has no file at `file.index`, and with [`CatalogError::InvalidInput`] if
    /// `file.path` is not that file's path.
    async fn replan_file(&self, id: JobId, file: &PlannedFile) -> Result<(), CatalogError>;

    /// Sets the job's state, last error and root hash to exactly these values (`None`
    /// clears).
    async fn set_job_state(
        &self,
        id: JobId,
        state: JobState,
        last_error: Option<&str>,
        root_hash: Option<&str>,
    ) -> Result<(), CatalogError>;

    /// Every job, newest first.
    async fn list_jobs(&self) -> Result<Vec<JobSummary>, CatalogError>;

    /// Deletes the job with its plan and chunks.
    async fn delete_job(&self, id: JobId) -> Result<(), CatalogError>;

    /// Records a worker's announcement or heartbeat: inserts its row, or replaces every
    /// field but `started_at` of the row with its id.
    async fn record_worker(&self, worker: &WorkerRecord) -> Result<(), CatalogError>;

    /// Removes a worker's row (a worker that stops cleanly); a missing row is no error.
    async fn remove_worker(&self, id: &str) -> Result<(), CatalogError>;

    /// Every worker that announced itself and has not removed its row, ordered by id.
    async fn workers(&self) -> Result<Vec<WorkerRecord>, CatalogError>;

    /// Decides, in one transaction, whether the task `task` of the distributed run `run`
    /// finishes job `id` (writes its manifest): [`FinishClaim::Yours`] to the first task
    /// that finds no file of the job pending, and again to a redelivery of that same task
    /// (its first holder died before finishing); [`FinishClaim::Taken`] to any other task
    /// of the run; a claim of an earlier run is replaced. [`FinishClaim::AlreadyDone`] once
    /// the job is done. Fails with [`CatalogError::JobNotFound`] for an unknown job.
    async fn claim_job_finish(
        &self,
        id: JobId,
        run: &str,
        task: &str,
        worker: &str,
    ) -> Result<FinishClaim, CatalogError>;

    /// Decides, in one transaction, whether the task `task` of the distributed run `run`
    /// finishes file `file_index` of job `id`, a file whose chunks several range tasks
    /// copied: [`FileFinishClaim::NotYet`] while some of its chunks are not recorded as
    /// verified; [`FileFinishClaim::Yours`] to the first task that finds them all, and
    /// again to a redelivery of that same task (its first holder died before publishing);
    /// [`FileFinishClaim::Taken`] to any other task of the run; a claim of an earlier run
    /// is replaced. [`FileFinishClaim::AlreadyFinished`] once the file is no longer
    /// pending. Fails with [`CatalogError::JobNotFound`] for an unknown job and
    /// [`CatalogError::UnknownFile`] for a file not in its plan.
    async fn claim_file_finish(
        &self,
        id: JobId,
        file_index: u32,
        run: &str,
        task: &str,
        worker: &str,
    ) -> Result<FileFinishClaim, CatalogError>;
}
