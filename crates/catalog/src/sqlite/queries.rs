//! [`Catalog`] for SQLite: the queries.
//!
//! The SQL here is kept portable (standard `INSERT ... ON CONFLICT`, `RETURNING`, `CASE`,
//! no SQLite functions), so a PostgreSQL engine can mirror it with `$n` placeholders.
//! Writes run in `BEGIN IMMEDIATE` transactions (see the parent module for why), and the
//! first statement of each touches the job row, which both checks that the job exists
//! and records the time of the change.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::error::ErrorKind;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, Transaction};

use super::rows::JobFilter;
use super::{db_error, SqliteCatalog};
use crate::error::CatalogError;
use crate::model::{
    FileRecord, FileUpdate, JobId, JobSpec, JobState, JobSummary, PlannedFile, VerifiedChunk,
};
use crate::Catalog;

/// Files per multi-row `INSERT` (6 parameters each: within SQLite's 32,766 and
/// PostgreSQL's 65,535 parameters per statement).
const FILE_BATCH: usize = 1000;

/// Chunks per multi-row upsert (4 parameters each).
const CHUNK_BATCH: usize = 1000;

/// File updates per multi-row `UPDATE` (4 parameters each).
const UPDATE_BATCH: usize = 1000;

impl SqliteCatalog {
    /// Starts a transaction that holds the write lock from its first statement.
    async fn begin_write(
        &self,
        op: &'static str,
    ) -> Result<Transaction<'static, Sqlite>, CatalogError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.error(op))
    }

    /// Sets the job's `updated_at`; fails with [`CatalogError::JobNotFound`] if it is gone.
    async fn touch_job(
        &self,
        conn: &mut SqliteConnection,
        id: JobId,
        op: &'static str,
    ) -> Result<(), CatalogError> {
        let touched = sqlx::query("UPDATE jobs SET updated_at = ? WHERE id = ?")
            .bind(unix_now())
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(self.error(op))?;
        if touched.rows_affected() == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    async fn ensure_job(
        &self,
        conn: &mut SqliteConnection,
        id: JobId,
        op: &'static str,
    ) -> Result<(), CatalogError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.error(op))?;
        found.map(|_| ()).ok_or_else(|| self.not_found(id))
    }

    /// After a write touched fewer files than it named: the first of `file_indexes` that
    /// the plan does not have.
    async fn first_unknown_file(
        &self,
        conn: &mut SqliteConnection,
        id: JobId,
        file_indexes: impl Iterator<Item = u32>,
        op: &'static str,
    ) -> Result<Option<u32>, CatalogError> {
        for index in file_indexes {
            let known: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM files WHERE job_id = ? AND file_index = ?",
            )
            .bind(id)
            .bind(i64::from(index))
            .fetch_one(&mut *conn)
            .await
            .map_err(self.error(op))?;
            if known == 0 {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn find_job(
        &self,
        source: &str,
        destination: &str,
    ) -> Result<Option<JobSummary>, CatalogError> {
        let jobs = self.summaries(JobFilter::Uris(source, destination)).await?;
        Ok(jobs.into_iter().next())
    }

    async fn create_job(&self, spec: &JobSpec) -> Result<JobId, CatalogError> {
        let chunk_size = to_signed(spec.chunk_size, "chunk size")?;
        if chunk_size == 0 {
            return Err(CatalogError::InvalidInput("chunk size is 0".into()));
        }
        if let Err(err) = serde_json::from_str::<serde_json::Value>(&spec.options_json) {
            return Err(CatalogError::InvalidInput(format!(
                "job options are not JSON ({err})"
            )));
        }
        let now = unix_now();
        let inserted = sqlx::query_scalar(
            "INSERT INTO jobs (source, destination, state, chunk_size, options_json, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&spec.source)
        .bind(&spec.destination)
        .bind(JobState::Planned.as_str())
        .bind(chunk_size)
        .bind(&spec.options_json)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(id) => Ok(id),
            Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation => {
                let existing = self.find_job(&spec.source, &spec.destination).await?;
                Err(CatalogError::JobExists {
                    id: existing.map_or(0, |job| job.id),
                    source_uri: spec.source.clone(),
                    destination_uri: spec.destination.clone(),
                })
            }
            Err(err) => Err(db_error(&self.path, "create job", err)),
        }
    }

    async fn job(&self, id: JobId) -> Result<Option<JobSummary>, CatalogError> {
        let jobs = self.summaries(JobFilter::Id(id)).await?;
        Ok(jobs.into_iter().next())
    }

    async fn job_options(&self, id: JobId) -> Result<String, CatalogError> {
        let options: Option<String> =
            sqlx::query_scalar("SELECT options_json FROM jobs WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.error("read job options"))?;
        options.ok_or_else(|| self.not_found(id))
    }

    async fn replace_plan(&self, id: JobId, files: &[PlannedFile]) -> Result<(), CatalogError> {
        let op = "replace plan";
        let ordered = dense_plan(files)?;
        let mut tx = self.begin_write(op).await?;
        self.touch_job(&mut tx, id, op).await?;
        for table in [
            "DELETE FROM verified_chunks WHERE job_id = ?",
            "DELETE FROM files WHERE job_id = ?",
        ] {
            sqlx::query(table)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
        }
        for batch in ordered.chunks(FILE_BATCH) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO files (job_id, file_index, path, size, mtime_ns, mode) ",
            );
            insert.push_values(batch, |mut row, (file, size)| {
                row.push_bind(id)
                    .push_bind(i64::from(file.index))
                    .push_bind(file.path.as_str())
                    .push_bind(*size)
                    .push_bind(file.mtime_ns)
                    .push_bind(file.mode.map(i64::from));
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
        }
        tx.commit().await.map_err(self.error(op))
    }

    async fn load_files(&self, id: JobId) -> Result<Vec<FileRecord>, CatalogError> {
        let op = "load files";
        let mut tx = self.pool.begin().await.map_err(self.error(op))?;
        let mut files = Vec::new();
        {
            let mut rows = sqlx::query(
                "SELECT file_index, path, size, mtime_ns, mode, state, hash, error
                 FROM files WHERE job_id = ? ORDER BY file_index",
            )
            .bind(id)
            .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(self.error(op))? {
                files.push(self.file_from_row(&row)?);
            }
        }
        if files.is_empty() {
            self.ensure_job(&mut tx, id, op).await?;
        }
        tx.commit().await.map_err(self.error(op))?;
        Ok(files)
    }

    async fn update_files(&self, id: JobId, updates: &[FileUpdate]) -> Result<(), CatalogError> {
        let op = "update files";
        // One row per file, the last update winning, so that each batch can check that
        // it updated as many rows as it names files.
        let latest: BTreeMap<u32, &FileUpdate> = updates
            .iter()
            .map(|update| (update.index, update))
            .collect();
        let rows: Vec<_> = latest.into_values().collect();
        let mut tx = self.begin_write(op).await?;
        self.touch_job(&mut tx, id, op).await?;
        for batch in rows.chunks(UPDATE_BATCH) {
            // Standard SQL (a CTE and UPDATE ... FROM), one statement per batch: a
            // statement per file costs ~20 µs of driver round trip.
            let mut query =
                QueryBuilder::<Sqlite>::new("WITH v (file_index, state, hash, error) AS (");
            query.push_values(batch, |mut row, update| {
                row.push_bind(i64::from(update.index))
                    .push_bind(update.state.as_str())
                    .push_bind(update.hash.as_ref().map(|hash| hash.as_slice()))
                    .push_bind(update.error.as_deref());
            });
            query.push(
                ") UPDATE files SET state = v.state, hash = v.hash, error = v.error \
                 FROM v WHERE files.job_id = ",
            );
            query.push_bind(id);
            query.push(" AND files.file_index = v.file_index");
            let updated = query
                .build()
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
            if updated.rows_affected() < batch.len() as u64 {
                let indexes = batch.iter().map(|update| update.index);
                if let Some(index) = self.first_unknown_file(&mut tx, id, indexes, op).await? {
                    return Err(CatalogError::UnknownFile { id, index });
                }
            }
        }
        tx.commit().await.map_err(self.error(op))
    }

    async fn record_verified_chunks(
        &self,
        id: JobId,
        chunks: &[VerifiedChunk],
    ) -> Result<(), CatalogError> {
        let op = "record verified chunks";
        // One row per (file, chunk), the last value winning, in key order: defined
        // semantics for repeats within a call on every engine (PostgreSQL refuses to
        // upsert the same row twice in one statement), and b-tree friendly.
        let mut latest = BTreeMap::new();
        for chunk in chunks {
            let chunk_index = to_signed(chunk.chunk_index, "chunk index")?;
            latest.insert((chunk.file_index, chunk_index), chunk.chaining_value);
        }
        let rows: Vec<_> = latest.into_iter().collect();
        let mut tx = self.begin_write(op).await?;
        self.touch_job(&mut tx, id, op).await?;
        for batch in rows.chunks(CHUNK_BATCH) {
            let mut upsert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO verified_chunks (job_id, file_index, chunk_index, chaining_value) ",
            );
            upsert.push_values(batch, |mut row, ((file_index, chunk_index), value)| {
                row.push_bind(id)
                    .push_bind(i64::from(*file_index))
                    .push_bind(*chunk_index)
                    .push_bind(value.as_slice());
            });
            upsert.push(
                " ON CONFLICT (job_id, file_index, chunk_index) \
                 DO UPDATE SET chaining_value = excluded.chaining_value",
            );
            let result = upsert.build().execute(&mut *tx).await;
            if let Err(sqlx::Error::Database(db)) = &result {
                if db.kind() == ErrorKind::ForeignKeyViolation {
                    let indexes = batch.iter().map(|((file_index, _), _)| *file_index);
                    if let Some(index) = self.first_unknown_file(&mut tx, id, indexes, op).await? {
                        return Err(CatalogError::UnknownFile { id, index });
                    }
                }
            }
            result.map_err(self.error(op))?;
        }
        tx.commit().await.map_err(self.error(op))
    }

    async fn verified_chunks(&self, id: JobId) -> Result<Vec<VerifiedChunk>, CatalogError> {
        let op = "read verified chunks";
        let mut tx = self.pool.begin().await.map_err(self.error(op))?;
        let mut chunks = Vec::new();
        {
            let mut rows = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(
                "SELECT file_index, chunk_index, chaining_value FROM verified_chunks
                 WHERE job_id = ? ORDER BY file_index, chunk_index",
            )
            .bind(id)
            .fetch(&mut *tx);
            while let Some((file_index, chunk_index, value)) =
                rows.try_next().await.map_err(self.error(op))?
            {
                let file_index = u32::try_from(file_index)
                    .map_err(|_| self.invalid_data(format!("chunk file index is {file_index}")))?;
                let chaining_value = self
                    .hash(Some(value), "a chunk chaining value")?
                    .unwrap_or_default();
                chunks.push(VerifiedChunk {
                    file_index,
                    chunk_index: self.unsigned(chunk_index, "chunk index")?,
                    chaining_value,
                });
            }
        }
        if chunks.is_empty() {
            self.ensure_job(&mut tx, id, op).await?;
        }
        tx.commit().await.map_err(self.error(op))?;
        Ok(chunks)
    }

    async fn forget_chunks(&self, id: JobId, file_index: u32) -> Result<(), CatalogError> {
        let op = "forget chunks";
        let mut tx = self.begin_write(op).await?;
        self.touch_job(&mut tx, id, op).await?;
        sqlx::query("DELETE FROM verified_chunks WHERE job_id = ? AND file_index = ?")
            .bind(id)
            .bind(i64::from(file_index))
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        tx.commit().await.map_err(self.error(op))
    }

    async fn set_job_state(
        &self,
        id: JobId,
        state: JobState,
        last_error: Option<&str>,
        root_hash: Option<&str>,
    ) -> Result<(), CatalogError> {
        let updated = sqlx::query(
            "UPDATE jobs SET state = ?, last_error = ?, root_hash = ?, updated_at = ? WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(last_error)
        .bind(root_hash)
        .bind(unix_now())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(self.error("set job state"))?;
        if updated.rows_affected() == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    async fn list_jobs(&self) -> Result<Vec<JobSummary>, CatalogError> {
        self.summaries(JobFilter::All).await
    }

    async fn delete_job(&self, id: JobId) -> Result<(), CatalogError> {
        let op = "delete job";
        let mut tx = self.begin_write(op).await?;
        // Children first, explicitly: faster than a cascade row by row.
        for statement in [
            "DELETE FROM verified_chunks WHERE job_id = ?",
            "DELETE FROM files WHERE job_id = ?",
        ] {
            sqlx::query(statement)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
        }
        let deleted = sqlx::query("DELETE FROM jobs WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        if deleted.rows_affected() == 0 {
            return Err(self.not_found(id));
        }
        tx.commit().await.map_err(self.error(op))
    }
}

/// The plan in index order with each size converted, or why it is not a dense plan.
fn dense_plan(files: &[PlannedFile]) -> Result<Vec<(&PlannedFile, i64)>, CatalogError> {
    let count = files.len();
    let mut slots: Vec<Option<(&PlannedFile, i64)>> = vec![None; count];
    for file in files {
        let size = to_signed(file.size, "file size")?;
        let slot = usize::try_from(file.index)
            .ok()
            .and_then(|index| slots.get_mut(index))
            .ok_or_else(|| {
                CatalogError::InvalidInput(format!(
                    "plan index {} of {:?} is outside 0..{count}",
                    file.index, file.path
                ))
            })?;
        if slot.replace((file, size)).is_some() {
            return Err(CatalogError::InvalidInput(format!(
                "plan index {} is given twice (second time for {:?})",
                file.index, file.path
            )));
        }
    }
    // n files in n distinct slots below n: every slot is filled.
    Ok(slots.into_iter().flatten().collect())
}

fn to_signed(value: u64, what: &str) -> Result<i64, CatalogError> {
    i64::try_from(value)
        .map_err(|_| CatalogError::InvalidInput(format!("{what} {value} is above {}", i64::MAX)))
}

/// Now, in Unix seconds (0 for a clock set before 1970).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}
