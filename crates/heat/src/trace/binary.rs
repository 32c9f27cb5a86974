//! Fixed-size binary records: libCacheSim's oracleGeneral and cache2k's big-endian keys.

use std::io::{BufRead, ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::{grouped, read_failure, Record, RecordKey, Source, TraceError};
use crate::stats::Op;

/// Reads fixed-size records, numbering them from 1.
struct Records<const N: usize> {
    path: PathBuf,
    stream: Box<dyn BufRead + Send>,
    /// Records read so far.
    count: u64,
}

impl<const N: usize> Records<N> {
    fn new(path: &Path, stream: Box<dyn BufRead + Send>) -> Self {
        Records {
            path: path.to_path_buf(),
            stream,
            count: 0,
        }
    }

    /// `record N (byte B)` of record number `number` (from 1).
    fn location_of(number: u64) -> String {
        let offset = number.saturating_sub(1).saturating_mul(N as u64);
        format!("record {} (byte {})", grouped(number), grouped(offset))
    }

    fn location(&self) -> String {
        Self::location_of(self.count)
    }

    /// The next record, or `None` at the end of the file.
    fn next(&mut self, format: &str) -> Result<Option<[u8; N]>, TraceError> {
        let mut record = [0u8; N];
        let mut filled = 0;
        while filled < N {
            match self.stream.read(&mut record[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(TraceError::at(
                        &self.path,
                        Self::location_of(self.count + 1),
                        read_failure(&e),
                    ))
                }
            }
        }
        if filled == 0 {
            return Ok(None);
        }
        self.count += 1;
        if filled < N {
            return Err(TraceError::at(
                &self.path,
                self.location(),
                format!(
                    "truncated final record: {filled} of its {N} bytes ({format} records are \
                     {N} bytes); the file was cut short: re-fetch it, or check its --format"
                ),
            ));
        }
        Ok(Some(record))
    }
}

/// libCacheSim oracleGeneral: `u32 time (s), u64 id, u32 size, i64 next_access_vtime`,
/// little-endian.
pub(crate) struct OracleGeneral {
    records: Records<24>,
}

impl OracleGeneral {
    pub(crate) fn new(path: &Path, stream: Box<dyn BufRead + Send>) -> Self {
        OracleGeneral {
            records: Records::new(path, stream),
        }
    }
}

impl Source for OracleGeneral {
    fn next_record(&mut self, record: &mut Record) -> Result<bool, TraceError> {
        let Some(bytes) = self.records.next("oracleGeneral")? else {
            return Ok(false);
        };
        let [t0, t1, t2, t3, i0, i1, i2, i3, i4, i5, i6, i7, s0, s1, s2, s3, ..] = bytes;
        let time = u32::from_le_bytes([t0, t1, t2, t3]);
        let id = u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]);
        let size = u32::from_le_bytes([s0, s1, s2, s3]);
        *record = Record {
            time_ms: Some(f64::from(time) * 1000.0),
            key: RecordKey::Numeric {
                first: id,
                count: 1,
            },
            op: Op::Read,
            // libCacheSim writes 0 where the source trace gave no size.
            size: (size > 0).then_some(u64::from(size)),
        };
        Ok(true)
    }

    fn location(&self) -> String {
        self.records.location()
    }
}

/// cache2k: big-endian `i32` keys.
pub(crate) struct Cache2k {
    records: Records<4>,
}

impl Cache2k {
    pub(crate) fn new(path: &Path, stream: Box<dyn BufRead + Send>) -> Self {
        Cache2k {
            records: Records::new(path, stream),
        }
    }
}

impl Source for Cache2k {
    fn next_record(&mut self, record: &mut Record) -> Result<bool, TraceError> {
        let Some(bytes) = self.records.next("cache2k")? else {
            return Ok(false);
        };
        // The key's bit pattern is the numeric key; numeric_name reads it back as i32.
        let key = u32::from_be_bytes(bytes);
        *record = Record {
            time_ms: None,
            key: RecordKey::Numeric {
                first: u64::from(key),
                count: 1,
            },
            op: Op::Read,
            size: None,
        };
        Ok(true)
    }

    fn numeric_name(&self, key: u64) -> String {
        (key as u32 as i32).to_string()
    }

    fn location(&self) -> String {
        self.records.location()
    }
}
