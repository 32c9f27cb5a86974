//! Validation of the relative paths callers hand to a store.

use crate::error::StoreError;

/// Longest relative path accepted, in bytes (S3 keys are limited to 1024; local file
/// systems to 4096 for a whole path).
const MAX_LEN: usize = 4096;

/// Checks that `rel` is a usable relative path: not empty, `/`-separated, no leading `/`,
/// no empty, `.` or `..` segment, no NUL byte.
pub(crate) fn check(rel: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| {
        Err(StoreError::InvalidPath {
            path: rel.chars().take(200).collect(),
            reason: reason.to_string(),
        })
    };
    if rel.is_empty() {
        return bad("it is empty");
    }
    if rel.len() > MAX_LEN {
        return bad("it is too long");
    }
    if rel.contains('\0') {
        return bad("it contains a NUL byte");
    }
    if rel.starts_with('/') {
        return bad("it starts with '/'");
    }
    if rel
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("it has an empty, '.' or '..' segment");
    }
    Ok(())
}

/// Whether `rel` is a valid relative path (see [`check`]).
pub(crate) fn is_valid(rel: &str) -> bool {
    check(rel).is_ok()
}

/// Whether `rel` lies inside the top-level metadata directory.
pub(crate) fn is_metadata(rel: &str) -> bool {
    rel == crate::METADATA_DIR
        || rel
            .strip_prefix(crate::METADATA_DIR)
            .is_some_and(|rest| rest.starts_with('/'))
}
