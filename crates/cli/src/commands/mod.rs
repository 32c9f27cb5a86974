//! One module per subcommand, and what they share: the catalog, the stores, S3 settings.

pub mod batch;
pub mod catalog;
pub mod chaos;
pub mod codec_args;
pub mod eval;
pub mod forecast;
pub mod inspect;
pub mod key;
pub mod key_args;
pub mod migrate;
pub mod migrate_stripe;
pub mod objects;
pub mod policy;
pub mod queue;
pub mod repair;
pub mod scrub;
pub mod serve;
pub mod status;
pub mod throttle_args;
pub mod token;
pub mod verify;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use strata_catalog::{Catalog, CatalogSpec, EngineCatalog, PostgresUrl};
use strata_store::faults::FaultSide;
use strata_store::layers::env_fault_plan;
use strata_store::{BandwidthControl, Layers, S3Options, Store, StoreUri};

/// What every command gets from the global flags.
pub struct Context {
    /// `--catalog` or `$STRATA_CATALOG`: a file path or a `postgres://` URL.
    pub catalog_path: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// S3 settings from flags and the environment.
    pub s3: S3Options,
}

impl Context {
    /// Which catalog: `--catalog`, else `$STRATA_CATALOG`, else the default file.
    pub fn catalog_spec(&self) -> anyhow::Result<CatalogSpec> {
        Ok(match &self.catalog_path {
            Some(path) => CatalogSpec::parse(path.as_os_str())?,
            None => CatalogSpec::from_env_or_default()?,
        })
    }

    /// The catalog file, for what only an SQLite file has (live state files beside it);
    /// an error naming `what` for a PostgreSQL catalog.
    pub fn catalog_file(&self, what: &str) -> anyhow::Result<PathBuf> {
        match self.catalog_spec()? {
            CatalogSpec::Sqlite(path) => Ok(path),
            CatalogSpec::Postgres(url) => anyhow::bail!(
                "{what} works on an SQLite catalog file, and {url} is a PostgreSQL catalog; pass --catalog PATH to use a file"
            ),
        }
    }

    /// The PostgreSQL catalog `--catalog` (or `STRATA_CATALOG`) names, if it names one:
    /// the service's catalog (`serve`, `train`) is otherwise the file in its data dir,
    /// whatever file `--catalog` names for migrations.
    pub fn shared_catalog(&self) -> anyhow::Result<Option<PostgresUrl>> {
        let Some(path) = &self.catalog_path else {
            return Ok(None);
        };
        Ok(match CatalogSpec::parse(path.as_os_str())? {
            CatalogSpec::Postgres(url) => Some(url),
            CatalogSpec::Sqlite(_) => None,
        })
    }

    /// Open the catalog, whichever engine (creating it on first use).
    pub async fn open_catalog(&self) -> anyhow::Result<EngineCatalog> {
        Ok(EngineCatalog::open(&self.catalog_spec()?).await?)
    }

    /// Open the catalog's migration jobs (creating it on first use).
    pub async fn catalog(&self) -> anyhow::Result<Arc<dyn Catalog>> {
        Ok(self.open_catalog().await?.jobs())
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
