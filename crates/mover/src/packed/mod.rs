//! The packed layout: Strata's own chunk store, for cold tiers and slow links.
//!
//! ```text
//! DST/
//!   .strata/layout.json              {"format":"strata-layout","version":1,"layout":"packed",...}
//!   .strata/manifest.json            the dataset manifest (as for plain), plus `layout` and
//!                                    `index`: the path of the index of this version
//!   .strata/index/<root-hash>.json   PackedIndex: where every chunk of every file is
//!   chunks/<aa>/<blake3-of-raw>      one frame: a chunk of a large file
//!   packs/<aa>/<blake3-of-pack>      frames of many small files, back to back
//!   parity/<group-id>/<i>            Reed-Solomon parity shard i of a group of objects
//!   .strata/parity/<root-hash>.json  ParityMap: the groups (and a .copy.json beside it)
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
//! - Parity (`--parity`, [`parity`]) covers the objects of a version in groups; `strata
//!   repair` ([`repair`]) rebuilds damaged objects from it or from the source.
//! - Resume: a re-run recomputes chunk keys from the source (a local read and compression,
//!   no transfer) and sends only objects the destination does not have yet.

pub mod format;
pub mod parity;
pub mod read;
pub mod repair;
pub mod write;

pub use format::{ChunkLocator, IndexedFile, LayoutMarker, PackedIndex};

/// Files up to this size go into packs.
pub const SMALL_FILE_MAX: u64 = 1 << 20;
/// Raw bytes gathered into one pack before it is written.
pub const PACK_TARGET: u64 = 8 << 20;
