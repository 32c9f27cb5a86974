//! Byte sizes as people type and read them (binary units: `4M` is 4 MiB).

/// Parse `4096`, `64K`, `4M`, `4MiB`, `1G`, `1.5G` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write it like 4M, 64K or 1G"))?;
    let multiplier: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit; use K, M, G or T (binary)"
            ))
        }
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert!(parse_size("four").is_err());
        assert!(parse_size("4X").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn prints_human_sizes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
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
