//! `strata worker`: pulls chunk tasks from the queue and runs each through the same copy
//! path as a single-node migration ([`crate::migrate::copy_files`]: chunk pipeline, read
//! back, verify, group commit, catalog records), acknowledges it once its files are
//! verified and recorded, and finishes the job when its task was the last.
//!
//! While a task runs the worker reports progress to the queue (`AckProgress`) every third
//! of the ack wait, so a long task is not redelivered; a worker that is killed stops
//! reporting, and its task goes to another worker after the ack wait. A message that is
//! not a task of this version, or names a job or files the catalog does not have, is
//! refused with a log line and terminated (never redelivered). A lost queue or catalog is
//! retried with backoff, said in the log.
//!
//! The worker announces itself in the catalog ([`WorkerRecord`]) and refreshes that row
//! every [`HEARTBEAT_EVERY`]: `strata status` shows who holds which task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::{AckKind, Acker};
use futures::future::BoxFuture;
use futures::StreamExt;
use strata_catalog::{Catalog, CatalogError, JobId, JobSummary, VerifiedChunk, WorkerRecord};
use strata_codec::hash::ChunkValue;
use strata_store::Store;
use tokio::sync::watch;

use super::file_finish::{finish_split_file, Claimant, FileEnd};
use super::finish::{end_of_task, JobEnd};
use super::queue::TaskQueue;
use super::task::ChunkTask;
use crate::migrate::copy_files;
use crate::plan::{layout, Plan};
use crate::retry::{Advice, Backoff};
use crate::settle::SourceFile;
use crate::{DatasetSource, MigrateOptions, MigrationReport, MoverError, Progress};

/// How often a worker refreshes its row in the catalog.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// How long one fetch waits for a task before asking again.
const FETCH_WAIT: Duration = Duration::from_secs(5);

/// Retries of a lost queue or catalog: from half a second, doubling to 30 s.
const RECONNECT: Backoff = Backoff {
    attempts: u32::MAX,
    base: Duration::from_millis(500),
    max: Duration::from_secs(30),
};

/// Opens a job's stores (source, destination) from their display URIs, under the
/// worker's layers (throttle, fault injection).
pub type OpenStores = Arc<
    dyn Fn(String, String) -> BoxFuture<'static, Result<(DatasetSource, Store), MoverError>>
        + Send
        + Sync,
>;

/// How a worker runs.
#[derive(Clone)]
pub struct WorkerOptions {
    /// Chunk tasks in flight at once within a task (`--jobs`).
    pub jobs: usize,
    /// The consumer's ack wait: a task not acknowledged nor reported on for this long goes
    /// to another worker.
    pub ack_wait: Duration,
    /// The worker's bandwidth cap in bytes per second, read at each heartbeat.
    pub bandwidth_cap: Arc<dyn Fn() -> Option<u64> + Send + Sync>,
    /// Stop after this long without a task to take (`--idle-exit`: a batch job's workers
    /// end with the migration); `None`: run until stopped.
    pub idle_exit: Option<Duration>,
}

/// A `strata worker` process.
pub struct Worker {
    catalog: Arc<dyn Catalog>,
    queue: TaskQueue,
    open_stores: OpenStores,
    options: WorkerOptions,
    record: Arc<Mutex<WorkerRecord>>,
    /// Wakes the heartbeat at once when the task held changes.
    changed: Arc<tokio::sync::Notify>,
    stores: HashMap<JobId, (DatasetSource, Store)>,
    busy: Duration,
}

/// How a task ended, for the queue.
enum TaskError {
    /// The message can never be run: terminate it.
    Refused(String),
    /// Something that may pass (queue, catalog, store unreachable): redeliver later.
    Retry(MoverError),
}

impl From<MoverError> for TaskError {
    fn from(error: MoverError) -> Self {
        match error {
            MoverError::Catalog(CatalogError::JobNotFound { id, .. }) => TaskError::Refused(
                format!("job {id} is not in the catalog (deleted, or another catalog)"),
            ),
            other => TaskError::Retry(other),
        }
    }
}

impl Worker {
    /// A worker announcing itself as `record` (its id, host, cores, start time).
    pub fn new(
        catalog: Arc<dyn Catalog>,
        queue: TaskQueue,
        open_stores: OpenStores,
        options: WorkerOptions,
        record: WorkerRecord,
    ) -> Worker {
        Worker {
            catalog,
            queue,
            open_stores,
            options,
            record: Arc::new(Mutex::new(record)),
            changed: Arc::new(tokio::sync::Notify::new()),
            stores: HashMap::new(),
            busy: Duration::ZERO,
        }
    }

    /// Runs until `stop` turns true: announces the worker, takes tasks one at a time,
    /// and removes the worker's row on the way out.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), MoverError> {
        let heartbeat = self.start_heartbeat();
        let consumer = tokio::select! {
            consumer = self.open_consumer() => consumer,
            _ = stop.wait_for(|s| *s) => None,
        };
        if let Some(consumer) = consumer {
            tracing::info!(
                queue = self.queue.shown(),
                "worker {} waiting for tasks",
                self.id()
            );
            let mut failures = 0;
            let mut last_task = tokio::time::Instant::now();
            while !*stop.borrow() {
                let fetched = tokio::select! {
                    fetched = self.take_one(&consumer) => fetched,
                    _ = stop.wait_for(|s| *s) => break,
                };
                // Idle means the queue answered and had nothing: a worker cut off from the
                // queue, or whose tasks fail for a while, is not idle and stays.
                if !matches!(fetched, Ok(false)) {
                    last_task = tokio::time::Instant::now();
                }
                if let Some(idle) = self.options.idle_exit {
                    if last_task.elapsed() >= idle {
                        tracing::info!(
                            "worker {}: no task for {:.0}s, stopping (--idle-exit)",
                            self.id(),
                            idle.as_secs_f64()
                        );
                        break;
                    }
                }
                failures = match fetched {
                    Ok(_) => 0,
                    Err(delay) => {
                        failures += 1;
                        let wait =
                            delay.unwrap_or_else(|| RECONNECT.delay(failures, Advice::Retry));
                        tokio::time::sleep(wait).await;
                        failures
                    }
                };
            }
        }
        heartbeat.abort();
        if let Err(error) = self.catalog.remove_worker(&self.id()).await {
            tracing::warn!(%error, "worker {} could not remove its row from the catalog", self.id());
        }
        tracing::info!("worker {} stopped", self.id());
        Ok(())
    }

    fn id(&self) -> String {
        self.record.lock().map(|r| r.id.clone()).unwrap_or_default()
    }

    /// The shared consumer, retried with backoff until the queue answers.
    async fn open_consumer(&self) -> Option<PullConsumer> {
        let mut attempt = 0;
        loop {
            match self.queue.consumer(self.options.ack_wait).await {
                Ok(consumer) => return Some(consumer),
                Err(error) => {
                    attempt += 1;
                    let wait = RECONNECT.delay(attempt, Advice::Retry);
                    tracing::warn!("{error}; retrying in {:.1}s", wait.as_secs_f64());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Fetches at most one task and runs it; `Ok(true)` when there was one. `Err` asks
    /// for a pause before the next fetch (`None`: the backoff's), after a failure that was
    /// logged.
    async fn take_one(&mut self, consumer: &PullConsumer) -> Result<bool, Option<Duration>> {
        let fetch = consumer
            .fetch()
            .max_messages(1)
            .expires(FETCH_WAIT)
            .messages();
        // Bounded here too: a request sent while the connection is down may never hear back.
        let batch = tokio::time::timeout(FETCH_WAIT * 2, fetch)
            .await
            .map_err(|_| "no answer".to_string())
            .and_then(|fetched| fetched.map_err(|e| e.to_string()));
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(
                    "task queue {}: cannot fetch tasks ({error}); retrying with backoff",
                    self.queue.shown()
                );
                return Err(None);
            }
        };
        let mut took = false;
        while let Ok(Some(message)) = tokio::time::timeout(FETCH_WAIT * 2, batch.next()).await {
            match message {
                Ok(message) => {
                    took = true;
                    self.handle(message).await?
                }
                Err(error) => {
                    tracing::warn!(
                        "task queue {}: fetch failed ({error}); retrying with backoff",
                        self.queue.shown()
                    );
                    return Err(None);
                }
            }
        }
        Ok(took)
    }

    /// Runs one delivered message to its acknowledgement.
    async fn handle(
        &mut self,
        message: async_nats::jetstream::Message,
    ) -> Result<(), Option<Duration>> {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let (message, acker) = message.split();
        let subject = message.subject.to_string();
        let task = match ChunkTask::parse(&message.payload) {
            Ok(task) => task,
            Err(reason) => {
                refuse(&acker, &subject, &reason).await;
                return Ok(());
            }
        };
        tracing::info!(
            "worker {} took task {task} (delivery {delivered})",
            self.id()
        );
        self.hold(Some(&task));
        let acker = Arc::new(acker);
        let (reporter, lease_lost) = report_progress(acker.clone(), self.options.ack_wait);
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = self.run_task(&task) => Some(outcome),
            _ = lease_lost => None,
        };
        reporter.abort();
        let Some(outcome) = outcome else {
            // Another worker may get the task now: stop touching its files (the staged
            // copies and recorded chunks stay for whoever resumes them).
            self.hold(None);
            tracing::warn!(
                "task {task}: stopped, the queue has not confirmed this worker's progress \
                 for most of the ack wait ({:?}) and will give the task to another worker",
                self.options.ack_wait
            );
            return Err(None);
        };
        self.busy += started.elapsed();
        self.hold(None);
        match outcome {
            Ok(bytes) => {
                self.count_task(bytes);
                if let Err(error) = acker.double_ack().await {
                    tracing::warn!(
                        "task {task} is done but its acknowledgement failed ({error}); it will \
                         be redelivered and found done"
                    );
                }
                Ok(())
            }
            Err(TaskError::Refused(reason)) => {
                refuse(&acker, &subject, &format!("{task}: {reason}")).await;
                Ok(())
            }
            Err(TaskError::Retry(error)) => {
                let wait = RECONNECT.delay(delivered.clamp(1, 16) as u32, Advice::Retry);
                tracing::warn!(
                    "task {task} failed: {error}; returned to the queue, retrying in {:.1}s",
                    wait.as_secs_f64()
                );
                let _ = acker.ack_with(AckKind::Nak(Some(wait))).await;
                Err(Some(wait))
            }
        }
    }

    /// Copies the task's files; returns the bytes it sent.
    async fn run_task(&mut self, task: &ChunkTask) -> Result<u64, TaskError> {
        let job = self
            .catalog
            .job(task.job)
            .await
            .map_err(MoverError::from)?
            .ok_or_else(|| TaskError::Refused(format!("job {} is not in the catalog", task.job)))?;
        let (source, destination) = self.stores_of(&job).await?;
        let plan = self.plan_of(task, &job).await?;
        let mut options: MigrateOptions = task.options.clone();
        options.jobs = self.options.jobs;
        options.chunk_size = job.chunk_size;
        options.dry_run = false;
        let progress = Arc::new(Progress::default());
        let existing = existing_of(&plan, &destination).await?;
        let copied = copy_files(
            self.catalog.clone(),
            &plan,
            &source,
            &destination,
            &options,
            &progress,
            existing,
        )
        .await?;
        let mut report = MigrationReport::empty(&plan, &source, &destination, false);
        if let Some(error) = copied.tally(&mut report, &progress) {
            return Err(TaskError::Retry(MoverError::Stopped {
                job: job.id,
                source: error,
            }));
        }
        for line in progress.take_messages() {
            tracing::warn!("job {} {line}", job.id);
        }
        tracing::info!(
            "task {task} verified: {} copied, {} identical, {} already done, {} failed",
            report.files_copied,
            report.files_skipped,
            report.files_resumed,
            report.failed.len()
        );
        if task.chunk_range().is_some() {
            self.finish_file_of(task, &job, &plan, (&source, &destination))
                .await?;
        }
        let end = end_of_task(
            &*self.catalog,
            &destination,
            job.id,
            job.chunk_size,
            &task.run,
            &task.key(),
            &self.id(),
            task.unreadable_entries,
        )
        .await?;
        self.say_end(job.id, &end);
        Ok(report.bytes_sent)
    }

    /// After a range task: the file's finish, when this task is the one to do it.
    async fn finish_file_of(
        &self,
        task: &ChunkTask,
        job: &JobSummary,
        plan: &Plan,
        stores: (&DatasetSource, &Store),
    ) -> Result<(), TaskError> {
        let Some(record) = plan.files.first() else {
            return Ok(());
        };
        let (key, id) = (task.key(), self.id());
        let claimant = Claimant {
            run: &task.run,
            task: &key,
            worker: &id,
        };
        let file = SourceFile {
            record: record.clone(),
            etag: plan.etags.get(&record.planned.index).cloned(),
            settled: true,
        };
        let path = &record.planned.path;
        match finish_split_file(
            &*self.catalog,
            stores,
            job.id,
            job.chunk_size,
            file,
            &claimant,
        )
        .await?
        {
            FileEnd::Published => tracing::info!(
                "job {} file {path}: every chunk range verified; worker {id} published it",
                job.id
            ),
            FileEnd::Failed(message) => {
                tracing::error!("job {} file {path} failed: {message}", job.id)
            }
            FileEnd::NotYet { missing } => tracing::info!(
                "job {} file {path}: {missing} chunks still to verify by other tasks",
                job.id
            ),
            FileEnd::Elsewhere => {}
        }
        Ok(())
    }

    fn say_end(&self, job: JobId, end: &JobEnd) {
        let id = self.id();
        match end {
            JobEnd::Completed { root_hash } => tracing::info!(
                "job {job} complete: worker {id} wrote the manifest (root hash {root_hash})"
            ),
            JobEnd::Failed { message } => {
                tracing::error!("job {job} finished by worker {id} with failures: {message}")
            }
            JobEnd::Running { pending } => tracing::debug!("job {job}: {pending} files pending"),
            JobEnd::FinishedElsewhere => {}
        }
    }

    /// The job's stores, opened once per job.
    async fn stores_of(&mut self, job: &JobSummary) -> Result<(DatasetSource, Store), TaskError> {
        if let Some(stores) = self.stores.get(&job.id) {
            return Ok(stores.clone());
        }
        let stores = (self.open_stores)(job.source.clone(), job.destination.clone()).await?;
        self.stores.insert(job.id, stores.clone());
        Ok(stores)
    }

    /// The task's share of the job's plan, with the chunks already verified.
    async fn plan_of(&self, task: &ChunkTask, job: &JobSummary) -> Result<Plan, TaskError> {
        // The task's share only: what a task reads must not grow with the job's plan.
        let range = task.first_file..task.end_file;
        let files = self
            .catalog
            .load_file_range(job.id, range.clone())
            .await
            .map_err(MoverError::from)?;
        if files.len() != range.len() {
            return Err(TaskError::Refused(format!(
                "the task names files {} to {} but job {} plans {} of them (a task of an \
                 older plan)",
                range.start,
                range.end.saturating_sub(1),
                job.id,
                files.len()
            )));
        }
        let mut verified: HashMap<u32, HashMap<u64, ChunkValue>> = HashMap::new();
        let chunks = self
            .catalog
            .verified_chunks_of_files(job.id, range)
            .await
            .map_err(MoverError::from)?;
        for VerifiedChunk {
            file_index,
            chunk_index,
            chaining_value,
        } in chunks
        {
            verified
                .entry(file_index)
                .or_default()
                .insert(chunk_index, chaining_value);
        }
        let chunk_range = task.chunk_range();
        if let (Some(chunks), Some(file)) = (&chunk_range, files.first()) {
            let count = layout(job.chunk_size, file.planned.size).chunk_count();
            if chunks.end > count {
                return Err(TaskError::Refused(format!(
                    "the task names chunks {} to {} of {} but job {} plans {count} chunks \
                     for it (a task of an older plan)",
                    chunks.start,
                    chunks.end - 1,
                    file.planned.path,
                    job.id
                )));
            }
        }
        Ok(Plan {
            job: job.id,
            chunk_size: job.chunk_size,
            files,
            verified,
            skipped_entries: Vec::new(),
            unreadable_entries: Vec::new(),
            resumed: true,
            etags: task.etags.clone().into_iter().collect(),
            chunk_range,
        })
    }

    /// Sets (or clears) the task the worker holds, recorded by a heartbeat at once.
    fn hold(&self, task: Option<&ChunkTask>) {
        if let Ok(mut record) = self.record.lock() {
            record.job = task.map(|t| t.job);
            record.task = task.map(ChunkTask::files_label);
        }
        self.changed.notify_one();
    }

    fn count_task(&self, bytes: u64) {
        if let Ok(mut record) = self.record.lock() {
            record.tasks_done += 1;
            record.bytes_done += bytes;
            let seconds = self.busy.as_secs_f64();
            if seconds > 0.0 {
                record.throughput = (record.bytes_done as f64 / seconds) as u64;
            }
        }
    }

    /// Refreshes the worker's row every [`HEARTBEAT_EVERY`] (the first at once), and at once
    /// when the task held changes.
    fn start_heartbeat(&self) -> tokio::task::JoinHandle<()> {
        let catalog = self.catalog.clone();
        let record = self.record.clone();
        let cap = self.options.bandwidth_cap.clone();
        let changed = self.changed.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                let row = record.lock().ok().map(|mut r| {
                    r.heartbeat_at = unix_now();
                    r.bandwidth_cap = cap();
                    r.clone()
                });
                if let Some(row) = row {
                    match catalog.record_worker(&row).await {
                        Ok(()) if failing => {
                            tracing::info!("catalog reachable again: heartbeat recorded");
                            failing = false;
                        }
                        Ok(()) => {}
                        Err(error) => {
                            tracing::warn!(
                                "cannot record the worker's heartbeat ({error}); retrying in {}s",
                                HEARTBEAT_EVERY.as_secs()
                            );
                            failing = true;
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                    _ = changed.notified() => {}
                }
            }
        })
    }
}

/// Terminates a message that can never run, saying why.
async fn refuse(acker: &Acker, subject: &str, reason: &str) {
    tracing::error!(
        "refused task message on {subject}: {reason}; terminated (it will not be redelivered)"
    );
    if let Err(error) = acker.ack_with(AckKind::Term).await {
        tracing::warn!("could not terminate the message on {subject} ({error}); it may come back and be refused again");
    }
}

/// Tells the queue every third of the ack wait that the task is still being worked on,
/// each time waiting for the server's confirmation. The returned future completes when no
/// confirmation came for four fifths of the ack wait: the server may hand the task to
/// another worker soon, so this one must stop (a partitioned worker must not keep writing
/// files another worker now owns).
fn report_progress(
    acker: Arc<Acker>,
    ack_wait: Duration,
) -> (
    tokio::task::JoinHandle<()>,
    impl std::future::Future<Output = ()>,
) {
    let every = (ack_wait / 3).max(Duration::from_millis(100));
    let (confirmed, mut last) = watch::channel(Instant::now());
    let reporter = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let sent = Instant::now();
            match tokio::time::timeout(every, acker.double_ack_with(AckKind::Progress)).await {
                Ok(Ok(())) => {
                    let _ = confirmed.send(sent);
                }
                Ok(Err(error)) => {
                    tracing::warn!("cannot report progress to the task queue ({error})")
                }
                Err(_) => tracing::warn!("the task queue did not confirm progress in {every:?}"),
            }
        }
    });
    let lease_lost = async move {
        loop {
            let deadline = *last.borrow_and_update() + ack_wait.mul_f64(0.8);
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => return,
                changed = last.changed() => {
                    if changed.is_err() {
                        // The reporter stopped (the task ended): never fires.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    };
    (reporter, lease_lost)
}

/// The destination's files among the task's, with their sizes (one stat each).
async fn existing_of(plan: &Plan, destination: &Store) -> Result<HashMap<String, u64>, MoverError> {
    let mut existing = HashMap::new();
    for file in &plan.files {
        if let Some(entry) =
            crate::retry::retry_store(|| destination.stat(&file.planned.path)).await?
        {
            existing.insert(file.planned.path.clone(), entry.size);
        }
    }
    Ok(existing)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
