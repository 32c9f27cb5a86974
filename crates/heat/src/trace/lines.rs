//! Line-oriented traces (ARC `.lis`, LIRS, Tencent photo), the line reader the CSV formats
//! share, and format sniffing from a trace's first bytes.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use super::{grouped, read_failure, Record, RecordKey, Source, TraceError, TraceFormat};
use super::{ARC_BLOCK_SIZE, MAX_REQUESTS_PER_RECORD};
use crate::stats::Op;

/// The longest line a text trace may have. A longer one means a binary file read as text.
const MAX_LINE: u64 = 1 << 20;

/// Reads lines, numbering them from 1, without their line ending.
pub(crate) struct LineReader {
    path: PathBuf,
    stream: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    /// The end of the last line in `buf`, line ending excluded.
    end: usize,
    line: u64,
}

impl LineReader {
    pub(crate) fn new(path: &Path, stream: Box<dyn BufRead + Send>) -> LineReader {
        LineReader {
            path: path.to_path_buf(),
            stream,
            buf: Vec::with_capacity(256),
            end: 0,
            line: 0,
        }
    }

    /// Reads the next line that is not blank; `Ok(false)` at the end.
    pub(crate) fn next_content_line(&mut self) -> Result<bool, TraceError> {
        while self.next_line()? {
            if !self.line().trim_ascii().is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Reads the next line ([`LineReader::line`]); `false` at the end of the file.
    pub(crate) fn next_line(&mut self) -> Result<bool, TraceError> {
        self.buf.clear();
        self.end = 0;
        let read = (&mut self.stream)
            .take(MAX_LINE)
            .read_until(b'\n', &mut self.buf);
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                let location = format!("line {}", grouped(self.line + 1));
                return Err(TraceError::at(&self.path, location, read_failure(&e)));
            }
        };
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        let mut end = self.buf.len();
        if self.buf.last() == Some(&b'\n') {
            end -= 1;
        } else if read as u64 == MAX_LINE {
            return Err(self.error(format!(
                "a line longer than {} bytes: this does not look like a text trace; check \
                 its --format",
                grouped(MAX_LINE)
            )));
        }
        if end > 0 && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        self.end = end;
        Ok(true)
    }

    /// The last line read, without its line ending.
    pub(crate) fn line(&self) -> &[u8] {
        &self.buf[..self.end]
    }

    /// The number of the last line read (from 1).
    pub(crate) fn number(&self) -> u64 {
        self.line
    }

    /// `line N` of the last line read.
    pub(crate) fn location(&self) -> String {
        format!("line {}", grouped(self.line))
    }

    /// An error on the last line read.
    pub(crate) fn error(&self, reason: impl Into<String>) -> TraceError {
        TraceError::at(&self.path, self.location(), reason)
    }

    /// The trace's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// At most 60 characters of a field, for error messages.
pub(crate) fn excerpt(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// An unsigned decimal integer, or `None` (empty, a sign, a non-digit, overflow).
#[inline]
pub(crate) fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in field {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(value)
}

/// Whitespace-separated fields of a line.
fn words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
}

/// ARC `.lis`: `start count ignored request_number`, a run of `count` blocks from `start`.
pub(crate) struct Arc {
    lines: LineReader,
}

impl Arc {
    pub(crate) fn new(path: &Path, stream: Box<dyn BufRead + Send>) -> Arc {
        Arc {
            lines: LineReader::new(path, stream),
        }
    }
}

impl Source for Arc {
    fn next_record(&mut self, record: &mut Record) -> Result<bool, TraceError> {
        loop {
            if !self.lines.next_line()? {
                return Ok(false);
            }
            let line = self.lines.line();
            let mut fields = words(line);
            let (Some(start), Some(count)) = (fields.next(), fields.next()) else {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let text = excerpt(line);
                return Err(self.lines.error(format!(
                    "`{text}` is not an ARC line: expected `start_block count ignored \
                     request_number`"
                )));
            };
            let (Some(first), Some(count)) = (parse_u64(start), parse_u64(count)) else {
                let text = excerpt(line);
                return Err(self.lines.error(format!(
                    "`{text}`: the start block and the count must be unsigned integers \
                     (ARC lines are `start_block count ignored request_number`)"
                )));
            };
            if count > MAX_REQUESTS_PER_RECORD || first.checked_add(count).is_none() {
                return Err(self.lines.error(format!(
                    "a run of {} blocks from block {first}: more than the {} one line may \
                     hold; the file is probably damaged",
                    grouped(count),
                    grouped(MAX_REQUESTS_PER_RECORD)
                )));
            }
            *record = Record {
                time_ms: None,
                key: RecordKey::Numeric { first, count },
                op: Op::Read,
                size: Some(ARC_BLOCK_SIZE),
            };
            return Ok(true);
        }
    }

    fn location(&self) -> String {
        self.lines.location()
    }
}

/// LIRS: one unsigned integer key per line; `*` lines and empty lines skipped.
pub(crate) struct Lirs {
    lines: LineReader,
}

impl Lirs {
    pub(crate) fn new(path: &Path, stream: Box<dyn BufRead + Send>) -> Lirs {
        Lirs {
            lines: LineReader::new(path, stream),
        }
    }
}

impl Source for Lirs {
    fn next_record(&mut self, record: &mut Record) -> Result<bool, TraceError> {
        loop {
            if !self.lines.next_line()? {
                return Ok(false);
            }
            let line = self.lines.line();
            let line = line.trim_ascii();
            if line.is_empty() || line == b"*" {
                continue;
            }
            let Some(key) = parse_u64(line) else {
                let text = excerpt(line);
                return Err(self.lines.error(format!(
                    "`{text}` is not a LIRS key: each line holds one unsigned integer (or `*`)"
                )));
            };
            *record = Record {
                time_ms: None,
                key: RecordKey::Numeric {
                    first: key,
                    count: 1,
                },
                op: Op::Read,
                size: None,
            };
            return Ok(true);
        }
    }

    fn location(&self) -> String {
        self.lines.location()
    }
}

/// The Tencent photo trace: `time photo_id format size_category bytes hit terminal latency`.
pub(crate) struct Tencent {
    lines: LineReader,
    key: String,
}

impl Tencent {
    pub(crate) fn new(path: &Path, stream: Box<dyn BufRead + Send>) -> Tencent {
        Tencent {
            lines: LineReader::new(path, stream),
            key: String::with_capacity(64),
        }
    }
}

impl Source for Tencent {
    fn next_record(&mut self, record: &mut Record) -> Result<bool, TraceError> {
        loop {
            if !self.lines.next_line()? {
                return Ok(false);
            }
            let line = self.lines.line();
            let mut fields = words(line);
            let Some(time) = fields.next() else {
                continue;
            };
            let (Some(id), Some(format), Some(category), Some(bytes)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                let text = excerpt(line);
                return Err(self.lines.error(format!(
                    "`{text}` is not a Tencent photo line: expected `time photo_id format \
                     size_category bytes hit terminal latency`"
                )));
            };
            let Some(time_ms) = civil_time_ms(time) else {
                let text = excerpt(time);
                return Err(self.lines.error(format!(
                    "`{text}` is not a time: expected yyyyMMddHHmmss (e.g. 20160201164604)"
                )));
            };
            let Some(bytes) = parse_u64(bytes) else {
                let text = excerpt(bytes);
                return Err(self.lines.error(format!(
                    "`{text}` is not a size: the fifth field is the returned bytes, an \
                     unsigned integer"
                )));
            };
            let parts = [id, format, category].map(std::str::from_utf8);
            let [Ok(id), Ok(format), Ok(category)] = parts else {
                return Err(self
                    .lines
                    .error("the photo id, format or size category is not UTF-8"));
            };
            self.key.clear();
            for (i, part) in [id, format, category].into_iter().enumerate() {
                if i > 0 {
                    self.key.push('/');
                }
                self.key.push_str(part);
            }
            *record = Record {
                time_ms: Some(time_ms),
                key: RecordKey::Text,
                op: Op::Read,
                // A returned size of 0 (a failed request) says nothing of the image's size.
                size: (bytes > 0).then_some(bytes),
            };
            return Ok(true);
        }
    }

    fn text_key(&self) -> &str {
        &self.key
    }

    fn location(&self) -> String {
        self.lines.location()
    }
}

/// `yyyyMMddHHmmss` as milliseconds since 1970-01-01 (the zone does not matter: times are
/// relative to the first request).
fn civil_time_ms(field: &[u8]) -> Option<f64> {
    if field.len() != 14 {
        return None;
    }
    let part = |range: std::ops::Range<usize>| parse_u64(&field[range]);
    let (year, month, day) = (part(0..4)?, part(4..6)?, part(6..8)?);
    let (hour, minute, second) = (part(8..10)?, part(10..12)?, part(12..14)?);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    Some(seconds as f64 * 1000.0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The format a trace's first bytes suggest, for text formats; `None` for binary content
/// or a first line no text format matches.
pub(crate) fn sniff(head: &[u8]) -> Option<TraceFormat> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let binary = line.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f);
    if binary || line.is_empty() {
        return None;
    }
    if line
        .to_ascii_lowercase()
        .starts_with(b"version,time,op,size,lbn")
    {
        return Some(TraceFormat::CloudPhysicsCsv);
    }
    if line.contains(&b',') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        let msr = fields.len() == 7
            && parse_u64(fields[0]).is_some()
            && matches!(fields[3], b"Read" | b"Write");
        return Some(if msr {
            TraceFormat::MsrCsv
        } else {
            TraceFormat::Csv
        });
    }
    let fields: Vec<&[u8]> = words(line).collect();
    let numeric = |field: &&[u8]| parse_u64(field).is_some();
    match fields.len() {
        8 if civil_time_ms(fields[0]).is_some() => Some(TraceFormat::TencentPhoto),
        4 if fields.iter().all(numeric) => Some(TraceFormat::ArcLis),
        1 if fields[0] == b"*" || numeric(&fields[0]) => Some(TraceFormat::Lirs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_count_days_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2016, 2, 1), 16_832);
        let a = civil_time_ms(b"20160201164604").unwrap();
        let b = civil_time_ms(b"20160201164615").unwrap();
        assert_eq!(b - a, 11_000.0);
        assert_eq!(civil_time_ms(b"20161301000000"), None);
    }

    #[test]
    fn integers_reject_signs_and_overflow() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
    }
}
