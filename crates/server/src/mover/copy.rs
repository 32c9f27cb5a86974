//! A move's copy and verify, streamed through the chunk pipeline
//! ([`strata_mover::pipeline::pump`]): the source copy is read in spans of whole chunks,
//! two ahead (through [`TierReader`]: every frame of a packed copy decoded and checked),
//! its raw BLAKE3 computed on a blocking thread as it passes, each span encoded for the
//! target's layout and written to a staged [`TierUpload`] ([`EncodingSink`]), the three at
//! once. The copy is published only once the raw hash matched the catalog's and the target
//! had room for it; it is then read back the same way, span by span, and its hash compared
//! again. Memory holds the spans in flight and the chunks being encoded, whatever the
//! object's size.

use futures::StreamExt;
use strata_mover::pipeline;
use strata_store::StoreError;

use super::{settled_stop_reason, stop_reason, store_call, RunningMove, Step};
use crate::index::ObjectEntry;
use crate::state::AppState;
use crate::tier_codec::verified::report_damage;
use crate::tier_codec::{Damage, TierReadError, TierReader};
use crate::tier_store::{EncodingSink, TierUpload};
use crate::tiers::{check_room, Tier};
use strata_catalog::MoveJob;

/// Why a copy did not get published.
enum Fail {
    /// The job should stop (the object changed or went, or an operator cancelled).
    Stop(Step),
    /// The source copy could not be read, or does not decode.
    Read(TierReadError),
    /// The source's raw bytes do not match the object's BLAKE3.
    Mismatch,
    /// Writing the copy failed.
    Write(StoreError),
    /// The target has no room for the copy (the message says so).
    Room(String),
}

/// Copies the job's object from `from` to `to` and publishes it there; returns the bytes
/// the copy takes on `to`, or the step the job ends with (`Err`: it failed, saying why).
pub(super) async fn copy(
    state: &AppState,
    job: &MoveJob,
    from: &Tier,
    to: &Tier,
    entry: &ObjectEntry,
    reserved: u64,
    handle: &RunningMove,
) -> Result<Result<u64, Step>, String> {
    let upload = match stage(state, job, from, to, entry, reserved, handle).await? {
        Ok(upload) => upload,
        Err(step) => return Ok(Err(step)),
    };
    let stored = store_call(state, "a move's copy", || upload.finish())
        .await
        .map_err(|err| format!("writing the copy on {}: {err}", to.name()))?;
    Ok(Ok(stored))
}

/// [`copy`] up to the publish: the copy written and its source checked against the
/// object's BLAKE3, staged (nothing visible under the object's path yet). The caller
/// publishes it (`TierUpload::finish`) when it chooses: a key rotation, whose copy
/// replaces the object at the same path, does so under the key's write lock.
pub(super) async fn stage(
    state: &AppState,
    job: &MoveJob,
    from: &Tier,
    to: &Tier,
    entry: &ObjectEntry,
    reserved: u64,
    handle: &RunningMove,
) -> Result<Result<TierUpload, Step>, String> {
    let path = Tier::object_path(&job.key);
    let redundancy = to.wanted_redundancy(crate::redundancy_worker::class_of(state, &job.key));
    let writing = |err: StoreError| format!("writing the copy on {}: {err}", to.name());
    let upload = store_call(state, "a move's copy", || {
        to.store
            .begin_write(&path, redundancy, reserved, !to.format.is_packed())
    })
    .await
    .map_err(writing)?;
    let fail = match pump(state, job, from, to, entry, &upload, reserved, handle).await {
        Ok(()) => return Ok(Ok(upload)),
        Err(fail) => fail,
    };
    if let Err(err) = upload.abort().await {
        tracing::warn!(job = job.id, key = %job.key, %err, "cannot remove the staged bytes of an abandoned copy");
    }
    let damage = match fail {
        Fail::Stop(step) => return Ok(Err(step)),
        Fail::Write(err) => return Err(writing(err)),
        Fail::Room(message) => return Err(message),
        Fail::Read(TierReadError::Store(err)) => {
            if let Some(stop) = settled_stop_reason(state, job, handle).await {
                return Ok(Err(stop));
            }
            return Err(format!("reading the copy on {}: {err}", from.name()));
        }
        Fail::Read(TierReadError::Damaged(damage)) => damage,
        Fail::Mismatch => Damage {
            key: job.key.clone(),
            tier: from.name().to_string(),
            detail: format!(
                "it does not match the object's BLAKE3 {}",
                hex::encode(entry.hash)
            ),
        },
    };
    if let Some(stop) = settled_stop_reason(state, job, handle).await {
        return Ok(Err(stop));
    }
    report_damage(state, &damage, job.generation);
    Err(format!(
        "source_damaged: {damage}; it was not moved: write the object again, or restore the \
         tier's copy from a backup"
    ))
}

/// The source through the chunk pipeline: read ahead span by span, hashed, encoded and
/// written to `upload`; the hash checked and the room too before anything could be
/// published. The job's stop conditions are checked as each span is read.
#[allow(clippy::too_many_arguments)]
async fn pump(
    state: &AppState,
    job: &MoveJob,
    from: &Tier,
    to: &Tier,
    entry: &ObjectEntry,
    upload: &TierUpload,
    reserved: u64,
    handle: &RunningMove,
) -> Result<(), Fail> {
    let reader = open(state, from, &job.key, entry.size, Some(entry.size))
        .await
        .map_err(Fail::Read)?;
    let source = reader.spans(state, entry.size).map(|span| {
        if let Some(stop) = stop_reason(state, job, handle) {
            return Err(Fail::Stop(stop));
        }
        span.map_err(Fail::Read)
    });
    let mut sink = EncodingSink::new(state, "a move's copy", to.format.clone(), &job.key, upload);
    let hasher = pipeline::pump(source, blake3::Hasher::new(), &mut sink).await?;
    if hasher.count() != entry.size || *hasher.finalize().as_bytes() != entry.hash {
        return Err(Fail::Mismatch);
    }
    if let Some(stop) = stop_reason(state, job, handle) {
        return Err(Fail::Stop(stop));
    }
    sink.finish().await?;
    check_room(state, to, upload.written(), reserved).map_err(Fail::Room)
}

impl From<StoreError> for Fail {
    fn from(err: StoreError) -> Fail {
        Fail::Write(err)
    }
}

/// Opens the copy of `key` on `tier` at the length it has on the store (a truncated or
/// longer copy is damage, as a whole read would find; a missing one a store error).
/// `raw_len`: the object's; `plain_len`: the length a plain copy must have, if known.
async fn open(
    state: &AppState,
    tier: &Tier,
    key: &str,
    raw_len: u64,
    plain_len: Option<u64>,
) -> Result<TierReader, TierReadError> {
    let (reader, stored_len) = TierReader::open_stored(state, tier, key, raw_len).await?;
    if let Some(want) = plain_len.filter(|_| !tier.format.is_packed()) {
        if stored_len != want {
            return Err(TierReadError::Damaged(Damage {
                key: key.to_string(),
                tier: tier.name().to_string(),
                detail: format!("it holds {stored_len} bytes, the catalog records {want}"),
            }));
        }
    }
    Ok(reader)
}
