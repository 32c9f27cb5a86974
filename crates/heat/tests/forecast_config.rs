//! `[forecast]` in `strata.toml`: defaults when absent, values as written, "0" turning the
//! proactive cycle off, and refusals that name the field.

use std::time::Duration;

use strata_heat::config::{ForecastConfig, TieringConfig};

fn errors(text: &str) -> Vec<String> {
    match TieringConfig::parse(text) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(err) => err.field_errors().iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn forecast_section_defaults_to_a_month_of_hourly_history_and_no_cycle() {
    let config = TieringConfig::parse("").unwrap();
    assert_eq!(config.forecast, ForecastConfig::default());
    assert_eq!(config.forecast.history, Duration::from_secs(30 * 86_400));
    assert_eq!(config.forecast.window, Duration::from_secs(3600));
    assert_eq!(config.forecast.proactive_interval, None);
}

#[test]
fn forecast_fields_are_read_and_zero_turns_the_cycle_off() {
    let config = TieringConfig::parse(
        "[forecast]\nhistory = \"14d\"\nwindow = \"2h\"\nproactive_interval = \"15m\"\n",
    )
    .unwrap();
    assert_eq!(config.forecast.history, Duration::from_secs(14 * 86_400));
    assert_eq!(config.forecast.window, Duration::from_secs(7200));
    assert_eq!(
        config.forecast.proactive_interval,
        Some(Duration::from_secs(900))
    );
    let off = TieringConfig::parse("[forecast]\nproactive_interval = \"0\"\n").unwrap();
    assert_eq!(off.forecast.proactive_interval, None);
}

#[test]
fn bad_forecast_fields_name_the_field_and_the_fix() {
    let found = errors("[forecast]\nwindow = \"10m\"\nproactive_interval = \"500ms\"\n");
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("forecast.window") && e.contains("1h")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|e| e.starts_with("forecast.proactive_interval") && e.contains("at least 1s")),
        "{found:?}"
    );
    let found = errors("[forecast]\nhistory = \"1h\"\n");
    assert!(
        found.iter().any(|e| e.starts_with("forecast.history")),
        "{found:?}"
    );
    let found = errors("[forecast]\nhorizon = \"1h\"\n");
    assert!(found.iter().any(|e| e.contains("horizon")), "{found:?}");
}
