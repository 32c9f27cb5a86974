//! Rates and bandwidth limits as the operator writes them (`--bwlimit`).
//!
//! This module owns the *syntax* of a bandwidth limit and nothing else, so that the CLI,
//! the control file and the timetable all read limits the same way, and the way rclone
//! users already know:
//!
//! - a rate is a number with an optional **binary** unit suffix: `B` (bytes), `K`, `M`,
//!   `G`, `T`, `P` (KiB, MiB, ... per second; `Ki`/`KiB` spellings and lower case are also
//!   accepted). `20M` is 20 MiB/s = 20,971,520 bytes per second. Fractions are allowed
//!   (`1.5M`).
//! - a number **without** a suffix is in KiB/s, exactly as rclone reads `--bwlimit 512`
//!   (rclone's own timetable example `Mon-00:00,512` means 512 KiB/s). Write `512B` for
//!   bytes per second.
//! - `off` means no limit. `0` is rejected rather than silently read as "off" or
//!   "stalled": write `off`, or a small rate such as `1K`.
//! - `WRITE:READ` (rclone's `UP:DOWN`) gives separate limits per direction:
//!   `--bwlimit 10M:100M` caps writes to the destination at 10 MiB/s and reads from the
//!   source at 100 MiB/s; `10M:off` caps writes only. A single rate (`--bwlimit 10M`), as
//!   in rclone, caps the **total** of reads and writes with one shared bucket.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

/// One KiB: the unit of a rate written without a suffix (rclone's convention).
const KIB: f64 = 1024.0;

/// A bandwidth rate in bytes per second, or no limit at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rate {
    /// No limit (`off`).
    Unlimited,
    /// At most this many bytes per second.
    Limited(NonZeroU64),
}

impl Rate {
    /// A limited rate of `bytes_per_sec`; zero is clamped to one byte per second so that a
    /// computed rate can never stall a transfer forever.
    pub fn bytes_per_sec(bytes_per_sec: u64) -> Rate {
        Rate::Limited(NonZeroU64::new(bytes_per_sec).unwrap_or(NonZeroU64::MIN))
    }

    /// The limit in bytes per second, `None` when unlimited.
    pub fn as_bytes_per_sec(self) -> Option<u64> {
        match self {
            Rate::Unlimited => None,
            Rate::Limited(n) => Some(n.get()),
        }
    }

    /// True when this rate limits nothing.
    pub fn is_unlimited(self) -> bool {
        matches!(self, Rate::Unlimited)
    }

    /// The smaller of two rates (`Unlimited` is larger than every limit).
    pub fn min(self, other: Rate) -> Rate {
        match (self, other) {
            (Rate::Unlimited, r) | (r, Rate::Unlimited) => r,
            (Rate::Limited(a), Rate::Limited(b)) => Rate::Limited(a.min(b)),
        }
    }

    /// Parses one rate (`20M`, `512K`, `1.5G`, `4096B`, `512` = 512 KiB/s, `off`).
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        let t = text.trim();
        let err = |reason: String| RateError {
            input: text.to_string(),
            reason,
        };
        if t.is_empty() {
            return Err(err(
                "the rate is empty; expected e.g. `20M`, `512K` or `off`".into(),
            ));
        }
        if t.eq_ignore_ascii_case("off") {
            return Ok(Rate::Unlimited);
        }
        let digits_end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, suffix) = t.split_at(digits_end);
        if number.is_empty() {
            return Err(err(
                "a rate starts with a number; expected e.g. `20M`, `512K` or `off`".into(),
            ));
        }
        let value: f64 = number.parse().map_err(|_| {
            err(format!(
                "`{number}` is not a number; expected digits with at most one `.`"
            ))
        })?;
        let multiplier = suffix_multiplier(suffix).ok_or_else(|| {
            err(format!(
                "unknown unit `{suffix}`; expected B, K, M, G, T or P (binary: K = KiB), \
                 or no unit for KiB"
            ))
        })?;
        let bytes = value * multiplier;
        if !bytes.is_finite() || bytes >= 9.0e18 {
            return Err(err(
                "the rate is too large (the limit is about 7 EiB/s)".into()
            ));
        }
        if value == 0.0 {
            return Err(err(
                "a zero rate would stall every transfer; write `off` for no limit or a \
                 small rate such as `1K`"
                    .into(),
            ));
        }
        // Truncation is intended: a rate is a whole number of bytes per second.
        let whole = bytes as u64;
        match NonZeroU64::new(whole) {
            Some(n) => Ok(Rate::Limited(n)),
            None => Err(err(
                "the rate rounds down to zero bytes per second; use at least `1B`".into(),
            )),
        }
    }
}

/// The multiplier of a unit suffix, `None` for an unknown one.
fn suffix_multiplier(suffix: &str) -> Option<f64> {
    let lower = suffix.to_ascii_lowercase();
    let (letter, rest) = match lower.char_indices().nth(1) {
        Some((i, _)) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let power = match letter {
        "" => return Some(KIB),
        "b" if rest.is_empty() => return Some(1.0),
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    if !matches!(rest, "" | "i" | "ib") {
        return None;
    }
    Some(KIB.powi(power))
}

impl FromStr for Rate {
    type Err = RateError;
    fn from_str(s: &str) -> Result<Rate, RateError> {
        Rate::parse(s)
    }
}

impl fmt::Display for Rate {
    /// Writes the rate so that it parses back to the same value: `off`, a whole number with
    /// the largest exact binary suffix (`20M`), or bytes (`1000B`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self {
            Rate::Unlimited => return f.write_str("off"),
            Rate::Limited(n) => n.get(),
        };
        for (unit, shift) in [("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
            if n % (1u64 << shift) == 0 {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}B")
    }
}

/// A rate that could not be parsed: the input and what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate `{input}`: {reason}")]
pub struct RateError {
    /// The text as given.
    pub input: String,
    /// What is wrong and what is expected.
    pub reason: String,
}

/// Which way bytes flow through the store layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Reading from a store (rclone's "download").
    Read,
    /// Writing to a store (rclone's "upload").
    Write,
}

impl Direction {
    /// Both directions, read first.
    pub const ALL: [Direction; 2] = [Direction::Read, Direction::Write];

    /// 0 for reads, 1 for writes: an index for per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Direction::Read => 0,
            Direction::Write => 1,
        }
    }
}

/// A bandwidth limit: one rate for the total, or separate rates for writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BwLimit {
    /// One shared cap on reads plus writes (`--bwlimit 10M`).
    Total(Rate),
    /// Separate caps (`--bwlimit WRITE:READ`, e.g. `10M:100M`).
    Split {
        /// Cap on writes to a store.
        write: Rate,
        /// Cap on reads from a store.
        read: Rate,
    },
}

impl BwLimit {
    /// No limit in either direction.
    pub const OFF: BwLimit = BwLimit::Total(Rate::Unlimited);

    /// Parses `RATE` or `WRITE:READ` (see the module doc).
    pub fn parse(text: &str) -> Result<BwLimit, RateError> {
        let t = text.trim();
        let mut parts = t.split(':');
        let first = parts.next().unwrap_or("");
        let second = parts.next();
        if parts.next().is_some() {
            return Err(RateError {
                input: text.to_string(),
                reason: "at most one `:` is allowed; expected `RATE` or `WRITE:READ` such as \
                         `10M:100M`"
                    .into(),
            });
        }
        match second {
            None => Ok(BwLimit::Total(Rate::parse(first)?)),
            Some(read) => {
                let write = Rate::parse(first)?;
                let read = Rate::parse(read)?;
                Ok(BwLimit::Split { write, read })
            }
        }
    }

    /// The cap that applies to one direction on its own (for `Total`, the shared cap).
    pub fn for_direction(self, direction: Direction) -> Rate {
        match (self, direction) {
            (BwLimit::Total(r), _) => r,
            (BwLimit::Split { read, .. }, Direction::Read) => read,
            (BwLimit::Split { write, .. }, Direction::Write) => write,
        }
    }

    /// True when one bucket is shared by reads and writes.
    pub fn is_shared(self) -> bool {
        matches!(self, BwLimit::Total(_))
    }
}

impl FromStr for BwLimit {
    type Err = RateError;
    fn from_str(s: &str) -> Result<BwLimit, RateError> {
        BwLimit::parse(s)
    }
}

impl fmt::Display for BwLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BwLimit::Total(r) => write!(f, "{r}"),
            BwLimit::Split { write, read } => write!(f, "{write}:{read}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bps(t: &str) -> Option<u64> {
        Rate::parse(t).unwrap().as_bytes_per_sec()
    }

    #[test]
    fn units_are_binary_and_bare_numbers_are_kib() {
        assert_eq!(bps("20M"), Some(20 << 20));
        assert_eq!(bps("512K"), Some(512 << 10));
        assert_eq!(bps("512k"), Some(512 << 10));
        assert_eq!(bps("1G"), Some(1 << 30));
        assert_eq!(bps("1GiB"), Some(1 << 30));
        assert_eq!(bps("1Gi"), Some(1 << 30));
        assert_eq!(bps("2T"), Some(2 << 40));
        assert_eq!(bps("1P"), Some(1 << 50));
        assert_eq!(bps("4096B"), Some(4096));
        assert_eq!(bps("512"), Some(512 << 10));
        assert_eq!(bps("1.5M"), Some(3 << 19));
        assert_eq!(Rate::parse(" OFF ").unwrap(), Rate::Unlimited);
    }

    #[test]
    fn malformed_rates_say_what_is_expected() {
        for bad in [
            "", "M", "10X", "10MB", "1..5M", "-1M", "0", "0.0K", "0.1B", "1e3M",
        ] {
            let e = Rate::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(!e.reason.is_empty());
        }
        assert!(Rate::parse("0").unwrap_err().reason.contains("off"));
        assert!(Rate::parse("99999999999P").is_err());
    }

    #[test]
    fn display_round_trips() {
        for t in ["off", "20M", "512K", "1G", "1000B", "3P"] {
            let r = Rate::parse(t).unwrap();
            assert_eq!(r.to_string(), t);
            assert_eq!(Rate::parse(&r.to_string()).unwrap(), r);
        }
    }

    #[test]
    fn bwlimit_is_write_colon_read() {
        let l = BwLimit::parse("10M:100M").unwrap();
        assert_eq!(
            l.for_direction(Direction::Write),
            Rate::parse("10M").unwrap()
        );
        assert_eq!(
            l.for_direction(Direction::Read),
            Rate::parse("100M").unwrap()
        );
        assert!(!l.is_shared());
        let l = BwLimit::parse("10M:off").unwrap();
        assert_eq!(l.for_direction(Direction::Read), Rate::Unlimited);
        let l = BwLimit::parse("1M").unwrap();
        assert!(l.is_shared());
        assert_eq!(l.to_string(), "1M");
        assert!(BwLimit::parse("1M:2M:3M").is_err());
        assert!(BwLimit::parse(":2M").is_err());
        assert!(BwLimit::parse("1M:").is_err());
    }

    #[test]
    fn min_treats_unlimited_as_largest() {
        let a = Rate::bytes_per_sec(5);
        assert_eq!(Rate::Unlimited.min(a), a);
        assert_eq!(a.min(Rate::bytes_per_sec(9)), a);
        assert_eq!(Rate::bytes_per_sec(0), Rate::bytes_per_sec(1));
    }
}
