//! A real PostgreSQL server for tests, from Debian's `postgresql` package
//! (`scripts/install-test-deps.sh` installs it).
//!
//! [`shared`] starts one server per test binary, the first time a test asks, and each
//! test takes a fresh database from it ([`PostgresServer::fresh_database`]: `CREATE
//! DATABASE t_N`), so tests run in parallel without seeing each other's rows.
//! [`PostgresServer::start`] starts a private one that a test may stop.
//!
//! How a server runs:
//!
//! - in a temporary directory owned by the `postgres` user when the tests run as root
//!   (`initdb` refuses root: it and the server run through `runuser -u postgres`), with
//!   trust authentication, listening on 127.0.0.1 only, on a free port, its unix socket
//!   in that directory; `fsync` off (a test server holds nothing worth a sync);
//! - under a watchdog shell that stops it (fast shutdown) when the test process is gone,
//!   and removes its directory once it has stopped: a static's `Drop` never runs at exit,
//!   and a server must not outlive `cargo test`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser of a test server (trust authentication: no password).
pub const SUPERUSER: &str = "postgres";

/// How long a server has to answer after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL server on 127.0.0.1 for tests.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    data_dir: PathBuf,
    bin_dir: PathBuf,
    as_postgres: bool,
    databases: AtomicU32,
}

/// The server shared by every test of this test binary, started on first use.
///
/// Panics (failing the test with the reason) when PostgreSQL is not installed or does
/// not start: run `scripts/install-test-deps.sh`.
pub fn shared() -> &'static PostgresServer {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    SERVER.get_or_init(|| PostgresServer::start().unwrap_or_else(|err| panic!("{err}")))
}

impl PostgresServer {
    /// Starts a server of its own (stopped by [`PostgresServer::stop`], on drop, or when
    /// the test process exits).
    pub fn start() -> Result<Self, String> {
        let bin_dir = find_bin_dir()?;
        let as_postgres = is_root();
        let root = tempfile::Builder::new()
            .prefix("strata-pg-")
            .tempdir()
            .map_err(|err| format!("cannot create a temporary directory: {err}"))?
            .keep();
        let data_dir = root.join("data");
        if as_postgres {
            run(Command::new("chown").arg("postgres:postgres").arg(&root))?;
        }
        let mut server = PostgresServer {
            port: 0,
            data_dir,
            bin_dir,
            as_postgres,
            databases: AtomicU32::new(0),
        };
        if let Err(err) = server.initdb() {
            // Nothing runs yet: nothing to stop.
            std::mem::forget(server);
            return Err(err);
        }
        // A free port can be taken by someone else before the server binds it: try again.
        let mut last = String::new();
        for _ in 0..3 {
            server.port = free_port()?;
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(err) => last = err,
            }
        }
        std::mem::forget(server);
        Err(last)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The URL of database `name` with a user and password in it (trust authentication
    /// accepts any password: tests use this to check that it is never shown).
    pub fn url_with_password(&self, name: &str, password: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{password}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// Creates an empty database of its own for one test; returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!("t_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        self.sql(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|err| panic!("{err}"));
        self.url(&name)
    }

    /// Runs one SQL statement (or several, `;`-separated) on database `postgres` with
    /// `psql`; returns its unaligned, tuples-only output.
    pub fn sql(&self, statements: &str) -> Result<String, String> {
        self.sql_in("postgres", statements)
    }

    /// Runs SQL in database `database` (see [`PostgresServer::sql`]).
    pub fn sql_in(&self, database: &str, statements: &str) -> Result<String, String> {
        let output = run(Command::new(self.bin_dir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", SUPERUSER, "-d", database])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(statements))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Stops the server now (immediate shutdown) and waits until it is gone. Calls after
    /// the first do nothing. Its data stays until the test process exits.
    pub fn stop(&self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }

    /// Shuts the server down cleanly (fast shutdown: clients disconnected, every commit
    /// on disk) and waits until it is gone, as an operator stopping it would. [`stop`]
    /// is a crash, and this test server runs with `synchronous_commit=off`, so the last
    /// commits before it may be lost; this keeps them for [`PostgresServer::restart`].
    ///
    /// [`stop`]: PostgresServer::stop
    pub fn shut_down(&self) {
        let _ = self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Starts a stopped server again, on the same port with the same data (a server
    /// that comes back during a job).
    pub fn restart(&self) -> Result<(), String> {
        self.launch()
    }

    fn initdb(&self) -> Result<(), String> {
        let mut initdb = self.as_server_user(&self.bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&self.data_dir)
            .args(["--auth=trust", "--username", SUPERUSER])
            .args([
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--data-checksums",
            ]);
        run(&mut initdb).map(|_| ())
    }

    /// Starts the server under its watchdog and waits until it answers.
    fn launch(&self) -> Result<(), String> {
        let socket_dir = self.data_dir.parent().unwrap_or(Path::new("/tmp"));
        // The watchdog: the server in the background, then a poll of the test process;
        // when it is gone, a fast shutdown of whichever server runs on the data directory
        // (this one, or one started again by `restart`), and the directory removed. A
        // server the test stops keeps its data until then, so it can be started again.
        let script = r#"
            "$0" -D "$1" -p "$2" -k "$3" -c listen_addresses=127.0.0.1 -c fsync=off \
                -c full_page_writes=off -c synchronous_commit=off -c max_connections=200 \
                >>"$3/server.log" 2>&1 &
            server=$!
            while [ -d "/proc/$4" ]; do sleep 0.5; done
            [ -f "$1/postmaster.pid" ] && kill -INT "$(head -n 1 "$1/postmaster.pid")" 2>/dev/null
            for _ in $(seq 1 40); do [ -f "$1/postmaster.pid" ] || break; sleep 0.25; done
            rm -rf "$3"
        "#;
        let mut watchdog = self.as_server_user(Path::new("sh"));
        watchdog
            .arg("-c")
            .arg(script)
            .arg(self.bin_dir.join("postgres"))
            .arg(&self.data_dir)
            .arg(self.port.to_string())
            .arg(socket_dir)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = watchdog
            .spawn()
            .map_err(|err| format!("cannot start PostgreSQL's watchdog: {err}"))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.is_ready() {
                // The watchdog lives on by itself; nothing waits for it.
                std::mem::forget(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(socket_dir.join("server.log")).unwrap_or_default();
                return Err(format!(
                    "PostgreSQL on 127.0.0.1:{} exited ({status}) before answering:\n{log}",
                    self.port
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "PostgreSQL did not answer on 127.0.0.1:{} within {READY_TIMEOUT:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn is_ready(&self) -> bool {
        Command::new(self.bin_dir.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<Output, String> {
        let mut pg_ctl = self.as_server_user(&self.bin_dir.join("pg_ctl"));
        pg_ctl.arg("-D").arg(&self.data_dir).args(args);
        run(&mut pg_ctl)
    }

    /// `program` run as the `postgres` user when the tests run as root.
    fn as_server_user(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where PostgreSQL's server programs are: `$STRATA_PG_BINDIR`, else Debian's
/// `/usr/lib/postgresql/<newest>/bin`, else the directory of `initdb` on `PATH`.
fn find_bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("STRATA_PG_BINDIR") {
        return Ok(PathBuf::from(dir));
    }
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists())
        .ok_or_else(|| {
            "PostgreSQL's initdb is not installed (Debian: apt-get install postgresql); run scripts/install-test-deps.sh".to_string()
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A port nothing listens on now.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("cannot find a free port: {err}"))
}

/// Runs `command`; its output, or an error quoting what it printed.
fn run(command: &mut Command) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|err| format!("cannot run {command:?}: {err}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        ))
    }
}
