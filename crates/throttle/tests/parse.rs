//! `--bwlimit` rates and timetables through the public API, including malformed input.

use strata_throttle::{BwLimit, Direction, Rate, Schedule, WeekTime, Weekday};

const MIB: u64 = 1 << 20;

#[test]
fn rates_read_like_rclone() {
    let bps = |t: &str| Rate::parse(t).unwrap().as_bytes_per_sec();
    assert_eq!(bps("100M"), Some(100 * MIB));
    assert_eq!(bps("20M"), Some(20 * MIB));
    assert_eq!(bps("512K"), Some(512 << 10));
    assert_eq!(bps("1G"), Some(1 << 30));
    assert_eq!(
        bps("512"),
        Some(512 << 10),
        "a bare number is KiB/s, as in rclone"
    );
    assert_eq!(bps("1000B"), Some(1000));
    assert_eq!(Rate::parse("off").unwrap(), Rate::Unlimited);
    let split = BwLimit::parse("10M:100M").unwrap();
    assert_eq!(
        split.for_direction(Direction::Write).as_bytes_per_sec(),
        Some(10 * MIB)
    );
    assert_eq!(
        split.for_direction(Direction::Read).as_bytes_per_sec(),
        Some(100 * MIB)
    );
}

#[test]
fn malformed_rates_are_refused_with_the_reason() {
    for (input, hint) in [
        ("", "empty"),
        ("fast", "starts with a number"),
        ("10Q", "unknown unit"),
        ("10 M", "unknown unit"),
        ("0", "off"),
        ("1.2.3M", "not a number"),
        ("1M:2M:3M", "at most one"),
        ("99999999999999P", "too large"),
    ] {
        let e = BwLimit::parse(input).unwrap_err();
        assert!(e.to_string().contains(hint), "{input}: {e}");
    }
}

#[test]
fn timetables_evaluate_and_wrap() {
    let s = Schedule::parse("Mon-08:00,20M 19:00,off Sat-00:00,1G").unwrap();
    let at = |d, h: u32, m: u32| s.rate_at(d, h * 60 + m);
    assert_eq!(at(Weekday::Mon, 8, 0), BwLimit::parse("20M").unwrap());
    assert_eq!(at(Weekday::Mon, 18, 59), BwLimit::parse("20M").unwrap());
    assert_eq!(at(Weekday::Wed, 12, 0), BwLimit::OFF);
    assert_eq!(at(Weekday::Sat, 0, 0), BwLimit::parse("1G").unwrap());
    assert_eq!(at(Weekday::Sun, 23, 59), BwLimit::OFF);
    assert_eq!(
        at(Weekday::Mon, 0, 0),
        BwLimit::OFF,
        "Sunday 19:00 still in force"
    );
    let now = WeekTime {
        weekday: Weekday::Sun,
        minute: 23 * 60,
    };
    assert_eq!(s.minutes_to_next_change(now), Some(9 * 60));
}

#[test]
fn malformed_timetables_name_the_entry() {
    for (input, token) in [
        ("Mon-08:00,20M Xmas-19:00,off", "Xmas-19:00,off"),
        ("25:00,1M", "25:00,1M"),
        ("08:00,1M 09:00", "09:00"),
        ("08:00,1M 08:00,2M", "08:00,2M"),
        ("08:00,lots", "08:00,lots"),
    ] {
        let e = Schedule::parse(input).unwrap_err();
        assert_eq!(e.token, token, "{input}: {e}");
        assert!(e.to_string().contains(token));
    }
}
