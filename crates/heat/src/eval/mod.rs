//! `strata eval`: replay an access trace through tiering policies on the tiers of a
//! configuration, under one cost model, and score each policy's cost and its next-window
//! predictions.
//!
//! # The replay's rules (the same for every policy)
//!
//! - **Time** is [`TraceRequest::time_ms`], already multiplied by `--time-scale` by the
//!   reader. Rule durations (`hot_within`, 30 days, `min_residency`, ...) are *not* scaled:
//!   stretching a trace is how slow rules get to act. Windows are `window_ms` long (default
//!   [`default_window_ms`]: the span / 100, at least 1 ms); window `k` is
//!   `[k·W, (k+1)·W)`, and the replay ends at the end of the window of the last request.
//! - **Objects** appear at their first request (or their first after a delete) on the
//!   configuration's `default_tier`, never refused even when that overfills it, and exist
//!   until the end or a delete. An object's size is the trace summary's
//!   ([`TraceSummary::sizes`]); the bytes of a read are the request's size if it gives one,
//!   else the object's size.
//! - **Requests** are served from the tier the object is on at that moment. A policy sees
//!   each request right after it is served and may move objects then (LRU, S3-IT back to
//!   frequent, reactive spikes), at window boundaries, or at wake-ups it asks for (the
//!   `rules` policy's periodic pass). Moves are instant, applied one by one through
//!   [`ReplayState::move_object`], and refused (and counted) when a demotion comes before
//!   the source tier's `min_residency` (the planner's rule: promotions are never held, see
//!   [`crate::placement::residency_holds`]) or when the target tier's capacity would be
//!   exceeded.
//! - **Costs**: see [`cost`]. Storage is integrated over time; reads, writes and moves are
//!   priced per tier; latency has a price per read-millisecond and a penalty per read on a
//!   tier slower than the objective (`[objectives]` in `strata.toml`).
//! - **Censoring horizon**: the trace's end is not knowledge. After the last window, every
//!   existing object is assumed to go on for [`TAIL_WINDOWS`] more windows exactly as in
//!   the last window (the same number of reads, each of the object's size, and writes; an
//!   object not accessed in the last window is assumed idle), stored and served on its final
//!   placement for every policy alike. The tail's costs are included in each kind of cost
//!   (and reported alone as `tail_cost`); misses and mean read latency count the trace's
//!   reads only.
//! - **Predictions**: at each window boundary a policy names the existing objects it
//!   expects to be read in the window that starts; see [`metrics`].
//!
//! Policies ([`policies`]): `static`, `seed003`, `s3-intelligent`, `lru`, `rules`, `oracle`;
//! the `learned` policy of issue 11 plugs into the same [`Policy`] trait. Prices: [`crate::cost`].

mod class_books;
pub mod metrics;
pub mod policies;
mod replay;

use std::collections::VecDeque;

use serde::Serialize;

use crate::config::TieringConfig;
use crate::trace::{TraceError, TraceRequest, TraceSummary};

pub use crate::cost::{CostModel, Costs, Tally, TierTally};
pub use metrics::{Confusion, PredictionMetrics};
pub(crate) use replay::prefetch;
pub use replay::{MoveOutcome, Refusal, ReplayState};

/// A tier's position in the configuration, 0 being the hottest.
pub type TierIndex = usize;

/// Windows of censoring tail after the last window.
pub const TAIL_WINDOWS: u32 = 10;

/// At most this many windows: each costs the policies a scan of their active objects.
pub const MAX_WINDOWS: i64 = 100_000;

/// How many requests the replay reads ahead of the one it replays (see [`Policy::prefetch`]):
/// enough to cover a load from memory at the replay's pace of under a microsecond a request.
const LOOKAHEAD: usize = 8;

/// A stream of requests (a [`crate::trace`] reader, or requests in memory).
pub type Requests<'a> = Box<dyn Iterator<Item = Result<TraceRequest, TraceError>> + 'a>;

/// Opens the trace again from its start (the oracle reads the future; the learned policy
/// trains walk-forward).
pub type Reopen<'a> = dyn Fn() -> Result<Requests<'a>, TraceError> + 'a;

/// What a policy may look at before the replay starts.
pub struct PrepareContext<'a, 'r> {
    /// The trace's summary (sizes, span, counts).
    pub summary: &'a TraceSummary,
    /// The configuration the replay runs on.
    pub config: &'a TieringConfig,
    /// The window length, ms.
    pub window_ms: i64,
    /// The trace from its start.
    pub reopen: &'a Reopen<'r>,
}

/// The objects a policy expects to be read in the window that starts.
#[derive(Clone, Debug, Default)]
pub struct Predictions {
    read: Vec<u32>,
    tiers: Vec<TierIndex>,
}

impl Predictions {
    /// Predicts that `object` will be read in the next window (duplicates and objects that
    /// do not exist are ignored).
    #[inline]
    pub fn will_read(&mut self, object: u32) {
        self.read.push(object);
    }

    /// Predicts that every object on `tier` at the window's start will be read in it: the
    /// same as naming each, without the cost of naming them.
    pub fn will_read_tier(&mut self, tier: TierIndex) {
        self.tiers.push(tier);
    }

    /// The tiers named so far.
    pub fn tiers(&self) -> &[TierIndex] {
        &self.tiers
    }

    /// The objects named so far, in order (with any duplicates).
    pub fn objects(&self) -> &[u32] {
        &self.read
    }
}

/// A tiering policy, driven by the replay. Policies keep their per-object state in vectors
/// indexed by object id, never maps keyed by strings: the replay must sustain a million
/// requests a second.
pub trait Policy {
    /// The name `--policy` selects it by.
    fn name(&self) -> &str;

    /// Called once before the replay, with the trace's summary and a way to read it.
    fn prepare(&mut self, _context: &PrepareContext<'_, '_>) -> Result<(), EvalError> {
        Ok(())
    }

    /// Whether the policy's decisions depend on prices (`--sweep` replays it again at each
    /// price instead of re-pricing one replay).
    fn depends_on_prices(&self) -> bool {
        false
    }

    /// A request of `object` comes a few requests from now: a policy whose per-object data
    /// does not stay in cache may start loading it (a hint: it must change no decision).
    fn prefetch(&self, _object: u32) {}

    /// A request was just served (the object exists unless it was a delete).
    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest);

    /// A window starts at `now_ms`: move objects if wanted, then name the objects expected
    /// to be read in it.
    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions);

    /// When the policy wants [`Policy::on_wakeup`] next (between requests), if ever.
    fn wakeup_ms(&self) -> Option<i64> {
        None
    }

    /// The time asked for by [`Policy::wakeup_ms`] has come.
    fn on_wakeup(&mut self, _state: &mut ReplayState, _now_ms: i64) {}

    /// For a policy that approximates an optimum (the `oracle` under capacity): its
    /// optimality gap, (cost − lower bound) / lower bound, 0 when exact.
    fn gap(&self) -> Option<f64> {
        None
    }

    /// For a policy that runs replays of its own (the `learned` selection among experts):
    /// adds each of their records of every tier to `records` (reads served there, windows
    /// it held objects), so a selection of selections judges on all the evidence.
    fn add_tier_records(&self, _records: &mut [TierRecord]) {}

    /// What the policy has to say of its run for a benchmark (the `learned` selection: which
    /// expert led how many windows); not part of the report.
    fn notes(&self) -> Option<String> {
        None
    }
}

/// What replays saw of one tier: whether objects resting there were ever read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierRecord {
    /// Reads served on the tier, summed over the replays.
    pub reads: u64,
    /// Windows that started with objects on the tier, the most of any replay.
    pub populated_windows: u32,
}

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The settings cannot work for this trace.
    #[error("{0}")]
    Settings(String),
    /// A policy could not be prepared.
    #[error("policy {policy}: {reason}")]
    Policy {
        /// The policy.
        policy: String,
        /// What went wrong and what to do.
        reason: String,
    },
}

/// The default window: the trace's span / 100, at least 1 ms.
pub fn default_window_ms(span_ms: i64) -> i64 {
    (span_ms / 100).max(1)
}

/// What one policy's replay counted, before pricing.
#[derive(Clone, Debug)]
pub struct PolicyRun {
    /// The policy.
    pub policy: String,
    /// Whether its decisions depend on prices.
    pub depends_on_prices: bool,
    /// Counts over the trace.
    pub tally: Tally,
    /// Counts of the censoring tail.
    pub tail: Tally,
    /// Demotions refused for minimum residency.
    pub refused_residency: u64,
    /// Moves refused for capacity.
    pub refused_capacity: u64,
    /// Next-window predictions against reads.
    pub confusion: Confusion,
    /// The policy's optimality gap, if it reports one ([`Policy::gap`]).
    pub gap: Option<f64>,
    /// The policy's notes on its run ([`Policy::notes`]).
    pub notes: Option<String>,
}

/// One policy's result, priced: a row of `strata eval`.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyReport {
    /// The policy.
    pub policy: String,
    /// Dollars in all, tail included.
    pub total_cost: f64,
    /// Dollars by kind, tail included.
    pub cost: Costs,
    /// Dollars of the censoring tail alone.
    pub tail_cost: f64,
    /// Reads of the trace.
    pub reads: u64,
    /// Reads served slower than the latency objective.
    pub misses: u64,
    /// `misses / reads` (0 without reads).
    pub miss_share: f64,
    /// Mean latency of the trace's reads, ms.
    pub mean_read_latency_ms: f64,
    /// Moves made.
    pub moves: u64,
    /// Bytes moved.
    pub bytes_moved: u64,
    /// Demotions refused for minimum residency.
    pub refused_residency: u64,
    /// Moves refused for capacity.
    pub refused_capacity: u64,
    /// Next-window prediction scores.
    pub prediction: PredictionMetrics,
    /// The optimality gap of a policy that reports one (the `oracle`; 0 when exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<f64>,
}

impl PolicyRun {
    /// The run priced by a cost model.
    pub fn report(&self, model: &CostModel) -> PolicyReport {
        let trace = model.price(&self.tally);
        let tail = model.price(&self.tail);
        let cost = trace.plus(&tail);
        let reads = self.tally.reads();
        let misses = model.misses(&self.tally);
        PolicyReport {
            policy: self.policy.clone(),
            total_cost: cost.total(),
            cost,
            tail_cost: tail.total(),
            reads,
            misses,
            miss_share: if reads == 0 {
                0.0
            } else {
                misses as f64 / reads as f64
            },
            mean_read_latency_ms: model.mean_read_latency_ms(&self.tally),
            moves: self.tally.tiers.iter().map(|t| t.moves_out).sum(),
            bytes_moved: u64::try_from(
                self.tally
                    .tiers
                    .iter()
                    .map(|t| t.moved_out_bytes)
                    .sum::<u128>(),
            )
            .unwrap_or(u64::MAX),
            refused_residency: self.refused_residency,
            refused_capacity: self.refused_capacity,
            prediction: self.confusion.metrics(),
            gap: self.gap,
        }
    }
}

/// Replays the trace once through every policy in lock-step (the trace is read once), with
/// windows of `window_ms`; returns each policy's counts in the order given.
pub fn replay(
    summary: &TraceSummary,
    config: &TieringConfig,
    window_ms: i64,
    mut policies: Vec<Box<dyn Policy>>,
    reopen: &Reopen<'_>,
) -> Result<Vec<PolicyRun>, EvalError> {
    if window_ms < 1 {
        return Err(EvalError::Settings(format!(
            "window of {window_ms} ms: a window must be at least 1 ms"
        )));
    }
    let windows = summary.span_ms / window_ms + 1;
    if windows > MAX_WINDOWS {
        return Err(EvalError::Settings(format!(
            "a window of {window_ms} ms cuts the trace's span of {} ms into {windows} windows, \
             more than {MAX_WINDOWS}; use a window of at least {} ms",
            summary.span_ms,
            summary.span_ms / (MAX_WINDOWS - 1) + 1
        )));
    }
    let context = PrepareContext {
        summary,
        config,
        window_ms,
        reopen,
    };
    for policy in &mut policies {
        policy.prepare(&context)?;
    }
    let mut runs: Vec<replay::Run> = policies
        .into_iter()
        .map(|policy| {
            let state = ReplayState::new(config, summary.sizes.clone(), window_ms);
            replay::Run::new(policy, state)
        })
        .collect();
    let mut last_ms = None;
    let mut requests = reopen()?;
    // Requests read but not yet replayed: each is announced to the runs when read, so
    // that its object's data is loading while the ones before it are replayed.
    let mut ahead: VecDeque<TraceRequest> = VecDeque::with_capacity(LOOKAHEAD + 1);
    loop {
        if let Some(request) = requests.next().transpose()? {
            for run in &runs {
                run.prefetch(request.object);
            }
            ahead.push_back(request);
            if ahead.len() <= LOOKAHEAD {
                continue;
            }
        }
        let Some(request) = ahead.pop_front() else {
            break;
        };
        last_ms = Some(request.time_ms);
        for run in &mut runs {
            run.request(&request);
        }
    }
    Ok(runs
        .into_iter()
        .map(|mut run| {
            run.finish(last_ms, TAIL_WINDOWS);
            PolicyRun {
                policy: run.policy.name().to_string(),
                depends_on_prices: run.policy.depends_on_prices(),
                tally: run.state.tally,
                tail: run.state.tail,
                refused_residency: run.state.refused_residency,
                refused_capacity: run.state.refused_capacity,
                confusion: run.state.confusion,
                gap: run.policy.gap(),
                notes: run.policy.notes(),
            }
        })
        .collect())
}

/// Replays the named policies (see [`policies::POLICY_NAMES`]) and prices their runs with
/// the configuration's prices.
pub fn evaluate(
    summary: &TraceSummary,
    config: &TieringConfig,
    window_ms: i64,
    names: &[&str],
    reopen: &Reopen<'_>,
) -> Result<Vec<PolicyReport>, EvalError> {
    let runs = replay(
        summary,
        config,
        window_ms,
        make_policies(names, config)?,
        reopen,
    )?;
    let model = CostModel::new(config);
    Ok(runs.iter().map(|run| run.report(&model)).collect())
}

/// The reports of the named policies at each latency price (`--sweep`), in the order of
/// `prices`. A policy whose decisions do not depend on prices is replayed once and priced
/// at each price; the others are replayed at each price.
pub fn sweep(
    summary: &TraceSummary,
    config: &TieringConfig,
    window_ms: i64,
    names: &[&str],
    prices: &[f64],
    reopen: &Reopen<'_>,
) -> Result<Vec<(f64, Vec<PolicyReport>)>, EvalError> {
    let once = replay(
        summary,
        config,
        window_ms,
        make_policies(names, config)?,
        reopen,
    )?;
    let model = CostModel::new(config);
    let mut rows = Vec::with_capacity(prices.len());
    for &price in prices {
        let mut priced = config.clone();
        priced.objectives.latency_price_per_ms = price;
        let again: Vec<&str> = once
            .iter()
            .filter(|run| run.depends_on_prices)
            .map(|run| run.policy.as_str())
            .collect();
        let mut rerun = if again.is_empty() {
            Vec::new()
        } else {
            replay(
                summary,
                &priced,
                window_ms,
                make_policies(&again, &priced)?,
                reopen,
            )?
        }
        .into_iter();
        let model = model.with_latency_price(price);
        let reports = once
            .iter()
            .map(|run| {
                let run = if run.depends_on_prices {
                    rerun.next().unwrap_or_else(|| run.clone())
                } else {
                    run.clone()
                };
                run.report(&model)
            })
            .collect();
        rows.push((price, reports));
    }
    Ok(rows)
}

fn make_policies(
    names: &[&str],
    config: &TieringConfig,
) -> Result<Vec<Box<dyn Policy>>, EvalError> {
    names
        .iter()
        .map(|name| {
            policies::make_policy(name, config).map_err(|reason| EvalError::Policy {
                policy: name.to_string(),
                reason,
            })
        })
        .collect()
}
