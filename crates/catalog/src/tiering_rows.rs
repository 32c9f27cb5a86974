//! Reading the tiering tables' rows, the same on every engine: the `SELECT`s
//! ([`select_moves`], [`select_placed`]), the unfinished states as SQL
//! ([`ACTIVE_STATES`]), the rows as stored ([`RawPlaced`], [`RawPlacement`], [`RawMove`],
//! read from either engine's rows by their derived `FromRow`), and their checks and
//! conversion ([`TieringRowReader`], for every [`RowReader`]).

use std::sync::LazyLock;

use crate::error::CatalogError;
use crate::lifecycle::{JobKind, JobState};
use crate::rows::{row_struct, RowReader};
use crate::tiering::{ChunkHashes, MoveId, MoveJob, ObjectRecord, PlacedObject, Placement};

/// The unfinished states as an SQL list, `('planned', ...)`, derived from
/// [`JobState::is_active`] (the partial index `move_jobs_one_active` of migration 0002
/// lists the same; a test keeps them in step).
pub(crate) static ACTIVE_STATES: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<String> = JobState::ALL
        .into_iter()
        .filter(|state| state.is_active())
        .map(|state| format!("'{state}'"))
        .collect();
    format!("({})", names.join(", "))
});

/// `SELECT` of a move job's columns, in the order each engine's `move_from_row` reads them.
macro_rules! select_moves {
    ($rest:literal) => {
        concat!(
            "SELECT id, idempotency_key, key, from_tier, to_tier, generation, size, state, ",
            "reason, explanation, inputs_json, after_json, attempts, last_error, created_ms, ",
            "updated_ms, finished_ms FROM move_jobs ",
            $rest
        )
    };
}
pub(crate) use select_moves;

/// `SELECT` of an object with its current placement.
macro_rules! select_placed {
    ($rest:literal) => {
        concat!(
            "SELECT o.key, o.size, o.hash, o.mtime_ms, o.generation, o.created_ms, p.tier, ",
            "p.placed_ms, o.chunk_hashes FROM objects o JOIN placements p ",
            "ON p.key = o.key AND p.state = 'current' ",
            $rest
        )
    };
}
pub(crate) use select_placed;

row_struct! {
    /// An object with its current placement, as [`select_placed`] reads it.
    #[derive(Debug)]
    pub(crate) struct RawPlaced {
        pub key: String,
        pub size: i64,
        pub hash: Vec<u8>,
        pub mtime_ms: i64,
        pub generation: i64,
        pub created_ms: i64,
        pub tier: String,
        pub placed_ms: i64,
        pub chunk_hashes: Option<Vec<u8>>,
    }
}

row_struct! {
    /// A `placements` row as stored.
    #[derive(Debug)]
    pub(crate) struct RawPlacement {
        pub key: String,
        pub tier: String,
        pub state: String,
        pub generation: i64,
        pub job_id: Option<i64>,
        pub placed_ms: i64,
    }
}

row_struct! {
    /// A `move_jobs` row as [`select_moves`] reads it.
    #[derive(Debug)]
    pub(crate) struct RawMove {
        pub id: i64,
        pub idempotency_key: String,
        pub key: String,
        pub from_tier: String,
        pub to_tier: String,
        pub generation: i64,
        pub size: i64,
        pub state: String,
        pub reason: String,
        pub explanation: String,
        pub inputs_json: String,
        pub after_json: String,
        pub attempts: i64,
        pub last_error: Option<String>,
        pub created_ms: i64,
        pub updated_ms: i64,
        pub finished_ms: Option<i64>,
    }
}

/// The tiering rows checked and converted, written once for every engine.
pub(crate) trait TieringRowReader: RowReader {
    /// An object with its current placement, its values checked.
    fn placed_record(&self, raw: RawPlaced) -> Result<PlacedObject, CatalogError> {
        let hash = self
            .hash(Some(raw.hash), "an object hash")?
            .unwrap_or_default();
        let size = self.unsigned(raw.size, "object size")?;
        let chunk_hashes = self.chunk_hashes_from(&raw.key, raw.chunk_hashes, size, &hash);
        Ok(PlacedObject {
            object: ObjectRecord {
                key: raw.key,
                size,
                hash,
                mtime_ms: raw.mtime_ms,
                generation: raw.generation,
                created_ms: raw.created_ms,
                chunk_hashes,
            },
            tier: raw.tier,
            placed_ms: raw.placed_ms,
        })
    }

    /// A placement, its state known.
    fn placement_record(&self, raw: RawPlacement) -> Result<Placement, CatalogError> {
        Ok(Placement {
            state: raw
                .state
                .parse()
                .map_err(|err| self.invalid_data(format!("{err}")))?,
            key: raw.key,
            tier: raw.tier,
            generation: raw.generation,
            job_id: raw.job_id,
            placed_ms: raw.placed_ms,
        })
    }

    /// A move job, its state, size, attempts and `after` list checked.
    fn move_record(&self, raw: RawMove) -> Result<MoveJob, CatalogError> {
        let id = raw.id;
        let after: Vec<MoveId> = serde_json::from_str(&raw.after_json)
            .map_err(|err| self.invalid_data(format!("move job {id} after list: {err}")))?;
        let attempts = raw.attempts;
        Ok(MoveJob {
            id,
            size: self.unsigned(raw.size, "move size")?,
            state: JobKind::Move
                .parse_state(&raw.state)
                .map_err(|err| self.invalid_data(format!("move job {id}: {err}")))?,
            attempts: u32::try_from(attempts)
                .map_err(|_| self.invalid_data(format!("move job {id} attempts {attempts}")))?,
            idempotency_key: raw.idempotency_key,
            key: raw.key,
            from_tier: raw.from_tier,
            to_tier: raw.to_tier,
            generation: raw.generation,
            reason: raw.reason,
            explanation: raw.explanation,
            inputs_json: raw.inputs_json,
            after,
            last_error: raw.last_error,
            created_ms: raw.created_ms,
            updated_ms: raw.updated_ms,
            finished_ms: raw.finished_ms,
        })
    }

    /// The chunk values stored for the object `key` of `size` bytes with hash `hash`, if
    /// they are its own. Values that do not merge into its hash are not trusted: they are
    /// reported and treated as absent, so the object's next read checks it whole against
    /// its hash and records them again (the hash is what the object was written with).
    fn chunk_hashes_from(
        &self,
        key: &str,
        blob: Option<Vec<u8>>,
        size: u64,
        hash: &[u8; 32],
    ) -> Option<ChunkHashes> {
        let blob = blob?;
        match ChunkHashes::from_blob(&blob, size, hash) {
            Ok(chunks) => Some(chunks),
            Err(why) => {
                tracing::warn!(
                    catalog = %self.catalog_path().display(),
                    %key,
                    %why,
                    "the recorded chunk values of an object do not match its hash; its next \
                     read checks it whole and records them again"
                );
                None
            }
        }
    }
}

impl<T: RowReader> TieringRowReader for T {}

#[cfg(test)]
mod tests {
    use super::ACTIVE_STATES;

    #[test]
    fn the_active_states_are_those_of_the_one_active_move_index() {
        assert_eq!(
            *ACTIVE_STATES,
            "('planned', 'copying', 'verifying', 'switching', 'retiring')"
        );
        for migration in [
            include_str!("../migrations/0002_tiering.sql"),
            include_str!("../migrations/postgres/0002_tiering.sql"),
        ] {
            assert!(
                migration.contains(&format!("WHERE state IN {}", *ACTIVE_STATES)),
                "migration 0002's partial index must list the active states"
            );
        }
    }
}
