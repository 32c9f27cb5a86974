//! Bandwidth control over a real network stack: `strata migrate` to an S3 server (moto)
//! across a shaped link between two network namespaces.
//!
//! - **Yielding**: with its defaults (congestion control on, no cap) Strata fills the link;
//!   an iperf3 bulk flow (CUBIC) through the same bottleneck then gets most of the link,
//!   and Strata takes the link back once iperf3 ends.
//! - **Fixed cap**: `--bwlimit 4M` holds within 5 % over every 10-second window.
//!
//! The topology is `scripts/netns-bench.sh`'s (which also compares with rclone): namespaces
//! `strata-srv-PID` (moto, iperf3 server) and `strata-cli-PID` joined by a veth pair on
//! 10.231.x.0/24; the client-to-server direction drains through a token bucket (80 Mbit/s,
//! 250 ms FIFO) on an ifb device at the server's ingress, so the queue builds one hop away
//! from the senders as on a real path. Rates are read every 0.1 s from tc filter byte
//! counters by destination port (S3 port: Strata; the rest: iperf3).
//!
//! Needs root (network namespaces, tc), `ip`, `tc` (ifb, tbf, u32, mirred), `iperf3`,
//! `python3` and `moto_server` (`scripts/install-test-deps.sh`). Without them the test fails
//! and says what is missing. Namespaces and processes are removed even when it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The bottleneck, in Mbit/s.
const LINK_MBIT: u64 = 80;
/// The S3 port in the server namespace.
const S3_PORT: u16 = 9000;
const IPERF_PORT: u16 = 5201;
const MIB: u64 = 1 << 20;

/// Two namespaces and everything started in them; all removed on drop.
struct Testbed {
    srv: String,
    cli: String,
    dev_srv: String,
    srv_ip: String,
    children: Vec<Child>,
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.srv, &self.cli] {
            // Anything still running in our own namespaces (strata, iperf3 clients).
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: plain kill(2) of a process in a namespace this test made.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
        thread::sleep(Duration::from_millis(200));
        for ns in [&self.srv, &self.cli] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e} (is it installed?)"));
    assert!(
        out.status.success(),
        "{shown} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

impl Testbed {
    fn in_ns(&self, ns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }

    fn srv_cmd(&self, program: &str) -> Command {
        self.in_ns(&self.srv, program)
    }

    fn cli_cmd(&self, program: &str) -> Command {
        self.in_ns(&self.cli, program)
    }

    fn up() -> Testbed {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(
            root,
            "this test needs root (it creates network namespaces and tc qdiscs); run it as \
             root, e.g. `sudo -E cargo test -p strata-cli --test netns_throttle`"
        );
        let id = std::process::id();
        let net = format!("10.231.{}", 20 + id % 200);
        let mut bed = Testbed {
            srv: format!("strata-srv-{id}"),
            cli: format!("strata-cli-{id}"),
            dev_srv: format!("vs{id}"),
            srv_ip: format!("{net}.1"),
            children: Vec::new(),
        };
        let out = Command::new("ip")
            .args(["netns", "add", &bed.srv])
            .output()
            .expect("run `ip` (iproute2)");
        assert!(
            out.status.success(),
            "`ip netns add` is not permitted here ({}); this test needs root with \
             CAP_SYS_ADMIN and CAP_NET_ADMIN",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        ip(&["netns", "add", &bed.cli]);
        let (vs, vc, ifb) = (bed.dev_srv.clone(), format!("vc{id}"), format!("ifb{id}"));
        let (srv, cli) = (bed.srv.clone(), bed.cli.clone());
        ip(&[
            "link", "add", &vs, "netns", &srv, "type", "veth", "peer", "name", &vc, "netns", &cli,
        ]);
        ip(&[
            "-n",
            &srv,
            "addr",
            "add",
            &format!("{net}.1/24"),
            "dev",
            &vs,
        ]);
        ip(&[
            "-n",
            &cli,
            "addr",
            "add",
            &format!("{net}.2/24"),
            "dev",
            &vc,
        ]);
        for (ns, dev) in [
            (&srv, "lo"),
            (&cli, "lo"),
            (&srv, vs.as_str()),
            (&cli, vc.as_str()),
        ] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        // The bottleneck: client-to-server packets are redirected at the server's ingress to
        // an ifb device whose token bucket drains at the link rate behind a 250 ms FIFO.
        ip(&["-n", &srv, "link", "add", &ifb, "type", "ifb"]);
        ip(&["-n", &srv, "link", "set", &ifb, "up"]);
        let tc = |args: &[&str]| run(bed.srv_cmd("tc").args(args));
        let rate = format!("{LINK_MBIT}mbit");
        tc(&[
            "qdisc", "add", "dev", &ifb, "root", "tbf", "rate", &rate, "burst", "64kb", "latency",
            "250ms",
        ]);
        tc(&["qdisc", "add", "dev", &vs, "handle", "ffff:", "ingress"]);
        let port = S3_PORT.to_string();
        tc(&[
            "filter", "add", "dev", &vs, "parent", "ffff:", "protocol", "ip", "prio", "1", "u32",
            "match", "ip", "dport", &port, "0xffff", "action", "mirred", "egress", "redirect",
            "dev", &ifb,
        ]);
        tc(&[
            "filter", "add", "dev", &vs, "parent", "ffff:", "protocol", "all", "prio", "2", "u32",
            "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", &ifb,
        ]);

        let moto = find_moto();
        let child = bed
            .srv_cmd(moto.to_str().unwrap())
            .args(["-H", &bed.srv_ip, "-p", &port])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        bed.children.push(child);
        let child = bed
            .srv_cmd("iperf3")
            .args(["-s", "-p", &IPERF_PORT.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iperf3 -s (install iperf3: scripts/install-test-deps.sh)");
        bed.children.push(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while bed.http(&format!("http://{}:{port}/", bed.srv_ip), "GET") == 0 {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer in the server namespace within 30 s"
            );
            thread::sleep(Duration::from_millis(300));
        }
        bed
    }

    /// An HTTP request from the client namespace; its status (0 when nothing answers).
    fn http(&self, url: &str, method: &str) -> u16 {
        let script = format!(
            "import urllib.request, urllib.error\n\
             try:\n    print(urllib.request.urlopen(urllib.request.Request('{url}', \
             method='{method}'), timeout=2).status)\n\
             except urllib.error.HTTPError as e:\n    print(e.code)\n\
             except Exception:\n    print(0)\n"
        );
        let out = self
            .cli_cmd("python3")
            .args(["-c", &script])
            .output()
            .expect("run python3 in the client namespace");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    fn mkbucket(&self, name: &str) {
        let status = self.http(&format!("http://{}:{S3_PORT}/{name}", self.srv_ip), "PUT");
        assert_eq!(status, 200, "creating bucket {name}");
    }

    /// Bytes that reached the bottleneck so far: (to the S3 port, everything else).
    fn counters(&self) -> (u64, u64) {
        let out = self
            .srv_cmd("tc")
            .args([
                "-s",
                "filter",
                "show",
                "dev",
                &self.dev_srv,
                "parent",
                "ffff:",
            ])
            .output()
            .expect("tc -s filter show");
        let text = String::from_utf8_lossy(&out.stdout);
        let sent: Vec<u64> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Sent "))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        (
            sent.first().copied().unwrap_or(0),
            sent.get(1).copied().unwrap_or(0),
        )
    }

    /// Runs `strata migrate ARGS SRC s3://BUCKET/ds` in the client namespace for `secs`
    /// seconds, sampling the counters every 0.1 s, and calls `at(t)` once a second.
    fn migrate_for(
        &self,
        secs: u64,
        src: &Path,
        bucket: &str,
        catalog: &Path,
        args: &[&str],
        mut at: impl FnMut(u64),
    ) -> Samples {
        self.mkbucket(bucket);
        let mut strata = self.cli_cmd(env!("CARGO_BIN_EXE_strata"));
        strata
            .env("STRATA_CATALOG", catalog)
            // The rates are sampled from the start: no deferral of the fresh dataset.
            .env("STRATA_SETTLE", "0")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ENDPOINT_URL")
            // The controller's trace (one line per request) is printed, so a failure shows why.
            .env("STRATA_LOG", "strata_store::throttled=trace,warn")
            .arg("migrate")
            .args(args)
            .args([
                "--s3-endpoint",
                &format!("http://{}:{S3_PORT}", self.srv_ip),
            ])
            .arg(src)
            .arg(format!("s3://{bucket}/ds"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = strata.spawn().expect("start strata migrate");
        let stderr = child.stderr.take().expect("stderr");
        let errors = Arc::new(Mutex::new(String::new()));
        let sink = errors.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut e = sink.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        let start = Instant::now();
        let mut samples = Vec::new();
        let mut next_second = 0;
        while start.elapsed() < Duration::from_secs(secs) {
            let t = start.elapsed().as_secs_f64();
            let (s3, other) = self.counters();
            samples.push((t, s3, other));
            if t >= next_second as f64 {
                at(next_second);
                next_second += 1;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "strata migrate ended early ({status}) at {t:.1} s: {}",
                    errors.lock().unwrap()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = reader.join();
        println!("strata's log ({bucket}):\n{}", errors.lock().unwrap());
        Samples(samples)
    }

    /// Starts an iperf3 bulk flow (CUBIC) from the client to the server for `secs` seconds.
    fn iperf3(&self, secs: u64) -> Child {
        self.cli_cmd("iperf3")
            .args(["-c", &self.srv_ip, "-p", &IPERF_PORT.to_string()])
            .args(["-t", &secs.to_string(), "-C", "cubic"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iperf3 -c")
    }
}

/// (seconds since start, bytes to S3, other bytes), every 0.1 s.
struct Samples(Vec<(f64, u64, u64)>);

impl Samples {
    fn at(&self, t: f64) -> (f64, u64, u64) {
        *self
            .0
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .expect("samples")
    }

    /// Average bytes/s between `t0` and `t1`: (S3, other).
    fn rate(&self, t0: f64, t1: f64) -> (f64, f64) {
        let (a, b) = (self.at(t0), self.at(t1));
        let dt = (b.0 - a.0).max(1e-9);
        ((b.1 - a.1) as f64 / dt, (b.2 - a.2) as f64 / dt)
    }
}

fn find_moto() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.is_file())
    });
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/moto-venv/bin/moto_server");
    on_path
        .or_else(|| venv.is_file().then_some(venv))
        .expect("moto_server is not installed; run scripts/s3-server.sh install")
}

/// `count` files of 32 MiB of random bytes.
fn dataset(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    for i in 0..count {
        let mut f = std::fs::File::create(dir.join(format!("f{i:03}.bin"))).unwrap();
        let copied =
            std::io::copy(&mut std::io::Read::take(&mut random, 32 * MIB), &mut f).unwrap();
        assert_eq!(copied, 32 * MIB);
    }
}

#[test]
fn strata_yields_to_competing_traffic_and_holds_a_fixed_cap() {
    let bed = Testbed::up();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    // Enough for 34 s at the full link rate (10 MB/s).
    dataset(&src, 10);
    let link = (LINK_MBIT * 1_000_000 / 8) as f64;
    let mb = |r: f64| r / 1e6;

    // 1. Congestion control (the default) against an iperf3 flow from 10 s to 20 s.
    let mut iperf = None;
    let samples = bed.migrate_for(
        34,
        &src,
        "yield",
        &work.path().join("yield.db"),
        &[],
        |second| {
            if second == 10 {
                iperf = Some(bed.iperf3(10));
            }
        },
    );
    if let Some(mut child) = iperf {
        let out = child.wait().unwrap();
        assert!(out.success(), "iperf3 -c failed");
    }
    println!("second  strata MB/s  iperf3 MB/s");
    for s in 0..33 {
        let (ours, theirs) = samples.rate(s as f64, s as f64 + 1.0);
        let mark = if (10..20).contains(&s) {
            " (iperf3)"
        } else {
            ""
        };
        println!("{s:>4}  {:>9.2}  {:>9.2}{mark}", mb(ours), mb(theirs));
    }
    let (alone, _) = samples.rate(5.0, 10.0);
    // From 5 s after iperf3 starts: the controller sees the competition through its
    // samples, one per 8 MiB part, and halves at most once per sample; and a CUBIC flow
    // that starts against a busy link can take a few seconds to ramp up here (see
    // `scripts/netns-bench.sh` on TCP small queues).
    let (during, iperf_rate) = samples.rate(15.0, 20.0);
    let (after, _) = samples.rate(23.0, 33.0);
    println!(
        "link {:.1} MB/s; strata alone {:.0} %, with iperf3 {:.0} % (iperf3 {:.0} %), after {:.0} %",
        mb(link),
        alone / link * 100.0,
        during / link * 100.0,
        iperf_rate / link * 100.0,
        after / link * 100.0
    );
    assert!(
        alone > 0.5 * link,
        "strata alone should fill most of the link: {:.2} MB/s",
        mb(alone)
    );
    assert!(
        iperf_rate > 0.6 * link && during < 0.35 * link,
        "strata should yield: strata {:.2} MB/s, iperf3 {:.2} MB/s of {:.2}",
        mb(during),
        mb(iperf_rate),
        mb(link)
    );
    assert!(
        after > 0.5 * link,
        "strata should take the link back after iperf3: {:.2} MB/s",
        mb(after)
    );

    // 2. A fixed cap holds over every 10-second window (after 5 s of start-up).
    let samples = bed.migrate_for(
        22,
        &src,
        "capped",
        &work.path().join("capped.db"),
        &["--bwlimit", "4M"],
        |_| {},
    );
    let cap = (4 * MIB) as f64;
    for start in 5..=11 {
        let (r, _) = samples.rate(start as f64, start as f64 + 10.0);
        println!(
            "cap window {start}-{} s: {:.3} MB/s (cap {:.3})",
            start + 10,
            mb(r),
            mb(cap)
        );
        assert!(
            (r - cap).abs() <= 0.05 * cap,
            "--bwlimit 4M: {:.3} MB/s over {start}-{} s, more than 5 % from {:.3}",
            mb(r),
            start + 10,
            mb(cap)
        );
    }
}
