//! Live state of a running job that the catalog does not hold (bandwidth control), shared
//! with `strata status` through a small JSON file beside the catalog:
//! `<catalog dir>/live/<key>.json`, rewritten every second by the running command and
//! removed when it ends. The key is derived from the job's (source, destination), the
//! identity of a job; a file older than [`STALE_AFTER`] belongs to a process that died.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A live file not rewritten for this long is ignored.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// Where the live state of the job `source` → `destination` goes.
pub fn live_path(catalog: &Path, source: &str, destination: &str) -> PathBuf {
    let mut hasher = blake3::Hasher::new();
    hasher.update(source.as_bytes());
    hasher.update(&[0]);
    hasher.update(destination.as_bytes());
    let key = hasher.finalize().to_hex();
    catalog
        .parent()
        .unwrap_or(Path::new("."))
        .join("live")
        .join(format!("{}.json", &key[..32]))
}

/// Write `value` atomically (temp file + rename); errors are ignored: live state is a
/// convenience, never a reason to stop a job.
pub fn write(path: &Path, value: &serde_json::Value) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let temp = path.with_extension("json.tmp");
    if std::fs::write(&temp, value.to_string()).is_ok() {
        let _ = std::fs::rename(&temp, path);
    }
}

/// The live state at `path`, when it is fresh.
pub fn read(path: &Path) -> Option<serde_json::Value> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    if SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default()
        > STALE_AFTER
    {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
