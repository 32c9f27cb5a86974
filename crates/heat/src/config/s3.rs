//! `[s3]`: the S3-compatible front door's buckets, anonymous access and how long an
//! abandoned multipart upload is kept (the listen address is `[server] s3_listen`).

use std::time::Duration;

use serde::Deserialize;

use super::parse::{Problems, Span};

/// The bucket every service has: all of the service's keys.
pub const DEFAULT_BUCKET: &str = "strata";

/// How long a multipart upload nobody completed or aborted is kept, by default (as the
/// lifecycle rule AWS suggests for incomplete uploads).
pub const DEFAULT_MULTIPART_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// `[s3]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3FrontConfig {
    /// Buckets besides `strata` (`buckets = [...]`): each the key prefix `NAME/`.
    pub buckets: Vec<String>,
    /// Serve unsigned requests, read-only (`allow_anonymous`; off by default).
    pub allow_anonymous: bool,
    /// A multipart upload untouched for this long is removed with its staged parts
    /// (`multipart_expiry`; 7 days by default, at least a second).
    pub multipart_expiry: Duration,
}

impl Default for S3FrontConfig {
    fn default() -> Self {
        S3FrontConfig {
            buckets: Vec::new(),
            allow_anonymous: false,
            multipart_expiry: DEFAULT_MULTIPART_EXPIRY,
        }
    }
}

/// `[s3]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawS3 {
    buckets: Option<Vec<String>>,
    allow_anonymous: Option<bool>,
    multipart_expiry: Option<Span>,
}

/// Checks each bucket name: S3's rules (3 to 63 characters, lowercase letters, digits,
/// `-`, starting and ending with a letter or digit), unique, not `strata`.
pub(super) fn build_s3(raw: RawS3, problems: &mut Problems) -> S3FrontConfig {
    let buckets = raw.buckets.unwrap_or_default();
    for (index, name) in buckets.iter().enumerate() {
        let field = format!("s3.buckets[{index}]");
        if let Err(reason) = check_bucket_name(name) {
            problems.add(field, reason);
        } else if name == DEFAULT_BUCKET {
            problems.add(field, "\"strata\" is always a bucket (all keys); remove it");
        } else if buckets[..index].contains(name) {
            problems.add(field, format!("{name:?} is listed twice"));
        }
    }
    let multipart_expiry = raw
        .multipart_expiry
        .map_or(DEFAULT_MULTIPART_EXPIRY, |span| span.0);
    if multipart_expiry < Duration::from_secs(1) {
        problems.add(
            "s3.multipart_expiry",
            "an upload would be removed while its parts arrive; give at least 1s (the \
             default is 7d)",
        );
    }
    S3FrontConfig {
        buckets,
        allow_anonymous: raw.allow_anonymous.unwrap_or(false),
        multipart_expiry,
    }
}

/// Why `name` cannot be a bucket, if it cannot.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ends = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&name.len())
        || !plain
        || !ends(name.bytes().next())
        || !ends(name.bytes().last())
    {
        return Err(format!(
            "{name:?} is not a bucket name: 3 to 63 lowercase letters, digits or '-', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::TieringConfig;

    #[test]
    fn buckets_and_listen_address_are_checked() {
        let config = TieringConfig::parse(
            "[server]\ns3_listen = \"127.0.0.1:9000\"\n[s3]\nbuckets = [\"logs\", \"media-2\"]\n\
             allow_anonymous = true\n",
        )
        .unwrap();
        assert_eq!(config.server.s3_listen.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(config.s3.buckets, ["logs", "media-2"]);
        assert!(config.s3.allow_anonymous);
        let defaults = TieringConfig::parse("").unwrap();
        assert_eq!(defaults.server.s3_listen, None);
        assert!(defaults.s3.buckets.is_empty() && !defaults.s3.allow_anonymous);
        assert_eq!(
            defaults.s3.multipart_expiry,
            super::DEFAULT_MULTIPART_EXPIRY
        );
        let short = TieringConfig::parse("[s3]\nmultipart_expiry = \"90m\"\n").unwrap();
        assert_eq!(
            short.s3.multipart_expiry,
            std::time::Duration::from_secs(5400)
        );

        for (text, field) in [
            ("[s3]\nbuckets = [\"Logs\"]\n", "s3.buckets[0]"),
            ("[s3]\nbuckets = [\"strata\"]\n", "s3.buckets[0]"),
            ("[s3]\nbuckets = [\"ab\"]\n", "s3.buckets[0]"),
            ("[s3]\nbuckets = [\"logs\", \"logs\"]\n", "s3.buckets[1]"),
            ("[server]\ns3_listen = \"nowhere\"\n", "server.s3_listen"),
            ("[s3]\nmultipart_expiry = 0\n", "s3.multipart_expiry"),
            ("[s3]\nmultipart_expiry = \"soon\"\n", "multipart_expiry"),
        ] {
            let err = TieringConfig::parse(text).unwrap_err().to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        let unknown = TieringConfig::parse("[s3]\nbucket = [\"x\"]\n").unwrap_err();
        assert!(unknown.to_string().contains("bucket"), "{unknown}");
    }
}
