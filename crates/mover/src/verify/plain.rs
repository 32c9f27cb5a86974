//! What `strata verify` checks on a plain dataset beyond its files: the `.strata/b3sums`
//! listing (what `b3sum --check` reads) must say what the manifest says, and files at the
//! destination that the manifest does not list are named (a warning: they are not part of
//! the dataset, nor damage to it).

use std::collections::HashSet;

use strata_codec::{DatasetManifest, B3SUMS_PATH};
use strata_store::{Store, StoreError};

use super::StoreIssue;
use crate::migrate::list_existing;
use crate::retry::retry_store;
use crate::MoverError;

/// The state of `.strata/b3sums` against `manifest`: `None` when it is intact.
pub(super) async fn check_b3sums(store: &Store, manifest: &DatasetManifest) -> Option<StoreIssue> {
    let fix = format!(
        "`strata repair {}` writes it again from the manifest",
        store.display()
    );
    let (problem, detail) = match retry_store(|| store.read_all(B3SUMS_PATH)).await {
        Ok(bytes) if bytes == manifest.b3sums_text().as_bytes() => return None,
        Ok(_) => (
            "content",
            format!(
                "the `b3sum --check` listing differs from the manifest, so checking the \
                 dataset with b3sum would give wrong answers; {fix}"
            ),
        ),
        Err(StoreError::NotFound { .. }) => (
            "missing",
            format!("the `b3sum --check` listing is missing; {fix}"),
        ),
        Err(error) => ("unreadable", format!("{error}; {fix}")),
    };
    Some(StoreIssue {
        object: B3SUMS_PATH.into(),
        problem: problem.into(),
        detail,
    })
}

/// Files at the destination the manifest does not list, sorted (one listing of the store;
/// Strata's own `.strata/` is not listed).
pub(super) async fn extra_files(
    store: &Store,
    manifest: &DatasetManifest,
) -> Result<Vec<String>, MoverError> {
    let known: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let mut extra: Vec<String> = list_existing(store)
        .await?
        .into_keys()
        .filter(|path| !known.contains(path.as_str()))
        .collect();
    extra.sort();
    Ok(extra)
}
