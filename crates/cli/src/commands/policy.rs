//! `strata policies` (the `[[policy]]` blocks in force, with the tiers each allows) and
//! `strata move KEY TIER` (a manual move, which the service refuses when the key's policy
//! forbids the tier, naming the policy and the constraint).

use std::io::{self, Write as _};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;

use super::objects::{printed, Client, ServerArgs, ServiceArgs};
use super::Context;
use crate::output;

/// Arguments of `strata move`.
#[derive(Args, Debug)]
pub struct MoveArgs {
    /// The object key.
    key: String,
    /// The tier to move it to.
    tier: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata move KEY TIER`: queues the move and prints its job.
pub async fn request_move(context: &Context, args: MoveArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    strata_server::objects::check_key(&args.key).map_err(|err| anyhow!("{}", err.message))?;
    let body = serde_json::json!({ "key": args.key, "to": args.tier });
    let answer = client.post_json_body("/v1/moves", &body).await?;
    if context.json {
        output::print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    printed(writeln!(
        io::stdout().lock(),
        "job {} queued: {} {} → {}",
        answer["job"],
        args.key,
        answer["from"].as_str().unwrap_or_default(),
        answer["to"].as_str().unwrap_or_default()
    ))
}

/// `strata policies`: each policy, its prefix, and the tiers it allows or excludes.
pub async fn list(context: &Context, args: ServiceArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let answer = client.get_json("/v1/policies").await?;
    if context.json {
        output::print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let policies = answer["policies"].as_array().cloned().unwrap_or_default();
    let mut out = io::stdout().lock();
    printed((|| {
        if policies.is_empty() {
            writeln!(out, "no [[policy]] in strata.toml: every tier is allowed")?;
        }
        for policy in &policies {
            writeln!(
                out,
                "{} (prefix {}): allows {}",
                policy["policy"]["name"].as_str().unwrap_or_default(),
                policy["policy"]["prefix"],
                join(&policy["allowed_tiers"])
            )?;
            for tier in policy["tiers"].as_array().cloned().unwrap_or_default() {
                if let Some(why) = tier["excluded_by"].as_str() {
                    writeln!(
                        out,
                        "  {} excluded by {why}",
                        tier["tier"].as_str().unwrap_or("?")
                    )?;
                }
            }
        }
        Ok(())
    })())
}

fn join(names: &serde_json::Value) -> String {
    names
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|name| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
