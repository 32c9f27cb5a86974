//! The `oracle` policy against the replay engine, its judge: on tiny traces its cost is the
//! minimum of every tier schedule's replayed cost (brute force), its replayed cost equals
//! its plan's own total, it waits out minimum residency, it costs no more than any other
//! policy, it fits capacities and reports its gap, and its predictions are perfect.

use strata_heat::eval::policies::make_policy;
use strata_heat::eval::policies::oracle::Oracle;
use strata_heat::eval::{
    replay, CostModel, EvalError, Policy, PolicyRun, Predictions, PrepareContext, ReplayState,
    Requests, TierIndex,
};
use strata_heat::trace::{TraceError, TraceRequest};
use strata_heat::units::{DAY_MS, HOUR_MS};
use strata_heat::{Op, TieringConfig};

mod eval_common;
use eval_common::*;

/// A small seeded generator (splitmix64): the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// In `[0, max)`.
    fn real(&mut self, max: f64) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * max
    }

    fn chance(&mut self, p: f64) -> bool {
        self.real(1.0) < p
    }
}

/// One tier of a generated configuration.
struct Tier {
    storage: f64,
    latency: f64,
    retrieval: f64,
    egress: f64,
    requests: f64,
    residency_ms: i64,
    capacity: Option<u64>,
}

/// A configuration of tiers `t0..`, hot → cold, with `extra` at the end.
fn config_of(tiers: &[Tier], default_tier: usize, extra: &str) -> TieringConfig {
    let mut text = format!("default_tier = \"t{default_tier}\"\n");
    for (i, t) in tiers.iter().enumerate() {
        text.push_str(&format!(
            "[[tier]]\nname = \"t{i}\"\ncost_per_gb_month = {}\nread_latency_ms = {}\n\
             retrieval_cost_per_gb = {}\negress_cost_per_gb = {}\ncost_per_1k_requests = {}\n\
             min_residency = \"{}ms\"\n",
            t.storage, t.latency, t.retrieval, t.egress, t.requests, t.residency_ms
        ));
        if let Some(capacity) = t.capacity {
            text.push_str(&format!("capacity = \"{capacity}\"\n"));
        }
    }
    let last = tiers.len() - 1;
    text.push_str(&format!(
        "[objectives]\nread_latency_ms = 10\nmiss_penalty = 0.01\nlatency_price_per_ms = 0.001\n\
         [classes]\nhot = [\"t0\"]\nwarm = [\"t{}\"]\ncold = [\"t{last}\"]\n{extra}",
        1.min(last)
    ));
    TieringConfig::parse(&text).unwrap_or_else(|err| panic!("test config: {err}\n{text}"))
}

/// Tiers with random prices; residencies all zero or all positive (a chain through a tier
/// without residency at one boundary is a move no per-window schedule can express).
fn random_tiers(rng: &mut Rng, count: usize, window_ms: i64) -> Vec<Tier> {
    let resident = rng.chance(0.7);
    (0..count)
        .map(|_| Tier {
            storage: rng.real(5.0),
            latency: rng.real(40.0),
            retrieval: rng.real(1.0),
            egress: rng.real(0.5),
            requests: rng.real(5.0),
            residency_ms: if resident {
                1 + rng.below(3 * window_ms as u64) as i64
            } else {
                0
            },
            capacity: None,
        })
        .collect()
}

/// Random requests over `windows` windows of `window_ms` (the last window always has one),
/// in time order: mostly reads, some writes, a few deletes, some with their own size.
fn random_trace(rng: &mut Rng, objects: u32, windows: i64, window_ms: i64) -> Vec<TraceRequest> {
    let count = 2 + rng.below(3 * windows as u64 + 4);
    let mut requests: Vec<TraceRequest> = (0..count)
        .map(|_| {
            let op = match rng.below(10) {
                0..=6 => Op::Read,
                7 | 8 => Op::Write,
                _ => Op::Delete,
            };
            let mut r = request(
                rng.below((windows * window_ms) as u64) as i64,
                rng.below(u64::from(objects)) as u32,
                op,
            );
            if rng.chance(0.2) {
                r.size = Some(GB / 4 + rng.below(GB));
            }
            r
        })
        .collect();
    requests.push(read((windows - 1) * window_ms + window_ms / 2, 0));
    requests.sort_by_key(|r| r.time_ms);
    requests
}

fn random_sizes(rng: &mut Rng, objects: u32) -> Vec<u64> {
    (0..objects).map(|_| GB / 5 + rng.below(2 * GB)).collect()
}

/// A prepared oracle on requests in memory, and its planned cost and gap.
fn prepared_oracle(
    config: &TieringConfig,
    window_ms: i64,
    requests: &[TraceRequest],
    sizes: Vec<u64>,
) -> (Oracle, f64, Option<f64>) {
    let summary = summary(requests, sizes);
    let reopen =
        || -> Result<Requests<'_>, TraceError> { Ok(Box::new(requests.iter().copied().map(Ok))) };
    let context = PrepareContext {
        summary: &summary,
        config,
        window_ms,
        reopen: &reopen,
    };
    let mut oracle = Oracle::new();
    oracle.prepare(&context).expect("oracle prepares");
    let planned = oracle.planned_cost().expect("a planned cost after prepare");
    let gap = oracle.gap();
    (oracle, planned, gap)
}

fn run_policies(
    config: &TieringConfig,
    window_ms: i64,
    requests: &[TraceRequest],
    sizes: &[u64],
    policies: Vec<Box<dyn Policy>>,
) -> Vec<PolicyRun> {
    run(config, window_ms, requests, sizes.to_vec(), policies)
}

fn total(config: &TieringConfig, run: &PolicyRun) -> f64 {
    run.report(&CostModel::new(config)).total_cost
}

/// The oracle replayed; asserts its replayed cost is its plan's and returns the run.
#[track_caller]
fn replayed_oracle(
    config: &TieringConfig,
    window_ms: i64,
    requests: &[TraceRequest],
    sizes: &[u64],
) -> (PolicyRun, Option<f64>) {
    let (oracle, planned, gap) = prepared_oracle(config, window_ms, requests, sizes.to_vec());
    let runs = run(
        config,
        window_ms,
        requests,
        sizes.to_vec(),
        vec![Box::new(oracle)],
    );
    let run = runs.into_iter().next().expect("one run");
    assert_dollars(
        total(config, &run),
        planned,
        "replayed oracle against its plan",
    );
    (run, gap)
}

/// Moves every object right after its appearance (each life) and at each window boundary
/// to its scheduled tiers: the moments the oracle may move at.
struct Schedule {
    /// Per object, per life: the tier right after its first request.
    births: Vec<Vec<TierIndex>>,
    /// Per object, per window: the tier.
    tiers: Vec<Vec<TierIndex>>,
    alive: Vec<bool>,
    lives: Vec<usize>,
}

impl Policy for Schedule {
    fn name(&self) -> &str {
        "schedule"
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        let o = request.object as usize;
        if request.op == Op::Delete {
            self.alive[o] = false;
        } else if !self.alive[o] {
            self.alive[o] = true;
            state.move_object(request.object, self.births[o][self.lives[o]]);
            self.lives[o] += 1;
        }
    }

    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, _predictions: &mut Predictions) {
        let window = (now_ms / state.window_ms()) as usize;
        // Demotions first, so that a full tier makes room before objects move in.
        for demotions in [true, false] {
            for (object, tiers) in self.tiers.iter().enumerate() {
                let to = tiers[window];
                if state
                    .tier_of(object as u32)
                    .is_some_and(|t| (to > t) == demotions)
                {
                    state.move_object(object as u32, to);
                }
            }
        }
    }
}

/// Each object's lives: its appearances (first request, first after each delete).
fn lives(requests: &[TraceRequest], objects: usize) -> Vec<usize> {
    let mut alive = vec![false; objects];
    let mut lives = vec![0; objects];
    for r in requests {
        let o = r.object as usize;
        if r.op == Op::Delete {
            alive[o] = false;
        } else if !alive[o] {
            alive[o] = true;
            lives[o] += 1;
        }
    }
    lives
}

/// How many choices of a tier a brute force makes: one per life's appearance, one per
/// object at each boundary after the first.
fn decisions(requests: &[TraceRequest], objects: usize, windows: usize) -> usize {
    lives(requests, objects).iter().sum::<usize>() + objects * (windows - 1)
}

/// The cheapest replayed cost of every schedule: a tier right after each appearance and
/// a tier at every boundary after the first, for every object.
fn brute_force(
    config: &TieringConfig,
    window_ms: i64,
    requests: &[TraceRequest],
    sizes: &[u64],
    windows: usize,
) -> f64 {
    let tiers = config.tiers.len();
    let objects = sizes.len();
    let lives = lives(requests, objects);
    let mut best = f64::INFINITY;
    for code in 0..tiers.pow(decisions(requests, objects, windows) as u32) {
        let mut rest = code;
        let mut next = || {
            let tier = rest % tiers;
            rest /= tiers;
            tier
        };
        let births: Vec<Vec<TierIndex>> = lives
            .iter()
            .map(|&n| (0..n).map(|_| next()).collect())
            .collect();
        let schedule: Vec<Vec<TierIndex>> = (0..objects)
            .map(|_| {
                let mut per_window = vec![0];
                per_window.extend((1..windows).map(|_| next()));
                per_window
            })
            .collect();
        let policy = Schedule {
            births,
            tiers: schedule,
            alive: vec![false; objects],
            lives: vec![0; objects],
        };
        let runs = run(
            config,
            window_ms,
            requests,
            sizes.to_vec(),
            vec![Box::new(policy)],
        );
        best = best.min(total(config, &runs[0]));
    }
    best
}

#[test]
fn oracle_costs_the_minimum_of_every_tier_schedule_on_tiny_traces() {
    let mut rng = Rng(11);
    let window_ms = DAY_MS;
    let mut tested = 0;
    while tested < 60 {
        let tier_count = 2 + rng.below(2) as usize;
        let objects = 2 + rng.below(2) as u32;
        let windows = 3 + rng.below(3) as usize;
        let requests = random_trace(&mut rng, objects, windows as i64, window_ms);
        // At most 3^7 or 2^10 schedules.
        let most = if tier_count == 3 { 7 } else { 10 };
        if decisions(&requests, objects as usize, windows) > most {
            continue;
        }
        tested += 1;
        let case = tested;
        let tiers = random_tiers(&mut rng, tier_count, window_ms);
        let config = config_of(&tiers, rng.below(tier_count as u64) as usize, "");
        let sizes = random_sizes(&mut rng, objects);

        let (run, gap) = replayed_oracle(&config, window_ms, &requests, &sizes);
        assert_eq!(
            (run.refused_residency, run.refused_capacity),
            (0, 0),
            "case {case}: the oracle's moves are all allowed"
        );
        assert_eq!(gap, Some(0.0), "case {case}: exact without capacity");
        let oracle = total(&config, &run);
        let best = brute_force(&config, window_ms, &requests, &sizes, windows);
        assert_dollars(
            oracle,
            best,
            &format!("case {case}: oracle against brute force"),
        );
    }
}

#[test]
fn oracle_replays_at_its_planned_cost_on_a_larger_trace() {
    let mut rng = Rng(5);
    let window_ms = 6 * HOUR_MS;
    for case in 0..5 {
        let tiers = random_tiers(&mut rng, 3, window_ms);
        let config = config_of(&tiers, 1, "");
        let requests = random_trace(&mut rng, 40, 30, window_ms);
        let sizes = random_sizes(&mut rng, 40);
        let (run, gap) = replayed_oracle(&config, window_ms, &requests, &sizes);
        assert_eq!(
            (run.refused_residency, run.refused_capacity),
            (0, 0),
            "case {case}"
        );
        assert_eq!(gap, Some(0.0), "case {case}");
    }
}

/// Tier `a` costs 3 $/GB-month and serves reads for 0.002 $; `b` (the default) costs 1
/// $/GB-month and 0.782 $ a read of 1 GB. `a`'s residency is `residency`.
fn residency_config(residency: &str) -> TieringConfig {
    let text = format!(
        r#"
default_tier = "b"
[[tier]]
name = "a"
cost_per_gb_month = 3
read_latency_ms = 1
cost_per_1k_requests = 1
min_residency = "{residency}"
[[tier]]
name = "b"
cost_per_gb_month = 1
read_latency_ms = 20
retrieval_cost_per_gb = 0.5
egress_cost_per_gb = 0.25
cost_per_1k_requests = 2
[objectives]
read_latency_ms = 10
miss_penalty = 0.01
latency_price_per_ms = 0.001
"#
    );
    TieringConfig::parse(&text).unwrap_or_else(|err| panic!("test config: {err}"))
}

#[test]
fn oracle_waits_out_min_residency_before_demoting() {
    // Windows of 8 hours. Object 0 appears at 0 and is read 100 times at the start of
    // window 4: worth promoting to a at that boundary (78 $ of reads saved for a 0.753 $
    // move), not before (a costs 0.022 $ a window more than b). Then it is idle, so it
    // goes back to b as soon as a's residency allows. Object 1 makes the trace last.
    let window_ms = 8 * HOUR_MS;
    let mut requests = vec![read(0, 0)];
    requests.extend((0..100).map(|_| read(4 * window_ms, 0)));
    requests.push(read(12 * window_ms, 1));
    let sizes = vec![GB, GB];
    // The windows object 0 is on a (the first boundary it is there, the first it is back
    // on b), and the oracle's cost.
    let stay_on_a = |config: &TieringConfig| {
        let (oracle, planned, _) = prepared_oracle(config, window_ms, &requests, sizes.clone());
        let (observed, log) = Observed::wrap(Box::new(oracle));
        let runs = run(config, window_ms, &requests, sizes.clone(), vec![observed]);
        assert_eq!(
            (runs[0].refused_residency, runs[0].refused_capacity),
            (0, 0)
        );
        let on_a: Vec<i64> = (1..12)
            .filter(|&w| at_window(&log, w * window_ms).tiers[0] == Some(0))
            .collect();
        let (first, last) = (on_a[0], on_a[on_a.len() - 1]);
        assert_eq!(
            on_a.len() as i64,
            last - first + 1,
            "one stay on a: {on_a:?}"
        );
        assert!(
            first <= 4 && 4 <= last,
            "on a for the reads of window 4: {on_a:?}"
        );
        (first, last + 1, planned)
    };
    // Without residency: on a for window 4 only.
    let (first, back, free) = stay_on_a(&residency_config("0s"));
    assert_eq!((first, back), (4, 5));
    // With 1 day (3 windows) on a it stays 3 windows: however early it arrives, it cannot
    // leave sooner. That costs 2 more windows of a over b: 2 x (3 - 1) $/GB-month x 8 h.
    let (first, back, held) = stay_on_a(&residency_config("1d"));
    assert_eq!(
        back - first,
        3,
        "arrived at window {first}, back on b at {back}"
    );
    let window_of_a_over_b = 2.0 * 8.0 / (30.0 * 24.0);
    assert_dollars(
        held - free,
        2.0 * window_of_a_over_b,
        "the residency's price",
    );
    // With 20 hours (2.5 windows), leaving after 2 windows is too soon: 3 again.
    let (first, back, _) = stay_on_a(&residency_config("20h"));
    assert_eq!(
        back - first,
        3,
        "arrived at window {first}, back on b at {back}"
    );
}

#[test]
fn oracle_moves_an_object_right_after_its_first_request_when_its_first_window_pays() {
    // Object 0 appears on b with a read at 1 h and is read 100 more times at 2 h, in the
    // same window of 8 hours: promoted right after its first read, the 100 are served by
    // a. Object 1 appears with a single read and is never read again: it stays on b.
    // Object 2 is written at 40 h, so that the trace lasts beyond a's residency.
    let window_ms = 8 * HOUR_MS;
    let mut requests = vec![read(0, 1), read(HOUR_MS, 0)];
    requests.extend((0..100).map(|_| read(2 * HOUR_MS, 0)));
    requests.push(request(5 * window_ms, 2, Op::Write));
    let sizes = vec![GB; 3];
    let config = residency_config("1d");
    let (run, _) = replayed_oracle(&config, window_ms, &requests, &sizes);
    assert_eq!(run.tally.tiers[0].reads, 100, "the 100 reads on a");
    assert_eq!(
        run.tally.tiers[1].reads, 2,
        "the first reads of 0 and 1 on b"
    );
    assert_eq!(run.tally.tiers[1].moves_out, 1, "one promotion");

    let (oracle, _, _) = prepared_oracle(&config, window_ms, &requests, sizes.clone());
    let (observed, log) = Observed::wrap(Box::new(oracle));
    run_policies(&config, window_ms, &requests, &sizes, vec![observed]);
    assert_eq!(after_request(&log, 0).tiers, vec![None, Some(1)]);
    assert_eq!(after_request(&log, 1).tiers, vec![Some(0), Some(1)]);
    // Idle, it goes back to b once a's residency of a day has passed since 1 h.
    assert_eq!(
        at_window(&log, 3 * window_ms).tiers[..2],
        [Some(0), Some(1)]
    );
    assert_eq!(
        at_window(&log, 4 * window_ms).tiers[..2],
        [Some(1), Some(1)]
    );
}

/// Tiers hot → cold where colder is cheaper to store and dearer in every part of a read
/// and a request, any of them the default, and the rules' pass daily (windows of a day).
fn monotone_tiers(rng: &mut Rng) -> TieringConfig {
    let mut tiers: Vec<Tier> = Vec::new();
    let (mut storage, mut latency, mut retrieval, mut egress, mut requests) =
        (3.0 + rng.real(3.0), rng.real(2.0), 0.0, 0.0, rng.real(1.0));
    for _ in 0..3 {
        tiers.push(Tier {
            storage,
            latency,
            retrieval,
            egress,
            requests,
            residency_ms: rng.below(3) as i64 * DAY_MS + rng.below(DAY_MS as u64) as i64,
            capacity: None,
        });
        storage *= rng.real(0.8);
        latency += rng.real(40.0);
        retrieval += rng.real(0.5);
        egress += rng.real(0.3);
        requests += rng.real(3.0);
    }
    let default_tier = rng.below(3) as usize;
    config_of(
        &tiers,
        default_tier,
        "[rules]\ndemotion_interval = \"1d\"\n",
    )
}

/// Requests at window starts only, one object per instant: every policy then moves objects
/// at window boundaries or right after requests at a boundary, where the oracle could make
/// the same moves or better ones (before the requests, or right after an appearance).
fn boundary_trace(rng: &mut Rng, objects: u32, windows: i64) -> Vec<TraceRequest> {
    let mut requests = Vec::new();
    for w in 0..windows {
        if !rng.chance(0.6) && w + 1 < windows {
            continue;
        }
        let object = rng.below(u64::from(objects)) as u32;
        for _ in 0..1 + rng.below(4) {
            let op = if rng.chance(0.8) { Op::Read } else { Op::Write };
            requests.push(request(w * DAY_MS, object, op));
        }
        if rng.chance(0.05) {
            requests.push(request(w * DAY_MS, object, Op::Delete));
        }
    }
    requests
}

#[test]
fn oracle_never_costs_more_than_any_other_policy_on_random_small_traces() {
    let mut rng = Rng(2024);
    let others = ["static", "seed003", "s3-intelligent", "lru", "rules"];
    for case in 0..200 {
        let config = monotone_tiers(&mut rng);
        let objects = 2 + rng.below(4) as u32;
        let windows = 10 + rng.below(40) as i64;
        let requests = boundary_trace(&mut rng, objects, windows);
        let sizes = random_sizes(&mut rng, objects);
        let (oracle, _, _) = prepared_oracle(&config, DAY_MS, &requests, sizes.clone());
        let mut policies: Vec<Box<dyn Policy>> = vec![Box::new(oracle)];
        for name in others {
            policies.push(make_policy(name, &config).expect("a baseline policy"));
        }
        let runs = run(&config, DAY_MS, &requests, sizes, policies);
        let oracle = total(&config, &runs[0]);
        for other in &runs[1..] {
            assert_eq!(other.gap, None, "{} has no gap to report", other.policy);
            let cost = total(&config, other);
            assert!(
                oracle <= cost + 1e-9 * cost.abs().max(1.0),
                "case {case}: oracle {oracle} > {} {cost}",
                other.policy
            );
        }
    }
}

#[test]
fn oracle_fits_a_binding_capacity_without_refusals_and_reports_its_gap() {
    // Tier t0 holds one of the three objects of 1 GB; they are read often enough to want
    // t0, so its capacity binds.
    let mut rng = Rng(99);
    let window_ms = DAY_MS;
    for case in 0..20 {
        let mut tiers = random_tiers(&mut rng, 2, window_ms);
        tiers[0].storage = 1.0;
        tiers[0].latency = 1.0;
        tiers[0].retrieval = 0.0;
        tiers[0].egress = 0.0;
        tiers[1].latency = 20.0;
        tiers[1].retrieval = 0.5 + rng.real(0.5);
        // Room for exactly one object, or for one and a half (the relaxation may then
        // share the half, a gap no price closes).
        tiers[0].capacity = Some(if case % 2 == 0 { GB } else { GB + GB / 2 });
        let config = config_of(&tiers, 1, "");
        let mut requests = Vec::new();
        for w in 0..4 {
            for object in 0..3 {
                for _ in 0..rng.below(4) {
                    requests.push(read(
                        w * window_ms + rng.below(window_ms as u64) as i64,
                        object,
                    ));
                }
            }
        }
        requests.push(read(4 * window_ms, 0));
        requests.sort_by_key(|r| r.time_ms);
        let sizes = vec![GB; 3];

        let (oracle, planned, gap) = prepared_oracle(&config, window_ms, &requests, sizes.clone());
        let (observed, log) = Observed::wrap(Box::new(oracle));
        let runs = run(&config, window_ms, &requests, sizes.clone(), vec![observed]);
        let run = &runs[0];
        assert_eq!(
            (run.refused_residency, run.refused_capacity),
            (0, 0),
            "case {case}"
        );
        let cost = total(&config, run);
        assert_dollars(
            cost,
            planned,
            &format!("case {case}: replayed against plan"),
        );
        for w in 1..5 {
            let on_t0 = at_window(&log, w * window_ms)
                .tiers
                .iter()
                .filter(|&&t| t == Some(0))
                .count();
            assert!(
                on_t0 <= 1,
                "case {case}: {on_t0} objects on t0 at window {w}"
            );
        }
        let gap = gap.expect("the oracle reports a gap");
        assert!(gap >= 0.0, "case {case}: gap {gap}");
        let report = run.report(&CostModel::new(&config));
        assert_eq!(report.gap, Some(gap), "case {case}");
        let json = serde_json::to_value(&report).expect("a report serialises");
        assert_eq!(json["gap"].as_f64(), Some(gap), "case {case}");
        // The bound the gap comes from is below every feasible schedule's cost.
        let best = brute_force(&config, window_ms, &requests, &sizes, 5);
        let bound = cost / (1.0 + gap);
        assert!(
            best <= cost + 1e-9 * cost && bound <= best + 1e-9 * best,
            "case {case}: bound {bound}, brute force {best}, oracle {cost}"
        );
        // Without the capacity the oracle would use t0 for more than one object.
        tiers[0].capacity = None;
        let free = config_of(&tiers, 1, "");
        let (_, unconstrained, free_gap) = prepared_oracle(&free, window_ms, &requests, sizes);
        assert_eq!(free_gap, Some(0.0));
        assert!(unconstrained <= cost + 1e-9 * cost, "case {case}");
    }
}

#[test]
fn oracle_predicts_exactly_the_objects_read_in_each_window() {
    let mut rng = Rng(7);
    let window_ms = HOUR_MS;
    let tiers = random_tiers(&mut rng, 3, window_ms);
    let config = config_of(&tiers, 1, "");
    let mut requests = random_trace(&mut rng, 30, 40, window_ms);
    // Object 30 exists when window 5 starts but is read in it only after a delete and a
    // new appearance: the replay does not count that read (a new object), nor may the
    // oracle predict it.
    requests.extend([
        read(0, 30),
        request(5 * window_ms + 10, 30, Op::Delete),
        read(5 * window_ms + 20, 30),
    ]);
    requests.sort_by_key(|r| r.time_ms);
    let sizes = random_sizes(&mut rng, 31);
    let (run, _) = replayed_oracle(&config, window_ms, &requests, &sizes);
    let metrics = run.confusion.metrics();
    assert!(run.confusion.true_positives > 20, "{:?}", run.confusion);
    assert_eq!(
        (run.confusion.false_positives, run.confusion.false_negatives),
        (0, 0)
    );
    assert_eq!(
        (
            metrics.accuracy,
            metrics.precision,
            metrics.recall,
            metrics.f1
        ),
        (1.0, 1.0, 1.0, 1.0)
    );
}

#[test]
fn oracle_reports_a_damaged_trace_with_the_readers_error() {
    let config = two_tiers("", "");
    let requests = [read(0, 0)];
    let summary = summary(&requests, vec![GB]);
    let reopen = || -> Result<Requests<'_>, TraceError> {
        let bad = TraceError {
            path: "t.csv".into(),
            location: "line 3".into(),
            reason: "\"x\" is not a number".into(),
        };
        Ok(Box::new([Ok(read(0, 0)), Err(bad)].into_iter()))
    };
    let oracle: Box<dyn Policy> = Box::new(Oracle::new());
    let error =
        replay(&summary, &config, DAY_MS, vec![oracle], &reopen).expect_err("the trace's error");
    assert!(matches!(error, EvalError::Trace(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "trace t.csv, line 3: \"x\" is not a number"
    );
}
