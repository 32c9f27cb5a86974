//! The `strata` binary on a PostgreSQL catalog (`--catalog postgres://...`, a real server
//! from `strata-testsupport`, a fresh database per test): a migration recorded there and
//! shown by `strata status`, `strata catalog check` finding a row altered behind the
//! catalog's back, a stopped server reported clearly, `strata serve` keeping its state
//! there, and a password in the URL that no output shows.

mod common;
mod serve_common;

use common::{stderr, stdout, Sandbox};
use strata_testsupport::postgres::{self, PostgresServer};

/// The password put in every catalog URL here; it must never be printed.
const PASSWORD: &str = "pw-Never-Printed-42";

/// A fresh database's URL, with [`PASSWORD`] in it, and the database's name.
fn fresh_url() -> (String, String) {
    let server = postgres::shared();
    let plain = server.fresh_database();
    let name = plain.rsplit('/').next().unwrap().to_string();
    (server.url_with_password(&name, PASSWORD), name)
}

/// A small source tree: three files, one of several chunks.
fn source(sandbox: &Sandbox) -> std::path::PathBuf {
    let src = sandbox.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha").unwrap();
    std::fs::write(src.join("sub/b.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(src.join("c.txt"), b"gamma").unwrap();
    src
}

fn assert_no_password(out: &std::process::Output) {
    for text in [stdout(out), stderr(out)] {
        assert!(
            !text.contains(PASSWORD),
            "the password was printed:\n{text}"
        );
    }
}

#[test]
fn a_migration_is_recorded_in_postgres_and_shown_by_status() {
    let sandbox = Sandbox::new();
    let (url, _) = fresh_url();
    let src = source(&sandbox);
    let dst = sandbox.path("dst");
    let (src, dst) = (src.to_str().unwrap(), dst.to_str().unwrap());

    let migrate = sandbox.run(&[
        "--catalog",
        &url,
        "migrate",
        src,
        dst,
        "--chunk-size",
        "64K",
    ]);
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    assert_no_password(&migrate);

    // From the environment too, and in JSON.
    let status = sandbox
        .strata()
        .env("STRATA_CATALOG", &url)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", stderr(&status));
    assert_no_password(&status);
    let jobs: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["state"], "done");
    assert_eq!(jobs[0]["files_done"], 3);

    let text = sandbox.run(&["--catalog", &url, "status"]);
    assert!(stdout(&text).contains("done"), "{}", stdout(&text));

    let check = sandbox.run(&["--catalog", &url, "catalog", "check", "--against", dst]);
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
    assert!(
        stdout(&check).contains("OK: catalog postgres://"),
        "{}",
        stdout(&check)
    );
    assert!(stdout(&check).contains("[redacted]"), "{}", stdout(&check));
    // Honest about what it checked: the rows, not PostgreSQL's pages.
    assert!(
        stdout(&check).contains("integrity of the rows ok (pages: the server's own checks)"),
        "{}",
        stdout(&check)
    );
    assert_no_password(&check);

    // A second run finds every file done in the shared catalog and copies nothing.
    let again = sandbox.run(&[
        "--catalog",
        &url,
        "--json",
        "migrate",
        src,
        dst,
        "--chunk-size",
        "64K",
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["bytes_sent"], 0, "{report}");
    assert_eq!(report["files_resumed"], 3, "{report}");
}

#[test]
fn catalog_check_finds_a_row_altered_behind_its_back() {
    let sandbox = Sandbox::new();
    let (url, db) = fresh_url();
    let src = source(&sandbox);
    let dst = sandbox.path("dst");
    let migrate = sandbox.run(&[
        "--catalog",
        &url,
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
    assert!(migrate.status.success(), "{}", stderr(&migrate));

    postgres::shared()
        .sql_in(
            &db,
            "UPDATE files SET path = 'c-renamed.txt' WHERE path = 'c.txt'",
        )
        .unwrap();
    let check = sandbox.run(&["--catalog", &url, "catalog", "check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stdout(&check));
    let out = stdout(&check);
    assert!(out.contains("CORRUPT files row"), "{out}");
    assert!(out.contains("c-renamed.txt"), "{out}");
    assert_no_password(&check);
}

#[test]
fn a_stopped_server_is_a_clear_error_naming_host_and_port() {
    let sandbox = Sandbox::new();
    let server = PostgresServer::start().unwrap();
    let url = server.url_with_password("postgres", PASSWORD);
    let first = sandbox.run(&["--catalog", &url, "status"]);
    assert!(first.status.success(), "{}", stderr(&first));
    server.stop();

    for args in [
        vec!["status"],
        vec!["catalog", "check"],
        vec!["migrate", "/nonexistent-src", "/nonexistent-dst"],
    ] {
        let out = sandbox.run(&[&["--catalog", url.as_str()][..], &args[..]].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("127.0.0.1:{}", server.port())),
            "{args:?}: {err}"
        );
        assert!(err.contains("scripts/postgres.sh start"), "{args:?}: {err}");
        assert_no_password(&out);
    }
}

#[test]
fn a_password_in_the_url_is_never_shown_not_even_in_help_or_bad_urls() {
    let sandbox = Sandbox::new();
    let help = sandbox
        .strata()
        .env(
            "STRATA_CATALOG",
            format!("postgres://u:{PASSWORD}@127.0.0.1:1/db"),
        )
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert_no_password(&help);

    let bad = sandbox.run(&[
        "--catalog",
        &format!("postgres://u:{PASSWORD}@/db"),
        "status",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("empty host"), "{}", stderr(&bad));
    assert_no_password(&bad);
}

#[test]
fn delete_job_works_on_postgres_and_names_a_missing_job() {
    let sandbox = Sandbox::new();
    let (url, _) = fresh_url();
    let src = source(&sandbox);
    let dst = sandbox.path("dst");
    let migrate = sandbox.run(&[
        "--catalog",
        &url,
        "--json",
        "migrate",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    let report: serde_json::Value = serde_json::from_slice(&migrate.stdout).unwrap();
    let job = report["job"].to_string();

    let deleted = sandbox.run(&["--catalog", &url, "catalog", "delete-job", &job]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_no_password(&deleted);
    let status = sandbox.run(&["--catalog", &url, "status"]);
    assert!(
        stdout(&status).contains("no jobs yet"),
        "{}",
        stdout(&status)
    );

    let missing = sandbox.run(&["--catalog", &url, "catalog", "delete-job", &job]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains(&format!("has no job {job}")),
        "{}",
        stderr(&missing)
    );
    assert_no_password(&missing);
}

#[test]
fn serve_keeps_its_state_in_a_postgres_catalog_and_never_shows_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let (url, db) = fresh_url();
    let data_dir = dir.path().join("data");
    let cold = data_dir.join("cold").display().to_string();
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        serve_common::config(&data_dir, &cold, "1h", "2h", "1h"),
    )
    .unwrap();
    let service =
        serve_common::Service::start_with_env(&config, &data_dir, &["--catalog", &url], &[]);
    let shown = service.started["catalog"].as_str().unwrap().to_string();
    assert!(
        shown.starts_with("postgres://") && shown.contains("[redacted]"),
        "{shown}"
    );
    assert!(!shown.contains(PASSWORD), "{shown}");

    let file = dir.path().join("upload.bin");
    std::fs::write(&file, b"shared state").unwrap();
    let put = service.run(&["put", file.to_str().unwrap(), "shared/key"]);
    assert!(put.status.success(), "{}", stderr(&put));
    let log = service.kill_and_stderr();
    assert!(!log.contains(PASSWORD), "the password was logged:\n{log}");

    let objects = postgres::shared()
        .sql_in(&db, "SELECT key FROM objects")
        .unwrap();
    assert_eq!(objects, "shared/key");
    assert!(
        !data_dir.join("catalog.db").exists(),
        "no SQLite catalog was created"
    );
}

#[test]
fn catalog_rebuild_imports_a_destination_into_postgres() {
    let sandbox = Sandbox::new();
    let (url, db) = fresh_url();
    let src = source(&sandbox);
    let dst = sandbox.path("dst");
    let (src, dst) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let migrate = sandbox.run(&["--catalog", &url, "migrate", src, dst]);
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    // The record is lost (every job deleted behind strata's back) ...
    postgres::shared()
        .sql_in(
            &db,
            "DELETE FROM verified_chunks; DELETE FROM files; DELETE FROM jobs",
        )
        .unwrap();
    // ... and rebuilt from the destination's manifest, into the same database.
    let rebuild = sandbox.run(&[
        "--catalog",
        &url,
        "catalog",
        "rebuild",
        "--from",
        dst,
        "--source",
        src,
    ]);
    assert!(
        rebuild.status.success(),
        "{}{}",
        stdout(&rebuild),
        stderr(&rebuild)
    );
    assert_no_password(&rebuild);
    let again = sandbox.run(&["--catalog", &url, "--json", "migrate", src, dst]);
    assert!(again.status.success(), "{}", stderr(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["bytes_sent"], 0, "{report}");
    assert_eq!(report["files_resumed"], 3, "{report}");
}

#[test]
fn processes_migrating_at_once_share_the_catalog() {
    let sandbox = Sandbox::new();
    let (url, _) = fresh_url();
    let src = source(&sandbox);
    let src = src.to_str().unwrap();
    // Four `strata migrate` processes at once, as workers on several nodes would run.
    let children: Vec<_> = (0..4)
        .map(|i| {
            let dst = sandbox.path(&format!("dst-{i}"));
            sandbox
                .strata()
                .args(["--catalog", &url, "migrate", src, dst.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let status = sandbox.run(&["--catalog", &url, "--json", "status"]);
    let jobs: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    assert!(jobs.iter().all(|job| job["state"] == "done"), "{jobs:?}");
}
