//! Every example of the README's tour runs as written on a fresh clone.
//!
//! Each ```sh block of README.md is run with `bash -eo pipefail`, in order, in one scratch
//! copy of the files a fresh clone has that the examples name (`README.md`, `docs/`, the
//! fixtures under `crates/codec/tests/data/hdf5`), with this build's `strata` first on the
//! `PATH` and its own catalog. A block is skipped only when the line before it is a
//! `<!-- readme.rs: not run (...) -->` comment saying why.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::copy_tree;

/// One runnable block: its first line number in README.md and its text.
struct Example {
    line: usize,
    script: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ```sh blocks of `readme`, less those marked as not run.
fn runnable_examples(readme: &str) -> Vec<Example> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut examples = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        if lines[at].trim() != "```sh" {
            at += 1;
            continue;
        }
        let skipped = at > 0
            && lines[at - 1]
                .trim_start()
                .starts_with("<!-- readme.rs: not run");
        let end = (at + 1..lines.len())
            .find(|&i| lines[i].trim() == "```")
            .unwrap_or_else(|| panic!("README.md line {}: a ```sh block never ends", at + 1));
        if !skipped {
            examples.push(Example {
                line: at + 2,
                script: lines[at + 1..end].join("\n"),
            });
        }
        at = end + 1;
    }
    examples
}

#[test]
fn readme_examples_run_as_written_on_a_fresh_clone() {
    let root = repo_root();
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let examples = runnable_examples(&readme);
    assert!(
        examples.len() >= 3,
        "the README's tour should have runnable examples, found {}",
        examples.len()
    );

    let clone = tempfile::tempdir().unwrap();
    fs::copy(root.join("README.md"), clone.path().join("README.md")).unwrap();
    copy_tree(&root.join("docs"), &clone.path().join("docs"));
    let fixtures = "crates/codec/tests/data/hdf5";
    copy_tree(&root.join(fixtures), &clone.path().join(fixtures));

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_strata")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    for example in examples {
        // `timeout` bounds an example that waits for a service that never comes up; the
        // trap stops a service an example started in the background even when a later
        // command fails (it would otherwise hold the output pipes open).
        let script = format!(
            "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}",
            example.script
        );
        let out = Command::new("timeout")
            .args(["300", "bash", "-eo", "pipefail", "-c", &script])
            .current_dir(clone.path())
            .env("PATH", &path)
            .env("HOME", clone.path())
            .env("XDG_DATA_HOME", clone.path().join(".local/share"))
            .env_remove("STRATA_CATALOG")
            .env_remove("STRATA_SERVER")
            .env_remove("STRATA_TOKEN")
            .env_remove("STRATA_CA_CERT")
            .env_remove("STRATA_LOG")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the README example at line {} failed ({}):\n{}\nstdout:\n{}\nstderr:\n{}",
            example.line,
            out.status,
            example.script,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The examples did what they say: the restored copy equals the fixtures.
    let restored = clone.path().join("strata-tour/restored");
    for entry in fs::read_dir(root.join(fixtures)).unwrap() {
        let entry = entry.unwrap();
        let copy = fs::read(restored.join(entry.file_name())).unwrap();
        assert_eq!(copy, fs::read(entry.path()).unwrap(), "{:?}", entry.path());
    }
}

#[test]
fn readme_blocks_marked_not_run_are_skipped_and_others_kept() {
    let text = "a\n```sh\none\n```\n<!-- readme.rs: not run (why) -->\n```sh\ntwo\n```\n```text\nx\n```\n```sh\nthree\nfour\n```\n";
    let found: Vec<(usize, String)> = runnable_examples(text)
        .into_iter()
        .map(|e| (e.line, e.script))
        .collect();
    assert_eq!(
        found,
        vec![(3, "one".to_string()), (13, "three\nfour".to_string())]
    );
}
