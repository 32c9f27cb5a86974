//! `strata catalog check [--against DST]`, `strata catalog rebuild --from DST` and
//! `strata catalog delete-job ID`.
//!
//! `check` proves the catalog can be trusted: SQLite's full integrity check, every row's
//! checksum, and optionally the record of the migration to DST against DST's manifest.
//! `rebuild` makes it trustworthy again from the self-describing destination: the
//! manifest (checked by its self-hash, falling back to its copy) becomes a completed job,
//! so `strata status` shows it and a re-run of `strata migrate SRC DST` has nothing to copy.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;
use strata_catalog::{
    Catalog, CatalogError, CatalogSpec, CheckReport, CompletedFile, CompletedJob, EngineCatalog,
    FileState, JobState, PlannedFile, SqliteCatalog,
};
use strata_codec::hash::from_hex;
use strata_codec::{DatasetManifest, MANIFEST_COPY_PATH, MANIFEST_PATH};
use strata_mover::verify::{load_manifest_checked, LoadedManifest};
use strata_mover::{verify_dataset_mode, MoverError, VerifyMode};
use strata_store::{Store, StoreUri};

use super::Context;
use crate::output;
use crate::units::human_bytes;

/// The source recorded for a rebuilt job when neither the manifest nor `--source` gives
/// one.
pub const UNKNOWN_SOURCE: &str = "(unknown source)";

/// Arguments of `strata catalog`.
#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// `check`, `rebuild` or `delete-job`.
    #[command(subcommand)]
    pub command: CatalogCommand,
}

/// The `strata catalog` subcommands.
#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Check the catalog: SQLite's integrity check, every row's checksum, and with
    /// --against DST the completed files recorded for DST against DST's manifest; exit 0
    /// only when all is clean, 1 when something is wrong.
    Check(CheckArgs),
    /// Rebuild the catalog's record of the migration to DST from DST's manifest (moving an
    /// unreadable catalog aside first), so that `strata status` shows it and a re-run of
    /// `strata migrate SRC DST` copies nothing already there.
    ///
    /// Every job recorded for DST is replaced. Run it while no other strata process uses
    /// the catalog: an unreadable catalog file is renamed.
    Rebuild(RebuildArgs),
    /// Delete a job with its plan and progress, damaged rows included; running the same
    /// `strata migrate` again then plans it afresh (files already at the destination are
    /// compared, and not copied again when identical).
    DeleteJob(DeleteJobArgs),
}

/// Arguments of `strata catalog delete-job`.
#[derive(Args, Debug)]
pub struct DeleteJobArgs {
    /// The job's id, as `strata status` or the error that named it shows it.
    pub id: i64,
}

/// Arguments of `strata catalog check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also check the jobs that migrated to DST against DST's manifest (sizes, hashes,
    /// root hash).
    #[arg(long, value_name = "DST")]
    pub against: Option<String>,
}

/// Arguments of `strata catalog rebuild`.
#[derive(Args, Debug)]
pub struct RebuildArgs {
    /// The destination of a finished `strata migrate` (its .strata/manifest.json is read).
    #[arg(long, value_name = "DST")]
    pub from: String,
    /// The source the dataset was migrated from (the manifest does not record it): links
    /// the rebuilt job to `strata migrate SRC DST`, so a re-run skips it at once.
    #[arg(long, value_name = "SRC")]
    pub source: Option<String>,
    /// Files checked at once at DST (presence and size).
    #[arg(long, short = 'j', default_value_t = 8)]
    pub jobs: usize,
}

/// Run the command.
pub async fn run(context: &Context, args: CatalogArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CatalogCommand::Check(args) => check(context, args).await,
        CatalogCommand::Rebuild(args) => rebuild(context, args).await,
        CatalogCommand::DeleteJob(args) => delete_job(context, args).await,
    }
}

async fn delete_job(context: &Context, args: DeleteJobArgs) -> anyhow::Result<ExitCode> {
    let spec = context.catalog_spec()?;
    if let CatalogSpec::Sqlite(path) = &spec {
        if !path.exists() {
            anyhow::bail!(
                "no catalog at {}: there is no job to delete; pass --catalog PATH to use another",
                path.display()
            );
        }
    }
    let catalog = EngineCatalog::open(&spec).await?;
    // Deleting reads no row, so it works on a job whose rows are damaged.
    let deleted = catalog.jobs().delete_job(args.id).await;
    catalog.close().await;
    deleted?;
    if context.json {
        output::print_json(&serde_json::json!({ "catalog": spec.shown(), "deleted": args.id }));
    } else {
        outln!(
            "deleted job {} from catalog {spec}; run its `strata migrate SRC DST` again to plan it afresh",
            args.id,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A disagreement between the catalog and a destination's manifest.
#[derive(Debug, Clone, Serialize)]
struct Mismatch {
    /// The job, when there is one.
    job: Option<i64>,
    /// The file, when the problem is one file's.
    path: Option<String>,
    /// `no-job`, `unreadable`, `not-in-manifest`, `size`, `hash`, `not-complete` or
    /// `root-hash`.
    problem: &'static str,
    /// Details for the operator.
    detail: String,
}

/// The outcome of `--against DST`.
#[derive(Debug, Clone, Serialize)]
struct CrossCheck {
    destination: String,
    /// Which copy of the manifest was used.
    manifest: &'static str,
    /// Problems with the manifest's copies (reported by `strata verify` too; they do not
    /// make the catalog untrustworthy).
    manifest_issues: Vec<String>,
    root_hash: String,
    jobs: Vec<i64>,
    files_checked: u64,
    mismatches: Vec<Mismatch>,
}

async fn check(context: &Context, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let spec = context.catalog_spec()?;
    if let CatalogSpec::Sqlite(path) = &spec {
        if !path.exists() {
            anyhow::bail!(
                "no catalog at {}: there is nothing to check (the first `strata migrate` creates it); pass --catalog PATH to check another",
                path.display()
            );
        }
    }
    let path = spec.shown();
    let catalog = match EngineCatalog::open(&spec).await {
        Ok(catalog) => catalog,
        Err(err @ CatalogError::Corrupt { .. }) => {
            if context.json {
                output::print_json(&serde_json::json!({
                    "catalog": path,
                    "ok": false,
                    "open_error": err.to_string(),
                }));
            } else {
                outln!("CORRUPT {path}: {err}");
                outln!("FAILED: catalog {path} cannot be read");
            }
            return Ok(ExitCode::from(1));
        }
        Err(err) => return Err(err.into()),
    };
    let report = catalog.check().await?;
    let against = match &args.against {
        Some(text) => Some(cross_check(context, &*catalog.jobs(), text).await?),
        None => None,
    };
    catalog.close().await;
    let mismatches = against.as_ref().map_or(0, |a| a.mismatches.len());
    let ok = report.is_clean() && mismatches == 0;
    if context.json {
        let mut value = serde_json::to_value(&report)?;
        value["ok"] = ok.into();
        value["against"] = serde_json::to_value(&against)?;
        output::print_json(&value);
    } else {
        print_check(&report, against.as_ref(), ok, args.against.as_deref());
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_check(report: &CheckReport, against: Option<&CrossCheck>, ok: bool, dst: Option<&str>) {
    let path = report.catalog.display();
    outln!(
        "catalog {path}: integrity {}; {} job(s), {} file(s), {} chunk(s) checked, {} corrupt",
        match (report.integrity.is_empty(), report.pages_checked) {
            (false, _) => "FAILED",
            (true, true) => "ok",
            // PostgreSQL: the server checks its pages (data checksums), not strata.
            (true, false) => "of the rows ok (pages: the server's own checks)",
        },
        report.jobs_checked,
        report.files_checked,
        report.chunks_checked,
        report.corrupt_rows_total
    );
    for line in &report.integrity {
        outln!("DAMAGED {path}: {line}");
    }
    for row in &report.corrupt_rows {
        outln!("CORRUPT {} row {}: {}", row.table, row.row, row.detail);
    }
    let unlisted = report.corrupt_rows_total - report.corrupt_rows.len() as u64;
    if unlisted > 0 {
        outln!("... and {unlisted} more corrupt row(s)");
    }
    if let Some(against) = against {
        outln!(
            "against {} (manifest {}, root {}): job(s) {:?}, {} completed file(s) compared",
            against.destination,
            against.manifest,
            against.root_hash,
            against.jobs,
            against.files_checked
        );
        for issue in &against.manifest_issues {
            outln!("note: {issue}");
        }
        for m in &against.mismatches {
            let job = m.job.map(|j| format!("job {j} ")).unwrap_or_default();
            let file = m
                .path
                .as_deref()
                .map(|p| format!("{p}: "))
                .unwrap_or_default();
            outln!("MISMATCH {job}{file}{}: {}", m.problem, m.detail);
        }
    }
    if ok {
        outln!("OK: catalog {path} is intact");
    } else {
        outln!(
            "FAILED: catalog {path} cannot be trusted; rebuild the record of the migration with `strata catalog rebuild --from {}` (the job's destination), or move the catalog aside and run `strata migrate` again (files already at the destination are not copied again)",
            dst.unwrap_or("DST")
        );
    }
}

/// The manifest of `store`, checked (self-hash, totals, root hash), from its copy when the
/// primary is missing or damaged; a clear error when there is none.
/// The path of the manifest copy that was read.
fn manifest_used(loaded: &LoadedManifest) -> &'static str {
    if loaded.from_copy {
        MANIFEST_COPY_PATH
    } else {
        MANIFEST_PATH
    }
}

/// What was wrong with either manifest copy, one line each.
fn manifest_issues(loaded: &LoadedManifest) -> Vec<String> {
    loaded
        .issues
        .iter()
        .map(|i| format!("{}: {}", i.object, i.detail))
        .collect()
}

async fn manifest_of(store: &Store, what: &str) -> anyhow::Result<LoadedManifest> {
    let destination = store.display();
    match load_manifest_checked(store).await {
        Ok(loaded) => Ok(loaded),
        Err(MoverError::Manifest { location, reason }) if reason.starts_with("not found") => {
            anyhow::bail!(
                "no Strata manifest at {location} (nor its copy {MANIFEST_COPY_PATH}): {destination} is not the destination of a finished `strata migrate`, so there is nothing to {what} from; check the path (and the --s3-* options), or run the migration to the end"
            )
        }
        Err(err) => Err(anyhow::Error::new(err).context(format!(
            "cannot {what} from {destination}: neither {MANIFEST_PATH} nor its copy can be trusted"
        ))),
    }
}

async fn cross_check(
    context: &Context,
    catalog: &dyn Catalog,
    text: &str,
) -> anyhow::Result<CrossCheck> {
    let store = context.destination_store(text).await?;
    let destination = store.display();
    let loaded = manifest_of(&store, "check the catalog against").await?;
    let manifest = &loaded.manifest;
    let mut out = CrossCheck {
        destination: destination.clone(),
        manifest: manifest_used(&loaded),
        manifest_issues: manifest_issues(&loaded),
        root_hash: manifest.root_hash.clone(),
        jobs: Vec::new(),
        files_checked: 0,
        mismatches: Vec::new(),
    };
    let jobs = match catalog.list_jobs().await {
        Ok(jobs) => jobs,
        Err(err) => {
            out.mismatches.push(Mismatch {
                job: None,
                path: None,
                problem: "unreadable",
                detail: format!("the jobs cannot be read: {err}"),
            });
            return Ok(out);
        }
    };
    let by_path: HashMap<&str, &strata_codec::ManifestFile> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    for job in jobs.iter().filter(|j| j.destination == destination) {
        out.jobs.push(job.id);
        let files = match catalog.load_files(job.id).await {
            Ok(files) => files,
            Err(err) => {
                out.mismatches.push(Mismatch {
                    job: Some(job.id),
                    path: None,
                    problem: "unreadable",
                    detail: err.to_string(),
                });
                continue;
            }
        };
        let mut complete = HashSet::new();
        for file in files
            .iter()
            .filter(|f| matches!(f.state, FileState::Done | FileState::Skipped))
        {
            out.files_checked += 1;
            let path = file.planned.path.as_str();
            complete.insert(path);
            let mismatch = |problem, detail| Mismatch {
                job: Some(job.id),
                path: Some(path.to_string()),
                problem,
                detail,
            };
            let Some(entry) = by_path.get(path) else {
                out.mismatches.push(mismatch(
                    "not-in-manifest",
                    "recorded as complete but not in the manifest".into(),
                ));
                continue;
            };
            if entry.size != file.planned.size {
                out.mismatches.push(mismatch(
                    "size",
                    format!(
                        "catalog says {} bytes, manifest says {}",
                        file.planned.size, entry.size
                    ),
                ));
            }
            match file.hash {
                None => out.mismatches.push(mismatch(
                    "hash",
                    "recorded as complete without a hash".into(),
                )),
                Some(hash) if from_hex(&entry.blake3) != Some(hash) => {
                    out.mismatches.push(mismatch(
                        "hash",
                        format!(
                            "catalog says blake3 {}, manifest says {}",
                            strata_codec::hash::to_hex(&hash),
                            entry.blake3
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        if job.state == JobState::Done {
            let missing: Vec<&str> = manifest
                .files
                .iter()
                .map(|f| f.path.as_str())
                .filter(|p| !complete.contains(p))
                .collect();
            if let Some(first) = missing.first() {
                out.mismatches.push(Mismatch {
                    job: Some(job.id),
                    path: Some(first.to_string()),
                    problem: "not-complete",
                    detail: format!(
                        "the job is done but {} file(s) of the manifest are not recorded as complete",
                        missing.len()
                    ),
                });
            }
            if job.root_hash.as_deref() != Some(manifest.root_hash.as_str()) {
                out.mismatches.push(Mismatch {
                    job: Some(job.id),
                    path: None,
                    problem: "root-hash",
                    detail: format!(
                        "catalog says root {}, manifest says {}",
                        job.root_hash.as_deref().unwrap_or("(none)"),
                        manifest.root_hash
                    ),
                });
            }
        }
    }
    if out.jobs.is_empty() {
        out.mismatches.push(Mismatch {
            job: None,
            path: None,
            problem: "no-job",
            detail: format!(
                "the catalog has no job migrating to {destination}; rebuild it with `strata catalog rebuild --from {text}`"
            ),
        });
    }
    Ok(out)
}

/// What `strata catalog rebuild` did.
#[derive(Debug, Serialize)]
struct RebuildReport {
    catalog: PathBuf,
    /// Where the unreadable catalog (and its -wal, -shm) went.
    moved_aside: Vec<PathBuf>,
    /// Why it was moved.
    moved_aside_because: Option<String>,
    destination: String,
    source: String,
    /// False when the job got the placeholder source.
    source_known: bool,
    job: i64,
    replaced: Vec<strata_catalog::ReplacedJob>,
    state: JobState,
    layout: String,
    chunk_size: u64,
    files: u64,
    bytes: u64,
    /// Files of the manifest missing or of another size at DST: recorded as pending.
    files_pending: Vec<String>,
    root_hash: String,
    /// Which copy of the manifest was used.
    manifest: &'static str,
    manifest_issues: Vec<String>,
    /// Rows of other jobs that still fail their checksum.
    corrupt_rows_left: u64,
}

async fn rebuild(context: &Context, args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let spec = context.catalog_spec()?;
    // The source is only named, never read: open it without I/O for its display URI.
    let source = match &args.source {
        Some(text) => Some(
            Store::open(&StoreUri::parse(text)?, &context.s3)
                .await
                .with_context(|| format!("cannot open {text}"))?
                .display(),
        ),
        None => None,
    };
    let store = context.destination_store(&args.from).await?;
    let destination = store.display();
    store
        .check_reachable()
        .await
        .with_context(|| format!("cannot rebuild the catalog from {destination}"))?;
    let loaded = manifest_of(&store, "rebuild the catalog").await?;
    let manifest = &loaded.manifest;
    // Presence and sizes at DST (no byte read): a file that is not there is recorded as
    // pending, so a re-run copies it instead of trusting the manifest blindly.
    let fast = verify_dataset_mode(&store, args.jobs.max(1), VerifyMode::Fast, None)
        .await
        .with_context(|| format!("cannot check the files at {destination}"))?;
    let absent: HashSet<&str> = fast.damaged.iter().map(|d| d.path.as_str()).collect();

    if u32::try_from(manifest.files.len()).is_err() {
        anyhow::bail!(
            "the manifest of {destination} lists {} files, more than a catalog job can hold ({}); nothing was changed",
            manifest.files.len(),
            u32::MAX
        );
    }
    let (catalog, moved_aside, moved_aside_because) = match &spec {
        CatalogSpec::Sqlite(path) => open_or_replace(path).await?,
        // A database is never moved aside: a PostgreSQL catalog that cannot be opened is
        // the operator's to repair or recreate; the import replaces this destination's
        // jobs in it as in a file.
        CatalogSpec::Postgres(_) => (EngineCatalog::open(&spec).await?, Vec::new(), None),
    };
    let layout = manifest.layout.clone().unwrap_or_else(|| "plain".into());
    let job = completed_job(
        manifest,
        source.clone().unwrap_or_else(|| UNKNOWN_SOURCE.into()),
        destination.clone(),
        &layout,
        &absent,
    );
    let imported = catalog.import_completed_job(&job).await?;
    let left = catalog.check().await?;
    let state = catalog
        .jobs()
        .job(imported.job)
        .await?
        .map_or(JobState::Failed, |j| j.state);
    catalog.close().await;

    let report = RebuildReport {
        catalog: PathBuf::from(spec.shown()),
        moved_aside,
        moved_aside_because,
        destination,
        source_known: source.is_some(),
        source: job.source.clone(),
        job: imported.job,
        replaced: imported.replaced,
        state,
        layout,
        chunk_size: manifest.chunk_size,
        files: manifest.file_count,
        bytes: manifest.total_bytes,
        files_pending: job
            .files
            .iter()
            .filter(|f| f.hash.is_none())
            .map(|f| f.planned.path.clone())
            .collect(),
        root_hash: manifest.root_hash.clone(),
        manifest: manifest_used(&loaded),
        manifest_issues: manifest_issues(&loaded),
        corrupt_rows_left: left.corrupt_rows_total,
    };
    if context.json {
        output::print_json(&report);
    } else {
        print_rebuild(&report, &args);
    }
    Ok(
        if report.files_pending.is_empty() && report.corrupt_rows_left == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

fn print_rebuild(report: &RebuildReport, args: &RebuildArgs) {
    if let (Some(first), Some(why)) = (report.moved_aside.first(), &report.moved_aside_because) {
        outln!(
            "moved the unreadable catalog aside: {} -> {} ({} file(s) with its -wal/-shm) because {why}; created a new catalog at {}",
            report.catalog.display(),
            first.display(),
            report.moved_aside.len(),
            report.catalog.display()
        );
    }
    for issue in &report.manifest_issues {
        outln!("note: {issue}");
    }
    outln!(
        "read the manifest {} of {} (self-hash and root hash checked)",
        report.manifest,
        report.destination
    );
    for old in &report.replaced {
        outln!(
            "replaced job {} ({} -> {})",
            old.id,
            old.source,
            report.destination
        );
    }
    outln!(
        "rebuilt job {} {}: {} -> {}: {} files, {} ({} layout, chunk size {}); root {}",
        report.job,
        report.state,
        report.source,
        report.destination,
        report.files,
        human_bytes(report.bytes),
        report.layout,
        human_bytes(report.chunk_size),
        report.root_hash
    );
    if report.source_known && report.files_pending.is_empty() {
        outln!(
            "a re-run of `strata migrate {} {}` with the manifest's chunk size (--chunk-size {}) finds every file done",
            args.source.as_deref().unwrap_or("SRC"),
            args.from,
            size_flag(report.chunk_size)
        );
    }
    if !report.source_known {
        outln!(
            "note: the manifest does not record the source, so the job's source is {UNKNOWN_SOURCE:?}: `strata status` shows it, but `strata migrate SRC {dst}` starts a new job that compares the files already at the destination (reading them, copying none that is identical); run `strata catalog rebuild --from {dst} --source SRC` to link the job to its source",
            dst = args.from
        );
    }
    if !report.files_pending.is_empty() {
        outln!(
            "warning: {} file(s) of the manifest are missing or of another size at {} (first: {}); they are recorded as pending: `strata migrate SRC {}` copies them again",
            report.files_pending.len(),
            report.destination,
            report.files_pending[0],
            args.from
        );
    }
    if report.corrupt_rows_left > 0 {
        outln!(
            "warning: {} row(s) of other jobs in the catalog still fail their checksum; `strata catalog check` lists them",
            report.corrupt_rows_left
        );
    }
}

/// A chunk size as `--chunk-size` takes it (`64K`, `4M`).
fn size_flag(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

/// The job the manifest describes: every file complete with its hash and chunk values,
/// except those in `absent` (pending).
fn completed_job(
    manifest: &DatasetManifest,
    source: String,
    destination: String,
    layout: &str,
    absent: &HashSet<&str>,
) -> CompletedJob {
    // The manifest is sorted by path bytes, like a source listing: its order is the plan's.
    let files: Vec<CompletedFile> = manifest
        .files
        .iter()
        .enumerate()
        .map(|(index, file)| {
            let hash = from_hex(&file.blake3).filter(|_| !absent.contains(file.path.as_str()));
            CompletedFile {
                planned: PlannedFile {
                    // At most u32::MAX files: checked by the caller.
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    path: file.path.clone(),
                    size: file.size,
                    mtime_ns: file.mtime_ns,
                    mode: file.mode,
                },
                hash,
                chunks: file.chunks.iter().filter_map(|c| from_hex(c)).collect(),
            }
        })
        .collect();
    let pending = files.iter().filter(|f| f.hash.is_none()).count();
    CompletedJob {
        options_json: serde_json::json!({
            "rebuilt_from": destination,
            "layout": layout,
            "chunk_size": manifest.chunk_size,
        })
        .to_string(),
        incomplete: (pending > 0).then(|| {
            format!(
                "rebuilt from the manifest of {destination}: {pending} file(s) missing or of another size there; run `strata migrate SRC DST` to copy them again"
            )
        }),
        source,
        destination,
        chunk_size: manifest.chunk_size,
        files,
        root_hash: manifest.root_hash.clone(),
    }
}

/// Opens the catalog at `path`; when it cannot be read (not a database, damaged pages),
/// closes it, moves it aside with its -wal and -shm files and creates a fresh one.
/// Returns the catalog, the paths moved to, and why.
async fn open_or_replace(
    path: &Path,
) -> anyhow::Result<(EngineCatalog, Vec<PathBuf>, Option<String>)> {
    let reason = match SqliteCatalog::open(path).await {
        Ok(catalog) => match catalog.check().await {
            Ok(report) if report.integrity.is_empty() => {
                return Ok((EngineCatalog::Sqlite(catalog), Vec::new(), None))
            }
            Ok(report) => {
                catalog.close().await;
                format!(
                    "SQLite's integrity check failed: {}",
                    report.integrity.join("; ")
                )
            }
            Err(err) => {
                catalog.close().await;
                format!("it cannot be checked: {err}")
            }
        },
        Err(err @ CatalogError::Corrupt { .. }) => format!("it cannot be opened: {err}"),
        Err(err) => return Err(err.into()),
    };
    let moved = move_aside(path)?;
    let catalog = SqliteCatalog::open(path).await?;
    Ok((EngineCatalog::Sqlite(catalog), moved, Some(reason)))
}

/// Renames `path` to `path.corrupt-<UTC time>` and its `-wal` and `-shm` files alongside
/// (`path.corrupt-<time>-wal`, so SQLite finds them if the copy is opened for forensics).
fn move_aside(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let with = |base: &Path, suffix: &str| {
        let mut name = OsString::from(base.as_os_str());
        name.push(suffix);
        PathBuf::from(name)
    };
    let stamp = utc_stamp(SystemTime::now());
    let mut aside = with(path, &format!(".corrupt-{stamp}"));
    let mut attempt = 1;
    while aside.exists() || with(&aside, "-wal").exists() {
        attempt += 1;
        aside = with(path, &format!(".corrupt-{stamp}-{attempt}"));
    }
    let mut moved = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let from = with(path, suffix);
        if !from.exists() {
            continue;
        }
        let to = with(&aside, suffix);
        std::fs::rename(&from, &to).with_context(|| {
            format!(
                "cannot move the unreadable catalog file {} aside to {}; move it yourself, or pass --catalog PATH to rebuild into another file",
                from.display(),
                to.display()
            )
        })?;
        moved.push(to);
    }
    Ok(moved)
}

/// `YYYYMMDDTHHMMSSZ` for `time` (UTC).
fn utc_stamp(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stamps_are_utc_calendar_times() {
        let at = |secs| utc_stamp(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_700_000_000), "20231114T221320Z");
        assert_eq!(at(4_102_444_799), "20991231T235959Z");
    }

    #[test]
    fn chunk_sizes_print_as_flags() {
        assert_eq!(size_flag(64 << 10), "64K");
        assert_eq!(size_flag(4 << 20), "4M");
        assert_eq!(size_flag(1 << 30), "1G");
        assert_eq!(size_flag(1000), "1000");
    }
}
