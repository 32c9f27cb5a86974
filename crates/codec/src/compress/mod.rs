//! The compression suite: codecs, filters, and the chunk frame that carries them.
//!
//! This module owns the bytes-to-bytes half of Strata's adaptive compression. It does not
//! decide anything: [`crate::analyze`] chooses a [`Codec`] and a [`Filter`] per chunk, and
//! this module applies them and wraps the result in a self-describing frame
//! ([`encode_frame`] / [`decode_frame`]) that names its codec, filter, lengths and the
//! BLAKE3 hash of the raw bytes, so that any chunk can be decoded and verified on its own,
//! by any node, long after the manifest that listed it is gone.
//!
//! - [`codec`]: none, lz4, zstd (levels, long mode), gzip, bzip2, xz, and the crates used;
//! - [`budget`]: the process-wide bound on heavy encoders running at once;
//! - [`filter`]: the byte shuffle for typed numeric arrays (element width 2, 4, 8);
//! - [`frame`]: the frame layout (a fixed 64-byte header) and its checks (its home is
//!   [`crate::format::frame`], with Strata's other on-disk formats; re-exported here);
//! - [`spec`]: parsing `--codec` values (`auto`, `max`, `zstd:19`, `xz:6+shuffle4`, ...).

pub mod budget;
pub mod codec;
pub mod filter;
pub mod spec;

pub use crate::format::frame;

pub use codec::Codec;
pub use filter::{shuffle, unshuffle, Filter, SHUFFLE_WIDTHS};
pub use frame::{
    decode_frame, encode_frame, read_header, FrameError, FrameHeader, FRAME_HEADER_LEN,
    FRAME_MAGIC, FRAME_VERSION, MAX_RAW_LEN,
};
pub use spec::{CodecSpec, CodecSpecError, VALID_SPECS};
