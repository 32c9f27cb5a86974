//! `strata serve`: the tiering service (strata-server) until SIGINT or SIGTERM.
//!
//! With no `--config` (nor `$STRATA_CONFIG`), it runs on an embedded SQLite catalog and
//! three local tiers (hot, warm, cold) under `--data-dir` (default `./strata-data`). The
//! catalog is `<data dir>/catalog.db`: the service's state lives with its data, not in the
//! migration catalog file of `--catalog`; only a PostgreSQL `--catalog postgres://...`
//! (shared by the nodes) replaces it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use strata_heat::config::DEFAULT_DATA_DIR;
use strata_heat::event::MAX_KEY_LEN;
use strata_heat::units::{parse_duration_ms, parse_size};
use strata_heat::TieringConfig;
use strata_server::{HttpLimits, Limits, ServeOptions};

use super::Context;

/// Says on standard error that an SQLite `--catalog FILE` (or `$STRATA_CATALOG`) is not
/// the service's catalog, instead of ignoring it silently: the service, `strata token` and
/// `strata train` all find the service's state in its data dir, so a file elsewhere would
/// split it.
fn warn_unused_catalog_file(context: &Context, data_dir: &Path) -> anyhow::Result<()> {
    if context.catalog_path.is_some() && context.shared_catalog()?.is_none() {
        eprintln!(
            "warning: --catalog (or STRATA_CATALOG) names an SQLite file, which is the \
             migrations' catalog; the service keeps its own in {} (a PostgreSQL --catalog \
             postgres://... replaces it, shared by the nodes)",
            data_dir.join("catalog.db").display()
        );
    }
    Ok(())
}

/// Arguments of `strata serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT (default: the config's [server] listen, else
    /// 127.0.0.1:7070; port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Also serve the S3-compatible front door on HOST:PORT (default: the config's
    /// [server] s3_listen, else none), signed with STRATA_S3_ACCESS_KEY and
    /// STRATA_S3_SECRET_KEY from the environment.
    #[arg(long, value_name = "ADDR")]
    s3_listen: Option<String>,
    /// Directory for the catalog and the default local tiers (default: the config's
    /// [server] data_dir, else ./strata-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The tiering configuration, strata.toml (tiers, rules, classes, tracking).
    #[arg(long, env = "STRATA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// How often the periodic planning pass runs, e.g. 30s or 1h (default: the config's
    /// [rules] demotion_interval).
    #[arg(long, value_name = "DURATION")]
    plan_interval: Option<String>,
    /// Move jobs run at once at most (1 to 1024).
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    move_concurrency: usize,
    /// Largest object a PUT accepts, e.g. 256M: a policy limit (bodies stream to their tier
    /// and moves stream between tiers, so memory does not grow with it); the default is
    /// S3's largest object (at least 1 byte).
    #[arg(long, default_value = "5T", value_name = "SIZE")]
    max_object_size: String,
    /// Largest access-event batch, e.g. 64M (at least 8K: one event with the longest key).
    #[arg(long, default_value = "64M", value_name = "SIZE")]
    max_batch_size: String,
    /// Longest wait for a request's headers (and for the next request on an idle
    /// connection) before the connection is closed, e.g. 30s.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    header_timeout: String,
    /// Longest pause while a request body arrives before the request is answered 408.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    body_timeout: String,
    /// Connections served at once; more wait until one closes.
    #[arg(long, default_value_t = 512, value_name = "N")]
    max_connections: usize,
    /// An access-event stream to consume, in the NDJSON form of POST /v1/access-events:
    /// nats://HOST:PORT/SUBJECT or kafka://HOST:PORT/TOPIC (repeatable; replaces the
    /// config's [server] events). A stream that is down is retried in the background.
    #[arg(long = "events", value_name = "URL")]
    events: Vec<String>,
    /// Serve a non-loopback address without API tokens or TLS anyway (refused otherwise:
    /// anyone who can reach it could read, overwrite and delete every object); warned
    /// about in the log and in /healthz.
    #[arg(long)]
    insecure: bool,
}

/// A positive duration flag (`30s`, `2m`).
fn positive_duration(text: &str, flag: &str) -> anyhow::Result<Duration> {
    let ms = parse_duration_ms(text).map_err(|reason| anyhow::anyhow!("{flag}: {reason}"))?;
    match u64::try_from(ms) {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => anyhow::bail!("{flag} {text}: give a duration above zero, e.g. 30s"),
    }
}

/// The connection bounds `args` describe.
fn http_limits(args: &ServeArgs) -> anyhow::Result<HttpLimits> {
    if args.max_connections == 0 {
        anyhow::bail!("--max-connections 0 would serve nothing; give at least 1 (default 512)");
    }
    Ok(HttpLimits {
        header_timeout: positive_duration(&args.header_timeout, "--header-timeout")?,
        body_timeout: positive_duration(&args.body_timeout, "--body-timeout")?,
        max_connections: args.max_connections,
    })
}

/// The smallest `--max-batch-size`: room for one event with the longest key and its fields.
const MIN_BATCH_BYTES: u64 = 2 * MAX_KEY_LEN as u64;

/// The shortest `--plan-interval`, as for `[rules] demotion_interval`.
const MIN_PLAN_INTERVAL: Duration = Duration::from_secs(1);

/// The request bounds the flags give; a bound that would leave the service unusable (no
/// object could be stored, no event batch sent) is refused, naming the flag.
fn limits(args: &ServeArgs) -> anyhow::Result<Limits> {
    let size = |text: &str, flag: &str, least: u64, why: &str| {
        let bytes = parse_size(text).map_err(|reason| anyhow::anyhow!("{flag}: {reason}"))?;
        if bytes < least {
            anyhow::bail!("{flag} {text}: must be at least {least} bytes, {why}");
        }
        Ok(bytes)
    };
    let max_object_size = size(
        &args.max_object_size,
        "--max-object-size",
        1,
        "or no object could be stored (the default is 5T)",
    )?;
    let max_batch = size(
        &args.max_batch_size,
        "--max-batch-size",
        MIN_BATCH_BYTES,
        "so that one access event with the longest key fits (the default is 64M)",
    )?;
    Ok(Limits {
        max_object_size,
        max_batch_bytes: usize::try_from(max_batch).unwrap_or(usize::MAX),
    })
}

/// `--plan-interval`, if given: at least [`MIN_PLAN_INTERVAL`].
fn plan_interval(args: &ServeArgs) -> anyhow::Result<Option<Duration>> {
    let Some(text) = args.plan_interval.as_deref() else {
        return Ok(None);
    };
    let ms =
        parse_duration_ms(text).map_err(|reason| anyhow::anyhow!("--plan-interval: {reason}"))?;
    let interval = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    if interval < MIN_PLAN_INTERVAL {
        anyhow::bail!(
            "--plan-interval {text}: must be at least 1s, like [rules] demotion_interval; a \
             few minutes to an hour is usual"
        );
    }
    Ok(Some(interval))
}

/// The service's configuration: the file at `config` with its data dir moved to
/// `data_dir` when given, else the embedded local tiers under `data_dir` (default
/// [`DEFAULT_DATA_DIR`]). `strata serve` and `strata train` read it alike.
pub(super) fn service_config(
    config: Option<&Path>,
    data_dir: Option<&Path>,
) -> anyhow::Result<TieringConfig> {
    Ok(match config {
        Some(path) => {
            let mut config = TieringConfig::load(path)?;
            if let Some(dir) = data_dir {
                strata_server::rebase_data_dir(&mut config, dir);
            }
            config
        }
        None => TieringConfig::default_local(
            data_dir.map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), Path::to_path_buf),
        ),
    })
}

/// The configuration `args` describe.
fn load_config(args: &ServeArgs) -> anyhow::Result<TieringConfig> {
    let mut config = service_config(args.config.as_deref(), args.data_dir.as_deref())?;
    if let Some(listen) = &args.listen {
        config.server.listen = listen.clone();
    }
    if let Some(listen) = &args.s3_listen {
        config.server.s3_listen = Some(listen.clone());
    }
    if !args.events.is_empty() {
        for url in &args.events {
            // Refused here to name the flag; the service checks the config's list itself.
            strata_server::streams::EventSource::parse(url)
                .map_err(|reason| anyhow::anyhow!("--events: {reason}"))?;
        }
        config.server.events = args.events.clone();
    }
    strata_server::check_servable(&config)?;
    Ok(config)
}

/// Run the command.
pub async fn run(context: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let limits = limits(&args)?;
    let plan_interval = plan_interval(&args)?;
    let http = http_limits(&args)?;
    let config = load_config(&args)?;
    let data_dir = config.server.data_dir.clone();
    warn_unused_catalog_file(context, &data_dir)?;
    let options = ServeOptions {
        s3: context.s3.clone(),
        limits,
        http,
        plan_interval,
        move_concurrency: args.move_concurrency,
        catalog_path: None,
        // The service keeps its catalog in its data dir, unless --catalog (or
        // STRATA_CATALOG) names a PostgreSQL catalog shared with other nodes.
        shared_catalog: context.shared_catalog()?,
        insecure: args.insecure,
        // STRATA_S3_ACCESS_KEY and STRATA_S3_SECRET_KEY, read by the service.
        s3_front_keys: None,
        // STRATA_FAULTS, read (and warned about on stderr) as every command reads it.
        faults: strata_store::layers::env_fault_plan()
            .map_err(anyhow::Error::msg)?
            .cloned(),
        config,
    };
    let tiers: Vec<serde_json::Value> = options
        .config
        .tiers
        .iter()
        .map(|tier| serde_json::json!({ "name": tier.name, "store": tier.store }))
        .collect();
    let default_tier = options.config.default_tier.clone();
    // Shown without credentials.
    let events: Vec<String> = options
        .config
        .server
        .events
        .iter()
        .filter_map(|url| strata_server::streams::EventSource::parse(url).ok())
        .map(|source| source.to_string())
        .collect();
    let server = strata_server::start(options)
        .await
        .context("cannot start the service")?;
    let scheme = if server.tls() { "https" } else { "http" };
    let url = format!("{scheme}://{}", server.addr);
    if context.json {
        // One line, so that a supervisor or a test can read the address from it.
        outln!(
            "{}",
            serde_json::json!({
                "listening": url,
                "s3_listening": server.s3_addr().map(|addr| format!("{scheme}://{addr}")),
                "data_dir": data_dir,
                "catalog": server.catalog_path(),
                "tiers": tiers,
                "default_tier": default_tier,
                "events": events,
                "recovery": server.recovery,
            })
        );
    } else {
        outln!("strata serve: listening on {url}");
        if let Some(addr) = server.s3_addr() {
            outln!("  S3 front door on {scheme}://{addr}");
        }
        outln!(
            "  data dir {}, catalog {}",
            data_dir.display(),
            server.catalog_path().display()
        );
        for tier in &tiers {
            outln!(
                "  tier {:<8} {}",
                tier["name"].as_str().unwrap_or_default(),
                tier["store"].as_str().unwrap_or_default()
            );
        }
        outln!("  new objects land on {default_tier}; API described at {url}/openapi.json");
        for source in &events {
            outln!("  access events from {source}");
        }
        let r = &server.recovery;
        if r.writes_adopted + r.writes_dropped + r.copies_removed + r.jobs_resumed > 0 {
            outln!(
                "  recovered: {} interrupted writes ({} adopted), {} leftover copies removed, \
                 {} moves resumed",
                r.writes_adopted + r.writes_dropped,
                r.writes_adopted,
                r.copies_removed,
                r.jobs_resumed
            );
        }
    }
    let _ = std::io::stdout().flush();
    server.run_until(shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>, data_dir: Option<&str>) -> ServeArgs {
        ServeArgs {
            listen: None,
            s3_listen: None,
            data_dir: data_dir.map(PathBuf::from),
            config,
            plan_interval: None,
            move_concurrency: 4,
            max_object_size: "5T".into(),
            max_batch_size: "64M".into(),
            header_timeout: "30s".into(),
            body_timeout: "30s".into(),
            max_connections: 512,
            events: Vec::new(),
            insecure: false,
        }
    }

    #[test]
    fn no_config_means_three_local_tiers_under_the_data_dir() {
        let config = load_config(&args(None, None)).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:7070");
        assert_eq!(config.server.data_dir, PathBuf::from("./strata-data"));
        let names: Vec<&str> = config.tiers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["hot", "warm", "cold"]);
        assert_eq!(config.default_tier, "warm");
        let config = load_config(&args(None, Some("/srv/x"))).unwrap();
        assert_eq!(config.tiers[0].store, "/srv/x/tiers/hot");
    }

    #[test]
    fn limits_that_leave_the_service_unusable_are_refused() {
        let with = |object: &str, batch: &str, interval: Option<&str>| ServeArgs {
            max_object_size: object.into(),
            max_batch_size: batch.into(),
            plan_interval: interval.map(str::to_string),
            ..args(None, None)
        };
        let refused = |args: ServeArgs, flag: &str| {
            let err = limits(&args)
                .and_then(|_| plan_interval(&args))
                .expect_err(flag)
                .to_string();
            assert!(err.starts_with(flag) && err.contains("at least"), "{err}");
        };
        refused(with("0", "64M", None), "--max-object-size 0");
        refused(with("0B", "64M", None), "--max-object-size 0B");
        refused(with("256M", "0", None), "--max-batch-size 0");
        refused(with("256M", "100", None), "--max-batch-size 100");
        refused(with("256M", "64M", Some("0s")), "--plan-interval 0s");
        refused(with("256M", "64M", Some("500ms")), "--plan-interval 500ms");
        let fine = with("1", "8K", Some("1s"));
        let limits = limits(&fine).unwrap();
        assert_eq!((limits.max_object_size, limits.max_batch_bytes), (1, 8192));
        assert_eq!(plan_interval(&fine).unwrap(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn events_flags_replace_the_config_list_and_bad_ones_name_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(&path, "[server]\nevents = [\"nats://127.0.0.1:4222/a\"]\n").unwrap();
        let config = load_config(&args(Some(path.clone()), None)).unwrap();
        assert_eq!(config.server.events, ["nats://127.0.0.1:4222/a"]);
        let flags = ServeArgs {
            events: vec!["kafka://127.0.0.1:9092/t".into()],
            ..args(Some(path), None)
        };
        assert_eq!(
            load_config(&flags).unwrap().server.events,
            ["kafka://127.0.0.1:9092/t"]
        );
        let bad = ServeArgs {
            events: vec!["kafka://u:pw1234@127.0.0.1:9092/t".into()],
            ..args(None, None)
        };
        let err = format!("{:#}", load_config(&bad).unwrap_err());
        assert!(
            err.starts_with("--events") && !err.contains("pw1234"),
            "{err}"
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(&path, "[[tier]]\nname = \"a\"\ncapacity = \"12X\"\n").unwrap();
        let err = load_config(&args(Some(path.clone()), None)).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("tier[0].capacity"), "{text}");

        std::fs::write(
            &path,
            "default_tier = \"a\"\n[[tier]]\nname = \"a\"\nlayout = \"packed\"\ncodec = \"zstd:99\"\n",
        )
        .unwrap();
        let err = load_config(&args(Some(path), None)).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("tier[0].codec"), "{text}");
    }
}
