//! The bandwidth control of one process: a throttle per store under one limit, and the task
//! that keeps that limit current. The CLI builds it from `--bwlimit`, `--bwlimit-file`,
//! `--priority` and `--no-congestion-control`; the service from `[bandwidth]` in
//! `strata.toml`; both put stores under it through [`crate::layers::Layers`].
//!
//! **Limits** are rclone's: `100M` is 100 MiB/s (binary units, a bare number is KiB/s),
//! `10M:100M` caps writes at 10 and reads at 100 MiB/s (`WRITE:READ`, rclone's `UP:DOWN`),
//! and a weekly timetable such as `"Mon-08:00,20M 19:00,off Sat-00:00,1G"` switches limits
//! by local time (each entry holds until the next, wrapping over the week). Each store
//! gets its own throttle with that limit, so a copy from a local source to S3 runs at the
//! limit (its bytes are read once and written once, each side capped).
//!
//! **A limit file** (the CLI's `--bwlimit-file`) changes the limit of a running job: it
//! holds a limit (line breaks are spaces, `#` starts a comment); the live-update task
//! checks its modification time every 5 seconds and re-reads it at once on `SIGHUP`. It
//! must exist and parse when the control is built (a mistyped path must not leave a job
//! unthrottled); while it exists and parses it wins over the configured limit; removing it
//! goes back to that limit (or no cap), and one that stops parsing later is reported and
//! the limit in force stays. Timetables are re-evaluated when their period changes.
//!
//! **Congestion control** applies to S3 stores only (see [`crate::throttled::config_for`]):
//! local and memory stores have no network path to read and get the plain cap.
//!
//! **Priority** decides how the transfers of one process share a store's rate (weights
//! 8:4:2:1 for high, normal, low, background; an idle class's share goes to the others).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use strata_throttle::{BwLimit, Priority, Schedule, Throttle, WeekTime};

use crate::{Store, ThrottleStatus};

/// How often a limit file is checked for changes.
const FILE_POLL: Duration = Duration::from_secs(5);
/// Longest sleep between two evaluations of the timetable (clock jumps, time zone changes).
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// [`ControlStatus::limit_source`] without a limit.
const NO_CAP: &str = "default (no cap)";

/// What a [`BandwidthControl`] enforces.
#[derive(Clone, Debug)]
pub struct BandwidthPolicy {
    /// The limit (a rate or a timetable); `None`: no cap (congestion control may still
    /// apply).
    pub limit: Option<Schedule>,
    /// Where `limit` was given, for status and messages (`--bwlimit`, `[bandwidth] limit`).
    pub limit_source: String,
    /// A file holding a limit that wins over `limit` while it exists (see the module doc).
    pub limit_file: Option<PathBuf>,
    /// The priority class of the transfers.
    pub class: Priority,
    /// Whether S3 stores back off when their path or the store is congested.
    pub congestion_control: bool,
}

/// A limit file that cannot be used: its message names the file and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LimitFileError(String);

/// The bandwidth control of one process: a throttle per store, the limit in force, and
/// (with [`BandwidthControl::start_live_updates`]) the task that keeps the limit current.
/// Cheap to clone.
#[derive(Clone)]
pub struct BandwidthControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BandwidthControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BandwidthControl")
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

struct Shared {
    policy: BandwidthPolicy,
    state: Mutex<State>,
}

struct State {
    /// The timetable in force.
    schedule: Schedule,
    /// Where it came from, for status and messages.
    source: String,
    /// Modification time and length of the limit file when it was last read.
    file_stamp: Option<FileStamp>,
    /// One throttle per store, by the store's display name.
    throttles: Vec<(String, Throttle)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configured limit and its source, for when there is no (valid) limit file.
    fn configured(&self) -> (Schedule, String) {
        match &self.policy.limit {
            Some(limit) => (limit.clone(), self.policy.limit_source.clone()),
            None => (Schedule::constant(BwLimit::OFF), NO_CAP.to_string()),
        }
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
        let Some(path) = &self.policy.limit_file else {
            return;
        };
        let stamp = file_stamp(path);
        if !forced && stamp == self.lock().file_stamp {
            return;
        }
        match read_limit_file(path) {
            Ok(Some((schedule, stamp))) => {
                let mut state = self.lock();
                state.schedule = schedule;
                state.source = path.display().to_string();
                state.file_stamp = Some(stamp);
            }
            Ok(None) => {
                let (schedule, source) = self.configured();
                let mut state = self.lock();
                if state.file_stamp.is_some() {
                    tracing::warn!(file = %path.display(), "the limit file is gone; back to {source}");
                }
                state.schedule = schedule;
                state.source = source;
                state.file_stamp = None;
            }
            Err(error) => {
                // Remember the stamp so a bad file is reported once, not every 5 s.
                self.lock().file_stamp = stamp;
                tracing::warn!("{error}; the limit in force stays");
            }
        }
    }
}

impl BandwidthControl {
    /// The control `policy` asks for. Reads the limit file once, so that a missing,
    /// unreadable or bad file stops the caller before it starts.
    pub fn new(policy: BandwidthPolicy) -> Result<BandwidthControl, LimitFileError> {
        let (schedule, source) = match &policy.limit {
            Some(limit) => (limit.clone(), policy.limit_source.clone()),
            None => (Schedule::constant(BwLimit::OFF), NO_CAP.to_string()),
        };
        let mut state = State {
            schedule,
            source,
            file_stamp: None,
            throttles: Vec::new(),
        };
        if let Some(path) = &policy.limit_file {
            let Some((schedule, stamp)) = read_limit_file(path)? else {
                return Err(LimitFileError(format!(
                    "--bwlimit-file {} does not exist; create it holding a --bwlimit SPEC \
                     (e.g. `10M`, or `off`) before starting the job, or leave --bwlimit-file out",
                    path.display()
                )));
            };
            state.schedule = schedule;
            state.source = path.display().to_string();
            state.file_stamp = Some(stamp);
        }
        Ok(BandwidthControl {
            shared: Arc::new(Shared {
                policy,
                state: Mutex::new(state),
            }),
        })
    }

    /// The policy this control enforces.
    pub fn policy(&self) -> &BandwidthPolicy {
        &self.shared.policy
    }

    /// Puts `store` under its throttle (created on first use with the limit in force; one
    /// per store, so clones of a store and the store opened again share it). Local and
    /// memory stores get the plain cap only, and are returned untouched when no cap can
    /// ever apply.
    pub fn apply(&self, store: Store) -> Store {
        let policy = &self.shared.policy;
        let network = store.uri().scheme().is_remote();
        let congestion_control = policy.congestion_control && network;
        let may_cap = policy.limit.is_some() || policy.limit_file.is_some();
        if !congestion_control && !may_cap {
            return store;
        }
        let key = store.display();
        let throttle = {
            let mut state = self.shared.lock();
            match state.throttles.iter().find(|(k, _)| *k == key) {
                Some((_, t)) => t.clone(),
                None => {
                    let now = unix_now();
                    let limit = state
                        .schedule
                        .limit_at(WeekTime::from_unix(now, utc_offset_secs(now)));
                    let config =
                        crate::throttled::config_for(&store, limit, policy.congestion_control);
                    let throttle = Throttle::new(config);
                    state.throttles.push((key, throttle.clone()));
                    throttle
                }
            }
        };
        store.with_throttle(throttle, policy.class)
    }

    /// Starts the task that keeps the limit current: it re-evaluates the timetable when its
    /// period changes, checks the limit file every 5 s and re-reads it on SIGHUP. The task
    /// stops when the returned guard is dropped.
    pub fn start_live_updates(&self) -> LiveUpdates {
        let shared = self.shared.clone();
        LiveUpdates {
            task: tokio::spawn(live_updates(shared)),
        }
    }

    /// The state of every throttle, for `--json` (`"throttle": {...}`), `strata status` and
    /// the service's `/healthz`.
    pub fn status(&self) -> ControlStatus {
        let state = self.shared.lock();
        ControlStatus {
            limit_source: state.source.clone(),
            priority: format!("{:?}", self.shared.policy.class).to_ascii_lowercase(),
            congestion_control: self.shared.policy.congestion_control,
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

    /// Re-reads the limit file (as on SIGHUP) and applies the limit now.
    #[cfg(test)]
    fn refresh(&self, forced: bool) {
        self.shared.reload(forced);
        self.shared.apply_now();
    }
}

/// What [`BandwidthControl::status`] reports.
#[derive(Debug, Clone, Serialize)]
pub struct ControlStatus {
    /// Where the limit in force comes from: the configured limit's source, the limit
    /// file's path, or the default.
    pub limit_source: String,
    /// The transfers' priority class.
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
    let mut hangup = match &shared.policy.limit_file {
        Some(_) => match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(error) => {
                tracing::warn!(
                    "cannot listen for SIGHUP ({error}); the limit file is still checked every 5 s"
                );
                None
            }
        },
        None => None,
    };
    loop {
        let until_change = shared.apply_now();
        let mut sleep = until_change.unwrap_or(MAX_SLEEP).min(MAX_SLEEP);
        if shared.policy.limit_file.is_some() {
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
fn read_limit_file(path: &Path) -> Result<Option<(Schedule, FileStamp)>, LimitFileError> {
    let Some(stamp) = file_stamp(path) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        LimitFileError(format!(
            "cannot read --bwlimit-file {} ({e}); give a readable file holding a --bwlimit SPEC",
            path.display()
        ))
    })?;
    let spec: Vec<&str> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .collect();
    let schedule = Schedule::parse(&spec.join(" "))
        .map_err(|e| LimitFileError(format!("--bwlimit-file {}: {e}", path.display())))?;
    Ok(Some((schedule, stamp)))
}

/// A file's modification time and length: a change of either means it was edited.
type FileStamp = (SystemTime, u64);

fn file_stamp(path: &Path) -> Option<FileStamp> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(limit: Option<&str>, file: Option<&Path>) -> BandwidthPolicy {
        BandwidthPolicy {
            limit: limit.map(|l| Schedule::parse(l).unwrap()),
            limit_source: "--bwlimit".to_string(),
            limit_file: file.map(Path::to_path_buf),
            class: Priority::Normal,
            congestion_control: true,
        }
    }

    async fn local_store(path: &Path) -> Store {
        let uri = crate::StoreUri::parse(path.to_str().unwrap()).unwrap();
        Store::open(&uri, &crate::S3Options::default())
            .await
            .unwrap()
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
        let e = read_limit_file(&path).unwrap_err().to_string();
        assert!(e.contains("8:00,fast") && e.contains("bwlimit"), "{e}");
        assert!(BandwidthControl::new(policy(None, Some(&path))).is_err());
    }

    #[test]
    fn a_missing_or_unreadable_limit_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-limit");
        let e = BandwidthControl::new(policy(Some("8M"), Some(&missing)))
            .expect_err("a missing limit file is refused")
            .to_string();
        assert!(
            e.contains(&missing.display().to_string()) && e.contains("does not exist"),
            "{e}"
        );
        let e = BandwidthControl::new(policy(None, Some(dir.path())))
            .expect_err("a directory is refused")
            .to_string();
        assert!(e.contains("cannot read --bwlimit-file"), "{e}");
    }

    #[tokio::test]
    async fn limit_file_changes_apply_to_running_throttles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bwlimit");
        std::fs::write(&path, "1M").unwrap();
        let mut p = policy(Some("8M"), Some(&path));
        p.congestion_control = false;
        let control = BandwidthControl::new(p).unwrap();
        let store = control.apply(local_store(&dir.path().join("root")).await);
        let (throttle, class) = store.throttle().unwrap();
        assert_eq!(class, Priority::Normal);
        assert_eq!(throttle.limit(), BwLimit::parse("1M").unwrap());
        // A change is picked up by a reload (the live task runs it every 5 s or on SIGHUP).
        std::fs::write(&path, "3M:off # more").unwrap();
        control.refresh(true);
        assert_eq!(throttle.limit(), BwLimit::parse("3M:off").unwrap());
        assert_eq!(control.status().limit_source, path.display().to_string());
        // A broken file keeps the limit in force.
        std::fs::write(&path, "3Q").unwrap();
        control.refresh(true);
        assert_eq!(throttle.limit(), BwLimit::parse("3M:off").unwrap());
        // Removing the file goes back to the configured limit.
        std::fs::remove_file(&path).unwrap();
        control.refresh(false);
        assert_eq!(throttle.limit(), BwLimit::parse("8M").unwrap());
        assert_eq!(control.status().limit_source, "--bwlimit");
        let json = serde_json::to_value(control.status()).unwrap();
        assert_eq!(json["stores"][0]["limit"], "8M");
        assert_eq!(json["stores"][0]["congestion_control"], false);
    }

    #[tokio::test]
    async fn local_stores_without_a_cap_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let control = BandwidthControl::new(policy(None, None)).unwrap();
        let store = control.apply(local_store(dir.path()).await);
        assert!(store.throttle().is_none());
        assert!(control.status().stores.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sighup_rereads_the_limit_file() {
        use tokio::signal::unix::{signal, SignalKind};
        // Our own handler first, so that a SIGHUP can never end the test process.
        let _hangup = signal(SignalKind::hangup()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bwlimit");
        std::fs::write(&path, "1M").unwrap();
        let control = BandwidthControl::new(policy(None, Some(&path))).unwrap();
        let store = control.apply(local_store(&dir.path().join("r")).await);
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
