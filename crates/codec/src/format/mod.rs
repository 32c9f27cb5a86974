//! One home for every format Strata writes to disk or to a store, specified byte by byte
//! in `docs/FORMATS.md`, whose worked examples `crates/codec/tests/format_spec.rs` reads and
//! compares with what this code writes, so the document and the code cannot drift apart.
//!
//! This module owns the byte-level encoding and decoding, pure and synchronous; the crates
//! above do the I/O (which store, which path, retries, two copies).
//!
//! | format | module | version | written by |
//! |---|---|---|---|
//! | chunk frame (`STF1`) | [`frame`] | [`frame::FRAME_VERSION`] | packed datasets, packed tiers |
//! | encrypted frame (`STEF`) | [`encrypted`] | [`encrypted::ENCRYPTED_VERSION`] | encrypted packed tiers (inside version 2 packed tier objects) |
//! | dataset manifest | [`manifest`] | [`manifest::MANIFEST_VERSION`] | `strata migrate` |
//! | sealed JSON (self-hash) | [`sealed`] | (per document) | packed index, parity map |
//! | packed layout marker, index, object names | [`packed`] | [`packed::LAYOUT_VERSION`], [`packed::INDEX_VERSION`] | `strata migrate --layout packed` |
//! | parity map, parity shard names | [`parity_map`] | [`parity_map::PARITY_MAP_VERSION`] | `--parity` |
//! | packed tier object (`STPT`) | [`tier_object`] | [`tier_object::PACKED_VERSION`] | `strata serve`, packed tiers |
//! | tier layout marker | [`tier_marker`] | [`tier_marker::TIER_MARKER_VERSION`] | `strata serve` |
//! | replica integrity record (`STRS`) | [`replica_sums`] | [`replica_sums::REPLICA_SUMS_VERSION`] | tiers with `redundancy = "replicate:N"` or `"none"` |
//! | erasure-coded fragment (`STEC`) | [`fragment`] | [`fragment::FRAGMENT_VERSION`] | tiers with `redundancy = "ec:K+M"` |
//! | forecast model file names | [`model`] | (heat's `MODEL_FORMAT_VERSION`) | `strata train` |
//!
//! Staging names (`.strata/staging/`) belong to `strata_store` (they are how a store
//! publishes, not what it holds) and the catalog's schema to its numbered migrations
//! (`crates/catalog/migrations/`); `docs/FORMATS.md` specifies both.

pub mod encrypted;
pub mod fragment;
pub mod frame;
pub mod manifest;
pub mod model;
pub mod packed;
pub mod parity_map;
pub mod replica_sums;
pub mod sealed;
pub mod tier_marker;
pub mod tier_object;
