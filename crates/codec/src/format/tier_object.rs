//! The packed tier object: how `strata serve` stores an object on a `layout = "packed"`
//! tier, at `<tier store>/objects/<key>` (`docs/FORMATS.md`, "Packed tier object").
//!
//! ```text
//! frame 0 | frame 1 | ... | frame n-1 | frame table (n × 40 bytes) | trailer (32 bytes)
//! ```
//!
//! - **frames**: the object cut into chunks of [`PACKED_CHUNK`] raw bytes (1 MiB; the last
//!   one shorter), each a self-describing chunk frame ([`super::frame`]).
//! - **frame table**: per frame, its length (header + payload, u64 LE) and the BLAKE3 of
//!   its raw chunk (32 bytes), so a frame is bound to its position.
//! - **trailer**: raw length (u64 LE), chunk size (u32 LE), frame count (u32 LE), format
//!   version (u8, [`PACKED_VERSION`]), three zero bytes, the first 8 bytes of the BLAKE3 of
//!   the table and the trailer's first 20 bytes ([`table_check`]), and the magic `STPT`.
//!   An empty object is the trailer alone.
//!
//! Version 2 ([`ENCRYPTED_PACKED_VERSION`]) is the same layout on an encrypted tier: each
//! frame is an encrypted frame ([`super::encrypted`]) sealing the chunk frame, and its table
//! entry holds the BLAKE3 of the encrypted frame instead of the raw chunk's (which would let
//! anyone holding a guess confirm it). The raw BLAKE3 is still checked, inside, after
//! decryption.
//!
//! This module is the byte-level half, pure and synchronous: [`assemble`] writes an
//! object from its frames (or [`table_entry`] and [`tail`] for a writer that streams them), [`FrameTable::parse`] reads and checks the table from the
//! object's tail, [`check_frame`] decodes one frame against its table entry. Choosing codecs,
//! reading ranges from a store and decoding on worker threads is `strata_server::tier_codec`.

use super::encrypted::KeyRing;
use super::frame::{decode_frame, read_header, FRAME_HEADER_LEN, MAX_RAW_LEN};

/// Raw bytes per frame on a packed tier (the last frame of an object holds the rest).
pub const PACKED_CHUNK: u64 = 1 << 20;
/// Bytes per frame-table entry: frame length (8) and BLAKE3 of the raw chunk (32).
pub const TABLE_ENTRY_LEN: u64 = 40;
/// Bytes of the trailer that ends every packed object.
pub const TRAILER_LEN: u64 = 32;
/// The trailer's last four bytes.
pub const TRAILER_MAGIC: [u8; 4] = *b"STPT";
/// The packed object format version this build writes and reads.
pub const PACKED_VERSION: u8 = 1;
/// The version of a packed tier object whose frames are encrypted frames.
pub const ENCRYPTED_PACKED_VERSION: u8 = 2;

/// A packed tier object: `frames` (each a whole chunk frame, in order, from
/// [`super::frame::encode_frame`] or the codec selector), then their table and the trailer,
/// for an object of `raw_len` raw bytes cut into [`PACKED_CHUNK`] chunks.
pub fn assemble(raw_len: u64, frames: Vec<Vec<u8>>) -> Vec<u8> {
    let frames_len: usize = frames.iter().map(Vec::len).sum();
    let count = frames.len();
    let mut out =
        Vec::with_capacity(frames_len + count * TABLE_ENTRY_LEN as usize + TRAILER_LEN as usize);
    let mut table = Vec::with_capacity(count * TABLE_ENTRY_LEN as usize);
    for frame in frames {
        table.extend_from_slice(&table_entry(&frame));
        out.extend_from_slice(&frame);
    }
    out.extend_from_slice(&tail(raw_len, table));
    out
}

/// The frame-table entry of `frame`: its length and the BLAKE3 of its raw chunk. A writer
/// that streams frames keeps these, in order, for [`tail`].
pub fn table_entry(frame: &[u8]) -> [u8; TABLE_ENTRY_LEN as usize] {
    let mut entry = [0u8; TABLE_ENTRY_LEN as usize];
    entry[..8].copy_from_slice(&(frame.len() as u64).to_le_bytes());
    // Our own frame: its header parses; a zero hash would only make reads fail.
    let hash = read_header(frame).map_or([0; 32], |header| header.raw_hash);
    entry[8..].copy_from_slice(&hash);
    entry
}

/// The frame-table entry of an encrypted frame: its length and its own BLAKE3.
pub fn encrypted_table_entry(sealed: &[u8]) -> [u8; TABLE_ENTRY_LEN as usize] {
    let mut entry = [0u8; TABLE_ENTRY_LEN as usize];
    entry[..8].copy_from_slice(&(sealed.len() as u64).to_le_bytes());
    entry[8..].copy_from_slice(blake3::hash(sealed).as_bytes());
    entry
}

/// What follows the frames of an object of `raw_len` raw bytes: `table` (the frames'
/// [`table_entry`] values, concatenated in order) and the trailer.
pub fn tail(raw_len: u64, table: Vec<u8>) -> Vec<u8> {
    tail_of_version(raw_len, table, PACKED_VERSION)
}

/// [`tail`] for an object of encrypted frames (`table` of [`encrypted_table_entry`] values).
pub fn encrypted_tail(raw_len: u64, table: Vec<u8>) -> Vec<u8> {
    tail_of_version(raw_len, table, ENCRYPTED_PACKED_VERSION)
}

fn tail_of_version(raw_len: u64, table: Vec<u8>, version: u8) -> Vec<u8> {
    let count = table.len() / TABLE_ENTRY_LEN as usize;
    let mut trailer = [0u8; TRAILER_LEN as usize];
    trailer[0..8].copy_from_slice(&raw_len.to_le_bytes());
    trailer[8..12].copy_from_slice(&(PACKED_CHUNK as u32).to_le_bytes());
    trailer[12..16].copy_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
    trailer[16] = version;
    let check = table_check(&table, &trailer[..20]);
    trailer[20..28].copy_from_slice(&check);
    trailer[28..32].copy_from_slice(&TRAILER_MAGIC);
    let mut out = table;
    out.extend_from_slice(&trailer);
    out
}

/// The trailer's check: the first 8 bytes of BLAKE3 over the frame table then the
/// trailer's first 20 bytes.
pub fn table_check(table: &[u8], trailer_head: &[u8]) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(table);
    hasher.update(trailer_head);
    let mut check = [0u8; 8];
    check.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    check
}

/// One frame as the table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameEntry {
    /// Where the frame starts in the stored object.
    pub offset: u64,
    /// Header plus payload.
    pub len: u64,
    /// BLAKE3 of its raw chunk.
    pub raw_hash: [u8; 32],
}

/// A packed object's frame table, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameTable {
    /// Raw length of the object.
    pub raw_len: u64,
    /// Raw bytes per chunk (the last chunk holds the rest).
    pub chunk: u64,
    /// The frames, in order.
    pub frames: Vec<FrameEntry>,
    /// Whether the frames are encrypted frames (format version 2).
    pub encrypted: bool,
}

/// Why the tail of a packed object could not be read as a frame table.
#[derive(Debug, PartialEq, Eq)]
pub enum TailError {
    /// The tail given is shorter than the table it announces: read this many bytes.
    NeedMore(u64),
    /// The tail is not a valid table and trailer.
    Damaged(String),
}

impl FrameTable {
    /// Parses the table and trailer at the end of `tail`, the last bytes of an object of
    /// `stored_len` bytes.
    pub fn parse(tail: &[u8], stored_len: u64) -> Result<FrameTable, TailError> {
        let damaged = |why: String| Err(TailError::Damaged(why));
        let trailer_len = TRAILER_LEN as usize;
        if tail.len() < trailer_len || stored_len < TRAILER_LEN {
            return damaged(format!(
                "{stored_len} bytes are too few for a packed object (a trailer alone is \
                 {TRAILER_LEN}); the file is truncated or not in the packed layout"
            ));
        }
        let trailer = &tail[tail.len() - trailer_len..];
        if trailer[28..32] != TRAILER_MAGIC {
            return damaged(
                "no packed-object trailer at its end (magic \"STPT\" missing): the file is \
                 damaged, or was not written in the packed layout"
                    .to_string(),
            );
        }
        let encrypted = match trailer[16] {
            PACKED_VERSION => false,
            ENCRYPTED_PACKED_VERSION => true,
            other => {
                return damaged(format!(
                    "packed object format version {other} is not supported (this build reads \
                     versions {PACKED_VERSION} and {ENCRYPTED_PACKED_VERSION}); upgrade Strata"
                ))
            }
        };
        if trailer[17..20] != [0, 0, 0] {
            return damaged("the trailer's reserved bytes are not zero".to_string());
        }
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&trailer[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let u32_at = |at: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&trailer[at..at + 4]);
            u64::from(u32::from_le_bytes(word))
        };
        let (raw_len, chunk, count) = (u64_at(0), u32_at(8), u32_at(12));
        if chunk == 0 || chunk > MAX_RAW_LEN {
            return damaged(format!(
                "the trailer declares a chunk size of {chunk} bytes"
            ));
        }
        if raw_len.div_ceil(chunk) != count {
            return damaged(format!(
                "the trailer declares {count} frames for {raw_len} raw bytes in chunks of \
                 {chunk}"
            ));
        }
        let table_len = count * TABLE_ENTRY_LEN;
        let needed = table_len + TRAILER_LEN;
        if needed > stored_len {
            return damaged(format!(
                "the trailer announces a {table_len}-byte frame table, more than the object's \
                 {stored_len} bytes"
            ));
        }
        if (tail.len() as u64) < needed {
            return Err(TailError::NeedMore(needed));
        }
        let table = &tail[tail.len() - needed as usize..tail.len() - trailer_len];
        if table_check(table, &trailer[..20]) != trailer[20..28] {
            return damaged("the frame table does not match its check".to_string());
        }
        let mut frames = Vec::with_capacity(count as usize);
        let mut offset = 0u64;
        for entry in table.chunks_exact(TABLE_ENTRY_LEN as usize) {
            let mut word = [0u8; 8];
            word.copy_from_slice(&entry[..8]);
            let len = u64::from_le_bytes(word);
            let mut raw_hash = [0u8; 32];
            raw_hash.copy_from_slice(&entry[8..]);
            if len < FRAME_HEADER_LEN as u64 {
                return damaged(format!(
                    "frame {} is {len} bytes, shorter than a frame header",
                    frames.len()
                ));
            }
            frames.push(FrameEntry {
                offset,
                len,
                raw_hash,
            });
            offset = offset.saturating_add(len);
        }
        if offset.saturating_add(needed) != stored_len {
            return damaged(format!(
                "the frames and table add up to {} bytes, the object has {stored_len}",
                offset.saturating_add(needed)
            ));
        }
        Ok(FrameTable {
            raw_len,
            chunk,
            frames,
            encrypted,
        })
    }

    /// Raw bytes of frame `index`.
    pub fn raw_range(&self, index: usize) -> (u64, u64) {
        let start = index as u64 * self.chunk;
        (start, self.raw_len.min(start + self.chunk))
    }

    /// Frames `first..=last` that hold raw bytes `offset..offset + len` (`len` > 0).
    pub fn frames_for(&self, offset: u64, len: u64) -> (usize, usize) {
        let first = (offset / self.chunk) as usize;
        let last = ((offset + len - 1) / self.chunk) as usize;
        (first, last.min(self.frames.len().saturating_sub(1)))
    }
}

/// Decodes one frame and checks it against its table entry (the raw hash and raw length
/// the table gives for its position): a frame copied over another decodes, but fails here.
pub fn check_frame(frame: &[u8], table_hash: &[u8; 32], raw_len: u64) -> Result<Vec<u8>, String> {
    let header = read_header(frame).map_err(|err| err.to_string())?;
    if header.raw_hash != *table_hash {
        return Err("the frame is not the one the frame table names for this position".to_string());
    }
    if header.raw_len != raw_len {
        return Err(format!(
            "the frame holds {} raw bytes, {raw_len} expected here",
            header.raw_len
        ));
    }
    decode_frame(frame).map_err(|err| err.to_string())
}

/// Opens one encrypted frame with `keys` and checks it against its table entry (the
/// encrypted frame's BLAKE3 first, so a frame from another position or object is refused
/// before any decryption), then decodes the chunk frame inside: its raw length and raw
/// BLAKE3 are checked as for a plain frame.
pub fn check_encrypted_frame(
    sealed: &[u8],
    table_hash: &[u8; 32],
    raw_len: u64,
    keys: &KeyRing,
) -> Result<Vec<u8>, String> {
    if blake3::hash(sealed).as_bytes() != table_hash {
        return Err(
            "the encrypted frame is not the one the frame table names for this position"
                .to_string(),
        );
    }
    let inner = keys.open(sealed).map_err(|err| err.to_string())?;
    let header = read_header(&inner).map_err(|err| err.to_string())?;
    check_frame(&inner, &header.raw_hash, raw_len)
}

/// The message of a [`TailError`] (damage, or a table longer than the tail read).
pub fn tail_error_text(err: TailError) -> String {
    match err {
        TailError::Damaged(text) => text,
        TailError::NeedMore(needed) => {
            format!("the frame table needs {needed} bytes at the end of the object")
        }
    }
}
