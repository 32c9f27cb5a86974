//! Analysis and selection: what a chunk is, and which codec and filter suit it.
//!
//! This module owns every decision of adaptive compression; [`crate::compress`] only
//! carries them out. Per file, [`sniff_format`] reads the header once (format, typed
//! regions, element widths). Per chunk, [`probe()`](fn@probe) measures the entropy of a sample, finds
//! the shuffle width, and trial-compresses the sample with each candidate the objective
//! could pick; [`select()`](fn@select) turns that into a [`Choice`] with a human-readable reason, under
//! an [`Objective`]: the best end-to-end rate for a link rate, the best ratio, or a fixed
//! codec. [`encode_chunk`] does all three and encodes the frame; [`analyze_file_chunks`]
//! does it for a whole file and reports on every chunk, for `strata inspect`.
//!
//! - [`entropy`]: byte entropy and spread samples;
//! - [`format`](mod@format): format detection and typed regions; `headers` parses the headers;
//! - [`probe`](mod@probe): the per-chunk probe and its trials;
//! - [`select`](mod@select): the end-to-end rate model, the speed table, the choice;
//! - [`report`]: whole-chunk and whole-file entry points.

pub mod entropy;
pub mod format;
mod hdf5;
mod headers;
pub mod probe;
pub mod report;
pub mod select;

pub use entropy::{byte_entropy, spread_sample};
pub use format::{sniff_format, Format, FormatInfo, TypedRegion, SNIFF_LEN};
pub use probe::{candidates, probe, probe_with, Probe, ProbeConfig, Trial, WidthSource};
pub use report::{analyze_file_chunks, encode_chunk, ChunkReport, EncodedChunk};
pub use select::{select, select_with, Choice, Objective, SpeedTable};
