//! Opening a trace file through its compression, if any.
//!
//! The name's extension decides when it names a codec (`.zst`, `.xz`, `.gz`, `.bz2`): the
//! file must then start with that codec's magic bytes, else the error says so (a renamed
//! or damaged file). Without such an extension the magic bytes decide. gzip's magic is
//! checked on three bytes (`1f 8b 08`, deflate) so that an uncompressed binary trace is
//! taken for gzip only by a one-in-16-million coincidence.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::TraceError;

/// The compressions a trace may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Zstd,
    Xz,
    Gzip,
    Bzip2,
}

impl Compression {
    const CODECS: [Compression; 4] = [
        Compression::Zstd,
        Compression::Xz,
        Compression::Gzip,
        Compression::Bzip2,
    ];

    fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
        }
    }

    fn extensions(self) -> &'static [&'static str] {
        match self {
            Compression::None => &[],
            Compression::Zstd => &["zst", "zstd"],
            Compression::Xz => &["xz"],
            Compression::Gzip => &["gz", "gzip"],
            Compression::Bzip2 => &["bz2"],
        }
    }

    fn magic(self) -> &'static [u8] {
        match self {
            Compression::None => &[],
            Compression::Zstd => &[0x28, 0xb5, 0x2f, 0xfd],
            Compression::Xz => &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
            Compression::Gzip => &[0x1f, 0x8b, 0x08],
            Compression::Bzip2 => b"BZh",
        }
    }

    /// The compression a file name's extension names, if any.
    pub(crate) fn from_name(path: &Path) -> Compression {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let Some(extension) = extension else {
            return Compression::None;
        };
        Compression::CODECS
            .into_iter()
            .find(|codec| codec.extensions().contains(&extension.as_str()))
            .unwrap_or(Compression::None)
    }

    fn from_magic(head: &[u8]) -> Compression {
        Compression::CODECS
            .into_iter()
            .find(|codec| head.starts_with(codec.magic()))
            .unwrap_or(Compression::None)
    }
}

/// The file name without a compression extension (`web07.trace.xz` → `web07.trace`).
pub(crate) fn strip_compression(path: &Path) -> &Path {
    if Compression::from_name(path) == Compression::None {
        path
    } else {
        path.file_stem().map(Path::new).unwrap_or(path)
    }
}

/// Opens `path` and returns its decompressed bytes as a buffered stream.
pub(crate) fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, TraceError> {
    let file = File::open(path).map_err(|e| {
        TraceError::whole(
            path,
            format!("cannot open the trace file: {e}; check the path and its permissions"),
        )
    })?;
    let mut file = BufReader::with_capacity(1 << 16, file);
    let head = file
        .fill_buf()
        .map_err(|e| TraceError::whole(path, format!("cannot read the trace file: {e}")))?;
    let by_magic = Compression::from_magic(head);
    let by_name = Compression::from_name(path);
    let codec = if by_name == Compression::None {
        by_magic
    } else if by_magic == by_name {
        by_name
    } else {
        return Err(TraceError::whole(
            path,
            format!(
                "the name says {} but the file does not start with {}'s magic bytes \
                 (it looks {}): rename the file to match its content, or re-fetch it if it \
                 is damaged",
                by_name.name(),
                by_name.name(),
                by_magic.name()
            ),
        ));
    };
    Ok(decoder(codec, file))
}

fn decoder(codec: Compression, file: BufReader<File>) -> Box<dyn BufRead + Send> {
    const BUFFER: usize = 1 << 16;
    match codec {
        Compression::None => Box::new(file),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(file) {
            Ok(decoder) => Box::new(BufReader::with_capacity(BUFFER, decoder)),
            // Creating a zstd context only fails when memory is exhausted; report it as a
            // read error on first use rather than here.
            Err(e) => Box::new(BufReader::new(FailingReader(Some(e)))),
        },
        Compression::Xz => Box::new(BufReader::with_capacity(
            BUFFER,
            liblzma::read::XzDecoder::new_multi_decoder(file),
        )),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::bufread::MultiGzDecoder::new(file),
        )),
        Compression::Bzip2 => Box::new(BufReader::with_capacity(
            BUFFER,
            bzip2::bufread::MultiBzDecoder::new(file),
        )),
    }
}

/// A reader whose first read returns a stored error.
struct FailingReader(Option<std::io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}
