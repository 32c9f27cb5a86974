//! A move's copy and verify, streamed: the source copy is read in spans of whole chunks
//! (through [`TierReader`]: every frame of a packed copy decoded and checked), its raw
//! BLAKE3 computed as it passes, each span encoded for the target's layout
//! ([`TierEncoder`]) and written to a staged [`TierUpload`]. The copy is published only
//! once the raw hash matched the catalog's and the target had room for it; it is then
//! read back the same way, span by span, and its hash compared again. Memory holds a span
//! and the chunks being encoded, whatever the object's size.

use strata_store::StoreError;

use super::{settled_stop_reason, stop_reason, store_call, RunningMove, Step};
use crate::index::ObjectEntry;
use crate::state::AppState;
use crate::tier_codec::verified::report_damage;
use crate::tier_codec::{Damage, TierEncoder, TierReadError, TierReader};
use crate::tier_store::TierUpload;
use crate::tiers::{check_room, Tier};
use strata_catalog::MoveJob;

/// Raw bytes read per step (whole 1 MiB chunks).
const SPAN: u64 = 4 << 20;

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
        Ok(()) => {
            let stored = store_call(state, "a move's copy", || upload.finish())
                .await
                .map_err(writing)?;
            return Ok(Ok(stored));
        }
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

/// The source, read span by span, hashed, encoded and written to `upload`; the hash
/// checked and the room too before anything could be published.
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
    let mut hasher = blake3::Hasher::new();
    let mut encoder = TierEncoder::new(to.format, &job.key);
    let mut offset = 0;
    while offset < entry.size {
        if let Some(stop) = stop_reason(state, job, handle) {
            return Err(Fail::Stop(stop));
        }
        let len = SPAN.min(entry.size - offset);
        let raw = reader.read(state, offset, len).await.map_err(Fail::Read)?;
        if raw.len() as u64 != len {
            return Err(Fail::Mismatch);
        }
        hasher.update(&raw);
        offset += len;
        write_all(state, upload, encoder.push(raw).await).await?;
    }
    if *hasher.finalize().as_bytes() != entry.hash {
        return Err(Fail::Mismatch);
    }
    if let Some(stop) = stop_reason(state, job, handle) {
        return Err(Fail::Stop(stop));
    }
    write_all(state, upload, encoder.finish().await).await?;
    check_room(state, to, upload.written(), reserved).map_err(Fail::Room)
}

async fn write_all(
    state: &AppState,
    upload: &TierUpload,
    pieces: Vec<bytes::Bytes>,
) -> Result<(), Fail> {
    for piece in pieces {
        store_call(state, "a move's copy", || upload.write(piece.clone()))
            .await
            .map_err(Fail::Write)?;
    }
    Ok(())
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
    let path = Tier::object_path(key);
    let stat = store_call(state, "an object stat", || tier.store.stat(&path)).await?;
    let Some(stat) = stat else {
        return Err(TierReadError::Store(StoreError::NotFound { path }));
    };
    if let Some(want) = plain_len.filter(|_| !tier.format.is_packed()) {
        if stat.size != want {
            return Err(TierReadError::Damaged(Damage {
                key: key.to_string(),
                tier: tier.name().to_string(),
                detail: format!("it holds {} bytes, the catalog records {want}", stat.size),
            }));
        }
    }
    TierReader::open(state, tier, key, raw_len, stat.size).await
}
