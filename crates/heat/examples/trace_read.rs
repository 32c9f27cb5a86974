//! Trace reading throughput: reads each trace whole (decompression, parsing, key interning)
//! three times and prints requests, objects, and the best run's requests per second (the
//! best, because other work on the machine only ever slows a run down).
//!
//! Run in release: `cargo run --release -p strata-heat --example trace_read [TRACE...]`;
//! without arguments it reads every trace in `../shared/data/traces` (next to the checkout).

use std::path::{Path, PathBuf};
use std::time::Instant;

use strata_heat::trace::{TraceOptions, TraceReader};

/// The traces to read: the arguments, else the shared trace folder's traces.
fn traces() -> Vec<PathBuf> {
    let given: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if !given.is_empty() {
        return given;
    }
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/traces");
    let Ok(entries) = std::fs::read_dir(&folder) else {
        eprintln!(
            "no traces given and {} cannot be listed: pass trace files as arguments",
            folder.display()
        );
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            // The folder also holds the licence and the sources list.
            !name.is_some_and(|n| n.ends_with(".txt"))
        })
        .collect();
    paths.sort();
    paths
}

/// One whole read: (requests, objects, format name, seconds), or the error.
fn read_once(path: &Path) -> Result<(u64, u32, &'static str, f64), String> {
    let started = Instant::now();
    let mut reader =
        TraceReader::open(path, &TraceOptions::default()).map_err(|e| e.to_string())?;
    let mut requests = 0u64;
    let mut last_ms = 0i64;
    for request in reader.by_ref() {
        last_ms = request.map_err(|e| e.to_string())?.time_ms;
        requests += 1;
    }
    std::hint::black_box(last_ms);
    let seconds = started.elapsed().as_secs_f64();
    Ok((requests, reader.objects(), reader.format().name(), seconds))
}

fn main() {
    println!(
        "{:<34} {:>14} {:>10} {:>9} {:>9} {:>12}",
        "trace", "format", "requests", "objects", "seconds", "requests/s"
    );
    for path in traces() {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut best: Option<(u64, u32, &str, f64)> = None;
        for _ in 0..3 {
            match read_once(&path) {
                Ok(run) => {
                    if best.is_none_or(|b| run.3 < b.3) {
                        best = Some(run);
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    break;
                }
            }
        }
        if let Some((requests, objects, format, seconds)) = best {
            println!(
                "{:<34} {:>14} {:>10} {:>9} {:>9.3} {:>12.0}",
                name,
                format,
                requests,
                objects,
                seconds,
                requests as f64 / seconds.max(1e-9)
            );
        }
    }
}
