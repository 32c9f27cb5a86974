//! `[forecast]`: the service's forecast of next-window reads (`strata train`, `strata
//! predict`, the proactive cycle). Every field has a default; the section may be absent.
//!
//! ```toml
//! [forecast]
//! history = "30d"             # access history kept per object and hour
//! window = "1h"               # the forecast window (at least 1h: history is hourly)
//! proactive_interval = "1h"   # "0" or absent: no proactive cycle
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::parse::{Problems, Span};
use crate::units::HOUR_MS;

/// `[forecast]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForecastConfig {
    /// How long the access history is kept, per object and hour (default 30 days): what
    /// `strata train` learns from. Older hours are pruned.
    pub history: Duration,
    /// The forecast window (default 1h): a model predicts the reads of the next window.
    /// At least an hour, the history's resolution.
    pub window: Duration,
    /// How often the proactive cycle runs; `None` (the default, or `"0"`): never.
    pub proactive_interval: Option<Duration>,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            history: Duration::from_secs(30 * 24 * 3600),
            window: Duration::from_secs(3600),
            proactive_interval: None,
        }
    }
}

impl ForecastConfig {
    /// The window, ms.
    pub fn window_ms(&self) -> i64 {
        super::millis(self.window)
    }

    /// The history's retention, ms.
    pub fn history_ms(&self) -> i64 {
        super::millis(self.history)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForecast {
    history: Option<Span>,
    window: Option<Span>,
    proactive_interval: Option<Span>,
}

/// Builds and checks `[forecast]`: a window of at least an hour, a history of at least two
/// windows (one to learn from, one to label it), an interval of 0 (off) or at least 1s.
pub(super) fn build_forecast(raw: RawForecast, problems: &mut Problems) -> ForecastConfig {
    let d = ForecastConfig::default();
    let config = ForecastConfig {
        history: raw.history.map_or(d.history, |s| s.0),
        window: raw.window.map_or(d.window, |s| s.0),
        proactive_interval: raw
            .proactive_interval
            .map_or(d.proactive_interval, |s| Some(s.0).filter(|i| !i.is_zero())),
    };
    if config.window_ms() < HOUR_MS {
        problems.add(
            "forecast.window",
            "must be at least 1h: the access history is kept per hour; 1h is usual",
        );
    }
    if config.history < 2 * config.window {
        problems.add(
            "forecast.history",
            "must be at least two windows (one to learn from, one to label it); 30d is usual",
        );
    }
    if config
        .proactive_interval
        .is_some_and(|interval| interval < Duration::from_secs(1))
    {
        problems.add(
            "forecast.proactive_interval",
            "must be 0 (off) or at least 1s; 1h is usual",
        );
    }
    config
}
