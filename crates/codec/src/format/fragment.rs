//! The erasure-coded fragment (`STEC`) of a tier with redundancy `ec:K+M`
//! (`docs/FORMATS.md`, "Erasure-coded fragment"): fragment `index` of an object, one per
//! failure domain, at `<domain>/ec/<slot>/<rel>`.
//!
//! ```text
//! header (24 bytes) | shard of stripe 0 | ... | shard of stripe n-1 | table (n × 64) | trailer (16)
//! ```
//!
//! The object is cut into stripes of K × `shard_size` bytes (about 1 MiB; the last stripe
//! holds the rest); each stripe into K data shards of `shard_size` bytes, zero-padded, plus
//! M Reed-Solomon parity shards (`crate::parity`). Fragment `i` holds shard `i` of every
//! stripe (data shards for i < K, parity after). The last stripe's shards are shorter: the
//! rest of the object divided by K, rounded up to an even length.
//!
//! - **Header**: magic `STEC`, version (u8, [`FRAGMENT_VERSION`]), K, M, index (u8 each),
//!   object length (u64 LE), shard size (u32 LE, even), stripe count (u32 LE).
//! - **Table**, per stripe: BLAKE3 of this fragment's stored shard, then BLAKE3 of the
//!   stripe's object bytes (what a decode must give back).
//! - **Trailer**: the first 8 bytes of BLAKE3 over the header and the table, four zero
//!   bytes, the magic `STEC` again.

use std::ops::Range;

/// The fragment format version this build writes and reads.
pub const FRAGMENT_VERSION: u8 = 1;
/// First (and last) four bytes of a fragment.
pub const FRAGMENT_MAGIC: [u8; 4] = *b"STEC";
/// Bytes of the header.
pub const FRAGMENT_HEADER_LEN: u64 = 24;
/// Bytes per table entry: shard hash and stripe hash.
pub const FRAGMENT_TABLE_ENTRY_LEN: u64 = 64;
/// Bytes of the trailer.
pub const FRAGMENT_TRAILER_LEN: u64 = 16;
/// Object bytes per stripe the writer aims for.
pub const STRIPE_TARGET: u64 = 1 << 20;
/// The most fragments (K + M) of one object.
pub const MAX_FRAGMENTS: usize = 64;

/// Why a fragment's header or tail could not be read: the fragment is damaged (or newer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    /// Written by a newer Strata.
    #[error(
        "fragment format version {0} is not supported (this build reads version 1); upgrade Strata"
    )]
    Version(u8),
    /// Not a valid fragment: wrong magic, a field out of range, a failed check.
    #[error("fragment is damaged: {0}")]
    Damaged(String),
}

/// A fragment's header: which code, which shard, and the object's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Data shards per stripe.
    pub k: u8,
    /// Parity shards per stripe.
    pub m: u8,
    /// Which shard of each stripe this fragment holds (data first, then parity).
    pub index: u8,
    /// The object's length in bytes.
    pub len: u64,
    /// Bytes per shard of every stripe but the last (0 for an empty object).
    pub shard_size: u32,
    /// Stripes in the object.
    pub stripes: u32,
}

/// One table entry: a stripe's shard in this fragment and the stripe's object bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeSums {
    /// BLAKE3 of this fragment's stored shard of the stripe (padding included).
    pub shard: [u8; 32],
    /// BLAKE3 of the stripe's object bytes.
    pub stripe: [u8; 32],
}

fn even_ceil(n: u64) -> u64 {
    (n + (n & 1)).max(2)
}

impl FragmentHeader {
    /// The header of fragment `index` of an object of `len` bytes under `ec:k+m`, with
    /// stripes of about [`STRIPE_TARGET`] bytes.
    pub fn for_object(k: u8, m: u8, index: u8, len: u64) -> Result<FragmentHeader, FragmentError> {
        let k64 = k.max(1) as u64;
        let (shard_size, stripes) = if len == 0 {
            (0, 0)
        } else {
            let full = even_ceil(STRIPE_TARGET.div_ceil(k64));
            let shard = if len <= full * k64 {
                even_ceil(len.div_ceil(k64))
            } else {
                full
            };
            (shard, len.div_ceil(shard * k64))
        };
        let header = FragmentHeader {
            k,
            m,
            index,
            len,
            shard_size: u32::try_from(shard_size)
                .map_err(|_| FragmentError::Damaged("shard size over 4 GiB".into()))?,
            stripes: u32::try_from(stripes).map_err(|_| {
                FragmentError::Damaged(format!("an object of {len} bytes has too many stripes"))
            })?,
        };
        header.validate()?;
        Ok(header)
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; FRAGMENT_HEADER_LEN as usize] {
        let mut out = [0u8; FRAGMENT_HEADER_LEN as usize];
        out[0..4].copy_from_slice(&FRAGMENT_MAGIC);
        out[4] = FRAGMENT_VERSION;
        out[5] = self.k;
        out[6] = self.m;
        out[7] = self.index;
        out[8..16].copy_from_slice(&self.len.to_le_bytes());
        out[16..20].copy_from_slice(&self.shard_size.to_le_bytes());
        out[20..24].copy_from_slice(&self.stripes.to_le_bytes());
        out
    }

    /// Reads a header (the first [`FRAGMENT_HEADER_LEN`] bytes of a fragment), checking
    /// that its fields describe a possible fragment. Only the trailer's check
    /// ([`decode_tail`]) proves they are the ones written.
    pub fn decode(bytes: &[u8]) -> Result<FragmentHeader, FragmentError> {
        if bytes.len() < FRAGMENT_HEADER_LEN as usize {
            return Err(FragmentError::Damaged("shorter than a header".into()));
        }
        if bytes[0..4] != FRAGMENT_MAGIC {
            return Err(FragmentError::Damaged("no STEC magic".into()));
        }
        if bytes[4] != FRAGMENT_VERSION {
            return Err(FragmentError::Version(bytes[4]));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[8..16]);
        let mut shard = [0u8; 4];
        shard.copy_from_slice(&bytes[16..20]);
        let mut stripes = [0u8; 4];
        stripes.copy_from_slice(&bytes[20..24]);
        let header = FragmentHeader {
            k: bytes[5],
            m: bytes[6],
            index: bytes[7],
            len: u64::from_le_bytes(len),
            shard_size: u32::from_le_bytes(shard),
            stripes: u32::from_le_bytes(stripes),
        };
        header.validate()?;
        Ok(header)
    }

    fn validate(&self) -> Result<(), FragmentError> {
        let damaged = |why: &str| Err(FragmentError::Damaged(why.to_string()));
        let (k, m) = (self.k as usize, self.m as usize);
        if k == 0 || m == 0 || k + m > MAX_FRAGMENTS {
            return damaged("K and M must be at least 1 and K + M at most 64");
        }
        if self.index as usize >= k + m {
            return damaged("the index is not below K + M");
        }
        if self.len == 0 {
            if self.shard_size != 0 || self.stripes != 0 {
                return damaged("an empty object has no stripes");
            }
            return Ok(());
        }
        if self.shard_size < 2 || !self.shard_size.is_multiple_of(2) {
            return damaged("the shard size is not a positive even number");
        }
        let stripe = k as u64 * self.shard_size as u64;
        if self.stripes as u64 != self.len.div_ceil(stripe) {
            return damaged("the stripe count does not match the length");
        }
        if self.file_len_wide() > (u64::MAX / 2) as u128 {
            return damaged("the fragment would be larger than any file");
        }
        Ok(())
    }

    /// Object bytes per full stripe: K × shard size.
    pub fn stripe_data_len(&self) -> u64 {
        self.k as u64 * self.shard_size as u64
    }

    /// The object bytes stripe `s` holds.
    pub fn stripe_bytes(&self, s: u32) -> Range<u64> {
        let start = s as u64 * self.stripe_data_len();
        start.min(self.len)..(start + self.stripe_data_len()).min(self.len)
    }

    /// Stored bytes of each shard of stripe `s` (the last stripe's are shorter).
    pub fn shard_len(&self, s: u32) -> u64 {
        if s + 1 < self.stripes {
            self.shard_size as u64
        } else {
            let rest = self.stripe_bytes(s);
            even_ceil((rest.end - rest.start).div_ceil(self.k.max(1) as u64))
        }
    }

    /// Where stripe `s`'s shard starts in the fragment.
    pub fn shard_offset(&self, s: u32) -> u64 {
        FRAGMENT_HEADER_LEN + s as u64 * self.shard_size as u64
    }

    /// Where the table starts.
    pub fn table_offset(&self) -> u64 {
        if self.stripes == 0 {
            FRAGMENT_HEADER_LEN
        } else {
            self.shard_offset(self.stripes - 1) + self.shard_len(self.stripes - 1)
        }
    }

    /// Bytes of the table and trailer.
    pub fn tail_len(&self) -> u64 {
        self.stripes as u64 * FRAGMENT_TABLE_ENTRY_LEN + FRAGMENT_TRAILER_LEN
    }

    /// Bytes of the whole fragment file.
    pub fn file_len(&self) -> u64 {
        self.table_offset() + self.tail_len()
    }

    fn file_len_wide(&self) -> u128 {
        FRAGMENT_HEADER_LEN as u128
            + self.stripes as u128 * (self.shard_size as u128 + FRAGMENT_TABLE_ENTRY_LEN as u128)
            + FRAGMENT_TRAILER_LEN as u128
    }

    /// The stripes that hold `len` object bytes from `offset` (clamped to the object).
    pub fn stripes_covering(&self, offset: u64, len: u64) -> Range<u32> {
        let end = offset.saturating_add(len).min(self.len);
        if len == 0 || offset >= end {
            return 0..0;
        }
        let stripe = self.stripe_data_len();
        (offset / stripe) as u32..end.div_ceil(stripe) as u32
    }

    /// Whether `other` is a fragment of the same encoding of the same object (all but the
    /// index equal).
    pub fn same_object(&self, other: &FragmentHeader) -> bool {
        FragmentHeader {
            index: self.index,
            ..*other
        } == *self
    }
}

/// The table and trailer that end fragment `header`, for its stripes' sums.
pub fn encode_tail(header: &FragmentHeader, table: &[StripeSums]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.tail_len() as usize);
    for sums in table {
        out.extend_from_slice(&sums.shard);
        out.extend_from_slice(&sums.stripe);
    }
    let check = tail_check(header, &out);
    out.extend_from_slice(&check);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&FRAGMENT_MAGIC);
    out
}

/// Reads the table from a fragment's tail (the last [`FragmentHeader::tail_len`] bytes),
/// checking the trailer against the header and the table.
pub fn decode_tail(header: &FragmentHeader, tail: &[u8]) -> Result<Vec<StripeSums>, FragmentError> {
    let damaged = |why: &str| Err(FragmentError::Damaged(why.to_string()));
    if tail.len() as u64 != header.tail_len() {
        return damaged("the table and trailer are not the length the header says");
    }
    let (table, trailer) = tail.split_at(tail.len() - FRAGMENT_TRAILER_LEN as usize);
    if trailer[12..16] != FRAGMENT_MAGIC {
        return damaged("no STEC magic at the end");
    }
    if trailer[8..12] != [0; 4] {
        return damaged("reserved trailer bytes are not zero");
    }
    if trailer[0..8] != tail_check(header, table) {
        return damaged("the check does not match the header and table");
    }
    Ok(table
        .chunks_exact(FRAGMENT_TABLE_ENTRY_LEN as usize)
        .map(|entry| {
            let mut sums = StripeSums {
                shard: [0; 32],
                stripe: [0; 32],
            };
            sums.shard.copy_from_slice(&entry[..32]);
            sums.stripe.copy_from_slice(&entry[32..]);
            sums
        })
        .collect())
}

fn tail_check(header: &FragmentHeader, table: &[u8]) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&header.encode());
    hasher.update(table);
    let mut out = [0u8; 8];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_cover_the_object_exactly() {
        let lens = [
            0u64,
            1,
            2,
            3,
            1000,
            STRIPE_TARGET - 1,
            STRIPE_TARGET,
            STRIPE_TARGET + 1,
            5 * STRIPE_TARGET + 7,
        ];
        for k in [1u8, 2, 3, 4, 10] {
            for len in lens {
                let h = FragmentHeader::for_object(k, 2, 0, len).unwrap();
                assert_eq!(FragmentHeader::decode(&h.encode()).unwrap(), h);
                let mut covered = 0;
                for s in 0..h.stripes {
                    let r = h.stripe_bytes(s);
                    assert_eq!(r.start, covered);
                    assert!(
                        r.end - r.start <= h.shard_len(s) * k as u64,
                        "k={k} len={len}"
                    );
                    assert!(h.shard_len(s).is_multiple_of(2));
                    covered = r.end;
                }
                assert_eq!(covered, len);
            }
        }
    }

    #[test]
    fn a_tail_round_trips_and_every_byte_flip_is_refused() {
        let h = FragmentHeader::for_object(4, 2, 5, 3 * STRIPE_TARGET).unwrap();
        let table: Vec<StripeSums> = (0..h.stripes)
            .map(|s| StripeSums {
                shard: [s as u8; 32],
                stripe: [s as u8 + 100; 32],
            })
            .collect();
        let tail = encode_tail(&h, &table);
        assert_eq!(tail.len() as u64, h.tail_len());
        assert_eq!(decode_tail(&h, &tail).unwrap(), table);
        for at in 0..tail.len() {
            let mut bad = tail.clone();
            bad[at] ^= 1;
            assert!(decode_tail(&h, &bad).is_err(), "flip at {at}");
        }
        let other = FragmentHeader { index: 4, ..h };
        assert!(decode_tail(&other, &tail).is_err());
        for at in 0..FRAGMENT_HEADER_LEN as usize {
            let mut bytes = h.encode();
            bytes[at] ^= 1;
            let refused = match FragmentHeader::decode(&bytes) {
                Err(_) => true,
                Ok(changed) => decode_tail(&changed, &tail).is_err(),
            };
            assert!(refused, "header flip at {at}");
        }
    }
}
