//! [`TieringCatalog`] on either engine. Written once for both engines and compiled for each
//! (see `README.md` here).
//!
//! Writes run in [`Engine::begin_write`] transactions. Inside one, the rows a write depends
//! on (the move job, the object and its placements) are read with [`ROW_LOCK`], so on
//! PostgreSQL a concurrent writer of the same object waits and then sees the committed
//! result (SQLite's file lock serialises writers whole); reads outside writes take no
//! lock. Stored values are checked on the way out ([`crate::tiering_rows`]).

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::error::ErrorKind;
use sqlx::{FromRow, QueryBuilder, Row, Transaction};

use super::{Engine, EngineConn, EngineDb, EngineRow, ROW_LOCK};
use crate::error::CatalogError;
use crate::input::to_signed;
use crate::lifecycle::{JobKind, JobState};
use crate::rows::RowReader;
use crate::tiering::{
    AccessFlush, ChunkHashes, CopyStart, CreatedMove, DecisionRecord, HistoryBucket, MoveFilter,
    MoveId, MoveJob, MoveSpec, ObjectWrite, PlacedObject, Placement, PlacementState, RetriedMove,
    StreamOffset, SwitchOutcome, TieringCatalog, WriteIntent,
};
use crate::tiering_rows::{
    select_moves, select_placed, RawMove, RawPlaced, RawPlacement, TieringRowReader, ACTIVE_STATES,
};

/// Rows per multi-row statement (at most 4 parameters each).
const ROW_BATCH: usize = 1000;

impl Engine {
    /// Upserts statistics rows and removes the rows of `removed` inside `tx`.
    pub(super) async fn write_access_stats(
        &self,
        tx: &mut Transaction<'static, EngineDb>,
        upserts: &[(&str, &str)],
        removed: &[&str],
        now_ms: i64,
        op: &'static str,
    ) -> Result<(), CatalogError> {
        for batch in upserts.chunks(ROW_BATCH) {
            let mut insert = QueryBuilder::<EngineDb>::new(
                "INSERT INTO access_stats (key, stats_json, updated_ms) ",
            );
            insert.push_values(batch, |mut row, (key, json)| {
                row.push_bind(*key).push_bind(*json).push_bind(now_ms);
            });
            insert.push(
                " ON CONFLICT (key) DO UPDATE SET stats_json = excluded.stats_json, \
                 updated_ms = excluded.updated_ms",
            );
            insert
                .build()
                .execute(&mut **tx)
                .await
                .map_err(self.error(op))?;
        }
        for batch in removed.chunks(ROW_BATCH) {
            let mut delete =
                QueryBuilder::<EngineDb>::new("DELETE FROM access_stats WHERE key IN (");
            let mut list = delete.separated(", ");
            for key in batch {
                list.push_bind(*key);
            }
            delete.push(")");
            delete
                .build()
                .execute(&mut **tx)
                .await
                .map_err(self.error(op))?;
        }
        Ok(())
    }

    pub(super) fn placed_from_row(&self, row: &EngineRow) -> Result<PlacedObject, CatalogError> {
        self.placed_record(RawPlaced::from_row(row).map_err(self.error("read objects"))?)
    }

    pub(super) fn placement_from_row(&self, row: &EngineRow) -> Result<Placement, CatalogError> {
        self.placement_record(RawPlacement::from_row(row).map_err(self.error("read placements"))?)
    }

    fn move_from_row(&self, row: &EngineRow) -> Result<MoveJob, CatalogError> {
        self.move_record(RawMove::from_row(row).map_err(self.error("read move jobs"))?)
    }

    /// The move job `id`, locked until the transaction ends.
    async fn move_in(
        &self,
        conn: &mut EngineConn,
        id: MoveId,
        op: &'static str,
    ) -> Result<Option<MoveJob>, CatalogError> {
        let sql = format!("{}{ROW_LOCK}", select_moves!("WHERE id = $1"));
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.error(op))?;
        row.map(|row| self.move_from_row(&row)).transpose()
    }

    async fn move_required(
        &self,
        conn: &mut EngineConn,
        id: MoveId,
        op: &'static str,
    ) -> Result<MoveJob, CatalogError> {
        self.move_in(conn, id, op)
            .await?
            .ok_or_else(|| CatalogError::InvalidInput(format!("there is no move job {id}")))
    }

    /// The object `key` with its current placement, both locked until the transaction
    /// ends.
    pub(super) async fn placed_in(
        &self,
        conn: &mut EngineConn,
        key: &str,
        op: &'static str,
    ) -> Result<Option<PlacedObject>, CatalogError> {
        let sql = format!("{}{ROW_LOCK}", select_placed!("WHERE o.key = $1"));
        let row = sqlx::query(&sql)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.error(op))?;
        row.map(|row| self.placed_from_row(&row)).transpose()
    }

    /// The placement of `key` on `tier`, locked until the transaction ends.
    pub(super) async fn placement_in(
        &self,
        conn: &mut EngineConn,
        key: &str,
        tier: &str,
        op: &'static str,
    ) -> Result<Option<Placement>, CatalogError> {
        let row = sqlx::query(&format!(
            "SELECT key, tier, state, generation, job_id, placed_ms FROM placements
             WHERE key = $1 AND tier = $2{ROW_LOCK}"
        ))
        .bind(key)
        .bind(tier)
        .fetch_optional(&mut *conn)
        .await
        .map_err(self.error(op))?;
        row.map(|row| self.placement_from_row(&row)).transpose()
    }

    /// Writes a move's new state, refusing a transition the job state machine does not
    /// allow from `job`'s state (read in the same transaction).
    async fn set_state_in(
        &self,
        conn: &mut EngineConn,
        job: &MoveJob,
        state: JobState,
        last_error: Option<&str>,
        now_ms: i64,
        op: &'static str,
    ) -> Result<(), CatalogError> {
        let id = job.id;
        if !JobKind::Move.allows(job.state, state) {
            return Err(CatalogError::IllegalTransition {
                kind: JobKind::Move,
                id,
                from: job.state,
                to: state,
            });
        }
        let finished = (!state.is_active()).then_some(now_ms);
        sqlx::query(
            "UPDATE move_jobs SET state = $1, last_error = $2, updated_ms = $3, finished_ms = $4
             WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(last_error)
        .bind(now_ms)
        .bind(finished)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(self.error(op))?;
        Ok(())
    }

    async fn active_move_of(
        &self,
        conn: &mut EngineConn,
        key: &str,
        op: &'static str,
    ) -> Result<Option<MoveJob>, CatalogError> {
        let query = format!(
            "{} WHERE key = $1 AND state IN {}{ROW_LOCK}",
            select_moves!(""),
            *ACTIVE_STATES
        );
        let row = sqlx::query(&query)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.error(op))?;
        row.map(|row| self.move_from_row(&row)).transpose()
    }
}

#[async_trait]
impl TieringCatalog for Engine {
    async fn placed_objects(&self) -> Result<Vec<PlacedObject>, CatalogError> {
        let op = "read objects";
        let mut conn = self.pool.acquire().await.map_err(self.error(op))?;
        let mut rows = sqlx::query(select_placed!("ORDER BY o.key")).fetch(&mut *conn);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(self.error(op))? {
            out.push(self.placed_from_row(&row)?);
        }
        Ok(out)
    }

    async fn placed_object(&self, key: &str) -> Result<Option<PlacedObject>, CatalogError> {
        // A read alone takes no lock (`placed_in` locks for the writes that use it).
        let row = sqlx::query(select_placed!("WHERE o.key = $1"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.error("read objects"))?;
        row.map(|row| self.placed_from_row(&row)).transpose()
    }

    async fn placements(&self, key: &str) -> Result<Vec<Placement>, CatalogError> {
        let op = "read placements";
        let rows = sqlx::query(
            "SELECT key, tier, state, generation, job_id, placed_ms FROM placements
             WHERE key = $1 ORDER BY tier",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(self.error(op))?;
        rows.iter()
            .map(|row| self.placement_from_row(row))
            .collect()
    }

    async fn placements_in_flight(&self) -> Result<Vec<Placement>, CatalogError> {
        let op = "read placements";
        let rows = sqlx::query(
            "SELECT key, tier, state, generation, job_id, placed_ms FROM placements
             WHERE state <> 'current' ORDER BY key, tier",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.error(op))?;
        rows.iter()
            .map(|row| self.placement_from_row(row))
            .collect()
    }

    async fn begin_write(&self, key: &str, tier: &str, now_ms: i64) -> Result<(), CatalogError> {
        self.begin_writes(&[(key.to_string(), tier.to_string())], now_ms)
            .await
    }

    async fn commit_write(&self, write: &ObjectWrite) -> Result<PlacedObject, CatalogError> {
        let op = "record object write";
        let mut tx = self.begin_write(op).await?;
        let placed = self.record_write_in(&mut tx, write, op).await?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(placed)
    }

    async fn begin_writes(
        &self,
        intents: &[(String, String)],
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        self.record_intents(intents, now_ms).await
    }

    async fn commit_writes(
        &self,
        writes: &[ObjectWrite],
    ) -> Result<Vec<Result<PlacedObject, CatalogError>>, CatalogError> {
        self.record_writes(writes, &[], 0).await
    }

    async fn commit_writes_and_begin(
        &self,
        writes: &[ObjectWrite],
        next_intents: &[(String, String)],
        now_ms: i64,
    ) -> Result<Vec<Result<PlacedObject, CatalogError>>, CatalogError> {
        self.record_writes(writes, next_intents, now_ms).await
    }

    async fn set_chunk_hashes(
        &self,
        key: &str,
        generation: i64,
        chunk_hashes: &ChunkHashes,
    ) -> Result<bool, CatalogError> {
        self.record_chunk_hashes(key, generation, chunk_hashes)
            .await
    }

    async fn abandon_write(&self, key: &str, tier: &str) -> Result<(), CatalogError> {
        sqlx::query("DELETE FROM write_intents WHERE key = $1 AND tier = $2")
            .bind(key)
            .bind(tier)
            .execute(&self.pool)
            .await
            .map_err(self.error("drop write intent"))?;
        Ok(())
    }

    async fn write_intents(&self) -> Result<Vec<WriteIntent>, CatalogError> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT key, tier, started_ms FROM write_intents ORDER BY key, tier")
                .fetch_all(&self.pool)
                .await
                .map_err(self.error("read write intents"))?;
        Ok(rows
            .into_iter()
            .map(|(key, tier, started_ms)| WriteIntent {
                key,
                tier,
                started_ms,
            })
            .collect())
    }

    async fn delete_object(
        &self,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<Placement>>, CatalogError> {
        let op = "delete object";
        let mut tx = self.begin_write(op).await?;
        // The object's unfinished moves are locked first, in the order the move steps
        // take their locks (move, then object), so a delete racing a move step waits
        // instead of deadlocking with it.
        let lock_moves = format!(
            "SELECT id FROM move_jobs WHERE key = $1 AND state IN {}{ROW_LOCK}",
            *ACTIVE_STATES
        );
        sqlx::query(&lock_moves)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        let deleted = sqlx::query("DELETE FROM objects WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        if deleted.rows_affected() == 0 {
            return Ok(None);
        }
        let query = format!(
            "UPDATE move_jobs SET state = 'cancelled', updated_ms = $1, finished_ms = $2,
                 last_error = 'object_deleted: the object was deleted during its move'
             WHERE key = $3 AND state IN {}",
            *ACTIVE_STATES
        );
        sqlx::query(&query)
            .bind(now_ms)
            .bind(now_ms)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        let rows = sqlx::query(
            "UPDATE placements SET state = 'retiring', placed_ms = $1 WHERE key = $2
             RETURNING key, tier, state, generation, job_id, placed_ms",
        )
        .bind(now_ms)
        .bind(key)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.error(op))?;
        let placements = rows
            .iter()
            .map(|row| self.placement_from_row(row))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(Some(placements))
    }

    async fn remove_placement(
        &self,
        key: &str,
        tier: &str,
        state: PlacementState,
    ) -> Result<bool, CatalogError> {
        let removed =
            sqlx::query("DELETE FROM placements WHERE key = $1 AND tier = $2 AND state = $3")
                .bind(key)
                .bind(tier)
                .bind(state.as_str())
                .execute(&self.pool)
                .await
                .map_err(self.error("remove placement"))?;
        Ok(removed.rows_affected() > 0)
    }

    async fn save_access_stats(
        &self,
        upserts: &[(&str, &str)],
        removed: &[&str],
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let op = "save access statistics";
        if upserts.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write(op).await?;
        self.write_access_stats(&mut tx, upserts, removed, now_ms, op)
            .await?;
        tx.commit().await.map_err(self.error(op))
    }

    async fn save_access_flush(
        &self,
        flush: &AccessFlush<'_>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        self.save_flush(flush, now_ms).await
    }

    async fn stream_offsets(&self, source: &str) -> Result<Vec<StreamOffset>, CatalogError> {
        self.offsets_of(source).await
    }

    async fn access_stats(&self) -> Result<Vec<(String, String)>, CatalogError> {
        sqlx::query_as("SELECT key, stats_json FROM access_stats ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .map_err(self.error("read access statistics"))
    }

    async fn add_access_history(&self, buckets: &[HistoryBucket]) -> Result<(), CatalogError> {
        self.history_add(buckets).await
    }

    async fn access_history(
        &self,
        since_ms: i64,
        key: Option<&str>,
    ) -> Result<Vec<HistoryBucket>, CatalogError> {
        self.history_since(since_ms, key).await
    }

    async fn prune_access_history(&self, before_ms: i64) -> Result<u64, CatalogError> {
        self.history_prune(before_ms).await
    }

    async fn create_move(&self, spec: &MoveSpec, now_ms: i64) -> Result<CreatedMove, CatalogError> {
        let op = "create move job";
        let size = to_signed(spec.size, "move size")?;
        if serde_json::from_str::<serde_json::Value>(&spec.inputs_json).is_err() {
            return Err(CatalogError::InvalidInput(
                "move inputs are not JSON".to_string(),
            ));
        }
        let after = serde_json::to_string(&spec.after).unwrap_or_else(|_| "[]".to_string());
        let mut tx = self.begin_write(op).await?;
        // Planners on several nodes may plan the same move at once: one at a time per
        // object (until the commit), so the second finds the first's job.
        self.lock_key_until_commit(&mut tx, &spec.key, op).await?;
        let existing = sqlx::query(select_moves!("WHERE idempotency_key = $1"))
            .bind(&spec.idempotency_key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.error(op))?;
        if let Some(row) = existing {
            return Ok(CreatedMove::Existing(self.move_from_row(&row)?));
        }
        if let Some(active) = self.active_move_of(&mut tx, &spec.key, op).await? {
            return Ok(CreatedMove::ObjectBusy(active));
        }
        let inserted = sqlx::query(
            "INSERT INTO move_jobs (idempotency_key, key, from_tier, to_tier, generation, size,
                 state, reason, explanation, inputs_json, after_json, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(&spec.idempotency_key)
        .bind(&spec.key)
        .bind(&spec.from_tier)
        .bind(&spec.to_tier)
        .bind(spec.generation)
        .bind(size)
        .bind(&spec.reason)
        .bind(&spec.explanation)
        .bind(&spec.inputs_json)
        .bind(&after)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0).map_err(self.error(op))?,
            Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation => {
                return Err(CatalogError::InvalidInput(format!(
                    "move of {:?} conflicts with another job",
                    spec.key
                )))
            }
            Err(err) => return Err(self.error(op)(err)),
        };
        let job = self.move_required(&mut tx, id, op).await?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(CreatedMove::Created(job))
    }

    async fn move_job(&self, id: MoveId) -> Result<Option<MoveJob>, CatalogError> {
        // A read alone takes no lock (`move_in` locks for the writes that use it).
        let row = sqlx::query(select_moves!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.error("read move jobs"))?;
        row.map(|row| self.move_from_row(&row)).transpose()
    }

    async fn move_jobs(&self, filter: &MoveFilter) -> Result<Vec<MoveJob>, CatalogError> {
        let op = "read move jobs";
        let mut query = QueryBuilder::<EngineDb>::new(select_moves!("WHERE 1 = 1"));
        if let Some(state) = filter.state {
            query.push(" AND state = ").push_bind(state.as_str());
        }
        if filter.active_only {
            query.push(" AND state IN ").push(&*ACTIVE_STATES);
        }
        if let Some(key) = &filter.key {
            query.push(" AND key = ").push_bind(key.clone());
        }
        query.push(" ORDER BY id DESC");
        if let Some(limit) = filter.limit {
            query.push(" LIMIT ").push_bind(i64::from(limit));
        }
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(self.error(op))?;
        rows.iter().map(|row| self.move_from_row(row)).collect()
    }

    async fn move_counts(&self) -> Result<Vec<(JobState, u64)>, CatalogError> {
        let op = "count move jobs";
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM move_jobs GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await
                .map_err(self.error(op))?;
        rows.into_iter()
            .map(|(state, count)| {
                let state = JobKind::Move
                    .parse_state(&state)
                    .map_err(|err| self.invalid_data(format!("{err}")))?;
                Ok((state, self.unsigned(count, "job count")?))
            })
            .collect()
    }

    async fn start_copy(&self, id: MoveId, now_ms: i64) -> Result<CopyStart, CatalogError> {
        let op = "start move copy";
        let mut tx = self.begin_write(op).await?;
        let job = self.move_required(&mut tx, id, op).await?;
        if !JobKind::Move.allows(job.state, JobState::Copying) {
            return Ok(CopyStart::NotStartable(job.state));
        }
        let Some(placed) = self.placed_in(&mut tx, &job.key, op).await? else {
            return Ok(CopyStart::ObjectGone);
        };
        if placed.object.generation != job.generation {
            return Ok(CopyStart::ObjectChanged(placed.object.generation));
        }
        if placed.tier != job.from_tier {
            return Ok(CopyStart::Moved(placed.tier));
        }
        match self
            .placement_in(&mut tx, &job.key, &job.to_tier, op)
            .await?
        {
            None => {
                sqlx::query(
                    "INSERT INTO placements (key, tier, state, generation, job_id, placed_ms)
                     VALUES ($1, $2, 'copying', $3, $4, $5)",
                )
                .bind(&job.key)
                .bind(&job.to_tier)
                .bind(job.generation)
                .bind(id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
            }
            Some(p) if p.state == PlacementState::Copying && p.job_id == Some(id) => {}
            Some(p) => {
                return Err(CatalogError::InvalidInput(format!(
                    "tier {:?} already has a {} copy of {:?} (job {:?}); clean it up first",
                    p.tier, p.state, p.key, p.job_id
                )))
            }
        }
        sqlx::query(
            "UPDATE move_jobs SET state = 'copying', attempts = attempts + 1, last_error = NULL,
                 updated_ms = $1 WHERE id = $2",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        let job = self.move_required(&mut tx, id, op).await?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(CopyStart::Started(Box::new(job)))
    }

    async fn set_move_state(
        &self,
        id: MoveId,
        state: JobState,
        last_error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let op = "set move state";
        let mut tx = self.begin_write(op).await?;
        let job = self.move_required(&mut tx, id, op).await?;
        self.set_state_in(&mut tx, &job, state, last_error, now_ms, op)
            .await?;
        tx.commit().await.map_err(self.error(op))
    }

    async fn switch_placement(
        &self,
        id: MoveId,
        now_ms: i64,
    ) -> Result<SwitchOutcome, CatalogError> {
        let op = "switch placement";
        let mut tx = self.begin_write(op).await?;
        let job = self.move_required(&mut tx, id, op).await?;
        let Some(placed) = self.placed_in(&mut tx, &job.key, op).await? else {
            return Ok(SwitchOutcome::ObjectGone);
        };
        if placed.object.generation != job.generation {
            return Ok(SwitchOutcome::ObjectChanged(placed.object.generation));
        }
        if placed.tier != job.from_tier {
            return Ok(SwitchOutcome::Inconsistent(format!(
                "the object is current on {:?}, not on the job's source {:?}",
                placed.tier, job.from_tier
            )));
        }
        match self
            .placement_in(&mut tx, &job.key, &job.to_tier, op)
            .await?
        {
            Some(p) if p.state == PlacementState::Copying && p.job_id == Some(id) => {}
            other => {
                return Ok(SwitchOutcome::Inconsistent(format!(
                    "the job's copy on {:?} is not recorded as copying ({other:?})",
                    job.to_tier
                )))
            }
        }
        // The old copy first: the unique index allows one current placement per key.
        sqlx::query(
            "UPDATE placements SET state = 'retiring', job_id = $1, placed_ms = $2
             WHERE key = $3 AND tier = $4",
        )
        .bind(id)
        .bind(now_ms)
        .bind(&job.key)
        .bind(&job.from_tier)
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        sqlx::query(
            "UPDATE placements SET state = 'current', placed_ms = $1 WHERE key = $2 AND tier = $3",
        )
        .bind(now_ms)
        .bind(&job.key)
        .bind(&job.to_tier)
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        self.set_state_in(&mut tx, &job, JobState::Retiring, None, now_ms, op)
            .await?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(SwitchOutcome::Switched)
    }

    async fn finish_move(&self, id: MoveId, now_ms: i64) -> Result<(), CatalogError> {
        let op = "finish move";
        let mut tx = self.begin_write(op).await?;
        let job = self.move_required(&mut tx, id, op).await?;
        sqlx::query(
            "DELETE FROM placements WHERE key = $1 AND tier = $2 AND state = 'retiring'
                 AND job_id = $3",
        )
        .bind(&job.key)
        .bind(&job.from_tier)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        self.set_state_in(&mut tx, &job, JobState::Done, None, now_ms, op)
            .await?;
        tx.commit().await.map_err(self.error(op))
    }

    async fn end_move(
        &self,
        id: MoveId,
        state: JobState,
        last_error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let op = "end move";
        if !matches!(
            state,
            JobState::Planned | JobState::Failed | JobState::Cancelled | JobState::Skipped
        ) {
            return Err(CatalogError::InvalidInput(format!(
                "a move that did not switch cannot end {state}"
            )));
        }
        let mut tx = self.begin_write(op).await?;
        let job = self.move_required(&mut tx, id, op).await?;
        sqlx::query(
            "DELETE FROM placements WHERE key = $1 AND tier = $2 AND state = 'copying'
                 AND job_id = $3",
        )
        .bind(&job.key)
        .bind(&job.to_tier)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        self.set_state_in(&mut tx, &job, state, last_error, now_ms, op)
            .await?;
        tx.commit().await.map_err(self.error(op))
    }

    async fn retry_move(&self, id: MoveId, now_ms: i64) -> Result<RetriedMove, CatalogError> {
        let op = "retry move";
        let mut tx = self.begin_write(op).await?;
        let job = self.move_required(&mut tx, id, op).await?;
        // Only a move that ended runs again, as a new attempt.
        if job.state.is_active() || !JobKind::Move.allows(job.state, JobState::Planned) {
            return Ok(RetriedMove::NotRetryable(job.state));
        }
        if let Some(active) = self.active_move_of(&mut tx, &job.key, op).await? {
            return Ok(RetriedMove::ObjectBusy(active.id));
        }
        sqlx::query(
            "UPDATE move_jobs SET state = 'planned', updated_ms = $1, finished_ms = NULL
             WHERE id = $2",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?;
        let job = self.move_required(&mut tx, id, op).await?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(RetriedMove::Retried(Box::new(job)))
    }

    async fn record_decisions(&self, decisions: &[DecisionRecord]) -> Result<(), CatalogError> {
        let op = "record decisions";
        if decisions.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write(op).await?;
        for batch in decisions.chunks(ROW_BATCH / 2) {
            let mut insert = QueryBuilder::<EngineDb>::new(
                "INSERT INTO decisions (key, ts_ms, class, reason, action, explanation, \
                 inputs_json, job_id) ",
            );
            insert.push_values(batch, |mut row, d| {
                row.push_bind(d.key.as_str())
                    .push_bind(d.ts_ms)
                    .push_bind(d.class.as_str())
                    .push_bind(d.reason.as_str())
                    .push_bind(d.action.as_str())
                    .push_bind(d.explanation.as_str())
                    .push_bind(d.inputs_json.as_str())
                    .push_bind(d.job_id);
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(self.error(op))?;
        }
        tx.commit().await.map_err(self.error(op))
    }

    async fn decisions(&self, key: &str, limit: u32) -> Result<Vec<DecisionRecord>, CatalogError> {
        let rows: Vec<(
            String,
            i64,
            String,
            String,
            String,
            String,
            String,
            Option<i64>,
        )> = sqlx::query_as(
            "SELECT key, ts_ms, class, reason, action, explanation, inputs_json, job_id
                 FROM decisions WHERE key = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(key)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.error("read decisions"))?;
        Ok(rows
            .into_iter()
            .map(
                |(key, ts_ms, class, reason, action, explanation, inputs_json, job_id)| {
                    DecisionRecord {
                        key,
                        ts_ms,
                        class,
                        reason,
                        action,
                        explanation,
                        inputs_json,
                        job_id,
                    }
                },
            )
            .collect())
    }

    async fn prune_decisions(&self, keep: u32) -> Result<u64, CatalogError> {
        let op = "prune decisions";
        let mut tx = self.begin_write(op).await?;
        let gone = sqlx::query("DELETE FROM decisions WHERE key NOT IN (SELECT key FROM objects)")
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?
            .rows_affected();
        // Keep the newest `keep` per key: a row goes when `keep` newer rows of its key exist.
        let old = sqlx::query(
            "DELETE FROM decisions WHERE id IN (
                 SELECT d.id FROM decisions d
                 WHERE (SELECT COUNT(*) FROM decisions n WHERE n.key = d.key AND n.id > d.id) >= $1)",
        )
        .bind(i64::from(keep))
        .execute(&mut *tx)
        .await
        .map_err(self.error(op))?
        .rows_affected();
        tx.commit().await.map_err(self.error(op))?;
        Ok(gone + old)
    }
}
