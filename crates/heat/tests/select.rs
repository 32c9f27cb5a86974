//! The `learned` policy as online selection among experts (`eval/policies/selection.rs`):
//! on a trace where one expert is far cheaper it costs about what that expert costs, its
//! decisions use only the past, and per class of objects it beats every expert alone when
//! two classes favour two experts.

mod eval_common;

use eval_common::{read, run, two_tiers, Observed, GB};
use strata_heat::eval::policies::learned::Learned;
use strata_heat::eval::policies::make_policy;
use strata_heat::eval::{CostModel, Policy, PolicyRun};
use strata_heat::trace::TraceRequest;
use strata_heat::units::{DAY_MS, HOUR_MS, MINUTE_MS};

/// Objects of the test traces, one a day.
const OBJECTS: u32 = 150;

const BASELINES: [&str; 5] = ["static", "seed003", "s3-intelligent", "lru", "rules"];

/// Each of `objects` objects read in one burst of 10 reads a minute apart, one object a
/// day, then never again: what an LRU cache of the fast tier serves best.
fn bursts(objects: u32) -> Vec<TraceRequest> {
    (0..objects)
        .flat_map(|object| {
            let start = i64::from(object) * DAY_MS + HOUR_MS;
            (0..10).map(move |r| read(start + r * MINUTE_MS, object))
        })
        .collect()
}

fn total(run: &PolicyRun, model: &CostModel) -> f64 {
    run.report(model).total_cost
}

#[test]
fn learned_costs_about_what_the_clearly_cheapest_expert_costs() {
    // The fast tier holds 3 objects: the LRU cache's size.
    let config = two_tiers("capacity = 3000000000", "");
    let model = CostModel::new(&config);
    let requests = bursts(OBJECTS);
    let names: Vec<&str> = BASELINES.iter().copied().chain(["learned"]).collect();
    let policies = names
        .iter()
        .map(|name| make_policy(name, &config).expect("policy"))
        .collect();
    let runs = run(
        &config,
        DAY_MS / 4,
        &requests,
        vec![GB; OBJECTS as usize],
        policies,
    );
    let costs: Vec<f64> = runs.iter().map(|run| total(run, &model)).collect();
    let (best, best_cost) = costs[..BASELINES.len()]
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(index, &cost)| (BASELINES[index], cost))
        .expect("baselines");
    let static_cost = costs[0];
    assert!(
        best_cost < 0.5 * static_cost,
        "{best} ({best_cost}) is not clearly cheaper than static ({static_cost})"
    );
    let learned = costs[BASELINES.len()];
    assert!(
        learned <= 1.05 * best_cost,
        "learned {learned} against {best} {best_cost} (costs {costs:?})"
    );
    let notes = runs[BASELINES.len()].notes.clone().unwrap_or_default();
    assert!(notes.contains("windows led"), "notes: {notes}");
}

#[test]
fn learned_decides_the_same_up_to_a_window_whether_or_not_the_trace_goes_on() {
    let config = two_tiers("capacity = 3000000000", "");
    let window = DAY_MS / 4;
    let full = bursts(OBJECTS);
    let past: Vec<TraceRequest> = full
        .iter()
        .copied()
        .filter(|r| r.time_ms < 60 * DAY_MS)
        .collect();
    // The replay of the past ends with the window of its last request.
    let last = past.last().map_or(0, |r| r.time_ms);
    let cut_ms = (last / window + 1) * window;
    let decisions = |requests: &[TraceRequest]| {
        let (observed, log) = Observed::wrap(make_policy("learned", &config).expect("learned"));
        run(
            &config,
            window,
            requests,
            vec![GB; OBJECTS as usize],
            vec![observed],
        );
        let log = log.borrow();
        log.iter()
            .filter(|s| s.at_ms < cut_ms)
            .map(|s| {
                (
                    s.at_ms,
                    s.after_request,
                    s.tiers.clone(),
                    s.predicted.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let without = decisions(&past);
    let with_future = decisions(&full);
    assert!(without.len() > 200, "{} decisions", without.len());
    assert_eq!(without.len(), with_future.len());
    // Objects moved at all: the decisions compared are not all "stay".
    assert!(without
        .iter()
        .any(|(_, _, tiers, _)| tiers.contains(&Some(0))));
    for (a, b) in without.iter().zip(&with_future) {
        assert_eq!(a, b, "the decision at {} ms", a.0);
    }
}

/// Two kinds of objects: `SMALL` objects of 1 kB, each read `SMALL_READS` times a day
/// (the fast tier pays: a read on the slow tier misses the objective), and `LARGE`
/// objects of 1 GB, each read once every 30 days (the slow tier pays: its storage is a
/// third of the fast tier's and a rare read costs less than the difference).
const SMALL: u32 = 10;
const LARGE: u32 = 10;
const SMALL_READS: i64 = 20;
const DAYS: i64 = 180;

fn two_kinds() -> (Vec<TraceRequest>, Vec<u64>) {
    let mut requests = Vec::new();
    for day in 0..DAYS {
        for r in 0..SMALL_READS {
            for object in 0..SMALL {
                let at = day * DAY_MS + r * HOUR_MS + i64::from(object) * MINUTE_MS;
                requests.push(read(at, object));
            }
        }
        for object in 0..LARGE {
            if day % 30 == i64::from(object) {
                requests.push(read(day * DAY_MS + 23 * HOUR_MS, SMALL + object));
            }
        }
    }
    requests.sort_by_key(|r| r.time_ms);
    let sizes = (0..SMALL + LARGE)
        .map(|object| if object < SMALL { 1000 } else { GB })
        .collect();
    (requests, sizes)
}

#[test]
fn learned_per_class_beats_every_expert_alone_when_two_classes_favour_two_experts() {
    let config = two_tiers("", "");
    let model = CostModel::new(&config);
    let (requests, sizes) = two_kinds();
    let mut names: Vec<&str> = BASELINES.to_vec();
    let mut policies: Vec<Box<dyn Policy>> = names
        .iter()
        .map(|name| make_policy(name, &config).expect("policy"))
        .collect();
    names.push("forecast");
    policies.push(Box::new(Learned::new(&config)));
    for name in ["learned-global", "learned-per-class"] {
        names.push(name);
        policies.push(make_policy(name, &config).expect("policy"));
    }
    let runs = run(&config, DAY_MS, &requests, sizes, policies);
    let costs: Vec<f64> = runs.iter().map(|run| total(run, &model)).collect();
    let experts = BASELINES.len() + 1;
    let per_class = costs[experts + 1];
    // Each kind is placed best by a different expert: the small objects belong on the
    // fast tier (static, which keeps everything on the slow one, is the worst there), the
    // large ones on the slow tier (where static keeps them).
    for (name, &cost) in names[..experts].iter().zip(&costs[..experts]) {
        assert!(
            per_class < 0.9 * cost,
            "per class {per_class} against {name} {cost} (costs {costs:?})"
        );
    }
    let global = costs[experts];
    assert!(
        per_class < global,
        "per class {per_class} against the global selection {global} (costs {costs:?})"
    );
    let notes = runs[experts + 1].notes.clone().unwrap_or_default();
    assert!(notes.contains("static"), "notes: {notes}");
}

/// The example configuration's tiers (nvme, disk, archive), as `strata eval` uses them.
fn example_tiers() -> strata_heat::config::TieringConfig {
    strata_heat::config::TieringConfig::parse(include_str!("../../server/strata.example.toml"))
        .expect("the example configuration")
}

/// Objects of 8 kB, two new ones a day over 180 days, each read three times on its
/// first day, then never again.
fn read_then_idle() -> (Vec<TraceRequest>, Vec<u64>) {
    let objects = 360;
    let requests = (0..objects)
        .flat_map(|object| {
            let start = i64::from(object / 2) * DAY_MS + i64::from(object % 2) * HOUR_MS;
            (0..3).map(move |r| read(start + r * MINUTE_MS, object))
        })
        .collect();
    (requests, vec![8_000; objects as usize])
}

/// The costs of the baselines, the forecast expert alone and `learned-global` on
/// `requests`, windows of 1.8 days (the trace's span / 100), with the notes of the last.
fn baselines_forecast_learned(requests: &[TraceRequest], sizes: Vec<u64>) -> (Vec<f64>, String) {
    let config = example_tiers();
    let model = CostModel::new(&config);
    let mut policies: Vec<Box<dyn Policy>> = BASELINES
        .iter()
        .map(|name| make_policy(name, &config).expect("policy"))
        .collect();
    policies.push(Box::new(Learned::new(&config)));
    policies.push(make_policy("learned-global", &config).expect("policy"));
    let runs = run(&config, 18 * DAY_MS / 10, requests, sizes, policies);
    let notes = runs.last().and_then(|run| run.notes.clone());
    let costs = runs.iter().map(|run| total(run, &model)).collect();
    (costs, notes.unwrap_or_default())
}

#[test]
fn learned_follows_an_expert_that_archives_when_nothing_archived_is_ever_read() {
    let (requests, sizes) = read_then_idle();
    let (costs, notes) = baselines_forecast_learned(&requests, sizes);
    let rules = costs[BASELINES.len() - 1];
    let forecast = costs[BASELINES.len()];
    let learned = costs[BASELINES.len() + 1];
    // `rules` archives the idle objects; on 8 kB objects a read on the archive costs as
    // much as years of their storage saved, so the forecast alone never does.
    assert!(
        rules < 0.8 * forecast,
        "rules {rules} against the forecast {forecast} (costs {costs:?})"
    );
    assert!(notes.contains("rules"), "notes: {notes}");
    assert!(
        learned < forecast - 0.5 * (forecast - rules),
        "learned {learned} against rules {rules} and the forecast {forecast} (costs {costs:?})"
    );
}

#[test]
fn one_read_of_an_archived_object_keeps_learned_out_of_the_archive_before_a_scan() {
    let (mut requests, sizes) = read_then_idle();
    // The first object, archived by `rules` within days, is read once on day 30; on day
    // 170 a scan reads every object.
    requests.push(read(30 * DAY_MS, 0));
    requests.extend((0..sizes.len() as u32).map(|object| read(170 * DAY_MS, object)));
    requests.sort_by_key(|r| r.time_ms);
    let (costs, notes) = baselines_forecast_learned(&requests, sizes);
    let best = costs[..BASELINES.len()]
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let learned = costs[BASELINES.len() + 1];
    assert!(
        learned <= 1.05 * best,
        "learned {learned} against the best baseline {best} (costs {costs:?}; {notes})"
    );
    assert!(!notes.contains("rules"), "notes: {notes}");
}
