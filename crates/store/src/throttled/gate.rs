//! The throttle's gate as a store layer: [`GatedStore`] and its uploads admit every data
//! transfer (`read_range`, `read_all`, `write_atomic`, `Upload::write_at`) before it
//! reaches the layer below, outside every OpenDAL timeout (see [`crate::throttled`]).

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use strata_throttle::{Direction, Outcome, Permit, Priority, Throttle};

use super::outcome_of_store_error;
use crate::access::{Access, Begun, GroupPublish, UploadAccess};
use crate::error::StoreError;
use crate::{Entry, ListWarning};

// ---------------------------------------------------------------------------------------
// Admission

/// Admission of one store's data calls (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    throttle: Throttle,
    class: Priority,
    /// True when the gate reports each call as a sample (no [`ThrottleLayer`](crate::ThrottleLayer) does).
    samples: bool,
}

impl Gate {
    pub(crate) fn new(throttle: Throttle, class: Priority, samples: bool) -> Gate {
        Gate {
            throttle,
            class,
            samples,
        }
    }

    /// Runs `call`, which moves `bytes` in `direction`, once the throttle admits it.
    pub(crate) async fn admit<T>(
        &self,
        direction: Direction,
        bytes: u64,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if !self.samples {
            // The layer takes the slots of the HTTP requests this call makes.
            self.throttle.pace(direction, self.class, bytes).await;
            return call.await;
        }
        let permit = self.throttle.acquire(direction, self.class, bytes).await;
        let result = call.await;
        self.report(permit, result.as_ref().err());
        result
    }

    /// Like [`Gate::admit`] for a read whose size is only known when it is done
    /// (`read_all`): admitted as an empty request, its bytes charged as soon as they are
    /// known, so the average rate still holds.
    pub(crate) async fn admit_read_unsized(
        &self,
        call: impl Future<Output = Result<Bytes, StoreError>>,
    ) -> Result<Bytes, StoreError> {
        let direction = Direction::Read;
        let permit = match self.samples {
            true => Some(self.throttle.acquire_slot(direction, self.class).await),
            false => None,
        };
        let result = call.await;
        if let Ok(data) = &result {
            let n = data.len() as u64;
            self.throttle.pace(direction, self.class, n).await;
            if let Some(mut permit) = permit {
                permit.add_bytes(n);
                self.report(permit, None);
            }
        } else if let Some(permit) = permit {
            self.report(permit, result.as_ref().err());
        }
        result
    }

    fn report(&self, permit: Permit, error: Option<&StoreError>) {
        if !self.samples {
            return; // the layer samples; dropping the permit frees its slot
        }
        match error {
            None => permit.finish(Outcome::Ok, None),
            Some(e) => {
                if let Some(outcome) = outcome_of_store_error(e) {
                    permit.finish(outcome, None);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The layer

/// A store whose data transfers wait for a [`Gate`]'s admission; everything else passes
/// through to the store below unchanged.
pub(crate) struct GatedStore {
    inner: Arc<dyn Access>,
    gate: Gate,
}

impl GatedStore {
    /// `inner` under `gate`.
    pub(crate) fn new(inner: Arc<dyn Access>, gate: Gate) -> GatedStore {
        GatedStore { inner, gate }
    }
}

#[async_trait]
impl Access for GatedStore {
    fn shown_path(&self, rel: &str) -> String {
        self.inner.shown_path(rel)
    }

    async fn list(
        &self,
        warn: &mut (dyn FnMut(ListWarning) + Send),
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.list(warn).await
    }

    async fn stat(&self, rel: &str) -> Result<Option<Entry>, StoreError> {
        self.inner.stat(rel).await
    }

    async fn read_range(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let call = self.inner.read_range(rel, offset, len);
        self.gate.admit(Direction::Read, len, call).await
    }

    async fn read_all(&self, rel: &str) -> Result<Bytes, StoreError> {
        self.gate.admit_read_unsized(self.inner.read_all(rel)).await
    }

    async fn write_atomic(&self, rel: &str, data: Bytes) -> Result<(), StoreError> {
        let len = data.len() as u64;
        let call = self.inner.write_atomic(rel, data);
        self.gate.admit(Direction::Write, len, call).await
    }

    async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        self.inner.delete(rel).await
    }

    async fn begin_upload(&self, rel: &str, size: u64, resume: bool) -> Result<Begun, StoreError> {
        let begun = self.inner.begin_upload(rel, size, resume).await?;
        let gate = self.gate.clone();
        Ok(begun.wrap(|inner| Box::new(GatedUpload { inner, gate })))
    }
}

/// An upload whose [`UploadAccess::write_at`] waits for the store's gate.
struct GatedUpload {
    inner: Box<dyn UploadAccess>,
    gate: Gate,
}

#[async_trait]
impl UploadAccess for GatedUpload {
    async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let len = data.len() as u64;
        // Admitted before the call, outside OpenDAL's timeouts (see `crate::throttled`).
        let call = self.inner.write_at(offset, data);
        self.gate.admit(Direction::Write, len, call).await
    }

    async fn read_back(&self, offset: u64, len: u64, direct: bool) -> Result<Bytes, StoreError> {
        self.inner.read_back(offset, len, direct).await
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
        self.inner.publish(mtime, mode).await
    }

    async fn publish_in_group(self: Box<Self>) -> GroupPublish {
        self.inner.publish_in_group().await
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.abort().await
    }

    async fn lose_publish(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.lose_publish().await
    }
}
