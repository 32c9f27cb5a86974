//! The per-chunk probe: cheap facts and small trials that predict how each candidate
//! codec would do on the whole chunk.
//!
//! In order, stopping as soon as the answer is known:
//!
//! 1. A format compressed as a whole (BAM, gzip, JPEG, ...) passes raw: no trial.
//! 2. A sample ([`ProbeConfig::sample_len`] bytes in 16 pieces spread over the chunk) has
//!    the byte entropy of each piece measured. Pieces within
//!    [`ProbeConfig::raw_entropy_margin`] of what random bytes show (about 7.9 bits/byte
//!    for 4 KiB) are incompressible: if all are, the chunk passes raw (random data,
//!    compressed streams inside other formats); otherwise they are left out of the trials
//!    and counted as stored 1:1, so that a chunk that mixes compressed baskets with plain
//!    metadata (ROOT, HDF5 with gzip) is predicted by its share of plain bytes.
//! 3. The filter: the sample is compressed with a fast codec (zstd:1) unshuffled and
//!    shuffled at the width the header gives, or at 2, 4 and 8 when it gives none. The
//!    smallest result names the element width. If even the best saves less than
//!    [`ProbeConfig::min_saving`] the chunk passes raw (for [`Objective::LinkRate`]).
//! 4. Trials: the sample is compressed with each candidate codec the objective could
//!    pick, giving a predicted ratio. For [`Objective::LinkRate`] the candidates are tried
//!    from fastest to slowest and the search stops at the first one whose best possible
//!    rate (`workers × speed`) cannot beat the best rate already found, so a fast link
//!    never pays for an xz trial. Strong codecs (zstd ≥ 12, bzip2, xz) are tried on a
//!    longer sample ([`ProbeConfig::strong_sample_len`], 4 pieces of 64 KiB): they model
//!    far more context than a 4 KiB piece holds, and on short pieces under-predicted whole
//!    chunks by up to a third (bzip2 on a NetCDF grid: 1.81x predicted, 2.69x actual),
//!    which made the selector pass over its best candidate. Every codec but the fast one
//!    also tries the fast trial's runner-up filter, since zstd:1 ranks filters only
//!    roughly for stronger coders, and strong codecs try the unshuffled bytes too, since a
//!    strong coder sometimes models the interleaved bytes better than the shuffled planes.
//!    [`Objective::MaxRatio`] follows the same rule: it used to try every filter with every
//!    strong codec (up to 12 trials of 256 KiB per chunk); together with fewer full
//!    encodings ([`super::report::MAX_FINALISTS`]) the output of `--codec max` on the
//!    scientific data set grew by 0.1% (docs/BENCHMARKS.md, issue 13).

use super::entropy::{byte_entropy, spread_sample};
use super::format::FormatInfo;
use super::select::{Objective, SpeedTable};
use crate::compress::{Codec, Filter, SHUFFLE_WIDTHS};

/// Probe settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    /// Bytes sampled from the chunk for entropy and trials.
    pub sample_len: usize,
    /// Number of pieces the sample is taken in, spread over the chunk.
    pub sample_pieces: usize,
    /// A sample piece whose entropy is within this margin (bits/byte) of what random bytes
    /// of its length show counts as incompressible; a chunk whose pieces all do passes
    /// raw without trials.
    pub raw_entropy_margin: f64,
    /// Smallest saving (fraction) the fast trial must show for a link-rate objective to
    /// try codecs at all.
    pub min_saving: f64,
    /// Bytes sampled for the trials of strong codecs (zstd ≥ 12, bzip2, xz), which model
    /// far more context than a 4 KiB piece holds: their ratio on short pieces badly
    /// under-predicts the whole chunk.
    pub strong_sample_len: usize,
    /// Number of pieces of the strong codecs' sample.
    pub strong_sample_pieces: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            sample_len: 64 * 1024,
            sample_pieces: 16,
            raw_entropy_margin: 0.05,
            min_saving: 0.01,
            strong_sample_len: 256 * 1024,
            strong_sample_pieces: 4,
        }
    }
}

/// Where the chosen element width came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WidthSource {
    /// The file header declares it (FITS BITPIX, NetCDF variable type, NPY dtype).
    Header,
    /// Trial shuffles on the sample found it.
    Trial,
    /// No shuffle helps.
    None,
}

/// A candidate and its prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trial {
    /// Codec tried.
    pub codec: Codec,
    /// Filter applied first.
    pub filter: Filter,
    /// Sample bytes / compressed sample bytes.
    pub ratio: f64,
}

/// What the probe learned about one chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Chunk length.
    pub len: usize,
    /// Detected file format (of the file the chunk belongs to).
    pub format: super::Format,
    /// Byte entropy of the sample, bits/byte.
    pub entropy: f64,
    /// The filter the fast trial preferred.
    pub filter: Filter,
    /// Where the filter's element width came from.
    pub width_source: WidthSource,
    /// Set when the chunk should pass raw, with the reason.
    pub raw_reason: Option<String>,
    /// Predictions for the candidates tried.
    pub trials: Vec<Trial>,
}

impl Probe {
    /// One line: format, entropy and filter, as the start of a [`super::Choice`] reason.
    pub fn describe(&self) -> String {
        let width = match (self.filter, self.width_source) {
            (Filter::Shuffle { width }, WidthSource::Header) => {
                format!("element width {width} from header")
            }
            (Filter::Shuffle { width }, _) => format!("element width {width} by trial"),
            (_, WidthSource::Header) => "header width not worth shuffling".into(),
            _ => "no shuffle helps".into(),
        };
        format!(
            "{}, entropy {:.2} bits/byte, {width}",
            self.format, self.entropy
        )
    }
}

/// Probe `chunk`, which starts at byte `offset` of a file of format `format`, for
/// `objective`, with the default configuration and speed table.
pub fn probe(chunk: &[u8], offset: u64, format: &FormatInfo, objective: &Objective) -> Probe {
    probe_with(
        chunk,
        offset,
        format,
        objective,
        &ProbeConfig::default(),
        &SpeedTable::default(),
    )
}

/// The codecs each objective considers, fastest first.
pub fn candidates(objective: &Objective) -> Vec<Codec> {
    let z = |level| Codec::Zstd { level, long: false };
    match *objective {
        Objective::Fixed { codec, .. } => vec![codec],
        Objective::MaxRatio => vec![z(19), Codec::Bzip2 { level: 9 }, Codec::Xz { level: 6 }],
        Objective::LinkRate { .. } => vec![
            z(-3),
            Codec::Lz4,
            z(1),
            z(3),
            z(6),
            z(9),
            z(12),
            Codec::Bzip2 { level: 9 },
            z(19),
            Codec::Xz { level: 6 },
        ],
    }
}

/// The byte entropy that `n` uniformly random bytes show on average: slightly below 8,
/// because a short sample cannot fill all 256 symbols evenly (Miller-Madow bias).
pub fn random_entropy(n: usize) -> f64 {
    8.0 - 255.0 / (2.0 * n.max(1) as f64 * std::f64::consts::LN_2)
}

/// [`probe`] with explicit settings.
pub fn probe_with(
    chunk: &[u8],
    offset: u64,
    format: &FormatInfo,
    objective: &Objective,
    config: &ProbeConfig,
    speeds: &SpeedTable,
) -> Probe {
    let sample = spread_sample(chunk, config.sample_len, config.sample_pieces);
    let mut p = Probe {
        len: chunk.len(),
        format: format.format,
        entropy: byte_entropy(&sample),
        filter: Filter::None,
        width_source: WidthSource::None,
        raw_reason: None,
        trials: Vec::new(),
    };
    let fixed = match *objective {
        Objective::Fixed { codec, filter } => Some((codec, filter)),
        _ => None,
    };
    if let Some((Codec::None, _)) = fixed {
        p.raw_reason = Some("fixed codec none".into());
        return p;
    }
    let (kept, plain_share) = plain_part(&sample, config.sample_pieces, config);
    let predict = |sample_ratio: f64| 1.0 / ((1.0 - plain_share) + plain_share / sample_ratio);
    if fixed.is_none() {
        if chunk.len() < 64 {
            p.raw_reason = Some(format!("{} bytes: too small to gain", chunk.len()));
            return p;
        }
        if let Some(why) = format.format.compressed_inside() {
            p.raw_reason = Some(why.to_string());
            return p;
        }
        if kept.is_empty() {
            p.raw_reason = Some(format!(
                "{}, entropy {:.2} bits/byte: incompressible",
                format.format, p.entropy
            ));
            return p;
        }
    }
    let sample = if kept.is_empty() {
        &sample[..]
    } else {
        &kept[..]
    };

    // The filter, by fast trials.
    let fast = Codec::Zstd {
        level: 1,
        long: false,
    };
    let header_width = format.width_at(offset, chunk.len() as u64);
    let widths: Vec<u8> = match header_width {
        Some(w) if SHUFFLE_WIDTHS.contains(&w) => vec![w],
        Some(_) => vec![],
        None => SHUFFLE_WIDTHS.to_vec(),
    };
    let mut filters = vec![Filter::None];
    filters.extend(widths.iter().map(|&width| Filter::Shuffle { width }));
    let size = |codec: Codec, filter: Filter| compressed_len(codec, filter, sample);
    let fast_sizes: Vec<(Filter, usize)> = match fixed {
        Some((_, Some(f))) => vec![(f, size(fast, f))],
        _ => filters.iter().map(|&f| (f, size(fast, f))).collect(),
    };
    let &(filter, fast_size) = fast_sizes
        .iter()
        .min_by_key(|(_, s)| *s)
        .expect("at least one filter");
    // zstd:1 ranks filters only roughly for the stronger codecs (on 8-byte floats it
    // preferred no shuffle, 2.54x, where zstd:3 makes 2.81x shuffled and 2.27x not), so
    // those also try the runner-up.
    let runner_up = fast_sizes
        .iter()
        .filter(|(f, _)| *f != filter)
        .min_by_key(|(_, s)| *s)
        .map(|(f, _)| *f);
    p.filter = filter;
    p.width_source = match (filter, header_width) {
        (_, Some(_)) => WidthSource::Header,
        (Filter::None, None) => WidthSource::None,
        (_, None) => WidthSource::Trial,
    };
    let fast_ratio = predict(sample.len() as f64 / fast_size as f64);
    let link = matches!(objective, Objective::LinkRate { .. });
    if link && fast_ratio < 1.0 / (1.0 - config.min_saving) {
        p.raw_reason = Some(format!(
            "{}, entropy {:.2} bits/byte: {fast} saves {:.1}% of a sample: incompressible",
            format.format,
            p.entropy,
            (1.0 - 1.0 / fast_ratio) * 100.0
        ));
        return p;
    }

    // Strong codecs are tried on a longer sample, taken only if one is tried.
    let long = std::cell::OnceCell::new();
    let long_sample = || {
        long.get_or_init(|| {
            let sample =
                spread_sample(chunk, config.strong_sample_len, config.strong_sample_pieces);
            plain_part(&sample, config.strong_sample_pieces, config)
        })
    };

    // Trials of the candidates, pruned by the best rate already reachable.
    let strong = |c: Codec| match c {
        Codec::Zstd { level, .. } => level >= 12,
        Codec::Bzip2 { .. } | Codec::Xz { .. } => true,
        _ => false,
    };
    let mut best_rate = 0.0f64;
    let mut order = candidates(objective);
    order.sort_by(|a, b| speeds.codec_mbps(*b).total_cmp(&speeds.codec_mbps(*a)));
    for codec in order {
        if let Objective::LinkRate {
            bytes_per_sec,
            workers,
        } = *objective
        {
            let ceiling = workers.max(1) as f64 * speeds.mbps(codec, filter);
            if ceiling <= best_rate {
                break;
            }
            let raw_rate = (workers.max(1) as f64 * speeds.hash_mbps).min(bytes_per_sec / 1e6);
            best_rate = best_rate.max(raw_rate);
        }
        let mut tries: Vec<Filter> = match fixed {
            Some((_, Some(f))) => vec![f],
            _ => vec![filter],
        };
        if codec != fast && !matches!(fixed, Some((_, Some(_)))) {
            if let Some(second) = runner_up {
                tries.push(second);
            }
            if strong(codec) && filter != Filter::None && runner_up != Some(Filter::None) {
                tries.push(Filter::None);
            }
        }
        for f in tries {
            let ratio = if codec == fast && f == filter {
                fast_ratio
            } else if strong(codec) {
                let (long, share) = long_sample();
                let long: &[u8] = if long.is_empty() { sample } else { long };
                let n = compressed_len(codec, f, long);
                1.0 / ((1.0 - share) + share * n as f64 / long.len() as f64)
            } else {
                predict(sample.len() as f64 / size(codec, f) as f64)
            };
            if let Objective::LinkRate {
                bytes_per_sec,
                workers,
            } = *objective
            {
                let rate = (workers.max(1) as f64 * speeds.mbps(codec, f))
                    .min(bytes_per_sec / 1e6 * ratio);
                best_rate = best_rate.max(rate);
            }
            p.trials.push(Trial {
                codec,
                filter: f,
                ratio,
            });
        }
    }
    p
}

/// Bytes `codec` makes of `sample` after `filter`: at most the sample's length (a codec
/// that fails or grows it counts as storing it raw), at least 1.
fn compressed_len(codec: Codec, filter: Filter, sample: &[u8]) -> usize {
    codec
        .compress(&filter.apply(sample))
        .map_or(sample.len(), |z| z.len().min(sample.len()))
        .max(1)
}

/// The part of `sample` (taken in `pieces` pieces) that does not look random, and its
/// share of the sample. Pieces that look random are left out of the trials and counted
/// as stored 1:1, so that a chunk mixing compressed and plain regions is predicted by its
/// plain part.
fn plain_part(sample: &[u8], pieces: usize, config: &ProbeConfig) -> (Vec<u8>, f64) {
    let piece_len = (sample.len() / pieces.max(1)) & !63;
    let kept: Vec<u8> = if piece_len >= 1024 {
        let limit = random_entropy(piece_len) - config.raw_entropy_margin;
        sample
            .chunks(piece_len)
            .filter(|piece| byte_entropy(piece) < limit)
            .flatten()
            .copied()
            .collect()
    } else if byte_entropy(sample) < random_entropy(sample.len()) - config.raw_entropy_margin {
        sample.to_vec()
    } else {
        Vec::new()
    };
    let share = kept.len() as f64 / sample.len().max(1) as f64;
    (kept, share)
}
