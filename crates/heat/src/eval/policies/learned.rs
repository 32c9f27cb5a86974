//! `learned`: the forecast of next-window reads ([`crate::forecast`]), trained walk-forward
//! on the replay's own past, and a per-object choice of tier by expected cost.
//!
//! At each window boundary the forecaster learns from the window that ended and predicts
//! the one that starts. Each active object's expected reads a window are the forecast, or
//! its lifetime reads per window if more (a zero forecast must not send an object read now
//! and then to a tier where reads are dear); it moves when a tier's cost a window (storage plus
//! expected reads × the cost of a read there: retrieval, egress, request, latency price,
//! miss penalty) plus the move's cost spread over the stay it commits to (the target's
//! minimum residency, at least [`crate::optimise::AMORTISE_WINDOWS`] windows; [`crate::optimise::cheapest_tier`]) is below staying. A demotion
//! that minimum residency would refuse is not asked for. Objects idle for the forecaster's
//! horizon get one last choice at their lifetime rate. Predicted "read": a predicted count
//! at or above the threshold that maximised F1 on the training rows.
//!
//! Before the first model (too little history), the policy is `seed003`, as that rule is.

use super::seed003::Seed003;
use crate::config::TieringConfig;
use crate::eval::{CostModel, EvalError, Policy, Predictions, PrepareContext, ReplayState};
use crate::forecast::{ForecastSettings, Forecaster};
use crate::optimise::{cheapest_tier, Demand};
use crate::trace::TraceRequest;

/// The learned policy.
pub struct Learned {
    prices: CostModel,
    fallback: Seed003,
    forecaster: Option<Forecaster>,
    settings: ForecastSettings,
}

impl Learned {
    /// The policy on `config`'s tiers and prices.
    pub fn new(config: &TieringConfig) -> Self {
        Learned {
            prices: CostModel::new(config),
            fallback: Seed003::new(config),
            forecaster: None,
            settings: ForecastSettings::default(),
        }
    }

    fn place(&self, state: &mut ReplayState, object: u32, reads: f64) {
        if let Some(from) = state.tier_of(object) {
            let demand = Demand {
                size: state.size(object),
                from,
                placed_at_ms: state.placed_at_ms(object).unwrap_or(i64::MIN),
                reads_per_window: reads,
            };
            let to = cheapest_tier(
                &self.prices,
                &demand,
                state.now_ms(),
                state.window_ms(),
                |tier| state.min_residency_ms(tier),
            )
            .tier;
            // A refusal (capacity) leaves the object; it is reconsidered next window.
            let _ = state.move_object(object, to);
        }
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
        if forecaster.model().is_none() {
            self.fallback.on_request(state, request);
        }
    }

    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        let mut forecaster = self
            .forecaster
            .take()
            .unwrap_or_else(|| Forecaster::new(state.window_ms(), self.settings));
        forecaster.boundary(now_ms, |object| state.size(object));
        let forecast = forecaster.forecast();
        match forecaster.model() {
            None => self.fallback.on_window(state, now_ms, predictions),
            Some(model) => {
                let store = forecaster.store();
                for &(object, reads) in &forecast.predicted {
                    if reads >= model.threshold {
                        predictions.will_read(object);
                    }
                    let floor = store.lifetime_reads_per_window(object, now_ms);
                    self.place(state, object, reads.max(floor));
                }
                for &object in &forecast.idle {
                    let floor = store.lifetime_reads_per_window(object, now_ms);
                    self.place(state, object, floor);
                }
            }
        }
        self.forecaster = Some(forecaster);
    }
}
