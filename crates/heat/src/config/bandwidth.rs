//! `[bandwidth]`: the bandwidth policy of the service's moves (background traffic). Without
//! the section, moves are not throttled. Same syntax as `strata migrate`'s flags:
//!
//! ```toml
//! [bandwidth]
//! limit = "20M"                # --bwlimit syntax: a rate, WRITE:READ, or a weekly timetable
//! congestion_control = true    # back off when an S3 path gets congested (default true)
//! priority = "background"      # class of the moves' transfers (default background)
//! ```

use serde::Deserialize;
use strata_throttle::{Priority, Schedule};

use super::parse::Problems;

/// `[bandwidth]`, when present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BandwidthConfig {
    /// The cap per tier store (a rate or a weekly timetable); `None`: no cap.
    pub limit: Option<Schedule>,
    /// Whether moves to and from S3 tiers back off when the path or the store is
    /// congested (default true; local tiers get the plain cap).
    pub congestion_control: bool,
    /// The priority class of the moves' transfers (default `background`).
    pub priority: Priority,
}

impl Default for BandwidthConfig {
    fn default() -> Self {
        BandwidthConfig {
            limit: None,
            congestion_control: true,
            priority: Priority::Background,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBandwidth {
    limit: Option<String>,
    congestion_control: Option<bool>,
    priority: Option<String>,
}

/// Validates `[bandwidth]`, naming each bad field.
pub(super) fn build_bandwidth(
    raw: Option<RawBandwidth>,
    problems: &mut Problems,
) -> Option<BandwidthConfig> {
    let raw = raw?;
    let mut config = BandwidthConfig::default();
    if let Some(text) = raw.limit {
        match Schedule::parse(&text) {
            Ok(limit) => config.limit = Some(limit),
            Err(err) => problems.add(
                "bandwidth.limit",
                format!(
                    "{text:?}: {err}; write a rate like \"20M\" (MiB/s; a bare number is KiB/s), \
                     \"10M:off\" (WRITE:READ) or a timetable like \"Mon-08:00,20M 19:00,off\""
                ),
            ),
        }
    }
    if let Some(c) = raw.congestion_control {
        config.congestion_control = c;
    }
    if let Some(text) = raw.priority {
        match Priority::parse(&text) {
            Some(priority) => config.priority = priority,
            None => problems.add(
                "bandwidth.priority",
                format!("{text:?} is not a priority class; write high, normal, low or background"),
            ),
        }
    }
    Some(config)
}

#[cfg(test)]
mod tests {
    use crate::config::TieringConfig;
    use strata_throttle::{BwLimit, Priority, Weekday};

    #[test]
    fn the_bandwidth_section_reads_the_cli_syntax() {
        let config = TieringConfig::parse("").unwrap();
        assert_eq!(config.bandwidth, None, "no section, no throttle");
        let config = TieringConfig::parse(
            "[bandwidth]\nlimit = \"Mon-08:00,2M 19:00,off\"\ncongestion_control = false\n\
             priority = \"low\"\n",
        )
        .unwrap();
        let bandwidth = config.bandwidth.unwrap();
        let limit = bandwidth.limit.unwrap();
        assert_eq!(
            limit.rate_at(Weekday::Mon, 9 * 60),
            BwLimit::parse("2M").unwrap()
        );
        assert!(!bandwidth.congestion_control);
        assert_eq!(bandwidth.priority, Priority::Low);
        let defaults = TieringConfig::parse("[bandwidth]\n").unwrap().bandwidth;
        assert_eq!(defaults, Some(super::BandwidthConfig::default()));
    }

    #[test]
    fn bad_bandwidth_values_are_refused_naming_the_field() {
        let e = TieringConfig::parse("[bandwidth]\nlimit = \"20X\"\npriority = \"urgent\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bandwidth.limit") && e.contains("20X"), "{e}");
        assert!(
            e.contains("bandwidth.priority") && e.contains("urgent"),
            "{e}"
        );
        let e = TieringConfig::parse("[bandwidth]\nrate = \"20M\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rate"), "{e}");
    }
}
