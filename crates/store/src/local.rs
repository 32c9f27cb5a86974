//! Local stores: a directory tree on a (possibly network) file system.
//!
//! Blocking file-system calls run on tokio's blocking pool. Reads are positional
//! (`pread`), so many chunks of one file can be read at once without seeking.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use crate::access::{Access, Backend, Begun};
use crate::error::StoreError;
use crate::overlap::StoreLocation;
use crate::uri::StoreUri;
use crate::{relpath, Entry, ListWarning, METADATA_DIR};

/// A local directory tree.
#[derive(Debug, Clone)]
pub(crate) struct LocalStore {
    root: PathBuf,
}

/// Runs a blocking closure on the blocking pool, mapping a failed join to a [`StoreError`].
pub(crate) async fn blocking<T, F>(what: &str, f: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(err) => Err(StoreError::from_join(what, err)),
    }
}

impl LocalStore {
    pub(crate) fn new(root: PathBuf) -> Self {
        LocalStore { root }
    }

    /// The absolute path of a validated relative path.
    pub(crate) fn path_of(&self, rel: &str) -> Result<PathBuf, StoreError> {
        relpath::check(rel)?;
        Ok(self.root.join(rel))
    }

    /// The staging area, `<root>/.strata/staging/`: outside every path a caller names (the
    /// store's data never lives under `.strata/`), on the same file system as the final
    /// paths, so that publishing is one atomic `rename`.
    fn staging_dir(&self) -> PathBuf {
        self.root.join(METADATA_DIR).join(STAGING_DIR)
    }

    /// Where the staging file of an upload of `rel` lives (in the staging area).
    pub(crate) fn staging_path(&self, rel: &str) -> PathBuf {
        let hash = blake3::hash(rel.as_bytes()).to_hex();
        let name = format!(
            "{}{UPLOAD_SUFFIX}",
            hash.as_str().get(..32).unwrap_or(hash.as_str())
        );
        self.staging_dir().join(name)
    }

    pub(crate) async fn check_reachable(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        blocking("check", move || {
            let shown = root.display().to_string();
            let meta = fs::metadata(&root).map_err(|e| StoreError::from_io(&shown, e))?;
            if !meta.is_dir() {
                return Err(StoreError::NotADirectory { path: shown });
            }
            fs::read_dir(&root).map_err(|e| StoreError::from_io(&shown, e))?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn ensure_root(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        blocking("create root", move || {
            fs::create_dir_all(&root)
                .map_err(|e| StoreError::from_io(root.display().to_string(), e))
        })
        .await
    }

    pub(crate) async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        let path = self.path_of(rel)?;
        let rel = rel.to_string();
        blocking("stat", move || {
            let shown = path.display().to_string();
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => Ok(Some(entry_from_metadata(rel, &meta))),
                Ok(meta) if meta.is_dir() => Err(StoreError::Io {
                    path: shown,
                    source: io::Error::new(
                        io::ErrorKind::IsADirectory,
                        "is a directory, not a file",
                    ),
                }),
                Ok(_) => Err(StoreError::permanent(
                    shown,
                    "not a regular file (FIFO, socket or device)",
                )),
                Err(e) if is_missing(&e) => Ok(None),
                Err(e) => Err(StoreError::from_io(shown, e)),
            }
        })
        .await
    }

    pub(crate) async fn read_range(
        &self,
        rel: &str,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, StoreError> {
        let path = self.path_of(rel)?;
        let len = checked_len(&path.display().to_string(), offset, len)?;
        if len == 0 {
            return Ok(Bytes::new());
        }
        blocking("read", move || {
            let shown = path.display().to_string();
            let file = open_for_read(&path).map_err(|e| StoreError::from_io(&shown, e))?;
            read_exact_at(&file, &shown, offset, len)
        })
        .await
    }

    pub(crate) async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        let path = self.path_of(rel)?;
        blocking("read", move || {
            let shown = path.display().to_string();
            let mut file = open_for_read(&path).map_err(|e| StoreError::from_io(&shown, e))?;
            let size = file
                .metadata()
                .map_err(|e| StoreError::from_io(&shown, e))?
                .len();
            if size > MAX_READ {
                return Err(too_large(&shown, size));
            }
            let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut buf)
                .map_err(|e| StoreError::from_io(&shown, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    pub(crate) async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        let path = self.path_of(rel)?;
        let staged = self.staging_dir().join(atomic_staging_name(rel));
        blocking("write", move || {
            write_atomic_blocking(&staged, &path, &data)
        })
        .await
    }

    /// Removes the staged copies interrupted [`LocalStore::write_atomic`] calls left in the
    /// staging area: those whose writing process (named in the staged copy's name) no
    /// longer runs, so a concurrent writer's copies in flight stay. Never an upload's
    /// `.part` file: a later run resumes those. Returns how many were removed.
    pub(crate) async fn remove_interrupted_writes(&self) -> Result<u64, StoreError> {
        self.remove_staged(|name| name.ends_with(ATOMIC_SUFFIX) && !writer_runs(name))
            .await
    }

    /// Removes every upload's staging file (`.part`) from the staging area, for an owner
    /// that never resumes an upload and has none in flight (the tiering service, at start).
    pub(crate) async fn remove_abandoned_uploads(&self) -> Result<u64, StoreError> {
        self.remove_staged(|name| name.ends_with(UPLOAD_SUFFIX))
            .await
    }

    /// Removes the regular files of the staging area whose names `stale` picks.
    async fn remove_staged(
        &self,
        stale: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<u64, StoreError> {
        let dir = self.staging_dir();
        blocking("staging cleanup", move || {
            let shown = dir.display().to_string();
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) => return Ok(0),
                Err(e) => return Err(StoreError::from_io(&shown, e)),
            };
            let mut removed = 0;
            for entry in entries {
                let entry = entry.map_err(|e| StoreError::from_io(&shown, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !stale(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(StoreError::from_io(entry.path().display().to_string(), e))
                    }
                }
            }
            Ok(removed)
        })
        .await
    }

    pub(crate) async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let path = self.path_of(rel)?;
        blocking("delete", move || match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::from_io(path.display().to_string(), e)),
        })
        .await
    }
}

#[async_trait]
impl Access for LocalStore {
    fn shown_path(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    async fn list(
        &self,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<Entry>, StoreError> {
        crate::list::list_local(&self.root, warn).await
    }

    async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        LocalStore::stat(self, rel).await
    }

    async fn read_range(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        LocalStore::read_range(self, rel, offset, len).await
    }

    async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        LocalStore::read_all(self, rel).await
    }

    async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        LocalStore::write_atomic(self, rel, data).await
    }

    async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        LocalStore::delete(self, rel).await
    }

    async fn begin_upload(&self, rel: &str, size: u64, resume: bool) -> Result<Begun, StoreError> {
        let upload = crate::upload_local::begin_local(self, rel, size, resume).await?;
        Ok(upload.begun())
    }
}

#[async_trait]
impl Backend for LocalStore {
    fn location(&self, _uri: &StoreUri) -> StoreLocation {
        StoreLocation::local(&self.root)
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn as_local(&self) -> Option<&LocalStore> {
        Some(self)
    }

    async fn check_reachable(&self) -> Result<(), StoreError> {
        LocalStore::check_reachable(self).await
    }

    async fn ensure_root(&self) -> Result<(), StoreError> {
        LocalStore::ensure_root(self).await
    }

    async fn remove_interrupted_writes(&self) -> Result<u64, StoreError> {
        LocalStore::remove_interrupted_writes(self).await
    }

    async fn remove_abandoned_uploads(&self) -> Result<u64, StoreError> {
        LocalStore::remove_abandoned_uploads(self).await
    }
}

/// Opens `path` to read it without updating its access time (`O_NOATIME`) where the
/// process may (it owns the file, or is root): under `relatime`, the first read of a file
/// written since its last read is otherwise a metadata write, which waits behind other
/// writers' journal commits (an `fsync` of another object on the same disk) and slows a
/// read that needs no disk at all. Elsewhere (`EPERM`), a plain open.
pub(crate) fn open_for_read(path: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let noatime = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(path);
        match noatime {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            other => return other,
        }
    }
    File::open(path)
}

/// The staging area's directory under [`METADATA_DIR`].
const STAGING_DIR: &str = "staging";

/// Ends the name of a staged copy of [`LocalStore::write_atomic`].
const ATOMIC_SUFFIX: &str = ".atomic";

/// Ends the name of an upload's staging file ([`LocalStore::staging_path`]).
const UPLOAD_SUFFIX: &str = ".part";

/// A staged copy's name, unique within this store: the path's hash (which says which path
/// it was for), the process and a per-process counter.
fn atomic_staging_name(rel: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let hash = blake3::hash(rel.as_bytes()).to_hex();
    format!(
        "{}.{}.{}{ATOMIC_SUFFIX}",
        hash.as_str().get(..16).unwrap_or(hash.as_str()),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether the process that staged `name` (see [`atomic_staging_name`]) still runs: this
/// one, or any live process of that id. A name that does not parse counts as running, so
/// it is never removed.
fn writer_runs(name: &str) -> bool {
    let pid = name
        .strip_suffix(ATOMIC_SUFFIX)
        .and_then(|rest| rest.split('.').nth(1))
        .and_then(|pid| pid.parse::<libc::pid_t>().ok());
    let Some(pid) = pid.filter(|&pid| pid > 0) else {
        return true;
    };
    if u32::try_from(pid).is_ok_and(|pid| pid == std::process::id()) {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// `NotFound`, or `ENOTDIR` (a parent is a file): either way there is no such file.
fn is_missing(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ENOTDIR)
}

pub(crate) fn entry_from_metadata(path: String, meta: &fs::Metadata) -> Entry {
    Entry {
        path,
        size: meta.len(),
        mtime: meta.modified().ok(),
        mode: Some(meta.mode() & 0o7777),
        etag: None,
    }
}

/// Largest single read (`read_range`, `read_all`, `read_back`): reads are chunk- or
/// manifest-sized; anything larger is a caller bug and must not exhaust memory.
pub(crate) const MAX_READ: u64 = 1 << 30;

/// Checks that `offset + len` fits and that `len` is a sane size for one read.
pub(crate) fn checked_len(path: &str, offset: u64, len: u64) -> Result<usize, StoreError> {
    if offset.checked_add(len).is_none() {
        return Err(StoreError::permanent(
            path,
            format!("range {offset}+{len} overflows"),
        ));
    }
    if len > MAX_READ {
        return Err(too_large(path, len));
    }
    usize::try_from(len).map_err(|_| too_large(path, len))
}

pub(crate) fn too_large(path: &str, len: u64) -> StoreError {
    StoreError::permanent(
        path,
        format!(
            "a read of {len} bytes is larger than the {MAX_READ}-byte limit; read it in ranges"
        ),
    )
}

/// Reads exactly `len` bytes at `offset`; a short file is reported as changed.
pub(crate) fn read_exact_at(
    file: &File,
    shown: &str,
    offset: u64,
    len: usize,
) -> Result<Bytes, StoreError> {
    let mut buf = Vec::with_capacity(len);
    read_exact_into(file, shown, offset, len, &mut buf)?;
    Ok(Bytes::from(buf))
}

/// Reads exactly `len` bytes at `offset` into `buf`, its old contents replaced and its
/// capacity reused; a short file is reported as changed.
pub(crate) fn read_exact_into(
    file: &File,
    shown: &str,
    offset: u64,
    len: usize,
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    buf.clear();
    buf.reserve(len);
    // Read into the buffer's spare capacity: no zeroing of bytes about to be overwritten.
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut *buf), at) {
            Ok(0) => return Err(short_read(shown, offset, len)),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(StoreError::from_io(shown, e.into())),
        }
    }
    buf.truncate(len);
    Ok(())
}

/// Alignment of direct I/O: offsets, lengths and buffer addresses (the largest logical
/// block size in common use).
const DIRECT_ALIGN: usize = 4096;

/// Reads `len` bytes at `offset` from `file`, opened with `O_DIRECT`: the enclosing aligned
/// range is read into an aligned buffer, and the bytes asked for are a slice of it.
pub(crate) fn read_direct_at(
    file: &File,
    shown: &str,
    offset: u64,
    len: usize,
) -> Result<Bytes, StoreError> {
    let align = DIRECT_ALIGN as u64;
    let start = offset / align * align;
    let lead = (offset - start) as usize;
    let span = (lead + len).div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    let mut buf: Vec<u8> = Vec::with_capacity(span + DIRECT_ALIGN);
    // Bytes before the first aligned address are padding, never read into.
    let pad = buf.as_ptr().align_offset(DIRECT_ALIGN);
    buf.resize(pad, 0);
    while buf.len() < pad + span {
        let done = buf.len() - pad;
        let at = start + done as u64;
        let room = &mut buf.spare_capacity_mut()[..span - done];
        match rustix::io::pread(file, room, at) {
            Ok(([], _)) => break,
            Ok((read, _)) => {
                let read = read.len();
                // SAFETY: pread initialised `read` bytes of the spare capacity, right
                // after the vector's current length.
                unsafe { buf.set_len(buf.len() + read) };
                if read % DIRECT_ALIGN != 0 {
                    break; // the end of the file
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(StoreError::from_io(shown, e.into())),
        }
    }
    if buf.len() < pad + lead + len {
        return Err(short_read(shown, offset, len));
    }
    Ok(Bytes::from(buf).slice(pad + lead..pad + lead + len))
}

pub(crate) fn short_read(shown: &str, offset: u64, len: usize) -> StoreError {
    StoreError::permanent(
        shown,
        format!(
            "file ends before offset {offset} + {len} bytes: it shrank after it was listed; \
             re-run to copy its current version"
        ),
    )
}

/// Opens a directory and fsyncs it, so that a rename or create inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::from_io(dir.display().to_string(), e))
}

/// Creates the parent directories of `path` (and returns the parent).
pub(crate) fn create_parent(path: &Path) -> Result<&Path, StoreError> {
    let parent = path.parent().ok_or_else(|| {
        StoreError::permanent(path.display().to_string(), "path has no parent directory")
    })?;
    fs::create_dir_all(parent).map_err(|e| StoreError::from_io(parent.display().to_string(), e))?;
    Ok(parent)
}

/// Stage in the staging area, write, fsync, rename over the final name, fsync the final
/// name's directory. Readers see the old content or the new one, never a mix, and a staged
/// copy never sits among the caller's paths, where it could be taken for (or collide
/// with) one of them.
///
/// Only the final directory is fsynced: should the staging entry's removal be lost in a
/// crash, what is left is a second name for the published bytes in the staging area,
/// which [`LocalStore::remove_interrupted_writes`] clears.
fn write_atomic_blocking(staged: &Path, path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let shown = path.display().to_string();
    let parent = create_parent(path)?;
    create_parent(staged)?;
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(staged)
            .map_err(|e| StoreError::from_io(staged.display().to_string(), e))?;
        file.write_all(data)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::from_io(&shown, e))?;
        fs::rename(staged, path).map_err(|e| rename_error(&shown, staged, e))?;
        sync_dir(parent)
    })();
    if result.is_err() {
        let _ = fs::remove_file(staged);
    }
    result
}

/// A failed publishing rename; across file systems it says which two paths are apart.
fn rename_error(shown: &str, staged: &Path, err: io::Error) -> StoreError {
    if err.raw_os_error() == Some(libc::EXDEV) {
        return StoreError::permanent(
            shown,
            format!(
                "it is on another file system than the store's staging area {}, so it cannot \
                 be replaced atomically; keep the whole store (including its {METADATA_DIR} \
                 directory) on one file system",
                staged.parent().unwrap_or(staged).display()
            ),
        );
    }
    StoreError::from_io(shown, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[tokio::test]
    async fn atomic_writes_are_staged_outside_the_callers_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        store
            .write_atomic("objects/dir/big", Bytes::from_static(b"new"))
            .await
            .unwrap();
        assert_eq!(
            fs::read(dir.path().join("objects/dir/big")).unwrap(),
            b"new"
        );
        assert_eq!(names_in(&dir.path().join("objects/dir")), ["big"]);
        assert!(names_in(&store.staging_dir()).is_empty());

        // A write that cannot publish (its parent is a file) leaves no staged copy.
        let err = store
            .write_atomic("objects/dir/big/under", Bytes::from_static(b"x"))
            .await;
        assert!(err.is_err());
        assert!(names_in(&store.staging_dir()).is_empty());
    }

    #[tokio::test]
    async fn reads_leave_a_file_s_access_time_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        let path = dir.path().join("objects/a");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"bytes to read").unwrap();
        // An access time before the modification: `relatime` would update it on a read.
        let before = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let file = File::options().write(true).open(&path).unwrap();
        file.set_times(fs::FileTimes::new().set_accessed(before))
            .unwrap();
        drop(file);
        let atime = || fs::metadata(&path).unwrap().accessed().unwrap();
        let set = atime();
        assert_eq!(store.read_range("objects/a", 0, 5).await.unwrap(), "bytes");
        assert_eq!(store.read_all("objects/a").await.unwrap(), "bytes to read");
        assert_eq!(atime(), set, "a read updated the access time");
    }

    #[tokio::test]
    async fn interrupted_atomic_writes_are_removed_and_uploads_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        assert_eq!(store.remove_interrupted_writes().await.unwrap(), 0);
        let staging = store.staging_dir();
        fs::create_dir_all(&staging).unwrap();
        // Staged by a process that is gone (pid_max is at most 2^22 on Linux).
        let crashed = staging.join("0123456789abcdef.99999999.0.atomic");
        fs::write(&crashed, b"half").unwrap();
        // Staged by this process, as a write in flight would be: kept.
        let in_flight = staging.join(atomic_staging_name("objects/dir/other"));
        fs::write(&in_flight, b"in flight").unwrap();
        let upload = store.staging_path("data/file");
        fs::write(&upload, b"resumable").unwrap();
        // A key that merely looks like a staged name is data, outside the staging area.
        let lookalike = dir.path().join("objects/dir/.big.strata-tmp.1.0.atomic");
        fs::create_dir_all(lookalike.parent().unwrap()).unwrap();
        fs::write(&lookalike, b"data").unwrap();

        assert_eq!(store.remove_interrupted_writes().await.unwrap(), 1);
        assert!(!crashed.exists());
        assert!(in_flight.exists());
        assert_eq!(fs::read(&upload).unwrap(), b"resumable");
        assert_eq!(fs::read(&lookalike).unwrap(), b"data");

        // An owner that never resumes uploads clears them, and nothing else.
        assert_eq!(store.remove_abandoned_uploads().await.unwrap(), 1);
        assert!(!upload.exists());
        assert!(in_flight.exists());
        assert_eq!(fs::read(&lookalike).unwrap(), b"data");
    }
}
