//! Batched, ordered recording of progress in the catalog.
//!
//! Workers finish chunks by the thousand per second; committing each one alone would make
//! the catalog the bottleneck. The recorder gathers verified chunks and finished files and
//! commits them together every [`FLUSH_EVERY`] or [`MAX_BATCH`] records. Losing the last
//! batch to a crash only means redoing those chunks on resume, never trusting unverified
//! bytes: a record is sent only after its bytes were verified.

use std::sync::Arc;
use std::time::Duration;

use strata_catalog::{Catalog, CatalogError, FileUpdate, JobId, PlannedFile, VerifiedChunk};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::MoverError;

/// Longest time a record waits before it is committed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Largest batch committed at once.
pub const MAX_BATCH: usize = 2048;

/// A fact to record.
pub enum Record {
    /// A chunk's staged bytes were verified.
    Chunk(VerifiedChunk),
    /// A file reached a final state.
    File(FileUpdate),
    /// A file's source changed: plan it again as it is now, forgetting its chunks. What
    /// was sent before is committed first, so no chunk of the old version outlives it.
    Replan(PlannedFile),
}

/// Handle to the background recorder task.
pub struct Recorder {
    sender: mpsc::Sender<Record>,
    task: JoinHandle<Result<(), CatalogError>>,
}

impl Recorder {
    /// Start recording for `job`.
    pub fn start(catalog: Arc<dyn Catalog>, job: JobId) -> Self {
        let (sender, receiver) = mpsc::channel(MAX_BATCH * 2);
        let task = tokio::spawn(run(catalog, job, receiver));
        Self { sender, task }
    }

    /// A sender for workers.
    pub fn sender(&self) -> mpsc::Sender<Record> {
        self.sender.clone()
    }

    /// Flush everything and stop; returns the first catalog error, if any.
    pub async fn finish(self) -> Result<(), MoverError> {
        drop(self.sender);
        match self.task.await {
            Ok(result) => Ok(result?),
            Err(join) => Err(MoverError::Internal(format!(
                "catalog recorder stopped: {join}"
            ))),
        }
    }
}

async fn run(
    catalog: Arc<dyn Catalog>,
    job: JobId,
    mut receiver: mpsc::Receiver<Record>,
) -> Result<(), CatalogError> {
    let mut chunks = Vec::new();
    let mut files = Vec::new();
    let mut open = true;
    while open {
        let deadline = tokio::time::sleep(FLUSH_EVERY);
        tokio::pin!(deadline);
        let mut replan = None;
        loop {
            tokio::select! {
                record = receiver.recv() => match record {
                    Some(Record::Chunk(c)) => chunks.push(c),
                    Some(Record::File(f)) => files.push(f),
                    Some(Record::Replan(p)) => { replan = Some(p); break; }
                    None => { open = false; break; }
                },
                _ = &mut deadline => break,
            }
            if chunks.len() + files.len() >= MAX_BATCH {
                break;
            }
        }
        // Chunks before files: a file marked done never lacks its chunk records.
        if !chunks.is_empty() {
            catalog.record_verified_chunks(job, &chunks).await?;
            chunks.clear();
        }
        if !files.is_empty() {
            catalog.update_files(job, &files).await?;
            files.clear();
        }
        if let Some(planned) = replan {
            catalog.replan_file(job, &planned).await?;
        }
    }
    Ok(())
}
