//! `seed003`: the fixed thresholds issue 11 names, applied at every window boundary with no
//! planner: hot if more than 100 accesses in the last day or an access within the last
//! hour, warm if more than 10 in the last day or an access within 24 hours, cold otherwise
//! (heat's [`Rules`] with these thresholds and no spike rule, over heat's access
//! statistics). Each object not on a tier of its class is moved to its class's first tier
//! (the configuration's `[classes]`); a move refused for capacity is asked again at the
//! next boundary, one refused for minimum residency at the first boundary after the
//! residency ends. Predicted to be read in the next window: the objects classified hot.

use super::classes::{ClassWatch, Keep, Look};
use crate::classify::{Rules, SpikeRule};
use crate::config::TieringConfig;
use crate::eval::{MoveOutcome, Policy, Predictions, Refusal, ReplayState};
use crate::stats::Decay;
use crate::trace::TraceRequest;
use crate::tracker::TrackerConfig;
use crate::units::{DAY_MS, HOUR_MS};

/// A spike rule that never holds.
const NO_SPIKE: SpikeRule = SpikeRule {
    factor: f64::INFINITY,
    min_events_1h: u64::MAX,
};

/// seed003's thresholds.
pub const SEED003_RULES: Rules = Rules {
    hot_per_day: 100,
    hot_within_ms: HOUR_MS,
    warm_per_day: 10,
    warm_within_ms: DAY_MS,
    spike: NO_SPIKE,
};

/// The seed003 threshold policy.
#[derive(Clone, Debug)]
pub struct Seed003 {
    watch: ClassWatch,
}

impl Seed003 {
    /// seed003 on `config`'s class tiers.
    pub fn new(config: &TieringConfig) -> Self {
        let tracker = TrackerConfig {
            decay: Decay::default(),
            spike: NO_SPIKE,
            max_clock_skew_ms: 0,
        };
        Seed003 {
            // Its passes are at window boundaries, whose length it does not know yet.
            watch: ClassWatch::new(tracker, SEED003_RULES, config.class_tiers(), HOUR_MS),
        }
    }
}

impl Policy for Seed003 {
    fn name(&self) -> &str {
        "seed003"
    }

    fn on_request(&mut self, _state: &mut ReplayState, request: &TraceRequest) {
        self.watch.record(request);
    }

    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        self.watch.wake(now_ms);
        self.watch.predict_hot(now_ms, predictions);
        self.watch.retain_active(|watch, object| {
            let Some(mut tier) = state.tier_of(object) else {
                return Keep::Forget;
            };
            let decision = watch.decision(object, now_ms);
            let look = Look::from(&decision);
            let quiet = watch.class_holds_until(&look);
            let wanted = watch.classes.tiers_for(decision.class);
            if let Some(&to) = wanted.first().filter(|_| !wanted.contains(&tier)) {
                match state.move_object(object, to) {
                    MoveOutcome::Moved => tier = to,
                    // Asked again when the residency ends (or the class may have changed).
                    MoveOutcome::Refused(Refusal::MinResidency) => {
                        let placed = state.placed_at_ms(object).unwrap_or(now_ms);
                        let held = placed.saturating_add(state.min_residency_ms(tier));
                        return Keep::Sleep(held.min(quiet));
                    }
                    // Asked again at the next boundary.
                    _ => return Keep::Active,
                }
            }
            if watch.settled(&look, tier) {
                Keep::Forget
            } else {
                Keep::Sleep(quiet)
            }
        });
    }
}
