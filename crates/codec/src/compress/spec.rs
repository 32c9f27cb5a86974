//! The codec policy as a user writes it: `--codec auto`, `max`, `zstd:19`, `none`, ...
//!
//! Grammar: `auto` | `max` | `CODEC[:LEVEL][:long][+FILTER]`, where CODEC is `none`,
//! `lz4`, `zstd` (level -7..=22, default 3, `:long` allowed), `gzip` (1..=9, default 6),
//! `bzip2` (1..=9, default 9) or `xz` (0..=9, default 6), and FILTER is `none`,
//! `shuffle2`, `shuffle4` or `shuffle8`. Without `+FILTER` a fixed codec still gets the
//! filter the probe finds (shuffling is cheap and only ever helps typed arrays).

use std::{fmt, str::FromStr};

use super::{Codec, Filter};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecSpec {
    /// Per chunk, the codec that maximises the end-to-end rate.
    Auto,
    /// Per chunk, the codec that saves the most space, whatever the time.
    Max,
    /// The same codec for every chunk; the filter is the given one, or the probe's.
    Fixed {
        /// The codec.
        codec: Codec,
        /// The filter, or `None` to let the probe choose.
        filter: Option<Filter>,
    },
}

/// Why a `--codec` value was not understood. The message lists the valid choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid codec `{input}`: {problem}; valid: {VALID_SPECS}")]
pub struct CodecSpecError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The valid codec specifications, as listed in error messages.
pub const VALID_SPECS: &str = "auto, max, none, lz4, zstd[:-7..22][:long], gzip[:1..9], \
bzip2[:1..9], xz[:0..9], each optionally followed by +none, +shuffle2, +shuffle4 or +shuffle8 \
(e.g. zstd:19:long+shuffle4)";

impl CodecSpec {
    /// Parse a codec specification such as `zstd:19`, `xz:6+shuffle4`, `auto` or `max`.
    pub fn parse(text: &str) -> Result<CodecSpec, CodecSpecError> {
        let err = |problem: String| CodecSpecError {
            input: text.to_string(),
            problem,
        };
        let lower = text.trim().to_ascii_lowercase();
        let (codec_part, filter) = match lower.split_once('+') {
            Some((c, f)) => (c, Some(parse_filter(f).map_err(err)?)),
            None => (lower.as_str(), None),
        };
        let mut parts = codec_part.split(':');
        let name = parts.next().unwrap_or_default();
        let level = parts.next();
        let flag = parts.next();
        if parts.next().is_some() {
            return Err(err("too many `:` parts".into()));
        }
        if filter.is_some() && matches!(name, "auto" | "max") {
            return Err(err(format!("`{name}` chooses its own filter")));
        }
        if flag.is_some() && name != "zstd" {
            return Err(err("only zstd takes a third part (`long`)".into()));
        }
        let num = |lo: i32, hi: i32, default: i32| -> Result<i32, CodecSpecError> {
            match level {
                None | Some("") => Ok(default),
                Some(l) => match l.parse::<i32>() {
                    Ok(v) if (lo..=hi).contains(&v) => Ok(v),
                    _ => Err(err(format!("{name} level must be {lo}..={hi}, got `{l}`"))),
                },
            }
        };
        let no_level = |c: Codec| -> Result<Codec, CodecSpecError> {
            match level {
                None => Ok(c),
                Some(l) => Err(err(format!("{name} takes no level, got `{l}`"))),
            }
        };
        let codec = match name {
            "auto" | "max" if level.is_some() => {
                return Err(err(format!("`{name}` takes no level")))
            }
            "auto" => return Ok(CodecSpec::Auto),
            "max" => return Ok(CodecSpec::Max),
            "none" | "raw" => no_level(Codec::None)?,
            "lz4" => no_level(Codec::Lz4)?,
            "zstd" => Codec::Zstd {
                level: num(-7, 22, 3)?,
                long: match flag {
                    None => false,
                    Some("long") => true,
                    Some(f) => return Err(err(format!("unknown zstd option `{f}`"))),
                },
            },
            "gzip" => Codec::Gzip {
                level: num(1, 9, 6)? as u32,
            },
            "bzip2" => Codec::Bzip2 {
                level: num(1, 9, 9)? as u32,
            },
            "xz" => Codec::Xz {
                level: num(0, 9, 6)? as u32,
            },
            other => return Err(err(format!("unknown codec `{other}`"))),
        };
        Ok(CodecSpec::Fixed { codec, filter })
    }
}

fn parse_filter(f: &str) -> Result<Filter, String> {
    match f {
        "none" => Ok(Filter::None),
        "shuffle2" => Ok(Filter::Shuffle { width: 2 }),
        "shuffle4" => Ok(Filter::Shuffle { width: 4 }),
        "shuffle8" => Ok(Filter::Shuffle { width: 8 }),
        other => Err(format!("unknown filter `{other}`")),
    }
}

impl FromStr for CodecSpec {
    type Err = CodecSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CodecSpec::parse(s)
    }
}

impl fmt::Display for CodecSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecSpec::Auto => f.write_str("auto"),
            CodecSpec::Max => f.write_str("max"),
            CodecSpec::Fixed {
                codec,
                filter: None,
            } => write!(f, "{codec}"),
            CodecSpec::Fixed {
                codec,
                filter: Some(flt),
            } => write!(f, "{codec}+{flt}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(codec: Codec) -> CodecSpec {
        CodecSpec::Fixed {
            codec,
            filter: None,
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        let z = |level, long| fixed(Codec::Zstd { level, long });
        assert_eq!(CodecSpec::parse("zstd:19").unwrap(), z(19, false));
        assert_eq!(CodecSpec::parse("zstd:19:long").unwrap(), z(19, true));
        assert_eq!(CodecSpec::parse("zstd").unwrap(), z(3, false));
        assert_eq!(CodecSpec::parse("zstd:-5").unwrap(), z(-5, false));
        assert_eq!(CodecSpec::parse("lz4").unwrap(), fixed(Codec::Lz4));
        assert_eq!(CodecSpec::parse("none").unwrap(), fixed(Codec::None));
        assert_eq!(
            CodecSpec::parse("gzip:6").unwrap(),
            fixed(Codec::Gzip { level: 6 })
        );
        assert_eq!(
            CodecSpec::parse("bzip2:9").unwrap(),
            fixed(Codec::Bzip2 { level: 9 })
        );
        assert_eq!(
            CodecSpec::parse("XZ:6").unwrap(),
            fixed(Codec::Xz { level: 6 })
        );
        assert_eq!(CodecSpec::parse("auto").unwrap(), CodecSpec::Auto);
        assert_eq!(CodecSpec::parse("max").unwrap(), CodecSpec::Max);
        assert_eq!(
            CodecSpec::parse("xz:9+shuffle4").unwrap(),
            CodecSpec::Fixed {
                codec: Codec::Xz { level: 9 },
                filter: Some(Filter::Shuffle { width: 4 })
            }
        );
    }

    #[test]
    fn display_reads_back() {
        for s in [
            "auto",
            "max",
            "none",
            "lz4",
            "zstd:19:long",
            "gzip:1",
            "xz:9+shuffle8",
        ] {
            assert_eq!(CodecSpec::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn errors_name_the_problem_and_list_valid_choices() {
        for (bad, needle) in [
            ("zstd:23", "zstd level must be -7..=22"),
            ("gzip:0", "gzip level must be 1..=9"),
            ("snappy", "unknown codec `snappy`"),
            ("lz4:3", "lz4 takes no level"),
            ("xz:6:long", "only zstd takes a third part"),
            ("zstd:3:fast", "unknown zstd option"),
            ("zstd+shuffle3", "unknown filter"),
            ("max+shuffle4", "chooses its own filter"),
            ("auto:3", "takes no level"),
        ] {
            let e = CodecSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
            assert!(e.contains("valid: auto, max, none, lz4"), "{e}");
        }
    }
}
