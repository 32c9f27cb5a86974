//! Access statistics under simulated time: windows rolling over, late events, decayed rates,
//! persistence, and hostile timestamps.

use strata_heat::stats::StatsDecodeError;
use strata_heat::units::{DAY_MS, HOUR_MS, MINUTE_MS};
use strata_heat::{AccessStats, Decay, Op, PersistedStats, STATS_FORMAT_VERSION};

/// 2026-01-01T00:00:00Z, a bucket boundary for every window.
const T0: i64 = 1_767_225_600_000;

fn read(stats: &mut AccessStats, ts: i64) {
    stats.record(&Decay::default(), ts, Op::Read, 100);
}

#[test]
fn new_stats_are_empty() {
    let stats = AccessStats::new();
    let summary = stats.summary(&Decay::default(), T0);
    assert_eq!(summary.count_1h + summary.count_24h + summary.count_7d, 0);
    assert_eq!(summary.last_access_ms, None);
    assert_eq!(summary.first_seen_ms, None);
    assert_eq!(summary.mean_interarrival_ms, None);
    assert_eq!(
        (summary.fast_rate_per_hour, summary.slow_rate_per_hour),
        (0.0, 0.0)
    );
}

#[test]
fn windows_roll_over_hours_and_days() {
    let mut stats = AccessStats::new();
    // 10 reads in the first five minutes.
    for i in 0..10 {
        read(&mut stats, T0 + i * 1_000);
    }
    assert_eq!(stats.count_1h(T0 + 10 * MINUTE_MS), 10);
    // The hour window is 12 five-minute buckets: the first falls out after 55 minutes.
    assert_eq!(stats.count_1h(T0 + 55 * MINUTE_MS - 1), 10);
    assert_eq!(stats.count_1h(T0 + 60 * MINUTE_MS), 0);
    assert_eq!(stats.count_24h(T0 + 60 * MINUTE_MS), 10);
    // The day window is 24 hourly buckets.
    assert_eq!(stats.count_24h(T0 + 23 * HOUR_MS), 10);
    assert_eq!(stats.count_24h(T0 + 24 * HOUR_MS), 0);
    assert_eq!(stats.count_7d(T0 + 24 * HOUR_MS), 10);
    assert_eq!(stats.count_7d(T0 + 6 * DAY_MS), 10);
    assert_eq!(stats.count_7d(T0 + 7 * DAY_MS), 0);

    // A read two hours later advances the rings and clears what fell out.
    read(&mut stats, T0 + 2 * HOUR_MS);
    assert_eq!(stats.count_1h(T0 + 2 * HOUR_MS), 1);
    assert_eq!(stats.count_24h(T0 + 2 * HOUR_MS), 11);
    // Three days later: the day window only has the new read, the week all of them.
    read(&mut stats, T0 + 3 * DAY_MS);
    assert_eq!(stats.count_24h(T0 + 3 * DAY_MS), 1);
    assert_eq!(stats.count_7d(T0 + 3 * DAY_MS), 12);
    // Thirty days later: everything old is gone, the ring slots reused without residue.
    read(&mut stats, T0 + 30 * DAY_MS);
    assert_eq!(stats.count_1h(T0 + 30 * DAY_MS), 1);
    assert_eq!(stats.count_24h(T0 + 30 * DAY_MS), 1);
    assert_eq!(stats.count_7d(T0 + 30 * DAY_MS), 1);
    assert_eq!(stats.accesses(), 13);
}

#[test]
fn steady_hourly_access_over_a_week() {
    let mut stats = AccessStats::new();
    for hour in 0..(8 * 24) {
        read(&mut stats, T0 + hour * HOUR_MS + 30 * MINUTE_MS);
    }
    // Just before a day boundary every bucket of each window is full.
    let now = T0 + 8 * DAY_MS - 1;
    assert_eq!(stats.count_24h(now), 24);
    assert_eq!(stats.count_7d(now), 7 * 24);
    // On the boundary the current buckets are empty: 23 hours and 6 days are covered.
    assert_eq!(stats.count_24h(now + 1), 23);
    assert_eq!(stats.count_7d(now + 1), 6 * 24);
    let summary = stats.summary(&Decay::default(), now);
    assert!(
        (summary.slow_rate_per_hour - 1.0).abs() < 0.1,
        "{summary:?}"
    );
    assert!((summary.mean_interarrival_ms.unwrap() - HOUR_MS as f64).abs() < 1.0);
    assert_eq!(summary.first_seen_ms, Some(T0 + 30 * MINUTE_MS));
}

#[test]
fn late_events_count_in_their_own_bucket() {
    let mut stats = AccessStats::new();
    read(&mut stats, T0 + 3 * HOUR_MS);
    // Two hours late: still inside the day window, not in the last hour.
    read(&mut stats, T0 + HOUR_MS);
    assert_eq!(
        stats.last_access_ms(),
        Some(T0 + 3 * HOUR_MS),
        "last access never moves back"
    );
    assert_eq!(stats.first_seen_ms(), Some(T0 + HOUR_MS));
    assert_eq!(stats.count_1h(T0 + 3 * HOUR_MS), 1);
    assert_eq!(stats.count_24h(T0 + 3 * HOUR_MS), 2);
    // Ten days late: older than every window; counted in the totals only.
    read(&mut stats, T0 - 10 * DAY_MS);
    assert_eq!(stats.count_7d(T0 + 3 * HOUR_MS), 2);
    assert_eq!(stats.accesses(), 3);
    // The late event does not make a bogus inter-arrival gap.
    let summary = stats.summary(&Decay::default(), T0 + 3 * HOUR_MS);
    assert_eq!(
        summary.mean_interarrival_ms, None,
        "only one in-order gap exists: none yet"
    );
    // A late event adds less to the decayed counts than a timely one.
    let mut timely = AccessStats::new();
    read(&mut timely, T0 + 3 * HOUR_MS);
    read(&mut timely, T0 + 3 * HOUR_MS);
    let (fast_late, _) = stats.rates_per_hour(&Decay::default(), T0 + 3 * HOUR_MS);
    let (fast_timely, _) = timely.rates_per_hour(&Decay::default(), T0 + 3 * HOUR_MS);
    assert!(fast_late < fast_timely);
    assert!(fast_late > 0.0);
}

#[test]
fn order_of_delivery_does_not_change_the_windows() {
    let times: Vec<i64> = (0..200)
        .map(|i| T0 + (i * 7_919_000) % (2 * DAY_MS))
        .collect();
    let mut in_order = AccessStats::new();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    for &t in &sorted {
        read(&mut in_order, t);
    }
    let mut shuffled = AccessStats::new();
    for &t in &times {
        read(&mut shuffled, t);
    }
    let now = T0 + 2 * DAY_MS;
    // Windows agree except for events whose bucket had already left the ring when they came.
    assert_eq!(in_order.count_1h(now), shuffled.count_1h(now));
    assert_eq!(in_order.count_24h(now), shuffled.count_24h(now));
    assert_eq!(in_order.count_7d(now), shuffled.count_7d(now));
    let (a, b) = (
        in_order.rates_per_hour(&Decay::default(), now),
        shuffled.rates_per_hour(&Decay::default(), now),
    );
    assert!((a.0 - b.0).abs() < 1e-6 * a.0.max(1.0) && (a.1 - b.1).abs() < 1e-6 * a.1.max(1.0));
}

#[test]
fn decayed_rates_follow_bursts_and_fade() {
    let decay = Decay::default();
    let mut stats = AccessStats::new();
    for i in 0..60 {
        read(&mut stats, T0 + i * MINUTE_MS);
    }
    let (fast, slow) = stats.rates_per_hour(&decay, T0 + HOUR_MS);
    assert!(fast > slow * 10.0, "a fresh burst: fast {fast} slow {slow}");
    // One fast half-life later the fast rate has halved.
    let (fast_later, _) = stats.rates_per_hour(&decay, T0 + 2 * HOUR_MS);
    assert!(
        (fast_later / fast - 0.5).abs() < 0.02,
        "{fast_later} vs {fast}"
    );
    // Reading before the last access does not extrapolate backwards.
    let (fast_before, _) = stats.rates_per_hour(&decay, T0);
    assert!(fast_before.is_finite() && fast_before >= fast);
}

#[test]
fn deletes_count_only_in_totals() {
    let mut stats = AccessStats::new();
    stats.record(&Decay::default(), T0, Op::Delete, 0);
    assert_eq!(stats.accesses(), 0);
    assert_eq!(stats.deletes(), 1);
    assert_eq!(stats.last_access_ms(), None);
}

#[test]
fn writes_count_in_totals_and_the_last_write_only() {
    let decay = Decay::default();
    let mut stats = AccessStats::new();
    stats.record(&decay, T0, Op::Write, 4096);
    stats.record(&decay, T0 + MINUTE_MS, Op::Write, 10);
    let summary = stats.summary(&decay, T0 + 2 * MINUTE_MS);
    assert_eq!(
        (summary.writes, summary.bytes_written, summary.last_write_ms),
        (2, 4106, Some(T0 + MINUTE_MS))
    );
    assert_eq!(summary.last_write_age_ms, Some(MINUTE_MS));
    assert_eq!(
        (summary.accesses, summary.count_1h, summary.count_24h),
        (0, 0, 0)
    );
    assert_eq!(
        (summary.fast_rate_per_hour, summary.last_access_ms),
        (0.0, None)
    );
    // A read after the writes is the first access.
    stats.record(&decay, T0 + 3 * MINUTE_MS, Op::Read, 1);
    let summary = stats.summary(&decay, T0 + 3 * MINUTE_MS);
    assert_eq!((summary.accesses, summary.count_1h), (1, 1));
    assert_eq!(summary.first_seen_ms, Some(T0 + 3 * MINUTE_MS));
    // A late write does not move the last write back.
    stats.record(&decay, T0, Op::Write, 0);
    assert_eq!(stats.last_write_ms(), Some(T0 + MINUTE_MS));
}

#[test]
fn extreme_timestamps_never_panic_nor_go_negative() {
    let decay = Decay::default();
    let mut stats = AccessStats::new();
    for ts in [
        i64::MAX,
        i64::MIN,
        0,
        -1,
        T0,
        i64::MAX - 1,
        i64::MIN + 1,
        T0,
        i64::MAX,
    ] {
        stats.record(&decay, ts, Op::Read, u64::MAX);
    }
    for now in [i64::MIN, -1, 0, T0, i64::MAX] {
        let s = stats.summary(&decay, now);
        assert!(s.fast_rate_per_hour.is_finite() && s.fast_rate_per_hour >= 0.0);
        assert!(s.slow_rate_per_hour.is_finite() && s.slow_rate_per_hour >= 0.0);
        assert!(s.last_access_age_ms.unwrap() >= 0);
        assert!(s.mean_interarrival_ms.unwrap().is_finite());
        assert!(s.count_7d <= 9);
    }
    assert_eq!(
        stats.summary(&decay, 0).bytes_read,
        u64::MAX,
        "totals saturate"
    );
}

#[test]
fn persisted_form_round_trips() {
    let decay = Decay::default();
    let mut stats = AccessStats::new();
    for i in 0..500 {
        let op = if i % 5 == 0 { Op::Write } else { Op::Read };
        stats.record(&decay, T0 + i * 97_000, op, 1000 + i as u64);
    }
    let text = stats.encode_json(&decay);
    assert!(
        text.starts_with(&format!("{{\"v\":{STATS_FORMAT_VERSION},")),
        "{text}"
    );
    assert!(text.len() < 600, "compact: {} bytes", text.len());
    let back = AccessStats::decode_json(&text, &decay).unwrap();
    assert_eq!(back, stats);
    let now = T0 + DAY_MS;
    assert_eq!(back.summary(&decay, now), stats.summary(&decay, now));
}

#[test]
fn persisted_rates_survive_a_change_of_half_life() {
    let old = Decay::new(HOUR_MS, DAY_MS);
    let new = Decay::new(2 * HOUR_MS, 3 * DAY_MS);
    let mut stats = AccessStats::new();
    for i in 0..100 {
        stats.record(&old, T0 + i * MINUTE_MS, Op::Read, 0);
    }
    let at = T0 + 99 * MINUTE_MS;
    let before = stats.rates_per_hour(&old, at);
    let back = AccessStats::from_persisted(&stats.to_persisted(&old), &new).unwrap();
    let after = back.rates_per_hour(&new, at);
    assert!((before.0 - after.0).abs() < 1e-9 && (before.1 - after.1).abs() < 1e-9);
}

#[test]
fn damaged_or_future_rows_are_refused() {
    let decay = Decay::default();
    let mut persisted: PersistedStats = AccessStats::new().to_persisted(&decay);
    persisted.v = STATS_FORMAT_VERSION + 1;
    assert_eq!(
        AccessStats::from_persisted(&persisted, &decay),
        Err(StatsDecodeError::UnsupportedVersion(
            STATS_FORMAT_VERSION + 1
        ))
    );
    persisted.v = 1;
    persisted.fast = f64::NAN;
    assert!(AccessStats::from_persisted(&persisted, &decay).is_err());
    persisted.fast = -1.0;
    assert!(AccessStats::from_persisted(&persisted, &decay).is_err());
    for bad in ["", "{}", "[1,2]", "{\"v\":1}", "not json"] {
        assert!(AccessStats::decode_json(bad, &decay).is_err(), "{bad}");
    }
    let text = AccessStats::new().encode_json(&decay);
    let extra = text.replacen("{", "{\"extra\":1,", 1);
    assert!(
        AccessStats::decode_json(&extra, &decay).is_err(),
        "unknown fields are refused"
    );
    let short = text.replace("\"last_week\":[0,0,0,0,0,0,0]", "\"last_week\":[0,0]");
    assert!(
        AccessStats::decode_json(&short, &decay).is_err(),
        "ring sizes are checked"
    );
}

#[test]
fn version_1_rows_of_objects_only_written_read_back_as_written_not_accessed() {
    let decay = Decay::default();
    // What version 1 wrote for an object written once and never read: one access.
    let mut read_once = AccessStats::new();
    read_once.record(&decay, T0, Op::Read, 0);
    let mut v1 = read_once.to_persisted(&decay);
    v1.v = 1;
    (v1.reads, v1.writes, v1.bytes_written, v1.last_write_ms) = (0, 1, 7, None);
    let back = AccessStats::from_persisted(&v1, &decay).unwrap();
    let summary = back.summary(&decay, T0 + MINUTE_MS);
    assert_eq!(
        (summary.accesses, summary.count_1h, summary.last_access_ms),
        (0, 0, None)
    );
    assert_eq!(
        (summary.writes, summary.bytes_written, summary.last_write_ms),
        (1, 7, Some(T0))
    );
    // A version-1 row with reads keeps its counts as they were.
    let mut v1 = read_once.to_persisted(&decay);
    v1.v = 1;
    assert_eq!(AccessStats::from_persisted(&v1, &decay).unwrap(), read_once);
}
