//! `strata token create|list|revoke`: the API tokens of `strata serve`, made and revoked
//! directly in the service's catalog, found as `strata serve` finds it (`--config`,
//! `--data-dir`, or a PostgreSQL `--catalog`), so the first admin token can be made before
//! the service first starts. A running service sees a new or revoked token at its next
//! request. The token is printed once, alone on the last line (or in `--json`); the catalog
//! keeps only its hash (`strata_server::auth::token`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use strata_catalog::{ApiToken, EngineCatalog, Revoked, TokenCatalog, TokenScope};
use strata_heat::units::parse_duration_ms;
use strata_server::auth::token::issue;

use super::serve::service_config;
use super::Context;
use crate::output;

/// Arguments of `strata token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// The service's configuration, strata.toml (for its data dir).
    #[arg(long, env = "STRATA_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The service's data dir, as given to `strata serve` (default: the config's [server]
    /// data_dir, else ./strata-data).
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Make a token and print it once (alone on the last line; --json: token, id, scope).
    Create(CreateArgs),
    /// List the tokens: id, scope, prefix, created, expires, state (never the tokens).
    List,
    /// Revoke a token by id: the service refuses it from its next request on.
    Revoke {
        /// The token's id (`strata token list`).
        id: String,
    },
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// What the token may do: read (GET, HEAD, listings), write (also PUT, DELETE, access
    /// events) or admin (everything: jobs, plans, the model, scrubs).
    #[arg(long, value_parser = TokenScope::parse)]
    scope: TokenScope,
    /// Limit the token to object keys under this prefix (read and write tokens).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
    /// Lifetime, e.g. 30d or 12h (default: until revoked).
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
    /// Also print an S3 key pair (access key id and secret) bound to the token, for the
    /// S3 front door (`strata serve --s3-listen`): same scope, prefix and lifetime.
    #[arg(long)]
    s3: bool,
}

/// Run the command.
pub async fn run(context: &Context, args: TokenArgs) -> anyhow::Result<ExitCode> {
    let engine = open_service_catalog(context, &args).await?;
    let tokens = engine.tokens();
    let result = match args.command {
        TokenCommand::Create(create_args) => {
            let data_dir = if create_args.s3 {
                Some(
                    service_config(args.config.as_deref(), args.data_dir.as_deref())?
                        .server
                        .data_dir,
                )
            } else {
                None
            };
            create(context, tokens, create_args, data_dir).await
        }
        TokenCommand::List => list(context, tokens).await,
        TokenCommand::Revoke { id } => revoke(context, tokens, &id).await,
    };
    engine.close().await;
    result
}

/// The catalog `strata serve` with the same flags would use.
async fn open_service_catalog(
    context: &Context,
    args: &TokenArgs,
) -> anyhow::Result<EngineCatalog> {
    if let Some(url) = context.shared_catalog()? {
        return Ok(EngineCatalog::Postgres(
            strata_catalog::PostgresCatalog::open(&url).await?,
        ));
    }
    let config = service_config(args.config.as_deref(), args.data_dir.as_deref())?;
    let path = config
        .server
        .data_dir
        .join(strata_server::tiers::DEFAULT_CATALOG);
    let catalog = strata_catalog::SqliteCatalog::open(&path)
        .await
        .with_context(|| format!("cannot open the service's catalog {}", path.display()))?;
    Ok(EngineCatalog::Sqlite(catalog))
}

async fn create(
    context: &Context,
    tokens: Arc<dyn TokenCatalog>,
    args: CreateArgs,
    s3_data_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if args.scope == TokenScope::Admin && args.prefix.is_some() {
        bail!(
            "--prefix limits object routes, and an admin token acts on every object (jobs, \
             plans, scrubs); make a read or write token with --prefix instead"
        );
    }
    if let Some(prefix) = &args.prefix {
        if prefix.is_empty() {
            bail!("--prefix is empty; give the key prefix the token is limited to, e.g. docs/");
        }
    }
    let now = now_ms();
    let expires_ms = match &args.expires {
        None => None,
        Some(text) => {
            let ms = parse_duration_ms(text)
                .map_err(|reason| anyhow::anyhow!("--expires {text}: {reason}"))?;
            if ms <= 0 {
                bail!("--expires {text}: give a lifetime above zero, e.g. 30d");
            }
            Some(now.saturating_add(ms))
        }
    };
    let issued = issue(args.scope, args.prefix, now, expires_ms);
    // The master key first: no token is made whose key pair cannot be given.
    let s3_pair = match &s3_data_dir {
        Some(data_dir) => Some(s3_key_pair(data_dir, &issued.record.id)?),
        None => None,
    };
    tokens.create_token(&issued.record).await?;
    let record = &issued.record;
    if context.json {
        let mut shown = serde_json::json!({
            "token": issued.text,
            "id": record.id,
            "scope": record.scope,
        });
        if let Some((access, secret)) = &s3_pair {
            shown["s3_access_key_id"] = serde_json::json!(access);
            shown["s3_secret_access_key"] = serde_json::json!(secret);
        }
        outln!("{shown}");
    } else {
        if let Some((access, secret)) = &s3_pair {
            outln!("S3 key pair bound to it (shown only now; revoked with the token):");
            outln!("  access key id     {access}");
            outln!("  secret access key {secret}");
        }
        outln!(
            "token {} made: scope {}{}, {}; it is shown only now (the catalog keeps its hash):",
            record.id,
            record.scope,
            record
                .prefix
                .as_deref()
                .map(|p| format!(", keys under {p:?}"))
                .unwrap_or_default(),
            expiry(record.expires_ms),
        );
        outln!("{}", issued.text);
    }
    Ok(ExitCode::SUCCESS)
}

/// The S3 key pair bound to token `id`: its access key id and the secret derived from the
/// master key in `data_dir` (made if missing; `strata_server::s3::token_keys`).
fn s3_key_pair(data_dir: &std::path::Path, id: &str) -> anyhow::Result<(String, String)> {
    use strata_server::s3::token_keys;
    let master = token_keys::master_key(data_dir).with_context(|| {
        format!(
            "cannot read or make the S3 master key {}",
            token_keys::master_key_path(data_dir).display()
        )
    })?;
    let access = token_keys::access_key_id(id);
    let secret = token_keys::secret(&master, &access);
    Ok((access, secret))
}

async fn list(context: &Context, tokens: Arc<dyn TokenCatalog>) -> anyhow::Result<ExitCode> {
    let all = tokens.tokens().await?;
    let now = now_ms();
    if context.json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|token| {
                serde_json::json!({
                    "id": token.id,
                    "scope": token.scope,
                    "prefix": token.prefix,
                    "created_ms": token.created_ms,
                    "expires_ms": token.expires_ms,
                    "revoked_ms": token.revoked_ms,
                    "state": state(token, now),
                })
            })
            .collect();
        output::print_json(&serde_json::json!({ "tokens": rows }));
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        outln!("no tokens: the service runs open, on loopback addresses only; make one with `strata token create --scope admin`");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<12}  {:<5}  {:<8}  {:<20}  {:<20}  prefix",
        "id",
        "scope",
        "state",
        "created",
        "expires"
    );
    for token in &all {
        outln!(
            "{:<12}  {:<5}  {:<8}  {:<20}  {:<20}  {}",
            token.id,
            token.scope.as_str(),
            state(token, now),
            timestamp(token.created_ms),
            token
                .expires_ms
                .map_or_else(|| "never".to_string(), timestamp),
            token.prefix.as_deref().unwrap_or("(all keys)")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(
    context: &Context,
    tokens: Arc<dyn TokenCatalog>,
    id: &str,
) -> anyhow::Result<ExitCode> {
    let outcome = tokens.revoke_token(id, now_ms()).await?;
    let (revoked_ms, text) = match outcome {
        Revoked::Unknown => {
            bail!("no token with id {id:?}; `strata token list` shows the tokens and their ids")
        }
        Revoked::Now => (now_ms(), format!("token {id} revoked")),
        Revoked::Already(at) => (
            at,
            format!("token {id} was revoked already, at {}", timestamp(at)),
        ),
    };
    if context.json {
        outln!(
            "{}",
            serde_json::json!({ "id": id, "revoked_ms": revoked_ms })
        );
    } else {
        outln!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `active`, `expired` or `revoked`.
fn state(token: &ApiToken, now: i64) -> &'static str {
    if token.revoked_ms.is_some() {
        "revoked"
    } else if token.in_force(now) {
        "active"
    } else {
        "expired"
    }
}

fn expiry(expires_ms: Option<i64>) -> String {
    match expires_ms {
        None => "no expiry".to_string(),
        Some(ms) => format!("expires {}", timestamp(ms)),
    }
}

/// `2026-12-07T13:15:07Z`.
fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}

fn now_ms() -> i64 {
    strata_server::state::now_ms()
}
