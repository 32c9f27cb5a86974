//! The baseline policies of `strata eval` on tiny traces: where each puts each object and
//! when, what each predicts, and that `rules` decides exactly as the service's own path
//! (tracker + planner over every object) does.

use std::collections::HashSet;

use strata_heat::eval::policies::{
    lru::Lru, make_policy, rules::RulesPolicy, s3_intelligent::S3Intelligent, seed003::Seed003,
    static_::Static,
};
use strata_heat::eval::{Policy, Predictions, ReplayState, TierIndex};
use strata_heat::trace::TraceRequest;
use strata_heat::units::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};
use strata_heat::{AccessSummary, AccessTracker, ObjectState, Op, PlacementPlan, TieringConfig};

mod eval_common;
use eval_common::*;

/// Three tiers hot (0), warm (1, the default), cold (2), no residency, no capacity.
fn three_tiers(extra: &str) -> TieringConfig {
    let text = format!(
        r#"
default_tier = "warm"
[[tier]]
name = "hot"
[[tier]]
name = "warm"
[[tier]]
name = "cold"
{extra}
"#
    );
    TieringConfig::parse(&text).unwrap_or_else(|err| panic!("test config: {err}"))
}

fn sorted(mut requests: Vec<TraceRequest>) -> Vec<TraceRequest> {
    requests.sort_by_key(|r| r.time_ms);
    requests
}

#[test]
fn static_never_moves_and_never_predicts_a_read() {
    let config = three_tiers("");
    let requests = [read(0, 0), read(HOUR_MS, 0), read(2 * HOUR_MS, 1)];
    let (observed, log) = Observed::wrap(Box::new(Static));
    let runs = run(&config, HOUR_MS, &requests, vec![GB; 2], vec![observed]);
    assert!(log.borrow().iter().all(|s| s.predicted.is_empty()));
    assert_eq!(after_request(&log, 2).tiers, vec![Some(1), Some(1)]);
    assert_eq!(
        runs[0].tally.tiers.iter().map(|t| t.moves_out).sum::<u64>(),
        0
    );
}

#[test]
fn seed003_moves_objects_to_their_class_tier_at_window_boundaries_with_its_own_thresholds() {
    // The configuration's rules are ignored: seed003's thresholds are fixed.
    let config = three_tiers("[rules]\nhot_per_day = 1000\nwarm_per_day = 500\n");
    let mut requests = Vec::new();
    // Object 0: 150 reads in 25 minutes (hot: > 100 a day). Object 1: one read (warm
    // within 24 h once the hour has passed). Object 2: 20 reads (warm: > 10 a day).
    requests.extend((0..150).map(|i| read(i * 10 * SECOND_MS, 0)));
    requests.push(read(0, 1));
    requests.extend((0..20).map(|i| read(i * MINUTE_MS, 2)));
    requests.push(read(5 * DAY_MS, 3));
    let requests = sorted(requests);
    let (observed, log) = Observed::wrap(Box::new(Seed003::new(&config)));
    run(&config, 2 * HOUR_MS, &requests, vec![GB; 4], vec![observed]);

    let at_2h = at_window(&log, 2 * HOUR_MS);
    assert_eq!(at_2h.tiers[..3], [Some(0), Some(1), Some(1)]);
    assert_eq!(at_2h.predicted, vec![0]);
    // At 24 h every last access is less than 24 h old (warm); at 26 h none is (cold).
    let at_24h = at_window(&log, 24 * HOUR_MS);
    assert_eq!(at_24h.tiers[..3], [Some(1), Some(1), Some(1)]);
    assert!(at_24h.predicted.is_empty());
    assert_eq!(
        at_window(&log, 26 * HOUR_MS).tiers[..3],
        [Some(2), Some(2), Some(2)]
    );
}

#[test]
fn s3_intelligent_demotes_after_30_and_90_idle_days_and_returns_on_access() {
    let config = three_tiers("");
    let requests = [
        read(0, 0),
        read(0, 1),
        read(100 * DAY_MS, 1),
        read(200 * DAY_MS, 2),
    ];
    let (observed, log) = Observed::wrap(Box::new(S3Intelligent::new(&config)));
    run(&config, DAY_MS, &requests, vec![GB; 3], vec![observed]);

    // New objects go to frequent right after their first access.
    assert_eq!(after_request(&log, 0).tiers, vec![Some(0)]);
    let tier_of_0 = |day: i64| at_window(&log, day * DAY_MS).tiers[0];
    assert_eq!(tier_of_0(30), Some(0), "30 days idle is not more than 30");
    assert_eq!(tier_of_0(31), Some(1));
    assert_eq!(tier_of_0(90), Some(1));
    assert_eq!(tier_of_0(91), Some(2));
    assert_eq!(at_window(&log, 30 * DAY_MS).predicted, vec![0, 1]);
    assert!(at_window(&log, 31 * DAY_MS).predicted.is_empty());
    // Object 1, archived at day 91, is back on frequent right after its read at day 100.
    assert_eq!(at_window(&log, 100 * DAY_MS).tiers[1], Some(2));
    assert_eq!(after_request(&log, 2).tiers[1], Some(0));
}

#[test]
fn lru_evicts_the_least_recently_used_to_the_next_tier() {
    // The cache (tier a) holds 2.5 objects; reads are days apart (a's residency is 1 day).
    let config = two_tiers("capacity = 2500000000", "");
    let requests = [
        read(0, 0),
        read(2 * DAY_MS, 1),
        read(4 * DAY_MS, 2),
        read(6 * DAY_MS, 1),
        read(8 * DAY_MS, 0),
    ];
    let (observed, log) = Observed::wrap(Box::new(Lru::new(&config)));
    let runs = run(&config, DAY_MS, &requests, vec![GB; 3], vec![observed]);
    assert_eq!(after_request(&log, 1).tiers, vec![Some(0), Some(0)]);
    // Object 2 evicts object 0, the least recently used.
    assert_eq!(
        after_request(&log, 2).tiers,
        vec![Some(1), Some(0), Some(0)]
    );
    // Object 1 was read again at day 6, so object 0 evicts object 2.
    assert_eq!(
        after_request(&log, 4).tiers,
        vec![Some(0), Some(0), Some(1)]
    );
    // In the cache at day 8: predicted to be read.
    assert_eq!(at_window(&log, 8 * DAY_MS).predicted, vec![1, 2]);
    assert_eq!(runs[0].refused_residency, 0);
}

#[test]
fn lru_gives_up_a_promotion_when_its_victim_is_held_by_residency() {
    let config = two_tiers("capacity = 2500000000", "");
    let requests = [read(0, 0), read(HOUR_MS, 1), read(2 * HOUR_MS, 2)];
    let (observed, log) = Observed::wrap(Box::new(Lru::new(&config)));
    let runs = run(&config, DAY_MS, &requests, vec![GB; 3], vec![observed]);
    // Evicting object 0 two hours after it arrived on a is refused (1 day of residency).
    assert_eq!(
        after_request(&log, 2).tiers,
        vec![Some(0), Some(0), Some(1)]
    );
    assert_eq!(runs[0].refused_residency, 1);
}

#[test]
fn lru_without_a_tier_capacity_caches_a_tenth_of_the_traces_bytes() {
    // Ten objects of 1 GB: a cache of 1 GB, on an unlimited tier a.
    let config = two_tiers("", "");
    let requests = [read(0, 0), read(2 * DAY_MS, 1), read(3 * DAY_MS, 9)];
    let (observed, log) = Observed::wrap(Box::new(Lru::new(&config)));
    run(&config, DAY_MS, &requests, vec![GB; 10], vec![observed]);
    assert_eq!(after_request(&log, 0).tiers, vec![Some(0)]);
    assert_eq!(after_request(&log, 1).tiers, vec![Some(1), Some(0)]);
}

#[test]
fn rules_promotes_a_spike_at_once_and_demotes_at_the_periodic_pass_after_residency() {
    // Default rules: a spike is 8x the baseline with at least 20 accesses in the hour; the
    // periodic pass runs every hour from the start.
    let config = two_tiers("", "");
    let mut requests: Vec<TraceRequest> = (0..25).map(|i| read(i * SECOND_MS, 0)).collect();
    requests.push(read(2 * DAY_MS, 1));
    let (observed, log) = Observed::wrap(Box::new(RulesPolicy::new(&config).unwrap()));
    run(&config, HOUR_MS, &requests, vec![GB; 2], vec![observed]);

    assert_eq!(
        after_request(&log, 18).tiers,
        vec![Some(1)],
        "19 reads: no spike"
    );
    assert_eq!(
        after_request(&log, 19).tiers,
        vec![Some(0)],
        "the 20th read spikes"
    );
    assert_eq!(
        at_window(&log, HOUR_MS).predicted,
        vec![0],
        "hot: read within 1 h"
    );
    assert!(at_window(&log, 2 * HOUR_MS).predicted.is_empty());
    // Warm after an hour, so it wants b, but a holds it a day from 19 s: the pass at 25 h
    // (after the window boundary at 25 h) demotes it.
    assert_eq!(at_window(&log, 25 * HOUR_MS).tiers[0], Some(0));
    assert_eq!(at_window(&log, 26 * HOUR_MS).tiers[0], Some(1));
}

/// The service's decision path, as `strata serve` runs it: the access tracker keyed by
/// strings, spikes planned at once with every resident of the capacity-limited hot tiers,
/// and a periodic pass over every object; it predicts a read of every object classified hot.
struct ServicePath {
    config: TieringConfig,
    tracker: AccessTracker,
    next_pass_ms: i64,
    interval_ms: i64,
}

fn key(object: u32) -> String {
    format!("{object:010}")
}

impl ServicePath {
    fn new(config: &TieringConfig) -> Self {
        let interval_ms = config.rules.demotion_interval.as_millis() as i64;
        ServicePath {
            config: config.clone(),
            tracker: AccessTracker::new(config.tracker_config()),
            next_pass_ms: interval_ms,
            interval_ms,
        }
    }

    fn state_of(&self, state: &ReplayState, object: u32, now: i64) -> Option<ObjectState> {
        let tier = state.tier_of(object)?;
        let summary = self
            .tracker
            .summary(&key(object), now)
            .unwrap_or(AccessSummary::never_accessed(now));
        Some(ObjectState {
            key: key(object),
            size: state.size(object),
            tier: self.config.tiers[tier].name.clone(),
            placed_at_ms: state.placed_at_ms(object)?,
            decision: self.config.classification_rules().classify(&summary),
        })
    }

    fn apply(&self, state: &mut ReplayState, plan: &PlacementPlan) {
        for planned in &plan.moves {
            let to: TierIndex = self.config.tier_index(&planned.to).unwrap();
            state.move_object(planned.key.parse().unwrap(), to);
        }
    }
}

impl Policy for ServicePath {
    fn name(&self) -> &str {
        "service"
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        let (now, k) = (request.time_ms, key(request.object));
        if request.op == Op::Delete {
            self.tracker.remove(&k);
            return;
        }
        self.tracker
            .record(now, &k, now, request.op, request.size.unwrap_or(0));
        let spikes = self.tracker.take_spikes();
        if spikes.is_empty() {
            return;
        }
        let mut objects: HashSet<u32> = spikes.iter().map(|k| k.parse().unwrap()).collect();
        for &tier in &self.config.class_tiers().hot {
            if self.config.tiers[tier].capacity.is_some() {
                objects.extend(state.residents(tier));
            }
        }
        let states: Vec<ObjectState> = objects
            .into_iter()
            .filter_map(|o| self.state_of(state, o, now))
            .collect();
        let planner = self
            .config
            .planner(|n| state.used_bytes(self.config.tier_index(n).unwrap()));
        let plan = planner.unwrap().plan_spikes(now, &states);
        self.apply(state, &plan);
    }

    fn on_window(&mut self, state: &mut ReplayState, now: i64, predictions: &mut Predictions) {
        // Every existing object classified hot.
        for object in 0..state.objects() {
            if self
                .state_of(state, object, now)
                .is_some_and(|o| o.decision.class == strata_heat::Class::Hot)
            {
                predictions.will_read(object);
            }
        }
    }

    fn wakeup_ms(&self) -> Option<i64> {
        Some(self.next_pass_ms)
    }

    fn on_wakeup(&mut self, state: &mut ReplayState, now: i64) {
        self.next_pass_ms = now + self.interval_ms;
        let states: Vec<ObjectState> = (0..state.objects())
            .filter_map(|o| self.state_of(state, o, now))
            .collect();
        let planner = self
            .config
            .planner(|n| state.used_bytes(self.config.tier_index(n).unwrap()));
        let plan = planner.unwrap().plan(now, &states);
        self.apply(state, &plan);
    }
}

/// A deterministic trace: background reads skewed to low ids, bursts that spike, bursts
/// that make an object hot by its daily rate, deletes.
fn busy_trace(objects: u32, days: i64) -> Vec<TraceRequest> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut requests = Vec::new();
    for hour in 0..days * 24 {
        let start = hour * HOUR_MS;
        for _ in 0..20 {
            let a = (next() % u64::from(objects)) as u32;
            let b = (next() % u64::from(objects)) as u32;
            let at = start + (next() % HOUR_MS as u64) as i64;
            let op = match next() % 50 {
                0 => Op::Delete,
                1..=5 => Op::Write,
                _ => Op::Read,
            };
            requests.push(request(at, a.min(b), op));
        }
        if hour % 48 == 5 {
            // Hot by its daily rate for a day after the burst, long after `hot_within`.
            let object = (next() % u64::from(objects)) as u32;
            requests.extend((0..150).map(|i| read(start + i * 2 * SECOND_MS, object)));
        }
        if hour % 3 == 0 {
            let object = (next() % u64::from(objects)) as u32;
            let at = start + (next() % (HOUR_MS as u64 / 2)) as i64;
            requests.extend((0..25).map(|i| read(at + i * 10 * SECOND_MS, object)));
        }
    }
    sorted(requests)
}

#[test]
fn rules_decides_exactly_as_the_services_tracker_and_planner_over_every_object() {
    let objects = 300;
    let requests = busy_trace(objects, 12);
    let sizes: Vec<u64> = (0..u64::from(objects))
        .map(|o| GB + (o % 4) * GB / 2)
        .collect();
    // A hot tier that holds a few objects, so spikes evict and passes relieve it; an
    // unlimited one with a budget of 3 moves a pass, so passes leave moves for later; three
    // tiers, so warm and cold objects go to different tiers.
    let configs = [
        two_tiers(
            "capacity = 7000000000",
            "[rules]\nmax_moves_per_pass = 40\n",
        ),
        two_tiers("", "[rules]\nmax_moves_per_pass = 3\n"),
        three_tiers("[rules]\nmax_moves_per_pass = 5\nwarm_within = \"20h\"\n"),
    ];
    for config in configs {
        let policies: Vec<Box<dyn Policy>> = vec![
            Box::new(RulesPolicy::new(&config).unwrap()),
            Box::new(ServicePath::new(&config)),
        ];
        let runs = run(&config, 6 * HOUR_MS, &requests, sizes.clone(), policies);
        let (rules, service) = (&runs[0], &runs[1]);
        let promotions = rules.tally.tiers[0].moves_in;
        let demotions = rules.tally.tiers[0].moves_out;
        assert!(
            promotions > 20 && demotions > 20,
            "{promotions} up, {demotions} down"
        );
        assert_eq!(rules.tally, service.tally);
        assert_eq!(rules.tail, service.tail);
        assert_eq!(rules.confusion, service.confusion);
        assert!(rules.confusion.true_positives > 0);
        assert_eq!(
            (rules.refused_residency, rules.refused_capacity),
            (service.refused_residency, service.refused_capacity)
        );
    }
}

/// Replays `requests` through `rules` and the service's path; asserts they moved the same
/// objects at the same times (the tallies count each tier's byte-time and moves) and made
/// the same predictions. Returns the rules run's moves into the first tier and out of it.
fn assert_rules_decides_as_the_service(
    config: &TieringConfig,
    requests: &[TraceRequest],
    sizes: Vec<u64>,
) -> (u64, u64) {
    let policies: Vec<Box<dyn Policy>> = vec![
        Box::new(RulesPolicy::new(config).unwrap()),
        Box::new(ServicePath::new(config)),
    ];
    let runs = run(config, 6 * HOUR_MS, requests, sizes, policies);
    let (rules, service) = (&runs[0], &runs[1]);
    assert_eq!(rules.tally, service.tally);
    assert_eq!(rules.confusion, service.confusion);
    (
        rules.tally.tiers[0].moves_in,
        rules.tally.tiers[0].moves_out,
    )
}

#[test]
fn rules_leaves_in_place_a_waiting_demotion_that_a_recent_write_now_holds() {
    // 61 objects spike onto a (one a pass may demote), warm for 72 h after their reads:
    // after a's day of residency they wait to go down one an hour, the hottest (60) last.
    // Written on day 2, object 60 is held in place by that write once its reads are 72 h
    // old, until the write is: the service leaves it on a until day 5.
    let config = two_tiers(
        "",
        "[rules]\nmax_moves_per_pass = 1\nwarm_within = \"72h\"\n",
    );
    let mut requests: Vec<TraceRequest> = (0..61u32)
        .flat_map(|o| (0..25).map(move |i| read(i64::from(o) * 30 * SECOND_MS + i * SECOND_MS, o)))
        .collect();
    requests.push(request(2 * DAY_MS, 60, Op::Write));
    requests.push(request(6 * DAY_MS, 61, Op::Write));
    let (promoted, demoted) =
        assert_rules_decides_as_the_service(&config, &sorted(requests), vec![GB; 62]);
    assert_eq!((promoted, demoted), (61, 61));
}

#[test]
fn rules_takes_the_demotion_its_budget_reaches_in_the_planners_order_when_rates_tie() {
    // Object 0 read twice at 0, object 1 (written at 0) read once 24 h later, one slow
    // half-life: their baseline rates are one real number ever after, but at 101 h, when
    // residency lets both go, the planner's floats put object 1 first (the backlog's keys,
    // equal but for rounding, would put object 0 first). One move a pass: the first pass
    // must take the object the planner takes.
    let config = TieringConfig::parse(
        r#"
default_tier = "a"
[[tier]]
name = "a"
min_residency = "101h"
[[tier]]
name = "b"
[classes]
hot = ["a"]
warm = ["a"]
cold = ["b"]
[rules]
max_moves_per_pass = 1
"#,
    )
    .unwrap();
    let requests = [
        read(0, 0),
        read(0, 0),
        request(0, 1, Op::Write),
        read(DAY_MS, 1),
        request(6 * DAY_MS, 2, Op::Write),
    ];
    // Sizes differ, so that the tally (bytes × time per tier) tells which went first.
    let sizes = vec![GB, 2 * GB, GB];
    let (_, demoted) = assert_rules_decides_as_the_service(&config, &requests, sizes);
    assert_eq!(demoted, 2);
}

#[test]
fn every_named_policy_is_made_and_replays_the_same_trace() {
    let config = three_tiers("");
    let requests = busy_trace(50, 3);
    for name in strata_heat::eval::policies::POLICY_NAMES {
        let policy = make_policy(name, &config).unwrap();
        assert_eq!(policy.name(), name);
        let runs = run(&config, HOUR_MS, &requests, vec![GB; 50], vec![policy]);
        let reads = requests.iter().filter(|r| r.op == Op::Read).count() as u64;
        assert_eq!(runs[0].tally.reads(), reads, "{name}");
    }
}
