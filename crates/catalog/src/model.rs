//! What the catalog stores: jobs, their planned files and the chunks already verified.
//!
//! These types are engine-neutral; each engine maps them to its own column types (hashes
//! are 32-byte BLOBs, states are lowercase text, sizes are signed 64-bit integers, so a
//! size above `i64::MAX` is refused on write).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::lifecycle::JobState;

/// A job's id, assigned by the catalog and never reused, even after the job is deleted.
pub type JobId = i64;

/// Where a planned file is. Stored as its lowercase name (see [`FileState::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// Not yet copied and verified (some of its chunks may be).
    Pending,
    /// Copied, verified and published at the destination.
    Done,
    /// Already present and identical at the destination; nothing was copied.
    Skipped,
    /// Could not be copied; the error says why.
    Failed,
}

impl FileState {
    /// Every state.
    pub const ALL: [FileState; 4] = [
        FileState::Pending,
        FileState::Done,
        FileState::Skipped,
        FileState::Failed,
    ];

    /// The name stored in the catalog and printed to the operator.
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Pending => "pending",
            FileState::Done => "done",
            FileState::Skipped => "skipped",
            FileState::Failed => "failed",
        }
    }
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FileState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FileState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState {
                kind: "file",
                value: s.to_owned(),
            })
    }
}

/// A state name that is not one of [`JobState`] or [`FileState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} state {value:?}")]
pub struct UnknownState {
    /// "job" or "file".
    pub kind: &'static str,
    /// The text that was not recognised.
    pub value: String,
}

/// What a new job is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Display URI of the source; with `destination`, the job's identity.
    pub source: String,
    /// Display URI of the destination.
    pub destination: String,
    /// Chunk size in bytes, fixed for the life of the job (chunk indexes depend on it).
    pub chunk_size: u64,
    /// The mover's options as a JSON document (must parse as JSON, e.g. `{}`), kept so
    /// that a resumed job runs with the options it was started with.
    pub options_json: String,
}

/// One file of a job's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    /// Position in the plan; a plan's indexes are exactly `0..n`, in any order.
    pub index: u32,
    /// Path relative to the job's source (and destination) root.
    pub path: String,
    /// Size in bytes as listed at planning time.
    pub size: u64,
    /// Modification time at planning time, in nanoseconds since the Unix epoch.
    pub mtime_ns: Option<i64>,
    /// POSIX permission bits, where the source has them.
    pub mode: Option<u32>,
}

/// A planned file with what is known of its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The file as planned.
    pub planned: PlannedFile,
    /// Where it is.
    pub state: FileState,
    /// Its BLAKE3 hash, once known.
    pub hash: Option<[u8; 32]>,
    /// Why it failed, for a failed file.
    pub error: Option<String>,
}

/// A change to one planned file's progress: state, hash and error are replaced as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpdate {
    /// The planned file's index.
    pub index: u32,
    /// Its new state.
    pub state: FileState,
    /// Its hash (`None` clears it).
    pub hash: Option<[u8; 32]>,
    /// Its error (`None` clears it).
    pub error: Option<String>,
}

/// A chunk whose staged copy has been read back and found correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifiedChunk {
    /// The planned file the chunk belongs to.
    pub file_index: u32,
    /// The chunk's position in the file (offset = index × the job's chunk size).
    pub chunk_index: u64,
    /// The chunk's BLAKE3 chaining value at its offset.
    pub chaining_value: [u8; 32],
}

/// A job and its progress, as `strata status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The job's id.
    pub id: JobId,
    /// Display URI of the source.
    pub source: String,
    /// Display URI of the destination.
    pub destination: String,
    /// Where the job is.
    pub state: JobState,
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// Files in the plan.
    pub files_total: u64,
    /// Files done or skipped.
    pub files_done: u64,
    /// Files failed.
    pub files_failed: u64,
    /// Bytes in the plan.
    pub bytes_total: u64,
    /// Bytes whose copy is proven: the sizes of done and skipped files, plus, for pending
    /// files, the bytes of their verified chunks (each chunk counts its real length, so the
    /// short last chunk of a file counts what it holds). Failed files count nothing.
    pub bytes_done: u64,
    /// When the job was created, in Unix seconds.
    pub created_at: i64,
    /// When the job or its progress last changed, in Unix seconds.
    pub updated_at: i64,
    /// The dataset's root hash, once verified.
    pub root_hash: Option<String>,
    /// Why the job last failed.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_states_round_trip_through_text() {
        for state in FileState::ALL {
            assert_eq!(state.to_string().parse::<FileState>(), Ok(state));
        }
        assert!("Done".parse::<FileState>().is_err());
    }
}
