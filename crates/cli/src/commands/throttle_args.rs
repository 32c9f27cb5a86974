//! `--bwlimit`, `--bwlimit-file`, `--priority`, `--no-congestion-control`: how a command's
//! transfers share the network, and how their limit changes while the command runs.
//!
//! **Limits** are rclone's: `--bwlimit 100M` is 100 MiB/s (binary units, a bare number is
//! KiB/s), `--bwlimit 10M:100M` caps writes at 10 and reads at 100 MiB/s (`WRITE:READ`, rclone's
//! `UP:DOWN`), and a weekly timetable such as `"Mon-08:00,20M 19:00,off Sat-00:00,1G"`
//! switches limits by local time (each entry holds until the next, wrapping over the week).
//! Each store gets its own throttle with that limit, so a copy from a local source to S3
//! runs at the limit (its bytes are read once and written once, each side capped).
//!
//! **Changing the limit of a running job**: start it with `--bwlimit-file PATH` and edit
//! the file. The file holds what `--bwlimit` takes (line breaks are spaces, `#` starts a
//! comment). The job checks the file's modification time every 5 seconds and re-reads it
//! at once on `SIGHUP` (`kill -HUP <pid>`; only with `--bwlimit-file`, otherwise SIGHUP
//! keeps its usual meaning). The file must exist and parse when the job starts (otherwise
//! the command stops before it moves a byte, naming the file: a mistyped path must not
//! leave a job unthrottled); while it exists and parses it wins over `--bwlimit`; removing
//! it while the job runs goes back to `--bwlimit` (or no cap), and one that stops parsing
//! later is reported and the limit in force stays. Timetables are re-evaluated when their
//! period changes.
//!
//! **Congestion control** (on by default, for S3 stores): the throttle backs off when the
//! path's delay rises, when the store pushes back (HTTP 429/503) or errors pile up, and
//! grows again when they clear, so bulk copies yield to other traffic
//! (see `strata_throttle`). Local and memory stores have no network path to read: they get
//! the plain cap. `--no-congestion-control` keeps the plain cap everywhere.
//!
//! **Priority** decides how jobs of one process share a store's rate (weights 8:4:2:1 for
//! high, normal, low, background; an idle class's share goes to the others).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;
use strata_store::{Store, StoreScheme, ThrottleStatus};
use strata_throttle::{BwLimit, Priority, Schedule, Throttle, WeekTime};

use crate::units::human_bytes;

/// How often `--bwlimit-file` is checked for changes.
const FILE_POLL: Duration = Duration::from_secs(5);
/// Longest sleep between two evaluations of the timetable (clock jumps, time zone changes).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Bandwidth flags shared by the commands that move data.
#[derive(Args, Debug, Clone)]
pub struct ThrottleArgs {
    /// Bandwidth limit per store: a rate (`100M` = 100 MiB/s, binary units as rclone reads
    /// them; a bare number is KiB/s), `WRITE:READ` (`10M:off`), or a weekly timetable
    /// (`"Mon-08:00,20M 19:00,off Sat-00:00,1G"`, local time). Default: no cap.
    #[arg(long, value_name = "SPEC", value_parser = parse_bwlimit)]
    pub bwlimit: Option<Schedule>,
    /// A file holding a --bwlimit SPEC that can be edited while the job runs: checked every
    /// 5 s, re-read at once on SIGHUP. Wins over --bwlimit while it exists; it must exist
    /// when the job starts.
    #[arg(long, value_name = "PATH")]
    pub bwlimit_file: Option<PathBuf>,
    /// Priority class of this job's transfers when jobs of one process share a store's
    /// rate: high, normal, low or background (weights 8:4:2:1).
    #[arg(long, value_enum, default_value_t = PriorityArg::Normal)]
    pub priority: PriorityArg,
    /// Plain caps only: do not back off when the network path or the store gets congested.
    #[arg(long)]
    pub no_congestion_control: bool,
}

/// `--priority` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PriorityArg {
    /// Interactive or deadline work (weight 8).
    High,
    /// Ordinary jobs (weight 4).
    Normal,
    /// Work that can wait (weight 2).
    Low,
    /// Takes what the others leave (weight 1).
    Background,
}

impl From<PriorityArg> for Priority {
    fn from(p: PriorityArg) -> Priority {
        match p {
            PriorityArg::High => Priority::High,
            PriorityArg::Normal => Priority::Normal,
            PriorityArg::Low => Priority::Low,
            PriorityArg::Background => Priority::Background,
        }
    }
}

/// Parses a `--bwlimit` SPEC; the error names the offending entry.
pub fn parse_bwlimit(text: &str) -> Result<Schedule, String> {
    Schedule::parse(text).map_err(|e| e.to_string())
}

impl ThrottleArgs {
    /// The bandwidth control these flags ask for; `None` when there is nothing to do (no
    /// limit, no limit file, congestion control off). Reads `--bwlimit-file` once, so that a
    /// missing, unreadable or bad file stops the command before it starts.
    pub fn build(&self) -> anyhow::Result<Option<BandwidthControl>> {
        if self.bwlimit.is_none() && self.bwlimit_file.is_none() && self.no_congestion_control {
            return Ok(None);
        }
        let mut state = State {
            schedule: self
                .bwlimit
                .clone()
                .unwrap_or_else(|| Schedule::constant(BwLimit::OFF)),
            source: if self.bwlimit.is_some() {
                "--bwlimit".to_string()
            } else {
                "default (no cap)".to_string()
            },
            file_stamp: None,
            throttles: Vec::new(),
        };
        if let Some(path) = &self.bwlimit_file {
            let Some((schedule, stamp)) = read_limit_file(path)? else {
                anyhow::bail!(
                    "--bwlimit-file {} does not exist; create it holding a --bwlimit SPEC \
                     (e.g. `10M`, or `off`) before starting the job, or leave --bwlimit-file out",
                    path.display()
                );
            };
            state.schedule = schedule;
            state.source = path.display().to_string();
            state.file_stamp = Some(stamp);
        }
        Ok(Some(BandwidthControl {
            shared: Arc::new(Shared {
                flag: self.bwlimit.clone(),
                file: self.bwlimit_file.clone(),
                class: self.priority.into(),
                congestion_control: !self.no_congestion_control,
                state: Mutex::new(state),
            }),
        }))
    }
}

/// The bandwidth control of one command: a throttle per store, the limit in force, and
/// (with [`BandwidthControl::start_live_updates`]) the task that keeps the limit current.
/// Cheap to clone.
#[derive(Clone)]
pub struct BandwidthControl {
    shared: Arc<Shared>,
}

struct Shared {
    /// `--bwlimit`, what applies when there is no (valid) limit file.
    flag: Option<Schedule>,
    file: Option<PathBuf>,
    class: Priority,
    congestion_control: bool,
    state: Mutex<State>,
}

struct State {
    /// The timetable in force.
    schedule: Schedule,
    /// Where it came from, for status and messages.
    source: String,
    /// Modification time and length of the limit file when it was last read.
    file_stamp: Option<(SystemTime, u64)>,
    /// One throttle per store, by the store's display name.
    throttles: Vec<(String, Throttle)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Evaluates the timetable now and applies the limit to every throttle; returns how
    /// long until the timetable changes.
    fn apply_now(&self) -> Option<Duration> {
        let now = unix_now();
        let at = WeekTime::from_unix(now, utc_offset_secs(now));
        let state = self.lock();
        let limit = state.schedule.limit_at(at);
        for (_, throttle) in &state.throttles {
            if throttle.limit() != limit {
                tracing::info!(%limit, source = %state.source, "bandwidth limit changed");
                throttle.set_limit(limit);
            }
        }
        state.schedule.minutes_to_next_change(at).map(|minutes| {
            let into_minute = now.rem_euclid(60) as u64;
            Duration::from_secs((u64::from(minutes) * 60).saturating_sub(into_minute).max(1))
        })
    }

    /// Re-reads the limit file if it changed (or always, on SIGHUP).
    fn reload(&self, forced: bool) {
        let Some(path) = &self.file else { return };
        let stamp = file_stamp(path);
        {
            let state = self.lock();
            if !forced && stamp == state.file_stamp {
                return;
            }
        }
        match read_limit_file(path) {
            Ok(Some((schedule, stamp))) => {
                let mut state = self.lock();
                state.schedule = schedule;
                state.source = path.display().to_string();
                state.file_stamp = Some(stamp);
            }
            Ok(None) => {
                let mut state = self.lock();
                if state.file_stamp.is_some() {
                    tracing::warn!(
                        file = %path.display(),
                        "the --bwlimit-file is gone; back to {}",
                        if self.flag.is_some() { "--bwlimit" } else { "no cap" }
                    );
                }
                state.schedule = self
                    .flag
                    .clone()
                    .unwrap_or_else(|| Schedule::constant(BwLimit::OFF));
                state.source = if self.flag.is_some() {
                    "--bwlimit".to_string()
                } else {
                    "default (no cap)".to_string()
                };
                state.file_stamp = None;
            }
            Err(error) => {
                // Remember the stamp so a bad file is reported once, not every 5 s.
                self.lock().file_stamp = stamp;
                tracing::warn!("{error:#}; the limit in force stays");
            }
        }
    }
}

impl BandwidthControl {
    /// Puts `store` under its throttle (created on first use with the limit in force; one
    /// per store). Local and memory stores get the plain cap only, and are returned
    /// untouched when no cap can ever apply.
    pub fn apply(&self, store: Store) -> Store {
        let shared = &self.shared;
        let network = store.uri().scheme() == StoreScheme::S3;
        let congestion_control = shared.congestion_control && network;
        let may_cap = shared.flag.is_some() || shared.file.is_some();
        if !congestion_control && !may_cap {
            return store;
        }
        let key = store.display();
        let throttle = {
            let mut state = shared.lock();
            match state.throttles.iter().find(|(k, _)| *k == key) {
                Some((_, t)) => t.clone(),
                None => {
                    let now = unix_now();
                    let limit = state
                        .schedule
                        .limit_at(WeekTime::from_unix(now, utc_offset_secs(now)));
                    let config = strata_store::throttled::config_for(
                        &store,
                        limit,
                        shared.congestion_control,
                    );
                    let throttle = Throttle::new(config);
                    state.throttles.push((key, throttle.clone()));
                    throttle
                }
            }
        };
        store.with_throttle(throttle, shared.class)
    }

    /// Starts the task that keeps the limit current: it re-evaluates the timetable when its
    /// period changes, checks `--bwlimit-file` every 5 s and re-reads it on SIGHUP. The task
    /// stops when the returned guard is dropped.
    pub fn start_live_updates(&self) -> LiveUpdates {
        let shared = self.shared.clone();
        LiveUpdates {
            task: tokio::spawn(live_updates(shared)),
        }
    }

    /// The state of every throttle, for `--json` (`"throttle": {...}`) and `strata status`.
    pub fn status(&self) -> ControlStatus {
        let state = self.shared.lock();
        ControlStatus {
            limit_source: state.source.clone(),
            priority: format!("{:?}", self.shared.class).to_ascii_lowercase(),
            congestion_control: self.shared.congestion_control,
            stores: state
                .throttles
                .iter()
                .map(|(store, t)| StoreThrottleStatus {
                    store: store.clone(),
                    status: ThrottleStatus::of(t),
                })
                .collect(),
        }
    }

    /// One short line for the end of a run and `strata status`: the cap in force, said
    /// once (every store gets the same cap), then, for each store under congestion
    /// control, the rate it may use now, its queueing delay and its back-offs. Empty when
    /// no store is throttled.
    pub fn progress_message(&self) -> String {
        let status = self.status();
        let Some(first) = status.stores.first() else {
            return String::new();
        };
        let rate = |r: Option<u64>| match r {
            Some(r) => format!("{}/s", human_bytes(r)),
            None => "off".to_string(),
        };
        let (write, read) = (first.status.write.cap, first.status.read.cap);
        let mut parts = vec![match (write, read) {
            (None, None) => "no cap".to_string(),
            _ if write == read => format!("limit {} ({})", rate(write), status.limit_source),
            _ => format!(
                "limit write {}, read {} ({})",
                rate(write),
                rate(read),
                status.limit_source
            ),
        }];
        for store in &status.stores {
            let s = &store.status;
            let (dir, lane) = if s.write.admitted_bytes >= s.read.admitted_bytes {
                ("write", &s.write)
            } else {
                ("read", &s.read)
            };
            if let (Some(current), Some(q)) = (lane.current_rate, lane.queuing_delay_ms) {
                parts.push(format!(
                    "{} {dir} now {}/s, allowed {}, queue {q:.0}/{:.0} ms, {} back-offs",
                    short_name(&store.store),
                    human_bytes(current as u64),
                    rate(lane.rate_limit),
                    lane.target_delay_ms,
                    lane.backoff_events
                ));
            }
        }
        parts.join("; ")
    }
}

/// What [`BandwidthControl::status`] reports.
#[derive(Debug, Clone, Serialize)]
pub struct ControlStatus {
    /// Where the limit in force comes from: `--bwlimit`, the limit file's path, or the
    /// default.
    pub limit_source: String,
    /// This job's priority class.
    pub priority: String,
    /// Whether congestion control was asked for (it applies to S3 stores).
    pub congestion_control: bool,
    /// One entry per throttled store.
    pub stores: Vec<StoreThrottleStatus>,
}

/// One store's throttle in a [`ControlStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct StoreThrottleStatus {
    /// The store, as displayed.
    pub store: String,
    /// Its throttle's state.
    #[serde(flatten)]
    pub status: ThrottleStatus,
}

/// Keeps the live-update task running; stops it when dropped.
pub struct LiveUpdates {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LiveUpdates {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn live_updates(shared: Arc<Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    // SIGHUP re-reads the limit file; without one it keeps its default meaning.
    let mut hangup = match &shared.file {
        Some(_) => {
            match signal(SignalKind::hangup()) {
                Ok(s) => Some(s),
                Err(error) => {
                    tracing::warn!("cannot listen for SIGHUP ({error}); the limit file is still checked every 5 s");
                    None
                }
            }
        }
        None => None,
    };
    loop {
        let until_change = shared.apply_now();
        let mut sleep = until_change.unwrap_or(MAX_SLEEP).min(MAX_SLEEP);
        if shared.file.is_some() {
            sleep = sleep.min(FILE_POLL);
        }
        let forced = match hangup.as_mut() {
            Some(h) => tokio::select! {
                _ = tokio::time::sleep(sleep) => false,
                got = h.recv() => got.is_some(),
            },
            None => {
                tokio::time::sleep(sleep).await;
                false
            }
        };
        shared.reload(forced);
    }
}

/// Reads a limit file: `None` if it does not exist. Line breaks separate entries like
/// spaces; `#` starts a comment.
fn read_limit_file(path: &Path) -> anyhow::Result<Option<(Schedule, (SystemTime, u64))>> {
    let Some(stamp) = file_stamp(path) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read --bwlimit-file {}; give a readable file holding a --bwlimit SPEC",
            path.display()
        )
    })?;
    let spec: Vec<&str> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .collect();
    let schedule = Schedule::parse(&spec.join(" "))
        .with_context(|| format!("--bwlimit-file {}", path.display()))?;
    Ok(Some((schedule, stamp)))
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().unwrap_or(UNIX_EPOCH), meta.len()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The local time zone's offset from UTC at `unix` (daylight saving included), from the C
/// library's time zone database; 0 if it cannot tell.
fn utc_offset_secs(unix: i64) -> i32 {
    let t = unix as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: localtime_r writes into the provided `tm` and returns it or NULL.
    let ok = unsafe { !libc::localtime_r(&t, tm.as_mut_ptr()).is_null() };
    if !ok {
        return 0;
    }
    // SAFETY: localtime_r succeeded, so `tm` is initialised.
    let tm = unsafe { tm.assume_init() };
    i32::try_from(tm.tm_gmtoff).unwrap_or(0)
}

/// `s3://bucket/prefix (endpoint http://...)` → `s3://bucket/prefix`.
fn short_name(display: &str) -> &str {
    display.split(" (").next().unwrap_or(display)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        throttle: ThrottleArgs,
    }

    fn parse(args: &[&str]) -> Result<ThrottleArgs, String> {
        let mut argv = vec!["strata"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map(|c| c.throttle)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_parse_like_rclone() {
        let a = parse(&["--bwlimit", "100M"]).unwrap();
        let limit = a.bwlimit.unwrap().rate_at(strata_throttle::Weekday::Mon, 0);
        assert_eq!(limit, BwLimit::parse("100M").unwrap());
        let a = parse(&[
            "--bwlimit",
            "Mon-08:00,20M 19:00,off Sat-00:00,1G",
            "--priority",
            "background",
        ])
        .unwrap();
        assert_eq!(a.priority, PriorityArg::Background);
        let s = a.bwlimit.unwrap();
        assert_eq!(
            s.rate_at(strata_throttle::Weekday::Mon, 9 * 60),
            BwLimit::parse("20M").unwrap()
        );
        // Every day's 19:00 entry applies on Saturday too: 1G from midnight until 19:00.
        assert_eq!(
            s.rate_at(strata_throttle::Weekday::Sat, 12 * 60),
            BwLimit::parse("1G").unwrap()
        );
        assert_eq!(
            s.rate_at(strata_throttle::Weekday::Sun, 12 * 60),
            BwLimit::OFF
        );
        let a = parse(&[]).unwrap();
        assert_eq!(a.priority, PriorityArg::Normal);
        assert!(!a.no_congestion_control);
    }

    #[test]
    fn bad_specs_name_the_bad_token() {
        let e = parse(&["--bwlimit", "Mon-08:00,20X 19:00,off"]).unwrap_err();
        assert!(e.contains("Mon-08:00,20X"), "{e}");
        assert!(e.contains("unknown unit"), "{e}");
        let e = parse(&["--bwlimit", "Funday-08:00,1M"]).unwrap_err();
        assert!(e.contains("Funday"), "{e}");
        let e = parse(&["--priority", "urgent"]).unwrap_err();
        assert!(e.contains("urgent"), "{e}");
    }

    #[test]
    fn nothing_to_do_builds_nothing() {
        let a = parse(&["--no-congestion-control"]).unwrap();
        assert!(a.build().unwrap().is_none());
        assert!(parse(&[]).unwrap().build().unwrap().is_some());
    }

    #[test]
    fn limit_file_is_read_with_comments_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bwlimit");
        std::fs::write(&path, "# office hours\nMon-08:00,2M  # busy\n19:00,off\n").unwrap();
        let (s, _) = read_limit_file(&path).unwrap().unwrap();
        assert_eq!(
            s.rate_at(strata_throttle::Weekday::Mon, 9 * 60),
            BwLimit::parse("2M").unwrap()
        );
        assert!(read_limit_file(&dir.path().join("missing"))
            .unwrap()
            .is_none());
        std::fs::write(&path, "8:00,fast").unwrap();
        let e = format!("{:#}", read_limit_file(&path).unwrap_err());
        assert!(e.contains("8:00,fast") && e.contains("bwlimit"), "{e}");
        let a = parse(&["--bwlimit-file", path.to_str().unwrap()]).unwrap();
        assert!(a.build().is_err());
    }

    #[test]
    fn a_missing_or_unreadable_limit_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-limit");
        let a = parse(&[
            "--bwlimit",
            "8M",
            "--bwlimit-file",
            missing.to_str().unwrap(),
        ])
        .unwrap();
        let e = format!(
            "{:#}",
            a.build().err().expect("a missing limit file is refused")
        );
        assert!(
            e.contains(&missing.display().to_string()) && e.contains("does not exist"),
            "{e}"
        );
        let a = parse(&["--bwlimit-file", dir.path().to_str().unwrap()]).unwrap();
        let e = format!("{:#}", a.build().err().expect("a directory is refused"));
        assert!(e.contains("cannot read --bwlimit-file"), "{e}");
    }

    #[tokio::test]
    async fn limit_file_changes_apply_to_running_throttles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bwlimit");
        std::fs::write(&path, "1M").unwrap();
        let a = parse(&["--bwlimit", "8M", "--bwlimit-file", path.to_str().unwrap()]).unwrap();
        let control = a.build().unwrap().unwrap();
        let uri = strata_store::StoreUri::parse(dir.path().join("root").to_str().unwrap()).unwrap();
        let store = Store::open(&uri, &strata_store::S3Options::default())
            .await
            .unwrap();
        let store = control.apply(store);
        let (throttle, class) = store.throttle().unwrap();
        assert_eq!(class, Priority::Normal);
        assert_eq!(throttle.limit(), BwLimit::parse("1M").unwrap());
        // A change is picked up by a reload (the live task runs it every 5 s or on SIGHUP).
        std::fs::write(&path, "3M:off # more").unwrap();
        control.shared.reload(true);
        control.shared.apply_now();
        assert_eq!(throttle.limit(), BwLimit::parse("3M:off").unwrap());
        assert_eq!(control.status().limit_source, path.display().to_string());
        // A broken file keeps the limit in force.
        std::fs::write(&path, "3Q").unwrap();
        control.shared.reload(true);
        control.shared.apply_now();
        assert_eq!(throttle.limit(), BwLimit::parse("3M:off").unwrap());
        // Removing the file goes back to --bwlimit.
        std::fs::remove_file(&path).unwrap();
        control.shared.reload(false);
        control.shared.apply_now();
        assert_eq!(throttle.limit(), BwLimit::parse("8M").unwrap());
        let json = serde_json::to_value(control.status()).unwrap();
        assert_eq!(json["stores"][0]["limit"], "8M");
        assert_eq!(json["stores"][0]["congestion_control"], false);
        assert!(
            control.progress_message().contains("limit 8.0 MiB/s"),
            "{}",
            control.progress_message()
        );
    }

    #[tokio::test]
    async fn the_bandwidth_line_states_the_cap_once() {
        let dir = tempfile::tempdir().unwrap();
        let control = parse(&["--bwlimit", "20M"])
            .unwrap()
            .build()
            .unwrap()
            .unwrap();
        for name in ["src", "dst"] {
            let uri =
                strata_store::StoreUri::parse(dir.path().join(name).to_str().unwrap()).unwrap();
            let store = Store::open(&uri, &strata_store::S3Options::default())
                .await
                .unwrap();
            control.apply(store);
        }
        assert_eq!(control.status().stores.len(), 2);
        let line = control.progress_message();
        assert_eq!(line, "limit 20.0 MiB/s (--bwlimit)");
        let control = parse(&["--bwlimit", "10M:off"])
            .unwrap()
            .build()
            .unwrap()
            .unwrap();
        let uri = strata_store::StoreUri::parse(dir.path().join("x").to_str().unwrap()).unwrap();
        control.apply(
            Store::open(&uri, &strata_store::S3Options::default())
                .await
                .unwrap(),
        );
        assert_eq!(
            control.progress_message(),
            "limit write 10.0 MiB/s, read off (--bwlimit)"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sighup_rereads_the_limit_file() {
        use tokio::signal::unix::{signal, SignalKind};
        // Our own handler first, so that a SIGHUP can never end the test process.
        let _hangup = signal(SignalKind::hangup()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bwlimit");
        std::fs::write(&path, "1M").unwrap();
        let a = parse(&["--bwlimit-file", path.to_str().unwrap()]).unwrap();
        let control = a.build().unwrap().unwrap();
        let uri = strata_store::StoreUri::parse(dir.path().join("r").to_str().unwrap()).unwrap();
        let store = Store::open(&uri, &strata_store::S3Options::default())
            .await
            .unwrap();
        let store = control.apply(store);
        let throttle = store.throttle().unwrap().0.clone();
        let _live = control.start_live_updates();
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(&path, "3M:off").unwrap();
        // SAFETY: kill(2) of our own process with a signal that has a handler.
        unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
        let start = std::time::Instant::now();
        while throttle.limit() != BwLimit::parse("3M:off").unwrap() {
            assert!(
                start.elapsed() < Duration::from_secs(4),
                "the limit file was not re-read on SIGHUP: {}",
                throttle.limit()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn utc_offset_is_sane() {
        let off = utc_offset_secs(unix_now());
        assert!((-14 * 3600..=14 * 3600).contains(&off));
    }
}
