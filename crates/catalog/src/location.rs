//! Where the catalog lives when the operator does not say.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::CatalogError;

/// The environment variable that overrides the default catalog location.
pub const CATALOG_ENV: &str = "STRATA_CATALOG";

/// The catalog file to use when none is given on the command line.
///
/// `$STRATA_CATALOG` if it is set and not empty; otherwise `strata/catalog.db` under the
/// user's data directory: on Linux `$XDG_DATA_HOME` when it is an absolute path, else
/// `~/.local/share` (macOS: `~/Library/Application Support`, Windows: `%APPDATA%`).
pub fn default_catalog_path() -> Result<PathBuf, CatalogError> {
    let data_dir = directories::BaseDirs::new().map(|dirs| dirs.data_dir().to_path_buf());
    catalog_path_from(std::env::var_os(CATALOG_ENV), data_dir.as_deref())
}

/// The decision of [`default_catalog_path`], without reading the environment.
fn catalog_path_from(
    override_path: Option<OsString>,
    data_dir: Option<&Path>,
) -> Result<PathBuf, CatalogError> {
    match override_path {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => data_dir
            .map(|dir| dir.join("strata").join("catalog.db"))
            .ok_or(CatalogError::NoDataDir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_wins_over_the_data_dir() {
        let path = catalog_path_from(
            Some("/x/y.db".into()),
            Some(Path::new("/home/u/.local/share")),
        );
        assert_eq!(path.ok(), Some(PathBuf::from("/x/y.db")));
    }

    #[test]
    fn empty_override_is_ignored() {
        let path = catalog_path_from(Some("".into()), Some(Path::new("/d")));
        assert_eq!(path.ok(), Some(PathBuf::from("/d/strata/catalog.db")));
    }

    #[test]
    fn no_home_is_a_clear_error() {
        let err = catalog_path_from(None, None);
        assert!(matches!(err, Err(CatalogError::NoDataDir)));
    }
}
