//! [`Upload`]: one destination file written under a temporary name, then published
//! atomically, so a partially written file never appears under its final name.
//!
//! The facade over an [`UploadAccess`] that the store's layers compose (see
//! [`crate::access`]); the backends' uploads live in [`crate::upload_local`] (a staging
//! file, resumable, group commit) and [`crate::upload_dal`] (one sequential OpenDAL
//! writer: an S3 multipart upload).

use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;

use crate::access::{Begun, GroupPublish, UploadAccess, UploadInfo};
use crate::error::StoreError;
use crate::local::blocking;
use crate::upload_local::publish_local_group;

/// One destination file being written. Owned and `Send`; [`Upload::write_at`] takes `&self`
/// so several tasks can write chunks of the same file at once (share it in an `Arc`).
///
/// Finish with [`Upload::publish`] or [`Upload::abort`]. Dropping a local upload keeps its
/// staging file for a later resume; dropping an object-store upload abandons it.
pub struct Upload {
    inner: Box<dyn UploadAccess>,
    info: UploadInfo,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("kind", &self.info.kind)
            .field("path", &self.info.shown)
            .field("size", &self.info.size)
            .finish()
    }
}

impl Upload {
    /// The facade over an upload (of a backend, or through the store's layers).
    pub(crate) fn new(begun: Begun) -> Upload {
        Upload {
            inner: begun.access,
            info: begun.info,
        }
    }

    /// Writes `data` at `offset` of the destination file. Callable concurrently; chunks may
    /// arrive in any order (object stores hold early chunks until the gap before them is
    /// filled, so send them in roughly increasing order). Writing past the size given to
    /// `begin_upload` is an error.
    pub async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let len = data.len() as u64;
        let size = self.info.size;
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(StoreError::permanent(
                &self.info.shown,
                format!("write of {len} bytes at offset {offset} goes past the file size {size}"),
            ));
        }
        self.inner.write_at(offset, data).await
    }

    /// The staged file of a bare local upload ([`crate::copy_local`]).
    pub(crate) fn staged_file(&self) -> Option<crate::upload_local::StagedFile> {
        self.inner.staged_file()
    }

    /// Whether [`Upload::read_back`] works (local stores).
    pub fn supports_read_back(&self) -> bool {
        self.info.supports_read_back
    }

    /// Reads staged bytes back (local stores), to verify them before publishing.
    pub async fn read_back(&self, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        self.inner.read_back(offset, len, false).await
    }

    /// Reads staged bytes back from the device, past the page cache (local stores:
    /// `O_DIRECT`, which first writes the range out, so a write error surfaces here with
    /// the path): a match then proves the bytes reached the device, not only the kernel's
    /// buffer. Object stores cannot read an upload back (an error, as for
    /// [`Upload::read_back`]); neither can a file system without direct I/O (an error
    /// saying so).
    pub async fn read_back_from_device(&self, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        self.inner.read_back(offset, len, true).await
    }

    /// Whether an existing staging file was reopened (local, `resume = true`, staging file
    /// present with the right length). Its earlier bytes are there, but only the ones made
    /// durable by [`Upload::sync`] (or verified with [`Upload::read_back`]) can be trusted.
    pub fn resumed(&self) -> bool {
        self.info.resumed
    }

    /// Makes the bytes written so far durable (local: `fsync` of the staging file and its
    /// directory). Call before recording chunks as done, so a resume after a crash can
    /// trust them. A no-op on object stores, which only keep completed uploads.
    pub async fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync().await
    }

    /// Makes the bytes written so far durable, but not a directory entry (local:
    /// `fdatasync` of the staging file; nothing on object stores), ahead of
    /// [`Upload::publish_group`], which then skips this file's flush (unless a write came
    /// after this one began, or the publish sets a modification time). Lets a writer
    /// flush its own file while an earlier group is still being committed.
    pub async fn flush_data(&self) -> Result<(), StoreError> {
        self.inner.flush_data().await
    }

    /// Makes the file visible under its final name, atomically. Local: fsync, set `mode`
    /// (permission bits; without one, `0o666` less the umask: the staging file itself is
    /// owner-only) and `mtime`, create parent directories, rename, fsync the directory.
    /// Object stores: complete the upload (`mode` and `mtime` are not kept); fails if
    /// bytes are missing.
    pub async fn publish(
        self,
        mtime: Option<SystemTime>,
        mode: Option<u32>,
    ) -> Result<(), StoreError> {
        self.inner.publish(mtime, mode).await
    }

    /// Group commit: publishes many finished uploads of one store together (local: set
    /// modes and mtimes, start every file's write-out, `fdatasync` each with several
    /// flushes in flight so the file system commits them in shared journal transactions,
    /// rename each, fsync each parent directory once). Same guarantees as
    /// [`Upload::publish`] for every file; many small files go several times faster. Only
    /// these files are flushed: another program's dirty pages never hold the group up (a
    /// `syncfs` would wait for them). A file made durable by [`Upload::flush_data`] since
    /// its last write, and given no modification time here, is not flushed again (its
    /// permission bits, set here, are metadata: the directory flush's journal commit
    /// carries them on the journaling file systems this runs on). Results are in the order
    /// of `items`.
    pub async fn publish_group(items: Vec<PendingPublish>) -> Vec<Result<(), StoreError>> {
        let mut local = Vec::new();
        let mut results: Vec<Option<Result<(), StoreError>>> = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            match item.upload.inner.publish_in_group().await {
                GroupPublish::Done(result) => results.push(Some(result)),
                GroupPublish::Local(u) => {
                    local.push((index, u, item.mtime, item.mode));
                    results.push(None);
                }
            }
        }
        if !local.is_empty() {
            let indices: Vec<usize> = local.iter().map(|(i, ..)| *i).collect();
            let items: Vec<_> = local.into_iter().map(|(_, u, t, m)| (u, t, m)).collect();
            let count = items.len();
            let outcomes = blocking("publish group", move || Ok(publish_local_group(items)))
                .await
                .unwrap_or_else(|e| (0..count).map(|_| Err(e.clone_for_group())).collect());
            for (index, outcome) in indices.into_iter().zip(outcomes) {
                results[index] = Some(outcome);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::permanent("", "upload not published"))))
            .collect()
    }

    /// Ends the file at `len` bytes, at most the size the upload began with: for a writer
    /// that learns the exact length only at its end (bytes encoded as they stream), which
    /// begins with an upper bound. Local: the staging file is cut to `len`; object stores:
    /// publishing then expects exactly `len` bytes written.
    pub async fn set_len(&mut self, len: u64) -> Result<(), StoreError> {
        let size = self.info.size;
        if len > size {
            return Err(StoreError::permanent(
                &self.info.shown,
                format!("cannot grow an upload of {size} bytes to {len}"),
            ));
        }
        self.inner.set_len(len).await
    }

    /// Gives up: removes the staging file or aborts the multipart upload. Nothing appears
    /// under the final name.
    pub async fn abort(self) -> Result<(), StoreError> {
        self.inner.abort().await
    }
}

/// A finished upload waiting for [`Upload::publish_group`].
pub struct PendingPublish {
    /// The upload, every byte written.
    pub upload: Upload,
    /// Modification time to set (local stores).
    pub mtime: Option<SystemTime>,
    /// Permission bits to set (local stores).
    pub mode: Option<u32>,
}
