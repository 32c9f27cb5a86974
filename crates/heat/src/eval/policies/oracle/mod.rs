//! `oracle`: the offline optimum, which knows every future access. It bounds what any
//! policy can save: a policy is judged by how much of the gap between `static` and the
//! oracle it closes.
//!
//! # Method
//!
//! - **Knowledge** ([`windows`]): before the replay, the whole trace is read once through
//!   `reopen` into, per object, its reads, read bytes and writes in each window it is
//!   active, and its lives (appearance to delete or end). Memory is proportional to the
//!   (object, active window) pairs.
//! - **Per object** ([`dp`]): a dynamic program over the windows of each life chooses the
//!   tier of every window, minimising exactly what the replay charges: storage for the
//!   time on each tier, each window's reads (requests, latency and miss penalty,
//!   retrieval and egress of the bytes they return) and writes on that tier, each move
//!   (a read of the object on the source, a write request on the target), and the
//!   censoring tail charged on the final tier (ten more windows of storage and of the
//!   object's last-window reads and writes, whatever the oracle knows of the trace's end).
//!   An object appears on the default tier at its first request. A demotion out of a tier
//!   waits for its `min_residency` from the arrival (appearance or move), as in
//!   [`crate::placement::residency_holds`]; promotions never wait. A tier without
//!   residency may be passed through at one moment (up to it and down again).
//! - **When it moves**: at window boundaries, and right after the first request of each
//!   life (the earliest moment an object can move at all). Not right before a read inside a
//!   window: a boundary already serves all of a window's reads from the tier chosen for
//!   it, a finer grid would tie the DP's size to the trace's clock resolution, and the
//!   saving left (part of a window's storage) is small. The moment after an appearance is
//!   different: without it the oracle would serve every read of an object's first window
//!   from the default tier, and on `arc_OLTP` with the example tiers LRU and S3-IT, which
//!   promote right after a first read, cost 4% less than a boundary-only oracle. So the
//!   oracle is the optimum among schedules that move at those moments; a policy moving
//!   objects between boundaries (after requests that are not their first) could in
//!   principle beat it by a fraction of a window, which the tests exclude by construction
//!   where they compare.
//! - **Capacity** ([`capacity`]): when the per-object optima overfill a tier with a
//!   capacity at some window, Lagrangian prices per byte-window on the capacity-limited
//!   tiers are raised by subgradient steps, a repair makes the schedule fit (evicting the
//!   objects that lose least per byte), and the optimality gap (feasible cost − best lower
//!   bound) / lower bound is reported; 0 when no capacity binds (the DP is exact).
//! - **Replay**: at each window boundary the oracle makes that boundary's moves (moves out
//!   before moves in where capacity needs it), and predicts exactly the objects that will
//!   be read in the window (existing at its start). The replay is the judge: its cost of
//!   the oracle equals the plan's own total ([`Oracle::planned_cost`]).

mod capacity;
mod dp;
mod windows;

use crate::config::millis;
use crate::cost::CostModel;
use crate::eval::{EvalError, Policy, Predictions, PrepareContext, ReplayState};
use crate::stats::Op;
use crate::trace::TraceRequest;

use dp::Model;
use windows::Activity;

/// The offline optimum.
#[derive(Clone, Debug, Default)]
pub struct Oracle {
    /// Moves by boundary: `moves[starts[w]..starts[w + 1]]` at the start of window `w`.
    move_starts: Vec<usize>,
    moves: Vec<(u32, u8)>,
    /// Objects read in window `w`, likewise.
    read_starts: Vec<usize>,
    reads: Vec<u32>,
    /// Moves right after an appearance, by object: `(life, tier)` in order.
    birth_starts: Vec<usize>,
    births: Vec<(u32, u8)>,
    /// Per object: whether it exists, its lives so far, its next entry in `births`.
    alive: Vec<bool>,
    lives: Vec<u32>,
    next_birth: Vec<usize>,
    planned: Option<Planned>,
    /// Moves deferred at a boundary for want of room (scratch).
    pending: Vec<(u32, u8)>,
}

#[derive(Clone, Copy, Debug)]
struct Planned {
    cost: f64,
    gap: f64,
}

impl Oracle {
    /// An oracle, to be prepared on a trace.
    pub fn new() -> Self {
        Oracle::default()
    }

    /// The cost of the oracle's schedule at the replay's prices, tail included, as its
    /// plan computes it (`None` before [`Policy::prepare`]).
    pub fn planned_cost(&self) -> Option<f64> {
        self.planned.map(|p| p.cost)
    }

    /// Makes the moves of the boundary that starts `window`, one object's moves in order;
    /// a move into a full tier waits until the moves out of it are made.
    fn make_moves(&mut self, state: &mut ReplayState, window: usize) {
        let range = span(&self.move_starts, window);
        self.pending.clear();
        self.pending.extend_from_slice(&self.moves[range]);
        loop {
            let before = self.pending.len();
            let mut kept = Vec::new();
            let mut blocked: Option<u32> = None;
            for &(object, tier) in &self.pending {
                let tier = usize::from(tier);
                let fits = state.capacity(tier).is_none_or(|cap| {
                    state.used_bytes(tier).saturating_add(state.size(object)) <= cap
                });
                if blocked == Some(object) || !fits {
                    blocked = Some(object);
                    kept.push((object, tier as u8));
                } else {
                    state.move_object(object, tier);
                }
            }
            self.pending = kept;
            if self.pending.is_empty() || self.pending.len() == before {
                break;
            }
        }
        // What still does not fit is tried once more and refused (counted) by the replay.
        for &(object, tier) in &self.pending {
            state.move_object(object, usize::from(tier));
        }
    }
}

/// `starts[w]..starts[w + 1]`, empty when out of range.
fn span(starts: &[usize], window: usize) -> std::ops::Range<usize> {
    match (starts.get(window), starts.get(window + 1)) {
        (Some(&a), Some(&b)) => a..b,
        _ => 0..0,
    }
}

/// Groups `(key, item)` pairs by key (a window, an object): offsets per key and the items
/// in their order.
fn by_window<T: Copy>(windows: usize, pairs: &[(u32, T)]) -> (Vec<usize>, Vec<T>) {
    let mut starts = vec![0usize; windows + 1];
    for &(w, _) in pairs {
        starts[w as usize + 1] += 1;
    }
    for w in 0..windows {
        starts[w + 1] += starts[w];
    }
    let mut next = starts.clone();
    let mut items: Vec<Option<T>> = vec![None; pairs.len()];
    for &(w, item) in pairs {
        items[next[w as usize]] = Some(item);
        next[w as usize] += 1;
    }
    (starts, items.into_iter().flatten().collect())
}

impl Policy for Oracle {
    fn name(&self) -> &str {
        "oracle"
    }

    fn prepare(&mut self, context: &PrepareContext<'_, '_>) -> Result<(), EvalError> {
        let config = context.config;
        let activity = Activity::read(context)?;
        let default_tier = config.tier_index(&config.default_tier).unwrap_or(0);
        let model = Model::new(
            &CostModel::new(config),
            config
                .tiers
                .iter()
                .map(|t| millis(t.min_residency))
                .collect(),
            default_tier,
            context.window_ms,
            activity.last_window,
        );
        let capacities: Vec<Option<u64>> = config.tiers.iter().map(|t| t.capacity).collect();
        let plan = capacity::plan(&model, &activity, &capacities);
        let windows = model.last_window() as usize + 1;
        let mut moves = Vec::new();
        let mut births = Vec::new();
        for (object, list) in plan.moves.iter().enumerate() {
            for m in list {
                if m.at_birth {
                    births.push((object as u32, (m.life, m.tier)));
                } else {
                    moves.push((m.window, (object as u32, m.tier)));
                }
            }
        }
        (self.move_starts, self.moves) = by_window(windows, &moves);
        let objects = activity.objects() as usize;
        (self.birth_starts, self.births) = by_window(objects, &births);
        self.next_birth = self.birth_starts.clone();
        self.alive = vec![false; objects];
        self.lives = vec![0; objects];
        let mut reads = Vec::new();
        for object in 0..activity.objects() {
            // Read in a window while existing at its start: what the replay scores.
            reads.extend(
                activity
                    .of(object)
                    .iter()
                    .filter(|s| s.reads > 0 && !s.starts_life())
                    .map(|s| (s.window, object)),
            );
        }
        (self.read_starts, self.reads) = by_window(windows, &reads);
        self.planned = Some(Planned {
            cost: plan.cost,
            gap: plan.gap,
        });
        Ok(())
    }

    fn depends_on_prices(&self) -> bool {
        true
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        let o = request.object as usize;
        let (Some(alive), Some(life)) = (self.alive.get_mut(o), self.lives.get_mut(o)) else {
            return;
        };
        if request.op == Op::Delete {
            *alive = false;
            return;
        }
        if *alive {
            return;
        }
        // The first request of a life: the moves planned right after it.
        *alive = true;
        let number = *life;
        *life += 1;
        let end = self.birth_starts.get(o + 1).copied().unwrap_or(0);
        while let Some(&(of_life, tier)) = self.births[..end].get(self.next_birth[o]) {
            if of_life != number {
                break;
            }
            state.move_object(request.object, usize::from(tier));
            self.next_birth[o] += 1;
        }
    }

    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        let window = usize::try_from(now_ms / state.window_ms()).unwrap_or(usize::MAX);
        self.make_moves(state, window);
        for &object in &self.reads[span(&self.read_starts, window)] {
            predictions.will_read(object);
        }
    }

    fn gap(&self) -> Option<f64> {
        self.planned.map(|p| p.gap)
    }
}
