//! Recursive listing: every regular file under a store root, sorted by path.
//!
//! Odd things (symlink loops, FIFOs, unreadable files, unusable names) become
//! [`ListWarning`]s and the walk goes on: one bad file must not stop a petabyte migration.
//! Directories are not entries, so empty directories are not carried over.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use walkdir::WalkDir;

use crate::error::StoreError;
use crate::local::entry_from_metadata;
use crate::{relpath, Entry, ListWarning, ListWarningKind, METADATA_DIR};

/// Walks a local tree (following symbolic links) on the blocking pool.
///
/// `warn` is called from this (async) context, after the walk, in path order.
pub(crate) async fn list_local(
    root: &Path,
    warn: &mut (dyn FnMut(ListWarning) + Send),
) -> Result<Vec<Entry>, StoreError> {
    let root = root.to_path_buf();
    let (mut entries, mut warnings) =
        crate::local::blocking("list", move || walk_local(&root)).await?;
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    warnings.sort_by(|a, b| a.path.cmp(&b.path));
    for w in warnings {
        warn(w);
    }
    Ok(entries)
}

fn walk_local(root: &Path) -> Result<(Vec<Entry>, Vec<ListWarning>), StoreError> {
    let shown = root.display().to_string();
    let meta = std::fs::metadata(root).map_err(|e| StoreError::from_io(&shown, e))?;
    if !meta.is_dir() {
        return Err(StoreError::NotADirectory { path: shown });
    }

    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let walker = WalkDir::new(root)
        .follow_links(true)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == METADATA_DIR));
    for item in walker {
        let entry = match item {
            Ok(entry) => entry,
            Err(err) => {
                if let Some(w) = warning_from_walk_error(root, &err) {
                    warnings.push(w);
                    continue;
                }
                // The root itself failed (it was checked above, so it changed under us).
                return Err(match err.into_io_error() {
                    Some(io) => StoreError::from_io(shown, io),
                    None => StoreError::permanent(shown, "listing failed"),
                });
            }
        };
        let file_type = entry.file_type();
        if file_type.is_dir() {
            continue;
        }
        let Some(rel) = rel_string(root, entry.path()) else {
            warnings.push(ListWarning {
                path: rel_lossy(root, entry.path()),
                kind: ListWarningKind::InvalidName,
                message: "file name is not valid UTF-8; rename it to carry it over; skipped".into(),
            });
            continue;
        };
        if !file_type.is_file() {
            warnings.push(ListWarning {
                path: rel,
                kind: ListWarningKind::SpecialFile,
                message: "not a regular file (FIFO, socket or device); skipped".into(),
            });
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(err) => {
                warnings.push(ListWarning {
                    path: rel,
                    kind: ListWarningKind::Unreadable,
                    message: format!("cannot read its metadata ({err}); skipped"),
                });
                continue;
            }
        };
        if !readable(entry.path()) {
            warnings.push(ListWarning {
                path: rel,
                kind: ListWarningKind::Unreadable,
                message: "permission denied; fix its mode or owner to carry it over; skipped"
                    .into(),
            });
            continue;
        }
        entries.push(entry_from_metadata(rel, &meta));
    }
    Ok((entries, warnings))
}

/// Turns a walk error below the root into a warning; `None` for an error on the root.
fn warning_from_walk_error(root: &Path, err: &walkdir::Error) -> Option<ListWarning> {
    let path = err.path().map(Path::to_path_buf);
    if err.depth() == 0 && err.loop_ancestor().is_none() {
        return None;
    }
    let shown = path
        .as_deref()
        .map(|p| rel_lossy(root, p))
        .unwrap_or_default();
    if let Some(ancestor) = err.loop_ancestor() {
        return Some(ListWarning {
            path: shown,
            kind: ListWarningKind::SymlinkLoop,
            message: format!(
                "symbolic link loops back to its ancestor {}; not followed",
                rel_lossy(root, ancestor)
            ),
        });
    }
    let io = err.io_error();
    let message = match io.map(io::Error::kind) {
        Some(io::ErrorKind::PermissionDenied) => {
            "permission denied; fix its mode or owner to carry it over; skipped".to_string()
        }
        Some(io::ErrorKind::NotFound) if is_symlink(path.as_deref()) => {
            "dangling symbolic link (its target does not exist); skipped".to_string()
        }
        Some(io::ErrorKind::NotFound) => "vanished while listing; skipped".to_string(),
        _ => format!("cannot be read ({err}); skipped"),
    };
    Some(ListWarning {
        path: shown,
        kind: ListWarningKind::Unreadable,
        message,
    })
}

fn is_symlink(path: Option<&Path>) -> bool {
    path.and_then(|p| std::fs::symlink_metadata(p).ok())
        .is_some_and(|m| m.file_type().is_symlink())
}

/// `access(R_OK)`: catches unreadable files at listing time instead of mid-copy.
fn readable(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c_path.as_ptr(), libc::R_OK) == 0 }
}

fn rel_string(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let text = rel.to_str()?;
    Some(text.to_string())
}

fn rel_lossy(root: &Path, path: &Path) -> String {
    let rel: PathBuf = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    rel.to_string_lossy().into_owned()
}

/// Lists an OpenDAL store recursively under `list_root` (`""` or `"prefix/"`, relative to
/// the operator's root); returned paths are relative to `list_root`. Keys under `hidden`
/// (a `"dir/"` prefix the service keeps for itself) are left out.
pub(crate) async fn list_dal(
    op: &opendal::Operator,
    list_root: &str,
    hidden: Option<&str>,
    map_err: impl Fn(opendal::Error) -> StoreError,
    warn: &mut (dyn FnMut(ListWarning) + Send),
) -> Result<Vec<Entry>, StoreError> {
    let list_path = if list_root.is_empty() { "/" } else { list_root };
    let mut lister = op
        .lister_with(list_path)
        .recursive(true)
        .await
        .map_err(&map_err)?;
    let mut entries = Vec::new();
    while let Some(item) = lister.try_next().await.map_err(&map_err)? {
        let (path, meta) = item.into_parts();
        let Some(rel) = path.strip_prefix(list_root) else {
            continue;
        };
        let is_hidden = hidden.is_some_and(|h| rel.starts_with(h));
        if rel.is_empty() || rel.ends_with('/') || relpath::is_metadata(rel) || is_hidden {
            continue;
        }
        if !relpath::is_valid(rel) {
            warn(ListWarning {
                path: rel.to_string(),
                kind: ListWarningKind::InvalidName,
                message: "object key has an empty, '.' or '..' segment and cannot become a \
                          path; skipped"
                    .into(),
            });
            continue;
        }
        let meta = if meta.mode() == opendal::EntryMode::Unknown {
            // Some services (memory) list names only.
            match op.stat(&path).await {
                Ok(meta) => meta,
                Err(err) if err.kind() == opendal::ErrorKind::NotFound => continue,
                Err(err) => return Err(map_err(err)),
            }
        } else {
            meta
        };
        if !meta.is_file() {
            continue;
        }
        entries.push(Entry {
            path: rel.to_string(),
            size: meta.content_length(),
            mtime: meta.last_modified().map(Into::into),
            mode: None,
            etag: meta.etag().map(str::to_string),
        });
    }
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|a, b| a.path == b.path);
    Ok(entries)
}
