//! Local uploads: the bytes go to `<root>/.strata/staging/<blake3(rel)[..32]>.part` with
//! positional writes; publish fsyncs, sets mode and mtime, renames onto the final path and
//! fsyncs the directory. The staging file survives a crash, and `begin_upload(resume)`
//! reopens it. Many finished uploads publish together in a group commit
//! ([`publish_local_group`]).

use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::access::{Begun, GroupPublish, UploadAccess, UploadInfo};
use crate::error::StoreError;
use crate::local::{blocking, create_parent, read_exact_at, sync_dir, LocalStore};

/// Flushes in flight at once in a group commit: enough for the file system to gather
/// many files into one journal commit.
const GROUP_FLUSHES: usize = 8;

/// Makes the data of every prepared file durable: write-out started for all of them
/// first, then `fdatasync` on each, [`GROUP_FLUSHES`] at a time. A file whose flush fails
/// becomes that file's error; the others stand. Files flushed already
/// ([`PreparedFile::flushed`]) are skipped.
fn flush_each(prepared: &mut [Result<PreparedFile, StoreError>]) {
    let files: Vec<(usize, &File)> = prepared
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_ref().ok().map(|p| (i, p)))
        .filter(|(_, p)| !p.flushed)
        .map(|(i, p)| (i, &p.file))
        .collect();
    for (_, file) in &files {
        writeback_hint(file, 0, 0);
    }
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
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
        if let Ok(p) = &prepared[index] {
            prepared[index] = Err(StoreError::from_io(&p.upload.shown, error));
        }
    }
}

/// A staged file of a group, its metadata set, ready to be flushed and renamed.
struct PreparedFile {
    upload: LocalUpload,
    file: File,
    /// Its data was made durable by [`LocalUpload::flush_data`] after its last write, and
    /// no modification time is set now: the group's flush skips it.
    flushed: bool,
}

/// The blocking half of a local group commit.
pub(crate) fn publish_local_group(
    items: Vec<(LocalUpload, Option<SystemTime>, Option<u32>)>,
) -> Vec<Result<(), StoreError>> {
    // 1. Metadata on every staged file; keep the open files for the flush.
    let mut prepared: Vec<Result<PreparedFile, StoreError>> = items
        .into_iter()
        .map(|(upload, mtime, mode)| {
            let flushed = mtime.is_none() && upload.flushed_since_last_write();
            let file = take_with_metadata(&upload.file, &upload.shown, mtime, mode)?;
            Ok(PreparedFile {
                upload,
                file,
                flushed,
            })
        })
        .collect();
    // 2. Every staged file's data made durable, the files flushed side by side.
    flush_each(&mut prepared);
    // 3. Rename each into place, then make the directory entries durable.
    let mut parents = std::collections::BTreeSet::new();
    let results: Vec<Result<(), StoreError>> = prepared
        .iter_mut()
        .map(|p| match p {
            Ok(PreparedFile { upload, .. }) => {
                let parent = rename_into_place(&upload.staging, &upload.final_path, &upload.shown)?;
                parents.insert(parent.to_path_buf());
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

pub(crate) struct LocalUpload {
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
    /// Changes of the staging file's bytes (writes, truncations), counted once each is done.
    changes: Arc<AtomicU64>,
    /// `changes` + 1 as it was before the last [`LocalUpload::flush_data`] began; 0 before
    /// any flush. Equal to `changes` + 1 while no change came after that flush.
    flushed_at: Arc<AtomicU64>,
}

impl LocalUpload {
    /// An upload of `size` bytes already written to `staging` (a small-file batch,
    /// [`crate::small`]), not resumed.
    pub(crate) fn staged(
        shown: String,
        final_path: PathBuf,
        staging: PathBuf,
        size: u64,
        file: File,
    ) -> LocalUpload {
        LocalUpload {
            shown,
            final_path,
            staging,
            size,
            resumed: false,
            file: Arc::new(RwLock::new(Some(file))),
            direct: Arc::new(OnceLock::new()),
            changes: Arc::default(),
            flushed_at: Arc::default(),
        }
    }
}

/// A new, empty staging file, owner-only until published (the source may be private); the
/// staging directory is created when it is missing, not tried again per file.
pub(crate) fn create_staging_file(staging: &Path) -> Result<File, StoreError> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .create(true)
            .truncate(true)
            .open(staging)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_parent(staging)?;
            open()
        }
        other => other,
    }
    .map_err(|e| StoreError::from_io(staging.display().to_string(), e))
}

/// Starts (or resumes) a local upload of `rel`.
pub(crate) async fn begin_local(
    store: &LocalStore,
    rel: &str,
    size: u64,
    resume: bool,
) -> Result<LocalUpload, StoreError> {
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
    Ok(LocalUpload {
        shown,
        final_path,
        staging,
        size,
        resumed,
        file: Arc::new(RwLock::new(Some(file))),
        direct: Arc::new(OnceLock::new()),
        changes: Arc::default(),
        flushed_at: Arc::default(),
    })
}

/// Opens the staging file of an upload of `size` bytes; `true` when it was resumed (it
/// existed with that size: the chunks a crashed run verified may still be in it).
///
/// Without `resume` the copy starts over in a new, empty staging file. With `resume` the
/// staging file is never truncated, because other processes may be writing their chunk
/// ranges into it at the same time (the range tasks of one large file on several
/// `strata worker`s of a POSIX or shared file system): the first to come creates it
/// exclusively (`O_CREAT | O_EXCL`) and sets its length (sparse), the others open it as
/// it is. A staging file of another size (left by an older plan) is set to `size`
/// without being emptied: no chunk in it is trusted before its recorded value is
/// checked against the bytes.
fn open_staging(
    staging: &std::path::Path,
    shown: &str,
    size: u64,
    resume: bool,
) -> Result<(File, bool), StoreError> {
    if !resume {
        let file = create_staging_file(staging)?;
        file.set_len(size)
            .map_err(|e| StoreError::from_io(shown, e))?;
        return Ok((file, false));
    }
    let staging_shown = staging.display().to_string();
    let open_existing = || OpenOptions::new().read(true).write(true).open(staging);
    let (file, created) = match open_existing() {
        Ok(file) => (file, false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match create_staging_exclusively(staging)?
        {
            Some(file) => (file, true),
            // Another process created it between our open and our create: use theirs.
            None => (
                open_existing().map_err(|e| StoreError::from_io(&staging_shown, e))?,
                false,
            ),
        },
        Err(e) => return Err(StoreError::from_io(&staging_shown, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| StoreError::from_io(&staging_shown, e))?;
    if !meta.is_file() {
        return Err(StoreError::permanent(
            &staging_shown,
            "the staging path is not a regular file; remove it and re-run",
        ));
    }
    let resumed = !created && meta.len() == size;
    if meta.len() != size {
        // Zero-length: just created (here, or by another process that has not set its
        // length yet; setting it twice to the same size is harmless).
        file.set_len(size)
            .map_err(|e| StoreError::from_io(shown, e))?;
    }
    Ok((file, resumed))
}

/// A new staging file created exclusively (`O_CREAT | O_EXCL`), owner-only until
/// published; `None` when the file exists already. The staging directory is created when
/// it is missing.
fn create_staging_exclusively(staging: &Path) -> Result<Option<File>, StoreError> {
    let create = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .create_new(true)
            .open(staging)
    };
    let created = match create() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_parent(staging)?;
            create()
        }
        other => other,
    };
    match created {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(StoreError::from_io(staging.display().to_string(), e)),
    }
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
pub(crate) fn start_writeback(file: &File, offset: u64, len: usize) {
    if len < WRITEBACK_MIN {
        return;
    }
    if let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) {
        writeback_hint(file, offset, len);
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)` over `len` bytes at `offset` (`len` 0: to the
/// end of the file): write-out starts, nothing waits, errors are left to the `fsync`.
pub(crate) fn writeback_hint(file: &File, offset: i64, len: i64) {
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
pub(crate) fn open_direct(staging: &std::path::Path, shown: &str) -> Result<File, StoreError> {
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

/// Takes the staged file out of its upload (finished from then on: a second publish or
/// abort gets [`finished`]) and gives it its mode and modification time.
fn take_with_metadata(
    file: &RwLock<Option<File>>,
    shown: &str,
    mtime: Option<SystemTime>,
    mode: Option<u32>,
) -> Result<File, StoreError> {
    let file = file
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| finished(shown))?;
    let io_err = |e| StoreError::from_io(shown, e);
    let mode = mode.unwrap_or_else(default_file_mode);
    file.set_permissions(Permissions::from_mode(mode & 0o7777))
        .map_err(io_err)?;
    if let Some(mtime) = mtime {
        file.set_times(FileTimes::new().set_modified(mtime))
            .map_err(io_err)?;
    }
    Ok(file)
}

/// Renames a staged file to its final name (creating the parent directory when it is
/// missing: one `rename` per file, no `mkdir` or `stat` when the directory exists),
/// refusing a directory in the way; returns the parent, whose entry the caller makes
/// durable.
fn rename_into_place<'a>(
    staging: &Path,
    final_path: &'a Path,
    shown: &str,
) -> Result<&'a Path, StoreError> {
    let parent = final_path
        .parent()
        .ok_or_else(|| StoreError::permanent(shown, "path has no parent directory"))?;
    let renamed = match fs::rename(staging, final_path) {
        // The final directory is missing (the staging file is there: the caller holds it).
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_parent(final_path)?;
            fs::rename(staging, final_path)
        }
        other => other,
    };
    match renamed {
        Ok(()) => Ok(parent),
        // rename(2) of a file onto a directory.
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Err(StoreError::permanent(
            shown,
            "a directory is in the way of this file; remove or rename it",
        )),
        Err(e) => Err(StoreError::from_io(shown, e)),
    }
}

pub(crate) fn finished(shown: &str) -> StoreError {
    StoreError::permanent(shown, "the upload was already published or aborted")
}

impl LocalUpload {
    async fn write_at_inner(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let file = Arc::clone(&self.file);
        let shown = self.shown.clone();
        let changes = Arc::clone(&self.changes);
        blocking("write", move || {
            let guard = file.read().unwrap_or_else(|p| p.into_inner());
            let file = guard.as_ref().ok_or_else(|| finished(&shown))?;
            let written = file
                .write_all_at(&data, offset)
                .map_err(|e| StoreError::from_io(&shown, e));
            // Counted when done (even a failed write may have changed bytes), so a flush
            // that began before it never passes for one after it.
            changes.fetch_add(1, Ordering::SeqCst);
            written?;
            start_writeback(file, offset, data.len());
            Ok(())
        })
        .await
    }

    /// `fdatasync` of the staging file; once done, a group publish skips this file's
    /// flush unless a change came after the flush began.
    async fn flush_data_inner(&self) -> Result<(), StoreError> {
        let file = Arc::clone(&self.file);
        let shown = self.shown.clone();
        let (changes, flushed_at) = (Arc::clone(&self.changes), Arc::clone(&self.flushed_at));
        blocking("flush", move || {
            let guard = file.read().unwrap_or_else(|p| p.into_inner());
            let file = guard.as_ref().ok_or_else(|| finished(&shown))?;
            let before = changes.load(Ordering::SeqCst);
            file.sync_data()
                .map_err(|e| StoreError::from_io(&shown, e))?;
            flushed_at.store(before + 1, Ordering::SeqCst);
            Ok(())
        })
        .await
    }

    /// Whether [`LocalUpload::flush_data_inner`] made every change durable.
    fn flushed_since_last_write(&self) -> bool {
        self.flushed_at.load(Ordering::SeqCst) == self.changes.load(Ordering::SeqCst) + 1
    }

    /// Bytes `[offset, offset + len)` of the staging file, through the page cache or,
    /// `direct`, with direct I/O on a second descriptor opened on first use.
    async fn read_back_inner(
        &self,
        offset: u64,
        len: u64,
        direct: bool,
    ) -> Result<Bytes, StoreError> {
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

    async fn sync_inner(&self) -> Result<(), StoreError> {
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

    async fn publish_inner(
        self,
        mtime: Option<SystemTime>,
        mode: Option<u32>,
    ) -> Result<(), StoreError> {
        let LocalUpload {
            shown,
            final_path,
            staging,
            file,
            ..
        } = self;
        blocking("publish", move || {
            let file = take_with_metadata(&file, &shown, mtime, mode)?;
            file.sync_all()
                .map_err(|e| StoreError::from_io(&shown, e))?;
            drop(file);
            let parent = rename_into_place(&staging, &final_path, &shown)?;
            sync_dir(parent)
        })
        .await
    }

    async fn abort_inner(self) -> Result<(), StoreError> {
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

/// An upload's staged file as a range copied in one blocking call writes it
/// ([`crate::copy_local`]): the same file, lock and change count as [`LocalUpload`]'s.
pub(crate) struct StagedFile {
    /// Final path, for messages.
    pub(crate) shown: String,
    /// `None` once published or aborted.
    pub(crate) file: Arc<RwLock<Option<File>>>,
    /// Changes of the staged bytes, counted once each is done.
    pub(crate) changes: Arc<AtomicU64>,
}

impl LocalUpload {
    /// The staged file, shared (see [`StagedFile`]).
    pub(crate) fn staged_file(&self) -> StagedFile {
        StagedFile {
            shown: self.shown.clone(),
            file: Arc::clone(&self.file),
            changes: Arc::clone(&self.changes),
        }
    }
}

impl LocalUpload {
    /// This upload as begun, for the facade and the layers.
    pub(crate) fn begun(self) -> Begun {
        let info = UploadInfo {
            shown: self.shown.clone(),
            kind: "local",
            size: self.size,
            resumed: self.resumed,
            supports_read_back: true,
        };
        Begun {
            info,
            access: Box::new(self),
        }
    }
}

#[async_trait]
impl UploadAccess for LocalUpload {
    async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        self.write_at_inner(offset, data).await
    }

    async fn read_back(&self, offset: u64, len: u64, direct: bool) -> Result<Bytes, StoreError> {
        self.read_back_inner(offset, len, direct).await
    }

    fn staged_file(&self) -> Option<StagedFile> {
        Some(LocalUpload::staged_file(self))
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.sync_inner().await
    }

    async fn flush_data(&self) -> Result<(), StoreError> {
        self.flush_data_inner().await
    }

    async fn set_len(&mut self, len: u64) -> Result<(), StoreError> {
        let file = Arc::clone(&self.file);
        let shown = self.shown.clone();
        let changes = Arc::clone(&self.changes);
        blocking("truncate", move || {
            let guard = file.read().unwrap_or_else(|p| p.into_inner());
            let file = guard.as_ref().ok_or_else(|| finished(&shown))?;
            let cut = file
                .set_len(len)
                .map_err(|e| StoreError::from_io(&shown, e));
            changes.fetch_add(1, Ordering::SeqCst);
            cut
        })
        .await?;
        self.size = len;
        Ok(())
    }

    async fn publish(
        self: Box<Self>,
        mtime: Option<SystemTime>,
        mode: Option<u32>,
    ) -> Result<(), StoreError> {
        self.publish_inner(mtime, mode).await
    }

    async fn publish_in_group(self: Box<Self>) -> GroupPublish {
        GroupPublish::Local(*self)
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        self.abort_inner().await
    }

    async fn lose_publish(self: Box<Self>) -> Result<(), StoreError> {
        let final_path = self.final_path.clone();
        let shown = self.shown.clone();
        self.abort_inner().await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flush_counts_only_until_the_next_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        let mut upload = begin_local(&store, "objects/a", 8, false).await.unwrap();
        assert!(!upload.flushed_since_last_write(), "never flushed");
        upload
            .write_at_inner(0, Bytes::from_static(b"abcdefgh"))
            .await
            .unwrap();
        upload.flush_data_inner().await.unwrap();
        assert!(upload.flushed_since_last_write());
        upload
            .write_at_inner(0, Bytes::from_static(b"A"))
            .await
            .unwrap();
        assert!(
            !upload.flushed_since_last_write(),
            "a write after the flush"
        );
        upload.flush_data_inner().await.unwrap();
        assert!(upload.flushed_since_last_write());
        UploadAccess::set_len(&mut upload, 4).await.unwrap();
        assert!(!upload.flushed_since_last_write(), "a cut after the flush");

        // A group publish of a flushed file and of one never flushed: both land whole.
        upload.flush_data_inner().await.unwrap();
        let other = begin_local(&store, "objects/b", 3, false).await.unwrap();
        other
            .write_at_inner(0, Bytes::from_static(b"xyz"))
            .await
            .unwrap();
        let results = publish_local_group(vec![(upload, None, None), (other, None, None)]);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(fs::read(dir.path().join("objects/a")).unwrap(), b"Abcd");
        assert_eq!(fs::read(dir.path().join("objects/b")).unwrap(), b"xyz");
    }

    #[tokio::test]
    async fn resumed_uploads_of_one_file_share_its_staging_file_and_never_empty_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        let first = begin_local(&store, "big", 8, true).await.unwrap();
        assert!(!first.resumed, "the first one created the staging file");
        first
            .write_at_inner(0, Bytes::from_static(b"abcd"))
            .await
            .unwrap();
        let second = begin_local(&store, "big", 8, true).await.unwrap();
        assert!(second.resumed, "the second one opened it as it was");
        second
            .write_at_inner(4, Bytes::from_static(b"efgh"))
            .await
            .unwrap();
        assert_eq!(
            first.read_back_inner(0, 8, false).await.unwrap(),
            Bytes::from_static(b"abcdefgh"),
            "each wrote its range; neither truncated the other's"
        );

        // A staging file of another size (an older plan): resized, not emptied, and not
        // reported resumed, so none of its chunks is trusted unchecked.
        let staging = store.staging_path("big");
        drop((first, second));
        fs::write(&staging, b"0123456789").unwrap();
        let third = begin_local(&store, "big", 8, true).await.unwrap();
        assert!(!third.resumed);
        assert_eq!(fs::read(&staging).unwrap(), b"01234567");

        // Without resume the copy starts over.
        let fresh = begin_local(&store, "big", 8, false).await.unwrap();
        assert!(!fresh.resumed);
        assert_eq!(fs::read(&staging).unwrap(), vec![0u8; 8]);

        // Something else at the staging path is a clear error, not a truncation.
        fs::remove_file(&staging).unwrap();
        fs::create_dir(&staging).unwrap();
        let error = begin_local(&store, "big", 8, true).await.err().unwrap();
        assert!(error.to_string().contains(".part"), "{error}");
    }
}
