//! Integrity of an SQLite catalog: the one-time back-fill of row checksums when migration
//! 0003 is applied, and the full check behind `strata catalog check` (the import of a
//! rebuilt job is shared: `portable/import.rs`).

use std::path::Path;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::db_error;
use super::SqliteCatalog;
use crate::error::CatalogError;
use crate::input::{CHUNK_BATCH, FILE_BATCH};
use crate::integrity::{chunk_checksum, CheckReport, Findings};
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
}
