//! The compression codecs and the crates behind them.
//!
//! Crates, and why each:
//!
//! - **lz4**: [`lz4_flex`], pure Rust and the fastest LZ4 in Rust; built with its safe
//!   encoder and checked decoder, so a damaged block is an error, not undefined behaviour.
//! - **zstd**: [`zstd`] (gyscos/zstd-rs), the maintained binding to the reference C library;
//!   no pure-Rust encoder matches its ratio per second at every level.
//! - **gzip**: [`flate2`] on the `zlib-rs` backend (pure Rust, zlib-ng speed), kept for
//!   interoperability; it rarely wins on ratio or speed.
//! - **bzip2**: [`bzip2`] 0.6, maintained by the Trifecta Tech Foundation, on its pure-Rust
//!   `libbz2-rs-sys` port; it wins on some text (FASTQ/VCF) at its own speed.
//! - **xz**: [`liblzma`], the maintained fork of the abandoned `xz2`, built from its
//!   bundled, statically linked liblzma; LZMA2 gives the best ratios here, at the lowest
//!   speed, and is what `--codec max` mostly picks.
//!
//! Compression never fails from the caller's point of view: levels are clamped to each
//! codec's range, and a codec error makes the frame store the chunk raw. Decompression is
//! bounded by the raw length the frame declares, so a hostile frame cannot make it allocate
//! more than that.

use std::fmt;
use std::io::{Read, Write};

/// A compression codec with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Stored as is.
    None,
    /// LZ4 block format: the fastest, for fast links.
    Lz4,
    /// Zstandard at `level` (-7..=22); `long` enables long-distance matching with a 128 MiB
    /// window, which only helps chunks larger than the normal window.
    Zstd {
        /// Compression level, -7 (fastest) to 22 (strongest).
        level: i32,
        /// Long-distance matching.
        long: bool,
    },
    /// Gzip (DEFLATE) at `level` 1..=9.
    Gzip {
        /// Compression level 1..=9.
        level: u32,
    },
    /// Bzip2 at `level` 1..=9 (block size in units of 100 kB).
    Bzip2 {
        /// Compression level 1..=9.
        level: u32,
    },
    /// XZ (LZMA2) at preset `level` 0..=9, with no integrity check of its own (the frame
    /// carries a BLAKE3 hash of the raw bytes).
    Xz {
        /// Preset 0..=9.
        level: u32,
    },
}

/// Zstandard window log used by long mode: 128 MiB, as `zstd --long`.
pub const ZSTD_LONG_WINDOW_LOG: u32 = 27;

/// Codec failure while decoding.
#[derive(Debug)]
pub(crate) enum DecodeFailure {
    /// The codec rejected its input.
    Corrupt(String),
    /// The output is not exactly the declared raw length.
    Length(u64),
}

impl Codec {
    /// The codec's id in a frame header.
    pub(crate) fn id(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Lz4 => 1,
            Codec::Zstd { .. } => 2,
            Codec::Gzip { .. } => 3,
            Codec::Bzip2 { .. } => 4,
            Codec::Xz { .. } => 5,
        }
    }

    /// `(id, level, flags)` for a frame header. Levels fit in an `i8` once clamped.
    pub(crate) fn to_wire(self) -> (u8, i8, u8) {
        let c = self.clamped();
        match c {
            Codec::None | Codec::Lz4 => (c.id(), 0, 0),
            Codec::Zstd { level, long } => (c.id(), level as i8, long as u8),
            Codec::Gzip { level } | Codec::Bzip2 { level } | Codec::Xz { level } => {
                (c.id(), level as i8, 0)
            }
        }
    }

    /// The codec a frame header names, or `None` for an id or parameters this version
    /// does not know.
    pub(crate) fn from_wire(id: u8, level: i8, flags: u8) -> Option<Codec> {
        let l = level as i32;
        let codec = match (id, flags) {
            (0, 0) if l == 0 => Codec::None,
            (1, 0) if l == 0 => Codec::Lz4,
            (2, 0 | 1) => Codec::Zstd {
                level: l,
                long: flags == 1,
            },
            (3, 0) => Codec::Gzip { level: l as u32 },
            (4, 0) => Codec::Bzip2 { level: l as u32 },
            (5, 0) => Codec::Xz { level: l as u32 },
            _ => return None,
        };
        (l >= 0 || id == 2)
            .then_some(codec)
            .filter(|c| c.clamped() == *c)
    }

    /// The same codec with its level brought into the codec's valid range.
    pub fn clamped(self) -> Codec {
        match self {
            Codec::Zstd { level, long } => Codec::Zstd {
                level: level.clamp(-7, 22),
                long,
            },
            Codec::Gzip { level } => Codec::Gzip {
                level: level.clamp(1, 9),
            },
            Codec::Bzip2 { level } => Codec::Bzip2 {
                level: level.clamp(1, 9),
            },
            Codec::Xz { level } => Codec::Xz {
                level: level.min(9),
            },
            c => c,
        }
    }

    /// Compress `data`. Errors are reported, never panicked on; the frame turns them into
    /// raw storage. A heavy codec ([`Codec::is_heavy`]) first waits for a
    /// [`super::budget::Permit`], so that at most [`super::budget::heavy_limit`] of them
    /// hold their tables at once in this process.
    pub fn compress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let _permit = self.is_heavy().then(super::budget::Permit::acquire);
        match self.clamped() {
            Codec::None => Ok(data.to_vec()),
            Codec::Lz4 => Ok(lz4_flex::block::compress(data)),
            Codec::Zstd { level, long } => zstd_compress(data, level, long),
            Codec::Gzip { level } => {
                let out = Vec::with_capacity(data.len() / 2);
                let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
                e.write_all(data)?;
                e.finish()
            }
            Codec::Bzip2 { level } => {
                let out = Vec::with_capacity(data.len() / 2);
                let mut e = bzip2::write::BzEncoder::new(out, bzip2::Compression::new(level));
                e.write_all(data)?;
                e.finish()
            }
            Codec::Xz { level } => xz_compress(data, level),
        }
    }

    /// Whether this codec holds large tables while it compresses (xz, bzip2, zstd at
    /// level 12 and above or in long mode), and so runs under the process-wide bound.
    pub fn is_heavy(self) -> bool {
        match self {
            Codec::Zstd { level, long } => long || level >= 12,
            Codec::Bzip2 { .. } | Codec::Xz { .. } => true,
            Codec::None | Codec::Lz4 | Codec::Gzip { .. } => false,
        }
    }

    /// Decompress `payload`, which must give exactly `raw_len` bytes.
    pub(crate) fn decompress(self, payload: &[u8], raw_len: u64) -> Result<Vec<u8>, DecodeFailure> {
        let corrupt = |e: &dyn fmt::Display| DecodeFailure::Corrupt(e.to_string());
        let out = match self {
            Codec::None => payload.to_vec(),
            Codec::Lz4 => {
                // An LZ4 sequence expands at most ~255 times; reject bigger claims before
                // allocating for them.
                if raw_len > (payload.len() as u64).saturating_mul(255) + 16 {
                    return Err(DecodeFailure::Corrupt(
                        "lz4 block too small for its declared length".into(),
                    ));
                }
                lz4_flex::block::decompress(payload, raw_len as usize).map_err(|e| corrupt(&e))?
            }
            Codec::Zstd { .. } => {
                let mut d = zstd::stream::read::Decoder::with_buffer(payload)
                    .map_err(|e| corrupt(&e))?
                    .single_frame();
                d.window_log_max(ZSTD_LONG_WINDOW_LOG)
                    .map_err(|e| corrupt(&e))?;
                read_bounded(d, raw_len)?
            }
            Codec::Gzip { .. } => read_bounded(flate2::read::GzDecoder::new(payload), raw_len)?,
            Codec::Bzip2 { .. } => read_bounded(bzip2::read::BzDecoder::new(payload), raw_len)?,
            Codec::Xz { .. } => {
                // 1 GiB covers preset 9's 64 MiB dictionary with room; it only bounds memory.
                let stream = liblzma::stream::Stream::new_stream_decoder(1 << 30, 0)
                    .map_err(|e| corrupt(&e))?;
                read_bounded(
                    liblzma::read::XzDecoder::new_stream(payload, stream),
                    raw_len,
                )?
            }
        };
        if out.len() as u64 != raw_len {
            return Err(DecodeFailure::Length(out.len() as u64));
        }
        Ok(out)
    }

    /// A short name that [`crate::compress::CodecSpec::parse`] reads back, like `zstd:19`.
    pub fn name(&self) -> String {
        self.to_string()
    }
}

/// Read at most `raw_len + 1` bytes, so that a stream longer than declared is caught
/// without reading (or allocating for) all of it.
fn read_bounded(r: impl Read, raw_len: u64) -> Result<Vec<u8>, DecodeFailure> {
    // Reserve no more than 64 MiB up front: the declared length is not yet trusted.
    let mut out = Vec::with_capacity(raw_len.min(64 << 20) as usize);
    r.take(raw_len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DecodeFailure::Corrupt(e.to_string()))?;
    Ok(out)
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::None => f.write_str("none"),
            Codec::Lz4 => f.write_str("lz4"),
            Codec::Zstd { level, long: false } => write!(f, "zstd:{level}"),
            Codec::Zstd { level, long: true } => write!(f, "zstd:{level}:long"),
            Codec::Gzip { level } => write!(f, "gzip:{level}"),
            Codec::Bzip2 { level } => write!(f, "bzip2:{level}"),
            Codec::Xz { level } => write!(f, "xz:{level}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_zstd_context_keeps_nothing_of_the_previous_call() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| ((i % 251) ^ (i / 7)) as u8)
            .collect();
        let fresh = |level: i32| {
            zstd::bulk::Compressor::new(level)
                .unwrap()
                .compress(&data)
                .unwrap()
        };
        // Long mode, then a high level, then plain level 1: each must equal a fresh context.
        let long = Codec::Zstd {
            level: 3,
            long: true,
        }
        .compress(&data)
        .unwrap();
        let mut expected_long = zstd::bulk::Compressor::new(3).unwrap();
        expected_long
            .set_parameter(zstd::zstd_safe::CParameter::EnableLongDistanceMatching(
                true,
            ))
            .unwrap();
        expected_long
            .set_parameter(zstd::zstd_safe::CParameter::WindowLog(ZSTD_LONG_WINDOW_LOG))
            .unwrap();
        assert_eq!(long, expected_long.compress(&data).unwrap());
        for level in [19, 1, 3] {
            let got = Codec::Zstd { level, long: false }.compress(&data).unwrap();
            assert_eq!(
                got,
                fresh(level),
                "level {level} after other levels on this thread"
            );
        }
    }

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| (i / 7).to_le_bytes()).collect();
        for c in [
            Codec::None,
            Codec::Lz4,
            Codec::Zstd {
                level: 3,
                long: false,
            },
            Codec::Zstd {
                level: -5,
                long: true,
            },
            Codec::Gzip { level: 6 },
            Codec::Bzip2 { level: 9 },
            Codec::Xz { level: 6 },
        ] {
            let z = c.compress(&data).unwrap();
            assert!(c == Codec::None || z.len() < data.len() / 4, "{c}");
            assert_eq!(c.decompress(&z, data.len() as u64).unwrap(), data, "{c}");
            // A wrong declared length is always caught; lz4 blocks carry no length of
            // their own, so there it shows as a corrupt block.
            match c.decompress(&z, data.len() as u64 - 1) {
                Err(DecodeFailure::Length(_)) => {}
                Err(DecodeFailure::Corrupt(_)) if c == Codec::Lz4 => {}
                other => panic!("{c}: {other:?}"),
            }
        }
    }

    #[test]
    fn wire_form_round_trips_and_rejects_out_of_range() {
        for c in [
            Codec::None,
            Codec::Lz4,
            Codec::Zstd {
                level: -7,
                long: true,
            },
            Codec::Zstd {
                level: 22,
                long: false,
            },
            Codec::Gzip { level: 9 },
            Codec::Bzip2 { level: 1 },
            Codec::Xz { level: 0 },
        ] {
            let (id, l, f) = c.to_wire();
            assert_eq!(Codec::from_wire(id, l, f), Some(c));
        }
        assert_eq!(Codec::from_wire(2, 23, 0), None);
        assert_eq!(Codec::from_wire(3, 0, 0), None);
        assert_eq!(Codec::from_wire(5, -1, 0), None);
        assert_eq!(Codec::from_wire(1, 0, 1), None);
        assert_eq!(Codec::from_wire(6, 0, 0), None);
    }
}

thread_local! {
    /// One zstd compression context per thread, reused: creating and sizing a context
    /// cost about 15% of the time of packing many small files, where every file is
    /// trial-compressed several times.
    static ZSTD_CONTEXT: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// The dictionary of xz preset `level` (0..=9), as liblzma defines the presets.
fn xz_preset_dict(level: u32) -> u32 {
    const DICT: [u32; 10] = [18, 20, 21, 22, 22, 23, 23, 24, 25, 26];
    1 << DICT[level.min(9) as usize]
}

/// xz at preset `level`, with the dictionary no larger than the input needs: the preset's,
/// or the input's length rounded up to a power of two (at least 4 KiB) when that is
/// smaller. A dictionary at least as long as the input finds every match the preset's
/// would, and liblzma's tables scale with it (preset 6 on a 4 MiB chunk: about 48 MiB
/// instead of 94, and far less to allocate and clear for a probe's 256 KiB sample).
fn xz_compress(data: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    let fitted = (data.len() as u64).next_power_of_two().clamp(4096, 1 << 30) as u32;
    let mut options =
        liblzma::stream::LzmaOptions::new_preset(level.min(9)).map_err(std::io::Error::other)?;
    options.dict_size(fitted.min(xz_preset_dict(level)));
    let mut filters = liblzma::stream::Filters::new();
    filters.lzma2(&options);
    let stream =
        liblzma::stream::Stream::new_stream_encoder(&filters, liblzma::stream::Check::None)
            .map_err(std::io::Error::other)?;
    let out = Vec::with_capacity(data.len() / 2);
    let mut e = liblzma::write::XzEncoder::new_stream(out, stream);
    e.write_all(data)?;
    e.finish()
}

/// A zstd context larger than this (a strong level's tables) is freed after its call
/// instead of being kept for the thread's next one: kept, every blocking thread of the
/// mover held one (tens of MiB each at level 19). The cheap levels' small contexts are
/// what reuse pays for.
const ZSTD_KEEP_CONTEXT_MAX: usize = 8 << 20;

/// zstd at `level`, with long-distance matching if `long`, on this thread's context.
fn zstd_compress(data: &[u8], level: i32, long: bool) -> std::io::Result<Vec<u8>> {
    use zstd::zstd_safe::{CParameter, ResetDirective};
    ZSTD_CONTEXT.with(|cell| {
        let mut slot = cell.borrow_mut();
        let c = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(level)?),
        };
        // Every parameter back to its default, so nothing of the previous call leaks in.
        c.context_mut()
            .reset(ResetDirective::SessionAndParameters)
            .map_err(|code| std::io::Error::other(zstd::zstd_safe::get_error_name(code)))?;
        c.set_parameter(CParameter::CompressionLevel(level))?;
        if long {
            c.set_parameter(CParameter::EnableLongDistanceMatching(true))?;
            c.set_parameter(CParameter::WindowLog(ZSTD_LONG_WINDOW_LOG))?;
        }
        let out = c.compress(data);
        if out.is_err() || c.context_mut().sizeof() > ZSTD_KEEP_CONTEXT_MAX {
            // A context in an unknown state is not reused, nor a large one kept.
            *slot = None;
        }
        out
    })
}
