//! Opening a catalog by its spec ([`CatalogSpec`]), whichever engine it names, and the
//! calls that are not in the [`Catalog`] trait (the full check, the import of a rebuilt
//! job, closing) dispatched to that engine.

use std::path::Path;
use std::sync::Arc;

use crate::error::CatalogError;
use crate::integrity::{CheckReport, CompletedJob, ImportedJob};
use crate::location::CatalogSpec;
use crate::postgres::PostgresCatalog;
use crate::s3_meta::S3MetaCatalog;
use crate::sqlite::SqliteCatalog;
use crate::tiering::TieringCatalog;
use crate::tokens::TokenCatalog;
use crate::Catalog;

/// A catalog opened by its spec: an SQLite file or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum EngineCatalog {
    /// The embedded engine.
    Sqlite(SqliteCatalog),
    /// The shared engine.
    Postgres(PostgresCatalog),
}

impl EngineCatalog {
    /// Opens (creating and migrating as needed) the catalog `spec` names.
    pub async fn open(spec: &CatalogSpec) -> Result<Self, CatalogError> {
        Ok(match spec {
            CatalogSpec::Sqlite(path) => EngineCatalog::Sqlite(SqliteCatalog::open(path).await?),
            CatalogSpec::Postgres(url) => {
                EngineCatalog::Postgres(PostgresCatalog::open(url).await?)
            }
        })
    }

    /// The catalog as messages name it: the file, or the URL with its password redacted.
    pub fn path(&self) -> &Path {
        match self {
            EngineCatalog::Sqlite(catalog) => catalog.path(),
            EngineCatalog::Postgres(catalog) => catalog.path(),
        }
    }

    /// The migration jobs' interface.
    pub fn jobs(&self) -> Arc<dyn Catalog> {
        match self {
            EngineCatalog::Sqlite(catalog) => Arc::new(catalog.clone()),
            EngineCatalog::Postgres(catalog) => Arc::new(catalog.clone()),
        }
    }

    /// The tiering service's interface.
    pub fn tiering(&self) -> Arc<dyn TieringCatalog> {
        match self {
            EngineCatalog::Sqlite(catalog) => Arc::new(catalog.clone()),
            EngineCatalog::Postgres(catalog) => Arc::new(catalog.clone()),
        }
    }

    /// The API tokens' interface.
    pub fn tokens(&self) -> Arc<dyn TokenCatalog> {
        match self {
            EngineCatalog::Sqlite(catalog) => Arc::new(catalog.clone()),
            EngineCatalog::Postgres(catalog) => Arc::new(catalog.clone()),
        }
    }

    /// The S3 front door's object metadata interface.
    pub fn s3_meta(&self) -> Arc<dyn S3MetaCatalog> {
        match self {
            EngineCatalog::Sqlite(catalog) => Arc::new(catalog.clone()),
            EngineCatalog::Postgres(catalog) => Arc::new(catalog.clone()),
        }
    }

    /// The full check (see [`SqliteCatalog::check`], [`PostgresCatalog::check`]).
    pub async fn check(&self) -> Result<CheckReport, CatalogError> {
        match self {
            EngineCatalog::Sqlite(catalog) => catalog.check().await,
            EngineCatalog::Postgres(catalog) => catalog.check().await,
        }
    }

    /// Records a job rebuilt from a destination's manifest (see
    /// [`SqliteCatalog::import_completed_job`]).
    pub async fn import_completed_job(
        &self,
        job: &CompletedJob,
    ) -> Result<ImportedJob, CatalogError> {
        match self {
            EngineCatalog::Sqlite(catalog) => catalog.import_completed_job(job).await,
            EngineCatalog::Postgres(catalog) => catalog.import_completed_job(job).await,
        }
    }

    /// Closes the connections once running calls finish (SQLite checkpoints first).
    pub async fn close(&self) {
        match self {
            EngineCatalog::Sqlite(catalog) => catalog.close().await,
            EngineCatalog::Postgres(catalog) => catalog.close().await,
        }
    }
}
