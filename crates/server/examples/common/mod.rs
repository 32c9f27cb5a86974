//! What the service's load generators share: a fast deterministic random source, the
//! access events they send, and latency percentiles.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// xorshift64*: deterministic, fast, good enough to pick keys and fill bodies.
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The `p` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// `events` access events over `keys` keys as NDJSON bodies of `per_body` lines each:
/// skewed (half the events on 1% of the keys), timestamps over the last two minutes, and
/// one event in ten a write when `with_writes` (else all reads). Deterministic.
pub fn event_bodies(events: usize, keys: usize, per_body: usize, with_writes: bool) -> Vec<Bytes> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let names: Vec<String> = (0..keys)
        .map(|i| format!("datasets/run-{:03}/part-{i:08}.nc", i % 997))
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut bodies = Vec::with_capacity(events / per_body + 1);
    let mut made = 0;
    while made < events {
        let n = per_body.min(events - made);
        let mut body = String::with_capacity(n * 96);
        for _ in 0..n {
            let r = rng.next();
            let key = if r.is_multiple_of(2) {
                (r >> 8) as usize % (keys / 100).max(1)
            } else {
                (r >> 8) as usize % keys
            };
            let ts = now - 120_000 + (r >> 40) as i64 % 120_000;
            let op = if with_writes && r.is_multiple_of(10) {
                "write"
            } else {
                "read"
            };
            body.push_str(&format!(
                "{{\"ts\":{ts},\"key\":\"{}\",\"op\":\"{op}\",\"bytes\":{}}}\n",
                names[key],
                4096 + (r >> 48) % 65536
            ));
        }
        bodies.push(Bytes::from(body));
        made += n;
    }
    bodies
}
