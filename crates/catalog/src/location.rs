//! Where the catalog lives: the operator's spec (a SQLite file, or a PostgreSQL URL whose
//! password is never shown), and the default when the operator does not say.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::CatalogError;

/// The URL schemes of a PostgreSQL catalog.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// The port a PostgreSQL URL without one connects to.
const POSTGRES_DEFAULT_PORT: u16 = 5432;

/// What replaces a password wherever a URL is shown.
pub const REDACTED_PASSWORD: &str = "[redacted]";

/// Where a catalog is, as `--catalog` or `$STRATA_CATALOG` gives it.
#[derive(Clone, PartialEq, Eq)]
pub enum CatalogSpec {
    /// An SQLite file (the embedded default).
    Sqlite(PathBuf),
    /// A PostgreSQL database, shared by processes on many nodes.
    Postgres(PostgresUrl),
}

impl CatalogSpec {
    /// A `postgres://` or `postgresql://` URL is a PostgreSQL catalog; anything else is
    /// the path of an SQLite file. Fails only on a PostgreSQL URL that cannot be used.
    pub fn parse(text: impl Into<OsString>) -> Result<Self, CatalogError> {
        let text: OsString = text.into();
        match text.to_str() {
            Some(url) if is_postgres_url(url) => {
                Ok(CatalogSpec::Postgres(PostgresUrl::parse(url)?))
            }
            _ => Ok(CatalogSpec::Sqlite(PathBuf::from(text))),
        }
    }

    /// `$STRATA_CATALOG` if it is set and not empty, else the default file
    /// ([`default_catalog_path`]).
    pub fn from_env_or_default() -> Result<Self, CatalogError> {
        match std::env::var_os(CATALOG_ENV) {
            Some(value) if !value.is_empty() => Self::parse(value),
            _ => default_catalog_path().map(CatalogSpec::Sqlite),
        }
    }

    /// The catalog for messages: the file's path, or the URL with its password redacted.
    pub fn shown(&self) -> String {
        match self {
            CatalogSpec::Sqlite(path) => path.display().to_string(),
            CatalogSpec::Postgres(url) => url.shown().to_string(),
        }
    }
}

impl fmt::Display for CatalogSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl fmt::Debug for CatalogSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogSpec::Sqlite(path) => write!(f, "Sqlite({path:?})"),
            CatalogSpec::Postgres(url) => write!(f, "Postgres({url:?})"),
        }
    }
}

/// Whether `text` is a PostgreSQL URL (by its scheme, case-insensitively).
pub fn is_postgres_url(text: &str) -> bool {
    POSTGRES_SCHEMES.iter().any(|scheme| {
        text.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    })
}

/// A PostgreSQL connection URL. Its `Display` and `Debug` show it with the password
/// redacted; only the engine reads the URL itself.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    secret: String,
    shown: String,
    endpoint: String,
}

impl PostgresUrl {
    /// Checks `text` enough to name it safely in messages: a URL with a host (or a
    /// `host=` parameter for a unix socket directory) and a database.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let invalid = |shown: String, why: &str| CatalogError::InvalidCatalogUrl {
            shown,
            detail: why.to_string(),
        };
        let mut url = url::Url::parse(text)
            .map_err(|err| invalid(unparsable_shown(text), &err.to_string()))?;
        // A marker the URL encoder leaves alone, swapped for the redaction afterwards
        // (`[` and `]` would be percent-encoded).
        const MARKER: &str = "STRATAREDACTEDPASSWORD";
        if url.password().is_some() {
            // Cannot fail: a URL with a password has a host.
            let _ = url.set_password(Some(MARKER));
        }
        let shown = url.to_string().replace(MARKER, REDACTED_PASSWORD);
        let socket_dir = url
            .query_pairs()
            .find(|(name, _)| name == "host")
            .map(|(_, value)| value.into_owned());
        let host = match (url.host_str().filter(|h| !h.is_empty()), socket_dir) {
            (Some(host), _) => host.to_string(),
            (None, Some(dir)) => dir,
            (None, None) => return Err(invalid(shown, "it names no host")),
        };
        if url.path().trim_start_matches('/').is_empty() {
            return Err(invalid(shown, "it names no database"));
        }
        let port = url.port().unwrap_or(POSTGRES_DEFAULT_PORT);
        Ok(PostgresUrl {
            secret: text.to_string(),
            shown,
            endpoint: format!("{host}:{port}"),
        })
    }

    /// The URL with its password redacted.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// `host:port` (or `socket-dir:port`) the URL connects to.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The URL itself, password included: for the engine's connection only.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({:?})", self.shown)
    }
}

/// A URL that does not parse, shown without anything between the scheme and the host
/// (where a password would be).
fn unparsable_shown(text: &str) -> String {
    let scheme_end = text.find("://").map_or(0, |i| i + 3);
    match text.rfind('@') {
        Some(at) if at > scheme_end => {
            format!("{}{REDACTED_PASSWORD}{}", &text[..scheme_end], &text[at..])
        }
        _ => text.to_string(),
    }
}

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
    fn postgres_urls_are_told_from_paths_and_shown_without_password() {
        let spec = CatalogSpec::parse("postgres://strata:s3cret@db.example:6543/catalog").unwrap();
        let CatalogSpec::Postgres(url) = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!(url.endpoint(), "db.example:6543");
        assert_eq!(
            spec.shown(),
            "postgres://strata:[redacted]@db.example:6543/catalog"
        );
        for shown in [spec.to_string(), format!("{spec:?}"), format!("{url:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        let path = CatalogSpec::parse("/var/lib/strata/catalog.db").unwrap();
        assert_eq!(
            path,
            CatalogSpec::Sqlite("/var/lib/strata/catalog.db".into())
        );
        let upper = CatalogSpec::parse("POSTGRESQL://u@h/d").unwrap();
        assert!(matches!(upper, CatalogSpec::Postgres(ref u) if u.endpoint() == "h:5432"));
    }

    #[test]
    fn unusable_postgres_urls_are_refused_without_their_password() {
        for (text, why) in [
            ("postgres://u:pw-secret@/db", "host"),
            ("postgres:///db", "names no host"),
            ("postgres://u:pw-secret@host:5432", "no database"),
            ("postgres://u:pw-secret@host:99999/db", "invalid port"),
        ] {
            let err = CatalogSpec::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
            assert!(!err.contains("pw-secret"), "{err}");
        }
    }

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
