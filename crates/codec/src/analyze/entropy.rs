//! Byte entropy and sampling: the cheapest facts about a chunk.
//!
//! Order-0 byte entropy (Shannon, bits per byte) costs one pass over a sample and tells
//! apart text (~2-5 bits), typed numbers (~5-7.5) and compressed or random bytes (~8). It
//! cannot see structure (a shuffled `float32` array and its original have the same
//! entropy), so it only decides "incompressible" at the top end; trial compression decides
//! the rest.

/// Shannon entropy of the byte distribution of `sample`, in bits per byte (0.0 to 8.0).
/// An empty sample has entropy 0.
pub fn byte_entropy(sample: &[u8]) -> f64 {
    if sample.is_empty() {
        return 0.0;
    }
    // Four histograms break the store-to-load dependency when neighbouring bytes repeat.
    let mut hist = [[0u32; 256]; 4];
    let mut quads = sample.chunks_exact(4);
    for q in &mut quads {
        hist[0][q[0] as usize] += 1;
        hist[1][q[1] as usize] += 1;
        hist[2][q[2] as usize] += 1;
        hist[3][q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        hist[0][b as usize] += 1;
    }
    let n = sample.len() as f64;
    (0..256)
        .map(|i| hist[0][i] + hist[1][i] + hist[2][i] + hist[3][i])
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Up to `total` bytes taken from `data` as `pieces` slices spread evenly over it, each
/// starting at a multiple of 64 bytes, so that element boundaries of any width up to 64
/// keep their phase. Returns `data` itself (borrowed) when it is no longer than `total`.
pub fn spread_sample(data: &[u8], total: usize, pieces: usize) -> std::borrow::Cow<'_, [u8]> {
    let pieces = pieces.max(1);
    if data.len() <= total {
        return std::borrow::Cow::Borrowed(data);
    }
    let piece = (total / pieces) & !63;
    if piece == 0 {
        return std::borrow::Cow::Borrowed(&data[..total]);
    }
    let stride = (data.len() - piece) / pieces.max(2).saturating_sub(1).max(1);
    let mut out = Vec::with_capacity(piece * pieces);
    for i in 0..pieces {
        let start = ((i * stride) & !63).min(data.len() - piece);
        out.extend_from_slice(&data[start..start + piece]);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_known_distributions() {
        assert_eq!(byte_entropy(&[]), 0.0);
        assert_eq!(byte_entropy(&[7; 1000]), 0.0);
        let two: Vec<u8> = (0..1000).map(|i| (i % 2) as u8).collect();
        assert!((byte_entropy(&two) - 1.0).abs() < 1e-9);
        let all: Vec<u8> = (0..256 * 16).map(|i| i as u8).collect();
        assert!((byte_entropy(&all) - 8.0).abs() < 1e-9);
    }

    #[test]
    fn sample_spreads_over_the_data_and_keeps_alignment() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i / 1000) as u8).collect();
        let s = spread_sample(&data, 4096, 4);
        assert_eq!(s.len(), 4096);
        assert_eq!(s[0], 0);
        assert_eq!(s[4095], 99, "last piece comes from the end");
        assert_eq!(spread_sample(&data[..100], 4096, 4).len(), 100);
    }
}
