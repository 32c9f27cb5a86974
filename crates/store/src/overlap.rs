//! Whether two stores share bytes: the one check behind every refusal of overlapping
//! locations (`strata migrate SRC DST` either way round, tier stores of the service).
//!
//! Locations are compared after normalisation, never as typed: a local root is
//! canonicalised (symlinks, `.` and `..` resolved; for a directory not created yet, its
//! longest existing ancestor is canonicalised and the rest appended), and an object-store
//! prefix is compared segment by segment within one namespace (the same S3 bucket at the
//! same endpoint, or the same named memory store), so `a/b` contains `a/b/c` but not
//! `a/bc`.

use std::path::{Path, PathBuf};

use crate::uri::{StoreScheme, StoreUri};

/// Where a store's bytes live, normalised so that two stores can be compared
/// ([`StoreLocation::overlap`]). Obtained from [`crate::Store::location`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// A local directory, canonical.
    Local(PathBuf),
    /// Keys under a prefix (its `/`-separated segments) in one namespace: an S3 bucket at
    /// an endpoint, or a named memory store.
    Keyed {
        /// The bucket and endpoint, or the memory store's name.
        namespace: String,
        /// The key prefix, split into its segments (empty: the whole namespace).
        prefix: Vec<String>,
    },
}

/// How a location relates to another that shares bytes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// Both are the same location.
    Same,
    /// The first lies inside the second.
    Inside,
    /// The first contains the second.
    Contains,
}

impl StoreLocation {
    /// A local directory (which need not exist yet), canonicalised.
    pub fn local(path: &Path) -> StoreLocation {
        StoreLocation::Local(canonical_prefix(path))
    }

    /// The location `uri` names, for an object store reached at `endpoint` (the endpoint
    /// actually used, which the URI may not name; ignored for other stores).
    pub fn of_uri(uri: &StoreUri, endpoint: &str) -> StoreLocation {
        let namespace = match uri.scheme() {
            StoreScheme::S3 | StoreScheme::Azblob | StoreScheme::Gcs | StoreScheme::Swift => {
                format!(
                    "{} {} {}",
                    uri.scheme(),
                    normal_endpoint(endpoint),
                    uri.bucket().unwrap_or_default()
                )
            }
            StoreScheme::Memory => format!("memory {}", uri.memory_name().unwrap_or_default()),
            StoreScheme::File => {
                return StoreLocation::local(uri.local_path().unwrap_or(Path::new("/")))
            }
        };
        let prefix = uri
            .prefix()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        StoreLocation::Keyed { namespace, prefix }
    }

    /// How `self` overlaps `other`, or `None` when they share nothing.
    pub fn overlap(&self, other: &StoreLocation) -> Option<Overlap> {
        match (self, other) {
            (StoreLocation::Local(a), StoreLocation::Local(b)) => {
                relate(a, b, |x: &PathBuf, y: &PathBuf| x.starts_with(y))
            }
            (
                StoreLocation::Keyed {
                    namespace: na,
                    prefix: a,
                },
                StoreLocation::Keyed {
                    namespace: nb,
                    prefix: b,
                },
            ) if na == nb => relate(a, b, |x: &Vec<String>, y: &Vec<String>| x.starts_with(y)),
            _ => None,
        }
    }
}

fn relate<T: PartialEq + ?Sized>(a: &T, b: &T, inside: impl Fn(&T, &T) -> bool) -> Option<Overlap> {
    if a == b {
        Some(Overlap::Same)
    } else if inside(a, b) {
        Some(Overlap::Inside)
    } else if inside(b, a) {
        Some(Overlap::Contains)
    } else {
        None
    }
}

/// An endpoint as compared: scheme, lower-case host and port (the default one when none
/// is given), path without a trailing `/`. Every AWS endpoint is one namespace: bucket
/// names are global there, whatever the region in the host name.
fn normal_endpoint(endpoint: &str) -> String {
    let Ok(url) = url::Url::parse(endpoint) else {
        return endpoint.trim_end_matches('/').to_ascii_lowercase();
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if host == "amazonaws.com" || host.ends_with(".amazonaws.com") {
        return "aws".into();
    }
    format!(
        "{}://{host}:{}{}",
        url.scheme(),
        url.port_or_known_default().unwrap_or_default(),
        url.path().trim_end_matches('/')
    )
}

/// Canonicalise the longest existing ancestor of `path` and re-attach the rest (a
/// destination may not exist yet).
fn canonical_prefix(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while existing.canonicalize().is_err() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(uri: &str, endpoint: &str) -> StoreLocation {
        StoreLocation::of_uri(&StoreUri::parse(uri).unwrap(), endpoint)
    }

    fn local(path: &Path) -> StoreLocation {
        StoreLocation::local(path)
    }

    #[test]
    fn local_locations_overlap_after_normalisation() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::create_dir_all(root.join("other")).unwrap();
        std::os::unix::fs::symlink(root.join("data"), root.join("alias")).unwrap();
        std::os::unix::fs::symlink(root.join("data/sub"), root.join("other/into-sub")).unwrap();
        let table: &[(&str, &str, Option<Overlap>)] = &[
            ("data", "data", Some(Overlap::Same)),
            ("data", "alias", Some(Overlap::Same)),
            ("data/sub/..", "data", Some(Overlap::Same)),
            ("data/sub", "data", Some(Overlap::Inside)),
            ("data", "data/sub", Some(Overlap::Contains)),
            // Not created yet, under a source: inside it.
            ("data/new/deeper", "data", Some(Overlap::Inside)),
            // Through a symlink into the other, not yet created below it.
            ("other/into-sub/new", "data", Some(Overlap::Inside)),
            ("alias/sub", "data", Some(Overlap::Inside)),
            ("data", "other", None),
            // A common string prefix is not containment.
            ("data", "data2", None),
            ("data2/x", "data", None),
        ];
        for (a, b, want) in table {
            let got = local(&root.join(a)).overlap(&local(&root.join(b)));
            assert_eq!(got, *want, "{a} vs {b}");
        }
    }

    #[test]
    fn object_store_prefixes_overlap_on_segment_boundaries_in_one_namespace() {
        let minio = "http://127.0.0.1:9000";
        let table: &[(&str, &str, &str, Option<Overlap>)] = &[
            ("s3://bkt/a", minio, "s3://bkt/a", Some(Overlap::Same)),
            ("s3://bkt/a/", minio, "s3://bkt/a", Some(Overlap::Same)),
            ("s3://bkt/a/c", minio, "s3://bkt/a", Some(Overlap::Inside)),
            ("s3://bkt", minio, "s3://bkt/a", Some(Overlap::Contains)),
            ("s3://bkt/a", minio, "s3://bkt/ab", None),
            ("s3://bkt/a", minio, "s3://other/a", None),
            // The same endpoint written differently is one server.
            (
                "s3://bkt/a",
                "HTTP://127.0.0.1:9000/",
                "s3://bkt/a/x",
                Some(Overlap::Contains),
            ),
            // Another server's bucket of the same name is another bucket.
            ("s3://bkt/a", "http://127.0.0.1:9001", "s3://bkt/a", None),
        ];
        for (a, endpoint, b, want) in table {
            let got = s3(a, endpoint).overlap(&s3(b, minio));
            assert_eq!(got, *want, "{a} at {endpoint} vs {b}");
        }
        // Any AWS region: bucket names are global.
        let east = s3("s3://bkt/a", "https://s3.us-east-1.amazonaws.com");
        let west = s3("s3://bkt/a/x", "https://s3.eu-west-1.amazonaws.com");
        assert_eq!(east.overlap(&west), Some(Overlap::Contains));
    }

    #[test]
    fn memory_stores_overlap_by_name_and_kinds_never_mix() {
        let mem = |uri: &str| s3(uri, "ignored");
        assert_eq!(
            mem("memory://x/p/q").overlap(&mem("memory://x/p")),
            Some(Overlap::Inside)
        );
        assert_eq!(mem("memory://x/p").overlap(&mem("memory://y/p")), None);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(local(dir.path()).overlap(&mem("memory://x")), None);
        assert_eq!(
            mem("memory://x").overlap(&s3("s3://xyz", "http://h:1")),
            None
        );
    }
}
