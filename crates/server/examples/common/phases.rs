//! The re-encode phases a reader's GETs overlapped, from `/v1/events` (the job transitions
//! `copying`, `verifying`, `done`), timed on arrival at the client: which phase of a
//! re-encode costs the readers (issue 12's p99 floor).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::percentile;

/// One job transition as it arrived.
struct Transition {
    at: Instant,
    job: u64,
    state: String,
}

/// A running follower of `/v1/events`.
pub struct Follower {
    seen: Arc<Mutex<Vec<Transition>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts following the job events of the service at `url`.
pub fn follow(url: &str) -> Follower {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let url = format!("{url}/v1/events");
    let task = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let Ok(mut response) = client.get(url).send().await else {
            eprintln!("phases: /v1/events refused");
            return;
        };
        let mut pending = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            let at = Instant::now();
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                if let Some(data) = line.trim().strip_prefix("data:") {
                    if let Ok(event) = serde_json::from_str::<serde_json::Value>(data) {
                        if let (Some(job), Some(state)) =
                            (event["id"].as_u64(), event["state"].as_str())
                        {
                            let state = state.to_string();
                            sink.lock().unwrap().push(Transition { at, job, state });
                        }
                    }
                }
            }
        }
    });
    // Give the subscription a moment to be live before the reads start.
    std::thread::sleep(Duration::from_millis(200));
    Follower { seen, task }
}

/// The phases of every re-encode seen: (copy start, verify start, done).
pub struct Timeline(Vec<(Instant, Instant, Instant)>);

impl Follower {
    /// Stops following; the phases of every job that went through all three transitions.
    pub async fn stop(self) -> Timeline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.task.abort();
        let seen = self.seen.lock().unwrap();
        let mut jobs: HashMap<u64, [Option<Instant>; 3]> = HashMap::new();
        for t in seen.iter() {
            let slot = match t.state.as_str() {
                "copying" => 0,
                "verifying" => 1,
                "done" => 2,
                _ => continue,
            };
            jobs.entry(t.job).or_default()[slot].get_or_insert(t.at);
        }
        let mut phases: Vec<_> = jobs
            .into_values()
            .filter_map(|[c, v, d]| Some((c?, v?, d?)))
            .collect();
        phases.sort();
        Timeline(phases)
    }
}

fn overlaps(span: (Instant, Duration), from: Instant, to: Instant) -> bool {
    span.0 < to && span.0 + span.1 > from
}

/// Prints p50/p99/max of the GETs by the phase they overlapped: copy (written, checked, old
/// retired), verify (read back and hashed, then the job's end recorded), after (within
/// 20 ms after a re-encode's end: what follows it), none.
pub fn report(timeline: &Timeline, spans: &[(Instant, Duration)]) {
    let mut groups: [(&str, Vec<Duration>); 4] = [
        ("copy", Vec::new()),
        ("verify", Vec::new()),
        ("after", Vec::new()),
        ("none", Vec::new()),
    ];
    let after = Duration::from_millis(20);
    for &span in spans {
        let phase = timeline.0.iter().find_map(|&(c, v, d)| {
            if overlaps(span, c, v) {
                Some(0)
            } else if overlaps(span, v, d) {
                Some(1)
            } else if overlaps(span, d, d + after) {
                Some(2)
            } else {
                None
            }
        });
        groups[phase.unwrap_or(3)].1.push(span.1);
    }
    println!("  re-encodes followed: {}", timeline.0.len());
    for (name, mut latencies) in groups {
        if latencies.is_empty() {
            continue;
        }
        latencies.sort();
        println!(
            "  GETs overlapping {name:>6}: {:5}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies[latencies.len() - 1].as_secs_f64() * 1e3,
        );
    }
}
