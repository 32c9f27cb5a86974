//! The tiering configuration, `strata.toml`: its model, defaults and validation.
//!
//! Owned here: what an operator can write (server address and data directory, the default
//! tier, the tiers hot → cold in order of declaration, the classification rules, the class →
//! tier mapping, access tracking), the defaults for every field, and errors that name the
//! field and the reason (`tier[2].capacity: "12X" is not a size; write it like 500G`).
//! Tier indices in messages count from 0, in the order the `[[tier]]` tables appear.
//!
//! Not owned: opening stores (the store crate parses the URIs fully; this only checks
//! their shape and refuses credentials) and overrides from `STRATA_*` variables or flags
//! (the CLI applies those to the parsed value).
//!
//! A file with no `[[tier]]` at all gets the three local tiers of
//! [`TieringConfig::default_local`] under its `data_dir`; `tier = []` is an error.

mod bandwidth;
mod checks;
mod encryption;
mod forecast;
mod parse;
mod policy;
mod redundancy;
mod s3;
mod tier_id;

pub use bandwidth::BandwidthConfig;
pub use encryption::ENCRYPTION_CIPHERS;
pub use forecast::ForecastConfig;
pub use policy::{failures_tolerated, tier_failures_tolerated, MinRedundancy, PolicyConfig};
pub use redundancy::RedundancyByClass;
pub use s3::{check_bucket_name, S3FrontConfig, DEFAULT_BUCKET};
pub use tier_id::TierId;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::classify::{Class, Rules, SpikeRule};
use crate::placement::{ClassTiers, Planner, PlannerError, TierState};
use crate::policy::PolicySet;
use crate::stats::Decay;
use crate::tracker::TrackerConfig;

/// The whole tiering configuration, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TieringConfig {
    /// `[server]`.
    pub server: ServerConfig,
    /// Where new objects land (`warm` unless configured).
    pub default_tier: String,
    /// Tiers, hot → cold, in order of declaration.
    pub tiers: Vec<TierConfig>,
    /// `[rules]`.
    pub rules: RulesConfig,
    /// `[classes]`: which tiers each class lives on, by tier name.
    pub classes: ClassesConfig,
    /// `[tracking]`.
    pub tracking: TrackingConfig,
    /// `[objectives]`: the value of read latency, for `strata eval`'s cost model.
    pub objectives: ObjectivesConfig,
    /// `[forecast]`: history, window and proactive cycle of the service's forecast.
    pub forecast: ForecastConfig,
    /// `[bandwidth]`: the throttle of the service's moves; `None` without the section
    /// (moves unthrottled).
    pub bandwidth: Option<BandwidthConfig>,
    /// `[redundancy]`: the redundancy each class's objects get on tiers with enough domains.
    pub redundancy: RedundancyByClass,
    /// `[[policy]]`: constraints on placement by key prefix, in declaration order; each
    /// allows at least one tier (checked at load).
    pub policies: Vec<PolicyConfig>,
    /// `[s3]`: the S3 front door's buckets and anonymous access.
    pub s3: S3FrontConfig,
}

/// `[server]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on, `host:port` (default `127.0.0.1:7070`).
    pub listen: String,
    /// Directory for the embedded catalog and the default local tiers (default
    /// `./strata-data`).
    pub data_dir: PathBuf,
    /// Access-event streams the service consumes (`events = [...]`): URLs such as
    /// `nats://HOST:PORT/SUBJECT` or `kafka://HOST:PORT/TOPIC`, as written; the service
    /// parses and checks them at start-up. Empty by default.
    pub events: Vec<String>,
    /// The TLS certificate chain, PEM (`tls_cert`); with `tls_key`, the API is served over
    /// HTTPS only. Both or neither.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM (`tls_key`).
    pub tls_key: Option<PathBuf>,
    /// Host names (besides the listen address, `localhost`, `127.0.0.1` and `[::1]`)
    /// accepted in a request's `Host` and `Origin` headers (`allowed_hosts`): the names
    /// clients reach the service by. Anything else is refused (DNS rebinding, cross-site
    /// requests).
    pub allowed_hosts: Vec<String>,
    /// Where the audit log of write and admin requests goes, JSON lines (`audit_log`;
    /// default `<data_dir>/audit.log`).
    pub audit_log: Option<PathBuf>,
    /// Address of the S3-compatible front door, `host:port` (`s3_listen`, or
    /// `strata serve --s3-listen`); none by default.
    pub s3_listen: Option<String>,
}

/// How a tier stores objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Files stay files, usable without Strata.
    Plain,
    /// Strata's chunk store: content-addressed compressed chunks plus manifests.
    Packed,
}

/// One `[[tier]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TierConfig {
    /// Unique name (letters, digits, `-`, `_`).
    pub name: String,
    /// Store location: a path or a URI (`file://`, `s3://bucket/prefix?endpoint=...`,
    /// `memory://`). Default `<data_dir>/tiers/<name>`.
    pub store: String,
    /// The tier's failure domains, one store each (`stores = [...]`), when it has more than
    /// one; empty for a tier with one `store`. When set, `store` is the first of them.
    pub stores: Vec<String>,
    /// How the tier's objects are kept over its domains: `none`, `replicate:N` or
    /// `ec:K+M`, as written (default `none`); the service parses and checks it against the
    /// domains at start-up (`strata_redundancy::Redundancy`).
    pub redundancy: String,
    /// Layout (default `plain`).
    pub layout: Layout,
    /// Codec policy, passed to the codec crate as written (default `auto`; `none`,
    /// `zstd:19`, ...).
    pub codec: String,
    /// Storage cost per GB-month (default 0).
    pub cost_per_gb_month: f64,
    /// Typical time to first byte, ms (default 0).
    pub read_latency_ms: f64,
    /// Cost per GB read back (default 0).
    pub retrieval_cost_per_gb: f64,
    /// Cost per GB sent out (default 0).
    pub egress_cost_per_gb: f64,
    /// Cost per 1,000 requests, reads and writes alike (default 0).
    pub cost_per_1k_requests: f64,
    /// Capacity in bytes; `None` (the default) is unlimited.
    pub capacity: Option<u64>,
    /// How long an object stays on this tier before it may be demoted (default 0).
    pub min_residency: Duration,
    /// Where the tier's bytes are (`region = "eu-west"`), as written; matched by a policy's
    /// `regions` (default none: a policy with `regions` excludes the tier).
    pub region: Option<String>,
    /// Encryption at rest: the cipher name as written (`xchacha20poly1305` or
    /// `aes-256-gcm`), validated at load; `None` (the default) stores objects unencrypted.
    /// Needs `layout = "packed"` and one key source. A tier with it set counts as
    /// encrypted for a policy's `encryption_required`.
    pub encryption: Option<String>,
    /// A file holding the tier's 32-byte key, raw (never the key itself in `strata.toml`).
    pub encryption_key_file: Option<PathBuf>,
    /// An environment variable holding the tier's 32-byte key, raw.
    pub encryption_key_env: Option<String>,
    /// Files of earlier keys of the tier (32 raw bytes each), kept so objects sealed under
    /// them stay readable until `strata key rotate` has re-encrypted them.
    pub encryption_previous_key_files: Vec<PathBuf>,
    /// Environment variables holding earlier keys of the tier, as
    /// [`TierConfig::encryption_previous_key_files`].
    pub encryption_previous_key_envs: Vec<String>,
}

/// `[rules]`: classification thresholds, spike detection, and the planning pass.
#[derive(Clone, Debug, PartialEq)]
pub struct RulesConfig {
    /// Hot above this many accesses a day (default 100).
    pub hot_per_day: u64,
    /// Hot when accessed at most this long ago (default 1h).
    pub hot_within: Duration,
    /// Warm above this many accesses a day (default 10).
    pub warm_per_day: u64,
    /// Warm when accessed at most this long ago (default 24h).
    pub warm_within: Duration,
    /// A spike: recent rate at least this many times the baseline (default 8).
    pub spike_factor: f64,
    /// A spike also needs at least this many accesses in the last hour (default 20).
    pub spike_min_events: u64,
    /// Half-life of the recent rate (default 1h).
    pub fast_half_life: Duration,
    /// Half-life of the baseline rate (default 24h).
    pub slow_half_life: Duration,
    /// How often the periodic planning pass (demotions included) runs (default 1h).
    pub demotion_interval: Duration,
    /// Moves planned at most per pass (default 1000).
    pub max_moves_per_pass: usize,
}

/// `[classes]`: tier names per class, the first being where objects of the class go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassesConfig {
    /// Tiers for hot objects (default: the first tier).
    pub hot: Vec<String>,
    /// Tiers for warm objects (default: the tiers between the first and the last; with two
    /// tiers, both; with one, it).
    pub warm: Vec<String>,
    /// Tiers for cold objects (default: the last tier).
    pub cold: Vec<String>,
}

/// `[objectives]`: what a read's latency is worth, so that a fast tier has a value in
/// `strata eval`'s cost model (without it, a read served by any tier that meets the
/// objective is worth the same, and the cheapest storage always wins).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObjectivesConfig {
    /// The latency objective of every object's reads, ms (default 10).
    pub read_latency_ms: f64,
    /// Dollars charged for each read served by a tier slower than the objective (default
    /// 0.0001).
    pub miss_penalty: f64,
    /// Dollars per millisecond of read latency (default 1e-8; see
    /// [`DEFAULT_LATENCY_PRICE_PER_MS`]).
    pub latency_price_per_ms: f64,
}

/// Default `[objectives] latency_price_per_ms`: 1e-8 dollars per read-millisecond. On the
/// example configuration, NVMe (0.2 ms, 0.20 $/GB-month) against disk (8 ms, 0.04
/// $/GB-month) saves 7.8e-8 $ a read and costs 0.16 $/GB-month more, so a 1 MiB object
/// pays for NVMe from about 2,150 reads a month (some 70 a day, the order of the hot
/// rule's 100 a day): the hot tier is worth something, but only to objects read often.
pub const DEFAULT_LATENCY_PRICE_PER_MS: f64 = 1e-8;

impl Default for ObjectivesConfig {
    fn default() -> Self {
        ObjectivesConfig {
            read_latency_ms: 10.0,
            miss_penalty: 0.0001,
            latency_price_per_ms: DEFAULT_LATENCY_PRICE_PER_MS,
        }
    }
}

/// `[tracking]`: the in-memory access statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingConfig {
    /// How often changed statistics are written to the catalog (default 5s): the most a
    /// restart can lose.
    pub flush_interval: Duration,
    /// Events stamped further in the future are counted at arrival (default 5m).
    pub max_clock_skew: Duration,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            hot_per_day: 100,
            hot_within: Duration::from_secs(3600),
            warm_per_day: 10,
            warm_within: Duration::from_secs(24 * 3600),
            spike_factor: 8.0,
            spike_min_events: 20,
            fast_half_life: Duration::from_secs(3600),
            slow_half_life: Duration::from_secs(24 * 3600),
            demotion_interval: Duration::from_secs(3600),
            max_moves_per_pass: 1000,
        }
    }
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            flush_interval: Duration::from_secs(5),
            max_clock_skew: Duration::from_secs(300),
        }
    }
}

/// Default `[server] listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// Default `[server] data_dir`.
pub const DEFAULT_DATA_DIR: &str = "./strata-data";

impl Default for TieringConfig {
    /// [`TieringConfig::default_local`] under `./strata-data`.
    fn default() -> Self {
        TieringConfig::default_local(DEFAULT_DATA_DIR)
    }
}

/// A [`Duration`] as milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl TierConfig {
    /// A tier with every field at its default, stored under `<data_dir>/tiers/<name>`.
    pub fn local(name: &str, data_dir: &Path) -> Self {
        TierConfig {
            name: name.to_string(),
            store: data_dir.join("tiers").join(name).display().to_string(),
            stores: Vec::new(),
            redundancy: "none".to_string(),
            layout: Layout::Plain,
            codec: "auto".to_string(),
            cost_per_gb_month: 0.0,
            read_latency_ms: 0.0,
            retrieval_cost_per_gb: 0.0,
            egress_cost_per_gb: 0.0,
            cost_per_1k_requests: 0.0,
            capacity: None,
            min_residency: Duration::ZERO,
            region: None,
            encryption: None,
            encryption_key_file: None,
            encryption_key_env: None,
            encryption_previous_key_files: Vec::new(),
            encryption_previous_key_envs: Vec::new(),
        }
    }

    /// The tier's failure domains: its `stores`, or its one `store`.
    pub fn domains(&self) -> Vec<&str> {
        if self.stores.is_empty() {
            vec![self.store.as_str()]
        } else {
            self.stores.iter().map(String::as_str).collect()
        }
    }
}

impl TieringConfig {
    /// The configuration with no file: three local tiers `hot`, `warm`, `cold` under
    /// `<data_dir>/tiers/`, with example economics of fast disk, bulk disk and archive disk,
    /// new objects on `warm`, and the default rules.
    pub fn default_local(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let tiers = default_local_tiers(&data_dir);
        let classes = ClassesConfig::default_for(&tiers);
        TieringConfig {
            server: ServerConfig {
                listen: DEFAULT_LISTEN.to_string(),
                data_dir,
                events: Vec::new(),
                tls_cert: None,
                tls_key: None,
                allowed_hosts: Vec::new(),
                audit_log: None,
                s3_listen: None,
            },
            default_tier: "warm".to_string(),
            tiers,
            rules: RulesConfig::default(),
            classes,
            tracking: TrackingConfig::default(),
            objectives: ObjectivesConfig::default(),
            forecast: ForecastConfig::default(),
            bandwidth: None,
            redundancy: RedundancyByClass::default(),
            policies: Vec::new(),
            s3: S3FrontConfig::default(),
        }
    }

    /// Parses and validates the text of a `strata.toml`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        parse::parse(text).map_err(|errors| ConfigError::Invalid { file: None, errors })
    }

    /// Reads, parses and validates a `strata.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        parse::parse(&text).map_err(|errors| ConfigError::Invalid {
            file: Some(path.to_path_buf()),
            errors,
        })
    }

    /// A tier by name.
    pub fn tier(&self, name: &str) -> Option<&TierConfig> {
        self.tiers.iter().find(|tier| tier.name == name)
    }

    /// A tier's position, 0 being the hottest.
    pub fn tier_index(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|tier| tier.name == name)
    }

    /// A tier's identity, resolved from its name.
    pub fn tier_id(&self, name: &str) -> Option<TierId> {
        self.tier_index(name).map(TierId::from_index)
    }

    /// The class → tier mapping as tier indices (names that do not resolve are skipped;
    /// a validated configuration has none).
    pub fn class_tiers(&self) -> ClassTiers {
        let resolve = |names: &[String]| -> Vec<usize> {
            names
                .iter()
                .filter_map(|name| self.tier_index(name))
                .collect()
        };
        ClassTiers {
            hot: resolve(&self.classes.hot),
            warm: resolve(&self.classes.warm),
            cold: resolve(&self.classes.cold),
        }
    }

    /// The classification rules.
    pub fn classification_rules(&self) -> Rules {
        let r = &self.rules;
        Rules {
            hot_per_day: r.hot_per_day,
            hot_within_ms: millis(r.hot_within),
            warm_per_day: r.warm_per_day,
            warm_within_ms: millis(r.warm_within),
            spike: SpikeRule {
                factor: r.spike_factor,
                min_events_1h: r.spike_min_events,
            },
        }
    }

    /// Settings for the access tracker.
    pub fn tracker_config(&self) -> TrackerConfig {
        TrackerConfig {
            decay: Decay::new(
                millis(self.rules.fast_half_life),
                millis(self.rules.slow_half_life),
            ),
            spike: self.classification_rules().spike,
            max_clock_skew_ms: millis(self.tracking.max_clock_skew),
        }
    }

    /// A planner for these tiers, given each tier's bytes in use.
    pub fn planner(&self, used_bytes: impl Fn(&str) -> u64) -> Result<Planner, PlannerError> {
        let tiers = self
            .tiers
            .iter()
            .map(|tier| TierState {
                name: tier.name.clone(),
                capacity: tier.capacity,
                used_bytes: used_bytes(&tier.name),
                min_residency_ms: millis(tier.min_residency),
            })
            .collect();
        Planner::new(tiers, self.class_tiers(), self.rules.max_moves_per_pass)
            .map(|planner| planner.with_policies(self.policy_set()))
    }

    /// The `[[policy]]` list compiled against the tiers.
    pub fn policy_set(&self) -> PolicySet {
        PolicySet::new(self.policies.clone(), &self.tiers, &self.redundancy)
    }
}

impl ClassesConfig {
    /// The default mapping ([`ClassTiers::default_for`]) by name.
    pub fn default_for(tiers: &[TierConfig]) -> Self {
        let indices = ClassTiers::default_for(tiers.len());
        let names = |class: Class| -> Vec<String> {
            indices
                .tiers_for(class)
                .iter()
                .filter_map(|&i| tiers.get(i).map(|tier| tier.name.clone()))
                .collect()
        };
        ClassesConfig {
            hot: names(Class::Hot),
            warm: names(Class::Warm),
            cold: names(Class::Cold),
        }
    }
}

fn default_local_tiers(data_dir: &Path) -> Vec<TierConfig> {
    let tier = |name: &str, cost: f64, latency: f64, residency_secs: u64| TierConfig {
        cost_per_gb_month: cost,
        read_latency_ms: latency,
        min_residency: Duration::from_secs(residency_secs),
        ..TierConfig::local(name, data_dir)
    };
    vec![
        tier("hot", 0.20, 0.5, 3600),
        tier("warm", 0.05, 5.0, 24 * 3600),
        tier("cold", 0.01, 20.0, 0),
    ]
}

/// One problem in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `tier[2].capacity`; empty for a syntax error.
    pub field: String,
    /// What is wrong and how to write it.
    pub reason: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.field.is_empty(), self.position) {
            (true, Some((line, column))) => {
                write!(f, "line {line}, column {column}: {}", self.reason)
            }
            (true, None) => f.write_str(&self.reason),
            (false, Some((line, column))) => write!(
                f,
                "{}: {} (line {line}, column {column})",
                self.field, self.reason
            ),
            (false, None) => write!(f, "{}: {}", self.field, self.reason),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file has errors; all semantic ones are listed, or the first syntax error.
    #[error("{}", render_errors(file.as_deref(), errors))]
    Invalid {
        /// The file, when read from one.
        file: Option<PathBuf>,
        /// The problems, in file order where known.
        errors: Vec<FieldError>,
    },
}

impl ConfigError {
    /// The field problems (empty for a read error).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { errors, .. } => errors,
        }
    }
}

fn render_errors(file: Option<&Path>, errors: &[FieldError]) -> String {
    let head = match file {
        Some(path) => format!("invalid configuration {}", path.display()),
        None => "invalid configuration".to_string(),
    };
    match errors {
        [one] => format!("{head}: {one}"),
        many => {
            let mut out = format!("{head}:");
            for error in many {
                out.push_str("\n  ");
                out.push_str(&error.to_string());
            }
            out
        }
    }
}
