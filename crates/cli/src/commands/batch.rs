//! `strata slurm submit` and `strata pbs script`: workers launched by a batch scheduler.
//!
//! A distributed migration is a job planned in the shared catalog whose chunk tasks wait
//! on a queue (`strata migrate SRC DST --queue nats://...`); workers (`strata worker`)
//! take them. On a cluster the workers are one array job of the scheduler, one array
//! task per worker, so that the scheduler finds the nodes, starts them and accounts for
//! them. This module writes that array job's script from the migrate arguments:
//!
//! - `strata slurm submit --workers N [--partition P --time T ...] -- <migrate args>`
//!   plans the job and publishes its tasks (the migrate arguments, exactly as `strata
//!   migrate` takes them), then submits `sbatch --array=0-(N-1)` with the script on its
//!   standard input; `--dry-run` prints the script and does nothing else.
//! - `strata pbs script --workers N [...] -- <migrate args>` prints the equivalent PBS Pro
//!   script (`qsub -J 0-(N-1)`). It is text only: no PBS server can be installed where
//!   Strata is tested, so the script's text is tested, never run against PBS.
//!
//! The worker's command line is the migrate arguments a worker also takes (the queue, the
//! bandwidth flags: each worker is a node's share of the link), found by asking `strata
//! worker`'s own flag definitions, so a flag added to both is passed on without a change
//! here. Secrets never go into a script (the scheduler keeps scripts in its spool): the
//! catalog and S3 settings reach the workers through the environment the job inherits
//! (`--export=ALL`, `qsub -V`), and a flag value holding a URL password is passed through
//! the environment variable the worker reads for that flag, or refused.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use anyhow::{bail, Context as _};
use clap::{Args, CommandFactory, Parser, Subcommand};

use super::migrate::MigrateArgs;
use super::Context;
use crate::units::parse_duration;

/// `strata slurm ...`.
#[derive(Args, Debug)]
pub struct SlurmArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SlurmCommand,
}

/// The `strata slurm` subcommands.
#[derive(Subcommand, Debug)]
pub enum SlurmCommand {
    /// Plan a migration, publish its chunk tasks, and submit `strata worker` as a SLURM
    /// array job of --workers tasks (`sbatch --array`); --dry-run prints the script only.
    Submit(SlurmSubmitArgs),
}

/// `strata pbs ...`.
#[derive(Args, Debug)]
pub struct PbsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PbsCommand,
}

/// The `strata pbs` subcommands.
#[derive(Subcommand, Debug)]
pub enum PbsCommand {
    /// Print a PBS Pro array job script (`qsub -J`) that runs `strata worker`; submit it
    /// with `qsub` after planning the job with `strata migrate ... --queue`. (Not run
    /// against a PBS server by Strata's tests: its text is tested.)
    Script(PbsScriptArgs),
}

/// What every scheduler's array job needs.
#[derive(Args, Debug, Clone)]
pub struct ArrayArgs {
    /// Workers to launch: one array task each (1 to 10000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub workers: u32,
    /// The `strata` binary on the compute nodes (default: this binary's absolute path,
    /// which assumes a file system shared with them).
    #[arg(long, value_name = "PATH")]
    pub strata: Option<PathBuf>,
    /// The array job's name.
    #[arg(long, default_value = "strata-worker")]
    pub job_name: String,
    /// Each worker exits after this long with no task to take (`strata worker
    /// --idle-exit`), so the array job ends when the migration is done; at least
    /// --ack-wait.
    #[arg(long, default_value = "60s", value_parser = parse_duration_text)]
    pub idle_exit: String,
    /// The workers' --ack-wait: a task held by a worker that died goes to another after
    /// this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration_text)]
    pub ack_wait: String,
    /// The arguments of `strata migrate`, after `--`: SRC DST --queue nats://HOST:PORT and
    /// any other migrate flags.
    #[arg(last = true, required = true, value_name = "MIGRATE ARGS")]
    pub migrate: Vec<String>,
}

/// `strata slurm submit`.
#[derive(Args, Debug)]
pub struct SlurmSubmitArgs {
    #[command(flatten)]
    pub array: ArrayArgs,
    /// SLURM partition (`#SBATCH --partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each worker (`#SBATCH --time`, e.g. `2:00:00`).
    #[arg(long)]
    pub time: Option<String>,
    /// Account to charge (`#SBATCH --account`).
    #[arg(long)]
    pub account: Option<String>,
    /// CPUs per worker (`#SBATCH --cpus-per-task`).
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// Memory per worker (`#SBATCH --mem`, e.g. `4G`).
    #[arg(long)]
    pub mem: Option<String>,
    /// Each worker's log file (`#SBATCH --output`; `%A` is the array job, `%a` the task).
    #[arg(long, default_value = "strata-worker-%A_%a.log")]
    pub output: String,
    /// Any other sbatch option, as it would follow `#SBATCH` (repeatable), e.g.
    /// `--sbatch-option=--qos=long`.
    #[arg(long = "sbatch-option", value_name = "OPTION")]
    pub sbatch_options: Vec<String>,
    /// Print the script and submit nothing (no job is planned either).
    #[arg(long)]
    pub dry_run: bool,
}

/// `strata pbs script`.
#[derive(Args, Debug)]
pub struct PbsScriptArgs {
    #[command(flatten)]
    pub array: ArrayArgs,
    /// PBS queue (`#PBS -q`).
    #[arg(long)]
    pub pbs_queue: Option<String>,
    /// Wall time of each worker (`#PBS -l walltime=`, e.g. `2:00:00`).
    #[arg(long)]
    pub walltime: Option<String>,
    /// Account or project to charge (`#PBS -A`).
    #[arg(long)]
    pub account: Option<String>,
    /// CPUs per worker (`#PBS -l select=1:ncpus=`).
    #[arg(long)]
    pub ncpus: Option<u32>,
    /// Memory per worker (`#PBS -l select=1:...:mem=`, e.g. `4gb`).
    #[arg(long)]
    pub mem: Option<String>,
}

/// The migrate arguments parsed as `strata migrate` parses them, to refuse a mistake
/// before anything is submitted.
#[derive(Parser, Debug)]
#[command(name = "strata migrate", no_binary_name = true)]
struct MigrateLine {
    #[command(flatten)]
    args: MigrateArgs,
}

/// Run `strata slurm`.
pub async fn run_slurm(context: &Context, args: SlurmArgs) -> anyhow::Result<ExitCode> {
    let SlurmCommand::Submit(submit) = args.command;
    check_waits(&submit.array)?;
    let migrate = parse_migrate(&submit.array.migrate)?;
    let worker = WorkerLine::from_migrate(&submit.array.migrate)?;
    let script = slurm_script(&submit, &worker, &strata_binary(&submit.array)?);
    if submit.dry_run {
        print!("{script}");
        return Ok(ExitCode::SUCCESS);
    }
    let sbatch = which("sbatch").context(
        "sbatch was not found on PATH: run `strata slurm submit` on a SLURM login node, or \
         print the script with --dry-run",
    )?;
    // Plan the job and publish its tasks first: workers that start find them waiting.
    let planned = super::migrate::run(context, migrate).await?;
    if planned != ExitCode::SUCCESS {
        bail!("the migration could not be planned (above); nothing was submitted to SLURM");
    }
    let job = submit_script(&sbatch, &["--parsable"], &script, &worker.env, context)?;
    let job = job.split(';').next().unwrap_or_default().trim().to_string();
    if context.json {
        println!(
            "{}",
            serde_json::json!({"slurm_job": job, "workers": submit.array.workers})
        );
    } else {
        println!(
            "submitted SLURM array job {job}: {} workers (`squeue -j {job}` shows them, \
             `strata status` shows the migration's progress)",
            submit.array.workers
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `strata pbs`.
pub fn run_pbs(args: PbsArgs) -> anyhow::Result<ExitCode> {
    let PbsCommand::Script(script) = args.command;
    check_waits(&script.array)?;
    parse_migrate(&script.array.migrate)?;
    let worker = WorkerLine::from_migrate(&script.array.migrate)?;
    print!(
        "{}",
        pbs_script(&script, &worker, &strata_binary(&script.array)?)
    );
    Ok(ExitCode::SUCCESS)
}

/// A duration as the worker takes it, kept as written for the script.
fn parse_duration_text(text: &str) -> Result<String, String> {
    parse_duration(text).map(|_| text.to_string())
}

/// Refuses an idle exit shorter than the ack wait, as `strata worker` would on the nodes.
fn check_waits(array: &ArrayArgs) -> anyhow::Result<()> {
    let idle = parse_duration(&array.idle_exit).map_err(anyhow::Error::msg)?;
    let ack = parse_duration(&array.ack_wait).map_err(anyhow::Error::msg)?;
    if idle < ack {
        bail!(
            "--idle-exit {} is shorter than --ack-wait {}: a task held by a worker that died \
             comes back only after the ack wait, and no worker would be left to take it",
            array.idle_exit,
            array.ack_wait
        );
    }
    Ok(())
}

fn parse_migrate(tokens: &[String]) -> anyhow::Result<MigrateArgs> {
    let line = MigrateLine::try_parse_from(tokens).map_err(|e| {
        anyhow::anyhow!(
            "the arguments after `--` are not a valid `strata migrate` command line:\n{}",
            e.render()
        )
    })?;
    if !tokens
        .iter()
        .any(|t| t == "--queue" || t.starts_with("--queue="))
    {
        bail!(
            "the migrate arguments need --queue nats://HOST:PORT: the workers take the job's \
             chunk tasks from that queue (e.g. `-- SRC DST --queue nats://10.0.0.5:4222`)"
        );
    }
    Ok(line.args)
}

fn strata_binary(array: &ArrayArgs) -> anyhow::Result<PathBuf> {
    match &array.strata {
        Some(path) => Ok(path.clone()),
        None => std::env::current_exe()
            .context("cannot tell where this strata binary is; give --strata PATH"),
    }
}

/// `strata worker`'s command line for the array tasks: the flags of the migrate line a
/// worker takes too, and the variables that must reach it through the environment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WorkerLine {
    /// Arguments after `strata worker`.
    pub args: Vec<String>,
    /// Variables to set for the submission (values that must not be written in a script).
    pub env: Vec<(String, String)>,
}

impl WorkerLine {
    /// The worker's share of `migrate` (the tokens after `--`).
    pub fn from_migrate(migrate: &[String]) -> anyhow::Result<WorkerLine> {
        forward_flags(migrate, &MigrateLine::command(), &worker_command())
    }
}

/// The definitions of `strata worker`'s flags.
fn worker_command() -> clap::Command {
    super::worker::WorkerArgs::augment_args(clap::Command::new("strata worker"))
}

/// The flags of `tokens` (a `from` command line) that `to` also defines, with their values;
/// positionals and flags `to` lacks are left out. A value holding a URL password goes to
/// the environment variable `to` reads for that flag, or is refused.
fn forward_flags(
    tokens: &[String],
    from: &clap::Command,
    to: &clap::Command,
) -> anyhow::Result<WorkerLine> {
    let mut line = WorkerLine::default();
    let mut rest = tokens.iter();
    while let Some(token) = rest.next() {
        if token == "--" {
            break;
        }
        let Some(flag) = flag_of(token, from) else {
            continue;
        };
        let takes_value = flag.get_action().takes_values();
        let value = match token.split_once('=') {
            Some((_, value)) if token.starts_with("--") => Some(value.to_string()),
            _ if takes_value => rest.next().cloned(),
            _ => None,
        };
        let Some(long) = flag.get_long() else {
            continue;
        };
        let Some(target) = to.get_arguments().find(|a| a.get_long() == Some(long)) else {
            continue;
        };
        match value {
            Some(value) if has_url_password(&value) => match target.get_env() {
                Some(var) => line.env.push((var.to_string_lossy().into_owned(), value)),
                None => bail!(
                    "--{long} holds a password, which would be written into the batch \
                     script: give the password another way (an environment variable or a \
                     credentials file the worker reads)"
                ),
            },
            Some(value) => line.args.extend([format!("--{long}"), value]),
            None => line.args.push(format!("--{long}")),
        }
    }
    Ok(line)
}

/// The flag `token` names in `command`, if it is a flag.
fn flag_of<'c>(token: &str, command: &'c clap::Command) -> Option<&'c clap::Arg> {
    if let Some(long) = token.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or(long);
        return command.get_arguments().find(|a| a.get_long() == Some(name));
    }
    let short = token.strip_prefix('-')?.chars().next()?;
    command
        .get_arguments()
        .find(|a| a.get_short() == Some(short))
}

/// Whether `value` is a URL with a password (`scheme://user:password@host`).
fn has_url_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// A word for a POSIX shell: quoted unless it is plainly safe.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The body both schedulers run: one worker per array task, named after it.
fn worker_body(
    array: &ArrayArgs,
    strata: &std::path::Path,
    worker: &WorkerLine,
    id: &str,
) -> String {
    let mut command = vec![
        shell_word(&strata.to_string_lossy()),
        "worker".to_string(),
        "--worker-id".to_string(),
        format!("\"{id}\""),
        "--ack-wait".to_string(),
        shell_word(&array.ack_wait),
        "--idle-exit".to_string(),
        shell_word(&array.idle_exit),
    ];
    command.extend(worker.args.iter().map(|a| shell_word(a)));
    format!(
        "set -eu\n# The catalog, S3 settings and credentials come from the environment of the\n\
         # submission (never written here).\nexec {}\n",
        command.join(" ")
    )
}

/// The `sbatch` script of `submit`.
pub fn slurm_script(
    submit: &SlurmSubmitArgs,
    worker: &WorkerLine,
    strata: &std::path::Path,
) -> String {
    let array = &submit.array;
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        "# Written by `strata slurm submit`: one strata worker per array task.".to_string(),
        format!("#SBATCH --job-name={}", shell_word(&array.job_name)),
        format!("#SBATCH --array=0-{}", array.workers - 1),
        "#SBATCH --ntasks=1".to_string(),
        "#SBATCH --export=ALL".to_string(),
        format!("#SBATCH --output={}", shell_word(&submit.output)),
    ];
    let optional = [
        ("partition", submit.partition.clone()),
        ("time", submit.time.clone()),
        ("account", submit.account.clone()),
        ("cpus-per-task", submit.cpus_per_task.map(|c| c.to_string())),
        ("mem", submit.mem.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            lines.push(format!("#SBATCH --{name}={}", shell_word(&value)));
        }
    }
    lines.extend(submit.sbatch_options.iter().map(|o| format!("#SBATCH {o}")));
    let id = "slurm-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}";
    format!(
        "{}\n{}",
        lines.join("\n"),
        worker_body(array, strata, worker, id)
    )
}

/// The PBS Pro script of `script`.
pub fn pbs_script(script: &PbsScriptArgs, worker: &WorkerLine, strata: &std::path::Path) -> String {
    let array = &script.array;
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        "# Written by `strata pbs script`: one strata worker per array subjob. Submit with"
            .to_string(),
        "# `qsub SCRIPT` after `strata migrate ... --queue` has planned the job.".to_string(),
        format!("#PBS -N {}", shell_word(&array.job_name)),
        format!("#PBS -J 0-{}", array.workers - 1),
        "#PBS -V".to_string(),
        "#PBS -j oe".to_string(),
    ];
    let mut select = "select=1".to_string();
    if let Some(ncpus) = script.ncpus {
        select.push_str(&format!(":ncpus={ncpus}"));
    }
    if let Some(mem) = &script.mem {
        select.push_str(&format!(":mem={}", shell_word(mem)));
    }
    lines.push(format!("#PBS -l {select}"));
    if let Some(walltime) = &script.walltime {
        lines.push(format!("#PBS -l walltime={}", shell_word(walltime)));
    }
    if let Some(queue) = &script.pbs_queue {
        lines.push(format!("#PBS -q {}", shell_word(queue)));
    }
    if let Some(account) = &script.account {
        lines.push(format!("#PBS -A {}", shell_word(account)));
    }
    let id = "pbs-${PBS_ARRAY_ID}_${PBS_ARRAY_INDEX}";
    format!(
        "{}\n{}",
        lines.join("\n"),
        worker_body(array, strata, worker, id)
    )
}

/// Runs `program` (sbatch) with `script` on its standard input, in the environment the
/// workers must inherit; returns what it printed.
fn submit_script(
    program: &std::path::Path,
    args: &[&str],
    script: &str,
    env: &[(String, String)],
    context: &Context,
) -> anyhow::Result<String> {
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(catalog) = &context.catalog_path {
        command.env("STRATA_CATALOG", catalog);
    }
    if let Some(endpoint) = &context.s3.endpoint {
        command.env("AWS_ENDPOINT_URL", endpoint);
    }
    if let Some(region) = &context.s3.region {
        command.env("AWS_REGION", region);
    }
    if let Some(path_style) = context.s3.path_style {
        command.env("STRATA_S3_PATH_STYLE", path_style.to_string());
    }
    let shown = program.display();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {shown}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .with_context(|| format!("cannot give the script to {shown}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("{shown} did not finish"))?;
    if !out.status.success() {
        bail!(
            "{shown} refused the job ({}): {}\nthe migration is planned and its tasks wait \
             on the queue: fix the scheduler options and submit again, or start workers by \
             hand with `strata worker`",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `program`'s path on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests;
