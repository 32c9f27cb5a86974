//! The schema migrations embedded in the binary (`migrations/` for SQLite,
//! `migrations/postgres/` for PostgreSQL; listed by `build.rs`), turned into sqlx's
//! [`Migrator`] through its public [`MigrationSource`] trait, read the way `sqlx::migrate!`
//! reads a directory: `NNNN_name.sql` is version NNNN described as "name" (underscores as
//! spaces), a simple migration, run in a transaction unless the file starts with
//! `-- no-transaction`. The checksums sqlx records are those of the same SQL, so catalogs
//! migrated by earlier builds validate unchanged.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// One engine's embedded migration files: (file name, SQL), sorted by name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Embedded(pub &'static [(&'static str, &'static str)]);

impl Embedded {
    /// The SQLite engine's migrations.
    pub const SQLITE: Embedded = Embedded(SQLITE);
    /// The PostgreSQL engine's migrations.
    pub const POSTGRES: Embedded = Embedded(POSTGRES);

    /// The migrations, parsed; an error names a file whose name has no version.
    fn migrations(self) -> Result<Vec<Migration>, String> {
        self.0
            .iter()
            .map(|&(file, sql)| migration(file, sql))
            .collect()
    }

    /// The newest version embedded (0 when there is none).
    pub fn latest_version(self) -> i64 {
        self.0
            .iter()
            .filter_map(|(file, _)| version_of(file))
            .max()
            .unwrap_or(0)
    }

    /// sqlx's migrator over these migrations (an error only for a misnamed file, which
    /// the crate's tests would have caught).
    pub async fn migrator(self) -> Result<Migrator, MigrateError> {
        Migrator::new(self).await
    }
}

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move { self.migrations().map_err(BoxDynError::from) })
    }
}

fn version_of(file: &str) -> Option<i64> {
    file.split_once('_')?.0.parse().ok()
}

fn migration(file: &'static str, sql: &'static str) -> Result<Migration, String> {
    let (Some(version), Some((_, rest))) = (version_of(file), file.split_once('_')) else {
        return Err(format!(
            "migration file {file:?} is not named NNNN_name.sql (a number, '_', a name)"
        ));
    };
    let kind = MigrationType::from_filename(rest);
    let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
    let no_tx = sql.starts_with("-- no-transaction");
    Ok(Migration::new(
        version,
        Cow::Owned(description),
        kind,
        Cow::Borrowed(sql),
        no_tx,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_read_as_sqlx_reads_a_directory() {
        let m = migration("0005_access_history.sql", "CREATE TABLE t (x INTEGER);").unwrap();
        assert_eq!(m.version, 5);
        assert_eq!(m.description, "access history");
        assert_eq!(m.migration_type, MigrationType::Simple);
        assert!(!m.no_tx);
        assert!(migration("jobs.sql", "").is_err());
    }

    #[tokio::test]
    async fn both_engines_embed_every_migration_in_order() {
        for engine in [Embedded::SQLITE, Embedded::POSTGRES] {
            let migrator = engine.migrator().await.unwrap();
            let versions: Vec<i64> = migrator.iter().map(|m| m.version).collect();
            let expected: Vec<i64> = (1..=engine.latest_version()).collect();
            assert_eq!(versions, expected);
            assert!(versions.len() >= 8, "{versions:?}");
        }
    }
}
