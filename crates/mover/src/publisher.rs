//! Group commit of small files.
//!
//! Publishing one file durably costs two `fsync`s (its data, then its directory entry);
//! for a tree of tiny files that is most of the copy time. Finished single-chunk files are
//! therefore handed to this task, which publishes whatever has queued up while the previous
//! group was committing in one [`Upload::publish_group`] call: one file-system flush for
//! the whole group, the same guarantee per file. Groups form by themselves: the slower the
//! flush, the more files wait, the bigger the next group.

use strata_catalog::{FileRecord, FileState, FileUpdate};
use strata_codec::hash::Hash32;
use strata_store::{PendingPublish, Upload};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::migrate::{record_done, Outcome, Run};

/// Files waiting at most (each holds an open staging file).
pub const QUEUE: usize = 256;

/// One finished, verified file waiting to be published.
pub struct Publishing {
    /// The staged upload.
    pub upload: Upload,
    /// The plan's record of the file.
    pub record: FileRecord,
    /// Its verified hash.
    pub hash: Hash32,
    /// Modification time to keep.
    pub mtime: Option<std::time::SystemTime>,
}

/// The group-commit task.
pub struct Publisher {
    sender: mpsc::Sender<Publishing>,
    task: JoinHandle<Vec<Outcome>>,
}

impl Publisher {
    /// Start publishing for `run` (which must not itself hold a publisher sender).
    pub fn start(run: Run) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(publish_groups(run, receiver));
        Self { sender, task }
    }

    /// A sender for the workers.
    pub fn sender(&self) -> mpsc::Sender<Publishing> {
        self.sender.clone()
    }

    /// Publish what is queued and return the outcome of every file.
    pub async fn finish(self) -> Vec<Outcome> {
        drop(self.sender);
        self.task.await.unwrap_or_default()
    }
}

async fn publish_groups(run: Run, mut receiver: mpsc::Receiver<Publishing>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut group = vec![first];
        while group.len() < QUEUE {
            match receiver.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (pending, files): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|p| {
                let pending = PendingPublish {
                    upload: p.upload,
                    mtime: p.mtime,
                    mode: p.record.planned.mode,
                };
                (pending, (p.record, p.hash))
            })
            .unzip();
        let results = Upload::publish_group(pending).await;
        for ((record, hash), result) in files.into_iter().zip(results) {
            outcomes.push(match result {
                Ok(()) => record_done(&run, &record, hash).await,
                Err(error) => run.store_outcome(&record, error),
            });
        }
    }
    outcomes
}

/// The catalog update for a published file.
pub fn done_update(record: &FileRecord, hash: Hash32) -> FileUpdate {
    FileUpdate {
        index: record.planned.index,
        state: FileState::Done,
        hash: Some(hash),
        error: None,
    }
}
