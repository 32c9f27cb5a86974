//! `learned`: online selection among experts, walk-forward. The forecast placement
//! ([`super::learned`], called the `forecast` expert here) and the baseline policies
//! (`static`, `seed003`, `s3-intelligent`, `lru`, `rules`) each run as a shadow replay of
//! their own, fed the same requests, window boundaries and wake-ups in lock-step; the real
//! placement follows the expert that leads.
//!
//! - **Judged mark-to-market**, on the past only: what the expert's replay counted so far,
//!   its objects' storage up to now, and the censoring tail the evaluation would charge if
//!   the trace ended now (every object on its present tier for [`TAIL_WINDOWS`] windows with
//!   the reads of the last window), priced by the replay's own cost model. Why the tail: it
//!   is how the evaluation prices the present placement, so a placement that leaves
//!   recently read objects on a slow tier is seen to cost what it will, before the trace
//!   ends. Plus the risk of reads not seen yet ([`Selection::unseen_read_risk`]): without
//!   it an expert that archives leads until a scan reads the archive.
//!   Mid-window the tail's reads are a blend of the window under way and the one before,
//!   the window under way weighing by the share of it elapsed: a burst at a window's start
//!   is not taken as the rate of the next ten windows (tencent stretched to 180 days).
//! - **Hysteresis**: the leader changes only when another expert's mark is lower by more
//!   than the moves a switch costs (every object whose tier differs, moved to the new
//!   leader's) plus [`SWITCH_MARGIN`] of the leader's mark plus what the switches so far
//!   cost in moves, at two judgements in a row, so near-ties, a single window's burst and
//!   marks that swing from window to window do not thrash; and it must also lead by as
//!   much with the tail's reads weighed [`READ_WEIGHT`]: a switch buys storage for certain
//!   and saves on reads only if they go on (msr stretched to 180 days: `lru` took the lead
//!   on one window's reads, then the trace ended). Judgements: at each boundary and every
//!   [`JUDGE_EVERY`] requests between.
//! - **Following**: after each request, boundary and wake-up, the objects the leader moved
//!   (its replay's journal, so no scan of every object) are moved to the leader's tier in the
//!   real replay; on a change of leader every object is brought to the new leader's tier.
//!   A move the real replay refuses (minimum residency) is tried again at the first
//!   boundary after the residency ends (a refusal counts once per move the leader wants).
//! - **Predictions** ("read in the next window") are the forecast expert's.
//!
//! Memory: one replay per expert, each proportional to the objects.

use super::learned::{Learned, SCAN_REACH};
use super::make_policy;
use crate::config::TieringConfig;
use crate::eval::replay::Run;
use crate::eval::{
    CostModel, EvalError, MoveOutcome, Policy, Predictions, PrepareContext, ReplayState,
    TAIL_WINDOWS,
};
use crate::optimise::object::read_cost;
use crate::trace::TraceRequest;

/// The experts, in order: the forecast placement first (its predictions are used), then
/// the baselines.
pub const EXPERTS: [&str; 6] = [
    "forecast",
    "static",
    "seed003",
    "s3-intelligent",
    "lru",
    "rules",
];

/// The share of the leader's mark by which another expert must be cheaper, on top of the
/// moves of a switch, to take the lead.
pub const SWITCH_MARGIN: f64 = 0.01;

/// Between boundaries, the leader is judged again every this many requests: the censoring
/// tail weighs the last window's reads, which a judgement at boundaries only would see
/// too late (on the 10,000-request samples most reads are in the last window or two).
pub const JUDGE_EVERY: u32 = 64;

/// How much the reads of the marks' tail weigh in the second mark a challenger must also
/// win by (its storage weighs in full): a switch pays for the new placement's storage
/// whatever comes, its savings on reads only if the reads go on.
pub const READ_WEIGHT: f64 = 0.5;

/// An expert before the replay starts, or its replay once started.
enum Expert {
    Ready(Box<dyn Policy>),
    Running(Box<Run>),
}

/// The `learned` policy: the real placement follows the expert that costs least so far.
pub struct Selection {
    prices: CostModel,
    experts: Vec<Expert>,
    leader: usize,
    /// Windows each expert led.
    led: Vec<u32>,
    switches: u32,
    /// Objects the leader moved, being followed.
    moved: Vec<u32>,
    /// Objects moved by the other experts (discarded).
    discarded: Vec<u32>,
    /// Objects whose move to the leader's tier was refused, retried at boundaries.
    refused: Vec<u32>,
    /// Per expert, what a switch to it costs, as computed in the current window.
    switch_costs: Vec<Option<f64>>,
    /// Requests since the leader was last judged.
    since_judged: u32,
    /// The expert that beat the leader at the last judgement, if one did.
    challenger: Option<usize>,
    /// What the switches so far were expected to cost in moves: a lead must exceed it too.
    switched_cost: f64,
    /// Window boundaries seen.
    boundaries: u32,
}

impl Selection {
    /// The selection on `config`'s tiers and prices.
    pub fn new(config: &TieringConfig) -> Result<Self, String> {
        let mut experts = Vec::with_capacity(EXPERTS.len());
        for name in EXPERTS {
            let policy: Box<dyn Policy> = if name == "forecast" {
                Box::new(Learned::new(config))
            } else {
                make_policy(name, config)?
            };
            experts.push(Expert::Ready(policy));
        }
        Ok(Selection {
            prices: CostModel::new(config),
            experts,
            leader: 0,
            led: vec![0; EXPERTS.len()],
            switches: 0,
            moved: Vec::new(),
            discarded: Vec::new(),
            refused: Vec::new(),
            switch_costs: vec![None; EXPERTS.len()],
            since_judged: 0,
            challenger: None,
            switched_cost: 0.0,
            boundaries: 0,
        })
    }

    /// The running experts' replays (none before `prepare`).
    fn runs(&mut self) -> impl Iterator<Item = &mut Run> {
        self.experts.iter_mut().filter_map(|expert| match expert {
            Expert::Running(run) => Some(run.as_mut()),
            Expert::Ready(_) => None,
        })
    }

    fn run(&self, index: usize) -> Option<&Run> {
        running(&self.experts, index)
    }

    /// Moves the objects the leader moved since the last call to the leader's tier in
    /// `outer`; forgets the other experts' moves.
    fn follow(&mut self, outer: &mut ReplayState) {
        let leader = self.leader;
        let (mut moved, mut discarded) = (
            std::mem::take(&mut self.moved),
            std::mem::take(&mut self.discarded),
        );
        for (index, run) in self.runs().enumerate() {
            let into = if index == leader {
                &mut moved
            } else {
                &mut discarded
            };
            run.state.take_moves(into);
        }
        discarded.clear();
        self.discarded = discarded;
        if let Some(run) = running(&self.experts, leader) {
            for &object in &moved {
                if !sync_object(outer, &run.state, object) {
                    self.refused.push(object);
                }
            }
        }
        moved.clear();
        self.moved = moved;
    }

    /// Tries again the moves `outer` refused, once the minimum residency that refused
    /// them no longer holds: a refusal is counted once per move the leader wants, not at
    /// every boundary it waits.
    fn retry_refused(&mut self, outer: &mut ReplayState) {
        let Some(run) = running(&self.experts, self.leader) else {
            return;
        };
        let refused = &mut self.refused;
        refused.sort_unstable();
        refused.dedup();
        refused.retain(|&object| {
            let waiting = run
                .state
                .tier_of(object)
                .is_some_and(|want| outer.residency_refuses(object, want));
            waiting || !sync_object(outer, &run.state, object)
        });
    }

    /// Brings every object of `outer` to the leader's tier.
    fn sync_all(&mut self, outer: &mut ReplayState) {
        self.follow(outer);
        self.refused.clear();
        let Some(run) = self.run(self.leader) else {
            return;
        };
        let mut refused = Vec::new();
        for object in 0..outer.objects() {
            if !sync_object(outer, &run.state, object) {
                refused.push(object);
            }
        }
        self.refused = refused;
    }

    /// Judges the leader, then follows it: its moves since the last call, or every object
    /// after a change of leader.
    fn judge(&mut self, outer: &mut ReplayState) {
        self.since_judged = 0;
        let best = self.choose_leader(outer);
        if best == self.leader {
            self.challenger = None;
            self.follow(outer);
        } else if self.challenger != Some(best) {
            self.challenger = Some(best);
            self.follow(outer);
        } else {
            self.switched_cost += self.switch_costs[best].unwrap_or(0.0);
            self.leader = best;
            self.challenger = None;
            self.switches += 1;
            self.switch_costs.fill(None);
            self.sync_all(outer);
        }
    }

    /// Each running expert's mark-to-market cost, in dollars.
    fn marks(&self, read_weight: f64) -> Vec<f64> {
        (0..self.experts.len())
            .map(|index| {
                self.run(index).map_or(f64::INFINITY, |run| {
                    let tally = run.state.mark_to_market(TAIL_WINDOWS, read_weight);
                    self.prices.price(&tally).total() + self.unseen_read_risk(&run.state)
                })
            })
            .collect()
    }

    /// What the reads of an event not seen yet would cost over the tail on a placement:
    /// each object read in each tail window with the chance the forecast expert never goes
    /// below ([`SCAN_REACH`] / (n + 2) after `n` windows), on the tier it is on. Why: the
    /// tail of a mark takes an object idle in the last window as idle for ever, so a placement
    /// that archives looks cheapest right until a scan reads the archive (seen on
    /// `cache2k_web07`, `lirs_multi1` and both `cloudPhysicsIO` files stretched to 180 days).
    fn unseen_read_risk(&self, state: &ReplayState) -> f64 {
        let chance = SCAN_REACH / (f64::from(self.boundaries) + 2.0);
        let per_tier: f64 = self
            .prices
            .tiers
            .iter()
            .enumerate()
            .map(|(tier, p)| {
                state.resident_count(tier) as f64 * read_cost(&self.prices, p, 0.0)
                    + state.used_bytes(tier) as f64 * (p.retrieval_per_byte + p.egress_per_byte)
            })
            .sum();
        chance * f64::from(TAIL_WINDOWS) * per_tier
    }

    /// What moving every object of `outer` to `expert`'s tier would cost.
    fn switch_cost(&self, outer: &ReplayState, expert: usize) -> f64 {
        let Some(run) = self.run(expert) else {
            return f64::INFINITY;
        };
        let tiers = &self.prices.tiers;
        (0..outer.objects())
            .filter_map(|object| {
                let (from, to) = (outer.tier_of(object)?, run.state.tier_of(object)?);
                (from != to).then(|| {
                    let (source, target) = (&tiers[from], &tiers[to]);
                    outer.size(object) as f64 * (source.retrieval_per_byte + source.egress_per_byte)
                        + source.per_request
                        + target.per_request
                })
            })
            .sum()
    }

    /// The expert to lead from now on (hysteresis: see the module's doc); the cost of a
    /// switch is computed once a window per expert.
    fn choose_leader(&mut self, outer: &ReplayState) -> usize {
        let marks = self.marks(1.0);
        let Some(best) = (0..marks.len()).min_by(|&a, &b| marks[a].total_cmp(&marks[b])) else {
            return self.leader;
        };
        let current = marks.get(self.leader).copied().unwrap_or(f64::INFINITY);
        let margin = SWITCH_MARGIN * current + self.switched_cost;
        if best == self.leader || marks[best] + margin >= current {
            return self.leader;
        }
        let switch = match self.switch_costs[best] {
            Some(cost) => cost,
            None => {
                let cost = self.switch_cost(outer, best);
                self.switch_costs[best] = Some(cost);
                cost
            }
        };
        let damped = self.marks(READ_WEIGHT);
        let damped_current = damped.get(self.leader).copied().unwrap_or(f64::INFINITY);
        if marks[best] + margin + switch < current
            && damped[best] + SWITCH_MARGIN * damped_current + self.switched_cost + switch
                < damped_current
        {
            best
        } else {
            self.leader
        }
    }
}

/// The replay of expert `index`, once running.
fn running(experts: &[Expert], index: usize) -> Option<&Run> {
    match experts.get(index) {
        Some(Expert::Running(run)) => Some(run),
        _ => None,
    }
}

/// Moves `object` in `outer` to its tier in `leader`; false when `outer` refused the move.
fn sync_object(outer: &mut ReplayState, leader: &ReplayState, object: u32) -> bool {
    match (outer.tier_of(object), leader.tier_of(object)) {
        (Some(have), Some(want)) if have != want => {
            !matches!(outer.move_object(object, want), MoveOutcome::Refused(_))
        }
        _ => true,
    }
}

impl Policy for Selection {
    fn name(&self) -> &str {
        "learned"
    }

    fn prepare(&mut self, context: &PrepareContext<'_, '_>) -> Result<(), EvalError> {
        for (index, expert) in self.experts.iter_mut().enumerate() {
            let Expert::Ready(policy) = expert else {
                continue;
            };
            policy.prepare(context)?;
            let policy = std::mem::replace(policy, Box::new(super::static_::Static));
            let mut state = ReplayState::new(
                context.config,
                context.summary.sizes.clone(),
                context.window_ms,
            );
            state.keep_journal();
            let mut run = Run::new(policy, state);
            if index == 0 {
                run.keep_predictions();
            }
            *expert = Expert::Running(Box::new(run));
        }
        Ok(())
    }

    fn depends_on_prices(&self) -> bool {
        true
    }

    fn prefetch(&self, object: u32) {
        for expert in &self.experts {
            if let Expert::Running(run) = expert {
                run.prefetch(object);
            }
        }
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        for run in self.runs() {
            run.request(request);
        }
        self.since_judged += 1;
        if self.since_judged >= JUDGE_EVERY {
            self.judge(state);
        } else {
            self.follow(state);
        }
    }

    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        for run in self.runs() {
            run.advance_to(now_ms);
        }
        self.switch_costs.fill(None);
        self.boundaries = self.boundaries.saturating_add(1);
        self.judge(state);
        self.retry_refused(state);
        if let Some(led) = self.led.get_mut(self.leader) {
            *led += 1;
        }
        if let Some(forecast) = self.run(0) {
            for &object in forecast.predicted() {
                predictions.will_read(object);
            }
        }
    }

    fn wakeup_ms(&self) -> Option<i64> {
        self.experts
            .iter()
            .filter_map(|expert| match expert {
                Expert::Running(run) => run.next_wakeup_ms(),
                Expert::Ready(_) => None,
            })
            .min()
    }

    fn on_wakeup(&mut self, state: &mut ReplayState, now_ms: i64) {
        for run in self.runs() {
            run.advance_to(now_ms);
        }
        self.follow(state);
    }

    fn notes(&self) -> Option<String> {
        let led: Vec<String> = EXPERTS
            .iter()
            .zip(&self.led)
            .filter(|(_, &windows)| windows > 0)
            .map(|(name, windows)| format!("{name} {windows}"))
            .collect();
        Some(format!(
            "windows led: {}; switches {}",
            led.join(", "),
            self.switches
        ))
    }
}
