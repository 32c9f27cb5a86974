//! `strata worker --queue nats://HOST:PORT`: a worker of distributed migrations. It pulls
//! the chunk tasks that `strata migrate --queue` published, runs them through the same copy
//! path as `strata migrate`, under its own throttle flags (a node's share of the link), and
//! records progress in the shared catalog. Runs until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use futures::FutureExt;
use strata_catalog::{CatalogError, WorkerRecord};
use strata_mover::distributed::{OpenStores, TaskQueue, Worker, WorkerOptions};
use strata_mover::retry::{Advice, Backoff};
use strata_mover::{DatasetSource, MoverError};
use strata_store::faults::FaultSide;
use strata_store::BandwidthControl;
use tokio::sync::watch;

use super::throttle_args::ThrottleArgs;
use super::Context;
use crate::units::{parse_duration, parse_jobs};

/// Arguments of `strata worker`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The NATS JetStream server the tasks are published on (nats://HOST:PORT; a URL
    /// with a password is better given as $STRATA_QUEUE, which no process listing shows).
    #[arg(long, value_name = "URL", env = "STRATA_QUEUE", hide_env_values = true)]
    pub queue: String,
    /// This worker's name in the catalog and in `strata status` (default: host, process
    /// id and start time; `strata slurm submit` names each worker after its array task).
    #[arg(long, value_name = "NAME")]
    pub worker_id: Option<String>,
    /// Stop after this long without a task to take (a worker launched by a batch system
    /// then ends with the migration). At least --ack-wait: a task held by a worker that
    /// died comes back only after the ack wait. Default: run until stopped.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_exit: Option<Duration>,
    /// The queue's name, as given to `strata migrate --queue-name`.
    #[arg(
        long,
        default_value = "strata",
        env = "STRATA_QUEUE_NAME",
        value_name = "NAME"
    )]
    pub queue_name: String,
    /// A task neither acknowledged nor reported on for this long goes to another worker
    /// (a killed worker's tasks come back after it). Set on the consumer all workers share.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ack_wait: Duration,
    /// Chunk tasks in flight at once within a task (1 to 256; each holds a chunk in memory).
    #[arg(long, short = 'j', default_value = "8", value_parser = parse_jobs)]
    pub jobs: usize,
    #[command(flatten)]
    pub throttle: ThrottleArgs,
}

/// Run the command.
pub async fn run(context: &Context, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    if args.ack_wait < Duration::from_secs(1) {
        anyhow::bail!(
            "--ack-wait {:?} is too short: give at least 1s (a task is redelivered when its \
             worker has not reported progress for that long)",
            args.ack_wait
        );
    }
    if let Some(idle) = args.idle_exit.filter(|idle| *idle < args.ack_wait) {
        anyhow::bail!(
            "--idle-exit {idle:?} is shorter than --ack-wait {:?}: a task held by a worker that \
             died comes back only after the ack wait, and no worker would be left to take it; \
             give --idle-exit at least the ack wait",
            args.ack_wait
        );
    }
    if args
        .worker_id
        .as_deref()
        .is_some_and(|id| id.trim().is_empty())
    {
        anyhow::bail!("--worker-id is empty: give a name, or leave it out for the default");
    }
    let control = args.throttle.build()?;
    let _live_updates = control.as_ref().map(|c| c.start_live_updates());
    let catalog = open_catalog(context).await?;
    let queue = TaskQueue::connect(&args.queue, &args.queue_name, true, |event| {
        // Losing the queue is worth a warning; (re)connecting and closing are news.
        if event == "connected" || event == "closed" {
            tracing::info!("task queue connection: {event}");
        } else {
            tracing::warn!("task queue connection: {event}");
        }
    })
    .await?;
    let mut record = announcement();
    if let Some(id) = &args.worker_id {
        record.id = id.clone();
    }
    let options = WorkerOptions {
        jobs: args.jobs,
        ack_wait: args.ack_wait,
        bandwidth_cap: cap_of(control.clone()),
        idle_exit: args.idle_exit,
    };
    let worker = Worker::new(
        catalog,
        queue,
        store_opener(context, control),
        options,
        record,
    );
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop.send(true);
    });
    worker.run(stopped).await?;
    Ok(ExitCode::SUCCESS)
}

/// The catalog, waited for while another process holds it locked (a worker started
/// during a long write must not give up); other errors stop the worker at once.
async fn open_catalog(context: &Context) -> anyhow::Result<Arc<dyn strata_catalog::Catalog>> {
    let backoff = Backoff {
        attempts: u32::MAX,
        base: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };
    let mut attempt = 0;
    loop {
        match context.catalog().await {
            Ok(catalog) => return Ok(catalog),
            Err(error)
                if error
                    .downcast_ref::<CatalogError>()
                    .is_some_and(CatalogError::is_transient) =>
            {
                attempt += 1;
                let wait = backoff.delay(attempt, Advice::Retry);
                tracing::warn!(
                    "cannot open the catalog ({error}); retrying in {:.1}s",
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// What the worker says of itself in the catalog.
fn announcement() -> WorkerRecord {
    let host = hostname();
    let pid = std::process::id();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    WorkerRecord {
        id: format!("{host}-{pid}-{started_at:x}"),
        host,
        pid,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        bandwidth_cap: None,
        throughput: 0,
        bytes_done: 0,
        tasks_done: 0,
        started_at,
        heartbeat_at: started_at,
        job: None,
        task: None,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The lowest write cap among the throttled stores (the worker's share of the link).
fn cap_of(control: Option<BandwidthControl>) -> Arc<dyn Fn() -> Option<u64> + Send + Sync> {
    Arc::new(move || {
        let status = control.as_ref()?.status();
        status
            .stores
            .iter()
            .filter_map(|s| s.status.write.cap.or(s.status.read.cap))
            .min()
    })
}

/// Opens a job's stores as `strata migrate` would, under this worker's throttle and the
/// `STRATA_FAULTS` testing aid.
fn store_opener(context: &Context, control: Option<BandwidthControl>) -> OpenStores {
    let s3 = context.s3.clone();
    let catalog_path = context.catalog_path.clone();
    Arc::new(move |source: String, destination: String| {
        let context = Context {
            catalog_path: catalog_path.clone(),
            json: false,
            s3: s3.clone(),
        };
        let control = control.clone();
        async move {
            let open = |text: String, side| {
                let context = &context;
                let control = control.as_ref();
                async move {
                    context
                        .open_store(&text, side, control)
                        .await
                        .map_err(|e| MoverError::InvalidOptions(format!("{e:#}")))
                }
            };
            let source = open(source, FaultSide::Src).await?;
            let destination = open(destination, FaultSide::Dst).await?;
            Ok((DatasetSource::open(source, None).await?, destination))
        }
        .boxed()
    })
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
