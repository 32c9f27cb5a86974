//! Access traces: reading recorded workloads so that policies can be replayed on them
//! (`strata eval`, `strata train --trace`).
//!
//! A trace is a sequence of [`TraceRequest`]s in time order. Keys are interned as they are
//! read into dense object ids (`0..objects`) in order of first appearance, so replaying a
//! trace takes memory proportional to the number of distinct objects, not to the number of
//! requests: readers stream. Two readers of the same file give the same ids in the same
//! order, so a replay may [`summarize`] a trace first and then read it again.
//!
//! Formats ([`TraceFormat`]) are given explicitly or detected from the file name (and, when
//! the name says nothing or only `.csv`/`.trace`, from the first bytes); every format may be
//! compressed (zstd, xz, gzip, bzip2), detected from the name's extension or the file's
//! magic bytes. How each format is read, and what an object is in each, is written on its
//! variant of [`TraceFormat`].
//!
//! Time: [`TraceRequest::time_ms`] counts milliseconds from the trace's first request,
//! multiplied by [`TraceOptions::time_scale`]. Some traces' clocks step backwards a little
//! (requests logged out of order by concurrent threads): the reader keeps the file's order
//! and holds the time at the latest time seen so far, so times are never negative and never
//! decrease. A trace without a clock uses the request index as logical time: request `i` is
//! at `i × time_scale` seconds. Objects whose size the trace does not give get
//! [`DEFAULT_OBJECT_SIZE`].
//!
//! Bad input is a [`TraceError`] naming the file, the line or record (and byte offset for
//! binary formats) and what to do; no input makes a reader panic.

mod binary;
mod compressed;
mod csv;
mod intern;
mod lines;

use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::stats::Op;

use intern::Interner;

/// Size given to objects whose trace records no size: 1 MiB.
pub const DEFAULT_OBJECT_SIZE: u64 = 1 << 20;

/// The object of byte-addressed block traces (MSR Cambridge, CloudPhysics): an aligned
/// extent of this many bytes of one device. 4 KiB is the page, the smallest unit a cache or
/// tiering layer moves, and the size of most requests in these traces, so a typical request
/// stays one request; a larger request becomes one request per extent it touches.
pub const BLOCK_EXTENT: u64 = 4096;

/// The size of an ARC `.lis` block: the 512-byte page of the ARC paper's traces (the files
/// carry no size).
pub const ARC_BLOCK_SIZE: u64 = 512;

/// The most requests one record may stand for (an ARC run or a block request spanning many
/// extents): 2^24, 8 GiB of ARC blocks or 64 GiB of extents. A larger count is taken for
/// damage rather than expanded into billions of requests.
pub const MAX_REQUESTS_PER_RECORD: u64 = 1 << 24;

/// One request of a trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceRequest {
    /// When it happened, in milliseconds from the trace's first request, multiplied by the
    /// time scale; never negative, never decreasing (see the module doc). For a trace
    /// without a clock, the request index × time scale, in seconds, as milliseconds.
    pub time_ms: i64,
    /// The object, as a dense id (`0..objects`) in order of first appearance.
    pub object: u32,
    /// What was done.
    pub op: Op,
    /// The object's size in bytes as this request reports it, when the trace says.
    pub size: Option<u64>,
}

/// The trace formats Strata reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceFormat {
    /// libCacheSim's `oracleGeneral` binary: little-endian records of
    /// `u32 time (s), u64 id, u32 size, i64 next_access_vtime` (24 bytes). Object: the id;
    /// every request a read; a size of 0 counts as unknown.
    OracleGeneral,
    /// The CloudPhysics block I/O CSV of libCacheSim's data directory: header
    /// `version,time,op,size,lbn` (columns found by name), time in seconds, `op` the SCSI
    /// opcode in hex (`28`, `08`, `88`, `a8` read; `2a`, `0a`, `8a`, `aa` write), `lbn` in
    /// 512-byte sectors, `size` in bytes. Object: each [`BLOCK_EXTENT`] extent the request
    /// touches.
    CloudPhysicsCsv,
    /// The MSR Cambridge block I/O CSV (SNIA IOTTA), no header:
    /// `Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime`, the timestamp in
    /// Windows filetime (100 ns), `Type` `Read` or `Write`, offset and size in bytes.
    /// Object: each [`BLOCK_EXTENT`] extent of the disk (`host/disk`) the request touches,
    /// keyed `host/disk/extent`.
    MsrCsv,
    /// ARC's `.lis` traces: `start_block count ignored request_number` per line, no clock.
    /// Object: each block `start..start+count`, of [`ARC_BLOCK_SIZE`] bytes; every request a
    /// read.
    ArcLis,
    /// cache2k's traces: big-endian `i32` keys, no clock; every request a read.
    Cache2k,
    /// LIRS traces: one unsigned integer key per line, no clock; lines `*` (phase markers)
    /// and empty lines are skipped; every request a read.
    Lirs,
    /// The SNIA Tencent cloud photo trace: space-separated
    /// `time(yyyyMMddHHmmss) photo_id format size_category bytes hit terminal latency`.
    /// Object: one stored image, `photo_id/format/size_category` (a photo is kept per format
    /// and size), of the returned size; every request a read.
    TencentPhoto,
    /// The generic form: CSV with a header naming at least `key`, optionally `time`
    /// (seconds, decimals allowed), `op` (`read`, `write`, `delete`) and `bytes`, in any
    /// order; other columns are ignored; fields may be double-quoted (`""` for a quote, no
    /// line breaks inside). Without a `time` column the trace has no clock.
    Csv,
}

impl TraceFormat {
    /// Every format, in the order their names are listed.
    pub const ALL: [TraceFormat; 8] = [
        TraceFormat::OracleGeneral,
        TraceFormat::CloudPhysicsCsv,
        TraceFormat::MsrCsv,
        TraceFormat::ArcLis,
        TraceFormat::Cache2k,
        TraceFormat::Lirs,
        TraceFormat::TencentPhoto,
        TraceFormat::Csv,
    ];

    /// The format of a `--format` value (`oracle-general`, `cloudphysics`, `msr`, `arc`,
    /// `cache2k`, `lirs`, `tencent`, `csv`; case-insensitive).
    pub fn from_name(name: &str) -> Option<TraceFormat> {
        let name = name.trim().to_ascii_lowercase();
        TraceFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The `--format` value of this format.
    pub fn name(&self) -> &'static str {
        match self {
            TraceFormat::OracleGeneral => "oracle-general",
            TraceFormat::CloudPhysicsCsv => "cloudphysics",
            TraceFormat::MsrCsv => "msr",
            TraceFormat::ArcLis => "arc",
            TraceFormat::Cache2k => "cache2k",
            TraceFormat::Lirs => "lirs",
            TraceFormat::TencentPhoto => "tencent",
            TraceFormat::Csv => "csv",
        }
    }

    /// Every `--format` value, comma-separated, for error messages.
    pub fn names() -> String {
        let names: Vec<&str> = TraceFormat::ALL.iter().map(TraceFormat::name).collect();
        names.join(", ")
    }

    /// The format a file name suggests, compression extension aside: `*oracleGeneral*`,
    /// `*.lis`, `*cache2k*`, `*lirs*`, `*tencent*`, `*msr*`/`*cambridge*` CSV,
    /// `*cloudphysics*` CSV, then any `*.csv`. `None` when the name says nothing.
    pub fn detect(path: &Path) -> Option<TraceFormat> {
        let name = compressed::strip_compression(path)
            .file_name()?
            .to_string_lossy()
            .to_ascii_lowercase();
        let csv = name.ends_with(".csv");
        if name.contains("oraclegeneral") {
            Some(TraceFormat::OracleGeneral)
        } else if name.ends_with(".lis") {
            Some(TraceFormat::ArcLis)
        } else if name.contains("cache2k") {
            Some(TraceFormat::Cache2k)
        } else if name.contains("lirs") {
            Some(TraceFormat::Lirs)
        } else if name.contains("tencent") {
            Some(TraceFormat::TencentPhoto)
        } else if csv && (name.contains("msr") || name.contains("cambridge")) {
            Some(TraceFormat::MsrCsv)
        } else if csv && name.contains("cloudphysics") {
            Some(TraceFormat::CloudPhysicsCsv)
        } else if csv {
            Some(TraceFormat::Csv)
        } else {
            None
        }
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A trace that cannot be read: which file, where in it, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceError {
    /// The trace file.
    pub path: PathBuf,
    /// Where: `line 12`, `record 4,113 (byte 98,712)`, or empty for the whole file.
    pub location: String,
    /// What is wrong and what to do.
    pub reason: String,
}

impl TraceError {
    /// An error about the whole file.
    pub(crate) fn whole(path: &Path, reason: impl Into<String>) -> TraceError {
        TraceError::at(path, String::new(), reason)
    }

    /// An error at a place in the file.
    pub(crate) fn at(path: &Path, location: String, reason: impl Into<String>) -> TraceError {
        TraceError {
            path: path.to_path_buf(),
            location,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "trace {}: {}", self.path.display(), self.reason)
        } else {
            write!(
                f,
                "trace {}, {}: {}",
                self.path.display(),
                self.location,
                self.reason
            )
        }
    }
}

impl std::error::Error for TraceError {}

/// The reason of a failed read: for a compressed trace, most often damaged or cut short data.
pub(crate) fn read_failure(error: &std::io::Error) -> String {
    format!(
        "cannot read the trace: {error} (if it is compressed, the compressed data may be \
         damaged or cut short: re-fetch it)"
    )
}

/// A count with thousands separators (`4,113`), as locations are written.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How to read a trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceOptions {
    /// The format; `None` detects it from the file name, then from its first bytes.
    pub format: Option<TraceFormat>,
    /// Multiplies the trace's clock (a clockless trace's clock is the request index in
    /// seconds), so a trace can be stretched, e.g. to span 180 days. Default 1; must be
    /// positive and finite.
    pub time_scale: f64,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            format: None,
            time_scale: 1.0,
        }
    }
}

/// Where the keys of a record are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKey {
    /// The source's [`Source::text_key`].
    Text,
    /// `count` consecutive numeric keys from `first` (one request each), named by
    /// [`Source::numeric_name`].
    Numeric { first: u64, count: u64 },
}

/// One record as its format gives it, before keys are interned and times placed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    /// The trace's clock in milliseconds (any origin), if it has one; finite.
    pub(crate) time_ms: Option<f64>,
    pub(crate) key: RecordKey,
    pub(crate) op: Op,
    pub(crate) size: Option<u64>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            time_ms: None,
            key: RecordKey::Text,
            op: Op::Read,
            size: None,
        }
    }
}

/// A format's parser: records from a decompressed stream.
pub(crate) trait Source: Send {
    /// Reads the next record into `record`; `Ok(false)` at the end of the trace.
    fn next_record(&mut self, record: &mut Record) -> Result<bool, TraceError>;
    /// The key of the last record, when it is [`RecordKey::Text`] (formats with numeric
    /// keys only have none).
    fn text_key(&self) -> &str {
        ""
    }
    /// How the trace writes a numeric key (in decimal, unless the format says otherwise).
    fn numeric_name(&self, key: u64) -> String {
        key.to_string()
    }
    /// Where the last record is (`line 12`, `record 3 (byte 48)`), for errors found after
    /// parsing it.
    fn location(&self) -> String;
}

/// Keeps times relative to the first request, scaled, never negative, never decreasing.
#[derive(Debug)]
struct Clock {
    scale: f64,
    first_ms: Option<f64>,
    latest_ms: f64,
}

impl Clock {
    fn place(&mut self, time_ms: f64) -> i64 {
        let first = *self.first_ms.get_or_insert(time_ms);
        self.latest_ms = (time_ms - first).max(self.latest_ms);
        // `as` saturates: an absurd scale cannot wrap into negative times.
        (self.latest_ms * self.scale).round() as i64
    }

    fn logical(&self, index: u64) -> i64 {
        (index as f64 * self.scale * 1000.0).round() as i64
    }
}

/// A streaming reader: keys interned to dense ids in order of first appearance.
///
/// Yields requests until the end of the trace or the first error (after which it yields
/// nothing). A trace with no request at all yields one error saying so.
pub struct TraceReader {
    path: PathBuf,
    format: TraceFormat,
    has_clock: bool,
    source: Box<dyn Source>,
    interner: Interner,
    clock: Clock,
    record: Record,
    /// Requests emitted so far.
    index: u64,
    /// The time of the current record's requests.
    record_time_ms: i64,
    /// The numeric keys of the current record still to emit: `next..end`.
    next_key: u64,
    end_key: u64,
    done: bool,
}

impl fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("requests", &self.index)
            .field("objects", &self.interner.len())
            .finish_non_exhaustive()
    }
}

impl TraceReader {
    /// Opens a trace: detects its compression and (unless given) its format, and reads its
    /// header if it has one.
    pub fn open(path: &Path, options: &TraceOptions) -> Result<TraceReader, TraceError> {
        if !(options.time_scale.is_finite() && options.time_scale > 0.0) {
            return Err(TraceError::whole(
                path,
                format!(
                    "the time scale must be a positive number, got {}",
                    options.time_scale
                ),
            ));
        }
        let mut stream = compressed::open(path)?;
        let format = match options.format {
            Some(format) => format,
            None => choose_format(path, &mut *stream)?,
        };
        let (source, has_clock) = open_source(format, path, stream)?;
        Ok(TraceReader {
            path: path.to_path_buf(),
            format,
            has_clock,
            source,
            interner: Interner::default(),
            clock: Clock {
                scale: options.time_scale,
                first_ms: None,
                latest_ms: 0.0,
            },
            record: Record::default(),
            index: 0,
            record_time_ms: 0,
            next_key: 0,
            end_key: 0,
            done: false,
        })
    }

    /// The format being read.
    pub fn format(&self) -> TraceFormat {
        self.format
    }

    /// Whether the trace has a clock (else times are logical: request index × scale).
    pub fn has_clock(&self) -> bool {
        self.has_clock
    }

    /// Distinct objects seen so far.
    pub fn objects(&self) -> u32 {
        self.interner.len()
    }

    /// The key of an object id, as the trace wrote it.
    pub fn key(&self, object: u32) -> Option<&str> {
        self.interner.key(object)
    }

    /// The path being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn request(&mut self, object: u32) -> TraceRequest {
        let time_ms = if self.has_clock {
            self.record_time_ms
        } else {
            self.clock.logical(self.index)
        };
        self.index += 1;
        TraceRequest {
            time_ms,
            object,
            op: self.record.op,
            size: self.record.size,
        }
    }

    fn too_many_objects(&self) -> TraceError {
        TraceError::at(
            &self.path,
            self.source.location(),
            "more than 4,294,967,295 distinct objects: split the trace",
        )
    }

    /// Reads records until one has a request to emit; `None` at the end.
    fn advance(&mut self) -> Result<Option<TraceRequest>, TraceError> {
        loop {
            if self.next_key < self.end_key {
                let key = self.next_key;
                self.next_key += 1;
                let source = &self.source;
                let object = self
                    .interner
                    .numeric(key, || source.numeric_name(key))
                    .map_err(|_| self.too_many_objects())?;
                return Ok(Some(self.request(object)));
            }
            if !self.source.next_record(&mut self.record)? {
                if self.index == 0 {
                    return Err(TraceError::whole(
                        &self.path,
                        format!(
                            "the trace holds no request (read as {}): check the file and \
                             its --format",
                            self.format
                        ),
                    ));
                }
                return Ok(None);
            }
            if let Some(time_ms) = self.record.time_ms {
                self.record_time_ms = self.clock.place(time_ms);
            }
            match self.record.key {
                RecordKey::Text => {
                    let object = self
                        .interner
                        .text(self.source.text_key())
                        .map_err(|_| self.too_many_objects())?;
                    return Ok(Some(self.request(object)));
                }
                RecordKey::Numeric { first, count } => {
                    // Sources bound `count` by MAX_REQUESTS_PER_RECORD and `first + count`
                    // by u64; saturate anyway so no input can wrap.
                    self.next_key = first;
                    self.end_key = first.saturating_add(count);
                }
            }
        }
    }
}

impl Iterator for TraceReader {
    type Item = Result<TraceRequest, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.advance() {
            Ok(Some(request)) => Some(Ok(request)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The format of a trace whose options give none: the name's, else its content's.
fn choose_format(path: &Path, stream: &mut dyn BufRead) -> Result<TraceFormat, TraceError> {
    let by_name = TraceFormat::detect(path);
    let head = stream
        .fill_buf()
        .map_err(|e| TraceError::whole(path, read_failure(&e)))?;
    let by_content = lines::sniff(head);
    let stem = compressed::strip_compression(path)
        .to_string_lossy()
        .to_ascii_lowercase();
    let chosen = match by_name {
        // A generic name: the content may say which CSV it is.
        Some(TraceFormat::Csv) => by_content.or(by_name),
        Some(format) => Some(format),
        None if stem.ends_with(".trace") && by_content.is_none() => Some(TraceFormat::Cache2k),
        None => by_content,
    };
    chosen.ok_or_else(|| {
        TraceError::whole(
            path,
            format!(
                "cannot tell the trace's format from its name or its first bytes: give it \
                 with --format (one of {})",
                TraceFormat::names()
            ),
        )
    })
}

fn open_source(
    format: TraceFormat,
    path: &Path,
    stream: Box<dyn BufRead + Send>,
) -> Result<(Box<dyn Source>, bool), TraceError> {
    Ok(match format {
        TraceFormat::OracleGeneral => (Box::new(binary::OracleGeneral::new(path, stream)), true),
        TraceFormat::Cache2k => (Box::new(binary::Cache2k::new(path, stream)), false),
        TraceFormat::ArcLis => (Box::new(lines::Arc::new(path, stream)), false),
        TraceFormat::Lirs => (Box::new(lines::Lirs::new(path, stream)), false),
        TraceFormat::TencentPhoto => (Box::new(lines::Tencent::new(path, stream)), true),
        TraceFormat::MsrCsv => (Box::new(csv::Msr::new(path, stream)), true),
        TraceFormat::CloudPhysicsCsv => (Box::new(csv::CloudPhysics::open(path, stream)?), true),
        TraceFormat::Csv => {
            let source = csv::Generic::open(path, stream)?;
            let has_clock = source.has_clock();
            (Box::new(source), has_clock)
        }
    })
}

/// One pass over a trace: what a replay needs to know before it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSummary {
    /// The format read.
    pub format: TraceFormat,
    /// Whether the trace has a clock.
    pub has_clock: bool,
    /// Requests in the trace.
    pub requests: u64,
    /// Distinct objects.
    pub objects: u32,
    /// Per object id: its size (the largest the trace reports, else [`DEFAULT_OBJECT_SIZE`]).
    pub sizes: Vec<u64>,
    /// Time of the last request (the first is 0), scaled like every time.
    pub span_ms: i64,
    /// Read requests.
    pub reads: u64,
    /// Write requests.
    pub writes: u64,
    /// Delete requests.
    pub deletes: u64,
}

/// Reads a whole trace once and summarises it.
pub fn summarize(path: &Path, options: &TraceOptions) -> Result<TraceSummary, TraceError> {
    let mut reader = TraceReader::open(path, options)?;
    let mut sizes: Vec<Option<u64>> = Vec::new();
    let (mut requests, mut span_ms) = (0u64, 0i64);
    let (mut reads, mut writes, mut deletes) = (0u64, 0u64, 0u64);
    for request in reader.by_ref() {
        let request = request?;
        requests += 1;
        span_ms = request.time_ms;
        match request.op {
            Op::Read => reads += 1,
            Op::Write => writes += 1,
            Op::Delete => deletes += 1,
        }
        let index = request.object as usize;
        if index >= sizes.len() {
            sizes.resize(index + 1, None);
        }
        if let Some(size) = request.size {
            let known = &mut sizes[index];
            *known = Some(known.map_or(size, |k| k.max(size)));
        }
    }
    Ok(TraceSummary {
        format: reader.format(),
        has_clock: reader.has_clock(),
        requests,
        objects: reader.objects(),
        sizes: sizes
            .into_iter()
            .map(|size| size.unwrap_or(DEFAULT_OBJECT_SIZE))
            .collect(),
        span_ms,
        reads,
        writes,
        deletes,
    })
}
