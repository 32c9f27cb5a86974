//! `learned`: the forecast ([`crate::forecast`]), trained walk-forward on the replay's own
//! past, and a per-object choice of tier by expected cost ([`crate::optimise`]).
//!
//! - **At each window boundary** the forecaster learns from the window that ended: the
//!   boosted trees of next-window reads (retrained every few windows) and the life table of
//!   idle time ([`crate::forecast::IdleModel`]). Every object then takes the tier with the
//!   least expected cost over the stay it would commit to ([`cheapest_tier_for`]): the
//!   target's minimum residency, at least [`crate::optimise::AMORTISE_WINDOWS`] windows.
//!   What it expects over a stay of `H` windows: the trees' forecast for the next window
//!   (objects active within the forecaster's horizon; before the first model, the reads of
//!   the last window), plus, for the windows after, the chance of a read in them (the life
//!   table) × the reads of a window in which an object of its class is read. A tier slower
//!   than the latency objective is charged its first read and the move back up (this
//!   policy recalls an object on its first read there), so archiving pays only where the
//!   life table says a read is unlikely for long enough.
//! - **On a read** of an object not on the fastest tier, it moves up at once if the reads
//!   it is expected to get before the next boundary (its class's reads per read window,
//!   less those it already had in this one) pay for the storage there until the boundary
//!   (at least the target's minimum residency) and the moves up and back.
//! - **Predicted "read"**: a forecast at or above the threshold that maximised F1 on the
//!   training rows (no prediction before the first model).

use crate::config::TieringConfig;
use crate::cost::TierPrices;
use crate::eval::{CostModel, EvalError, Policy, Predictions, PrepareContext, ReplayState};
use crate::forecast::{ForecastSettings, Forecaster};
use crate::optimise::object::{move_cost, read_cost, window_cost};
use crate::optimise::{cheapest_tier_for, Demand, Horizon, Outlook};
use crate::stats::Op;
use crate::trace::TraceRequest;

/// The learned policy.
pub struct Learned {
    prices: CostModel,
    forecaster: Option<Forecaster>,
    settings: ForecastSettings,
    /// Per object: the trees' forecast for the current window (NaN: none).
    forecast: Vec<f32>,
}

impl Learned {
    /// The policy on `config`'s tiers and prices.
    pub fn new(config: &TieringConfig) -> Self {
        Learned {
            prices: CostModel::new(config),
            forecaster: None,
            settings: ForecastSettings::default(),
            forecast: Vec::new(),
        }
    }

    /// The boundary's choice for one object, whose next-window reads are `next`.
    fn place(&self, forecaster: &Forecaster, state: &mut ReplayState, object: u32, next: f64) {
        let Some(from) = state.tier_of(object) else {
            return;
        };
        let store = forecaster.store();
        let idle = forecaster.idle();
        let now = state.now_ms();
        let per_read_window = idle.reads_when_read(store.reads(object));
        let outlook = |windows: f64| {
            let later = if windows > 1.0 {
                idle.read_probability(store, object, now + state.window_ms(), windows - 1.0)
            } else {
                0.0
            };
            let any_next = next.min(1.0);
            Outlook {
                reads: next + later * per_read_window,
                any_read: 1.0 - (1.0 - any_next) * (1.0 - later),
            }
        };
        let demand = Demand {
            size: state.size(object),
            from,
            placed_at_ms: state.placed_at_ms(object).unwrap_or(i64::MIN),
            reads_per_window: next,
        };
        let min_residency = |tier| state.min_residency_ms(tier);
        let horizon = Horizon {
            now_ms: now,
            window_ms: state.window_ms(),
            max_windows: f64::from(idle.boundaries()),
            recall_to: Some(0),
        };
        let choice = cheapest_tier_for(&self.prices, &demand, &horizon, &min_residency, outlook);
        if choice.tier != from {
            // A refusal (capacity) leaves the object; it is reconsidered next window.
            let _ = state.move_object(object, choice.tier);
        }
    }

    /// On a read: moves the object up at once when the rest of its burst pays for it.
    fn promote_on_read(&self, state: &mut ReplayState, object: u32) {
        let Some(forecaster) = &self.forecaster else {
            return;
        };
        let Some(from) = state.tier_of(object).filter(|&tier| tier > 0) else {
            return;
        };
        let store = forecaster.store();
        let now = state.now_ms();
        let window_ms = state.window_ms();
        let window = u32::try_from(now / window_ms).unwrap_or(u32::MAX);
        let so_far = store.reads_in_window(object, window);
        let before = store.reads(object).saturating_sub(so_far);
        let more = forecaster.idle().more_reads(before, so_far);
        if more <= 0.0 {
            return;
        }
        let size = state.size(object);
        let until_boundary = (i64::from(window) + 1) * window_ms - now;
        let source = &self.prices.tiers[from];
        let mut best = (0.0, from);
        for (to, target) in self.prices.tiers.iter().enumerate().take(from) {
            let stay_ms = until_boundary.max(state.min_residency_ms(to));
            let gain = more * (self.read(source, size) - self.read(target, size))
                - self.extra_storage(source, target, size, stay_ms)
                - move_cost(source, target, size)
                - move_cost(target, source, size);
            if gain > best.0 {
                best = (gain, to);
            }
        }
        if best.1 != from {
            let _ = state.move_object(object, best.1);
        }
    }

    fn read(&self, p: &TierPrices, size: u64) -> f64 {
        read_cost(&self.prices, p, size as f64)
    }

    /// What keeping `size` bytes on `target` rather than `source` costs for `ms`.
    fn extra_storage(&self, source: &TierPrices, target: &TierPrices, size: u64, ms: i64) -> f64 {
        window_cost(&self.prices, target, size, ms, 0.0)
            - window_cost(&self.prices, source, size, ms, 0.0)
    }
}

impl Policy for Learned {
    fn name(&self) -> &str {
        "learned"
    }

    fn prepare(&mut self, context: &PrepareContext<'_, '_>) -> Result<(), EvalError> {
        self.forecaster = Some(Forecaster::new(context.window_ms, self.settings));
        Ok(())
    }

    fn depends_on_prices(&self) -> bool {
        true
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        let forecaster = self
            .forecaster
            .get_or_insert_with(|| Forecaster::new(state.window_ms(), self.settings));
        forecaster.record(request);
        if request.op == Op::Read {
            self.promote_on_read(state, request.object);
        }
    }

    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        let mut forecaster = self
            .forecaster
            .take()
            .unwrap_or_else(|| Forecaster::new(state.window_ms(), self.settings));
        forecaster.boundary(now_ms, |object| state.size(object));
        let objects = forecaster.store().len();
        self.forecast.clear();
        self.forecast.resize(objects as usize, f32::NAN);
        let threshold = forecaster.model().map(|model| model.threshold);
        if let Some(threshold) = threshold {
            for &(object, reads) in &forecaster.forecast().predicted {
                if reads >= threshold {
                    predictions.will_read(object);
                }
                self.forecast[object as usize] = reads as f32;
            }
        }
        let store = forecaster.store();
        for object in 0..objects {
            let known = self.forecast[object as usize];
            let next = if known.is_nan() {
                if threshold.is_none() {
                    f64::from(store.reads_in_last_window(object, now_ms))
                } else {
                    let per = forecaster.idle().reads_when_read(store.reads(object));
                    forecaster
                        .idle()
                        .read_probability(store, object, now_ms, 1.0)
                        * per
                }
            } else {
                f64::from(known)
            };
            self.place(&forecaster, state, object, next);
        }
        self.forecaster = Some(forecaster);
    }
}
