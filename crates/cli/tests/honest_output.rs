//! What `strata migrate` and `strata verify` print is what is true: the progress bar is not
//! drawn full before the plan has a total, the bandwidth line says the cap once, and a
//! DAMAGED line gives the one hint that applies to damage (repair), not a configuration
//! hint.

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, ExitStatus, Stdio};

use common::*;

/// Runs `cmd` with its standard error on a pseudo-terminal (so that the progress bar is
/// drawn) and returns its status, standard output and everything drawn on the terminal.
fn run_on_a_terminal(mut cmd: Command) -> (ExitStatus, String, String) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 160,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors into the given integers; the name
    // buffer and terminal settings are optional (null).
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("run strata");
    // The parent's copy of the terminal's slave side goes with the command, so that the
    // master sees end-of-file (EIO on Linux) when the child exits.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut terminal = fs::File::from(master);
        let mut drawn = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = terminal.read(&mut buf) {
            if n == 0 {
                break;
            }
            drawn.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&drawn).into_owned()
    });
    let out = child.wait_with_output().unwrap();
    let drawn = reader.join().unwrap();
    (out.status, stdout(&out), drawn)
}

#[test]
fn the_progress_bar_waits_for_the_plan_and_the_bandwidth_line_says_the_cap_once() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    for i in 0..3 {
        random_file(&src.join(format!("f{i}")), 1 << 20, i);
    }
    let mut cmd = sb.strata();
    // Paced so that the bar is drawn a few times while the 3 MiB go through.
    cmd.args(["migrate", src.to_str().unwrap(), dst.to_str().unwrap()])
        .args(["--bwlimit", "2M", "--chunk-size", "256K"]);
    let (status, out, drawn) = run_on_a_terminal(cmd);
    assert!(status.success(), "{out}{drawn}");
    let frames: Vec<&str> = drawn.split(['\r', '\n']).collect();
    assert!(
        frames.iter().any(|f| f.contains("/3.00 MiB")),
        "the bar never showed the plan's total: {drawn:?}"
    );
    for frame in &frames {
        assert!(
            !frame.contains("0 B/0 B"),
            "a bar was drawn before the plan had a total: {frame:?}"
        );
    }

    let bandwidth: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("bandwidth:"))
        .collect();
    assert_eq!(bandwidth.len(), 1, "{out}");
    assert_eq!(
        bandwidth[0].matches("2.0 MiB/s").count(),
        1,
        "the cap is said once: {}",
        bandwidth[0]
    );
    assert!(bandwidth[0].contains("--bwlimit"), "{}", bandwidth[0]);
    // The finished job shows no bandwidth in `strata status`: its live state is gone.
    let status = stdout(&sb.run(&["status"]));
    assert!(!status.contains("bandwidth:"), "{status}");
}

#[test]
fn a_damaged_line_gives_the_repair_hint_and_no_configuration_hint() {
    let sb = Sandbox::new();
    let (src, dst) = (sb.path("src"), sb.path("dst"));
    random_file(&src.join("big.bin"), 3 << 20, 5);
    let (s, d) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let out = sb.run(&["migrate", s, d, "--layout", "packed", "--chunk-size", "1M"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Bit rot in one chunk object, and another chunk object lost.
    let mut chunks: Vec<_> = walk(&dst.join("chunks"));
    chunks.sort();
    assert!(chunks.len() >= 2, "{chunks:?}");
    let mut bytes = fs::read(&chunks[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&chunks[0], bytes).unwrap();
    fs::remove_file(&chunks[1]).unwrap();

    let out = sb.run(&["verify", d]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    let damaged: Vec<&str> = text.lines().filter(|l| l.starts_with("DAMAGED")).collect();
    assert_eq!(damaged.len(), 1, "one file, both chunks named: {text}");
    let line = damaged[0];
    for chunk in &chunks[..2] {
        let name = chunk.file_name().unwrap().to_str().unwrap();
        assert!(line.contains(name), "{name} not named: {line}");
    }
    assert!(
        !line.contains("configuration") && !line.contains("check the path"),
        "a configuration hint on damage: {line}"
    );
    // One hint per damaged chunk, the one that applies.
    assert_eq!(line.matches("strata repair").count(), 2, "{line}");
    assert_eq!(line.matches("repair").count(), 2, "{line}");

    // Restoring the damaged store says the same: damage, repair.
    let restore = sb.run(&["migrate", d, sb.path("back").to_str().unwrap()]);
    assert_eq!(restore.status.code(), Some(1), "{}", stderr(&restore));
    let err = stderr(&restore) + &stdout(&restore);
    assert!(
        err.contains("is damaged") && err.contains("strata repair"),
        "{err}"
    );
    assert!(!err.contains("configuration"), "{err}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
