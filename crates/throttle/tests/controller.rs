//! The congestion controller alone, fed synthetic samples.

use std::time::Duration;

use strata_throttle::{Controller, ControllerConfig, Outcome, Phase, Pressure, Rate};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Feeds `n` back-to-back 1 MiB samples 10 ms apart with `delay` of latency, each one
/// failing when `fail(i)`; the lane is always waiting for tokens.
fn feed(c: &mut Controller, t: &mut Duration, n: u32, delay: Duration, fail: impl Fn(u32) -> bool) {
    for i in 0..n {
        *t += ms(10);
        c.on_pressure(*t, Pressure::default(), true);
        let outcome = if fail(i) { Outcome::Reset } else { Outcome::Ok };
        let start = t.saturating_sub(delay);
        c.on_sample(&strata_throttle::Sample {
            bytes: 1 << 20,
            start,
            finish: *t,
            latency: Some(delay),
            outcome,
        });
    }
}

#[test]
fn random_errors_without_delay_are_not_congestion() {
    let mut c = Controller::new(ControllerConfig::default(), Rate::Unlimited, Duration::ZERO);
    let mut t = Duration::ZERO;
    feed(&mut c, &mut t, 2000, ms(40), |i| i % 50 == 7); // 2 %
    let s = c.snapshot();
    assert_eq!(s.backoff_events, 0, "{s:?}");
    assert!(s.loss_rate < 0.05);
}

#[test]
fn persistent_errors_and_error_runs_are_congestion() {
    let mut c = Controller::new(ControllerConfig::default(), Rate::Unlimited, Duration::ZERO);
    let mut t = Duration::ZERO;
    feed(&mut c, &mut t, 300, ms(40), |_| false);
    let before = c.snapshot().target_rate;
    feed(&mut c, &mut t, 300, ms(40), |i| i % 5 == 0); // 20 %
    let s = c.snapshot();
    assert!(s.backoff_events >= 1 && s.target_rate < before, "{s:?}");

    let mut c = Controller::new(ControllerConfig::default(), Rate::Unlimited, Duration::ZERO);
    let mut t = Duration::ZERO;
    feed(&mut c, &mut t, 300, ms(40), |_| false);
    feed(&mut c, &mut t, 4, ms(40), |_| true);
    assert_eq!(c.snapshot().backoff_events, 1);
}

#[test]
fn a_delay_rise_cuts_and_a_clear_path_grows() {
    let mut c = Controller::new(ControllerConfig::default(), Rate::Unlimited, Duration::ZERO);
    let mut t = Duration::ZERO;
    feed(&mut c, &mut t, 300, ms(40), |_| false);
    let clear = c.snapshot();
    assert_eq!(clear.base_delay, Some(ms(40)));
    feed(&mut c, &mut t, 100, ms(200), |_| false);
    let congested = c.snapshot();
    assert_eq!(congested.phase, Phase::Steady);
    assert_eq!(congested.queuing_delay, ms(160));
    assert!(
        congested.target_rate < 0.5 * clear.target_rate,
        "{congested:?}"
    );
    feed(&mut c, &mut t, 500, ms(40), |_| false);
    assert!(c.snapshot().target_rate > 2.0 * congested.target_rate);
}

#[test]
fn the_cap_bounds_the_target_and_can_change() {
    let cap = Rate::bytes_per_sec(5 << 20);
    let mut c = Controller::new(ControllerConfig::default(), cap, Duration::ZERO);
    let mut t = Duration::ZERO;
    feed(&mut c, &mut t, 500, ms(40), |_| false);
    assert_eq!(c.target_rate(), cap);
    c.set_cap(Rate::bytes_per_sec(1 << 20));
    assert_eq!(c.target_rate(), Rate::bytes_per_sec(1 << 20));
    c.set_cap(Rate::Unlimited);
    assert!(c.target_rate().as_bytes_per_sec().is_some());
}

/// One `bytes` sample finishing `gap` after `t`, with `latency` of delay; the lane
/// was waiting for tokens all along (pressure reported every 100 ms since the last one).
fn sparse_sample(
    c: &mut Controller,
    t: &mut Duration,
    gap: Duration,
    bytes: u64,
    latency: Duration,
) {
    let end = *t + gap;
    while *t < end {
        *t += ms(100);
        c.on_pressure(*t, Pressure::default(), true);
    }
    c.on_sample(&strata_throttle::Sample {
        bytes,
        start: t.saturating_sub(ms(900) + latency),
        finish: *t,
        latency: Some(latency),
        outcome: Outcome::Ok,
    });
}

#[test]
fn a_lane_of_large_sparse_requests_grows_back_in_seconds() {
    // 8 MiB parts on a 10 MB/s path (the netns test's shape): ~1.2 parts per second when
    // clear; a queue of seconds while a competing flow holds the link.
    let part = 8u64 << 20;
    let mut c = Controller::new(ControllerConfig::default(), Rate::Unlimited, Duration::ZERO);
    let mut t = Duration::ZERO;
    for _ in 0..20 {
        sparse_sample(&mut c, &mut t, ms(800), part, ms(50));
    }
    for _ in 0..8 {
        sparse_sample(&mut c, &mut t, ms(1500), part, ms(1500));
    }
    let yielded = c.snapshot().target_rate;
    assert!(yielded < 2e6, "yields under a standing queue: {yielded}");
    // The flow ends: the lane, held at its floor, gets one part every few seconds.
    let mut rates = Vec::new();
    for _ in 0..3 {
        let gap = Duration::from_secs_f64(part as f64 / c.snapshot().target_rate);
        sparse_sample(
            &mut c,
            &mut t,
            gap.min(Duration::from_secs(8)),
            part,
            ms(50),
        );
        rates.push(c.snapshot().target_rate);
    }
    println!("target after each clear sample: {rates:?}");
    assert!(
        rates[2] >= 5e6,
        "three clear samples should bring the lane back to half the path: {rates:?}"
    );
}
