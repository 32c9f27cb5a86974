//! `s3-intelligent`: Amazon S3 Intelligent-Tiering's published rule on the configuration's
//! class tiers. Frequent access is the hot class's first tier, infrequent access the warm
//! class's, archive instant access the cold class's.
//!
//! - Any access (read or write) brings the object back to frequent right after it. New
//!   objects appear on the default tier like under every policy, so their first access
//!   moves them to frequent (that first move is a real cost of this rule here). If the
//!   move is refused (frequent is full), the object is in the frequent state on its tier.
//! - 30 days without access: frequent → infrequent; 90 days: infrequent → archive. Checked
//!   at every window boundary (Amazon checks daily), oldest access first; an object already
//!   on a tier at least as cold as the target just changes state; a refused move is tried
//!   again at the next boundary (an object whose demotion to infrequent was refused for a
//!   while may then wait behind objects with later accesses before it is archived).
//! - Predicted to be read in the next window: the objects on frequent.
//!
//! Idle times are real durations: the trace's clock (times `--time-scale`) must span
//! months for the rule to act. Objects in each state are kept in a recency list, so a
//! boundary looks only at the objects it moves.

use super::recency::RecencyLists;
use crate::config::TieringConfig;
use crate::eval::{MoveOutcome, Policy, Predictions, ReplayState, TierIndex};
use crate::stats::Op;
use crate::trace::TraceRequest;
use crate::units::DAY_MS;

/// Idle time before frequent → infrequent.
pub const INFREQUENT_AFTER_MS: i64 = 30 * DAY_MS;
/// Idle time before infrequent → archive instant.
pub const ARCHIVE_AFTER_MS: i64 = 90 * DAY_MS;

const FREQUENT: usize = 0;
const INFREQUENT: usize = 1;

/// The S3 Intelligent-Tiering rule.
#[derive(Clone, Debug)]
pub struct S3Intelligent {
    /// Tiers of the frequent, infrequent and archive states.
    tiers: [TierIndex; 3],
    last_access_ms: Vec<i64>,
    lists: RecencyLists,
}

impl S3Intelligent {
    /// The rule on `config`'s class tiers.
    pub fn new(config: &TieringConfig) -> Self {
        let classes = config.class_tiers();
        let first = |list: &[usize]| list.first().copied().unwrap_or(0);
        S3Intelligent {
            tiers: [
                first(&classes.hot),
                first(&classes.warm),
                first(&classes.cold),
            ],
            last_access_ms: Vec::new(),
            lists: RecencyLists::new(2),
        }
    }

    /// Moves the objects of list `from` idle for more than `idle_ms` to tier `to`, oldest
    /// access first; they join list `next` (or none).
    fn age(&mut self, state: &mut ReplayState, from: usize, idle_ms: i64, to: TierIndex, next: Option<usize>) {
        let cutoff = state.now_ms().saturating_sub(idle_ms);
        let mut at = self.lists.oldest(from);
        while let Some(object) = at {
            if self.last_access_ms[object as usize] >= cutoff {
                break;
            }
            at = self.lists.newer(object);
            // Aging never moves an object up (it may sit lower after a refused promotion).
            let outcome = match state.tier_of(object) {
                Some(tier) if tier >= to => MoveOutcome::Stayed,
                _ => state.move_object(object, to),
            };
            match outcome {
                MoveOutcome::Moved | MoveOutcome::Stayed => match next {
                    Some(list) => self.lists.touch(list, object),
                    None => self.lists.remove(object),
                },
                MoveOutcome::Refused(_) => {}
            }
        }
    }
}

impl Policy for S3Intelligent {
    fn name(&self) -> &str {
        "s3-intelligent"
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        let object = request.object;
        if request.op == Op::Delete {
            self.lists.remove(object);
            return;
        }
        let index = object as usize;
        if self.last_access_ms.len() <= index {
            self.last_access_ms.resize(index + 1, 0);
        }
        self.last_access_ms[index] = request.time_ms;
        state.move_object(object, self.tiers[FREQUENT]);
        self.lists.touch(FREQUENT, object);
    }

    fn on_window(&mut self, state: &mut ReplayState, _now_ms: i64, predictions: &mut Predictions) {
        // Infrequent first, so that an object does not go two steps at one boundary.
        let [_, infrequent, archive] = self.tiers;
        self.age(state, INFREQUENT, ARCHIVE_AFTER_MS, archive, None);
        self.age(state, FREQUENT, INFREQUENT_AFTER_MS, infrequent, Some(INFREQUENT));
        predictions.will_read_tier(self.tiers[FREQUENT]);
    }
}
