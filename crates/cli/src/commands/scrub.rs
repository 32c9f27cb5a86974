//! `strata scrub [TIER]`: asks the service to read every replica or fragment of a tier's
//! objects, repair what it can and report what it cannot (`POST /v1/scrub`).

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::objects::{printed, write_listed, Client, ServerArgs};
use super::Context;

/// Arguments of `strata scrub`.
#[derive(Args, Debug)]
pub struct ScrubArgs {
    /// The tier to scrub (default: every tier).
    tier: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata scrub [TIER]`. Exits 1 when an object could not be made whole.
pub async fn run(context: &Context, args: ScrubArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let unrepairable = client
        .post_tier_report(
            context,
            "/v1/scrub",
            args.tier.as_deref(),
            "unrepairable",
            print_report,
        )
        .await?;
    if unrepairable > 0 {
        if !context.json {
            eprintln!(
                "error: {unrepairable} objects could not be made whole (listed above); \
                 restore them from a backup or write them again"
            );
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(tiers: &[Value]) -> anyhow::Result<ExitCode> {
    let mut out = io::stdout().lock();
    printed((|| {
        for tier in tiers {
            let count = |field: &str| tier[field].as_u64().unwrap_or(0);
            writeln!(
                out,
                "tier {} ({}): {} objects read, {} healthy, {} repaired ({} pieces rewritten), \
                 {} not at their class's redundancy, {} orphan pieces removed, {} unrepairable",
                tier["tier"].as_str().unwrap_or_default(),
                tier["redundancy"].as_str().unwrap_or_default(),
                count("objects"),
                count("healthy"),
                count("repaired"),
                count("pieces_repaired"),
                count("not_at_policy"),
                count("orphans_removed"),
                tier["unrepairable"].as_array().map_or(0, Vec::len),
            )?;
            write_listed(&mut out, &tier["unrepairable"])?;
        }
        Ok(())
    })())
}
