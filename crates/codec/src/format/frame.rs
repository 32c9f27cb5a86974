//! The self-describing chunk frame: one compressed chunk that can be decoded and checked
//! on its own, with nothing but its bytes.
//!
//! A frame is a fixed [`FRAME_HEADER_LEN`]-byte header followed by the stored payload.
//! All integers are little-endian.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4  | magic `STF1` |
//! | 4  | 1  | format version ([`FRAME_VERSION`]) |
//! | 5  | 1  | codec id: 0 none, 1 lz4, 2 zstd, 3 gzip, 4 bzip2, 5 xz |
//! | 6  | 1  | codec level, signed (zstd may be negative; 0 for none and lz4) |
//! | 7  | 1  | codec flags: bit 0 = zstd long mode; other bits zero |
//! | 8  | 1  | filter id: 0 none, 1 byte shuffle |
//! | 9  | 1  | filter parameter: shuffle element width (2, 4, 8), else 0 |
//! | 10 | 2  | reserved, zero |
//! | 12 | 8  | raw length (bytes before filter and codec) |
//! | 20 | 8  | stored length (bytes after the header) |
//! | 28 | 32 | BLAKE3 hash of the raw bytes |
//! | 60 | 4  | header check: the first 4 bytes of BLAKE3 of bytes 0..60 |
//!
//! The version comes before the header check so that a newer layout is reported as such
//! and not as damage. Decoding checks, in order: length, magic, version, header check,
//! known codec and filter, stored length, declared raw length ≤ [`MAX_RAW_LEN`], the
//! codec's own decoding, the raw length, and the raw hash. Each failure is its own
//! [`FrameError`]; decoding never returns bytes whose hash does not match.
//!
//! When the codec does not make the chunk smaller, the frame stores it raw (codec none,
//! filter none): a frame is never larger than `raw.len() + FRAME_HEADER_LEN`.

use crate::compress::{codec::DecodeFailure, Codec, Filter};

/// The frame magic.
pub const FRAME_MAGIC: [u8; 4] = *b"STF1";
/// The frame format version this code writes and reads.
pub const FRAME_VERSION: u8 = 1;
/// Exact header length in bytes: the most a frame can add to its chunk.
pub const FRAME_HEADER_LEN: usize = 64;
/// The largest raw length a frame may declare (1 GiB): chunks are far smaller, and the
/// bound keeps a hostile header from asking for unbounded memory.
pub const MAX_RAW_LEN: u64 = 1 << 30;

const HEADER_CHECK_AT: usize = 60;

/// Why a frame could not be decoded. Every variant means the bytes were not returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the header or the header's stored length requires.
    #[error("frame truncated: {needed} bytes needed, {got} present; refetch the chunk")]
    Truncated {
        /// Bytes the frame needs.
        needed: u64,
        /// Bytes present.
        got: u64,
    },
    /// The first four bytes are not `STF1`: this is not a Strata chunk frame.
    #[error("not a Strata chunk frame (magic {found:02x?}, expected \"STF1\")")]
    BadMagic {
        /// The bytes found where the magic should be.
        found: Vec<u8>,
    },
    /// The frame was written by a newer (or unknown) format version.
    #[error(
        "chunk frame version {0} is not supported (this build reads version 1); upgrade Strata"
    )]
    UnsupportedVersion(u8),
    /// The header's own check failed: the header is damaged.
    #[error("chunk frame header is damaged (header check mismatch)")]
    HeaderChecksum,
    /// The codec id or its parameters are unknown to this build.
    #[error("unknown codec id {id} (level {level}, flags {flags:#x}) in chunk frame")]
    UnknownCodec {
        /// Codec id.
        id: u8,
        /// Codec level byte.
        level: i8,
        /// Codec flags byte.
        flags: u8,
    },
    /// The filter id or its parameter is unknown to this build.
    #[error("unknown filter id {id} (parameter {param}) in chunk frame")]
    UnknownFilter {
        /// Filter id.
        id: u8,
        /// Filter parameter.
        param: u8,
    },
    /// The header's lengths contradict the frame: trailing bytes, a raw-stored chunk whose
    /// lengths differ, non-zero reserved bytes, or a raw length above [`MAX_RAW_LEN`].
    #[error("chunk frame lengths are inconsistent: {0}")]
    LengthMismatch(String),
    /// The codec rejected the payload.
    #[error("chunk payload does not decode with {codec}: {detail}")]
    Corrupt {
        /// The codec named in the header.
        codec: String,
        /// The codec's message.
        detail: String,
    },
    /// The payload decoded to a different length than the header declares.
    #[error("chunk decoded to {got} bytes, header declares {expected}")]
    RawLengthMismatch {
        /// Declared raw length.
        expected: u64,
        /// Decoded length (at most declared + 1: decoding stops there).
        got: u64,
    },
    /// The decoded bytes do not have the hash in the header.
    #[error("chunk content hash mismatch after decoding")]
    HashMismatch,
}

/// The parsed header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Codec of the payload.
    pub codec: Codec,
    /// Filter applied before the codec.
    pub filter: Filter,
    /// Length of the raw chunk.
    pub raw_len: u64,
    /// Length of the payload after the header.
    pub stored_len: u64,
    /// BLAKE3 hash of the raw chunk.
    pub raw_hash: [u8; 32],
}

impl FrameHeader {
    /// Total frame length: header plus payload.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + self.stored_len
    }

    fn to_bytes(self) -> [u8; FRAME_HEADER_LEN] {
        let mut h = [0u8; FRAME_HEADER_LEN];
        let (codec_id, level, flags) = self.codec.to_wire();
        let (filter_id, param) = self.filter.to_wire();
        h[0..4].copy_from_slice(&FRAME_MAGIC);
        h[4] = FRAME_VERSION;
        h[5] = codec_id;
        h[6] = level as u8;
        h[7] = flags;
        h[8] = filter_id;
        h[9] = param;
        h[12..20].copy_from_slice(&self.raw_len.to_le_bytes());
        h[20..28].copy_from_slice(&self.stored_len.to_le_bytes());
        h[28..60].copy_from_slice(&self.raw_hash);
        let check = header_check(&h);
        h[HEADER_CHECK_AT..].copy_from_slice(&check);
        h
    }
}

fn header_check(h: &[u8]) -> [u8; 4] {
    let full = blake3::hash(&h[..HEADER_CHECK_AT]);
    let mut c = [0u8; 4];
    c.copy_from_slice(&full.as_bytes()[..4]);
    c
}

/// Encode `raw` as a frame: filter, compress, and fall back to raw storage when that does
/// not make it smaller (or the codec fails). Never fails; the result is at most
/// `raw.len() + FRAME_HEADER_LEN` bytes.
pub fn encode_frame(raw: &[u8], codec: Codec, filter: Filter) -> Vec<u8> {
    let raw_hash = *blake3::hash(raw).as_bytes();
    let codec = codec.clamped();
    let packed = match codec {
        Codec::None => None,
        _ => codec
            .compress(&filter.apply(raw))
            .ok()
            .filter(|z| z.len() < raw.len()),
    };
    let (codec, filter, payload) = match &packed {
        Some(z) => (codec, filter, z.as_slice()),
        None => (Codec::None, Filter::None, raw),
    };
    let header = FrameHeader {
        codec,
        filter,
        raw_len: raw.len() as u64,
        stored_len: payload.len() as u64,
        raw_hash,
    };
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(payload);
    out
}

/// Parse and check a frame's header without decoding its payload; also checks that the
/// frame has exactly the stored length the header declares.
pub fn read_header(frame: &[u8]) -> Result<FrameHeader, FrameError> {
    let magic_len = frame.len().min(4);
    if frame[..magic_len] != FRAME_MAGIC[..magic_len] {
        return Err(FrameError::BadMagic {
            found: frame[..magic_len].to_vec(),
        });
    }
    if frame.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Truncated {
            needed: FRAME_HEADER_LEN as u64,
            got: frame.len() as u64,
        });
    }
    let h = &frame[..FRAME_HEADER_LEN];
    if h[4] != FRAME_VERSION {
        return Err(FrameError::UnsupportedVersion(h[4]));
    }
    if h[HEADER_CHECK_AT..] != header_check(h) {
        return Err(FrameError::HeaderChecksum);
    }
    let codec = Codec::from_wire(h[5], h[6] as i8, h[7]).ok_or(FrameError::UnknownCodec {
        id: h[5],
        level: h[6] as i8,
        flags: h[7],
    })?;
    let filter = Filter::from_wire(h[8], h[9]).ok_or(FrameError::UnknownFilter {
        id: h[8],
        param: h[9],
    })?;
    let u64_at = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
    let header = FrameHeader {
        codec,
        filter,
        raw_len: u64_at(12),
        stored_len: u64_at(20),
        raw_hash: h[28..60].try_into().expect("32 bytes"),
    };
    let mismatch = |why: String| Err(FrameError::LengthMismatch(why));
    if h[10..12] != [0, 0] {
        return mismatch("reserved header bytes are not zero".into());
    }
    if header.raw_len > MAX_RAW_LEN {
        return mismatch(format!(
            "raw length {} exceeds the {MAX_RAW_LEN}-byte limit",
            header.raw_len
        ));
    }
    let payload_len = (frame.len() - FRAME_HEADER_LEN) as u64;
    if payload_len < header.stored_len {
        return Err(FrameError::Truncated {
            needed: header.frame_len(),
            got: frame.len() as u64,
        });
    }
    if payload_len > header.stored_len {
        return mismatch(format!(
            "{} bytes follow the header, {} declared",
            payload_len, header.stored_len
        ));
    }
    if codec == Codec::None && header.stored_len != header.raw_len {
        return mismatch(format!(
            "raw-stored chunk declares raw length {} but stores {}",
            header.raw_len, header.stored_len
        ));
    }
    Ok(header)
}

/// Decode a frame and check it completely; returns the raw chunk only if its BLAKE3 hash
/// matches the header. Never panics, whatever the input.
pub fn decode_frame(frame: &[u8]) -> Result<Vec<u8>, FrameError> {
    let header = read_header(frame)?;
    let payload = &frame[FRAME_HEADER_LEN..];
    let filtered = header
        .codec
        .decompress(payload, header.raw_len)
        .map_err(|e| match e {
            DecodeFailure::Corrupt(detail) => FrameError::Corrupt {
                codec: header.codec.to_string(),
                detail,
            },
            DecodeFailure::Length(got) => FrameError::RawLengthMismatch {
                expected: header.raw_len,
                got,
            },
        })?;
    let raw = header.filter.revert(filtered);
    if *blake3::hash(&raw).as_bytes() != header.raw_hash {
        return Err(FrameError::HashMismatch);
    }
    Ok(raw)
}
