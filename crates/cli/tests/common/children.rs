//! Child processes that die with the test binary: every child is spawned by one launcher
//! thread that lives as long as the process, with PR_SET_PDEATHSIG (which fires when the
//! *thread* that forked the child exits, so a test thread must not fork it), and reaped by
//! that thread.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

enum Request {
    Spawn(Command, mpsc::Sender<Result<u32, String>>),
    Wait(u32, mpsc::Sender<Option<i32>>),
}

fn launcher() -> &'static Mutex<mpsc::Sender<Request>> {
    static LAUNCHER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::spawn(move || {
            let mut children: Vec<Child> = Vec::new();
            let mut waiting: Vec<(u32, mpsc::Sender<Option<i32>>)> = Vec::new();
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(Request::Spawn(mut cmd, reply)) => {
                        // SAFETY: prctl is async-signal-safe; nothing else runs between fork
                        // and exec.
                        unsafe {
                            cmd.pre_exec(|| {
                                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                                Ok(())
                            });
                        }
                        let spawned = cmd.spawn().map_err(|e| e.to_string());
                        let _ = reply.send(spawned.map(|child| {
                            let pid = child.id();
                            children.push(child);
                            pid
                        }));
                    }
                    Ok(Request::Wait(pid, reply)) => waiting.push((pid, reply)),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                children.retain_mut(|child| match child.try_wait() {
                    Ok(Some(status)) => {
                        let pid = child.id();
                        waiting.retain(|(p, reply)| {
                            if *p == pid {
                                let _ = reply.send(status.code());
                            }
                            *p != pid
                        });
                        false
                    }
                    _ => true,
                });
                // A wait for a child already reaped (or never ours) answers at once.
                waiting.retain(|(pid, reply)| {
                    let known = children.iter().any(|c| c.id() == *pid);
                    if !known {
                        let _ = reply.send(None);
                    }
                    known
                });
            }
        });
        Mutex::new(tx)
    })
}

/// Spawns `cmd` from the launcher thread; its pid.
pub fn spawn(cmd: Command) -> u32 {
    let (reply, answer) = mpsc::channel();
    launcher()
        .lock()
        .unwrap()
        .send(Request::Spawn(cmd, reply))
        .expect("launcher thread alive");
    answer
        .recv()
        .expect("launcher answers")
        .unwrap_or_else(|e| panic!("cannot spawn: {e}"))
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a pid this process spawned.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

/// Waits until `pid` has exited; its exit code (`None`: killed by a signal).
pub fn wait(pid: u32) -> Option<i32> {
    let (reply, answer) = mpsc::channel();
    launcher()
        .lock()
        .unwrap()
        .send(Request::Wait(pid, reply))
        .expect("launcher thread alive");
    answer.recv().ok().flatten()
}
