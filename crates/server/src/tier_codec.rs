//! Object bytes on a tier, in the tier's layout: the one place that turns an object's raw
//! bytes into what a tier stores, and what a tier stores back into raw bytes. The packed
//! object's byte layout (table, trailer, their checks) lives with Strata's other on-disk
//! formats in `strata_codec::format::tier_object` (specified in `docs/FORMATS.md`); this
//! module chooses codecs and does the reads.
//!
//! Every write of object bytes to a tier (a PUT, a move's copy) goes through
//! [`TierEncoder`] (chunk by chunk, as the bytes stream), and every read (GET, a move's source read and verify, recovery)
//! through [`TierReader`] or [`read_all_from_tier`]. On a `plain` tier both are the
//! identity. On a `packed` tier an object is stored at the same path, `objects/<key>`, as
//!
//! ```text
//! frame 0 | frame 1 | ... | frame n-1 | frame table (n × 40 bytes) | trailer (32 bytes)
//! ```
//!
//! - **frames**: the object cut into chunks of [`PACKED_CHUNK`] raw bytes (1 MiB; the last
//!   one shorter), each a self-describing frame of the codec crate
//!   (`strata_codec::compress::frame`: 64-byte header with codec, raw length, stored
//!   length and BLAKE3 of the raw chunk, then the payload), compressed per the tier's
//!   `codec` policy: `auto` and `max` probe each chunk and select
//!   (`strata_codec::analyze::encode_chunk`), a fixed codec (`zstd:19`, `none`, ...) is
//!   used as given; a chunk the codec does not shrink is stored raw inside its frame.
//! - **frame table**: per frame, its length (header + payload, u64 LE) and the BLAKE3 of
//!   its raw chunk (32 bytes), so a frame is bound to its position: a frame copied over
//!   another one decodes, but does not match the table.
//! - **trailer**: raw length (u64), chunk size (u32), frame count (u32), format version
//!   (u8, [`PACKED_VERSION`]), three zero bytes, the first 8 bytes of the BLAKE3 of the
//!   table and the trailer's first 20 bytes, and the magic `STPT`. An empty object is the
//!   trailer alone.
//!
//! The table is worth its 40 bytes per MiB: a ranged read of a large object on S3 costs
//! two requests (the tail with the table, then the span of frames that covers the range)
//! instead of one per frame header walked. Objects of at most [`WHOLE_READ_LIMIT`] stored
//! bytes are read in one request. 1 MiB chunks keep the read amplification of a small
//! range at most two chunks, at a cost in ratio (against 4 MiB) of a few percent.
//!
//! On a tier with `encryption` set, every frame is sealed as an encrypted frame
//! (`strata_codec::format::encrypted`: key id, random nonce, the header authenticated) and the
//! object is written as packed format version 2, whose table holds each encrypted frame's
//! BLAKE3; a read opens each frame with the tier's keys and then runs the same checks,
//! the raw BLAKE3 last. A frame under a key id the tier does not hold, or whose tag fails,
//! is damage naming the tier and the key id: no bytes are returned.
//!
//! Every read decodes and checks each frame it serves (header check, codec, raw length,
//! raw BLAKE3, and the table's hash for that position): damage is a
//! [`TierReadError::Damaged`], never bytes. An object's identity hash (the catalog's
//! BLAKE3) is always over its raw bytes; callers that read whole objects check it too.
//! Reads served to clients go through [`verified::VerifiedReader`], which also checks
//! every 1 MiB chunk, on any layout, against the chunk values the catalog records.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use strata_codec::analyze::{encode_chunk, sniff_format, FormatInfo, Objective};
use strata_codec::compress::{encode_frame, Codec, CodecSpec, Filter, FRAME_HEADER_LEN};
use strata_codec::format::encrypted::{KeyRing, ENCRYPTED_OVERHEAD};
use strata_codec::format::tier_object::{
    check_encrypted_frame, check_frame, encrypted_table_entry, encrypted_tail, table_entry, tail,
    tail_error_text, FrameTable, TailError,
};
use strata_heat::{Layout, TierConfig};
use strata_mover::pipeline;
use strata_store::StoreError;

use crate::mover::store_call;
use crate::state::AppState;
use crate::tier_store::TierObject;
use crate::tiers::Tier;

pub mod verified;

pub use strata_codec::format::tier_object::{
    PACKED_CHUNK, PACKED_VERSION, TABLE_ENTRY_LEN, TRAILER_LEN, TRAILER_MAGIC,
};

/// The link rate `auto` optimises for on a tier: 1 Gbit/s, as `strata migrate --codec auto`
/// assumes by default.
pub const TIER_LINK_RATE: f64 = Objective::DEFAULT_LINK_RATE;
/// Packed objects up to this many stored bytes are read whole, in one request.
pub const WHOLE_READ_LIMIT: u64 = 2 << 20;

/// Raw chunks smaller than this are encoded and decoded on the calling task.
const INLINE_CODEC_LIMIT: usize = 64 << 10;

/// How a tier stores object bytes.
#[derive(Clone, Debug)]
pub enum TierFormat {
    /// The raw bytes, as they are.
    Plain,
    /// Frames, a frame table and a trailer (see the module documentation).
    Packed {
        /// What the codec selector optimises, from the tier's `codec` policy.
        objective: Objective,
        /// The tier's encryption keys, when it has `encryption` set: every frame written is
        /// sealed with the current one.
        keys: Option<Arc<KeyRing>>,
    },
}

impl PartialEq for TierFormat {
    /// Formats are equal when they write the same bytes' kind: layout, objective, and
    /// whether (and under which key id) frames are sealed.
    fn eq(&self, other: &TierFormat) -> bool {
        match (self, other) {
            (TierFormat::Plain, TierFormat::Plain) => true,
            (
                TierFormat::Packed { objective, keys },
                TierFormat::Packed {
                    objective: other_objective,
                    keys: other_keys,
                },
            ) => {
                objective == other_objective
                    && keys.as_ref().map(|k| k.current_id())
                        == other_keys.as_ref().map(|k| k.current_id())
            }
            _ => false,
        }
    }
}

impl TierFormat {
    /// The format a tier's configuration asks for; the error names what is wrong with its
    /// codec policy.
    pub fn of(config: &TierConfig) -> Result<TierFormat, String> {
        match config.layout {
            Layout::Plain => Ok(TierFormat::Plain),
            Layout::Packed => {
                let spec = CodecSpec::parse(&config.codec).map_err(|err| err.to_string())?;
                let workers = std::thread::available_parallelism()
                    .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
                Ok(TierFormat::Packed {
                    objective: Objective::from_spec(spec, TIER_LINK_RATE, workers),
                    keys: None,
                })
            }
        }
    }

    /// The same format, its frames sealed with `keys` (a packed format only: the service
    /// refuses encryption on plain tiers at load).
    pub fn encrypted_with(self, keys: Option<KeyRing>) -> TierFormat {
        match self {
            TierFormat::Packed { objective, .. } => TierFormat::Packed {
                objective,
                keys: keys.map(Arc::new),
            },
            plain => plain,
        }
    }

    /// Whether objects are stored packed.
    pub fn is_packed(&self) -> bool {
        matches!(self, TierFormat::Packed { .. })
    }

    /// The tier's encryption keys, if it encrypts.
    pub fn keys(&self) -> Option<&Arc<KeyRing>> {
        match self {
            TierFormat::Packed { keys, .. } => keys.as_ref(),
            TierFormat::Plain => None,
        }
    }

    /// The most bytes an object of `raw_len` raw bytes can take on a tier of this format:
    /// its raw length on a plain tier; on a packed tier, the raw length plus a frame header
    /// and a table entry per chunk and the trailer (incompressible chunks are stored raw).
    pub fn stored_bound(&self, raw_len: u64) -> u64 {
        match self {
            TierFormat::Plain => raw_len,
            TierFormat::Packed { keys, .. } => {
                let frames = raw_len.div_ceil(PACKED_CHUNK);
                let sealing = if keys.is_some() {
                    ENCRYPTED_OVERHEAD as u64
                } else {
                    0
                };
                raw_len
                    .saturating_add(
                        frames.saturating_mul(FRAME_HEADER_LEN as u64 + sealing + TABLE_ENTRY_LEN),
                    )
                    .saturating_add(TRAILER_LEN)
            }
        }
    }
}

/// A damaged copy: what is wrong with it, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The object key.
    pub key: String,
    /// The tier name.
    pub tier: String,
    /// What failed, naming the frame and its raw byte range when one did.
    pub detail: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the copy of {:?} on tier {} is damaged: {}",
            self.key, self.tier, self.detail
        )
    }
}

/// Why object bytes could not be read from a tier.
#[derive(Debug, thiserror::Error)]
pub enum TierReadError {
    /// The store call failed (after the service's retries).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bytes were read but do not decode and check: nothing of them is returned.
    #[error("{0}")]
    Damaged(Damage),
}

/// An object's bytes read whole from a tier.
#[derive(Debug, Clone)]
pub struct TierBytes {
    /// The raw bytes (decoded and checked frame by frame on a packed tier).
    pub raw: Bytes,
    /// How many bytes the tier stores for them.
    pub stored_len: u64,
}

/// Encodes an object's raw bytes as `tier` stores them: the same bytes on a plain tier,
/// frames, table and trailer on a packed one (chunks compressed side by side on blocking
/// threads). Never fails: a chunk whose encoding task dies is stored raw in its frame.
/// The whole-object form of [`TierEncoder`], which writes the same bytes.
pub async fn encode_for_tier(tier: &Tier, key: &str, raw: Bytes) -> Bytes {
    if !tier.format.is_packed() {
        return raw;
    }
    let mut encoder = TierEncoder::new(tier.format.clone(), key);
    let mut out = encoder.push(raw).await;
    out.extend(encoder.finish().await);
    Bytes::from(out.concat())
}

/// Encodes an object for a tier as its raw bytes arrive, in any pieces: on a plain tier
/// every piece is stored as it is; on a packed tier each [`PACKED_CHUNK`] of raw bytes
/// becomes a frame as soon as it is complete (up to one per core encoded at once, on
/// blocking threads), and [`TierEncoder::finish`] adds the last, shorter frame, the frame
/// table and the trailer. The bytes are those [`encode_for_tier`] writes for the whole
/// object; memory holds one partial chunk and the chunks being encoded, whatever the
/// object's size.
pub struct TierEncoder {
    objective: Option<Objective>,
    /// The tier's keys: every frame sealed with the current one.
    keys: Option<Arc<KeyRing>>,
    key: String,
    /// Sniffed from the first chunk (what `sniff_format` reads of a whole object).
    format: Option<FormatInfo>,
    /// Raw bytes of the chunk being filled.
    pending: BytesMut,
    /// Raw bytes handed to frames so far.
    raw_len: u64,
    /// Frames being encoded, in order.
    in_flight: VecDeque<Encoding>,
    /// The table entries of the frames returned so far.
    table: Vec<u8>,
    /// Stored bytes returned so far.
    stored: u64,
}

/// A frame on its way.
enum Encoding {
    Ready(Vec<u8>),
    /// On a blocking thread; the raw chunk is kept to store it raw should the task die.
    Task(tokio::task::JoinHandle<Vec<u8>>, Bytes),
}

impl TierEncoder {
    /// An encoder for an object of `key` on a tier of `format`.
    pub fn new(format: TierFormat, key: &str) -> TierEncoder {
        let (objective, keys) = match format {
            TierFormat::Plain => (None, None),
            TierFormat::Packed { objective, keys } => (Some(objective), keys),
        };
        TierEncoder {
            objective,
            keys,
            key: key.to_string(),
            format: None,
            pending: BytesMut::new(),
            raw_len: 0,
            in_flight: VecDeque::new(),
            table: Vec::new(),
            stored: 0,
        }
    }

    /// Takes the next raw bytes; returns the stored bytes now ready, in order.
    pub async fn push(&mut self, raw: Bytes) -> Vec<Bytes> {
        if self.objective.is_none() {
            self.stored += raw.len() as u64;
            return vec![raw];
        }
        let chunk = PACKED_CHUNK as usize;
        let mut rest = raw;
        let mut out = Vec::new();
        while !rest.is_empty() {
            if self.pending.is_empty() && rest.len() >= chunk {
                // A whole chunk in the piece: no copy.
                let whole = rest.split_to(chunk);
                self.dispatch(whole);
            } else {
                let take = (chunk - self.pending.len()).min(rest.len());
                self.pending.extend_from_slice(&rest.split_to(take));
                if self.pending.len() == chunk {
                    let whole = self.pending.split().freeze();
                    self.dispatch(whole);
                }
            }
            while self.in_flight.len() > workers() {
                out.push(self.next_frame().await);
            }
        }
        out
    }

    /// Ends the object: the stored bytes still to come (the frames in flight, the last
    /// one, the table and the trailer on a packed tier).
    pub async fn finish(mut self) -> Vec<Bytes> {
        let Some(_) = self.objective else {
            return Vec::new();
        };
        if !self.pending.is_empty() {
            let last = self.pending.split().freeze();
            self.dispatch(last);
        }
        let mut out = Vec::with_capacity(self.in_flight.len() + 1);
        while !self.in_flight.is_empty() {
            out.push(self.next_frame().await);
        }
        let table = std::mem::take(&mut self.table);
        let tail = Bytes::from(if self.keys.is_some() {
            encrypted_tail(self.raw_len, table)
        } else {
            tail(self.raw_len, table)
        });
        self.stored += tail.len() as u64;
        out.push(tail);
        out
    }

    /// Stored bytes returned so far (all of them, after [`TierEncoder::finish`]).
    pub fn stored_len(&self) -> u64 {
        self.stored
    }

    /// Starts encoding the next chunk.
    fn dispatch(&mut self, piece: Bytes) {
        let Some(objective) = self.objective else {
            return;
        };
        let format = self
            .format
            .get_or_insert_with(|| sniff_format(&piece, Some(&self.key)))
            .clone();
        let offset = self.raw_len;
        self.raw_len += piece.len() as u64;
        let keys = self.keys.clone();
        let encoding = if piece.len() <= INLINE_CODEC_LIMIT {
            let frame = encode_chunk(&piece, offset, &format, &objective).frame;
            Encoding::Ready(seal(keys.as_deref(), frame))
        } else {
            let input = piece.clone();
            Encoding::Task(
                tokio::task::spawn_blocking(move || {
                    let frame = encode_chunk(&input, offset, &format, &objective).frame;
                    seal(keys.as_deref(), frame)
                }),
                piece,
            )
        };
        self.in_flight.push_back(encoding);
    }

    /// The oldest frame in flight, once encoded, with its table entry kept.
    async fn next_frame(&mut self) -> Bytes {
        let frame = match self.in_flight.pop_front() {
            Some(Encoding::Ready(frame)) => frame,
            Some(Encoding::Task(task, piece)) => task.await.unwrap_or_else(|_| {
                seal(
                    self.keys.as_deref(),
                    encode_frame(&piece, Codec::None, Filter::None),
                )
            }),
            None => return Bytes::new(),
        };
        let entry = if self.keys.is_some() {
            encrypted_table_entry(&frame)
        } else {
            table_entry(&frame)
        };
        self.table.extend_from_slice(&entry);
        self.stored += frame.len() as u64;
        Bytes::from(frame)
    }
}

/// `frame` as a tier with `keys` stores it: sealed with the current key, or as it is.
fn seal(keys: Option<&KeyRing>, frame: Vec<u8>) -> Vec<u8> {
    match keys {
        Some(keys) => keys.seal(&frame),
        None => frame,
    }
}

fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Decodes frames `first..=last` of `table`, whose stored bytes are `span` (from the first one's
/// offset on), and checks each against the table; encrypted frames are opened with `keys`.
async fn decode(
    table: &FrameTable,
    first: usize,
    last: usize,
    span: Bytes,
    keys: Option<&Arc<KeyRing>>,
) -> Result<Vec<u8>, String> {
    if table.encrypted && keys.is_none() {
        return Err(
            "its frames are encrypted and this tier has no encryption key; set the tier's \
             encryption and encryption_key_file (or encryption_key_env) to the key it was \
             written with"
                .to_string(),
        );
    }
    let keys = keys.filter(|_| table.encrypted).cloned();
    let base = table.frames[first].offset;
    let mut jobs = Vec::with_capacity(last + 1 - first);
    for index in first..=last {
        let entry = &table.frames[index];
        let at = (entry.offset - base) as usize;
        let Some(frame) = span.get(at..at + entry.len as usize) else {
            return Err(format!("frame {index} is cut short"));
        };
        let frame = span.slice_ref(frame);
        let (start, end) = table.raw_range(index);
        jobs.push((index, frame, entry.raw_hash, end - start, start));
    }
    let decoded: Vec<Result<Vec<u8>, String>> = futures::stream::iter(jobs)
        .map(|(index, frame, hash, raw_len, start)| {
            let keys = keys.clone();
            async move {
                let check = move || match keys {
                    Some(keys) => check_encrypted_frame(&frame, &hash, raw_len, &keys),
                    None => check_frame(&frame, &hash, raw_len),
                };
                let result = if raw_len as usize <= INLINE_CODEC_LIMIT {
                    check()
                } else {
                    tokio::task::spawn_blocking(check)
                        .await
                        .unwrap_or_else(|_| Err("its decoding failed".to_string()))
                };
                result.map_err(|why| {
                    format!(
                        "frame {index} (raw bytes {start}..{}): {why}",
                        start + raw_len
                    )
                })
            }
        })
        .buffered(workers())
        .collect()
        .await;
    let mut out = Vec::new();
    for raw in decoded {
        out.extend_from_slice(&raw?);
    }
    Ok(out)
}

/// Reads object bytes from one tier: opened once per read of an object (a packed object's
/// frame table is read at open), then any number of ranges.
#[derive(Debug, Clone)]
pub struct TierReader {
    tier: Tier,
    key: String,
    /// The copy, opened once (on a tier with domains: one look at them for every span).
    object: TierObject,
    raw_len: u64,
    packed: Option<PackedObject>,
}

#[derive(Debug, Clone)]
struct PackedObject {
    table: FrameTable,
    /// The whole stored object, when it was small enough to read in one request.
    whole: Option<Bytes>,
}

impl TierReader {
    /// Opens the copy of `key` on `tier`, which holds `raw_len` raw bytes in `stored_len`
    /// stored bytes (the index's sizes; they are checked against the table).
    pub async fn open(
        state: &AppState,
        tier: &Tier,
        key: &str,
        raw_len: u64,
        stored_len: u64,
    ) -> Result<TierReader, TierReadError> {
        let object = open_object(state, tier, key).await?;
        TierReader::with_object(state, tier, key, object, raw_len, stored_len).await
    }

    /// Opens the copy of `key` on `tier` at the length it has there (a stat of a tier's
    /// one store; on a tier with domains, what the look at them found): the reader and
    /// that stored length. A missing copy is a `NotFound` store error.
    pub async fn open_stored(
        state: &AppState,
        tier: &Tier,
        key: &str,
        raw_len: u64,
    ) -> Result<(TierReader, u64), TierReadError> {
        let object = open_object(state, tier, key).await?;
        let stored = store_call(state, "an object stat", || object.len()).await?;
        let Some(stored_len) = stored else {
            return Err(TierReadError::Store(StoreError::NotFound {
                path: Tier::object_path(key),
            }));
        };
        let reader = TierReader::with_object(state, tier, key, object, raw_len, stored_len).await?;
        Ok((reader, stored_len))
    }

    async fn with_object(
        state: &AppState,
        tier: &Tier,
        key: &str,
        object: TierObject,
        raw_len: u64,
        stored_len: u64,
    ) -> Result<TierReader, TierReadError> {
        let damaged = |detail: String| {
            TierReadError::Damaged(Damage {
                key: key.to_string(),
                tier: tier.name().to_string(),
                detail,
            })
        };
        let packed = if tier.format.is_packed() {
            let (table, whole) = if stored_len <= WHOLE_READ_LIMIT {
                let whole = store_call(state, "an object read", || object.read_all()).await?;
                let table = FrameTable::parse(&whole, whole.len() as u64)
                    .map_err(|err| damaged(tail_error_text(err)))?;
                (table, Some(whole))
            } else {
                (
                    read_table(state, &object, raw_len, stored_len)
                        .await
                        .map_err(|err| match err {
                            Ok(text) => damaged(text),
                            Err(store) => TierReadError::Store(store),
                        })?,
                    None,
                )
            };
            if table.raw_len != raw_len {
                return Err(damaged(format!(
                    "it holds {} raw bytes, the catalog records {raw_len}",
                    table.raw_len
                )));
            }
            Some(PackedObject { table, whole })
        } else {
            None
        };
        Ok(TierReader {
            tier: tier.clone(),
            key: key.to_string(),
            object,
            raw_len,
            packed,
        })
    }

    /// The raw bytes `0..len` as a stream of spans ([`PLAIN_SPAN`] bytes on a plain tier,
    /// [`SPAN`] of whole frames on a packed one), [`READ_AHEAD`] reads in flight: the source
    /// of [`strata_mover::pipeline::pump`]. A plain copy shorter than `len` gives short
    /// spans, which the hash then tells apart.
    pub fn spans<'a>(
        &'a self,
        state: &'a AppState,
        len: u64,
    ) -> impl futures::Stream<Item = Result<Bytes, TierReadError>> + Send + 'a {
        let span = if self.packed.is_some() {
            SPAN
        } else {
            PLAIN_SPAN
        };
        pipeline::read_ahead(len, span, READ_AHEAD, move |offset, len| {
            self.read(state, offset, len)
        })
    }

    /// `len` raw bytes from `offset` (within the object).
    pub async fn read(
        &self,
        state: &AppState,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, TierReadError> {
        let Some(packed) = &self.packed else {
            return Ok(store_call(state, "an object read", || {
                self.object.read_range(offset, len)
            })
            .await?);
        };
        if len == 0 {
            return Ok(Bytes::new());
        }
        let end = offset.checked_add(len).filter(|end| *end <= self.raw_len);
        if end.is_none() {
            return Err(self.damaged(format!(
                "raw bytes {offset}..{} asked for, the object has {}",
                offset.saturating_add(len),
                self.raw_len
            )));
        }
        let table = &packed.table;
        let (first, last) = table.frames_for(offset, len);
        let start = table.frames[first].offset;
        let stop = table.frames[last].offset + table.frames[last].len;
        let span = match &packed.whole {
            Some(whole) => whole.slice(start as usize..stop as usize),
            None => {
                store_call(state, "an object read", || {
                    self.object.read_range(start, stop - start)
                })
                .await?
            }
        };
        let raw = decode(table, first, last, span, self.tier.format.keys())
            .await
            .map_err(|detail| self.damaged(detail))?;
        let skip = (offset - table.raw_range(first).0) as usize;
        let raw = Bytes::from(raw);
        Ok(raw.slice(skip..skip + len as usize))
    }

    fn damaged(&self, detail: String) -> TierReadError {
        TierReadError::Damaged(Damage {
            key: self.key.clone(),
            tier: self.tier.name().to_string(),
            detail,
        })
    }
}

/// Opens the copy of `key` on `tier` (once per read of it).
async fn open_object(state: &AppState, tier: &Tier, key: &str) -> Result<TierObject, StoreError> {
    let path = Tier::object_path(key);
    store_call(state, "an object read", || tier.store.open(&path)).await
}

/// Reads a large packed object's table: the tail the expected table needs, and once more
/// if the trailer announces a longer one. `Err(Ok(text))` is damage.
async fn read_table(
    state: &AppState,
    object: &TierObject,
    raw_len: u64,
    stored_len: u64,
) -> Result<FrameTable, Result<String, StoreError>> {
    let expected = raw_len.div_ceil(PACKED_CHUNK) * TABLE_ENTRY_LEN + TRAILER_LEN;
    let mut want = expected.min(stored_len);
    for _ in 0..2 {
        let tail = store_call(state, "an object read", || {
            object.read_range(stored_len - want, want)
        })
        .await
        .map_err(Err)?;
        match FrameTable::parse(&tail, stored_len) {
            Ok(table) => return Ok(table),
            Err(TailError::NeedMore(needed)) if needed > want && needed <= stored_len => {
                want = needed;
            }
            Err(err) => return Err(Ok(tail_error_text(err))),
        }
    }
    Err(Ok("the frame table could not be read".to_string()))
}

/// Reads the whole copy of `key` on `tier` and returns its raw bytes, every frame decoded
/// and checked on a packed tier (the caller checks the object's BLAKE3).
pub async fn read_all_from_tier(
    state: &AppState,
    tier: &Tier,
    key: &str,
) -> Result<TierBytes, TierReadError> {
    let path = Tier::object_path(key);
    let stored = store_call(state, "an object read", || tier.store.read_all(&path)).await?;
    let stored_len = stored.len() as u64;
    if !tier.format.is_packed() {
        return Ok(TierBytes {
            raw: stored,
            stored_len,
        });
    }
    let damaged = |detail: String| {
        TierReadError::Damaged(Damage {
            key: key.to_string(),
            tier: tier.name().to_string(),
            detail,
        })
    };
    let table =
        FrameTable::parse(&stored, stored_len).map_err(|err| damaged(tail_error_text(err)))?;
    let raw = if table.frames.is_empty() {
        Vec::new()
    } else {
        decode(
            &table,
            0,
            table.frames.len() - 1,
            stored,
            tier.format.keys(),
        )
        .await
        .map_err(damaged)?
    };
    Ok(TierBytes {
        raw: Bytes::from(raw),
        stored_len,
    })
}

/// Raw bytes a move, a write's read-back, a re-encode's verify or a scrub handles per step
/// of the pipeline on a packed tier (whole frames: a frame is decoded whole).
pub const SPAN: u64 = 4 << 20;

/// The same on a plain tier: the pipeline's span, sized for the CPU cache (see
/// [`pipeline::IO_SPAN`]).
pub const PLAIN_SPAN: u64 = pipeline::IO_SPAN;

/// Spans read ahead of the one being hashed and written.
pub const READ_AHEAD: usize = pipeline::READ_AHEAD;

/// Reads `key`'s copy on `to` span by span (never whole, reading ahead while it hashes):
/// its stored length and the BLAKE3 of its raw bytes (every frame checked on a packed
/// tier). A move's verify, a re-encode's verify and scrub compare it with the catalog's
/// hash.
pub async fn hash_stored(
    state: &AppState,
    to: &Tier,
    key: &str,
    raw_len: u64,
) -> Result<(u64, [u8; 32]), TierReadError> {
    let (reader, stored_len) = TierReader::open_stored(state, to, key, raw_len).await?;
    let readable = if to.format.is_packed() {
        raw_len
    } else {
        raw_len.min(stored_len)
    };
    let hasher =
        pipeline::hash_stream(reader.spans(state, readable), blake3::Hasher::new()).await?;
    Ok((stored_len, *hasher.finalize().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_codec::format::tier_object::assemble;

    fn packed(codec: &str) -> TierFormat {
        let mut config = TierConfig::local("t", std::path::Path::new("/tmp"));
        config.layout = Layout::Packed;
        config.codec = codec.to_string();
        TierFormat::of(&config).unwrap()
    }

    fn encode(raw: &[u8], codec: &str) -> Vec<u8> {
        let TierFormat::Packed { objective, .. } = packed(codec) else {
            unreachable!()
        };
        let format = sniff_format(raw, None);
        let frames = raw
            .chunks(PACKED_CHUNK as usize)
            .enumerate()
            .map(|(i, c)| encode_chunk(c, i as u64 * PACKED_CHUNK, &format, &objective).frame)
            .collect();
        assemble(raw.len() as u64, frames)
    }

    fn text(len: usize) -> Vec<u8> {
        let line = b"2025-12-01T00:00:00Z station=42 t2m=281.4 rh=0.83 wind=3.2 ok\n";
        line.iter().copied().cycle().take(len).collect()
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    async fn decode_all(stored: &[u8]) -> Result<Vec<u8>, String> {
        let table = FrameTable::parse(stored, stored.len() as u64).map_err(tail_error_text)?;
        if table.frames.is_empty() {
            return Ok(Vec::new());
        }
        decode(
            &table,
            0,
            table.frames.len() - 1,
            Bytes::copy_from_slice(stored),
            None,
        )
        .await
    }

    #[tokio::test]
    async fn round_trip_and_sizes() {
        for (len, codec) in [
            (0, "auto"),
            (1, "auto"),
            (3 << 20, "auto"),
            (2_500_000, "zstd:3"),
        ] {
            let raw = text(len);
            let stored = encode(&raw, codec);
            assert!(stored.len() as u64 <= packed(codec).stored_bound(len as u64));
            assert_eq!(decode_all(&stored).await.unwrap(), raw, "{len} {codec}");
            if len > 1 << 20 {
                assert!(stored.len() < raw.len() / 4, "text compresses");
            }
        }
        let random = noise(PACKED_CHUNK as usize + 5);
        let stored = encode(&random, "auto");
        assert_eq!(
            stored.len() as u64,
            packed("auto").stored_bound(random.len() as u64)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streamed_encoding_writes_the_bytes_of_the_whole_object_encoding() {
        let mut raw = text(3 << 20);
        raw.extend(noise(PACKED_CHUNK as usize + 777));
        for (len, piece) in [
            (0, 1000),
            (5, 1),
            (PACKED_CHUNK as usize, 4096),
            (raw.len(), 65_537),
            (raw.len(), 3 << 20),
        ] {
            let raw = &raw[..len];
            let format = packed("auto");
            let mut encoder = TierEncoder::new(format, "k");
            let mut out = Vec::new();
            for piece in raw.chunks(piece) {
                for stored in encoder.push(Bytes::copy_from_slice(piece)).await {
                    out.extend_from_slice(&stored);
                }
            }
            let stored_so_far = encoder.stored_len();
            assert_eq!(stored_so_far, out.len() as u64);
            for stored in encoder.finish().await {
                out.extend_from_slice(&stored);
            }
            assert_eq!(out, encode(raw, "auto"), "{len} bytes in pieces of {piece}");
            assert_eq!(decode_all(&out).await.unwrap(), raw);
        }
    }

    #[tokio::test]
    async fn damage_is_reported_never_returned() {
        let raw = text(2_200_000);
        let stored = encode(&raw, "auto");
        // A flipped byte in every region: frame payloads, headers, table, trailer.
        for at in [
            10,
            70,
            stored.len() / 2,
            stored.len() - 100,
            stored.len() - 5,
        ] {
            let mut bad = stored.clone();
            bad[at] ^= 0x40;
            let err = decode_all(&bad).await.unwrap_err();
            assert!(!err.is_empty());
        }
        // Frames swapped whole (incompressible: stored raw, so of equal length) decode,
        // but the table catches them.
        let noisy = encode(&noise(2 * PACKED_CHUNK as usize + 100), "auto");
        let table = FrameTable::parse(&noisy, noisy.len() as u64).unwrap();
        assert_eq!(table.frames.len(), 3);
        let (a, b) = (&table.frames[0], &table.frames[1]);
        assert_eq!(a.len, b.len);
        let (a, b, n) = (a.offset as usize, b.offset as usize, a.len as usize);
        let mut swapped = noisy.clone();
        swapped[a..a + n].copy_from_slice(&noisy[b..b + n]);
        swapped[b..b + n].copy_from_slice(&noisy[a..a + n]);
        let err = decode_all(&swapped).await.unwrap_err();
        assert!(err.contains("frame table names"), "{err}");
        // Truncation, garbage, and a plain file are refused by the trailer.
        assert!(decode_all(&stored[..stored.len() - 1]).await.is_err());
        assert!(decode_all(b"").await.is_err());
        assert!(decode_all(&raw).await.unwrap_err().contains("STPT"));
    }

    #[test]
    fn a_short_tail_asks_for_the_whole_table() {
        let raw = text(3 << 20);
        let stored = encode(&raw, "lz4");
        let n = stored.len() as u64;
        assert_eq!(
            FrameTable::parse(&stored[stored.len() - 32..], n),
            Err(TailError::NeedMore(3 * TABLE_ENTRY_LEN + TRAILER_LEN))
        );
        let table = FrameTable::parse(&stored[stored.len() - 152..], n).unwrap();
        assert_eq!(table.frames_for(0, 1), (0, 0));
        assert_eq!(table.frames_for(PACKED_CHUNK - 1, 2), (0, 1));
        assert_eq!(table.frames_for(3 * PACKED_CHUNK - 1, 1), (2, 2));
    }

    #[test]
    fn codec_policies() {
        assert!(matches!(
            packed("max"),
            TierFormat::Packed {
                objective: Objective::MaxRatio,
                keys: None,
            }
        ));
        let mut config = TierConfig::local("t", std::path::Path::new("/tmp"));
        config.layout = Layout::Packed;
        config.codec = "zstd:99".to_string();
        assert!(TierFormat::of(&config).unwrap_err().contains("zstd"));
        config.layout = Layout::Plain;
        assert_eq!(TierFormat::of(&config), Ok(TierFormat::Plain));
    }
}
