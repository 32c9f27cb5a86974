//! `strata train` and `strata predict`: the service's forecast of next-window reads.
//!
//! `train` learns one model from the access history the service recorded (reading the
//! catalog of the configuration's data dir directly: the service need not run) or from a
//! recorded trace (`--trace`), and stores it as the next version in `<data_dir>/models`,
//! where the service picks it up. `predict KEY` asks the running service
//! (`GET /v1/predictions/{key}`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use clap::Args;
use serde_json::Value;
use strata_catalog::{EngineCatalog, PostgresCatalog, PostgresUrl, SqliteCatalog};
use strata_heat::trace::TraceOptions;
use strata_heat::units::{human_bytes, human_duration_ms};
use strata_heat::TieringConfig;
use strata_server::forecast::store::{self, ModelInfo, SavedModel};
use strata_server::forecast::train;

use super::eval::{parse_format, parse_window};
use super::objects::{encode, Client, ServerArgs};
use super::serve::service_config;
use super::Context;
use crate::output;

/// Arguments of `strata train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The service's strata.toml: its data dir holds the catalog learned from and the
    /// models; its [forecast] window is the default window.
    #[arg(long, env = "STRATA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The service's data dir (default: the config's [server] data_dir, else ./strata-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Learn from this access trace instead of the service's history (any format `strata
    /// eval` reads).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// The trace's format (default: detected from its name).
    #[arg(long, requires = "trace")]
    format: Option<String>,
    /// Multiplies the trace's clock.
    #[arg(long, default_value_t = 1.0, requires = "trace")]
    time_scale: f64,
    /// The forecast window, like 1h (default: the config's [forecast] window, 1h). The
    /// service uses a model only with a window of at least 1h.
    #[arg(long, value_name = "DURATION")]
    window: Option<String>,
}

/// `strata train`.
pub async fn train(context: &Context, args: TrainArgs) -> anyhow::Result<ExitCode> {
    let config = service_config(args.config.as_deref(), args.data_dir.as_deref())?;
    let window_ms = match &args.window {
        Some(text) => parse_window(text)?,
        None => config.forecast.window_ms(),
    };
    let trained = match &args.trace {
        Some(path) => {
            let options = TraceOptions {
                format: parse_format(args.format.as_deref())?,
                time_scale: args.time_scale,
            };
            let path = path.clone();
            tokio::task::spawn_blocking(move || train::from_trace(&path, &options, window_ms))
                .await?
        }
        None => train_on_history(&config, context.shared_catalog()?, window_ms).await?,
    }
    .map_err(|reason| anyhow!(reason))?;
    let dir = store::models_dir(&config.server.data_dir);
    let mut info = trained.info;
    let saved = store::save(&dir, &trained.model, &mut info).map_err(|reason| anyhow!(reason))?;
    if context.json {
        output::print_json(&serde_json::json!({
            "version": saved.version,
            "file": saved.path,
            "size_bytes": saved.size_bytes,
            "metrics": info,
        }));
    } else {
        print_trained(&saved, &info);
    }
    Ok(ExitCode::SUCCESS)
}

/// Trains on the history in the service's catalog: the PostgreSQL one `--catalog` names,
/// else the file in the config's data dir.
async fn train_on_history(
    config: &TieringConfig,
    shared: Option<PostgresUrl>,
    window_ms: i64,
) -> anyhow::Result<Result<train::Trained, String>> {
    if window_ms < strata_heat::units::HOUR_MS {
        anyhow::bail!(
            "--window {}: the access history is kept per hour; use 1h or longer (or --trace \
             FILE for a shorter window)",
            human_duration_ms(window_ms)
        );
    }
    let catalog = match shared {
        Some(url) => EngineCatalog::Postgres(PostgresCatalog::open(&url).await?),
        None => {
            let path = config
                .server
                .data_dir
                .join(strata_server::tiers::DEFAULT_CATALOG);
            check_catalog(&path)?;
            EngineCatalog::Sqlite(SqliteCatalog::open(&path).await?)
        }
    };
    let path = catalog.path().to_path_buf();
    let history = catalog.tiering();
    let now = now_ms();
    let since = now.saturating_sub(config.forecast.history_ms());
    let read = async {
        let buckets = history.access_history(since, None).await?;
        let sizes: HashMap<String, u64> = history
            .placed_objects()
            .await?
            .into_iter()
            .map(|placed| (placed.object.key, placed.object.size))
            .collect();
        anyhow::Ok((buckets, sizes))
    }
    .await;
    catalog.close().await;
    let (buckets, sizes) = read?;
    let source = format!("access history of {}", path.display());
    Ok(tokio::task::spawn_blocking(move || {
        train::from_history(&buckets, &sizes, window_ms, now, source)
    })
    .await?)
}

fn check_catalog(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        anyhow::bail!(
            "no service catalog at {}: the service has not run with this data dir, so there \
             is no access history; give the service's --config (or --data-dir), or train on a \
             trace with --trace FILE",
            path.display()
        );
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn print_trained(saved: &SavedModel, info: &ModelInfo) {
    outln!(
        "model {} trained on the {} in {:.1} s",
        saved.version,
        info.source,
        info.training_seconds
    );
    outln!(
        "  {} rows ({} objects, {} windows of {}); read in the next window: {:.1}%",
        info.rows,
        info.objects,
        info.windows,
        human_duration_ms(info.window_ms),
        info.positive_share * 100.0
    );
    outln!(
        "  rmse {:.3}, F1 {:.3}, precision {:.3}, negative predictive value {:.3} (threshold \
         {:.3} reads)",
        info.rmse,
        info.f1,
        info.precision,
        info.negative_predictive_value,
        info.threshold
    );
    outln!(
        "  saved {} ({})",
        saved.path.display(),
        human_bytes(saved.size_bytes)
    );
}

/// Arguments of `strata predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The object key.
    key: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata predict KEY`: the object's forecast for the next window (service).
pub async fn predict(context: &Context, args: PredictArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    strata_server::objects::check_key(&args.key).map_err(|err| anyhow!("{}", err.message))?;
    let view = client
        .get_json(&format!("/v1/predictions/{}", encode(&args.key)))
        .await
        .with_context(|| format!("no forecast for {:?}", args.key))?;
    if context.json {
        output::print_json(&view);
        return Ok(ExitCode::SUCCESS);
    }
    print_prediction(&args.key, &view);
    Ok(ExitCode::SUCCESS)
}

fn print_prediction(key: &str, view: &Value) {
    let number = |v: &Value| v.as_f64().unwrap_or(0.0);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    outln!(
        "{key}: {:.2} reads forecast in the next {} window{}; class {}, confidence {:.0}% ({}), \
         model {}",
        number(&view["predicted_reads"]),
        human_duration_ms(view["window_ms"].as_i64().unwrap_or(0)),
        if view["idle"] == true {
            " (idle for more than 48 windows: assumed unread)"
        } else {
            ""
        },
        text(&view["class"]),
        number(&view["confidence"]) * 100.0,
        text(&view["confidence_kind"]).replace('_', " "),
        view["model_version"]
    );
    let placement = &view["placement"];
    outln!(
        "  cheapest placement: {} (now on {}; saving ${:.3e} a window)",
        text(&placement["chosen_tier"]),
        text(&placement["current_tier"]),
        number(&placement["saving_per_window"])
    );
    for driver in view["drivers"].as_array().into_iter().flatten() {
        outln!(
            "  driven by {} = {} ({:+.2} reads)",
            text(&driver["feature"]),
            driver["value"]
                .as_f64()
                .map_or("unknown".to_string(), |v| format!("{v:.2}")),
            number(&driver["effect"])
        );
    }
    if let Some(features) = view["features"].as_object() {
        let shown: Vec<String> = features
            .iter()
            .map(|(name, value)| match value.as_f64() {
                Some(v) => format!("{name}={v:.2}"),
                None => format!("{name}=unknown"),
            })
            .collect();
        outln!("  features: {}", shown.join(", "));
    }
}
