//! Reading rows back: job summaries with their progress, and file records.
//!
//! Stored values are checked on the way out (states known, sizes not negative, hashes 32
//! bytes), so a hand-edited or damaged row is reported as [`CatalogError::InvalidData`]
//! instead of being misread.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::SqliteCatalog;
use crate::error::CatalogError;
use crate::model::{FileRecord, JobId, JobState, JobSummary, PlannedFile};

/// `SELECT` of a job's own columns, in the order [`SqliteCatalog::job_from_row`] reads them.
macro_rules! select_jobs {
    ($rest:literal) => {
        concat!(
            "SELECT id, source, destination, state, chunk_size, created_at, updated_at, ",
            "root_hash, last_error FROM jobs ",
            $rest
        )
    };
}

/// Which jobs a summary query returns.
pub(super) enum JobFilter<'a> {
    Id(JobId),
    Uris(&'a str, &'a str),
    All,
}

/// The columns of `jobs` before progress is added.
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
            JobFilter::Id(id) => sqlx::query(select_jobs!("WHERE id = ?")).bind(id),
            JobFilter::Uris(source, destination) => {
                sqlx::query(select_jobs!("WHERE source = ? AND destination = ?"))
                    .bind(source)
                    .bind(destination)
            }
            JobFilter::All => sqlx::query(select_jobs!("ORDER BY created_at DESC, id DESC")),
        };
        let rows = query.fetch_all(&mut *tx).await.map_err(self.error(op))?;
        let mut summaries = Vec::with_capacity(rows.len());
        for row in &rows {
            let job = self.job_from_row(row)?;
            summaries.push(self.with_progress(&mut tx, job).await?);
        }
        tx.commit().await.map_err(self.error(op))?;
        Ok(summaries)
    }

    fn job_from_row(&self, row: &SqliteRow) -> Result<JobRow, CatalogError> {
        let op = "read jobs";
        let state: String = row.try_get(3).map_err(self.error(op))?;
        let chunk_size: i64 = row.try_get(4).map_err(self.error(op))?;
        Ok(JobRow {
            id: row.try_get(0).map_err(self.error(op))?,
            source: row.try_get(1).map_err(self.error(op))?,
            destination: row.try_get(2).map_err(self.error(op))?,
            state: state
                .parse()
                .map_err(|err| self.invalid_data(format!("{err}")))?,
            chunk_size: self.unsigned(chunk_size, "job chunk size")?,
            created_at: row.try_get(5).map_err(self.error(op))?,
            updated_at: row.try_get(6).map_err(self.error(op))?,
            root_hash: row.try_get(7).map_err(self.error(op))?,
            last_error: row.try_get(8).map_err(self.error(op))?,
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

    pub(super) fn file_from_row(&self, row: &SqliteRow) -> Result<FileRecord, CatalogError> {
        let op = "load files";
        let index: i64 = row.try_get(0).map_err(self.error(op))?;
        let size: i64 = row.try_get(2).map_err(self.error(op))?;
        let mode: Option<i64> = row.try_get(4).map_err(self.error(op))?;
        let state: String = row.try_get(5).map_err(self.error(op))?;
        let index = u32::try_from(index)
            .map_err(|_| self.invalid_data(format!("file index is {index}")))?;
        let mode = mode
            .map(|mode| {
                u32::try_from(mode)
                    .map_err(|_| self.invalid_data(format!("file {index} has mode {mode}")))
            })
            .transpose()?;
        Ok(FileRecord {
            planned: PlannedFile {
                index,
                path: row.try_get(1).map_err(self.error(op))?,
                size: self.unsigned(size, "file size")?,
                mtime_ns: row.try_get(3).map_err(self.error(op))?,
                mode,
            },
            state: state
                .parse()
                .map_err(|err| self.invalid_data(format!("file {index}: {err}")))?,
            hash: self.hash(row.try_get(6).map_err(self.error(op))?, "a file hash")?,
            error: row.try_get(7).map_err(self.error(op))?,
        })
    }
}
