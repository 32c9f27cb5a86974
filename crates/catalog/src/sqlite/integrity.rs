//! Integrity of an SQLite catalog: the one-time back-fill of row checksums when migration
//! 0003 is applied, the full check behind `strata catalog check`, and the import of a job
//! rebuilt from a destination's manifest (`strata catalog rebuild`).

use std::path::Path;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::db_error;
use super::SqliteCatalog;
use crate::error::CatalogError;
use crate::input::{check_spec, dense_plan, to_signed, CHUNK_BATCH, FILE_BATCH};
use crate::integrity::{
    chunk_checksum, CheckReport, CompletedJob, FileColumns, Findings, ImportedJob, ReplacedJob,
};
use crate::lifecycle::JobState;
use crate::model::{FileState, JobSpec, PlannedFile};
use crate::rows::{select_chunks, select_files, select_jobs, RawChunk, RawFile, RawJob};

/// The migration that added the `checksum` columns.
pub(super) const ROW_CHECKSUMS_VERSION: i64 = 3;

/// Rows read per page while back-filling.
const BACKFILL_PAGE: i64 = 5000;

/// Whether migration `version` is recorded as applied (false on a fresh database).
pub(super) async fn migration_applied(
    path: &Path,
    conn: &mut SqliteConnection,
    version: i64,
) -> Result<bool, CatalogError> {
    let op = "read schema version";
    if !super::has_migration_history(path, conn).await? {
        return Ok(false);
    }
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = ? AND success")
            .bind(version)
            .fetch_one(&mut *conn)
            .await
            .map_err(|err| db_error(path, op, err))?;
    Ok(applied > 0)
}

/// Gives every row without a checksum its checksum. Runs once, in the transaction that
/// applies migration 0003: rows written by an older Strata are sealed as they are (they
/// were trusted as they were until now). Returns the number of rows sealed.
pub(super) async fn backfill(
    path: &Path,
    conn: &mut SqliteConnection,
) -> Result<u64, CatalogError> {
    let op = "add row checksums";
    let error = |err| db_error(path, op, err);
    let mut sealed = 0;

    let jobs: Vec<RawJob> = sqlx::query_as(select_jobs!("WHERE checksum IS NULL"))
        .fetch_all(&mut *conn)
        .await
        .map_err(error)?;
    for job in &jobs {
        sqlx::query("UPDATE jobs SET checksum = ? WHERE id = ?")
            .bind(job.columns().checksum().as_slice())
            .bind(job.id)
            .execute(&mut *conn)
            .await
            .map_err(error)?;
    }
    sealed += jobs.len() as u64;

    // Pages in key order (keyset pagination), so memory stays bounded on big catalogs.
    let mut after = (-1i64, -1i64);
    loop {
        let page: Vec<RawFile> = sqlx::query_as(select_files!(
            "WHERE (job_id, file_index) > (?, ?) ORDER BY job_id, file_index LIMIT ?"
        ))
        .bind(after.0)
        .bind(after.1)
        .bind(BACKFILL_PAGE)
        .fetch_all(&mut *conn)
        .await
        .map_err(error)?;
        let Some(last) = page.last() else { break };
        after = (last.job_id, last.file_index);
        let unsealed: Vec<&RawFile> = page.iter().filter(|f| f.checksum.is_none()).collect();
        for batch in unsealed.chunks(FILE_BATCH) {
            let mut update =
                QueryBuilder::<Sqlite>::new("WITH v (job_id, file_index, checksum) AS (");
            update.push_values(batch, |mut row, file| {
                row.push_bind(file.job_id)
                    .push_bind(file.file_index)
                    .push_bind(file.columns().checksum().to_vec());
            });
            update.push(
                ") UPDATE files SET checksum = v.checksum FROM v \
                 WHERE files.job_id = v.job_id AND files.file_index = v.file_index",
            );
            update.build().execute(&mut *conn).await.map_err(error)?;
        }
        sealed += unsealed.len() as u64;
    }

    let mut after = (-1i64, -1i64, -1i64);
    loop {
        let page: Vec<RawChunk> = sqlx::query_as(select_chunks!(
            "WHERE (job_id, file_index, chunk_index) > (?, ?, ?)
             ORDER BY job_id, file_index, chunk_index LIMIT ?"
        ))
        .bind(after.0)
        .bind(after.1)
        .bind(after.2)
        .bind(BACKFILL_PAGE)
        .fetch_all(&mut *conn)
        .await
        .map_err(error)?;
        let Some(last) = page.last() else { break };
        after = (last.job_id, last.file_index, last.chunk_index);
        let unsealed: Vec<&RawChunk> = page.iter().filter(|c| c.checksum.is_none()).collect();
        for batch in unsealed.chunks(CHUNK_BATCH) {
            let mut update = QueryBuilder::<Sqlite>::new(
                "WITH v (job_id, file_index, chunk_index, checksum) AS (",
            );
            update.push_values(batch, |mut row, chunk| {
                row.push_bind(chunk.job_id)
                    .push_bind(chunk.file_index)
                    .push_bind(chunk.chunk_index)
                    .push_bind(
                        chunk_checksum(
                            chunk.job_id,
                            chunk.file_index,
                            chunk.chunk_index,
                            &chunk.chaining_value,
                        )
                        .to_vec(),
                    );
            });
            update.push(
                ") UPDATE verified_chunks SET checksum = v.checksum FROM v \
                 WHERE verified_chunks.job_id = v.job_id \
                 AND verified_chunks.file_index = v.file_index \
                 AND verified_chunks.chunk_index = v.chunk_index",
            );
            update.build().execute(&mut *conn).await.map_err(error)?;
        }
        sealed += unsealed.len() as u64;
    }
    if sealed > 0 {
        tracing::info!(path = %path.display(), rows = sealed, "catalog rows given their checksums");
    }
    Ok(sealed)
}

impl SqliteCatalog {
    /// Checks the whole catalog: SQLite's `PRAGMA integrity_check` (every page, every
    /// index), then the checksum of every row of the migration tables, in one read
    /// snapshot. Damage is reported, not returned as an error; an error means the check
    /// itself could not run.
    pub async fn check(&self) -> Result<CheckReport, CatalogError> {
        let op = "check integrity";
        let mut tx = self.pool.begin().await.map_err(self.error(op))?;
        let mut integrity = Vec::new();
        match sqlx::query_scalar::<_, String>("PRAGMA integrity_check")
            .fetch_all(&mut *tx)
            .await
        {
            Ok(lines) if lines.len() == 1 && lines[0] == "ok" => {}
            Ok(lines) => integrity.extend(lines),
            Err(err) => integrity.push(format!("the integrity check could not finish: {err}")),
        }
        let mut findings = Findings {
            integrity,
            ..Findings::default()
        };
        let jobs = findings
            .scan(sqlx::query_as::<_, RawJob>(select_jobs!("ORDER BY id")).fetch(&mut *tx))
            .await;
        let files = findings
            .scan(
                sqlx::query_as::<_, RawFile>(select_files!("ORDER BY job_id, file_index"))
                    .fetch(&mut *tx),
            )
            .await;
        let chunks = findings
            .scan(
                sqlx::query_as::<_, RawChunk>(select_chunks!(
                    "ORDER BY job_id, file_index, chunk_index"
                ))
                .fetch(&mut *tx),
            )
            .await;
        // A read-only snapshot: ending it cannot lose anything.
        let _ = tx.rollback().await;
        Ok(findings.report(self.path.clone(), true, [jobs, files, chunks]))
    }

    /// Records `job`, rebuilt from a destination's manifest, in one transaction: every job
    /// already recorded for the same destination is removed with its plan and chunks
    /// (found by destination alone, without verifying their rows, so damaged ones go
    /// too), then the job is inserted with its files (complete ones `done` with their
    /// hash, the others `pending`) and the chunk values of its complete multi-chunk files
    /// as verified chunks. The job is `done` with the root hash when every file is
    /// complete, else `failed` with [`CompletedJob::incomplete`] as its last error.
    ///
    /// Fails with [`CatalogError::InvalidInput`], changing nothing, when the spec or the
    /// plan could not be created by [`crate::Catalog::create_job`] and
    /// [`crate::Catalog::replace_plan`].
    pub async fn import_completed_job(
        &self,
        job: &CompletedJob,
    ) -> Result<ImportedJob, CatalogError> {
        let op = "import rebuilt job";
        let spec = JobSpec {
            source: job.source.clone(),
            destination: job.destination.clone(),
            chunk_size: job.chunk_size,
            options_json: job.options_json.clone(),
        };
        let chunk_size = check_spec(&spec)?;
        let planned: Vec<PlannedFile> = job.files.iter().map(|f| f.planned.clone()).collect();
        dense_plan(&planned)?;
        let mut files: Vec<_> = job.files.iter().collect();
        files.sort_by_key(|f| f.planned.index);
        let complete = files.iter().all(|f| f.hash.is_some());
        let (state, root_hash, last_error) = match (&job.incomplete, complete) {
            (None, true) => (JobState::Done, Some(job.root_hash.as_str()), None),
            (incomplete, _) => (
                JobState::Failed,
                None,
                Some(
                    incomplete
                        .as_deref()
                        .unwrap_or("rebuilt from the destination's manifest with files pending"),
                ),
            ),
        };

        let mut tx = self.begin_write(op).await?;
        let replaced: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, source FROM jobs WHERE destination = ? ORDER BY id")
                .bind(&job.destination)
                .fetch_all(&mut *tx)
                .await
                .map_err(self.error(op))?;
        for (id, _) in &replaced {
            for statement in [
                "DELETE FROM verified_chunks WHERE job_id = ?",
                "DELETE FROM files WHERE job_id = ?",
                "DELETE FROM jobs WHERE id = ?",
            ] {
                sqlx::query(statement)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.error(op))?;
            }
        }
        let id = self
            .insert_job(&mut tx, &spec, chunk_size, state, root_hash, last_error)
            .await
            .map_err(self.error(op))?;

        for batch in files.chunks(FILE_BATCH) {
            let mut rows = Vec::with_capacity(batch.len());
            for file in batch {
                let size = to_signed(file.planned.size, "file size")?;
                let state = match file.hash {
                    Some(_) => FileState::Done,
                    None => FileState::Pending,
                };
                let checksum = FileColumns {
                    job_id: id,
                    file_index: i64::from(file.planned.index),
                    path: &file.planned.path,
                    size,
                    mtime_ns: file.planned.mtime_ns,
                    mode: file.planned.mode.map(i64::from),
                    state: state.as_str(),
                    hash: file.hash.as_ref().map(|h| h.as_slice()),
                    error: None,
                }
                .checksum();
                rows.push((file, size, state, checksum));
            }
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO files (job_id, file_index, path, size, mtime_ns, mode, state, hash, checksum) ",
            );
            insert.push_values(&rows, |mut row, (file, size, state, checksum)| {
                row.push_bind(id)
                    .push_bind(i64::from(file.planned.index))
                    .push_bind(file.planned.path.as_str())
                    .push_bind(*size)
                    .push_bind(file.planned.mtime_ns)
                    .push_bind(file.planned.mode.map(i64::from))
                    .push_bind(state.as_str())
                    .push_bind(file.hash.as_ref().map(|h| h.to_vec()))
                    .push_bind(checksum.to_vec());
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
        }

        let chunks: Vec<(i64, i64, &[u8; 32])> = files
            .iter()
            .filter(|f| f.hash.is_some())
            .flat_map(|f| {
                f.chunks
                    .iter()
                    .enumerate()
                    .map(move |(i, value)| (i64::from(f.planned.index), i as i64, value))
            })
            .collect();
        for batch in chunks.chunks(CHUNK_BATCH) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO verified_chunks (job_id, file_index, chunk_index, chaining_value, checksum) ",
            );
            insert.push_values(batch, |mut row, (file_index, chunk_index, value)| {
                row.push_bind(id)
                    .push_bind(*file_index)
                    .push_bind(*chunk_index)
                    .push_bind(value.as_slice())
                    .push_bind(chunk_checksum(id, *file_index, *chunk_index, *value).to_vec());
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
        }
        tx.commit().await.map_err(self.error(op))?;
        Ok(ImportedJob {
            job: id,
            replaced: replaced
                .into_iter()
                .map(|(id, source)| ReplacedJob { id, source })
                .collect(),
        })
    }
}
