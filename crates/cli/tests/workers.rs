//! Distributed migrations end to end: `strata migrate --queue` on a real NATS JetStream
//! server (started by the tests, see `common/nats.rs`) and `strata worker` processes sharing
//! one SQLite catalog: two workers finishing a job, a worker killed mid-task, the queue
//! restarted during a job, messages that are not tasks, and one large file split into
//! chunk-range tasks across workers (one of them killed mid-range).

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::nats::{self, NatsServer};
use common::{assert_same_files, children, sample_tree, stderr, stdout, Sandbox};

/// The longest any wait in these tests may take before the test fails (a hang, not a
/// timing assertion).
const PATIENCE: Duration = Duration::from_secs(120);

/// A queue name of its own for each test, so tests sharing the server stay apart.
fn queue_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `strata worker` process writing its log to a file.
struct WorkerProcess {
    pid: u32,
    log: PathBuf,
}

impl WorkerProcess {
    fn start(
        sandbox: &Sandbox,
        url: &str,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let log = sandbox.path(&format!(
            "worker-{}.log",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut cmd = sandbox.strata();
        cmd.args(["worker", "--queue", url, "--queue-name", name])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        WorkerProcess {
            pid: children::spawn(cmd),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&self) {
        children::signal(self.pid, libc::SIGKILL);
        children::wait(self.pid);
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        children::signal(self.pid, libc::SIGTERM);
        children::wait(self.pid);
    }
}

/// Polls `check` until it holds; fails the test, saying what was awaited, after
/// [`PATIENCE`].
fn wait_until(what: &str, mut check: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first job's state, from `strata status --json`.
fn job_state(sandbox: &Sandbox) -> String {
    let out = sandbox.run(&["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    rows[0]["state"].as_str().unwrap_or("").to_string()
}

fn logs(workers: &[&WorkerProcess]) -> String {
    workers
        .iter()
        .map(|w| format!("--- {}\n{}", w.log.display(), w.log()))
        .collect()
}

/// `strata migrate SRC DST --queue URL` with small chunks and tasks (many tasks from a small
/// tree); asserts it published and returned.
fn submit(sandbox: &Sandbox, url: &str, name: &str, src: &str, dst: &str, extra: &[&str]) {
    let out = sandbox.run(
        &[
            &["migrate", src, dst, "--queue", url, "--queue-name", name],
            &["--chunk-size", "64K", "--task-size", "256K"][..],
            extra,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "submit failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("published on"), "{}", stdout(&out));
}

/// [`submit`] with no extra flags, then waits until `worker` has taken one of the tasks.
fn submit_and_wait_taken(
    sandbox: &Sandbox,
    url: &str,
    name: &str,
    (src, dst): (&Path, &Path),
    worker: &WorkerProcess,
) {
    submit(
        sandbox,
        url,
        name,
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        &[],
    );
    wait_until(
        "a worker to take a task",
        || worker.log().contains("took task job"),
        || worker.log(),
    );
}

#[test]
fn two_workers_finish_a_job_with_one_manifest_and_status_shows_who_holds_what() {
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = sample_tree(&src);
    let url = nats::shared().url();
    let name = queue_name();
    // Reads are slowed so that tasks last long enough to be shared and seen held.
    let slow = [("STRATA_FAULTS", "src:read:latency=200ms")];
    let args = ["--ack-wait", "10s", "--jobs", "2"];
    let a = WorkerProcess::start(&sandbox, &url, &name, &args, &slow);
    let b = WorkerProcess::start(&sandbox, &url, &name, &args, &slow);
    wait_until(
        "both workers to announce themselves",
        || {
            stdout(&sandbox.run(&["status"]))
                .matches(" cores, ")
                .count()
                == 2
        },
        || logs(&[&a, &b]),
    );
    submit(
        &sandbox,
        &url,
        &name,
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        &[],
    );
    wait_until(
        "`strata status` to show a worker holding a task",
        || stdout(&sandbox.run(&["status"])).contains(" holds files "),
        || logs(&[&a, &b]),
    );
    wait_until(
        "the job to be done",
        || job_state(&sandbox) == "done",
        || logs(&[&a, &b]),
    );

    assert_same_files(&src, &dst, &files);
    let all = logs(&[&a, &b]);
    assert_eq!(
        all.matches("wrote the manifest").count(),
        1,
        "the manifest is written once, by the last task's finisher:\n{all}"
    );
    for worker in [&a, &b] {
        assert!(
            worker.log().contains(" took task job "),
            "each worker ran tasks:\n{all}"
        );
    }
    let verify = sandbox.run(&["verify", dst.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
}

#[test]
fn a_killed_workers_task_is_redelivered_after_the_ack_wait_and_the_job_completes() {
    a_killed_workers_task_is_redelivered(&Sandbox::new());
}

#[test]
fn on_a_postgresql_catalog_a_killed_workers_task_is_redelivered_and_the_job_completes() {
    let catalog = strata_testsupport::postgres::shared().fresh_database();
    let sandbox = Sandbox::with_catalog(catalog);
    a_killed_workers_task_is_redelivered(&sandbox);
    // The job, its workers and the finish claim live in the shared database.
    let status = sandbox.run(&["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(rows[0]["state"], "done", "{}", stdout(&status));
}

/// One throttled worker takes the job's only task and is SIGKILLed mid-task; a second
/// worker gets the task after the ack wait and finishes the job.
fn a_killed_workers_task_is_redelivered(sandbox: &Sandbox) {
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = vec![("big.bin".to_string(), 3 << 20)];
    common::random_file(&src.join("big.bin"), 3 << 20, 11);
    let url = nats::shared().url();
    let name = queue_name();
    // 256 KiB/s: the 3 MiB file takes seconds, so the worker is killed mid-task.
    let slow = WorkerProcess::start(
        sandbox,
        &url,
        &name,
        &["--ack-wait", "2s", "--bwlimit", "256K"],
        &[],
    );
    submit_and_wait_taken(sandbox, &url, &name, (&src, &dst), &slow);
    slow.kill();
    assert_ne!(job_state(sandbox), "done", "the worker was killed mid-task");

    let rescuer = WorkerProcess::start(sandbox, &url, &name, &["--ack-wait", "2s"], &[]);
    wait_until(
        "the job to be done",
        || job_state(sandbox) == "done",
        || logs(&[&slow, &rescuer]),
    );
    let log = rescuer.log();
    assert!(
        log.contains("(delivery 2)"),
        "the task came back after the ack wait:\n{log}"
    );
    assert!(log.contains("wrote the manifest"), "{log}");
    assert_same_files(&src, &dst, &files);
    let verify = sandbox.run(&["verify", dst.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
}

#[test]
fn the_queue_stopped_and_restarted_during_a_job_delays_it_but_the_job_completes() {
    let server = NatsServer::start();
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = sample_tree(&src);
    let url = server.url();
    let name = queue_name();
    let worker = WorkerProcess::start(
        &sandbox,
        &url,
        &name,
        &["--ack-wait", "3s", "--jobs", "2"],
        &[("STRATA_FAULTS", "src:read:latency=100ms")],
    );
    submit_and_wait_taken(&sandbox, &url, &name, (&src, &dst), &worker);
    server.stop();
    assert_ne!(
        job_state(&sandbox),
        "done",
        "the queue was stopped during the job"
    );
    wait_until(
        "the worker to notice the queue is gone",
        || worker.log().contains("disconnected"),
        || worker.log(),
    );
    std::thread::sleep(Duration::from_secs(1));
    server.restart();
    wait_until(
        "the job to be done",
        || job_state(&sandbox) == "done",
        || worker.log(),
    );
    let log = worker.log();
    let lost = log.find("disconnected").unwrap();
    assert!(
        log[lost..].contains("connection: connected"),
        "the worker reconnected:\n{log}"
    );
    assert_same_files(&src, &dst, &files);
    let verify = sandbox.run(&["verify", dst.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
}

/// Publishes raw message bodies on the subject of job `job` of queue `name`, creating the
/// stream as `strata migrate --queue` would.
fn publish_raw(url: &str, name: &str, job: i64, bodies: &[&[u8]]) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: format!("{name}_tasks"),
            subjects: vec![format!("{name}.tasks.>")],
            retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await
        .unwrap();
        for body in bodies {
            js.publish(format!("{name}.tasks.{job}"), body.to_vec().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
}

/// Messages still in the queue's stream.
fn queued_messages(url: &str, name: &str) -> u64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(format!("{name}_tasks")).await.unwrap();
        stream.info().await.unwrap().state.messages
    })
}

#[test]
fn messages_that_are_not_tasks_are_refused_once_and_terminated() {
    let sandbox = Sandbox::new();
    let url = nats::shared().url();
    let name = queue_name();
    let unknown_job = br#"{"version":1,"job":999,"run":"r","first_file":0,"end_file":1,"bytes":1,"chunks":1,"unreadable_entries":0,"options":{"chunk_size":65536,"jobs":1,"dry_run":false,"overwrite":false,"verify":"cache","settle":{"settle":{"secs":0,"nanos":0},"timeout":{"secs":1,"nanos":0}}}}"#;
    publish_raw(
        &url,
        &name,
        999,
        &[b"hello", br#"{"version": 99}"#, unknown_job],
    );
    let worker = WorkerProcess::start(&sandbox, &url, &name, &["--ack-wait", "1s"], &[]);
    wait_until(
        "the three messages to be refused",
        || worker.log().matches("refused task message").count() >= 3,
        || worker.log(),
    );
    // Three ack waits: a message that had not been terminated would have come back.
    std::thread::sleep(Duration::from_secs(3));
    let log = worker.log();
    assert_eq!(
        log.matches("refused task message").count(),
        3,
        "each refused once:\n{log}"
    );
    assert!(log.contains("not a JSON chunk task"), "{log}");
    assert!(log.contains("chunk task version 99"), "{log}");
    assert!(log.contains("job 999 is not in the catalog"), "{log}");
    assert!(log.contains("terminated"), "{log}");
    assert_eq!(queued_messages(&url, &name), 0, "nothing left to redeliver");

    // The worker still runs real tasks afterwards.
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = vec![("one".to_string(), 1000)];
    common::random_file(&src.join("one"), 1000, 3);
    submit(
        &sandbox,
        &url,
        &name,
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        &[],
    );
    wait_until(
        "the job to be done",
        || job_state(&sandbox) == "done",
        || worker.log(),
    );
    assert_same_files(&src, &dst, &files);
}

#[test]
fn migrate_with_a_queue_that_does_not_answer_fails_naming_it_without_credentials() {
    let sandbox = Sandbox::new();
    let src = sandbox.path("src");
    common::random_file(&src.join("f"), 10, 1);
    let port = strata_store::testing::free_port();
    let url = format!("nats://alice:hunter2@127.0.0.1:{port}");
    let out = sandbox.run(&[
        "migrate",
        src.to_str().unwrap(),
        sandbox.path("dst").to_str().unwrap(),
        "--queue",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&format!("task queue nats://127.0.0.1:{port}")),
        "{message}"
    );
    assert!(message.contains("is nats-server running"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let out = sandbox.run(&[
        "migrate",
        src.to_str().unwrap(),
        sandbox.path("dst").to_str().unwrap(),
        "--queue",
        "http://x:1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected a NATS URL"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn migrate_queue_wait_returns_when_the_workers_are_done() {
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = sample_tree(&src);
    let url = nats::shared().url();
    let name = queue_name();
    let worker = WorkerProcess::start(&sandbox, &url, &name, &[], &[]);
    let out = sandbox.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--queue",
        &url,
        "--queue-name",
        &name,
        "--wait",
    ]);
    assert!(
        out.status.success(),
        "{}{}\n{}",
        stdout(&out),
        stderr(&out),
        worker.log()
    );
    assert!(stdout(&out).contains(" done "), "{}", stdout(&out));
    assert_same_files(&src, &dst, &files);
    // Nothing left to copy: a second run finishes the job itself.
    let again = sandbox.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--queue",
        &url,
        "--queue-name",
        &name,
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("nothing left to copy"),
        "{}",
        stdout(&again)
    );
}

/// Takes the catalog's write lock from another connection, as a long write of another
/// process would, until the returned connection is given to [`unlock`].
fn lock_catalog(runtime: &tokio::runtime::Runtime, sandbox: &Sandbox) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let url = format!("sqlite://{}", sandbox.catalog().display());
    runtime.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    })
}

fn unlock(runtime: &tokio::runtime::Runtime, mut conn: sqlx::SqliteConnection) {
    runtime.block_on(async {
        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    });
}

#[test]
fn a_worker_that_loses_the_catalog_says_so_retries_and_the_job_completes() {
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = sample_tree(&src);
    let url = nats::shared().url();
    let name = queue_name();
    submit(
        &sandbox,
        &url,
        &name,
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        &[],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Locked past the busy timeout (10 s) when the worker starts: it waits, saying so.
    let lock = lock_catalog(&runtime, &sandbox);
    let worker = WorkerProcess::start(
        &sandbox,
        &url,
        &name,
        &["--ack-wait", "5s", "--jobs", "1"],
        &[("STRATA_FAULTS", "src:read:latency=100ms")],
    );
    wait_until(
        "the worker to say it cannot open the catalog",
        || worker.log().contains("cannot open the catalog"),
        || worker.log(),
    );
    unlock(&runtime, lock);
    // Locked again in the middle of the job: the task's records cannot be written.
    wait_until(
        "a task to be taken",
        || worker.log().contains("took task"),
        || worker.log(),
    );
    let lock = lock_catalog(&runtime, &sandbox);
    wait_until(
        "the worker to return its task to the queue",
        || worker.log().contains("returned to the queue, retrying in"),
        || worker.log(),
    );
    unlock(&runtime, lock);
    wait_until(
        "the job to be done",
        || job_state(&sandbox) == "done",
        || worker.log(),
    );
    let log = worker.log();
    assert!(log.contains("is busy"), "the log names the cause:\n{log}");
    assert_same_files(&src, &dst, &files);
    let verify = sandbox.run(&["verify", dst.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
}

#[test]
fn postgresql_stopped_and_restarted_during_a_job_delays_it_but_the_job_completes() {
    // A server of its own: stopping the shared one would stop the other tests' catalogs.
    let server = strata_testsupport::postgres::PostgresServer::start().unwrap();
    let sandbox = Sandbox::with_catalog(server.fresh_database());
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = sample_tree(&src);
    let url = nats::shared().url();
    let name = queue_name();
    // Slow reads: the job is still running when the catalog goes away.
    let slow = [("STRATA_FAULTS", "src:read:latency=200ms")];
    let worker = WorkerProcess::start(
        &sandbox,
        &url,
        &name,
        &["--ack-wait", "10s", "--jobs", "1"],
        &slow,
    );
    submit_and_wait_taken(&sandbox, &url, &name, (&src, &dst), &worker);
    server.shut_down();
    // Longer than a catalog call waits for a connection (10 s): the worker's calls fail.
    std::thread::sleep(Duration::from_secs(12));
    let down = sandbox.run(&["status"]);
    assert_eq!(down.status.code(), Some(2), "{}", stderr(&down));
    server.restart().unwrap();
    wait_until(
        "the job to be done",
        || job_state(&sandbox) == "done",
        || worker.log(),
    );
    let log = worker.log();
    assert!(log.contains("wrote the manifest"), "{log}");
    assert!(
        log.contains("retry") || log.contains("retrying"),
        "the worker said it lost the catalog and retried:\n{log}"
    );
    assert_same_files(&src, &dst, &files);
}

/// `strata migrate SRC DST --queue URL` of a tree holding one 24 MiB file, with 1 MiB
/// chunks and 4 MiB tasks: the file is cut into range tasks (the destination is local).
fn submit_split_file(sandbox: &Sandbox, url: &str, name: &str, src: &Path, dst: &Path) {
    let out = sandbox.run(&[
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--queue",
        url,
        "--queue-name",
        name,
        "--chunk-size",
        "1M",
        "--task-size",
        "4M",
    ]);
    assert!(
        out.status.success(),
        "submit failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("published on"), "{}", stdout(&out));
}

/// The 24 MiB file of the split-file tests, in `src`.
fn huge_file(src: &Path) -> Vec<(String, usize)> {
    common::random_file(&src.join("huge.bin"), 24 << 20, 17);
    vec![("huge.bin".to_string(), 24 << 20)]
}

/// The tasks each worker's log says it took (`file 0 chunks 4-7 (delivery 1)`), for the
/// test's output: how the one file spread over the workers.
fn tasks_taken(worker: &WorkerProcess) -> Vec<String> {
    worker
        .log()
        .lines()
        .filter_map(|line| line.split(" took task job ").nth(1))
        .map(|rest| rest.trim().to_string())
        .collect()
}

#[test]
fn on_a_postgresql_catalog_one_huge_file_is_split_across_two_workers_and_survives_a_kill() {
    let catalog = strata_testsupport::postgres::shared().fresh_database();
    let sandbox = Sandbox::with_catalog(catalog);
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = huge_file(&src);
    let url = nats::shared().url();
    let name = queue_name();
    // 512 KiB/s: a 4 MiB range takes seconds, so this worker is killed in the middle of one.
    let doomed = WorkerProcess::start(
        &sandbox,
        &url,
        &name,
        &[
            "--worker-id",
            "doomed",
            "--ack-wait",
            "2s",
            "--bwlimit",
            "512K",
        ],
        &[],
    );
    submit_split_file(&sandbox, &url, &name, &src, &dst);
    wait_until(
        "the first worker to take a range task",
        || doomed.log().contains("took task job"),
        || doomed.log(),
    );
    let rescuer = WorkerProcess::start(
        &sandbox,
        &url,
        &name,
        &["--worker-id", "rescuer", "--ack-wait", "2s", "--jobs", "2"],
        &[],
    );
    wait_until(
        "the second worker to take a range task",
        || rescuer.log().contains("took task job"),
        || logs(&[&doomed, &rescuer]),
    );
    doomed.kill();
    assert_ne!(
        job_state(&sandbox),
        "done",
        "the worker was killed mid-range"
    );
    wait_until(
        "the job to be done",
        || job_state(&sandbox) == "done",
        || logs(&[&doomed, &rescuer]),
    );

    let all = logs(&[&doomed, &rescuer]);
    assert_eq!(
        common::b3sum(&dst.join("huge.bin")),
        common::b3sum(&src.join("huge.bin")),
        "{all}"
    );
    assert_same_files(&src, &dst, &files);
    let taken: Vec<String> = [&doomed, &rescuer]
        .iter()
        .flat_map(|w| tasks_taken(w))
        .collect();
    assert!(
        taken.iter().all(|t| t.contains("file 0 chunks ")),
        "every task is a chunk range of the one file: {taken:?}"
    );
    assert!(
        taken.iter().any(|t| t.contains("(delivery 2)")),
        "the killed worker's range came back after the ack wait:\n{all}"
    );
    assert_eq!(
        all.matches("published it").count(),
        1,
        "the file is published once, by its finisher:\n{all}"
    );
    assert_eq!(
        all.matches("wrote the manifest").count(),
        1,
        "the manifest is written once:\n{all}"
    );
    let status = stdout(&sandbox.run(&["status"]));
    for worker in ["doomed", "rescuer"] {
        assert!(status.contains(worker), "status shows {worker}:\n{status}");
    }
    eprintln!(
        "tasks taken: doomed {:?}; rescuer {:?}",
        tasks_taken(&doomed),
        tasks_taken(&rescuer)
    );
    let verify = sandbox.run(&["verify", dst.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
}

#[test]
fn one_worker_alone_runs_every_range_of_a_split_file_and_publishes_it() {
    let sandbox = Sandbox::new();
    let (src, dst) = (sandbox.path("src"), sandbox.path("dst"));
    let files = huge_file(&src);
    let url = nats::shared().url();
    let name = queue_name();
    let worker = WorkerProcess::start(&sandbox, &url, &name, &["--ack-wait", "5s"], &[]);
    submit_split_file(&sandbox, &url, &name, &src, &dst);
    wait_until(
        "the job to be done",
        || job_state(&sandbox) == "done",
        || worker.log(),
    );
    let log = worker.log();
    let taken = tasks_taken(&worker);
    assert!(
        taken.len() >= 6 && taken.iter().all(|t| t.contains("file 0 chunks ")),
        "24 MiB in ranges of at most 4 MiB: {taken:?}"
    );
    assert!(
        log.contains("chunks still to verify by other tasks"),
        "the ranges before the last left the file to its finisher:\n{log}"
    );
    assert_eq!(log.matches("published it").count(), 1, "{log}");
    assert_eq!(log.matches("wrote the manifest").count(), 1, "{log}");
    assert_eq!(
        common::b3sum(&dst.join("huge.bin")),
        common::b3sum(&src.join("huge.bin"))
    );
    assert_same_files(&src, &dst, &files);
    let staging = dst.join(".strata/staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no staged copy left behind: {left:?}");
    let verify = sandbox.run(&["verify", dst.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
}
