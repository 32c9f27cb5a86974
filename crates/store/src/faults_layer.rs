//! Fault injection as a store layer: [`FaultStore`] and its uploads consult a store's
//! [`Faults`] before every call and apply what fired (latency, errors, lost calls, flipped
//! or truncated data) around the layer below, whatever the backend. The rules themselves,
//! their syntax and their counters live in [`crate::faults`].

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::access::{Access, Begun, GroupPublish, UploadAccess};
use crate::error::StoreError;
use crate::faults::{inject, lost, mangled, FaultOp, Faults, Injected};
use crate::{Entry, ListWarning};

/// A store that misbehaves as its [`Faults`] say.
pub(crate) struct FaultStore {
    inner: Arc<dyn Access>,
    faults: Arc<Faults>,
}

impl FaultStore {
    /// `inner` under `faults`.
    pub(crate) fn new(inner: Arc<dyn Access>, faults: Arc<Faults>) -> FaultStore {
        FaultStore { inner, faults }
    }

    /// Applies the rules for an `op` call of `rel` at `offset` (see [`inject`]).
    async fn inject(
        &self,
        op: FaultOp,
        rel: &str,
        offset: u64,
    ) -> Result<Option<Injected>, StoreError> {
        inject(Some(&self.faults), op, rel, offset, || {
            self.inner.shown_path(rel)
        })
        .await
    }
}

#[async_trait]
impl Access for FaultStore {
    fn shown_path(&self, rel: &str) -> String {
        self.inner.shown_path(rel)
    }

    async fn list(
        &self,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<Entry>, StoreError> {
        self.inject(FaultOp::List, "", 0).await?;
        self.inner.list(warn).await
    }

    async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        self.inject(FaultOp::Stat, rel, 0).await?;
        self.inner.stat(rel).await
    }

    async fn read_range(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let injected = self.inject(FaultOp::Read, rel, offset).await?;
        let data = self.inner.read_range(rel, offset, len).await?;
        Ok(mangled(&injected, data))
    }

    async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        let injected = self.inject(FaultOp::Read, rel, 0).await?;
        let data = self.inner.read_all(rel).await?;
        Ok(mangled(&injected, data))
    }

    async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        let injected = self.inject(FaultOp::Put, rel, 0).await?;
        if lost(&injected) {
            // A lost PUT: success reported, no object left under the name.
            return self.inner.delete(rel).await;
        }
        self.inner.write_atomic(rel, mangled(&injected, data)).await
    }

    async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let injected = self.inject(FaultOp::Delete, rel, 0).await?;
        if lost(&injected) {
            return Ok(());
        }
        self.inner.delete(rel).await
    }

    async fn begin_upload(&self, rel: &str, size: u64, resume: bool) -> Result<Begun, StoreError> {
        let begun = self.inner.begin_upload(rel, size, resume).await?;
        let (faults, rel) = (Arc::clone(&self.faults), rel.to_string());
        let shown = begun.info.shown.clone();
        Ok(begun.wrap(|inner| {
            Box::new(FaultUpload {
                inner,
                faults,
                rel,
                shown,
            })
        }))
    }
}

/// An upload that misbehaves as its store's [`Faults`] say.
struct FaultUpload {
    inner: Box<dyn UploadAccess>,
    faults: Arc<Faults>,
    /// The upload's path, as rules match it.
    rel: String,
    /// Its final path as shown, for the messages of injected errors.
    shown: String,
}

impl FaultUpload {
    /// Applies the rules for an `op` call of this upload at `offset`.
    async fn inject(&self, op: FaultOp, offset: u64) -> Result<Option<Injected>, StoreError> {
        inject(Some(&self.faults), op, &self.rel, offset, || {
            self.shown.clone()
        })
        .await
    }
}

#[async_trait]
impl UploadAccess for FaultUpload {
    async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let injected = self.inject(FaultOp::Write, offset).await?;
        if lost(&injected) {
            // A lost write: success reported, the bytes stay whatever was there.
            return Ok(());
        }
        self.inner.write_at(offset, mangled(&injected, data)).await
    }

    async fn read_back(&self, offset: u64, len: u64, direct: bool) -> Result<Bytes, StoreError> {
        let injected = self.inject(FaultOp::ReadBack, offset).await?;
        let data = self.inner.read_back(offset, len, direct).await?;
        Ok(mangled(&injected, data))
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
        if lost(&self.inject(FaultOp::Publish, 0).await?) {
            return self.inner.lose_publish().await;
        }
        self.inner.publish(mtime, mode).await
    }

    async fn publish_in_group(self: Box<Self>) -> GroupPublish {
        match self.inject(FaultOp::Publish, 0).await {
            Err(error) => GroupPublish::Done(Err(error)),
            Ok(injected) if lost(&injected) => GroupPublish::Done(self.inner.lose_publish().await),
            Ok(_) => self.inner.publish_in_group().await,
        }
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.abort().await
    }

    async fn lose_publish(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.lose_publish().await
    }
}
