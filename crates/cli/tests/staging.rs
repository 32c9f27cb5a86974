//! Staged copies of atomic writes (manifests, packed objects) live in the destination's
//! `.strata/staging/`, never beside a file; what a killed run left there is cleared by the
//! next run, and nothing else is.

mod common;

use std::fs;

use common::*;

#[test]
fn a_rerun_clears_what_a_killed_atomic_write_left_in_staging() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    let files = sample_tree(&src);
    // A source file named like the old beside-the-file temporary names is data.
    fs::write(src.join(".data.bin.strata-tmp.1.0"), b"user data").unwrap();
    let args = ["migrate", src.to_str().unwrap(), dst.to_str().unwrap()];
    let out = sb.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));

    // What a run killed while writing its manifest leaves: a staged copy whose writer is
    // gone (no process has this id: Linux pids stay below 2^22).
    let staging = dst.join(".strata/staging");
    fs::create_dir_all(&staging).unwrap();
    let leftover = staging.join("0123456789abcdef.99999999.0.atomic");
    fs::write(&leftover, b"{\"half\":").unwrap();

    let out = sb.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !leftover.exists(),
        "the staged copy of the killed run is removed"
    );
    assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
    assert_same_files(&src, &dst, &files);
    assert_eq!(
        fs::read(dst.join(".data.bin.strata-tmp.1.0")).unwrap(),
        b"user data"
    );
    let verify = sb.run(&["verify", dst.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", stdout(&verify));
}
