//! `strata migrate --stripe-size SIZE`: chunks aligned to the stripes of a striped file
//! system (Lustre, GPFS), so that every chunk starts on a stripe boundary and each write
//! lands on whole stripes of one object storage target (docs/LUSTRE.md says why and how).
//!
//! The chunk becomes `stripe × max(1, round(chunk / stripe))`: a whole number of stripes,
//! as close to the asked chunk size as that allows. Chunks are hashed as a BLAKE3 tree of
//! power-of-two leaves, so both sizes are powers of two and the result is simply the larger
//! of the two; a stripe size that is not a power of two cannot be aligned with and is
//! refused, saying so.

use strata_codec::hash::MIN_CHUNK_SIZE;

use crate::units::{human_bytes, parse_size, MAX_CHUNK_SIZE};

/// Parse a `--stripe-size`: a power of two from 1K to 256M (binary units: 1M is 1 MiB).
pub fn parse_stripe_size(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    if size == 0 {
        return Err(format!(
            "{text:?} is not a stripe size: a stripe holds at least one byte; give the \
             file system's stripe size (`lfs getstripe -S DIR` on Lustre, the block size \
             of `mmlsattr -L FILE` on GPFS)"
        ));
    }
    if size > MAX_CHUNK_SIZE {
        return Err(format!(
            "{text:?} is larger than the largest chunk Strata can use ({}); chunks are \
             aligned to whole stripes, so give a stripe size of at most {}",
            human_bytes(MAX_CHUNK_SIZE),
            human_bytes(MAX_CHUNK_SIZE)
        ));
    }
    if !size.is_power_of_two() || size < MIN_CHUNK_SIZE {
        return Err(format!(
            "{text:?} cannot be aligned with: chunks are powers of two from {} to {}, so \
             only a power-of-two stripe size in that range can divide them (set the \
             directory's stripe with e.g. `lfs setstripe -S 4M DIR`)",
            human_bytes(MIN_CHUNK_SIZE),
            human_bytes(MAX_CHUNK_SIZE)
        ));
    }
    Ok(size)
}

/// The chunk size aligned to `stripe`: `stripe × max(1, round(chunk / stripe))`.
pub fn align_chunk_to_stripe(chunk: u64, stripe: u64) -> u64 {
    let stripes = chunk
        .saturating_add(stripe / 2)
        .checked_div(stripe)
        .unwrap_or(1)
        .max(1);
    stripe.saturating_mul(stripes)
}

/// The chunk size a migration uses: `chunk`, aligned to `stripe` when one is given.
pub fn effective_chunk_size(chunk: u64, stripe: Option<u64>) -> u64 {
    stripe.map_or(chunk, |stripe| align_chunk_to_stripe(chunk, stripe))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn chunks_become_whole_stripes() {
        assert_eq!(align_chunk_to_stripe(4 * MIB, MIB), 4 * MIB);
        assert_eq!(align_chunk_to_stripe(64 << 10, MIB), MIB);
        assert_eq!(align_chunk_to_stripe(MIB, 4 * MIB), 4 * MIB);
        assert_eq!(align_chunk_to_stripe(256 * MIB, 256 * MIB), 256 * MIB);
        // The formula on sizes other than powers of two: the nearest whole number.
        assert_eq!(align_chunk_to_stripe(5 * MIB, 2 * MIB), 6 * MIB);
        assert_eq!(align_chunk_to_stripe(4 * MIB, 3 * MIB), 3 * MIB);
        assert_eq!(effective_chunk_size(4 * MIB, None), 4 * MIB);
        for stripe in [1 << 10, 64 << 10, MIB, 4 * MIB, 64 * MIB] {
            for chunk in [1 << 10, 64 << 10, MIB, 4 * MIB, 256 * MIB] {
                let aligned = align_chunk_to_stripe(chunk, stripe);
                assert_eq!(aligned % stripe, 0, "{chunk} on {stripe}");
                assert!(aligned.is_power_of_two() && aligned <= MAX_CHUNK_SIZE);
            }
        }
    }

    #[test]
    fn stripe_sizes_parse_in_binary_units() {
        assert_eq!(parse_stripe_size("1MiB"), Ok(MIB));
        assert_eq!(parse_stripe_size("4M"), Ok(4 * MIB));
        assert_eq!(parse_stripe_size("64K"), Ok(64 << 10));
    }

    #[test]
    fn unusable_stripe_sizes_are_refused_saying_why() {
        assert!(parse_stripe_size("0")
            .unwrap_err()
            .contains("at least one byte"));
        assert!(parse_stripe_size("512M")
            .unwrap_err()
            .contains("at most 256"));
        assert!(parse_stripe_size("8G").unwrap_err().contains("larger than"));
        assert!(parse_stripe_size("3M")
            .unwrap_err()
            .contains("power-of-two"));
        assert!(parse_stripe_size("512")
            .unwrap_err()
            .contains("power-of-two"));
        assert!(parse_stripe_size("lots").is_err());
        assert!(parse_stripe_size("-1M").is_err());
    }
}
