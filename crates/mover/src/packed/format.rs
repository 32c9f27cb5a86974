//! Persisted types of the packed layout: the layout marker, the index, object names.
//!
//! Their home is `strata_codec::format::packed`, with Strata's other on-disk formats
//! (specified in `docs/FORMATS.md`); re-exported here so the mover's paths keep working.

pub use strata_codec::format::packed::*;
