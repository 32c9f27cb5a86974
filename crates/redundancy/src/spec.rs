//! [`Redundancy`]: how an object is kept over a tier's failure domains, and its spelling in
//! `strata.toml` (`none`, `replicate:N`, `ec:K+M`).

use std::fmt;
use std::str::FromStr;

use strata_codec::format::fragment::MAX_FRAGMENTS;

/// How an object is kept over a tier's domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Redundancy {
    /// One copy on one domain (still with its integrity record, so reads are verified).
    None,
    /// `copies` whole copies, each on a different domain.
    Replicate {
        /// How many copies (at least 1).
        copies: usize,
    },
    /// Reed-Solomon: `data` data fragments and `parity` parity fragments, each on a
    /// different domain; any `data` of them give the object back.
    Erasure {
        /// Data fragments (K).
        data: usize,
        /// Parity fragments (M): how many may be lost.
        parity: usize,
    },
}

const VALID: &str = "valid: `none`, `replicate:N` with N >= 1 (e.g. replicate:3), or `ec:K+M` with K, M >= 1 and K + M <= 64 (e.g. ec:4+2)";

impl FromStr for Redundancy {
    type Err = String;

    fn from_str(text: &str) -> Result<Redundancy, String> {
        let bad = |why: &str| format!("invalid redundancy `{text}`: {why}; {VALID}");
        let t = text.trim().to_ascii_lowercase();
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad(&format!("{what} `{}` is not a whole number", s.trim())))
        };
        if t == "none" {
            return Ok(Redundancy::None);
        }
        if let Some(n) = t.strip_prefix("replicate:") {
            let copies = number(n, "N")?;
            if copies == 0 {
                return Err(bad("N must be at least 1"));
            }
            return Ok(Redundancy::Replicate { copies });
        }
        if let Some(rest) = t.strip_prefix("ec:") {
            let (k, m) = rest
                .split_once('+')
                .ok_or_else(|| bad("expected `ec:K+M`"))?;
            let (data, parity) = (number(k, "K")?, number(m, "M")?);
            if data == 0 || parity == 0 {
                return Err(bad("K and M must both be at least 1"));
            }
            if data + parity > MAX_FRAGMENTS {
                return Err(bad("K + M must be at most 64"));
            }
            return Ok(Redundancy::Erasure { data, parity });
        }
        Err(bad("unknown kind"))
    }
}

impl fmt::Display for Redundancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redundancy::None => write!(f, "none"),
            Redundancy::Replicate { copies } => write!(f, "replicate:{copies}"),
            Redundancy::Erasure { data, parity } => write!(f, "ec:{data}+{parity}"),
        }
    }
}

impl Redundancy {
    /// Domains an object needs: 1, N or K + M.
    pub fn domains_needed(&self) -> usize {
        match *self {
            Redundancy::None => 1,
            Redundancy::Replicate { copies } => copies,
            Redundancy::Erasure { data, parity } => data + parity,
        }
    }

    /// Domains that may be lost with the object still readable: 0, N - 1 or M.
    pub fn losses_tolerated(&self) -> usize {
        match *self {
            Redundancy::None => 0,
            Redundancy::Replicate { copies } => copies.saturating_sub(1),
            Redundancy::Erasure { parity, .. } => parity,
        }
    }

    /// Raw bytes stored per object byte: 1, N or (K + M) / K.
    pub fn raw_factor(&self) -> f64 {
        match *self {
            Redundancy::None => 1.0,
            Redundancy::Replicate { copies } => copies as f64,
            Redundancy::Erasure { data, parity } => (data + parity) as f64 / data as f64,
        }
    }

    /// Good pieces a read needs: 1 replica, or K fragments.
    pub fn pieces_needed_to_read(&self) -> usize {
        match *self {
            Redundancy::Erasure { data, .. } => data,
            _ => 1,
        }
    }

    /// Whether the object is kept as plain replicas (`none` or `replicate:N`).
    pub fn is_replicas(&self) -> bool {
        !matches!(self, Redundancy::Erasure { .. })
    }

    /// The `copies` field of a replica integrity record: 0 for `none`.
    pub(crate) fn record_copies(&self) -> u16 {
        match *self {
            Redundancy::Replicate { copies } => u16::try_from(copies).unwrap_or(u16::MAX),
            _ => 0,
        }
    }

    /// The replica redundancy a record's `copies` field names.
    pub(crate) fn from_record_copies(copies: u16) -> Redundancy {
        match copies {
            0 => Redundancy::None,
            n => Redundancy::Replicate { copies: n as usize },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_bad_ones_say_what_is_valid() {
        for text in [
            "none",
            "replicate:1",
            "replicate:3",
            "ec:4+2",
            "ec:10+4",
            "ec:1+63",
        ] {
            let r: Redundancy = text.parse().unwrap();
            assert_eq!(r.to_string(), text);
        }
        assert_eq!(
            " EC:4+2 ".parse(),
            Ok(Redundancy::Erasure { data: 4, parity: 2 })
        );
        for bad in [
            "",
            "replicate:0",
            "replicate:x",
            "ec:4",
            "ec:0+2",
            "ec:4+0",
            "ec:60+5",
            "raid5",
            "replicate",
        ] {
            let e = bad.parse::<Redundancy>().unwrap_err();
            assert!(
                e.contains("valid:") && e.contains(&format!("`{bad}`")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn costs_and_tolerances_follow_the_encoding() {
        let ec: Redundancy = "ec:4+2".parse().unwrap();
        assert_eq!(
            (ec.domains_needed(), ec.losses_tolerated(), ec.raw_factor()),
            (6, 2, 1.5)
        );
        let r3: Redundancy = "replicate:3".parse().unwrap();
        assert_eq!(
            (r3.domains_needed(), r3.losses_tolerated(), r3.raw_factor()),
            (3, 2, 3.0)
        );
        let none = Redundancy::None;
        assert_eq!(
            (
                none.domains_needed(),
                none.losses_tolerated(),
                none.raw_factor()
            ),
            (1, 0, 1.0)
        );
    }
}
