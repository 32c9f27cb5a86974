//! [`crate::Catalog::claim_file_finish`] on either engine (migration `0010`): which range
//! task of a file split across distributed workers finishes it. The file's row is locked
//! while the claim is decided (`ROW_LOCK`), so two tasks that verify the file's last
//! chunks at once take turns and the second sees the first one's claim.
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use sqlx::Row;

use super::{Engine, ROW_LOCK};
use crate::error::CatalogError;
use crate::input::{unix_now, unsigned};
use crate::model::JobId;
use crate::rows::RowReader;
use crate::workers::FileFinishClaim;

impl Engine {
    pub(crate) async fn claim_file(
        &self,
        id: JobId,
        file_index: u32,
        run: &str,
        task: &str,
        worker: &str,
    ) -> Result<FileFinishClaim, CatalogError> {
        let op = "claim file finish";
        let mut tx = self.begin_write(op).await?;
        let chunk_size: Option<i64> =
            sqlx::query_scalar("SELECT chunk_size FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.error(op))?;
        let chunk_size = unsigned::<u64>(chunk_size.ok_or_else(|| self.not_found(id))?).max(1);
        let file = sqlx::query(&format!(
            "SELECT state, size FROM files WHERE job_id = $1 AND file_index = $2{ROW_LOCK}"
        ))
        .bind(id)
        .bind(i64::from(file_index))
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.error(op))?
        .ok_or(CatalogError::UnknownFile {
            id,
            index: file_index,
        })?;
        let state: String = file.try_get("state").map_err(self.error(op))?;
        if state != "pending" {
            return Ok(FileFinishClaim::AlreadyFinished);
        }
        let size: u64 = unsigned(file.try_get("size").map_err(self.error(op))?);
        // As the mover's chunk layout counts them: an empty file is one (empty) chunk.
        let chunks = size.div_ceil(chunk_size).max(1);
        let verified: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM verified_chunks
             WHERE job_id = $1 AND file_index = $2 AND chunk_index < $3",
        )
        .bind(id)
        .bind(i64::from(file_index))
        .bind(i64::try_from(chunks).unwrap_or(i64::MAX))
        .fetch_one(&mut *tx)
        .await
        .map_err(self.error(op))?;
        let missing = chunks.saturating_sub(unsigned(verified));
        if missing > 0 {
            return Ok(FileFinishClaim::NotYet { missing });
        }
        let holder: Option<(String, String)> = sqlx::query_as(
            "SELECT run, task FROM file_finishers WHERE job_id = $1 AND file_index = $2",
        )
        .bind(id)
        .bind(i64::from(file_index))
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.error(op))?;
        if matches!(&holder, Some((r, t)) if r == run && t != task) {
            return Ok(FileFinishClaim::Taken);
        }
        sqlx::query(
            "INSERT INTO file_finishers (job_id, file_index, run, task, worker, claimed_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (job_id, file_index) DO UPDATE SET run = excluded.run,
                 task = excluded.task, worker = excluded.worker,
                 claimed_at = excluded.claimed_at",
        )
        .bind(id)
        .bind(i64::from(file_index))
        .bind(run)
        .bind(task)
        .bind(worker)
        .bind(unix_now())
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(FileFinishClaim::Yours)
    }
}
