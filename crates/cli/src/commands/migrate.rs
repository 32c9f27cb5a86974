//! `strata migrate SRC DST`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use strata_codec::parity::ParityRequest;
use strata_mover::encryption::{dataset_encryption, Cipher, KeyRing};
use strata_mover::{
    DatasetSource, MigrateOptions, MigrationJob, MigrationReport, ParityReport, Progress,
    SettleOptions, TargetLayout, WriteCheck,
};

use super::codec_args::CodecArgs;
use super::key_args::KeyArgs;
use super::migrate_stripe::{effective_chunk_size, parse_stripe_size};
use super::throttle_args::{progress_message, ThrottleArgs};
use super::Context;
use crate::output;
use crate::units::{check_chunk_memory, parse_chunk_size, parse_duration, parse_jobs};
use strata_store::faults::FaultSide;

/// Arguments of `strata migrate`.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Source: a directory, file:///path, s3://bucket/prefix, azblob://container/prefix,
    /// gs://bucket/prefix, swift://container/prefix or memory://.
    pub source: String,
    /// Destination: a directory, file:///path, s3://bucket/prefix,
    /// azblob://container/prefix, gs://bucket/prefix, swift://container/prefix or memory://.
    pub destination: String,
    /// Print the plan (files, bytes, chunks) and move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Chunk tasks in flight at once (1 to 256; each holds a chunk in memory).
    #[arg(long, short = 'j', default_value = "8", value_parser = parse_jobs)]
    pub jobs: usize,
    /// Chunk size: a power of two from 1K to 256M (binary units: 4M is 4 MiB).
    #[arg(long, default_value = "4M", value_parser = parse_chunk_size)]
    pub chunk_size: u64,
    /// Align chunks to this stripe size of a striped file system (Lustre: `lfs getstripe
    /// -S DIR`; GPFS: the block size): the chunk size becomes a whole number of stripes
    /// (stripe × max(1, round(chunk / stripe))), so every chunk starts on a stripe
    /// boundary. A power of two from 1K to 256M, e.g. 1MiB or 4M. See docs/LUSTRE.md.
    #[arg(long, value_name = "SIZE", value_parser = parse_stripe_size)]
    pub stripe_size: Option<u64>,
    /// Replace destination files whose content differs from the source.
    #[arg(long)]
    pub overwrite: bool,
    /// What each staged chunk is read back from, and checked against its hash, before the
    /// file is published: `sent` (nothing read back: the hash of the bytes sent), `cache`
    /// (the staged file through the page cache: proves the file holds the bytes at their
    /// offsets), `device` (read with direct I/O past the page cache: proves the bytes came
    /// back from the device; slower). Local destinations; object
    /// stores check the bytes sent (`strata verify` re-reads what was published).
    #[arg(long, default_value = "cache")]
    pub verify: WriteCheck,
    /// The same as `--verify sent`.
    #[arg(long, conflicts_with = "verify")]
    pub no_verify: bool,
    /// Destination layout: `plain` (files stay files) or `packed` (compressed,
    /// content-addressed chunks and packs; restore with `strata migrate PACKED PLAIN`).
    #[arg(long, default_value = "plain", value_parser = ["plain", "packed"])]
    pub layout: String,
    #[command(flatten)]
    pub codec: CodecArgs,
    #[command(flatten)]
    pub throttle: ThrottleArgs,
    /// Reed-Solomon parity for a packed destination, written after the data: `10%` (a
    /// budget: about 10% of the data in parity, with groups of 20 objects + 2 parity shards
    /// when the objects' sizes allow, larger groups or fewer shards when they do not) or
    /// `ec:K+M` (exactly: any M of K+M may be lost). What will be written, and why it
    /// differs from the request, is printed before it is written. `strata repair` rebuilds
    /// from it.
    #[arg(long)]
    pub parity: Option<String>,
    /// Defer files modified less than this long ago (still being written) until they
    /// have not changed for this long, then copy them in the same run; `0` turns the
    /// deferral off (a file that changes during its copy is still never published).
    #[arg(long, default_value = "2s", env = "STRATA_SETTLE", value_parser = parse_duration)]
    pub settle: Duration,
    /// Give up on a deferred file still changing after this long (reported, exit 1).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub settle_timeout: Duration,
    /// Plan the job here, then publish its tasks on this NATS JetStream server
    /// (nats://HOST:PORT) for `strata worker` processes to run, instead of copying here.
    #[arg(long, value_name = "URL")]
    pub queue: Option<String>,
    /// With --queue: the queue's name (stream NAME_tasks, consumer NAME-workers), so that
    /// deployments sharing a NATS server stay apart; workers must give the same.
    #[arg(
        long,
        default_value = "strata",
        env = "STRATA_QUEUE_NAME",
        value_name = "NAME"
    )]
    pub queue_name: String,
    /// With --queue: wait, showing progress, until the workers have finished the job.
    #[arg(long, requires = "queue")]
    pub wait: bool,
    /// With --queue: bytes of files per task (binary units); the last tenth of the job is
    /// cut into tasks eight times smaller, so the job's end spreads over every worker. A
    /// larger file is cut into chunk ranges of this size for a file-system destination.
    #[arg(long, default_value = "256M", requires = "queue", value_parser = crate::units::parse_size)]
    pub task_size: u64,
    /// Encrypt the packed destination: every frame sealed with the key of
    /// --encryption-key-file or --encryption-key-env, objects named by keyed hashes (needs
    /// --layout packed). Restoring, verifying or inspecting it needs the same key.
    #[arg(long)]
    pub encrypt: bool,
    /// The cipher of --encrypt.
    #[arg(
        long,
        default_value = "xchacha20poly1305",
        value_parser = ["xchacha20poly1305", "aes-256-gcm"],
        requires = "encrypt"
    )]
    pub cipher: String,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// Refuse, before any store is opened, encryption flags that cannot work together: the
/// key of `--encrypt` missing, or `--encrypt` with a layout, parity or queue that cannot
/// honour it (nothing may be written in clear).
fn check_encryption_flags(args: &MigrateArgs) -> anyhow::Result<()> {
    if !args.encrypt {
        return Ok(());
    }
    if args.key.flag().is_none() {
        anyhow::bail!(
            "--encrypt needs the key: give --encryption-key-file PATH (a file of 32 raw \
             bytes, e.g. `head -c 32 /dev/urandom > FILE`) or --encryption-key-env VAR"
        );
    }
    if args.layout != "packed" {
        anyhow::bail!(
            "--encrypt needs --layout packed: a plain destination's files stay readable \
             without Strata, which encrypted ones cannot be"
        );
    }
    if args.queue.is_some() {
        anyhow::bail!(
            "--queue cannot be combined with --encrypt yet: the workers would need the key \
             and do not take one; migrate here without --queue"
        );
    }
    Ok(())
}

/// Refuse a key that nothing would use (no `--encrypt`, and a source that is not
/// encrypted), and an encrypted source handed to queue workers (they hold no key).
fn check_key_use(args: &MigrateArgs, source: &DatasetSource) -> anyhow::Result<()> {
    let source_encrypted = matches!(source, DatasetSource::Packed(p) if p.is_encrypted());
    if let (Some(flag), false, false) = (args.key.flag(), args.encrypt, source_encrypted) {
        anyhow::bail!(
            "{flag} is given without --encrypt and {} is not an encrypted dataset, so the \
             key would be unused: add --encrypt (with --layout packed) to encrypt the \
             destination",
            args.source
        );
    }
    if source_encrypted && args.queue.is_some() {
        anyhow::bail!(
            "{} is encrypted: --queue workers hold no key, so restore it here without --queue",
            args.source
        );
    }
    Ok(())
}

/// Run the command.
pub async fn run(context: &Context, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let chunk_size = effective_chunk_size(args.chunk_size, args.stripe_size);
    check_chunk_memory(args.jobs, chunk_size).map_err(anyhow::Error::msg)?;
    check_encryption_flags(&args)?;
    let key = args.key.load()?;
    // Bandwidth control wraps both stores, so every read and write of the job is paced.
    let control = args.throttle.build()?;
    let _live_updates = control.as_ref().map(|c| c.start_live_updates());
    let source = context
        .open_store(&args.source, FaultSide::Src, control.as_ref())
        .await?;
    let source = DatasetSource::open(source, key.as_ref()).await?;
    check_key_use(&args, &source)?;
    let destination = context
        .open_store(&args.destination, FaultSide::Dst, control.as_ref())
        .await?;
    // After the stores are under their throttles, so the first snapshot already lists them.
    let live = LiveFile::start(context, &args, control.clone());
    let layout = match args.layout.as_str() {
        "packed" => TargetLayout::Packed(args.codec.objective()?),
        _ => TargetLayout::Plain,
    };
    let parity = args
        .parity
        .as_deref()
        .map(|text| ParityRequest::parse(text).map_err(|e| anyhow::anyhow!("--parity: {e}")))
        .transpose()?;
    let options = MigrateOptions {
        chunk_size,
        jobs: args.jobs,
        dry_run: args.dry_run,
        overwrite: args.overwrite,
        verify: if args.no_verify {
            WriteCheck::Sent
        } else {
            args.verify
        },
        settle: SettleOptions {
            settle: args.settle,
            timeout: args.settle_timeout,
        },
    };
    if let Some(queue) = &args.queue {
        // Workers hold no key: they would add frames in clear to an encrypted dataset.
        if let Some(sealed) = dataset_encryption(&destination).await? {
            anyhow::bail!(
                "{} is an encrypted dataset (key id {}): --queue workers hold no key and \
                 would write to it in clear; migrate here with --encrypt and its key instead",
                destination.display(),
                sealed.key_id
            );
        }
        let queued = super::queue::QueuedMigration {
            url: queue,
            name: &args.queue_name,
            wait: args.wait,
            task_size: args.task_size,
        };
        return queued
            .run(context, source, destination, options, layout, parity)
            .await;
    }
    let mut job = MigrationJob::new(source, destination, options, layout, parity)?;
    if let (true, Some(key)) = (args.encrypt, key) {
        let cipher = Cipher::parse(&args.cipher).map_err(anyhow::Error::msg)?;
        job = job.encrypt(KeyRing::new(cipher, key, Vec::new()))?;
    }
    let catalog = context.catalog().await?;
    let progress = Arc::new(Progress::default());
    let show_bar = !context.json && !args.dry_run && std::io::stderr().is_terminal();
    let bar = show_bar.then(|| spawn_bar(progress.clone()));
    let result = job.copy(catalog, progress.clone()).await;
    if let Some((bar, task)) = bar {
        task.abort();
        bar.finish_and_clear();
    }
    if let Some(live) = live {
        live.finish().await;
    }
    let report = result?;
    if !context.json {
        for line in progress.take_messages() {
            eprintln!("{line}");
        }
        print_report(false, &report);
    }
    let announce = |plan: &ParityReport| {
        if !context.json {
            outln!("{}", output::parity_plan(plan));
        }
    };
    let parity = job.write_parity(&report, announce).await?;
    if let (Some(request), true, false) = (job.parity_request(), args.dry_run, context.json) {
        outln!(
            "parity {request}: chosen once the data is packed (the stored objects' sizes \
             decide the groups); the run says what it writes, and why, before writing it"
        );
    }
    if context.json {
        let chunking = Chunking {
            chunk_size,
            stripe_size: args.stripe_size,
        };
        print_json_result(&report, parity.as_ref(), control.as_ref(), &chunking)?;
    } else {
        if let Some(stripe) = args.stripe_size {
            outln!(
                "chunks: {} ({} stripes of {})",
                crate::units::human_bytes(chunk_size),
                chunk_size / stripe,
                crate::units::human_bytes(stripe)
            );
        }
        if let Some(p) = &parity {
            outln!(
                "parity {} written: {} ({:.1}% of {}), {} of {} groups computed now, in {:.1}s",
                p.spec,
                crate::units::human_bytes(p.parity_bytes),
                output::percent(p.parity_bytes, p.data_bytes),
                crate::units::human_bytes(p.data_bytes),
                p.groups_written,
                p.groups,
                p.seconds
            );
        }
        // Nothing to say when no store was throttled (local to local without a limit).
        let message = control.as_ref().map(progress_message).unwrap_or_default();
        if !message.is_empty() {
            outln!("bandwidth: {message}");
        }
    }
    Ok(if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The progress display: a spinner while the plan is made, then a bar. The bar waits for
/// the plan's byte total: drawn before it, a bar of length 0 shows full at `0 B/0 B`.
fn spawn_bar(progress: Arc<Progress>) -> (ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let handle = {
        let bar = bar.clone();
        tokio::spawn(async move {
            let mut planned = false;
            loop {
                let (message, total) = bar_state(&progress);
                match total {
                    Some(total) => {
                        if !planned {
                            bar.set_style(
                                ProgressStyle::with_template(
                                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                                )
                                .unwrap_or_else(|_| ProgressStyle::default_bar()),
                            );
                            planned = true;
                        }
                        bar.set_length(total);
                        bar.set_position(Progress::get(&progress.bytes_done));
                    }
                    None => bar.tick(),
                }
                bar.set_message(message);
                for line in progress.take_messages() {
                    bar.println(line);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    (bar, handle)
}

/// The progress line's message, and the byte total once the plan has one (`None` while
/// planning, or when every planned file is empty: nothing to draw a bar of).
fn bar_state(progress: &Progress) -> (String, Option<u64>) {
    let files_total = Progress::get(&progress.files_total);
    let bytes_total = Progress::get(&progress.bytes_total);
    if files_total == 0 {
        return ("planning: listing the source".into(), None);
    }
    let message = format!(
        "files {}/{files_total}",
        Progress::get(&progress.files_done)
    );
    (message, (bytes_total > 0).then_some(bytes_total))
}

/// The chunk size a run used, and the stripe size it was aligned to (`--stripe-size`).
struct Chunking {
    chunk_size: u64,
    stripe_size: Option<u64>,
}

/// The `--json` result: the report, with the parity written, the throttles' state, and,
/// when chunks were aligned to stripes, the chunk size used and the stripe size.
fn print_json_result(
    report: &MigrationReport,
    parity: Option<&ParityReport>,
    control: Option<&strata_store::BandwidthControl>,
    chunking: &Chunking,
) -> anyhow::Result<()> {
    if parity.is_none() && control.is_none() && chunking.stripe_size.is_none() {
        print_report(true, report);
        return Ok(());
    }
    let mut value = serde_json::to_value(report)?;
    if let Some(stripe) = chunking.stripe_size {
        value["chunk_size"] = chunking.chunk_size.into();
        value["stripe_size"] = stripe.into();
    }
    if let Some(parity) = parity {
        value["parity"] = serde_json::to_value(parity)?;
        value["parity"]["note"] = output::parity_note(parity).into();
    }
    if let Some(control) = control {
        value["throttle"] = serde_json::to_value(control.status())?;
    }
    output::print_json(&value);
    Ok(())
}

pub(super) fn print_report(json: bool, report: &MigrationReport) {
    if json {
        output::print_json(report);
        return;
    }
    for entry in &report.skipped_entries {
        eprintln!("warning: skipped {}: {}", entry.path, entry.error);
    }
    for entry in &report.unreadable_entries {
        eprintln!("error: cannot read {}: {}", entry.path, entry.error);
    }
    if report.dry_run {
        outln!(
            "plan for job {}: {} files, {} ({} bytes), {} chunks; nothing moved (dry run)",
            report.job,
            report.files,
            crate::units::human_bytes(report.bytes),
            report.bytes,
            report.chunks
        );
        return;
    }
    outln!("{}", output::migration_summary(report));
}

/// Publishes the job's bandwidth state for `strata status` while the job runs.
struct LiveFile {
    path: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl LiveFile {
    fn start(
        context: &Context,
        args: &MigrateArgs,
        control: Option<strata_store::BandwidthControl>,
    ) -> Option<LiveFile> {
        let control = control?;
        let catalog = context.catalog_file("live state").ok()?;
        let source = strata_store::StoreUri::parse(&args.source)
            .ok()?
            .to_string();
        let destination = strata_store::StoreUri::parse(&args.destination)
            .ok()?
            .to_string();
        let path = crate::live_status::live_path(&catalog, &source, &destination);
        let writer = path.clone();
        let task = tokio::spawn(async move {
            loop {
                let value = serde_json::json!({
                    "pid": std::process::id(),
                    "throttle": control.status(),
                    "summary": progress_message(&control),
                });
                crate::live_status::write(&writer, &value);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Some(LiveFile { path, task })
    }

    /// Stops the writer, waiting until it has stopped, then removes the file (on drop): a
    /// write in progress on another thread must not put it back after the job has ended
    /// (`strata status` would show a finished job's bandwidth).
    async fn finish(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for LiveFile {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_has_no_total_until_the_plan_has_one() {
        let progress = Progress::default();
        let (message, total) = bar_state(&progress);
        assert_eq!(
            total, None,
            "no bar (it would draw full at 0 B/0 B) while planning"
        );
        assert!(message.contains("planning"), "{message}");
        Progress::add(&progress.files_total, 3);
        assert_eq!(
            bar_state(&progress).1,
            None,
            "a plan without its byte total yet"
        );
        Progress::add(&progress.bytes_total, 3 << 20);
        Progress::add(&progress.files_done, 1);
        assert_eq!(
            bar_state(&progress),
            ("files 1/3".to_string(), Some(3 << 20))
        );
    }
}
