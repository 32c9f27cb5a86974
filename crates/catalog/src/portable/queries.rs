//! [`Catalog`] on either engine: the queries of jobs, files and verified chunks. Written
//! once for both engines and compiled for each (see `README.md` here).
//!
//! Each call is one transaction ([`Engine::begin_write`]: SQLite's takes the file's write
//! lock up front). The first statement of a write touches the job row, which checks that
//! the job exists, records the time of the change, and on PostgreSQL locks the row until
//! the commit: writes to one job are serialised across processes, while other jobs
//! proceed. Rows read to decide a write are read with [`ROW_LOCK`].
//!
//! Every row written gets its checksum ([`crate::integrity`]), computed here from the
//! values written; an update first reads and verifies the row it changes, so a damaged
//! row is reported instead of being sealed with a fresh checksum. Every row read is
//! verified (see [`super::rows`]).

use std::collections::BTreeMap;
use std::ops::Range;

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::error::ErrorKind;
use sqlx::{Connection, QueryBuilder};

use super::{Engine, EngineConn, EngineDb, ROW_LOCK};
use crate::error::CatalogError;
use crate::input::{
    check_spec, dense_plan, to_signed, unix_now, CHUNK_BATCH, FILE_BATCH, UPDATE_BATCH,
};
use crate::integrity::{chunk_checksum, FileColumns};
use crate::lifecycle::{JobKind, JobState};
use crate::model::{
    FileRecord, FileState, FileUpdate, JobId, JobSpec, JobSummary, PlannedFile, VerifiedChunk,
};
use crate::rows::{
    select_chunks, select_files, select_jobs, JobFilter, RawChunk, RawFile, RawJob, RowReader,
};
use crate::workers::{FileFinishClaim, FinishClaim, WorkerRecord};
use crate::Catalog;

impl Engine {
    /// Sets the job's `updated_at`; fails with [`CatalogError::JobNotFound`] if it is gone.
    async fn touch_job(
        &self,
        conn: &mut EngineConn,
        id: JobId,
        op: &'static str,
    ) -> Result<(), CatalogError> {
        let touched = sqlx::query("UPDATE jobs SET updated_at = $1 WHERE id = $2")
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
        conn: &mut EngineConn,
        id: JobId,
        op: &'static str,
    ) -> Result<(), CatalogError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.error(op))?;
        found.map(|_| ()).ok_or_else(|| self.not_found(id))
    }

    /// Inserts a job row with its checksum (which covers the id, so it is written once
    /// the id is known, in the same transaction). The chunk size must already be checked.
    pub(crate) async fn insert_job(
        &self,
        conn: &mut EngineConn,
        spec: &JobSpec,
        chunk_size: i64,
        state: JobState,
        root_hash: Option<&str>,
        last_error: Option<&str>,
    ) -> Result<JobId, sqlx::Error> {
        let now = unix_now();
        let id: JobId = sqlx::query_scalar(
            "INSERT INTO jobs (source, destination, state, chunk_size, options_json, created_at,
                               updated_at, root_hash, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&spec.source)
        .bind(&spec.destination)
        .bind(state.as_str())
        .bind(chunk_size)
        .bind(&spec.options_json)
        .bind(now)
        .bind(now)
        .bind(root_hash)
        .bind(last_error)
        .fetch_one(&mut *conn)
        .await?;
        let checksum = crate::integrity::JobColumns {
            id,
            source: &spec.source,
            destination: &spec.destination,
            chunk_size,
            options_json: &spec.options_json,
            created_at: now,
            state: state.as_str(),
            root_hash,
            last_error,
        }
        .checksum();
        sqlx::query("UPDATE jobs SET checksum = $1 WHERE id = $2")
            .bind(checksum.as_slice())
            .bind(id)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }

    /// The rows `batch` updates, verified, in the batch's order; fails with
    /// [`CatalogError::UnknownFile`] for the first index the plan does not have.
    async fn rows_to_update(
        &self,
        conn: &mut EngineConn,
        id: JobId,
        batch: &[&FileUpdate],
        op: &'static str,
    ) -> Result<Vec<RawFile>, CatalogError> {
        let mut query = QueryBuilder::<EngineDb>::new(select_files!("WHERE job_id = "));
        query.push_bind(id);
        query.push(" AND file_index IN (");
        let mut list = query.separated(", ");
        for update in batch {
            list.push_bind(i64::from(update.index));
        }
        // Locked until the commit: the new checksums are computed from these rows.
        query.push(")").push(ROW_LOCK);
        let rows: Vec<RawFile> = query
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(self.error(op))?;
        let mut by_index: BTreeMap<i64, RawFile> =
            rows.into_iter().map(|raw| (raw.file_index, raw)).collect();
        let mut ordered = Vec::with_capacity(batch.len());
        for update in batch {
            let raw =
                by_index
                    .remove(&i64::from(update.index))
                    .ok_or(CatalogError::UnknownFile {
                        id,
                        index: update.index,
                    })?;
            if let Some(detail) = raw.damage() {
                return Err(self.corrupt_file(&raw, detail));
            }
            ordered.push(raw);
        }
        Ok(ordered)
    }

    /// After a write touched fewer files than it named: the first of `file_indexes` that
    /// the plan does not have.
    async fn first_unknown_file(
        &self,
        conn: &mut EngineConn,
        id: JobId,
        file_indexes: impl Iterator<Item = u32>,
        op: &'static str,
    ) -> Result<Option<u32>, CatalogError> {
        for index in file_indexes {
            let known: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM files WHERE job_id = $1 AND file_index = $2",
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

    async fn files_in(
        &self,
        id: JobId,
        range: Range<u32>,
    ) -> Result<Vec<FileRecord>, CatalogError> {
        let op = "load files";
        let mut tx = self.pool.begin().await.map_err(self.error(op))?;
        let mut files = Vec::new();
        let mut damaged = None;
        {
            let mut rows = sqlx::query_as::<_, RawFile>(select_files!(
                "WHERE job_id = $1 AND file_index >= $2 AND file_index < $3 ORDER BY file_index"
            ))
            .bind(id)
            .bind(i64::from(range.start))
            .bind(i64::from(range.end))
            .fetch(&mut *tx);
            while let Some(raw) = rows.try_next().await.map_err(self.error(op))? {
                match self.file_record(raw) {
                    Ok(file) => files.push(file),
                    Err(err) => {
                        damaged = Some(err);
                        break;
                    }
                }
            }
        }
        if let Some(err) = damaged {
            return Err(self.with_destination(&mut tx, id, err).await);
        }
        if files.is_empty() {
            self.ensure_job(&mut tx, id, op).await?;
        }
        tx.commit().await.map_err(self.error(op))?;
        Ok(files)
    }

    async fn chunks_in(
        &self,
        id: JobId,
        range: Range<u32>,
    ) -> Result<Vec<VerifiedChunk>, CatalogError> {
        let op = "read verified chunks";
        let mut tx = self.pool.begin().await.map_err(self.error(op))?;
        let mut chunks = Vec::new();
        let mut damaged = None;
        {
            let mut rows = sqlx::query_as::<_, RawChunk>(select_chunks!(
                "WHERE job_id = $1 AND file_index >= $2 AND file_index < $3 \
                 ORDER BY file_index, chunk_index"
            ))
            .bind(id)
            .bind(i64::from(range.start))
            .bind(i64::from(range.end))
            .fetch(&mut *tx);
            while let Some(raw) = rows.try_next().await.map_err(self.error(op))? {
                match self.chunk_record(raw) {
                    Ok(chunk) => chunks.push(chunk),
                    Err(err) => {
                        damaged = Some(err);
                        break;
                    }
                }
            }
        }
        if let Some(err) = damaged {
            return Err(self.with_destination(&mut tx, id, err).await);
        }
        if chunks.is_empty() {
            self.ensure_job(&mut tx, id, op).await?;
        }
        tx.commit().await.map_err(self.error(op))?;
        Ok(chunks)
    }
}

#[async_trait]
impl Catalog for Engine {
    async fn load_files(&self, id: JobId) -> Result<Vec<FileRecord>, CatalogError> {
        self.files_in(id, 0..u32::MAX).await
    }

    async fn load_file_range(
        &self,
        id: JobId,
        files: Range<u32>,
    ) -> Result<Vec<FileRecord>, CatalogError> {
        self.files_in(id, files).await
    }

    async fn verified_chunks(&self, id: JobId) -> Result<Vec<VerifiedChunk>, CatalogError> {
        self.chunks_in(id, 0..u32::MAX).await
    }

    async fn verified_chunks_of_files(
        &self,
        id: JobId,
        files: Range<u32>,
    ) -> Result<Vec<VerifiedChunk>, CatalogError> {
        self.chunks_in(id, files).await
    }

    async fn find_job(
        &self,
        source: &str,
        destination: &str,
    ) -> Result<Option<JobSummary>, CatalogError> {
        let jobs = self.summaries(JobFilter::Uris(source, destination)).await?;
        Ok(jobs.into_iter().next())
    }

    async fn create_job(&self, spec: &JobSpec) -> Result<JobId, CatalogError> {
        let chunk_size = check_spec(spec)?;
        let op = "create job";
        let mut tx = self.begin_write(op).await?;
        match self
            .insert_job(&mut tx, spec, chunk_size, JobState::Planned, None, None)
            .await
        {
            Ok(id) => {
                tx.commit().await.map_err(self.error(op))?;
                Ok(id)
            }
            Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation => {
                drop(tx);
                let existing = self.find_job(&spec.source, &spec.destination).await?;
                Err(CatalogError::JobExists {
                    id: existing.map_or(0, |job| job.id),
                    source_uri: spec.source.clone(),
                    destination_uri: spec.destination.clone(),
                })
            }
            Err(err) => Err(self.error(op)(err)),
        }
    }

    async fn job(&self, id: JobId) -> Result<Option<JobSummary>, CatalogError> {
        let jobs = self.summaries(JobFilter::Id(id)).await?;
        Ok(jobs.into_iter().next())
    }

    async fn job_options(&self, id: JobId) -> Result<String, CatalogError> {
        let raw: Option<RawJob> = sqlx::query_as(select_jobs!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.error("read job options"))?;
        let raw = raw.ok_or_else(|| self.not_found(id))?;
        self.verify_job(&raw)?;
        Ok(raw.options_json)
    }

    async fn replace_plan(&self, id: JobId, files: &[PlannedFile]) -> Result<(), CatalogError> {
        let op = "replace plan";
        let ordered = dense_plan(files)?;
        let mut tx = self.begin_write(op).await?;
        self.touch_job(&mut tx, id, op).await?;
        for table in [
            "DELETE FROM verified_chunks WHERE job_id = $1",
            "DELETE FROM files WHERE job_id = $1",
        ] {
            sqlx::query(table)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
        }
        for batch in ordered.chunks(FILE_BATCH) {
            let mut insert = QueryBuilder::<EngineDb>::new(
                "INSERT INTO files (job_id, file_index, path, size, mtime_ns, mode, state, checksum) ",
            );
            insert.push_values(batch, |mut row, (file, size)| {
                let columns = FileColumns {
                    job_id: id,
                    file_index: i64::from(file.index),
                    path: &file.path,
                    size: *size,
                    mtime_ns: file.mtime_ns,
                    mode: file.mode.map(i64::from),
                    state: FileState::Pending.as_str(),
                    hash: None,
                    error: None,
                };
                row.push_bind(id)
                    .push_bind(i64::from(file.index))
                    .push_bind(file.path.as_str())
                    .push_bind(*size)
                    .push_bind(file.mtime_ns)
                    .push_bind(file.mode.map(i64::from))
                    .push_bind(FileState::Pending.as_str())
                    .push_bind(columns.checksum().to_vec());
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
        }
        tx.commit().await.map_err(self.error(op))
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
            // The rows to change, verified: the new checksum covers their planned
            // columns too, which must not be sealed if they were damaged.
            let current = match self.rows_to_update(&mut tx, id, batch, op).await {
                Ok(current) => current,
                Err(err) => return Err(self.with_destination(&mut tx, id, err).await),
            };
            let checksums: Vec<Vec<u8>> = batch
                .iter()
                .zip(&current)
                .map(|(update, raw)| {
                    FileColumns {
                        state: update.state.as_str(),
                        hash: update.hash.as_ref().map(|hash| hash.as_slice()),
                        error: update.error.as_deref(),
                        ..raw.columns()
                    }
                    .checksum()
                    .to_vec()
                })
                .collect();
            // Standard SQL (a CTE and UPDATE ... FROM), one statement per batch: a
            // statement per file costs ~20 µs of driver round trip.
            let mut query = QueryBuilder::<EngineDb>::new(
                "WITH v (file_index, state, hash, error, checksum) AS (",
            );
            query.push_values(
                batch.iter().zip(&checksums),
                |mut row, (update, checksum)| {
                    row.push_bind(i64::from(update.index))
                        .push_bind(update.state.as_str())
                        .push_bind(update.hash.as_ref().map(|hash| hash.as_slice()))
                        .push_bind(update.error.as_deref())
                        .push_bind(checksum.as_slice());
                },
            );
            query.push(
                ") UPDATE files SET state = v.state, hash = v.hash, error = v.error, \
                 checksum = v.checksum FROM v WHERE files.job_id = ",
            );
            query.push_bind(id);
            query.push(" AND files.file_index = v.file_index");
            query
                .build()
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
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
            let mut upsert = QueryBuilder::<EngineDb>::new(
                "INSERT INTO verified_chunks (job_id, file_index, chunk_index, chaining_value, checksum) ",
            );
            upsert.push_values(batch, |mut row, ((file_index, chunk_index), value)| {
                let file_index = i64::from(*file_index);
                row.push_bind(id)
                    .push_bind(file_index)
                    .push_bind(*chunk_index)
                    .push_bind(value.as_slice())
                    .push_bind(chunk_checksum(id, file_index, *chunk_index, value).to_vec());
            });
            upsert.push(
                " ON CONFLICT (job_id, file_index, chunk_index) \
                 DO UPDATE SET chaining_value = excluded.chaining_value, \
                 checksum = excluded.checksum",
            );
            // In a savepoint: PostgreSQL refuses every statement of a transaction after an
            // error, and the unknown file is looked up after a foreign key violation (on
            // SQLite the savepoint costs nothing worth avoiding a second version for).
            let mut savepoint = tx.begin().await.map_err(self.error(op))?;
            let result = upsert.build().execute(&mut *savepoint).await;
            if let Err(sqlx::Error::Database(db)) = &result {
                if db.kind() == ErrorKind::ForeignKeyViolation {
                    savepoint.rollback().await.map_err(self.error(op))?;
                    let indexes = batch.iter().map(|((file_index, _), _)| *file_index);
                    if let Some(index) = self.first_unknown_file(&mut tx, id, indexes, op).await? {
                        return Err(CatalogError::UnknownFile { id, index });
                    }
                    return Err(self.error(op)(result.unwrap_err()));
                }
            }
            result.map_err(self.error(op))?;
            savepoint.commit().await.map_err(self.error(op))?;
        }
        tx.commit().await.map_err(self.error(op))
    }

    async fn forget_chunks(&self, id: JobId, file_index: u32) -> Result<(), CatalogError> {
        let op = "forget chunks";
        let mut tx = self.begin_write(op).await?;
        self.touch_job(&mut tx, id, op).await?;
        sqlx::query("DELETE FROM verified_chunks WHERE job_id = $1 AND file_index = $2")
            .bind(id)
            .bind(i64::from(file_index))
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        tx.commit().await.map_err(self.error(op))
    }

    async fn replan_file(&self, id: JobId, file: &PlannedFile) -> Result<(), CatalogError> {
        let op = "replan file";
        let size = to_signed(file.size, "file size")?;
        let mut tx = self.begin_write(op).await?;
        self.touch_job(&mut tx, id, op).await?;
        // The row is read and verified first: its new checksum must not seal damage.
        let pending = FileUpdate {
            index: file.index,
            state: FileState::Pending,
            hash: None,
            error: None,
        };
        let current = match self.rows_to_update(&mut tx, id, &[&pending], op).await {
            Ok(mut rows) => rows.remove(0),
            Err(err) => return Err(self.with_destination(&mut tx, id, err).await),
        };
        if current.path != file.path {
            return Err(CatalogError::InvalidInput(format!(
                "file {} of job {id} is {:?}, not {:?}",
                file.index, current.path, file.path
            )));
        }
        let mode = file.mode.map(i64::from);
        let checksum = FileColumns {
            size,
            mtime_ns: file.mtime_ns,
            mode,
            state: FileState::Pending.as_str(),
            hash: None,
            error: None,
            ..current.columns()
        }
        .checksum();
        sqlx::query(
            "UPDATE files SET size = $1, mtime_ns = $2, mode = $3, state = $4, hash = NULL, \
             error = NULL, checksum = $5 WHERE job_id = $6 AND file_index = $7",
        )
        .bind(size)
        .bind(file.mtime_ns)
        .bind(mode)
        .bind(FileState::Pending.as_str())
        .bind(checksum.as_slice())
        .bind(id)
        .bind(i64::from(file.index))
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        sqlx::query("DELETE FROM verified_chunks WHERE job_id = $1 AND file_index = $2")
            .bind(id)
            .bind(i64::from(file.index))
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
        let op = "set job state";
        let mut tx = self.begin_write(op).await?;
        // Locked until the commit, so that the transition is checked against the state
        // this transaction replaces: a concurrent writer waits, then checks against ours.
        let sql = format!("{}{ROW_LOCK}", select_jobs!("WHERE id = $1"));
        let raw: Option<RawJob> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.error(op))?;
        let raw = raw.ok_or_else(|| self.not_found(id))?;
        self.verify_job(&raw)?;
        let from = JobKind::Migration
            .parse_state(&raw.state)
            .map_err(|err| self.invalid_data(format!("job {id}: {err}")))?;
        if !JobKind::Migration.allows(from, state) {
            return Err(CatalogError::IllegalTransition {
                kind: JobKind::Migration,
                id,
                from,
                to: state,
            });
        }
        let checksum = crate::integrity::JobColumns {
            state: state.as_str(),
            last_error,
            root_hash,
            ..raw.columns()
        }
        .checksum();
        sqlx::query(
            "UPDATE jobs SET state = $1, last_error = $2, root_hash = $3, updated_at = $4, checksum = $5
             WHERE id = $6",
        )
        .bind(state.as_str())
        .bind(last_error)
        .bind(root_hash)
        .bind(unix_now())
        .bind(checksum.as_slice())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        tx.commit().await.map_err(self.error(op))
    }

    async fn list_jobs(&self) -> Result<Vec<JobSummary>, CatalogError> {
        self.summaries(JobFilter::All).await
    }

    async fn delete_job(&self, id: JobId) -> Result<(), CatalogError> {
        let op = "delete job";
        let mut tx = self.begin_write(op).await?;
        // Children first, explicitly: faster than a cascade row by row.
        for statement in [
            "DELETE FROM verified_chunks WHERE job_id = $1",
            "DELETE FROM files WHERE job_id = $1",
        ] {
            sqlx::query(statement)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
        }
        let deleted = sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        if deleted.rows_affected() == 0 {
            return Err(self.not_found(id));
        }
        tx.commit().await.map_err(self.error(op))
    }

    async fn record_worker(&self, worker: &WorkerRecord) -> Result<(), CatalogError> {
        self.upsert_worker(worker).await
    }

    async fn remove_worker(&self, id: &str) -> Result<(), CatalogError> {
        self.delete_worker(id).await
    }

    async fn workers(&self) -> Result<Vec<WorkerRecord>, CatalogError> {
        self.select_workers().await
    }

    async fn claim_job_finish(
        &self,
        id: JobId,
        run: &str,
        task: &str,
        worker: &str,
    ) -> Result<FinishClaim, CatalogError> {
        self.claim_finish(id, run, task, worker).await
    }

    async fn claim_file_finish(
        &self,
        id: JobId,
        file_index: u32,
        run: &str,
        task: &str,
        worker: &str,
    ) -> Result<FileFinishClaim, CatalogError> {
        self.claim_file(id, file_index, run, task, worker).await
    }
}
