//! Comma-separated traces: MSR Cambridge, CloudPhysics, and the generic `key,time,op,bytes`
//! form.
//!
//! The fields are split by hand (with double quotes for the generic form): the `csv` crate
//! would add a dependency for what is, in these traces, a split on commas.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use super::lines::{excerpt, parse_u64, LineReader};
use super::{grouped, Record, RecordKey, Source, TraceError};
use super::{BLOCK_EXTENT, MAX_REQUESTS_PER_RECORD};
use crate::stats::Op;

/// Bits of a block trace's numeric key that number the extent; the bits above number the
/// device. A byte offset below 2^64 has an extent below 2^52 (4 KiB extents).
const EXTENT_BITS: u32 = 52;
/// Devices one block trace may hold (the numbers the remaining 12 bits can hold).
const MAX_DEVICES: usize = 1 << (64 - EXTENT_BITS);

/// The extents `offset..offset+size` touches: (first extent, count). A request of size 0
/// still touches the extent at its offset. `None` when the end overflows.
fn extents(offset: u64, size: u64) -> Option<(u64, u64)> {
    let last_byte = offset.checked_add(size.max(1) - 1)?;
    let first = offset / BLOCK_EXTENT;
    Some((first, last_byte / BLOCK_EXTENT - first + 1))
}

/// A block request's record: one request per extent touched, of device `device`.
fn block_record(
    lines: &LineReader,
    device: u64,
    offset: u64,
    size: u64,
) -> Result<RecordKey, TraceError> {
    let Some((first, count)) = extents(offset, size) else {
        return Err(lines.error(format!(
            "offset {offset} + size {size} is beyond 2^64 bytes; the line is damaged"
        )));
    };
    if count > MAX_REQUESTS_PER_RECORD {
        return Err(lines.error(format!(
            "a request of {} bytes spans {} extents of {} bytes, more than the {} one line \
             may hold; the line is probably damaged",
            grouped(size),
            grouped(count),
            BLOCK_EXTENT,
            grouped(MAX_REQUESTS_PER_RECORD)
        )));
    }
    Ok(RecordKey::Numeric {
        first: (device << EXTENT_BITS) | first,
        count,
    })
}

/// A required unsigned integer field.
fn unsigned(lines: &LineReader, field: &[u8], what: &str) -> Result<u64, TraceError> {
    parse_u64(field.trim_ascii()).ok_or_else(|| {
        let text = excerpt(field);
        lines.error(format!("the {what} `{text}` is not an unsigned integer"))
    })
}

/// A required finite number of seconds, as milliseconds.
fn seconds_ms(lines: &LineReader, field: &[u8], what: &str) -> Result<f64, TraceError> {
    let parsed = std::str::from_utf8(field)
        .ok()
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite());
    parsed.map(|seconds| seconds * 1000.0).ok_or_else(|| {
        let text = excerpt(field);
        lines.error(format!("the {what} `{text}` is not a number of seconds"))
    })
}

/// The disks of a block trace: `host/disk` → device number, and back.
#[derive(Default)]
struct Devices {
    numbers: HashMap<Vec<u8>, u64>,
    names: Vec<String>,
    scratch: Vec<u8>,
}

impl Devices {
    /// The number of a disk; `None` when the trace already has [`MAX_DEVICES`].
    fn number(&mut self, host: &[u8], disk: &[u8]) -> Option<u64> {
        self.scratch.clear();
        self.scratch.extend_from_slice(host.trim_ascii());
        self.scratch.push(b'/');
        self.scratch.extend_from_slice(disk.trim_ascii());
        if let Some(&number) = self.numbers.get(&self.scratch) {
            return Some(number);
        }
        if self.names.len() >= MAX_DEVICES {
            return None;
        }
        let number = self.names.len() as u64;
        self.numbers.insert(self.scratch.clone(), number);
        self.names
            .push(String::from_utf8_lossy(&self.scratch).into_owned());
        Some(number)
    }
}

/// MSR Cambridge: `Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime`.
pub(crate) struct Msr {
    lines: LineReader,
    devices: Devices,
}

impl Msr {
    pub(crate) fn new(path: &Path, stream: Box<dyn BufRead + Send>) -> Msr {
        Msr {
            lines: LineReader::new(path, stream),
            devices: Devices::default(),
        }
    }
}

impl Source for Msr {
    fn next_record(&mut self, record: &mut Record) -> Result<bool, TraceError> {
        loop {
            if !self.lines.next_content_line()? {
                return Ok(false);
            }
            let line = self.lines.line();
            let mut fields = [&[][..]; 7];
            let mut count = 0;
            for field in line.split(|&b| b == b',') {
                if count < 7 {
                    fields[count] = field;
                }
                count += 1;
            }
            if count != 7 {
                let text = excerpt(line);
                return Err(self.lines.error(format!(
                    "`{text}` has {count} fields; an MSR line has 7: \
                     Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime"
                )));
            }
            // The SNIA files have no header; a copy with one is read all the same.
            if self.lines.number() == 1 && fields[0].eq_ignore_ascii_case(b"timestamp") {
                continue;
            }
            let [time, host, disk, kind, offset, size, _] = fields;
            let ticks = unsigned(&self.lines, time, "timestamp (100 ns ticks)")?;
            let op = match kind.trim_ascii() {
                b"Read" | b"read" => Op::Read,
                b"Write" | b"write" => Op::Write,
                other => {
                    let text = excerpt(other);
                    return Err(self.lines.error(format!(
                        "unknown request type `{text}`: MSR types are Read and Write"
                    )));
                }
            };
            let offset = unsigned(&self.lines, offset, "offset")?;
            let size = unsigned(&self.lines, size, "size")?;
            let Some(device) = self.devices.number(host, disk) else {
                return Err(self.lines.error(format!(
                    "more than {MAX_DEVICES} disks (host/disk pairs) in one trace: split it by \
                     host"
                )));
            };
            *record = Record {
                time_ms: Some(ticks as f64 / 10_000.0),
                key: block_record(&self.lines, device, offset, size)?,
                op,
                size: Some(BLOCK_EXTENT),
            };
            return Ok(true);
        }
    }

    fn numeric_name(&self, key: u64) -> String {
        let device = (key >> EXTENT_BITS) as usize;
        let extent = key & ((1 << EXTENT_BITS) - 1);
        let name = self.devices.names.get(device).map_or("?", String::as_str);
        format!("{name}/{extent}")
    }

    fn location(&self) -> String {
        self.lines.location()
    }
}

/// Finds the named columns of a header; `names` in lowercase.
fn header_columns<const N: usize>(header: &[u8], names: [&str; N]) -> [Option<usize>; N] {
    let mut columns = [None; N];
    for (index, field) in header.split(|&b| b == b',').enumerate() {
        let field = field.trim_ascii();
        let field = field
            .strip_prefix(b"\"")
            .and_then(|f| f.strip_suffix(b"\""))
            .unwrap_or(field);
        for (name, column) in names.iter().zip(columns.iter_mut()) {
            if column.is_none() && field.eq_ignore_ascii_case(name.as_bytes()) {
                *column = Some(index);
            }
        }
    }
    columns
}

/// The header line of a CSV trace, or an error if the file has none.
fn read_header(lines: &mut LineReader) -> Result<Vec<u8>, TraceError> {
    while lines.next_line()? {
        // Spreadsheets save CSV with a byte-order mark; it is not part of the first name.
        let line = lines.line();
        let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        if !line.trim_ascii().is_empty() {
            return Ok(line.to_vec());
        }
    }
    Err(TraceError::whole(
        lines.path(),
        "the file is empty: a CSV trace starts with a header line",
    ))
}

/// CloudPhysics: header `version,time,op,size,lbn`; SCSI opcodes; 512-byte sectors.
pub(crate) struct CloudPhysics {
    lines: LineReader,
    /// Columns of time, op, size, lbn.
    columns: [usize; 4],
    fields: Vec<(usize, usize)>,
}

impl CloudPhysics {
    pub(crate) fn open(path: &Path, stream: Box<dyn BufRead + Send>) -> Result<Self, TraceError> {
        let mut lines = LineReader::new(path, stream);
        let header = read_header(&mut lines)?;
        let names = ["time", "op", "size", "lbn"];
        let found = header_columns(&header, names);
        let mut columns = [0; 4];
        for ((column, found), name) in columns.iter_mut().zip(found).zip(names) {
            *column = found.ok_or_else(|| {
                let text = excerpt(&header);
                lines.error(format!(
                    "the header `{text}` has no `{name}` column; a CloudPhysics trace's header \
                     is `version,time,op,size,lbn`"
                ))
            })?;
        }
        Ok(CloudPhysics {
            lines,
            columns,
            fields: Vec::with_capacity(8),
        })
    }
}

/// A SCSI opcode (hex) as an operation: READ and WRITE of 6, 10, 12 and 16 bytes.
fn scsi_op(code: &[u8]) -> Option<Op> {
    let code = code.trim_ascii();
    let code = code
        .strip_prefix(b"0x")
        .or_else(|| code.strip_prefix(b"0X"))
        .unwrap_or(code);
    let value = u8::from_str_radix(std::str::from_utf8(code).ok()?, 16).ok()?;
    match value {
        0x08 | 0x28 | 0xa8 | 0x88 => Some(Op::Read),
        0x0a | 0x2a | 0xaa | 0x8a => Some(Op::Write),
        _ => None,
    }
}

impl Source for CloudPhysics {
    fn next_record(&mut self, record: &mut Record) -> Result<bool, TraceError> {
        if !self.lines.next_content_line()? {
            return Ok(false);
        }
        let line = self.lines.line();
        self.fields.clear();
        let mut start = 0;
        for field in line.split(|&b| b == b',') {
            self.fields.push((start, start + field.len()));
            start += field.len() + 1;
        }
        let field = |column: usize| self.fields.get(column).map(|&(a, b)| &line[a..b]);
        let [Some(time), Some(op), Some(size), Some(lbn)] = self.columns.map(field) else {
            let text = excerpt(line);
            return Err(self.lines.error(format!(
                "`{text}` has {} fields, fewer than the header names",
                self.fields.len()
            )));
        };
        let time_ms = seconds_ms(&self.lines, time, "time")?;
        let Some(op) = scsi_op(op) else {
            let text = excerpt(op);
            return Err(self.lines.error(format!(
                "unknown SCSI opcode `{text}`: the reader knows READ (08, 28, 88, a8) and \
                 WRITE (0a, 2a, 8a, aa)"
            )));
        };
        let size = unsigned(&self.lines, size, "size")?;
        let lbn = unsigned(&self.lines, lbn, "lbn")?;
        let Some(offset) = lbn.checked_mul(512) else {
            return Err(self.lines.error(format!(
                "lbn {lbn} is beyond 2^64 bytes; the line is damaged"
            )));
        };
        *record = Record {
            time_ms: Some(time_ms),
            key: block_record(&self.lines, 0, offset, size)?,
            op,
            size: Some(BLOCK_EXTENT),
        };
        Ok(true)
    }

    fn location(&self) -> String {
        self.lines.location()
    }
}

/// The generic CSV: a header naming `key` and optionally `time`, `op`, `bytes`.
pub(crate) struct Generic {
    lines: LineReader,
    key_column: usize,
    time_column: Option<usize>,
    op_column: Option<usize>,
    bytes_column: Option<usize>,
    /// The fields of the current line, unquoted, end to end; and their bounds.
    text: Vec<u8>,
    fields: Vec<(usize, usize)>,
    key: String,
}

impl Generic {
    pub(crate) fn open(path: &Path, stream: Box<dyn BufRead + Send>) -> Result<Self, TraceError> {
        let mut lines = LineReader::new(path, stream);
        let header = read_header(&mut lines)?;
        let [key, time, op, bytes] = header_columns(&header, ["key", "time", "op", "bytes"]);
        let Some(key_column) = key else {
            let text = excerpt(&header);
            return Err(lines.error(format!(
                "the header `{text}` has no `key` column: a CSV trace's header names `key` and \
                 optionally `time` (seconds), `op` (read, write, delete) and `bytes`"
            )));
        };
        Ok(Generic {
            lines,
            key_column,
            time_column: time,
            op_column: op,
            bytes_column: bytes,
            text: Vec::with_capacity(256),
            fields: Vec::with_capacity(8),
            key: String::new(),
        })
    }

    /// Whether the header names a `time` column.
    pub(crate) fn has_clock(&self) -> bool {
        self.time_column.is_some()
    }

    fn field(&self, column: usize) -> Option<&[u8]> {
        field_of(&self.text, &self.fields, column)
    }

    fn parse_line(&mut self, record: &mut Record) -> Result<(), TraceError> {
        let widest = [self.time_column, self.op_column, self.bytes_column]
            .into_iter()
            .flatten()
            .fold(self.key_column, usize::max);
        if self.fields.len() <= widest {
            return Err(self.lines.error(format!(
                "{} fields, but the header puts a column at position {}",
                self.fields.len(),
                widest + 1
            )));
        }
        let key = field_of(&self.text, &self.fields, self.key_column).unwrap_or_default();
        let Ok(key) = std::str::from_utf8(key) else {
            return Err(self.lines.error("the key is not UTF-8"));
        };
        if key.is_empty() {
            return Err(self.lines.error("the key is empty"));
        }
        self.key.clear();
        self.key.push_str(key);
        let time_ms = match self.time_column.and_then(|c| self.field(c)) {
            Some(time) => Some(seconds_ms(&self.lines, time, "time")?),
            None => None,
        };
        let op = match self.op_column.and_then(|c| self.field(c)) {
            Some(op) => parse_op(op).ok_or_else(|| {
                let text = excerpt(op);
                self.lines.error(format!(
                    "unknown op `{text}`: ops are read, write and delete"
                ))
            })?,
            None => Op::Read,
        };
        let size = match self.bytes_column.and_then(|c| self.field(c)) {
            Some(bytes) if bytes.trim_ascii().is_empty() => None,
            Some(bytes) => Some(unsigned(&self.lines, bytes, "bytes")?),
            None => None,
        };
        *record = Record {
            time_ms,
            key: RecordKey::Text,
            op,
            size,
        };
        Ok(())
    }
}

/// Field `column` of a line split by [`split_quoted`].
fn field_of<'a>(text: &'a [u8], fields: &[(usize, usize)], column: usize) -> Option<&'a [u8]> {
    fields.get(column).map(|&(a, b)| &text[a..b])
}

fn parse_op(op: &[u8]) -> Option<Op> {
    let op = op.trim_ascii();
    if op.eq_ignore_ascii_case(b"read") {
        Some(Op::Read)
    } else if op.eq_ignore_ascii_case(b"write") {
        Some(Op::Write)
    } else if op.eq_ignore_ascii_case(b"delete") {
        Some(Op::Delete)
    } else {
        None
    }
}

/// Splits a CSV line into `text` (fields unquoted, end to end) and `fields` (their bounds).
/// A field that starts with `"` runs to the next lone `"`; `""` inside it is one quote.
fn split_quoted(
    line: &[u8],
    text: &mut Vec<u8>,
    fields: &mut Vec<(usize, usize)>,
) -> Result<(), &'static str> {
    text.clear();
    fields.clear();
    let mut rest = line;
    loop {
        let start = text.len();
        if let Some(quoted) = rest.strip_prefix(b"\"") {
            let mut i = 0;
            loop {
                match quoted.get(i) {
                    None => return Err("a quoted field has no closing quote"),
                    Some(b'"') if quoted.get(i + 1) == Some(&b'"') => {
                        text.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => break,
                    Some(&b) => {
                        text.push(b);
                        i += 1;
                    }
                }
            }
            rest = &quoted[i + 1..];
            match rest.first() {
                None => {}
                Some(b',') => {}
                Some(_) => return Err("text after a quoted field's closing quote"),
            }
        } else {
            let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
            text.extend_from_slice(&rest[..end]);
            rest = &rest[end..];
        }
        fields.push((start, text.len()));
        match rest.split_first() {
            Some((b',', tail)) => rest = tail,
            _ => return Ok(()),
        }
    }
}

impl Source for Generic {
    fn next_record(&mut self, record: &mut Record) -> Result<bool, TraceError> {
        if !self.lines.next_content_line()? {
            return Ok(false);
        }
        let line = self.lines.line();
        if let Err(reason) = split_quoted(line, &mut self.text, &mut self.fields) {
            return Err(self.lines.error(reason));
        }
        self.parse_line(record)?;
        Ok(true)
    }

    fn text_key(&self) -> &str {
        &self.key
    }

    fn location(&self) -> String {
        self.lines.location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<Vec<String>, &'static str> {
        let (mut text, mut fields) = (Vec::new(), Vec::new());
        split_quoted(line.as_bytes(), &mut text, &mut fields)?;
        Ok(fields
            .iter()
            .map(|&(a, b)| String::from_utf8(text[a..b].to_vec()).unwrap())
            .collect())
    }

    #[test]
    fn quoted_fields_keep_commas_and_doubled_quotes() {
        assert_eq!(split("a,\"b,c\",d").unwrap(), ["a", "b,c", "d"]);
        assert_eq!(split("\"say \"\"hi\"\"\",").unwrap(), ["say \"hi\"", ""]);
        assert_eq!(split("").unwrap(), [""]);
        assert!(split("\"open").is_err());
        assert!(split("\"a\"b").is_err());
    }

    #[test]
    fn a_request_touches_every_extent_it_overlaps() {
        assert_eq!(extents(0, 4096), Some((0, 1)));
        assert_eq!(extents(4095, 2), Some((0, 2)));
        assert_eq!(extents(8192, 0), Some((2, 1)));
        assert_eq!(extents(u64::MAX, 2), None);
    }
}
