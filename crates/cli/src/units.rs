//! Units as people type and read them: sizes in binary units (`4M` is 4 MiB, shared with
//! `strata.toml` through `strata_heat::units`), link rates in bits per second.

pub use strata_heat::units::{human_bytes, parse_size};

/// Parse a duration as `strata.toml` writes them (`2s`, `500ms`, `10m`, `1h30m`; a bare
/// number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let ms = strata_heat::units::parse_duration_ms(text)?;
    Ok(std::time::Duration::from_millis(
        u64::try_from(ms).unwrap_or(0),
    ))
}

/// Parse a link rate in bits per second, as networks are rated: `1G` is 1 Gbit/s
/// (125 MB/s), `100M` is 100 Mbit/s, `10G`; an optional `bit`, `bps` or `b` suffix is
/// accepted. Returns bytes per second.
pub fn parse_link_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let body = lower
        .strip_suffix("bit/s")
        .or_else(|| lower.strip_suffix("bps"))
        .or_else(|| lower.strip_suffix("bit"))
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("{text:?} is not a link rate; write it in bits per second like 100M, 1G or 10G")
    })?;
    let multiplier = match unit.trim() {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit; use K, M, G or T (bits per second)"
            ))
        }
    };
    let bits = value * multiplier;
    if !bits.is_finite() || bits <= 0.0 {
        return Err(format!("{text:?} must be a positive rate"));
    }
    Ok(bits / 8.0)
}

#[cfg(test)]
mod link_rate_tests {
    use super::parse_link_rate;

    #[test]
    fn link_rates_are_bits_per_second() {
        assert_eq!(parse_link_rate("1G"), Ok(125e6));
        assert_eq!(parse_link_rate("100M"), Ok(12.5e6));
        assert_eq!(parse_link_rate("10Gbit"), Ok(1.25e9));
        assert_eq!(parse_link_rate("8"), Ok(1.0));
        assert!(parse_link_rate("fast").is_err());
        assert!(parse_link_rate("0").is_err());
        assert!(parse_link_rate("5X").is_err());
    }
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_take_units_and_bare_seconds() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }
}

#[cfg(test)]
mod size_tests {
    use super::{human_bytes, parse_size};

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert!(parse_size("four").is_err());
        assert!(parse_size("4X").is_err());
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
