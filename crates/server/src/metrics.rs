//! Counters and histograms of the service, rendered in the Prometheus text format
//! (version 0.0.4) at `GET /metrics`. Plain atomics: recording costs a few nanoseconds on
//! the read path; the text is built only when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets, seconds: 100 µs to 10 s.
const LATENCY_BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// A histogram with fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; LATENCY_BOUNDS.len()],
    over: AtomicU64,
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            over: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        match LATENCY_BOUNDS.iter().position(|&bound| seconds <= bound) {
            Some(i) => self.counts[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BOUNDS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.over.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Everything the service counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// HTTP answers by (method, route, status).
    pub http: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Object reads (GET) answered.
    pub reads: AtomicU64,
    /// Bytes sent by object reads.
    pub read_bytes: AtomicU64,
    /// Object writes (PUT) done.
    pub writes: AtomicU64,
    /// Bytes written by PUT.
    pub write_bytes: AtomicU64,
    /// Objects deleted.
    pub deletes: AtomicU64,
    /// Groups of object writes published together (`crate::group_commit`'s publish
    /// rounds).
    pub write_groups: AtomicU64,
    /// Writes published in those groups.
    pub grouped_writes: AtomicU64,
    /// Catalog transactions of the group commit that recorded intents only (the others
    /// recorded intents with earlier writes' rows).
    pub group_intent_commits: AtomicU64,
    /// Access events accepted (batch endpoint and streams).
    pub events_accepted: AtomicU64,
    /// Access event lines rejected.
    pub events_rejected: AtomicU64,
    /// Spikes detected at ingest (read path and batch endpoint).
    pub spikes: AtomicU64,
    /// Access statistics flushes done.
    pub flushes: AtomicU64,
    /// Flushes that failed (their rows are written by the next one).
    pub flush_errors: AtomicU64,
    /// Statistics rows written.
    pub flushed_rows: AtomicU64,
    /// Periodic planning passes.
    pub passes_periodic: AtomicU64,
    /// Reactive (spike) planning passes.
    pub passes_reactive: AtomicU64,
    /// Moves planned, by reason.
    pub moves_planned: Mutex<BTreeMap<String, u64>>,
    /// Moves ended, by final state.
    pub moves_ended: Mutex<BTreeMap<String, u64>>,
    /// Key rotation jobs, by tier and state (`queued` when planned, then the state each
    /// ended in).
    pub key_rotations: Mutex<BTreeMap<(String, String), u64>>,
    /// Bytes copied by moves.
    pub move_bytes: AtomicU64,
    /// Store calls retried.
    pub store_retries: AtomicU64,
    /// Damaged copies found by reads (chunks or whole copies that did not match their
    /// recorded BLAKE3), by tier.
    pub read_damage: Mutex<BTreeMap<String, u64>>,
    /// Reads of a damaged object served from another good copy.
    pub read_failovers: AtomicU64,
    /// Objects repaired in the background after a degraded read (tiers with domains).
    pub redundancy_repairs: AtomicU64,
    /// Background repairs that failed (more domains lost than the encoding tolerates).
    pub redundancy_repair_failures: AtomicU64,
    /// Abandoned S3 multipart uploads removed (`[s3] multipart_expiry`).
    pub s3_uploads_expired: AtomicU64,
    /// S3 metadata rows removed because their object was deleted or changed.
    pub s3_meta_stale_removed: AtomicU64,
    /// Time to answer an object GET (first byte ready).
    pub get_latency: Histogram,
    /// Time from a move's start to its end.
    pub move_duration: Histogram,
}

/// Values read at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Per tier: name, bytes, objects, incoming bytes, capacity, cost per GB-month.
    pub tiers: Vec<(String, u64, u64, u64, Option<u64>, f64)>,
    /// Objects held.
    pub objects: u64,
    /// Objects with access statistics in memory.
    pub tracked: u64,
    /// Statistics rows waiting for the next flush.
    pub dirty: u64,
    /// Move jobs running now.
    pub moves_running: u64,
    /// The moves' throttles (`[bandwidth]`): per tier store and lane (`read`, `write`), the
    /// bytes admitted so far and the limit in force (`None`: no cap).
    pub throttles: Vec<(String, &'static str, u64, Option<u64>)>,
    /// Per tier with failure domains: reads served through missing, damaged or unreachable
    /// domains (degraded reads) so far.
    pub degraded_reads: Vec<(String, u64)>,
    /// Per tier store (tier name, domain position): its backend's calls, bytes and errors
    /// by operation so far.
    pub store_ops: Vec<(String, usize, strata_store::StoreOp, strata_store::OpStats)>,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    *map.entry(key.to_string()).or_default() += 1;
}

/// One unlabelled counter in the text format, with its help and type lines.
pub(crate) fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// A label value with `\`, `"` and newlines escaped.
pub(crate) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one HTTP answer.
    pub fn http_answer(&self, method: &str, route: &str, status: u16) {
        let mut map = self
            .http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *map.entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    /// Counts a damaged copy found by a read on `tier`.
    pub fn read_damaged(&self, tier: &str) {
        bump(&self.read_damage, tier);
    }

    /// Counts a planned move.
    pub fn move_planned(&self, reason: &str) {
        bump(&self.moves_planned, reason);
    }

    /// Counts a move that ended in `state`.
    pub fn move_ended(&self, state: &str) {
        bump(&self.moves_ended, state);
    }

    /// Counts a key rotation job of `tier` queued or ended in `state`.
    pub fn key_rotation(&self, tier: &str, state: &str) {
        let mut map = self
            .key_rotations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *map.entry((tier.to_string(), state.to_string()))
            .or_default() += 1;
    }

    /// The Prometheus text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8192);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP strata_http_requests_total HTTP answers by method, route and status."
        );
        let _ = writeln!(out, "# TYPE strata_http_requests_total counter");
        for ((method, route, status), count) in self
            .http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "strata_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                label(method),
                label(route)
            );
        }
        counter(
            &mut out,
            "strata_object_reads_total",
            "Object reads answered.",
            load(&self.reads),
        );
        counter(
            &mut out,
            "strata_object_read_bytes_total",
            "Bytes sent by object reads.",
            load(&self.read_bytes),
        );
        counter(
            &mut out,
            "strata_object_writes_total",
            "Object writes done.",
            load(&self.writes),
        );
        counter(
            &mut out,
            "strata_object_write_bytes_total",
            "Bytes written by object writes.",
            load(&self.write_bytes),
        );
        counter(
            &mut out,
            "strata_object_deletes_total",
            "Objects deleted.",
            load(&self.deletes),
        );
        counter(
            &mut out,
            "strata_write_groups_total",
            "Groups of object writes published together.",
            load(&self.write_groups),
        );
        counter(
            &mut out,
            "strata_grouped_writes_total",
            "Object writes published in groups.",
            load(&self.grouped_writes),
        );
        counter(
            &mut out,
            "strata_write_group_intent_commits_total",
            "Catalog transactions of the group commit that recorded intents only.",
            load(&self.group_intent_commits),
        );
        let _ = writeln!(
            out,
            "# HELP strata_access_events_total Access events received (batch endpoint and streams)."
        );
        let _ = writeln!(out, "# TYPE strata_access_events_total counter");
        let _ = writeln!(
            out,
            "strata_access_events_total{{result=\"accepted\"}} {}",
            load(&self.events_accepted)
        );
        let _ = writeln!(
            out,
            "strata_access_events_total{{result=\"rejected\"}} {}",
            load(&self.events_rejected)
        );
        counter(
            &mut out,
            "strata_access_spikes_total",
            "Access spikes detected at ingest.",
            load(&self.spikes),
        );
        counter(
            &mut out,
            "strata_access_flushes_total",
            "Access statistics flushes to the catalog.",
            load(&self.flushes),
        );
        counter(
            &mut out,
            "strata_access_flush_errors_total",
            "Access statistics flushes that failed (retried by the next).",
            load(&self.flush_errors),
        );
        counter(
            &mut out,
            "strata_access_flushed_rows_total",
            "Access statistics rows written.",
            load(&self.flushed_rows),
        );
        let _ = writeln!(
            out,
            "# HELP strata_planning_passes_total Planning passes run."
        );
        let _ = writeln!(out, "# TYPE strata_planning_passes_total counter");
        let _ = writeln!(
            out,
            "strata_planning_passes_total{{kind=\"periodic\"}} {}",
            load(&self.passes_periodic)
        );
        let _ = writeln!(
            out,
            "strata_planning_passes_total{{kind=\"reactive\"}} {}",
            load(&self.passes_reactive)
        );
        let _ = writeln!(
            out,
            "# HELP strata_moves_planned_total Moves planned, by reason."
        );
        let _ = writeln!(out, "# TYPE strata_moves_planned_total counter");
        for (reason, count) in self
            .moves_planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "strata_moves_planned_total{{reason=\"{}\"}} {count}",
                label(reason)
            );
        }
        let _ = writeln!(
            out,
            "# HELP strata_moves_total Moves ended, by final state."
        );
        let _ = writeln!(out, "# TYPE strata_moves_total counter");
        for (state, count) in self
            .moves_ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "strata_moves_total{{state=\"{}\"}} {count}",
                label(state)
            );
        }
        let _ = writeln!(
            out,
            "# HELP strata_key_rotation_objects_total Key rotation jobs, by tier and state \
             (queued when planned, then the state each ended in)."
        );
        let _ = writeln!(out, "# TYPE strata_key_rotation_objects_total counter");
        for ((tier, state), count) in self
            .key_rotations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "strata_key_rotation_objects_total{{tier=\"{}\",state=\"{}\"}} {count}",
                label(tier),
                label(state)
            );
        }
        counter(
            &mut out,
            "strata_move_bytes_total",
            "Bytes copied by moves.",
            load(&self.move_bytes),
        );
        counter(
            &mut out,
            "strata_store_retries_total",
            "Store calls retried after a transient error.",
            load(&self.store_retries),
        );
        let _ = writeln!(
            out,
            "# HELP strata_read_damage_total Damaged copies found by reads (bytes that did not \
             match their recorded BLAKE3; none of them served), by tier."
        );
        let _ = writeln!(out, "# TYPE strata_read_damage_total counter");
        for (tier, count) in self
            .read_damage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "strata_read_damage_total{{tier=\"{}\"}} {count}",
                label(tier)
            );
        }
        counter(
            &mut out,
            "strata_read_failovers_total",
            "Reads of a damaged object served from another good copy.",
            load(&self.read_failovers),
        );
        let _ = writeln!(
            out,
            "# HELP strata_degraded_reads_total Reads served through missing, damaged or \
             unreachable failure domains, by tier (tiers with `stores` only)."
        );
        let _ = writeln!(out, "# TYPE strata_degraded_reads_total counter");
        for (tier, count) in &gauges.degraded_reads {
            let _ = writeln!(
                out,
                "strata_degraded_reads_total{{tier=\"{}\"}} {count}",
                label(tier)
            );
        }
        counter(
            &mut out,
            "strata_redundancy_repairs_total",
            "Objects repaired in the background after a degraded read.",
            load(&self.redundancy_repairs),
        );
        counter(
            &mut out,
            "strata_redundancy_repair_failures_total",
            "Background repairs that failed: more domains lost than the encoding tolerates.",
            load(&self.redundancy_repair_failures),
        );
        counter(
            &mut out,
            "strata_s3_uploads_expired_total",
            "Abandoned S3 multipart uploads removed after [s3] multipart_expiry.",
            load(&self.s3_uploads_expired),
        );
        counter(
            &mut out,
            "strata_s3_meta_stale_removed_total",
            "S3 ETag and metadata rows removed because their object was deleted or changed.",
            load(&self.s3_meta_stale_removed),
        );
        self.get_latency.render(
            &mut out,
            "strata_object_get_seconds",
            "Time to start answering an object GET.",
        );
        self.move_duration.render(
            &mut out,
            "strata_move_seconds",
            "Time from a move's start to its end.",
        );
        gauge(&mut out, "strata_objects", "Objects held.", gauges.objects);
        gauge(
            &mut out,
            "strata_tracked_objects",
            "Keys with access statistics in memory.",
            gauges.tracked,
        );
        gauge(
            &mut out,
            "strata_access_dirty_rows",
            "Access statistics rows waiting for the next flush.",
            gauges.dirty,
        );
        gauge(
            &mut out,
            "strata_moves_running",
            "Move jobs running now.",
            gauges.moves_running,
        );
        let families: [(&str, &str, &str); 5] = [
            (
                "strata_tier_used_bytes",
                "gauge",
                "Bytes stored on the tier by current copies (compressed on packed tiers).",
            ),
            (
                "strata_tier_objects",
                "gauge",
                "Current copies on the tier.",
            ),
            (
                "strata_tier_incoming_bytes",
                "gauge",
                "Bytes of moves running into the tier.",
            ),
            (
                "strata_tier_capacity_bytes",
                "gauge",
                "The tier's capacity (absent: unlimited).",
            ),
            (
                "strata_tier_cost_per_month",
                "gauge",
                "Monthly storage cost of the bytes on the tier.",
            ),
        ];
        for (family, kind, help) in families {
            let _ = writeln!(out, "# HELP {family} {help}");
            let _ = writeln!(out, "# TYPE {family} {kind}");
            for (name, bytes, objects, incoming, capacity, cost) in &gauges.tiers {
                let tier = label(name);
                let value = match family {
                    "strata_tier_used_bytes" => bytes.to_string(),
                    "strata_tier_objects" => objects.to_string(),
                    "strata_tier_incoming_bytes" => incoming.to_string(),
                    "strata_tier_capacity_bytes" => match capacity {
                        Some(capacity) => capacity.to_string(),
                        None => continue,
                    },
                    _ => format!("{}", *bytes as f64 / 1e9 * cost),
                };
                let _ = writeln!(out, "{family}{{tier=\"{tier}\"}} {value}");
            }
        }
        render_throttles(&mut out, &gauges.throttles);
        render_store_ops(&mut out, &gauges.store_ops);
        out
    }
}

/// The tier stores' backend calls (the store's metrics layer, `strata_store::StoreMetrics`).
fn render_store_ops(
    out: &mut String,
    ops: &[(String, usize, strata_store::StoreOp, strata_store::OpStats)],
) {
    let families = [
        (
            "strata_store_calls_total",
            "Calls that reached a tier store's backend, by tier, domain and operation.",
        ),
        (
            "strata_store_bytes_total",
            "Data bytes of a tier store's successful calls, by tier, domain and operation.",
        ),
        (
            "strata_store_errors_total",
            "Calls to a tier store's backend that failed, by tier, domain and operation.",
        ),
    ];
    for (family, help) in families {
        let _ = writeln!(out, "# HELP {family} {help}");
        let _ = writeln!(out, "# TYPE {family} counter");
        for (tier, domain, op, stats) in ops {
            let value = match family {
                "strata_store_calls_total" => stats.calls,
                "strata_store_bytes_total" => stats.bytes,
                _ => stats.errors,
            };
            let _ = writeln!(
                out,
                "{family}{{tier=\"{}\",domain=\"{domain}\",op=\"{}\"}} {value}",
                label(tier),
                op.name()
            );
        }
    }
}

/// The moves' throttles: bytes through each, and the limit in force.
fn render_throttles(out: &mut String, throttles: &[(String, &'static str, u64, Option<u64>)]) {
    if throttles.is_empty() {
        return;
    }
    let families = [
        (
            "strata_move_throttle_bytes_total",
            "counter",
            "Bytes of moves admitted through the [bandwidth] throttle, by tier store and lane.",
        ),
        (
            "strata_move_throttle_limit_bytes_per_second",
            "gauge",
            "The [bandwidth] limit in force, by tier store and lane (absent: no cap).",
        ),
    ];
    for (family, kind, help) in families {
        let _ = writeln!(out, "# HELP {family} {help}");
        let _ = writeln!(out, "# TYPE {family} {kind}");
        for (store, direction, bytes, limit) in throttles {
            let value = match (family, limit) {
                ("strata_move_throttle_bytes_total", _) => *bytes,
                (_, Some(limit)) => *limit,
                (_, None) => continue,
            };
            let _ = writeln!(
                out,
                "{family}{{store=\"{}\",direction=\"{direction}\"}} {value}",
                label(store)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_is_well_formed() {
        let metrics = Metrics::default();
        metrics.http_answer("GET", "/v1/objects/{*key}", 200);
        metrics.reads.fetch_add(3, Ordering::Relaxed);
        metrics.get_latency.observe(Duration::from_micros(300));
        metrics.get_latency.observe(Duration::from_secs(20));
        metrics.move_ended("done");
        metrics.read_damaged("warm");
        let text = metrics.render(&Gauges {
            tiers: vec![("hot".into(), 2_000_000_000, 2, 0, None, 0.2)],
            throttles: vec![
                ("/srv/hot".into(), "read", 4096, None),
                ("/srv/hot".into(), "write", 8192, Some(1 << 20)),
            ],
            ..Gauges::default()
        });
        assert!(text.contains(
            "strata_move_throttle_bytes_total{store=\"/srv/hot\",direction=\"write\"} 8192\n"
        ));
        assert!(text.contains(
            "strata_move_throttle_limit_bytes_per_second{store=\"/srv/hot\",direction=\"write\"} 1048576\n"
        ));
        assert!(!text.contains(
            "strata_move_throttle_limit_bytes_per_second{store=\"/srv/hot\",direction=\"read\"}"
        ));
        assert!(text.contains("strata_object_reads_total 3\n"), "{text}");
        assert!(text.contains("strata_read_damage_total{tier=\"warm\"} 1\n"));
        assert!(text.contains(
            "strata_http_requests_total{method=\"GET\",route=\"/v1/objects/{*key}\",status=\"200\"} 1"
        ));
        assert!(text.contains("strata_object_get_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("strata_object_get_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("strata_tier_cost_per_month{tier=\"hot\"} 0.4"));
        assert!(!text.contains("strata_tier_capacity_bytes{"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
        }
    }
}
