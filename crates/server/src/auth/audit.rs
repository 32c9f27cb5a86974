//! The audit log: one JSON line per write or admin request (and per refused one), saying who
//! (the token's id), what (method, route, path, key), from where (the client's address),
//! when, and with what result (the HTTP status). Never the token itself.
//!
//! Lines are appended with one `write` each to a file opened in append mode, so lines of
//! concurrent requests never interleave, and an operator can rotate the file by renaming
//! it and restarting the service. A line that cannot be written is logged and counted
//! (`strata_audit_write_errors_total`); the request it describes is not failed for it.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// The audit log's file name in the data dir, when `[server] audit_log` does not say.
pub const DEFAULT_AUDIT_LOG: &str = "audit.log";

/// One line of the audit log.
#[derive(Debug, Serialize)]
pub struct AuditEntry<'a> {
    /// When, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The token's id; `None` when the service has no tokens (loopback only) or none was
    /// presented.
    pub token: Option<&'a str>,
    /// The client's address.
    pub client: String,
    /// HTTP method.
    pub method: &'a str,
    /// The route (`/v1/objects/{*key}`).
    pub route: &'a str,
    /// The request's path, without its query.
    pub path: &'a str,
    /// The object key concerned, on object routes.
    pub key: Option<&'a str>,
    /// The answer's status.
    pub status: u16,
}

/// The open audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
    errors: AtomicU64,
}

impl AuditLog {
    /// Opens (creating, readable by its owner only) the log at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(options.open(path)?),
            errors: AtomicU64::new(0),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines that could not be written so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Appends `entry` as one line.
    pub fn record(&self, entry: &AuditEntry<'_>) {
        let mut line = match serde_json::to_vec(entry) {
            Ok(line) => line,
            Err(err) => return self.failed(&err),
        };
        line.push(b'\n');
        let mut file = crate::state::lock(&self.file);
        if let Err(err) = file.write_all(&line) {
            self.failed(&err);
        }
    }

    fn failed(&self, err: &dyn std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(%err, file = %self.path.display(), "cannot write the audit log");
    }
}
