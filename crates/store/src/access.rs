//! The narrow interface every store backend and every layer implements, as OpenDAL's
//! `Access` is: [`Access`] for a store, [`UploadAccess`] for one upload in flight.
//!
//! Backends ([`LocalStore`](crate::local::LocalStore), [`DalStore`](crate::dal::DalStore))
//! implement [`Backend`] (the data calls of [`Access`], plus their description and the
//! housekeeping of their root); layers (fault injection in [`crate::faults_layer`], the
//! throttle's gate, `GatedStore` in `throttled/gate.rs`) implement the same traits by wrapping
//! another implementation, and [`crate::layers::stack`] composes them, in one place.
//! [`Store`](crate::Store) and [`Upload`](crate::Upload) are the public facades over the
//! composed stack: one dynamic dispatch per layer per call, no copy of the data.
//!
//! Paths are relative to the store root and checked by the backend (see
//! [`Store`](crate::Store)). The housekeeping calls have defaults that fit object stores
//! (nothing to create or clear).

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use strata_throttle::{Priority, Throttle};

use crate::error::StoreError;
use crate::overlap::StoreLocation;
use crate::uri::StoreUri;
use crate::{Entry, ListWarning};

/// The data calls of a store backend, or of a layer over one. See [`Store`](crate::Store)
/// for what each call does; implementations keep those contracts.
#[async_trait]
pub(crate) trait Access: Send + Sync + 'static {
    /// `rel` as shown to users (in errors).
    fn shown_path(&self, rel: &str) -> String;

    /// Every regular file under the root, sorted (see [`Store::list`](crate::Store::list)).
    async fn list(
        &self,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<Entry>, StoreError>;

    /// The file at `rel`, or `None`.
    async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError>;

    /// Exactly `len` bytes of `rel` from `offset`.
    async fn read_range(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, StoreError>;

    /// The whole content of `rel`.
    async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError>;

    /// Replaces `rel` with `data` atomically.
    async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError>;

    /// Removes `rel` (a missing file is no error).
    async fn delete(&self, rel: &str) -> Result<(), StoreError>;

    /// Starts writing `rel` (`size` bytes) under a temporary name.
    async fn begin_upload(&self, rel: &str, size: u64, resume: bool) -> Result<Begun, StoreError>;
}

/// A store backend as opened ([`LocalStore`](crate::local::LocalStore),
/// [`DalStore`](crate::dal::DalStore)): the data calls of [`Access`], which layers wrap,
/// and what only the backend knows or does (its description and location, the
/// housekeeping of its root), which the facade asks of the backend directly, past the
/// layers: no layer has anything to add to them.
#[async_trait]
pub(crate) trait Backend: Access {
    /// A one-line description of the store opened from `uri`, free of credentials.
    fn display(&self, uri: &StoreUri) -> String {
        uri.to_string()
    }

    /// Where the bytes of the store opened from `uri` live (see [`StoreLocation`]).
    fn location(&self, uri: &StoreUri) -> StoreLocation;

    /// The root directory, for local stores.
    fn local_root(&self) -> Option<&Path> {
        None
    }

    /// The local backend itself, for calls that work on its files directly
    /// ([`crate::small`]).
    fn as_local(&self) -> Option<&crate::local::LocalStore> {
        None
    }

    /// This backend with an OpenDAL [`ThrottleLayer`](crate::ThrottleLayer) on its HTTP
    /// transport, when it has one (S3): the layer then takes request slots and reports
    /// samples, and the gate only paces bytes. `None` for backends without HTTP requests.
    fn with_sensing(&self, _throttle: &Throttle, _class: Priority) -> Option<Arc<dyn Access>> {
        None
    }

    /// Proves the store answers (see [`Store::check_reachable`](crate::Store::check_reachable)).
    async fn check_reachable(&self) -> Result<(), StoreError>;

    /// Creates a missing local root; nothing to do elsewhere.
    async fn ensure_root(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Removes what interrupted atomic writes left; how many were removed.
    async fn remove_interrupted_writes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Removes abandoned upload staging files; how many were removed.
    async fn remove_abandoned_uploads(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// What one upload does when it is published as part of a group
/// ([`Upload::publish_group`](crate::Upload::publish_group)).
pub(crate) enum GroupPublish {
    /// Settled already (published alone, lost, or failed): its result.
    Done(Result<(), StoreError>),
    /// A local upload, to be committed with the group's other local uploads.
    Local(crate::upload_local::LocalUpload),
}

/// What an upload is, fixed when it begins: the backend says it once, the facade keeps
/// it, and no layer has to pass it on.
#[derive(Debug, Clone)]
pub(crate) struct UploadInfo {
    /// The final path, as shown to users.
    pub shown: String,
    /// `local` or `object`, for `Debug`.
    pub kind: &'static str,
    /// The size the upload will have.
    pub size: u64,
    /// Whether an interrupted upload's staging file was reopened.
    pub resumed: bool,
    /// Whether [`UploadAccess::read_back`] works.
    pub supports_read_back: bool,
}

/// An upload as begun: what it is, and the calls to it (the backend's, wrapped by each
/// layer on the way up).
pub(crate) struct Begun {
    pub info: UploadInfo,
    pub access: Box<dyn UploadAccess>,
}

impl Begun {
    /// The same upload with its calls wrapped by a layer.
    pub fn wrap(self, layer: impl FnOnce(Box<dyn UploadAccess>) -> Box<dyn UploadAccess>) -> Begun {
        Begun {
            info: self.info,
            access: layer(self.access),
        }
    }
}

/// One upload in flight, of a backend or through a layer. See [`Upload`](crate::Upload)
/// for the contracts; the facade checks sizes before calling.
#[async_trait]
pub(crate) trait UploadAccess: Send + Sync + 'static {
    /// Writes `data` at `offset` (within the size).
    async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError>;

    /// Reads staged bytes back, through the page cache or, `direct`, past it.
    async fn read_back(&self, offset: u64, len: u64, direct: bool) -> Result<Bytes, StoreError>;

    /// The staged file of a bare local upload, for a range copied in one blocking call
    /// ([`crate::copy_local`]); `None` for object stores and through every layer (whose
    /// calls that copy would skip).
    fn staged_file(&self) -> Option<crate::upload_local::StagedFile> {
        None
    }

    /// Makes the bytes written so far durable; nothing to do on object stores.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Makes the bytes written so far durable, not the directory entry (local: the
    /// staging file's `fdatasync`), so that a group publish need not flush them again;
    /// nothing to do on object stores. A layer that does not forward it only costs that
    /// flush again at publish.
    async fn flush_data(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Ends the file at `len` bytes (at most its size, checked by the facade).
    async fn set_len(&mut self, len: u64) -> Result<(), StoreError>;

    /// Makes the file visible under its final name.
    async fn publish(
        self: Box<Self>,
        mtime: Option<SystemTime>,
        mode: Option<u32>,
    ) -> Result<(), StoreError>;

    /// Publishes alone, or hands a local upload over to be committed with its group.
    async fn publish_in_group(self: Box<Self>) -> GroupPublish;

    /// Gives up: nothing appears under the final name.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;

    /// A lost publish (fault injection): the staged copy is dropped and nothing is left
    /// under the final name (an older file there is removed), yet success is reported.
    async fn lose_publish(self: Box<Self>) -> Result<(), StoreError>;
}
