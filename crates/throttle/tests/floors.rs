//! The evidence floors, checked on the simulated link (simulated clock only).
//!
//! Run with `--nocapture` to see the measured numbers.

use std::time::Duration;

use strata_throttle::sim::{run, CrossTraffic, Job, LinkConfig, Pushback, SimConfig, SimReport};
use strata_throttle::{BwLimit, GovernorConfig, Priority};

const MIB: f64 = 1048576.0;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn capped(limit: &str) -> GovernorConfig {
    GovernorConfig {
        limit: BwLimit::parse(limit).unwrap(),
        ..GovernorConfig::default()
    }
}

fn cross_aimd(start: u64, stop: u64) -> CrossTraffic {
    CrossTraffic::Aimd {
        start: s(start),
        stop: s(stop),
        increase_per_rtt: 64.0 * 1024.0,
    }
}

/// Sliding 10-second windows of our wire rate over `[from, to)`: (min, max) in bytes/s.
fn window_extremes(r: &SimReport, from: Duration, to: Duration) -> (f64, f64) {
    let rates = r.sliding_rates(&r.wire, s(10), from, to);
    assert!(!rates.is_empty());
    let min = rates.iter().copied().fold(f64::MAX, f64::min);
    let max = rates.iter().copied().fold(0.0, f64::max);
    (min, max)
}

/// The first snapshot time after `onset` with more back-off events than at `onset`.
fn first_backoff_after(r: &SimReport, onset: Duration) -> Option<Duration> {
    let before = r.snapshot_at(onset)?.controller.backoff_events;
    r.snapshots
        .iter()
        .find(|(t, snap)| *t >= onset && snap.controller.backoff_events > before)
        .map(|(t, _)| *t)
}

#[test]
fn cap_holds_within_5_percent_over_every_10s_window() {
    for control in [true, false] {
        let mut cfg = SimConfig {
            governor: GovernorConfig {
                congestion_control: control,
                ..capped("20M")
            },
            limit_changes: vec![(s(35), BwLimit::parse("8M").unwrap())],
            duration: s(70),
            ..SimConfig::default()
        };
        cfg.jobs = vec![Job::busy(Priority::Normal), Job::busy(Priority::Low)];
        let r = run(&cfg);
        let (lo, hi) = window_extremes(&r, s(2), s(35));
        println!(
            "cap 20M (control {control}): 10-s windows {:.2}..{:.2} MiB/s",
            lo / MIB,
            hi / MIB
        );
        assert!(hi <= 1.05 * 20.0 * MIB && lo >= 0.95 * 20.0 * MIB);
        // The live change to 8M holds from the first window that starts after it.
        let (lo, hi) = window_extremes(&r, s(36), s(70));
        println!(
            "  after set_limit(8M): {:.2}..{:.2} MiB/s",
            lo / MIB,
            hi / MIB
        );
        assert!(hi <= 1.05 * 8.0 * MIB && lo >= 0.95 * 8.0 * MIB);
        // Windows straddling the change never exceed the higher cap.
        let (_, hi) = window_extremes(&r, s(25), s(45));
        assert!(hi <= 1.05 * 20.0 * MIB);
    }
}

#[test]
fn split_limit_caps_writes_and_timetable_like_changes_apply_live() {
    let cfg = SimConfig {
        governor: capped("10M:100M"),
        limit_changes: vec![(s(20), BwLimit::parse("off").unwrap())],
        duration: s(40),
        ..SimConfig::default()
    };
    let r = run(&cfg);
    let (lo, hi) = window_extremes(&r, s(2), s(20));
    println!("write cap 10M: {:.2}..{:.2} MiB/s", lo / MIB, hi / MIB);
    assert!(hi <= 1.05 * 10.0 * MIB && lo >= 0.95 * 10.0 * MIB);
    let util = r.utilisation(s(30), s(40));
    println!("after `off`: utilisation {util:.3}");
    assert!(util >= 0.8);
}

#[test]
fn sustains_80_percent_without_cross_traffic() {
    let r = run(&SimConfig::default());
    let util = r.utilisation(s(10), s(60));
    println!("no cross traffic: utilisation {util:.3}");
    assert!(util >= 0.80);
}

#[test]
fn high_latency_path_still_fills_the_link() {
    let cap = 50.0 * MIB;
    let cfg = SimConfig {
        link: LinkConfig {
            capacity: vec![(Duration::ZERO, cap)],
            one_way_delay: vec![(Duration::ZERO, ms(100))],
            buffer: cap * 0.25,
            stream_window: 2.0 * MIB,
            ..LinkConfig::default()
        },
        ..SimConfig::default()
    };
    let r = run(&cfg);
    let util = r.utilisation(s(10), s(60));
    let slots = r.snapshot_at(s(59)).unwrap().controller.in_flight_target;
    println!("200 ms RTT: utilisation {util:.3}, slots {slots}");
    assert!(util >= 0.80);
    assert!(
        slots > 4,
        "the slot tuner must have added requests in flight"
    );
}

#[test]
fn keeps_70_percent_under_2_percent_random_loss() {
    for seed in 1..=3 {
        let mut cfg = SimConfig {
            seed,
            ..SimConfig::default()
        };
        cfg.link.loss = 0.02;
        let r = run(&cfg);
        let util = r.utilisation(s(10), s(60));
        let snap = r.snapshot_at(s(59)).unwrap().controller;
        println!(
            "2% loss (seed {seed}): goodput utilisation {util:.3}, loss EWMA {:.3}, back-offs {}",
            snap.loss_rate, snap.backoff_events
        );
        assert!(util >= 0.70);
    }
}

/// Without a measured response latency the controller falls back to whole request
/// durations; the main floors still hold (same-size requests).
#[test]
fn floors_hold_on_whole_durations_too() {
    let plain = SimConfig {
        report_latency: false,
        ..SimConfig::default()
    };
    let util = run(&plain).utilisation(s(10), s(60));
    let mut lossy = plain.clone();
    lossy.link.loss = 0.02;
    let lossy_util = run(&lossy).utilisation(s(10), s(60));
    let crossed = SimConfig {
        cross: vec![cross_aimd(20, 40)],
        ..plain.clone()
    };
    let r = run(&crossed);
    let at = first_backoff_after(&r, s(20)).expect("no back-off after the onset");
    let recovered = r.utilisation(s(50), s(60));
    println!(
        "durations only: utilisation {util:.3}, with 2% loss {lossy_util:.3}, back-off at \
         {at:?}, recovered {recovered:.3}"
    );
    assert!(util >= 0.80 && lossy_util >= 0.70 && at <= s(21) && recovered >= 0.80);
}

#[test]
fn backs_off_within_1s_of_congestion_and_recovers_after() {
    let cfg = SimConfig {
        cross: vec![cross_aimd(20, 40)],
        ..SimConfig::default()
    };
    let r = run(&cfg);
    let at = first_backoff_after(&r, s(20)).expect("no back-off after the onset");
    let before = r.rate(&r.wire, s(19), s(20));
    let after = r.rate(&r.wire, s(21), s(22));
    println!(
        "AIMD cross traffic at 20 s: first back-off at {at:?}; our rate {:.1} MiB/s in the \
         second before, {:.1} MiB/s in the second after the first second",
        before / MIB,
        after / MIB
    );
    assert!(at <= s(21));
    assert!(after < 0.5 * before);
    // Yields: while the competing TCP-like flow runs, we take a small share.
    let ours = r.rate(&r.wire, s(25), s(40)) / r.rate(&r.capacity, s(25), s(40));
    println!("  our share during cross traffic {ours:.3}");
    assert!(ours <= 0.10);
    // Recovers once the flow is gone.
    let util = r.utilisation(s(50), s(60));
    println!("  utilisation 10-20 s after it ended {util:.3}");
    assert!(util >= 0.80);
}

#[test]
fn yields_to_constant_cross_traffic_but_uses_the_rest() {
    let cfg = SimConfig {
        cross: vec![CrossTraffic::Constant {
            start: s(20),
            stop: s(60),
            rate: 60.0 * MIB,
        }],
        ..SimConfig::default()
    };
    let r = run(&cfg);
    let at = first_backoff_after(&r, s(20)).expect("no back-off after the onset");
    let ours = r.rate(&r.wire, s(30), s(60)) / MIB;
    let cross = r.rate(&r.cross, s(30), s(60)) / MIB;
    println!("constant 60 MiB/s cross at 20 s: back-off at {at:?}; ours {ours:.1}, cross {cross:.1} MiB/s");
    assert!(at <= s(21));
    assert!(
        cross >= 0.98 * 60.0,
        "the competing flow must keep its rate"
    );
    assert!(ours + cross >= 0.80 * 100.0, "the rest of the link is used");
}

#[test]
fn capacity_drop_is_detected_within_1s() {
    let cfg = SimConfig {
        link: LinkConfig {
            capacity: vec![
                (Duration::ZERO, 100.0 * MIB),
                (s(20), 20.0 * MIB),
                (s(40), 100.0 * MIB),
            ],
            ..LinkConfig::default()
        },
        ..SimConfig::default()
    };
    let r = run(&cfg);
    let at = first_backoff_after(&r, s(20)).expect("no back-off after the drop");
    let low = r.utilisation(s(25), s(40));
    let high = r.utilisation(s(50), s(60));
    let q = r.snapshot_at(s(39)).unwrap().controller.queuing_delay;
    println!("capacity 100 -> 20 MiB/s at 20 s: back-off at {at:?}, utilisation {low:.3} (queue {q:?}), back to 100: {high:.3}");
    assert!(at <= s(21));
    assert!(low >= 0.80 && high >= 0.80);
}

/// Per-class goodput shares over `[from, to)`.
fn shares(r: &SimReport, from: Duration, to: Duration) -> Vec<f64> {
    let rates: Vec<f64> = r.goodput.iter().map(|g| r.rate(g, from, to)).collect();
    let total: f64 = rates.iter().sum();
    rates.iter().map(|x| x / total).collect()
}

#[test]
fn weights_are_honoured_within_10_percent() {
    let cases: [&[Priority]; 3] = [
        &[Priority::High, Priority::Background],
        &[Priority::Normal, Priority::Low, Priority::Background],
        &[
            Priority::High,
            Priority::Normal,
            Priority::Low,
            Priority::Background,
        ],
    ];
    for limit in ["40M", "off"] {
        for classes in cases {
            let cfg = SimConfig {
                governor: capped(limit),
                jobs: classes.iter().map(|c| Job::busy(*c)).collect(),
                duration: s(40),
                ..SimConfig::default()
            };
            let r = run(&cfg);
            let got = shares(&r, s(5), s(40));
            let weights: Vec<f64> = classes
                .iter()
                .map(|c| [8.0, 4.0, 2.0, 1.0][c.index()])
                .collect();
            let sum: f64 = weights.iter().sum();
            for ((c, g), w) in classes.iter().zip(&got).zip(&weights) {
                let want = w / sum;
                println!("cap {limit} {classes:?}: {c:?} share {g:.3} (weight share {want:.3})");
                assert!((g / want - 1.0).abs() <= 0.10);
            }
        }
    }
}

#[test]
fn an_idle_class_share_goes_to_the_others() {
    let mut normal = Job::busy(Priority::Normal);
    normal.stop = s(20);
    let cfg = SimConfig {
        governor: capped("40M"),
        jobs: vec![
            Job::busy(Priority::High),
            normal,
            Job::busy(Priority::Background),
        ],
        duration: s(40),
        ..SimConfig::default()
    };
    let r = run(&cfg);
    let total = r.rate(&r.wire, s(22), s(40)) / MIB;
    let got = shares(&r, s(22), s(40));
    println!("Normal idle from 20 s: total {total:.2} MiB/s, shares {got:.3?}");
    assert!(
        total >= 0.95 * 40.0,
        "work-conserving: the cap is still used"
    );
    assert!(got[1] < 0.01);
    assert!((got[0] / (8.0 / 9.0) - 1.0).abs() <= 0.10);
    assert!((got[2] / (1.0 / 9.0) - 1.0).abs() <= 0.10);
}

#[test]
fn honours_retry_after_and_recovers() {
    let cfg = SimConfig {
        pushback: vec![Pushback {
            start: s(10),
            stop: ms(10_500),
            retry_after: Some(s(2)),
        }],
        duration: s(30),
        ..SimConfig::default()
    };
    let r = run(&cfg);
    let first = r
        .snapshots
        .iter()
        .find(|(_, sn)| sn.controller.pushback_events > 0)
        .map(|(t, _)| *t);
    let first = first.expect("pushback was seen");
    let paused_until = r.snapshot_at(first).unwrap().controller.paused_until;
    let tick = r.tick.as_millis() as usize;
    let from = (paused_until.as_millis() as usize - 1900) / tick;
    let to = (paused_until.as_millis() as usize - 10) / tick;
    let admitted: u32 = r.admissions[from..to].iter().sum();
    let util = r.utilisation(s(20), s(30));
    println!("503 with Retry-After 2 s at 10 s: paused until {paused_until:?}, admissions while paused {admitted}, utilisation 20-30 s {util:.3}");
    assert!(paused_until >= s(12));
    assert_eq!(admitted, 0);
    assert!(util >= 0.8);
}
