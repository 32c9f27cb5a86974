//! The synchronous core on a simulated clock: Retry-After, cancellation, shared caps.

use std::time::Duration;

use strata_throttle::{
    BwLimit, Clock, Direction, Governor, GovernorConfig, Outcome, Priority, Sample, SimClock,
};

fn gov(limit: &str, control: bool) -> (SimClock, Governor<SimClock>) {
    let clock = SimClock::new();
    let cfg = GovernorConfig {
        limit: BwLimit::parse(limit).unwrap(),
        congestion_control: control,
        ..GovernorConfig::default()
    };
    (clock.clone(), Governor::new(clock, cfg))
}

#[test]
fn retry_after_pauses_admissions_then_resumes() {
    let (clock, mut g) = gov("off", true);
    let t = g.enqueue(Direction::Write, Priority::Normal, 1000, true);
    g.poll();
    let grant = g.take_grant(t).expect("admitted at once");
    clock.advance(Duration::from_millis(50));
    let retry = Outcome::Throttled {
        retry_after: Some(Duration::from_secs(2)),
    };
    g.finish(&grant, 1000, retry, None);
    let snap = g.snapshot(Direction::Write).controller;
    assert_eq!(snap.pushback_events, 1);
    assert_eq!(snap.backoff_events, 1);
    assert_eq!(snap.paused_until, Duration::from_millis(2050));

    let t = g.enqueue(Direction::Write, Priority::High, 1000, true);
    let wake = g.poll().expect("a wake-up time while paused");
    assert_eq!(wake, Duration::from_secs(2));
    assert!(g.take_grant(t).is_none());
    clock.advance(Duration::from_millis(1999));
    g.poll();
    assert!(
        g.take_grant(t).is_none(),
        "admitted before Retry-After elapsed"
    );
    clock.advance(Duration::from_millis(1));
    g.poll();
    assert!(g.take_grant(t).is_some());
    // Reads are a separate lane and were never paused.
    let r = g.enqueue(Direction::Read, Priority::Low, 1, true);
    g.poll();
    assert!(g.take_grant(r).is_some());
}

#[test]
fn huge_retry_after_is_clamped() {
    let (clock, mut g) = gov("off", true);
    let sample = Sample {
        bytes: 1,
        start: Duration::ZERO,
        finish: Duration::ZERO,
        latency: None,
        outcome: Outcome::Throttled {
            retry_after: Some(Duration::MAX),
        },
    };
    g.record(Direction::Read, &sample);
    assert_eq!(
        g.snapshot(Direction::Read).controller.paused_until,
        Duration::from_secs(300)
    );
    clock.advance(Duration::from_secs(301));
    let t = g.enqueue(Direction::Read, Priority::Low, 1, true);
    g.poll();
    assert!(g.take_grant(t).is_some());
}

#[test]
fn cancel_gives_back_slot_and_tokens() {
    let (clock, mut g) = gov("1M", false);
    let a = g.enqueue(Direction::Read, Priority::Normal, 1 << 20, true);
    let b = g.enqueue(Direction::Read, Priority::Normal, 1 << 20, true);
    let wake = g.poll().expect("b waits for tokens");
    assert!(wake > Duration::from_millis(700));
    // a was admitted but never taken: cancelling refunds its tokens.
    g.cancel(Direction::Read, a);
    g.cancel(Direction::Read, b);
    assert_eq!(g.snapshot(Direction::Read).in_flight, 0);
    assert_eq!(g.snapshot(Direction::Read).queued, [0; 4]);
    clock.advance(Duration::from_millis(250));
    let c = g.enqueue(Direction::Read, Priority::Normal, 1000, true);
    g.poll();
    assert!(g.take_grant(c).is_some());
}

#[test]
fn a_total_limit_is_shared_by_reads_and_writes() {
    let (clock, mut g) = gov("1M", false);
    let mut sent = 0u64;
    while clock.now() < Duration::from_secs(10) {
        for dir in Direction::ALL {
            if g.snapshot(dir).queued[1] == 0 {
                g.enqueue(dir, Priority::Normal, 64 << 10, true);
            }
        }
        let wake = g.poll();
        for grant in g.drain_grants() {
            sent += grant.bytes;
            g.finish(&grant, grant.bytes, Outcome::Ok, None);
        }
        clock.advance(
            wake.unwrap_or(Duration::from_millis(1))
                .max(Duration::from_micros(1)),
        );
    }
    let cap = 10.0 * 1048576.0;
    assert!(sent as f64 <= cap * 1.05, "{sent}");
    assert!(sent as f64 >= cap * 0.95, "{sent}");
}

#[test]
fn nonsense_samples_do_not_panic() {
    let (_, mut g) = gov("off", true);
    for (start, finish, bytes, latency) in [
        (Duration::MAX, Duration::ZERO, u64::MAX, None),
        (Duration::ZERO, Duration::MAX, 0, Some(Duration::MAX)),
        (
            Duration::from_secs(5),
            Duration::from_secs(1),
            1,
            Some(Duration::ZERO),
        ),
    ] {
        for outcome in [
            Outcome::Ok,
            Outcome::Timeout,
            Outcome::Reset,
            Outcome::OtherError,
        ] {
            let s = Sample {
                bytes,
                start,
                finish,
                latency,
                outcome,
            };
            g.record(Direction::Write, &s);
        }
    }
    let t = g.enqueue(Direction::Write, Priority::Background, u64::MAX, true);
    g.poll();
    let _ = g.take_grant(t);
    let snap = g.snapshot(Direction::Write);
    assert!(snap.controller.target_rate.is_finite());
    g.set_limit(BwLimit::parse("1K:off").unwrap());
    g.set_limit(BwLimit::OFF);
    let _ = g.poll();
}

#[test]
fn slot_only_requests_skip_the_token_queue_but_respect_slots_and_pauses() {
    let clock = SimClock::new();
    let mut g = Governor::new(
        clock.clone(),
        GovernorConfig {
            limit: BwLimit::parse("1M").unwrap(),
            congestion_control: false,
            controller: strata_throttle::ControllerConfig {
                concurrency: strata_throttle::ConcurrencyConfig {
                    initial: 2,
                    min: 1,
                    max: 2,
                },
                ..Default::default()
            },
            ..GovernorConfig::default()
        },
    );
    // Put the bucket deep in debt with paced bytes (no slot), and queue more behind them.
    let paced = g.enqueue(Direction::Write, Priority::Normal, 8 << 20, false);
    g.poll();
    assert!(g.take_grant(paced).is_some());
    let waiting = g.enqueue(Direction::Write, Priority::Normal, 1 << 20, false);
    // Slot-only requests go at once, without tokens, up to the slot limit.
    let a = g.enqueue_slot(Direction::Write, Priority::Normal);
    let b = g.enqueue_slot(Direction::Write, Priority::Normal);
    let c = g.enqueue_slot(Direction::Write, Priority::Normal);
    g.poll();
    let ga = g.take_grant(a).expect("first slot");
    assert!(g.take_grant(b).is_some(), "second slot");
    assert!(g.take_grant(c).is_none(), "only two slots");
    assert!(
        g.take_grant(waiting).is_none(),
        "paced bytes still wait for tokens"
    );
    // Finishing one frees its slot for the third.
    g.finish(&ga, 4 << 20, Outcome::Ok, None);
    g.poll();
    assert!(g.take_grant(c).is_some());
    assert_eq!(g.snapshot(Direction::Write).admitted_bytes[1], 8 << 20);
    // Cancelling a queued slot-only request removes it.
    let d = g.enqueue_slot(Direction::Write, Priority::Low);
    assert_eq!(g.snapshot(Direction::Write).queued[2], 1);
    g.cancel(Direction::Write, d);
    assert_eq!(g.snapshot(Direction::Write).queued[2], 0);

    // A Retry-After pause holds slot-only requests too.
    let (clock, mut g) = gov("off", true);
    let t = g.enqueue_slot(Direction::Read, Priority::Normal);
    g.poll();
    let grant = g.take_grant(t).unwrap();
    clock.advance(Duration::from_millis(50));
    let retry_after = Some(Duration::from_secs(2));
    g.finish(&grant, 0, Outcome::Throttled { retry_after }, None);
    let t = g.enqueue_slot(Direction::Read, Priority::Normal);
    let wake = g.poll().expect("a wake-up at the end of the pause");
    assert!(g.take_grant(t).is_none());
    assert!(wake <= Duration::from_secs(2) && wake > Duration::from_millis(1500));
    clock.advance(wake);
    g.poll();
    assert!(g.take_grant(t).is_some());
}
