//! Group commit of object writes: concurrent PUTs made durable together, so small objects
//! are not bound by one `fsync` (and two SQLite commits) each.
//!
//! A PUT whose bytes are staged and checked hands a [`CommitItem`] to
//! [`GroupCommit::commit`] with its key's write lock held. Each write then goes through
//! three steps, and each step is a **stage** that batches the writes ready for it:
//!
//! 1. its write intent recorded in a catalog transaction, and **at the same time** its
//!    staging file flushed (`Upload::flush_data`, on a local tier; both must precede the
//!    rename, neither depends on the other);
//! 2. its bytes published: on local tiers `Upload::publish_group`, one call per directory,
//!    the calls side by side (each staging file renamed into place, each directory
//!    `fsync`ed once); on other tiers (S3, domains) each write's own publish, side by
//!    side;
//! 3. the write recorded (new version, placement, intent dropped) in a catalog transaction.
//!
//! There are two stages: the **catalog** stage (steps 1 and 3: one transaction records
//! every row and every intent queued at that moment, `commit_writes_and_begin`) and the
//! **publish** stage (step 2). Each runs one batch at a time, led by the first writer to
//! find it idle (a lone PUT never waits for a timer); writers that arrive meanwhile queue,
//! and the next leader takes them all. The two stages run side by side, so under load one
//! group's rows are committed while the next group is being published and a third's
//! intents are recorded in that same transaction: a group's steps overlap the next
//! groups' instead of following them.
//!
//! The guarantees of a lone write hold for each: its intent is durable before its bytes
//! can appear under the object's path (step 2 begins only once step 1 succeeded, flush and
//! intent both), and its row only once its bytes and directory entry are durable (step 3
//! begins only once step 2 succeeded); it is answered only after step 3. A crash at any
//! point leaves the old version or the new one, and recovery ([`crate::recovery`]) settles
//! each intent left (an intent whose bytes never moved is dropped, as its object's bytes
//! are still the old ones or absent). A failure of a shared step (a catalog transaction,
//! a directory flush) fails every write of its batch; a file whose own flush fails fails
//! alone.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use strata_catalog::{ObjectWrite, PlacedObject};
use strata_store::{PendingPublish, StoreError, Upload};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::mover::store_call;
use crate::state::{lock, AppState};
use crate::tier_store::TierUpload;

/// How a write's bytes are published.
pub enum Publish {
    /// Staged on a local tier (not flushed yet): published with the group's other files;
    /// the object's stored length.
    Group(Box<PendingPublish>, u64),
    /// Any other tier: published alone ([`TierUpload::finish`]).
    Alone(Box<TierUpload>),
}

impl Publish {
    /// Gives the write up: its staged bytes are removed, nothing is published.
    pub async fn abort(self, key: &str) {
        let aborted = match self {
            Publish::Group(pending, _) => pending.upload.abort().await,
            Publish::Alone(upload) => upload.abort().await,
        };
        if let Err(err) = aborted {
            tracing::warn!(%key, %err, "cannot remove the staged bytes of an abandoned write");
        }
    }

    /// Makes a staged local file's bytes durable (not its name); nothing for the others,
    /// whose publish makes them durable.
    async fn flush(&self) -> Result<(), StoreError> {
        match self {
            Publish::Group(pending, _) => pending.upload.flush_data().await,
            Publish::Alone(_) => Ok(()),
        }
    }
}

/// One write handed to the group commit.
pub struct CommitItem {
    /// Its bytes, staged.
    pub publish: Publish,
    /// What to record once they are durable (its `now_ms` is replaced by the batch's time).
    pub write: ObjectWrite,
}

/// What became of a write handed to the group commit.
#[derive(Debug)]
pub enum Outcome {
    /// Durable and recorded: the new record and the bytes the copy takes on its tier.
    Committed(PlacedObject, u64),
    /// Its intent could not be recorded: nothing was published, the staged bytes are gone.
    NotBegun(ApiError),
    /// Its intent was recorded, then flushing, publishing or recording failed: the bytes
    /// under its path may be old or new; the caller reconciles them (`reconcile_intent`).
    Failed(ApiError),
}

/// A job of the catalog stage: an intent to record, or a published write to record.
enum CatalogJob {
    Intent {
        key: String,
        tier: String,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    Record {
        write: ObjectWrite,
        reply: oneshot::Sender<Result<PlacedObject, ApiError>>,
    },
}

/// A job of the publish stage: a write's staged bytes, its key and tier (for grouping and
/// messages), and where its stored length (or why not) goes.
struct PublishJob {
    publish: Publish,
    key: String,
    tier: String,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// One stage: the jobs waiting for its next batch, and the lock its leader holds while it
/// runs one.
struct Stage<J> {
    waiting: Mutex<Vec<J>>,
    leader: tokio::sync::Mutex<()>,
}

impl<J> Default for Stage<J> {
    fn default() -> Self {
        Stage {
            waiting: Mutex::new(Vec::new()),
            leader: tokio::sync::Mutex::new(()),
        }
    }
}

impl<J> Stage<J> {
    /// Queues `job` and waits for its answer on `answer`; while none has come, leads a
    /// batch of everything queued (with `run`) whenever the stage is idle. `None` if the
    /// job was dropped unanswered.
    async fn pass<R, F, Fut>(&self, job: J, mut answer: oneshot::Receiver<R>, run: F) -> Option<R>
    where
        F: Fn(Vec<J>) -> Fut,
        Fut: Future<Output = ()>,
    {
        lock(&self.waiting).push(job);
        loop {
            tokio::select! {
                biased;
                outcome = &mut answer => return outcome.ok(),
                guard = self.leader.lock() => {
                    let batch = std::mem::take(&mut *lock(&self.waiting));
                    if !batch.is_empty() {
                        run(batch).await;
                    }
                    drop(guard);
                }
            }
        }
    }
}

/// The service's group commit of object writes (see the module documentation).
#[derive(Default)]
pub struct GroupCommit {
    catalog: Stage<CatalogJob>,
    publish: Stage<PublishJob>,
}

/// The answer of a job dropped unanswered.
fn lost(step: &str) -> ApiError {
    ApiError::internal(format!(
        "the group commit lost this write while {step}; send it again"
    ))
}

impl GroupCommit {
    /// Makes `item` durable and recorded, with whatever other writes are ready; call with
    /// the key's write lock held.
    pub async fn commit(&self, state: &AppState, item: CommitItem) -> Outcome {
        let CommitItem { publish, mut write } = item;
        let (flushed, begun) = tokio::join!(
            publish.flush(),
            self.begin(state, write.key.clone(), write.tier.clone())
        );
        if let Err(err) = begun {
            publish.abort(&write.key).await;
            return Outcome::NotBegun(err);
        }
        if let Err(err) = flushed {
            publish.abort(&write.key).await;
            return Outcome::Failed(ApiError::from(err));
        }
        let stored = match self.publish(state, publish, &write).await {
            Ok(stored) => stored,
            Err(err) => return Outcome::Failed(ApiError::from(err)),
        };
        write.now_ms = crate::state::now_ms();
        match self.record(state, write).await {
            Ok(placed) => Outcome::Committed(placed, stored),
            Err(err) => Outcome::Failed(err),
        }
    }

    /// Step 1's catalog part: the write's intent recorded, with the catalog stage's batch.
    async fn begin(&self, state: &AppState, key: String, tier: String) -> Result<(), ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = CatalogJob::Intent { key, tier, reply };
        let run = |batch| run_catalog(state, batch);
        self.catalog
            .pass(job, answer, run)
            .await
            .unwrap_or_else(|| Err(lost("recording its intent")))
    }

    /// Step 2: the write's bytes published, with the publish stage's batch; their stored
    /// length.
    async fn publish(
        &self,
        state: &AppState,
        publish: Publish,
        write: &ObjectWrite,
    ) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = PublishJob {
            publish,
            key: write.key.clone(),
            tier: write.tier.clone(),
            reply,
        };
        let run = |batch| run_publish(state, batch);
        self.publish
            .pass(job, answer, run)
            .await
            .unwrap_or_else(|| {
                Err(StoreError::Backend {
                    path: write.key.clone(),
                    detail: "the group commit lost track of this write".to_string(),
                    retryable: false,
                })
            })
    }

    /// Step 3: the write recorded, with the catalog stage's batch.
    async fn record(&self, state: &AppState, write: ObjectWrite) -> Result<PlacedObject, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = CatalogJob::Record { write, reply };
        let run = |batch| run_catalog(state, batch);
        self.catalog
            .pass(job, answer, run)
            .await
            .unwrap_or_else(|| Err(lost("recording it")))
    }
}

/// One catalog transaction for a batch: every row of the published writes and every
/// intent queued, then each job answered (an error of the transaction is every job's).
async fn run_catalog(state: &AppState, batch: Vec<CatalogJob>) {
    let now = crate::state::now_ms();
    let mut intents = Vec::new();
    let mut intent_replies = Vec::new();
    let mut writes = Vec::new();
    let mut write_replies = Vec::new();
    for job in batch {
        match job {
            CatalogJob::Intent { key, tier, reply } => {
                intents.push((key, tier));
                intent_replies.push(reply);
            }
            CatalogJob::Record { write, reply } => {
                writes.push(ObjectWrite {
                    now_ms: now,
                    ..write
                });
                write_replies.push(reply);
            }
        }
    }
    if writes.is_empty() {
        state
            .metrics
            .group_intent_commits
            .fetch_add(1, Ordering::Relaxed);
    }
    match state
        .catalog
        .commit_writes_and_begin(&writes, &intents, now)
        .await
    {
        Err(err) => {
            let err = ApiError::from(err);
            for reply in intent_replies {
                let _ = reply.send(Err(err.clone()));
            }
            for reply in write_replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
        Ok(results) => {
            for reply in intent_replies {
                let _ = reply.send(Ok(()));
            }
            let mut results = results.into_iter();
            for reply in write_replies {
                let result = match results.next() {
                    Some(result) => result.map_err(ApiError::from),
                    None => Err(ApiError::internal(
                        "the catalog answered fewer writes than the group commit recorded; \
                         send it again",
                    )),
                };
                let _ = reply.send(result);
            }
        }
    }
}

/// One publish round for a batch: every write's bytes published ([`publish_all`]), then
/// each job answered.
async fn run_publish(state: &AppState, batch: Vec<PublishJob>) {
    let metrics = &state.metrics;
    metrics.write_groups.fetch_add(1, Ordering::Relaxed);
    metrics
        .grouped_writes
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    let mut publishes = Vec::with_capacity(batch.len());
    let mut targets = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        publishes.push(job.publish);
        targets.push((job.key, job.tier));
        replies.push(job.reply);
    }
    let results = publish_all(state, publishes, &targets).await;
    for (reply, result) in replies.into_iter().zip(results) {
        let _ = reply.send(result);
    }
}

/// A staged local file of a group: the write's place in it, the upload, its stored length.
type Staged = (usize, PendingPublish, u64);

/// Publishes every write's bytes: the staged local files by `Upload::publish_group`, one
/// call per directory, all side by side (a call flushes its directories one after the
/// other; calls at once let the file system commit their flushes together), and the others
/// each alone, side by side. Results in order: the stored length, or why not.
async fn publish_all(
    state: &AppState,
    publishes: Vec<Publish>,
    targets: &[(String, String)],
) -> Vec<Result<u64, StoreError>> {
    let mut by_dir: BTreeMap<(&str, &str), Vec<Staged>> = BTreeMap::new();
    let mut alone = Vec::new();
    for ((index, publish), (key, tier)) in publishes.into_iter().enumerate().zip(targets) {
        match publish {
            Publish::Group(pending, len) => {
                let dir = key.rsplit_once('/').map_or("", |(dir, _)| dir);
                let at = (tier.as_str(), dir);
                by_dir.entry(at).or_default().push((index, *pending, len));
            }
            Publish::Alone(upload) => alone.push((index, upload)),
        }
    }
    let groups = futures::future::join_all(by_dir.into_values().map(|files| async move {
        let (at, pending): (Vec<(usize, u64)>, Vec<PendingPublish>) = files
            .into_iter()
            .map(|(index, pending, len)| ((index, len), pending))
            .unzip();
        let results = Upload::publish_group(pending).await;
        at.into_iter()
            .zip(results)
            .map(|((index, len), result)| (index, result.map(|()| len)))
            .collect::<Vec<_>>()
    }));
    let singles = futures::future::join_all(alone.iter().map(|(index, upload)| async move {
        let finished = store_call(state, "an object write", || upload.finish()).await;
        (*index, finished)
    }));
    let (groups, singles) = tokio::join!(groups, singles);
    let mut results: Vec<Option<Result<u64, StoreError>>> = std::iter::repeat_with(|| None)
        .take(targets.len())
        .collect();
    for (index, result) in groups.into_iter().flatten().chain(singles) {
        results[index] = Some(result);
    }
    results
        .into_iter()
        .zip(targets)
        .map(|(result, (key, _))| {
            result.unwrap_or_else(|| {
                Err(StoreError::Backend {
                    path: key.clone(),
                    detail: "the group commit lost track of this write".to_string(),
                    retryable: false,
                })
            })
        })
        .collect()
}
