//! Units as people type and read them: sizes in binary units (`4M` is 4 MiB, shared with
//! `strata.toml` through `strata_heat::units`), link rates in bits per second.

use strata_codec::hash::MIN_CHUNK_SIZE;
pub use strata_heat::units::{human_bytes, parse_size};

/// Parse a duration as `strata.toml` writes them (`2s`, `500ms`, `10m`, `1h30m`; a bare
/// number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let ms = strata_heat::units::parse_duration_ms(text)?;
    Ok(std::time::Duration::from_millis(
        u64::try_from(ms).unwrap_or(0),
    ))
}

/// The largest `--chunk-size`: every one of the `--jobs` tasks holds a chunk in memory
/// (twice while it is read back), so bigger chunks buy nothing but memory.
pub const MAX_CHUNK_SIZE: u64 = 256 << 20;
/// The most `--jobs`: tasks in flight, each with a chunk buffer and a connection.
pub const MAX_JOBS: usize = 256;
/// The most chunk memory a run may ask for (`--jobs` × `--chunk-size`).
pub const MAX_CHUNK_MEMORY: u64 = 4 << 30;

/// Parse a `--chunk-size`: a power of two from 1K to 256M (binary units).
pub fn parse_chunk_size(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    if !size.is_power_of_two() || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) {
        return Err(format!(
            "{text:?} is not a chunk size Strata can use: give a power of two from {} to {} \
             (e.g. 1M, 4M, 16M); each of the --jobs tasks holds one chunk in memory",
            human_bytes(MIN_CHUNK_SIZE),
            human_bytes(MAX_CHUNK_SIZE)
        ));
    }
    Ok(size)
}

/// Parse a `--jobs` count: a whole number from 1 to [`MAX_JOBS`].
pub fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(jobs) if (1..=MAX_JOBS).contains(&jobs) => Ok(jobs),
        _ => Err(format!(
            "{text:?} is not a number of tasks: give a whole number from 1 to {MAX_JOBS}"
        )),
    }
}

/// Refuse `--jobs` × `--chunk-size` above [`MAX_CHUNK_MEMORY`]: the run would hold that
/// much in chunk buffers at once.
pub fn check_chunk_memory(jobs: usize, chunk_size: u64) -> Result<(), String> {
    let memory = (jobs as u64).saturating_mul(chunk_size);
    if memory > MAX_CHUNK_MEMORY {
        return Err(format!(
            "--jobs {jobs} with --chunk-size {} would hold {} of chunks in memory at once, \
             more than the {} allowed; lower --jobs or --chunk-size",
            human_bytes(chunk_size),
            human_bytes(memory),
            human_bytes(MAX_CHUNK_MEMORY)
        ));
    }
    Ok(())
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
    use super::*;

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

    #[test]
    fn chunk_sizes_and_jobs_outside_their_range_are_refused_with_the_range() {
        assert_eq!(parse_chunk_size("64K"), Ok(64 << 10));
        assert_eq!(parse_chunk_size("256M"), Ok(256 << 20));
        for bad in ["1T", "512M", "3K", "512", "0", "lots"] {
            let e = parse_chunk_size(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
            if bad != "lots" {
                assert!(e.contains("from 1.0 KiB to 256.0 MiB"), "{e}");
            }
        }
        assert_eq!(parse_jobs("8"), Ok(8));
        for bad in ["0", "257", "-1", "eight"] {
            let e = parse_jobs(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("from 1 to 256"), "{e}");
        }
        assert!(check_chunk_memory(8, 256 << 20).is_ok());
        let e = check_chunk_memory(256, 256 << 20).unwrap_err();
        assert!(e.contains("64.0 GiB") && e.contains("lower --jobs"), "{e}");
    }
}
