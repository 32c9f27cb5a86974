//! A robustness sweep of the controller over link speeds, request sizes and RTTs
//! (`cargo run --release --example sweep [CAPACITY_MIB]`): utilisation with no cross
//! traffic, with 2 % loss, after AIMD cross traffic (and our share during it, and the
//! back-off delay), and after a 5x capacity drop. Not a test: a tool for tuning.

use std::time::Duration;
use strata_throttle::sim::{run, CrossTraffic, Job, SimConfig};
use strata_throttle::Priority;
fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}
fn main() {
    const MIB: f64 = 1048576.0;
    let only: Option<String> = std::env::args().nth(1);
    for cap in [10.0, 100.0, 500.0] {
        if only.as_deref().is_some_and(|o| o != format!("{cap}")) {
            continue;
        }
        for chunk in [256u64 << 10, 1 << 20, 4 << 20] {
            for owd in [1u64, 20, 100] {
                let mut line = format!("cap={cap:5} chunk={:5}K owd={owd:3}ms:", chunk >> 10);
                for scen in ["plain", "loss", "cross", "step"] {
                    let mut cfg = SimConfig::default();
                    cfg.link.capacity = vec![(Duration::ZERO, cap * MIB)];
                    cfg.link.buffer = cap * MIB * 0.25;
                    cfg.link.one_way_delay = vec![(Duration::ZERO, Duration::from_millis(owd))];
                    cfg.jobs = vec![Job {
                        chunk,
                        workers: 64,
                        ..Job::busy(Priority::Normal)
                    }];
                    cfg.seed = 7;
                    cfg.report_latency = std::env::var("NOLAT").is_err();
                    let (a, b) = match scen {
                        "loss" => {
                            cfg.link.loss = 0.02;
                            (10, 60)
                        }
                        "cross" => {
                            cfg.cross.push(CrossTraffic::Aimd {
                                start: s(20),
                                stop: s(40),
                                increase_per_rtt: 65536.0,
                            });
                            (50, 60)
                        }
                        "step" => {
                            cfg.link.capacity.push((s(20), cap * MIB * 0.2));
                            (25, 60)
                        }
                        _ => (10, 60),
                    };
                    let r = run(&cfg);
                    let mut extra = String::new();
                    if scen == "cross" {
                        let share =
                            r.rate(&r.wire, s(25), s(40)) / r.rate(&r.capacity, s(25), s(40));
                        let before = r.snapshot_at(s(20)).unwrap().controller.backoff_events;
                        let at = r
                            .snapshots
                            .iter()
                            .find(|(t, sn)| *t >= s(20) && sn.controller.backoff_events > before)
                            .map(|(t, _)| t.as_secs_f64() - 20.0)
                            .unwrap_or(99.0);
                        extra = format!("(share {share:.2} bo {at:.2}s)");
                    }
                    line += &format!(" {scen}={:.2}{extra}", r.utilisation(s(a), s(b)));
                }
                println!("{line}");
            }
        }
    }
}
