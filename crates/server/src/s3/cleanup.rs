//! The front door's cleanup, at start-up and then periodically on the service's background
//! runtime ([`crate::background`], one low-priority worker): multipart uploads untouched for
//! `[s3] multipart_expiry` are removed with their staged parts, and the ETag and metadata
//! rows ([`super::meta`]) of objects that are gone or whose content changed (deleted or
//! overwritten through `/v1/objects`) are deleted. Both are counted in `/metrics`
//! (`strata_s3_uploads_expired_total`, `strata_s3_meta_stale_removed_total`).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::multipart::STAGING_DIR;
use super::uploads::staged_uploads;
use crate::state::AppState;

/// Rows read per step of the walk over the metadata table.
const META_BATCH: u32 = 500;

/// The longest time between two sweeps.
const MAX_INTERVAL: Duration = Duration::from_secs(600);

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Upload directories removed.
    pub uploads: u64,
    /// Metadata rows removed.
    pub rows: u64,
}

/// How often the sweep runs for `expiry`: a quarter of it (so an upload outlives its expiry
/// by at most a quarter more), from a second to ten minutes.
pub fn sweep_interval(expiry: Duration) -> Duration {
    (expiry / 4).clamp(Duration::from_secs(1), MAX_INTERVAL)
}

/// Removes the upload directories under `root` untouched for `expiry` at `now`; how many.
/// A directory that cannot be read or removed is logged and left for the next sweep.
pub async fn expire_uploads(root: &Path, expiry: Duration, now: SystemTime) -> u64 {
    let uploads = match staged_uploads(root).await {
        Ok(uploads) => uploads,
        Err(err) => {
            tracing::warn!(%err, dir = %root.display(), "cannot read the staged S3 uploads");
            return 0;
        }
    };
    let mut removed = 0;
    for upload in uploads {
        let idle = now.duration_since(upload.touched).unwrap_or_default();
        if idle < expiry {
            continue;
        }
        match tokio::fs::remove_dir_all(&upload.dir).await {
            Ok(()) => {
                removed += 1;
                tracing::info!(
                    upload = upload.id,
                    key = upload.key.as_deref(),
                    idle_s = idle.as_secs(),
                    "abandoned S3 multipart upload removed"
                );
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(upload = upload.id, %err,
                "cannot remove an abandoned S3 multipart upload; the next sweep retries"),
        }
    }
    removed
}

/// Deletes the metadata rows that describe no current object; how many. Each row is
/// deleted only if it still holds the hash seen, so a write racing the sweep keeps its row.
pub async fn remove_stale_meta(state: &AppState) -> u64 {
    let catalog = state.engine.s3_meta();
    let mut after: Option<String> = None;
    let mut removed = 0;
    loop {
        let rows = match catalog.s3_meta_hashes(after.as_deref(), META_BATCH).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(%err, "cannot read the S3 metadata; stale rows are left for the next sweep");
                return removed;
            }
        };
        let Some((last, _)) = rows.last() else {
            return removed;
        };
        after = Some(last.clone());
        for (key, hash) in &rows {
            let current = state
                .index
                .get(key)
                .is_some_and(|entry| entry.hash == *hash);
            if current {
                continue;
            }
            match catalog.delete_s3_meta(key, Some(hash)).await {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(err) => tracing::warn!(%key, %err, "cannot delete stale S3 metadata"),
            }
        }
    }
}

/// One sweep of both, counted in the metrics.
pub async fn sweep(state: &AppState) -> Swept {
    let root = state.config.server.data_dir.join(STAGING_DIR);
    let expiry = state.config.s3.multipart_expiry;
    let uploads = expire_uploads(&root, expiry, SystemTime::now()).await;
    let metrics = &state.metrics;
    metrics
        .s3_uploads_expired
        .fetch_add(uploads, Ordering::Relaxed);
    let rows = remove_stale_meta(state).await;
    metrics
        .s3_meta_stale_removed
        .fetch_add(rows, Ordering::Relaxed);
    Swept { uploads, rows }
}

/// Sweeps every [`sweep_interval`] on the background runtime until `shutdown`.
pub async fn cleanup_loop(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(sweep_interval(state.config.s3.multipart_expiry));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is now, and start-up swept already.
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        let work = {
            let state = Arc::clone(&state);
            async move { sweep(&state).await }
        };
        if state.background.run(work).await.is_none() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_run_a_quarter_of_the_expiry_apart_within_bounds() {
        assert_eq!(
            sweep_interval(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(40)),
            Duration::from_secs(10)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(7 * 86_400)),
            MAX_INTERVAL
        );
    }

    #[tokio::test]
    async fn only_uploads_idle_for_the_expiry_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("a".repeat(32));
        let fresh = root.path().join("b".repeat(32));
        let other = root.path().join("not-an-upload");
        for dir in [&old, &fresh, &other] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("target"), "k").unwrap();
        }
        let hour = Duration::from_secs(3600);
        let past = SystemTime::now() - 2 * hour;
        for path in [
            old.join("target"),
            old.clone(),
            other.join("target"),
            other.clone(),
        ] {
            std::fs::File::open(&path)
                .unwrap()
                .set_modified(past)
                .unwrap();
        }
        assert_eq!(
            expire_uploads(root.path(), hour, SystemTime::now()).await,
            1
        );
        assert!(!old.exists() && fresh.exists() && other.exists());
        // A part that just arrived keeps an old upload alive.
        for path in [fresh.join("target"), fresh.clone()] {
            std::fs::File::open(&path)
                .unwrap()
                .set_modified(past)
                .unwrap();
        }
        std::fs::write(fresh.join("part-00001"), "x").unwrap();
        std::fs::File::open(&fresh)
            .unwrap()
            .set_modified(past)
            .unwrap();
        assert_eq!(
            expire_uploads(root.path(), hour, SystemTime::now()).await,
            0
        );
        // A staging directory that cannot be read is no failure, only a warning.
        let missing = root.path().join("gone");
        assert_eq!(expire_uploads(&missing, hour, SystemTime::now()).await, 0);
    }
}
