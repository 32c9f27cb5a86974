//! Object writes on either engine: one write recorded in a transaction of the caller's, and the
//! group commit's batches (many write intents, or many finished writes with the next
//! group's intents, in one transaction: one WAL fsync for all of them).
//!
//! A batch is recorded with a fixed number of statements whatever its size (two reads, then
//! one multi-row statement per table), not five per write: each statement is a round trip
//! to the engine (on SQLite, to its connection's worker thread, two thread wake-ups), and
//! the group commit's catalog stage runs one batch at a time, so every statement of a batch
//! delays every write queued behind it (docs/BENCHMARKS.md, "session 18").
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use std::collections::{HashMap, HashSet};

use sqlx::QueryBuilder;

use super::{Engine, EngineConn, EngineDb, ROW_LOCK};
use crate::error::CatalogError;
use crate::input::to_signed;
use crate::tiering::{ObjectRecord, ObjectWrite, PlacedObject, Placement};
use crate::tiering_rows::select_placed;

/// Rows per multi-row statement (at most 7 parameters each: far below either engine's
/// limit on parameters).
const ROW_BATCH: usize = 500;

/// A write that passed its checks, with what its rows get.
struct Accepted<'a> {
    write: &'a ObjectWrite,
    size: i64,
    generation: i64,
    created_ms: i64,
    placed_ms: i64,
}

impl Engine {
    /// Records the write intents `(key, tier)` at `now_ms` in one transaction (an intent
    /// that exists already gets the new time).
    pub(crate) async fn record_intents(
        &self,
        intents: &[(String, String)],
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let op = "record write intents";
        let mut tx = self.begin_write(op).await?;
        self.record_intents_in(&mut tx, intents, now_ms, op).await?;
        tx.commit().await.map_err(self.error(op))
    }

    /// Records the write intents `(key, tier)` at `now_ms` in `conn`'s transaction, in
    /// multi-row statements (an intent named twice is recorded once).
    async fn record_intents_in(
        &self,
        conn: &mut EngineConn,
        intents: &[(String, String)],
        now_ms: i64,
        op: &'static str,
    ) -> Result<(), CatalogError> {
        // One row per (key, tier): an upsert may not touch a row twice (PostgreSQL).
        let mut seen = HashSet::new();
        let unique: Vec<&(String, String)> = intents
            .iter()
            .filter(|intent| seen.insert((intent.0.as_str(), intent.1.as_str())))
            .collect();
        for batch in unique.chunks(ROW_BATCH) {
            let mut insert =
                QueryBuilder::<EngineDb>::new("INSERT INTO write_intents (key, tier, started_ms) ");
            insert.push_values(batch, |mut row, (key, tier)| {
                row.push_bind(key.as_str())
                    .push_bind(tier.as_str())
                    .push_bind(now_ms);
            });
            insert.push(" ON CONFLICT (key, tier) DO UPDATE SET started_ms = excluded.started_ms");
            insert
                .build()
                .execute(&mut *conn)
                .await
                .map_err(self.error(op))?;
        }
        Ok(())
    }

    /// Records finished writes, then the write intents `next_intents` at `now_ms` (the
    /// next group's, none for a lone batch), in one transaction. A write refused by its
    /// checks ([`CatalogError::InvalidInput`], see `commit_write`) is that write's error
    /// and changes nothing; the others are recorded. Any other failure fails them all:
    /// nothing is recorded, the intents included.
    pub(crate) async fn record_writes(
        &self,
        writes: &[ObjectWrite],
        next_intents: &[(String, String)],
        now_ms: i64,
    ) -> Result<Vec<Result<PlacedObject, CatalogError>>, CatalogError> {
        let op = "record object writes";
        let mut tx = self.begin_write(op).await?;
        let mut keys = HashSet::new();
        let results = if writes.iter().all(|write| keys.insert(write.key.as_str())) {
            self.record_batch_in(&mut tx, writes, op).await?
        } else {
            // A key written twice in one batch: one after the other, each seeing the last.
            let mut results = Vec::with_capacity(writes.len());
            for write in writes {
                results.push(refused_or_fail(
                    self.record_write_in(&mut tx, write, op).await,
                )?);
            }
            results
        };
        self.record_intents_in(&mut tx, next_intents, now_ms, op)
            .await?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(results)
    }

    /// Records finished writes of distinct keys in `conn`'s transaction, as
    /// [`Engine::record_write_in`] would one after the other, in a fixed number of
    /// statements: the objects' current rows and the placements in the way read (locked)
    /// at once, each write checked, then every accepted write's object row, placement row
    /// and dropped intent in one statement per table. Results in the order of `writes`.
    async fn record_batch_in(
        &self,
        conn: &mut EngineConn,
        writes: &[ObjectWrite],
        op: &'static str,
    ) -> Result<Vec<Result<PlacedObject, CatalogError>>, CatalogError> {
        let mut checked = Vec::with_capacity(writes.len());
        for write in writes {
            checked.push(refused_or_fail(precheck(write))?);
        }
        let candidates: Vec<&ObjectWrite> = writes
            .iter()
            .zip(&checked)
            .filter(|(_, check)| check.is_ok())
            .map(|(write, _)| write)
            .collect();
        let existing = self.placed_of(conn, &candidates, op).await?;
        let new: Vec<&ObjectWrite> = candidates
            .iter()
            .filter(|write| !existing.contains_key(write.key.as_str()))
            .copied()
            .collect();
        let in_the_way = self.placements_of(conn, &new, op).await?;
        let mut results = Vec::with_capacity(writes.len());
        let mut accepted = Vec::new();
        for (write, check) in writes.iter().zip(checked) {
            let decided = check.and_then(|size| {
                let current = existing.get(write.key.as_str());
                let other = in_the_way.get(&(write.key.as_str(), write.tier.as_str()));
                accept(write, size, current, other)
            });
            match decided {
                Ok(row) => {
                    results.push(Ok(placed_of_accepted(&row)));
                    accepted.push(row);
                }
                Err(err) => results.push(Err(err)),
            }
        }
        self.write_accepted(conn, &accepted, op).await?;
        Ok(results)
    }

    /// The current rows (object and current placement) of `writes`' objects that have one,
    /// by key, locked until the transaction ends.
    async fn placed_of<'w>(
        &self,
        conn: &mut EngineConn,
        writes: &[&'w ObjectWrite],
        op: &'static str,
    ) -> Result<HashMap<&'w str, PlacedObject>, CatalogError> {
        let mut found = HashMap::new();
        for batch in writes.chunks(ROW_BATCH) {
            let mut select = QueryBuilder::<EngineDb>::new(select_placed!("WHERE o.key IN ("));
            let mut list = select.separated(", ");
            for write in batch {
                list.push_bind(write.key.as_str());
            }
            select.push(")");
            select.push(ROW_LOCK);
            let rows = select
                .build()
                .fetch_all(&mut *conn)
                .await
                .map_err(self.error(op))?;
            for row in &rows {
                let placed = self.placed_from_row(row)?;
                if let Some(write) = batch.iter().find(|w| w.key == placed.object.key) {
                    found.insert(write.key.as_str(), placed);
                }
            }
        }
        Ok(found)
    }

    /// The placements of `writes`' keys on their tiers, by (key, tier), locked until the
    /// transaction ends.
    async fn placements_of<'w>(
        &self,
        conn: &mut EngineConn,
        writes: &[&'w ObjectWrite],
        op: &'static str,
    ) -> Result<HashMap<(&'w str, &'w str), Placement>, CatalogError> {
        let mut found = HashMap::new();
        for batch in writes.chunks(ROW_BATCH) {
            let mut select = QueryBuilder::<EngineDb>::new(
                "SELECT key, tier, state, generation, job_id, placed_ms FROM placements WHERE ",
            );
            for (i, write) in batch.iter().enumerate() {
                select.push(if i == 0 { "(key = " } else { " OR (key = " });
                select.push_bind(write.key.as_str());
                select.push(" AND tier = ");
                select.push_bind(write.tier.as_str());
                select.push(")");
            }
            select.push(ROW_LOCK);
            let rows = select
                .build()
                .fetch_all(&mut *conn)
                .await
                .map_err(self.error(op))?;
            for row in &rows {
                let placement = self.placement_from_row(row)?;
                let write = batch
                    .iter()
                    .find(|w| w.key == placement.key && w.tier == placement.tier);
                if let Some(write) = write {
                    found.insert((write.key.as_str(), write.tier.as_str()), placement);
                }
            }
        }
        Ok(found)
    }

    /// Every accepted write's object row and current placement written, and its intent
    /// dropped: one multi-row statement per table.
    async fn write_accepted(
        &self,
        conn: &mut EngineConn,
        accepted: &[Accepted<'_>],
        op: &'static str,
    ) -> Result<(), CatalogError> {
        for batch in accepted.chunks(ROW_BATCH) {
            let mut objects = QueryBuilder::<EngineDb>::new(
                "INSERT INTO objects (key, size, hash, mtime_ms, generation, created_ms, \
                 chunk_hashes) ",
            );
            objects.push_values(batch, |mut row, a| {
                row.push_bind(a.write.key.as_str())
                    .push_bind(a.size)
                    .push_bind(a.write.hash.as_slice())
                    .push_bind(a.write.now_ms)
                    .push_bind(a.generation)
                    .push_bind(a.created_ms)
                    .push_bind(a.write.chunk_hashes.to_blob());
            });
            objects.push(
                " ON CONFLICT (key) DO UPDATE SET size = excluded.size, hash = excluded.hash, \
                 mtime_ms = excluded.mtime_ms, generation = excluded.generation, \
                 chunk_hashes = excluded.chunk_hashes",
            );
            let mut placements = QueryBuilder::<EngineDb>::new(
                "INSERT INTO placements (key, tier, state, generation, job_id, placed_ms) ",
            );
            placements.push_values(batch, |mut row, a| {
                row.push_bind(a.write.key.as_str())
                    .push_bind(a.write.tier.as_str())
                    .push("'current'")
                    .push_bind(a.generation)
                    .push("NULL")
                    .push_bind(a.placed_ms);
            });
            placements
                .push(" ON CONFLICT (key, tier) DO UPDATE SET generation = excluded.generation");
            let mut intents = QueryBuilder::<EngineDb>::new("DELETE FROM write_intents WHERE ");
            for (i, a) in batch.iter().enumerate() {
                intents.push(if i == 0 { "(key = " } else { " OR (key = " });
                intents.push_bind(a.write.key.as_str());
                intents.push(" AND tier = ");
                intents.push_bind(a.write.tier.as_str());
                intents.push(")");
            }
            for mut statement in [objects, placements, intents] {
                statement
                    .build()
                    .execute(&mut *conn)
                    .await
                    .map_err(self.error(op))?;
            }
        }
        Ok(())
    }

    /// Records one finished write in `conn`'s transaction (see `commit_write`). Its checks
    /// run before anything is written, so a refused write leaves the transaction as it was.
    pub(crate) async fn record_write_in(
        &self,
        conn: &mut EngineConn,
        write: &ObjectWrite,
        op: &'static str,
    ) -> Result<PlacedObject, CatalogError> {
        let size = precheck(write)?;
        let existing = self.placed_in(conn, &write.key, op).await?;
        let other = match existing {
            Some(_) => None,
            None => self.placement_in(conn, &write.key, &write.tier, op).await?,
        };
        let accepted = accept(write, size, existing.as_ref(), other.as_ref())?;
        self.write_accepted(conn, std::slice::from_ref(&accepted), op)
            .await?;
        Ok(placed_of_accepted(&accepted))
    }
}

/// A write's checks that need no row: its size fits the column, its chunk values merge
/// into its hash. Its size as stored, or why it is refused.
fn precheck(write: &ObjectWrite) -> Result<i64, CatalogError> {
    let size = to_signed(write.size, "object size")?;
    write
        .chunk_hashes
        .check(write.size, &write.hash)
        .map_err(|why| {
            CatalogError::InvalidInput(format!("chunk values of {:?}: {why}", write.key))
        })?;
    Ok(size)
}

/// A write refused by its checks is that write's result; any other error fails the batch.
fn refused_or_fail<T>(
    result: Result<T, CatalogError>,
) -> Result<Result<T, CatalogError>, CatalogError> {
    match result {
        Err(CatalogError::InvalidInput(why)) => Ok(Err(CatalogError::InvalidInput(why))),
        Err(err) => Err(err),
        Ok(value) => Ok(Ok(value)),
    }
}

/// A write checked against its object's current rows (`current`) or, for a new object,
/// the placement on its tier (`other`): refused as [`Engine::record_write_in`] refuses it,
/// else what its rows get.
fn accept<'a>(
    write: &'a ObjectWrite,
    size: i64,
    current: Option<&PlacedObject>,
    other: Option<&Placement>,
) -> Result<Accepted<'a>, CatalogError> {
    if let Some(current) = current {
        if current.tier != write.tier {
            return Err(CatalogError::InvalidInput(format!(
                "object {:?} is current on tier {:?}, not {:?}",
                write.key, current.tier, write.tier
            )));
        }
    } else if let Some(other) = other {
        return Err(CatalogError::InvalidInput(format!(
            "tier {:?} has a {} copy of {:?}; it must be cleaned up before a new write",
            write.tier, other.state, write.key
        )));
    }
    Ok(Accepted {
        write,
        size,
        generation: current.map_or(1, |placed| placed.object.generation + 1),
        created_ms: current.map_or(write.now_ms, |placed| placed.object.created_ms),
        placed_ms: current.map_or(write.now_ms, |placed| placed.placed_ms),
    })
}

/// The record an accepted write leaves.
fn placed_of_accepted(accepted: &Accepted<'_>) -> PlacedObject {
    let write = accepted.write;
    PlacedObject {
        object: ObjectRecord {
            key: write.key.clone(),
            size: write.size,
            hash: write.hash,
            mtime_ms: write.now_ms,
            generation: accepted.generation,
            created_ms: accepted.created_ms,
            chunk_hashes: Some(write.chunk_hashes.clone()),
        },
        tier: write.tier.clone(),
        placed_ms: accepted.placed_ms,
    }
}
