//! Small files staged in batches, local to local: for each file of a batch, in one
//! blocking call for the whole batch, the source is read whole, its BLAKE3 taken, a staging
//! file created and written, its write-out started (`sync_file_range`), the staged bytes
//! read back and hashed as the caller's [`ReadBack`] asks, and the source stat'ed again.
//!
//! A migration of many small files otherwise costs a hand-off between the async runtime
//! and the blocking pool for every step of every file (open the staging file, read, write,
//! read back, stat: five per file, each a few futex calls on both sides); a batch costs one.
//! Nothing is made durable or visible here: the caller compares the hashes, checks the
//! source's new stat against its plan and publishes the [`Upload`]s (a group commit,
//! [`Upload::publish_group`], `fdatasync` before the rename), or aborts them.
//!
//! Only bare local stores take this path (no fault injection, bandwidth gate or metrics
//! layer, whose calls it would skip): [`Store::stage_small_files`] answers `None`
//! otherwise, and the caller copies file by file through the layers.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::StoreError;
use crate::local::{entry_from_metadata, open_for_read, read_exact_at, LocalStore};
use crate::upload::Upload;
use crate::upload_local::{create_staging_file, open_direct, writeback_hint, LocalUpload};
use crate::{Entry, Store};

/// Largest file a batch takes: one read, one write, one read-back each.
pub const SMALL_FILE_MAX: u64 = 256 << 10;

/// What a batch reads back from each staged file before returning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBack {
    /// Nothing: only the hash of the bytes written.
    Nothing,
    /// The staged file through the page cache.
    Cache,
    /// The staged file with direct I/O (`O_DIRECT`), from the device.
    Device,
}

/// One file of a batch: its path (the same under both roots) and its planned size.
#[derive(Debug, Clone)]
pub struct SmallFile {
    /// Path relative to both stores' roots.
    pub path: String,
    /// The size the plan expects (at most [`SMALL_FILE_MAX`]).
    pub size: u64,
}

/// A small file staged at the destination, not yet durable nor visible.
#[derive(Debug)]
pub struct StagedSmall {
    /// The staged upload: publish it (alone or in a group) or abort it.
    pub upload: Upload,
    /// BLAKE3 of the bytes read from the source and written.
    pub sent: [u8; 32],
    /// BLAKE3 of the staged bytes read back (`None` with [`ReadBack::Nothing`]).
    pub read_back: Option<[u8; 32]>,
    /// The source file as stat'ed after its bytes were read (`None`: it is gone).
    pub source_now: Option<Entry>,
}

impl Store {
    /// Stages `files` of `source` here in one blocking call (see the module documentation).
    /// `None` when either store is not a bare local store: copy file by file instead. A
    /// file's error leaves nothing of it behind (its staging file is removed).
    pub async fn stage_small_files(
        &self,
        source: &Store,
        files: Vec<SmallFile>,
        read_back: ReadBack,
    ) -> Option<Vec<Result<StagedSmall, StoreError>>> {
        let (to, from) = (self.bare_local()?, source.bare_local()?);
        let batch = tokio::task::spawn_blocking(move || {
            files
                .iter()
                .map(|file| stage_one(&from, &to, file, read_back))
                .collect::<Vec<_>>()
        });
        // A panic in the batch (`None`): the caller copies these files one by one.
        batch.await.ok()
    }
}

fn stage_one(
    source: &LocalStore,
    dest: &LocalStore,
    file: &SmallFile,
    read_back: ReadBack,
) -> Result<StagedSmall, StoreError> {
    if file.size > SMALL_FILE_MAX {
        return Err(StoreError::permanent(
            &file.path,
            format!("{} bytes is too large for a small-file batch", file.size),
        ));
    }
    let from = source.path_of(&file.path)?;
    let from_shown = from.display().to_string();
    let data = {
        let opened = open_for_read(&from).map_err(|e| StoreError::from_io(&from_shown, e))?;
        read_exact_at(&opened, &from_shown, 0, file.size as usize)?
    };
    let final_path = dest.path_of(&file.path)?;
    let staging = dest.staging_path(&file.path);
    let shown = final_path.display().to_string();
    let staged = create_staging_file(&staging)?;
    let checked = write_and_check(&staged, &staging, &shown, &data, read_back);
    let source_now = checked.and_then(|read_back| Ok((read_back, stat_now(&from, file)?)));
    match source_now {
        Ok((read_back, source_now)) => {
            let upload = LocalUpload::staged(shown, final_path, staging, file.size, staged);
            Ok(StagedSmall {
                upload: Upload::new(upload.begun()),
                sent: *blake3::hash(&data).as_bytes(),
                read_back,
                source_now,
            })
        }
        Err(error) => {
            drop(staged);
            let _ = fs::remove_file(&staging);
            Err(error)
        }
    }
}

/// Writes `data` at the start of `staged`, starts its write-out and reads it back as asked;
/// the read-back's hash.
fn write_and_check(
    staged: &File,
    staging: &Path,
    shown: &str,
    data: &[u8],
    read_back: ReadBack,
) -> Result<Option<[u8; 32]>, StoreError> {
    staged
        .write_all_at(data, 0)
        .map_err(|e| StoreError::from_io(shown, e))?;
    writeback_hint(staged, 0, 0);
    let bytes = match read_back {
        ReadBack::Nothing => return Ok(None),
        _ if data.is_empty() => bytes::Bytes::new(),
        ReadBack::Cache => read_exact_at(staged, shown, 0, data.len())?,
        ReadBack::Device => {
            let direct = open_direct(staging, shown)?;
            crate::local::read_direct_at(&direct, shown, 0, data.len())?
        }
    };
    Ok(Some(*blake3::hash(&bytes).as_bytes()))
}

/// The source as it is now (`None`: gone, or no longer a regular file).
fn stat_now(from: &Path, file: &SmallFile) -> Result<Option<Entry>, StoreError> {
    match fs::metadata(from) {
        Ok(meta) if meta.is_file() => Ok(Some(entry_from_metadata(file.path.clone(), &meta))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::from_io(from.display().to_string(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultEffect, FaultOp, FaultPlan, FaultRule};
    use crate::{PendingPublish, StoreUri};

    async fn open(path: &Path) -> Store {
        let uri = StoreUri::parse(path.to_str().unwrap()).unwrap();
        let store = Store::open(&uri, &crate::S3Options::default())
            .await
            .unwrap();
        store.ensure_root().await.unwrap();
        store
    }

    fn small(path: &str, size: u64) -> SmallFile {
        SmallFile {
            path: path.into(),
            size,
        }
    }

    fn staging_files(root: &Path) -> usize {
        fs::read_dir(root.join(".strata/staging"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn a_batch_stages_files_that_publish_in_a_group_and_reports_each_failure() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        fs::create_dir_all(src.join("a/b")).unwrap();
        fs::write(src.join("a/b/one"), b"first file").unwrap();
        fs::write(src.join("two"), b"").unwrap();
        let (from, to) = (open(&src).await, open(&dst).await);
        assert!(to.stages_small_files_from(&from));
        let files = vec![small("a/b/one", 10), small("missing", 3), small("two", 0)];
        let staged = to
            .stage_small_files(&from, files, ReadBack::Cache)
            .await
            .unwrap();
        let error = staged[1].as_ref().unwrap_err().to_string();
        assert!(error.contains("missing"), "{error}");
        assert_eq!(
            staging_files(&dst),
            2,
            "the failed file left nothing staged"
        );
        let mut pending = Vec::new();
        let expected = [
            ("a/b/one", &b"first file"[..]),
            ("missing", b""),
            ("two", b""),
        ];
        for (result, (path, content)) in staged.into_iter().zip(expected) {
            let Ok(staged) = result else { continue };
            assert_eq!(staged.sent, *blake3::hash(content).as_bytes());
            assert_eq!(staged.read_back, Some(staged.sent));
            assert_eq!(staged.source_now.unwrap().size, content.len() as u64);
            assert!(
                !dst.join(path).exists(),
                "nothing visible before publishing"
            );
            pending.push(PendingPublish {
                upload: staged.upload,
                mtime: None,
                mode: Some(0o640),
            });
        }
        let published = Upload::publish_group(pending).await;
        assert!(published.iter().all(Result::is_ok), "{published:?}");
        assert_eq!(fs::read(dst.join("a/b/one")).unwrap(), b"first file");
        assert_eq!(fs::read(dst.join("two")).unwrap(), b"");
        assert_eq!(staging_files(&dst), 0);
    }

    #[tokio::test]
    async fn a_directory_in_the_way_fails_the_publish_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("x"), b"bytes").unwrap();
        fs::create_dir_all(dst.join("x/inside")).unwrap();
        let (from, to) = (open(&src).await, open(&dst).await);
        let mut staged = to
            .stage_small_files(&from, vec![small("x", 5)], ReadBack::Nothing)
            .await
            .unwrap();
        let staged = staged.remove(0).unwrap();
        assert_eq!(staged.read_back, None);
        let error = staged.upload.publish(None, None).await.unwrap_err();
        assert!(
            error.to_string().contains("directory is in the way"),
            "{error}"
        );
        assert!(dst.join("x/inside").is_dir(), "the directory is left alone");
    }

    #[tokio::test]
    async fn layered_stores_are_not_batched() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (
            open(&dir.path().join("src")).await,
            open(&dir.path().join("dst")).await,
        );
        let rule = FaultRule::new(FaultOp::Put, FaultEffect::Error { retryable: false }).unwrap();
        let faulty = to.clone().with_faults(FaultPlan::new().rule(rule));
        assert!(!faulty.stages_small_files_from(&from));
        let answer = faulty
            .stage_small_files(&from, vec![small("x", 1)], ReadBack::Cache)
            .await;
        assert!(answer.is_none());
    }
}
