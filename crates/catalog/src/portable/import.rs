//! The import of a job rebuilt from a destination's manifest (`strata catalog rebuild`), on
//! either engine. Written once for both engines and compiled for each (see `README.md`
//! here).

use sqlx::QueryBuilder;

use super::{Engine, EngineDb, ROW_LOCK};
use crate::error::CatalogError;
use crate::input::{check_spec, dense_plan, to_signed, CHUNK_BATCH, FILE_BATCH};
use crate::integrity::{chunk_checksum, CompletedJob, FileColumns, ImportedJob, ReplacedJob};
use crate::lifecycle::JobState;
use crate::model::{FileState, JobSpec, PlannedFile};

impl Engine {
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
        let replaced: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT id, source FROM jobs WHERE destination = $1 ORDER BY id{ROW_LOCK}"
        ))
        .bind(&job.destination)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.error(op))?;
        for (id, _) in &replaced {
            for statement in [
                "DELETE FROM verified_chunks WHERE job_id = $1",
                "DELETE FROM files WHERE job_id = $1",
                "DELETE FROM jobs WHERE id = $1",
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
            let mut insert = QueryBuilder::<EngineDb>::new(
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
            let mut insert = QueryBuilder::<EngineDb>::new(
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
