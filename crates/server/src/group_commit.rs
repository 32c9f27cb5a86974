//! Group commit of object writes: concurrent PUTs made durable together, so small objects
//! are not bound by one `fsync` (and two SQLite commits) each.
//!
//! A PUT whose bytes are staged and checked (on a local tier also flushed: each writer
//! `fdatasync`s its own staging file before it queues, so those flushes run while an
//! earlier group commits) hands a [`CommitItem`] to [`GroupCommit::commit`] with its key's
//! write lock held. The first writer to find no group under way leads one at once (a lone
//! PUT never waits for a timer); writers that arrive while a group is being made durable
//! queue, and the next leader takes them all. A group is made durable in up to three
//! steps, each one round for all its writes:
//!
//! 1. the write intents not recorded yet, recorded in one catalog transaction (one WAL
//!    `fsync`); under load there are none, see step 3;
//! 2. their bytes published: on local tiers `Upload::publish_group`, one call per
//!    directory, the calls side by side (each staging file renamed into place, flushed
//!    first unless its writer did, each directory `fsync`ed once); on other tiers (S3,
//!    domains) each write's own publish, side by side;
//! 3. the writes recorded (new version, placement, intent dropped) in one transaction,
//!    which also records the intents of the writes queued meanwhile: the next group then
//!    skips step 1, so a group under steady load costs one catalog commit, not two.
//!
//! Then every writer of the group gets its answer. The guarantees of a lone write hold for
//! each: its intent is durable before its bytes can appear under the object's path, and its
//! row only once its bytes and directory entry are durable; a crash at any point leaves
//! the old version or the new one, and recovery ([`crate::recovery`]) settles each intent
//! left (an intent recorded for a queued write whose bytes never moved is dropped, as its
//! object's bytes are still the old ones or absent). A failure of a shared step (an intent
//! transaction, a directory flush, the commit transaction) fails every write of the group;
//! a file whose own flush fails fails alone.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use strata_catalog::{CatalogError, ObjectWrite, PlacedObject};
use strata_store::{PendingPublish, StoreError, Upload};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::mover::store_call;
use crate::state::{lock, AppState};
use crate::tier_store::TierUpload;

/// How a write's bytes are published.
pub enum Publish {
    /// Staged on a local tier: published with the group's other files; the object's stored
    /// length.
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
}

/// One write handed to the group commit.
pub struct CommitItem {
    /// Its bytes, staged.
    pub publish: Publish,
    /// What to record once they are durable (its `now_ms` is replaced by the group's time).
    pub write: ObjectWrite,
}

/// What became of a write handed to the group commit.
#[derive(Debug)]
pub enum Outcome {
    /// Durable and recorded: the new record and the bytes the copy takes on its tier.
    Committed(PlacedObject, u64),
    /// Its intent could not be recorded: nothing was published, the staged bytes are gone.
    NotBegun(ApiError),
    /// Its intent was recorded, then publishing or recording failed: the bytes under its
    /// path may be old or new; the caller reconciles them (`reconcile_intent`).
    Failed(ApiError),
}

struct Queued {
    /// Tells this write from the others queued (to mark its intent recorded).
    id: u64,
    /// Whether its intent was recorded (by the commit transaction of an earlier group).
    intent_recorded: bool,
    item: CommitItem,
    reply: oneshot::Sender<Outcome>,
}

/// Writes waiting for the next group.
#[derive(Default)]
struct Queue {
    waiting: Vec<Queued>,
    next_id: u64,
}

/// The service's group commit of object writes (see the module documentation).
#[derive(Default)]
pub struct GroupCommit {
    queue: Mutex<Queue>,
    /// Held by the writer leading a group.
    leader: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// Makes `item` durable and recorded, with whatever other writes are ready; call with
    /// the key's write lock held.
    pub async fn commit(&self, state: &AppState, item: CommitItem) -> Outcome {
        let (reply, mut answer) = oneshot::channel();
        {
            let mut queue = lock(&self.queue);
            let id = queue.next_id;
            queue.next_id += 1;
            queue.waiting.push(Queued {
                id,
                intent_recorded: false,
                item,
                reply,
            });
        }
        loop {
            tokio::select! {
                biased;
                outcome = &mut answer => {
                    return outcome.unwrap_or_else(|_| {
                        Outcome::Failed(ApiError::internal(
                            "the group commit of this write ended without an answer; \
                             send it again",
                        ))
                    });
                }
                guard = self.leader.lock() => {
                    let group = std::mem::take(&mut lock(&self.queue).waiting);
                    if !group.is_empty() {
                        self.run_group(state, group).await;
                    }
                    drop(guard);
                }
            }
        }
    }
}

impl GroupCommit {
    /// Makes one group durable and recorded, and answers each of its writers; called by
    /// the leader alone.
    async fn run_group(&self, state: &AppState, group: Vec<Queued>) {
        let now = crate::state::now_ms();
        let metrics = &state.metrics;
        metrics.write_groups.fetch_add(1, Ordering::Relaxed);
        metrics
            .grouped_writes
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        let Some(group) = begin_unrecorded(state, group, now).await else {
            return;
        };
        let (items, replies): (Vec<CommitItem>, Vec<_>) =
            group.into_iter().map(|q| (q.item, q.reply)).unzip();
        let mut writes = Vec::with_capacity(items.len());
        let mut publishes = Vec::with_capacity(items.len());
        for item in items {
            let mut write = item.write;
            write.now_ms = now;
            writes.push(write);
            publishes.push(item.publish);
        }
        let published = publish_all(state, publishes, &writes).await;
        let outcomes = self.record(state, writes, published, now).await;
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }

    /// The writes queued now whose intents are not recorded: their ids and intents.
    fn unrecorded_queued(&self) -> (Vec<u64>, Vec<(String, String)>) {
        lock(&self.queue)
            .waiting
            .iter()
            .filter(|queued| !queued.intent_recorded)
            .map(|queued| {
                let write = &queued.item.write;
                (queued.id, (write.key.clone(), write.tier.clone()))
            })
            .unzip()
    }

    /// Marks the queued writes `ids` as having their intents recorded.
    fn mark_recorded(&self, ids: &[u64]) {
        for queued in lock(&self.queue).waiting.iter_mut() {
            if ids.contains(&queued.id) {
                queued.intent_recorded = true;
            }
        }
    }

    /// Records the writes whose bytes were published, with the intents of the writes
    /// queued meanwhile, in one transaction; the outcome of each write, in order.
    async fn record(
        &self,
        state: &AppState,
        writes: Vec<ObjectWrite>,
        published: Vec<Result<u64, StoreError>>,
        now: i64,
    ) -> Vec<Outcome> {
        let durable: Vec<ObjectWrite> = writes
            .iter()
            .zip(&published)
            .filter(|(_, result)| result.is_ok())
            .map(|(write, _)| write.clone())
            .collect();
        let (next_ids, next_intents) = self.unrecorded_queued();
        let recorded = if durable.is_empty() && next_intents.is_empty() {
            Ok(Vec::new())
        } else {
            state
                .catalog
                .commit_writes_and_begin(&durable, &next_intents, now)
                .await
        };
        if recorded.is_ok() {
            self.mark_recorded(&next_ids);
        }
        outcomes(published, recorded)
    }
}

/// Records, in one transaction, the intents of the writes of `group` that have none
/// recorded yet, and returns the group to publish: every write if that worked, or only
/// those whose intents were recorded before (the others are answered `NotBegun`, their
/// staged bytes removed). `None` when nothing is left to publish.
async fn begin_unrecorded(state: &AppState, group: Vec<Queued>, now: i64) -> Option<Vec<Queued>> {
    let intents: Vec<(String, String)> = group
        .iter()
        .filter(|q| !q.intent_recorded)
        .map(|q| (q.item.write.key.clone(), q.item.write.tier.clone()))
        .collect();
    if intents.is_empty() {
        return Some(group);
    }
    state
        .metrics
        .group_intent_commits
        .fetch_add(1, Ordering::Relaxed);
    let Err(err) = state.catalog.begin_writes(&intents, now).await else {
        return Some(group);
    };
    let err = ApiError::from(err);
    let (begun, not_begun): (Vec<Queued>, Vec<Queued>) =
        group.into_iter().partition(|q| q.intent_recorded);
    for queued in not_begun {
        queued.item.publish.abort(&queued.item.write.key).await;
        let _ = queued.reply.send(Outcome::NotBegun(err.clone()));
    }
    (!begun.is_empty()).then_some(begun)
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
    writes: &[ObjectWrite],
) -> Vec<Result<u64, StoreError>> {
    let mut by_dir: BTreeMap<(&str, &str), Vec<Staged>> = BTreeMap::new();
    let mut alone = Vec::new();
    for ((index, publish), write) in publishes.into_iter().enumerate().zip(writes) {
        match publish {
            Publish::Group(pending, len) => {
                let dir = write.key.rsplit_once('/').map_or("", |(dir, _)| dir);
                let at = (write.tier.as_str(), dir);
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
    let mut results: Vec<Option<Result<u64, StoreError>>> =
        std::iter::repeat_with(|| None).take(writes.len()).collect();
    for (index, result) in groups.into_iter().flatten().chain(singles) {
        results[index] = Some(result);
    }
    results
        .into_iter()
        .zip(writes)
        .map(|(result, write)| {
            result.unwrap_or_else(|| {
                Err(StoreError::Backend {
                    path: write.key.clone(),
                    detail: "the group commit lost track of this write".to_string(),
                    retryable: false,
                })
            })
        })
        .collect()
}

/// The outcome of each write, in order, from its publish and what the catalog answered for
/// the published ones (in their order).
fn outcomes(
    published: Vec<Result<u64, StoreError>>,
    recorded: Result<Vec<Result<PlacedObject, CatalogError>>, CatalogError>,
) -> Vec<Outcome> {
    let mut recorded = match recorded {
        Ok(results) => results.into_iter().map(|r| r.map_err(ApiError::from)),
        Err(err) => {
            let err = ApiError::from(err);
            return published
                .into_iter()
                .map(|result| match result {
                    Ok(_) => Outcome::Failed(err.clone()),
                    Err(store) => Outcome::Failed(ApiError::from(store)),
                })
                .collect();
        }
    };
    published
        .into_iter()
        .map(|result| match result {
            Err(store) => Outcome::Failed(ApiError::from(store)),
            Ok(stored) => match recorded.next() {
                Some(Ok(placed)) => Outcome::Committed(placed, stored),
                Some(Err(err)) => Outcome::Failed(err),
                None => Outcome::Failed(ApiError::internal(
                    "the catalog answered fewer writes than the group commit recorded; \
                     send it again",
                )),
            },
        })
        .collect()
}
