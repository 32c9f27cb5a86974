//! The tiers the service serves: each configured tier opened as a store, and where an
//! object's bytes live on it.
//!
//! Layout `plain` only, for now: an object's bytes are the file (or S3 object)
//! `<tier store>/objects/<key>`, written with [`strata_store::Store::write_atomic`] (local:
//! temp file, fsync, rename, fsync of the directory), so a tier stays usable without
//! Strata. A tier configured `packed` is refused at start-up with the field named.

use std::path::{Path, PathBuf};

use strata_heat::{Layout, TierConfig, TieringConfig};
use strata_store::{S3Options, Store, StoreUri};

use crate::error::ServeError;

/// The directory under a tier's store that holds object bytes.
pub const OBJECTS_DIR: &str = "objects";

/// One tier, opened.
#[derive(Debug, Clone)]
pub struct Tier {
    /// Position, 0 being the hottest.
    pub index: usize,
    /// Its configuration.
    pub config: TierConfig,
    /// Its store.
    pub store: Store,
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

    /// The local file of an object's bytes, for local tiers.
    pub fn local_file(&self, key: &str) -> Option<PathBuf> {
        self.store
            .local_root()
            .map(|root| root.join(OBJECTS_DIR).join(key))
    }
}

/// Checks what the service cannot serve yet, naming the field.
pub fn check_servable(config: &TieringConfig) -> Result<(), ServeError> {
    for (index, tier) in config.tiers.iter().enumerate() {
        if tier.layout != Layout::Plain {
            return Err(ServeError::Config {
                field: format!("tier[{index}].layout"),
                reason: format!(
                    "tier {:?} is \"packed\", which `strata serve` does not serve yet; write \
                     layout = \"plain\"",
                    tier.name
                ),
            });
        }
        StoreUri::parse(&tier.store).map_err(|err| ServeError::Config {
            field: format!("tier[{index}].store"),
            reason: err.to_string(),
        })?;
    }
    Ok(())
}

/// Opens every tier's store (creating local roots).
pub async fn open_tiers(config: &TieringConfig, s3: &S3Options) -> Result<Vec<Tier>, ServeError> {
    check_servable(config)?;
    let mut tiers = Vec::with_capacity(config.tiers.len());
    for (index, tier) in config.tiers.iter().enumerate() {
        let uri = StoreUri::parse(&tier.store).map_err(|err| ServeError::Config {
            field: format!("tier[{index}].store"),
            reason: err.to_string(),
        })?;
        let store = Store::open(&uri, s3)
            .await
            .map_err(|source| ServeError::Store {
                tier: tier.name.clone(),
                source,
            })?;
        store
            .ensure_root()
            .await
            .map_err(|source| ServeError::Store {
                tier: tier.name.clone(),
                source,
            })?;
        tiers.push(Tier {
            index,
            config: tier.clone(),
            store,
        });
    }
    Ok(tiers)
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
