//! `strata chaos`: the service's chaos controls (`/v1/chaos`, admin scope): `inject` a
//! fault into a tier's stores for a number of operations or a time, `list` the rules in
//! force, `clear` them. The service checks the rule and says what is wrong with a bad one
//! (see `strata_server::chaos`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::objects::{encode, Client, ServerArgs};
use super::Context;
use crate::output;

/// Arguments of `strata chaos`.
#[derive(Args, Debug)]
pub struct ChaosArgs {
    #[command(subcommand)]
    action: ChaosAction,
}

/// What `strata chaos` does.
#[derive(Subcommand, Debug)]
enum ChaosAction {
    /// Make a tier's stores slow, failing or corrupt for --count operations and/or --for a
    /// time (client requests and moves alike).
    Inject(InjectArgs),
    /// The chaos rules in force, per tier.
    List(ListArgs),
    /// End every chaos rule (or only TIER's).
    Clear(ClearArgs),
}

/// Arguments of `strata chaos inject`.
#[derive(Args, Debug)]
struct InjectArgs {
    /// The tier whose stores get the fault.
    tier: String,
    /// latency: sleep (--latency), then go on; 429 or 503: fail like a throttling or
    /// unavailable S3 (retryable, --retry-after); timeout: fail as a timed-out call;
    /// corrupt: flip a bit of the data read.
    #[arg(value_parser = ["latency", "429", "503", "timeout", "corrupt"])]
    fault: String,
    /// Only this store operation (read, write, readback, publish, put, stat, list, delete;
    /// default: every one, and read for corrupt).
    #[arg(long)]
    op: Option<String>,
    /// The delay of a latency fault (e.g. 200ms).
    #[arg(long)]
    latency: Option<String>,
    /// The Retry-After of a 429 or 503 (e.g. 2s).
    #[arg(long)]
    retry_after: Option<String>,
    /// End after this many faulty operations.
    #[arg(long)]
    count: Option<u64>,
    /// End after this time (e.g. 30s, 5m); at least one of --count and --for is needed.
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `strata chaos list`.
#[derive(Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `strata chaos clear`.
#[derive(Args, Debug)]
struct ClearArgs {
    /// Only this tier's rules.
    tier: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata chaos ...`.
pub async fn run(context: &Context, args: ChaosArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        ChaosAction::Inject(args) => inject(context, args).await,
        ChaosAction::List(args) => list(context, args).await,
        ChaosAction::Clear(args) => clear(context, args).await,
    }
}

async fn inject(context: &Context, args: InjectArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let mut body = json!({ "tier": args.tier, "fault": args.fault });
    for (field, value) in [
        ("op", args.op.map(Value::from)),
        ("latency", args.latency.map(Value::from)),
        ("retry_after", args.retry_after.map(Value::from)),
        ("count", args.count.map(Value::from)),
        ("duration", args.duration.map(Value::from)),
    ] {
        if let Some(value) = value {
            body[field] = value;
        }
    }
    let added = client.post_json_body("/v1/chaos", &body).await?;
    if context.json {
        output::print_json(&added);
    } else {
        outln!(
            "chaos rule {} on tier {}: {} (`strata chaos clear` ends it)",
            added["id"],
            added["tier"].as_str().unwrap_or_default(),
            describe(&body)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(context: &Context, args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let active = client.get_json("/v1/chaos").await?;
    if context.json {
        output::print_json(&active);
        return Ok(ExitCode::SUCCESS);
    }
    let tiers = active["tiers"].as_array().cloned().unwrap_or_default();
    if tiers.is_empty() {
        outln!("no chaos rules in force");
    }
    for tier in tiers {
        for rule in tier["rules"].as_array().cloned().unwrap_or_default() {
            outln!(
                "{:>4}  {:<8} {:<8} op={:<8} injected={:<6} left={} ends_in={}",
                rule["id"],
                tier["tier"].as_str().unwrap_or_default(),
                rule["fault"].as_str().unwrap_or_default(),
                rule["op"].as_str().unwrap_or("any"),
                rule["injected"],
                rule["remaining"]
                    .as_u64()
                    .map_or("-".into(), |n| n.to_string()),
                rule["expires_in_ms"]
                    .as_u64()
                    .map_or("-".into(), |ms| format!("{}s", ms.div_ceil(1000))),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn clear(context: &Context, args: ClearArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let path = match &args.tier {
        Some(tier) => format!("/v1/chaos?tier={}", encode(tier)),
        None => "/v1/chaos".to_string(),
    };
    let cleared = client.delete_json(&path).await?;
    if context.json {
        output::print_json(&cleared);
    } else {
        outln!("{} chaos rules ended", cleared["cleared"]);
    }
    Ok(ExitCode::SUCCESS)
}

/// `503 for 3 operations`, `latency 200ms on read for 30s`.
fn describe(body: &Value) -> String {
    let mut text = body["fault"].as_str().unwrap_or_default().to_string();
    for (field, prefix) in [
        ("latency", " "),
        ("retry_after", " retry-after "),
        ("op", " on "),
    ] {
        if let Some(value) = body[field].as_str() {
            text.push_str(prefix);
            text.push_str(value);
        }
    }
    if let Some(count) = body["count"].as_u64() {
        text.push_str(&format!(" for {count} operations"));
    }
    if let Some(duration) = body["duration"].as_str() {
        text.push_str(&format!(" for at most {duration}"));
    }
    text
}
