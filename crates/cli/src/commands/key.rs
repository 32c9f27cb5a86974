//! `strata key rotate [--tier T]`: asks the service to re-encrypt, in the background, every
//! object of its encrypted tiers still sealed under an earlier key (`POST
//! /v1/keys/rotate`). The jobs show in `strata moves` (reason `key_rotation`); running
//! the command again reports what is still under an earlier key and queues nothing twice.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::objects::{printed, write_listed, Client, ServerArgs};
use super::Context;

/// Arguments of `strata key`.
#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Re-encrypt under each tier's current key, in the background, every object still
    /// sealed under an earlier key (listed in encryption_previous_key_files or _envs);
    /// exit 1 when some object is under a key the tier no longer holds.
    Rotate(RotateArgs),
}

/// Arguments of `strata key rotate`.
#[derive(Args, Debug)]
pub struct RotateArgs {
    /// Only this tier (default: every encrypted tier).
    #[arg(long)]
    tier: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata key ...`.
pub async fn run(context: &Context, args: KeyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeyCommand::Rotate(args) => rotate(context, args).await,
    }
}

async fn rotate(context: &Context, args: RotateArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let problems = client
        .post_tier_report(
            context,
            "/v1/keys/rotate",
            args.tier.as_deref(),
            "problems",
            print_report,
        )
        .await?;
    if problems > 0 {
        if !context.json {
            eprintln!(
                "error: {problems} objects cannot be rotated (listed above); configure the \
                 key each names and run `strata key rotate` again"
            );
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(tiers: &[Value]) -> anyhow::Result<ExitCode> {
    let mut out = io::stdout().lock();
    printed((|| {
        if tiers.is_empty() {
            writeln!(out, "no encrypted tier: nothing to rotate")?;
        }
        for tier in tiers {
            let count = |field: &str| tier[field].as_u64().unwrap_or(0);
            writeln!(
                out,
                "tier {} (key id {}): {} objects, {} under the current key, {} queued for \
                 re-encryption (see `strata moves`), {} cannot be rotated",
                tier["tier"].as_str().unwrap_or_default(),
                tier["current_key_id"].as_str().unwrap_or_default(),
                count("objects"),
                count("current"),
                count("queued"),
                tier["problems"].as_array().map_or(0, Vec::len),
            )?;
            write_listed(&mut out, &tier["problems"])?;
        }
        Ok(())
    })())
}
