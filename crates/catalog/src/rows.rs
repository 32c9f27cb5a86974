//! Reading rows back, the same on every engine: the rows of the migration tables as stored
//! ([`RawJob`], [`RawFile`], [`RawChunk`], the `SELECT`s that read them), and their
//! verification and conversion ([`RowReader`]), so that SQLite and PostgreSQL check a row
//! exactly alike. The queries around them (a job's progress, a destination hint) are each
//! engine's.
//!
//! Each row is read as stored ([`RawJob`], [`RawFile`], [`RawChunk`]), its checksum is
//! checked against its columns (see [`crate::integrity`]), and only then are its values
//! converted: states known, sizes not negative, hashes 32 bytes. A row that fails its
//! checksum is [`CatalogError::CorruptRow`]; a verified row holding a value this binary
//! cannot read is [`CatalogError::InvalidData`].

use std::path::Path;

use crate::error::CatalogError;
use crate::integrity::{chunk_checksum, mismatch, CheckedRow, FileColumns, JobColumns};
use crate::lifecycle::{JobKind, JobState};
use crate::model::{FileRecord, JobId, JobSummary, PlannedFile, VerifiedChunk};

/// `SELECT` of a job row as [`RawJob`] reads it.
macro_rules! select_jobs {
    ($rest:literal) => {
        concat!(
            "SELECT id, source, destination, state, chunk_size, options_json, created_at, ",
            "updated_at, root_hash, last_error, checksum FROM jobs ",
            $rest
        )
    };
}
pub(crate) use select_jobs;

/// `SELECT` of a file row as [`RawFile`] reads it.
macro_rules! select_files {
    ($rest:literal) => {
        concat!(
            "SELECT job_id, file_index, path, size, mtime_ns, mode, state, hash, error, ",
            "checksum FROM files ",
            $rest
        )
    };
}
pub(crate) use select_files;

/// `SELECT` of a verified chunk row as [`RawChunk`] reads it.
macro_rules! select_chunks {
    ($rest:literal) => {
        concat!(
            "SELECT job_id, file_index, chunk_index, chaining_value, checksum ",
            "FROM verified_chunks ",
            $rest
        )
    };
}
pub(crate) use select_chunks;

/// The sums of a job's plan, in the order of [`ProgressSums`] but the last (`$1`, the job
/// id). Both engines run the same text (sqlx binds `$n` by number on SQLite too); the casts
/// keep every sum a 64-bit integer on both (PostgreSQL sums `BIGINT`s as `NUMERIC`).
pub(crate) const PLAN_SUMS_SQL: &str = "SELECT COUNT(*),
        CAST(COALESCE(SUM(CASE WHEN state IN ('done', 'skipped') THEN 1 ELSE 0 END), 0) AS BIGINT),
        CAST(COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT),
        CAST(COALESCE(SUM(size), 0) AS BIGINT),
        CAST(COALESCE(SUM(CASE WHEN state IN ('done', 'skipped') THEN size ELSE 0 END), 0) AS BIGINT)
 FROM files WHERE job_id = $1";

/// The bytes of the verified chunks of a job's pending files (`$1`, the job id): each
/// chunk counts its real length, the chunk size, or what is left of the file for its last
/// chunk.
pub(crate) const CHUNK_BYTES_SQL: &str = "SELECT CAST(COALESCE(SUM(CASE
            WHEN f.size - c.chunk_index * j.chunk_size >= j.chunk_size THEN j.chunk_size
            WHEN f.size > c.chunk_index * j.chunk_size THEN f.size - c.chunk_index * j.chunk_size
            ELSE 0 END), 0) AS BIGINT)
 FROM verified_chunks c
 JOIN files f ON f.job_id = c.job_id AND f.file_index = c.file_index
 JOIN jobs j ON j.id = c.job_id
 WHERE c.job_id = $1 AND f.state = 'pending'";

/// Which jobs a summary query returns.
pub(crate) enum JobFilter<'a> {
    Id(JobId),
    Uris(&'a str, &'a str),
    All,
}

/// A row struct read by column name (each field from the column of its name) from either
/// engine's rows: what `#[derive(sqlx::FromRow)]` would write, without sqlx's procedural
/// macro crate, which brings a second build of sqlx and of SQLite's C sources (for the
/// host) into every build of the binary.
macro_rules! row_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $($field_vis:vis $field:ident : $ty:ty),* $(,)? }
    ) => {
        $(#[$meta])*
        $vis struct $name { $($field_vis $field: $ty),* }

        impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for $name
        where
            &'r str: sqlx::ColumnIndex<R>,
            $($ty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*
        {
            fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
                Ok($name { $($field: row.try_get(stringify!($field))?),* })
            }
        }
    };
}
pub(crate) use row_struct;

row_struct! {
    /// A `jobs` row as stored.
    #[derive(Debug)]
    pub(crate) struct RawJob {
        pub id: i64,
        pub source: String,
        pub destination: String,
        pub state: String,
        pub chunk_size: i64,
        pub options_json: String,
        pub created_at: i64,
        pub updated_at: i64,
        pub root_hash: Option<String>,
        pub last_error: Option<String>,
        pub checksum: Option<Vec<u8>>,
    }
}

impl RawJob {
    /// The checksummed columns.
    pub fn columns(&self) -> JobColumns<'_> {
        JobColumns {
            id: self.id,
            source: &self.source,
            destination: &self.destination,
            chunk_size: self.chunk_size,
            options_json: &self.options_json,
            created_at: self.created_at,
            state: &self.state,
            root_hash: self.root_hash.as_deref(),
            last_error: self.last_error.as_deref(),
        }
    }

    /// Why the row does not verify, if it does not.
    pub fn damage(&self) -> Option<String> {
        mismatch(self.checksum.as_deref(), &self.columns().checksum())
    }

    /// The row, for the operator.
    pub fn describe(&self) -> String {
        format!("job {} ({} -> {})", self.id, self.source, self.destination)
    }
}

row_struct! {
    /// A `files` row as stored.
    #[derive(Debug)]
    pub(crate) struct RawFile {
        pub job_id: i64,
        pub file_index: i64,
        pub path: String,
        pub size: i64,
        pub mtime_ns: Option<i64>,
        pub mode: Option<i64>,
        pub state: String,
        pub hash: Option<Vec<u8>>,
        pub error: Option<String>,
        pub checksum: Option<Vec<u8>>,
    }
}

impl RawFile {
    /// The checksummed columns.
    pub fn columns(&self) -> FileColumns<'_> {
        FileColumns {
            job_id: self.job_id,
            file_index: self.file_index,
            path: &self.path,
            size: self.size,
            mtime_ns: self.mtime_ns,
            mode: self.mode,
            state: &self.state,
            hash: self.hash.as_deref(),
            error: self.error.as_deref(),
        }
    }

    /// Why the row does not verify, if it does not.
    pub fn damage(&self) -> Option<String> {
        mismatch(self.checksum.as_deref(), &self.columns().checksum())
    }

    /// The row, for the operator.
    pub fn describe(&self) -> String {
        format!(
            "job {}, file {} ({:?})",
            self.job_id, self.file_index, self.path
        )
    }
}

row_struct! {
    /// A `verified_chunks` row as stored.
    #[derive(Debug)]
    pub(crate) struct RawChunk {
        pub job_id: i64,
        pub file_index: i64,
        pub chunk_index: i64,
        pub chaining_value: Vec<u8>,
        pub checksum: Option<Vec<u8>>,
    }
}

impl RawChunk {
    /// Why the row does not verify, if it does not.
    pub fn damage(&self) -> Option<String> {
        let computed = chunk_checksum(
            self.job_id,
            self.file_index,
            self.chunk_index,
            &self.chaining_value,
        );
        mismatch(self.checksum.as_deref(), &computed)
    }

    /// The row, for the operator.
    pub fn describe(&self) -> String {
        format!(
            "job {}, file {}, chunk {}",
            self.job_id, self.file_index, self.chunk_index
        )
    }
}

impl CheckedRow for RawJob {
    const TABLE: &'static str = "jobs";
    fn job(&self) -> JobId {
        self.id
    }
    fn describe(&self) -> String {
        RawJob::describe(self)
    }
    fn damage(&self) -> Option<String> {
        RawJob::damage(self)
    }
}

impl CheckedRow for RawFile {
    const TABLE: &'static str = "files";
    fn job(&self) -> JobId {
        self.job_id
    }
    fn describe(&self) -> String {
        RawFile::describe(self)
    }
    fn damage(&self) -> Option<String> {
        RawFile::damage(self)
    }
}

impl CheckedRow for RawChunk {
    const TABLE: &'static str = "verified_chunks";
    fn job(&self) -> JobId {
        self.job_id
    }
    fn describe(&self) -> String {
        RawChunk::describe(self)
    }
    fn damage(&self) -> Option<String> {
        RawChunk::damage(self)
    }
}

/// A verified job row before progress is added.
pub(crate) struct JobRow {
    pub id: JobId,
    pub source: String,
    pub destination: String,
    pub state: JobState,
    pub chunk_size: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub root_hash: Option<String>,
    pub last_error: Option<String>,
}

/// A job's progress as the engines' summing query returns it: files in all, done (or
/// skipped), failed; bytes in all, of done files, and of the verified chunks of pending
/// files.
pub(crate) type ProgressSums = (i64, i64, i64, i64, i64, i64);

/// Row verification and conversion, written once for every engine: an engine says where
/// its catalog is (the file, or the server with its password redacted) and gets the rest.
pub(crate) trait RowReader {
    /// The catalog, as errors name it.
    fn catalog_path(&self) -> &Path;

    /// [`CatalogError::InvalidData`] about this catalog.
    fn invalid_data(&self, detail: String) -> CatalogError {
        CatalogError::InvalidData {
            path: self.catalog_path().to_path_buf(),
            detail,
        }
    }

    /// [`CatalogError::JobNotFound`] about this catalog.
    fn not_found(&self, id: JobId) -> CatalogError {
        CatalogError::JobNotFound {
            path: self.catalog_path().to_path_buf(),
            id,
        }
    }

    /// The [`CatalogError::CorruptRow`] of a job row that fails its checksum.
    fn corrupt_job(&self, raw: &RawJob, detail: String) -> CatalogError {
        CatalogError::CorruptRow {
            path: self.catalog_path().to_path_buf(),
            table: "jobs",
            job: raw.id,
            row: raw.describe(),
            destination: Some(raw.destination.clone()),
            detail,
        }
    }

    /// A job row, verified.
    fn verify_job(&self, raw: &RawJob) -> Result<(), CatalogError> {
        match raw.damage() {
            Some(detail) => Err(self.corrupt_job(raw, detail)),
            None => Ok(()),
        }
    }

    /// A job row, verified and converted.
    fn job_row(&self, raw: RawJob) -> Result<JobRow, CatalogError> {
        self.verify_job(&raw)?;
        Ok(JobRow {
            id: raw.id,
            state: JobKind::Migration
                .parse_state(&raw.state)
                .map_err(|err| self.invalid_data(format!("{err}")))?,
            chunk_size: self.unsigned(raw.chunk_size, "job chunk size")?,
            source: raw.source,
            destination: raw.destination,
            created_at: raw.created_at,
            updated_at: raw.updated_at,
            root_hash: raw.root_hash,
            last_error: raw.last_error,
        })
    }

    /// A verified job with the sums of its plan.
    fn summary(&self, job: JobRow, sums: ProgressSums) -> Result<JobSummary, CatalogError> {
        let (files_total, files_done, files_failed, bytes_total, bytes_of_files, bytes_of_chunks) =
            sums;
        Ok(JobSummary {
            id: job.id,
            source: job.source,
            destination: job.destination,
            state: job.state,
            chunk_size: job.chunk_size,
            files_total: self.unsigned(files_total, "file count")?,
            files_done: self.unsigned(files_done, "file count")?,
            files_failed: self.unsigned(files_failed, "file count")?,
            bytes_total: self.unsigned(bytes_total, "byte count")?,
            bytes_done: self.unsigned(bytes_of_files, "byte count")?
                + self.unsigned(bytes_of_chunks, "byte count")?,
            created_at: job.created_at,
            updated_at: job.updated_at,
            root_hash: job.root_hash,
            last_error: job.last_error,
        })
    }

    fn unsigned(&self, value: i64, what: &str) -> Result<u64, CatalogError> {
        u64::try_from(value).map_err(|_| self.invalid_data(format!("{what} is {value}")))
    }

    fn hash(&self, blob: Option<Vec<u8>>, what: &str) -> Result<Option<[u8; 32]>, CatalogError> {
        blob.map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| self.invalid_data(format!("{what} has {} bytes, not 32", bytes.len())))
        })
        .transpose()
    }

    /// The [`CatalogError::CorruptRow`] of a file row that fails its checksum (the
    /// destination hint is added by the engine's `with_destination`).
    fn corrupt_file(&self, raw: &RawFile, detail: String) -> CatalogError {
        CatalogError::CorruptRow {
            path: self.catalog_path().to_path_buf(),
            table: "files",
            job: raw.job_id,
            row: raw.describe(),
            destination: None,
            detail,
        }
    }

    /// A file row, verified and converted.
    fn file_record(&self, raw: RawFile) -> Result<FileRecord, CatalogError> {
        if let Some(detail) = raw.damage() {
            return Err(self.corrupt_file(&raw, detail));
        }
        let index = raw.file_index;
        let index = u32::try_from(index)
            .map_err(|_| self.invalid_data(format!("file index is {index}")))?;
        let mode = raw
            .mode
            .map(|mode| {
                u32::try_from(mode)
                    .map_err(|_| self.invalid_data(format!("file {index} has mode {mode}")))
            })
            .transpose()?;
        Ok(FileRecord {
            planned: PlannedFile {
                index,
                path: raw.path,
                size: self.unsigned(raw.size, "file size")?,
                mtime_ns: raw.mtime_ns,
                mode,
            },
            state: raw
                .state
                .parse()
                .map_err(|err| self.invalid_data(format!("file {index}: {err}")))?,
            hash: self.hash(raw.hash, "a file hash")?,
            error: raw.error,
        })
    }

    /// A verified chunk row, verified and converted.
    fn chunk_record(&self, raw: RawChunk) -> Result<VerifiedChunk, CatalogError> {
        if let Some(detail) = raw.damage() {
            return Err(CatalogError::CorruptRow {
                path: self.catalog_path().to_path_buf(),
                table: "verified_chunks",
                job: raw.job_id,
                row: raw.describe(),
                destination: None,
                detail,
            });
        }
        let file_index = raw.file_index;
        let file_index = u32::try_from(file_index)
            .map_err(|_| self.invalid_data(format!("chunk file index is {file_index}")))?;
        let chaining_value = self
            .hash(Some(raw.chaining_value), "a chunk chaining value")?
            .unwrap_or_default();
        Ok(VerifiedChunk {
            file_index,
            chunk_index: self.unsigned(raw.chunk_index, "chunk index")?,
            chaining_value,
        })
    }
}
