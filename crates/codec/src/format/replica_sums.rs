//! The replica integrity record (`STRS`) of a tier with redundancy (`docs/FORMATS.md`,
//! "Replica integrity record"): one per replica, at `<domain>/.strata/replicas/<rel>`, beside
//! the replica itself, which stays a plain file holding exactly the object's bytes (readable
//! without Strata).
//!
//! ```text
//! header (24 bytes) | BLAKE3 per chunk (n × 32 bytes) | check (8 bytes)
//! ```
//!
//! Header: magic `STRS`, version (u8, [`REPLICA_SUMS_VERSION`]), a zero byte, copies (u16
//! LE; 0 means the object's redundancy is `none`), object length (u64 LE), chunk size (u32
//! LE, [`REPLICA_CHUNK`]), chunk count (u32 LE, = ceil(length / chunk size)). The check is
//! the first 8 bytes of BLAKE3 over everything before it. A chunk is bound to its position
//! by the table, so a ranged read verifies only the chunks it reads.

use std::ops::Range;

/// Bytes of the object per hashed chunk (the last chunk holds the rest).
pub const REPLICA_CHUNK: u32 = 1 << 20;
/// The record format version this build writes and reads.
pub const REPLICA_SUMS_VERSION: u8 = 1;
/// The record's first four bytes.
pub const REPLICA_SUMS_MAGIC: [u8; 4] = *b"STRS";
/// Bytes of the header.
pub const REPLICA_SUMS_HEADER_LEN: usize = 24;
/// Bytes of the check that ends the record.
pub const REPLICA_SUMS_CHECK_LEN: usize = 8;

/// Why an integrity record could not be read. Either way the replica it describes cannot
/// be verified and is treated as damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaSumsError {
    /// Written by a newer Strata.
    #[error("replica integrity record version {0} is not supported (this build reads version 1); upgrade Strata")]
    Version(u8),
    /// Not a valid record: truncated, wrong magic, a field out of range or a failed check.
    #[error("replica integrity record is damaged: {0}")]
    Damaged(String),
}

/// A replica's integrity record: how many copies the object has, its length and the
/// BLAKE3 of each [`REPLICA_CHUNK`] of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSums {
    /// Copies of the object (`replicate:N`), or 0 for redundancy `none`.
    pub copies: u16,
    /// The object's length in bytes.
    pub len: u64,
    /// Bytes per hashed chunk.
    pub chunk_size: u32,
    /// BLAKE3 of each chunk, in order.
    pub hashes: Vec<[u8; 32]>,
}

impl ReplicaSums {
    /// The record of `data` for an object kept in `copies` copies (0 for `none`).
    pub fn of(data: &[u8], copies: u16) -> ReplicaSums {
        let hashes = data
            .chunks(REPLICA_CHUNK as usize)
            .map(|chunk| *blake3::hash(chunk).as_bytes())
            .collect();
        ReplicaSums {
            copies,
            len: data.len() as u64,
            chunk_size: REPLICA_CHUNK,
            hashes,
        }
    }

    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            REPLICA_SUMS_HEADER_LEN + 32 * self.hashes.len() + REPLICA_SUMS_CHECK_LEN,
        );
        out.extend_from_slice(&REPLICA_SUMS_MAGIC);
        out.push(REPLICA_SUMS_VERSION);
        out.push(0);
        out.extend_from_slice(&self.copies.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        let count = u32::try_from(self.hashes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for hash in &self.hashes {
            out.extend_from_slice(hash);
        }
        let check = check_of(&out);
        out.extend_from_slice(&check);
        out
    }

    /// Reads a record, checking every field and the check.
    pub fn decode(bytes: &[u8]) -> Result<ReplicaSums, ReplicaSumsError> {
        let damaged = |why: &str| Err(ReplicaSumsError::Damaged(why.to_string()));
        if bytes.len() < REPLICA_SUMS_HEADER_LEN + REPLICA_SUMS_CHECK_LEN {
            return damaged("shorter than a header and check");
        }
        if bytes[0..4] != REPLICA_SUMS_MAGIC {
            return damaged("no STRS magic");
        }
        if bytes[4] != REPLICA_SUMS_VERSION {
            return Err(ReplicaSumsError::Version(bytes[4]));
        }
        let (body, check) = bytes.split_at(bytes.len() - REPLICA_SUMS_CHECK_LEN);
        if check != check_of(body) {
            return damaged("the check does not match its bytes");
        }
        if bytes[5] != 0 {
            return damaged("reserved byte is not zero");
        }
        let copies = u16::from_le_bytes([bytes[6], bytes[7]]);
        let len = u64::from_le_bytes(le8(&bytes[8..16]));
        let chunk_size = u32::from_le_bytes(le4(&bytes[16..20]));
        let count = u32::from_le_bytes(le4(&bytes[20..24])) as u64;
        if chunk_size == 0 {
            return damaged("chunk size 0");
        }
        if count != len.div_ceil(chunk_size as u64) {
            return damaged("chunk count does not match the length");
        }
        if (body.len() - REPLICA_SUMS_HEADER_LEN) as u64 != count * 32 {
            return damaged("the table is not one hash per chunk");
        }
        let hashes = body[REPLICA_SUMS_HEADER_LEN..]
            .chunks_exact(32)
            .map(|h| {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(h);
                hash
            })
            .collect();
        Ok(ReplicaSums {
            copies,
            len,
            chunk_size,
            hashes,
        })
    }

    /// The chunks that hold `len` bytes from `offset` (clamped to the object).
    pub fn chunks_covering(&self, offset: u64, len: u64) -> Range<usize> {
        let size = self.chunk_size as u64;
        let end = offset.saturating_add(len).min(self.len);
        if len == 0 || offset >= end {
            return 0..0;
        }
        (offset / size) as usize..end.div_ceil(size) as usize
    }

    /// The object bytes chunk `index` holds.
    pub fn chunk_bytes(&self, index: usize) -> Range<u64> {
        let size = self.chunk_size as u64;
        let start = index as u64 * size;
        start.min(self.len)..(start + size).min(self.len)
    }
}

fn check_of(bytes: &[u8]) -> [u8; 8] {
    le8(&blake3::hash(bytes).as_bytes()[..8])
}

fn le8(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

fn le4(bytes: &[u8]) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(&bytes[..4]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_every_byte_flip_is_refused() {
        for len in [0usize, 1, REPLICA_CHUNK as usize + 1] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sums = ReplicaSums::of(&data, 3);
            let bytes = sums.encode();
            assert_eq!(ReplicaSums::decode(&bytes).unwrap(), sums);
            for at in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[at] ^= 0x10;
                assert!(ReplicaSums::decode(&bad).is_err(), "flip at {at}");
            }
            assert!(ReplicaSums::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    #[test]
    fn covering_chunks_are_the_ones_a_range_touches() {
        let sums = ReplicaSums {
            copies: 1,
            len: 2 * REPLICA_CHUNK as u64 + 5,
            chunk_size: REPLICA_CHUNK,
            hashes: vec![[0; 32]; 3],
        };
        let c = REPLICA_CHUNK as u64;
        assert_eq!(sums.chunks_covering(0, 0), 0..0);
        assert_eq!(sums.chunks_covering(0, 1), 0..1);
        assert_eq!(sums.chunks_covering(c - 1, 2), 0..2);
        assert_eq!(sums.chunks_covering(c, c), 1..2);
        assert_eq!(sums.chunks_covering(2 * c, 100), 2..3);
        assert_eq!(sums.chunks_covering(3 * c, 100), 0..0);
        assert_eq!(sums.chunk_bytes(2), 2 * c..2 * c + 5);
    }
}
