//! Objects over HTTP: `PUT`, `GET` (with a single byte range), `HEAD`, `DELETE` on
//! `/v1/objects/{key}`, and `GET /v1/objects?prefix=` listings.
//!
//! The write path: stream the body (never held whole: [`BodyReader`]) through the tier's
//! encoder into a staged upload on the object's current tier (the default tier for a new
//! object; frames on a packed tier), hashing it as it passes (BLAKE3, and the value of each
//! 1 MiB chunk; on a local tier the bytes then wait, unflushed, in a staging file); then
//! take the key's write lock and hand the write to the group commit
//! ([`crate::group_commit`]), which, for every write ready at that moment together, records
//! the write intents, publishes the uploads atomically and durably, records the new
//! versions (generation + 1, raw size, hash and chunk values) and drops the intents; then
//! update the index. A body that breaks off, pauses too
//! long, passes the size limit or does not match `X-Strata-Hash` aborts the upload: nothing
//! is published. The read path: take the key's read lock,
//! look the object up in memory, read the chunks that hold the range from its current tier
//! and check each against its value before sending a byte of it
//! ([`crate::tier_codec::verified`]), record the access. Sizes shown are raw; `stored_size` is what the copy takes
//! on its tier. Both record the access in the tracker, whose spikes wake the reactive
//! planner.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_catalog::{
    ChunkHashes, DecisionRecord, ObjectWrite, PlacedObject, PlacementState, OBJECT_CHUNK_SIZE,
};
use strata_heat::{AccessEvent, AccessSummary, Op, Reason, TierId};

use crate::error::ApiError;
use crate::group_commit::{CommitItem, Outcome, Publish};
use crate::http::BodyReader;
use crate::index::ObjectEntry;
use crate::mover::store_call;
use crate::recovery::reconcile_intent;
use crate::state::{lock, now_ms, AppState};
use crate::tier_codec::verified::{ChunkHasher, VerifiedReader};
use crate::tier_store::{EncodingSink, TierUpload};
use crate::tiers::Tier;
use strata_mover::pipeline;

/// Reads at most this much per store call (whole verified chunks); larger bodies are
/// streamed in such spans.
const READ_CHUNK: u64 = 4 * OBJECT_CHUNK_SIZE;

/// How long a write of a new object waits for a move of an earlier object of the same key
/// to clean up its copy.
const CLEANUP_WAIT: Duration = Duration::from_secs(30);

/// Listing page size when none is asked for, and the largest page.
const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;

/// A validated object key from the path.
pub struct ObjectKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ObjectKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(key) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request("invalid_key", rejection.body_text()))?;
        check_key(&key)?;
        Ok(ObjectKey(key))
    }
}

/// Refuses keys that are empty, longer than 4096 bytes, hold NUL, start with `/` or have
/// an empty, `.` or `..` segment: keys no object can have. Reads, deletes and `explain`
/// check this much (an object stored by an earlier version under a longer key stays
/// reachable); a PUT checks [`check_new_key`].
pub fn check_key(key: &str) -> Result<(), ApiError> {
    strata_heat::event::check_key(key)
        .map_err(|reason| ApiError::bad_request("invalid_key", format!("invalid key: {reason}")))
}

/// Longest key a new object may have, in bytes (S3's limit for an object key).
pub const MAX_KEY_BYTES: usize = 1024;

/// Longest segment (text between two `/`) of a new object's key, in bytes: the longest
/// file name of common local file systems (ext4, XFS, Btrfs, ZFS), since a segment is a
/// file or directory name on a local tier.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Refuses keys a new object cannot have, before anything is read or written: what
/// [`check_key`] refuses, keys over [`MAX_KEY_BYTES`], segments over
/// [`MAX_SEGMENT_BYTES`], and control characters (they would end up in file names and
/// logs). The same key is then storable on every tier, local or S3.
pub fn check_new_key(key: &str) -> Result<(), ApiError> {
    check_key(key)?;
    let invalid = |reason: String| {
        Err(ApiError::bad_request(
            "invalid_key",
            format!("invalid key: {reason}; choose a shorter or plainer key"),
        ))
    };
    if key.len() > MAX_KEY_BYTES {
        return invalid(format!(
            "the key is {} bytes long, more than the {MAX_KEY_BYTES} bytes a key may have",
            key.len()
        ));
    }
    if let Some(segment) = key.split('/').find(|s| s.len() > MAX_SEGMENT_BYTES) {
        let start: String = segment.chars().take(40).collect();
        return invalid(format!(
            "the segment starting {start:?} is {} bytes long, more than the \
             {MAX_SEGMENT_BYTES} bytes a segment (text between two '/') may have",
            segment.len()
        ));
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return invalid(format!("the key contains the control character {c:?}"));
    }
    Ok(())
}

/// An object as the API shows it.
#[derive(Debug, Serialize)]
pub struct ObjectView {
    /// Key.
    pub key: String,
    /// Size in bytes (raw: what a GET returns).
    pub size: u64,
    /// Bytes its current copy takes on its tier (smaller than `size` when compressed on a
    /// packed tier).
    pub stored_size: u64,
    /// BLAKE3, hex.
    pub hash: String,
    /// Tier of the current copy.
    pub tier: String,
    /// Grows on every write.
    pub generation: i64,
    /// Last write.
    pub mtime_ms: i64,
    /// First write.
    pub created_ms: i64,
    /// When the current copy became current.
    pub placed_ms: i64,
}

impl ObjectView {
    pub(crate) fn new(state: &AppState, key: &str, entry: &ObjectEntry) -> Self {
        ObjectView {
            key: key.to_string(),
            size: entry.size,
            stored_size: entry.stored,
            hash: hex::encode(entry.hash),
            tier: state.tiers[entry.tier].name().to_string(),
            generation: entry.generation,
            mtime_ms: entry.mtime_ms,
            created_ms: entry.created_ms,
            placed_ms: entry.placed_ms,
        }
    }
}

/// The index entry for a recorded object whose current copy takes `stored` bytes.
pub fn entry_of(placed: &PlacedObject, tier: TierId, stored: u64) -> ObjectEntry {
    ObjectEntry {
        size: placed.object.size,
        stored,
        hash: placed.object.hash,
        mtime_ms: placed.object.mtime_ms,
        generation: placed.object.generation,
        created_ms: placed.object.created_ms,
        tier,
        placed_ms: placed.placed_ms,
        chunk_hashes: placed.object.chunk_hashes.clone(),
    }
}

/// Records an access in the tracker; wakes the reactive planner on a spike.
pub fn record_access(state: &AppState, key: &str, op: Op, bytes: u64) {
    let now = now_ms();
    let event = AccessEvent {
        ts_ms: now,
        key: key.to_string(),
        op,
        bytes,
        client: None,
    };
    let outcome = lock(&state.tracker).record_event(now, &event);
    crate::forecast::history::record(state, key, now, op, bytes);
    if outcome.spikes > 0 {
        state
            .metrics
            .spikes
            .fetch_add(outcome.spikes as u64, Ordering::Relaxed);
        state.planner_wake.notify_one();
    }
}

/// `PUT /v1/objects/{key}`.
pub async fn put_object(
    State(state): State<Arc<AppState>>,
    ObjectKey(key): ObjectKey,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_new_key(&key)?;
    let body = BodyReader::new(
        &headers,
        body,
        state.limits.max_object_size,
        state.http.body_timeout,
        &format!("object {key:?}"),
    )?;
    let expected = headers
        .get("x-strata-hash")
        .map(|value| value.to_str().unwrap_or_default().to_ascii_lowercase());
    let (view, created) = store_object(&state, &key, body, expected).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

/// The write behind `PUT /v1/objects/{key}` and the S3 front door's PutObject: the
/// write ([`write_object`], on a task of its own), then the metrics, the access and, for
/// a new object, its first placement decision. Returns the object as written and
/// whether it is new.
pub async fn store_object(
    state: &Arc<AppState>,
    key: &str,
    body: BodyReader,
    expected: Option<String>,
) -> Result<(ObjectView, bool), ApiError> {
    // On a task of its own: a client that goes away drops this handler, not the write,
    // which then sees the body end short and aborts its staged upload.
    let write = {
        let (state, key) = (Arc::clone(state), key.to_string());
        tokio::spawn(async move { write_object(&state, &key, body, expected).await })
    };
    let written = write
        .await
        .map_err(|err| ApiError::internal(format!("the write of {key:?} ended early: {err}")))??;
    let Written {
        placed,
        created,
        stored,
    } = written;
    let size = placed.object.size;
    state.metrics.writes.fetch_add(1, Ordering::Relaxed);
    state.metrics.write_bytes.fetch_add(size, Ordering::Relaxed);
    record_access(state, key, Op::Write, size);
    if created {
        lock(&state.decisions).push(first_placement(state, key, &placed), false);
    }
    let tier = state
        .tier(&placed.tier)
        .map_or(TierId::HOTTEST, |tier| tier.id);
    let view = ObjectView::new(state, key, &entry_of(&placed, tier, stored));
    Ok((view, created))
}

/// The decision recorded for a new object's first placement: the default tier, or the
/// tier its `[[policy]]` sent it to instead.
fn first_placement(state: &AppState, key: &str, placed: &PlacedObject) -> DecisionRecord {
    let default = state.default_tier().name();
    let policy = state.policies.policy_for(key);
    let (reason, explanation) = match state.policies.forbids_text(
        state.policies.matching(key),
        state.default_tier().id.index(),
    ) {
        Some(forbids) if placed.tier != default => (
            Reason::Policy,
            format!(
                "new object: placed on {} instead of the default tier, as {forbids}; later \
                 passes move it by its accesses, within its policy",
                placed.tier
            ),
        ),
        _ => (
            Reason::DefaultTier,
            format!(
                "new object: placed on the default tier {}; later passes move it by its \
                 accesses",
                placed.tier
            ),
        ),
    };
    DecisionRecord {
        key: key.to_string(),
        ts_ms: placed.object.mtime_ms,
        class: "new".to_string(),
        reason: reason.code().to_string(),
        action: format!("place:{}", placed.tier),
        explanation,
        inputs_json: serde_json::json!({
            "default_tier": default,
            "size": placed.object.size,
            "policy": policy.map(|policy| policy.config().name.as_str()),
        })
        .to_string(),
        job_id: None,
    }
}

/// A recorded write.
#[derive(Debug)]
pub struct Written {
    /// The object's new record.
    pub placed: PlacedObject,
    /// Whether the object is new.
    pub created: bool,
    /// The bytes its copy takes on its tier.
    pub stored: u64,
}

/// An object's bytes staged on its tier, with what was computed as they streamed.
struct Staged {
    upload: TierUpload,
    hash: [u8; 32],
    chunk_hashes: ChunkHashes,
    size: u64,
}

/// Writes an object: its body streamed to its tier (encoded for the tier's layout, hashed
/// as it arrives, staged: nothing visible), then published and recorded with its hash and
/// chunk values under the key's write lock. `expected` is the client's `X-Strata-Hash`.
pub async fn write_object(
    state: &AppState,
    key: &str,
    body: BodyReader,
    expected: Option<String>,
) -> Result<Written, ApiError> {
    let _gate = state.uploads.enter(key).await;
    let (tier, cleared) = target_tier(state, key).await?;
    let staged = stage_body(state, key, tier, body, expected)
        .await
        .map_err(|err| no_room(key, tier, err))?;
    let publish = match staged.upload.stage_for_group().await {
        Ok(Some((pending, stored))) => Publish::Group(Box::new(pending), stored),
        Ok(None) => Publish::Alone(Box::new(staged.upload)),
        Err(err) => {
            abort_upload(key, staged.upload).await;
            return Err(no_room(key, tier, ApiError::from(err)));
        }
    };
    let guard = state.locks.write(key).await;
    let existing = state.index.get(key);
    if let Err(err) = still_writable(state, key, tier, existing.as_ref(), cleared).await {
        drop(guard);
        publish.abort(key).await;
        return Err(err);
    }
    let write = ObjectWrite {
        key: key.to_string(),
        tier: tier.name().to_string(),
        size: staged.size,
        hash: staged.hash,
        chunk_hashes: staged.chunk_hashes,
        now_ms: now_ms(),
    };
    let item = CommitItem { publish, write };
    match state.commits.commit(state, item).await {
        Outcome::Committed(placed, stored) => {
            state.index.upsert(key, entry_of(&placed, tier.id, stored));
            drop(guard);
            // New content: what was decided about the old one (damage a read found in
            // it) is recorded afresh if it happens again.
            lock(&state.decisions).forget(key);
            Ok(Written {
                placed,
                created: existing.is_none(),
                stored,
            })
        }
        Outcome::NotBegun(err) => Err(not_durable(key, err, false)),
        Outcome::Failed(err) => {
            // The bytes may or may not have been replaced: make the catalog, the index
            // and the bytes agree before anyone reads them.
            if let Err(fix) = reconcile_intent(state, key, tier).await {
                tracing::error!(%key, %fix, "cannot reconcile a failed write; it is retried at the next start");
            }
            drop(guard);
            Err(not_durable(key, err, true))
        }
    }
}

/// A full tier met while a write's bytes were staged, as its answer: which key, which
/// tier, that nothing was stored and what to do (the store's own text is a command's).
/// Other errors are returned as they are.
fn no_room(key: &str, tier: &Tier, err: ApiError) -> ApiError {
    if err.code != "tier_full" {
        return err;
    }
    ApiError {
        message: format!(
            "tier {} is full: nothing of {key:?} was stored; free space on it (delete \
             objects, or grow its disk) and send the PUT again",
            tier.name()
        ),
        ..err
    }
}

/// A write that could not be made durable, as its answer: what failed, for which key, and
/// what to do.
fn not_durable(key: &str, err: ApiError, begun: bool) -> ApiError {
    let state = if begun {
        "the object holds its previous content or, if the new bytes had reached the tier, \
         the new content (GET shows which)"
    } else {
        "nothing was stored"
    };
    ApiError {
        message: format!(
            "the write of {key:?} could not be made durable ({}); {state}; send it again",
            err.message
        ),
        ..err
    }
}

/// Under the key's write lock, once the bytes arrived: the key (`existing`, as the index
/// has it now) must still be on `tier` (readers and moves went on meanwhile; it may have
/// moved or gone), and a new key must pass [`new_key_checks`]; only its in-memory part
/// when `cleared` (see [`target_tier`]).
async fn still_writable(
    state: &AppState,
    key: &str,
    tier: &Tier,
    existing: Option<&ObjectEntry>,
    cleared: bool,
) -> Result<(), ApiError> {
    let still = match existing {
        Some(entry) => entry.tier == tier.id,
        None => state.new_object_tier(key).id == tier.id,
    };
    if !still {
        return Err(ApiError::unavailable(
            "object_busy",
            format!(
                "{key:?} moved to another tier while its new content arrived; nothing was \
                 stored, send it again"
            ),
        ));
    }
    match existing {
        Some(_) => Ok(()),
        None if cleared => no_conflict(state, key),
        None => new_key_checks(state, key, tier).await,
    }
}

/// The tier a write of `key` goes to: its object's, or the default tier for a new object
/// (once a move of an earlier object of the key has cleaned up, and its leftover copy is
/// gone). With it, whether the key was new and its leftover copies were cleared: if the
/// key is still new once the bytes arrived, nothing can have left a copy meanwhile (new
/// objects are created only under the key's upload gate, which this write holds; a copy
/// is left only by a delete or a move of an existing object), so the catalog need not be
/// asked again.
async fn target_tier<'s>(state: &'s AppState, key: &str) -> Result<(&'s Tier, bool), ApiError> {
    for _ in 0..3 {
        if !state.index.contains(key) && !state.mover.wait_idle(key, CLEANUP_WAIT).await {
            break;
        }
        let guard = state.locks.write(key).await;
        if let Some(entry) = state.index.get(key) {
            return Ok((&state.tiers[entry.tier], false));
        }
        let tier = state.new_object_tier(key);
        if state.mover.running(key).is_some() {
            drop(guard);
            continue;
        }
        new_key_checks(state, key, tier).await?;
        return Ok((tier, true));
    }
    Err(ApiError::unavailable(
        "object_busy",
        format!("a move of an earlier object {key:?} is still cleaning up; try again"),
    ))
}

/// Before a new object of `key` is written to `tier`, under the key's write lock: the key
/// must not clash with another's folder, and a copy an earlier object left is removed.
async fn new_key_checks(state: &AppState, key: &str, tier: &Tier) -> Result<(), ApiError> {
    no_conflict(state, key)?;
    clear_leftover(state, key, tier).await
}

/// A new key must not clash with another's folder (checked in memory).
fn no_conflict(state: &AppState, key: &str) -> Result<(), ApiError> {
    match state.index.conflicting_key(key) {
        Some(other) => Err(ApiError::conflict(
            "key_conflict",
            format!(
                "{key:?} cannot be stored beside {other:?}: a key cannot be both an object \
                 and a folder of other objects (tiers keep objects as files)"
            ),
        )),
        None => Ok(()),
    }
}

/// Streams `body` into a staged upload on `tier`, encoded for its layout; the object's
/// BLAKE3 and chunk values are computed as the bytes pass and checked against `expected`.
/// On any failure (the client breaks off, a pause, the size limit, a store error, a hash
/// that does not match) the upload is aborted: nothing is published.
async fn stage_body(
    state: &AppState,
    key: &str,
    tier: &Tier,
    body: BodyReader,
    expected: Option<String>,
) -> Result<Staged, ApiError> {
    // The exact stored length is known only at the end: begin with its bound.
    let raw_bound = body.declared().unwrap_or(body.limit());
    // A plain tier with a declared length knows the stored length exactly (a tier with
    // domains then streams it; see TierStore::begin_write).
    let exact = body.declared().is_some() && !tier.format.is_packed();
    let path = Tier::object_path(key);
    let upload = store_call(state, "an object write", || {
        tier.store
            .begin_write(&path, None, tier.format.stored_bound(raw_bound), exact)
    })
    .await?;
    match feed(state, key, tier, body, &upload, expected).await {
        Ok((hash, chunk_hashes, size)) => Ok(Staged {
            upload,
            hash,
            chunk_hashes,
            size,
        }),
        Err(err) => {
            abort_upload(key, upload).await;
            Err(err)
        }
    }
}

/// The body through the chunk pipeline: hashed and encoded for the tier into `upload` as
/// it arrives (the next piece received while this one is hashed and written); returns the
/// object's hash, chunk values and size.
async fn feed(
    state: &AppState,
    key: &str,
    tier: &Tier,
    body: BodyReader,
    upload: &TierUpload,
    expected: Option<String>,
) -> Result<([u8; 32], ChunkHashes, u64), ApiError> {
    let source = futures::stream::try_unfold(body, |mut body| async move {
        Ok::<_, ApiError>(body.next().await?.map(|piece| (piece, body)))
    });
    let mut sink = EncodingSink::new(state, "an object write", tier.format.clone(), key, upload);
    let hasher = pipeline::pump(source, ChunkHasher::new(), &mut sink).await?;
    let size = hasher.len();
    let (hash, chunk_hashes) = hasher.finish().map_err(ApiError::internal)?;
    if let Some(expected) = expected {
        if expected != hex::encode(hash) {
            return Err(ApiError::bad_request(
                "hash_mismatch",
                format!(
                    "the body's BLAKE3 is {}, not the {expected} given in X-Strata-Hash; the \
                     upload was damaged, send it again",
                    hex::encode(hash)
                ),
            ));
        }
    }
    sink.finish().await?;
    Ok((hash, chunk_hashes, size))
}

/// Aborts a staged upload; a failure leaves its staging file, logged.
async fn abort_upload(key: &str, upload: TierUpload) {
    if let Err(err) = upload.abort().await {
        tracing::warn!(%key, %err, "cannot remove the staged bytes of an abandoned write");
    }
}

/// Before a new object is written to `tier`: a copy left there by a deleted object of the
/// same key (its bytes and row) is removed first. Called with the key's write lock held.
async fn clear_leftover(state: &AppState, key: &str, tier: &Tier) -> Result<(), ApiError> {
    let placements = state.catalog.placements(key).await?;
    for placement in placements.iter().filter(|p| p.tier == tier.name()) {
        if placement.state == PlacementState::Current {
            return Err(ApiError::internal(format!(
                "{key:?} has a current copy on {} but no object record; restart the service \
                 to reconcile",
                tier.name()
            )));
        }
        let path = Tier::object_path(key);
        store_call(state, "a leftover copy's delete", || {
            tier.store.delete(&path)
        })
        .await
        .map_err(|err| {
            ApiError::unavailable(
                "object_cleanup_pending",
                format!("a copy of an earlier {key:?} cannot be deleted yet: {err}"),
            )
        })?;
        state
            .catalog
            .remove_placement(key, tier.name(), placement.state)
            .await?;
        lock(&state.retire_backlog).remove(&(key.to_string(), tier.id));
    }
    Ok(())
}

/// A byte range to serve: `(offset, len)`, or the whole object.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses a `Range` header for an object of `size` bytes. One range only; several ranges
/// or a malformed header are ignored (the whole object is served), as HTTP allows.
fn parse_range(header: Option<&HeaderValue>, size: u64) -> Range {
    let Some(text) = header.and_then(|value| value.to_str().ok()) else {
        return Range::Whole;
    };
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Range::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => {
            if start >= size {
                Range::Unsatisfiable
            } else {
                Range::Part(start, end.min(size - 1) - start + 1)
            }
        }
        (Ok(start), Err(_)) if last.is_empty() => {
            if start >= size {
                Range::Unsatisfiable
            } else {
                Range::Part(start, size - start)
            }
        }
        (Err(_), Ok(suffix)) if first.is_empty() => {
            if suffix == 0 || size == 0 {
                Range::Unsatisfiable
            } else {
                let len = suffix.min(size);
                Range::Part(size - len, len)
            }
        }
        _ => Range::Whole,
    }
}

fn object_headers(state: &AppState, entry: &ObjectEntry) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let hash = hex::encode(entry.hash);
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("etag", format!("\"{hash}\""));
    put("x-strata-hash", hash);
    put("x-strata-tier", state.tiers[entry.tier].name().to_string());
    put("x-strata-generation", entry.generation.to_string());
    put("x-strata-mtime-ms", entry.mtime_ms.to_string());
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers
}

/// `HEAD /v1/objects/{key}`.
pub async fn head_object(
    State(state): State<Arc<AppState>>,
    ObjectKey(key): ObjectKey,
) -> Result<Response, ApiError> {
    let entry = state
        .index
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("no object {key:?}")))?;
    let mut headers = object_headers(&state, &entry);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.size));
    Ok((StatusCode::OK, headers).into_response())
}

/// `GET /v1/objects/{key}`.
pub async fn get_object(
    State(state): State<Arc<AppState>>,
    ObjectKey(key): ObjectKey,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let guard = state.locks.read(&key).await;
    let entry = state
        .index
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("no object {key:?}")))?;
    let (status, offset, len) = match parse_range(request_headers.get(header::RANGE), entry.size) {
        Range::Whole => (StatusCode::OK, 0, entry.size),
        Range::Part(offset, len) => (StatusCode::PARTIAL_CONTENT, offset, len),
        Range::Unsatisfiable => {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", entry.size)) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            let error = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the range is outside the object's {} bytes", entry.size),
            );
            return Ok((headers, error).into_response());
        }
    };
    // The first span (up to four chunks; the whole object if it had no chunk values yet)
    // is checked before the status goes out: damage there is an error answer, never a 200
    // with bad bytes. It ends on a chunk boundary, so each later span is whole chunks.
    let mut reader = VerifiedReader::open(&state, &key, &entry).await?;
    let first_len = len.min(READ_CHUNK - offset % OBJECT_CHUNK_SIZE);
    let first = reader.read(&state, offset, first_len).await?;
    let mut headers = object_headers(&state, &entry);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {}-{}/{}", offset, offset + len - 1, entry.size);
        if let Ok(value) = HeaderValue::from_str(&range) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    state.metrics.reads.fetch_add(1, Ordering::Relaxed);
    state.metrics.read_bytes.fetch_add(len, Ordering::Relaxed);
    record_access(&state, &key, Op::Read, len);
    let body = if first_len == len {
        drop(guard);
        Body::from(first)
    } else {
        // The read lock travels with the stream: the bytes cannot be replaced or retired
        // before the last chunk is read. Spans start on chunk boundaries, so each chunk is
        // read and checked once.
        let rest = futures::stream::unfold(
            (
                offset + first_len,
                len - first_len,
                guard,
                reader,
                (state.clone(), key.clone()),
            ),
            |(at, left, guard, mut reader, (state, key))| async move {
                if left == 0 {
                    return None;
                }
                let take = left.min(READ_CHUNK);
                match reader.read(&state, at, take).await {
                    Ok(chunk) => Some((
                        Ok::<Bytes, std::io::Error>(chunk),
                        (at + take, left - take, guard, reader, (state, key)),
                    )),
                    Err(err) => {
                        // The status is sent already: the body ends short, before the
                        // chunk that failed, and the log says why.
                        tracing::error!(%key, code = err.code, message = %err.message,
                            "an object read failed part way; its body ends short");
                        Some((
                            Err(std::io::Error::other(err.message)),
                            (at, 0, guard, reader, (state, key)),
                        ))
                    }
                }
            },
        );
        let first = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(first) });
        Body::from_stream(futures::StreamExt::chain(first, rest))
    };
    state.metrics.get_latency.observe(started.elapsed());
    Ok((status, headers, body).into_response())
}

/// `DELETE /v1/objects/{key}`.
pub async fn delete_object(
    State(state): State<Arc<AppState>>,
    ObjectKey(key): ObjectKey,
) -> Result<Response, ApiError> {
    let guard = state.locks.write(&key).await;
    if !state.index.contains(&key) {
        return Err(ApiError::not_found(format!("no object {key:?}")));
    }
    let placements = state
        .catalog
        .delete_object(&key, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no object {key:?}")))?;
    state.index.remove(&key);
    lock(&state.tracker).remove(&key);
    lock(&state.decisions).forget(&key);
    let running = state.mover.cancel_key(&key);
    let path = Tier::object_path(&key);
    for placement in placements {
        let Some(tier) = state.tier(&placement.tier) else {
            continue;
        };
        // A running move deletes its own copy (it may still be writing it).
        if let Some(running) = &running {
            if running.to_tier == tier.id && !running.switched.load(Ordering::SeqCst) {
                continue;
            }
        }
        let deleted = store_call(&state, "an object delete", || tier.store.delete(&path)).await;
        let removed = match deleted {
            Ok(()) => state
                .catalog
                .remove_placement(&key, tier.name(), PlacementState::Retiring)
                .await
                .map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        };
        if let Err(err) = removed {
            tracing::warn!(%key, tier = tier.name(), %err, "copy of a deleted object left for the cleanup sweep");
            lock(&state.retire_backlog).insert((key.clone(), tier.id));
        }
    }
    drop(guard);
    state.metrics.deletes.fetch_add(1, Ordering::Relaxed);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Query of `GET /v1/objects`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Only keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// Only keys after this one (the previous page's `next_start_after`).
    pub start_after: Option<String>,
    /// Page size (default 1000, at most 10000).
    pub limit: Option<usize>,
    /// Add each object's class and access summary.
    #[serde(default)]
    pub heat: bool,
}

/// `GET /v1/objects?prefix=&start_after=&limit=&heat=`.
pub async fn list_objects(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let (page, truncated) = state
        .index
        .list(&query.prefix, query.start_after.as_deref(), limit);
    let next = if truncated {
        page.last().map(|(key, _)| key.clone())
    } else {
        None
    };
    let now = now_ms();
    let rules = state.config.classification_rules();
    let tracker = query.heat.then(|| lock(&state.tracker));
    let objects: Vec<serde_json::Value> = page
        .iter()
        .map(|(key, entry)| {
            let mut value =
                serde_json::to_value(ObjectView::new(&state, key, entry)).unwrap_or_default();
            if let Some(tracker) = &tracker {
                let summary = tracker
                    .summary(key, now)
                    .unwrap_or(AccessSummary::never_accessed(now));
                let decision = rules.classify(&summary);
                value["class"] = serde_json::json!(decision.class);
                value["reason"] = serde_json::json!(decision.reason);
                value["explanation"] = serde_json::json!(decision.explain());
                value["access"] = serde_json::json!({
                    "count_1h": summary.count_1h,
                    "count_24h": summary.count_24h,
                    "last_access_ms": summary.last_access_ms,
                    "fast_rate_per_hour": summary.fast_rate_per_hour,
                    "slow_rate_per_hour": summary.slow_rate_per_hour,
                });
            }
            value
        })
        .collect();
    drop(tracker);
    Ok(Json(serde_json::json!({
        "objects": objects,
        "truncated": truncated,
        "next_start_after": next,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str, size: u64) -> Range {
        parse_range(Some(&HeaderValue::from_str(text).unwrap()), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Range::Part(0, 10));
        assert_eq!(range("bytes=90-200", 100), Range::Part(90, 10));
        assert_eq!(range("bytes=10-", 100), Range::Part(10, 90));
        assert_eq!(range("bytes=-10", 100), Range::Part(90, 10));
        assert_eq!(range("bytes=-1000", 100), Range::Part(0, 100));
        assert_eq!(range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(range("bytes=0-0", 0), Range::Unsatisfiable);
        assert_eq!(range("bytes=0-1,5-6", 100), Range::Whole);
        assert_eq!(range("bytes=9-3", 100), Range::Whole);
        assert_eq!(range("items=0-3", 100), Range::Whole);
        assert_eq!(parse_range(None, 100), Range::Whole);
    }
}
