//! The end of a distributed job: which task finishes it, decided in the catalog, and what
//! the finisher does (the dataset manifest, or the job marked failed), exactly as a
//! single-node run ends.

use strata_catalog::{Catalog, FinishClaim, JobId, JobState};
use strata_store::Store;

use crate::job_manifest::write_job_manifest;
use crate::MoverError;

/// What the end of a task meant for its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// Files are still pending: other tasks finish the job.
    Running {
        /// Files not yet in a final state.
        pending: u64,
    },
    /// Another task finishes (or finished) the job.
    FinishedElsewhere,
    /// This task finished the job: the manifest is written.
    Completed {
        /// The dataset's root hash.
        root_hash: String,
    },
    /// This task finished the job, which failed (files failed or were unreadable).
    Failed {
        /// Why, as recorded in the catalog.
        message: String,
    },
}

/// Where the job stands after a task: `run` and `task` are the task's run and key,
/// `worker` who asks; the claim ([`Catalog::claim_job_finish`]) makes one task the
/// finisher, which writes the manifest and marks the job done (or failed).
#[allow(clippy::too_many_arguments)]
pub async fn end_of_task(
    catalog: &dyn Catalog,
    destination: &Store,
    job: JobId,
    chunk_size: u64,
    run: &str,
    task: &str,
    worker: &str,
    unreadable_entries: u64,
) -> Result<JobEnd, MoverError> {
    let failed = match catalog.claim_job_finish(job, run, task, worker).await? {
        FinishClaim::NotYet { pending } => return Ok(JobEnd::Running { pending }),
        FinishClaim::Taken | FinishClaim::AlreadyDone => return Ok(JobEnd::FinishedElsewhere),
        FinishClaim::Yours { failed } => failed,
    };
    if failed > 0 || unreadable_entries > 0 {
        let message = format!("{failed} file(s) failed, {unreadable_entries} unreadable");
        catalog
            .set_job_state(job, JobState::Failed, Some(&message), None)
            .await?;
        return Ok(JobEnd::Failed { message });
    }
    let root_hash = write_job_manifest(catalog, destination, job, chunk_size).await?;
    catalog
        .set_job_state(job, JobState::Done, None, Some(&root_hash))
        .await?;
    Ok(JobEnd::Completed { root_hash })
}
