//! The cost model: what a replay's counts cost in dollars, per tier, from `strata.toml`.
//!
//! The replay only counts (byte-milliseconds stored, reads, bytes read, writes, moves, per
//! tier: a [`Tally`]); this module prices the counts ([`CostModel::price`]). Keeping the two
//! apart makes the counts exact integers, and lets `--sweep` re-price a replay at another
//! latency price without running it again when the policy does not look at prices.
//!
//! Prices (GB = 10^9 bytes, as `strata tiers` counts; a month = 30 days):
//! - storage: bytes × ms resident × `cost_per_gb_month` / (10^9 × 30 days in ms);
//! - a read: bytes read × (`retrieval_cost_per_gb` + `egress_cost_per_gb`) / 10^9, one
//!   request (`cost_per_1k_requests` / 1000), and its latency: `read_latency_ms` ×
//!   `[objectives] latency_price_per_ms`, plus `miss_penalty` when the tier's
//!   `read_latency_ms` exceeds `[objectives] read_latency_ms`;
//! - a write: one request on the object's tier;
//! - a move: a read of the whole object on the source (retrieval, egress, one request; no
//!   latency, nobody waits for it) and one write request on the target.

use serde::Serialize;

use crate::config::{ObjectivesConfig, TieringConfig};
use crate::units::DAY_MS;

/// Bytes in a GB of the price list.
const GB: f64 = 1e9;
/// Milliseconds in a month of the price list.
const MONTH_MS: f64 = 30.0 * DAY_MS as f64;

/// What happened on one tier during a replay (or its censoring tail).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierTally {
    /// Bytes × milliseconds stored.
    pub byte_ms: u128,
    /// Reads served.
    pub reads: u64,
    /// Bytes those reads returned.
    pub read_bytes: u128,
    /// Writes.
    pub writes: u64,
    /// Moves out of the tier.
    pub moves_out: u64,
    /// Bytes moved out of the tier.
    pub moved_out_bytes: u128,
    /// Moves into the tier.
    pub moves_in: u64,
}

impl TierTally {
    /// Adds (or, with `add` false, takes away, stopping at zero) one object's reads and
    /// writes of a window, its reads returning `size` bytes each.
    pub fn count_window(&mut self, reads: u32, writes: u32, size: u64, add: bool) {
        let reads = u64::from(reads);
        let bytes = u128::from(reads) * u128::from(size);
        let writes = u64::from(writes);
        if add {
            self.reads += reads;
            self.read_bytes += bytes;
            self.writes += writes;
        } else {
            self.reads = self.reads.saturating_sub(reads);
            self.read_bytes = self.read_bytes.saturating_sub(bytes);
            self.writes = self.writes.saturating_sub(writes);
        }
    }
}

/// Per-tier counts, in the order of the configuration's tiers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// One entry per tier.
    pub tiers: Vec<TierTally>,
}

impl Tally {
    /// Zero counts for `tiers` tiers.
    pub fn new(tiers: usize) -> Self {
        Tally {
            tiers: vec![TierTally::default(); tiers],
        }
    }

    /// Reads on every tier.
    pub fn reads(&self) -> u64 {
        self.tiers.iter().map(|t| t.reads).sum()
    }
}

/// Dollars, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Costs {
    /// Keeping bytes on tiers.
    pub storage: f64,
    /// Reading bytes back (`retrieval_cost_per_gb`), moves excluded.
    pub retrieval: f64,
    /// Read and write requests (`cost_per_1k_requests`), moves excluded.
    pub requests: f64,
    /// Moves: the source read (retrieval, egress, request) and the target write request.
    pub moves: f64,
    /// Bytes sent out (`egress_cost_per_gb`), moves excluded.
    pub egress: f64,
    /// The value of read latency: price per read-millisecond and penalties for misses.
    pub latency: f64,
}

impl Costs {
    /// The sum of every kind.
    pub fn total(&self) -> f64 {
        self.storage + self.retrieval + self.requests + self.moves + self.egress + self.latency
    }

    /// Kind by kind sum.
    pub fn plus(&self, other: &Costs) -> Costs {
        Costs {
            storage: self.storage + other.storage,
            retrieval: self.retrieval + other.retrieval,
            requests: self.requests + other.requests,
            moves: self.moves + other.moves,
            egress: self.egress + other.egress,
            latency: self.latency + other.latency,
        }
    }
}

/// One tier's prices, per byte, per millisecond and per request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TierPrices {
    /// Dollars per byte-millisecond stored.
    pub storage_per_byte_ms: f64,
    /// Dollars per byte read back.
    pub retrieval_per_byte: f64,
    /// Dollars per byte sent out.
    pub egress_per_byte: f64,
    /// Dollars per request.
    pub per_request: f64,
    /// Typical time to first byte, ms.
    pub read_latency_ms: f64,
    /// Whether a read here misses the latency objective.
    pub misses_objective: bool,
}

/// Prices of every tier and of latency.
#[derive(Clone, Debug, PartialEq)]
pub struct CostModel {
    /// Per tier, hot → cold.
    pub tiers: Vec<TierPrices>,
    /// The objectives the prices came from.
    pub objectives: ObjectivesConfig,
}

impl CostModel {
    /// The prices of a configuration's tiers and objectives.
    pub fn new(config: &TieringConfig) -> Self {
        let objective = config.objectives.read_latency_ms;
        let tiers = config
            .tiers
            .iter()
            .map(|tier| TierPrices {
                storage_per_byte_ms: tier.cost_per_gb_month / GB / MONTH_MS,
                retrieval_per_byte: tier.retrieval_cost_per_gb / GB,
                egress_per_byte: tier.egress_cost_per_gb / GB,
                per_request: tier.cost_per_1k_requests / 1000.0,
                read_latency_ms: tier.read_latency_ms,
                misses_objective: tier.read_latency_ms > objective,
            })
            .collect();
        CostModel {
            tiers,
            objectives: config.objectives,
        }
    }

    /// The same prices with another price per read-millisecond (`--sweep`).
    pub fn with_latency_price(&self, price_per_ms: f64) -> Self {
        let mut model = self.clone();
        model.objectives.latency_price_per_ms = price_per_ms;
        model
    }

    /// Dollars for the counts of a tally.
    pub fn price(&self, tally: &Tally) -> Costs {
        let mut costs = Costs::default();
        let o = &self.objectives;
        for (t, p) in tally.tiers.iter().zip(&self.tiers) {
            let read_bytes = t.read_bytes as f64;
            costs.storage += t.byte_ms as f64 * p.storage_per_byte_ms;
            costs.retrieval += read_bytes * p.retrieval_per_byte;
            costs.egress += read_bytes * p.egress_per_byte;
            costs.requests += (t.reads + t.writes) as f64 * p.per_request;
            let miss = if p.misses_objective {
                o.miss_penalty
            } else {
                0.0
            };
            costs.latency += t.reads as f64 * (p.read_latency_ms * o.latency_price_per_ms + miss);
            costs.moves += t.moved_out_bytes as f64 * (p.retrieval_per_byte + p.egress_per_byte)
                + (t.moves_out + t.moves_in) as f64 * p.per_request;
        }
        costs
    }

    /// Reads that missed the latency objective.
    pub fn misses(&self, tally: &Tally) -> u64 {
        tally
            .tiers
            .iter()
            .zip(&self.tiers)
            .filter(|(_, p)| p.misses_objective)
            .map(|(t, _)| t.reads)
            .sum()
    }

    /// Mean latency of the reads, ms (0 without reads).
    pub fn mean_read_latency_ms(&self, tally: &Tally) -> f64 {
        let reads = tally.reads();
        if reads == 0 {
            return 0.0;
        }
        let total: f64 = tally
            .tiers
            .iter()
            .zip(&self.tiers)
            .map(|(t, p)| t.reads as f64 * p.read_latency_ms)
            .sum();
        total / reads as f64
    }
}
