//! The tiers the service serves: each configured tier opened as a store, and where an
//! object's bytes live on it.
//!
//! On every tier an object's bytes are the file (or S3 object) `<tier store>/objects/<key>`,
//! written with [`strata_store::Store::write_atomic`] (local: temp file, fsync, rename,
//! fsync of the directory), in the tier's layout:
//!
//! - `plain`: the object's raw bytes, so the tier stays usable without Strata;
//! - `packed`: the object cut into 1 MiB chunks, each a self-describing compressed frame
//!   (codec per the tier's `codec` policy, default `auto`), then a frame table (length and
//!   raw BLAKE3 per frame) and a 32-byte trailer (raw length, chunk size, frame count,
//!   version, check, magic `STPT`), so a range is served from the frames that hold it and
//!   every frame read is checked. [`crate::tier_codec`] holds the format and is the only
//!   code that reads or writes object bytes on a tier.
//!
//! A tier's usage counts **stored** bytes (what the tier holds: compressed frames, table and
//! trailer on a packed tier; the raw bytes on a plain one); capacities and `free_bytes`
//! count the same. The catalog records raw sizes, so at start each packed tier is listed
//! once to learn its objects' stored sizes.
//!
//! A tier with `encryption` set (packed layout only; a plain tier is refused at load) seals
//! every frame with its key ([`keys`] reads it at start-up, refusing a key that is missing or
//! not 32 bytes); see [`crate::tier_codec`].
//!
//! Each tier's store carries a marker, `.strata/tier.json`, naming the layout its objects
//! are written in; a tier whose configured layout differs from the marker while the catalog
//! has objects on it is refused at start-up (its bytes would be misread), with the field
//! named. A codec policy the codec crate does not accept is refused likewise.
//!
//! Each tier's store is opened under its layers ([`strata_store::Layers`]): the
//! `STRATA_FAULTS` plan and, for moves only, the `[bandwidth]` throttle. A tier therefore
//! holds three handles on one store: [`Tier::store`] for client requests, start-up and
//! recovery (fault rules for side `any`, never throttled), and [`MoveStores`] for a move's
//! source (`src`) and target (`dst`), which share the tier's one throttle. All three share
//! the tier's [`Chaos`] ([`Tier::chaos`]): faults switched on at run time through
//! `POST /v1/chaos` reach client requests and moves alike ([`crate::chaos`]).
//!
//! Tier stores must be apart: no two on one location or one inside another, none that is
//! or contains the data dir, the catalog inside none ([`overlap`]); such a configuration is
//! refused before anything is written.

mod keys;
mod overlap;
mod redundancy;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use strata_codec::format::tier_marker::{marker_layout, tier_marker, TIER_MARKER_PATH};
use strata_heat::{Class, Layout, TierConfig, TierId, TieringConfig};
use strata_redundancy::{Redundancy, RedundantStore};
use strata_store::chaos::Chaos;
use strata_store::faults::FaultSide;
use strata_store::{Layers, S3Options, Store, StoreMetrics, StoreUri};
use tokio::sync::mpsc;

use crate::error::ServeError;
use crate::state::AppState;
use crate::tier_codec::TierFormat;
use crate::tier_store::{DomainTier, ReadNotice, TierStore};

pub use keys::tier_keys;
pub use overlap::check_stores_apart;
pub use redundancy::TierRedundancy;

/// The directory under a tier's store that holds object bytes.
pub const OBJECTS_DIR: &str = "objects";

/// One tier, opened.
#[derive(Debug, Clone)]
pub struct Tier {
    /// Its identity (its position, 0 being the hottest).
    pub id: TierId,
    /// Its configuration.
    pub config: TierConfig,
    /// Its store (or domains), for client requests, start-up and recovery: never throttled.
    pub store: TierStore,
    /// How it stores object bytes (from its layout and codec policy).
    pub format: TierFormat,
    /// Its store as moves use it (under the bandwidth policy).
    pub moves: MoveStores,
    /// What redundancy its objects get, by class; `None` for a tier with one store and
    /// no redundancy (its objects are plain files of that store, as ever).
    pub redundancy: Option<TierRedundancy>,
    /// The calls, bytes and errors of each of its stores' backends (one per domain, in
    /// `stores` order), client requests and moves together: `strata_store_*` in `/metrics`.
    pub store_metrics: Vec<Arc<StoreMetrics>>,
    /// The run-time faults of all its stores (`POST /v1/chaos`).
    pub chaos: Arc<Chaos>,
}

/// The service's tiers, hottest first, looked up by [`TierId`] (a slice of [`Tier`]
/// otherwise: iterate, count, search by name at the edges).
#[derive(Debug, Clone, Default)]
pub struct Tiers(Vec<Tier>);

impl Tiers {
    /// The tiers, in the configuration's order (each one's `id` its position).
    pub fn new(tiers: Vec<Tier>) -> Tiers {
        Tiers(tiers)
    }

    /// The tier `id`, if the configuration has it.
    pub fn get(&self, id: TierId) -> Option<&Tier> {
        self.0.get(id.index())
    }
}

impl std::ops::Deref for Tiers {
    type Target = [Tier];

    fn deref(&self) -> &[Tier] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Tiers {
    type Item = &'a Tier;
    type IntoIter = std::slice::Iter<'a, Tier>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl std::ops::Index<TierId> for Tiers {
    type Output = Tier;

    /// The tier `id`; every id the service holds was made from its own configuration.
    fn index(&self, id: TierId) -> &Tier {
        &self.0[id.index()]
    }
}

/// A tier's store as moves use it: under the `[bandwidth]` throttle, with the
/// `STRATA_FAULTS` rules of the side it plays in a move.
#[derive(Debug, Clone)]
pub struct MoveStores {
    /// When the tier is a move's source (fault side `src`).
    pub source: TierStore,
    /// When the tier is a move's target (fault side `dst`).
    pub target: TierStore,
}

impl Tier {
    /// The tier's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The path of an object's bytes inside the tier's store.
    pub fn object_path(key: &str) -> String {
        format!("{OBJECTS_DIR}/{key}")
    }

    /// This tier as a move's source sees it: its store is [`MoveStores::source`].
    pub fn as_move_source(&self) -> Tier {
        Tier {
            store: self.moves.source.clone(),
            ..self.clone()
        }
    }

    /// This tier as a move's target sees it: its store is [`MoveStores::target`].
    pub fn as_move_target(&self) -> Tier {
        Tier {
            store: self.moves.target.clone(),
            ..self.clone()
        }
    }

    /// The local file of an object's bytes, for local tiers with one store.
    pub fn local_file(&self, key: &str) -> Option<PathBuf> {
        self.store
            .single()
            .and_then(Store::local_root)
            .map(|root| root.join(OBJECTS_DIR).join(key))
    }

    /// The redundancy an object of `class` should have on this tier (`None`: the tier has
    /// one store and no redundancy).
    pub fn wanted_redundancy(&self, class: Class) -> Option<Redundancy> {
        self.redundancy.as_ref().map(|policy| policy.wanted(class))
    }
}

/// Checks what the service cannot serve, naming the field: a store URI it cannot open, a
/// codec policy the codec crate does not know on a packed tier, a redundancy it cannot
/// parse or that needs more failure domains than the tier lists, tier stores (or domains)
/// that overlap (with each other, the data dir or its `catalog.db`; [`check_stores_apart`]).
pub fn check_servable(config: &TieringConfig) -> Result<(), ServeError> {
    check_fields(config)?;
    let catalog = config.server.data_dir.join(DEFAULT_CATALOG);
    check_stores_apart(config, &catalog, &S3Options::default())
}

/// The per-tier part of [`check_servable`]: store URIs and codec policies.
fn check_fields(config: &TieringConfig) -> Result<(), ServeError> {
    for (index, tier) in config.tiers.iter().enumerate() {
        if let Err(reason) = TierFormat::of(tier) {
            return Err(ServeError::Config {
                field: format!("tier[{index}].codec"),
                reason: format!("tier {:?}: {reason}", tier.name),
            });
        }
        tier_keys(tier, index)?;
        for (position, store) in tier.domains().into_iter().enumerate() {
            StoreUri::parse(store).map_err(|err| ServeError::Config {
                field: domain_field(tier, index, position),
                reason: err.to_string(),
            })?;
        }
        TierRedundancy::of(config, index)?;
    }
    Ok(())
}

/// The field that configures a tier's domain: `tier[0].store` or `tier[0].stores[2]`.
fn domain_field(tier: &TierConfig, index: usize, position: usize) -> String {
    if tier.stores.is_empty() {
        format!("tier[{index}].store")
    } else {
        format!("tier[{index}].stores[{position}]")
    }
}

/// Under the data dir: where writes of unknown length to tiers with domains wait for
/// their end (files unlinked as soon as created).
pub const SPOOL_DIR: &str = "spool";

/// The catalog file under the data dir, unless the service is given another.
pub const DEFAULT_CATALOG: &str = "catalog.db";

/// Opens every tier's store (creating local roots) under `layers` (see the module doc).
/// The caller has checked that the stores are apart ([`check_stores_apart`]), with the
/// catalog it uses.
pub async fn open_tiers(
    config: &TieringConfig,
    s3: &S3Options,
    layers: &Layers,
    notices: &mpsc::Sender<ReadNotice>,
) -> Result<Vec<Tier>, ServeError> {
    check_fields(config)?;
    let mut tiers = Vec::with_capacity(config.tiers.len());
    for (index, tier) in config.tiers.iter().enumerate() {
        let (stores, store_metrics) = open_domains(tier, index, s3).await?;
        let format = TierFormat::of(tier)
            .map_err(|reason| ServeError::Config {
                field: format!("tier[{index}].codec"),
                reason,
            })?
            .encrypted_with(tier_keys(tier, index)?);
        if let Some(keys) = format.keys() {
            let previous: Vec<String> = keys
                .previous_ids()
                .iter()
                .map(|id| id.to_string())
                .collect();
            tracing::info!(tier = %tier.name, cipher = keys.cipher().name(),
                key_id = %keys.current_id(), previous_key_ids = ?previous,
                "the tier encrypts at rest");
        }
        if tier.layout == Layout::Plain && !matches!(tier.codec.as_str(), "auto" | "none") {
            tracing::warn!(tier = %tier.name, codec = %tier.codec,
                "a plain tier stores objects as they are; its codec policy is ignored");
        }
        let redundancy = TierRedundancy::of(config, index)?;
        let chaos = Arc::new(Chaos::new());
        let handle = |side: FaultSide, layers: &Layers, notices: Option<_>| {
            let applied: Vec<Store> = stores
                .iter()
                .map(|s| layers.apply(s.clone(), side).with_chaos(Arc::clone(&chaos)))
                .collect();
            let spool = config.server.data_dir.join(SPOOL_DIR);
            tier_store(
                applied,
                redundancy.as_ref(),
                TierId::from_index(index),
                spool,
                notices,
            )
        };
        let moves = MoveStores {
            source: handle(FaultSide::Src, layers, None),
            target: handle(FaultSide::Dst, layers, None),
        };
        tiers.push(Tier {
            id: TierId::from_index(index),
            config: tier.clone(),
            store: handle(FaultSide::Any, &layers.unthrottled(), Some(notices.clone())),
            format,
            moves,
            redundancy,
            store_metrics,
            chaos,
        });
    }
    Ok(tiers)
}

/// Opens each of a tier's stores (creating local roots), each with the counters of its
/// backend's calls.
async fn open_domains(
    tier: &TierConfig,
    index: usize,
    s3: &S3Options,
) -> Result<(Vec<Store>, Vec<Arc<StoreMetrics>>), ServeError> {
    let store_error = |source| ServeError::Store {
        tier: tier.name.clone(),
        source,
    };
    let (mut stores, mut metrics) = (Vec::new(), Vec::new());
    for (position, location) in tier.domains().into_iter().enumerate() {
        let uri = StoreUri::parse(location).map_err(|err| ServeError::Config {
            field: domain_field(tier, index, position),
            reason: err.to_string(),
        })?;
        let counters = Arc::new(StoreMetrics::new());
        let store = Store::open(&uri, s3)
            .await
            .map_err(store_error)?
            .with_metrics(Arc::clone(&counters));
        store.ensure_root().await.map_err(store_error)?;
        stores.push(store);
        metrics.push(counters);
    }
    Ok((stores, metrics))
}

/// A tier's store handle: its one store, or its domains when it has a redundancy.
fn tier_store(
    stores: Vec<Store>,
    redundancy: Option<&TierRedundancy>,
    id: TierId,
    spool: PathBuf,
    notices: Option<mpsc::Sender<ReadNotice>>,
) -> TierStore {
    match redundancy {
        None => TierStore::Single(stores.into_iter().next().expect("a tier has a store")),
        Some(policy) => TierStore::Domains(Arc::new(DomainTier {
            store: RedundantStore::new(stores),
            default: policy.default,
            tier: id,
            spool,
            notices,
        })),
    }
}

/// Moves the configuration's data directory to `data_dir`: tiers whose store was the
/// default under the old directory follow it; tiers with an explicit store stay.
pub fn rebase_data_dir(config: &mut TieringConfig, data_dir: &Path) {
    let old = config.server.data_dir.clone();
    for tier in &mut config.tiers {
        let default_store = TierConfig::local(&tier.name, &old).store;
        if tier.store == default_store {
            tier.store = TierConfig::local(&tier.name, data_dir).store;
        }
    }
    config.server.data_dir = data_dir.to_path_buf();
}

/// Where a tier's layout marker lives in its store (its format:
/// `strata_codec::format::tier_marker`).
pub const LAYOUT_MARKER: &str = TIER_MARKER_PATH;

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Plain => "plain",
        Layout::Packed => "packed",
    }
}

/// Checks each tier's layout marker against its configured layout, and writes the marker
/// where there is none (or where the tier holds nothing). `holding` counts, per tier name,
/// the objects, copies and write intents the catalog has there; a tier without a marker
/// that holds objects was written before markers existed, in the plain layout.
pub async fn check_layouts(
    tiers: &[Tier],
    holding: &BTreeMap<String, u64>,
) -> Result<(), ServeError> {
    for tier in tiers {
        // The marker is Strata's own metadata, not an object: each domain of a tier with
        // several carries its own copy.
        for store in tier.store.stores() {
            check_layout(tier, &store, holding).await?;
        }
    }
    Ok(())
}

async fn check_layout(
    tier: &Tier,
    store: &Store,
    holding: &BTreeMap<String, u64>,
) -> Result<(), ServeError> {
    let store_error = |source| ServeError::Store {
        tier: tier.name().to_string(),
        source,
    };
    let wanted = tier.config.layout;
    let held = holding.get(tier.name()).copied().unwrap_or(0);
    let marked = store
        .stat(LAYOUT_MARKER)
        .await
        .map_err(store_error)?
        .is_some();
    let found = if marked {
        let text = store.read_all(LAYOUT_MARKER).await.map_err(store_error)?;
        let layout = marker_layout(&text).and_then(|name| {
            serde_json::from_value::<Layout>(serde_json::Value::String(name)).ok()
        });
        let Some(layout) = layout else {
            return Err(ServeError::Config {
                field: format!("{}.store", tier.id),
                reason: format!(
                    "tier {:?}: {LAYOUT_MARKER} in its store is not a Strata tier \
                         marker; check that the store belongs to this tier, or remove the \
                         file if the tier holds no objects",
                    tier.name()
                ),
            });
        };
        Some(layout)
    } else if held > 0 {
        Some(Layout::Plain)
    } else {
        None
    };
    if let Some(found) = found {
        if found != wanted && held > 0 {
            return Err(ServeError::Config {
                field: format!("{}.layout", tier.id),
                reason: format!(
                    "tier {:?} holds {held} objects written in the {} layout, so it \
                     cannot become {}: write layout = \"{}\" again, or declare a new tier \
                     with layout = \"{}\" and let the objects move there",
                    tier.name(),
                    layout_name(found),
                    layout_name(wanted),
                    layout_name(found),
                    layout_name(wanted)
                ),
            });
        }
        if found == wanted && marked {
            return Ok(());
        }
    }
    store
        .write_atomic(LAYOUT_MARKER, Bytes::from(tier_marker(layout_name(wanted))))
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Stored sizes of the objects on each packed tier, by key, from one listing of each.
pub async fn packed_sizes(tiers: &[Tier]) -> Result<Vec<HashMap<String, u64>>, ServeError> {
    let mut sizes = Vec::with_capacity(tiers.len());
    for tier in tiers {
        let mut found = HashMap::new();
        if tier.format.is_packed() {
            let mut warn = |warning: strata_store::ListWarning| {
                tracing::warn!(
                    tier = tier.name(),
                    ?warning,
                    "skipped while listing the tier"
                );
            };
            let prefix = format!("{OBJECTS_DIR}/");
            let entries = tier
                .store
                .list_objects(&prefix, &mut warn)
                .await
                .map_err(|source| ServeError::Store {
                    tier: tier.name().to_string(),
                    source,
                })?;
            for (path, size) in entries {
                if let Some(key) = path.strip_prefix(&prefix) {
                    found.insert(key.to_string(), size);
                }
            }
        }
        sizes.push(found);
    }
    Ok(sizes)
}

/// Whether `stored_len` more bytes fit on `tier` now, counting its current copies and the
/// moves running into it besides the caller's own `reserved` bytes. `Err` says why not.
pub fn check_room(
    state: &AppState,
    tier: &Tier,
    stored_len: u64,
    reserved: u64,
) -> Result<(), String> {
    let Some(capacity) = tier.config.capacity else {
        return Ok(());
    };
    let usage = state.index.usage()[tier.id.index()];
    let others = usage.incoming_bytes.saturating_sub(reserved);
    let committed = usage.bytes.saturating_add(others);
    if committed.saturating_add(stored_len) <= capacity {
        return Ok(());
    }
    Err(format!(
        "tier_full: the copy takes {stored_len} bytes on {}, which has {} of its {capacity} \
         bytes free; it was not written, and a later planning pass plans the move again",
        tier.name(),
        capacity.saturating_sub(committed)
    ))
}
