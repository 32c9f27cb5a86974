//! [`S3Options`]: S3 connection settings and credentials, from the standard environment.
//!
//! The store reads the environment here and only here: OpenDAL's own environment, profile
//! and instance-metadata loading is turned off, so what is used is exactly what this struct
//! holds (hermetic tests, fast failures, no surprise credentials).

use std::fmt;

use crate::options_cloud::{AzblobOptions, GcsOptions, Redacted, SwiftOptions};
use crate::uri::parse_bool;

/// S3 settings that do not belong in a URI. Query parameters of an `s3://` URI
/// (`endpoint`, `region`, `path_style`) override the corresponding fields.
///
/// `Debug` shows whether each credential is set, never its value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint URL of an S3-compatible server, e.g. `http://127.0.0.1:9000`.
    /// `None` means AWS S3.
    pub endpoint: Option<String>,
    /// Region; `us-east-1` when unset.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted style.
    /// Unset means path style when an endpoint is set, virtual-hosted style on AWS.
    pub path_style: Option<bool>,
    /// Access key ID (secret: redacted in `Debug`).
    pub access_key_id: Option<String>,
    /// Secret access key (secret: redacted in `Debug`).
    pub secret_access_key: Option<String>,
    /// Session token of temporary credentials (secret: redacted in `Debug`).
    pub session_token: Option<String>,
    /// Settings of `azblob://` stores (carried here so that one value opens any store).
    pub azblob: AzblobOptions,
    /// Settings of `gs://` stores.
    pub gcs: GcsOptions,
    /// Settings of `swift://` stores.
    pub swift: SwiftOptions,
}

impl S3Options {
    /// Reads the standard variables: `AWS_ENDPOINT_URL_S3` (preferred) or `AWS_ENDPOINT_URL`,
    /// `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, and `STRATA_S3_PATH_STYLE` (true/false). Empty values count as
    /// unset; an unparsable `STRATA_S3_PATH_STYLE` is ignored with a warning. Azure's,
    /// GCS's and Swift's variables too (see [`AzblobOptions::from_lookup`],
    /// [`GcsOptions::from_lookup`], [`SwiftOptions::from_lookup`]).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`S3Options::from_env`], reading variables through `lookup` (for tests and for
    /// callers that keep their own configuration map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let path_style = get("STRATA_S3_PATH_STYLE").and_then(|v| {
            let parsed = parse_bool(&v);
            if parsed.is_none() {
                tracing::warn!(
                    value = %v,
                    "ignoring STRATA_S3_PATH_STYLE: expected true or false"
                );
            }
            parsed
        });
        S3Options {
            endpoint: get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            path_style,
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            session_token: get("AWS_SESSION_TOKEN"),
            azblob: AzblobOptions::from_lookup(&lookup),
            gcs: GcsOptions::from_lookup(&lookup),
            swift: SwiftOptions::from_lookup(&lookup),
        }
    }

    /// Whether an access key pair is present.
    pub fn has_credentials(&self) -> bool {
        self.access_key_id.is_some() && self.secret_access_key.is_some()
    }
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &Redacted(&self.access_key_id))
            .field("secret_access_key", &Redacted(&self.secret_access_key))
            .field("session_token", &Redacted(&self.session_token))
            .field("azblob", &self.azblob)
            .field("gcs", &self.gcs)
            .field("swift", &self.swift)
            .finish()
    }
}
