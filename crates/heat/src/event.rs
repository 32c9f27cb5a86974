//! Access events as they arrive: the [`AccessEvent`] type and the NDJSON batch format of the
//! ingest endpoint (`POST /v1/access-events`), one JSON object per line:
//!
//! ```text
//! {"ts": 1767225600000, "key": "climate/run-7/t2m.nc", "op": "read", "bytes": 1048576, "client": "hpc-12"}
//! ```
//!
//! - `ts`: milliseconds since the Unix epoch (`ts_ms` is accepted too); missing means "now",
//!   the time the server received the batch;
//! - `key`: the object key, validated like store paths (not empty, at most 4096 bytes, no
//!   NUL, no leading `/`, no empty, `.` or `..` segment);
//! - `op`: `read`, `write` or `delete`;
//! - `bytes`: bytes transferred (default 0); `client`: optional, free text.
//!
//! Unknown fields are ignored so that producers can send more than Strata reads. A bad line
//! does not spoil the batch: it is reported with its 1-based line number and the reason, and
//! the other lines are kept. Parsing borrows keys from the input where it can, so the
//! tracker's ingest path ([`crate::AccessTracker::ingest_ndjson`]) allocates nothing for keys
//! it already knows.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::stats::Op;

/// Longest key accepted, in bytes (the store's limit for relative paths).
pub const MAX_KEY_LEN: usize = 4096;

/// How many line errors a report keeps; further ones are only counted.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// One access to one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvent {
    /// When it happened, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The object key.
    pub key: String,
    /// What was done.
    pub op: Op,
    /// Bytes transferred.
    pub bytes: u64,
    /// Who did it, when the producer says.
    pub client: Option<String>,
}

/// An event borrowed from an input buffer (see [`scan_ndjson`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// When it happened, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The object key.
    pub key: &'a str,
    /// What was done.
    pub op: Op,
    /// Bytes transferred.
    pub bytes: u64,
    /// Who did it, when the producer says.
    pub client: Option<&'a str>,
}

impl EventRef<'_> {
    /// An owned copy.
    pub fn to_owned_event(&self) -> AccessEvent {
        AccessEvent {
            ts_ms: self.ts_ms,
            key: self.key.to_string(),
            op: self.op,
            bytes: self.bytes,
            client: self.client.map(str::to_string),
        }
    }
}

impl AccessEvent {
    /// A borrowed view.
    pub fn borrowed(&self) -> EventRef<'_> {
        EventRef {
            ts_ms: self.ts_ms,
            key: &self.key,
            op: self.op,
            bytes: self.bytes,
            client: self.client.as_deref(),
        }
    }
}

/// A rejected line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// 1-based line number in the batch.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What a batch held: counts, and the first [`MAX_REPORTED_ERRORS`] rejected lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NdjsonReport {
    /// Events accepted.
    pub accepted: usize,
    /// Lines rejected (all of them, even past the reported ones).
    pub rejected: usize,
    /// The first rejected lines, in order.
    pub errors: Vec<LineError>,
}

impl NdjsonReport {
    fn reject(&mut self, line: usize, reason: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(LineError { line, reason });
        }
    }
}

/// The wire form of one line.
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(default, alias = "ts_ms")]
    ts: Option<i64>,
    #[serde(borrow)]
    key: Cow<'a, str>,
    op: Op,
    #[serde(default)]
    bytes: u64,
    #[serde(default, borrow)]
    client: Option<Cow<'a, str>>,
}

/// Checks an object key (the same rules as the store's relative paths).
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("key is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Err("key is longer than 4096 bytes");
    }
    if key.as_bytes().contains(&0) {
        return Err("key contains a NUL byte");
    }
    if key.starts_with('/') {
        return Err("key starts with '/'");
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err("key has an empty, '.' or '..' segment");
    }
    Ok(())
}

/// serde_json's message without its " at line 1 column N" suffix (every line is line 1 to
/// it), with the column kept in words.
fn json_reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let message = match text.rfind(" at line ") {
        Some(cut) => &text[..cut],
        None => &text,
    };
    if err.column() > 0 {
        format!("{message} (column {})", err.column())
    } else {
        message.to_string()
    }
}

/// Parses an NDJSON batch, handing each valid event to `on_event` as it goes. Blank lines
/// are skipped; `\r\n` line ends are accepted. `now_ms` stands in for a missing `ts`.
pub fn scan_ndjson(
    input: &[u8],
    now_ms: i64,
    mut on_event: impl FnMut(EventRef<'_>),
) -> NdjsonReport {
    let mut report = NdjsonReport::default();
    for (index, raw) in input.split(|byte| *byte == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let wire: WireEvent<'_> = match serde_json::from_slice(line) {
            Ok(wire) => wire,
            Err(err) => {
                report.reject(index + 1, json_reason(&err));
                continue;
            }
        };
        if let Err(reason) = check_key(&wire.key) {
            report.reject(index + 1, reason.to_string());
            continue;
        }
        let ts_ms = wire.ts.unwrap_or(now_ms);
        if ts_ms < 0 {
            report.reject(
                index + 1,
                format!("ts {ts_ms} is before 1970; send milliseconds since the Unix epoch"),
            );
            continue;
        }
        report.accepted += 1;
        on_event(EventRef {
            ts_ms,
            key: &wire.key,
            op: wire.op,
            bytes: wire.bytes,
            client: wire.client.as_deref(),
        });
    }
    report
}

/// Parses an NDJSON batch into owned events (see [`scan_ndjson`] for the rules).
pub fn parse_ndjson(input: &[u8], now_ms: i64) -> (Vec<AccessEvent>, NdjsonReport) {
    let mut events = Vec::new();
    let report = scan_ndjson(input, now_ms, |event| events.push(event.to_owned_event()));
    (events, report)
}
