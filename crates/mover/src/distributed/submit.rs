//! `strata migrate --queue`: the job planned in the catalog exactly as a single-node run
//! plans it, then its tasks published on the queue instead of copied here.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_catalog::Catalog;
use strata_store::Store;

use super::finish::{end_of_task, JobEnd};
use super::queue::TaskQueue;
use super::task::split_tasks;
use crate::migrate::list_existing;
use crate::plan::{begin_copying, open_job, recheck_finished};
use crate::{DatasetSource, MigrateOptions, MigrationReport, MoverError, Progress};

/// What `strata migrate --queue` did.
#[derive(Debug)]
pub struct Submitted {
    /// The plan's report (nothing copied yet; with `--dry-run`, all there is).
    pub report: MigrationReport,
    /// The run's name, carried by each of its tasks.
    pub run: String,
    /// Tasks published.
    pub tasks: usize,
    /// Bytes of the files left to copy.
    pub bytes_queued: u64,
    /// Set when nothing was left to copy and the job was finished here.
    pub ended: Option<JobEnd>,
}

/// Plans the job for `source` → `destination` in the catalog, then publishes its tasks
/// (of about `task_bytes` each, see [`split_tasks`]) on `queue`. A job with nothing left
/// to copy is finished here (its manifest written), as the last task would.
pub async fn submit(
    catalog: Arc<dyn Catalog>,
    source: &DatasetSource,
    destination: &Store,
    options: &MigrateOptions,
    queue: &TaskQueue,
    task_bytes: u64,
) -> Result<Submitted, MoverError> {
    let mut options = options.clone();
    if let Some(chunk_size) = source.fixed_chunk_size() {
        options.chunk_size = chunk_size;
    }
    let progress = Progress::default();
    let (mut plan, mut report) =
        open_job(&*catalog, source, destination, &options, &progress).await?;
    let run = run_name();
    if options.dry_run {
        return Ok(Submitted {
            report,
            run,
            tasks: 0,
            bytes_queued: 0,
            ended: None,
        });
    }
    // The queue first: a server that is down must not leave the job marked copying.
    queue.stream().await?;
    begin_copying(&*catalog, destination, plan.job).await?;
    let mut existing = list_existing(destination).await?;
    report.recopied = recheck_finished(&*catalog, &mut plan, &mut existing).await?;
    let unreadable = plan.unreadable_entries.len() as u64;
    // A large file is split across workers only where they can share its staged copy.
    let split_files = destination.local_root().is_some();
    let tasks = split_tasks(&plan, task_bytes, &run, &options, unreadable, split_files);
    queue.publish(plan.job, &tasks).await?;
    let ended = if tasks.is_empty() {
        let end = end_of_task(
            &*catalog,
            destination,
            plan.job,
            plan.chunk_size,
            &run,
            "submit",
            "strata migrate",
            unreadable,
        )
        .await?;
        if let JobEnd::Completed { root_hash } = &end {
            report.root_hash = Some(root_hash.clone());
        }
        Some(end)
    } else {
        None
    };
    Ok(Submitted {
        report,
        run,
        bytes_queued: tasks.iter().map(|t| t.bytes).sum(),
        tasks: tasks.len(),
        ended,
    })
}

/// A name for this run, unique enough across processes and nodes: the time in
/// milliseconds and the process id.
fn run_name() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:x}-{}", std::process::id())
}
