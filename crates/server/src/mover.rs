//! Move jobs: copy, verify, switch, retire, each step durable in the catalog, so that a
//! restart resumes or cleans up every job.
//!
//! One job, step by step:
//!
//! 1. **Start** (one transaction): the object must still be current on the source tier
//!    with the job's generation; a `copying` placement is recorded on the target tier
//!    *before* any byte is written there.
//! 2. **Copy** (streamed, [`copy`]): read the source copy in spans of whole chunks
//!    (decoding and checking every frame on a packed tier), hash the raw bytes (BLAKE3) as
//!    they pass, encode them for the target tier's layout and write them to a staged
//!    upload on `<target>/objects/<key>`; only once the hash matches the object's recorded
//!    one and the target has room for the stored bytes (its capacity counts stored bytes;
//!    the planner sized the move by its raw size plus the packed overhead) is the upload
//!    published, atomically. Memory holds a few chunks whatever the object's size. The
//!    read takes no key lock (writes
//!    are not held up by moves), so it may see the bytes of a write whose record is not
//!    committed yet; on a mismatch the job waits for the key's writes in flight (its read
//!    lock) and looks again: a new generation means `object_changing`, the same one means
//!    damage.
//! 3. **Verify**: read the target copy back span by span, decoding it (every frame checked
//!    on a packed tier), and compare the raw bytes' BLAKE3 with the object's: the identity
//!    hash is always over raw bytes.
//! 4. **Switch** (one transaction, under the key's write lock, so no read is in flight):
//!    if the object's generation is unchanged, the copy becomes current and the old copy
//!    `retiring`. Reads are served from the old copy until this commit and from the new
//!    one after it. If the object was written meanwhile, the copy is deleted and the job
//!    ends `skipped` with `object_changing` (the next planning pass plans the new content).
//! 5. **Retire**: delete the old copy, then drop its placement and mark the job done.
//!
//! A job that cannot finish ends `failed` (store errors after retries, a copy that does
//! not verify) or `cancelled` (an operator, or the object was deleted), and its copy is
//! deleted before its placement row goes. A job killed at any step is run again at start:
//! before the switch it restarts from the copy; after it, it finishes the retire.
//!
//! Jobs run at most [`Mover::concurrency`] at a time; a job whose `after` jobs (moves that
//! free the room it needs) are unfinished waits for them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_catalog::{CopyStart, JobState, MoveId, MoveJob, PlacementState, SwitchOutcome};
use strata_heat::TierId;
use strata_store::StoreError;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::retry::with_backoff;
use crate::state::{lock, now_ms, AppState, JobEvent};
use crate::tier_codec::{hash_stored, TierReadError};
use crate::tiers::Tier;
use tracing::Instrument;

mod copy;
mod reencode;
mod rotate;

/// How long a job that must wait (for its `after` jobs, or to retry a retire) waits.
const RETRY_LATER: Duration = Duration::from_secs(1);

/// Objects above this size are hashed on a blocking thread.
const INLINE_HASH_LIMIT: usize = 1 << 20;

/// A job running now.
#[derive(Clone, Debug)]
pub struct RunningMove {
    /// Its id.
    pub id: MoveId,
    /// The target tier's index.
    pub to_tier: TierId,
    /// Set to ask the job to stop at its next step.
    pub cancel: Arc<AtomicBool>,
    /// Set once the placement switched (from then on the job only retires).
    pub switched: Arc<AtomicBool>,
    done: watch::Receiver<bool>,
}

/// The job queue and the registry of running jobs.
#[derive(Debug)]
pub struct Mover {
    queue: mpsc::UnboundedSender<MoveId>,
    running: Mutex<HashMap<String, (RunningMove, watch::Sender<bool>)>>,
    paused: AtomicBool,
    /// Jobs run at once at most.
    pub concurrency: usize,
}

impl Mover {
    /// A mover and the receiving end of its queue (for [`scheduler`]).
    pub fn new(concurrency: usize) -> (Mover, mpsc::UnboundedReceiver<MoveId>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        (
            Mover {
                queue,
                running: Mutex::new(HashMap::new()),
                paused: AtomicBool::new(false),
                concurrency: concurrency.max(1),
            },
            receiver,
        )
    }

    /// Queues a job to run.
    pub fn enqueue(&self, id: MoveId) {
        let _ = self.queue.send(id);
    }

    /// Holds queued jobs (running ones finish) until resumed: a maintenance window, or a
    /// test that needs a job to wait.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Whether new jobs are held.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// The job running for `key`, if any.
    pub fn running(&self, key: &str) -> Option<RunningMove> {
        lock(&self.running)
            .get(key)
            .map(|(running, _)| running.clone())
    }

    /// Whether job `id` is running now.
    pub fn is_running_job(&self, id: MoveId) -> bool {
        lock(&self.running)
            .values()
            .any(|(running, _)| running.id == id)
    }

    /// Jobs running now.
    pub fn running_count(&self) -> usize {
        lock(&self.running).len()
    }

    /// Asks the job of `key` to stop; returns it.
    pub fn cancel_key(&self, key: &str) -> Option<RunningMove> {
        let running = self.running(key)?;
        running.cancel.store(true, Ordering::SeqCst);
        Some(running)
    }

    /// Asks job `id` to stop if it runs and has not switched; returns whether it runs, and
    /// whether it had switched already.
    pub fn cancel_job(&self, id: MoveId) -> Option<bool> {
        let map = lock(&self.running);
        let (running, _) = map.values().find(|(running, _)| running.id == id)?;
        let switched = running.switched.load(Ordering::SeqCst);
        if !switched {
            running.cancel.store(true, Ordering::SeqCst);
        }
        Some(switched)
    }

    /// Waits until no job runs for `key`, at most `timeout`; returns whether none runs.
    pub async fn wait_idle(&self, key: &str, timeout: Duration) -> bool {
        let Some(mut running) = self.running(key) else {
            return true;
        };
        let waited = tokio::time::timeout(timeout, running.done.wait_for(|done| *done)).await;
        // A closed channel means the job is gone too.
        waited.is_ok()
    }

    fn register(&self, job: &MoveJob, to_tier: TierId) -> Option<RunningMove> {
        let mut map = lock(&self.running);
        if map.contains_key(&job.key) {
            return None;
        }
        let (done_tx, done_rx) = watch::channel(false);
        let running = RunningMove {
            id: job.id,
            to_tier,
            cancel: Arc::new(AtomicBool::new(false)),
            switched: Arc::new(AtomicBool::new(job.state == JobState::Retiring)),
            done: done_rx,
        };
        map.insert(job.key.clone(), (running.clone(), done_tx));
        Some(running)
    }

    fn unregister(&self, key: &str) {
        if let Some((_, done)) = lock(&self.running).remove(key) {
            let _ = done.send(true);
        }
    }
}

/// Runs queued jobs, at most [`Mover::concurrency`] at a time, until `shutdown`.
pub async fn scheduler(
    state: Arc<AppState>,
    mut queue: mpsc::UnboundedReceiver<MoveId>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(state.mover.concurrency));
    let mut held: std::collections::VecDeque<MoveId> = Default::default();
    loop {
        let id = if !held.is_empty() && !state.mover.paused() {
            held.pop_front().unwrap_or_default()
        } else {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                id = queue.recv() => match id {
                    Some(id) => id,
                    None => break,
                },
                _ = tokio::time::sleep(Duration::from_millis(200)), if !held.is_empty() => continue,
            }
        };
        if state.mover.paused() {
            held.push_back(id);
            continue;
        }
        let job = match state.catalog.move_job(id).await {
            Ok(Some(job)) if job.state.is_active() => job,
            Ok(_) => continue,
            Err(err) => {
                tracing::warn!(%err, job = id, "cannot read a queued move job; retrying later");
                enqueue_later(&state, id);
                continue;
            }
        };
        if state.mover.running(&job.key).is_some() {
            continue;
        }
        if !prerequisites_done(&state, &job).await {
            enqueue_later(&state, id);
            continue;
        }
        let Some(to_tier) = state.tier(&job.to_tier).map(|tier| tier.id) else {
            end_unknown_tier(&state, &job).await;
            continue;
        };
        if job.from_tier == job.to_tier {
            tokio::spawn(reencode_in_turn(
                Arc::clone(&state),
                job,
                to_tier,
                Arc::clone(&permits),
            ));
            continue;
        }
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        tokio::spawn(launch(Arc::clone(&state), job, to_tier, permit));
    }
}

/// A re-encode waits for its turn: they run one at a time, in the order planned, each
/// parked here until the one before it ends (no polling; unregistered meanwhile, so a
/// write or a delete of its key is not held up by a job that has not started), then for a
/// quiet moment (no object request in flight, [`crate::background::Foreground::quiet`]),
/// then takes a permit like any job. Re-encodes are background work: readers on a small
/// machine must not queue behind several of them, nor pay for jobs asking again and again
/// whether it is their turn (the p99 of reads is the measure).
async fn reencode_in_turn(
    state: Arc<AppState>,
    job: MoveJob,
    to_tier: TierId,
    permits: Arc<Semaphore>,
) {
    let Ok(_turn) = state.reencode_turn.acquire().await else {
        return;
    };
    state
        .foreground
        .quiet(crate::background::QUIET, crate::background::MAX_DEFERRAL)
        .await;
    if state.mover.paused() {
        // The scheduler holds it until the mover resumes.
        state.mover.enqueue(job.id);
        return;
    }
    let Ok(permit) = permits.acquire_owned().await else {
        return;
    };
    // The job as it is now: an operator or a delete may have ended it while it waited.
    match state.catalog.move_job(job.id).await {
        Ok(Some(job)) if job.state.is_active() => {
            if state.mover.running(&job.key).is_some() {
                // Another job of the key (a move between tiers) runs: after it.
                enqueue_later(&state, job.id);
                return;
            }
            launch(Arc::clone(&state), job, to_tier, permit).await;
        }
        Ok(_) => {
            lock(&state.reencodes).remove(&job.key);
        }
        Err(err) => {
            tracing::warn!(%err, job = job.id, "cannot read a queued re-encode; retrying later");
            enqueue_later(&state, job.id);
        }
    }
}

/// Runs `job` to its end, holding `permit`, and deals with how it ended.
async fn launch(
    state: Arc<AppState>,
    job: MoveJob,
    to_tier: TierId,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let Some(handle) = state.mover.register(&job, to_tier) else {
        return;
    };
    let started = Instant::now();
    // Every line logged while the move runs (its retries too) carries its job and key; at
    // error level so that the span is enabled whatever the filter lets through.
    let span = tracing::error_span!("move", job = job.id, key = %job.key);
    let outcome = run(&state, &job, &handle).instrument(span).await;
    state.mover.unregister(&job.key);
    drop(permit);
    match outcome {
        Outcome::Later(why) => {
            tracing::warn!(job = job.id, key = %job.key, %why, "move paused; retrying later");
            enqueue_later(&state, job.id);
        }
        Outcome::Ended(final_state) => {
            state.metrics.move_duration.observe(started.elapsed());
            state.metrics.move_ended(final_state.as_str());
        }
        Outcome::Nothing => {}
    }
}

fn enqueue_later(state: &Arc<AppState>, id: MoveId) {
    let state = Arc::clone(state);
    tokio::spawn(async move {
        tokio::time::sleep(RETRY_LATER).await;
        state.mover.enqueue(id);
    });
}

async fn prerequisites_done(state: &AppState, job: &MoveJob) -> bool {
    for &before in &job.after {
        match state.catalog.move_job(before).await {
            Ok(Some(other)) if other.state.is_active() => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    true
}

async fn end_unknown_tier(state: &AppState, job: &MoveJob) {
    let message = format!(
        "unknown_tier: tier {:?} is not configured; the object stays where it is",
        job.to_tier
    );
    if let Err(err) = state
        .catalog
        .end_move(job.id, JobState::Failed, Some(&message), now_ms())
        .await
    {
        tracing::warn!(%err, job = job.id, "cannot end a move to an unknown tier");
    }
    emit(state, job, JobState::Failed, Some(message));
}

/// How a run ended.
enum Outcome {
    /// The job reached a final state.
    Ended(JobState),
    /// The job is still active and must run again later.
    Later(String),
    /// Nothing to do (not startable).
    Nothing,
}

/// Where copy-and-switch got to.
enum Step {
    Switched,
    End(JobState, String),
    Nothing,
}

fn emit(state: &AppState, job: &MoveJob, to_state: JobState, error: Option<String>) {
    state.emit(JobEvent {
        id: job.id,
        key: job.key.clone(),
        from: job.from_tier.clone(),
        to: job.to_tier.clone(),
        state: to_state.as_str().to_string(),
        reason: job.reason.clone(),
        error,
        ts_ms: now_ms(),
    });
}

/// A store call with the service's retry policy.
pub async fn store_call<T, F, Fut>(state: &AppState, what: &str, call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    with_backoff(
        state.backoff,
        |error: &StoreError, attempt| state.note_retry(what, error, attempt),
        call,
    )
    .await
}

/// BLAKE3 of `bytes`, on a blocking thread when large.
pub async fn hash_bytes(bytes: Bytes) -> [u8; 32] {
    if bytes.len() <= INLINE_HASH_LIMIT {
        return *blake3::hash(&bytes).as_bytes();
    }
    // Only a panic in blake3 could fail the task; a zero hash then matches nothing.
    tokio::task::spawn_blocking(move || *blake3::hash(&bytes).as_bytes())
        .await
        .unwrap_or_default()
}

/// Counts bytes moving into a tier while the copy exists.
struct Incoming<'a> {
    state: &'a AppState,
    tier: TierId,
    bytes: u64,
}

impl<'a> Incoming<'a> {
    fn new(state: &'a AppState, tier: TierId, bytes: u64) -> Self {
        state.index.incoming(tier, bytes, true);
        Incoming { state, tier, bytes }
    }
}

impl Drop for Incoming<'_> {
    fn drop(&mut self) {
        self.state.index.incoming(self.tier, self.bytes, false);
    }
}

async fn run(state: &AppState, job: &MoveJob, handle: &RunningMove) -> Outcome {
    let (Some(from), Some(to)) = (state.tier(&job.from_tier), state.tier(&job.to_tier)) else {
        end_unknown_tier(state, job).await;
        return Outcome::Ended(JobState::Failed);
    };
    // Every store call of a move goes through the tiers' move stores: under the
    // `[bandwidth]` throttle, with the `src`/`dst` fault rules (crate::tiers).
    let (from, to) = (&from.as_move_source(), &to.as_move_target());
    if from.id == to.id {
        if job.reason == crate::key_rotation::KEY_ROTATION {
            return rotate::run(state, job, to, handle).await;
        }
        return reencode::run(state, job, to, handle).await;
    }
    if job.state == JobState::Retiring {
        return retire(state, job, from).await;
    }
    let step = match copy_and_switch(state, job, from, to, handle).await {
        Ok(step) => step,
        Err(message) => Step::End(JobState::Failed, message),
    };
    match step {
        Step::Switched => retire(state, job, from).await,
        Step::End(end_state, message) => abort(state, job, to, end_state, message).await,
        Step::Nothing => Outcome::Nothing,
    }
}

/// Why the job should stop now, if it should.
fn stop_reason(state: &AppState, job: &MoveJob, handle: &RunningMove) -> Option<Step> {
    match state.index.get(&job.key) {
        None => Some(Step::End(
            JobState::Cancelled,
            "object_deleted: the object was deleted during its move".to_string(),
        )),
        Some(entry) if entry.generation != job.generation => {
            Some(object_changing(job, entry.generation))
        }
        Some(_) if handle.cancel.load(Ordering::SeqCst) => Some(Step::End(
            JobState::Cancelled,
            "cancelled: stopped by an operator".to_string(),
        )),
        Some(_) => None,
    }
}

/// [`stop_reason`] once the writes of the key in flight have finished. A write holds the
/// key's write lock from before its bytes change until its new generation is in the index,
/// so a source read that failed or returned unexpected bytes may have met one: waiting for
/// the read lock tells a write (`object_changing`) from damage.
async fn settled_stop_reason(
    state: &AppState,
    job: &MoveJob,
    handle: &RunningMove,
) -> Option<Step> {
    drop(state.locks.read(&job.key).await);
    stop_reason(state, job, handle)
}

fn object_changing(job: &MoveJob, generation: i64) -> Step {
    Step::End(
        JobState::Skipped,
        format!(
            "object_changing: the object was written during its move (generation {} → \
             {generation}); the next planning pass decides on the new content",
            job.generation
        ),
    )
}

async fn copy_and_switch(
    state: &AppState,
    job: &MoveJob,
    from: &Tier,
    to: &Tier,
    handle: &RunningMove,
) -> Result<Step, String> {
    let start = state
        .catalog
        .start_copy(job.id, now_ms())
        .await
        .map_err(|err| err.to_string())?;
    match start {
        CopyStart::Started(_) => {}
        CopyStart::ObjectGone => {
            return Ok(Step::End(
                JobState::Cancelled,
                "object_deleted: the object was deleted before its move".to_string(),
            ))
        }
        CopyStart::ObjectChanged(generation) => return Ok(object_changing(job, generation)),
        CopyStart::Moved(tier) => {
            return Ok(Step::End(
                JobState::Skipped,
                format!(
                    "object_moved: the object is on {tier:?} now, not on {:?}",
                    job.from_tier
                ),
            ))
        }
        CopyStart::NotStartable(_) => return Ok(Step::Nothing),
    }
    emit(state, job, JobState::Copying, None);
    let reserved = to.format.stored_bound(job.size);
    let _incoming = Incoming::new(state, to.id, reserved);
    if let Some(stop) = stop_reason(state, job, handle) {
        return Ok(stop);
    }
    let Some(entry) = state.index.get(&job.key) else {
        return Ok(stop_reason(state, job, handle).unwrap_or(Step::Nothing));
    };
    let stored_len = match copy::copy(state, job, from, to, &entry, reserved, handle).await? {
        Ok(stored_len) => stored_len,
        Err(step) => return Ok(step),
    };
    state
        .metrics
        .move_bytes
        .fetch_add(job.size, Ordering::Relaxed);
    state
        .catalog
        .set_move_state(job.id, JobState::Verifying, None, now_ms())
        .await
        .map_err(|err| err.to_string())?;
    emit(state, job, JobState::Verifying, None);
    let (back_len, back_hash) = match hash_stored(state, to, &job.key, entry.size).await {
        Ok(back) => back,
        Err(TierReadError::Damaged(damage)) => {
            return Err(format!(
                "verify_mismatch: the copy written on {} does not read back: {damage}",
                to.name()
            ))
        }
        Err(TierReadError::Store(err)) => {
            return Err(format!("reading back the copy on {}: {err}", to.name()))
        }
    };
    if back_hash != entry.hash || back_len != stored_len {
        return Err(format!(
            "verify_mismatch: the copy on {} reads back as {back_len} stored bytes with BLAKE3 \
             {}, expected {stored_len} bytes with {}",
            to.name(),
            hex::encode(back_hash),
            hex::encode(entry.hash)
        ));
    }
    state
        .catalog
        .set_move_state(job.id, JobState::Switching, None, now_ms())
        .await
        .map_err(|err| err.to_string())?;
    emit(state, job, JobState::Switching, None);
    let guard = state.locks.write(&job.key).await;
    if let Some(stop) = stop_reason(state, job, handle) {
        return Ok(stop);
    }
    let now = now_ms();
    let outcome = state
        .catalog
        .switch_placement(job.id, now)
        .await
        .map_err(|err| err.to_string())?;
    match outcome {
        SwitchOutcome::Switched => {
            state.index.set_tier(&job.key, to.id, now, stored_len);
            handle.switched.store(true, Ordering::SeqCst);
            drop(guard);
            emit(state, job, JobState::Retiring, None);
            Ok(Step::Switched)
        }
        SwitchOutcome::ObjectChanged(generation) => Ok(object_changing(job, generation)),
        SwitchOutcome::ObjectGone => Ok(Step::End(
            JobState::Cancelled,
            "object_deleted: the object was deleted during its move".to_string(),
        )),
        SwitchOutcome::Inconsistent(message) => Err(format!("switch refused: {message}")),
    }
}

/// Deletes the old copy and marks the job done.
async fn retire(state: &AppState, job: &MoveJob, from: &Tier) -> Outcome {
    let path = Tier::object_path(&job.key);
    if let Err(err) = store_call(state, "a move's retire", || from.store.delete(&path)).await {
        return Outcome::Later(format!("deleting the old copy on {}: {err}", from.name()));
    }
    if let Err(err) = state.catalog.finish_move(job.id, now_ms()).await {
        return Outcome::Later(format!("recording the retire: {err}"));
    }
    tracing::info!(job = job.id, key = %job.key, from = %job.from_tier, to = %job.to_tier, "move done");
    emit(state, job, JobState::Done, None);
    Outcome::Ended(JobState::Done)
}

/// Deletes the job's copy, then ends it (the copy's row goes after its bytes).
async fn abort(
    state: &AppState,
    job: &MoveJob,
    to: &Tier,
    end_state: JobState,
    message: String,
) -> Outcome {
    let path = Tier::object_path(&job.key);
    // Under the key's write lock: a new object of the same key may be written to this tier
    // once the copy's row is gone, never before.
    let guard = state.locks.write(&job.key).await;
    let current_here = state
        .index
        .get(&job.key)
        .is_some_and(|entry| entry.tier == to.id);
    if !current_here {
        if let Err(err) = store_call(state, "a move's cleanup", || to.store.delete(&path)).await {
            return Outcome::Later(format!("deleting the copy on {}: {err}", to.name()));
        }
    }
    let now = now_ms();
    let ended = state
        .catalog
        .end_move(job.id, end_state, Some(&message), now)
        .await;
    // The object was deleted meanwhile: its delete turned the copy's row retiring.
    let removed = state
        .catalog
        .remove_placement(&job.key, to.name(), PlacementState::Retiring)
        .await;
    drop(guard);
    if let Err(err) = ended.and(removed.map(|_| ())) {
        return Outcome::Later(format!("recording the end of the move: {err}"));
    }
    lock(&state.retire_backlog).remove(&(job.key.clone(), to.id));
    tracing::info!(job = job.id, key = %job.key, state = %end_state, %message, "move ended");
    emit(state, job, end_state, Some(message));
    Outcome::Ended(end_state)
}
