//! From TOML text to a validated [`TieringConfig`]: the file's shape (every field optional,
//! unknown keys refused), value parsers for sizes and durations, and the checks across
//! fields. Shape errors stop at the first (serde's way); the checks after it report every
//! problem at once, so one edit fixes them all.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::bandwidth::{build_bandwidth, RawBandwidth};
use super::checks::{check_codec, check_listen, check_store, check_tier_name};
use super::encryption::check_tier_encryption;
use super::forecast::{build_forecast, RawForecast};
use super::policy::{build_policies, RawPolicy};
use super::redundancy::{build_domains, build_redundancy, RawRedundancy};
use super::{
    millis, ClassesConfig, FieldError, Layout, ObjectivesConfig, RulesConfig, ServerConfig,
    TierConfig, TieringConfig, TrackingConfig, DEFAULT_DATA_DIR, DEFAULT_LISTEN,
};
use crate::units::{parse_duration_ms, parse_size};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    default_tier: Option<String>,
    tier: Option<Vec<RawTier>>,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    classes: RawClasses,
    #[serde(default)]
    tracking: RawTracking,
    #[serde(default)]
    objectives: RawObjectives,
    #[serde(default)]
    forecast: RawForecast,
    bandwidth: Option<RawBandwidth>,
    #[serde(default)]
    redundancy: RawRedundancy,
    policy: Option<Vec<RawPolicy>>,
    #[serde(default)]
    s3: super::s3::RawS3,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    events: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    allowed_hosts: Option<Vec<String>>,
    audit_log: Option<PathBuf>,
    s3_listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    name: Option<String>,
    store: Option<String>,
    stores: Option<Vec<String>>,
    redundancy: Option<String>,
    layout: Option<Layout>,
    codec: Option<String>,
    cost_per_gb_month: Option<Number>,
    read_latency_ms: Option<Number>,
    retrieval_cost_per_gb: Option<Number>,
    egress_cost_per_gb: Option<Number>,
    cost_per_1k_requests: Option<Number>,
    capacity: Option<Capacity>,
    min_residency: Option<Span>,
    region: Option<String>,
    encryption: Option<String>,
    encryption_key_file: Option<PathBuf>,
    encryption_key_env: Option<String>,
    #[serde(default)]
    encryption_previous_key_files: Vec<PathBuf>,
    #[serde(default)]
    encryption_previous_key_envs: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    hot_per_day: Option<u64>,
    hot_within: Option<Span>,
    warm_per_day: Option<u64>,
    warm_within: Option<Span>,
    spike_factor: Option<Number>,
    spike_min_events: Option<u64>,
    fast_half_life: Option<Span>,
    slow_half_life: Option<Span>,
    demotion_interval: Option<Span>,
    max_moves_per_pass: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawClasses {
    hot: Option<Vec<String>>,
    warm: Option<Vec<String>>,
    cold: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTracking {
    flush_interval: Option<Span>,
    max_clock_skew: Option<Span>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawObjectives {
    read_latency_ms: Option<Number>,
    miss_penalty: Option<Number>,
    latency_price_per_ms: Option<Number>,
}

/// A float that may be written as an integer (`cost_per_gb_month = 1`).
pub(super) struct Number(pub(super) f64);

/// A size: bytes as an integer, `"500G"`, or `"unlimited"`.
struct Capacity(Option<u64>);

/// A duration: seconds as an integer, or `"30d"`, `"12h"`, `"90m"`, `"3600s"`.
pub(super) struct Span(pub(super) Duration);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Capacity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Capacity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size like 500G, a number of bytes, or \"unlimited\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Capacity, E> {
                u64::try_from(v)
                    .map(|bytes| Capacity(Some(bytes)))
                    .map_err(|_| E::custom(format!("{v} is not a size; it must not be negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Capacity, E> {
                Ok(Capacity(Some(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Capacity, E> {
                if v.trim().eq_ignore_ascii_case("unlimited") {
                    return Ok(Capacity(None));
                }
                parse_size(v)
                    .map(|bytes| Capacity(Some(bytes)))
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like 30d, 12h, 90m or 3600s")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                u64::try_from(v)
                    .map(|secs| Span(Duration::from_secs(secs)))
                    .map_err(|_| {
                        E::custom(format!("{v} is not a duration; it must not be negative"))
                    })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
                Ok(Span(Duration::from_secs(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                parse_duration_ms(v)
                    .map(|ms| Span(Duration::from_millis(ms.max(0) as u64)))
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// 1-based line and column of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Collects the problems found by the checks.
#[derive(Default)]
pub(super) struct Problems(Vec<FieldError>);

impl Problems {
    pub(super) fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            reason: reason.into(),
            position: None,
        });
    }
}

pub(super) fn parse(text: &str) -> Result<TieringConfig, Vec<FieldError>> {
    let raw = read_shape(text)?;
    let mut problems = Problems::default();
    let config = build(raw, &mut problems);
    if problems.0.is_empty() {
        Ok(config)
    } else {
        Err(problems.0)
    }
}

fn read_shape(text: &str) -> Result<RawConfig, Vec<FieldError>> {
    let toml_error = |field: String, err: toml::de::Error| FieldError {
        field,
        reason: err.message().trim().to_string(),
        position: err.span().map(|span| position(text, span.start)),
    };
    let deserializer =
        toml::Deserializer::parse(text).map_err(|err| vec![toml_error(String::new(), err)])?;
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { String::new() } else { path };
        vec![toml_error(field, err.into_inner())]
    })
}

fn build(raw: RawConfig, problems: &mut Problems) -> TieringConfig {
    let data_dir = raw
        .server
        .data_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let listen = raw
        .server
        .listen
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let s3_listen = raw.server.s3_listen;
    if let Some(Err(reason)) = s3_listen.as_deref().map(check_listen) {
        problems.add("server.s3_listen", reason);
    }
    if let Err(reason) = check_listen(&listen) {
        problems.add("server.listen", reason);
    }
    if raw.server.tls_cert.is_some() != raw.server.tls_key.is_some() {
        problems.add(
            "server.tls_cert",
            "tls_cert and tls_key go together: give both (PEM files) for HTTPS, or neither",
        );
    }

    let tiers = match raw.tier {
        None => TieringConfig::default_local(&data_dir).tiers,
        Some(raw_tiers) => {
            if raw_tiers.is_empty() {
                problems.add(
                    "tier",
                    "no tiers declared; declare at least one [[tier]], or none at all for the \
                     three local default tiers",
                );
            }
            build_tiers(raw_tiers, &data_dir, problems)
        }
    };

    let default_tier = raw.default_tier.unwrap_or_else(|| "warm".to_string());
    if !tiers.is_empty() && !tiers.iter().any(|tier| tier.name == default_tier) {
        problems.add(
            "default_tier",
            format!(
                "{default_tier:?} is not a declared tier; use one of {}",
                tier_names(&tiers)
            ),
        );
    }

    let rules = build_rules(raw.rules, problems);
    let classes = build_classes(raw.classes, &tiers, problems);
    let defaults = TrackingConfig::default();
    let tracking = TrackingConfig {
        flush_interval: raw
            .tracking
            .flush_interval
            .map_or(defaults.flush_interval, |s| s.0),
        max_clock_skew: raw
            .tracking
            .max_clock_skew
            .map_or(defaults.max_clock_skew, |s| s.0),
    };
    if tracking.flush_interval < Duration::from_millis(100) {
        problems.add(
            "tracking.flush_interval",
            "must be at least 100ms; a few seconds is usual",
        );
    }

    let objectives = build_objectives(raw.objectives, problems);
    let forecast = build_forecast(raw.forecast, problems);
    let bandwidth = build_bandwidth(raw.bandwidth, problems);
    let redundancy = build_redundancy(raw.redundancy);
    let policies = build_policies(
        raw.policy.unwrap_or_default(),
        &tiers,
        &redundancy,
        problems,
    );
    TieringConfig {
        server: ServerConfig {
            listen,
            data_dir,
            events: raw.server.events.unwrap_or_default(),
            tls_cert: raw.server.tls_cert,
            tls_key: raw.server.tls_key,
            allowed_hosts: raw.server.allowed_hosts.unwrap_or_default(),
            audit_log: raw.server.audit_log,
            s3_listen,
        },
        default_tier,
        tiers,
        rules,
        classes,
        tracking,
        objectives,
        forecast,
        bandwidth,
        redundancy,
        policies,
        s3: super::s3::build_s3(raw.s3, problems),
    }
}

/// `[objectives]`: each value a number, 0 or more, defaulted one by one.
fn build_objectives(raw: RawObjectives, problems: &mut Problems) -> ObjectivesConfig {
    let mut objectives = ObjectivesConfig::default();
    let fields = [
        (
            "read_latency_ms",
            raw.read_latency_ms,
            &mut objectives.read_latency_ms,
        ),
        (
            "miss_penalty",
            raw.miss_penalty,
            &mut objectives.miss_penalty,
        ),
        (
            "latency_price_per_ms",
            raw.latency_price_per_ms,
            &mut objectives.latency_price_per_ms,
        ),
    ];
    for (key, value, slot) in fields {
        if let Some(Number(value)) = value {
            if !value.is_finite() || value < 0.0 {
                problems.add(
                    format!("objectives.{key}"),
                    format!("{value} must be a number, 0 or more"),
                );
            }
            *slot = value;
        }
    }
    objectives
}

fn tier_names(tiers: &[TierConfig]) -> String {
    tiers
        .iter()
        .map(|tier| tier.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn build_tiers(
    raw_tiers: Vec<RawTier>,
    data_dir: &std::path::Path,
    problems: &mut Problems,
) -> Vec<TierConfig> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut tiers = Vec::with_capacity(raw_tiers.len());
    for (index, raw) in raw_tiers.into_iter().enumerate() {
        let field = |name: &str| format!("tier[{index}].{name}");
        let name = match raw.name {
            Some(name) => {
                if let Err(reason) = check_tier_name(&name) {
                    problems.add(field("name"), reason);
                } else if let Some(first) = seen.insert(name.clone(), index) {
                    problems.add(
                        field("name"),
                        format!(
                            "{name:?} is already the name of tier[{first}]; names must be unique"
                        ),
                    );
                }
                name
            }
            None => {
                problems.add(field("name"), "missing; every tier needs a name");
                format!("tier{index}")
            }
        };
        let mut tier = TierConfig::local(&name, data_dir);
        let store_given = raw.store.is_some();
        if let Some(store) = raw.store {
            if let Err(reason) = check_store(&store) {
                problems.add(field("store"), reason);
            }
            tier.store = store;
        }
        if let Some(stores) = raw.stores {
            build_domains(&mut tier, stores, store_given, index, problems);
        }
        if let Some(redundancy) = raw.redundancy {
            tier.redundancy = redundancy;
        }
        if let Some(layout) = raw.layout {
            tier.layout = layout;
        }
        if let Some(codec) = raw.codec {
            if let Err(reason) = check_codec(&codec) {
                problems.add(field("codec"), reason);
            }
            tier.codec = codec;
        }
        let mut money = |key: &str, value: Option<Number>, slot: &mut f64| {
            if let Some(Number(value)) = value {
                if !value.is_finite() || value < 0.0 {
                    problems.add(field(key), format!("{value} must be a number, 0 or more"));
                }
                *slot = value;
            }
        };
        money(
            "cost_per_gb_month",
            raw.cost_per_gb_month,
            &mut tier.cost_per_gb_month,
        );
        money(
            "read_latency_ms",
            raw.read_latency_ms,
            &mut tier.read_latency_ms,
        );
        money(
            "retrieval_cost_per_gb",
            raw.retrieval_cost_per_gb,
            &mut tier.retrieval_cost_per_gb,
        );
        money(
            "egress_cost_per_gb",
            raw.egress_cost_per_gb,
            &mut tier.egress_cost_per_gb,
        );
        money(
            "cost_per_1k_requests",
            raw.cost_per_1k_requests,
            &mut tier.cost_per_1k_requests,
        );
        if let Some(Capacity(capacity)) = raw.capacity {
            tier.capacity = capacity;
        }
        if let Some(Span(residency)) = raw.min_residency {
            tier.min_residency = residency;
        }
        if raw
            .region
            .as_ref()
            .is_some_and(|region| region.trim().is_empty())
        {
            problems.add(
                field("region"),
                "is empty; write it like region = \"eu-west\", or leave it out".to_string(),
            );
        }
        tier.region = raw.region;
        tier.encryption = raw.encryption;
        tier.encryption_key_file = raw.encryption_key_file;
        tier.encryption_key_env = raw.encryption_key_env;
        tier.encryption_previous_key_files = raw.encryption_previous_key_files;
        tier.encryption_previous_key_envs = raw.encryption_previous_key_envs;
        for (name, reason) in check_tier_encryption(&tier) {
            problems.add(field(name), reason);
        }
        tiers.push(tier);
    }
    tiers
}

fn build_rules(raw: RawRules, problems: &mut Problems) -> RulesConfig {
    let d = RulesConfig::default();
    let rules = RulesConfig {
        hot_per_day: raw.hot_per_day.unwrap_or(d.hot_per_day),
        hot_within: raw.hot_within.map_or(d.hot_within, |s| s.0),
        warm_per_day: raw.warm_per_day.unwrap_or(d.warm_per_day),
        warm_within: raw.warm_within.map_or(d.warm_within, |s| s.0),
        spike_factor: raw.spike_factor.map_or(d.spike_factor, |n| n.0),
        spike_min_events: raw.spike_min_events.unwrap_or(d.spike_min_events),
        fast_half_life: raw.fast_half_life.map_or(d.fast_half_life, |s| s.0),
        slow_half_life: raw.slow_half_life.map_or(d.slow_half_life, |s| s.0),
        demotion_interval: raw.demotion_interval.map_or(d.demotion_interval, |s| s.0),
        max_moves_per_pass: raw.max_moves_per_pass.unwrap_or(d.max_moves_per_pass),
    };
    if rules.warm_per_day > rules.hot_per_day {
        problems.add(
            "rules.warm_per_day",
            format!(
                "{} is above hot_per_day ({}), so the warm rate rule could never apply",
                rules.warm_per_day, rules.hot_per_day
            ),
        );
    }
    if rules.warm_within < rules.hot_within {
        problems.add(
            "rules.warm_within",
            "is shorter than hot_within, so the warm recency rule could never apply",
        );
    }
    let second = Duration::from_secs(1);
    if rules.fast_half_life < second {
        problems.add("rules.fast_half_life", "must be at least 1s; 1h is usual");
    }
    if rules.slow_half_life <= rules.fast_half_life {
        problems.add(
            "rules.slow_half_life",
            "must be longer than fast_half_life: it is the baseline the recent rate is compared to",
        );
    }
    // A burst lifts the fast rate at most slow/fast half-life times above the baseline.
    let reachable =
        millis(rules.slow_half_life) as f64 / millis(rules.fast_half_life).max(1) as f64;
    if !rules.spike_factor.is_finite() || rules.spike_factor <= 1.0 {
        problems.add(
            "rules.spike_factor",
            format!("{} must be above 1; 8 is usual", rules.spike_factor),
        );
    } else if rules.slow_half_life > rules.fast_half_life && rules.spike_factor >= reachable {
        problems.add(
            "rules.spike_factor",
            format!(
                "{} can never be reached: a burst lifts the recent rate at most {reachable:.0}x \
                 above the baseline (slow_half_life / fast_half_life); use a smaller factor",
                rules.spike_factor
            ),
        );
    }
    if rules.spike_min_events == 0 {
        problems.add(
            "rules.spike_min_events",
            "must be at least 1; otherwise a single access of an idle object is a spike",
        );
    }
    if rules.demotion_interval < second {
        problems.add(
            "rules.demotion_interval",
            "must be at least 1s; 1h is usual",
        );
    }
    if rules.max_moves_per_pass == 0 {
        problems.add("rules.max_moves_per_pass", "must be at least 1");
    }
    rules
}

fn build_classes(raw: RawClasses, tiers: &[TierConfig], problems: &mut Problems) -> ClassesConfig {
    let defaults = ClassesConfig::default_for(tiers);
    let mut list = |class: &str, given: Option<Vec<String>>, default: Vec<String>| {
        let Some(names) = given else {
            return default;
        };
        let field = format!("classes.{class}");
        if names.is_empty() {
            problems.add(&field, "is empty; list at least one tier name");
        }
        for (i, name) in names.iter().enumerate() {
            if !tiers.iter().any(|tier| &tier.name == name) {
                problems.add(
                    format!("{field}[{i}]"),
                    format!(
                        "{name:?} is not a declared tier; use one of {}",
                        tier_names(tiers)
                    ),
                );
            }
        }
        names
    };
    ClassesConfig {
        hot: list("hot", raw.hot, defaults.hot),
        warm: list("warm", raw.warm, defaults.warm),
        cold: list("cold", raw.cold, defaults.cold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, 6), (2, 1));
        assert_eq!(position(text, 9), (2, 4));
        assert_eq!(position(text, 999), (3, 1));
    }
}
