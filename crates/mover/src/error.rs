//! Errors of the mover, written for the operator: what went wrong, where, what to do.

use strata_catalog::CatalogError;
use strata_codec::ManifestError;
use strata_store::{Overlap, StoreError};

/// Why a migration or a verification could not run (per-file failures are reported in the
/// [`crate::MigrationReport`] instead, and the rest of the job goes on).
#[derive(Debug, thiserror::Error)]
pub enum MoverError {
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Source and destination share bytes: the same location, or one inside the other
    /// (either way round). Refused before anything is written.
    #[error("{}", overlap_message(source_root, destination, *overlap))]
    Overlapping {
        /// Source root.
        source_root: String,
        /// Destination root.
        destination: String,
        /// How the source relates to the destination.
        overlap: Overlap,
    },
    /// A plain source holds a packed store's data objects, but neither the layout marker
    /// nor a manifest saying packed: restoring it would copy the objects as files.
    #[error(
        "{location} looks like a packed store that lost its metadata: it holds the packed \
         store object {object} but neither the layout marker .strata/layout.json nor a \
         manifest saying packed, so its files cannot be restored and copying it would copy \
         the store's internal objects as files; nothing was copied. Restore its .strata/ \
         folder from a backup, or migrate again from the original data; to copy these \
         objects as ordinary files, migrate their folders (chunks/, packs/) one by one"
    )]
    UnmarkedPackedStore {
        /// The source.
        location: String,
        /// One of its data objects.
        object: String,
    },
    /// A bug: an internal task failed.
    #[error("internal error: {0}; please report it, then re-run the same command to resume")]
    Internal(String),
    /// Invalid options.
    #[error("{0}")]
    InvalidOptions(String),
    /// The destination has no readable manifest.
    #[error("no Strata manifest at {location}: {reason}")]
    Manifest {
        /// Where the manifest was looked for.
        location: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The task queue (NATS JetStream) could not be reached or refused a call.
    #[error("task queue {url}: {detail}")]
    Queue {
        /// The queue's URL, without credentials.
        url: String,
        /// What went wrong and what to do.
        detail: String,
    },
    /// The job stopped on an error that affects every file (full disk, lost endpoint, ...).
    #[error("job {job} stopped: {source}; progress is saved, re-run the same command to resume")]
    Stopped {
        /// Job id.
        job: i64,
        /// The error that stopped it.
        source: StoreError,
    },
}

impl MoverError {
    /// Wrap a manifest parse error with the location it was read from.
    pub fn manifest(location: impl Into<String>, error: ManifestError) -> Self {
        MoverError::Manifest {
            location: location.into(),
            reason: error.to_string(),
        }
    }
}

fn overlap_message(source: &str, destination: &str, overlap: Overlap) -> String {
    let what = match overlap {
        Overlap::Same => format!(
            "source {source} and destination {destination} are the same location: the copy \
             would overwrite the files it reads"
        ),
        Overlap::Inside => format!(
            "source {source} is inside destination {destination}: the copy could overwrite \
             its own source files"
        ),
        Overlap::Contains => format!(
            "destination {destination} is inside source {source}: the copy would copy itself"
        ),
    };
    format!("{what}; nothing was written; choose a destination that neither is, contains nor lies inside the source")
}
