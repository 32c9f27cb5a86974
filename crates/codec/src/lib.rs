//! # strata-codec
//!
//! The pure, synchronous heart of Strata: everything that turns bytes into other bytes or
//! into facts about bytes, with no I/O and no async. It owns
//!
//! - [`hash`]: BLAKE3 chunk hashing at an offset and the merge of chunk chaining values
//!   into the standard file hash (the value `b3sum` prints), so that a file's hash can be
//!   computed chunk by chunk, in any order, on any worker;
//! - [`format`]: the one home of every on-disk format Strata writes (chunk frame, dataset
//!   manifest, packed index and layout marker, parity map, packed tier object, tier marker,
//!   model file names), specified in `docs/FORMATS.md`; [`manifest`] is
//!   [`format::manifest`], the versioned dataset manifest with its root hash;
//! - [`parity`]: Reed-Solomon parity over groups of shards (`--parity 10%`, `ec:K+M`) and
//!   the rebuild of lost shards;
//! - [`compress`]: the codec suite (none, lz4, zstd, gzip, bzip2, xz), the byte-shuffle
//!   filter and the self-describing chunk frame;
//! - [`analyze`]: format sniffing (HDF5, NetCDF, FITS, GRIB, BAM, ...), entropy, the
//!   per-chunk probe and the codec selector that maximises the end-to-end rate.
//!
//! Everything here is deterministic and cheap to test exhaustively; the crates above
//! (store, mover, cli) bring the I/O.

pub mod analyze;
pub mod compress;
pub mod format;
pub mod hash;
pub mod parity;

pub use format::manifest;

pub use hash::{ChunkHasher, ChunkLayout, ChunkValue, FileHashError, Hash32};
pub use manifest::{
    DatasetManifest, ManifestError, ManifestFile, B3SUMS_PATH, MANIFEST_COPY_PATH, MANIFEST_FORMAT,
    MANIFEST_PATH, MANIFEST_VERSION,
};
