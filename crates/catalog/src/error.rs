//! The catalog's errors, written for the operator.
//!
//! Every variant that concerns a catalog names it (`path`: the SQLite file, or the
//! PostgreSQL URL with its password redacted), says what is wrong and what to do about it. Engine errors that have a meaning an operator can act on
//! (corruption, a lock held too long, a full disk, a file that cannot be opened) get their
//! own variant; the rest are reported as [`CatalogError::Database`] with the operation that
//! failed.

use std::path::PathBuf;

use crate::lifecycle::{JobKind, JobState};
use crate::model::JobId;

/// What went wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No catalog location was given and no home directory could be found.
    #[error("cannot find a home directory for the default catalog location; set STRATA_CATALOG or pass --catalog PATH")]
    NoDataDir,

    /// The directory that should hold the catalog could not be created.
    #[error("cannot create directory {} for catalog {}: {source}; check permissions or pass --catalog PATH", dir.display(), path.display())]
    CreateDir {
        /// The catalog file.
        path: PathBuf,
        /// The directory that could not be created.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// A PostgreSQL catalog's server did not answer.
    #[error("cannot reach the PostgreSQL catalog at {endpoint} ({}): {detail}; check that the server runs and accepts connections there (for a local one: scripts/postgres.sh start), or pass another --catalog", path.display())]
    Unreachable {
        /// The catalog's URL, password redacted.
        path: PathBuf,
        /// `host:port`.
        endpoint: String,
        /// Why the connection failed.
        detail: String,
    },

    /// A `postgres://` catalog URL that cannot be used.
    #[error("invalid PostgreSQL catalog URL {shown}: {detail}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")]
    InvalidCatalogUrl {
        /// The URL, password redacted.
        shown: String,
        /// What is wrong with it.
        detail: String,
    },

    /// The catalog file exists but cannot be opened or written (permissions, a directory
    /// at that path, a read-only file system).
    #[error("cannot open catalog {}: {detail}; check that it is a writable file or pass --catalog PATH", path.display())]
    CannotOpen {
        /// The catalog file.
        path: PathBuf,
        /// The engine's explanation.
        detail: String,
    },

    /// The file is not an SQLite database, or its pages are damaged.
    #[error("catalog {} is not a Strata catalog or is corrupted ({detail}); rebuild it from a migrated destination with `strata catalog rebuild --from DST` (which moves the damaged file aside), or move it aside or pass --catalog PATH", path.display())]
    Corrupt {
        /// The catalog file.
        path: PathBuf,
        /// What the engine or the integrity check reported.
        detail: String,
    },

    /// A row fails its checksum (see [`crate::integrity`]): it was altered or damaged
    /// behind the catalog's back, so nothing is read from it.
    #[error("catalog {} is damaged: {table} row {row} fails its checksum ({detail}); strata does not trust it. Rebuild the record of the migration from its destination with `strata catalog rebuild --from {dst}`, or delete the job with `strata catalog delete-job {job}` and run `strata migrate` again (files already at the destination are recognised and not copied again); `strata catalog check` lists all the damage", path.display(), dst = .destination.as_deref().unwrap_or("DST"))]
    CorruptRow {
        /// The catalog file.
        path: PathBuf,
        /// `jobs`, `files` or `verified_chunks`.
        table: &'static str,
        /// The job the row belongs to (as the damaged row records it).
        job: JobId,
        /// The row, e.g. `job 3, file 12 ("a/b.nc")`.
        row: String,
        /// The destination of the row's job as recorded, when it could be read (a hint
        /// for the message: the job row itself may be the damaged one).
        destination: Option<String>,
        /// What is wrong with the row.
        detail: String,
    },

    /// The file is a healthy database that belongs to some other application.
    #[error("{} is a database but not a Strata catalog ({detail}); refusing to modify it: pass --catalog PATH to use another file", path.display())]
    NotACatalog {
        /// The database file.
        path: PathBuf,
        /// What gave it away.
        detail: String,
    },

    /// The catalog was written by a newer Strata whose schema this binary does not know.
    #[error("catalog {} has schema version {found}, newer than version {supported} known to this strata; upgrade strata or pass --catalog PATH", path.display())]
    SchemaTooNew {
        /// The catalog file.
        path: PathBuf,
        /// The newest migration applied to the file.
        found: i64,
        /// The newest migration embedded in this binary.
        supported: i64,
    },

    /// A migration recorded in the catalog differs from the one embedded in this binary.
    #[error("catalog {} was migrated by a different build of strata (migration {version} differs); use the strata that created it, or move it aside", path.display())]
    SchemaModified {
        /// The catalog file.
        path: PathBuf,
        /// The migration whose checksum differs.
        version: i64,
    },

    /// Another process held the catalog's write lock for longer than the busy timeout.
    #[error("catalog {} is busy ({detail}); another strata process is writing to it: wait for it or retry", path.display())]
    Busy {
        /// The catalog file.
        path: PathBuf,
        /// The engine's explanation.
        detail: String,
    },

    /// The disk holding the catalog is full.
    #[error("catalog {}: the disk is full ({detail}); free some space and re-run: progress already committed is kept", path.display())]
    DiskFull {
        /// The catalog file.
        path: PathBuf,
        /// The engine's explanation.
        detail: String,
    },

    /// A job for the same (source, destination) pair already exists.
    #[error("job {id} already migrates {source_uri} to {destination_uri}; resume it, or delete it first to start over")]
    JobExists {
        /// The existing job.
        id: JobId,
        /// Its source.
        source_uri: String,
        /// Its destination.
        destination_uri: String,
    },

    /// A job was asked to change state along a transition its kind does not allow (see
    /// [`crate::lifecycle`]): something else changed it meanwhile.
    #[error("{} {id} is {from} and cannot become {to}: another process or an operator changed it meanwhile, and strata never moves a job backwards; look at it again (`strata status` for a migration, `GET /v1/jobs/{id}` for a move) and run or retry it from there", kind.noun())]
    IllegalTransition {
        /// A migration or a move.
        kind: JobKind,
        /// The job.
        id: i64,
        /// Its state in the catalog.
        from: JobState,
        /// The state asked for.
        to: JobState,
    },

    /// No job has this id.
    #[error("catalog {} has no job {id}; list the jobs with `strata status`", path.display())]
    JobNotFound {
        /// The catalog file.
        path: PathBuf,
        /// The id asked for.
        id: JobId,
    },

    /// An update or a verified chunk names a file that is not in the job's plan.
    #[error("job {id} has no planned file with index {index}; the plan may have been replaced, re-plan the job")]
    UnknownFile {
        /// The job.
        id: JobId,
        /// The file index asked for.
        index: u32,
    },

    /// The caller passed a value the catalog cannot store (a bug in the caller).
    #[error("invalid catalog input: {0}")]
    InvalidInput(String),

    /// A stored row holds a value this binary cannot read.
    #[error("catalog {} holds a value this strata cannot read ({detail}); it may have been edited by hand or by a newer strata", path.display())]
    InvalidData {
        /// The catalog file.
        path: PathBuf,
        /// Which value.
        detail: String,
    },

    /// Running the embedded schema migrations failed.
    #[error("cannot migrate catalog {} to the current schema: {source}; move it aside or pass --catalog PATH", path.display())]
    Migrate {
        /// The catalog file.
        path: PathBuf,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },

    /// Any other engine error.
    #[error("catalog {}: {op} failed: {source}", path.display())]
    Database {
        /// The catalog file.
        path: PathBuf,
        /// The operation that failed, e.g. "record verified chunks".
        op: &'static str,
        /// The engine's error.
        source: sqlx::Error,
    },
}

impl CatalogError {
    /// Whether retrying the same call later can succeed without anyone changing anything
    /// (a lock held by another process); every other error is permanent for that call.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CatalogError::Busy { .. } | CatalogError::Unreachable { .. }
        )
    }
}
