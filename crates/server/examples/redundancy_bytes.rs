//! Raw bytes stored for a replayed access trace with class-driven redundancy, against
//! everything on `replicate:3`, for docs/BENCHMARKS.md (issue 12):
//!
//! ```sh
//! cargo run --release -p strata-server --example redundancy_bytes -- TRACE [HOT] [WARM] [COLD]
//! ```
//!
//! The trace (any format `strata eval` reads) is stretched to span 180 days and replayed
//! through the service's access tracker; at each of 100 window boundaries every object seen
//! so far is classified by the default rules (the service's own classification), and holds
//! its size (the largest the trace reports) times the raw factor of its class's redundancy
//! (defaults: hot and warm `replicate:3`, cold `ec:4+2`, as `[redundancy]` would say) for
//! the window. Prints the time-averaged raw bytes against `replicate:3` for all, and the
//! time-averaged share of bytes in each class.

use std::path::PathBuf;

use strata_heat::trace::{summarize, TraceOptions, TraceReader};
use strata_heat::{AccessTracker, Class, TieringConfig};
use strata_redundancy::Redundancy;

const DAY_MS: i64 = 24 * 3600 * 1000;
const WINDOWS: i64 = 100;

fn factor(text: &str) -> f64 {
    text.parse::<Redundancy>()
        .unwrap_or_else(|err| panic!("{err}"))
        .raw_factor()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = PathBuf::from(
        args.get(1)
            .expect("usage: redundancy_bytes TRACE [HOT] [WARM] [COLD]"),
    );
    let spec = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.to_string());
    let (hot, warm, cold) = (
        spec(2, "replicate:3"),
        spec(3, "replicate:3"),
        spec(4, "ec:4+2"),
    );
    let factors = [factor(&cold), factor(&warm), factor(&hot)];

    let summary = summarize(&path, &TraceOptions::default()).expect("read the trace");
    let stretch = 180.0 * DAY_MS as f64 / summary.span_ms.max(1) as f64;
    let options = TraceOptions {
        time_scale: stretch,
        ..TraceOptions::default()
    };
    let reader = TraceReader::open(&path, &options).expect("open the trace");
    let config = TieringConfig::default();
    let rules = config.classification_rules();
    let mut tracker = AccessTracker::new(config.tracker_config());
    let names: Vec<String> = (0..summary.objects).map(|id| format!("o{id}")).collect();
    let span = 180 * DAY_MS;
    let window = span / WINDOWS;
    let mut seen: Vec<u32> = Vec::new();
    let mut is_seen = vec![false; summary.objects as usize];
    let (mut class_bytes, mut policy_bytes, mut replicated_bytes) = ([0f64; 3], 0f64, 0f64);
    let mut boundary = window;
    let mut account = |tracker: &AccessTracker, seen: &[u32], now: i64| {
        for &id in seen {
            let size = summary.sizes[id as usize] as f64;
            let class = tracker
                .summary(&names[id as usize], now)
                .map_or(Class::Cold, |s| rules.classify(&s).class);
            let slot = class as usize;
            class_bytes[slot] += size;
            policy_bytes += size * factors[slot];
            replicated_bytes += size * 3.0;
        }
    };
    for request in reader {
        let request = request.expect("a trace record");
        while request.time_ms >= boundary && boundary <= span {
            account(&tracker, &seen, boundary);
            boundary += window;
        }
        let id = request.object as usize;
        if !is_seen[id] {
            is_seen[id] = true;
            seen.push(request.object);
        }
        let size = request.size.unwrap_or(summary.sizes[id]);
        tracker.record(
            request.time_ms,
            &names[id],
            request.time_ms,
            request.op,
            size,
        );
    }
    while boundary <= span {
        account(&tracker, &seen, boundary);
        boundary += window;
    }
    let total: f64 = class_bytes.iter().sum();
    println!(
        "{}: {} objects, {:.2} GB; time-averaged bytes hot {:.1}%, warm {:.1}%, cold {:.1}%; \
         raw bytes with hot={hot} warm={warm} cold={cold}: {:.3}x the data, against 3.000x \
         for replicate:3 everywhere ({:.1}% less)",
        path.file_name().unwrap_or_default().to_string_lossy(),
        summary.objects,
        summary.sizes.iter().sum::<u64>() as f64 / 1e9,
        100.0 * class_bytes[2] / total,
        100.0 * class_bytes[1] / total,
        100.0 * class_bytes[0] / total,
        policy_bytes / total,
        100.0 * (1.0 - policy_bytes / replicated_bytes)
    );
}
