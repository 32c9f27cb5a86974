//! Helpers of the eval tests: configurations with round prices (objects of 1 GB, so a price
//! per GB is a price per object), traces in memory, a scripted policy, and a wrapper that
//! records where a policy's objects are.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use strata_heat::eval::{
    replay, MoveOutcome, Policy, PolicyRun, Predictions, PrepareContext, ReplayState, Requests,
    TierIndex,
};
use strata_heat::trace::{TraceError, TraceFormat, TraceRequest, TraceSummary};
use strata_heat::units::DAY_MS;
use strata_heat::{Op, TieringConfig};

/// One GB of the price list.
pub const GB: u64 = 1_000_000_000;
/// A month of the price list.
pub const MONTH: i64 = 30 * DAY_MS;

/// Tier `a` (index 0): 3 $/GB-month, 1 ms, 1 $ per 1k requests, residency 1 day; tier `b`
/// (index 1, the default): 1 $/GB-month, 20 ms (slower than the 10 ms objective),
/// retrieval 0.5 $/GB, egress 0.25 $/GB, 2 $ per 1k requests, residency 7 days. Latency
/// costs 0.001 $/ms and 0.01 $ a miss. `a_extra` is added to tier `a`, `extra` at the end.
pub fn two_tiers(a_extra: &str, extra: &str) -> TieringConfig {
    let text = format!(
        r#"
default_tier = "b"

[[tier]]
name = "a"
cost_per_gb_month = 3
read_latency_ms = 1
cost_per_1k_requests = 1
min_residency = "1d"
{a_extra}

[[tier]]
name = "b"
cost_per_gb_month = 1
read_latency_ms = 20
retrieval_cost_per_gb = 0.5
egress_cost_per_gb = 0.25
cost_per_1k_requests = 2
min_residency = "7d"

[objectives]
read_latency_ms = 10
miss_penalty = 0.01
latency_price_per_ms = 0.001

[classes]
hot = ["a"]
warm = ["b"]
cold = ["b"]
{extra}
"#
    );
    TieringConfig::parse(&text).unwrap_or_else(|err| panic!("test config: {err}"))
}

pub fn read(time_ms: i64, object: u32) -> TraceRequest {
    request(time_ms, object, Op::Read)
}

pub fn request(time_ms: i64, object: u32, op: Op) -> TraceRequest {
    TraceRequest {
        time_ms,
        object,
        op,
        size: None,
    }
}

/// The summary a reader would give of these requests, objects of the given sizes.
pub fn summary(requests: &[TraceRequest], sizes: Vec<u64>) -> TraceSummary {
    let count = |op: Op| requests.iter().filter(|r| r.op == op).count() as u64;
    TraceSummary {
        format: TraceFormat::Csv,
        has_clock: true,
        requests: requests.len() as u64,
        objects: sizes.len() as u32,
        sizes,
        span_ms: requests.last().map_or(0, |r| r.time_ms),
        reads: count(Op::Read),
        writes: count(Op::Write),
        deletes: count(Op::Delete),
    }
}

/// Replays requests in memory through policies.
pub fn run(
    config: &TieringConfig,
    window_ms: i64,
    requests: &[TraceRequest],
    sizes: Vec<u64>,
    policies: Vec<Box<dyn Policy>>,
) -> Vec<PolicyRun> {
    let summary = summary(requests, sizes);
    let reopen =
        || -> Result<Requests<'_>, TraceError> { Ok(Box::new(requests.iter().copied().map(Ok))) };
    replay(&summary, config, window_ms, policies, &reopen).expect("replay")
}

/// Asserts two amounts of dollars are equal but for rounding.
#[track_caller]
pub fn assert_dollars(actual: f64, expected: f64, what: &str) {
    let tolerance = 1e-9 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected}"
    );
}

/// What a scripted policy saw of its moves.
pub type Outcomes = Rc<RefCell<Vec<(i64, u32, TierIndex, MoveOutcome)>>>;

/// A policy that makes given moves: right after the request of `object` at `time`, or at a
/// wake-up at `time`; and predicts given objects, and the objects of given tiers, at given
/// window starts.
#[derive(Default)]
pub struct Scripted {
    pub after_request: Vec<(i64, u32, TierIndex)>,
    pub at: Vec<(i64, u32, TierIndex)>,
    pub predict: Vec<(i64, Vec<u32>)>,
    pub predict_tiers: Vec<(i64, Vec<TierIndex>)>,
    pub outcomes: Outcomes,
}

impl Scripted {
    fn make(&self, state: &mut ReplayState, time: i64, object: u32, to: TierIndex) {
        let outcome = state.move_object(object, to);
        self.outcomes.borrow_mut().push((time, object, to, outcome));
    }
}

impl Policy for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        let moves: Vec<_> = self
            .after_request
            .iter()
            .filter(|(t, o, _)| *t == request.time_ms && *o == request.object)
            .copied()
            .collect();
        for (t, o, to) in moves {
            self.make(state, t, o, to);
        }
    }

    fn on_window(&mut self, _state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        for (at, objects) in &self.predict {
            if *at == now_ms {
                for &object in objects {
                    predictions.will_read(object);
                }
            }
        }
        for (at, tiers) in &self.predict_tiers {
            if *at == now_ms {
                for &tier in tiers {
                    predictions.will_read_tier(tier);
                }
            }
        }
    }

    fn wakeup_ms(&self) -> Option<i64> {
        self.at.first().map(|(t, _, _)| *t)
    }

    fn on_wakeup(&mut self, state: &mut ReplayState, now_ms: i64) {
        while self.at.first().is_some_and(|(t, _, _)| *t <= now_ms) {
            let (t, o, to) = self.at.remove(0);
            self.make(state, t, o, to);
        }
    }
}

/// Where every object was: after a request (`after_request`) or at a window start, and the
/// objects predicted to be read then (those named, then those of the tiers named).
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at_ms: i64,
    pub after_request: bool,
    pub tiers: Vec<Option<TierIndex>>,
    pub predicted: Vec<u32>,
}

pub type Snapshots = Rc<RefCell<Vec<Snapshot>>>;

/// Wraps a policy and records snapshots.
pub struct Observed {
    pub inner: Box<dyn Policy>,
    pub log: Snapshots,
}

impl Observed {
    // Returns the boxed policy with its log: the replay takes the box, the test keeps the log.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(inner: Box<dyn Policy>) -> (Box<dyn Policy>, Snapshots) {
        let log = Snapshots::default();
        (
            Box::new(Observed {
                inner,
                log: Rc::clone(&log),
            }),
            log,
        )
    }

    fn snap(&self, state: &ReplayState, at_ms: i64, after_request: bool, predicted: Vec<u32>) {
        let tiers = (0..state.objects()).map(|o| state.tier_of(o)).collect();
        self.log.borrow_mut().push(Snapshot {
            at_ms,
            after_request,
            tiers,
            predicted,
        });
    }
}

impl Policy for Observed {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn prepare(
        &mut self,
        context: &PrepareContext<'_, '_>,
    ) -> Result<(), strata_heat::eval::EvalError> {
        self.inner.prepare(context)
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        self.inner.on_request(state, request);
        self.snap(state, request.time_ms, true, Vec::new());
    }

    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        let mut mine = Predictions::default();
        self.inner.on_window(state, now_ms, &mut mine);
        let mut predicted = mine.objects().to_vec();
        for &object in &predicted {
            predictions.will_read(object);
        }
        for &tier in mine.tiers() {
            predictions.will_read_tier(tier);
            let mut residents = state.residents(tier).to_vec();
            residents.sort_unstable();
            predicted.extend(residents);
        }
        self.snap(state, now_ms, false, predicted);
    }

    fn wakeup_ms(&self) -> Option<i64> {
        self.inner.wakeup_ms()
    }

    fn on_wakeup(&mut self, state: &mut ReplayState, now_ms: i64) {
        self.inner.on_wakeup(state, now_ms);
    }
}

/// The snapshot taken at the window start `at_ms`.
pub fn at_window(log: &Snapshots, at_ms: i64) -> Snapshot {
    log.borrow()
        .iter()
        .find(|s| !s.after_request && s.at_ms == at_ms)
        .cloned()
        .unwrap_or_else(|| panic!("no window starts at {at_ms}"))
}

/// The snapshot taken right after the `index`-th request (from 0).
pub fn after_request(log: &Snapshots, index: usize) -> Snapshot {
    log.borrow()
        .iter()
        .filter(|s| s.after_request)
        .nth(index)
        .cloned()
        .unwrap_or_else(|| panic!("no request {index}"))
}
