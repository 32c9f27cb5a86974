//! The weekly bandwidth timetable (`--bwlimit "Mon-08:00,20M 19:00,off Sat-00:00,1G"`).
//!
//! This module owns the timetable syntax and the question "which limit is in force at this
//! moment of the week". It follows rclone's `--bwlimit` timetable so that its documented
//! examples mean the same here:
//!
//! - entries are separated by spaces; each is `HH:MM,LIMIT` (applies every day) or
//!   `Ddd-HH:MM,LIMIT` (applies on that weekday; `Mon`..`Sun` or full names, any case);
//! - `LIMIT` is anything [`BwLimit::parse`] reads: `20M`, `off`, `10M:100M` (write:read);
//! - a limit holds from its entry until the next entry, wrapping over the end of the week:
//!   before the week's first entry, the week's last entry is still in force;
//! - a lone limit without a time (`--bwlimit 20M`) is in force all the time.
//!
//! Times are local wall-clock times of the operator; [`WeekTime::from_unix`] takes the UTC
//! offset so that this crate needs no time-zone database.

use std::fmt;

use crate::rate::{BwLimit, RateError};

/// Minutes in a day.
const DAY: u32 = 24 * 60;
/// Minutes in a week.
const WEEK: u32 = 7 * DAY;

/// A day of the week, Monday first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// All days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// Days since Monday (Monday = 0, Sunday = 6).
    pub fn index(self) -> u32 {
        self as u32
    }

    /// The day `index` days after Monday, modulo 7.
    pub fn from_index(index: u32) -> Weekday {
        Weekday::ALL[(index % 7) as usize]
    }

    /// Reads `Mon`, `monday`, `SUN`, ...
    pub fn parse(text: &str) -> Option<Weekday> {
        let lower = text.to_ascii_lowercase();
        let full = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        full.iter()
            .position(|f| lower == *f || (lower.len() == 3 && f.starts_with(&lower)))
            .map(|i| Weekday::ALL[i])
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][self.index() as usize])
    }
}

/// A moment of the week to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WeekTime {
    /// The day.
    pub weekday: Weekday,
    /// Minutes since local midnight, `0..1440` (larger values are taken modulo a day).
    pub minute: u32,
}

impl WeekTime {
    /// The local week time of a Unix timestamp, given the local offset from UTC in seconds
    /// (e.g. +3600 for CET in winter).
    pub fn from_unix(unix_secs: i64, utc_offset_secs: i32) -> WeekTime {
        let local = unix_secs.saturating_add(i64::from(utc_offset_secs));
        let minutes = local.div_euclid(60);
        let day = minutes.div_euclid(i64::from(DAY));
        // 1970-01-01 was a Thursday (index 3).
        let weekday = Weekday::from_index((day + 3).rem_euclid(7) as u32);
        let minute = minutes.rem_euclid(i64::from(DAY)) as u32;
        WeekTime { weekday, minute }
    }

    /// Minutes since Monday 00:00.
    fn week_minute(self) -> u32 {
        self.weekday.index() * DAY + self.minute % DAY
    }
}

/// A bandwidth timetable: which [`BwLimit`] is in force at each minute of the week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Entries sorted by minute of the week (Monday 00:00 = 0); never empty.
    entries: Vec<(u32, BwLimit)>,
}

impl Schedule {
    /// A timetable with one limit all the time.
    pub fn constant(limit: BwLimit) -> Schedule {
        Schedule {
            entries: vec![(0, limit)],
        }
    }

    /// Parses a timetable (see the module doc). Errors name the offending entry.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        if tokens.is_empty() {
            return Err(ScheduleError {
                token: String::new(),
                reason: "the timetable is empty; expected e.g. `08:00,512K 19:00,off`".into(),
            });
        }
        if let [only] = tokens.as_slice() {
            if !only.contains(',') {
                return BwLimit::parse(only)
                    .map(Schedule::constant)
                    .map_err(|e| ScheduleError::from_rate(only, e));
            }
        }
        let mut entries: Vec<(u32, BwLimit, &str)> = Vec::new();
        for token in tokens {
            let (day, minute, limit) = parse_entry(token)?;
            let days: Vec<Weekday> = match day {
                Some(d) => vec![d],
                None => Weekday::ALL.to_vec(),
            };
            for d in days {
                let at = d.index() * DAY + minute;
                if let Some((_, _, earlier)) = entries.iter().find(|(m, _, _)| *m == at) {
                    return Err(ScheduleError {
                        token: token.to_string(),
                        reason: format!(
                            "{d} {:02}:{:02} is already set by `{earlier}`; give each moment \
                             of the week one limit",
                            minute / 60,
                            minute % 60
                        ),
                    });
                }
                entries.push((at, limit, token));
            }
        }
        entries.sort_by_key(|(m, _, _)| *m);
        Ok(Schedule {
            entries: entries.into_iter().map(|(m, l, _)| (m, l)).collect(),
        })
    }

    /// The limit in force on `weekday` at `minute` minutes after local midnight.
    pub fn rate_at(&self, weekday: Weekday, minute: u32) -> BwLimit {
        self.limit_at(WeekTime { weekday, minute })
    }

    /// The limit in force at `at`.
    pub fn limit_at(&self, at: WeekTime) -> BwLimit {
        let m = at.week_minute();
        let idx = self.entries.partition_point(|(e, _)| *e <= m);
        // idx == 0: before the week's first entry, the last one wraps round.
        let pick = if idx == 0 { self.entries.len() } else { idx };
        self.entries
            .get(pick.wrapping_sub(1))
            .map(|(_, l)| *l)
            .unwrap_or(BwLimit::OFF)
    }

    /// Minutes from `at` until the next entry takes over (at least 1), or `None` when the
    /// timetable has a single entry. Callers sleep this long, then re-evaluate.
    pub fn minutes_to_next_change(&self, at: WeekTime) -> Option<u32> {
        if self.entries.len() < 2 {
            return None;
        }
        let m = at.week_minute();
        let next = self
            .entries
            .iter()
            .map(|(e, _)| *e)
            .find(|e| *e > m)
            .unwrap_or(self.entries[0].0 + WEEK);
        Some(next - m)
    }
}

/// Parses one `[Ddd-]HH:MM,LIMIT` entry.
fn parse_entry(token: &str) -> Result<(Option<Weekday>, u32, BwLimit), ScheduleError> {
    let err = |reason: &str| ScheduleError {
        token: token.to_string(),
        reason: reason.to_string(),
    };
    let Some((when, limit)) = token.split_once(',') else {
        return Err(err(
            "expected `HH:MM,RATE` or `Ddd-HH:MM,RATE` (e.g. `Mon-08:00,20M`); \
             a lone rate is only allowed as the whole timetable",
        ));
    };
    let (day, time) = match when.split_once('-') {
        Some((d, t)) => match Weekday::parse(d) {
            Some(day) => (Some(day), t),
            None => {
                return Err(err(&format!(
                    "unknown day `{d}`; expected Mon, Tue, Wed, Thu, Fri, Sat or Sun"
                )))
            }
        },
        None => (None, when),
    };
    let minute = parse_hhmm(time).ok_or_else(|| {
        err(&format!(
            "bad time `{time}`; expected HH:MM from 00:00 to 23:59"
        ))
    })?;
    let limit = BwLimit::parse(limit).map_err(|e| ScheduleError::from_rate(token, e))?;
    Ok((day, minute, limit))
}

/// `HH:MM` to minutes since midnight.
fn parse_hhmm(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let all_digits =
        |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || m.len() != 2 || !all_digits(m) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// A timetable that could not be parsed: the entry and what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bandwidth timetable entry `{token}`: {reason}")]
pub struct ScheduleError {
    /// The offending entry (empty for an empty timetable).
    pub token: String,
    /// What is wrong and what is expected.
    pub reason: String,
}

impl ScheduleError {
    fn from_rate(token: &str, e: RateError) -> ScheduleError {
        ScheduleError {
            token: token.to_string(),
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::Rate;
    use Weekday::*;

    fn lim(t: &str) -> BwLimit {
        BwLimit::parse(t).unwrap()
    }

    fn hm(h: u32, m: u32) -> u32 {
        h * 60 + m
    }

    #[test]
    fn rclone_daily_example() {
        // rclone docs: "08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off"
        let s = Schedule::parse("08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off").unwrap();
        assert_eq!(s.rate_at(Wed, hm(7, 59)), BwLimit::OFF); // yesterday's 23:00
        assert_eq!(s.rate_at(Wed, hm(8, 0)), lim("512K"));
        assert_eq!(s.rate_at(Wed, hm(12, 30)), lim("10M"));
        assert_eq!(s.rate_at(Wed, hm(13, 0)), lim("512K"));
        assert_eq!(s.rate_at(Wed, hm(22, 59)), lim("30M"));
        assert_eq!(s.rate_at(Mon, 0), BwLimit::OFF); // wraps from Sunday 23:00
    }

    #[test]
    fn rclone_weekly_example_wraps_over_the_week() {
        // rclone docs: "Mon-00:00,512 Fri-23:59,10M Sat-10:00,1M Sun-20:00,off"
        let s = Schedule::parse("Mon-00:00,512 Fri-23:59,10M Sat-10:00,1M Sun-20:00,off").unwrap();
        assert_eq!(s.rate_at(Mon, 0), lim("512K"));
        assert_eq!(s.rate_at(Thu, hm(12, 0)), lim("512K"));
        assert_eq!(s.rate_at(Fri, hm(23, 59)), lim("10M"));
        assert_eq!(s.rate_at(Sat, hm(9, 59)), lim("10M"));
        assert_eq!(s.rate_at(Sat, hm(10, 0)), lim("1M"));
        assert_eq!(s.rate_at(Sun, hm(23, 59)), BwLimit::OFF);

        // The example: nothing before Monday 08:00 except last Saturday's entry.
        let s = Schedule::parse("Mon-08:00,20M 19:00,off Sat-00:00,1G").unwrap();
        assert_eq!(s.rate_at(Mon, hm(7, 0)), BwLimit::OFF); // Sunday 19:00 is still in force
        assert_eq!(s.rate_at(Mon, hm(8, 0)), lim("20M"));
        assert_eq!(s.rate_at(Mon, hm(19, 0)), BwLimit::OFF);
        assert_eq!(s.rate_at(Tue, hm(9, 0)), BwLimit::OFF);
        assert_eq!(s.rate_at(Sat, hm(12, 0)), lim("1G"));
        assert_eq!(s.rate_at(Sat, hm(19, 0)), BwLimit::OFF);
    }

    #[test]
    fn constant_and_split_limits() {
        let s = Schedule::parse("10M").unwrap();
        assert_eq!(s.rate_at(Sun, hm(3, 3)), lim("10M"));
        assert_eq!(
            s.minutes_to_next_change(WeekTime {
                weekday: Sun,
                minute: 5
            }),
            None
        );
        let s = Schedule::parse("Mon-08:00,10M:off 18:00,1M:2M").unwrap();
        assert_eq!(
            s.rate_at(Mon, hm(9, 0)),
            BwLimit::Split {
                write: Rate::parse("10M").unwrap(),
                read: Rate::Unlimited
            }
        );
    }

    #[test]
    fn next_change_wraps() {
        let s = Schedule::parse("Mon-08:00,20M Sat-00:00,1G").unwrap();
        let at = WeekTime {
            weekday: Mon,
            minute: hm(7, 0),
        };
        assert_eq!(s.minutes_to_next_change(at), Some(60));
        let at = WeekTime {
            weekday: Sun,
            minute: hm(23, 0),
        };
        assert_eq!(s.minutes_to_next_change(at), Some(60 + hm(8, 0)));
    }

    #[test]
    fn malformed_timetables_name_the_token() {
        let cases = [
            ("", ""),
            ("08:00,1M 10M", "10M"),
            ("Mon-24:00,1M", "Mon-24:00,1M"),
            ("Mon-8:5,1M", "Mon-8:5,1M"),
            ("Xyz-08:00,1M", "Xyz-08:00,1M"),
            ("08:00,fast", "08:00,fast"),
            ("08:00,", "08:00,"),
            ("08:00,1M Mon-08:00,2M", "Mon-08:00,2M"),
            ("08:60,1M", "08:60,1M"),
            ("-08:00,1M", "-08:00,1M"),
            ("zz", "zz"),
        ];
        for (input, token) in cases {
            let e = Schedule::parse(input).unwrap_err();
            assert_eq!(e.token, token, "{input}: {e}");
            assert!(
                e.to_string().contains("expected") || e.reason.contains("already"),
                "{e}"
            );
        }
    }

    #[test]
    fn week_time_from_unix() {
        // 1970-01-01 00:00 UTC was a Thursday.
        assert_eq!(
            WeekTime::from_unix(0, 0),
            WeekTime {
                weekday: Thu,
                minute: 0
            }
        );
        // 2024-01-01 (a Monday) 08:30 UTC, seen from UTC+2.
        let t = WeekTime::from_unix(1_704_097_800, 7200);
        assert_eq!(
            t,
            WeekTime {
                weekday: Mon,
                minute: hm(10, 30)
            }
        );
        assert_eq!(
            WeekTime::from_unix(-60, 0),
            WeekTime {
                weekday: Wed,
                minute: hm(23, 59)
            }
        );
        let _ = WeekTime::from_unix(i64::MIN, i32::MIN);
        let _ = WeekTime::from_unix(i64::MAX, i32::MAX);
    }
}
