//! Queries both engines run alike, written once and compiled once per engine: each
//! engine's `mod.rs` declares this module with `#[path = "../portable/mod.rs"]`, so `super`
//! here is that engine and the names below come from its `dialect.rs` (see `README.md`).

mod chunk_hashes;
mod file_finish;
mod history;
mod import;
mod object_writes;
mod queries;
mod rows;
mod s3_meta;
mod stream_offsets;
mod tiering;
mod tokens;
mod workers;

use super::dialect::{saturating_sum, Engine, EngineConn, EngineDb, EngineRow, ROW_LOCK};
