//! # strata-redundancy: redundancy per tier
//!
//! A tier declares `redundancy = "none" | "replicate:N" | "ec:K+M"` over a list of stores,
//! its failure domains. This crate owns how one object's bytes are kept over those domains
//! ([`RedundantStore`]): writing them, reading them back verified (degraded when domains
//! are lost), checking, repairing, re-encoding and settling what a crash left. It does not
//! own which encoding an object should have (the service's policy), when to repair (the
//! service schedules it from [`Read::faults`]) or the byte layouts (`strata_codec::format`:
//! `replica_sums`, `fragment`; specified in `docs/FORMATS.md`).
//!
//! - [`spec`]: [`Redundancy`] and its spelling;
//! - [`placement`]: rendezvous placement of pieces and the latency order of reads;
//! - [`domains`]: [`RedundantStore`], what is on the domains, write, stat, delete, list;
//! - [`reader`]: reads: [`RedundantStore::open`] looks at the domains once per object read
//!   and its [`ObjectReader`] serves the ranges, verified, looking again only when a read
//!   meets a fault;
//! - [`replicas`]: plain-file replicas with an integrity record;
//! - [`erasure`]: Reed-Solomon fragments (over `strata_codec::parity`), hedged reads;
//! - [`repair`]: check, repair, re-encode, settle; a repair or re-encode streams the object
//!   through the mover's chunk pipeline (`strata_mover::pipeline::pump`, the one engine:
//!   this crate uses it, the mover never uses this crate), hashed whole on the way and,
//!   given the object's BLAKE3, refused before anything is published when the bytes differ;
//! - `stream` and `upload`: streaming writes ([`RedundantStore::begin_write`],
//!   [`RedundantUpload`]) and window-by-window reads, so writes, re-encodes and repairs
//!   hold a few stripes or chunks in memory whatever the object's size.
//!
//! **Crash safety**: every piece is staged and published atomically (`Store::begin_upload`,
//! `Upload::publish`; integrity records with `Store::write_atomic`); replicas
//! are written before their integrity records; a new encoding is written and verified
//! before the old one is removed; [`RedundantStore::settle`] (start-up, scrub) removes what
//! an interrupted write or re-encode left.

#![deny(missing_docs)]

pub mod domains;
pub mod erasure;
mod error;
mod health;
pub mod placement;
pub mod reader;
pub mod repair;
pub mod replicas;
pub mod spec;
mod stream;
mod upload;

pub use domains::{ObjectStat, Read, RedundancyCounters, RedundantStore};
pub use error::{DomainFault, FaultKind, RedundancyError};
pub use health::{Health, PieceHealth, PieceState, RepairOutcome, SettleOutcome};
pub use reader::ObjectReader;
pub use spec::Redundancy;
pub use upload::RedundantUpload;
