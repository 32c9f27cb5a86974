//! # strata-heat
//!
//! How hot each object is, which tier it belongs on, and why. Pure and synchronous: no I/O
//! besides reading a config file and trace files, no clock (every call takes the time in milliseconds since
//! the Unix epoch), so every decision can be replayed and tested.
//!
//! It owns
//!
//! - the tiering configuration, `strata.toml` ([`config`]): tiers hot → cold with their
//!   economics, capacity and minimum residency, the rules, the class → tier mapping;
//! - access events and their NDJSON batch format ([`event`]);
//! - per-object access statistics ([`stats`]): windowed counts, decayed rates, last access,
//!   inter-arrival time, and their persisted form;
//! - the in-memory tracker ([`tracker`]): ingest, spike detection at ingest, and the dirty
//!   set flushed to the catalog;
//! - classification ([`classify`]): rules → hot, warm or cold, with a stable reason code,
//!   the inputs, and a sentence for `strata explain`;
//! - placement ([`placement`]): from classes and capacities to a plan of moves and waits
//!   that never overfills a tier;
//! - access traces ([`trace`]): streaming readers of recorded workloads (eight formats,
//!   compressed or not) into dense object ids, for replaying policies (`strata eval`);
//! - prices ([`cost`]): what stored bytes, reads, requests, moves and read latency cost on
//!   each tier, from the configuration;
//! - placement by cost ([`optimise`]): the tier that minimises an object's expected cost for
//!   its forecast reads, and many objects' placement under capacity, residency, pins and
//!   latency objectives (MILP, and Lagrangian prices at scale);
//! - policy evaluation ([`eval`]): replay of an access trace through tiering policies under
//!   one cost model, with next-window prediction scores (`strata eval`);
//! - the forecast of next-window reads ([`forecast`]): features, gradient-boosted trees,
//!   walk-forward training (the `learned` policy of `strata eval`).
//!
//! It does not own the HTTP server, the catalog tables, or the move jobs: the server feeds
//! the tracker and flushes it, the catalog stores [`PersistedStats`] and decisions, and the
//! mover executes each [`Move`] as copy, verify, switch, retire.
//!
//! A typical pass, as the server runs it:
//!
//! ```
//! use strata_heat::{AccessSummary, AccessTracker, ObjectState, TieringConfig};
//!
//! let config = TieringConfig::default_local("./strata-data");
//! let mut tracker = AccessTracker::new(config.tracker_config());
//! let now = 1_767_225_600_000; // 2026-01-01T00:00:00Z
//! let body = br#"{"ts": 1767225590000, "key": "runs/7/t2m.nc", "op": "read", "bytes": 4096}"#;
//! let (outcome, report) = tracker.ingest_ndjson(now, body);
//! assert_eq!((outcome.recorded, report.rejected), (1, 0));
//!
//! let rules = config.classification_rules();
//! let summary = tracker.summary("runs/7/t2m.nc", now).unwrap_or(AccessSummary::never_accessed(now));
//! let decision = rules.classify(&summary);
//! assert_eq!(decision.explain(), "hot: last access 10s ago, within 1h");
//!
//! let planner = config.planner(|_tier| 0).expect("a validated config makes a planner");
//! let objects = [ObjectState {
//!     key: "runs/7/t2m.nc".into(),
//!     size: 4096,
//!     tier: "warm".into(),
//!     placed_at_ms: now - 60_000,
//!     decision,
//! }];
//! let plan = planner.plan(now, &objects);
//! assert_eq!((plan.moves[0].from.as_str(), plan.moves[0].to.as_str()), ("warm", "hot"));
//! ```

#![warn(missing_docs)]

pub mod classify;
pub mod config;
pub mod cost;
pub mod eval;
pub mod event;
pub mod forecast;
pub mod optimise;
pub mod placement;
pub mod policy;
pub mod stats;
pub mod trace;
pub mod tracker;
pub mod units;

pub use classify::{Class, Decision, DecisionInputs, Reason, Rules, SpikeRule};
pub use config::{
    ConfigError, FieldError, Layout, ObjectivesConfig, PolicyConfig, TierConfig, TierId,
    TieringConfig,
};
pub use event::{parse_ndjson, scan_ndjson, AccessEvent, EventRef, LineError, NdjsonReport};
pub use placement::{
    residency_holds, ClassTiers, Move, ObjectState, PlacementPlan, Planner, PlannerError,
    TierState, Wait,
};
pub use policy::{CompiledPolicy, PolicySet, TierVerdict};
pub use stats::{AccessStats, AccessSummary, Decay, Op, PersistedStats, STATS_FORMAT_VERSION};
pub use tracker::{AccessTracker, BatchOutcome, FlushBatch, TrackerConfig};
