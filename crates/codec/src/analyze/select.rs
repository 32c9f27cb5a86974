//! Choosing a codec and filter for a chunk from its [`Probe`].
//!
//! ## The end-to-end model
//!
//! A migration is a pipeline: `workers` cores compress chunks in parallel while the link
//! carries the compressed bytes. Whichever stage is slower sets the pace, so for a
//! candidate with predicted ratio `r` (raw / stored) and per-core throughput `s` (codec,
//! filter and BLAKE3 hash together), the rate at which *raw* bytes reach the destination
//! is
//!
//! ```text
//! rate = min(workers × s, link_rate × r)
//! ```
//!
//! [`Objective::LinkRate`] picks the candidate with the highest `rate` (storing raw is
//! always a candidate, with `r = 1`); within 2% of the best rate it prefers the higher
//! ratio, since the saving lasts beyond the transfer. On a fast link the cheapest codec
//! wins; on a slow one the strongest that keeps up. [`Objective::MaxRatio`] ignores time
//! and takes the smallest predicted output. [`Objective::Fixed`] takes the given codec.
//!
//! ## Speeds
//!
//! Per-core speeds come from [`SpeedTable`]: constants measured on this project's
//! reference machine (2-core x86-64, release build) over the compressible files of
//! `shared/data/scientific` in 4 MiB chunks (the `scientific` bench prints the measured
//! speeds next to these). They are deliberately constants, not timings taken per chunk:
//! selection must be deterministic and testable, and the ranking of codecs by speed is
//! stable across machines even where the absolute numbers are not. A deployment that
//! wants its own numbers builds a table with [`SpeedTable::with`].

use super::probe::{Probe, Trial};
use crate::compress::{Codec, CodecSpec, Filter};

/// What the selector optimises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// Maximise the end-to-end rate over a link of `bytes_per_sec`, with `workers` cores
    /// compressing in parallel.
    LinkRate {
        /// Link rate in bytes per second.
        bytes_per_sec: f64,
        /// Cores compressing chunks in parallel (at least 1).
        workers: u32,
    },
    /// Save the most space, whatever the time (`--codec max`).
    MaxRatio,
    /// Always this codec (`--codec zstd:19`); the filter is the given one or the probe's.
    Fixed {
        /// The codec.
        codec: Codec,
        /// The filter, or `None` to let the probe choose.
        filter: Option<Filter>,
    },
}

impl Objective {
    /// The link rate, in bytes per second, Strata assumes when none is given: 1 Gbit/s
    /// (125 MB/s), a long-distance research link, where compression pays.
    pub const DEFAULT_LINK_RATE: f64 = 125e6;

    /// The objective a `--codec` value asks for: `auto` becomes [`Objective::LinkRate`]
    /// with the given link rate and workers, `max` [`Objective::MaxRatio`], anything
    /// else [`Objective::Fixed`].
    pub fn from_spec(spec: CodecSpec, bytes_per_sec: f64, workers: u32) -> Objective {
        match spec {
            CodecSpec::Auto => Objective::link_rate(bytes_per_sec, workers),
            CodecSpec::Max => Objective::MaxRatio,
            CodecSpec::Fixed { codec, filter } => Objective::Fixed { codec, filter },
        }
    }

    /// [`Objective::LinkRate`] for `bytes_per_sec` and `workers` cores.
    pub fn link_rate(bytes_per_sec: f64, workers: u32) -> Objective {
        Objective::LinkRate {
            bytes_per_sec,
            workers: workers.max(1),
        }
    }
}

/// Predicted per-core throughput (MB/s of raw input) of each codec, plus the fixed costs
/// every chunk pays. See the module documentation for where the numbers come from.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedTable {
    entries: Vec<(Codec, f64)>,
    /// BLAKE3 hashing and framing, MB/s per core: the whole cost of storing raw.
    pub hash_mbps: f64,
    /// Byte shuffle, MB/s per core.
    pub shuffle_mbps: f64,
}

impl Default for SpeedTable {
    fn default() -> Self {
        let z = |level| Codec::Zstd { level, long: false };
        SpeedTable {
            entries: vec![
                (Codec::Lz4, 920.0),
                (z(-3), 1000.0),
                (z(1), 600.0),
                (z(3), 250.0),
                (z(6), 110.0),
                (z(9), 72.0),
                (z(12), 24.0),
                (z(15), 8.4),
                (z(19), 3.5),
                (z(22), 2.5),
                (Codec::Gzip { level: 6 }, 54.0),
                (Codec::Bzip2 { level: 9 }, 12.3),
                (Codec::Xz { level: 6 }, 2.6),
            ],
            hash_mbps: 3700.0,
            shuffle_mbps: 4000.0,
        }
    }
}

impl SpeedTable {
    /// The same table with `codec` at `mbps` per core.
    pub fn with(mut self, codec: Codec, mbps: f64) -> SpeedTable {
        self.entries.retain(|(c, _)| *c != codec);
        self.entries.push((codec, mbps));
        self
    }

    /// Per-core MB/s of the codec alone: the table entry, or for a level not in the table
    /// the nearest listed level of the same codec.
    pub fn codec_mbps(&self, codec: Codec) -> f64 {
        let key = |c: &Codec| match c {
            Codec::None => (0, 0),
            Codec::Lz4 => (1, 0),
            Codec::Zstd { level, .. } => (2, *level),
            Codec::Gzip { level } => (3, *level as i32),
            Codec::Bzip2 { level } => (4, *level as i32),
            Codec::Xz { level } => (5, *level as i32),
        };
        if codec == Codec::None {
            return f64::INFINITY;
        }
        let (kind, level) = key(&codec);
        self.entries
            .iter()
            .filter(|(c, _)| key(c).0 == kind)
            .min_by_key(|(c, _)| (key(c).1 - level).abs())
            .map_or(10.0, |(_, s)| *s)
    }

    /// Per-core MB/s for `codec` after `filter`, including hashing: the `s` of the model.
    pub fn mbps(&self, codec: Codec, filter: Filter) -> f64 {
        let mut secs_per_mb = 1.0 / self.hash_mbps + 1.0 / self.codec_mbps(codec);
        if filter != Filter::None {
            secs_per_mb += 1.0 / self.shuffle_mbps;
        }
        1.0 / secs_per_mb
    }
}

/// The selector's decision for one chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Codec to use.
    pub codec: Codec,
    /// Filter to apply first.
    pub filter: Filter,
    /// Predicted ratio, raw bytes / stored bytes (1.0 when stored raw).
    pub predicted_ratio: f64,
    /// Predicted throughput of one core, MB/s of raw input.
    pub predicted_mbps: f64,
    /// For [`Objective::LinkRate`], the predicted end-to-end rate in MB/s.
    pub predicted_rate_mbps: Option<f64>,
    /// Why, in words, for `strata inspect`.
    pub reason: String,
}

/// Choose a codec and filter for a probed chunk. The probe must have been made for the
/// same objective (it tries only the candidates that objective can pick).
pub fn select(probe: &Probe, objective: &Objective) -> Choice {
    select_with(probe, objective, &SpeedTable::default())
}

/// [`select`] with an explicit speed table.
pub fn select_with(probe: &Probe, objective: &Objective, speeds: &SpeedTable) -> Choice {
    let raw = |reason: String| Choice {
        codec: Codec::None,
        filter: Filter::None,
        predicted_ratio: 1.0,
        predicted_mbps: speeds.hash_mbps,
        predicted_rate_mbps: None,
        reason,
    };
    if let Some(why) = &probe.raw_reason {
        return raw(format!("{why}; stored raw"));
    }
    let described = |t: &Trial| format!("{}+{} {:.2}x", t.codec, t.filter, t.ratio);
    let choice = |t: &Trial, reason: String| Choice {
        codec: t.codec,
        filter: t.filter,
        predicted_ratio: t.ratio,
        predicted_mbps: speeds.mbps(t.codec, t.filter),
        predicted_rate_mbps: None,
        reason,
    };
    let context = probe.describe();
    match *objective {
        Objective::Fixed { codec, .. } => match probe
            .trials
            .iter()
            .filter(|t| t.codec == codec)
            .max_by(|a, b| a.ratio.total_cmp(&b.ratio))
        {
            Some(t) => choice(t, format!("{context}; fixed codec {}", described(t))),
            None => raw(format!("{context}; fixed codec {codec} not tried")),
        },
        Objective::MaxRatio => {
            let mut ranked: Vec<&Trial> = probe.trials.iter().collect();
            ranked.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
            match ranked.first() {
                Some(best) if best.ratio > 1.0 => {
                    let next = ranked
                        .get(1)
                        .map_or(String::new(), |t| format!(" (next: {})", described(t)));
                    choice(
                        best,
                        format!("{context}; max ratio: {}{next}", described(best)),
                    )
                }
                _ => raw(format!("{context}; no candidate shrinks it")),
            }
        }
        Objective::LinkRate {
            bytes_per_sec,
            workers,
        } => {
            let link = bytes_per_sec / 1e6;
            let w = workers.max(1) as f64;
            let rate = |t: &Trial| (w * speeds.mbps(t.codec, t.filter)).min(link * t.ratio);
            let raw_rate = (w * speeds.hash_mbps).min(link);
            let best_rate = probe.trials.iter().map(rate).fold(raw_rate, f64::max);
            // Among candidates within 2% of the best rate, take the best ratio.
            let pick = probe
                .trials
                .iter()
                .filter(|t| rate(t) >= best_rate * 0.98 && t.ratio > 1.0)
                .max_by(|a, b| a.ratio.total_cmp(&b.ratio));
            let link_txt = format!("{link:.0} MB/s link, {workers} workers");
            match pick {
                Some(t) => {
                    let mut c = choice(
                        t,
                        format!(
                            "{context}; {} gives {:.0} MB/s end to end on a {link_txt} \
                             (raw: {raw_rate:.0} MB/s)",
                            described(t),
                            rate(t)
                        ),
                    );
                    c.predicted_rate_mbps = Some(rate(t));
                    c
                }
                None => {
                    let mut c = raw(format!(
                        "{context}; raw is fastest end to end ({raw_rate:.0} MB/s on a {link_txt})"
                    ));
                    c.predicted_rate_mbps = Some(raw_rate);
                    c
                }
            }
        }
    }
}
