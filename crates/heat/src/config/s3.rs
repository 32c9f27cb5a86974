//! `[s3]`: the S3-compatible front door's buckets and anonymous access (the listen
//! address is `[server] s3_listen`).

use serde::Deserialize;

use super::parse::Problems;

/// The bucket every service has: all of the service's keys.
pub const DEFAULT_BUCKET: &str = "strata";

/// `[s3]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3FrontConfig {
    /// Buckets besides `strata` (`buckets = [...]`): each the key prefix `NAME/`.
    pub buckets: Vec<String>,
    /// Serve unsigned requests, read-only (`allow_anonymous`; off by default).
    pub allow_anonymous: bool,
}

/// `[s3]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawS3 {
    buckets: Option<Vec<String>>,
    allow_anonymous: Option<bool>,
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
    S3FrontConfig {
        buckets,
        allow_anonymous: raw.allow_anonymous.unwrap_or(false),
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
