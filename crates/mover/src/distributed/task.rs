//! The chunk task: one message on the queue, the share of a planned job one worker runs.
//!
//! A task names a contiguous range of the job's planned files (by plan index) with what a
//! worker needs besides the catalog: the run that published it, the mover's options, and
//! the ETags the listing gave (object stores). Small files are grouped into one task. A
//! file larger than the task size is cut into **range tasks** of about the task size, on
//! chunk boundaries (`first_chunk`, `end_chunk`), when the destination is a POSIX file
//! system (local or a shared mount), whose staged copy many processes can write at
//! offsets; to an object store such a file stays one task (its chunks run side by side on
//! that worker), since one multipart upload cannot be shared across processes. Tasks
//! shrink towards the end of the plan ([`split_tasks`]) so that the job's tail is many
//! small tasks that idle workers take, not one large one that holds the job.
//!
//! The message is JSON, versioned ([`TASK_VERSION`]: 2 added the chunk range; a worker of
//! version 1 refuses it, a worker of version 2 still runs a version-1 task);
//! [`ChunkTask::parse`] refuses anything else with a message saying what was wrong, and
//! the worker terminates such a message instead of letting it be redelivered forever.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use strata_catalog::{FileRecord, FileState, JobId};

use crate::plan::{layout, Plan};
use crate::MigrateOptions;

/// The version of the task message this binary writes (and the newest it reads).
pub const TASK_VERSION: u32 = 2;

/// The oldest task version this binary still reads (version 1: no chunk range).
const OLDEST_TASK_VERSION: u32 = 1;

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
    /// A range task (version 2): the first chunk of its one file it copies; `None`: the
    /// task copies its files whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_chunk: Option<u64>,
    /// A range task: one past the last chunk of its file it copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_chunk: Option<u64>,
}

impl ChunkTask {
    /// The task's name, unique within its run: `RUN/FIRST-LAST`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.run, self.files_label())
    }

    /// The files it covers, for people: `files 3-17`, or for a range task
    /// `file 3 chunks 8-15`.
    pub fn files_label(&self) -> String {
        if let Some(chunks) = self.chunk_range() {
            return format!(
                "file {} chunks {}-{}",
                self.first_file,
                chunks.start,
                chunks.end.saturating_sub(1)
            );
        }
        format!(
            "files {}-{}",
            self.first_file,
            self.end_file.saturating_sub(1)
        )
    }

    /// The chunks of its one file a range task copies; `None` for a task of whole files.
    pub fn chunk_range(&self) -> Option<std::ops::Range<u64>> {
        match (self.first_chunk, self.end_chunk) {
            (Some(first), Some(end)) => Some(first..end),
            _ => None,
        }
    }

    /// The message body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a message body; refuses (saying what is wrong) anything that is not a task
    /// of a version this worker reads with a non-empty file range (and, for a range
    /// task, a non-empty chunk range of exactly one file).
    pub fn parse(body: &[u8]) -> Result<ChunkTask, String> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("not a JSON chunk task ({e})"))?;
        let version = value.get("version").and_then(|v| v.as_u64());
        let readable = u64::from(OLDEST_TASK_VERSION)..=u64::from(TASK_VERSION);
        if !version.is_some_and(|v| readable.contains(&v)) {
            return Err(match version {
                Some(v) => format!(
                    "chunk task version {v}, this worker reads versions \
                     {OLDEST_TASK_VERSION} to {TASK_VERSION}; run workers of the same Strata \
                     version as `strata migrate`"
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
        task.check_chunk_range()?;
        Ok(task)
    }

    /// A chunk range is whole (both ends), non-empty, of one file, and only in version 2.
    fn check_chunk_range(&self) -> Result<(), String> {
        let (first, end) = match (self.first_chunk, self.end_chunk) {
            (None, None) => return Ok(()),
            (Some(first), Some(end)) => (first, end),
            _ => {
                return Err(
                    "malformed chunk task: a chunk range needs both first_chunk and end_chunk"
                        .to_string(),
                )
            }
        };
        if self.version < 2 {
            return Err(format!(
                "malformed chunk task: version {} has no chunk ranges",
                self.version
            ));
        }
        if first >= end {
            return Err(format!(
                "malformed chunk task: empty chunk range {first}..{end}"
            ));
        }
        if self.end_file - self.first_file != 1 {
            return Err(format!(
                "malformed chunk task: a chunk range must name one file, not files {}..{}",
                self.first_file, self.end_file
            ));
        }
        Ok(())
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
/// done or skipped are left out (a range may still span them: they cost a lookup). With
/// `split_files` (a destination whose staged copy several processes can write: a POSIX
/// file system), a file larger than the task size is cut into range tasks of about the
/// task size on chunk boundaries, shrinking in the tail like any task; without, it is a
/// task alone.
pub fn split_tasks(
    plan: &Plan,
    task_bytes: u64,
    run: &str,
    options: &MigrateOptions,
    unreadable_entries: u64,
    split_files: bool,
) -> Vec<ChunkTask> {
    let todo: Vec<&FileRecord> = plan
        .files
        .iter()
        .filter(|f| !matches!(f.state, FileState::Done | FileState::Skipped))
        .collect();
    let total: u64 = todo.iter().map(|f| f.planned.size).sum();
    let mut cutter = Cutter {
        plan,
        run,
        options,
        unreadable_entries,
        task_bytes,
        tail_starts: total - total / TAIL_FRACTION,
        seen: 0,
        tasks: Vec::new(),
        current: None,
    };
    for file in todo {
        let chunks = layout(plan.chunk_size, file.planned.size).chunk_count();
        if split_files && chunks > 1 && file.planned.size > cutter.limit() {
            cutter.close();
            cutter.cut_into_ranges(file);
        } else {
            cutter.add(file);
        }
    }
    cutter.close();
    cutter.tasks
}

/// The state of [`split_tasks`] as it walks the plan.
struct Cutter<'a> {
    plan: &'a Plan,
    run: &'a str,
    options: &'a MigrateOptions,
    unreadable_entries: u64,
    task_bytes: u64,
    /// Bytes after which the tail's smaller tasks begin.
    tail_starts: u64,
    /// Bytes put in tasks so far.
    seen: u64,
    tasks: Vec<ChunkTask>,
    /// The task of whole files being filled.
    current: Option<ChunkTask>,
}

impl Cutter<'_> {
    /// The size of the next task: smaller in the tail.
    fn limit(&self) -> u64 {
        if self.seen >= self.tail_starts {
            (self.task_bytes / TAIL_SHRINK).max(1)
        } else {
            self.task_bytes.max(1)
        }
    }

    /// An empty task starting at file `index`.
    fn task_at(&self, index: u32) -> ChunkTask {
        ChunkTask {
            version: TASK_VERSION,
            job: self.plan.job,
            run: self.run.to_string(),
            first_file: index,
            end_file: index,
            bytes: 0,
            chunks: 0,
            unreadable_entries: self.unreadable_entries,
            options: self.options.clone(),
            etags: BTreeMap::new(),
            first_chunk: None,
            end_chunk: None,
        }
    }

    /// Adds a whole file to the current task, or to a new one when it is full or the
    /// file does not follow it.
    fn add(&mut self, file: &FileRecord) {
        let limit = self.limit();
        let index = file.planned.index;
        let size = file.planned.size;
        let full = self.current.as_ref().is_some_and(|t| {
            t.bytes + size > limit || (t.end_file - t.first_file) as usize >= MAX_TASK_FILES
        });
        let contiguous = self.current.as_ref().is_some_and(|t| t.end_file == index);
        if full || !contiguous {
            self.close();
        }
        if self.current.is_none() {
            self.current = Some(self.task_at(index));
        }
        if let Some(task) = self.current.as_mut() {
            task.end_file = index + 1;
            task.bytes += size;
            task.chunks += layout(self.plan.chunk_size, size).chunk_count();
            if let Some(etag) = self.plan.etags.get(&index) {
                task.etags.insert(index, etag.clone());
            }
        }
        self.seen += size;
    }

    /// Ends the task being filled.
    fn close(&mut self) {
        self.tasks.extend(self.current.take());
    }

    /// Cuts one large file into range tasks of about the task size (a whole number of
    /// chunks, at least one), each sized by where it falls in the plan.
    fn cut_into_ranges(&mut self, file: &FileRecord) {
        let index = file.planned.index;
        let layout = layout(self.plan.chunk_size, file.planned.size);
        let count = layout.chunk_count();
        let mut first = 0;
        while first < count {
            let per_task = (self.limit() / self.plan.chunk_size).max(1);
            let end = first.saturating_add(per_task).min(count);
            let mut task = self.task_at(index);
            task.end_file = index + 1;
            task.bytes = (first..end).map(|i| layout.chunk_range(i).1).sum();
            task.chunks = end - first;
            task.first_chunk = Some(first);
            task.end_chunk = Some(end);
            if let Some(etag) = self.plan.etags.get(&index) {
                task.etags.insert(index, etag.clone());
            }
            self.seen += task.bytes;
            self.tasks.push(task);
            first = end;
        }
    }
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
            chunk_range: None,
        }
    }

    #[test]
    fn small_files_are_grouped_and_a_large_file_is_a_task_alone() {
        let mut sizes = vec![100u64; 10];
        sizes.push(10 << 20);
        sizes.extend([100u64; 30]);
        let tasks = split_tasks(
            &plan(&sizes),
            1 << 20,
            "r",
            &MigrateOptions::default(),
            0,
            false,
        );
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
        let tasks = split_tasks(
            &plan(&sizes),
            8 << 20,
            "r",
            &MigrateOptions::default(),
            0,
            false,
        );
        let first = tasks.first().unwrap().bytes;
        let last = tasks.last().unwrap().bytes;
        assert_eq!(first, 8 << 20);
        assert_eq!(last, 1 << 20, "the tail's tasks are a file each");
    }

    #[test]
    fn finished_files_are_left_out() {
        let mut plan = plan(&[10, 10, 10]);
        plan.files[1].state = FileState::Done;
        let tasks = split_tasks(&plan, 1 << 20, "r", &MigrateOptions::default(), 0, false);
        let ranges: Vec<_> = tasks.iter().map(|t| (t.first_file, t.end_file)).collect();
        assert_eq!(ranges, vec![(0, 1), (2, 3)]);
    }

    #[test]
    fn a_task_round_trips_and_garbage_is_refused_with_a_reason() {
        let task = split_tasks(
            &plan(&[5]),
            1 << 20,
            "r",
            &MigrateOptions::default(),
            0,
            false,
        )
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

    #[test]
    fn a_large_file_is_cut_into_chunk_ranges_for_a_posix_destination() {
        // 40 chunks of 1 MiB, then an empty file; 4 MiB tasks (the tail's, from 36 MiB
        // on: 512 KiB, so one chunk).
        let plan = plan(&[40 << 20, 0]);
        let tasks = split_tasks(&plan, 4 << 20, "r", &MigrateOptions::default(), 0, true);
        let ranges: Vec<_> = tasks.iter().filter_map(ChunkTask::chunk_range).collect();
        assert_eq!(ranges.first(), Some(&(0..4)));
        let mut next = 0;
        for range in &ranges {
            assert_eq!(range.start, next, "ranges follow each other, none missing");
            next = range.end;
        }
        assert_eq!(next, 40, "every chunk of the file is in exactly one range");
        assert_eq!(
            ranges.last(),
            Some(&(39..40)),
            "the tail's ranges are one chunk each: {ranges:?}"
        );
        assert!(tasks[..ranges.len()]
            .iter()
            .all(|t| (t.first_file, t.end_file) == (0, 1) && t.version == TASK_VERSION));
        assert_eq!(tasks[0].bytes, 4 << 20);
        assert_eq!(tasks[0].chunks, 4);
        assert_eq!(tasks[0].files_label(), "file 0 chunks 0-3");
        assert_ne!(
            tasks[0].key(),
            tasks[1].key(),
            "each range has its own name"
        );
        let last = tasks.last().unwrap();
        assert_eq!((last.first_file, last.chunk_range()), (1, None));
        let whole = split_tasks(&plan, 4 << 20, "r", &MigrateOptions::default(), 0, false);
        assert_eq!(
            whole[0].chunk_range(),
            None,
            "not split for an object store"
        );
        assert_eq!(whole[0].chunks, 40);
    }

    #[test]
    fn range_tasks_round_trip_and_bad_ranges_are_refused() {
        let plan = plan(&[8 << 20]);
        let task = split_tasks(&plan, 4 << 20, "r", &MigrateOptions::default(), 0, true)
            .pop()
            .unwrap();
        assert!(task.chunk_range().is_some());
        assert_eq!(ChunkTask::parse(&task.to_json()).unwrap(), task);
        let json: serde_json::Value = serde_json::from_slice(&task.to_json()).unwrap();
        let refused = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut bad = json.clone();
            change(&mut bad);
            ChunkTask::parse(bad.to_string().as_bytes()).unwrap_err()
        };
        let empty = refused(&|j| j["end_chunk"] = j["first_chunk"].clone());
        assert!(empty.contains("empty chunk range"), "{empty}");
        let half = refused(&|j| {
            j.as_object_mut().unwrap().remove("end_chunk");
        });
        assert!(half.contains("needs both"), "{half}");
        let two_files = refused(&|j| j["end_file"] = 2.into());
        assert!(two_files.contains("one file"), "{two_files}");
        let old = refused(&|j| j["version"] = 1.into());
        assert!(old.contains("version 1 has no chunk ranges"), "{old}");
    }

    #[test]
    fn a_version_1_task_still_runs() {
        let mut task = split_tasks(
            &plan(&[5]),
            1 << 20,
            "r",
            &MigrateOptions::default(),
            0,
            true,
        )
        .pop()
        .unwrap();
        task.version = 1;
        let parsed = ChunkTask::parse(&task.to_json()).unwrap();
        assert_eq!(parsed.version, 1);
        assert_eq!(parsed.chunk_range(), None);
    }
}
