//! The service's figures over time, for the dashboard's charts (`GET /v1/trends`): the
//! monthly storage cost, the bytes on each tier, the bytes moved and the accesses seen,
//! sampled every [`SAMPLE_INTERVAL`] and whenever a move ends, kept in memory for the last
//! [`SAMPLES_KEPT`] samples.
//!
//! Memory, not the catalog: the charts show what this process saw since it started (a
//! restart starts the lines again); Prometheus keeps the long history of the same
//! counters (`/metrics`). Each answer ends with a sample taken at the request, so a chart
//! is never empty.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use strata_catalog::JobState;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::state::{lock, now_ms, AppState};

/// How often a sample is taken when nothing else happens.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Samples kept: a day at [`SAMPLE_INTERVAL`] (plus the moves' samples).
pub const SAMPLES_KEPT: usize = 8_640;

/// The service's figures at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendSample {
    /// When, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Storage cost per month of every tier's bytes (GB of 10^9 bytes).
    pub monthly_cost: f64,
    /// Bytes stored on each tier, hottest first (the order of `tiers`).
    pub tier_bytes: Vec<u64>,
    /// Bytes copied by moves since the service started.
    pub moved_bytes: u64,
    /// Moves ended since the service started (any final state).
    pub moves_ended: u64,
    /// Accesses seen since the service started: object reads and accepted access events.
    pub accesses: u64,
}

/// The samples of this process.
#[derive(Debug, Default)]
pub struct Trends {
    samples: Mutex<VecDeque<TrendSample>>,
}

impl Trends {
    /// Keeps `sample`, forgetting the oldest beyond [`SAMPLES_KEPT`].
    pub fn record(&self, sample: TrendSample) {
        let mut samples = lock(&self.samples);
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> Vec<TrendSample> {
        lock(&self.samples).iter().cloned().collect()
    }
}

/// The figures of `state` now.
pub fn sample(state: &AppState) -> TrendSample {
    let usage = state.index.usage();
    let monthly_cost = state
        .tiers
        .iter()
        .zip(&usage)
        .map(|(tier, usage)| usage.bytes as f64 / 1e9 * tier.config.cost_per_gb_month)
        .sum();
    let metrics = &state.metrics;
    TrendSample {
        ts_ms: now_ms(),
        monthly_cost,
        tier_bytes: usage.iter().map(|usage| usage.bytes).collect(),
        moved_bytes: metrics.move_bytes.load(Ordering::Relaxed),
        moves_ended: lock(&metrics.moves_ended).values().sum(),
        accesses: metrics.reads.load(Ordering::Relaxed)
            + metrics.events_accepted.load(Ordering::Relaxed),
    }
}

/// Whether a job event is a move's end (a sample then shows the step in cost and bytes).
fn is_final(state: &str) -> bool {
    state
        .parse::<JobState>()
        .is_ok_and(|state| !state.is_active())
}

/// Samples every [`SAMPLE_INTERVAL`] and at each move's end until shutdown.
pub async fn sample_loop(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut events = state.events.subscribe();
    let mut ticker = tokio::time::interval(SAMPLE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            event = events.recv() => match event {
                Ok(event) if is_final(&event.state) => {}
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        state.trends.record(sample(&state));
    }
}

/// `GET /v1/trends`: the tier names and the samples, oldest first, ending with one taken now.
pub async fn trends(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let mut samples = state.trends.samples();
    samples.push(sample(&state));
    let tiers: Vec<&str> = state.tiers.iter().map(|tier| tier.name()).collect();
    Json(serde_json::json!({
        "interval_ms": SAMPLE_INTERVAL.as_millis() as u64,
        "tiers": tiers,
        "samples": samples,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts_ms: i64) -> TrendSample {
        TrendSample {
            ts_ms,
            monthly_cost: 0.0,
            tier_bytes: vec![1, 2],
            moved_bytes: 0,
            moves_ended: 0,
            accesses: 0,
        }
    }

    #[test]
    fn keeps_the_newest_samples_oldest_first() {
        let trends = Trends::default();
        for ts in 0..(SAMPLES_KEPT as i64 + 5) {
            trends.record(at(ts));
        }
        let samples = trends.samples();
        assert_eq!(samples.len(), SAMPLES_KEPT);
        assert_eq!(samples[0].ts_ms, 5);
        assert_eq!(samples.last().unwrap().ts_ms, SAMPLES_KEPT as i64 + 4);
    }

    #[test]
    fn only_a_moves_end_triggers_a_sample() {
        for state in ["done", "failed", "cancelled", "skipped"] {
            assert!(is_final(state), "{state}");
        }
        for state in [
            "planned",
            "copying",
            "verifying",
            "switching",
            "retiring",
            "bogus",
        ] {
            assert!(!is_final(state), "{state}");
        }
    }
}
