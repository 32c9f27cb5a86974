//! `strata migrate SRC DST --queue nats://HOST:PORT [--wait]`: plans the job in the
//! catalog as a single-node run does, publishes its chunk tasks for `strata worker`
//! processes, then returns (saying how to follow the job) or waits for the workers to
//! finish it, showing progress.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use strata_catalog::{Catalog, JobId, JobState};
use strata_codec::parity::ParityRequest;
use strata_mover::distributed::{queue::shown_url, submit, JobEnd, Submitted, TaskQueue};
use strata_mover::{DatasetSource, MigrateOptions, TargetLayout};
use strata_store::Store;

use super::Context;
use crate::output;
use crate::units::human_bytes;

/// How often `--wait` reads the job's progress from the catalog.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// A migration handed to workers through a queue.
pub struct QueuedMigration<'a> {
    /// `--queue`.
    pub url: &'a str,
    /// `--queue-name`.
    pub name: &'a str,
    /// `--wait`.
    pub wait: bool,
    /// `--task-size`.
    pub task_size: u64,
}

impl QueuedMigration<'_> {
    /// Plans, publishes and (with `--wait`) waits.
    pub async fn run(
        &self,
        context: &Context,
        source: DatasetSource,
        destination: Store,
        options: MigrateOptions,
        layout: TargetLayout,
        parity: Option<ParityRequest>,
    ) -> anyhow::Result<ExitCode> {
        if matches!(layout, TargetLayout::Packed(_)) || parity.is_some() {
            anyhow::bail!(
                "--queue runs plain-layout migrations; --layout packed and --parity run on \
                 one node (drop --queue)"
            );
        }
        let queue = TaskQueue::connect(self.url, self.name, false, |_| {}).await?;
        let catalog = context.catalog().await?;
        let submitted = submit(
            catalog.clone(),
            &source,
            &destination,
            &options,
            &queue,
            self.task_size,
        )
        .await?;
        let job = submitted.report.job;
        if options.dry_run {
            super::migrate::print_report(context.json, &submitted.report);
            return Ok(ExitCode::SUCCESS);
        }
        self.announce(context, &submitted);
        if let Some(end) = &submitted.ended {
            return Ok(end_code(end));
        }
        if !self.wait {
            return Ok(ExitCode::SUCCESS);
        }
        wait_for(context, &*catalog, job).await
    }

    fn announce(&self, context: &Context, submitted: &Submitted) {
        let report = &submitted.report;
        let shown = shown_url(self.url);
        if context.json && !self.wait {
            output::print_json(&serde_json::json!({
                "job": report.job,
                "run": submitted.run,
                "queue": shown,
                "files": report.files,
                "bytes": report.bytes,
                "tasks": submitted.tasks,
                "bytes_queued": submitted.bytes_queued,
                "root_hash": report.root_hash,
            }));
            return;
        }
        if context.json {
            return;
        }
        for entry in &report.unreadable_entries {
            eprintln!("error: cannot read {}: {}", entry.path, entry.error);
        }
        match &submitted.ended {
            Some(JobEnd::Completed { root_hash }) => outln!(
                "job {}: nothing left to copy; manifest written (root hash {root_hash})",
                report.job
            ),
            Some(JobEnd::Failed { message }) => {
                outln!(
                    "job {}: nothing left to copy; failed: {message}",
                    report.job
                )
            }
            _ => {
                outln!(
                    "job {}: {} files, {}; {} task(s) ({}) published on {shown}",
                    report.job,
                    report.files,
                    human_bytes(report.bytes),
                    submitted.tasks,
                    human_bytes(submitted.bytes_queued),
                );
                if !self.wait {
                    outln!(
                        "run workers with `strata worker --queue {shown}` (same catalog); \
                         follow the job with `strata status`"
                    );
                }
            }
        }
    }
}

fn end_code(end: &JobEnd) -> ExitCode {
    match end {
        JobEnd::Failed { .. } => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

/// Waits until the job is done or failed, with a progress bar on a terminal.
async fn wait_for(
    context: &Context,
    catalog: &dyn Catalog,
    job: JobId,
) -> anyhow::Result<ExitCode> {
    let bar = (!context.json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let summary = loop {
        let summary = catalog.job(job).await?.ok_or_else(|| {
            anyhow::anyhow!("job {job} disappeared from the catalog while waiting")
        })?;
        if let Some(bar) = &bar {
            bar.set_length(summary.bytes_total);
            bar.set_position(summary.bytes_done);
            bar.set_message(format!(
                "files {}/{}",
                summary.files_done, summary.files_total
            ));
        }
        if matches!(summary.state, JobState::Done | JobState::Failed) {
            break summary;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if context.json {
        output::print_json(&output::job_json(&summary));
    } else {
        outln!("{}", output::job_line(&summary));
    }
    Ok(if summary.state == JobState::Done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
