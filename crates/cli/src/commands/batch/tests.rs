//! The scripts' text and the worker's share of the migrate arguments.

use super::*;

fn tokens(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// A worker that takes a queue (also from `STRATA_QUEUE`), a bandwidth cap and a flag.
fn worker() -> clap::Command {
    clap::Command::new("worker")
        .arg(
            clap::Arg::new("queue")
                .long("queue")
                .env("STRATA_QUEUE")
                .required(true),
        )
        .arg(clap::Arg::new("bwlimit").long("bwlimit"))
        .arg(
            clap::Arg::new("no-congestion-control")
                .long("no-congestion-control")
                .action(clap::ArgAction::SetTrue),
        )
}

fn forward(line: &str) -> anyhow::Result<WorkerLine> {
    forward_flags(&tokens(line), &MigrateLine::command(), &worker())
}

#[test]
fn the_worker_gets_the_flags_it_takes_and_nothing_else() {
    let line = forward(
        "/data/src s3://bucket/dst -j 16 --queue nats://10.0.0.5:4222 --chunk-size 8M \
         --bwlimit=100M --overwrite --no-congestion-control",
    )
    .unwrap();
    assert_eq!(
        line.args,
        tokens("--queue nats://10.0.0.5:4222 --bwlimit 100M --no-congestion-control")
    );
    assert!(line.env.is_empty());
}

#[test]
fn a_queue_url_with_a_password_goes_through_the_environment() {
    let line = forward("a b --queue nats://u:hunter2@host:4222 --bwlimit 1M").unwrap();
    assert_eq!(line.args, tokens("--bwlimit 1M"));
    assert_eq!(
        line.env,
        vec![(
            "STRATA_QUEUE".to_string(),
            "nats://u:hunter2@host:4222".to_string()
        )]
    );
    let no_env = clap::Command::new("worker").arg(clap::Arg::new("bwlimit").long("bwlimit"));
    let err = forward_flags(
        &tokens("a b --bwlimit http://u:pw@x/"),
        &MigrateLine::command(),
        &no_env,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("--bwlimit holds a password"),
        "{err}"
    );
    assert!(!err.to_string().contains("pw@"), "{err}");
}

#[test]
fn url_passwords_are_recognised() {
    assert!(has_url_password("nats://u:p@h:1"));
    assert!(has_url_password("postgres://strata:secret@db/strata"));
    assert!(!has_url_password("nats://h:4222"));
    assert!(!has_url_password("nats://user@h:4222"));
    assert!(!has_url_password("s3://bucket/key:with@colon"));
    assert!(!has_url_password("100M"));
}

#[test]
fn words_are_quoted_for_the_shell_when_needed() {
    assert_eq!(shell_word("nats://h:4222"), "nats://h:4222");
    assert_eq!(shell_word("a b"), "'a b'");
    assert_eq!(shell_word("it's"), r"'it'\''s'");
    assert_eq!(shell_word("$(rm -rf /)"), "'$(rm -rf /)'");
    assert_eq!(shell_word(""), "''");
}

fn array(workers: u32) -> ArrayArgs {
    ArrayArgs {
        workers,
        strata: None,
        job_name: "strata-worker".into(),
        idle_exit: "60s".into(),
        ack_wait: "30s".into(),
        migrate: tokens("a b --queue nats://h:4222"),
    }
}

#[test]
fn the_slurm_script_is_an_array_of_workers() {
    let submit = SlurmSubmitArgs {
        array: array(4),
        partition: Some("batch".into()),
        time: Some("2:00:00".into()),
        account: None,
        cpus_per_task: Some(8),
        mem: None,
        output: "logs/w-%A_%a.log".into(),
        sbatch_options: vec!["--qos=long".into()],
        dry_run: true,
    };
    let worker = WorkerLine {
        args: tokens("--queue nats://h:4222 --bwlimit 100M"),
        env: vec![],
    };
    let script = slurm_script(
        &submit,
        &worker,
        std::path::Path::new("/opt/strata bin/strata"),
    );
    let expected = "#!/bin/bash
# Written by `strata slurm submit`: one strata worker per array task.
#SBATCH --job-name=strata-worker
#SBATCH --array=0-3
#SBATCH --ntasks=1
#SBATCH --export=ALL
#SBATCH --output=logs/w-%A_%a.log
#SBATCH --partition=batch
#SBATCH --time=2:00:00
#SBATCH --cpus-per-task=8
#SBATCH --qos=long
set -eu
# The catalog, S3 settings and credentials come from the environment of the
# submission (never written here).
exec '/opt/strata bin/strata' worker --worker-id \"slurm-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\" --ack-wait 30s --idle-exit 60s --queue nats://h:4222 --bwlimit 100M
";
    assert_eq!(script, expected);
}

#[test]
fn the_pbs_script_is_an_array_of_workers() {
    let script = PbsScriptArgs {
        array: array(100),
        pbs_queue: Some("workq".into()),
        walltime: Some("4:00:00".into()),
        account: Some("proj42".into()),
        ncpus: Some(16),
        mem: Some("32gb".into()),
    };
    let worker = WorkerLine {
        args: tokens("--queue nats://h:4222"),
        env: vec![],
    };
    let text = pbs_script(&script, &worker, std::path::Path::new("/usr/bin/strata"));
    let expected = "#!/bin/bash
# Written by `strata pbs script`: one strata worker per array subjob. Submit with
# `qsub SCRIPT` after `strata migrate ... --queue` has planned the job.
#PBS -N strata-worker
#PBS -J 0-99
#PBS -V
#PBS -j oe
#PBS -l select=1:ncpus=16:mem=32gb
#PBS -l walltime=4:00:00
#PBS -q workq
#PBS -A proj42
set -eu
# The catalog, S3 settings and credentials come from the environment of the
# submission (never written here).
exec /usr/bin/strata worker --worker-id \"pbs-${PBS_ARRAY_ID}_${PBS_ARRAY_INDEX}\" --ack-wait 30s --idle-exit 60s --queue nats://h:4222
";
    assert_eq!(text, expected);
}

#[test]
fn migrate_arguments_are_checked_before_anything_is_submitted() {
    let err = parse_migrate(&tokens("only-one-path --queue nats://h:1")).unwrap_err();
    assert!(
        err.to_string().contains("not a valid `strata migrate`"),
        "{err}"
    );
    let err = parse_migrate(&tokens("a b --chunk-size 3")).unwrap_err();
    assert!(err.to_string().contains("not a valid"), "{err}");
    let err = parse_migrate(&tokens("a b")).unwrap_err();
    assert!(err.to_string().contains("need --queue"), "{err}");
}
