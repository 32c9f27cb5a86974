//! Integrity of a PostgreSQL catalog: the full check behind `strata catalog check` (the
//! import of a rebuilt job is shared: `portable/import.rs`). No back-fill: a PostgreSQL
//! catalog never had rows without checksums (see `migrations/postgres/0003`).

use super::PostgresCatalog;
use crate::error::CatalogError;
use crate::integrity::{CheckReport, Findings};
use crate::rows::{select_chunks, select_files, select_jobs, RawChunk, RawFile, RawJob};

impl PostgresCatalog {
    /// Checks the checksum of every row of the migration tables, in one read-only
    /// snapshot (repeatable read: rows written meanwhile by other processes are not half
    /// seen). Damage is reported, not returned as an error; an error means the check
    /// itself could not run. The pages and indexes are PostgreSQL's to check (data
    /// checksums, `amcheck`): [`CheckReport::integrity`] lists only tables that could
    /// not be read to the end.
    pub async fn check(&self) -> Result<CheckReport, CatalogError> {
        let op = "check integrity";
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(self.error(op))?;
        let mut findings = Findings::default();
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
        Ok(findings.report(self.shown.clone(), false, [jobs, files, chunks]))
    }
}
