//! One object's cheapest tier for its expected reads.
//!
//! The cost of an object on a tier for one window is its storage plus its expected reads ×
//! the cost of one read there (retrieval, egress, the request, the latency price, and the
//! miss penalty when the tier is slower than the objective). A move is judged over the stay
//! it commits to, `H` windows: for a promotion the target's minimum residency (the object
//! cannot come down sooner), for a demotion nothing (a read brings it back up at once), so
//! `H` is at least [`AMORTISE_WINDOWS`], over which the move's cost is spread: the move's
//! cost (a read of the whole object on the source, a write request on the target) plus `H`
//! windows on the target against `H` windows where it is. The move with the largest saving per window wins; a demotion that
//! minimum residency holds back is not considered. [`cheapest_tier`] expects the same reads a window on
//! every tier; [`cheapest_tier_for`] takes what is expected over each stay ([`Outlook`]:
//! reads and the chance of any), and can count a colder tier's first read as recalling
//! the object to a hot one.

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

impl TierChoice {
    /// The chosen tier as the service names tiers.
    pub fn tier_id(&self) -> crate::TierId {
        crate::TierId::from_index(self.tier)
    }
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
pub fn read_cost(model: &CostModel, p: &TierPrices, size: f64) -> f64 {
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

/// What an object is expected to do over a stay of some windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outlook {
    /// Expected reads.
    pub reads: f64,
    /// The chance of at least one read.
    pub any_read: f64,
}

/// The cheapest tier for `demand` at `now_ms` with windows of `window_ms`;
/// `min_residency_ms(tier)` is each tier's minimum residency. Reads are expected at
/// `demand.reads_per_window` on every tier.
pub fn cheapest_tier(
    model: &CostModel,
    demand: &Demand,
    now_ms: i64,
    window_ms: i64,
    min_residency_ms: impl Fn(usize) -> i64,
) -> TierChoice {
    let rate = demand.reads_per_window;
    let outlook = |windows: f64| Outlook {
        reads: rate * windows,
        any_read: (rate * windows).min(1.0),
    };
    let horizon = Horizon {
        now_ms,
        window_ms,
        max_windows: f64::INFINITY,
        recall_to: None,
        cold_read_floor: 0.0,
    };
    cheapest_tier_for(model, demand, &horizon, &min_residency_ms, outlook)
}

/// When and how far [`cheapest_tier_for`] looks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Horizon {
    /// Now, ms.
    pub now_ms: i64,
    /// A window, ms.
    pub window_ms: i64,
    /// The longest stay judged, in windows (a stay committed to for longer is judged over
    /// this many: savings beyond what the forecast has evidence for are not counted).
    pub max_windows: f64,
    /// With a tier, the first read of an object on a colder tier brings it back to that
    /// tier (a move), which serves the reads after it; without, every read is served where
    /// the object is.
    pub recall_to: Option<usize>,
    /// The least chance of a read per window assumed of an object on a tier colder than
    /// `recall_to` (0: none). A read there can cost more than months of storage saved, so
    /// the decision to go there must not rest on a forecast alone that has never seen, say,
    /// a scan of long-idle objects.
    pub cold_read_floor: f64,
}

/// The cheapest tier for `demand` given `outlook(windows)`, what it is expected to do over
/// a stay of that many windows, within `horizon`.
pub fn cheapest_tier_for(
    model: &CostModel,
    demand: &Demand,
    horizon: &Horizon,
    min_residency_ms: &impl Fn(usize) -> i64,
    outlook: impl Fn(f64) -> Outlook,
) -> TierChoice {
    let from = demand.from;
    let size = demand.size;
    let window = horizon.window_ms.max(1);
    let (now_ms, recall_to) = (horizon.now_ms, horizon.recall_to);
    let Some(source) = model.tiers.get(from) else {
        return TierChoice {
            tier: from,
            saving_per_window: 0.0,
            cost_per_window: 0.0,
        };
    };
    let stay_cost = |tier: usize, windows: f64, expect: &Outlook| -> f64 {
        let p = &model.tiers[tier];
        let storage = window_cost(model, p, size, window, 0.0) * windows;
        let floored;
        let colder = recall_to.is_some_and(|up| tier > up);
        let expect = if colder && horizon.cold_read_floor > 0.0 {
            let floor = 1.0 - (1.0 - horizon.cold_read_floor.min(1.0)).powf(windows);
            floored = Outlook {
                reads: expect.reads.max(floor),
                any_read: expect.any_read.max(floor),
            };
            &floored
        } else {
            expect
        };
        let reads = match recall_to.and_then(|up| model.tiers.get(up).filter(|_| up < tier)) {
            // The first read is served here and brings the object up; the rest are served there.
            Some(up) => {
                expect.any_read * (read_cost(model, p, size as f64) + move_cost(p, up, size))
                    + (expect.reads - expect.any_read).max(0.0) * read_cost(model, up, size as f64)
            }
            _ => expect.reads * read_cost(model, p, size as f64),
        };
        storage + reads
    };
    let stays = |tier: usize| (min_residency_ms(tier) as f64 / window as f64).max(AMORTISE_WINDOWS);
    let mut best = TierChoice {
        tier: from,
        saving_per_window: 0.0,
        cost_per_window: stay_cost(from, 1.0, &outlook(1.0)),
    };
    for (to, target) in model.tiers.iter().enumerate() {
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
        // The stay a move commits to: a promotion keeps the object up for the target's
        // minimum residency; a demotion commits to nothing (the object comes back up at
        // once when read), so it is judged over the shortest stay that amortises its move.
        // Both sides over the same stay.
        let windows = if to < from {
            stays(to)
        } else {
            AMORTISE_WINDOWS
        }
        .min(horizon.max_windows.max(1.0));
        let expect = outlook(windows);
        let saving = (stay_cost(from, windows, &expect)
            - stay_cost(to, windows, &expect)
            - move_cost(source, target, size))
            / windows;
        if saving > best.saving_per_window {
            best = TierChoice {
                tier: to,
                saving_per_window: saving,
                cost_per_window: stay_cost(to, windows, &expect) / windows,
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
