//! Reed-Solomon parity over groups of shards: encode M parity shards for K data shards,
//! rebuild any M lost shards from the K + M - lost that remain.
//!
//! Pure and synchronous: the mover decides what a shard is (a stored object of a packed
//! store), reads and writes them, and checks every shard's hash *before* it is handed to
//! [`reconstruct`]. Reed-Solomon corrects erasures, not errors: a shard that is damaged but
//! passed in as present would be "rebuilt" into wrong bytes, so callers pass damaged shards
//! as missing (`None`) and check every rebuilt shard against its recorded hash.
//!
//! # Shards and padding
//!
//! Data shards may differ in length. A group is encoded over shards padded with zeros to
//! the group's shard length ([`shard_len_for`]: the longest data shard rounded up to an
//! even number of bytes, which the GF(2^16) code needs). Parity shards have exactly that
//! length. Callers record each data shard's original length and truncate rebuilt shards
//! to it.
//!
//! # Why `reed-solomon-simd`
//!
//! It implements the Leopard-RS algorithm (FFT over GF(2^16), O(n log n) in the shard
//! count, up to 65,535 shards per group) with runtime-selected SSSE3/AVX2/NEON kernels,
//! is maintained, and has no unsafe-heavy C dependency. `reed-solomon-erasure` is
//! unmaintained and O(n²) per byte over GF(2^8) (at most 256 shards);
//! `reed-solomon-16` is the unmaintained predecessor of `reed-solomon-simd`.
//!
//! # `--parity` values
//!
//! - `ec:K+M`: groups of K data shards, M parity shards each; any M shards of a group may
//!   be lost.
//! - `P%` (0 < P ≤ 100): a budget ([`ParityRequest::budget`]): about P% of the data in
//!   parity. Its nominal shape is K = [`PERCENT_GROUP`] and M = ⌈K·P/100⌉ (`10%` is
//!   `ec:20+2`); below 5%, one parity shard per ⌊100/P⌋ data shards, at most
//!   [`MAX_PERCENT_GROUP`] (`1%` is `ec:100+1`). The mover starts from that shape and
//!   adapts it to the shards' sizes to stay within the budget.

use std::fmt;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// Data shards per group for a `P%` parity spec of at least 5%.
pub const PERCENT_GROUP: usize = 20;
/// The largest group a `P%` parity spec chooses (for small percentages).
pub const MAX_PERCENT_GROUP: usize = 1000;
/// The most shards (data + parity) of one group.
pub const MAX_GROUP_SHARDS: usize = 65_535;

/// How much parity: groups of `k` data shards with `m` parity shards each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParitySpec {
    /// Data shards per group.
    pub k: usize,
    /// Parity shards per group: how many shards of a group may be lost.
    pub m: usize,
}

/// Why a `--parity` value was not understood. The message says what is valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid parity `{input}`: {problem}; valid: `P%` with 0 < P <= 100 (e.g. 10%) or `ec:K+M` with K, M >= 1 (e.g. ec:10+2)")]
pub struct ParitySpecError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ParitySpec {
    /// Parse `10%`, `2.5%` or `ec:10+2`.
    pub fn parse(text: &str) -> Result<ParitySpec, ParitySpecError> {
        let err = |problem: String| ParitySpecError {
            input: text.to_string(),
            problem,
        };
        let t = text.trim().to_ascii_lowercase();
        let spec = if let Some(percent) = t.strip_suffix('%') {
            let p: f64 = percent
                .trim()
                .parse()
                .map_err(|_| err(format!("`{percent}` is not a number")))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(err(format!("{p}% is not in (0, 100]")));
            }
            if p >= 5.0 {
                let k = PERCENT_GROUP;
                let m = ((k as f64 * p / 100.0) - 1e-9).ceil().max(1.0) as usize;
                ParitySpec { k, m }
            } else {
                let k = ((100.0 / p) + 1e-9).floor() as usize;
                ParitySpec {
                    k: k.min(MAX_PERCENT_GROUP),
                    m: 1,
                }
            }
        } else if let Some(rest) = t.strip_prefix("ec:") {
            let (k, m) = rest
                .split_once('+')
                .ok_or_else(|| err("expected `ec:K+M`".into()))?;
            let num = |s: &str, what: &str| {
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| err(format!("{what} `{s}` is not a whole number")))
            };
            ParitySpec {
                k: num(k, "K")?,
                m: num(m, "M")?,
            }
        } else {
            return Err(err("expected a percentage or `ec:K+M`".into()));
        };
        spec.check().map_err(err)?;
        Ok(spec)
    }

    /// Whether the code supports this many shards.
    pub fn check(&self) -> Result<(), String> {
        if self.k == 0 || self.m == 0 {
            return Err("K and M must both be at least 1".into());
        }
        if self.k + self.m > MAX_GROUP_SHARDS || !ReedSolomonEncoder::supports(self.k, self.m) {
            return Err(format!(
                "{} data + {} parity shards per group is more than the code supports",
                self.k, self.m
            ));
        }
        Ok(())
    }

    /// Parity bytes per data byte for full groups of equal shards.
    pub fn overhead(&self) -> f64 {
        self.m as f64 / self.k as f64
    }
}

impl fmt::Display for ParitySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ec:{}+{}", self.k, self.m)
    }
}

/// What `--parity` asked for: a fixed shape (`ec:K+M`, used as given) or an overhead
/// budget (`P%`), whose shape the caller may adapt to the shards it has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParityRequest {
    /// The shape asked for (`ec:K+M`), or the nominal shape of a budget.
    pub spec: ParitySpec,
    /// For `P%`: parity bytes allowed per data byte (`0.10` for `10%`); `None` for
    /// `ec:K+M`.
    pub budget: Option<f64>,
}

impl ParityRequest {
    /// Parse `10%`, `2.5%` or `ec:10+2` (see [`ParitySpec::parse`]).
    pub fn parse(text: &str) -> Result<ParityRequest, ParitySpecError> {
        let spec = ParitySpec::parse(text)?;
        let budget = text
            .trim()
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok())
            .map(|p| p / 100.0);
        Ok(ParityRequest { spec, budget })
    }

    /// Exactly `spec`, as `ec:K+M` asks.
    pub fn exact(spec: ParitySpec) -> ParityRequest {
        ParityRequest { spec, budget: None }
    }
}

impl fmt::Display for ParityRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.budget {
            Some(budget) => write!(f, "{}%", budget * 100.0),
            None => write!(f, "{}", self.spec),
        }
    }
}

/// Why parity could not be computed or a group could not be rebuilt. Every variant means
/// no shard was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParityError {
    /// More shards are lost than the group's parity covers.
    #[error("{lost} of {total} shards of the group are lost or damaged, parity covers {m}: the lost data cannot be rebuilt from parity; repair it from a source (--from)")]
    TooManyLost {
        /// Shards missing.
        lost: usize,
        /// Shards in the group (data + parity).
        total: usize,
        /// Parity shards in the group.
        m: usize,
    },
    /// A shard has a length the group does not allow.
    #[error("shard {index} is {len} bytes, the group's shard length is {shard_len}")]
    ShardSize {
        /// Shard index in the group.
        index: usize,
        /// Its length.
        len: usize,
        /// The group's shard length.
        shard_len: usize,
    },
    /// The shard counts or the shard length are not supported.
    #[error("unsupported group: {0}")]
    Unsupported(String),
}

/// The shard length of a group whose data shards have these lengths: the longest, rounded
/// up to an even number of bytes (at least 2).
pub fn shard_len_for(lengths: impl IntoIterator<Item = usize>) -> usize {
    let longest = lengths.into_iter().max().unwrap_or(0);
    (longest + (longest & 1)).max(2)
}

/// Compute `m` parity shards for `shards` (the group's data shards, in order). Data shards
/// are zero-padded to [`shard_len_for`] their lengths; each parity shard has that length.
pub fn encode_group(shards: &[&[u8]], m: usize) -> Result<Vec<Vec<u8>>, ParityError> {
    GroupCoder::new().encode(shards, m)
}

/// Rebuild the missing shards of a group in place.
///
/// `shards` holds the `k` data shards then the `m` parity shards; `None` marks a shard that
/// is lost or failed its hash check. Present data shards may be shorter than `shard_len`
/// (their unpadded length); present parity shards must be exactly `shard_len`. On success
/// every `None` is filled: rebuilt data shards are `shard_len` bytes (the caller truncates
/// them to their recorded length), rebuilt parity shards are recomputed. With more than `m`
/// shards missing nothing is changed and [`ParityError::TooManyLost`] is returned.
pub fn reconstruct(
    shards: &mut [Option<Vec<u8>>],
    k: usize,
    m: usize,
    shard_len: usize,
) -> Result<(), ParityError> {
    let present: Vec<Option<&[u8]>> = shards.iter().map(|s| s.as_deref()).collect();
    let rebuilt = GroupCoder::new().rebuild(&present, k, m, shard_len)?;
    for (index, bytes) in rebuilt {
        shards[index] = Some(bytes);
    }
    Ok(())
}

fn check_counts(k: usize, m: usize) -> Result<(), ParityError> {
    ParitySpec { k, m }
        .check()
        .map_err(ParityError::Unsupported)
}

fn unsupported(e: reed_solomon_simd::Error) -> ParityError {
    ParityError::Unsupported(e.to_string())
}

fn pad_into(buffer: &mut Vec<u8>, shard: &[u8], shard_len: usize) {
    buffer.clear();
    buffer.extend_from_slice(shard);
    buffer.resize(shard_len, 0);
}

/// Stripes passed to [`GroupCoder::encode_stripe`] start at multiples of this many bytes.
pub const STRIPE_ALIGN: usize = 64;

/// An encoder and decoder kept between groups, so their work buffers (several times a
/// shard) are allocated once per worker instead of once per group. [`encode_group`] and
/// [`reconstruct`] use a fresh one; a worker that codes many groups keeps its own.
#[derive(Default)]
pub struct GroupCoder {
    encoder: Option<ReedSolomonEncoder>,
    decoder: Option<ReedSolomonDecoder>,
    padded: Vec<u8>,
}

impl GroupCoder {
    /// A coder with nothing allocated yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`encode_group`], reusing this coder's buffers.
    pub fn encode(&mut self, shards: &[&[u8]], m: usize) -> Result<Vec<Vec<u8>>, ParityError> {
        check_counts(shards.len(), m)?;
        let shard_len = shard_len_for(shards.iter().map(|s| s.len()));
        self.encode_padded(shards, m, shard_len)
    }

    /// The parity of one stripe of a group: `pieces[i]` holds data shard `i`'s bytes in
    /// `[offset, offset + len)` (shorter, or empty, where that shard ends: zero-padded
    /// here), for `len` even and at least 2. The code works on 64-byte blocks
    /// independently, so stripes whose offsets are multiples of [`STRIPE_ALIGN`], laid end
    /// to end, give exactly the parity [`encode_group`] gives for the whole shards: a
    /// caller can compute a group's parity holding one stripe of each shard, not the
    /// shards.
    pub fn encode_stripe(
        &mut self,
        pieces: &[&[u8]],
        m: usize,
        len: usize,
    ) -> Result<Vec<Vec<u8>>, ParityError> {
        check_counts(pieces.len(), m)?;
        if len < 2 || !len.is_multiple_of(2) {
            return Err(ParityError::Unsupported(format!(
                "a stripe of {len} bytes (it must be even and at least 2)"
            )));
        }
        self.encode_padded(pieces, m, len)
    }

    /// Encode data shards of at most `shard_len` bytes, padded to it.
    fn encode_padded(
        &mut self,
        shards: &[&[u8]],
        m: usize,
        shard_len: usize,
    ) -> Result<Vec<Vec<u8>>, ParityError> {
        let k = shards.len();
        let encoder = match &mut self.encoder {
            Some(encoder) => {
                encoder.reset(k, m, shard_len).map_err(unsupported)?;
                encoder
            }
            slot => slot.insert(ReedSolomonEncoder::new(k, m, shard_len).map_err(unsupported)?),
        };
        for (index, shard) in shards.iter().enumerate() {
            if shard.len() == shard_len {
                encoder.add_original_shard(shard).map_err(unsupported)?;
            } else if shard.len() < shard_len {
                pad_into(&mut self.padded, shard, shard_len);
                encoder
                    .add_original_shard(&self.padded)
                    .map_err(unsupported)?;
            } else {
                return Err(ParityError::ShardSize {
                    index,
                    len: shard.len(),
                    shard_len,
                });
            }
        }
        let result = encoder.encode().map_err(unsupported)?;
        Ok(result.recovery_iter().map(<[u8]>::to_vec).collect())
    }

    /// Rebuild the missing shards of a group without copying the present ones: `shards` as
    /// for [`reconstruct`], borrowed. Returns `(index, bytes)` for every missing shard
    /// (data shards at `shard_len` bytes, to be truncated by the caller).
    pub fn rebuild(
        &mut self,
        shards: &[Option<&[u8]>],
        k: usize,
        m: usize,
        shard_len: usize,
    ) -> Result<Vec<(usize, Vec<u8>)>, ParityError> {
        check_counts(k, m)?;
        if shards.len() != k + m {
            return Err(ParityError::Unsupported(format!(
                "{} shards given for a group of {k} + {m}",
                shards.len()
            )));
        }
        if shard_len == 0 || !shard_len.is_multiple_of(2) {
            return Err(ParityError::Unsupported(format!(
                "shard length {shard_len} is not a positive even number"
            )));
        }
        for (index, shard) in shards.iter().enumerate() {
            if let Some(s) = shard {
                let bad = if index < k {
                    s.len() > shard_len
                } else {
                    s.len() != shard_len
                };
                if bad {
                    return Err(ParityError::ShardSize {
                        index,
                        len: s.len(),
                        shard_len,
                    });
                }
            }
        }
        let lost = shards.iter().filter(|s| s.is_none()).count();
        if lost > m {
            return Err(ParityError::TooManyLost {
                lost,
                total: k + m,
                m,
            });
        }
        let mut rebuilt: Vec<(usize, Vec<u8>)> = Vec::with_capacity(lost);
        if lost == 0 {
            return Ok(rebuilt);
        }
        if shards[..k].iter().any(Option::is_none) {
            let decoder = match &mut self.decoder {
                Some(decoder) => {
                    decoder.reset(k, m, shard_len).map_err(unsupported)?;
                    decoder
                }
                slot => slot.insert(ReedSolomonDecoder::new(k, m, shard_len).map_err(unsupported)?),
            };
            for (index, shard) in shards.iter().enumerate() {
                let Some(s) = shard else { continue };
                if index >= k {
                    decoder
                        .add_recovery_shard(index - k, s)
                        .map_err(unsupported)?;
                } else if s.len() == shard_len {
                    decoder.add_original_shard(index, s).map_err(unsupported)?;
                } else {
                    pad_into(&mut self.padded, s, shard_len);
                    decoder
                        .add_original_shard(index, &self.padded)
                        .map_err(unsupported)?;
                }
            }
            let result = decoder.decode().map_err(unsupported)?;
            for (index, shard) in shards[..k].iter().enumerate() {
                if shard.is_none() {
                    let data = result.restored_original(index).ok_or_else(|| {
                        ParityError::Unsupported(format!("decoder did not restore shard {index}"))
                    })?;
                    rebuilt.push((index, data.to_vec()));
                }
            }
        }
        if shards[k..].iter().any(Option::is_none) {
            let data: Vec<&[u8]> = (0..k)
                .map(|i| match shards[i] {
                    Some(s) => s,
                    None => rebuilt
                        .iter()
                        .find(|(j, _)| *j == i)
                        .map(|(_, b)| b.as_slice())
                        .unwrap_or_default(),
                })
                .collect();
            let mut coder = GroupCoder {
                encoder: self.encoder.take(),
                ..GroupCoder::default()
            };
            let parity = coder.encode_padded(&data, m, shard_len);
            self.encoder = coder.encoder;
            for (j, computed) in parity?.into_iter().enumerate() {
                if shards[k + j].is_none() {
                    rebuilt.push((k + j, computed));
                }
            }
        }
        Ok(rebuilt)
    }
}

/// Spreading a group's shards over storage locations: shard `i` (data shards first, then
/// parity) goes to location `i mod locations`.
pub fn location_of(shard: usize, locations: usize) -> usize {
    shard % locations.max(1)
}

/// The most shards of one group of `k + m` that share a location under [`location_of`]:
/// what losing one whole location loses, ⌈(k + m) / locations⌉.
pub fn max_shards_per_location(k: usize, m: usize, locations: usize) -> usize {
    (k + m).div_ceil(locations.max(1))
}

/// Whether losing any one location loses no more shards of a group than parity covers.
pub fn survives_location_loss(k: usize, m: usize, locations: usize) -> bool {
    max_shards_per_location(k, m, locations) <= m
}

/// The fewest locations for which losing one never loses data: ⌈(k + m) / m⌉.
pub fn min_locations(k: usize, m: usize) -> usize {
    (k + m).div_ceil(m.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, RngCore, SeedableRng};

    #[test]
    fn a_percentage_is_a_budget_and_ec_a_fixed_shape() {
        let r = ParityRequest::parse("10%").unwrap();
        assert_eq!(r.spec, ParitySpec { k: 20, m: 2 });
        assert_eq!(r.budget, Some(0.1));
        assert_eq!(r.to_string(), "10%");
        let r = ParityRequest::parse("ec:10+2").unwrap();
        assert_eq!(r, ParityRequest::exact(ParitySpec { k: 10, m: 2 }));
        assert_eq!(r.to_string(), "ec:10+2");
        assert!(ParityRequest::parse("0%").is_err());
    }

    #[test]
    fn parses_percentages_and_explicit_codes() {
        let p = |s: &str| ParitySpec::parse(s).unwrap();
        assert_eq!(p("10%"), ParitySpec { k: 20, m: 2 });
        assert_eq!(p("ec:10+2"), ParitySpec { k: 10, m: 2 });
        assert_eq!(p(" EC:4+1 "), ParitySpec { k: 4, m: 1 });
        assert_eq!(p("5%"), ParitySpec { k: 20, m: 1 });
        assert_eq!(p("12.5%"), ParitySpec { k: 20, m: 3 });
        assert_eq!(p("100%"), ParitySpec { k: 20, m: 20 });
        assert_eq!(p("1%"), ParitySpec { k: 100, m: 1 });
        assert_eq!(p("2.5%"), ParitySpec { k: 40, m: 1 });
        assert_eq!(p("0.01%"), ParitySpec { k: 1000, m: 1 });
        assert_eq!(p("ec:10+2").to_string(), "ec:10+2");
        assert!(p("10%").overhead() >= 0.1);
        for bad in [
            "",
            "10",
            "0%",
            "-5%",
            "101%",
            "abc%",
            "ec:",
            "ec:10",
            "ec:0+2",
            "ec:10+0",
            "ec:a+b",
            "ec:60000+10000",
            "rs:10+2",
        ] {
            let e = ParitySpec::parse(bad).unwrap_err();
            assert!(e.to_string().contains("valid:"), "{bad}: {e}");
        }
    }

    fn random_group(rng: &mut impl RngCore, k: usize, max_len: usize) -> Vec<Vec<u8>> {
        (0..k)
            .map(|_| {
                let mut v = vec![0u8; rng.random_range(0..=max_len)];
                rng.fill_bytes(&mut v);
                v
            })
            .collect()
    }

    #[test]
    fn uneven_shards_round_trip_with_every_single_loss() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let data = random_group(&mut rng, 7, 5000);
        let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
        let parity = encode_group(&refs, 3).unwrap();
        let shard_len = shard_len_for(data.iter().map(|d| d.len()));
        assert!(parity.iter().all(|p| p.len() == shard_len));
        for lost in 0..10 {
            let mut shards: Vec<Option<Vec<u8>>> = data
                .iter()
                .chain(parity.iter())
                .cloned()
                .map(Some)
                .collect();
            shards[lost] = None;
            reconstruct(&mut shards, 7, 3, shard_len).unwrap();
            let got = shards[lost].as_ref().unwrap();
            if lost < 7 {
                assert_eq!(&got[..data[lost].len()], &data[lost][..]);
                assert!(got[data[lost].len()..].iter().all(|&b| b == 0));
            } else {
                assert_eq!(got, &parity[lost - 7]);
            }
        }
    }

    #[test]
    fn parity_computed_stripe_by_stripe_equals_the_whole_groups() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for (k, m, max_len) in [(7, 3, 5000), (20, 2, 70_001), (3, 1, 130)] {
            let data = random_group(&mut rng, k, max_len);
            let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
            let whole = encode_group(&refs, m).unwrap();
            let shard_len = shard_len_for(data.iter().map(|d| d.len()));
            for stripe in [STRIPE_ALIGN, 4 * STRIPE_ALIGN, 1024 * STRIPE_ALIGN] {
                let mut coder = GroupCoder::new();
                let mut parity = vec![Vec::new(); m];
                for offset in (0..shard_len).step_by(stripe) {
                    let len = stripe.min(shard_len - offset);
                    let pieces: Vec<&[u8]> = data
                        .iter()
                        .map(|d| &d[offset.min(d.len())..(offset + len).min(d.len())])
                        .collect();
                    let out = coder.encode_stripe(&pieces, m, len).unwrap();
                    for (p, o) in parity.iter_mut().zip(out) {
                        p.extend_from_slice(&o);
                    }
                }
                assert_eq!(parity, whole, "k {k}, m {m}, stripe {stripe}");
            }
        }
        let mut coder = GroupCoder::new();
        let e = coder.encode_stripe(&[&[1u8, 2, 3][..]], 1, 3).unwrap_err();
        assert!(e.to_string().contains("must be even"), "{e}");
    }

    #[test]
    fn too_many_losses_change_nothing() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let data = random_group(&mut rng, 4, 300);
        let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
        let parity = encode_group(&refs, 2).unwrap();
        let shard_len = parity[0].len();
        let mut shards: Vec<Option<Vec<u8>>> = data
            .iter()
            .chain(parity.iter())
            .cloned()
            .map(Some)
            .collect();
        shards[0] = None;
        shards[3] = None;
        shards[5] = None;
        let before = shards.clone();
        let err = reconstruct(&mut shards, 4, 2, shard_len).unwrap_err();
        assert_eq!(
            err,
            ParityError::TooManyLost {
                lost: 3,
                total: 6,
                m: 2
            }
        );
        assert!(err.to_string().contains("--from"));
        assert_eq!(shards, before);
    }

    #[test]
    fn wrong_sizes_are_refused() {
        let mut shards = vec![Some(vec![1u8; 10]), Some(vec![2u8; 9]), None];
        assert!(matches!(
            reconstruct(&mut shards, 2, 1, 8),
            Err(ParityError::ShardSize { index: 0, .. })
        ));
        assert!(matches!(
            reconstruct(&mut shards, 2, 1, 9),
            Err(ParityError::Unsupported(_))
        ));
        assert!(encode_group(&[], 1).is_err());
    }

    #[test]
    fn placement_bounds_what_one_location_loses() {
        for k in 1..40 {
            for m in 1..8 {
                for locations in 1..50 {
                    let mut per = vec![0usize; locations];
                    for shard in 0..k + m {
                        per[location_of(shard, locations)] += 1;
                    }
                    let worst = per.iter().copied().max().unwrap();
                    assert_eq!(worst, max_shards_per_location(k, m, locations));
                    assert_eq!(survives_location_loss(k, m, locations), worst <= m);
                }
                let least = min_locations(k, m);
                assert!(survives_location_loss(k, m, least));
                assert!(least == 1 || !survives_location_loss(k, m, least - 1));
            }
        }
        // One location holds every shard: parity then covers lost objects, not the site.
        assert!(!survives_location_loss(20, 2, 1));
        assert_eq!(min_locations(20, 2), 11);
    }

    #[test]
    fn a_reused_coder_matches_fresh_ones_across_group_shapes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut coder = GroupCoder::new();
        for (k, m, max_len) in [
            (20, 2, 4000),
            (3, 1, 10),
            (7, 4, 9000),
            (20, 2, 100),
            (1, 3, 64),
        ] {
            let data = random_group(&mut rng, k, max_len);
            let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
            let parity = coder.encode(&refs, m).unwrap();
            assert_eq!(parity, encode_group(&refs, m).unwrap());
            let shard_len = parity[0].len();
            let mut present: Vec<Option<&[u8]>> = refs.iter().copied().map(Some).collect();
            present.extend(parity.iter().map(|p| Some(p.as_slice())));
            let lost: Vec<usize> = (0..k + m).step_by(((k + m) / m).max(1)).take(m).collect();
            for &i in &lost {
                present[i] = None;
            }
            let rebuilt = coder.rebuild(&present, k, m, shard_len).unwrap();
            assert_eq!(rebuilt.len(), lost.len());
            for (i, bytes) in rebuilt {
                let original: &[u8] = if i < k { &data[i] } else { &parity[i - k] };
                assert_eq!(&bytes[..original.len()], original, "k={k} m={m} shard {i}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_loss_within_parity_rebuilds_byte_identical(
            k in 1usize..12,
            m in 1usize..5,
            max_len in 1usize..3000,
            seed in any::<u64>(),
        ) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let data = random_group(&mut rng, k, max_len);
            let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
            let parity = encode_group(&refs, m).unwrap();
            let shard_len = shard_len_for(data.iter().map(|d| d.len()));
            let all: Vec<Vec<u8>> = data.iter().chain(parity.iter()).cloned().collect();
            let lost_count = rng.random_range(0..=m + 2).min(k + m);
            let mut order: Vec<usize> = (0..k + m).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            let mut shards: Vec<Option<Vec<u8>>> = all.iter().cloned().map(Some).collect();
            for &i in &order[..lost_count] {
                shards[i] = None;
            }
            let before = shards.clone();
            let result = reconstruct(&mut shards, k, m, shard_len);
            if lost_count <= m {
                prop_assert!(result.is_ok());
                for (i, original) in all.iter().enumerate() {
                    let got = shards[i].as_ref().unwrap();
                    prop_assert_eq!(&got[..original.len()], &original[..]);
                }
            } else {
                let is_too_many = matches!(result, Err(ParityError::TooManyLost { .. }));
                prop_assert!(is_too_many);
                prop_assert_eq!(shards, before);
            }
        }
    }
}
