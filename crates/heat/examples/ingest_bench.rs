//! Ingest throughput: 1M access events over 100k keys, recorded with
//! `AccessTracker::record_batch` (events already parsed), and the same events as an NDJSON
//! body through `AccessTracker::ingest_ndjson` (parse + record, as the batch endpoint does).
//!
//! Run in release: `cargo run --release --example ingest_bench [events] [keys]`.

use std::time::Instant;

use strata_heat::{AccessEvent, AccessTracker, Op, TrackerConfig};

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let keys: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);

    let start_ms: i64 = 1_767_225_600_000;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let names: Vec<String> = (0..keys)
        .map(|i| format!("datasets/run-{:03}/part-{i:08}.nc", i % 997))
        .collect();
    // Skewed popularity: half the events go to 1% of the keys. Time spans two hours with a
    // little jitter, so some events arrive out of order and windows roll over.
    let batch: Vec<AccessEvent> = (0..events)
        .map(|i| {
            let r = rng.next();
            let key = if r.is_multiple_of(2) {
                (r >> 8) as usize % (keys / 100).max(1)
            } else {
                (r >> 8) as usize % keys
            };
            let jitter = (r >> 40) as i64 % 2_000;
            AccessEvent {
                ts_ms: start_ms + (i as i64 * 7_200_000 / events as i64) + jitter,
                key: names[key].clone(),
                op: if r.is_multiple_of(10) {
                    Op::Write
                } else {
                    Op::Read
                },
                bytes: 4096 + (r >> 48) % 65536,
                client: None,
            }
        })
        .collect();
    let now = start_ms + 7_200_000;

    // Warm-up pass to fault the memory in, then a timed pass over a fresh tracker.
    let mut warm = AccessTracker::new(TrackerConfig::default());
    warm.record_batch(now, &batch);
    drop(warm);

    let mut tracker = AccessTracker::new(TrackerConfig::default());
    let t = Instant::now();
    let outcome = tracker.record_batch(now, &batch);
    let first = t.elapsed();
    // A second pass over the same keys: every key is already known (the steady state).
    let t = Instant::now();
    tracker.record_batch(now, &batch);
    let second = t.elapsed();
    let t = Instant::now();
    let flushed = tracker.take_dirty();
    let flush = t.elapsed();

    let rate = |d: std::time::Duration| events as f64 / d.as_secs_f64();
    println!("record_batch: {events} events over {keys} keys");
    println!(
        "  new keys:   {:>8.0} ms  {:>12.0} events/s  ({:.0} ns/event)",
        first.as_secs_f64() * 1e3,
        rate(first),
        first.as_nanos() as f64 / events as f64
    );
    println!(
        "  known keys: {:>8.0} ms  {:>12.0} events/s  ({:.0} ns/event)",
        second.as_secs_f64() * 1e3,
        rate(second),
        second.as_nanos() as f64 / events as f64
    );
    println!(
        "  take_dirty: {:>8.1} ms for {} rows; {} spikes, {} clamped",
        flush.as_secs_f64() * 1e3,
        flushed.upserts.len(),
        outcome.spikes,
        outcome.clamped
    );

    // The batch endpoint's path: NDJSON body → parse → record, keys known.
    let mut body = Vec::with_capacity(events * 100);
    for e in &batch {
        let op = match e.op {
            Op::Read => "read",
            Op::Write => "write",
            Op::Delete => "delete",
        };
        body.extend_from_slice(
            format!(
                "{{\"ts\":{},\"key\":\"{}\",\"op\":\"{op}\",\"bytes\":{}}}\n",
                e.ts_ms, e.key, e.bytes
            )
            .as_bytes(),
        );
    }
    let t = Instant::now();
    let mut parsed = 0usize;
    strata_heat::scan_ndjson(&body, now, |_| parsed += 1);
    let parse_only = t.elapsed();
    let t = Instant::now();
    let (outcome, report) = tracker.ingest_ndjson(now, &body);
    let ingest = t.elapsed();
    assert_eq!(report.rejected, 0);
    println!(
        "ingest_ndjson ({:.0} MiB body, parse + record, keys known):",
        body.len() as f64 / (1 << 20) as f64
    );
    println!(
        "              {:>8.0} ms  {:>12.0} events/s  ({:.0} ns/event)",
        ingest.as_secs_f64() * 1e3,
        rate(ingest),
        ingest.as_nanos() as f64 / outcome.recorded as f64
    );
    println!(
        "  parse only: {:>8.0} ms  {:>12.0} events/s  ({:.0} ns/event)",
        parse_only.as_secs_f64() * 1e3,
        rate(parse_only),
        parse_only.as_nanos() as f64 / parsed as f64
    );
    println!(
        "memory: AccessStats {} bytes; {} objects tracked",
        std::mem::size_of::<strata_heat::AccessStats>(),
        tracker.len()
    );
}
