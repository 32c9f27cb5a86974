//! # strata (the command-line tool)
//!
//! Parses the command line (clap), opens the catalog and the stores, runs the command from
//! the crates below, and presents the result: a progress bar on a terminal, text or
//! `--json` at the end, and an exit status scripts can rely on:
//!
//! - `0`: everything was done and verified;
//! - `1`: the command ran but something is not right (files failed, damage found);
//! - `2`: the command could not run (bad input, unreachable store, catalog problem).

#[macro_use]
mod output;
mod commands;
mod live_status;
mod redact;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Strata keeps data in the right place and moves it there safely.
#[derive(Parser, Debug)]
#[command(name = "strata", version, about, long_about = None)]
struct Cli {
    /// Catalog: an SQLite file, or a PostgreSQL URL postgres://USER[:PASSWORD]@HOST[:PORT]/DB
    /// shared by many nodes (default: $STRATA_CATALOG, else
    /// ~/.local/share/strata/catalog.db).
    // The value is never shown in --help: a URL may hold a password.
    #[arg(long, global = true, env = "STRATA_CATALOG", hide_env_values = true)]
    catalog: Option<PathBuf>,
    /// Print a machine-readable JSON result instead of text and progress bars.
    #[arg(long, global = true)]
    json: bool,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log line format on standard error: `text` for people, `json` (one object a line,
    /// with fields such as job, key and request_id) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    s3: S3Args,
    #[command(subcommand)]
    command: Command,
}

/// S3 connection settings; credentials come only from the standard AWS environment
/// variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
#[derive(Args, Debug, Clone)]
struct S3Args {
    /// S3 endpoint URL (default: $AWS_ENDPOINT_URL, else AWS).
    #[arg(long, global = true)]
    s3_endpoint: Option<String>,
    /// S3 region (default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long, global = true)]
    s3_region: Option<String>,
    /// Use path-style S3 addressing (the default when an endpoint is given).
    #[arg(long, global = true)]
    s3_path_style: Option<bool>,
}

/// How log lines are written (`--log-format`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, the event's fields
    /// (`message`, `job`, `key`, ...) and the current `span` (`request_id`, ...).
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Copy a dataset from SRC to DST, verify every byte, write a manifest; resumable.
    Migrate(commands::migrate::MigrateArgs),
    /// Re-read a migrated dataset and check every file against its manifest.
    Verify(commands::verify::VerifyArgs),
    /// Rebuild damaged or missing data from parity or from a copy (--from); exit 1 when
    /// something could not be repaired.
    Repair(commands::repair::RepairArgs),
    /// List migration jobs and their progress from the catalog, and the workers of
    /// distributed runs with the tasks they hold.
    Status(commands::status::StatusArgs),
    /// Run the chunk tasks `strata migrate --queue` publishes (a worker of distributed
    /// migrations; runs until stopped, or --idle-exit).
    Worker(commands::worker::WorkerArgs),
    /// Launch workers as a SLURM array job: `strata slurm submit --workers N -- <migrate
    /// arguments>` plans the migration and submits the workers (--dry-run: the script).
    Slurm(commands::batch::SlurmArgs),
    /// Print a PBS Pro array job script of workers: `strata pbs script --workers N --
    /// <migrate arguments>` (text only: not tested against a PBS server).
    Pbs(commands::batch::PbsArgs),
    /// Check the catalog (integrity, row checksums, --against DST), or rebuild its record
    /// of a migration from the destination's manifest (rebuild --from DST).
    Catalog(commands::catalog::CatalogArgs),
    /// Show each file's format, entropy, chosen codec and filter, and the ratio it gets.
    Inspect(commands::inspect::InspectArgs),
    /// Run the tiering service: objects on tiers, access tracking, reactive and periodic
    /// moves (copy, verify, switch, retire), the HTTP API.
    Serve(commands::serve::ServeArgs),
    /// Store a file as an object (service).
    Put(commands::objects::PutArgs),
    /// Read an object to standard output or --output FILE, verified (service).
    Get(commands::objects::GetArgs),
    /// List objects by prefix (service).
    Ls(commands::objects::ListArgs),
    /// Delete objects (service).
    Rm(commands::objects::RmArgs),
    /// Report simulated accesses to an object (service).
    Access(commands::objects::AccessArgs),
    /// Objects with their tier, class and recent accesses (service).
    Objects(commands::objects::ListArgs),
    /// Tiers with their usage and cost (service).
    Tiers(commands::objects::ServiceArgs),
    /// Move jobs between tiers; cancel or retry one (service). Formerly `migrations`, a name
    /// too close to `migrate` (datasets), still accepted.
    #[command(alias = "migrations")]
    Moves(commands::objects::MovesArgs),
    /// What a planning pass would do, or run one with --run (service).
    Plan(commands::objects::PlanArgs),
    /// The service's Prometheus metrics (service).
    Metrics(commands::objects::ServiceArgs),
    /// Why an object is on its tier (service).
    Explain(commands::objects::ExplainArgs),
    /// Move an object to a tier by hand; refused when its [[policy]] forbids the tier
    /// (service).
    Move(commands::policy::MoveArgs),
    /// The [[policy]] blocks in force, each with the tiers it allows (service).
    Policies(commands::objects::ServiceArgs),
    /// Read every replica or fragment of a tier's objects (every tier without TIER), repair
    /// what can be repaired, report what cannot (service).
    Scrub(commands::scrub::ScrubArgs),
    /// Encryption keys of the service's tiers: `strata key rotate [--tier T]` re-encrypts
    /// objects under an earlier key with the current one, in the background (service, admin).
    Key(commands::key::KeyArgs),
    /// Replay an access trace through tiering policies and compare their cost, latency
    /// misses and next-window predictions.
    Eval(commands::eval::EvalArgs),
    /// Learn a forecast model from the service's access history (or --trace FILE) and store
    /// it as the next version in the data dir, where the service picks it up.
    Train(commands::forecast::TrainArgs),
    /// An object's forecast for the next window: reads, class, confidence (service).
    Predict(commands::forecast::PredictArgs),
    /// The service's API tokens: create (printed once), list, revoke; works on the
    /// service's catalog directly (--config, --data-dir or a PostgreSQL --catalog).
    Token(commands::token::TokenArgs),
    /// Inject faults into a tier's stores while the service runs (latency, 429, 503,
    /// timeouts, corruption), list them, clear them (service, admin).
    Chaos(commands::chaos::ChaosArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard
    /// output, e.g. `strata completions bash > ~/.local/share/bash-completion/completions/strata`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to standard output, e.g. `strata man | man -l -`.
    Man,
}

/// Arguments of `strata completions`.
#[derive(Args, Debug)]
struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

/// Commands that only talk to a running service (or print something): the catalog and S3
/// flags, global for the commands that open stores or the catalog, do nothing here.
const SERVICE_ONLY: &[&str] = &[
    "put",
    "get",
    "ls",
    "rm",
    "access",
    "objects",
    "tiers",
    "moves",
    "move",
    "policies",
    "plan",
    "metrics",
    "explain",
    "predict",
    "scrub",
    "key",
    "chaos",
    "completions",
    "man",
];

/// Global flags that have no effect on [`SERVICE_ONLY`] commands.
const STORE_AND_CATALOG_FLAGS: &[&str] = &["catalog", "s3_endpoint", "s3_region", "s3_path_style"];

/// The CLI definition, with the flags a command ignores hidden from its help (they are
/// still accepted, so scripts that pass them everywhere keep working).
fn cli_command() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    // A subcommand that has its own (hidden) copy of a global flag does not get the global
    // one: clap propagates a global flag only where its id is not defined yet.
    let hidden: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| STORE_AND_CATALOG_FLAGS.contains(&arg.get_id().as_str()))
        .map(|arg| arg.clone().hide(true))
        .collect();
    for name in SERVICE_ONLY {
        command = command.mut_subcommand(*name, |sub| sub.args(hidden.clone()));
    }
    command
}

fn main() -> ExitCode {
    use clap::FromArgMatches;
    let cli = Cli::from_arg_matches(&cli_command().get_matches()).unwrap_or_else(|e| e.exit());
    // A worker's log is its output: what it took, finished and retried shows by default.
    let quiet = match cli.command {
        Command::Worker(_) => "warn,strata_mover::distributed=info,strata::commands::worker=info",
        _ => "warn",
    };
    init_logging(cli.verbose, quiet, cli.log_format);
    strata_store::allocator::tune_for_spans();
    // Blocking I/O threads are bounded: each is a file read or write in flight, and each
    // idle one keeps memory in its allocator arena.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let context = commands::Context {
        catalog_path: cli.catalog.clone(),
        json: cli.json,
        s3: commands::s3_options(&cli.s3.s3_endpoint, &cli.s3.s3_region, cli.s3.s3_path_style),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Migrate(args) => commands::migrate::run(&context, args).await,
            Command::Verify(args) => commands::verify::run(&context, args).await,
            Command::Repair(args) => commands::repair::run(&context, args).await,
            Command::Status(args) => commands::status::run(&context, args).await,
            Command::Worker(args) => commands::worker::run(&context, args).await,
            Command::Slurm(args) => commands::batch::run_slurm(&context, args).await,
            Command::Pbs(args) => commands::batch::run_pbs(args),
            Command::Catalog(args) => commands::catalog::run(&context, args).await,
            Command::Inspect(args) => commands::inspect::run(&context, args).await,
            Command::Serve(args) => commands::serve::run(&context, args).await,
            Command::Put(args) => commands::objects::put(&context, args).await,
            Command::Get(args) => commands::objects::get(&context, args).await,
            Command::Ls(args) => commands::objects::ls(&context, args).await,
            Command::Rm(args) => commands::objects::rm(&context, args).await,
            Command::Access(args) => commands::objects::access(&context, args).await,
            Command::Objects(args) => commands::objects::objects(&context, args).await,
            Command::Tiers(args) => commands::objects::tiers(&context, args).await,
            Command::Moves(args) => commands::objects::moves(&context, args).await,
            Command::Plan(args) => commands::objects::plan(&context, args).await,
            Command::Metrics(args) => commands::objects::metrics(&context, args).await,
            Command::Explain(args) => commands::objects::explain(&context, args).await,
            Command::Move(args) => commands::policy::request_move(&context, args).await,
            Command::Policies(args) => commands::policy::list(&context, args).await,
            Command::Scrub(args) => commands::scrub::run(&context, args).await,
            Command::Key(args) => commands::key::run(&context, args).await,
            Command::Eval(args) => commands::eval::run(&context, args).await,
            Command::Train(args) => commands::forecast::train(&context, args).await,
            Command::Predict(args) => commands::forecast::predict(&context, args).await,
            Command::Token(args) => commands::token::run(&context, args).await,
            Command::Chaos(args) => commands::chaos::run(&context, args).await,
            Command::Completions(args) => completions(args.shell),
            Command::Man => man_page(),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            // Scrubbed like the logs: an error may quote what a dependency said.
            let message = redact::scrub(&format!("{error:#}")).into_owned();
            if cli.json {
                outln!("{}", serde_json::json!({ "error": message }));
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(2)
        }
    }
}

/// `strata completions SHELL`: the completion script, from the same definition as the
/// parser (so it never lags behind a new flag).
fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut command = cli_command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "strata", &mut script);
    write_stdout(&script)
}

/// `strata man`: the manual page (roff), from the same definition as the parser.
fn man_page() -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cli_command())
        .render(&mut page)
        .map_err(|err| anyhow::anyhow!("cannot render the manual page: {err}"))?;
    write_stdout(&page)
}

/// Writes `bytes` to standard output; a reader that went away is not a failure.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    commands::objects::printed(out.write_all(bytes).and_then(|()| out.flush()))
}

/// Logs to standard error: `quiet` by default (`warn`; a worker's task log at `info`), `-v` info (debug for Strata), `-vv` debug,
/// `-vvv` trace, or `STRATA_LOG` (an `EnvFilter`). Secrets are kept out at every level
/// (see [`redact`]). `format` chooses text or JSON lines.
fn init_logging(verbose: u8, quiet: &str, format: LogFormat) {
    // rskafka logs every failed connection attempt to a broker that is down (several a
    // second); the event streams' supervisor says it once per retry, with its backoff.
    // s3s logs every refused S3 request (a 404, a bad signature) at `error`; the front
    // door logs the service's own failures itself (strata_server::s3::errors).
    let default = match verbose {
        0 => format!("{quiet},rskafka=error,s3s=off"),
        1 => "info,strata=debug,rskafka=error,s3s=off".to_string(),
        2 => "debug".to_string(),
        _ => "trace".to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(redact::quiet_credential_targets(filter))
        .with_writer(redact::ScrubbingStderr);
    match format {
        // Colours only on a terminal: logs redirected to files stay plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Event fields at the top level (`job`, `key`), the innermost span's fields (the
        // request's `request_id`) under `span`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
