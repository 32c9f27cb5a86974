//! Local stores: a directory tree on a (possibly network) file system.
//!
//! Blocking file-system calls run on tokio's blocking pool. Reads are positional
//! (`pread`), so many chunks of one file can be read at once without seeking.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::StoreError;
use crate::{relpath, Entry, METADATA_DIR};

/// A local directory tree.
#[derive(Debug)]
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

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of a validated relative path.
    pub(crate) fn path_of(&self, rel: &str) -> Result<PathBuf, StoreError> {
        relpath::check(rel)?;
        Ok(self.root.join(rel))
    }

    /// Where the staging file of `rel` lives: on the same file system as the final path,
    /// so that publishing is one atomic `rename`.
    pub(crate) fn staging_path(&self, rel: &str) -> PathBuf {
        let hash = blake3::hash(rel.as_bytes()).to_hex();
        let name = format!("{}.part", hash.as_str().get(..32).unwrap_or(hash.as_str()));
        self.root.join(METADATA_DIR).join("staging").join(name)
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
            let file = File::open(&path).map_err(|e| StoreError::from_io(&shown, e))?;
            read_exact_at(&file, &shown, offset, len)
        })
        .await
    }

    pub(crate) async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        let path = self.path_of(rel)?;
        blocking("read", move || {
            let shown = path.display().to_string();
            let mut file = File::open(&path).map_err(|e| StoreError::from_io(&shown, e))?;
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
        blocking("write", move || write_atomic_blocking(&path, &data)).await
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
    let mut buf = vec![0u8; len];
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => Ok(Bytes::from(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(short_read(shown, offset, len)),
        Err(e) => Err(StoreError::from_io(shown, e)),
    }
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

/// Temp file in the same directory, write, fsync, rename over the final name, fsync the
/// directory. Readers see the old content or the new one, never a mix.
fn write_atomic_blocking(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let shown = path.display().to_string();
    let parent = create_parent(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(
        ".{name}.strata-tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| StoreError::from_io(&shown, e))?;
        file.write_all(data)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::from_io(&shown, e))?;
        fs::rename(&tmp, path).map_err(|e| StoreError::from_io(&shown, e))?;
        sync_dir(parent)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
