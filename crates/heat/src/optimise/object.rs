//! One object's cheapest tier for its expected reads.
//!
//! The cost of an object on a tier for one window is its storage plus its expected reads ×
//! the cost of one read there (retrieval, egress, the request, the latency price, and the
//! miss penalty when the tier is slower than the objective). A move is judged over the stay
//! it commits to, `H` = the target's minimum residency or [`AMORTISE_WINDOWS`] windows,
//! whichever is longer: the move's cost (a read of the whole object on the source, a write
//! request on the target) plus `H` windows on the target against `H` windows where it is.
//! The move with the largest saving per window wins; a demotion that minimum residency
//! holds back is not considered.

use crate::cost::{CostModel, TierPrices};
use crate::placement::residency_holds;

/// A move's cost is spread over at least this many windows of the stay it starts.
pub const AMORTISE_WINDOWS: f64 = 4.0;

/// What one object is and expects, for [`cheapest_tier`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Demand {
    /// Bytes.
    pub size: u64,
    /// The tier it is on (index, hot → cold).
    pub from: usize,
    /// When it was placed there (ms); `i64::MIN` if unknown (no residency hold).
    pub placed_at_ms: i64,
    /// Expected reads per window.
    pub reads_per_window: f64,
}

/// The chosen tier and what choosing it saves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TierChoice {
    /// The tier (equal to [`Demand::from`] to stay).
    pub tier: usize,
    /// Dollars saved per window against staying, the move's cost spread over the stay
    /// (0 when staying).
    pub saving_per_window: f64,
    /// Expected dollars per window on the chosen tier, move excluded.
    pub cost_per_window: f64,
}

/// Expected dollars per window of an object of `size` bytes read `reads` times a window on
/// a tier of prices `p`.
pub fn window_cost(
    model: &CostModel,
    p: &TierPrices,
    size: u64,
    window_ms: i64,
    reads: f64,
) -> f64 {
    let size = size as f64;
    size * window_ms as f64 * p.storage_per_byte_ms + reads * read_cost(model, p, size)
}

/// Dollars of one read of `size` bytes on a tier of prices `p`, latency included.
fn read_cost(model: &CostModel, p: &TierPrices, size: f64) -> f64 {
    let o = &model.objectives;
    let miss = if p.misses_objective {
        o.miss_penalty
    } else {
        0.0
    };
    size * (p.retrieval_per_byte + p.egress_per_byte)
        + p.per_request
        + p.read_latency_ms * o.latency_price_per_ms
        + miss
}

/// Dollars of moving an object of `size` bytes from a tier of prices `source` to one of
/// prices `target`.
pub fn move_cost(source: &TierPrices, target: &TierPrices, size: u64) -> f64 {
    size as f64 * (source.retrieval_per_byte + source.egress_per_byte)
        + source.per_request
        + target.per_request
}

/// The cheapest tier for `demand` at `now_ms` with windows of `window_ms`;
/// `min_residency_ms(tier)` is each tier's minimum residency.
pub fn cheapest_tier(
    model: &CostModel,
    demand: &Demand,
    now_ms: i64,
    window_ms: i64,
    min_residency_ms: impl Fn(usize) -> i64,
) -> TierChoice {
    let from = demand.from;
    let reads = demand.reads_per_window;
    let Some(source) = model.tiers.get(from) else {
        return TierChoice {
            tier: from,
            saving_per_window: 0.0,
            cost_per_window: 0.0,
        };
    };
    let stay = window_cost(model, source, demand.size, window_ms, reads);
    let mut best = TierChoice {
        tier: from,
        saving_per_window: 0.0,
        cost_per_window: stay,
    };
    for (to, p) in model.tiers.iter().enumerate() {
        let held = residency_holds(
            from,
            to,
            demand.placed_at_ms,
            min_residency_ms(from),
            now_ms,
        );
        if to == from || held {
            continue;
        }
        let stay_windows = (min_residency_ms(to) as f64 / window_ms as f64).max(AMORTISE_WINDOWS);
        let there = window_cost(model, p, demand.size, window_ms, reads);
        let saving = stay - there - move_cost(source, p, demand.size) / stay_windows;
        if saving > best.saving_per_window {
            best = TierChoice {
                tier: to,
                saving_per_window: saving,
                cost_per_window: there,
            };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TieringConfig;
    use crate::units::HOUR_MS;

    fn model() -> CostModel {
        CostModel::new(&TieringConfig::default_local("/tmp/strata-optimise-test"))
    }

    fn demand(from: usize, reads: f64) -> Demand {
        Demand {
            size: 64 << 20,
            from,
            placed_at_ms: i64::MIN,
            reads_per_window: reads,
        }
    }

    #[test]
    fn an_object_never_read_goes_to_the_cheapest_storage() {
        let model = model();
        let choice = cheapest_tier(&model, &demand(0, 0.0), 0, HOUR_MS, |_| 0);
        let cheapest = (0..model.tiers.len())
            .min_by(|&a, &b| {
                model.tiers[a]
                    .storage_per_byte_ms
                    .total_cmp(&model.tiers[b].storage_per_byte_ms)
            })
            .unwrap();
        assert_eq!(choice.tier, cheapest);
        assert!(choice.saving_per_window > 0.0);
    }

    #[test]
    fn an_object_read_often_comes_to_the_fastest_tier() {
        let model = model();
        let last = model.tiers.len() - 1;
        let choice = cheapest_tier(&model, &demand(last, 1e6), 0, HOUR_MS, |_| 0);
        assert_eq!(choice.tier, 0);
    }

    #[test]
    fn minimum_residency_holds_a_demotion_back() {
        let model = model();
        let mut held = demand(0, 0.0);
        held.placed_at_ms = 0;
        let choice = cheapest_tier(&model, &held, HOUR_MS, HOUR_MS, |_| 2 * HOUR_MS);
        assert_eq!(choice.tier, 0);
        assert_eq!(choice.saving_per_window, 0.0);
    }
}
