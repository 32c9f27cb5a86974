//! Fault injection as a store layer: [`FaultStore`] and its uploads consult a store's
//! run-time [`Chaos`] rules, then its fixed [`Faults`] plan, before every call and apply
//! what fired (latency, errors, lost calls, flipped or truncated data) around the layer
//! below, whatever the backend. The rules themselves, their syntax and their counters live
//! in [`crate::chaos`] and [`crate::faults`].

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::access::{Access, Begun, GroupPublish, UploadAccess};
use crate::chaos::{corrupted, Chaos};
use crate::error::StoreError;
use crate::faults::{inject, lost, mangled, FaultOp, Faults, Injected};
use crate::{Entry, ListWarning};

/// What a call is to suffer: the plan's effects, and whether chaos corrupts its data.
pub(crate) struct Suffered {
    plan: Option<Injected>,
    corrupt: bool,
}

impl Suffered {
    /// `data` as the call is to see it.
    fn mangle(&self, data: Bytes) -> Bytes {
        corrupted(self.corrupt, mangled(&self.plan, data))
    }

    /// Whether the call is lost.
    fn lost(&self) -> bool {
        lost(&self.plan)
    }
}

/// The fault sources of a store: run-time chaos and a fixed plan (either may be absent).
#[derive(Clone)]
pub(crate) struct FaultSources {
    pub(crate) chaos: Option<Arc<Chaos>>,
    pub(crate) faults: Option<Arc<Faults>>,
}

impl FaultSources {
    /// Applies chaos, then the plan, to an `op` call of `rel` at `offset` (see [`inject`]).
    async fn inject(
        &self,
        op: FaultOp,
        rel: &str,
        offset: u64,
        shown: impl Fn() -> String,
    ) -> Result<Suffered, StoreError> {
        let corrupt = match &self.chaos {
            Some(chaos) => chaos.inject(op, &shown).await?,
            None => false,
        };
        let plan = inject(self.faults.as_deref(), op, rel, offset, shown).await?;
        Ok(Suffered { plan, corrupt })
    }
}

/// A store that misbehaves as its [`Chaos`] and [`Faults`] say.
pub(crate) struct FaultStore {
    inner: Arc<dyn Access>,
    sources: FaultSources,
}

impl FaultStore {
    /// `inner` under `sources`.
    pub(crate) fn new(inner: Arc<dyn Access>, sources: FaultSources) -> FaultStore {
        FaultStore { inner, sources }
    }

    /// Applies the rules for an `op` call of `rel` at `offset`.
    async fn inject(&self, op: FaultOp, rel: &str, offset: u64) -> Result<Suffered, StoreError> {
        self.sources
            .inject(op, rel, offset, || self.inner.shown_path(rel))
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
        Ok(injected.mangle(data))
    }

    async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        let injected = self.inject(FaultOp::Read, rel, 0).await?;
        let data = self.inner.read_all(rel).await?;
        Ok(injected.mangle(data))
    }

    async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        let injected = self.inject(FaultOp::Put, rel, 0).await?;
        if injected.lost() {
            // A lost PUT: success reported, no object left under the name.
            return self.inner.delete(rel).await;
        }
        self.inner.write_atomic(rel, injected.mangle(data)).await
    }

    async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let injected = self.inject(FaultOp::Delete, rel, 0).await?;
        if injected.lost() {
            return Ok(());
        }
        self.inner.delete(rel).await
    }

    async fn begin_upload(&self, rel: &str, size: u64, resume: bool) -> Result<Begun, StoreError> {
        let begun = self.inner.begin_upload(rel, size, resume).await?;
        let (sources, rel) = (self.sources.clone(), rel.to_string());
        let shown = begun.info.shown.clone();
        Ok(begun.wrap(|inner| {
            Box::new(FaultUpload {
                inner,
                sources,
                rel,
                shown,
            })
        }))
    }
}

/// An upload that misbehaves as its store's [`Chaos`] and [`Faults`] say.
struct FaultUpload {
    inner: Box<dyn UploadAccess>,
    sources: FaultSources,
    /// The upload's path, as rules match it.
    rel: String,
    /// Its final path as shown, for the messages of injected errors.
    shown: String,
}

impl FaultUpload {
    /// Applies the rules for an `op` call of this upload at `offset`.
    async fn inject(&self, op: FaultOp, offset: u64) -> Result<Suffered, StoreError> {
        self.sources
            .inject(op, &self.rel, offset, || self.shown.clone())
            .await
    }
}

#[async_trait]
impl UploadAccess for FaultUpload {
    async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let injected = self.inject(FaultOp::Write, offset).await?;
        if injected.lost() {
            // A lost write: success reported, the bytes stay whatever was there.
            return Ok(());
        }
        self.inner.write_at(offset, injected.mangle(data)).await
    }

    async fn read_back(&self, offset: u64, len: u64, direct: bool) -> Result<Bytes, StoreError> {
        let injected = self.inject(FaultOp::ReadBack, offset).await?;
        let data = self.inner.read_back(offset, len, direct).await?;
        Ok(injected.mangle(data))
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
        if self.inject(FaultOp::Publish, 0).await?.lost() {
            return self.inner.lose_publish().await;
        }
        self.inner.publish(mtime, mode).await
    }

    async fn publish_in_group(self: Box<Self>) -> GroupPublish {
        match self.inject(FaultOp::Publish, 0).await {
            Err(error) => GroupPublish::Done(Err(error)),
            Ok(injected) if injected.lost() => GroupPublish::Done(self.inner.lose_publish().await),
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
