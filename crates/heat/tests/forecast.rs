//! The forecast of next-window reads and the `learned` policy: features computed by hand on
//! a tiny history, walk-forward training that never sees the future, the learned policy
//! against seed003 and static on a daily pattern, the choice of the score that predicts
//! "read", and model files saved, loaded and damaged.

use strata_heat::eval::policies::make_policy;
use strata_heat::eval::CostModel;
use strata_heat::forecast::{
    FeatureStore, ForecastModel, ForecastSettings, Forecaster, FEATURES, FEATURE_NAMES,
    MODEL_FORMAT_VERSION,
};
use strata_heat::trace::TraceRequest;
use strata_heat::units::{DAY_MS, HOUR_MS, MINUTE_MS};
use strata_heat::{Op, TieringConfig};

mod eval_common;
use eval_common::*;

fn sized(time_ms: i64, object: u32, op: Op, size: u64) -> TraceRequest {
    TraceRequest {
        time_ms,
        object,
        op,
        size: Some(size),
    }
}

fn feature(row: &[f64], name: &str) -> f64 {
    let column = FEATURE_NAMES
        .iter()
        .position(|&n| n == name)
        .unwrap_or_else(|| panic!("no feature {name}"));
    row[column]
}

#[test]
fn features_describe_the_history_before_the_boundary_as_computed_by_hand() {
    // Windows of 1 h. Object 0 (1 KiB): reads at 0.5 h, 1.5 h and 1.7 h, a write at 2.2 h;
    // its features at the start of window 3 (3 h).
    let mut store = FeatureStore::new(HOUR_MS);
    for request in [
        sized(30 * MINUTE_MS, 0, Op::Read, 1024),
        sized(90 * MINUTE_MS, 0, Op::Read, 1024),
        sized(102 * MINUTE_MS, 0, Op::Read, 1024),
        sized(132 * MINUTE_MS, 0, Op::Write, 1024),
    ] {
        store.record(&request);
    }
    let mut row = Vec::new();
    store.features(0, 1024, 3 * HOUR_MS, &mut row);
    assert_eq!(row.len(), FEATURES);
    let near = |name: &str, expected: f64| {
        let got = feature(&row, name);
        assert!(
            (got - expected).abs() < 1e-9,
            "{name}: got {got}, expected {expected}"
        );
    };
    // Window 2 had the write only; windows 0-2 the three reads.
    near("reads_last_1", 0.0);
    near("reads_last_4", 3.0);
    near("reads_last_16", 3.0);
    near("writes_last_1", 1.0);
    // Decayed reads, half-lives 1 and 8 windows: 1 at 0.5 h, halved by 1.5 h, + 1, decayed
    // 0.2 h to 1.7 h, + 1, decayed 1.3 h to 3 h.
    let decayed = |half: f64| {
        ((1.0 * (-1.0 / half).exp2() + 1.0) * (-0.2 / half).exp2() + 1.0) * (-1.3 / half).exp2()
    };
    near("decayed_reads_fast", decayed(1.0));
    near("decayed_reads_slow", decayed(8.0));
    near("windows_since_last_access", 0.8);
    // Gaps of 1, 0.2 and 0.5 windows: mean 17/30, sample variance.
    let mean = 1.7 / 3.0;
    near("inter_arrival_mean_windows", mean);
    near(
        "inter_arrival_var_windows",
        ((1.0 - mean).powi(2) + (0.2 - mean).powi(2) + (0.5 - mean).powi(2)) / 2.0,
    );
    near("log2_size", 10.0);
    near("age_windows", 2.5);
    near("read_share", 0.75);
    near("hour_of_day", 3.0);
    near("day_of_week", 0.0);

    // Two days and 5 hours later: every count has left its horizon, the clock has moved.
    row.clear();
    store.features(0, 1024, 2 * DAY_MS + 5 * HOUR_MS, &mut row);
    assert_eq!(feature(&row, "reads_last_16"), 0.0);
    assert_eq!(feature(&row, "writes_last_1"), 0.0);
    assert_eq!(feature(&row, "hour_of_day"), 5.0);
    assert_eq!(feature(&row, "day_of_week"), 2.0);

    // An object never seen: no last access, no gaps.
    row.clear();
    store.features(7, 1, 3 * HOUR_MS, &mut row);
    assert!(feature(&row, "windows_since_last_access").is_nan());
    assert!(feature(&row, "inter_arrival_mean_windows").is_nan());
    assert_eq!(feature(&row, "reads_last_16"), 0.0);

    // A request out of time order counts at the latest time seen: no negative gap.
    store.record(&sized(HOUR_MS, 0, Op::Read, 1024));
    row.clear();
    store.features(0, 1024, 3 * HOUR_MS, &mut row);
    assert_eq!(feature(&row, "reads_last_1"), 1.0);
    assert_eq!(feature(&row, "reads_last_4"), 4.0);
    assert!(feature(&row, "inter_arrival_mean_windows") >= 0.0);

    // A delete forgets the history.
    store.record(&sized(3 * HOUR_MS, 0, Op::Delete, 1024));
    row.clear();
    store.features(0, 1024, 4 * HOUR_MS, &mut row);
    assert_eq!(feature(&row, "reads_last_16"), 0.0);
    assert!(feature(&row, "windows_since_last_access").is_nan());
}

/// `objects` objects, object `i` read `reads` times in hour `i % 24` of every day, for
/// `days` days, in time order.
fn daily_trace(objects: u32, days: i64, reads: i64) -> Vec<TraceRequest> {
    let mut requests = Vec::new();
    for day in 0..days {
        for hour in 0..24 {
            for object in (0..objects).filter(|o| i64::from(o % 24) == hour) {
                let start = day * DAY_MS + hour * HOUR_MS + i64::from(object / 24) * MINUTE_MS;
                requests.extend((0..reads).map(|r| read(start + r * MINUTE_MS / 4, object)));
            }
        }
    }
    requests.sort_by_key(|r| r.time_ms);
    requests
}

/// Every boundary's forecast, by window, of a forecaster fed `requests` with windows of 1 h.
fn forecasts(requests: &[TraceRequest], windows: i64) -> Vec<Vec<(u32, f64)>> {
    let mut forecaster = Forecaster::new(HOUR_MS, ForecastSettings::default());
    let mut next = requests.iter().peekable();
    let mut out = Vec::new();
    for window in 0..windows {
        let start = window * HOUR_MS;
        while let Some(request) = next.next_if(|r| r.time_ms < start) {
            forecaster.record(request);
        }
        forecaster.boundary(start, |_| 1 << 20);
        out.push(forecaster.forecast().predicted.clone());
    }
    out
}

#[test]
fn walk_forward_forecasts_at_a_window_are_the_same_whether_or_not_later_windows_exist() {
    // Ten days of a daily pattern, then a future that differs: every object read every hour.
    let past = daily_trace(48, 10, 3);
    let cut = 10 * DAY_MS;
    let mut full = past.clone();
    for hour in 0..48 {
        full.extend((0..48).map(|o| read(cut + hour * HOUR_MS + i64::from(o), o)));
    }
    let windows = cut / HOUR_MS;
    let with_future = forecasts(&full, windows + 48);
    let without = forecasts(&past, windows);
    assert!(
        without.iter().filter(|f| !f.is_empty()).count() > 100,
        "the model forecasts for most windows"
    );
    for (window, (a, b)) in without.iter().zip(&with_future).enumerate() {
        assert_eq!(a, b, "window {window}");
    }
    // The same through the replay, where the policy is handed a way to read the whole
    // trace: its placements and predictions at every boundary before the cut are the same.
    let config = two_tiers("", "");
    let boundaries = |requests: &[TraceRequest]| {
        let (observed, log) = Observed::wrap(make_policy("learned", &config).expect("learned"));
        run(&config, HOUR_MS, requests, vec![GB; 48], vec![observed]);
        let log = log.borrow();
        log.iter()
            .filter(|s| !s.after_request && s.at_ms < cut)
            .map(|s| (s.at_ms, s.tiers.clone(), s.predicted.clone()))
            .collect::<Vec<_>>()
    };
    let replayed = boundaries(&past);
    assert_eq!(replayed.len(), windows as usize);
    assert!(replayed
        .iter()
        .any(|(_, _, predicted)| !predicted.is_empty()));
    let future = boundaries(&full);
    assert_eq!(replayed.len(), future.len());
    for (past, future) in replayed.iter().zip(&future) {
        assert_eq!(past, future, "the boundary at {} ms", past.0);
    }
    // The future does change what comes after the cut.
    assert_ne!(
        with_future[windows as usize + 40],
        without[windows as usize - 8]
    );
}

#[test]
fn learned_predicts_a_daily_pattern_better_than_seed003_and_costs_no_more_than_static() {
    // Tier a is fast, tier b (the default) slow and priced per read: reading on b costs.
    let config = two_tiers("", "");
    let requests = daily_trace(96, 14, 4);
    let policies = ["static", "seed003", "learned"]
        .iter()
        .map(|name| make_policy(name, &config).expect("policy"))
        .collect();
    let runs = run(&config, HOUR_MS, &requests, vec![GB; 96], policies);
    let model = CostModel::new(&config);
    let reports: Vec<_> = runs.iter().map(|run| run.report(&model)).collect();
    let (static_, seed003, learned) = (&reports[0], &reports[1], &reports[2]);
    assert!(
        learned.prediction.f1 > seed003.prediction.f1,
        "learned F1 {} vs seed003 {}",
        learned.prediction.f1,
        seed003.prediction.f1
    );
    assert!(
        learned.total_cost <= static_.total_cost,
        "learned {} vs static {}",
        learned.total_cost,
        static_.total_cost
    );
    assert!(learned.prediction.accuracy > learned.prediction.base_rate);
}

/// A fast tier (the default) and a near one that is slower but within the latency
/// objective, priced as the example configuration's nvme and disk.
fn fast_and_near() -> TieringConfig {
    TieringConfig::parse(
        r#"
default_tier = "fast"
[[tier]]
name = "fast"
cost_per_gb_month = 0.20
read_latency_ms = 0.2
min_residency = "1h"
[[tier]]
name = "near"
cost_per_gb_month = 0.04
read_latency_ms = 8
[objectives]
read_latency_ms = 10
miss_penalty = 0.0001
latency_price_per_ms = 1e-8
"#,
    )
    .unwrap_or_else(|err| panic!("test config: {err}"))
}

#[test]
fn learned_demotes_objects_not_read_again_once_a_scan_reaching_half_of_them_would_not_cost_more() {
    // Objects 0..40 are read three times in the first hour and never again; object 40 is
    // read five times every hour for two days. 4 kB each: an hour on the fast tier costs
    // about 1/90 of a read on the near one. An unseen scan reading every idle object once
    // in n + 2 windows would cost more than that for all 48 windows; one reading half of
    // them (`SCAN_REACH`) costs less after about 43.
    let config = fast_and_near();
    let mut requests = Vec::new();
    for object in 0..40 {
        requests.extend((0..3).map(|r| read(r * MINUTE_MS + i64::from(object), object)));
    }
    for hour in 0..48 {
        requests.extend((0..5).map(|r| read(hour * HOUR_MS + 10 * MINUTE_MS + r, 40)));
    }
    requests.sort_by_key(|r| r.time_ms);
    let sizes = vec![4_000; 41];
    let (observed, log) = Observed::wrap(make_policy("learned", &config).expect("learned"));
    let policies = vec![observed, make_policy("static", &config).expect("static")];
    let runs = run(&config, HOUR_MS, &requests, sizes, policies);
    let last = at_window(&log, 47 * HOUR_MS);
    assert!(
        last.tiers[..40].iter().all(|&tier| tier == Some(1)),
        "objects not read again: {:?}",
        &last.tiers[..40]
    );
    assert_eq!(last.tiers[40], Some(0), "the object read every hour");
    let model = CostModel::new(&config);
    let (learned, static_) = (runs[0].report(&model), runs[1].report(&model));
    assert!(
        learned.total_cost < static_.total_cost,
        "learned {} vs static (everything on the fast tier) {}",
        learned.total_cost,
        static_.total_cost
    );
    assert_eq!(learned.misses, 0);
}

#[test]
fn learned_archives_objects_not_read_again_but_not_a_loop_read_again_after_a_long_lull() {
    // A disk (the default) and an archive with the example configuration's prices; windows
    // of a day, 1 GB objects. Objects 0..100 are read once on day 0 and never again;
    // objects 100..200 are read in a loop, each every 16 days. Archiving pays for the
    // first; for the loop the next four windows look idle, but a read (a miss, a
    // retrieval and the move back) comes before the storage saved pays for it.
    let config = disk_and_archive();
    let days = 160;
    let mut requests: Vec<TraceRequest> = (0..100).map(|o| read(i64::from(o), o)).collect();
    for day in 0..days {
        for object in (100..200u32).filter(|o| i64::from(o % 16) == day % 16) {
            requests.push(read(day * DAY_MS + i64::from(object), object));
        }
    }
    requests.sort_by_key(|r| r.time_ms);
    let (observed, log) = Observed::wrap(make_policy("learned", &config).expect("learned"));
    run(&config, DAY_MS, &requests, vec![GB; 200], vec![observed]);
    let last = at_window(&log, (days - 1) * DAY_MS);
    let archived = |objects: std::ops::Range<usize>| {
        last.tiers[objects]
            .iter()
            .filter(|&&tier| tier == Some(1))
            .count()
    };
    assert_eq!(archived(0..100), 100, "objects never read again");
    assert_eq!(archived(100..200), 0, "objects read every 16 days");
}

/// A disk (the default) and an archive with the example configuration's prices.
fn disk_and_archive() -> TieringConfig {
    TieringConfig::parse(
        r#"
default_tier = "disk"
[[tier]]
name = "disk"
cost_per_gb_month = 0.04
read_latency_ms = 8
[[tier]]
name = "archive"
cost_per_gb_month = 0.004
read_latency_ms = 150
retrieval_cost_per_gb = 0.01
egress_cost_per_gb = 0.09
[objectives]
read_latency_ms = 10
miss_penalty = 0.0001
latency_price_per_ms = 1e-8
"#,
    )
    .unwrap_or_else(|err| panic!("test config: {err}"))
}

/// Objects on tier 1 (the archive) at the boundary `at_ms`, among `objects`.
fn archived_at(log: &Snapshots, at_ms: i64, objects: std::ops::Range<usize>) -> usize {
    at_window(log, at_ms).tiers[objects]
        .iter()
        .filter(|&&tier| tier == Some(1))
        .count()
}

#[test]
fn the_forecast_archives_idle_objects_once_one_unseen_scan_per_stay_would_not_cost_more() {
    // Windows of a day, 1 GB objects. Objects 0..100 are read once on day 0 and never
    // again; object 100 every day. A read on the archive and the move back cost 0.2 $, a day
    // of disk against the archive 0.0012 $. An unseen scan reaching half of the idle objects
    // taken once in every window (0.5 / (n + 2)) outweighs the 4 windows the tier choice
    // judges until day 81; taken once per stay of the n windows seen (a chance of about a
    // quarter), the storage saved outweighs it from about day 50 (`idle_demotion`).
    let config = disk_and_archive();
    let days = 100;
    // All at the same instant: they reach each idle age together (the life table's cell
    // of an age first reached by one object alone takes a hazard of 1/3, and would bring
    // the objects back up from the archive: see docs/BENCHMARKS.md, session 18).
    let mut requests: Vec<TraceRequest> = (0..100).map(|o| read(0, o)).collect();
    requests.extend((0..days).map(|day| read(day * DAY_MS + 500, 100)));
    requests.sort_by_key(|r| r.time_ms);
    let forecast = make_policy("learned-forecast", &config).expect("learned-forecast");
    let (observed, log) = Observed::wrap(forecast);
    let policies = vec![observed, make_policy("static", &config).expect("static")];
    let runs = run(&config, DAY_MS, &requests, vec![GB; 101], policies);
    assert_eq!(
        archived_at(&log, 40 * DAY_MS, 0..100),
        0,
        "day 40: too early"
    );
    assert_eq!(archived_at(&log, 65 * DAY_MS, 0..100), 100, "day 65");
    assert_eq!(
        archived_at(&log, 65 * DAY_MS, 100..101),
        0,
        "read every day"
    );
    let model = CostModel::new(&config);
    let (learned, static_) = (runs[0].report(&model), runs[1].report(&model));
    assert_eq!(learned.misses, 0);
    // Static keeps 101 GB on disk for 100 days and the tail; archiving 100 of them for the
    // last 35 days or more saves at least 100 × 35 × 0.0012 $ = 4.2 $.
    assert!(
        learned.total_cost < static_.total_cost - 4.0,
        "learned-forecast {} vs static {}",
        learned.total_cost,
        static_.total_cost
    );
}

#[test]
fn the_forecast_does_not_archive_objects_read_every_25_days_nor_small_ones_never_read_again() {
    // Objects 0..100 (1 GB) are read every 25 days, each on its own day of the cycle; objects
    // 100..200 (4 kB) once on day 0 and never again: a read on the archive (a miss of
    // 0.0001 $) costs more than a hundred years of their storage saved. Neither must go to
    // the archive at any boundary.
    let config = disk_and_archive();
    let days = 100;
    let mut requests: Vec<TraceRequest> = (100..200).map(|o| read(i64::from(o), o)).collect();
    for day in 0..days {
        for object in (0..100u32).filter(|o| i64::from(o % 25) == day % 25) {
            requests.push(read(day * DAY_MS + 1_000 + i64::from(object), object));
        }
    }
    requests.sort_by_key(|r| r.time_ms);
    let mut sizes = vec![GB; 100];
    sizes.extend([4_000; 100]);
    let forecast = make_policy("learned-forecast", &config).expect("learned-forecast");
    let (observed, log) = Observed::wrap(forecast);
    let runs = run(&config, DAY_MS, &requests, sizes, vec![observed]);
    for day in 1..days {
        assert_eq!(archived_at(&log, day * DAY_MS, 0..200), 0, "day {day}");
    }
    let report = runs[0].report(&CostModel::new(&config));
    assert_eq!(report.misses, 0);
}

fn small_model() -> (ForecastModel, Vec<f64>) {
    // Reads next window = reads of the last window, on 200 rows.
    let mut rows = Vec::new();
    let mut reads = Vec::new();
    for i in 0..200 {
        let mut row = vec![0.0; FEATURES];
        row[0] = f64::from(i % 5);
        row[11] = f64::from(i % 24);
        rows.extend_from_slice(&row);
        reads.push(f64::from(i % 5));
    }
    (ForecastModel::train(&rows, &reads).expect("train"), rows)
}

#[test]
fn a_saved_model_loads_back_with_its_version_metrics_and_predictions() {
    let (model, rows) = small_model();
    assert_eq!(model.format_version, MODEL_FORMAT_VERSION);
    assert_eq!(model.metrics.rows, 200);
    assert!(model.metrics.f1 > 0.9, "{:?}", model.metrics);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.json");
    model.save(&path).expect("save");
    let loaded = ForecastModel::load(&path).expect("load");
    assert_eq!(loaded.metrics, model.metrics);
    assert_eq!(loaded.threshold, model.threshold);
    assert_eq!(loaded.predict(&rows), model.predict(&rows));
}

#[test]
fn a_missing_damaged_or_foreign_model_file_is_refused_naming_the_file_and_the_remedy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("none.json");
    let message = ForecastModel::load(&missing).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("model file {}: cannot read it", missing.display())),
        "{message}"
    );

    let (model, _) = small_model();
    let path = dir.path().join("model.json");
    model.save(&path).expect("save");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, &text[..text.len() / 2]).expect("truncate");
    let message = ForecastModel::load(&path).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "model file {}: not a forecast model",
            path.display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with("train a new one with `strata train`"),
        "{message}"
    );

    let future = text.replacen(
        &format!("\"format_version\":{MODEL_FORMAT_VERSION}"),
        "\"format_version\":99",
        1,
    );
    std::fs::write(&path, future).expect("write");
    let message = ForecastModel::load(&path).unwrap_err().to_string();
    assert!(
        message.contains("model format 99 (this Strata reads format 1)"),
        "{message}"
    );
}

#[test]
fn the_read_threshold_takes_the_best_f1_that_keeps_the_accuracy_floor_else_the_most_accurate_cut() {
    use strata_heat::forecast::model::{accuracy_threshold, floor_threshold};
    // Forecasts in four groups: 1.0 (10 pairs, all read), 0.5 (10, 7 read), 0.4 (10, 6
    // read), 0.1 (70, none read): 23 read of 100.
    let mut predicted = Vec::new();
    let mut reads = Vec::new();
    for (forecast, count, read) in [(1.0, 10, 10), (0.5, 10, 7), (0.4, 10, 6), (0.1, 70, 0)] {
        for i in 0..count {
            predicted.push(forecast);
            reads.push(if i < read { 1.0 } else { 0.0 });
        }
    }
    // Cutting at 0.4: 23 read right, 7 wrong: accuracy 0.93, F1 0.87, the best.
    assert_eq!(floor_threshold(&predicted, &reads, 0.6, 0.9), 0.4);
    // Precision of at least 0.9 leaves the cut at 1.0 (accuracy 0.87).
    assert_eq!(floor_threshold(&predicted, &reads, 0.9, 0.8), 1.0);
    // No cut is 95% accurate: the most accurate one.
    assert_eq!(accuracy_threshold(&predicted, &reads), 0.4);
    assert_eq!(floor_threshold(&predicted, &reads, 0.9, 0.95), 0.4);
    // Nothing ever read: no cut beats predicting "not read", so nothing is predicted.
    let none = vec![0.0; predicted.len()];
    assert_eq!(floor_threshold(&predicted, &none, 0.6, 0.95), f64::INFINITY);
}

#[test]
fn the_read_rule_takes_the_score_whose_cut_does_best_on_past_pairs_with_its_threshold() {
    use strata_heat::forecast::read_score::{Forecasts, ReadScore, ScoredPairs};
    // 1,000 past pairs: the objects read (one in five) have a read-table chance of 0.8, the
    // others 0.1; the trees' forecast is 2 reads for every object whose id is even, read or
    // not (no cut of it beats predicting "not read").
    let mut pairs = ScoredPairs::new(10_000);
    for object in 0..1_000 {
        let read = object % 5 == 0;
        let forecasts = Forecasts {
            trees: if object % 2 == 0 { 2.0 } else { 0.0 },
            table: if read { 0.8 } else { 0.1 },
        };
        pairs.push(forecasts, read);
    }
    let rule = pairs.choose(&ReadScore::ALL, 0.6, 0.95).expect("a rule");
    // The read table separates them: every read right, none wrong, at its chance of 0.8.
    assert_eq!(rule.score, ReadScore::Table);
    assert_eq!(rule.cut.threshold, 0.8);
    assert!(rule.cut.meets_floor);
    assert_eq!(rule.cut.f1, 1.0);
    assert_eq!(rule.cut.gain, 200);
    // The trees alone: no cut has more reads right than wrong, nothing is predicted.
    let rule = pairs
        .choose(&[ReadScore::Trees], 0.6, 0.95)
        .expect("a rule");
    assert_eq!(rule.cut.threshold, f64::INFINITY);
    assert!(!rule.cut.meets_floor);
    assert!(pairs.choose(&[], 0.6, 0.95).is_none());
}

#[test]
fn the_read_rule_judges_each_score_on_the_last_two_windows_with_a_cut_chosen_before_them() {
    use strata_heat::forecast::read_score::{Forecasts, ReadScore, ScoredPairs};
    // Eight windows of 1,000 pairs, one in five read. In the first six the read table
    // separates the objects read (0.9 against 0.1); the trees put 100 objects not read with
    // the 200 read (accuracy 90%, below the floor's 95%). In the last two the table's
    // objects at 0.9 are others, not read (its cut fails there), while the trees do as
    // before. On all pairs at once the table's cut meets the floor (precision 0.75, accuracy
    // 95%) and the trees' does not; judged out of sample on the last two windows, only the
    // trees' cut is right more often than wrong.
    let mut pairs = ScoredPairs::new(100_000);
    for window in 0..8 {
        for object in 0..1_000 {
            let read = object % 5 == 0;
            let drifted = window >= 6;
            let table = match (read, drifted) {
                (true, false) => 0.9,
                (false, false) => 0.1,
                (true, true) => 0.1,
                (false, true) => {
                    if object % 5 == 1 {
                        0.9
                    } else {
                        0.1
                    }
                }
            };
            let trees = if read || object % 10 == 1 { 3.0 } else { 0.0 };
            pairs.push(Forecasts { trees, table }, read);
        }
        pairs.trim();
    }
    let rule = pairs.choose(&ReadScore::ALL, 0.6, 0.95).expect("a rule");
    assert_eq!(rule.score, ReadScore::Trees);
    assert_eq!(rule.cut.threshold, 3.0);
    assert!(!rule.cut.meets_floor);
    // The capacity keeps the newest pairs: with room for the last two windows only, the
    // trees still win (there is no pair before the last two windows to judge on, so each
    // score is judged on every pair kept).
    let mut recent = ScoredPairs::new(2_000);
    for window in 0..8 {
        for object in 0..1_000 {
            let read = object % 5 == 0;
            let table = if window >= 6 && object % 5 == 1 {
                0.9
            } else {
                0.1
            };
            let trees = if read { 3.0 } else { 0.0 };
            recent.push(Forecasts { trees, table }, read);
        }
        recent.trim();
    }
    assert_eq!(recent.len(), 2_000);
    let rule = recent.choose(&ReadScore::ALL, 0.6, 0.95).expect("a rule");
    assert_eq!(rule.score, ReadScore::Trees);
}

/// Objects `0..steady` are read once in every hour; objects `steady..steady + bursty` are
/// read `burst` times within an hour with a chance of one in ten each hour (a fixed
/// pseudo-random pattern), and not otherwise; `hours` hours, in time order.
fn steady_and_bursty(steady: u32, bursty: u32, burst: i64, hours: i64) -> Vec<TraceRequest> {
    let mut requests = Vec::new();
    for hour in 0..hours {
        let start = hour * HOUR_MS;
        for object in 0..steady {
            requests.push(read(start + i64::from(object) * 1000, object));
        }
        for object in steady..steady + bursty {
            let draw = (u64::from(object).wrapping_mul(2_654_435_761) ^ (hour as u64 * 40_503))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                >> 60;
            if draw < 2 {
                // 2 of 16: about one hour in eight.
                let at = start + i64::from(object % 600) * 1000;
                requests.extend((0..burst).map(|r| read(at + r * 1000, object)));
            }
        }
    }
    requests.sort_by_key(|r| r.time_ms);
    requests
}

#[test]
fn learned_predicts_the_objects_read_every_window_not_those_with_rare_bigger_bursts() {
    // The trees forecast counts: a bursty object's expected reads (about 30 × 1/8) rank it
    // above a steady one (1), though a steady object is read in every window and a bursty
    // one in one of eight. The "read" prediction must take the score that says "read at
    // all" and predict the steady objects.
    let config = two_tiers("", "");
    let requests = steady_and_bursty(100, 1_000, 30, 200);
    let policies = ["seed003", "learned"]
        .iter()
        .map(|name| make_policy(name, &config).expect("policy"))
        .collect();
    let runs = run(&config, HOUR_MS, &requests, vec![GB; 1_100], policies);
    let model = CostModel::new(&config);
    let reports: Vec<_> = runs.iter().map(|run| run.report(&model)).collect();
    let (seed003, learned) = (&reports[0].prediction, &reports[1].prediction);
    assert!(
        learned.accuracy > learned.base_rate + 0.05,
        "learned accuracy {} against a base rate of {}",
        learned.accuracy,
        learned.base_rate
    );
    assert!(
        learned.precision > 0.8,
        "learned precision {}",
        learned.precision
    );
    assert!(
        learned.f1 > seed003.f1 + 0.1,
        "learned F1 {} against seed003 {}",
        learned.f1,
        seed003.f1
    );
}
