//! One module per subcommand, and what they share: the catalog, the stores, S3 settings.

pub mod catalog;
pub mod codec_args;
pub mod eval;
pub mod forecast;
pub mod inspect;
pub mod migrate;
pub mod objects;
pub mod queue;
pub mod repair;
pub mod scrub;
pub mod serve;
pub mod status;
pub mod throttle_args;
pub mod verify;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use strata_catalog::{default_catalog_path, Catalog, SqliteCatalog};
use strata_store::faults::FaultSide;
use strata_store::layers::env_fault_plan;
use strata_store::{BandwidthControl, Layers, S3Options, Store, StoreUri};

/// What every command gets from the global flags.
pub struct Context {
    /// `--catalog` or `$STRATA_CATALOG`.
    pub catalog_path: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// S3 settings from flags and the environment.
    pub s3: S3Options,
}

impl Context {
    /// Where the catalog is.
    pub fn catalog_file(&self) -> anyhow::Result<PathBuf> {
        Ok(match &self.catalog_path {
            Some(path) => path.clone(),
            None => default_catalog_path()?,
        })
    }

    /// Open the catalog (creating it on first use).
    pub async fn catalog(&self) -> anyhow::Result<Arc<dyn Catalog>> {
        let path = self.catalog_file()?;
        let catalog = SqliteCatalog::open(&path).await?;
        Ok(Arc::new(catalog))
    }

    /// Parse and open the store a command reads from (`strata migrate SRC`, `repair
    /// --from SRC`, `inspect PATH`).
    pub async fn source_store(&self, text: &str) -> anyhow::Result<Store> {
        self.open_store(text, FaultSide::Src, None).await
    }

    /// Parse and open the store a command writes to or checks (`strata migrate .. DST`,
    /// `verify DST`, `repair DST`).
    pub async fn destination_store(&self, text: &str) -> anyhow::Result<Store> {
        self.open_store(text, FaultSide::Dst, None).await
    }

    /// Parse and open a store under its layers (`strata_store::layers`): with
    /// `STRATA_FAULTS` set (a testing aid, see `strata_store::faults`), the rules for its
    /// `side` and those of side `any`; with `bandwidth`, its throttle.
    pub async fn open_store(
        &self,
        text: &str,
        side: FaultSide,
        bandwidth: Option<&BandwidthControl>,
    ) -> anyhow::Result<Store> {
        let faults = env_fault_plan().map_err(anyhow::Error::msg)?;
        let uri = StoreUri::parse(text)?;
        let store = Store::open(&uri, &self.s3)
            .await
            .with_context(|| format!("cannot open {text}"))?;
        Ok(Layers::new(faults.cloned(), bandwidth.cloned()).apply(store, side))
    }
}

/// S3 options: flags override the environment.
pub fn s3_options(
    endpoint: &Option<String>,
    region: &Option<String>,
    path_style: Option<bool>,
) -> S3Options {
    let mut options = S3Options::from_env();
    if endpoint.is_some() {
        options.endpoint = endpoint.clone();
    }
    if region.is_some() {
        options.region = region.clone();
    }
    if path_style.is_some() {
        options.path_style = path_style;
    }
    options
}
