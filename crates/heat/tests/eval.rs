//! The replay and its cost model, on tiny traces whose every cost is computed by hand in
//! the comments: reads priced on the tier that serves them, moves, minimum residency and
//! capacity refusals, the censoring tail, prediction counts, `[objectives]` parsing, the
//! sweep's re-pricing and the errors of bad settings.

use strata_heat::eval::policies::{parse_policy_list, static_::Static, POLICY_NAMES};
use strata_heat::eval::{
    evaluate, replay, sweep, CostModel, EvalError, MoveOutcome, Policy, Refusal, Requests,
    MAX_WINDOWS,
};
use strata_heat::trace::TraceError;
use strata_heat::units::{DAY_MS, HOUR_MS};
use strata_heat::{Op, TieringConfig};

mod eval_common;
use eval_common::*;

#[test]
fn reads_are_charged_on_the_tier_that_serves_them() {
    // Object 0 (1 GB) read twice on b (the default tier); object 1 (1 GB) written once at
    // the start of window 1. Windows of a month; the replay ends at 2 months.
    let config = two_tiers("", "");
    let requests = [read(0, 0), read(DAY_MS, 0), request(MONTH, 1, Op::Write)];
    let runs = run(
        &config,
        MONTH,
        &requests,
        vec![GB, GB],
        vec![Box::new(Static)],
    );
    let report = runs[0].report(&CostModel::new(&config));

    // Storage at 1 $/GB-month: object 0 for 2 months + 10 months of tail = 12; object 1
    // for 1 month + 10 of tail = 11.
    assert_dollars(report.cost.storage, 23.0, "storage");
    // Two reads of 1 GB on b: retrieval 2 x 0.5, egress 2 x 0.25.
    assert_dollars(report.cost.retrieval, 1.0, "retrieval");
    assert_dollars(report.cost.egress, 0.5, "egress");
    // Requests at 0.002 $: 2 reads, 1 write, and the tail repeats object 1's last window
    // (1 write) 10 times; object 0 was idle in the last window, so its tail has no reads.
    assert_dollars(report.cost.requests, 0.002 * 13.0, "requests");
    // Each read on b: 20 ms x 0.001 $/ms + 0.01 $ for missing the 10 ms objective.
    assert_dollars(report.cost.latency, 2.0 * 0.03, "latency");
    assert_dollars(report.cost.moves, 0.0, "moves");
    assert_dollars(report.total_cost, 23.0 + 1.0 + 0.5 + 0.026 + 0.06, "total");
    assert_dollars(report.tail_cost, 20.0 + 0.02, "tail");
    assert_eq!((report.reads, report.misses), (2, 2));
    assert_dollars(report.miss_share, 1.0, "miss share");
    assert_dollars(report.mean_read_latency_ms, 20.0, "mean latency");
}

#[test]
fn one_object_read_twice_on_each_tier_costs_its_reads_its_move_and_its_storage() {
    // Reads at days 0 and 1 on b; moved to a right after the second; reads at days 2 and 3
    // on a. One window of a month: the replay ends at day 30.
    let config = two_tiers("", "");
    let requests = [
        read(0, 0),
        read(DAY_MS, 0),
        read(2 * DAY_MS, 0),
        read(3 * DAY_MS, 0),
    ];
    let policy = Scripted {
        after_request: vec![(DAY_MS, 0, 0)],
        ..Scripted::default()
    };
    let outcomes = policy.outcomes.clone();
    let runs = run(&config, MONTH, &requests, vec![GB], vec![Box::new(policy)]);
    assert_eq!(outcomes.borrow()[0].3, MoveOutcome::Moved);
    let report = runs[0].report(&CostModel::new(&config));

    // Storage: 1 day on b (1/30 month at 1 $), 29 days on a (29/30 at 3 $), and the tail:
    // 10 months on a, its final tier (30 $).
    assert_dollars(report.cost.storage, 1.0 / 30.0 + 2.9 + 30.0, "storage");
    // Reads on b: retrieval 2 x 0.5, egress 2 x 0.25; reads on a retrieve for free.
    assert_dollars(report.cost.retrieval, 1.0, "retrieval");
    assert_dollars(report.cost.egress, 0.5, "egress");
    // The move: a read of 1 GB on b (0.5 + 0.25 + 0.002) and a write request on a (0.001).
    assert_dollars(report.cost.moves, 0.753, "moves");
    // Requests: 2 on b at 0.002, 2 on a at 0.001, and the tail: the last (only) window's 4
    // reads x 10 windows, on a.
    assert_dollars(report.cost.requests, 0.004 + 0.002 + 0.04, "requests");
    // Latency: 2 x (20 x 0.001 + 0.01) on b, 2 x 1 x 0.001 on a, 40 x 0.001 in the tail.
    assert_dollars(report.cost.latency, 0.06 + 0.002 + 0.04, "latency");
    assert_eq!((report.reads, report.misses), (4, 2));
    assert_dollars(
        report.mean_read_latency_ms,
        (2.0 * 20.0 + 2.0 * 1.0) / 4.0,
        "mean",
    );
    assert_eq!((report.moves, report.bytes_moved), (1, GB));
}

#[test]
fn a_move_costs_a_read_of_its_source_and_a_write_on_its_target() {
    // Up b → a at day 0, down a → b at day 2 (after a's 1-day residency).
    let config = two_tiers("", "");
    let requests = [read(0, 0), read(3 * DAY_MS, 0)];
    let policy = Scripted {
        after_request: vec![(0, 0, 0)],
        at: vec![(2 * DAY_MS, 0, 1)],
        ..Scripted::default()
    };
    let runs = run(&config, MONTH, &requests, vec![GB], vec![Box::new(policy)]);
    let report = runs[0].report(&CostModel::new(&config));
    // b → a: 0.5 + 0.25 + 0.002 + 0.001; a → b: 0 + 0 + 0.001 (read on a) + 0.002 (write on b).
    assert_dollars(report.cost.moves, 0.753 + 0.003, "moves");
    assert_eq!((report.moves, report.bytes_moved), (2, 2 * GB));
}

#[test]
fn demotion_before_min_residency_is_refused_and_counted() {
    // Promoted to a at 0 (b's 7 days of residency never hold a promotion); a demotion after
    // 1 hour is refused (a's residency is 1 day), after 2 days it is made; a promotion at
    // day 3, well within b's 7 days, is made.
    let config = two_tiers("", "");
    let requests = [read(0, 0), read(5 * DAY_MS, 0)];
    let policy = Scripted {
        after_request: vec![(0, 0, 0)],
        at: vec![(HOUR_MS, 0, 1), (2 * DAY_MS, 0, 1), (3 * DAY_MS, 0, 0)],
        ..Scripted::default()
    };
    let outcomes = policy.outcomes.clone();
    let runs = run(&config, MONTH, &requests, vec![GB], vec![Box::new(policy)]);
    let seen: Vec<MoveOutcome> = outcomes.borrow().iter().map(|o| o.3).collect();
    assert_eq!(
        seen,
        vec![
            MoveOutcome::Moved,
            MoveOutcome::Refused(Refusal::MinResidency),
            MoveOutcome::Moved,
            MoveOutcome::Moved,
        ]
    );
    assert_eq!(runs[0].refused_residency, 1);
    assert_eq!(runs[0].refused_capacity, 0);
    let report = runs[0].report(&CostModel::new(&config));
    assert_eq!(report.refused_residency, 1);
    assert_eq!(report.moves, 3);
}

#[test]
fn move_into_a_full_tier_is_refused_and_counted_but_arrivals_never_are() {
    // a holds 1.5 GB: object 0 fits, object 1 is refused.
    let config = two_tiers("capacity = 1500000000", "");
    let requests = [read(0, 0), read(1, 1)];
    let policy = Scripted {
        after_request: vec![(0, 0, 0), (1, 1, 0)],
        ..Scripted::default()
    };
    let outcomes = policy.outcomes.clone();
    let runs = run(
        &config,
        MONTH,
        &requests,
        vec![GB, GB],
        vec![Box::new(policy)],
    );
    let seen: Vec<MoveOutcome> = outcomes.borrow().iter().map(|o| o.3).collect();
    assert_eq!(
        seen,
        vec![MoveOutcome::Moved, MoveOutcome::Refused(Refusal::Capacity)]
    );
    assert_eq!(
        (runs[0].refused_capacity, runs[0].refused_residency),
        (1, 0)
    );

    // With a as the default tier, three objects of 1 GB all land on it, full or not.
    let mut config = two_tiers("capacity = 1500000000", "");
    config.default_tier = "a".to_string();
    let requests = [read(0, 0), read(1, 1), read(2, 2)];
    let (observed, log) = Observed::wrap(Box::new(Static));
    let runs = run(&config, MONTH, &requests, vec![GB, GB, GB], vec![observed]);
    assert_eq!(
        after_request(&log, 2).tiers,
        vec![Some(0), Some(0), Some(0)]
    );
    assert_eq!(runs[0].refused_capacity, 0);
    // 3 GB on a for the month and the tail: 3 x 3 $ x 11 months.
    let report = runs[0].report(&CostModel::new(&config));
    assert_dollars(report.cost.storage, 99.0, "storage");
}

#[test]
fn censoring_tail_repeats_the_last_window_at_the_final_placement() {
    // Windows of 10 days. One read in window 0, three in window 1 (the last); the tail is 10
    // windows (100 days, 10/3 months) repeating window 1: 30 reads.
    let window = 10 * DAY_MS;
    let config = two_tiers("", "");
    let requests = [
        read(0, 0),
        read(window + 1, 0),
        read(window + 2, 0),
        read(window + 3, 0),
    ];
    let static_run = run(&config, window, &requests, vec![GB], vec![Box::new(Static)]);
    let model = CostModel::new(&config);
    // On b: storage 10/3 months x 1 $; 30 reads x (0.5 + 0.25 + 0.002 + 0.02 + 0.01).
    assert_dollars(
        static_run[0].report(&model).tail_cost,
        10.0 / 3.0 + 30.0 * 0.782,
        "tail on b",
    );
    // Moved to a a day before the end: the tail is costed on a for every policy alike:
    // storage 10/3 x 3 $; 30 reads x (0.001 request + 0.001 latency).
    let policy = Scripted {
        at: vec![(2 * window - DAY_MS, 0, 0)],
        ..Scripted::default()
    };
    let moved = run(&config, window, &requests, vec![GB], vec![Box::new(policy)]);
    let report = moved[0].report(&model);
    assert_dollars(report.tail_cost, 10.0 + 30.0 * 0.002, "tail on a");
    // The trace itself: 4 reads on b, counted once.
    assert_eq!((report.reads, report.misses), (4, 4));
}

#[test]
fn prediction_counts_compare_each_window_with_its_reads() {
    // Windows of 10 days. Objects 0, 1, 2 appear in window 0 (not scored: they did not
    // exist at its start); object 3 appears in window 1 (not scored there).
    let w = 10 * DAY_MS;
    let config = two_tiers("", "");
    let requests = [
        read(0, 0),
        read(0, 1),
        read(0, 2),
        read(w + 1, 0),
        request(w + 2, 2, Op::Write),
        read(w + 5, 3),
        read(2 * w + 1, 1),
        read(2 * w + 2, 0),
    ];
    let policy = Scripted {
        // 99 does not exist: ignored. Object 0 twice: counted once.
        predict: vec![(w, vec![0, 1, 99, 0]), (2 * w, vec![1, 2])],
        ..Scripted::default()
    };
    let runs = run(&config, w, &requests, vec![GB; 4], vec![Box::new(policy)]);
    // Window 1: 3 existing; predicted {0, 1}; read {0} (a write is no read): TP 1, FP 1,
    // FN 0, TN 1. Window 2: 4 existing; predicted {1, 2}; read {1, 0}: TP 1, FP 1, FN 1,
    // TN 1.
    let m = runs[0].confusion.metrics();
    assert_eq!(
        (
            m.counts.true_positives,
            m.counts.false_positives,
            m.counts.false_negatives,
            m.counts.true_negatives
        ),
        (2, 2, 1, 2)
    );
    assert_eq!(m.pairs, 7);
    assert_dollars(m.accuracy, 4.0 / 7.0, "accuracy");
    assert_dollars(m.precision, 0.5, "precision");
    assert_dollars(m.recall, 2.0 / 3.0, "recall");
    assert_dollars(m.f1, 2.0 * 0.5 * (2.0 / 3.0) / (0.5 + 2.0 / 3.0), "f1");
    // 3 read pairs, 4 not read: the majority, "not read", is 4/7.
    assert_dollars(m.base_rate, 4.0 / 7.0, "base rate");
}

#[test]
fn tier_predictions_count_the_objects_on_the_tier_at_the_windows_start() {
    // Windows of 10 days. At day 10, objects 0 and 2 are on a, object 1 on b; tier a is
    // predicted (and object 2 named too: counted once). In window 1 object 0 leaves a and
    // is read; object 1 arrives on a and is read; object 2 is not read.
    let w = 10 * DAY_MS;
    let config = two_tiers("", "");
    let requests = [
        read(0, 0),
        read(0, 1),
        read(0, 2),
        read(w + 2 * DAY_MS, 0),
        read(w + 2 * DAY_MS, 1),
        read(2 * w - 1, 0),
    ];
    let policy = Scripted {
        after_request: vec![(0, 0, 0), (0, 2, 0)],
        at: vec![(w + DAY_MS, 0, 1), (w + DAY_MS, 1, 0)],
        predict: vec![(w, vec![2])],
        predict_tiers: vec![(w, vec![0])],
        ..Scripted::default()
    };
    let runs = run(&config, w, &requests, vec![GB; 3], vec![Box::new(policy)]);
    // Window 1: predicted {0, 2}; read {0, 1}: TP 1 (0), FP 1 (2), FN 1 (1), TN 0.
    let c = runs[0].confusion;
    assert_eq!(
        (
            c.true_positives,
            c.false_positives,
            c.false_negatives,
            c.true_negatives
        ),
        (1, 1, 1, 0)
    );
}

#[test]
fn a_policy_that_never_predicts_scores_the_base_rate_and_no_f1() {
    let w = 10 * DAY_MS;
    let config = two_tiers("", "");
    let requests = [read(0, 0), read(0, 1), read(w + 1, 0), read(2 * w, 1)];
    let runs = run(&config, w, &requests, vec![GB; 2], vec![Box::new(Static)]);
    // Windows 1 and 2, 2 objects each; read: object 0 in window 1, object 1 in window 2.
    let m = runs[0].confusion.metrics();
    assert_eq!((m.counts.false_negatives, m.counts.true_negatives), (2, 2));
    assert_dollars(m.accuracy, 0.5, "accuracy");
    assert_eq!((m.precision, m.recall, m.f1), (0.0, 0.0, 0.0));
    assert_dollars(m.base_rate, 0.5, "base rate");
}

#[test]
fn deleted_objects_stop_costing_and_come_back_on_the_default_tier() {
    // Object 0 on b from day 0, deleted at day 15, read again at day 20 (back on b).
    let config = two_tiers("", "");
    let requests = [
        read(0, 0),
        request(15 * DAY_MS, 0, Op::Delete),
        read(20 * DAY_MS, 0),
    ];
    let (observed, log) = Observed::wrap(Box::new(Static));
    let runs = run(&config, MONTH, &requests, vec![GB], vec![observed]);
    assert_eq!(after_request(&log, 1).tiers, vec![None]);
    assert_eq!(after_request(&log, 2).tiers, vec![Some(1)]);
    let report = runs[0].report(&CostModel::new(&config));
    // 15 days, then 10 days to the end of the window, then 10 months of tail, at 1 $.
    assert_dollars(report.cost.storage, 0.5 + 10.0 / 30.0 + 10.0, "storage");
}

#[test]
fn sweep_reprices_latency_without_replaying_price_blind_policies() {
    let config = two_tiers("", "");
    let requests = [read(0, 0), read(DAY_MS, 0)];
    let summary = summary(&requests, vec![GB]);
    let reopen =
        || -> Result<Requests<'_>, TraceError> { Ok(Box::new(requests.iter().copied().map(Ok))) };
    let rows = sweep(&summary, &config, MONTH, &["static"], &[0.0, 0.01], &reopen).unwrap();
    // 2 reads on b at 20 ms, each a miss (0.01 $); the tail repeats the last window's 2
    // reads 10 times: 22 reads.
    assert_eq!(rows.len(), 2);
    assert_dollars(rows[0].1[0].cost.latency, 22.0 * 0.01, "price 0");
    assert_dollars(rows[1].1[0].cost.latency, 22.0 * (0.2 + 0.01), "price 0.01");
    assert_eq!(rows[0].1[0].cost.storage, rows[1].1[0].cost.storage);
}

#[test]
fn too_many_windows_is_refused_naming_the_smallest_window() {
    let config = two_tiers("", "");
    let requests = [read(0, 0), read(MAX_WINDOWS * 10, 0)];
    let summary = summary(&requests, vec![GB]);
    let reopen =
        || -> Result<Requests<'_>, TraceError> { Ok(Box::new(requests.iter().copied().map(Ok))) };
    let policies: Vec<Box<dyn Policy>> = vec![Box::new(Static)];
    let Err(EvalError::Settings(message)) = replay(&summary, &config, 1, policies, &reopen) else {
        panic!("a 1 ms window over 1,000,000 ms must be refused");
    };
    assert!(message.contains("1000001 windows"), "{message}");
    assert!(
        message.contains("use a window of at least 11 ms"),
        "{message}"
    );
    // 11 ms is indeed enough.
    let policies: Vec<Box<dyn Policy>> = vec![Box::new(Static)];
    assert!(replay(&summary, &config, 11, policies, &reopen).is_ok());
}

#[test]
fn trace_errors_stop_the_replay_naming_the_file_and_record() {
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
    let error = evaluate(&summary, &config, MONTH, &["static"], &reopen).unwrap_err();
    assert_eq!(
        error.to_string(),
        "trace t.csv, line 3: \"x\" is not a number"
    );
}

#[test]
fn policy_lists_accept_all_or_known_names_and_refuse_others_listing_them() {
    assert_eq!(parse_policy_list("all").unwrap(), POLICY_NAMES.to_vec());
    assert_eq!(
        parse_policy_list("lru, static,lru").unwrap(),
        vec!["lru", "static"]
    );
    let unknown = parse_policy_list("static,fifo").unwrap_err();
    assert_eq!(
        unknown,
        "unknown policy \"fifo\"; use all or one of static, seed003, s3-intelligent, lru, rules, \
         learned, oracle"
    );
    for planned in strata_heat::eval::policies::PLANNED_POLICY_NAMES {
        let message = parse_policy_list(planned).unwrap_err();
        assert!(message.contains("not available yet"), "{message}");
        assert!(message.contains("static, seed003"), "{message}");
    }
}

#[test]
fn objectives_and_request_prices_are_parsed_with_defaults_and_checked_by_field() {
    let config = TieringConfig::parse("").unwrap();
    assert_eq!(config.objectives.read_latency_ms, 10.0);
    assert_eq!(config.objectives.miss_penalty, 0.0001);
    assert_eq!(config.objectives.latency_price_per_ms, 1e-8);
    assert!(config.tiers.iter().all(|t| t.cost_per_1k_requests == 0.0));

    let config = two_tiers("", "");
    assert_eq!(config.tiers[1].cost_per_1k_requests, 2.0);
    assert_eq!(config.objectives.latency_price_per_ms, 0.001);

    let text = "[objectives]\nmiss_penalty = -1\nlatency_price_per_ms = \"cheap\"\n";
    let error = TieringConfig::parse(text).unwrap_err().to_string();
    assert!(error.contains("objectives.latency_price_per_ms"), "{error}");
    let text = "[objectives]\nmiss_penalty = -1\nread_latency_ms = 5\n";
    let error = TieringConfig::parse(text).unwrap_err().to_string();
    assert_eq!(
        error,
        "invalid configuration: objectives.miss_penalty: -1 must be a number, 0 or more"
    );
    let text = "default_tier = \"t\"\n[[tier]]\nname = \"t\"\ncost_per_1k_requests = -0.5\n";
    let error = TieringConfig::parse(text).unwrap_err().to_string();
    assert!(
        error.contains("tier[0].cost_per_1k_requests: -0.5 must be a number, 0 or more"),
        "{error}"
    );
    let error = TieringConfig::parse("[objectives]\nlatency = 1\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `latency`"), "{error}");
}

/// The example configuration's hot tier is worth its price to an object read often
/// enough, and only then (the reason for the default latency price).
#[test]
fn default_latency_price_makes_the_hot_tier_pay_for_often_read_objects_only() {
    let text = include_str!("../../server/strata.example.toml");
    let config = TieringConfig::parse(text).unwrap();
    let model = CostModel::new(&config);
    let (nvme, disk) = (&model.tiers[0], &model.tiers[1]);
    let mib = f64::from(1u32 << 20);
    let month = MONTH as f64;
    let extra_storage = (nvme.storage_per_byte_ms - disk.storage_per_byte_ms) * mib * month;
    let saved_per_read =
        (disk.read_latency_ms - nvme.read_latency_ms) * config.objectives.latency_price_per_ms;
    let break_even = extra_storage / saved_per_read;
    // About 70 reads a day: between the warm (10/day) and hot (100/day) rules.
    assert!(
        (300.0..3000.0).contains(&break_even),
        "break-even at {break_even} reads a month"
    );
}
