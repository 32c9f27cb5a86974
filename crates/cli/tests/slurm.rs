//! `strata slurm submit` on a real single-node SLURM cluster (munged, slurmctld and slurmd
//! on loopback, `common/slurm.rs`) with a real NATS JetStream queue (`common/nats.rs`):
//! the array job's workers migrate a dataset; and what is refused before anything is
//! submitted. `strata pbs script` is text only (no PBS server can be installed here): its
//! script is checked in the command's unit tests.

mod common;

use std::time::Duration;

use common::nats;
use common::slurm::Cluster;
use common::{assert_same_files, sample_tree, stderr, stdout, Sandbox};

#[test]
fn a_slurm_array_job_of_workers_migrates_a_dataset() {
    let cluster = Cluster::start();
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = sample_tree(&src);
    let url = nats::shared().url();
    let name = format!("slurm-{}", std::process::id());
    let logs = sandbox.path("worker-%A_%a.log");
    let out = sandbox
        .strata()
        .envs(cluster.env())
        .args([
            "slurm",
            "submit",
            "--workers",
            "2",
            "--ack-wait",
            "2s",
            "--idle-exit",
            "3s",
        ])
        .args(["--output", logs.to_str().unwrap(), "--"])
        .args([src.to_str().unwrap(), dst.to_str().unwrap()])
        .args(["--queue", &url, "--queue-name", &name])
        .args(["--chunk-size", "64K", "--task-size", "256K"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let job = text
        .split("submitted SLURM array job ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no job id in {text}"))
        .to_string();
    let worker_logs = || {
        std::fs::read_dir(sandbox.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("worker-"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    assert!(
        cluster.wait_gone(&job, Duration::from_secs(180)),
        "the array job did not end; worker logs:\n{}",
        worker_logs()
    );
    assert_same_files(&src, &dst, &files);
    assert!(dst.join(".strata/manifest.json").is_file());
    let verify = sandbox.run(&["verify", dst.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let status = sandbox.run(&["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(rows[0]["state"], "done", "{}", stdout(&status));
    // Both array tasks ran a worker, each under its own SLURM name.
    let logs = worker_logs();
    for task in 0..2 {
        assert!(
            logs.contains(&format!("slurm-{job}_{task}")),
            "array task {task} did not run a worker:\n{logs}"
        );
    }
}

#[test]
fn a_submission_without_a_queue_or_with_bad_migrate_arguments_submits_nothing() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path("src")).unwrap();
    let src = sandbox.path("src");
    let no_queue = sandbox.run(&[
        "slurm",
        "submit",
        "--workers",
        "2",
        "--",
        src.to_str().unwrap(),
        "/tmp/dst",
    ]);
    assert_eq!(no_queue.status.code(), Some(2), "{}", stderr(&no_queue));
    assert!(
        stderr(&no_queue).contains("need --queue nats://"),
        "{}",
        stderr(&no_queue)
    );
    let bad = sandbox.run(&[
        "slurm",
        "submit",
        "--workers",
        "2",
        "--",
        "only-one-path",
        "--queue",
        "nats://127.0.0.1:1",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("not a valid `strata migrate`"));
    let zero = sandbox.run(&["slurm", "submit", "--workers", "0", "--", "a", "b"]);
    assert_eq!(zero.status.code(), Some(2));
    // Nothing was planned.
    let status = sandbox.run(&["status", "--json"]);
    assert_eq!(stdout(&status).trim(), "[]", "{}", stdout(&status));
}

#[test]
fn dry_run_prints_the_script_with_no_secret_in_it() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .strata()
        .args(["slurm", "submit", "--workers", "3", "--partition", "batch"])
        .args(["--strata", "/opt/strata/bin/strata", "--dry-run", "--"])
        .args([
            "/data/in",
            "s3://bucket/out",
            "--queue",
            "nats://10.0.0.5:4222",
        ])
        .args(["--bwlimit", "100M", "-j", "16"])
        .env("AWS_SECRET_ACCESS_KEY", "super-secret-value-123")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    for line in [
        "#SBATCH --array=0-2",
        "#SBATCH --partition=batch",
        "#SBATCH --export=ALL",
        "exec /opt/strata/bin/strata worker --worker-id \"slurm-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"",
        "--queue nats://10.0.0.5:4222",
        "--bwlimit 100M",
    ] {
        assert!(script.contains(line), "{line:?} not in:\n{script}");
    }
    assert!(!script.contains("super-secret"), "{script}");
    assert!(
        !script.contains("s3://bucket"),
        "workers get tasks, not paths: {script}"
    );
    let status = sandbox.run(&["status", "--json"]);
    assert_eq!(stdout(&status).trim(), "[]", "a dry run plans nothing");
}
