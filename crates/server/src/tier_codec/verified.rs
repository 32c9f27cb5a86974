//! Verified reads: no byte of an object reaches a client before the 1 MiB chunk it
//! belongs to has been checked against the chunk's recorded BLAKE3 value.
//!
//! The catalog records, with every object version, the chaining value of each
//! [`OBJECT_CHUNK_SIZE`] chunk ([`ChunkHashes`], checked to merge into the object's hash).
//! A [`VerifiedReader`] reads the aligned chunks that cover a range from the object's
//! current copy (through [`TierReader`], so a packed tier's frames are decoded and checked
//! as well), checks each against its value, and only then returns the range. On any tier:
//! a plain file flipped on disk, a packed file replaced by another valid packed object, a
//! file of another key are all refused alike.
//!
//! An object written before the values were recorded has none: its copy is read whole and
//! checked against the object's hash before any byte is served, and its values are
//! computed and recorded (catalog and index), so later reads stream.
//!
//! On damage the reader reports it ([`report_damage`]: metrics, an error log naming the
//! key and tier, a `read_damage` decision that `strata explain` shows) and turns to another
//! copy of the same generation (a move's `copying` or `retiring` copy), checked the same
//! way. With no good copy left the read fails with `object_damaged`.

use std::sync::atomic::Ordering;

use blake3::hazmat::HasherExt;
use bytes::Bytes;
use strata_catalog::{
    object_chunks, ChunkHashes, DecisionRecord, PlacementState, OBJECT_CHUNK_SIZE,
};
use strata_codec::Hash32;

use super::{read_all_from_tier, Damage, TierReadError, TierReader, PACKED_CHUNK};
use crate::error::ApiError;
use crate::index::ObjectEntry;
use crate::mover::store_call;
use crate::state::{lock, now_ms, AppState};
use crate::tiers::Tier;

// A packed frame is a verified chunk: a range's frames and its chunks are the same spans.
const _: () = assert!(PACKED_CHUNK == OBJECT_CHUNK_SIZE);

/// Spans up to this many bytes are hashed on the calling task, larger ones on a blocking
/// thread.
const INLINE_HASH_LIMIT: usize = 64 << 10;

/// The BLAKE3 of `raw` and its chunk values, on a blocking thread when large.
pub async fn hash_chunks(raw: Bytes) -> (Hash32, ChunkHashes) {
    if raw.len() <= INLINE_HASH_LIMIT {
        return ChunkHashes::compute(&raw);
    }
    let input = raw.clone();
    match tokio::task::spawn_blocking(move || ChunkHashes::compute(&input)).await {
        Ok(hashed) => hashed,
        // Only a panic in blake3 could end the task: compute here instead.
        Err(_) => ChunkHashes::compute(&raw),
    }
}

/// Hashes an object as its bytes arrive, in any pieces: its BLAKE3 and the value of each
/// [`OBJECT_CHUNK_SIZE`] chunk, as [`hash_chunks`] computes them from the whole. Holds no
/// bytes: a chunk's value is kept once a byte after it shows the object has more than one
/// chunk (a one-chunk object's value is its hash, a longer one's are chaining values).
#[derive(Debug, Default)]
pub struct ChunkHasher {
    values: Vec<Hash32>,
    current: blake3::Hasher,
    current_len: u64,
    len: u64,
}

impl ChunkHasher {
    /// A hasher for a new object.
    pub fn new() -> ChunkHasher {
        ChunkHasher::default()
    }

    /// Hashes the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.current_len == OBJECT_CHUNK_SIZE {
                // A byte after a whole chunk: not a one-chunk object.
                self.values.push(self.current.finalize_non_root());
                self.current = blake3::Hasher::new();
                self.current.set_input_offset(self.len);
                self.current_len = 0;
            }
            let room = (OBJECT_CHUNK_SIZE - self.current_len) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.current.update(now);
            self.current_len += now.len() as u64;
            self.len += now.len() as u64;
            data = rest;
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The object's BLAKE3 and chunk values.
    pub fn finish(mut self) -> Result<(Hash32, ChunkHashes), String> {
        if self.values.is_empty() {
            let hash = *self.current.finalize().as_bytes();
            return Ok((hash, ChunkHashes::new(vec![hash], self.len, &hash)?));
        }
        self.values.push(self.current.finalize_non_root());
        let hash = object_chunks(self.len)
            .merge(&self.values)
            .map_err(|err| err.to_string())?;
        Ok((hash, ChunkHashes::new(self.values, self.len, &hash)?))
    }
}

impl strata_mover::pipeline::SpanHasher for ChunkHasher {
    fn update_span(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Checks `span`, the bytes of chunks `first..` of an object of `size` bytes, against
/// their values. The error names the first chunk that does not match and its bytes.
async fn verify_span(
    chunks: &ChunkHashes,
    size: u64,
    first: u64,
    span: Bytes,
) -> Result<(), String> {
    let chunks = chunks.clone();
    let inline = span.len() <= INLINE_HASH_LIMIT;
    let check = move || {
        let layout = object_chunks(size);
        let mut at = 0usize;
        let mut index = first;
        while at < span.len() {
            let (start, len) = layout.chunk_range(index);
            let end = at + len as usize;
            let (Some(chunk), Some(want)) = (span.get(at..end), chunks.get(index)) else {
                return Err(format!(
                    "chunk {index} (bytes {start}..{}) is cut short",
                    start + len
                ));
            };
            if layout.chunk_value(index, chunk) != *want {
                return Err(format!(
                    "chunk {index} (bytes {start}..{}) does not match its recorded BLAKE3",
                    start + len
                ));
            }
            at = end;
            index += 1;
        }
        Ok(())
    };
    if inline {
        return check();
    }
    tokio::task::spawn_blocking(check)
        .await
        .unwrap_or_else(|_| Err("its check failed".to_string()))
}

/// Counts damage found by a read, logs it with the key and tier, and records a
/// `read_damage` decision (shown by `strata explain`) saying how to repair the copy.
pub fn report_damage(state: &AppState, damage: &Damage, generation: i64) {
    state.metrics.read_damaged(&damage.tier);
    tracing::error!(
        key = %damage.key,
        tier = %damage.tier,
        generation,
        detail = %damage.detail,
        "a read found a damaged copy; none of its damaged bytes were served"
    );
    let explanation = format!(
        "{damage}; found by a read, which served none of it. Repair: write the object again \
         (PUT), or restore objects/{} on tier {} from a backup",
        damage.key, damage.tier
    );
    lock(&state.decisions).push(
        DecisionRecord {
            key: damage.key.clone(),
            ts_ms: now_ms(),
            class: "damaged".to_string(),
            reason: "read_damage".to_string(),
            action: format!("repair:{}", damage.tier),
            explanation,
            inputs_json: serde_json::json!({
                "tier": damage.tier,
                "generation": generation,
                "detail": damage.detail,
            })
            .to_string(),
            job_id: None,
        },
        true,
    );
}

/// Where a reader's bytes come from.
#[derive(Debug)]
enum Source {
    /// A copy on a tier, checked chunk by chunk as it is read.
    Tier {
        reader: Box<TierReader>,
        tier: String,
    },
    /// A copy read whole and checked against the object's hash (an object that had no
    /// chunk values yet).
    Whole { raw: Bytes, tier: String },
}

/// What a reader knows about the object and the copies it tried.
#[derive(Debug)]
struct Copies {
    key: String,
    size: u64,
    hash: Hash32,
    generation: i64,
    chunks: Option<ChunkHashes>,
    /// Tiers whose copy was tried (and found damaged or unreadable, but for the one in use).
    tried: Vec<String>,
    /// The first damage found, once the reader has turned away from the current copy.
    damage: Option<Damage>,
}

/// Reads an object's bytes, each chunk checked before it is returned (see the module
/// documentation). Opened under the key's read lock, which must be held while it reads.
#[derive(Debug)]
pub struct VerifiedReader {
    copies: Copies,
    source: Source,
}

impl VerifiedReader {
    /// Opens the current copy of `key` (`entry`, from the index). An object without chunk
    /// values is read and checked whole here, before anything is served.
    pub async fn open(
        state: &AppState,
        key: &str,
        entry: &ObjectEntry,
    ) -> Result<VerifiedReader, ApiError> {
        let tier = &state.tiers[entry.tier];
        let mut copies = Copies {
            key: key.to_string(),
            size: entry.size,
            hash: entry.hash,
            generation: entry.generation,
            chunks: entry.chunk_hashes.clone(),
            tried: vec![tier.name().to_string()],
            damage: None,
        };
        let source = match copies.open_copy(state, tier, Some(entry.stored)).await {
            Ok(source) => source,
            Err(TierReadError::Damaged(damage)) => copies.fail_over(state, damage).await?,
            Err(TierReadError::Store(err)) => return Err(err.into()),
        };
        Ok(VerifiedReader { copies, source })
    }

    /// `len` bytes from `offset` (within the object), every chunk they touch checked. A
    /// damaged copy is left for another good one if there is one.
    pub async fn read(
        &mut self,
        state: &AppState,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, ApiError> {
        loop {
            match self.read_once(state, offset, len).await {
                Ok(bytes) => return Ok(bytes),
                Err(TierReadError::Damaged(damage)) => {
                    self.source = self.copies.fail_over(state, damage).await?;
                }
                // Another copy that became unreadable (a retiring copy deleted meanwhile):
                // try the next one, or answer the damage that sent the read there.
                Err(TierReadError::Store(err)) => match self.copies.damage.clone() {
                    Some(damage) => {
                        tracing::warn!(key = %self.copies.key, %err, "another copy of a damaged object became unreadable");
                        self.source = self.copies.next_copy(state, damage).await?;
                    }
                    None => return Err(err.into()),
                },
            }
        }
    }

    async fn read_once(
        &self,
        state: &AppState,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, TierReadError> {
        let (tier, whole) = match &self.source {
            Source::Tier { tier, .. } => (tier, None),
            Source::Whole { raw, tier } => (tier, Some(raw)),
        };
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= self.copies.size);
        let Some(end) = end else {
            return Err(self.copies.damaged(
                tier,
                format!(
                    "bytes {offset}..{} asked for, the object has {}",
                    offset.saturating_add(len),
                    self.copies.size
                ),
            ));
        };
        if len == 0 {
            return Ok(Bytes::new());
        }
        if let Some(raw) = whole {
            // Checked whole against the object's hash when opened.
            return Ok(raw.slice(offset as usize..end as usize));
        }
        let (Source::Tier { reader, .. }, Some(chunks)) = (&self.source, &self.copies.chunks)
        else {
            return Err(self
                .copies
                .damaged(tier, "no chunk values to check it with".to_string()));
        };
        let first = offset / OBJECT_CHUNK_SIZE;
        let last = (end - 1) / OBJECT_CHUNK_SIZE;
        let layout = object_chunks(self.copies.size);
        let start = layout.chunk_range(first).0;
        let (last_start, last_len) = layout.chunk_range(last);
        let span = reader
            .read(state, start, last_start + last_len - start)
            .await?;
        verify_span(chunks, self.copies.size, first, span.clone())
            .await
            .map_err(|detail| self.copies.damaged(tier, detail))?;
        let skip = (offset - start) as usize;
        Ok(span.slice(skip..skip + len as usize))
    }
}

impl Copies {
    fn damaged(&self, tier: &str, detail: String) -> TierReadError {
        TierReadError::Damaged(Damage {
            key: self.key.clone(),
            tier: tier.to_string(),
            detail,
        })
    }

    /// Opens the copy on `tier` (`stored` bytes, if known). With chunk values, reads are
    /// checked as they go; without, the copy is read and checked whole here, and its
    /// values recorded.
    async fn open_copy(
        &mut self,
        state: &AppState,
        tier: &Tier,
        stored: Option<u64>,
    ) -> Result<Source, TierReadError> {
        if self.chunks.is_some() {
            let stored = match stored {
                Some(stored) => stored,
                None => self.stored_len(state, tier).await?,
            };
            let reader = TierReader::open(state, tier, &self.key, self.size, stored).await?;
            return Ok(Source::Tier {
                reader: Box::new(reader),
                tier: tier.name().to_string(),
            });
        }
        let read = read_all_from_tier(state, tier, &self.key).await?;
        let (hash, chunks) = hash_chunks(read.raw.clone()).await;
        if hash != self.hash || read.raw.len() as u64 != self.size {
            return Err(self.damaged(
                tier.name(),
                format!(
                    "its {} bytes do not match the object's BLAKE3 {} ({} bytes)",
                    read.raw.len(),
                    hex::encode(self.hash),
                    self.size
                ),
            ));
        }
        self.record_chunks(state, chunks).await;
        Ok(Source::Whole {
            raw: read.raw,
            tier: tier.name().to_string(),
        })
    }

    /// The stored size of a copy the index does not describe (another copy's).
    async fn stored_len(&self, state: &AppState, tier: &Tier) -> Result<u64, TierReadError> {
        if !tier.format.is_packed() {
            return Ok(self.size);
        }
        let path = Tier::object_path(&self.key);
        let stat = store_call(state, "an object stat", || tier.store.stat(&path)).await?;
        stat.map(|entry| entry.size)
            .ok_or_else(|| self.damaged(tier.name(), "the copy is missing".to_string()))
    }

    /// Records the values of a copy just checked whole, in the catalog and the index; a
    /// failure only means the next read checks it whole again.
    async fn record_chunks(&mut self, state: &AppState, chunks: ChunkHashes) {
        match state
            .catalog
            .set_chunk_hashes(&self.key, self.generation, &chunks)
            .await
        {
            Ok(true) => {
                state
                    .index
                    .set_chunk_hashes(&self.key, self.generation, chunks.clone());
                tracing::info!(key = %self.key, generation = self.generation,
                    "checked an object written before chunk values were kept, and recorded them");
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(key = %self.key, %err, "cannot record the chunk values of an object checked whole; its next read checks it whole again");
            }
        }
        self.chunks = Some(chunks);
    }

    /// Reports `damage` and opens another good copy, or answers the damage.
    async fn fail_over(&mut self, state: &AppState, damage: Damage) -> Result<Source, ApiError> {
        report_damage(state, &damage, self.generation);
        self.next_copy(state, damage).await
    }

    /// Opens the next copy of the object's generation not tried yet (a move's `copying`
    /// or `retiring` copy); none left: the read fails with `damage`.
    async fn next_copy(&mut self, state: &AppState, damage: Damage) -> Result<Source, ApiError> {
        self.damage.get_or_insert_with(|| damage.clone());
        let placements = match state.catalog.placements(&self.key).await {
            Ok(placements) => placements,
            Err(err) => {
                tracing::warn!(key = %self.key, %err, "cannot look for another copy of a damaged object");
                Vec::new()
            }
        };
        for placement in placements {
            if placement.state == PlacementState::Current
                || placement.generation != self.generation
                || self.tried.contains(&placement.tier)
            {
                continue;
            }
            self.tried.push(placement.tier.clone());
            let Some(tier) = state.tier(&placement.tier) else {
                continue;
            };
            match self.open_copy(state, tier, None).await {
                Ok(source) => {
                    state.metrics.read_failovers.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(key = %self.key, damaged = %damage.tier, tier = tier.name(),
                        state = %placement.state, "serving a damaged object from another copy");
                    return Ok(source);
                }
                Err(TierReadError::Damaged(other)) => {
                    report_damage(state, &other, self.generation);
                }
                Err(TierReadError::Store(err)) => {
                    tracing::warn!(key = %self.key, tier = tier.name(), %err,
                        "another copy of a damaged object cannot be read");
                }
            }
        }
        Err(TierReadError::Damaged(damage).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_values_hashed_as_bytes_arrive_are_those_of_the_whole_object() {
        let chunk = OBJECT_CHUNK_SIZE as usize;
        let data: Vec<u8> = (0..3 * chunk + 999).map(|i| (i * 31 % 251) as u8).collect();
        for len in [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, data.len()] {
            for piece in [1000, 4096, chunk, 3 * chunk] {
                let mut hasher = ChunkHasher::new();
                for part in data[..len].chunks(piece) {
                    hasher.update(part);
                }
                assert_eq!(hasher.len(), len as u64);
                let streamed = hasher.finish().unwrap();
                assert_eq!(
                    streamed,
                    ChunkHashes::compute(&data[..len]),
                    "{len}/{piece}"
                );
                assert_eq!(streamed.0, *blake3::hash(&data[..len]).as_bytes());
            }
        }
    }
}
