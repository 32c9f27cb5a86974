//! The tiering state of `strata serve`: objects, their placements on tiers, writes in
//! flight, access statistics, move jobs and decisions, behind the [`TieringCatalog`] trait.
//!
//! What is stored and why:
//!
//! - **objects** ([`ObjectRecord`]): key, size, BLAKE3 hash, modification time and a
//!   generation that grows on every write, so a move can tell that the bytes it copied are
//!   still the object's; and the BLAKE3 chaining value of each 1 MiB chunk
//!   ([`ChunkHashes`]), so every read checks each chunk before serving a byte of it;
//! - **placements** ([`Placement`]): the copies of an object on tiers, each `current`,
//!   `copying` or `retiring` ([`PlacementState`]). Exactly one is current per live object
//!   (a unique index enforces it);
//! - **write intents** ([`WriteIntent`]): a write about to replace an object's bytes,
//!   recorded before the bytes, so a crash between the bytes and the catalog is noticed;
//! - **access statistics**: strata-heat's persisted form, as text, written in batches;
//! - **stream offsets** ([`StreamOffset`]): per partition of an access-event stream, the
//!   next record to read, written with the statistics that include the records before it;
//! - **access history** ([`HistoryBucket`]): reads, writes and bytes per object per hour,
//!   the forecast's training data and the input of its predictions, pruned past a
//!   retention; a flush writes it with the statistics and offsets ([`AccessFlush`]), so a
//!   crash never leaves the history ahead of or behind the heat;
//! - **move jobs** ([`MoveJob`]): copy, verify, switch, retire, each state durable, with an
//!   idempotency key;
//! - **decisions** ([`DecisionRecord`]): each class decision or placement action with its
//!   reason and inputs, for `strata explain`.
//!
//! The rule every caller keeps, and recovery relies on: a row naming bytes on a tier is
//! written *before* the bytes and removed *after* them. Every byte on a tier is then
//! accounted for by a row: a current placement, a `copying` placement (a move's copy), a
//! `retiring` placement (a copy being deleted) or a write intent.
//!
//! Times are milliseconds since the Unix epoch, passed in by the caller.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use strata_codec::hash::Hash32;
use strata_codec::ChunkLayout;

use crate::error::CatalogError;
use crate::lifecycle::JobState;
use crate::model::UnknownState;

/// A move job's id, assigned by the catalog and never reused.
pub type MoveId = i64;

/// Raw bytes per hashed chunk of an object (the last chunk holds the rest): the unit a
/// read is verified in. The same as the packed tier's frame size, so a frame is a chunk.
pub const OBJECT_CHUNK_SIZE: u64 = 1 << 20;

/// How an object of `size` bytes is cut into [`OBJECT_CHUNK_SIZE`] chunks.
pub fn object_chunks(size: u64) -> ChunkLayout {
    ChunkLayout::new(OBJECT_CHUNK_SIZE, size).expect("1 MiB is a valid chunk size")
}

/// The BLAKE3 chaining values of an object's chunks ([`object_chunks`]), in order; for an
/// object of one chunk, its one value is the object's hash.
///
/// Only [`ChunkHashes::new`] makes one, and it checks that the values merge into the
/// object's hash: a chunk that matches its value is then a chunk of that object, at that
/// position, so a read can serve it before the rest is read. Cloning is cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHashes(Arc<[Hash32]>);

impl ChunkHashes {
    /// The values of an object of `size` bytes whose BLAKE3 is `hash`. Refused, saying
    /// why, unless there is one per chunk and they merge into `hash`.
    pub fn new(values: Vec<Hash32>, size: u64, hash: &Hash32) -> Result<Self, String> {
        let chunks = ChunkHashes(values.into());
        chunks.check(size, hash)?;
        Ok(chunks)
    }

    /// The values of `data` and its BLAKE3 (merged from them: one pass over the bytes).
    pub fn compute(data: &[u8]) -> (Hash32, ChunkHashes) {
        let layout = object_chunks(data.len() as u64);
        let values: Vec<Hash32> = (0..layout.chunk_count())
            .map(|index| {
                let (offset, len) = layout.chunk_range(index);
                // In range: the layout is of `data`'s own length.
                let chunk = &data[offset as usize..(offset + len) as usize];
                layout.chunk_value(index, chunk)
            })
            .collect();
        // One value per chunk by construction, so the merge cannot fail; the plain hash
        // would be the same answer.
        let hash = layout
            .merge(&values)
            .unwrap_or_else(|_| *blake3::hash(data).as_bytes());
        (hash, ChunkHashes(values.into()))
    }

    /// Whether these are the values of an object of `size` bytes whose BLAKE3 is `hash`.
    pub fn check(&self, size: u64, hash: &Hash32) -> Result<(), String> {
        let merged = object_chunks(size)
            .merge(&self.0)
            .map_err(|err| format!("{err} ({size} bytes in 1 MiB chunks)"))?;
        if merged != *hash {
            return Err(format!(
                "the {} chunk values merge into BLAKE3 {}, not the object's {}",
                self.0.len(),
                hex(&merged),
                hex(hash)
            ));
        }
        Ok(())
    }

    /// The values, in chunk order.
    pub fn values(&self) -> &[Hash32] {
        &self.0
    }

    /// The value of chunk `index`.
    pub fn get(&self, index: u64) -> Option<&Hash32> {
        usize::try_from(index).ok().and_then(|i| self.0.get(i))
    }

    /// The stored form: the values concatenated (32 bytes each).
    pub fn to_blob(&self) -> Vec<u8> {
        self.0.concat()
    }

    /// Reads the stored form of the values of an object of `size` bytes with hash `hash`,
    /// checked as [`ChunkHashes::new`] does.
    pub fn from_blob(blob: &[u8], size: u64, hash: &Hash32) -> Result<Self, String> {
        if !blob.len().is_multiple_of(32) {
            return Err(format!(
                "{} bytes are not a whole number of 32-byte values",
                blob.len()
            ));
        }
        let values = blob
            .chunks_exact(32)
            .map(|value| {
                let mut out = [0u8; 32];
                out.copy_from_slice(value);
                out
            })
            .collect();
        ChunkHashes::new(values, size, hash)
    }
}

fn hex(hash: &Hash32) -> String {
    strata_codec::hash::to_hex(hash)
}

/// One object the service holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// The object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content.
    pub hash: [u8; 32],
    /// When the content was last written.
    pub mtime_ms: i64,
    /// 1 for the first write, one more for each later write.
    pub generation: i64,
    /// When the object was first written.
    pub created_ms: i64,
    /// Its chunks' values, checked against `size` and `hash` when loaded. `None` for an
    /// object written before they were recorded (its first read checks the whole object
    /// and records them), or whose stored values do not merge into its hash (logged; they
    /// are recorded again the same way). Not serialised: it is the catalog's to check.
    #[serde(skip)]
    pub chunk_hashes: Option<ChunkHashes>,
}

/// An object with its current placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedObject {
    /// The object.
    pub object: ObjectRecord,
    /// The tier its current copy is on.
    pub tier: String,
    /// When the current copy became current.
    pub placed_ms: i64,
}

/// What a placement is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementState {
    /// Reads are served from it.
    Current,
    /// A move is writing it; not yet readable.
    Copying,
    /// Its bytes are being deleted.
    Retiring,
}

impl PlacementState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementState::Current => "current",
            PlacementState::Copying => "copying",
            PlacementState::Retiring => "retiring",
        }
    }
}

impl fmt::Display for PlacementState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlacementState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            PlacementState::Current,
            PlacementState::Copying,
            PlacementState::Retiring,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
        .ok_or_else(|| UnknownState {
            kind: "placement",
            value: s.to_owned(),
        })
    }
}

/// A copy of an object on a tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The object key.
    pub key: String,
    /// The tier.
    pub tier: String,
    /// What it is doing.
    pub state: PlacementState,
    /// The object generation whose bytes it holds (or is being given).
    pub generation: i64,
    /// The move job that made it copying or retiring, if one did.
    pub job_id: Option<MoveId>,
    /// When it got its state.
    pub placed_ms: i64,
}

/// A write in flight: the bytes of `key` on `tier` may be half-replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteIntent {
    /// The object key.
    pub key: String,
    /// The tier written to.
    pub tier: String,
    /// When the write began.
    pub started_ms: i64,
}

/// A finished write, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectWrite {
    /// The object key.
    pub key: String,
    /// The tier the bytes were written to (the object's current tier, or the default tier
    /// for a new object).
    pub tier: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the bytes.
    pub hash: [u8; 32],
    /// The chunk values of the bytes (they must merge into `hash`).
    pub chunk_hashes: ChunkHashes,
    /// The write's time.
    pub now_ms: i64,
}

/// A move to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveSpec {
    /// Names the move; a second spec with the same key finds the first job.
    pub idempotency_key: String,
    /// The object key.
    pub key: String,
    /// Tier it leaves.
    pub from_tier: String,
    /// Tier it goes to.
    pub to_tier: String,
    /// The object generation the move was planned for.
    pub generation: i64,
    /// Size in bytes.
    pub size: u64,
    /// Stable reason code (e.g. `reactive_access_spike`).
    pub reason: String,
    /// One sentence for `strata explain`.
    pub explanation: String,
    /// The numbers it was planned from (JSON).
    pub inputs_json: String,
    /// Jobs that must be done before this one starts (they free the room it uses).
    pub after: Vec<MoveId>,
}

/// A move job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveJob {
    /// Its id.
    pub id: MoveId,
    /// Names the move.
    pub idempotency_key: String,
    /// The object key.
    pub key: String,
    /// Tier it leaves.
    pub from_tier: String,
    /// Tier it goes to.
    pub to_tier: String,
    /// The object generation the move is for.
    pub generation: i64,
    /// Size in bytes.
    pub size: u64,
    /// Where it is.
    pub state: JobState,
    /// Why it was planned.
    pub reason: String,
    /// One sentence for `strata explain`.
    pub explanation: String,
    /// The numbers it was planned from (JSON).
    pub inputs_json: String,
    /// Jobs that must be done first.
    pub after: Vec<MoveId>,
    /// Copies started so far.
    pub attempts: u32,
    /// Why it last failed, was skipped or cancelled.
    pub last_error: Option<String>,
    /// When it was recorded.
    pub created_ms: i64,
    /// When its state last changed.
    pub updated_ms: i64,
    /// When it reached a final state.
    pub finished_ms: Option<i64>,
}

/// What [`TieringCatalog::create_move`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatedMove {
    /// A new job.
    Created(MoveJob),
    /// A job with the same idempotency key already existed; nothing was written.
    Existing(MoveJob),
    /// The object already has an unfinished job (this one); nothing was written.
    ObjectBusy(MoveJob),
}

/// What [`TieringCatalog::start_copy`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyStart {
    /// The `copying` placement is recorded; write the bytes.
    Started(Box<MoveJob>),
    /// The object is gone.
    ObjectGone,
    /// The object was written since the move was planned (its generation now).
    ObjectChanged(i64),
    /// The object is no longer current on the job's source tier (where it is now).
    Moved(String),
    /// The job is not in a state that can start copying.
    NotStartable(JobState),
}

/// What [`TieringCatalog::switch_placement`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchOutcome {
    /// The copy is current, the old one retiring, the job retiring.
    Switched,
    /// Nothing changed: the object is gone.
    ObjectGone,
    /// Nothing changed: the object was written since the copy (its generation now).
    ObjectChanged(i64),
    /// Nothing changed: the job's copy is not there or the source is not current.
    Inconsistent(String),
}

/// What [`TieringCatalog::retry_move`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetriedMove {
    /// The job is planned again.
    Retried(Box<MoveJob>),
    /// The job is not failed, cancelled or skipped (its state).
    NotRetryable(JobState),
    /// The object has another unfinished job.
    ObjectBusy(MoveId),
}

/// Which move jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoveFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only unfinished jobs.
    pub active_only: bool,
    /// Only jobs of this object.
    pub key: Option<String>,
    /// At most this many, newest first (`None`: all).
    pub limit: Option<u32>,
}

/// A decision as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The object key.
    pub key: String,
    /// When it was made.
    pub ts_ms: i64,
    /// `hot`, `warm` or `cold`; `new` for a first write, `damaged` for damage a read
    /// found.
    pub class: String,
    /// Stable reason code.
    pub reason: String,
    /// What was done: `place:TIER`, `move:FROM->TO`, `wait:TIER`, `stay:TIER`, or
    /// `repair:TIER` (the copy on TIER is damaged and must be repaired).
    pub action: String,
    /// One sentence for `strata explain`.
    pub explanation: String,
    /// The numbers it was made from (JSON).
    pub inputs_json: String,
    /// The move job it started, if any.
    pub job_id: Option<MoveId>,
}

/// How far one partition of an access-event stream has been consumed into the access
/// statistics: the offset of the next record to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOffset {
    /// The stream, as the service names it (`kafka://HOST:PORT/TOPIC`, no credentials).
    pub source: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the first record not yet in the statistics.
    pub next_offset: i64,
}

/// The accesses of one object in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryBucket {
    /// The object key.
    pub key: String,
    /// The start of the hour, ms since the Unix epoch (a multiple of 3,600,000).
    pub hour_ms: i64,
    /// Reads in the hour.
    pub reads: u64,
    /// Writes in the hour.
    pub writes: u64,
    /// Bytes transferred by them.
    pub bytes: u64,
}

/// What one access statistics flush stores, all in one transaction: the statistics rows,
/// the stream positions they include and the hourly history of the same accesses. A crash
/// keeps all of it or none, so a stream consumer resuming from the stored positions counts
/// each record once in the heat and once in the history.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessFlush<'a> {
    /// Statistics rows to write, as (key, stats JSON).
    pub upserts: &'a [(&'a str, &'a str)],
    /// Keys whose statistics rows go.
    pub removed: &'a [&'a str],
    /// Stream positions; each replaces the stored one of its source and partition.
    pub offsets: &'a [StreamOffset],
    /// Hourly counts, added to the stored row of their key and hour.
    pub history: &'a [HistoryBucket],
}

impl AccessFlush<'_> {
    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty()
            && self.removed.is_empty()
            && self.offsets.is_empty()
            && self.history.is_empty()
    }
}

/// The tiering operations, implemented once per database engine.
///
/// Every call is one transaction: a call that fails has changed nothing. Objects and keys
/// that do not exist are reported in the return value, never as errors.
#[async_trait]
pub trait TieringCatalog: Send + Sync {
    /// Every live object with its current placement, ordered by key.
    async fn placed_objects(&self) -> Result<Vec<PlacedObject>, CatalogError>;

    /// One object with its current placement.
    async fn placed_object(&self, key: &str) -> Result<Option<PlacedObject>, CatalogError>;

    /// Every placement of an object, in any state.
    async fn placements(&self, key: &str) -> Result<Vec<Placement>, CatalogError>;

    /// Every placement that is copying or retiring.
    async fn placements_in_flight(&self) -> Result<Vec<Placement>, CatalogError>;

    /// Records that the bytes of `key` on `tier` are about to be written. Recording an
    /// intent that exists already refreshes its time.
    async fn begin_write(&self, key: &str, tier: &str, now_ms: i64) -> Result<(), CatalogError>;

    /// Records a finished write: creates the object (generation 1, current on `tier`) or
    /// replaces its content and chunk values (generation + 1, same current tier), and drops
    /// the write intent. Fails with [`CatalogError::InvalidInput`] if the object is current
    /// on another tier, if `tier` has a copying or retiring placement of it, or if the
    /// chunk values are not those of the write's size and hash.
    async fn commit_write(&self, write: &ObjectWrite) -> Result<PlacedObject, CatalogError>;

    /// Records the write intents `(key, tier)` of many writes at once (the service's group
    /// commit): as [`TieringCatalog::begin_write`] for each, in one transaction where the
    /// engine has them (all recorded or none).
    async fn begin_writes(
        &self,
        intents: &[(String, String)],
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        for (key, tier) in intents {
            self.begin_write(key, tier, now_ms).await?;
        }
        Ok(())
    }

    /// Records many finished writes at once (the service's group commit), in one
    /// transaction where the engine has them: as [`TieringCatalog::commit_write`] for each,
    /// results in the order of `writes`. A write refused by its checks
    /// ([`CatalogError::InvalidInput`]) is that write's error and records nothing; any
    /// other failure is the whole call's (with one transaction: nothing recorded).
    async fn commit_writes(
        &self,
        writes: &[ObjectWrite],
    ) -> Result<Vec<Result<PlacedObject, CatalogError>>, CatalogError> {
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            match self.commit_write(write).await {
                Err(CatalogError::InvalidInput(why)) => {
                    results.push(Err(CatalogError::InvalidInput(why)))
                }
                Err(err) => return Err(err),
                Ok(placed) => results.push(Ok(placed)),
            }
        }
        Ok(results)
    }

    /// Records finished writes and the write intents of the next writes in one transaction
    /// (the service's group commit records the intents of the writes that queued while a
    /// group was made durable with that group's rows: one commit where there were two).
    /// The writes as [`TieringCatalog::commit_writes`], results in their order; the
    /// intents as [`TieringCatalog::begin_writes`]. Any failure other than a write refused
    /// by its checks is the whole call's, and nothing is recorded, the intents included.
    async fn commit_writes_and_begin(
        &self,
        writes: &[ObjectWrite],
        next_intents: &[(String, String)],
        now_ms: i64,
    ) -> Result<Vec<Result<PlacedObject, CatalogError>>, CatalogError>;

    /// Records the chunk values of an object written before they were recorded, once its
    /// bytes were checked against its hash. Returns whether they were recorded: not if the
    /// object is gone or no longer at `generation`. Fails with
    /// [`CatalogError::InvalidInput`] if they do not merge into the object's hash.
    async fn set_chunk_hashes(
        &self,
        key: &str,
        generation: i64,
        chunk_hashes: &ChunkHashes,
    ) -> Result<bool, CatalogError>;

    /// Drops a write intent (the write failed and its bytes are known not to be there).
    async fn abandon_write(&self, key: &str, tier: &str) -> Result<(), CatalogError>;

    /// Every write intent.
    async fn write_intents(&self) -> Result<Vec<WriteIntent>, CatalogError>;

    /// Deletes an object: its row goes and all its placements become retiring (their bytes
    /// are the caller's to delete, then [`TieringCatalog::remove_placement`]). Unfinished
    /// move jobs of the object are cancelled. Returns the retiring placements, or `None`
    /// if there was no such object.
    async fn delete_object(
        &self,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<Placement>>, CatalogError>;

    /// Removes the placement of `key` on `tier` if it is in `state` (after its bytes were
    /// deleted). Returns whether a row was removed.
    async fn remove_placement(
        &self,
        key: &str,
        tier: &str,
        state: PlacementState,
    ) -> Result<bool, CatalogError>;

    /// Writes access statistics rows and removes the rows of `removed`, in one transaction.
    async fn save_access_stats(
        &self,
        upserts: &[(&str, &str)],
        removed: &[&str],
        now_ms: i64,
    ) -> Result<(), CatalogError>;

    /// Everything one access statistics flush stores, in one transaction (see
    /// [`AccessFlush`]): a position is stored exactly when the counts and history of the
    /// records before it are, so a consumer that resumes from the stored positions counts
    /// every record once (exactly once at the application level).
    async fn save_access_flush(
        &self,
        flush: &AccessFlush<'_>,
        now_ms: i64,
    ) -> Result<(), CatalogError>;

    /// The stored positions of one stream source, by partition.
    async fn stream_offsets(&self, source: &str) -> Result<Vec<StreamOffset>, CatalogError>;

    /// Every access statistics row, as (key, stats JSON).
    async fn access_stats(&self) -> Result<Vec<(String, String)>, CatalogError>;

    /// Adds each bucket's counts to the stored row of its key and hour (creating it), in
    /// one transaction.
    async fn add_access_history(&self, buckets: &[HistoryBucket]) -> Result<(), CatalogError>;

    /// The history from `since_ms` on (hours starting at or after it), of one key or of
    /// every key, ordered by hour then key.
    async fn access_history(
        &self,
        since_ms: i64,
        key: Option<&str>,
    ) -> Result<Vec<HistoryBucket>, CatalogError>;

    /// Removes the hours that start before `before_ms`; returns how many rows went.
    async fn prune_access_history(&self, before_ms: i64) -> Result<u64, CatalogError>;

    /// Records a move in state planned, unless a job with the same idempotency key exists
    /// or the object has another unfinished job.
    async fn create_move(&self, spec: &MoveSpec, now_ms: i64) -> Result<CreatedMove, CatalogError>;

    /// One job.
    async fn move_job(&self, id: MoveId) -> Result<Option<MoveJob>, CatalogError>;

    /// Jobs, newest first.
    async fn move_jobs(&self, filter: &MoveFilter) -> Result<Vec<MoveJob>, CatalogError>;

    /// Counts of jobs by state.
    async fn move_counts(&self) -> Result<Vec<(JobState, u64)>, CatalogError>;

    /// Starts (or restarts) the copy of a planned, copying, verifying or switching job: checks
    /// that the object is still current on the source tier with the job's generation,
    /// records (or keeps) the `copying` placement on the target tier, sets the job copying
    /// and counts an attempt.
    async fn start_copy(&self, id: MoveId, now_ms: i64) -> Result<CopyStart, CatalogError>;

    /// Sets an unfinished job's state (copying → verifying → switching) and last error.
    async fn set_move_state(
        &self,
        id: MoveId,
        state: JobState,
        last_error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), CatalogError>;

    /// The switch, in one transaction: if the object still has the job's generation and is
    /// current on the source tier, and the job's copy is there, the copy becomes current
    /// (placed now), the old copy retiring, and the job retiring.
    async fn switch_placement(
        &self,
        id: MoveId,
        now_ms: i64,
    ) -> Result<SwitchOutcome, CatalogError>;

    /// After the old copy's bytes are deleted: removes its retiring placement and marks the
    /// job done.
    async fn finish_move(&self, id: MoveId, now_ms: i64) -> Result<(), CatalogError>;

    /// Ends a job that did not switch, in `state` (planned again, failed, cancelled or
    /// skipped) with `last_error`, and removes its copying placement (whose bytes the
    /// caller deleted first).
    async fn end_move(
        &self,
        id: MoveId,
        state: JobState,
        last_error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), CatalogError>;

    /// Plans a failed, cancelled or skipped job again.
    async fn retry_move(&self, id: MoveId, now_ms: i64) -> Result<RetriedMove, CatalogError>;

    /// Records decisions, in one transaction.
    async fn record_decisions(&self, decisions: &[DecisionRecord]) -> Result<(), CatalogError>;

    /// An object's decisions, newest first.
    async fn decisions(&self, key: &str, limit: u32) -> Result<Vec<DecisionRecord>, CatalogError>;

    /// Keeps the newest `keep` decisions of each object and of objects that no longer
    /// exist none; returns how many were removed.
    async fn prune_decisions(&self, keep: u32) -> Result<u64, CatalogError>;
}
