//! Tier stores that share bytes: tiers whose stores overlap lose data (a move between two
//! tiers on one directory deletes the only copy) or answer one key with another's bytes (a
//! tier nested in another sees that tier's `objects/` as keys), so the service refuses such
//! a configuration at start-up, before it writes anything ([`check_stores_apart`]).
//!
//! Whether two locations overlap is decided by the store crate's one check
//! ([`strata_store::StoreLocation`], shared with `strata migrate`'s refusal of overlapping
//! source and destination); this module names the sites the service writes to (each
//! tier's store, the data dir, the catalog) and says which overlaps it cannot live with.

use std::path::Path;

use strata_heat::TieringConfig;
use strata_store::{Overlap, S3Options, StoreLocation, StoreUri};

use crate::error::ServeError;

/// The endpoint of an S3 store that names none, neither in its URI nor in the environment:
/// AWS, where bucket names are global.
const AWS_ENDPOINT: &str = "https://s3.amazonaws.com";

/// The location a parsed store URI names; `s3` supplies the endpoint of S3 URIs that give
/// none (the one the store will use).
fn location_of(uri: &StoreUri, s3: &S3Options) -> StoreLocation {
    match uri.local_path() {
        Some(path) => location_of_path(path),
        None => {
            let endpoint = uri.endpoint().or(s3.endpoint.as_deref());
            StoreLocation::of_uri(uri, endpoint.unwrap_or(AWS_ENDPOINT))
        }
    }
}

/// The location of a local path (relative paths against the current directory, `.` and
/// `..` resolved before symlinks).
fn location_of_path(path: &Path) -> StoreLocation {
    let clean = StoreUri::from_local_path(path)
        .ok()
        .and_then(|uri| uri.local_path().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    StoreLocation::local(&clean)
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
    /// The field that configures it (`tier[0].store`, `tier[2].stores[1]`); empty for
    /// the data dir and the catalog.
    field: String,
    /// The tier it belongs to, for tier stores.
    tier: Option<usize>,
    /// `tier "hot"`, `the data dir`, `the catalog`.
    name: String,
    /// The location as configured (no credentials: store URIs refuse them).
    shown: String,
    location: StoreLocation,
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
        let several = !tier.stores.is_empty();
        for (position, store) in tier.domains().into_iter().enumerate() {
            let (field, name) = if several {
                (
                    format!("tier[{index}].stores[{position}]"),
                    format!("tier {:?} domain {position}", tier.name),
                )
            } else {
                (
                    format!("tier[{index}].store"),
                    format!("tier {:?}", tier.name),
                )
            };
            let uri = StoreUri::parse(store).map_err(|err| ServeError::Config {
                field: field.clone(),
                reason: err.to_string(),
            })?;
            sites.push(Site {
                role: Role::Tier,
                field,
                tier: Some(index),
                name,
                shown: uri
                    .local_path()
                    .map_or_else(|| uri.to_string(), |path| path.display().to_string()),
                location: location_of(&uri, s3),
            });
        }
    }
    let tier_sites = sites.len();
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
            field: String::new(),
            tier: None,
            name: name.to_string(),
            shown: path.display().to_string(),
            location: location_of_path(path),
        });
    }
    let (tiers, others) = sites.split_at(tier_sites);
    for (index, tier) in tiers.iter().enumerate() {
        for other in tiers.iter().take(index).chain(others) {
            if let Some(how) = refused_overlap(tier, other) {
                return Err(overlap_error(tier, other, how));
            }
        }
    }
    Ok(())
}

/// The overlap of a tier with another site that the service cannot live with.
fn refused_overlap(tier: &Site, other: &Site) -> Option<Overlap> {
    let how = tier.location.overlap(&other.location)?;
    // A tier's own directory under the data dir is the default layout.
    let allowed = other.role == Role::DataDir && how == Overlap::Inside;
    (!allowed).then_some(how)
}

fn overlap_error(tier: &Site, other: &Site, how: Overlap) -> ServeError {
    let relation = match how {
        Overlap::Same => format!("is the same location as {}", other.name),
        Overlap::Inside => format!("lies inside {}", other.name),
        Overlap::Contains => format!("contains {}", other.name),
    };
    let risk = match other.role {
        Role::Tier if other.tier == tier.tier => {
            "two failure domains of one tier on one location are one domain: losing it \
             loses more replicas or fragments than the tier's redundancy tolerates"
        }
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
        field: tier.field.clone(),
        reason: format!(
            "{} ({}) {relation} ({}): {risk}; give each tier (and each domain of a tier) its own directory or S3 prefix, \
             neither inside another tier's nor containing one, nor the data dir or the catalog",
            tier.name, tier.shown, other.shown
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(store: &str, s3: &S3Options) -> StoreLocation {
        location_of(&StoreUri::parse(store).unwrap(), s3)
    }

    #[test]
    fn local_spellings_of_one_directory_are_one_place() {
        let none = S3Options::default();
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let base = real.display().to_string();
        let want = StoreLocation::Local(real.join("t"));
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
        assert_eq!(
            through_link,
            StoreLocation::Local(real.join("target/new/t"))
        );
        assert_eq!(
            through_link.overlap(&location_of_path(&real.join("target"))),
            Some(Overlap::Inside)
        );
    }

    #[test]
    fn s3_places_compare_by_endpoint_bucket_and_prefix_segments() {
        let none = S3Options::default();
        let minio = "endpoint=http://127.0.0.1:9000";
        let at = |uri: &str| place(uri, &none);
        assert_eq!(at("s3://bkt/a/b/"), at("s3://bkt/a/b"));
        assert_eq!(
            at("s3://bkt/a/b").overlap(&at("s3://bkt/a/b/c")),
            Some(Overlap::Contains)
        );
        assert_eq!(at("s3://bkt/a/b").overlap(&at("s3://bkt/a/bc")), None);
        assert_eq!(
            at(&format!("s3://bkt/a?{minio}")).overlap(&at("s3://bkt/a")),
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
            place("memory://m/a", &none).overlap(&place("memory://m", &none)),
            Some(Overlap::Inside)
        );
        assert_eq!(
            place("memory://m", &none).overlap(&place("memory://n", &none)),
            None
        );
    }
}
