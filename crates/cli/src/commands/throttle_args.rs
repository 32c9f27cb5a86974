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
//!
//! These flags only build a [`BandwidthPolicy`]: the control itself (a throttle per store,
//! the limit file, SIGHUP, timetables) is `strata_store::bandwidth`, shared with the
//! service's `[bandwidth]` section.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use strata_store::{BandwidthControl, BandwidthPolicy};
use strata_throttle::{Priority, Schedule};

use crate::units::human_bytes;

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
        let control = BandwidthControl::new(BandwidthPolicy {
            limit: self.bwlimit.clone(),
            limit_source: "--bwlimit".to_string(),
            limit_file: self.bwlimit_file.clone(),
            class: self.priority.into(),
            congestion_control: !self.no_congestion_control,
        })?;
        Ok(Some(control))
    }
}

/// One short line for the end of a run and `strata status`: the cap in force, said once
/// (every store gets the same cap), then, for each store under congestion control, the
/// rate it may use now, its queueing delay and its back-offs. Empty when no store is
/// throttled.
pub fn progress_message(control: &BandwidthControl) -> String {
    let status = control.status();
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

/// `s3://bucket/prefix (endpoint http://...)` → `s3://bucket/prefix`.
fn short_name(display: &str) -> &str {
    display.split(" (").next().unwrap_or(display)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use strata_store::Store;
    use strata_throttle::BwLimit;

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
        let line = progress_message(&control);
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
            progress_message(&control),
            "limit write 10.0 MiB/s, read off (--bwlimit)"
        );
    }
}
