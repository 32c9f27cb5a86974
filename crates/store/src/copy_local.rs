//! A range of a large file copied local to local in one blocking call: span by span, the
//! source read (`pread`), hashed, written into the staged upload at the same offset, its
//! write-out started (`sync_file_range`), and, when asked, read back through the page
//! cache and hashed again, all on one thread.
//!
//! The chunk pipeline ([`strata_mover`'s `pipeline::pump`]) does the same steps with every
//! step of every span on its own blocking call (read, hash, write, read back, hash again:
//! five hand-offs between the async runtime and the blocking pool per 256 KiB, each a few
//! futex calls on both sides), and each step may run on the other core than the span's
//! previous one, so the bytes just read are hashed and written from the other core's
//! cache. Here a span is read, hashed, written, read back and hashed while it is still in
//! this core's cache, and a chunk costs one hand-off. Parallelism comes from the chunk
//! tasks the migration runs side by side, not from overlapping the steps of one chunk.
//!
//! What a read-back proves is unchanged: the staged file, read through the page cache
//! after the write, holds the bytes sent at their offsets (the caller compares the two
//! hashes over the whole range). Only bare local stores take this path (no fault
//! injection, bandwidth gate or metrics layer, whose calls it would skip):
//! [`Upload::copy_range_from`] answers `None` otherwise, and the caller uses the pipeline.

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

use crate::error::StoreError;
use crate::local::{open_for_read, read_exact_into, LocalStore};
use crate::small::ReadBack;
use crate::upload::Upload;
use crate::upload_local::{finished, start_writeback, StagedFile};
use crate::Store;

/// A hash fed a range's bytes in order (the migration's chunk hasher).
pub trait FeedHash: Send + 'static {
    /// Hashes the next bytes.
    fn feed(&mut self, bytes: &[u8]);
}

impl FeedHash for blake3::Hasher {
    fn feed(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// One range to copy: bytes `[offset, offset + len)` of the source file `path` (relative to
/// the source store's root) go to the same offsets of the upload.
#[derive(Debug, Clone)]
pub struct RangeCopy {
    /// The file's path under the source root.
    pub path: String,
    /// Where the range starts, in both files.
    pub offset: u64,
    /// Its length.
    pub len: u64,
    /// The unit of each read, write and read-back (at least 1 byte).
    pub span: u64,
}

/// The hashes of a copied range.
#[derive(Debug)]
pub struct RangeHashes<H> {
    /// Of the bytes read from the source and written.
    pub sent: H,
    /// Of the staged bytes read back (`None` when nothing was read back).
    pub staged: Option<H>,
}

impl Upload {
    /// Copies `range` of `source` into this upload in one blocking call (see the module
    /// documentation), hashing the bytes sent with `sent` and, with [`ReadBack::Cache`],
    /// the staged bytes read back with `staged`. `None` when this path does not apply:
    /// either store is not a bare local store, or `read_back` is [`ReadBack::Device`]
    /// (direct reads of each span right after its write would wait for the disk span by
    /// span); the caller then copies through its pipeline. A short source (the file
    /// shrank) is an error naming it; nothing is published or flushed here.
    pub async fn copy_range_from<H: FeedHash>(
        &self,
        source: &Store,
        range: RangeCopy,
        read_back: ReadBack,
        sent: H,
        staged: H,
    ) -> Option<Result<RangeHashes<H>, StoreError>> {
        if read_back == ReadBack::Device {
            return None;
        }
        let from = source.bare_local()?;
        let to = self.staged_file()?;
        let copy = tokio::task::spawn_blocking(move || {
            let staged = (read_back == ReadBack::Cache).then_some(staged);
            copy_range(&from, &to, &range, sent, staged)
        });
        Some(match copy.await {
            Ok(result) => result,
            Err(error) => Err(StoreError::from_join("copy range", error)),
        })
    }
}

/// The blocking half of [`Upload::copy_range_from`].
fn copy_range<H: FeedHash>(
    source: &LocalStore,
    to: &StagedFile,
    range: &RangeCopy,
    mut sent: H,
    mut staged: Option<H>,
) -> Result<RangeHashes<H>, StoreError> {
    let path = source.path_of(&range.path)?;
    let from_shown = path.display().to_string();
    let from = open_for_read(&path).map_err(|e| StoreError::from_io(&from_shown, e))?;
    let guard = to.file.read().unwrap_or_else(|p| p.into_inner());
    let file = guard.as_ref().ok_or_else(|| finished(&to.shown))?;
    let span = usize::try_from(range.span.clamp(1, range.len.max(1)))
        .map_err(|_| crate::local::too_large(&from_shown, range.span))?;
    let (mut data, mut back) = (Vec::with_capacity(span), Vec::new());
    let mut done = 0;
    while done < range.len {
        let at = range.offset + done;
        let n = span.min((range.len - done) as usize);
        read_exact_into(&from, &from_shown, at, n, &mut data)?;
        sent.feed(&data);
        let written = file
            .write_all_at(&data, at)
            .map_err(|e| StoreError::from_io(&to.shown, e));
        // Counted when done (even a failed write may have changed bytes), as every write
        // of the upload is, so a flush that began before it never passes for one after it.
        to.changes.fetch_add(1, Ordering::SeqCst);
        written?;
        start_writeback(file, at, n);
        if let Some(staged) = staged.as_mut() {
            read_exact_into(file, &to.shown, at, n, &mut back)?;
            staged.feed(&back);
        }
        done += n as u64;
    }
    Ok(RangeHashes { sent, staged })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultEffect, FaultOp, FaultPlan, FaultRule};
    use crate::StoreUri;
    use std::fs;
    use std::path::Path;

    async fn open(path: &Path) -> Store {
        let uri = StoreUri::parse(path.to_str().unwrap()).unwrap();
        let store = Store::open(&uri, &crate::S3Options::default())
            .await
            .unwrap();
        store.ensure_root().await.unwrap();
        store
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 % 251) as u8).collect()
    }

    fn range(path: &str, offset: u64, len: u64, span: u64) -> RangeCopy {
        RangeCopy {
            path: path.into(),
            offset,
            len,
            span,
        }
    }

    #[tokio::test]
    async fn a_range_lands_at_its_offsets_and_both_hashes_are_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        fs::create_dir_all(src.join("d")).unwrap();
        let bytes = data(100_003);
        fs::write(src.join("d/f"), &bytes).unwrap();
        let (from, to) = (open(&src).await, open(&dst).await);
        let upload = to
            .begin_upload("d/f", bytes.len() as u64, false)
            .await
            .unwrap();
        // Two ranges, the second first, in spans that do not divide them.
        for (offset, len) in [(60_000, 40_003), (0, 60_000)] {
            let hashes = upload
                .copy_range_from(
                    &from,
                    range("d/f", offset, len, 7_000),
                    ReadBack::Cache,
                    blake3::Hasher::new(),
                    blake3::Hasher::new(),
                )
                .await
                .expect("bare local stores take this path")
                .unwrap();
            let part = &bytes[offset as usize..(offset + len) as usize];
            assert_eq!(hashes.sent.finalize(), blake3::hash(part));
            assert_eq!(hashes.staged.unwrap().finalize(), blake3::hash(part));
        }
        assert!(
            !dst.join("d/f").exists(),
            "nothing visible before publishing"
        );
        upload.publish(None, None).await.unwrap();
        assert!(fs::read(dst.join("d/f")).unwrap() == bytes);

        // `sent` reads nothing back.
        let upload = to.begin_upload("g", 10, false).await.unwrap();
        let hashes = upload
            .copy_range_from(
                &from,
                range("d/f", 0, 10, 4),
                ReadBack::Nothing,
                blake3::Hasher::new(),
                blake3::Hasher::new(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hashes.sent.finalize(), blake3::hash(&bytes[..10]));
        assert!(hashes.staged.is_none());
    }

    #[tokio::test]
    async fn a_short_or_missing_source_and_a_finished_upload_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("short"), b"0123456789").unwrap();
        let (from, to) = (open(&src).await, open(&dst).await);
        let upload = to.begin_upload("short", 20, false).await.unwrap();
        let copy = |path: &'static str| {
            upload.copy_range_from(
                &from,
                range(path, 0, 20, 8),
                ReadBack::Cache,
                blake3::Hasher::new(),
                blake3::Hasher::new(),
            )
        };
        let error = copy("short").await.unwrap().unwrap_err().to_string();
        assert!(
            error.contains("short") && error.contains("shrank"),
            "{error}"
        );
        let error = copy("missing").await.unwrap().unwrap_err().to_string();
        assert!(error.contains("missing"), "{error}");

        let done = to.begin_upload("done", 4, false).await.unwrap();
        let file = done.staged_file().unwrap();
        done.abort().await.unwrap();
        let error = copy_range(
            &from.bare_local().unwrap(),
            &file,
            &range("short", 0, 4, 4),
            blake3::Hasher::new(),
            None,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("already published or aborted"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn layered_stores_and_device_reads_take_the_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("x"), b"abcd").unwrap();
        let (from, to) = (open(&src).await, open(&dst).await);
        let rule = || FaultRule::new(FaultOp::Put, FaultEffect::Error { retryable: false });
        let faulty = to
            .clone()
            .with_faults(FaultPlan::new().rule(rule().unwrap()));
        let copy = |upload: Upload, from: Store, read_back| async move {
            upload
                .copy_range_from(
                    &from,
                    range("x", 0, 4, 4),
                    read_back,
                    blake3::Hasher::new(),
                    blake3::Hasher::new(),
                )
                .await
                .is_none()
        };
        let layered_dst = faulty.begin_upload("x", 4, false).await.unwrap();
        assert!(copy(layered_dst, from.clone(), ReadBack::Cache).await);
        let plain = to.begin_upload("x", 4, false).await.unwrap();
        let layered_src = from
            .clone()
            .with_faults(FaultPlan::new().rule(rule().unwrap()));
        assert!(copy(plain, layered_src, ReadBack::Cache).await);
        let plain = to.begin_upload("x", 4, false).await.unwrap();
        assert!(copy(plain, from, ReadBack::Device).await);
    }
}
