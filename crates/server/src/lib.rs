//! # strata-server: the tiering service behind `strata serve`
//!
//! It owns
//!
//! - the HTTP API (axum), described by the OpenAPI document it serves at `/openapi.json`:
//!   objects (PUT, GET with ranges, HEAD, DELETE, LIST by prefix), access events as NDJSON
//!   batches, tiers with usage and cost, move jobs (list, get, cancel, retry), a dry-run
//!   plan, `explain`, Prometheus `/metrics`, `/healthz`, and server-sent events for job
//!   transitions ([`routes`]); every error is JSON with a code, a message and the
//!   request's id, which every answer carries in `x-request-id` and every log line of the
//!   request as a field ([`request_id`]);
//! - the connection layer under it: a bound on connections, header and body timeouts,
//!   bodies refused from their declared length before they are read ([`http`]), over TLS
//!   when configured ([`tls`]);
//! - who may call the API: bearer tokens with scopes and key prefixes, the Host and Origin
//!   checks, the refusal of an exposed address without tokens and TLS, and the audit log
//!   ([`auth`]);
//! - the object read and write paths over the tiers' stores, with per-key locks so a read
//!   never sees bytes that do not match its metadata ([`objects`], [`index`]), in each
//!   tier's layout: plain bytes, or compressed, checked frames ([`tiers`], [`tier_codec`]);
//! - access tracking: the read and write paths, the batch endpoint and the `--events`
//!   streams of NATS subjects and Kafka topics ([`streams`]) feed strata-heat's tracker;
//!   changed statistics are flushed to the catalog every few seconds, with the Kafka
//!   offsets they include ([`access`]);
//! - decisions: the reactive pass (spikes promoted at once) and the periodic pass
//!   (promotions and demotions, minimum residency, capacities), each move recorded with its
//!   reason and inputs ([`planning`], [`explain`]);
//! - chaos controls: faults switched on in a tier's stores at run time ([`chaos`]);
//! - safe moves: copy, verify (BLAKE3), switch in one transaction, retire, every state in
//!   the catalog, retried with backoff, resumed after a restart ([`mover`], [`recovery`],
//!   [`retry`]), under the `[bandwidth]` throttle ([`layers`]);
//! - the web dashboard at `/ui`, its assets embedded at build time ([`dashboard`]), and the
//!   figures over time its charts draw ([`trends`]).
//!
//! It does not own the rules, the statistics or the placement arithmetic (strata-heat), the
//! stores (strata-store) or the tables (strata-catalog's tiering module).
//!
//! Start it with [`start`]; the CLI's `strata serve` does that and waits for a signal.

pub mod access;
pub mod auth;
pub mod background;
pub mod chaos;
pub mod cost_plan;
pub mod dashboard;
pub mod error;
pub mod explain;
pub mod forecast;
pub mod group_commit;
pub mod http;
pub mod index;
pub mod jobs;
pub mod key_rotation;
pub mod layers;
pub mod metrics;
pub mod mover;
pub mod objects;
pub mod planning;
pub mod policies;
pub mod recovery;
pub mod redundancy_worker;
pub mod request_id;
pub mod retry;
pub mod routes;
pub mod s3;
pub mod scrub;
pub mod state;
pub mod streams;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tier_codec;
pub mod tier_store;
pub mod tiers;
pub mod tls;
pub mod trends;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_catalog::{EngineCatalog, PostgresCatalog, PostgresUrl, SqliteCatalog, TieringCatalog};
use strata_heat::{AccessTracker, TieringConfig};
use strata_store::faults::FaultPlan;
use strata_store::S3Options;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;

pub use error::{ApiError, ServeError};
pub use http::HttpLimits;
pub use recovery::RecoveryReport;
pub use routes::{OPENAPI, ROUTES};
pub use state::Limits;
pub use tiers::{check_servable, rebase_data_dir};

use crate::index::{KeyGates, KeyLocks, ObjectIndex};
use crate::metrics::Metrics;
use crate::mover::Mover;
use crate::objects::entry_of;
use crate::retry::Backoff;
use crate::state::{AppState, DecisionLog};

/// How often leftover copies are swept and old decisions pruned.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// Decisions kept per object.
const DECISIONS_KEPT: u32 = 100;

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything [`start`] needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration (`strata.toml`, or [`TieringConfig::default_local`]).
    pub config: TieringConfig,
    /// S3 settings for S3 tiers (credentials from the environment only).
    pub s3: S3Options,
    /// Request bounds.
    pub limits: Limits,
    /// Connection bounds and request timeouts.
    pub http: HttpLimits,
    /// Periodic planning interval; `None`: `rules.demotion_interval`.
    pub plan_interval: Option<Duration>,
    /// Move jobs run at once at most.
    pub move_concurrency: usize,
    /// Catalog file; `None`: `<data_dir>/catalog.db`.
    pub catalog_path: Option<PathBuf>,
    /// A PostgreSQL catalog shared with other nodes (`--catalog postgres://...`); when
    /// set, it is the service's catalog and `catalog_path` is not used.
    pub shared_catalog: Option<PostgresUrl>,
    /// Faults to inject into the tier stores (`STRATA_FAULTS`, a testing aid; see
    /// [`layers`]).
    pub faults: Option<FaultPlan>,
    /// Serve a non-loopback address without tokens or TLS anyway (`--insecure`), with a
    /// warning in the log and in `/healthz` ([`auth::check_exposure`]).
    pub insecure: bool,
    /// The S3 front door's key pair (access key id, secret); `None`: the service's
    /// `STRATA_S3_ACCESS_KEY` and `STRATA_S3_SECRET_KEY` ([`s3::keys`]).
    pub s3_front_keys: Option<(String, String)>,
}

impl ServeOptions {
    /// Options with defaults around `config`.
    pub fn new(config: TieringConfig) -> Self {
        ServeOptions {
            config,
            s3: S3Options::default(),
            limits: Limits::default(),
            http: HttpLimits::default(),
            plan_interval: None,
            move_concurrency: 4,
            catalog_path: None,
            shared_catalog: None,
            faults: None,
            insecure: false,
            s3_front_keys: None,
        }
    }
}

/// A started service.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// What start-up recovery did.
    pub recovery: RecoveryReport,
    tls: bool,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    /// The S3 front door's address and serving task (`[server] s3_listen`).
    s3: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
    tasks: Vec<JoinHandle<()>>,
    /// Keeps the `[bandwidth]` timetable current while the service runs.
    _bandwidth_updates: Option<strata_store::bandwidth::LiveUpdates>,
}

impl RunningServer {
    /// The catalog: its file, or its URL with the password redacted.
    pub fn catalog_path(&self) -> PathBuf {
        self.state.engine.path().to_path_buf()
    }

    /// Whether the API is served over TLS (`[server] tls_cert`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The audit log's file.
    pub fn audit_log(&self) -> PathBuf {
        self.state.access.audit_path().to_path_buf()
    }

    /// The S3 front door's address, when `[server] s3_listen` is set.
    pub fn s3_addr(&self) -> Option<SocketAddr> {
        self.s3.as_ref().map(|(addr, _)| *addr)
    }

    /// Holds (or releases) queued move jobs; running jobs finish.
    pub fn set_moves_paused(&self, paused: bool) {
        self.state.mover.set_paused(paused);
    }

    /// Stops accepting requests, lets those in flight finish (up to 10 s), flushes the
    /// access statistics and closes the catalog. Move jobs stop where they are; their
    /// state is in the catalog and the next start resumes them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, self.server)
            .await
            .is_err()
        {
            tracing::warn!("requests still running after the shutdown grace period");
        }
        if let Some((_, s3)) = self.s3 {
            if tokio::time::timeout(SHUTDOWN_GRACE, s3).await.is_err() {
                tracing::warn!("S3 requests still running after the shutdown grace period");
            }
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
        }
        self.state.engine.close().await;
    }

    /// Runs until `signal` completes, then shuts down.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

/// Opens the tiers and the catalog, recovers from any crash, and starts serving.
pub async fn start(options: ServeOptions) -> Result<RunningServer, ServeError> {
    let config = options.config;
    // A configuration parsed from a file was checked already; one built in code is checked
    // here, before anything is opened.
    let policies = config.policy_set();
    if let Some((index, reason)) = policies.refusals().into_iter().next() {
        return Err(ServeError::Config {
            field: format!("policy[{index}]"),
            reason,
        });
    }
    let event_sources = event_sources(&config)?;
    let catalog_path = options
        .catalog_path
        .unwrap_or_else(|| config.server.data_dir.join(tiers::DEFAULT_CATALOG));
    // Before anything is written: overlapping stores would lose or mix objects.
    tiers::check_stores_apart(&config, &catalog_path, &options.s3)?;
    let (store_layers, bandwidth) = layers::store_layers(&config, options.faults)?;
    let (notices_tx, notices) = tokio::sync::mpsc::channel(redundancy_worker::NOTICE_QUEUE);
    let tiers = tiers::open_tiers(&config, &options.s3, &store_layers, &notices_tx).await?;
    let engine = match &options.shared_catalog {
        Some(url) => EngineCatalog::Postgres(PostgresCatalog::open(url).await?),
        None => EngineCatalog::Sqlite(SqliteCatalog::open(&catalog_path).await?),
    };
    let catalog: Arc<dyn TieringCatalog> = engine.tiering();
    let security = match secure_transport(&config, &engine, options.insecure).await {
        Ok(security) => security,
        Err(err) => {
            engine.close().await;
            return Err(err);
        }
    };

    let placed = catalog.placed_objects().await?;
    let mut unknown: std::collections::BTreeMap<String, usize> = Default::default();
    for object in &placed {
        if !tiers.iter().any(|tier| tier.name() == object.tier) {
            *unknown.entry(object.tier.clone()).or_default() += 1;
        }
    }
    if let Some((tier, count)) = unknown.into_iter().next() {
        engine.close().await;
        return Err(ServeError::Config {
            field: "tier".to_string(),
            reason: format!(
                "the catalog has {count} objects on tier {tier:?}, which the configuration no \
                 longer declares; declare it again (its objects would be unreadable)"
            ),
        });
    }
    let opened = open_placed(&tiers, &catalog, &placed).await;
    let index = match opened {
        Ok(index) => index,
        Err(err) => {
            engine.close().await;
            return Err(err);
        }
    };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (mover, queue) = Mover::new(options.move_concurrency);
    let plan_interval = options
        .plan_interval
        .unwrap_or(config.rules.demotion_interval)
        .max(Duration::from_millis(100));
    let flush_interval = config.tracking.flush_interval;
    let forecast_state = forecast::ForecastState::new(&config.server.data_dir);
    let state = Arc::new(AppState {
        tracker: Mutex::new(AccessTracker::new(config.tracker_config())),
        flushing: tokio::sync::Mutex::new(()),
        config,
        policies,
        tiers: tiers::Tiers::new(tiers),
        catalog,
        engine,
        index,
        locks: KeyLocks::default(),
        uploads: KeyGates::default(),
        commits: Default::default(),
        metrics: Metrics::default(),
        streams: Default::default(),
        events: broadcast::channel(1024).0,
        limits: options.limits,
        http: options.http,
        backoff: Backoff::default(),
        mover,
        planner_wake: Notify::new(),
        plan_interval,
        decisions: Mutex::new(DecisionLog::default()),
        retire_backlog: Mutex::new(Default::default()),
        forecast: forecast_state,
        trends: trends::Trends::default(),
        shutdown: shutdown_rx.clone(),
        bandwidth: bandwidth.clone(),
        reencodes: Mutex::new(Default::default()),
        reencode_failures: Mutex::new(Default::default()),
        reencode_turn: tokio::sync::Semaphore::new(1),
        background: background::Background::start(),
        foreground: Default::default(),
        access: security.access,
    });

    let loaded = access::load_stats(&state)
        .await
        .map_err(ServeError::Recovery)?;
    let recovery = recovery::recover(&state).await?;
    // Loads the newest model, or logs once why decisions fall back to the rules.
    let _ = state.forecast.model();
    tracing::info!(
        objects = state.index.len(),
        stats = loaded,
        ?recovery,
        "catalog loaded"
    );

    let listen = state.config.server.listen.clone();
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    // The address bound (a name may resolve otherwise than it did at the check).
    auth::check_exposure(
        addr,
        security.has_tokens,
        security.tls.is_some(),
        options.insecure,
    )?;
    if let Some(warning) = &state.access.insecure_warning {
        tracing::warn!(%addr, "{warning}");
    }

    let mut tasks = vec![
        tokio::spawn(mover::scheduler(
            Arc::clone(&state),
            queue,
            shutdown_rx.clone(),
        )),
        tokio::spawn(access::flush_loop(
            Arc::clone(&state),
            flush_interval,
            shutdown_rx.clone(),
        )),
        tokio::spawn(planning::planner_loop(
            Arc::clone(&state),
            shutdown_rx.clone(),
        )),
        tokio::spawn(maintenance_loop(Arc::clone(&state), shutdown_rx.clone())),
        tokio::spawn(redundancy_worker::redundancy_loop(
            Arc::clone(&state),
            notices,
            shutdown_rx.clone(),
        )),
        tokio::spawn(forecast::proactive::proactive_loop(
            Arc::clone(&state),
            shutdown_rx.clone(),
        )),
        tokio::spawn(trends::sample_loop(Arc::clone(&state), shutdown_rx.clone())),
    ];
    tasks.extend(streams::start(&state, event_sources, &shutdown_rx));
    let front_keys = options.s3_front_keys.clone();
    let s3 = match start_front_door(
        &state,
        front_keys,
        security.tls.clone(),
        options.insecure,
        &shutdown_rx,
    )
    .await
    {
        Ok(s3) => s3,
        Err(err) => {
            let _ = shutdown_tx.send(true);
            state.engine.close().await;
            return Err(err);
        }
    };
    if s3.is_some() {
        tasks.push(tokio::spawn(s3::cleanup::cleanup_loop(
            Arc::clone(&state),
            shutdown_rx.clone(),
        )));
    }
    let app = routes::router(Arc::clone(&state));
    let tls = security.tls.is_some();
    let server = tokio::spawn(http::serve(
        listener,
        app,
        options.http,
        security.tls,
        shutdown_rx,
    ));
    Ok(RunningServer {
        addr,
        recovery,
        tls,
        state,
        shutdown: shutdown_tx,
        server,
        s3,
        tasks,
        _bandwidth_updates: bandwidth.map(|control| control.start_live_updates()),
    })
}

/// Starts the S3 front door when `[server] s3_listen` is set: over TLS when the API is,
/// refused on an exposed address without TLS (signatures do not hide the bytes) unless
/// `insecure`.
async fn start_front_door(
    state: &Arc<AppState>,
    keys: Option<(String, String)>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    insecure: bool,
    shutdown: &watch::Receiver<bool>,
) -> Result<Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>, ServeError> {
    let Some(listen) = state.config.server.s3_listen.clone() else {
        return Ok(None);
    };
    let has_tls = tls.is_some();
    let keys = match keys {
        Some((access, secret)) => {
            s3::keys::FrontKeys::new(Some(access), Some(secret), &state.config.s3)?
        }
        None => s3::keys::FrontKeys::from_env(&state.config.s3)?,
    };
    let (addr, server) = s3::start(state, &listen, keys, tls, shutdown.clone()).await?;
    match auth::check_exposure(addr, true, has_tls, insecure) {
        Ok(Some(warning)) => tracing::warn!(%addr, "S3 front door: {warning}"),
        Ok(None) => {}
        Err(err) => {
            server.abort();
            return Err(err);
        }
    }
    Ok(Some((addr, server)))
}

/// What [`secure_transport`] sets up.
struct Security {
    access: auth::AccessControl,
    has_tokens: bool,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The TLS acceptor (`[server] tls_cert`, `tls_key`), the guard over the catalog's tokens
/// and the audit log; refused when the listen address is exposed without tokens and TLS
/// (before anything is recovered or served).
async fn secure_transport(
    config: &TieringConfig,
    engine: &EngineCatalog,
    insecure: bool,
) -> Result<Security, ServeError> {
    let server = &config.server;
    let tls = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let tokens = engine.tokens();
    let has_tokens = tokens.has_tokens().await?;
    let mut warning = None;
    let addrs = tokio::net::lookup_host(&server.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: server.listen.clone(),
            source,
        })?;
    for addr in addrs {
        warning = warning.or(auth::check_exposure(
            addr,
            has_tokens,
            tls.is_some(),
            insecure,
        )?);
    }
    let audit_path = server
        .audit_log
        .clone()
        .unwrap_or_else(|| server.data_dir.join(auth::audit::DEFAULT_AUDIT_LOG));
    let audit = auth::audit::AuditLog::open(&audit_path).map_err(|err| ServeError::Config {
        field: "server.audit_log".to_string(),
        reason: format!(
            "cannot open {} for appending: {err}; give a writable path",
            audit_path.display()
        ),
    })?;
    let hosts = auth::hosts::HostPolicy::new(&server.listen, &server.allowed_hosts);
    Ok(Security {
        access: auth::AccessControl::new(tokens, has_tokens, hosts, audit, warning),
        has_tokens,
        tls,
    })
}

/// The access-event streams of `[server] events` (or `--events`), each checked before
/// anything is opened; a bad one is refused with its position named.
fn event_sources(config: &TieringConfig) -> Result<Vec<streams::EventSource>, ServeError> {
    config
        .server
        .events
        .iter()
        .enumerate()
        .map(|(i, text)| {
            streams::EventSource::parse(text).map_err(|reason| ServeError::Config {
                field: format!("server.events[{i}]"),
                reason,
            })
        })
        .collect()
}

/// Checks the tiers' layouts against what the catalog holds on them, and indexes the placed
/// objects with the bytes their copies take (one listing per packed tier: the catalog
/// records raw sizes).
async fn open_placed(
    tiers: &[tiers::Tier],
    catalog: &Arc<dyn TieringCatalog>,
    placed: &[strata_catalog::PlacedObject],
) -> Result<ObjectIndex, ServeError> {
    let mut holding: std::collections::BTreeMap<String, u64> = Default::default();
    let in_flight = catalog.placements_in_flight().await?;
    let intents = catalog.write_intents().await?;
    let names = placed
        .iter()
        .map(|p| &p.tier)
        .chain(in_flight.iter().map(|p| &p.tier))
        .chain(intents.iter().map(|i| &i.tier));
    for name in names {
        *holding.entry(name.clone()).or_default() += 1;
    }
    tiers::check_layouts(tiers, &holding).await?;
    let sizes = tiers::packed_sizes(tiers).await?;
    let index = ObjectIndex::new(tiers.len());
    for object in placed {
        let Some(tier) = tiers.iter().find(|tier| tier.name() == object.tier) else {
            continue;
        };
        let key = &object.object.key;
        let stored = if tier.format.is_packed() {
            sizes[tier.id.index()].get(key).copied().unwrap_or_else(|| {
                tracing::error!(%key, tier = tier.name(),
                    "the current copy is missing from its packed tier; its reads fail");
                tier.format.stored_bound(object.object.size)
            })
        } else {
            object.object.size
        };
        index.upsert(key, entry_of(object, tier.id, stored));
    }
    Ok(index)
}

/// Sweeps leftover copies and prunes old decisions, every minute.
async fn maintenance_loop(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(MAINTENANCE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut rounds = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        match recovery::sweep(&state).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "leftover copies deleted"),
            Err(err) => tracing::warn!(%err, "leftover sweep failed"),
        }
        rounds += 1;
        if rounds.is_multiple_of(60) {
            if let Err(err) = state.catalog.prune_decisions(DECISIONS_KEPT).await {
                tracing::warn!(%err, "pruning decisions failed");
            }
        }
    }
}
