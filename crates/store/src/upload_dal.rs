//! OpenDAL uploads: one sequential `opendal::Writer` (an S3 multipart upload or an Azure
//! block blob's staged blocks, parts sent concurrently; a GCS resumable upload session);
//! chunks that arrive ahead of their turn wait in memory until the gap before them is
//! filled. Publishing completes the upload; the object appears then.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::access::{Begun, GroupPublish, UploadAccess, UploadInfo};
use crate::dal::{part_size_for, DalStore, S3_PART_CONCURRENCY};
use crate::error::StoreError;
use crate::upload_local::finished;
use crate::uri::StoreScheme;

pub(crate) struct DalUpload {
    store: Arc<DalStore>,
    rel: String,
    shown: String,
    size: u64,
    state: tokio::sync::Mutex<Sequencer>,
}

/// Feeds a sequential writer from chunks that may arrive out of order.
struct Sequencer {
    writer: Option<opendal::Writer>,
    /// Bytes `[0, next)` have been handed to the writer.
    next: u64,
    /// Chunks ahead of `next`, by offset.
    pending: BTreeMap<u64, Bytes>,
    /// Set after a failed write: the writer cannot be trusted any more.
    failed: Option<String>,
}

/// Starts an object-store upload of `rel` (never resumed: incomplete uploads are not kept).
pub(crate) async fn begin_dal(
    store: &Arc<DalStore>,
    rel: &str,
    size: u64,
) -> Result<DalUpload, StoreError> {
    let key = store.key(rel)?;
    let op = store.operator();
    let writer = match store.scheme() {
        StoreScheme::Gcs => gcs_resumable_writer(op, &key).await,
        scheme if scheme.is_remote() => {
            op.writer_with(&key)
                .chunk(part_size_for(size))
                .concurrent(S3_PART_CONCURRENCY)
                .await
        }
        _ => op.writer(&key).await,
    }
    .map_err(|e| store.error(rel, e))?;
    Ok(DalUpload {
        store: Arc::clone(store),
        rel: rel.to_string(),
        shown: store.shown_path(rel),
        size,
        state: tokio::sync::Mutex::new(Sequencer {
            writer: Some(writer),
            next: 0,
            pending: BTreeMap::new(),
            failed: None,
        }),
    })
}

/// A GCS upload through a resumable session (JSON API), which real GCS and its emulators
/// all implement, where OpenDAL's default GCS writer uses the XML API's multipart upload
/// that fake-gcs-server lacks. OpenDAL takes the resumable path for conditional writes, so
/// the write is made conditional on what is there now: no object yet
/// (`ifGenerationMatch=0`), or the generation seen (a replacement). Should another writer
/// change the object meanwhile, publishing fails instead of overwriting its bytes.
async fn gcs_resumable_writer(
    op: &opendal::Operator,
    key: &str,
) -> Result<opendal::Writer, opendal::Error> {
    let current = match op.stat(key).await {
        Ok(meta) => meta.version().map(str::to_string),
        Err(err) if err.kind() == opendal::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    match current {
        Some(generation) => op.writer_with(key).if_version_match(&generation).await,
        None => op.writer_with(key).if_not_exists(true).await,
    }
}

impl DalUpload {
    fn usable<'a>(&self, state: &'a mut Sequencer) -> Result<&'a mut opendal::Writer, StoreError> {
        if let Some(why) = &state.failed {
            return Err(StoreError::permanent(
                &self.shown,
                format!("an earlier write of this upload failed ({why}); start it again"),
            ));
        }
        state.writer.as_mut().ok_or_else(|| finished(&self.shown))
    }

    async fn write_at_inner(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        self.usable(&mut state)?;
        if offset.saturating_add(data.len() as u64) <= state.next {
            return Ok(()); // already written (a retried chunk)
        }
        // Keep the longer chunk if one is already waiting at this offset.
        let keep_old = state
            .pending
            .get(&offset)
            .is_some_and(|old| old.len() >= data.len());
        if !keep_old {
            state.pending.insert(offset, data);
        }
        self.drain(&mut state).await
    }

    /// Writes every waiting chunk that starts at or before `next`.
    async fn drain(&self, state: &mut Sequencer) -> Result<(), StoreError> {
        loop {
            let Some((&offset, _)) = state.pending.first_key_value() else {
                return Ok(());
            };
            if offset > state.next {
                return Ok(());
            }
            let Some(data) = state.pending.remove(&offset) else {
                return Ok(());
            };
            let skip = state.next - offset;
            if skip >= data.len() as u64 {
                continue;
            }
            let data = data.slice(usize::try_from(skip).unwrap_or(usize::MAX)..);
            let len = data.len() as u64;
            let writer = self.usable(state)?;
            if let Err(err) = writer.write(data).await {
                let mapped = self.store.error(&self.rel, err);
                state.failed = Some(mapped.to_string());
                return Err(mapped);
            }
            state.next += len;
        }
    }

    async fn publish_inner(self) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        let complete = state.next == self.size && state.pending.is_empty();
        let written = state.next;
        let outcome = match self.usable(&mut state) {
            Err(err) => Err(err),
            Ok(writer) if complete => {
                return writer
                    .close()
                    .await
                    .map(|_| ())
                    .map_err(|e| self.store.error(&self.rel, e));
            }
            Ok(_) => Err(StoreError::permanent(
                &self.shown,
                format!(
                    "upload is incomplete: {written} of {} bytes were written in sequence; \
                     nothing was published",
                    self.size
                ),
            )),
        };
        if let Some(mut writer) = state.writer.take() {
            let _ = writer.abort().await;
        }
        outcome
    }

    async fn abort_inner(self) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        match state.writer.take() {
            Some(mut writer) => writer
                .abort()
                .await
                .map_err(|e| self.store.error(&self.rel, e)),
            None => Ok(()),
        }
    }
}

impl DalUpload {
    /// This upload as begun, for the facade and the layers.
    pub(crate) fn begun(self) -> Begun {
        let info = UploadInfo {
            shown: self.shown.clone(),
            kind: "object",
            size: self.size,
            resumed: false,
            supports_read_back: false,
        };
        Begun {
            info,
            access: Box::new(self),
        }
    }
}

#[async_trait]
impl UploadAccess for DalUpload {
    async fn read_back(&self, _: u64, _: u64, _: bool) -> Result<Bytes, StoreError> {
        Err(cannot_read_back(&self.shown))
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        self.write_at_inner(offset, data).await
    }

    async fn set_len(&mut self, len: u64) -> Result<(), StoreError> {
        self.size = len;
        Ok(())
    }

    async fn publish(
        self: Box<Self>,
        _mtime: Option<SystemTime>,
        _mode: Option<u32>,
    ) -> Result<(), StoreError> {
        self.publish_inner().await
    }

    async fn publish_in_group(self: Box<Self>) -> GroupPublish {
        GroupPublish::Done(self.publish_inner().await)
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        self.abort_inner().await
    }

    async fn lose_publish(self: Box<Self>) -> Result<(), StoreError> {
        let (store, rel) = (Arc::clone(&self.store), self.rel.clone());
        self.abort_inner().await?;
        store.delete(&rel).await
    }
}

/// The error of a read-back on a store that cannot read an upload back.
fn cannot_read_back(shown: &str) -> StoreError {
    StoreError::permanent(
        shown,
        "this store cannot read an upload back before it is published; verify with \
         read_range after publish",
    )
}
