use std::time::Duration;
use strata_throttle::sim::{run, CrossTraffic, SimConfig};

fn s(n: u64) -> Duration { Duration::from_secs(n) }

fn show(name: &str, cfg: &SimConfig) {
    let t0 = std::time::Instant::now();
    let r = run(cfg);
    println!("== {name} ({:?} wall)", t0.elapsed());
    let secs = cfg.duration.as_secs();
    for i in (0..secs).step_by(2) {
        let snap = r.snapshot_at(s(i)).unwrap();
        let c = &snap.controller;
        println!("t={i:3} util={:.2} wire={:6.1}MiB/s cross={:6.1} target={:7.1} q={:4}ms base={:?} n={} inflight={} backoffs={} {:?}",
            r.utilisation(s(i), s(i+2)),
            r.rate(&r.wire, s(i), s(i+2)) / 1048576.0,
            r.rate(&r.cross, s(i), s(i+2)) / 1048576.0,
            c.target_rate / 1048576.0, c.queuing_delay.as_millis(), c.base_delay.map(|d| d.as_millis()), c.in_flight_target, snap.in_flight, c.backoff_events, c.phase);
    }
    println!("util 10..end {:.3}", r.utilisation(s(10), cfg.duration));
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let mut cfg = SimConfig::default();
    if which == "plain" || which.is_empty() { show("plain", &cfg); }
    if which == "cross" {
        cfg.cross.push(CrossTraffic::Aimd { start: s(20), stop: s(40), increase_per_rtt: 64.0 * 1024.0 });
        show("cross", &cfg);
    }
    if which == "loss" { cfg.link.loss = 0.02; show("loss", &cfg); }
    if which == "rtt" {
        cfg.link.one_way_delay = vec![(Duration::ZERO, Duration::from_millis(100))];
        cfg.link.capacity = vec![(Duration::ZERO, 50.0 * 1048576.0)];
        cfg.link.stream_window = 2.0 * 1048576.0;
        cfg.link.buffer = 50.0 * 1048576.0 * 0.25;
        show("rtt", &cfg);
    }
}
