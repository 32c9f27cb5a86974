//! The chunk task: one message on the queue, the share of a planned job one worker runs.
//!
//! A task names a contiguous range of the job's planned files (by plan index) with what a
//! worker needs besides the catalog: the run that published it, the mover's options, and
//! the ETags the listing gave (object stores). Small files are grouped into one task; a
//! file larger than the task size is a task alone (its chunks run side by side on that
//! worker). Tasks shrink towards the end of the plan ([`split_tasks`]) so that the job's
//! tail is many small tasks that idle workers take, not one large one that holds the job.
//!
//! The message is JSON, versioned ([`TASK_VERSION`]); [`ChunkTask::parse`] refuses anything
//! else with a message saying what was wrong, and the worker terminates such a message
//! instead of letting it be redelivered forever.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use strata_catalog::{FileRecord, FileState, JobId};

use crate::plan::{layout, Plan};
use crate::MigrateOptions;

/// The version of the task message this binary writes and reads.
pub const TASK_VERSION: u32 = 1;

/// At most this many files in one task: a task's files are loaded, stat'ed and recorded
/// together, and a redelivered task redoes at most this many.
pub const MAX_TASK_FILES: usize = 512;

/// The last part of the plan, as a fraction of its bytes, cut into smaller tasks.
const TAIL_FRACTION: u64 = 10;

/// How much smaller the tail's tasks are.
const TAIL_SHRINK: u64 = 8;

/// One chunk task, as published on the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkTask {
    /// Message format version ([`TASK_VERSION`]).
    pub version: u32,
    /// The catalog job the files belong to.
    pub job: JobId,
    /// The `strata migrate --queue` invocation that published the task.
    pub run: String,
    /// First planned file of the task (plan index).
    pub first_file: u32,
    /// One past the last planned file of the task.
    pub end_file: u32,
    /// Bytes of the task's files.
    pub bytes: u64,
    /// Chunks of the task's files.
    pub chunks: u64,
    /// Entries of the source listing that could not be read (the job cannot complete
    /// cleanly with any: its finisher marks it failed, as a single-node run does).
    pub unreadable_entries: u64,
    /// How the files are copied (`jobs` is the worker's own).
    pub options: MigrateOptions,
    /// ETags of the versions listed at planning time, by plan index (object stores).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub etags: BTreeMap<u32, String>,
}

impl ChunkTask {
    /// The task's name, unique within its run: `RUN/FIRST-LAST`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.run, self.files_label())
    }

    /// The files it covers, for people: `files 3-17`.
    pub fn files_label(&self) -> String {
        format!(
            "files {}-{}",
            self.first_file,
            self.end_file.saturating_sub(1)
        )
    }

    /// The message body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a message body; refuses (saying what is wrong) anything that is not a task
    /// of this version with a non-empty file range.
    pub fn parse(body: &[u8]) -> Result<ChunkTask, String> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("not a JSON chunk task ({e})"))?;
        let version = value.get("version").and_then(|v| v.as_u64());
        if version != Some(u64::from(TASK_VERSION)) {
            return Err(match version {
                Some(v) => format!(
                    "chunk task version {v}, this worker reads version {TASK_VERSION}; \
                     run workers of the same Strata version as `strata migrate`"
                ),
                None => "not a chunk task: no \"version\" field".to_string(),
            });
        }
        let task: ChunkTask =
            serde_json::from_value(value).map_err(|e| format!("malformed chunk task: {e}"))?;
        if task.first_file >= task.end_file {
            return Err(format!(
                "malformed chunk task: empty file range {}..{}",
                task.first_file, task.end_file
            ));
        }
        Ok(task)
    }
}

impl fmt::Display for ChunkTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {} {}", self.job, self.files_label())
    }
}

/// Cuts the plan's files still to copy into tasks of about `task_bytes` (and at most
/// [`MAX_TASK_FILES`] files), in plan order; the last tenth of the bytes into tasks eight
/// times smaller, so that the end of the job spreads over every worker. Files already
/// done or skipped are left out (a range may still span them: they cost a lookup).
pub fn split_tasks(
    plan: &Plan,
    task_bytes: u64,
    run: &str,
    options: &MigrateOptions,
    unreadable_entries: u64,
) -> Vec<ChunkTask> {
    let todo: Vec<&FileRecord> = plan
        .files
        .iter()
        .filter(|f| !matches!(f.state, FileState::Done | FileState::Skipped))
        .collect();
    let total: u64 = todo.iter().map(|f| f.planned.size).sum();
    let tail_starts = total - total / TAIL_FRACTION;
    let mut tasks = Vec::new();
    let mut current: Option<ChunkTask> = None;
    let mut seen = 0u64;
    for file in todo {
        let limit = if seen >= tail_starts {
            (task_bytes / TAIL_SHRINK).max(1)
        } else {
            task_bytes.max(1)
        };
        let index = file.planned.index;
        let size = file.planned.size;
        let full = current.as_ref().is_some_and(|t| {
            t.bytes + size > limit || (t.end_file - t.first_file) as usize >= MAX_TASK_FILES
        });
        let contiguous = current.as_ref().is_some_and(|t| t.end_file == index);
        if full || !contiguous {
            tasks.extend(current.take());
        }
        let task = current.get_or_insert_with(|| ChunkTask {
            version: TASK_VERSION,
            job: plan.job,
            run: run.to_string(),
            first_file: index,
            end_file: index,
            bytes: 0,
            chunks: 0,
            unreadable_entries,
            options: options.clone(),
            etags: BTreeMap::new(),
        });
        task.end_file = index + 1;
        task.bytes += size;
        task.chunks += layout(plan.chunk_size, size).chunk_count();
        if let Some(etag) = plan.etags.get(&index) {
            task.etags.insert(index, etag.clone());
        }
        seen += size;
    }
    tasks.extend(current);
    tasks
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use strata_catalog::PlannedFile;

    use super::*;

    fn plan(sizes: &[u64]) -> Plan {
        let files = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| FileRecord {
                planned: PlannedFile {
                    index: i as u32,
                    path: format!("f{i}"),
                    size,
                    mtime_ns: None,
                    mode: None,
                },
                state: FileState::Pending,
                hash: None,
                error: None,
            })
            .collect();
        Plan {
            job: 7,
            chunk_size: 1 << 20,
            files,
            verified: HashMap::new(),
            skipped_entries: Vec::new(),
            unreadable_entries: Vec::new(),
            resumed: false,
            etags: HashMap::new(),
        }
    }

    #[test]
    fn small_files_are_grouped_and_a_large_file_is_a_task_alone() {
        let mut sizes = vec![100u64; 10];
        sizes.push(10 << 20);
        sizes.extend([100u64; 30]);
        let tasks = split_tasks(&plan(&sizes), 1 << 20, "r", &MigrateOptions::default(), 0);
        assert_eq!(tasks[0].first_file, 0);
        assert_eq!(tasks[0].end_file, 10, "the ten small files share a task");
        assert_eq!((tasks[1].first_file, tasks[1].end_file), (10, 11));
        assert_eq!(tasks[1].chunks, 10);
        let covered: u32 = tasks.iter().map(|t| t.end_file - t.first_file).sum();
        assert_eq!(covered, 41, "every file is in exactly one task");
    }

    #[test]
    fn the_tail_is_cut_into_smaller_tasks() {
        let sizes = vec![1u64 << 20; 100];
        let tasks = split_tasks(&plan(&sizes), 8 << 20, "r", &MigrateOptions::default(), 0);
        let first = tasks.first().unwrap().bytes;
        let last = tasks.last().unwrap().bytes;
        assert_eq!(first, 8 << 20);
        assert_eq!(last, 1 << 20, "the tail's tasks are a file each");
    }

    #[test]
    fn finished_files_are_left_out() {
        let mut plan = plan(&[10, 10, 10]);
        plan.files[1].state = FileState::Done;
        let tasks = split_tasks(&plan, 1 << 20, "r", &MigrateOptions::default(), 0);
        let ranges: Vec<_> = tasks.iter().map(|t| (t.first_file, t.end_file)).collect();
        assert_eq!(ranges, vec![(0, 1), (2, 3)]);
    }

    #[test]
    fn a_task_round_trips_and_garbage_is_refused_with_a_reason() {
        let task = split_tasks(&plan(&[5]), 1 << 20, "r", &MigrateOptions::default(), 0)
            .pop()
            .unwrap();
        assert_eq!(ChunkTask::parse(&task.to_json()).unwrap(), task);
        let garbage = ChunkTask::parse(b"hello").unwrap_err();
        assert!(garbage.contains("not a JSON chunk task"), "{garbage}");
        let newer = ChunkTask::parse(br#"{"version": 99}"#).unwrap_err();
        assert!(newer.contains("version 99"), "{newer}");
        let mut json: serde_json::Value = serde_json::from_slice(&task.to_json()).unwrap();
        json["end_file"] = 0.into();
        let empty = ChunkTask::parse(json.to_string().as_bytes()).unwrap_err();
        assert!(empty.contains("empty file range"), "{empty}");
    }
}
