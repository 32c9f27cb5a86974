//! The packed layout: Strata's own chunk store, for cold tiers and slow links.
//!
//! ```text
//! DST/
//!   .strata/layout.json              {"format":"strata-layout","version":1,"layout":"packed",...}
//!   .strata/manifest.json            the dataset manifest (as for plain), plus `layout` and
//!                                    `index`: the path of the index of this version
//!                                    (self-hashed; a copy at .strata/manifest.copy.json)
//!   .strata/index/<root-hash>.json   PackedIndex: where every chunk of every file is
//!                                    (self-hashed; .copy.json beside it, same bytes)
//!   chunks/<aa>/<blake3-of-raw>      one frame: a chunk of a large file
//!   packs/<aa>/<blake3-of-pack>      frames of many small files, back to back
//!   parity/<group-id>/<i>            Reed-Solomon parity shard i of a group of objects
//!   .strata/parity/<root-hash>.json  ParityMap: the groups (self-hashed; .copy.json beside)
//! ```
//!
//! - Every object is content-addressed: a chunk object is named by the BLAKE3 of its raw
//!   bytes, a pack by the BLAKE3 of its own bytes. Writing the same data again names the
//!   same object, so rewriting is idempotent and a duplicate chunk is stored once.
//! - Frames are self-describing (`strata_codec::compress::frame`): codec, filter, raw
//!   length and raw hash, so any chunk can be decoded and checked on its own.
//! - Small files (at most [`SMALL_FILE_MAX`] bytes) are bundled into packs of about
//!   [`PACK_TARGET`] raw bytes, assigned in plan order, so a re-run builds the same packs.
//! - Each run writes a new index named by the dataset root hash and then points the
//!   manifest at it: earlier versions stay readable.
//! - The index and the parity map are sealed like the manifest ([`sealed`]): a self-hash
//!   over their canonical JSON, and a second copy written before anything points at them.
//!   Readers use the primary or, when it is missing or fails its checks, the copy, and name
//!   the bad one; `strata repair` rewrites it from the good one. An index written before
//!   sealing (no `self_hash`) is legacy: read without a copy, still checked against the
//!   manifest and object by object. Parity covers the data objects, not this metadata.
//! - Parity (`--parity`, [`parity`]) covers the objects of a version in groups; `strata
//!   repair` ([`repair`]) rebuilds damaged objects from it or from the source.
//! - Encrypted datasets (`--encrypt`, marker version 2 with cipher and key id): every
//!   frame is sealed (`strata_codec::format::encrypted`), and objects are named by BLAKE3
//!   keyed with a subkey of the dataset key instead (raw chunk; a pack's frames before
//!   sealing), so one key still dedups and resumes. Readers get the key from
//!   [`crate::encryption::dataset_keys`]; `--parity`, `--queue` and `strata repair` refuse
//!   encrypted datasets.
//! - Resume: a re-run recomputes chunk keys from the source (a local read and compression,
//!   no transfer) and sends only objects the destination does not have yet.

pub mod format;
pub mod parity;
pub mod parity_plan;
pub mod read;
pub mod repair;
pub mod sealed;
pub mod write;

pub use format::{ChunkLocator, IndexedFile, LayoutMarker, PackedIndex};

/// Files up to this size go into packs.
pub const SMALL_FILE_MAX: u64 = 1 << 20;
/// Raw bytes gathered into one pack before it is written.
pub const PACK_TARGET: u64 = 8 << 20;
