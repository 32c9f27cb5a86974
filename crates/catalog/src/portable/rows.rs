//! Job summaries with their progress on either engine. The SQL and the reading and
//! verifying of rows are [`crate::rows`]'s.
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use super::{Engine, EngineConn};
use crate::error::CatalogError;
use crate::model::{JobId, JobSummary};
use crate::rows::{
    select_jobs, JobFilter, JobRow, RawJob, RowReader, CHUNK_BYTES_SQL, PLAN_SUMS_SQL,
};

impl Engine {
    /// Jobs with their progress, read in one snapshot.
    pub(crate) async fn summaries(
        &self,
        filter: JobFilter<'_>,
    ) -> Result<Vec<JobSummary>, CatalogError> {
        let op = "read jobs";
        // One snapshot for the jobs and every job's progress.
        let mut tx = self.begin_snapshot(op).await?;
        let query = match filter {
            JobFilter::Id(id) => {
                sqlx::query_as::<_, RawJob>(select_jobs!("WHERE id = $1")).bind(id)
            }
            JobFilter::Uris(source, destination) => {
                sqlx::query_as(select_jobs!("WHERE source = $1 AND destination = $2"))
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

    async fn with_progress(
        &self,
        conn: &mut EngineConn,
        job: JobRow,
    ) -> Result<JobSummary, CatalogError> {
        let op = "read job progress";
        let (files_total, files_done, files_failed, bytes_total, bytes_of_files): (
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(PLAN_SUMS_SQL)
            .bind(job.id)
            .fetch_one(&mut *conn)
            .await
            .map_err(self.error(op))?;
        let bytes_of_chunks: i64 = sqlx::query_scalar(CHUNK_BYTES_SQL)
            .bind(job.id)
            .fetch_one(&mut *conn)
            .await
            .map_err(self.error(op))?;
        let sums = (
            files_total,
            files_done,
            files_failed,
            bytes_total,
            bytes_of_files,
            bytes_of_chunks,
        );
        self.summary(job, sums)
    }

    /// Adds the recorded destination of job `id` to a [`CatalogError::CorruptRow`] that
    /// lacks one, so its message can name the `rebuild --from` argument. The destination
    /// is read without verification: it only completes a message.
    pub(crate) async fn with_destination(
        &self,
        conn: &mut EngineConn,
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
                    sqlx::query_scalar("SELECT destination FROM jobs WHERE id = $1")
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
