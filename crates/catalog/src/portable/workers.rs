//! [`crate::Catalog`]'s worker and job-finish calls (migration `0007`) on either engine; the
//! job's row is locked while a finish is claimed (`ROW_LOCK`).
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use sqlx::Row;

use super::{Engine, EngineRow, ROW_LOCK};
use crate::error::CatalogError;
use crate::input::{clamp, unix_now, unsigned};
use crate::lifecycle::JobState;
use crate::model::JobId;
use crate::rows::RowReader;
use crate::workers::{FinishClaim, WorkerRecord};

impl Engine {
    pub(crate) async fn upsert_worker(&self, worker: &WorkerRecord) -> Result<(), CatalogError> {
        let op = "record worker";
        sqlx::query(
            "INSERT INTO workers (id, host, pid, cores, bandwidth_cap, throughput, bytes_done,
                                  tasks_done, started_at, heartbeat_at, job_id, task)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (id) DO UPDATE SET
                 host = excluded.host, pid = excluded.pid, cores = excluded.cores,
                 bandwidth_cap = excluded.bandwidth_cap, throughput = excluded.throughput,
                 bytes_done = excluded.bytes_done, tasks_done = excluded.tasks_done,
                 heartbeat_at = excluded.heartbeat_at, job_id = excluded.job_id,
                 task = excluded.task",
        )
        .bind(&worker.id)
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(i64::from(worker.cores))
        .bind(worker.bandwidth_cap.map(clamp))
        .bind(clamp(worker.throughput))
        .bind(clamp(worker.bytes_done))
        .bind(clamp(worker.tasks_done))
        .bind(worker.started_at)
        .bind(worker.heartbeat_at)
        .bind(worker.job)
        .bind(&worker.task)
        .execute(&self.pool)
        .await
        .map_err(self.error(op))?;
        Ok(())
    }

    pub(crate) async fn delete_worker(&self, id: &str) -> Result<(), CatalogError> {
        sqlx::query("DELETE FROM workers WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.error("remove worker"))?;
        Ok(())
    }

    pub(crate) async fn select_workers(&self) -> Result<Vec<WorkerRecord>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, host, pid, cores, bandwidth_cap, throughput, bytes_done, tasks_done,
                    started_at, heartbeat_at, job_id, task
             FROM workers ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.error("list workers"))?;
        let record = |row: &EngineRow| -> Result<WorkerRecord, sqlx::Error> {
            Ok(WorkerRecord {
                id: row.try_get("id")?,
                host: row.try_get("host")?,
                pid: unsigned(row.try_get("pid")?),
                cores: unsigned(row.try_get("cores")?),
                bandwidth_cap: row
                    .try_get::<Option<i64>, _>("bandwidth_cap")?
                    .map(unsigned),
                throughput: unsigned(row.try_get("throughput")?),
                bytes_done: unsigned(row.try_get("bytes_done")?),
                tasks_done: unsigned(row.try_get("tasks_done")?),
                started_at: row.try_get("started_at")?,
                heartbeat_at: row.try_get("heartbeat_at")?,
                job: row.try_get("job_id")?,
                task: row.try_get("task")?,
            })
        };
        rows.iter()
            .map(|row| record(row).map_err(self.error("list workers")))
            .collect()
    }

    pub(crate) async fn claim_finish(
        &self,
        id: JobId,
        run: &str,
        task: &str,
        worker: &str,
    ) -> Result<FinishClaim, CatalogError> {
        let op = "claim job finish";
        let mut tx = self.begin_write(op).await?;
        // The job's row locked: two tasks claiming at once take turns, and the second
        // sees the first one's claim.
        let state: Option<String> =
            sqlx::query_scalar(&format!("SELECT state FROM jobs WHERE id = $1{ROW_LOCK}"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.error(op))?;
        let state = state.ok_or_else(|| self.not_found(id))?;
        if state == JobState::Done.as_str() {
            return Ok(FinishClaim::AlreadyDone);
        }
        let counts = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0) AS pending,
                    COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS failed
             FROM files WHERE job_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(self.error(op))?;
        let pending: i64 = counts.try_get("pending").map_err(self.error(op))?;
        let failed: i64 = counts.try_get("failed").map_err(self.error(op))?;
        if pending > 0 {
            return Ok(FinishClaim::NotYet {
                pending: unsigned(pending),
            });
        }
        let holder: Option<(String, String)> =
            sqlx::query_as("SELECT run, task FROM job_finishers WHERE job_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.error(op))?;
        if matches!(&holder, Some((r, t)) if r == run && t != task) {
            return Ok(FinishClaim::Taken);
        }
        sqlx::query(
            "INSERT INTO job_finishers (job_id, run, task, worker, claimed_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (job_id) DO UPDATE SET run = excluded.run, task = excluded.task,
                 worker = excluded.worker, claimed_at = excluded.claimed_at",
        )
        .bind(id)
        .bind(run)
        .bind(task)
        .bind(worker)
        .bind(unix_now())
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(FinishClaim::Yours {
            failed: unsigned(failed),
        })
    }
}
