//! Per-object access statistics: what the tiering rules look at, kept small and updated in
//! O(1) without allocating, because every access of every object goes through
//! [`AccessStats::record`] (the ingest budget is a few hundred nanoseconds per event).
//!
//! Owned here:
//! - windowed counts (last hour at 5-minute resolution, last 24 hours at hourly resolution,
//!   last 7 days at daily resolution) in fixed ring buffers of counters;
//! - two exponentially decayed event counts, a fast one and a slow one ([`Decay`]), whose
//!   ratio is the spike signal (recent rate against the object's own baseline);
//! - first and last access, a moving average of the inter-arrival time, and totals;
//! - the last write, kept apart: a write is no sign of demand, so writes count in the totals
//!   and the last write only, never in the windows, rates or last access that make an object
//!   hot (a new object would otherwise look hot until `hot_within` passes);
//! - the persisted form ([`PersistedStats`], format version [`STATS_FORMAT_VERSION`]) that the
//!   catalog stores so a restart keeps the history.
//!
//! Time is passed in (milliseconds since the Unix epoch), never read from a clock, so that
//! every result is reproducible. Late (out-of-order) events count into the bucket they
//! belong to while it is still kept, and into the decayed counts with their age discounted;
//! nothing here panics or goes negative, whatever the timestamps.

use serde::{Deserialize, Serialize};

use crate::units::{DAY_MS, HOUR_MS, MINUTE_MS};

/// Version of [`PersistedStats`]. A reader of version N must keep reading every older
/// version. Version 2 added `last_write_ms` and counts only reads as accesses; version 1
/// counted writes as accesses too (see [`AccessStats::from_persisted`]).
pub const STATS_FORMAT_VERSION: u32 = 2;

/// Weight of the newest gap in the inter-arrival moving average.
const GAP_EWMA_WEIGHT: f64 = 0.2;

/// Kind of access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The object's bytes were read. The only kind of access that counts toward heat.
    Read,
    /// The object was written (created or replaced). Counted in the totals and as the last
    /// write only: a write says nothing about how often the object will be read.
    Write,
    /// The object was deleted. Counted in the totals only: a delete is no sign of demand.
    Delete,
}

/// The two half-lives of the decayed event counts, with the constants derived from them.
///
/// A decayed count `S` gains 1 per event and halves every half-life, so an object accessed
/// steadily `r` times an hour settles at `S = r × H / ln 2`; [`Decay`] turns `S` back into
/// events per hour. The fast count follows bursts; the slow one is the object's baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decay {
    fast_half_life_ms: i64,
    slow_half_life_ms: i64,
    fast_per_ms: f64,
    slow_per_ms: f64,
}

impl Decay {
    /// Half-lives in milliseconds; each is clamped to at least one second.
    pub fn new(fast_half_life_ms: i64, slow_half_life_ms: i64) -> Self {
        let fast = fast_half_life_ms.max(1_000);
        let slow = slow_half_life_ms.max(1_000);
        Decay {
            fast_half_life_ms: fast,
            slow_half_life_ms: slow,
            fast_per_ms: std::f64::consts::LN_2 / fast as f64,
            slow_per_ms: std::f64::consts::LN_2 / slow as f64,
        }
    }

    /// The fast half-life in milliseconds.
    pub fn fast_half_life_ms(&self) -> i64 {
        self.fast_half_life_ms
    }

    /// The slow half-life in milliseconds.
    pub fn slow_half_life_ms(&self) -> i64 {
        self.slow_half_life_ms
    }
}

impl Default for Decay {
    /// One hour fast, 24 hours slow.
    fn default() -> Self {
        Decay::new(HOUR_MS, DAY_MS)
    }
}

/// `2^(-age / half_life)` as `exp(-age × ln2 / half_life)`; ages ≤ 0 give 1.
#[inline]
fn decay_factor(age_ms: i64, per_ms: f64) -> f64 {
    if age_ms <= 0 {
        1.0
    } else {
        (-(age_ms as f64) * per_ms).exp()
    }
}

/// A ring of `N` counters, each covering `WIDTH_MS`; the newest bucket is the one holding
/// the object's last access. Counters saturate instead of wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ring<const N: usize, const WIDTH_MS: i64> {
    counts: [u32; N],
}

impl<const N: usize, const WIDTH_MS: i64> Ring<N, WIDTH_MS> {
    const EMPTY: Self = Ring { counts: [0; N] };

    #[inline]
    fn bucket(ts_ms: i64) -> i64 {
        ts_ms.div_euclid(WIDTH_MS)
    }

    #[inline]
    fn slot(bucket: i64) -> usize {
        bucket.rem_euclid(N as i64) as usize
    }

    /// Moves the newest bucket from `head_ms`'s to `new_ms`'s (`new_ms >= head_ms`),
    /// clearing the buckets that fall out of the ring.
    #[inline]
    fn advance(&mut self, head_ms: i64, new_ms: i64) {
        let (old, new) = (Self::bucket(head_ms), Self::bucket(new_ms));
        let gap = new.saturating_sub(old);
        if gap <= 0 {
            return;
        }
        if gap >= N as i64 {
            self.counts = [0; N];
        } else {
            for bucket in old + 1..=new {
                self.counts[Self::slot(bucket)] = 0;
            }
        }
    }

    /// Counts one event at `ts_ms` when its bucket is still kept (`ts_ms <= head_ms`).
    #[inline]
    fn add(&mut self, head_ms: i64, ts_ms: i64) {
        let (head, bucket) = (Self::bucket(head_ms), Self::bucket(ts_ms));
        if head.saturating_sub(bucket) < N as i64 {
            let slot = &mut self.counts[Self::slot(bucket)];
            *slot = slot.saturating_add(1);
        }
    }

    /// Events in the `N` buckets ending with `now_ms`'s bucket, given the newest kept bucket
    /// is `head_ms`'s.
    fn sum(&self, head_ms: i64, now_ms: i64) -> u64 {
        let (head, now) = (Self::bucket(head_ms), Self::bucket(now_ms));
        let span = N as i64 - 1;
        let low = head.saturating_sub(span).max(now.saturating_sub(span));
        let high = head.min(now);
        if low > high {
            return 0;
        }
        // At most N consecutive buckets: one run of slots, or two when it wraps around the
        // ring's end (summed as slices rather than slot by slot: classification sums three
        // rings per look, and `strata eval` looks millions of times).
        let start = Self::slot(low);
        let len = (high - low + 1) as usize;
        let (tail, wrapped) = if start + len <= N {
            (&self.counts[start..start + len], &self.counts[..0])
        } else {
            (&self.counts[start..], &self.counts[..start + len - N])
        };
        tail.iter().chain(wrapped).map(|&c| u64::from(c)).sum()
    }
}

type Last5Min = Ring<12, { 5 * MINUTE_MS }>;
type Hourly = Ring<24, HOUR_MS>;
type Daily = Ring<7, DAY_MS>;

/// Access statistics of one object. `Copy`, about 300 bytes, no heap.
///
/// Reads are *accesses*: they count in the windows, the decayed rates, first and last
/// access and the inter-arrival time. Writes count in [`AccessStats::writes`], the bytes
/// written and [`AccessStats::last_write_ms`]; deletes only in [`AccessStats::deletes`].
/// Window counts are read at a given time with [`AccessStats::summary`] or the `count_*`
/// methods, because a window slides even when no event comes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccessStats {
    accesses: u64,
    first_seen_ms: i64,
    last_access_ms: i64,
    reads: u64,
    writes: u64,
    deletes: u64,
    bytes_read: u64,
    bytes_written: u64,
    /// The newest write (meaningful once `writes > 0`).
    last_write_ms: i64,
    /// Decayed counts as of `last_access_ms`.
    fast: f64,
    slow: f64,
    /// Moving average of the gap between in-order accesses; meaningful once `gaps > 0`.
    mean_gap_ms: f64,
    /// In-order gaps averaged so far (saturating).
    gaps: u32,
    last_hour: Last5Min,
    last_day: Hourly,
    last_week: Daily,
}

impl Default for AccessStats {
    fn default() -> Self {
        AccessStats::new()
    }
}

/// Plain numbers describing an object's accesses as of one instant: what classification
/// reads and what `strata explain` and the HTTP API show.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessSummary {
    /// The instant the numbers describe (ms since the Unix epoch).
    pub now_ms: i64,
    /// Accesses in the last hour (5-minute resolution: 55 to 60 minutes).
    pub count_1h: u64,
    /// Accesses in the last 24 hours (hourly resolution: 23 to 24 hours).
    pub count_24h: u64,
    /// Accesses in the last 7 days (daily resolution: 6 to 7 days).
    pub count_7d: u64,
    /// Recent rate, events per hour, from the fast decayed count.
    pub fast_rate_per_hour: f64,
    /// Baseline rate, events per hour, from the slow decayed count.
    pub slow_rate_per_hour: f64,
    /// Last read, if any.
    pub last_access_ms: Option<i64>,
    /// `now_ms - last_access_ms`, never negative.
    pub last_access_age_ms: Option<i64>,
    /// First read, if any.
    pub first_seen_ms: Option<i64>,
    /// Last write, if any.
    #[serde(default)]
    pub last_write_ms: Option<i64>,
    /// `now_ms - last_write_ms`, never negative.
    #[serde(default)]
    pub last_write_age_ms: Option<i64>,
    /// Moving average of the time between accesses, once there were two.
    pub mean_interarrival_ms: Option<f64>,
    /// Accesses ever recorded: reads (and, in statistics kept before format version 2,
    /// writes).
    pub accesses: u64,
    /// Reads ever recorded.
    pub reads: u64,
    /// Writes ever recorded.
    pub writes: u64,
    /// Deletes ever recorded.
    pub deletes: u64,
    /// Bytes read, summed over reads.
    pub bytes_read: u64,
    /// Bytes written, summed over writes.
    pub bytes_written: u64,
}

impl AccessSummary {
    /// The summary of an object with no recorded access (a key the tracker does not know).
    pub fn never_accessed(now_ms: i64) -> Self {
        AccessStats::new().summary(&Decay::default(), now_ms)
    }
}

impl AccessStats {
    /// Statistics of an object never accessed.
    pub const fn new() -> Self {
        AccessStats {
            accesses: 0,
            first_seen_ms: 0,
            last_access_ms: 0,
            reads: 0,
            writes: 0,
            deletes: 0,
            bytes_read: 0,
            bytes_written: 0,
            last_write_ms: 0,
            fast: 0.0,
            slow: 0.0,
            mean_gap_ms: 0.0,
            gaps: 0,
            last_hour: Last5Min::EMPTY,
            last_day: Hourly::EMPTY,
            last_week: Daily::EMPTY,
        }
    }

    /// Records one access. O(1), allocation-free, total: any timestamp is accepted.
    ///
    /// An event older than the last access (late delivery) counts into its own bucket when
    /// that bucket is still kept, and into the decayed counts with its age discounted; it
    /// does not move the last access back nor feed the inter-arrival average.
    #[inline]
    pub fn record(&mut self, decay: &Decay, ts_ms: i64, op: Op, bytes: u64) {
        match op {
            Op::Read => {
                self.reads = self.reads.saturating_add(1);
                self.bytes_read = self.bytes_read.saturating_add(bytes);
            }
            Op::Write => {
                self.last_write_ms = if self.writes == 0 {
                    ts_ms
                } else {
                    self.last_write_ms.max(ts_ms)
                };
                self.writes = self.writes.saturating_add(1);
                self.bytes_written = self.bytes_written.saturating_add(bytes);
                return;
            }
            Op::Delete => {
                self.deletes = self.deletes.saturating_add(1);
                return;
            }
        }
        if self.accesses == 0 {
            self.accesses = 1;
            self.first_seen_ms = ts_ms;
            self.last_access_ms = ts_ms;
            self.fast = 1.0;
            self.slow = 1.0;
            self.last_hour.add(ts_ms, ts_ms);
            self.last_day.add(ts_ms, ts_ms);
            self.last_week.add(ts_ms, ts_ms);
            return;
        }
        self.accesses = self.accesses.saturating_add(1);
        self.first_seen_ms = self.first_seen_ms.min(ts_ms);
        let head = self.last_access_ms;
        if ts_ms >= head {
            let age = ts_ms.saturating_sub(head);
            self.fast = self.fast * decay_factor(age, decay.fast_per_ms) + 1.0;
            self.slow = self.slow * decay_factor(age, decay.slow_per_ms) + 1.0;
            let gap = age as f64;
            self.mean_gap_ms = if self.gaps == 0 {
                gap
            } else {
                self.mean_gap_ms + GAP_EWMA_WEIGHT * (gap - self.mean_gap_ms)
            };
            self.gaps = self.gaps.saturating_add(1);
            self.last_hour.advance(head, ts_ms);
            self.last_day.advance(head, ts_ms);
            self.last_week.advance(head, ts_ms);
            self.last_access_ms = ts_ms;
        } else {
            let late_by = head.saturating_sub(ts_ms);
            self.fast += decay_factor(late_by, decay.fast_per_ms);
            self.slow += decay_factor(late_by, decay.slow_per_ms);
        }
        let head = self.last_access_ms;
        self.last_hour.add(head, ts_ms);
        self.last_day.add(head, ts_ms);
        self.last_week.add(head, ts_ms);
    }

    /// Accesses (reads) ever recorded.
    pub fn accesses(&self) -> u64 {
        self.accesses
    }

    /// Deletes ever recorded.
    pub fn deletes(&self) -> u64 {
        self.deletes
    }

    /// The last read, if any.
    pub fn last_access_ms(&self) -> Option<i64> {
        (self.accesses > 0).then_some(self.last_access_ms)
    }

    /// The last write, if any.
    pub fn last_write_ms(&self) -> Option<i64> {
        (self.writes > 0).then_some(self.last_write_ms)
    }

    /// The first read, if any.
    pub fn first_seen_ms(&self) -> Option<i64> {
        (self.accesses > 0).then_some(self.first_seen_ms)
    }

    /// Accesses in the last hour as of `now_ms` (5-minute resolution).
    pub fn count_1h(&self, now_ms: i64) -> u64 {
        self.window_sum(|s| s.last_hour.sum(s.last_access_ms, now_ms))
    }

    /// Accesses in the last 24 hours as of `now_ms` (hourly resolution).
    pub fn count_24h(&self, now_ms: i64) -> u64 {
        self.window_sum(|s| s.last_day.sum(s.last_access_ms, now_ms))
    }

    /// Accesses in the last 7 days as of `now_ms` (daily resolution).
    pub fn count_7d(&self, now_ms: i64) -> u64 {
        self.window_sum(|s| s.last_week.sum(s.last_access_ms, now_ms))
    }

    fn window_sum(&self, sum: impl Fn(&Self) -> u64) -> u64 {
        if self.accesses == 0 {
            0
        } else {
            sum(self)
        }
    }

    /// Recent and baseline rates (events per hour) as of `now_ms`. A `now_ms` before the
    /// last access reads the rates at the last access.
    pub fn rates_per_hour(&self, decay: &Decay, now_ms: i64) -> (f64, f64) {
        if self.accesses == 0 {
            return (0.0, 0.0);
        }
        let age = now_ms.saturating_sub(self.last_access_ms);
        let hour = HOUR_MS as f64;
        (
            self.fast * decay_factor(age, decay.fast_per_ms) * decay.fast_per_ms * hour,
            self.slow * decay_factor(age, decay.slow_per_ms) * decay.slow_per_ms * hour,
        )
    }

    /// All the numbers as of `now_ms`.
    pub fn summary(&self, decay: &Decay, now_ms: i64) -> AccessSummary {
        let (fast, slow) = self.rates_per_hour(decay, now_ms);
        let last = self.last_access_ms();
        let written = self.last_write_ms();
        let age = |at: i64| now_ms.saturating_sub(at).max(0);
        AccessSummary {
            now_ms,
            count_1h: self.count_1h(now_ms),
            count_24h: self.count_24h(now_ms),
            count_7d: self.count_7d(now_ms),
            fast_rate_per_hour: fast,
            slow_rate_per_hour: slow,
            last_access_ms: last,
            last_access_age_ms: last.map(age),
            first_seen_ms: self.first_seen_ms(),
            last_write_ms: written,
            last_write_age_ms: written.map(age),
            mean_interarrival_ms: (self.gaps > 0).then_some(self.mean_gap_ms),
            accesses: self.accesses,
            reads: self.reads,
            writes: self.writes,
            deletes: self.deletes,
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
        }
    }

    /// The persisted form, recording the half-lives the decayed counts were kept with.
    pub fn to_persisted(&self, decay: &Decay) -> PersistedStats {
        PersistedStats {
            v: STATS_FORMAT_VERSION,
            fast_half_life_ms: decay.fast_half_life_ms,
            slow_half_life_ms: decay.slow_half_life_ms,
            accesses: self.accesses,
            first_seen_ms: self.first_seen_ms,
            last_access_ms: self.last_access_ms,
            reads: self.reads,
            writes: self.writes,
            deletes: self.deletes,
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
            last_write_ms: self.last_write_ms(),
            fast: self.fast,
            slow: self.slow,
            mean_gap_ms: self.mean_gap_ms,
            gaps: self.gaps,
            last_hour: self.last_hour.counts,
            last_day: self.last_day.counts,
            last_week: self.last_week.counts,
        }
    }

    /// Rebuilds statistics from their persisted form. Decayed counts kept with other
    /// half-lives than `decay`'s are rescaled so the rates they stand for are unchanged.
    ///
    /// Version 1 counted writes as accesses. Where a version-1 row has no read, all its
    /// accesses were writes: they become the last write, and the object has no access.
    /// Where it has reads too, the two cannot be told apart; the writes' weight fades as the
    /// windows slide and the rates decay.
    pub fn from_persisted(p: &PersistedStats, decay: &Decay) -> Result<Self, StatsDecodeError> {
        if !(1..=STATS_FORMAT_VERSION).contains(&p.v) {
            return Err(StatsDecodeError::UnsupportedVersion(p.v));
        }
        let usable = |x: f64| x.is_finite() && x >= 0.0;
        if !(usable(p.fast) && usable(p.slow) && usable(p.mean_gap_ms)) {
            return Err(StatsDecodeError::Invalid(
                "decayed counts and mean gap must be finite and not negative".into(),
            ));
        }
        if p.fast_half_life_ms <= 0 || p.slow_half_life_ms <= 0 {
            return Err(StatsDecodeError::Invalid(
                "half-lives must be positive".into(),
            ));
        }
        if p.accesses > 0 && p.first_seen_ms > p.last_access_ms {
            return Err(StatsDecodeError::Invalid(
                "first access is after the last access".into(),
            ));
        }
        let rescale = |value: f64, old: i64, new: i64| {
            if old == new {
                value
            } else {
                value * (new as f64 / old as f64)
            }
        };
        let stats = AccessStats {
            accesses: p.accesses,
            first_seen_ms: p.first_seen_ms,
            last_access_ms: p.last_access_ms,
            reads: p.reads,
            writes: p.writes,
            deletes: p.deletes,
            bytes_read: p.bytes_read,
            bytes_written: p.bytes_written,
            last_write_ms: p.last_write_ms.unwrap_or(0),
            fast: rescale(p.fast, p.fast_half_life_ms, decay.fast_half_life_ms),
            slow: rescale(p.slow, p.slow_half_life_ms, decay.slow_half_life_ms),
            mean_gap_ms: p.mean_gap_ms,
            gaps: p.gaps,
            last_hour: Ring {
                counts: p.last_hour,
            },
            last_day: Ring { counts: p.last_day },
            last_week: Ring {
                counts: p.last_week,
            },
        };
        Ok(if p.v == 1 && p.reads == 0 && p.accesses > 0 {
            AccessStats {
                last_write_ms: p.last_access_ms,
                ..AccessStats::new()
            }
            .with_totals_of(&stats)
        } else {
            stats
        })
    }

    /// These statistics with `other`'s totals (counts and bytes of reads, writes, deletes).
    fn with_totals_of(self, other: &AccessStats) -> Self {
        AccessStats {
            reads: other.reads,
            writes: other.writes,
            deletes: other.deletes,
            bytes_read: other.bytes_read,
            bytes_written: other.bytes_written,
            ..self
        }
    }

    /// Compact JSON of the persisted form, for a catalog text column.
    pub fn encode_json(&self, decay: &Decay) -> String {
        // Serialising plain numbers and arrays into a String cannot fail.
        serde_json::to_string(&self.to_persisted(decay)).unwrap_or_default()
    }

    /// Reads what [`AccessStats::encode_json`] wrote (any supported format version).
    pub fn decode_json(text: &str, decay: &Decay) -> Result<Self, StatsDecodeError> {
        let persisted: PersistedStats =
            serde_json::from_str(text).map_err(|err| StatsDecodeError::Invalid(err.to_string()))?;
        AccessStats::from_persisted(&persisted, decay)
    }
}

/// What the catalog stores per object so a restart keeps its access history.
///
/// Version 2 (see [`STATS_FORMAT_VERSION`]). Window rings are stored slot by slot; which
/// bucket a slot holds follows from `last_access_ms` (the newest bucket is the last
/// access's), so no separate head is kept.
/// The half-lives are stored so that a change of configuration rescales the decayed
/// counts instead of misreading them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedStats {
    /// Format version, [`STATS_FORMAT_VERSION`] when written by this code.
    pub v: u32,
    /// Fast half-life the `fast` count was kept with.
    pub fast_half_life_ms: i64,
    /// Slow half-life the `slow` count was kept with.
    pub slow_half_life_ms: i64,
    /// Reads (version 1: reads plus writes).
    pub accesses: u64,
    /// First access (meaningless when `accesses` is 0).
    pub first_seen_ms: i64,
    /// Last access (meaningless when `accesses` is 0).
    pub last_access_ms: i64,
    /// Reads.
    pub reads: u64,
    /// Writes.
    pub writes: u64,
    /// Deletes.
    pub deletes: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// The last write (version 2; absent when there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_write_ms: Option<i64>,
    /// Fast decayed count at `last_access_ms`.
    pub fast: f64,
    /// Slow decayed count at `last_access_ms`.
    pub slow: f64,
    /// Moving average of inter-arrival gaps, ms.
    pub mean_gap_ms: f64,
    /// In-order gaps averaged (0: no average yet).
    pub gaps: u32,
    /// 12 five-minute counters.
    pub last_hour: [u32; 12],
    /// 24 hourly counters.
    pub last_day: [u32; 24],
    /// 7 daily counters.
    pub last_week: [u32; 7],
}

/// Why persisted statistics could not be read back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsDecodeError {
    /// Written by a newer Strata: upgrade, or drop the row to start the object's history anew.
    #[error("access statistics format version {0} is not supported (this build reads versions 1 and 2); upgrade Strata or clear the object's heat row")]
    UnsupportedVersion(u32),
    /// Damaged or hand-edited.
    #[error("access statistics are damaged: {0}")]
    Invalid(String),
}
