//! Object writes on either engine: one write recorded in a transaction of the caller's, and the
//! group commit's batches (many write intents, or many finished writes with the next
//! group's intents, in one transaction: one WAL fsync for all of them).
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use super::{Engine, EngineConn};
use crate::error::CatalogError;
use crate::input::to_signed;
use crate::tiering::{ObjectRecord, ObjectWrite, PlacedObject};

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

    /// Records the write intents `(key, tier)` at `now_ms` in `conn`'s transaction.
    async fn record_intents_in(
        &self,
        conn: &mut EngineConn,
        intents: &[(String, String)],
        now_ms: i64,
        op: &'static str,
    ) -> Result<(), CatalogError> {
        for (key, tier) in intents {
            sqlx::query(
                "INSERT INTO write_intents (key, tier, started_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (key, tier) DO UPDATE SET started_ms = excluded.started_ms",
            )
            .bind(key)
            .bind(tier)
            .bind(now_ms)
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
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            match self.record_write_in(&mut tx, write, op).await {
                Err(CatalogError::InvalidInput(why)) => {
                    results.push(Err(CatalogError::InvalidInput(why)))
                }
                Err(err) => return Err(err),
                Ok(placed) => results.push(Ok(placed)),
            }
        }
        self.record_intents_in(&mut tx, next_intents, now_ms, op)
            .await?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(results)
    }

    /// Records one finished write in `conn`'s transaction (see `commit_write`). Its checks
    /// run before anything is written, so a refused write leaves the transaction as it was.
    pub(crate) async fn record_write_in(
        &self,
        conn: &mut EngineConn,
        write: &ObjectWrite,
        op: &'static str,
    ) -> Result<PlacedObject, CatalogError> {
        let size = to_signed(write.size, "object size")?;
        write
            .chunk_hashes
            .check(write.size, &write.hash)
            .map_err(|why| {
                CatalogError::InvalidInput(format!("chunk values of {:?}: {why}", write.key))
            })?;
        let existing = self.placed_in(conn, &write.key, op).await?;
        if let Some(existing) = &existing {
            if existing.tier != write.tier {
                return Err(CatalogError::InvalidInput(format!(
                    "object {:?} is current on tier {:?}, not {:?}",
                    write.key, existing.tier, write.tier
                )));
            }
        } else if let Some(other) = self.placement_in(conn, &write.key, &write.tier, op).await? {
            return Err(CatalogError::InvalidInput(format!(
                "tier {:?} has a {} copy of {:?}; it must be cleaned up before a new write",
                write.tier, other.state, write.key
            )));
        }
        let generation = existing
            .as_ref()
            .map_or(1, |placed| placed.object.generation + 1);
        let created_ms = existing
            .as_ref()
            .map_or(write.now_ms, |placed| placed.object.created_ms);
        sqlx::query(
            "INSERT INTO objects (key, size, hash, mtime_ms, generation, created_ms, chunk_hashes)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (key) DO UPDATE SET size = excluded.size, hash = excluded.hash,
                 mtime_ms = excluded.mtime_ms, generation = excluded.generation,
                 chunk_hashes = excluded.chunk_hashes",
        )
        .bind(&write.key)
        .bind(size)
        .bind(write.hash.as_slice())
        .bind(write.now_ms)
        .bind(generation)
        .bind(created_ms)
        .bind(write.chunk_hashes.to_blob())
        .execute(&mut *conn)
        .await
        .map_err(self.error(op))?;
        let placed_ms = existing
            .as_ref()
            .map_or(write.now_ms, |placed| placed.placed_ms);
        sqlx::query(
            "INSERT INTO placements (key, tier, state, generation, job_id, placed_ms)
             VALUES ($1, $2, 'current', $3, NULL, $4)
             ON CONFLICT (key, tier) DO UPDATE SET generation = excluded.generation",
        )
        .bind(&write.key)
        .bind(&write.tier)
        .bind(generation)
        .bind(placed_ms)
        .execute(&mut *conn)
        .await
        .map_err(self.error(op))?;
        sqlx::query("DELETE FROM write_intents WHERE key = $1 AND tier = $2")
            .bind(&write.key)
            .bind(&write.tier)
            .execute(&mut *conn)
            .await
            .map_err(self.error(op))?;
        Ok(PlacedObject {
            object: ObjectRecord {
                key: write.key.clone(),
                size: write.size,
                hash: write.hash,
                mtime_ms: write.now_ms,
                generation,
                created_ms,
                chunk_hashes: Some(write.chunk_hashes.clone()),
            },
            tier: write.tier.clone(),
            placed_ms,
        })
    }
}
