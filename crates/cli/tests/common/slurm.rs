//! A single-node SLURM cluster on loopback for the tests (Debian's `slurm-wlm` and `munge`,
//! installed by `scripts/install-test-deps.sh`): `munged`, `slurmctld` and `slurmd` run in
//! the foreground as children of the test, on free ports, with every file they write in
//! a temporary directory, and are stopped (jobs cancelled first) when the [`Cluster`] is
//! dropped. Commands reach it through `SLURM_CONF` ([`Cluster::env`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_store::testing::free_port;

/// A running cluster; dropping it stops it.
pub struct Cluster {
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

fn short_hostname() -> String {
    let out = Command::new("hostname")
        .arg("-s")
        .output()
        .expect("hostname -s");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn need(program: &str) -> PathBuf {
    super::installed(program, "slurm-wlm, munge")
}

impl Cluster {
    /// Starts munged, slurmctld and slurmd; returns once the node is idle (60 s at most).
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for sub in ["state", "spool", "log"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let mut cluster = Cluster {
            dir,
            children: Vec::new(),
        };
        let host = short_hostname();
        cluster.write_config(&host);
        cluster.start_munge();
        let conf = cluster.conf();
        cluster.spawn(need("slurmctld"), &["-D", "-i", "-f", &conf]);
        cluster.spawn(need("slurmd"), &["-D", "-N", &host, "-f", &conf]);
        cluster.wait_idle();
        cluster
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The `slurm.conf` path.
    pub fn conf(&self) -> String {
        self.root().join("slurm.conf").display().to_string()
    }

    /// Variables a command needs to talk to this cluster.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("SLURM_CONF".to_string(), self.conf())]
    }

    fn write_config(&self, host: &str) {
        let r = self.root().display().to_string();
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let conf = format!(
            "ClusterName=strata-test\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={ctld}\n\
             SlurmdPort={slurmd}\n\
             AuthType=auth/munge\n\
             AuthInfo=socket={r}/munge.sock\n\
             CredType=cred/munge\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             StateSaveLocation={r}/state\n\
             SlurmdSpoolDir={r}/spool\n\
             SlurmctldPidFile={r}/slurmctld.pid\n\
             SlurmdPidFile={r}/slurmd.pid\n\
             SlurmctldLogFile={r}/log/slurmctld.log\n\
             SlurmdLogFile={r}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             MpiDefault=none\n\
             ReturnToService=2\n\
             JobCompType=jobcomp/none\n\
             AccountingStorageType=accounting_storage/none\n\
             PlugStackConfig={r}/plugstack.conf\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP \
             OverSubscribe=FORCE\n",
            ctld = free_port(),
            slurmd = free_port(),
        );
        std::fs::write(self.root().join("slurm.conf"), conf).unwrap();
        std::fs::write(self.root().join("plugstack.conf"), "").unwrap();
    }

    fn start_munge(&mut self) {
        let key = self.root().join("munge.key");
        let bytes: Vec<u8> = (0..1024).map(|_| rand::random::<u8>()).collect();
        std::fs::write(&key, bytes).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = self.root().display().to_string();
        self.spawn(
            need("munged"),
            &[
                "-F",
                &format!("--socket={r}/munge.sock"),
                &format!("--key-file={r}/munge.key"),
                &format!("--pid-file={r}/munged.pid"),
                &format!("--log-file={r}/log/munged.log"),
                &format!("--seed-file={r}/munge.seed"),
            ],
        );
        let socket = self.root().join("munge.sock");
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "munged did not start: {}",
                self.log("munged.log")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn(&mut self, program: PathBuf, args: &[&str]) {
        let child = Command::new(&program)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        self.children.push(child);
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.root().join("log").join(name)).unwrap_or_default()
    }

    /// A SLURM command against this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(need(program));
        command.env("SLURM_CONF", self.conf());
        command
    }

    fn wait_idle(&self) {
        let start = Instant::now();
        loop {
            let out = self.command("sinfo").args(["-h", "-o", "%t"]).output();
            if let Ok(out) = out {
                if String::from_utf8_lossy(&out.stdout).trim() == "idle" {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the SLURM node did not become idle:\n{}\n{}",
                self.log("slurmctld.log"),
                self.log("slurmd.log")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until array job `job` has left the queue (`timeout` at most); `false` when it
    /// has not.
    pub fn wait_gone(&self, job: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            let out = self
                .command("squeue")
                .args(["-h", "-j", job, "-o", "%i %t"])
                .output()
                .expect("squeue");
            if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        false
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs first, so that slurmd takes its job steps down before it goes.
        let _ = self.command("scancel").args(["--user", "root"]).output();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            match self.command("squeue").arg("-h").output() {
                Ok(out) if !String::from_utf8_lossy(&out.stdout).trim().is_empty() => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                _ => break,
            }
        }
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
