//! Reading rows back: job summaries with their progress, and file records.
//!
//! Each row is read as stored ([`RawJob`], [`RawFile`], [`RawChunk`]), its checksum is
//! checked against its columns (see [`crate::integrity`]), and only then are its values
//! converted: states known, sizes not negative, hashes 32 bytes. A row that fails its
//! checksum is [`CatalogError::CorruptRow`]; a verified row holding a value this binary
//! cannot read is [`CatalogError::InvalidData`].

use sqlx::SqliteConnection;

use super::SqliteCatalog;
use crate::error::CatalogError;
use crate::integrity::{chunk_checksum, mismatch, FileColumns, JobColumns};
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
pub(super) use select_jobs;

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
pub(super) use select_files;

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
pub(super) use select_chunks;

/// Which jobs a summary query returns.
pub(super) enum JobFilter<'a> {
    Id(JobId),
    Uris(&'a str, &'a str),
    All,
}

/// A `jobs` row as stored.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct RawJob {
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

/// A `files` row as stored.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct RawFile {
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

/// A `verified_chunks` row as stored.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct RawChunk {
    pub job_id: i64,
    pub file_index: i64,
    pub chunk_index: i64,
    pub chaining_value: Vec<u8>,
    pub checksum: Option<Vec<u8>>,
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

/// A verified job row before progress is added.
struct JobRow {
    id: JobId,
    source: String,
    destination: String,
    state: JobState,
    chunk_size: u64,
    created_at: i64,
    updated_at: i64,
    root_hash: Option<String>,
    last_error: Option<String>,
}

impl SqliteCatalog {
    /// Jobs with their progress, read in one snapshot.
    pub(super) async fn summaries(
        &self,
        filter: JobFilter<'_>,
    ) -> Result<Vec<JobSummary>, CatalogError> {
        let op = "read jobs";
        let mut tx = self.pool.begin().await.map_err(self.error(op))?;
        let query = match filter {
            JobFilter::Id(id) => sqlx::query_as::<_, RawJob>(select_jobs!("WHERE id = ?")).bind(id),
            JobFilter::Uris(source, destination) => {
                sqlx::query_as(select_jobs!("WHERE source = ? AND destination = ?"))
                    .bind(source)
                    .bind(destination)
            }
            JobFilter::All => sqlx::query_as(select_jobs!("ORDER BY created_at DESC, id DESC")),
        };
        let rows = query.fetch_all(&mut *tx).await.map_err(self.error(op))?;
        let mut summaries = Vec::with_capacity(rows.len());
        for raw in rows {
            let job = self.job_row(raw)?;
            summaries.push(self.with_progress(&mut tx, job).await?);
        }
        tx.commit().await.map_err(self.error(op))?;
        Ok(summaries)
    }

    /// The [`CatalogError::CorruptRow`] of a job row that fails its checksum.
    pub(super) fn corrupt_job(&self, raw: &RawJob, detail: String) -> CatalogError {
        CatalogError::CorruptRow {
            path: self.path.clone(),
            table: "jobs",
            job: raw.id,
            row: raw.describe(),
            destination: Some(raw.destination.clone()),
            detail,
        }
    }

    /// A job row, verified.
    pub(super) fn verify_job(&self, raw: &RawJob) -> Result<(), CatalogError> {
        match raw.damage() {
            Some(detail) => Err(self.corrupt_job(raw, detail)),
            None => Ok(()),
        }
    }

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

    async fn with_progress(
        &self,
        conn: &mut SqliteConnection,
        job: JobRow,
    ) -> Result<JobSummary, CatalogError> {
        let op = "read job progress";
        let (files_total, files_done, files_failed, bytes_total, bytes_of_files): (
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT COUNT(*),
                    COALESCE(SUM(CASE WHEN state IN ('done', 'skipped') THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(size), 0),
                    COALESCE(SUM(CASE WHEN state IN ('done', 'skipped') THEN size ELSE 0 END), 0)
             FROM files WHERE job_id = ?",
        )
        .bind(job.id)
        .fetch_one(&mut *conn)
        .await
        .map_err(self.error(op))?;
        // Each verified chunk of a pending file counts its real length: the chunk size,
        // or what is left of the file for its last chunk.
        let bytes_of_chunks: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(CASE
                        WHEN f.size - c.chunk_index * j.chunk_size >= j.chunk_size THEN j.chunk_size
                        WHEN f.size > c.chunk_index * j.chunk_size THEN f.size - c.chunk_index * j.chunk_size
                        ELSE 0 END), 0)
             FROM verified_chunks c
             JOIN files f ON f.job_id = c.job_id AND f.file_index = c.file_index
             JOIN jobs j ON j.id = c.job_id
             WHERE c.job_id = ? AND f.state = 'pending'",
        )
        .bind(job.id)
        .fetch_one(&mut *conn)
        .await
        .map_err(self.error(op))?;
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

    pub(super) fn unsigned(&self, value: i64, what: &str) -> Result<u64, CatalogError> {
        u64::try_from(value).map_err(|_| self.invalid_data(format!("{what} is {value}")))
    }

    pub(super) fn hash(
        &self,
        blob: Option<Vec<u8>>,
        what: &str,
    ) -> Result<Option<[u8; 32]>, CatalogError> {
        blob.map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| self.invalid_data(format!("{what} has {} bytes, not 32", bytes.len())))
        })
        .transpose()
    }

    /// The [`CatalogError::CorruptRow`] of a file row that fails its checksum (the
    /// destination hint is added by [`SqliteCatalog::with_destination`]).
    pub(super) fn corrupt_file(&self, raw: &RawFile, detail: String) -> CatalogError {
        CatalogError::CorruptRow {
            path: self.path.clone(),
            table: "files",
            job: raw.job_id,
            row: raw.describe(),
            destination: None,
            detail,
        }
    }

    /// A file row, verified and converted.
    pub(super) fn file_record(&self, raw: RawFile) -> Result<FileRecord, CatalogError> {
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
    pub(super) fn chunk_record(&self, raw: RawChunk) -> Result<VerifiedChunk, CatalogError> {
        if let Some(detail) = raw.damage() {
            return Err(CatalogError::CorruptRow {
                path: self.path.clone(),
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

    /// Adds the recorded destination of job `id` to a [`CatalogError::CorruptRow`] that
    /// lacks one, so its message can name the `rebuild --from` argument. The destination
    /// is read without verification: it only completes a message.
    pub(super) async fn with_destination(
        &self,
        conn: &mut SqliteConnection,
        id: JobId,
        err: CatalogError,
    ) -> CatalogError {
        match err {
            CatalogError::CorruptRow {
                path,
                table,
                job,
                row,
                destination: None,
                detail,
            } => {
                let destination: Option<String> =
                    sqlx::query_scalar("SELECT destination FROM jobs WHERE id = ?")
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await
                        .ok()
                        .flatten();
                CatalogError::CorruptRow {
                    path,
                    table,
                    job,
                    row,
                    destination,
                    detail,
                }
            }
            other => other,
        }
    }
}
