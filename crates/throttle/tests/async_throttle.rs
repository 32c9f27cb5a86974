//! Needs the async adapter.
#![cfg(feature = "tokio")]

//! The async adapter on tokio's paused clock (no wall-clock time).

use std::time::Duration;

use strata_throttle::{BwLimit, Direction, GovernorConfig, Outcome, Priority, Throttle};
use tokio::time::Instant;

fn throttle(limit: &str, control: bool) -> Throttle {
    Throttle::new(GovernorConfig {
        limit: BwLimit::parse(limit).unwrap(),
        congestion_control: control,
        ..GovernorConfig::default()
    })
}

#[tokio::test(start_paused = true)]
async fn acquire_holds_the_cap() {
    let t = throttle("1M", false);
    let start = Instant::now();
    for _ in 0..64 {
        let p = t
            .acquire(Direction::Write, Priority::Normal, 64 << 10)
            .await;
        p.finish(Outcome::Ok, None);
    }
    // 4 MiB at 1 MiB/s, minus the quarter-second burst and the pay-after first request.
    let secs = start.elapsed().as_secs_f64();
    assert!((3.6..=3.8).contains(&secs), "{secs}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_delays_the_next_request() {
    let t = throttle("off", true);
    let p = t.acquire(Direction::Read, Priority::High, 1000).await;
    p.finish(
        Outcome::Throttled {
            retry_after: Some(Duration::from_secs(3)),
        },
        None,
    );
    let start = Instant::now();
    let p = t.acquire(Direction::Read, Priority::High, 1000).await;
    assert!(start.elapsed() >= Duration::from_secs(3));
    drop(p);
    assert_eq!(t.snapshot(Direction::Read).in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn dropped_waiters_leave_no_trace_and_tasks_share_by_weight() {
    let t = throttle("1M", false);
    // A waiter that gives up.
    let _ = t.acquire(Direction::Write, Priority::Low, 4 << 20).await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(10),
        t.acquire(Direction::Write, Priority::Low, 1 << 20),
    )
    .await;
    assert!(gave_up.is_err());
    assert_eq!(t.snapshot(Direction::Write).queued, [0; 4]);

    // Let the 4 MiB debt be repaid first.
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Two classes from concurrent tasks share by weight (High 8 : Background 1).
    let mut tasks = Vec::new();
    for class in [Priority::High, Priority::Background] {
        for _ in 0..4 {
            let t = t.clone();
            tasks.push(tokio::spawn(async move {
                let mut bytes = 0u64;
                let stop = Instant::now() + Duration::from_secs(30);
                while Instant::now() < stop {
                    let p = t.acquire(Direction::Write, class, 32 << 10).await;
                    bytes += 32 << 10;
                    p.finish(Outcome::Ok, None);
                }
                (class, bytes)
            }));
        }
    }
    let (mut high, mut bg) = (0u64, 0u64);
    for task in tasks {
        let (class, bytes) = task.await.unwrap();
        if class == Priority::High {
            high += bytes
        } else {
            bg += bytes
        }
    }
    let ratio = high as f64 / bg as f64;
    assert!((ratio / 8.0 - 1.0).abs() <= 0.10, "{ratio}");
    let total = (high + bg) as f64 / 30.0 / 1048576.0;
    assert!((0.95..=1.05).contains(&total), "{total}");
}

#[tokio::test(start_paused = true)]
async fn set_limit_applies_to_waiters() {
    let t = throttle("1K", false);
    let _ = t.acquire(Direction::Write, Priority::Normal, 1 << 20).await;
    let waiter = {
        let t = t.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let _p = t.acquire(Direction::Write, Priority::Normal, 1).await;
            start.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    t.set_limit(BwLimit::OFF);
    let waited = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_eq!(t.limit(), BwLimit::OFF);
}
