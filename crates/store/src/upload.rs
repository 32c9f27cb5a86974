//! [`Upload`]: one destination file written under a temporary name, then published
//! atomically, so a partially written file never appears under its final name.
//!
//! - Local: the bytes go to `<root>/.strata/staging/<blake3(rel)[..32]>.part` with
//!   positional writes; publish fsyncs, sets mode and mtime, renames onto the final path and
//!   fsyncs the directory. The staging file survives a crash, and `begin_upload(resume)`
//!   reopens it.
//! - OpenDAL stores: one sequential `opendal::Writer` (an S3 multipart upload, parts sent
//!   concurrently); chunks that arrive ahead of their turn wait in memory until the gap
//!   before them is filled. Publishing completes the upload; the object appears then.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use strata_throttle::Direction;

use crate::dal::{part_size_for, DalStore, S3_PART_CONCURRENCY};
use crate::error::StoreError;
use crate::faults::{inject, lost, mangled, FaultOp, Faults, Injected};
use crate::local::{blocking, create_parent, read_exact_at, sync_dir, LocalStore};
use crate::throttled::{gated, Gate};

/// One destination file being written. Owned and `Send`; [`Upload::write_at`] takes `&self`
/// so several tasks can write chunks of the same file at once (share it in an `Arc`).
///
/// Finish with [`Upload::publish`] or [`Upload::abort`]. Dropping a local upload keeps its
/// staging file for a later resume; dropping an object-store upload abandons it.
pub struct Upload {
    inner: Inner,
    /// The store's throttle admission for [`Upload::write_at`], if any.
    gate: Option<Gate>,
    /// The store's injected faults, if any (see [`crate::faults`]).
    faults: Option<UploadFaults>,
}

/// The fault plan of the store an upload belongs to, and the upload's path.
pub(crate) struct UploadFaults {
    pub(crate) faults: Arc<Faults>,
    pub(crate) rel: String,
}

enum Inner {
    Local(LocalUpload),
    Dal(DalUpload),
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, path, size) = match &self.inner {
            Inner::Local(u) => ("local", &u.shown, u.size),
            Inner::Dal(u) => ("object", &u.shown, u.size),
        };
        f.debug_struct("Upload")
            .field("kind", &kind)
            .field("path", path)
            .field("size", &size)
            .finish()
    }
}

impl Upload {
    /// Writes `data` at `offset` of the destination file. Callable concurrently; chunks may
    /// arrive in any order (object stores hold early chunks until the gap before them is
    /// filled, so send them in roughly increasing order). Writing past the size given to
    /// `begin_upload` is an error.
    pub async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let len = data.len() as u64;
        let size = match &self.inner {
            Inner::Local(u) => u.size,
            Inner::Dal(u) => u.size,
        };
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(StoreError::permanent(
                self.shown(),
                format!("write of {len} bytes at offset {offset} goes past the file size {size}"),
            ));
        }
        let injected = self.inject(FaultOp::Write, offset).await?;
        if lost(&injected) {
            // A lost write: success reported, the bytes stay whatever was there.
            return Ok(());
        }
        let data = mangled(&injected, data);
        // Admitted before the call, outside OpenDAL's timeouts (see `crate::throttled`).
        let call = async {
            match &self.inner {
                Inner::Local(u) => u.write_at(offset, data).await,
                Inner::Dal(u) => u.write_at(offset, data).await,
            }
        };
        gated(self.gate.as_ref(), Direction::Write, len, call).await
    }

    /// Puts [`Upload::write_at`] under the store's throttle (set by `Store::begin_upload`).
    pub(crate) fn with_gate(mut self, gate: Option<Gate>) -> Upload {
        self.gate = gate;
        self
    }

    /// Puts the store's fault plan on this upload (set by `Store::begin_upload`).
    pub(crate) fn with_faults(mut self, faults: Option<UploadFaults>) -> Upload {
        self.faults = faults;
        self
    }

    /// Applies the fault rules for an `op` call of this upload at `offset`.
    async fn inject(&self, op: FaultOp, offset: u64) -> Result<Option<Injected>, StoreError> {
        match &self.faults {
            None => Ok(None),
            Some(f) => {
                inject(Some(&f.faults), op, &f.rel, offset, || {
                    self.shown().to_string()
                })
                .await
            }
        }
    }

    /// Whether [`Upload::read_back`] works (local stores).
    pub fn supports_read_back(&self) -> bool {
        matches!(self.inner, Inner::Local(_))
    }

    /// Reads staged bytes back (local stores), to verify them before publishing.
    pub async fn read_back(&self, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        self.read_back_via(offset, len, false).await
    }

    /// Reads staged bytes back from the device, past the page cache (local stores:
    /// `O_DIRECT`, which first writes the range out, so a write error surfaces here with
    /// the path): a match then proves the bytes reached the device, not only the kernel's
    /// buffer. Object stores cannot read an upload back (an error, as for
    /// [`Upload::read_back`]); neither can a file system without direct I/O (an error
    /// saying so).
    pub async fn read_back_from_device(&self, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        self.read_back_via(offset, len, true).await
    }

    /// A read-back through the page cache or, `direct`, past it; faults injected alike.
    async fn read_back_via(
        &self,
        offset: u64,
        len: u64,
        direct: bool,
    ) -> Result<Bytes, StoreError> {
        let injected = self.inject(FaultOp::ReadBack, offset).await?;
        let data = match &self.inner {
            Inner::Local(u) => u.read_back(offset, len, direct).await,
            Inner::Dal(u) => Err(StoreError::permanent(
                &u.shown,
                "this store cannot read an upload back before it is published; verify with \
                 read_range after publish",
            )),
        }?;
        Ok(mangled(&injected, data))
    }

    /// Whether an existing staging file was reopened (local, `resume = true`, staging file
    /// present with the right length). Its earlier bytes are there, but only the ones made
    /// durable by [`Upload::sync`] (or verified with [`Upload::read_back`]) can be trusted.
    pub fn resumed(&self) -> bool {
        match &self.inner {
            Inner::Local(u) => u.resumed,
            Inner::Dal(_) => false,
        }
    }

    /// Makes the bytes written so far durable (local: `fsync` of the staging file and its
    /// directory). Call before recording chunks as done, so a resume after a crash can
    /// trust them. A no-op on object stores, which only keep completed uploads.
    pub async fn sync(&self) -> Result<(), StoreError> {
        match &self.inner {
            Inner::Local(u) => u.sync().await,
            Inner::Dal(_) => Ok(()),
        }
    }

    /// Makes the file visible under its final name, atomically. Local: fsync, set `mode`
    /// (permission bits; without one, `0o666` less the umask: the staging file itself is
    /// owner-only) and `mtime`, create parent directories, rename, fsync the directory. Object stores: complete the upload (`mode` and `mtime` are not kept);
    /// fails if bytes are missing.
    pub async fn publish(
        self,
        mtime: Option<SystemTime>,
        mode: Option<u32>,
    ) -> Result<(), StoreError> {
        if lost(&self.inject(FaultOp::Publish, 0).await?) {
            return lose_publish(self.inner).await;
        }
        match self.inner {
            Inner::Local(u) => u.publish(mtime, mode).await,
            Inner::Dal(u) => u.publish().await,
        }
    }

    /// Group commit: publishes many finished uploads of one store together (local: set
    /// modes and mtimes, start every file's write-out, `fdatasync` each with several
    /// flushes in flight so the file system commits them in shared journal transactions,
    /// rename each, fsync each parent directory once). Same guarantees as
    /// [`Upload::publish`] for every file; many small files go several times faster. Only
    /// these files are flushed: another program's dirty pages never hold the group up (a
    /// `syncfs` would wait for them). Results are in the order of `items`.
    pub async fn publish_group(items: Vec<PendingPublish>) -> Vec<Result<(), StoreError>> {
        let mut local = Vec::new();
        let mut results: Vec<Option<Result<(), StoreError>>> = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            match item.upload.inject(FaultOp::Publish, 0).await {
                Err(error) => {
                    results.push(Some(Err(error)));
                    continue;
                }
                Ok(injected) if lost(&injected) => {
                    results.push(Some(lose_publish(item.upload.inner).await));
                    continue;
                }
                Ok(_) => {}
            }
            match item.upload.inner {
                Inner::Local(u) => {
                    local.push((index, u, item.mtime, item.mode));
                    results.push(None);
                }
                Inner::Dal(u) => results.push(Some(u.publish().await)),
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
        let size = match &self.inner {
            Inner::Local(u) => u.size,
            Inner::Dal(u) => u.size,
        };
        if len > size {
            return Err(StoreError::permanent(
                self.shown(),
                format!("cannot grow an upload of {size} bytes to {len}"),
            ));
        }
        match &mut self.inner {
            Inner::Local(u) => {
                let file = Arc::clone(&u.file);
                let shown = u.shown.clone();
                blocking("truncate", move || {
                    let guard = file.read().unwrap_or_else(|p| p.into_inner());
                    let file = guard.as_ref().ok_or_else(|| finished(&shown))?;
                    file.set_len(len)
                        .map_err(|e| StoreError::from_io(&shown, e))
                })
                .await?;
                u.size = len;
            }
            Inner::Dal(u) => u.size = len,
        }
        Ok(())
    }

    /// Gives up: removes the staging file or aborts the multipart upload. Nothing appears
    /// under the final name.
    pub async fn abort(self) -> Result<(), StoreError> {
        match self.inner {
            Inner::Local(u) => u.abort().await,
            Inner::Dal(u) => u.abort().await,
        }
    }

    fn shown(&self) -> &str {
        match &self.inner {
            Inner::Local(u) => &u.shown,
            Inner::Dal(u) => &u.shown,
        }
    }
}

/// A lost publish (fault injection): the staged copy is dropped and nothing is left under
/// the final name, yet success is reported.
async fn lose_publish(inner: Inner) -> Result<(), StoreError> {
    match inner {
        Inner::Local(u) => {
            let final_path = u.final_path.clone();
            let shown = u.shown.clone();
            u.abort().await?;
            blocking("lose publish", move || {
                match fs::symlink_metadata(&final_path) {
                    Ok(meta) if !meta.is_dir() => {
                        fs::remove_file(&final_path).map_err(|e| StoreError::from_io(&shown, e))
                    }
                    _ => Ok(()),
                }
            })
            .await
        }
        Inner::Dal(u) => {
            let (store, rel) = (Arc::clone(&u.store), u.rel.clone());
            u.abort().await?;
            store.delete(&rel).await
        }
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

/// Flushes in flight at once in a group commit: enough for the file system to gather
/// many files into one journal commit.
const GROUP_FLUSHES: usize = 8;

/// Makes the data of every prepared file durable: write-out started for all of them
/// first, then `fdatasync` on each, [`GROUP_FLUSHES`] at a time. A file whose flush fails
/// becomes that file's error; the others stand.
fn flush_each(prepared: &mut [Result<(LocalUpload, File), StoreError>]) {
    for (_, file) in prepared.iter().flatten() {
        writeback_hint(file, 0, 0);
    }
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let files: Vec<(usize, &File)> = prepared
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_ref().ok().map(|(_, file)| (i, file)))
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..GROUP_FLUSHES.min(files.len()) {
            scope.spawn(|| {
                while let Some(&(index, file)) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(error) = file.sync_data() {
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((index, error));
                    }
                }
            });
        }
    });
    for (index, error) in failures.into_inner().unwrap_or_else(|p| p.into_inner()) {
        if let Ok((upload, _)) = &prepared[index] {
            prepared[index] = Err(StoreError::from_io(&upload.shown, error));
        }
    }
}

/// The blocking half of a local group commit.
fn publish_local_group(
    items: Vec<(LocalUpload, Option<SystemTime>, Option<u32>)>,
) -> Vec<Result<(), StoreError>> {
    // 1. Metadata on every staged file; keep the open files for the flush.
    let mut prepared: Vec<Result<(LocalUpload, File), StoreError>> = items
        .into_iter()
        .map(|(upload, mtime, mode)| {
            let file = upload
                .file
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .ok_or_else(|| finished(&upload.shown))?;
            let io_err = |e| StoreError::from_io(&upload.shown, e);
            let mode = mode.unwrap_or_else(default_file_mode);
            file.set_permissions(Permissions::from_mode(mode & 0o7777))
                .map_err(io_err)?;
            if let Some(mtime) = mtime {
                file.set_times(FileTimes::new().set_modified(mtime))
                    .map_err(io_err)?;
            }
            Ok((upload, file))
        })
        .collect();
    // 2. Every staged file's data made durable, the files flushed side by side.
    flush_each(&mut prepared);
    // 3. Rename each into place, then make the directory entries durable.
    let mut parents = std::collections::BTreeSet::new();
    let results: Vec<Result<(), StoreError>> = prepared
        .iter_mut()
        .map(|p| match p {
            Ok((upload, _)) => {
                let parent = create_parent(&upload.final_path)?.to_path_buf();
                if fs::symlink_metadata(&upload.final_path).is_ok_and(|m| m.is_dir()) {
                    return Err(StoreError::permanent(
                        &upload.shown,
                        "a directory is in the way of this file; remove or rename it",
                    ));
                }
                fs::rename(&upload.staging, &upload.final_path)
                    .map_err(|e| StoreError::from_io(&upload.shown, e))?;
                parents.insert(parent);
                Ok(())
            }
            Err(e) => Err(e.clone_for_group()),
        })
        .collect();
    for parent in parents {
        if let Err(error) = sync_dir(&parent) {
            return results
                .into_iter()
                .map(|r| r.and_then(|()| Err(error.clone_for_group())))
                .collect();
        }
    }
    results
}

// ---------------------------------------------------------------------------------------
// Local uploads

struct LocalUpload {
    /// Final path, for messages.
    shown: String,
    final_path: PathBuf,
    staging: PathBuf,
    size: u64,
    resumed: bool,
    /// `None` once published or aborted: a late write cannot touch a published file.
    file: Arc<RwLock<Option<File>>>,
    /// The staging file opened for direct reads, once a read-back from the device asks.
    direct: Arc<OnceLock<File>>,
}

/// Starts (or resumes) a local upload of `rel`.
pub(crate) async fn begin_local(
    store: &LocalStore,
    rel: &str,
    size: u64,
    resume: bool,
) -> Result<Upload, StoreError> {
    let final_path = store.path_of(rel)?;
    let staging = store.staging_path(rel);
    let shown = final_path.display().to_string();
    let (file, resumed) = {
        let staging = staging.clone();
        let shown = shown.clone();
        blocking("begin upload", move || {
            open_staging(&staging, &shown, size, resume)
        })
        .await?
    };
    Ok(Upload {
        gate: None,
        faults: None,
        inner: Inner::Local(LocalUpload {
            shown,
            final_path,
            staging,
            size,
            resumed,
            file: Arc::new(RwLock::new(Some(file))),
            direct: Arc::new(OnceLock::new()),
        }),
    })
}

fn open_staging(
    staging: &std::path::Path,
    shown: &str,
    size: u64,
    resume: bool,
) -> Result<(File, bool), StoreError> {
    let staging_shown = staging.display().to_string();
    create_parent(staging)?;
    if resume {
        match OpenOptions::new().read(true).write(true).open(staging) {
            Ok(file) => {
                let meta = file
                    .metadata()
                    .map_err(|e| StoreError::from_io(&staging_shown, e))?;
                if meta.is_file() && meta.len() == size {
                    return Ok((file, true));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::from_io(&staging_shown, e)),
        }
    }
    // Owner-only until published: the source may be private.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .create(true)
        .truncate(true)
        .open(staging)
        .map_err(|e| StoreError::from_io(&staging_shown, e))?;
    file.set_len(size)
        .map_err(|e| StoreError::from_io(shown, e))?;
    Ok((file, false))
}

/// The mode a new file gets without Strata (`0o666` less the process umask), for files
/// published without a mode. Read from `/proc/self/status`: calling `umask(2)` to read it
/// would change it for a moment under other threads.
fn default_file_mode() -> u32 {
    static MODE: OnceLock<u32> = OnceLock::new();
    *MODE.get_or_init(|| {
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022);
        0o666 & !umask
    })
}

/// Writes of at least this many bytes start their write-out at once.
const WRITEBACK_MIN: usize = 256 << 10;

/// Asks the kernel to start writing `len` bytes at `offset` to the disk now, without
/// waiting: a large upload's pages then reach the disk while the next ones are copied, and
/// the `fsync` before publishing finds little left to flush (a 10 GiB object otherwise
/// waits for all of it at the end). Only a hint, for large writes on Linux: durability
/// still comes from that `fsync`, so an error here is ignored.
fn start_writeback(file: &File, offset: u64, len: usize) {
    if len < WRITEBACK_MIN {
        return;
    }
    if let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) {
        writeback_hint(file, offset, len);
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)` over `len` bytes at `offset` (`len` 0: to the
/// end of the file): write-out starts, nothing waits, errors are left to the `fsync`.
fn writeback_hint(file: &File, offset: i64, len: i64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: sync_file_range(2) on an open descriptor we own; it reads no memory.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Opens the staging file for direct I/O (`O_DIRECT`: reads bypass the page cache).
fn open_direct(staging: &std::path::Path, shown: &str) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    options.custom_flags(libc::O_DIRECT);
    options.open(staging).map_err(|error| {
        if error.raw_os_error() == Some(libc::EINVAL) {
            StoreError::permanent(
                shown,
                "the destination's file system cannot read past the page cache (no O_DIRECT); \
                 verify with `--verify cache` instead",
            )
        } else {
            StoreError::from_io(shown, error)
        }
    })
}

fn finished(shown: &str) -> StoreError {
    StoreError::permanent(shown, "the upload was already published or aborted")
}

impl LocalUpload {
    async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let file = Arc::clone(&self.file);
        let shown = self.shown.clone();
        blocking("write", move || {
            let guard = file.read().unwrap_or_else(|p| p.into_inner());
            let file = guard.as_ref().ok_or_else(|| finished(&shown))?;
            file.write_all_at(&data, offset)
                .map_err(|e| StoreError::from_io(&shown, e))?;
            start_writeback(file, offset, data.len());
            Ok(())
        })
        .await
    }

    /// Bytes `[offset, offset + len)` of the staging file, through the page cache or,
    /// `direct`, with direct I/O on a second descriptor opened on first use.
    async fn read_back(&self, offset: u64, len: u64, direct: bool) -> Result<Bytes, StoreError> {
        let len_usize = crate::local::checked_len(&self.shown, offset, len)?;
        if offset.saturating_add(len) > self.size {
            return Err(StoreError::permanent(
                &self.shown,
                format!(
                    "read-back of {len} bytes at {offset} goes past the file size {}",
                    self.size
                ),
            ));
        }
        if len == 0 {
            return Ok(Bytes::new());
        }
        let (file, shown) = (Arc::clone(&self.file), self.shown.clone());
        let (staging, opened) = (self.staging.clone(), Arc::clone(&self.direct));
        blocking("read back", move || {
            let guard = file.read().unwrap_or_else(|p| p.into_inner());
            let file = guard.as_ref().ok_or_else(|| finished(&shown))?;
            if !direct {
                return read_exact_at(file, &shown, offset, len_usize);
            }
            // Only while the upload is open (the guard above): never the published file.
            let file = match opened.get() {
                Some(file) => file,
                None => {
                    let direct_file = open_direct(&staging, &shown)?;
                    opened.get_or_init(|| direct_file)
                }
            };
            crate::local::read_direct_at(file, &shown, offset, len_usize)
        })
        .await
    }

    async fn sync(&self) -> Result<(), StoreError> {
        let file = Arc::clone(&self.file);
        let shown = self.shown.clone();
        let staging = self.staging.clone();
        blocking("sync", move || {
            {
                let guard = file.read().unwrap_or_else(|p| p.into_inner());
                let file = guard.as_ref().ok_or_else(|| finished(&shown))?;
                file.sync_all()
                    .map_err(|e| StoreError::from_io(&shown, e))?;
            }
            match staging.parent() {
                Some(dir) => sync_dir(dir),
                None => Ok(()),
            }
        })
        .await
    }

    async fn publish(self, mtime: Option<SystemTime>, mode: Option<u32>) -> Result<(), StoreError> {
        let LocalUpload {
            shown,
            final_path,
            staging,
            file,
            ..
        } = self;
        blocking("publish", move || {
            let file = file
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .ok_or_else(|| finished(&shown))?;
            let io_err = |e| StoreError::from_io(&shown, e);
            let mode = mode.unwrap_or_else(default_file_mode);
            file.set_permissions(Permissions::from_mode(mode & 0o7777))
                .map_err(io_err)?;
            if let Some(mtime) = mtime {
                file.set_times(FileTimes::new().set_modified(mtime))
                    .map_err(io_err)?;
            }
            file.sync_all().map_err(io_err)?;
            drop(file);
            let parent = create_parent(&final_path)?;
            if fs::symlink_metadata(&final_path).is_ok_and(|m| m.is_dir()) {
                return Err(StoreError::permanent(
                    &shown,
                    "a directory is in the way of this file; remove or rename it",
                ));
            }
            fs::rename(&staging, &final_path).map_err(io_err)?;
            sync_dir(parent)
        })
        .await
    }

    async fn abort(self) -> Result<(), StoreError> {
        let LocalUpload {
            shown,
            staging,
            file,
            ..
        } = self;
        blocking("abort", move || {
            drop(file.write().unwrap_or_else(|p| p.into_inner()).take());
            match fs::remove_file(&staging) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StoreError::from_io(&shown, e)),
            }
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------
// OpenDAL uploads

struct DalUpload {
    store: Arc<DalStore>,
    rel: String,
    shown: String,
    size: u64,
    state: tokio::sync::Mutex<Sequencer>,
}

/// Feeds a sequential writer from chunks that may arrive out of order.
struct Sequencer {
    writer: Option<opendal::Writer>,
    /// Bytes `[0, next)` have been handed to the writer.
    next: u64,
    /// Chunks ahead of `next`, by offset.
    pending: BTreeMap<u64, Bytes>,
    /// Set after a failed write: the writer cannot be trusted any more.
    failed: Option<String>,
}

/// Starts an object-store upload of `rel` (never resumed: incomplete uploads are not kept).
pub(crate) async fn begin_dal(
    store: &Arc<DalStore>,
    rel: &str,
    size: u64,
) -> Result<Upload, StoreError> {
    let key = store.key(rel)?;
    let op = store.operator();
    let writer = if store.is_s3() {
        op.writer_with(&key)
            .chunk(part_size_for(size))
            .concurrent(S3_PART_CONCURRENCY)
            .await
    } else {
        op.writer(&key).await
    }
    .map_err(|e| store.error(rel, e))?;
    Ok(Upload {
        gate: None,
        faults: None,
        inner: Inner::Dal(DalUpload {
            store: Arc::clone(store),
            rel: rel.to_string(),
            shown: store.shown_path(rel),
            size,
            state: tokio::sync::Mutex::new(Sequencer {
                writer: Some(writer),
                next: 0,
                pending: BTreeMap::new(),
                failed: None,
            }),
        }),
    })
}

impl DalUpload {
    fn usable<'a>(&self, state: &'a mut Sequencer) -> Result<&'a mut opendal::Writer, StoreError> {
        if let Some(why) = &state.failed {
            return Err(StoreError::permanent(
                &self.shown,
                format!("an earlier write of this upload failed ({why}); start it again"),
            ));
        }
        state.writer.as_mut().ok_or_else(|| finished(&self.shown))
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        self.usable(&mut state)?;
        if offset.saturating_add(data.len() as u64) <= state.next {
            return Ok(()); // already written (a retried chunk)
        }
        // Keep the longer chunk if one is already waiting at this offset.
        let keep_old = state
            .pending
            .get(&offset)
            .is_some_and(|old| old.len() >= data.len());
        if !keep_old {
            state.pending.insert(offset, data);
        }
        self.drain(&mut state).await
    }

    /// Writes every waiting chunk that starts at or before `next`.
    async fn drain(&self, state: &mut Sequencer) -> Result<(), StoreError> {
        loop {
            let Some((&offset, _)) = state.pending.first_key_value() else {
                return Ok(());
            };
            if offset > state.next {
                return Ok(());
            }
            let Some(data) = state.pending.remove(&offset) else {
                return Ok(());
            };
            let skip = state.next - offset;
            if skip >= data.len() as u64 {
                continue;
            }
            let data = data.slice(usize::try_from(skip).unwrap_or(usize::MAX)..);
            let len = data.len() as u64;
            let writer = self.usable(state)?;
            if let Err(err) = writer.write(data).await {
                let mapped = self.store.error(&self.rel, err);
                state.failed = Some(mapped.to_string());
                return Err(mapped);
            }
            state.next += len;
        }
    }

    async fn publish(self) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        let complete = state.next == self.size && state.pending.is_empty();
        let written = state.next;
        let outcome = match self.usable(&mut state) {
            Err(err) => Err(err),
            Ok(writer) if complete => {
                return writer
                    .close()
                    .await
                    .map(|_| ())
                    .map_err(|e| self.store.error(&self.rel, e));
            }
            Ok(_) => Err(StoreError::permanent(
                &self.shown,
                format!(
                    "upload is incomplete: {written} of {} bytes were written in sequence; \
                     nothing was published",
                    self.size
                ),
            )),
        };
        if let Some(mut writer) = state.writer.take() {
            let _ = writer.abort().await;
        }
        outcome
    }

    async fn abort(self) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        match state.writer.take() {
            Some(mut writer) => writer
                .abort()
                .await
                .map_err(|e| self.store.error(&self.rel, e)),
            None => Ok(()),
        }
    }
}
