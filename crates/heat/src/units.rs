//! Sizes and durations as operators type them in `strata.toml` (`500G`, `30d`, `1h30m`) and
//! as `strata explain` prints them back (`9.5 GiB`, `2d 4h`).
//!
//! Kept apart from the config model because the explanations of decisions print the same
//! units the config accepts, so a threshold reads back the way it was written.

/// Milliseconds in one second, minute, hour and day.
pub const SECOND_MS: i64 = 1_000;
/// Milliseconds in one minute.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// Milliseconds in one hour.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// Milliseconds in one day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Parses a byte size: a plain count (`1073741824`) or a number with a binary unit
/// (`64K`, `500G`, `1.5T`, `2PiB`; `GB` means GiB too, as everywhere in Strata).
///
/// The error is the reason only; the caller adds the field it came from.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let not_a_size = || format!("{text:?} is not a size; write it like 500G");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if number.is_empty() {
        return Err(not_a_size());
    }
    let multiplier: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        "P" | "PB" | "PIB" => 1 << 50,
        _ => return Err(not_a_size()),
    };
    // Whole numbers are computed exactly; only fractions go through floating point.
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| format!("{text:?} is too large a size"));
    }
    let value: f64 = number.parse().map_err(|_| not_a_size())?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large a size"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration: one or more number-unit pairs (`30d`, `12h`, `90m`, `3600s`,
/// `500ms`, `1w`, `1h30m`) into milliseconds. A bare number is seconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a duration; write it like 30d, 12h, 90m or 3600s");
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = trimmed.parse::<i64>() {
        return if seconds < 0 {
            Err(bad())
        } else {
            seconds
                .checked_mul(SECOND_MS)
                .ok_or_else(|| format!("{text:?} is too long a duration"))
        };
    }
    let mut total: i64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let per_unit = match unit.trim() {
            "ms" => 1,
            "s" => SECOND_MS,
            "m" | "min" => MINUTE_MS,
            "h" => HOUR_MS,
            "d" => DAY_MS,
            "w" => 7 * DAY_MS,
            _ => return Err(bad()),
        };
        let count: i64 = number.parse().map_err(|_| bad())?;
        total = count
            .checked_mul(per_unit)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
        rest = next.trim_start();
    }
    Ok(total)
}

/// `1536` → `1.5 KiB`; `0` → `0 B`.
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

/// A duration in the two largest units that matter: `45s`, `12m`, `1h`, `5h 30m`, `3d 4h`.
/// Negative durations print as `0s`.
pub fn human_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < SECOND_MS {
        return if ms == 0 {
            "0s".to_string()
        } else {
            format!("{ms}ms")
        };
    }
    let parts = [
        (ms / DAY_MS, "d"),
        (ms % DAY_MS / HOUR_MS, "h"),
        (ms % HOUR_MS / MINUTE_MS, "m"),
        (ms % MINUTE_MS / SECOND_MS, "s"),
    ];
    let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    let mut out = format!("{}{}", parts[first].0, parts[first].1);
    if let Some((n, unit)) = parts.get(first + 1) {
        if *n > 0 {
            out.push_str(&format!(" {n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("500G"), Ok(500 << 30));
        assert_eq!(parse_size("500 GiB"), Ok(500 << 30));
        assert_eq!(parse_size("1.5T"), Ok(3 << 39));
        assert_eq!(parse_size("2P"), Ok(2 << 50));
        assert_eq!(
            parse_size("12X"),
            Err("\"12X\" is not a size; write it like 500G".to_string())
        );
        assert!(parse_size("").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("-5G").is_err());
        assert!(parse_size("1.2.3G").is_err());
        assert!(parse_size("99999999999P").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30d"), Ok(30 * DAY_MS));
        assert_eq!(parse_duration_ms("12h"), Ok(12 * HOUR_MS));
        assert_eq!(parse_duration_ms("90m"), Ok(90 * MINUTE_MS));
        assert_eq!(parse_duration_ms("3600s"), Ok(HOUR_MS));
        assert_eq!(parse_duration_ms("3600"), Ok(HOUR_MS));
        assert_eq!(parse_duration_ms("1h30m"), Ok(90 * MINUTE_MS));
        assert_eq!(parse_duration_ms("1h 30m"), Ok(90 * MINUTE_MS));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("2w"), Ok(14 * DAY_MS));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
        for bad in ["", "h", "5y", "-1h", "1.5h", "1h-", "99999999999999999d"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn printing() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 << 30), "10.0 GiB");
        assert_eq!(human_duration_ms(0), "0s");
        assert_eq!(human_duration_ms(-5), "0s");
        assert_eq!(human_duration_ms(45 * SECOND_MS), "45s");
        assert_eq!(human_duration_ms(HOUR_MS), "1h");
        assert_eq!(human_duration_ms(5 * HOUR_MS + 30 * MINUTE_MS), "5h 30m");
        assert_eq!(human_duration_ms(3 * DAY_MS + 4 * HOUR_MS + 5), "3d 4h");
        assert!(human_duration_ms(i64::MAX).ends_with('h'));
    }
}
