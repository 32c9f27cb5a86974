//! Store metrics as a layer: calls, bytes and errors per operation of what reaches a
//! store's backend ([`StoreMetrics`], set with
//! [`Store::with_metrics`](crate::Store::with_metrics)). The innermost of Strata's layers
//! (see [`crate::layers`]): it counts the backend's own traffic and failures, after the
//! throttle's waits and without the calls fault injection lost or failed on purpose.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::access::{Access, Begun, GroupPublish, UploadAccess};
use crate::error::StoreError;
use crate::{Entry, ListWarning};

/// A store operation, as [`StoreMetrics`] counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreOp {
    /// `Store::list`.
    List,
    /// `Store::stat`.
    Stat,
    /// `Store::read_range` and `Store::read_all`.
    Read,
    /// `Store::write_atomic`.
    Put,
    /// `Store::delete`.
    Delete,
    /// `Upload::write_at`.
    Write,
    /// `Upload::read_back` and `Upload::read_back_from_device`.
    ReadBack,
    /// `Upload::publish` and `Upload::publish_group` (per upload).
    Publish,
}

impl StoreOp {
    /// Every operation, in a fixed order.
    pub const ALL: [StoreOp; 8] = [
        StoreOp::List,
        StoreOp::Stat,
        StoreOp::Read,
        StoreOp::Put,
        StoreOp::Delete,
        StoreOp::Write,
        StoreOp::ReadBack,
        StoreOp::Publish,
    ];

    /// A short lower-case name (`read`, `readback`, ...), for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            StoreOp::List => "list",
            StoreOp::Stat => "stat",
            StoreOp::Read => "read",
            StoreOp::Put => "put",
            StoreOp::Delete => "delete",
            StoreOp::Write => "write",
            StoreOp::ReadBack => "readback",
            StoreOp::Publish => "publish",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The counts of one operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpStats {
    /// Calls that reached the backend.
    pub calls: u64,
    /// Data bytes of the calls that succeeded (read, written, read back).
    pub bytes: u64,
    /// Calls that failed.
    pub errors: u64,
}

/// Calls, bytes and errors per operation of one store's backend. Share one between a
/// store's clones (they count together); reading is lock-free.
///
/// Local uploads published in a group ([`Upload::publish_group`](crate::Upload::publish_group))
/// count as publish calls; a failure of the group's shared commit is not counted here (it
/// comes back in that call's results).
#[derive(Debug, Default)]
pub struct StoreMetrics {
    ops: [[AtomicU64; 3]; 8],
}

impl StoreMetrics {
    /// Counters at zero.
    pub fn new() -> StoreMetrics {
        StoreMetrics::default()
    }

    /// The counts of `op` so far.
    pub fn get(&self, op: StoreOp) -> OpStats {
        let [calls, bytes, errors] = &self.ops[op.index()];
        OpStats {
            calls: calls.load(Ordering::Relaxed),
            bytes: bytes.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
        }
    }

    /// Counts one `op` call that moved `bytes` when it succeeded.
    fn record<T>(&self, op: StoreOp, result: &Result<T, StoreError>, bytes: u64) {
        let [calls, moved, errors] = &self.ops[op.index()];
        calls.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(_) => moved.fetch_add(bytes, Ordering::Relaxed),
            Err(_) => errors.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Counts a call that returned data: its length is the bytes moved.
    fn record_data(&self, op: StoreOp, result: &Result<Bytes, StoreError>) {
        let len = result.as_ref().map_or(0, |data| data.len() as u64);
        self.record(op, result, len);
    }
}

/// A store whose backend's calls are counted in a [`StoreMetrics`].
pub(crate) struct MetricsStore {
    inner: Arc<dyn Access>,
    metrics: Arc<StoreMetrics>,
}

impl MetricsStore {
    /// `inner`, counted in `metrics`.
    pub(crate) fn new(inner: Arc<dyn Access>, metrics: Arc<StoreMetrics>) -> MetricsStore {
        MetricsStore { inner, metrics }
    }
}

#[async_trait]
impl Access for MetricsStore {
    fn shown_path(&self, rel: &str) -> String {
        self.inner.shown_path(rel)
    }

    async fn list(
        &self,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<Entry>, StoreError> {
        let result = self.inner.list(warn).await;
        self.metrics.record(StoreOp::List, &result, 0);
        result
    }

    async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        let result = self.inner.stat(rel).await;
        self.metrics.record(StoreOp::Stat, &result, 0);
        result
    }

    async fn read_range(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let result = self.inner.read_range(rel, offset, len).await;
        self.metrics.record_data(StoreOp::Read, &result);
        result
    }

    async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        let result = self.inner.read_all(rel).await;
        self.metrics.record_data(StoreOp::Read, &result);
        result
    }

    async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        let len = data.len() as u64;
        let result = self.inner.write_atomic(rel, data).await;
        self.metrics.record(StoreOp::Put, &result, len);
        result
    }

    async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let result = self.inner.delete(rel).await;
        self.metrics.record(StoreOp::Delete, &result, 0);
        result
    }

    async fn begin_upload(&self, rel: &str, size: u64, resume: bool) -> Result<Begun, StoreError> {
        let begun = self.inner.begin_upload(rel, size, resume).await?;
        let metrics = Arc::clone(&self.metrics);
        Ok(begun.wrap(|inner| Box::new(MetricsUpload { inner, metrics })))
    }
}

/// An upload whose backend calls are counted in its store's [`StoreMetrics`].
struct MetricsUpload {
    inner: Box<dyn UploadAccess>,
    metrics: Arc<StoreMetrics>,
}

#[async_trait]
impl UploadAccess for MetricsUpload {
    async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let len = data.len() as u64;
        let result = self.inner.write_at(offset, data).await;
        self.metrics.record(StoreOp::Write, &result, len);
        result
    }

    async fn read_back(&self, offset: u64, len: u64, direct: bool) -> Result<Bytes, StoreError> {
        let result = self.inner.read_back(offset, len, direct).await;
        self.metrics.record_data(StoreOp::ReadBack, &result);
        result
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync().await
    }

    async fn flush_data(&self) -> Result<(), StoreError> {
        self.inner.flush_data().await
    }

    async fn set_len(&mut self, len: u64) -> Result<(), StoreError> {
        self.inner.set_len(len).await
    }

    async fn publish(
        self: Box<Self>,
        mtime: Option<SystemTime>,
        mode: Option<u32>,
    ) -> Result<(), StoreError> {
        let result = self.inner.publish(mtime, mode).await;
        self.metrics.record(StoreOp::Publish, &result, 0);
        result
    }

    async fn publish_in_group(self: Box<Self>) -> GroupPublish {
        let outcome = self.inner.publish_in_group().await;
        match &outcome {
            GroupPublish::Done(result) => self.metrics.record(StoreOp::Publish, result, 0),
            GroupPublish::Local(_) => {
                let handed_over: Result<(), StoreError> = Ok(());
                self.metrics.record(StoreOp::Publish, &handed_over, 0)
            }
        }
        outcome
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.abort().await
    }

    async fn lose_publish(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.lose_publish().await
    }
}
