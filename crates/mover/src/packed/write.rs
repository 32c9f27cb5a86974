//! Writing a dataset into the packed layout (`strata migrate SRC DST --layout packed`).
//!
//! Work units run at most `jobs` at a time: one unit per chunk of a large file, one per
//! pack of small files (assigned in plan order, so a re-run builds identical packs). Each
//! chunk goes through the chunk pipeline ([`crate::pipeline::pump`]): read from the source
//! span by span and hashed as it arrives (its chunk value, for the file hash), gathered
//! whole ([`crate::pipeline::Gather`]) because the codec selector encodes a chunk as one
//! frame; then its raw hash names the object, the selector picks codec and filter, and the
//! frame is written unless the destination already has it. The index (sealed, primary
//! then copy) and then the manifest are written last.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use strata_catalog::{Catalog, FileRecord, FileState, FileUpdate, JobState};
use strata_codec::analyze::{encode_chunk, sniff_format, FormatInfo, Objective, SNIFF_LEN};
use strata_codec::compress::budget::heavy_limit;
use strata_codec::hash::{to_hex, ChunkValue};
use strata_codec::{DatasetManifest, ManifestFile, MANIFEST_COPY_PATH, MANIFEST_PATH};
use strata_store::{Store, StoreError};

use super::format::{
    chunk_key, index_copy_path, index_path, pack_key, ChunkLocator, IndexedFile, LayoutMarker,
    PackedIndex, LAYOUT_PATH,
};
use super::sealed::write_copies;
use super::{PACK_TARGET, SMALL_FILE_MAX};
use crate::encryption::{read_layout_marker, DatasetSealer};
use crate::migrate::MigrateOptions;
use crate::migrate::{is_fatal, list_existing};
use crate::pipeline::{self, read_ahead, Gather, READ_AHEAD};
use crate::plan::{begin_copying, layout, open_job, Plan};
use crate::progress::{FileFailure, MigrationReport, Progress};
use crate::retry::retry_store;
use crate::settle::{look_again, modified_within, vanished_message, Now, SourceFile, Waiting};
use crate::source::{read_exact, DatasetSource, RangeRead as _};
use crate::MoverError;

/// One unit of work.
enum Unit {
    Chunk {
        file: FileRecord,
        index: u64,
        format: Arc<FormatInfo>,
    },
    Pack(Vec<FileRecord>),
    Failed(FileRecord, StoreError),
}

/// What a unit produced: per file and chunk, its value and where its frame is.
type Placed = Vec<(u32, u64, ChunkValue, ChunkLocator)>;

/// Migrate `source` into the packed layout at `destination`; with `sealer`, every frame
/// is sealed and every object named by a keyed hash (an encrypted dataset).
pub async fn migrate_packed(
    catalog: Arc<dyn Catalog>,
    source: &Store,
    destination: &Store,
    options: &MigrateOptions,
    objective: Objective,
    sealer: Option<Arc<DatasetSealer>>,
    progress: Arc<Progress>,
) -> Result<MigrationReport, MoverError> {
    let started = Instant::now();
    check_destination_sealing(destination, sealer.as_deref()).await?;
    let dataset = DatasetSource::Plain(source.clone());
    let (plan, mut report) = open_job(&*catalog, &dataset, destination, options, &progress).await?;
    if options.dry_run {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    begin_copying(&*catalog, destination, plan.job).await?;
    if destination.stat(LAYOUT_PATH).await?.is_none() {
        let marker = match &sealer {
            Some(sealer) => LayoutMarker::packed_encrypted(plan.chunk_size, sealer.marker_entry()),
            None => LayoutMarker::packed(plan.chunk_size),
        }
        .to_json();
        retry_store(|| destination.write_atomic(LAYOUT_PATH, Bytes::from(marker.clone()))).await?;
    }
    let existing: HashSet<String> = list_existing(destination).await?.into_keys().collect();
    let existing = Arc::new(std::sync::Mutex::new(existing));

    let chunk_size = plan.chunk_size;
    let round = Round {
        source,
        destination,
        chunk_size,
        objective,
        jobs: options.jobs.max(1),
        existing: &existing,
        progress: &progress,
        sealer,
    };
    let mut placed = HashMap::new();
    let mut failed = HashMap::new();
    let (records, waiting) = round
        .copy_settled(&*catalog, &plan, options, &mut placed, &mut failed)
        .await?;
    report.bytes = waiting.resize(report.bytes);
    report.deferred = waiting.deferrals;

    let mut index_files = Vec::new();
    let mut manifest_files = Vec::new();
    let mut updates = Vec::new();
    for file in &records {
        let planned = &file.planned;
        let layout = layout(chunk_size, planned.size);
        let mut chunks = placed.remove(&planned.index).unwrap_or_default();
        chunks.sort_by_key(|(i, ..)| *i);
        let complete = chunks.len() as u64 == layout.chunk_count();
        let hash = complete
            .then(|| {
                layout
                    .merge(&chunks.iter().map(|(_, v, _)| *v).collect::<Vec<_>>())
                    .ok()
            })
            .flatten();
        let Some(hash) = hash else {
            let error = failed
                .remove(&planned.index)
                .unwrap_or_else(|| "not all chunks were stored; re-run".into());
            report.failed.push(FileFailure {
                path: planned.path.clone(),
                error: error.clone(),
            });
            updates.push(FileUpdate {
                index: planned.index,
                state: FileState::Failed,
                hash: None,
                error: Some(error),
            });
            continue;
        };
        manifest_files.push(ManifestFile {
            path: planned.path.clone(),
            size: planned.size,
            blake3: to_hex(&hash),
            mtime_ns: planned.mtime_ns,
            mode: planned.mode,
            chunks: if layout.is_single_chunk() {
                vec![]
            } else {
                chunks.iter().map(|(_, v, _)| to_hex(v)).collect()
            },
        });
        index_files.push(IndexedFile {
            path: planned.path.clone(),
            size: planned.size,
            blake3: to_hex(&hash),
            mtime_ns: planned.mtime_ns,
            mode: planned.mode,
            chunks: chunks.into_iter().map(|(_, _, l)| l).collect(),
        });
        updates.push(FileUpdate {
            index: planned.index,
            state: FileState::Done,
            hash: Some(hash),
            error: None,
        });
        report.files_copied += 1;
    }
    catalog.update_files(plan.job, &updates).await?;
    report.bytes_sent = Progress::get(&progress.bytes_sent);

    if report.failed.is_empty() && report.unreadable_entries.is_empty() {
        let mut manifest = DatasetManifest::new(chunk_size, manifest_files);
        let index_path = index_path(&manifest.root_hash);
        let index = PackedIndex::new(chunk_size, manifest.root_hash.clone(), index_files);
        let index_json = index
            .to_json()
            .map_err(|e| MoverError::Internal(format!("the index does not serialise: {e}")))?;
        // Both copies of the index are in place before the manifest points at them.
        write_copies(
            destination,
            &index_path,
            &index_copy_path(&index_path),
            Bytes::from(index_json),
        )
        .await?;
        manifest.layout = Some("packed".into());
        manifest.index = Some(index_path);
        let manifest_json = Bytes::from(manifest.to_json());
        retry_store(|| destination.write_atomic(MANIFEST_PATH, manifest_json.clone())).await?;
        retry_store(|| destination.write_atomic(MANIFEST_COPY_PATH, manifest_json.clone())).await?;
        catalog
            .set_job_state(plan.job, JobState::Done, None, Some(&manifest.root_hash))
            .await?;
        report.root_hash = Some(manifest.root_hash);
    } else {
        let message = format!(
            "{} file(s) failed",
            report.failed.len() + report.unreadable_entries.len()
        );
        catalog
            .set_job_state(plan.job, JobState::Failed, Some(&message), None)
            .await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Refuse, before anything is planned or copied, a destination sealed otherwise than
/// asked: an encrypted one written to without its key (that would add objects in clear),
/// an unencrypted one written to with `--encrypt`, or another key id or cipher.
async fn check_destination_sealing(
    destination: &Store,
    sealer: Option<&DatasetSealer>,
) -> Result<(), MoverError> {
    let Some(marker) = read_layout_marker(destination).await? else {
        return Ok(());
    };
    let location = destination.display();
    match (marker.encryption, sealer) {
        (None, None) => Ok(()),
        (Some(sealed), Some(sealer)) => sealer.check_matches(&location, &sealed),
        (None, Some(_)) => Err(MoverError::InvalidOptions(format!(
            "{location} already holds an unencrypted packed dataset: --encrypt would mix \
             sealed and clear objects in it; choose a new destination for the encrypted copy"
        ))),
        (Some(sealed), None) => Err(MoverError::InvalidOptions(format!(
            "{location} is an encrypted dataset (cipher {}, key id {}): add --encrypt with its \
             key (--encryption-key-file PATH or --encryption-key-env VAR), so nothing is \
             written to it in clear",
            sealed.cipher, sealed.key_id
        ))),
    }
}

/// Stop the job on an error that would hit every file; its progress is kept.
async fn stopped(catalog: &dyn Catalog, job: i64, error: StoreError) -> MoverError {
    let message = error.to_string();
    if let Err(catalog_error) = catalog
        .set_job_state(job, JobState::Failed, Some(&message), None)
        .await
    {
        return catalog_error.into();
    }
    MoverError::Stopped { job, source: error }
}

/// What every round of a packed migration shares.
struct Round<'a> {
    source: &'a Store,
    destination: &'a Store,
    chunk_size: u64,
    objective: Objective,
    jobs: usize,
    existing: &'a std::sync::Mutex<HashSet<String>>,
    progress: &'a Progress,
    sealer: Option<Arc<DatasetSealer>>,
}

impl Round<'_> {
    /// Copy the plan's files, deferring those still being written and copying again
    /// those whose source changed, until none waits; returns the plan as it ends (files
    /// replanned at their new size and time) and the waits.
    async fn copy_settled(
        &self,
        catalog: &dyn Catalog,
        plan: &Plan,
        options: &MigrateOptions,
        placed: &mut HashMap<u32, Vec<(u64, ChunkValue, ChunkLocator)>>,
        failed: &mut HashMap<u32, String>,
    ) -> Result<(Vec<FileRecord>, Waiting), MoverError> {
        let mut records = plan.files.clone();
        let dataset = DatasetSource::Plain(self.source.clone());
        let mut waiting = Waiting::new(options.settle, &dataset);
        let mut files = SourceFile::all_of(plan);
        loop {
            let now = SystemTime::now();
            let (copy, later): (Vec<_>, Vec<_>) = files.into_iter().partition(|file| {
                file.settled || !modified_within(&file.record.planned, options.settle.settle, now)
            });
            later.into_iter().for_each(|file| waiting.defer(file));
            let to_copy = copy.iter().map(|f| f.record.clone()).collect();
            let copied = match self.copy(to_copy, placed, failed).await {
                Ok(()) => {
                    self.check_sources(&dataset, copy, &mut waiting, placed, failed)
                        .await
                }
                Err(error) => Err(error),
            };
            if let Err(error) = copied {
                return Err(stopped(catalog, plan.job, error).await);
            }
            if waiting.is_empty() {
                break;
            }
            let settled = waiting.settle(&dataset, self.jobs, self.progress).await;
            if let Some((_, error)) = settled.stopped {
                return Err(stopped(catalog, plan.job, error).await);
            }
            for (record, message) in settled.failed {
                failed.insert(record.planned.index, message);
            }
            for file in &settled.ready {
                catalog.replan_file(plan.job, &file.record.planned).await?;
                if let Some(record) = records.get_mut(file.record.planned.index as usize) {
                    record.planned = file.record.planned.clone();
                }
            }
            files = settled.ready;
        }
        Ok((records, waiting))
    }

    /// Store the chunks of `files`, adding where each went to `placed` (or why not to
    /// `failed`); an error that would hit every file is returned.
    async fn copy(
        &self,
        files: Vec<FileRecord>,
        placed: &mut HashMap<u32, Vec<(u64, ChunkValue, ChunkLocator)>>,
        failed: &mut HashMap<u32, String>,
    ) -> Result<(), StoreError> {
        let (source, chunk_size) = (self.source, self.chunk_size);
        let units = stream::iter(group_units(files, chunk_size))
            .then(|group| async move {
                match group {
                    Grouped::Large(file) => large_file_units(source, file, chunk_size).await,
                    Grouped::Pack(files) => vec![Unit::Pack(files)],
                }
            })
            .flat_map(stream::iter);
        let results: Vec<Result<Placed, (Vec<FileRecord>, StoreError)>> = units
            .map(|unit| run_unit(self, unit))
            .buffer_unordered(units_in_flight(self.jobs, &self.objective))
            .collect()
            .await;
        for result in results {
            match result {
                Ok(list) => {
                    for (file, chunk, value, locator) in list {
                        placed
                            .entry(file)
                            .or_default()
                            .push((chunk, value, locator));
                    }
                }
                Err((_, error)) if is_fatal(&error) => return Err(error),
                Err((files, error)) => {
                    for file in files {
                        failed.insert(file.planned.index, error.to_string());
                    }
                }
            }
        }
        Ok(())
    }

    /// Look at the sources of `copied` again: a chunk read from a file that changed since
    /// its copy started is not that file's content, so its placements are dropped and
    /// the file waits to be copied again (or is reported).
    async fn check_sources(
        &self,
        dataset: &DatasetSource,
        copied: Vec<SourceFile>,
        waiting: &mut Waiting,
        placed: &mut HashMap<u32, Vec<(u64, ChunkValue, ChunkLocator)>>,
        failed: &mut HashMap<u32, String>,
    ) -> Result<(), StoreError> {
        let looked: Vec<_> = stream::iter(copied)
            .map(|file| async move {
                let now = look_again(dataset, &file).await;
                (file, now)
            })
            .buffer_unordered(self.jobs)
            .collect()
            .await;
        for (file, now) in looked {
            let planned = &file.record.planned;
            if matches!(now, Ok(Now::Unchanged)) {
                continue;
            }
            let chunks = placed.remove(&planned.index).unwrap_or_default();
            let layout = layout(self.chunk_size, planned.size);
            let counted = chunks.iter().map(|(i, ..)| layout.chunk_range(*i).1).sum();
            Progress::sub(&self.progress.bytes_done, counted);
            failed.remove(&planned.index);
            let problem = match now {
                Ok(Now::Changed(entry)) => waiting.changed(&file, &entry).err(),
                Ok(_) => Some(vanished_message(dataset, &planned.path)),
                Err(error) if is_fatal(&error) => return Err(error),
                Err(error) => Some(error.to_string()),
            };
            if let Some(message) = problem {
                failed.insert(planned.index, message);
            }
        }
        Ok(())
    }
}

/// Units in flight at once: `jobs`, except where every chunk goes through a heavy encoder
/// (`--codec max`, or a fixed heavy codec such as `xz:6`), where only
/// [`heavy_limit`] of them can encode at a time: more units would only hold their chunks
/// (and their buffers' memory) waiting, so one more than that is enough to keep the
/// encoders fed.
fn units_in_flight(jobs: usize, objective: &Objective) -> usize {
    let heavy = match objective {
        Objective::MaxRatio => true,
        Objective::Fixed { codec, .. } => codec.is_heavy(),
        Objective::LinkRate { .. } => false,
    };
    if heavy {
        jobs.min(heavy_limit() + 1).max(1)
    } else {
        jobs
    }
}

enum Grouped {
    Large(FileRecord),
    Pack(Vec<FileRecord>),
}

/// Small files into packs of about [`PACK_TARGET`] bytes in plan order; large files alone.
fn group_units(files: Vec<FileRecord>, chunk_size: u64) -> Vec<Grouped> {
    let small_max = SMALL_FILE_MAX.min(chunk_size);
    let mut out = Vec::new();
    let mut pack: Vec<FileRecord> = Vec::new();
    let mut pack_bytes = 0;
    for file in files {
        if file.planned.size > small_max {
            out.push(Grouped::Large(file));
            continue;
        }
        pack_bytes += file.planned.size;
        pack.push(file);
        if pack_bytes >= PACK_TARGET {
            out.push(Grouped::Pack(std::mem::take(&mut pack)));
            pack_bytes = 0;
        }
    }
    if !pack.is_empty() {
        out.push(Grouped::Pack(pack));
    }
    out
}

async fn large_file_units(source: &Store, file: FileRecord, chunk_size: u64) -> Vec<Unit> {
    let head_len = file.planned.size.min(SNIFF_LEN as u64);
    let head = match retry_store(|| source.read_range(&file.planned.path, 0, head_len)).await {
        Ok(head) => head,
        Err(error) => return vec![Unit::Failed(file, error)],
    };
    let format = Arc::new(sniff_format(&head, Some(&file.planned.path)));
    let count = layout(chunk_size, file.planned.size).chunk_count();
    (0..count)
        .map(|index| Unit::Chunk {
            file: file.clone(),
            index,
            format: format.clone(),
        })
        .collect()
}

/// Encode one chunk starting at byte `offset` of its file: (object name, frame, codec
/// label). The name is the raw BLAKE3, or with a sealer its keyed hash; the frame is
/// sealed by the caller (a pack is named by its frames before sealing).
fn encode(
    data: &[u8],
    offset: u64,
    format: &FormatInfo,
    objective: &Objective,
    sealer: Option<&DatasetSealer>,
) -> (String, Vec<u8>, String) {
    let name = match sealer {
        Some(sealer) => sealer.name(data),
        None => blake3::hash(data).to_hex().to_string(),
    };
    let encoded = encode_chunk(data, offset, format, objective);
    let label = format!("{}+{}", encoded.choice.codec, encoded.choice.filter);
    (name, encoded.frame, label)
}

/// `frame` as stored: sealed when the dataset is encrypted, as it is otherwise.
fn stored_frame(frame: Vec<u8>, sealer: Option<&DatasetSealer>) -> Vec<u8> {
    match sealer {
        Some(sealer) => sealer.seal(&frame),
        None => frame,
    }
}

/// Chunk `index` of `file` through the chunk pipeline: read span by span (read ahead) and
/// hashed as it arrives, gathered whole for the codec; returns its bytes and value.
async fn read_chunk(
    source: &Store,
    file: &FileRecord,
    chunk_size: u64,
    index: u64,
) -> Result<(Bytes, ChunkValue), StoreError> {
    let layout = layout(chunk_size, file.planned.size);
    let (offset, len) = layout.chunk_range(index);
    let path = file.planned.path.as_str();
    let spans = read_ahead(len, source.span_for(len), READ_AHEAD, |at, n| {
        read_exact(source, path, offset + at, n)
    });
    let mut gathered = Gather::with_capacity(len as usize);
    let hasher = pipeline::pump(spans, layout.chunk_hasher(index), &mut gathered).await?;
    Ok((gathered.into_bytes(), hasher.finish()))
}

/// A panic of the encoding thread, as the file's error.
fn encode_failed(path: &str, error: tokio::task::JoinError) -> StoreError {
    StoreError::Backend {
        path: path.to_string(),
        detail: format!("encoding failed: {error}"),
        retryable: false,
    }
}

async fn put_object(
    destination: &Store,
    key: &str,
    frame: Bytes,
    existing: &std::sync::Mutex<HashSet<String>>,
    progress: &Progress,
) -> Result<(), StoreError> {
    if existing.lock().map(|e| e.contains(key)).unwrap_or(false) {
        return Ok(());
    }
    let len = frame.len() as u64;
    retry_store(|| destination.write_atomic(key, frame.clone())).await?;
    Progress::add(&progress.bytes_sent, len);
    if let Ok(mut e) = existing.lock() {
        e.insert(key.to_string());
    }
    Ok(())
}

async fn run_unit(round: &Round<'_>, unit: Unit) -> Result<Placed, (Vec<FileRecord>, StoreError)> {
    let (source, destination) = (round.source, round.destination);
    let (chunk_size, objective) = (round.chunk_size, round.objective);
    let (existing, progress) = (round.existing, round.progress);
    let sealer = round.sealer.clone();
    match unit {
        Unit::Failed(file, error) => Err((vec![file], error)),
        Unit::Chunk {
            file,
            index,
            format,
        } => {
            let fail = |e| (vec![file.clone()], e);
            let (data, value) = read_chunk(source, &file, chunk_size, index)
                .await
                .map_err(fail)?;
            let len = data.len() as u64;
            let offset = index * chunk_size;
            let (raw, frame, label) = tokio::task::spawn_blocking(move || {
                let sealer = sealer.as_deref();
                let (name, frame, label) = encode(&data, offset, &format, &objective, sealer);
                (name, stored_frame(frame, sealer), label)
            })
            .await
            .map_err(|e| fail(encode_failed(&file.planned.path, e)))?;
            let key = chunk_key(&raw);
            let frame_len = frame.len() as u64;
            put_object(destination, &key, Bytes::from(frame), existing, progress)
                .await
                .map_err(fail)?;
            Progress::add(&progress.bytes_done, len);
            let locator = ChunkLocator {
                object: key,
                offset: 0,
                len: frame_len,
                codec: label,
            };
            Ok(vec![(file.planned.index, index, value, locator)])
        }
        Unit::Pack(files) => {
            let mut pack = Vec::new();
            // With a sealer: the frames before sealing, which name the pack (the sealed
            // bytes differ on every run, their nonces being fresh).
            let mut clear_frames = Vec::new();
            let mut entries = Vec::new();
            for file in &files {
                let (data, value) = read_chunk(source, file, chunk_size, 0)
                    .await
                    .map_err(|e| (files.clone(), e))?;
                let hint = file.planned.path.clone();
                let sealer = sealer.clone();
                let (clear, frame, label) = tokio::task::spawn_blocking(move || {
                    let format = sniff_format(&data, Some(&hint));
                    let (_, frame, label) = encode(&data, 0, &format, &objective, None);
                    match sealer.as_deref() {
                        Some(sealer) => (Some(frame.clone()), sealer.seal(&frame), label),
                        None => (None, frame, label),
                    }
                })
                .await
                .map_err(|e| (files.clone(), encode_failed(&file.planned.path, e)))?;
                clear_frames.extend_from_slice(&clear.unwrap_or_default());
                entries.push((
                    file.planned.index,
                    value,
                    pack.len() as u64,
                    frame.len() as u64,
                    label,
                ));
                pack.extend_from_slice(&frame);
            }
            let key = match sealer.as_deref() {
                Some(sealer) => pack_key(&sealer.name(&clear_frames)),
                None => pack_key(&blake3::hash(&pack).to_hex()),
            };
            put_object(destination, &key, Bytes::from(pack), existing, progress)
                .await
                .map_err(|e| (files.clone(), e))?;
            Progress::add(
                &progress.bytes_done,
                files.iter().map(|f| f.planned.size).sum(),
            );
            Progress::add(&progress.files_done, files.len() as u64);
            Ok(entries
                .into_iter()
                .map(|(file, value, offset, len, codec)| {
                    (
                        file,
                        0,
                        value,
                        ChunkLocator {
                            object: key.clone(),
                            offset,
                            len,
                            codec,
                        },
                    )
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_codec::compress::Codec;

    #[test]
    fn heavy_objectives_keep_few_units_in_flight() {
        let fixed = |codec| Objective::Fixed {
            codec,
            filter: None,
        };
        assert_eq!(
            units_in_flight(8, &Objective::MaxRatio),
            8.min(heavy_limit() + 1)
        );
        assert_eq!(
            units_in_flight(8, &fixed(Codec::Xz { level: 6 })),
            8.min(heavy_limit() + 1)
        );
        assert_eq!(units_in_flight(1, &Objective::MaxRatio), 1);
        assert_eq!(units_in_flight(8, &fixed(Codec::Lz4)), 8);
        assert_eq!(units_in_flight(8, &Objective::link_rate(125e6, 2)), 8);
    }
}
