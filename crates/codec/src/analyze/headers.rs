//! Parsers for the headers that say where typed arrays lie: FITS, NetCDF classic, NPY,
//! plus the few facts needed from HDF5, ROOT, BGZF and Blosc headers.
//!
//! Every parser reads only what `head` holds, bounds-checks every read, and gives up
//! (returns what it has, or `None`) on anything unexpected: a damaged header makes the
//! probe guess the element width by trial, never a panic.

use std::io::Read;

use super::format::{Format, FormatInfo, TypedRegion};
use super::hdf5::Storage;

/// FITS: walk the HDUs whose headers lie inside `head`, recording each data unit of a
/// single element width (images by `BITPIX`, binary tables whose columns all share one).
pub(super) fn fits(head: &[u8]) -> Option<FormatInfo> {
    if !head.starts_with(b"SIMPLE  =") {
        return None;
    }
    let mut info = FormatInfo::plain(Format::Fits { bitpix: 0 });
    let mut pos = 0usize;
    let mut hdus = Vec::new();
    while pos < head.len() && hdus.len() < 1000 {
        let Some(hdu) = fits_hdu(&head[pos..]) else {
            break;
        };
        if hdus.is_empty() {
            info.format = Format::Fits { bitpix: hdu.bitpix };
        }
        let start = (pos + hdu.header_len) as u64;
        if let Some(width) = hdu.width.filter(|&w| w > 1 && hdu.data_len > 0) {
            info.regions.push(TypedRegion {
                start,
                len: hdu.data_len,
                width,
            });
        } else if !hdu.columns.is_empty() {
            // A one-row binary table stores each column as one contiguous array.
            let mut at = start;
            for &(len, width) in &hdu.columns {
                if width > 1 && len > 0 {
                    info.regions.push(TypedRegion {
                        start: at,
                        len,
                        width,
                    });
                }
                at += len;
            }
        }
        hdus.push(format!("{} {}", hdu.kind, hdu.shape));
        let next = start + hdu.data_len.div_ceil(2880) * 2880;
        pos = usize::try_from(next).unwrap_or(usize::MAX);
    }
    info.element_width = dominant_width(&info.regions);
    info.detail = format!("HDUs: {}", hdus.join("; "));
    Some(info)
}

struct FitsHdu {
    kind: String,
    shape: String,
    bitpix: i32,
    header_len: usize,
    data_len: u64,
    width: Option<u8>,
    /// Column sizes and element widths of a one-row binary table.
    columns: Vec<(u64, u8)>,
}

fn fits_hdu(h: &[u8]) -> Option<FitsHdu> {
    let (mut bitpix, mut naxis, mut pcount, mut gcount) = (None, 0usize, 0u64, 1u64);
    let mut axes = Vec::new();
    let mut kind = "PRIMARY".to_string();
    let mut tform_widths = Vec::new();
    let mut columns = Vec::new();
    for (i, card) in h.chunks_exact(80).enumerate() {
        let key = std::str::from_utf8(&card[..8]).ok()?.trim_end();
        if i == 0 && key != "SIMPLE" && key != "XTENSION" {
            return None;
        }
        if key == "END" {
            let header_len = (i + 1).div_ceil(36) * 2880;
            let elems: u64 = if naxis == 0 { 0 } else { axes.iter().product() };
            let bitpix: i32 = bitpix?;
            let bytes = u64::from(bitpix.unsigned_abs() / 8);
            let data_len = bytes * gcount * (pcount + elems);
            let width = if kind == "BINTABLE" {
                let first = tform_widths.first().copied();
                first.filter(|&w| tform_widths.iter().all(|&x| x == w))
            } else {
                u8::try_from(bytes).ok()
            };
            let one_row = kind == "BINTABLE" && axes.get(1) == Some(&1);
            let columns = if one_row && width.is_none() {
                columns
            } else {
                Vec::new()
            };
            let shape = axes.iter().map(u64::to_string).collect::<Vec<_>>();
            return Some(FitsHdu {
                kind,
                shape: format!("BITPIX {bitpix} [{}]", shape.join("x")),
                bitpix,
                header_len,
                data_len,
                width,
                columns,
            });
        }
        if card.get(8..10) != Some(b"= ") {
            continue;
        }
        let raw = std::str::from_utf8(&card[10..]).ok()?;
        let value = raw.split('/').next().unwrap_or("").trim();
        let int = || value.parse::<i64>().ok();
        match key {
            "XTENSION" => kind = value.trim_matches(|c| c == '\'' || c == ' ').to_string(),
            "BITPIX" => bitpix = int().map(|v| v as i32),
            "NAXIS" => naxis = int()?.clamp(0, 999) as usize,
            "PCOUNT" => pcount = int()?.max(0) as u64,
            "GCOUNT" => gcount = int()?.max(0) as u64,
            k if k.starts_with("NAXIS") => axes.push(int()?.max(0) as u64),
            k if k.starts_with("TFORM") => {
                let t = value.trim_matches(|c| c == '\'' || c == ' ');
                let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let repeat: u64 = t[..digits].parse().unwrap_or(1);
                let (width, bytes) = match t[digits..].chars().next() {
                    Some('I') => (2, 2),
                    Some('J' | 'E') => (4, 4),
                    Some('C' | 'P') => (4, 8),
                    Some('K' | 'D') => (8, 8),
                    Some('M' | 'Q') => (8, 16),
                    Some('X') => (1, 0),
                    _ => (1, 1),
                };
                let len = if bytes == 0 {
                    repeat.div_ceil(8)
                } else {
                    repeat.saturating_mul(bytes)
                };
                tform_widths.push(width);
                columns.push((len, width));
            }
            _ => {}
        }
        if axes.len() > naxis.max(1) * 2 {
            return None;
        }
    }
    None
}

/// The width covering the most bytes among `regions`.
fn dominant_width(regions: &[TypedRegion]) -> Option<u8> {
    let mut by_width = [0u64; 9];
    for r in regions {
        by_width[(r.width as usize).min(8)] += r.len;
    }
    (2..9)
        .max_by_key(|&w| by_width[w])
        .filter(|&w| by_width[w] > 0)
        .map(|w| w as u8)
}

/// A big-endian reader over a header that returns `None` past its end.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    wide: bool,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u64> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?) as u64)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A count or size: 8 bytes in CDF-5, 4 otherwise.
    fn count(&mut self) -> Option<u64> {
        if self.wide {
            self.u64()
        } else {
            self.u32()
        }
    }
    fn name(&mut self) -> Option<String> {
        let n = usize::try_from(self.count()?).ok()?;
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.take((4 - n % 4) % 4)?;
        Some(s)
    }
}

fn nc_type_size(t: u64) -> Option<u64> {
    Some(match t {
        1 | 2 | 7 => 1,
        3 | 8 => 2,
        4 | 5 | 9 => 4,
        6 | 10 | 11 => 8,
        _ => return None,
    })
}

fn nc_type_name(t: u64) -> &'static str {
    match t {
        1 => "byte",
        2 => "char",
        3 => "short",
        4 => "int",
        5 => "float",
        6 => "double",
        7 => "ubyte",
        8 => "ushort",
        9 => "uint",
        10 => "int64",
        _ => "uint64",
    }
}

/// NetCDF classic (CDF-1, CDF-2, CDF-5): every variable's type, size and offset.
pub(super) fn netcdf_classic(head: &[u8]) -> Option<FormatInfo> {
    let version = match head.get(..4)? {
        [b'C', b'D', b'F', v @ (1 | 2 | 5)] => *v,
        _ => return None,
    };
    let mut info = FormatInfo::plain(Format::NetCdfClassic { version });
    let _ = netcdf_vars(head, version, &mut info);
    info.element_width = dominant_width(&info.regions);
    Some(info)
}

fn netcdf_vars(head: &[u8], version: u8, info: &mut FormatInfo) -> Option<()> {
    let mut c = Cursor {
        buf: head,
        pos: 4,
        wide: version == 5,
    };
    let numrecs = c.count()?;
    let numrecs = if numrecs == u32::MAX as u64 {
        0
    } else {
        numrecs
    };
    // Dimensions: name and length; length 0 is the record dimension.
    let mut dims = Vec::new();
    let tag = c.u32()?;
    let n = c.count()?;
    if tag == 0x0A {
        for _ in 0..n.min(65_536) {
            c.name()?;
            dims.push(c.count()?);
        }
    }
    skip_attrs(&mut c)?;
    let tag = c.u32()?;
    let nvars = c.count()?;
    if tag != 0x0B {
        return Some(());
    }
    let mut vars = Vec::new();
    let mut record = Vec::new();
    for _ in 0..nvars.min(65_536) {
        let name = c.name()?;
        let ndims = c.count()?;
        let mut is_record = false;
        for d in 0..ndims.min(1024) {
            let id = c.count()?;
            is_record |= d == 0 && dims.get(id as usize) == Some(&0);
        }
        skip_attrs(&mut c)?;
        let t = c.u32()?;
        let vsize = c.count()?;
        let begin = if version == 1 { c.u32()? } else { c.u64()? };
        let Some(size) = nc_type_size(t) else {
            continue;
        };
        vars.push(format!("{name} {}", nc_type_name(t)));
        if is_record {
            record.push((begin, vsize, size as u8));
        } else if size > 1 {
            let width = size as u8;
            info.regions.push(TypedRegion {
                start: begin,
                len: vsize,
                width,
            });
        }
    }
    // Record variables interleave record by record; one region if they share a width.
    if let Some(&(begin, _, width)) = record.first() {
        let recsize: u64 = if record.len() == 1 {
            record[0].1
        } else {
            record.iter().map(|r| r.1).sum()
        };
        if width > 1 && record.iter().all(|r| r.2 == width) {
            info.regions.push(TypedRegion {
                start: begin,
                len: recsize.saturating_mul(numrecs),
                width,
            });
        }
    }
    info.detail = format!("{} records; variables: {}", numrecs, vars.join(", "));
    Some(())
}

fn skip_attrs(c: &mut Cursor<'_>) -> Option<()> {
    let tag = c.u32()?;
    let n = c.count()?;
    if tag != 0x0C {
        return Some(());
    }
    for _ in 0..n.min(65_536) {
        c.name()?;
        let size = nc_type_size(c.u32()?)?;
        let count = c.count()?;
        let bytes = usize::try_from(count.checked_mul(size)?).ok()?;
        c.take(bytes.checked_add((4 - bytes % 4) % 4)?)?;
    }
    Some(())
}

/// Offset of the HDF5 superblock signature in `head` (0, 512, 1024, 2048, ...), if any.
pub(super) fn hdf5_superblock(head: &[u8]) -> Option<usize> {
    const SIG: &[u8] = b"\x89HDF\r\n\x1a\n";
    std::iter::once(0)
        .chain((9..=20).map(|p| 1usize << p))
        .take_while(|&at| at + SIG.len() <= head.len())
        .find(|&at| &head[at..at + SIG.len()] == SIG)
}

/// HDF5 or NetCDF-4: NetCDF-4 leaves `_NCProperties` (or its dimension-id attributes) in
/// the metadata near the start, or the file is named `.nc`. The typed regions are the
/// raw data of the datasets whose metadata lies in `head` (see [`super::hdf5`]).
pub(super) fn hdf5(head: &[u8], at: usize, path: &str) -> FormatInfo {
    let window = &head[..head.len().min(1 << 20)];
    let marks: [&[u8]; 3] = [b"_NCProperties", b"_Netcdf4Dimid", b"_Netcdf4Coordinates"];
    let nc4 = marks.iter().any(|m| contains(window, m))
        || [".nc", ".nc4", ".cdf"].iter().any(|e| path.ends_with(e));
    let format = if nc4 { Format::NetCdf4 } else { Format::Hdf5 };
    let found = super::hdf5::parse(head, at);
    let mut listed: Vec<String> = found
        .datasets
        .iter()
        .take(6)
        .map(|d| {
            let how = match &d.storage {
                Storage::Contiguous => "contiguous".to_string(),
                Storage::Chunked { chunks } => format!("{chunks} chunks"),
                Storage::Filtered => "filtered".to_string(),
                Storage::Compact => "compact".to_string(),
                Storage::Unallocated => "empty".to_string(),
                Storage::Unsupported => "not read".to_string(),
            };
            format!("{} {} [{how}]", d.name, d.dtype)
        })
        .collect();
    if found.datasets.len() > listed.len() {
        listed.push(format!("+{} more", found.datasets.len() - listed.len()));
    }
    let mut detail = format!(
        "superblock v{} at byte {at}; {} datasets",
        found.superblock,
        found.datasets.len()
    );
    if !listed.is_empty() {
        detail += &format!(": {}", listed.join(", "));
    }
    if found.dense_groups > 0 {
        detail += &format!("; {} dense groups not read", found.dense_groups);
    }
    if found.regions.is_empty() {
        detail += "; element width found by trial";
    } else {
        detail += &format!("; {} typed regions", found.regions.len());
    }
    FormatInfo {
        element_width: dominant_width(&found.regions),
        regions: found.regions,
        detail,
        ..FormatInfo::plain(format)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// NumPy `.npy`: the `descr` gives the element width, the header length where it starts.
pub(super) fn npy(head: &[u8]) -> Option<FormatInfo> {
    if !head.starts_with(b"\x93NUMPY") {
        return None;
    }
    let mut info = FormatInfo::plain(Format::Npy);
    let (len, at): (usize, usize) = match head.get(6)? {
        1 => (
            u16::from_le_bytes(head.get(8..10)?.try_into().ok()?) as usize,
            10,
        ),
        _ => (
            u32::from_le_bytes(head.get(8..12)?.try_into().ok()?) as usize,
            12,
        ),
    };
    let Some(dict) = head.get(at..at.saturating_add(len)) else {
        return Some(info);
    };
    let dict = String::from_utf8_lossy(dict);
    let descr = dict
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .unwrap_or("");
    let kind = descr.trim_start_matches(['<', '>', '|', '=']);
    let size: u64 = kind.get(1..).and_then(|s| s.parse().ok()).unwrap_or(0);
    let width = if kind.starts_with('c') {
        size / 2
    } else {
        size
    };
    let shape: Option<u64> = dict
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(['(', ')']).nth(1))
        .map(|s| {
            s.split(',')
                .filter_map(|d| d.trim().parse::<u64>().ok())
                .product()
        });
    info.detail = format!("dtype {descr}");
    if matches!(width, 2 | 4 | 8) {
        info.element_width = Some(width as u8);
        info.regions.push(TypedRegion {
            start: (at + len) as u64,
            len: shape.map_or(u64::MAX / 2, |n| n.saturating_mul(size)),
            width: width as u8,
        });
    }
    Some(info)
}

/// CERN ROOT: read `fCompress` from the file header.
pub(super) fn root(head: &[u8]) -> FormatInfo {
    let be32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(head.get(at..at + 4)?.try_into().ok()?))
    };
    // fVersion >= 1000000 means 64-bit fEND and fSeekFree, which shifts fCompress.
    let at = match be32(4) {
        Some(v) if v >= 1_000_000 => 41,
        _ => 33,
    };
    let compression = be32(at).unwrap_or(0);
    FormatInfo::plain(Format::Root { compression })
}

/// Name of a ROOT compression algorithm number.
pub(super) fn root_algorithm_name(alg: u32) -> &'static str {
    match alg {
        0 | 1 => "zlib",
        2 => "lzma",
        4 => "lz4",
        5 => "zstd",
        _ => "codec",
    }
}

/// gzip, BGZF, or BAM (BGZF whose first block inflates to `BAM\1`).
pub(super) fn gzip_kind(head: &[u8], path: &str) -> Format {
    let has_extra = head.get(3).is_some_and(|f| f & 0x04 != 0);
    let xlen = head
        .get(10..12)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let extra = head.get(12..12 + xlen).unwrap_or(&[]);
    if !has_extra || !contains(extra, b"BC\x02\x00") {
        return Format::Gzip;
    }
    let mut magic = [0u8; 4];
    let body = head.get(12 + xlen..).unwrap_or(&[]);
    let inflated = flate2::read::DeflateDecoder::new(body).read_exact(&mut magic);
    match (inflated, &magic) {
        (Ok(()), b"BAM\x01") => Format::Bam,
        (Ok(()), _) => Format::Bgzf,
        (Err(_), _) if path.ends_with(".bam") => Format::Bam,
        (Err(_), _) => Format::Bgzf,
    }
}

/// Blosc buffers (Zarr v2 chunks) have no magic, so they are accepted only inside a
/// `.zarr` path or when the header's compressed size is exactly the head's length.
pub(super) fn blosc(head: &[u8], path: &str) -> Option<FormatInfo> {
    let le32 = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    if head.len() < 16 || !matches!(head[0], 1..=4) || head[3] == 0 {
        return None;
    }
    let (nbytes, blocksize, cbytes) = (le32(4), le32(8), le32(12));
    let consistent = cbytes >= 16 && nbytes > 0 && blocksize > 0 && cbytes <= nbytes + 16;
    let in_zarr = path.contains(".zarr/") || cbytes as usize == head.len();
    if !consistent || !in_zarr {
        return None;
    }
    let (flags, typesize) = (head[2], head[3]);
    let format = Format::Blosc {
        compressor: flags >> 5,
        typesize,
    };
    let shuffle = match flags & 0x05 {
        0x01 => "byte shuffle",
        0x04 => "bit shuffle",
        _ => "no shuffle",
    };
    Some(FormatInfo {
        detail: format!("{nbytes} bytes in, {cbytes} stored, {shuffle}"),
        ..FormatInfo::plain(format)
    })
}

/// Name of a Blosc internal compressor code.
pub(super) fn blosc_compressor_name(code: u8) -> &'static str {
    ["blosclz", "lz4", "snappy", "zlib", "zstd"]
        .get(code as usize)
        .copied()
        .unwrap_or("unknown")
}

/// Met Office PP: Fortran records of big-endian words; the first is the 64-word (256-byte)
/// lookup header, framed by its length before and after.
pub(super) fn met_office_pp(head: &[u8]) -> bool {
    let be32 = |at: usize| {
        head.get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    };
    be32(0) == Some(256) && be32(260) == Some(256) && be32(264).is_some_and(|n| n > 0 && n % 4 == 0)
}
