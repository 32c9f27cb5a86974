//! The tracker: ingest, NDJSON batches with bad lines, spikes at ingest, clock skew, and the
//! dirty set a flush writes.

use std::sync::Arc;

use strata_heat::units::{HOUR_MS, MINUTE_MS};
use strata_heat::{parse_ndjson, AccessEvent, AccessStats, AccessTracker, Op, TrackerConfig};

const T0: i64 = 1_767_225_600_000;

fn event(ts_ms: i64, key: &str, op: Op) -> AccessEvent {
    AccessEvent {
        ts_ms,
        key: key.to_string(),
        op,
        bytes: 10,
        client: None,
    }
}

fn keys(batch: &[(Arc<str>, AccessStats)]) -> Vec<&str> {
    batch.iter().map(|(key, _)| &**key).collect()
}

#[test]
fn flush_returns_only_what_changed_since_the_last_flush() {
    let mut tracker = AccessTracker::default();
    tracker.record_batch(
        T0,
        &[
            event(T0, "a", Op::Read),
            event(T0, "b", Op::Read),
            event(T0 + 1, "a", Op::Write),
        ],
    );
    assert_eq!(tracker.dirty_len(), 2);
    let first = tracker.take_dirty();
    assert_eq!(
        keys(&first.upserts),
        ["a", "b"],
        "in order of first change, once each"
    );
    let a = &first.upserts[0].1;
    assert_eq!(
        (a.accesses(), a.last_write_ms()),
        (1, Some(T0 + 1)),
        "the read is an access; the write is recorded as a write"
    );
    assert!(tracker.take_dirty().is_empty(), "nothing changed since");

    tracker.record(T0 + 2, "b", T0 + 2, Op::Read, 5);
    tracker.record(T0 + 2, "c", T0 + 2, Op::Read, 5);
    let second = tracker.take_dirty();
    assert_eq!(keys(&second.upserts), ["b", "c"]);
    assert_eq!(
        second.upserts[0].1.accesses(),
        2,
        "the row carries the newest values"
    );
}

#[test]
fn a_failed_flush_is_requeued_with_the_newest_values() {
    let mut tracker = AccessTracker::default();
    tracker.record(T0, "a", T0, Op::Read, 1);
    tracker.record(T0, "b", T0, Op::Read, 1);
    let failed = tracker.take_dirty();
    // Events keep arriving while the catalog write fails.
    tracker.record(T0, "a", T0 + 5, Op::Read, 1);
    tracker.requeue(&failed);
    let retry = tracker.take_dirty();
    assert_eq!(keys(&retry.upserts), ["a", "b"], "no duplicates");
    assert_eq!(retry.upserts[0].1.accesses(), 2);
    assert!(tracker.take_dirty().is_empty());
}

#[test]
fn removals_are_flushed_unless_the_key_came_back() {
    let mut tracker = AccessTracker::default();
    tracker.record(T0, "gone", T0, Op::Read, 1);
    tracker.record(T0, "back", T0, Op::Read, 1);
    tracker.take_dirty();
    assert!(tracker.remove("gone").is_some());
    assert!(tracker.remove("back").is_some());
    assert!(tracker.remove("never").is_none());
    tracker.record(T0, "back", T0 + 1, Op::Write, 1);
    let batch = tracker.take_dirty();
    assert_eq!(keys(&batch.upserts), ["back"]);
    assert_eq!(batch.removed, [Arc::from("gone")]);
    let back = tracker.snapshot("back").unwrap();
    assert_eq!(
        (back.accesses(), back.last_write_ms()),
        (0, Some(T0 + 1)),
        "history starts anew"
    );
    tracker.requeue(&batch);
    assert_eq!(tracker.take_dirty().removed.len(), 1);
}

#[test]
fn loaded_rows_are_not_dirty() {
    let mut tracker = AccessTracker::default();
    let mut stats = AccessStats::new();
    stats.record(tracker.decay(), T0, Op::Read, 1);
    assert!(tracker.load("restored", stats).is_none());
    assert!(tracker.take_dirty().is_empty());
    tracker.record(T0, "restored", T0 + 1, Op::Read, 1);
    let batch = tracker.take_dirty();
    assert_eq!(
        batch.upserts[0].1.accesses(),
        2,
        "ingest continues the loaded history"
    );
    assert_eq!(tracker.len(), 1);
}

#[test]
fn future_stamps_are_clamped_to_now() {
    let mut tracker = AccessTracker::default();
    let now = T0;
    let outcome = tracker.record_batch(
        now,
        &[
            event(now + 4 * MINUTE_MS, "a", Op::Read), // within the 5-minute skew
            event(now + 365 * 24 * HOUR_MS, "a", Op::Read), // a broken clock
            event(i64::MAX, "a", Op::Read),
        ],
    );
    assert_eq!(
        (outcome.recorded, outcome.clamped, outcome.new_keys),
        (3, 2, 1)
    );
    let stats = tracker.snapshot("a").unwrap();
    assert_eq!(stats.last_access_ms(), Some(now + 4 * MINUTE_MS));
    assert_eq!(
        stats.count_1h(now + 4 * MINUTE_MS),
        3,
        "a broken clock does not wipe history"
    );
}

#[test]
fn spikes_are_reported_once_when_they_start() {
    let mut tracker = AccessTracker::new(TrackerConfig::default());
    // A quiet baseline: one read an hour for two days.
    for hour in 0..48 {
        tracker.record(T0 + 48 * HOUR_MS, "k", T0 + hour * HOUR_MS, Op::Read, 1);
    }
    assert!(tracker.take_spikes().is_empty());
    // Then 40 reads in ten minutes.
    let burst_start = T0 + 48 * HOUR_MS;
    let mut spiked_at = None;
    for i in 0..40 {
        let ts = burst_start + i * 15_000;
        let outcome = tracker.record_event(ts, &event(ts, "k", Op::Read));
        if outcome.spikes > 0 && spiked_at.is_none() {
            spiked_at = Some(i);
        }
    }
    // The rule needs 20 accesses in the last hour: the 20th read of the burst is the
    // earliest it can fire (the baseline's last read fell an hour before).
    let at = spiked_at.expect("a spike");
    assert!((18..=22).contains(&at), "spike detected at burst read {at}");
    assert_eq!(tracker.take_spikes(), [Arc::from("k")], "reported once");
    assert!(tracker.take_spikes().is_empty());
}

#[test]
fn a_new_burst_after_a_quiet_spell_is_a_new_spike() {
    let config = TrackerConfig {
        spike: strata_heat::SpikeRule {
            factor: 4.0,
            min_events_1h: 1,
        },
        ..TrackerConfig::default()
    };
    let mut tracker = AccessTracker::new(config);
    for i in 0..5 {
        tracker.record(T0, "k", T0 + i, Op::Read, 1);
    }
    assert_eq!(tracker.take_spikes().len(), 1);
    // Two weeks of silence, then another burst: reported again even though no event in
    // between cleared the spike.
    let later = T0 + 14 * 24 * HOUR_MS;
    for i in 0..5 {
        tracker.record(later, "k", later + i, Op::Read, 1);
    }
    assert_eq!(tracker.take_spikes().len(), 1);
}

#[test]
fn ndjson_ingest_keeps_good_lines_and_reports_bad_ones() {
    let body = concat!(
        "{\"ts\": 1767225600000, \"key\": \"a/b.nc\", \"op\": \"read\", \"bytes\": 4096}\n",
        "\n",
        "{\"ts\": 1767225600001, \"key\": \"a/b.nc\", \"op\": \"fetch\"}\n",
        "{\"key\": \"c\", \"op\": \"write\", \"client\": \"hpc-1\", \"extra\": [1,2]}\r\n",
        "not json\n",
        "{\"ts\": 1767225600002, \"key\": \"../etc/passwd\", \"op\": \"read\"}\n",
        "{\"ts\": -5, \"key\": \"d\", \"op\": \"read\"}\n",
        "{\"ts_ms\": 1767225600003, \"key\": \"e\", \"op\": \"delete\"}\n",
        "{\"ts\": 1767225600004, \"op\": \"read\"}\n",
        "{\"ts\": 1.5, \"key\": \"f\", \"op\": \"read\"}",
    );
    let now = T0 + 1_000;
    let mut tracker = AccessTracker::default();
    let (outcome, report) = tracker.ingest_ndjson(now, body.as_bytes());
    assert_eq!((report.accepted, report.rejected), (3, 6));
    assert_eq!(outcome.recorded, 3);
    let lines: Vec<usize> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 5, 6, 7, 9, 10]);
    let text: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        text[0].starts_with("line 3: unknown variant `fetch`"),
        "{text:?}"
    );
    assert!(text[1].starts_with("line 5: expected ident"), "{text:?}");
    assert_eq!(text[2], "line 6: key has an empty, '.' or '..' segment");
    assert!(
        text[3].starts_with("line 7: ts -5 is before 1970"),
        "{text:?}"
    );
    assert!(
        text[4].starts_with("line 9: missing field `key`"),
        "{text:?}"
    );
    assert!(text[5].contains("column"), "{text:?}");
    let c = tracker.snapshot("c").unwrap();
    assert_eq!(c.last_write_ms(), Some(now), "a missing ts means now");
    assert_eq!(tracker.snapshot("e").unwrap().deletes(), 1);

    // The owned parser agrees.
    let (events, report2) = parse_ndjson(body.as_bytes(), now);
    assert_eq!(report2, report);
    assert_eq!(events.len(), 3);
    assert_eq!(events[1].client.as_deref(), Some("hpc-1"));
    assert_eq!(events[1].key, "c");
}

#[test]
fn ndjson_reports_are_bounded() {
    let body = "garbage\n".repeat(1000);
    let (events, report) = parse_ndjson(body.as_bytes(), T0);
    assert!(events.is_empty());
    assert_eq!(report.rejected, 1000);
    assert_eq!(report.errors.len(), strata_heat::event::MAX_REPORTED_ERRORS);
    assert_eq!(report.errors.last().unwrap().line, 100);
}

#[test]
fn ndjson_survives_hostile_input() {
    let inputs: [&[u8]; 7] = [
        b"",
        b"\n\n\n",
        b"\xff\xfe\x00\x01",
        b"{\"key\": \"a\", \"op\": \"read\", \"ts\": 99999999999999999999}",
        b"{\"key\": \"\\u0000\", \"op\": \"read\"}",
        b"{\"key\": \"a\\/b\", \"op\": \"read\", \"bytes\": -1}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ];
    let mut tracker = AccessTracker::default();
    for input in inputs {
        let (outcome, report) = tracker.ingest_ndjson(T0, input);
        assert_eq!(outcome.recorded, report.accepted);
    }
    assert!(tracker.is_empty());
    // An escaped key is unescaped (and then owned) correctly.
    let (_, report) = tracker.ingest_ndjson(T0, b"{\"key\": \"a\\/b\", \"op\": \"read\"}");
    assert_eq!(report.accepted, 1);
    assert!(tracker.snapshot("a/b").is_some());
}

#[test]
fn summaries_and_iteration() {
    let mut tracker = AccessTracker::default();
    tracker.record(T0, "x", T0, Op::Read, 1);
    tracker.record(T0, "y", T0, Op::Read, 1);
    let summary = tracker.summary("x", T0 + HOUR_MS).unwrap();
    assert_eq!(summary.last_access_age_ms, Some(HOUR_MS));
    assert!(tracker.summary("z", T0).is_none());
    let mut all: Vec<&str> = tracker.iter().map(|(key, _)| key).collect();
    all.sort_unstable();
    assert_eq!(all, ["x", "y"]);
}

#[test]
fn a_burst_of_writes_is_not_a_spike() {
    let mut tracker = AccessTracker::default();
    let events: Vec<AccessEvent> = (0..100).map(|i| event(T0 + i, "w", Op::Write)).collect();
    let outcome = tracker.record_batch(T0 + 100, &events);
    assert_eq!((outcome.recorded, outcome.spikes), (100, 0));
    assert!(tracker.take_spikes().is_empty());
    let stats = tracker.snapshot("w").unwrap();
    assert_eq!(
        (stats.accesses(), stats.last_write_ms()),
        (0, Some(T0 + 99))
    );
}
