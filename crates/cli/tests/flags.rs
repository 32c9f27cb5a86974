//! Flag values that make no sense are refused before anything runs (exit 2, the flag and
//! what is valid named), never accepted silently.

mod common;

use common::*;

/// Runs `strata ARGS`, which must be refused with exit 2 and an error naming every one of
/// `needles`; nothing may have been written at `dst`.
fn assert_refused(sb: &Sandbox, args: &[&str], needles: &[&str], dst: &std::path::Path) {
    let out = sb.run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "strata {args:?}: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "strata {args:?}: no {needle:?} in {err}"
        );
    }
    assert!(!dst.exists(), "strata {args:?} wrote to {}", dst.display());
}

#[test]
fn chunk_sizes_and_job_counts_that_make_no_sense_are_refused() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    random_file(&src.join("f"), 10_000, 1);
    let (s, d) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let range = "from 1.0 KiB to 256.0 MiB";
    for size in ["1T", "512M", "3K", "0"] {
        assert_refused(
            &sb,
            &["migrate", s, d, "--chunk-size", size],
            &["--chunk-size", size, range],
            &dst,
        );
        assert_refused(
            &sb,
            &["inspect", s, "--chunk-size", size],
            &["--chunk-size", range],
            &dst,
        );
    }
    for jobs in ["0", "100000"] {
        assert_refused(
            &sb,
            &["migrate", s, d, "--jobs", jobs],
            &["--jobs", "from 1 to 256"],
            &dst,
        );
        for command in ["verify", "repair"] {
            assert_refused(
                &sb,
                &[command, d, "--jobs", jobs],
                &["--jobs", "from 1 to 256"],
                &dst,
            );
        }
    }
    assert_refused(
        &sb,
        &["migrate", s, d, "--jobs", "256", "--chunk-size", "256M"],
        &["64.0 GiB", "lower --jobs or --chunk-size"],
        &dst,
    );
    // The bounds themselves are accepted.
    let out = sb.run(&["migrate", s, d, "--chunk-size", "256M", "--jobs", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_missing_or_unreadable_bwlimit_file_is_refused_naming_the_path() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    random_file(&src.join("f"), 10_000, 1);
    let (s, d) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let missing = sb.path("limits/bwlimit");
    let missing = missing.to_str().unwrap();
    assert_refused(
        &sb,
        &["migrate", s, d, "--bwlimit-file", missing],
        &[missing, "does not exist"],
        &dst,
    );
    // With --bwlimit as well: a mistyped file must not silently leave the flag in force.
    assert_refused(
        &sb,
        &[
            "migrate",
            s,
            d,
            "--bwlimit",
            "1M",
            "--bwlimit-file",
            missing,
        ],
        &[missing, "does not exist"],
        &dst,
    );
    let directory = sb.path("limits");
    std::fs::create_dir_all(&directory).unwrap();
    assert_refused(
        &sb,
        &[
            "migrate",
            s,
            d,
            "--bwlimit-file",
            directory.to_str().unwrap(),
        ],
        &[directory.to_str().unwrap(), "cannot read --bwlimit-file"],
        &dst,
    );
}

#[test]
fn shell_completions_and_the_man_page_come_from_the_cli_definition() {
    let sb = Sandbox::new();
    let out = sb.run(&["completions", "bash"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    for needle in ["_strata()", "chaos", "--log-format", "completions"] {
        assert!(
            script.contains(needle),
            "no {needle:?} in the bash completions"
        );
    }
    let out = sb.run(&["completions", "zsh"]);
    assert!(out.status.success() && stdout(&out).starts_with("#compdef strata"));
    let out = sb.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bash") && stderr(&out).contains("fish"),
        "{}",
        stderr(&out)
    );

    let out = sb.run(&["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH strata"),
        "{page}"
    );
    for needle in [".SH NAME", ".SH SYNOPSIS", "chaos", "serve"] {
        assert!(page.contains(needle), "no {needle:?} in the man page");
    }
}

#[test]
fn store_and_catalog_flags_are_hidden_where_they_do_nothing_and_still_accepted() {
    let sb = Sandbox::new();
    for command in [&["put"][..], &["access"], &["chaos", "inject"], &["tiers"]] {
        let out = sb.run(&[command, &["--help"][..]].concat());
        let help = stdout(&out);
        assert!(out.status.success(), "{command:?}: {}", stderr(&out));
        for hidden in [
            "--catalog",
            "--s3-endpoint",
            "--s3-region",
            "--s3-path-style",
        ] {
            assert!(
                !help.contains(hidden),
                "{command:?} --help shows {hidden}:\n{help}"
            );
        }
        assert!(
            help.contains("--server") && help.contains("--json"),
            "{command:?}:\n{help}"
        );
    }
    for command in ["migrate", "verify", "status"] {
        let help = stdout(&sb.run(&[command, "--help"]));
        assert!(
            help.contains("--catalog") && help.contains("--s3-endpoint"),
            "{command}:\n{help}"
        );
    }
    // Hidden, not removed: a script that passes them everywhere still runs (here, refused
    // only because no service listens there).
    let out = sb.run(&[
        "tiers",
        "--s3-region",
        "eu-west-1",
        "--server",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot reach the Strata service"),
        "{}",
        stderr(&out)
    );
}
