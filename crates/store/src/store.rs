//! [`Store`]: one opened store, local or OpenDAL-backed, behind one interface: the facade
//! over the backend and its layers (see [`crate::access`] and [`crate::layers::stack`]).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use strata_throttle::{Priority, Throttle};

use crate::access::{Access, Backend};
use crate::chaos::Chaos;
use crate::dal::DalStore;
use crate::error::StoreError;
use crate::faults::{FaultPlan, Faults};
use crate::layers::StoreLayers;
use crate::local::LocalStore;
use crate::metrics_layer::StoreMetrics;
use crate::options::S3Options;
use crate::overlap::StoreLocation;
use crate::throttled::ThrottleStatus;
use crate::upload::Upload;
use crate::uri::{StoreScheme, StoreUri};
use crate::{Entry, ListWarning};

/// An opened store. Cheap to clone (shared state behind an `Arc`); safe to use from many
/// tasks at once.
///
/// Paths given to its methods are relative to the store root, `/`-separated, without
/// empty, `.` or `..` segments (anything else is [`StoreError::InvalidPath`]).
#[derive(Clone)]
pub struct Store {
    uri: StoreUri,
    /// The backend under its layers: every call goes through it.
    access: Arc<dyn Access>,
    /// The backend as opened, without layers ([`Store::with_throttle`] and
    /// [`Store::with_faults`] compose again from it, so a second throttle or plan replaces
    /// the first instead of stacking); the description and housekeeping calls go to it.
    base: Arc<dyn Backend>,
    /// The layers `access` is composed of.
    layers: StoreLayers,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("uri", &self.display())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store a URI names. Cheap: no I/O (use [`Store::check_reachable`] to find
    /// out early whether it works). S3 settings come from `s3`, overridden by the URI's
    /// query parameters; nothing else is read from the environment.
    pub async fn open(uri: &StoreUri, s3: &S3Options) -> Result<Store, StoreError> {
        let base: Arc<dyn Backend> = match uri.scheme() {
            StoreScheme::File => {
                let root = uri.local_path().ok_or_else(|| StoreError::InvalidUri {
                    uri: uri.to_string(),
                    reason: "a file URI without a path".into(),
                })?;
                Arc::new(LocalStore::new(root.to_path_buf()))
            }
            StoreScheme::S3
            | StoreScheme::Memory
            | StoreScheme::Azblob
            | StoreScheme::Gcs
            | StoreScheme::Swift => Arc::new(DalStore::open(uri, s3)?),
        };
        let store = Store {
            uri: uri.clone(),
            access: Arc::clone(&base) as Arc<dyn Access>,
            base,
            layers: StoreLayers::default(),
        };
        tracing::debug!(store = %store.display(), "store opened");
        Ok(store)
    }

    /// The layers composed again over the backend, after a change of throttle, plan or metrics.
    fn relayered(mut self) -> Store {
        self.access = crate::layers::stack(&self.base, &self.layers);
        self
    }

    /// Puts this store's data transfers under `throttle`, in priority class `class`
    /// (replacing an earlier throttle). Every `read_range`, `read_all`, `write_atomic` and
    /// [`Upload::write_at`] then waits for the throttle's admission; S3 stores also get a
    /// [`ThrottleLayer`](crate::ThrottleLayer) that feeds the congestion controller one
    /// sample per HTTP request.
    /// See [`crate::throttled`] for why admission is a store layer and sensing an OpenDAL one.
    ///
    /// Share one `Throttle` between every store (and every job) of a process that uses the
    /// same path, giving each its class: the classes then share the rate by weight.
    pub fn with_throttle(mut self, throttle: Throttle, class: Priority) -> Store {
        self.layers.throttle = Some((throttle, class));
        self.relayered()
    }

    /// Makes this store misbehave as `plan` says, for tests: bit flips, truncation, lost
    /// writes and objects, errors, latency (see [`crate::faults`]), on every backend.
    /// Replaces an earlier plan; an empty plan removes it. Clones of the returned store and
    /// its uploads share the plan's counters ([`Store::faults`]).
    pub fn with_faults(mut self, plan: FaultPlan) -> Store {
        self.layers.faults = (!plan.is_empty()).then(|| Arc::new(Faults::new(plan)));
        self.relayered()
    }

    /// Puts this store under `chaos`: rules added to it at run time make the store's calls
    /// slow, failing or corrupt (see [`crate::chaos`]), on top of any fault plan. Share one
    /// `Chaos` between stores to switch them together.
    pub fn with_chaos(mut self, chaos: Arc<Chaos>) -> Store {
        self.layers.chaos = Some(chaos);
        self.relayered()
    }

    /// The run-time chaos rules this store is under, if any.
    pub fn chaos(&self) -> Option<&Arc<Chaos>> {
        self.layers.chaos.as_ref()
    }

    /// The fault plan in force and how often each rule fired, if any.
    pub fn faults(&self) -> Option<&Faults> {
        self.layers.faults.as_deref()
    }

    /// Counts this store's backend calls (calls, bytes, errors per operation) in
    /// `metrics`, replacing earlier counters; share one `StoreMetrics` between stores to
    /// count them together. What is counted is what reaches the backend: after the
    /// throttle's waits, without calls fault injection failed or lost on purpose.
    pub fn with_metrics(mut self, metrics: Arc<StoreMetrics>) -> Store {
        self.layers.metrics = Some(metrics);
        self.relayered()
    }

    /// The counters of this store's backend calls, if counted ([`Store::with_metrics`]).
    pub fn metrics(&self) -> Option<&StoreMetrics> {
        self.layers.metrics.as_deref()
    }

    /// The throttle this store's transfers go through, and their class.
    pub fn throttle(&self) -> Option<(&Throttle, Priority)> {
        self.layers.throttle.as_ref().map(|(t, class)| (t, *class))
    }

    /// The state of this store's throttle, for progress lines and `strata status`.
    pub fn throttle_status(&self) -> Option<ThrottleStatus> {
        self.layers
            .throttle
            .as_ref()
            .map(|(t, _)| ThrottleStatus::of(t))
    }

    /// The URI this store was opened from.
    pub fn uri(&self) -> &StoreUri {
        &self.uri
    }

    /// A one-line description for users and logs: the URI, plus the endpoint actually used
    /// for S3. Never contains credentials.
    pub fn display(&self) -> String {
        self.base.display(&self.uri)
    }

    /// The local backend when nothing is layered over it (no fault injection, throttle or
    /// metrics), for calls that work on its files directly.
    pub(crate) fn bare_local(&self) -> Option<LocalStore> {
        let layers = &self.layers;
        let faulty = layers.faults.is_some() || layers.chaos.is_some();
        if faulty || layers.throttle.is_some() || layers.metrics.is_some() {
            return None;
        }
        self.base.as_local().cloned()
    }

    /// Whether [`Store::stage_small_files`](crate::small) works from `source` to here:
    /// both are local stores with no layer over them.
    pub fn stages_small_files_from(&self, source: &Store) -> bool {
        self.bare_local().is_some() && source.bare_local().is_some()
    }

    /// The root directory of a local store.
    pub fn local_root(&self) -> Option<&Path> {
        self.base.local_root()
    }

    /// Where this store's bytes live, normalised for [`StoreLocation::overlap`] (local
    /// roots canonicalised; object stores by the endpoint actually used).
    pub fn location(&self) -> StoreLocation {
        self.base.location(&self.uri)
    }

    /// A cheap call that proves the store answers: local, the root is a readable
    /// directory; S3, one list request of at most one key, with a 5-second timeout and no
    /// retry. Errors are [`StoreError::Unreachable`] (nothing answers), [`StoreError::Auth`]
    /// (credentials refused), [`StoreError::NotFound`] (no such bucket or directory).
    pub async fn check_reachable(&self) -> Result<(), StoreError> {
        self.base.check_reachable().await
    }

    /// Creates the root directory of a local store if it is missing (for destinations);
    /// nothing to do on object stores, where prefixes need no creation.
    pub async fn ensure_root(&self) -> Result<(), StoreError> {
        self.base.ensure_root().await
    }

    /// Removes what interrupted [`Store::write_atomic`] calls left behind: local stores
    /// stage each write in `<root>/.strata/staging/` (outside every path a caller can
    /// name), and a crash between staging and publishing leaves the staged copy there.
    /// Object stores write in one PUT and leave nothing. Only copies whose writing
    /// process no longer runs on this host are removed (each staged name carries its
    /// writer's process id), so writes in flight are safe; upload staging files
    /// (resumable) are kept. Returns how many staged copies were removed.
    pub async fn remove_interrupted_writes(&self) -> Result<u64, StoreError> {
        self.base.remove_interrupted_writes().await
    }

    /// Removes every upload staging file a local store holds (`<root>/.strata/staging/*.part`),
    /// for an owner that never resumes an upload and has none in flight: the tiering
    /// service at start, whose interrupted writes are abandoned, not resumed. A migration
    /// keeps them (a re-run resumes). Object stores: nothing (an abandoned multipart upload
    /// is the bucket's lifecycle rules' to expire). Returns how many were removed.
    pub async fn remove_abandoned_uploads(&self) -> Result<u64, StoreError> {
        self.base.remove_abandoned_uploads().await
    }

    /// Every regular file under the root, recursively, sorted by path, without the
    /// top-level `.strata/` directory. Skipped oddities (symlink loops, FIFOs, sockets,
    /// devices, unreadable files, unusable names) are passed to `warn`.
    ///
    /// A local root that is missing is [`StoreError::NotFound`]; one that is a file is
    /// [`StoreError::NotADirectory`]. An S3 prefix with no objects lists as empty.
    pub async fn list(
        &self,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<Entry>, StoreError> {
        self.access.list(warn).await
    }

    /// The file at `rel`, or `None` if there is none.
    pub async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        self.access.stat(rel).await
    }

    /// Exactly `len` bytes of `rel` from `offset`. A file shorter than that is an error (it
    /// changed since it was listed).
    pub async fn read_range(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        self.access.read_range(rel, offset, len).await
    }

    /// The whole content of `rel` (for small files such as manifests).
    pub async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        self.access.read_all(rel).await
    }

    /// Replaces `rel` with `data` atomically (small metadata files): readers see the old
    /// content or the new one. Local: a staged copy in `<root>/.strata/staging/`, fsync,
    /// rename, fsync directory (so no temporary name ever appears beside `rel`); object
    /// stores: one PUT.
    pub async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        self.access.write_atomic(rel, data).await
    }

    /// Removes `rel`; removing a file that does not exist succeeds.
    pub async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        self.access.delete(rel).await
    }

    /// Starts writing `rel` (`size` bytes) under a temporary name; see [`Upload`].
    ///
    /// With `resume`, a local staging file left by an interrupted run with the same size is
    /// reopened without truncation ([`Upload::resumed`] is then true), and a missing one is
    /// created exclusively: processes writing disjoint chunk ranges of one file (the range
    /// tasks of distributed workers) may all begin the same upload with `resume`, and none
    /// empties what another wrote. Object stores always start over. Without `resume`, only
    /// one upload per path may be in flight at a time.
    pub async fn begin_upload(
        &self,
        rel: &str,
        size: u64,
        resume: bool,
    ) -> Result<Upload, StoreError> {
        let upload = self.access.begin_upload(rel, size, resume).await?;
        Ok(Upload::new(upload))
    }
}
