//! Whether two store locations can share bytes: the same directory or key prefix, or one
//! inside the other. Tiers whose stores overlap lose data (a move between two tiers on one
//! directory deletes the only copy) or answer one key with another's bytes (a tier nested
//! in another sees that tier's `objects/` as keys), so the service refuses such a
//! configuration at start-up, before it writes anything ([`check_stores_apart`]).
//!
//! Locations are compared after normalisation ([`Place::of_uri`]): local paths made
//! absolute, `.` and `..` resolved, symlinks resolved as far as the path exists (a part not
//! created yet is appended to the real path of its longest existing ancestor), `file://`
//! read as the path it names; S3 locations by endpoint and bucket, then by prefix segment
//! (`a/b` contains `a/b/c`, not `a/bc`); memory stores by name, then prefix, since they
//! are shared by name within the process.

use std::path::{Path, PathBuf};

use strata_heat::TieringConfig;
use strata_store::{S3Options, StoreUri};

use crate::error::ServeError;

/// A store location reduced to what decides whether two locations share bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// A local directory (or file): absolute, without `.` or `..`, symlinks resolved as far
    /// as it exists.
    Local(PathBuf),
    /// A key space (an S3 bucket on one endpoint, or a named memory store) and a prefix in
    /// it, as segments.
    Keys {
        /// Which key space: `s3 <endpoint> <bucket>` or `memory <name>`.
        space: String,
        /// The prefix's `/`-separated segments (empty: the whole space).
        prefix: Vec<String>,
    },
}

/// How two places overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overlap {
    /// The same location.
    Same,
    /// The first lies inside the second.
    FirstInside,
    /// The second lies inside the first.
    SecondInside,
}

/// How `a` and `b` overlap, if they share any byte; `None` when they are apart.
pub(crate) fn overlap(a: &Place, b: &Place) -> Option<Overlap> {
    let (a_in_b, b_in_a) = match (a, b) {
        (Place::Local(a), Place::Local(b)) => (a.starts_with(b), b.starts_with(a)),
        (
            Place::Keys {
                space: a_space,
                prefix: a,
            },
            Place::Keys {
                space: b_space,
                prefix: b,
            },
        ) if a_space == b_space => (a.starts_with(b), b.starts_with(a)),
        _ => (false, false),
    };
    match (a_in_b, b_in_a) {
        (true, true) => Some(Overlap::Same),
        (true, false) => Some(Overlap::FirstInside),
        (false, true) => Some(Overlap::SecondInside),
        (false, false) => None,
    }
}

impl Place {
    /// The place a parsed store URI names; `s3` supplies the endpoint of S3 URIs that give
    /// none.
    pub(crate) fn of_uri(uri: &StoreUri, s3: &S3Options) -> Place {
        if let Some(path) = uri.local_path() {
            return Place::of_path(path);
        }
        let space = match (uri.bucket(), uri.memory_name()) {
            (Some(bucket), _) => {
                let endpoint = uri.endpoint().or(s3.endpoint.as_deref());
                format!("s3 {} {bucket}", endpoint_identity(endpoint))
            }
            (None, Some(name)) => format!("memory {name}"),
            (None, None) => format!("{} {uri}", uri.scheme()),
        };
        let prefix = uri
            .prefix()
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(str::to_string)
            .collect();
        Place::Keys { space, prefix }
    }

    /// The place of a local path (relative paths against the current directory).
    pub(crate) fn of_path(path: &Path) -> Place {
        let clean = StoreUri::from_local_path(path)
            .ok()
            .and_then(|uri| uri.local_path().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf());
        Place::Local(real_path(&clean))
    }
}

/// Which S3 service an endpoint is: AWS (no endpoint, or an `amazonaws.com` host, where
/// bucket names are global) or the endpoint's URL, lower-cased, without a trailing `/`.
fn endpoint_identity(endpoint: Option<&str>) -> String {
    let Some(endpoint) = endpoint else {
        return "aws".to_string();
    };
    let lower = endpoint.trim().trim_end_matches('/').to_ascii_lowercase();
    let after_scheme = lower.split_once("://").map_or(lower.as_str(), |(_, r)| r);
    let host = after_scheme
        .split(['/', ':'])
        .next()
        .unwrap_or(after_scheme);
    if host == "amazonaws.com" || host.ends_with(".amazonaws.com") {
        "aws".to_string()
    } else {
        lower
    }
}

/// `path` with symlinks resolved: the real path of its longest existing ancestor, with the
/// parts not created yet appended (a tier's directory may not exist before the first start).
fn real_path(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut missing = Vec::new();
    let real = loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            break real;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name);
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    };
    missing
        .into_iter()
        .rev()
        .fold(real, |out, name| out.join(name))
}

/// What a location the service writes to is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Tier,
    DataDir,
    Catalog,
}

/// A location the service writes to, named for messages.
struct Site {
    role: Role,
    /// `tier "hot"`, `the data dir`, `the catalog`.
    name: String,
    /// The location as configured (no credentials: store URIs refuse them).
    shown: String,
    place: Place,
}

/// Refuses tiers whose stores overlap each other, a tier store that is or contains the data
/// dir, and a tier store that is, contains or lies inside the catalog file. Tier stores
/// inside the data dir that overlap nothing else (the default `<data_dir>/tiers/<name>`)
/// are fine. The error names both locations and the field to change.
pub fn check_stores_apart(
    config: &TieringConfig,
    catalog: &Path,
    s3: &S3Options,
) -> Result<(), ServeError> {
    let mut sites = Vec::with_capacity(config.tiers.len() + 2);
    for (index, tier) in config.tiers.iter().enumerate() {
        let uri = StoreUri::parse(&tier.store).map_err(|err| ServeError::Config {
            field: format!("tier[{index}].store"),
            reason: err.to_string(),
        })?;
        sites.push(Site {
            role: Role::Tier,
            name: format!("tier {:?}", tier.name),
            shown: uri
                .local_path()
                .map_or_else(|| uri.to_string(), |path| path.display().to_string()),
            place: Place::of_uri(&uri, s3),
        });
    }
    for (role, name, path) in [
        (
            Role::DataDir,
            "the data dir",
            config.server.data_dir.as_path(),
        ),
        (Role::Catalog, "the catalog", catalog),
    ] {
        sites.push(Site {
            role,
            name: name.to_string(),
            shown: path.display().to_string(),
            place: Place::of_path(path),
        });
    }
    let (tiers, others) = sites.split_at(config.tiers.len());
    for (index, tier) in tiers.iter().enumerate() {
        for other in tiers.iter().take(index).chain(others) {
            if let Some(how) = refused_overlap(tier, other) {
                return Err(overlap_error(index, tier, other, how));
            }
        }
    }
    Ok(())
}

/// The overlap of a tier with another site that the service cannot live with.
fn refused_overlap(tier: &Site, other: &Site) -> Option<Overlap> {
    let how = overlap(&tier.place, &other.place)?;
    // A tier's own directory under the data dir is the default layout.
    let allowed = other.role == Role::DataDir && how == Overlap::FirstInside;
    (!allowed).then_some(how)
}

fn overlap_error(index: usize, tier: &Site, other: &Site, how: Overlap) -> ServeError {
    let relation = match how {
        Overlap::Same => format!("is the same location as {}", other.name),
        Overlap::FirstInside => format!("lies inside {}", other.name),
        Overlap::SecondInside => format!("contains {}", other.name),
    };
    let risk = match other.role {
        Role::Tier => {
            "a move between the two would delete the only copy, and a key on one \
                       could read another key's bytes on the other"
        }
        Role::DataDir => {
            "the data dir holds the catalog and the default tiers, which would \
                          be read as objects"
        }
        Role::Catalog => "the catalog would be read, moved or deleted as an object",
    };
    ServeError::Config {
        field: format!("tier[{index}].store"),
        reason: format!(
            "{} ({}) {relation} ({}): {risk}; give each tier its own directory or S3 prefix, \
             neither inside another tier's nor containing one, nor the data dir or the catalog",
            tier.name, tier.shown, other.shown
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(path: &str) -> Place {
        Place::Local(PathBuf::from(path))
    }

    fn keys(space: &str, prefix: &str) -> Place {
        Place::Keys {
            space: space.to_string(),
            prefix: prefix
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    fn place(store: &str, s3: &S3Options) -> Place {
        Place::of_uri(&StoreUri::parse(store).unwrap(), s3)
    }

    #[test]
    fn the_overlap_table() {
        use Overlap::*;
        let s3 = "s3 aws bucket";
        let cases = [
            (local("/a/b"), local("/a/b"), Some(Same)),
            (local("/a/b/c"), local("/a/b"), Some(FirstInside)),
            (local("/a/b"), local("/a/b/c/d"), Some(SecondInside)),
            (local("/a/b"), local("/a/bc"), None),
            (local("/a/b"), local("/a/c"), None),
            (local("/"), local("/srv"), Some(SecondInside)),
            (keys(s3, "a/b"), keys(s3, "a/b"), Some(Same)),
            (keys(s3, "a/b/c"), keys(s3, "a/b"), Some(FirstInside)),
            (keys(s3, ""), keys(s3, "a"), Some(SecondInside)),
            (keys(s3, "a/b"), keys(s3, "a/bc"), None),
            (keys(s3, "a"), keys("s3 aws other", "a"), None),
            (keys("memory t", ""), keys("memory t", ""), Some(Same)),
            (keys("memory t", "x"), keys("memory u", "x"), None),
            (local("/a"), keys("memory a", ""), None),
        ];
        for (a, b, expected) in cases {
            assert_eq!(overlap(&a, &b), expected, "{a:?} / {b:?}");
        }
    }

    #[test]
    fn local_spellings_of_one_directory_are_one_place() {
        let none = S3Options::default();
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let base = real.display().to_string();
        let want = Place::Local(real.join("t"));
        for spelling in [
            format!("{base}/t"),
            format!("{base}/t/"),
            format!("{base}//t"),
            format!("{base}/./t"),
            format!("{base}/x/../t"),
            format!("file://{base}/t"),
            format!("file://{base}/t/"),
        ] {
            assert_eq!(place(&spelling, &none), want, "{spelling}");
        }
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            place("rel/t", &none),
            place(&cwd.join("rel/t").display().to_string(), &none)
        );
    }

    #[test]
    fn symlinks_are_resolved_even_below_parts_not_created_yet() {
        let none = S3Options::default();
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real.join("target")).unwrap();
        std::os::unix::fs::symlink(real.join("target"), real.join("link")).unwrap();
        let through_link = place(&format!("{}/link/new/t", real.display()), &none);
        assert_eq!(through_link, Place::Local(real.join("target/new/t")));
        assert_eq!(
            overlap(&through_link, &Place::of_path(&real.join("target"))),
            Some(Overlap::FirstInside)
        );
    }

    #[test]
    fn s3_places_compare_by_endpoint_bucket_and_prefix_segments() {
        let none = S3Options::default();
        let minio = "endpoint=http://127.0.0.1:9000";
        let at = |uri: &str| place(uri, &none);
        assert_eq!(at("s3://bkt/a/b/"), at("s3://bkt/a/b"));
        assert_eq!(
            overlap(&at("s3://bkt/a/b"), &at("s3://bkt/a/b/c")),
            Some(Overlap::SecondInside)
        );
        assert_eq!(overlap(&at("s3://bkt/a/b"), &at("s3://bkt/a/bc")), None);
        assert_eq!(
            overlap(&at(&format!("s3://bkt/a?{minio}")), &at("s3://bkt/a")),
            None,
            "another service's bucket of the same name"
        );
        assert_eq!(
            at(&format!("s3://bkt/a?{minio}/")),
            at(&format!("s3://bkt/a?{minio}&region=eu-west-1"))
        );
        assert_eq!(
            at("s3://bkt/a?endpoint=https://s3.eu-west-1.amazonaws.com"),
            at("s3://bkt/a"),
            "AWS bucket names are global"
        );
        let with_endpoint = S3Options {
            endpoint: Some("http://127.0.0.1:9000".to_string()),
            ..S3Options::default()
        };
        assert_eq!(
            place("s3://bkt/a", &with_endpoint),
            at(&format!("s3://bkt/a?{minio}")),
            "the endpoint from the environment is the one used"
        );
    }

    #[test]
    fn memory_stores_are_shared_by_name() {
        let none = S3Options::default();
        assert_eq!(place("memory://", &none), place("memory://default", &none));
        assert_eq!(
            overlap(&place("memory://m/a", &none), &place("memory://m", &none)),
            Some(Overlap::FirstInside)
        );
        assert_eq!(
            overlap(&place("memory://m", &none), &place("memory://n", &none)),
            None
        );
    }
}
