//! BLAKE3 hashing by chunks.
//!
//! A file is cut into fixed-size chunks (a power of two of at least 1 KiB, BLAKE3's own
//! chunk length). Each chunk is hashed on its own, at its offset, into a *chaining value*;
//! the chaining values are then merged along BLAKE3's tree into the file's root hash. The
//! result is bit-for-bit the hash `b3sum` prints for the whole file, yet the chunks can be
//! hashed in parallel, out of order, resumed after a crash, or on different machines.
//!
//! A file that fits in a single chunk has no tree above its chunk: its one "chunk value" is
//! already the root hash.

use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, HasherExt, Mode};

/// A 32-byte BLAKE3 output: a root hash or a chaining value.
pub type Hash32 = [u8; 32];

/// The smallest chunk size Strata accepts: BLAKE3's own chunk length.
pub const MIN_CHUNK_SIZE: u64 = 1024;

/// The value Strata keeps for one chunk: its chaining value, or for a single-chunk file the
/// file's root hash.
pub type ChunkValue = Hash32;

/// Why a file hash could not be merged from chunk values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileHashError {
    /// The chunk size is not a power of two of at least 1 KiB.
    #[error("chunk size {0} is not a power of two of at least 1 KiB; pick one like 1M, 4M or 16M")]
    BadChunkSize(u64),
    /// The number of chunk values does not match the file size.
    #[error("expected {expected} chunk values for this file, got {got}")]
    WrongChunkCount {
        /// Chunks the file size implies.
        expected: u64,
        /// Chunk values supplied.
        got: u64,
    },
}

/// How a file of a given size is cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLayout {
    chunk_size: u64,
    file_size: u64,
}

impl ChunkLayout {
    /// The layout of a file of `file_size` bytes cut into `chunk_size` chunks.
    pub fn new(chunk_size: u64, file_size: u64) -> Result<Self, FileHashError> {
        if chunk_size < MIN_CHUNK_SIZE || !chunk_size.is_power_of_two() {
            return Err(FileHashError::BadChunkSize(chunk_size));
        }
        Ok(Self {
            chunk_size,
            file_size,
        })
    }

    /// The chunk size in bytes.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// The file size in bytes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Number of chunks; an empty file has one (empty) chunk so that it has a hash and a task.
    pub fn chunk_count(&self) -> u64 {
        self.file_size.div_ceil(self.chunk_size).max(1)
    }

    /// Byte range `(offset, len)` of chunk `index`.
    pub fn chunk_range(&self, index: u64) -> (u64, u64) {
        let offset = index * self.chunk_size;
        let len = self.chunk_size.min(self.file_size.saturating_sub(offset));
        (offset, len)
    }

    /// Whether the whole file is a single chunk (its chunk value is then the root hash).
    pub fn is_single_chunk(&self) -> bool {
        self.chunk_count() == 1
    }

    /// Hash the bytes of chunk `index` into its [`ChunkValue`].
    ///
    /// `data` must be exactly the chunk's bytes (length from [`Self::chunk_range`]).
    pub fn chunk_value(&self, index: u64, data: &[u8]) -> ChunkValue {
        let mut hasher = self.chunk_hasher(index);
        hasher.update(data);
        hasher.finish()
    }

    /// A hasher for chunk `index` fed its bytes in pieces, in order: the same
    /// [`ChunkValue`] as [`Self::chunk_value`] without the whole chunk in one buffer.
    pub fn chunk_hasher(&self, index: u64) -> ChunkHasher {
        let mut hasher = blake3::Hasher::new();
        let single = self.is_single_chunk();
        if !single {
            hasher.set_input_offset(index * self.chunk_size);
        }
        ChunkHasher { hasher, single }
    }

    /// Merge the chunk values, in chunk order, into the file's BLAKE3 root hash.
    pub fn merge(&self, values: &[ChunkValue]) -> Result<Hash32, FileHashError> {
        let expected = self.chunk_count();
        if values.len() as u64 != expected {
            return Err(FileHashError::WrongChunkCount {
                expected,
                got: values.len() as u64,
            });
        }
        if values.len() == 1 {
            return Ok(values[0]);
        }
        let (left, right) = values.split_at(left_count(values.len()));
        Ok(*merge_subtrees_root(&merge_cv(left), &merge_cv(right), Mode::Hash).as_bytes())
    }
}

/// The [`ChunkValue`] of one chunk, hashed as its bytes arrive ([`ChunkLayout::chunk_hasher`]).
#[derive(Debug, Clone)]
pub struct ChunkHasher {
    hasher: blake3::Hasher,
    /// The file is this one chunk: its value is the root hash.
    single: bool,
}

impl ChunkHasher {
    /// Hashes the chunk's next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// The chunk's value (the root hash when the file is a single chunk).
    pub fn finish(&self) -> ChunkValue {
        if self.single {
            *self.hasher.finalize().as_bytes()
        } else {
            self.hasher.finalize_non_root()
        }
    }
}

/// Chunks in the left subtree of a run of `n > 1` equal power-of-two chunks: the largest
/// power of two strictly below `n` (BLAKE3's left subtree is the largest power-of-two
/// number of its 1 KiB chunks that leaves at least one byte on the right).
fn left_count(n: usize) -> usize {
    debug_assert!(n > 1);
    let below = n - 1;
    1 << (usize::BITS - 1 - below.leading_zeros())
}

fn merge_cv(values: &[ChunkValue]) -> ChunkValue {
    if values.len() == 1 {
        return values[0];
    }
    let (left, right) = values.split_at(left_count(values.len()));
    merge_subtrees_non_root(&merge_cv(left), &merge_cv(right), Mode::Hash)
}

/// Lower-case hex of a hash, as `b3sum` prints it.
pub fn to_hex(hash: &Hash32) -> String {
    hex::encode(hash)
}

/// Parse a 64-character hex hash.
pub fn from_hex(text: &str) -> Option<Hash32> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hash_by_chunks(chunk_size: u64, data: &[u8]) -> Hash32 {
        let layout = ChunkLayout::new(chunk_size, data.len() as u64).unwrap();
        let values: Vec<_> = (0..layout.chunk_count())
            .map(|i| {
                let (off, len) = layout.chunk_range(i);
                layout.chunk_value(i, &data[off as usize..(off + len) as usize])
            })
            .collect();
        layout.merge(&values).unwrap()
    }

    #[test]
    fn left_count_is_largest_power_of_two_below_n() {
        for n in 2..300usize {
            let l = left_count(n);
            assert!(l.is_power_of_two() && l < n && l * 2 >= n, "n={n} l={l}");
        }
    }

    #[test]
    fn equals_plain_blake3_around_chunk_boundaries() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for chunk in [1024u64, 2048, 4096, 16384] {
            for len in [
                0usize, 1, 1023, 1024, 1025, 4095, 4096, 4097, 9000, 65536, 70_000,
            ] {
                let want = *blake3::hash(&data[..len]).as_bytes();
                assert_eq!(
                    hash_by_chunks(chunk, &data[..len]),
                    want,
                    "chunk {chunk} len {len}"
                );
            }
        }
    }

    #[test]
    fn a_chunk_hashed_in_pieces_has_the_value_of_the_chunk_hashed_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (chunk_size, file) in [(4096, &data[..]), (16384, &data[..])] {
            let layout = ChunkLayout::new(chunk_size, file.len() as u64).unwrap();
            for index in 0..layout.chunk_count() {
                let (offset, len) = layout.chunk_range(index);
                let chunk = &file[offset as usize..(offset + len) as usize];
                let mut hasher = layout.chunk_hasher(index);
                for piece in chunk.chunks(1000) {
                    hasher.update(piece);
                }
                assert_eq!(hasher.finish(), layout.chunk_value(index, chunk));
            }
        }
        // A single-chunk file's value is its root hash, in pieces too.
        let layout = ChunkLayout::new(16384, data.len() as u64).unwrap();
        let mut hasher = layout.chunk_hasher(0);
        data.chunks(333).for_each(|piece| hasher.update(piece));
        assert_eq!(hasher.finish(), *blake3::hash(&data).as_bytes());
    }

    #[test]
    fn rejects_bad_chunk_sizes_and_counts() {
        assert_eq!(
            ChunkLayout::new(1000, 5),
            Err(FileHashError::BadChunkSize(1000))
        );
        assert_eq!(
            ChunkLayout::new(512, 5),
            Err(FileHashError::BadChunkSize(512))
        );
        let layout = ChunkLayout::new(1024, 5000).unwrap();
        assert_eq!(
            layout.merge(&[[0; 32]; 2]),
            Err(FileHashError::WrongChunkCount {
                expected: 5,
                got: 2
            })
        );
    }

    #[test]
    fn a_flipped_bit_changes_the_hash() {
        let mut data = vec![7u8; 10_000];
        let before = hash_by_chunks(1024, &data);
        data[5000] ^= 1;
        assert_ne!(hash_by_chunks(1024, &data), before);
    }

    proptest! {
        #[test]
        fn merged_hash_equals_blake3(len in 0usize..40_000, shift in 10u32..14, seed: u8) {
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(i as u8 >> 3)).collect();
            prop_assert_eq!(hash_by_chunks(1 << shift, &data), *blake3::hash(&data).as_bytes());
        }
    }
}
