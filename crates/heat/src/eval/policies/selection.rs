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
//! - **Per class** ([`Mode::PerClass`], policy `learned-per-class`): the
//!   same judgement and hysteresis for each class of objects apart (reads so far in powers
//!   of two × two sizes, known walk-forward: `eval/class_books.rs`), with a margin of
//!   [`CLASS_SWITCH_MARGIN`], on the class's costs in each expert's
//!   replay (storage, reads, latency and moves of its objects, charged to the class an
//!   object is in at the time, plus the class's tail and risk). An object follows its
//!   class's leader; when a read moves it to a class with another leader, it is moved to
//!   that leader's tier at once (when its tier differs). A switch of a class moves only
//!   that class's objects. [`Mode::Global`] (`learned-global`) is one class for all;
//!   [`Mode::Meta`] (`learned`, and `learned-meta`) selects between the two as experts,
//!   one leader for all objects: alone, per class cost 20% more than `lru` on the hand-made
//!   bursts of `tests/select.rs` (each class learns apart), where the global selection
//!   costs what `lru` costs.
//!
//! Memory: one replay per expert, each proportional to the objects; per class, one byte per
//! object in each replay's slot and in the selection, and a few arrays per class.

use super::learned::{Learned, SCAN_REACH};
use super::make_policy;
use crate::config::TieringConfig;
use crate::eval::class_books::{class_of, CLASSES};
use crate::eval::replay::Run;
use crate::eval::{
    CostModel, EvalError, MoveOutcome, Policy, Predictions, PrepareContext, ReplayState,
    TierRecord, TAIL_WINDOWS,
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

/// How `learned` follows its experts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One leader for every object.
    Global,
    /// One leader per class of objects ([`crate::eval`]'s class books: reads so far in
    /// powers of two × two sizes), each judged on its class's costs in every expert's replay.
    PerClass,
    /// One leader for every object, among two experts: the [`Mode::Global`] and the
    /// [`Mode::PerClass`] selections, each a shadow replay of its own.
    Meta,
}

/// The experts of [`Mode::Meta`].
pub const META_EXPERTS: [&str; 2] = ["global", "per-class"];

/// The share of a class's leader's mark by which another expert must be cheaper on the
/// class to take its lead ([`Mode::PerClass`]): larger than [`SWITCH_MARGIN`], since with
/// 16 classes × 6 experts a lead of 1% by chance is common (a 2% lead of `seed003` on one
/// class of `cloudPhysicsIO.oracleGeneral` stretched to 180 days, then its archive read).
pub const CLASS_SWITCH_MARGIN: f64 = 0.1;

/// An expert before the replay starts, or its replay once started.
enum Expert {
    Ready(Box<dyn Policy>),
    Running(Box<Run>),
}

/// A selection among experts: the real placement follows the expert that costs least so
/// far, for every object ([`Mode::Global`]) or per class of objects ([`Mode::PerClass`]);
/// `learned` is [`Mode::Meta`], whose two experts are selections of the other two modes.
pub struct Selection {
    prices: CostModel,
    experts: Vec<Expert>,
    /// The experts' names, in order.
    names: &'static [&'static str],
    mode: Mode,
    /// Groups of objects judged apart: 1 ([`Mode::Global`]) or [`CLASSES`].
    groups: usize,
    /// Per group, the expert it follows.
    leader: Vec<usize>,
    /// Windows (per group) each expert led.
    led: Vec<u32>,
    switches: u32,
    /// Objects an expert moved, being followed (a buffer).
    moved: Vec<u32>,
    /// Objects whose move to the leader's tier was refused, retried at boundaries.
    refused: Vec<u32>,
    /// Per group and expert (`group * experts + expert`), what a switch of the group to the
    /// expert costs, as computed in the current window.
    switch_costs: Option<Vec<f64>>,
    /// Requests since the leaders were last judged.
    since_judged: u32,
    /// Per group, the expert that beat its leader at the last judgement, if one did.
    challenger: Vec<Option<usize>>,
    /// Per group, what its switches so far were expected to cost in moves: a lead must
    /// exceed it too.
    switched_cost: Vec<f64>,
    /// Window boundaries seen.
    boundaries: u32,
    /// Per object, the class it is followed in ([`Mode::PerClass`] only).
    class_of: Vec<u8>,
    /// Objects that changed class and were moved to the new class's leader's tier.
    reclass_moves: u64,
}

impl Selection {
    /// The selection on `config`'s tiers and prices, one leader for every object
    /// ([`Mode::Global`], `learned-global`; `learned` is [`Mode::Meta`]).
    pub fn new(config: &TieringConfig) -> Result<Self, String> {
        Self::with_mode(config, Mode::Global)
    }

    /// The selection on `config`'s tiers and prices, following in `mode`.
    pub fn with_mode(config: &TieringConfig, mode: Mode) -> Result<Self, String> {
        let names: &'static [&'static str] = match mode {
            Mode::Meta => &META_EXPERTS,
            Mode::Global | Mode::PerClass => &EXPERTS,
        };
        let mut experts = Vec::with_capacity(names.len());
        for &name in names {
            let policy: Box<dyn Policy> = match (mode, name) {
                (Mode::Meta, "global") => Box::new(Self::with_mode(config, Mode::Global)?),
                (Mode::Meta, _) => Box::new(Self::with_mode(config, Mode::PerClass)?),
                (_, "forecast") => Box::new(Learned::new(config)),
                _ => make_policy(name, config)?,
            };
            experts.push(Expert::Ready(policy));
        }
        let groups = match mode {
            Mode::Global | Mode::Meta => 1,
            Mode::PerClass => CLASSES,
        };
        Ok(Selection {
            prices: CostModel::new(config),
            led: vec![0; experts.len()],
            experts,
            names,
            mode,
            groups,
            leader: vec![0; groups],
            switches: 0,
            moved: Vec::new(),
            refused: Vec::new(),
            switch_costs: None,
            since_judged: 0,
            challenger: vec![None; groups],
            switched_cost: vec![0.0; groups],
            boundaries: 0,
            class_of: Vec::new(),
            reclass_moves: 0,
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

    /// The group an object is followed in.
    fn group(&self, object: u32) -> usize {
        group_of(self.mode, &self.class_of, object)
    }

    /// Moves the objects each expert moved since the last call, where the expert leads the
    /// object's group, to the expert's tier in `outer`; forgets the other moves.
    fn follow(&mut self, outer: &mut ReplayState) {
        let mut moved = std::mem::take(&mut self.moved);
        for (index, expert) in self.experts.iter_mut().enumerate() {
            let Expert::Running(run) = expert else {
                continue;
            };
            run.state.take_moves(&mut moved);
            for &object in &moved {
                let group = group_of(self.mode, &self.class_of, object);
                if self.leader.get(group) == Some(&index) && !sync_object(outer, &run.state, object)
                {
                    self.refused.push(object);
                }
            }
            moved.clear();
        }
        self.moved = moved;
    }

    /// Tries again the moves `outer` refused, once the minimum residency that refused
    /// them no longer holds: a refusal is counted once per move the leader wants, not at
    /// every boundary it waits.
    fn retry_refused(&mut self, outer: &mut ReplayState) {
        let mut refused = std::mem::take(&mut self.refused);
        refused.sort_unstable();
        refused.dedup();
        refused.retain(|&object| {
            let Some(run) = self
                .leader
                .get(self.group(object))
                .and_then(|&l| self.run(l))
            else {
                return false;
            };
            let waiting = run
                .state
                .tier_of(object)
                .is_some_and(|want| outer.residency_refuses(object, want));
            waiting || !sync_object(outer, &run.state, object)
        });
        self.refused = refused;
    }

    /// Brings every object of `group` in `outer` to its leader's tier.
    fn sync_group(&mut self, outer: &mut ReplayState, group: usize) {
        let mut refused = std::mem::take(&mut self.refused);
        refused.retain(|&object| self.group(object) != group);
        if let Some(run) = self.leader.get(group).and_then(|&l| self.run(l)) {
            for object in 0..outer.objects() {
                if self.group(object) == group && !sync_object(outer, &run.state, object) {
                    refused.push(object);
                }
            }
        }
        self.refused = refused;
    }

    /// After a request of `object`: if its class changed, it follows its new class's
    /// leader from now on, moved to that leader's tier.
    fn reclass(&mut self, outer: &mut ReplayState, object: u32) {
        if self.mode != Mode::PerClass {
            return;
        }
        let Some(class) = self.run(0).and_then(|run| run.state.class_of(object)) else {
            return;
        };
        let index = object as usize;
        if self.class_of.len() <= index {
            self.class_of.resize(index + 1, class);
        }
        let old = usize::from(std::mem::replace(&mut self.class_of[index], class));
        let new = usize::from(class);
        let (Some(&was), Some(&now)) = (self.leader.get(old), self.leader.get(new)) else {
            return;
        };
        if was == now {
            return;
        }
        let Some(run) = running(&self.experts, now) else {
            return;
        };
        if outer.tier_of(object) != run.state.tier_of(object) {
            self.reclass_moves += 1;
            if !sync_object(outer, &run.state, object) {
                self.refused.push(object);
            }
        }
    }

    /// Judges each group's leader, then follows the leaders: their moves since the last
    /// call, and every object of a group whose leader changed.
    fn judge(&mut self, outer: &mut ReplayState) {
        self.since_judged = 0;
        let marks = self.marks(1.0);
        let mut damped = None;
        for group in 0..self.groups {
            let best = self.choose_leader(outer, group, &marks, &mut damped);
            if best == self.leader[group] {
                self.challenger[group] = None;
            } else if self.challenger[group] != Some(best) {
                self.challenger[group] = Some(best);
            } else {
                let cost = self.switch_cost(outer, group, best);
                self.switched_cost[group] += cost;
                self.leader[group] = best;
                self.challenger[group] = None;
                self.switches += 1;
                self.switch_costs = None;
                self.sync_group(outer, group);
            }
        }
        self.follow(outer);
    }

    /// Each group's mark-to-market cost under each running expert, in dollars
    /// (`group * experts + expert`).
    fn marks(&self, read_weight: f64) -> Vec<f64> {
        let experts = self.experts.len();
        let chances = self.unseen_read_chances();
        let mut marks = vec![f64::INFINITY; self.groups * experts];
        for expert in 0..experts {
            let Some(run) = self.run(expert) else {
                continue;
            };
            for group in 0..self.groups {
                let tally = match self.mode {
                    Mode::PerClass => run.state.class_mark(group, TAIL_WINDOWS, read_weight),
                    Mode::Global | Mode::Meta => {
                        run.state.mark_to_market(TAIL_WINDOWS, read_weight)
                    }
                };
                marks[group * experts + expert] = self.prices.price(&tally).total()
                    + self.unseen_read_risk(&run.state, group, &chances);
            }
        }
        marks
    }

    /// Per tier, the chance taken of a read not seen yet of each object on it in each
    /// window: the floor of the forecast expert ([`SCAN_REACH`] / (n + 2) after `n`
    /// windows, Laplace's rule over windows: an event such as a scan of long-idle objects
    /// may still come) times the chance that objects left on the tier are ever read again.
    /// Two hypotheses, even odds: they are read by such events, or never. One read of an
    /// object resting on the tier, in any replay this selection watches, rules out the
    /// second (the full floor); with none in the `m` windows the tier held objects, the
    /// first keeps 1 / (m + 2) (no event in `m` windows has chance 1 / (m + 1) under
    /// Laplace's rule, 1 under "never"). Why: with the floor alone, an expert that
    /// archives objects of a few kB (a read on the archive costs as much as years of
    /// their storage saved) never led on `msr-cambridge1` stretched to 180 days, where no
    /// archived object was ever read and `rules` cost half of `learned`; where
    /// archived objects are read at all (`cache2k_web07`, `lirs_multi1`, `tencent`, the
    /// trickle before the scan of `cloudPhysicsIO`), the chance stays at the floor.
    fn unseen_read_chances(&self) -> Vec<f64> {
        let floor = SCAN_REACH / (f64::from(self.boundaries) + 2.0);
        let mut records = vec![TierRecord::default(); self.prices.tiers.len()];
        self.add_tier_records(&mut records);
        records
            .iter()
            .map(|record| {
                if record.reads > 0 {
                    floor
                } else {
                    floor / (f64::from(record.populated_windows) + 2.0)
                }
            })
            .collect()
    }

    /// What the reads of an event not seen yet would cost over the tail on a placement of
    /// a group: each object read in each tail window with the chance of its tier
    /// ([`Selection::unseen_read_chances`]), on the tier it is on. Why: the tail of a mark
    /// takes an object idle in the last window as idle for ever, so a placement that
    /// archives looks cheapest right until a scan reads the archive (seen on
    /// `cache2k_web07`, `lirs_multi1` and both `cloudPhysicsIO` files stretched to 180
    /// days).
    fn unseen_read_risk(&self, state: &ReplayState, group: usize, chances: &[f64]) -> f64 {
        let per_tier: f64 = self
            .prices
            .tiers
            .iter()
            .zip(chances)
            .enumerate()
            .map(|(tier, (p, chance))| {
                let (count, used) = match self.mode {
                    Mode::PerClass => state.class_residents(group, tier),
                    Mode::Global | Mode::Meta => {
                        (state.resident_count(tier), state.used_bytes(tier))
                    }
                };
                chance
                    * (count as f64 * read_cost(&self.prices, p, 0.0)
                        + used as f64 * (p.retrieval_per_byte + p.egress_per_byte))
            })
            .sum();
        f64::from(TAIL_WINDOWS) * per_tier
    }

    /// What moving every object of `group` in `outer` to `expert`'s tier would cost; the
    /// costs of every group and expert are computed in one scan, once a window.
    fn switch_cost(&mut self, outer: &ReplayState, group: usize, expert: usize) -> f64 {
        let experts = self.experts.len();
        if self.switch_costs.is_none() {
            let mut costs = vec![0.0; self.groups * experts];
            let tiers = &self.prices.tiers;
            for object in 0..outer.objects() {
                let Some(from) = outer.tier_of(object) else {
                    continue;
                };
                let base = self.group(object) * experts;
                for (index, cost) in costs[base..base + experts].iter_mut().enumerate() {
                    let Some(to) = self.run(index).and_then(|run| run.state.tier_of(object)) else {
                        continue;
                    };
                    if from != to {
                        let (source, target) = (&tiers[from], &tiers[to]);
                        *cost += outer.size(object) as f64
                            * (source.retrieval_per_byte + source.egress_per_byte)
                            + source.per_request
                            + target.per_request;
                    }
                }
            }
            self.switch_costs = Some(costs);
        }
        self.switch_costs
            .as_ref()
            .and_then(|costs| costs.get(group * experts + expert))
            .copied()
            .unwrap_or(f64::INFINITY)
    }

    /// The share of a leader's mark by which a challenger must be cheaper.
    fn margin_share(&self) -> f64 {
        match self.mode {
            Mode::PerClass => CLASS_SWITCH_MARGIN,
            Mode::Global | Mode::Meta => SWITCH_MARGIN,
        }
    }

    /// The expert to lead `group` from now on (hysteresis: see the module's doc); `damped`
    /// are the marks with the tail's reads at [`READ_WEIGHT`], computed when first needed.
    fn choose_leader(
        &mut self,
        outer: &ReplayState,
        group: usize,
        marks: &[f64],
        damped: &mut Option<Vec<f64>>,
    ) -> usize {
        let experts = self.experts.len();
        let leader = self.leader[group];
        let Some(marks) = marks.get(group * experts..(group + 1) * experts) else {
            return leader;
        };
        let Some(best) = (0..marks.len()).min_by(|&a, &b| marks[a].total_cmp(&marks[b])) else {
            return leader;
        };
        let current = marks.get(leader).copied().unwrap_or(f64::INFINITY);
        let share = self.margin_share();
        let margin = share * current + self.switched_cost[group];
        if best == leader || marks[best] + margin >= current {
            return leader;
        }
        let switch = self.switch_cost(outer, group, best);
        if marks[best] + margin + switch >= current {
            return leader;
        }
        let damped = damped.get_or_insert_with(|| self.marks(READ_WEIGHT));
        let weighed = |expert: usize| {
            damped
                .get(group * experts + expert)
                .copied()
                .unwrap_or(f64::INFINITY)
        };
        let damped_current = weighed(leader);
        if weighed(best) + share * damped_current + self.switched_cost[group] + switch
            < damped_current
        {
            best
        } else {
            leader
        }
    }
}

/// The group `object` is followed in: 0 in [`Mode::Global`], its class otherwise.
fn group_of(mode: Mode, class_of: &[u8], object: u32) -> usize {
    match mode {
        Mode::PerClass => class_of.get(object as usize).map_or(0, |&c| usize::from(c)),
        Mode::Global | Mode::Meta => 0,
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
            if self.mode == Mode::PerClass {
                state.keep_classes();
            }
            let mut run = Run::new(policy, state);
            if index == 0 {
                run.keep_predictions();
            }
            *expert = Expert::Running(Box::new(run));
        }
        if self.mode == Mode::PerClass {
            let sizes = &context.summary.sizes;
            self.class_of = sizes.iter().map(|&size| class_of(0, size)).collect();
        }
        Ok(())
    }

    fn depends_on_prices(&self) -> bool {
        true
    }

    fn add_tier_records(&self, records: &mut [TierRecord]) {
        for expert in &self.experts {
            if let Expert::Running(run) = expert {
                run.state.add_tier_records(records);
                run.policy.add_tier_records(records);
            }
        }
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
        self.reclass(state, request.object);
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
        self.switch_costs = None;
        self.boundaries = self.boundaries.saturating_add(1);
        self.judge(state);
        self.retry_refused(state);
        for group in 0..self.groups {
            let occupied = self.mode != Mode::PerClass
                || self.run(0).is_some_and(|run| {
                    (0..run.state.tier_count()).any(|t| run.state.class_residents(group, t).0 > 0)
                });
            if let Some(led) = self.led.get_mut(self.leader[group]).filter(|_| occupied) {
                *led += 1;
            }
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
        let led: Vec<String> = self
            .names
            .iter()
            .zip(&self.led)
            .filter(|(_, &windows)| windows > 0)
            .map(|(name, windows)| format!("{name} {windows}"))
            .collect();
        let inner = |index: usize| self.run(index).and_then(|run| run.policy.notes());
        Some(match self.mode {
            Mode::Meta => format!(
                "windows led: {}; switches {}; global: {}; per class: {}",
                led.join(", "),
                self.switches,
                inner(0).unwrap_or_default(),
                inner(1).unwrap_or_default()
            ),
            Mode::Global => format!(
                "windows led: {}; switches {}; forecast: {}",
                led.join(", "),
                self.switches,
                inner(0).unwrap_or_default()
            ),
            Mode::PerClass => format!(
                "per class; class-windows led: {}; switches {}; moved on a change of class {}",
                led.join(", "),
                self.switches,
                self.reclass_moves
            ),
        })
    }
}
