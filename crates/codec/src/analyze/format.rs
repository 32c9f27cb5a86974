//! File format detection from the first bytes of a file (and its name, as a hint).
//!
//! The format matters for two decisions. A file compressed as a whole (gzip, BGZF/BAM,
//! CRAM, zstd, xz, bzip2, JPEG, PNG) cannot be compressed again: it is passed raw without
//! trials. A typed scientific format tells where its numeric arrays lie and how wide their
//! elements are (FITS `BITPIX`, NetCDF variable types, the NPY `descr`), which chooses the
//! byte shuffle without guessing. Everything else is left to the probe's trials.
//!
//! Detection reads only the first [`SNIFF_LEN`] bytes of `head` (give it at least that, or
//! the whole file if shorter; more is ignored), so every caller (migrate, the tiering
//! service, `strata inspect`, the bench) sees the same format and `inspect` explains the
//! choices `migrate` makes.

use std::fmt;

use super::headers;

/// How many leading bytes [`sniff_format`] is given: 1 MiB, enough for the headers of
/// several FITS HDUs, a NetCDF header with hundreds of variables, and the metadata HDF5
/// writers put at the start of a file.
pub const SNIFF_LEN: usize = 1 << 20;

/// A detected file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// HDF5 (not recognisably NetCDF-4).
    Hdf5,
    /// NetCDF classic: version 1 (CDF-1), 2 (64-bit offset) or 5 (CDF-5).
    NetCdfClassic {
        /// 1, 2 or 5.
        version: u8,
    },
    /// NetCDF-4: HDF5 underneath.
    NetCdf4,
    /// FITS; `bitpix` of the primary HDU (8, 16, 32, 64, -32, -64).
    Fits {
        /// Primary HDU `BITPIX`.
        bitpix: i32,
    },
    /// GRIB edition 1 or 2.
    Grib {
        /// GRIB edition.
        edition: u8,
    },
    /// UK Met Office PP fields (Fortran unformatted, big-endian 32-bit words).
    MetOfficePp,
    /// NumPy `.npy` array.
    Npy,
    /// Zarr metadata (`.zarray`, `.zattrs`, `.zgroup`, `zarr.json`): JSON text.
    ZarrMeta,
    /// A Blosc-compressed buffer (a Zarr v2 chunk); Blosc's fast codecs leave room.
    Blosc {
        /// Blosc's internal codec (0 blosclz, 1 lz4, 2 snappy, 3 zlib, 4 zstd).
        compressor: u8,
        /// Element size Blosc was told.
        typesize: u8,
    },
    /// FASTQ reads.
    Fastq,
    /// FASTA sequences.
    Fasta,
    /// SAM alignments (text).
    Sam,
    /// VCF variants (text).
    Vcf,
    /// Other text (CSV, JSON, GFF, logs, ...).
    Text,
    /// BAM: BGZF-compressed alignments.
    Bam,
    /// CRAM: reference-compressed alignments.
    Cram,
    /// BGZF (blocked gzip: bgzipped VCF, BCF, ...), not BAM.
    Bgzf,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
    /// xz / LZMA2.
    Xz,
    /// bzip2.
    Bzip2,
    /// ZIP archive (entries may be stored uncompressed, so it is probed).
    Zip,
    /// JPEG image.
    Jpeg,
    /// PNG image.
    Png,
    /// CERN ROOT file; `compression` is its `fCompress` (algorithm × 100 + level; a level
    /// of 0 means uncompressed).
    Root {
        /// `fCompress` from the file header.
        compression: u32,
    },
    /// Nothing recognised.
    Unknown,
}

impl Format {
    /// Short human-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Hdf5 => "HDF5",
            Format::NetCdfClassic { .. } => "NetCDF classic",
            Format::NetCdf4 => "NetCDF-4",
            Format::Fits { .. } => "FITS",
            Format::Grib { .. } => "GRIB",
            Format::MetOfficePp => "Met Office PP",
            Format::Npy => "NPY",
            Format::ZarrMeta => "Zarr metadata",
            Format::Blosc { .. } => "Blosc (Zarr chunk)",
            Format::Fastq => "FASTQ",
            Format::Fasta => "FASTA",
            Format::Sam => "SAM",
            Format::Vcf => "VCF",
            Format::Text => "text",
            Format::Bam => "BAM",
            Format::Cram => "CRAM",
            Format::Bgzf => "BGZF",
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
            Format::Xz => "xz",
            Format::Bzip2 => "bzip2",
            Format::Zip => "ZIP",
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Root { .. } => "ROOT",
            Format::Unknown => "unknown",
        }
    }

    /// Why this format is compressed as a whole (so chunks pass raw without trials), or
    /// `None` if it may still compress.
    pub fn compressed_inside(&self) -> Option<&'static str> {
        Some(match self {
            Format::Bam => "BAM (BGZF): compressed inside its format",
            Format::Cram => "CRAM: compressed inside its format",
            Format::Bgzf => "BGZF: compressed inside its format",
            Format::Gzip => "gzip stream: already compressed",
            Format::Zstd => "zstd stream: already compressed",
            Format::Xz => "xz stream: already compressed",
            Format::Bzip2 => "bzip2 stream: already compressed",
            Format::Jpeg => "JPEG: compressed image",
            Format::Png => "PNG: compressed image",
            _ => return None,
        })
    }

    /// Whether the format is text, where bzip2 and xz do best.
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            Format::Fastq
                | Format::Fasta
                | Format::Sam
                | Format::Vcf
                | Format::Text
                | Format::ZarrMeta
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::NetCdfClassic { version } => write!(f, "NetCDF classic (CDF-{version})"),
            Format::Fits { bitpix } => write!(f, "FITS (BITPIX {bitpix})"),
            Format::Grib { edition } => write!(f, "GRIB{edition}"),
            Format::Blosc {
                compressor,
                typesize,
            } => write!(
                f,
                "Blosc/{} (typesize {typesize})",
                headers::blosc_compressor_name(*compressor)
            ),
            Format::Root { compression } if compression % 100 == 0 => {
                f.write_str("ROOT (uncompressed)")
            }
            Format::Root { compression } => write!(
                f,
                "ROOT ({} level {})",
                headers::root_algorithm_name(compression / 100),
                compression % 100
            ),
            other => f.write_str(other.name()),
        }
    }
}

/// A byte range of the file holding elements of one width, as a header declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypedRegion {
    /// Offset of the first byte in the file.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Element width in bytes (1, 2, 4 or 8).
    pub width: u8,
}

/// What [`sniff_format`] found: the format, the typed regions its header declares, and a
/// human-readable summary.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatInfo {
    /// The detected format.
    pub format: Format,
    /// Element width for the file as a whole, when the header gives one dominant width.
    pub element_width: Option<u8>,
    /// Typed byte ranges from the header (FITS HDUs, NetCDF variables, the NPY array).
    pub regions: Vec<TypedRegion>,
    /// What the header said, for `strata inspect` (e.g. "BITPIX -32, 893x891").
    pub detail: String,
}

impl FormatInfo {
    /// A format with no typed regions.
    pub fn plain(format: Format) -> FormatInfo {
        FormatInfo {
            format,
            element_width: None,
            regions: Vec::new(),
            detail: String::new(),
        }
    }

    /// The element width the header gives for the bytes `[offset, offset + len)`: that of
    /// the typed regions covering most of them, if they cover at least 80%; otherwise the
    /// file-wide width when there are no regions at all. A chunk that mixes widths (a
    /// NetCDF-4 file of float32 and float64 variables) gets `None`, so the probe tries
    /// every width rather than trust one that fits only part of it.
    pub fn width_at(&self, offset: u64, len: u64) -> Option<u8> {
        if self.regions.is_empty() {
            return self.element_width;
        }
        let end = offset.saturating_add(len);
        let mut cover = [0u64; 9];
        for r in &self.regions {
            let lo = r.start.max(offset);
            let hi = r.start.saturating_add(r.len).min(end);
            if hi > lo && (r.width as usize) < cover.len() {
                cover[r.width as usize] += hi - lo;
            }
        }
        let (w, c) = (1..cover.len())
            .map(|w| (w, cover[w]))
            .max_by_key(|&(_, c)| c)?;
        (c > 0 && c * 5 >= len.max(1) * 4).then_some(w as u8)
    }
}

/// Detect the format of a file from its first bytes and, as a hint, its path.
pub fn sniff_format(head: &[u8], path_hint: Option<&str>) -> FormatInfo {
    // Whatever the caller holds, only the first SNIFF_LEN bytes count, so that every
    // caller (a head read from a store, a whole file in memory) sees the same format.
    let head = &head[..head.len().min(SNIFF_LEN)];
    let path = path_hint.unwrap_or("").to_ascii_lowercase();
    let starts = |m: &[u8]| head.starts_with(m);
    let plain = FormatInfo::plain;

    if let Some(info) = headers::fits(head) {
        return info;
    }
    if let Some(info) = headers::netcdf_classic(head) {
        return info;
    }
    if let Some(at) = headers::hdf5_superblock(head) {
        return headers::hdf5(head, at, &path);
    }
    if let Some(info) = headers::npy(head) {
        return info;
    }
    if starts(b"GRIB") && head.len() >= 8 {
        return plain(Format::Grib { edition: head[7] });
    }
    if starts(b"root") {
        return headers::root(head);
    }
    if starts(b"CRAM") {
        return plain(Format::Cram);
    }
    if starts(&[0x1f, 0x8b, 0x08]) {
        return plain(headers::gzip_kind(head, &path));
    }
    let magics: [(&[u8], Format); 7] = [
        (&[0x28, 0xb5, 0x2f, 0xfd], Format::Zstd),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Format::Xz),
        (b"PK\x03\x04", Format::Zip),
        (b"PK\x05\x06", Format::Zip),
        (&[0xff, 0xd8, 0xff], Format::Jpeg),
        (b"\x89PNG\r\n\x1a\n", Format::Png),
        (b"BZh", Format::Bzip2),
    ];
    for (magic, format) in magics {
        if starts(magic) && (format != Format::Bzip2 || matches!(head.get(3), Some(b'1'..=b'9'))) {
            return plain(format);
        }
    }
    if let Some(info) = headers::blosc(head, &path) {
        return info;
    }
    if headers::met_office_pp(head) {
        return FormatInfo {
            element_width: Some(4),
            detail: "big-endian 32-bit words".into(),
            ..plain(Format::MetOfficePp)
        };
    }
    let name = path.rsplit('/').next().unwrap_or("");
    if matches!(
        name,
        ".zarray" | ".zattrs" | ".zgroup" | ".zmetadata" | "zarr.json"
    ) {
        return plain(Format::ZarrMeta);
    }
    if looks_like_text(head) {
        return plain(text_kind(head));
    }
    plain(Format::Unknown)
}

/// Mostly printable ASCII or UTF-8, with line breaks, and no NUL bytes.
fn looks_like_text(head: &[u8]) -> bool {
    let sample = &head[..head.len().min(8192)];
    if sample.is_empty() || sample.contains(&0) {
        return false;
    }
    let printable = sample
        .iter()
        .filter(|&&b| b >= 0x20 || matches!(b, b'\n' | b'\r' | b'\t'))
        .count();
    printable * 100 >= sample.len() * 98
}

fn text_kind(head: &[u8]) -> Format {
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let second = lines.next().unwrap_or_default();
    let third = lines.next().unwrap_or_default();
    let is_seq = |l: &[u8]| {
        !l.is_empty()
            && l.iter()
                .all(|b| b.is_ascii_alphabetic() || matches!(b, b'*' | b'-' | b'.' | b'\r'))
    };
    if first.starts_with(b"@") && is_seq(second) && third.starts_with(b"+") {
        Format::Fastq
    } else if first.starts_with(b">") && is_seq(second) {
        Format::Fasta
    } else if first.starts_with(b"##fileformat=VCF") {
        Format::Vcf
    } else if [&b"@HD\t"[..], b"@SQ\t", b"@RG\t", b"@PG\t"]
        .iter()
        .any(|m| first.starts_with(m))
    {
        Format::Sam
    } else {
        Format::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_at_picks_the_region_covering_most_of_the_range() {
        let info = FormatInfo {
            format: Format::Unknown,
            element_width: Some(4),
            regions: vec![
                TypedRegion {
                    start: 100,
                    len: 1000,
                    width: 2,
                },
                TypedRegion {
                    start: 1100,
                    len: 5000,
                    width: 8,
                },
            ],
            detail: String::new(),
        };
        assert_eq!(info.width_at(0, 1000), Some(2));
        assert_eq!(info.width_at(1000, 4000), Some(8));
        assert_eq!(info.width_at(10_000, 100), None);
        assert_eq!(FormatInfo::plain(Format::Npy).width_at(0, 10), None);
    }

    #[test]
    fn text_kinds() {
        let fq = b"@r1\nACGTN\n+\nIIIII\n@r2\n";
        assert_eq!(sniff_format(fq, None).format, Format::Fastq);
        assert_eq!(
            sniff_format(b">chr1 x\nACGT\nAC\n", None).format,
            Format::Fasta
        );
        assert_eq!(
            sniff_format(b"##fileformat=VCFv4.2\n#CHROM\n", None).format,
            Format::Vcf
        );
        assert_eq!(sniff_format(b"@HD\tVN:1.6\n", None).format, Format::Sam);
        assert_eq!(sniff_format(b"a,b,c\n1,2,3\n", None).format, Format::Text);
        assert_eq!(sniff_format(b"a\0b", None).format, Format::Unknown);
        assert_eq!(sniff_format(b"", None).format, Format::Unknown);
    }
}
