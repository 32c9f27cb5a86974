//! `strata inspect PATH`: what Strata sees in each file and what it would do with each
//! chunk: format, entropy, chosen codec and filter, predicted and actual ratio, and why.
//! On a packed store (`strata migrate --layout packed` output) it reports instead what was
//! stored, from the store's index: per file the stored bytes, the ratio and the codecs its
//! chunks use, without decoding anything.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use strata_codec::analyze::{encode_chunk, sniff_format, Objective, SNIFF_LEN};
use strata_codec::compress::{read_header, Codec};
use strata_mover::packed::read::PackedSource;
use strata_store::Store;

use super::codec_args::CodecArgs;
use super::Context;
use crate::output;
use crate::units::{human_bytes, parse_chunk_size};

/// Arguments of `strata inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A file or a directory (local path or store URI).
    pub path: String,
    /// Also print one line per chunk.
    #[arg(long)]
    pub chunks: bool,
    /// Chunk size (binary units).
    #[arg(long, default_value = "4M", value_parser = parse_chunk_size)]
    pub chunk_size: u64,
    #[command(flatten)]
    pub codec: CodecArgs,
    #[command(flatten)]
    pub key: super::key_args::KeyArgs,
}

/// One chunk's analysis.
#[derive(Debug, Serialize)]
pub struct ChunkLine {
    offset: u64,
    len: u64,
    entropy: f64,
    codec: String,
    filter: String,
    stored_codec: String,
    predicted_ratio: f64,
    actual_ratio: f64,
    reason: String,
}

/// One file's analysis.
#[derive(Debug, Serialize)]
pub struct FileReport {
    path: String,
    size: u64,
    format: String,
    detail: String,
    entropy: f64,
    codec: String,
    filter: String,
    predicted_ratio: f64,
    actual_ratio: f64,
    stored_bytes: u64,
    reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    chunks: Vec<ChunkLine>,
}

/// Run the command.
pub async fn run(context: &Context, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let objective = args.codec.objective()?;
    let key = args.key.load()?;
    let local = Path::new(&args.path);
    let (store, files) = if local.is_file() {
        let parent = local
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow::anyhow!("{} has no file name", args.path))?;
        let store = context.source_store(&parent.to_string_lossy()).await?;
        let size = local.metadata()?.len();
        (store, vec![(name, size)])
    } else {
        let store = context.source_store(&args.path).await?;
        if let Some(packed) = PackedSource::open(&store, key.as_ref()).await? {
            return inspect_packed(context, &packed, args.chunks);
        }
        let mut warn =
            |w: strata_store::ListWarning| eprintln!("warning: skipped {}: {}", w.path, w.message);
        let entries = store.list(&mut warn).await?;
        let files = entries.into_iter().map(|e| (e.path, e.size)).collect();
        (store, files)
    };
    let mut reports = Vec::new();
    for (path, size) in files {
        let report = inspect_file(
            &store,
            &path,
            size,
            args.chunk_size,
            &objective,
            args.chunks,
        )
        .await?;
        if !context.json {
            print_file(&report);
        }
        reports.push(report);
    }
    if context.json {
        output::print_json(&reports);
    } else if reports.len() > 1 {
        let raw: u64 = reports.iter().map(|r| r.size).sum();
        let stored: u64 = reports.iter().map(|r| r.stored_bytes).sum();
        print_total(reports.len(), raw, stored, "");
    }
    Ok(ExitCode::SUCCESS)
}

async fn inspect_file(
    store: &Store,
    path: &str,
    size: u64,
    chunk_size: u64,
    objective: &Objective,
    keep_chunks: bool,
) -> anyhow::Result<FileReport> {
    let head_len = size.min(SNIFF_LEN as u64);
    let head = if head_len == 0 {
        Default::default()
    } else {
        store.read_range(path, 0, head_len).await?
    };
    let format = sniff_format(&head, Some(path));
    let mut chunks = Vec::new();
    let (mut stored_bytes, mut predicted_weighted, mut entropy_weighted) = (0u64, 0.0, 0.0);
    let mut tally: Vec<((Codec, String), u64)> = Vec::new();
    let mut first_reason = String::new();
    let mut offset = 0;
    loop {
        let len = chunk_size.min(size - offset);
        let data = if len == 0 {
            Default::default()
        } else {
            store.read_range(path, offset, len).await?
        };
        let (objective, format) = (*objective, format.clone());
        let encoded =
            tokio::task::spawn_blocking(move || encode_chunk(&data, offset, &format, &objective))
                .await?;
        let stored_codec = read_header(&encoded.frame).map_or(Codec::None, |h| h.codec);
        let frame_len = encoded.frame.len() as u64;
        stored_bytes += frame_len;
        predicted_weighted += encoded.choice.predicted_ratio * len as f64;
        entropy_weighted += encoded.entropy * len as f64;
        let key = (encoded.choice.codec, encoded.choice.filter.to_string());
        match tally.iter_mut().find(|(k, _)| *k == key) {
            Some((_, bytes)) => *bytes += len,
            None => tally.push((key, len)),
        }
        if first_reason.is_empty() {
            first_reason = encoded.choice.reason.clone();
        }
        if keep_chunks {
            chunks.push(ChunkLine {
                offset,
                len,
                entropy: encoded.entropy,
                codec: encoded.choice.codec.to_string(),
                filter: encoded.choice.filter.to_string(),
                stored_codec: stored_codec.to_string(),
                predicted_ratio: encoded.choice.predicted_ratio,
                actual_ratio: len as f64 / frame_len as f64,
                reason: encoded.choice.reason,
            });
        }
        offset += len;
        if offset >= size {
            break;
        }
    }
    let weight = size.max(1) as f64;
    let ((codec, filter), _) = tally
        .into_iter()
        .max_by_key(|(_, bytes)| *bytes)
        .unwrap_or(((Codec::None, "none".into()), 0));
    Ok(FileReport {
        path: path.to_string(),
        size,
        format: format.format.to_string(),
        detail: format.detail.clone(),
        entropy: entropy_weighted / weight,
        codec: codec.to_string(),
        filter,
        predicted_ratio: if size == 0 {
            1.0
        } else {
            predicted_weighted / weight
        },
        actual_ratio: size as f64 / stored_bytes.max(1) as f64,
        stored_bytes,
        reason: first_reason,
        chunks,
    })
}

fn print_file(report: &FileReport) {
    let detail = if report.detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", report.detail)
    };
    outln!(
        "{}: {}{detail}, {}, entropy {:.2} bits/byte; {}+{}: predicted {:.2}x, actual {:.2}x ({} -> {})",
        report.path,
        report.format,
        human_bytes(report.size),
        report.entropy,
        report.codec,
        report.filter,
        report.predicted_ratio,
        report.actual_ratio,
        human_bytes(report.size),
        human_bytes(report.stored_bytes),
    );
    outln!("  why: {}", report.reason);
    for chunk in &report.chunks {
        outln!(
            "  chunk @{} +{}: entropy {:.2}, {}+{} (stored {}), predicted {:.2}x, actual {:.2}x: {}",
            chunk.offset,
            chunk.len,
            chunk.entropy,
            chunk.codec,
            chunk.filter,
            chunk.stored_codec,
            chunk.predicted_ratio,
            chunk.actual_ratio,
            chunk.reason
        );
    }
}

/// What a packed store holds for one file.
#[derive(Debug, Serialize)]
pub struct StoredFileReport {
    path: String,
    size: u64,
    stored_bytes: u64,
    ratio: f64,
    /// Codec and filter labels with the raw bytes stored with each, most used first.
    codecs: Vec<(String, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    chunks: Vec<StoredChunkLine>,
}

/// What a packed store holds for one chunk.
#[derive(Debug, Serialize)]
pub struct StoredChunkLine {
    offset: u64,
    len: u64,
    stored_bytes: u64,
    codec: String,
    object: String,
}

/// `strata inspect` on a packed store: the choices made when it was written.
fn inspect_packed(
    context: &Context,
    packed: &PackedSource,
    keep_chunks: bool,
) -> anyhow::Result<ExitCode> {
    let chunk_size = packed.chunk_size().max(1);
    let mut reports = Vec::new();
    for file in &packed.index().files {
        let mut codecs: Vec<(String, u64)> = Vec::new();
        let mut chunks = Vec::new();
        for (i, locator) in file.chunks.iter().enumerate() {
            let offset = i as u64 * chunk_size;
            let len = chunk_size.min(file.size.saturating_sub(offset));
            match codecs.iter_mut().find(|(c, _)| *c == locator.codec) {
                Some((_, bytes)) => *bytes += len,
                None => codecs.push((locator.codec.clone(), len)),
            }
            if keep_chunks {
                chunks.push(StoredChunkLine {
                    offset,
                    len,
                    stored_bytes: locator.len,
                    codec: locator.codec.clone(),
                    object: locator.object.clone(),
                });
            }
        }
        codecs.sort_by_key(|c| std::cmp::Reverse(c.1));
        let stored_bytes = file.chunks.iter().map(|c| c.len).sum::<u64>();
        reports.push(StoredFileReport {
            path: file.path.clone(),
            size: file.size,
            stored_bytes,
            ratio: file.size as f64 / stored_bytes.max(1) as f64,
            codecs,
            chunks,
        });
    }
    if context.json {
        output::print_json(&reports);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{}: packed store, dataset root {}, {} files, {} chunks; as stored:",
        packed.store().display(),
        packed.index().root_hash,
        reports.len(),
        human_bytes(chunk_size)
    );
    for r in &reports {
        let codecs: Vec<String> = r
            .codecs
            .iter()
            .map(|(codec, bytes)| format!("{codec} ({})", human_bytes(*bytes)))
            .collect();
        outln!(
            "{}: {} -> {} ({:.2}x), {}",
            r.path,
            human_bytes(r.size),
            human_bytes(r.stored_bytes),
            r.ratio,
            if codecs.is_empty() {
                "empty".to_string()
            } else {
                codecs.join(", ")
            }
        );
        for c in &r.chunks {
            outln!(
                "  chunk @{} +{}: {} -> {} in {}",
                c.offset,
                c.len,
                c.codec,
                c.stored_bytes,
                c.object
            );
        }
    }
    let raw: u64 = reports.iter().map(|r| r.size).sum();
    let stored: u64 = reports.iter().map(|r| r.stored_bytes).sum();
    print_total(
        reports.len(),
        raw,
        stored,
        "; frames only, without the index and manifest",
    );
    Ok(ExitCode::SUCCESS)
}

/// The last line: files, raw and stored bytes, the saving, and `note` inside the brackets.
fn print_total(files: usize, raw: u64, stored: u64, note: &str) {
    let saved = if raw > 0 {
        100.0 * (1.0 - stored as f64 / raw as f64)
    } else {
        0.0
    };
    outln!(
        "total: {files} files, {} -> {} ({saved:.1}% saved{note})",
        human_bytes(raw),
        human_bytes(stored),
    );
}
