//! Commands against a running `strata serve`: `put`, `get`, `ls`, `rm`, `access`,
//! `objects`, `tiers`, `moves`, `plan`, `metrics`, `explain`. The service is found by
//! `--server URL` or `$STRATA_SERVER` (default `http://127.0.0.1:7070`).
//!
//! Transfers are checked end to end: `put` sends the file's BLAKE3 (`X-Strata-Hash`) so the
//! service refuses a damaged upload, and `get` hashes what it receives against the
//! object's recorded hash before the output file appears.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use clap::Args;
use serde_json::Value;
use strata_server::cost_plan::dollars;

use super::Context;
use crate::output;

/// Where the service is, and how to trust it. The API token comes from `$STRATA_TOKEN`
/// only: a flag would show it in the process list.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The service's URL (https:// when it has [server] tls_cert).
    #[arg(
        long,
        env = "STRATA_SERVER",
        default_value = "http://127.0.0.1:7070",
        value_name = "URL"
    )]
    pub server: String,
    /// A CA certificate (PEM) to trust for an https:// service, besides the system's roots
    /// (e.g. the service's own self-signed certificate).
    #[arg(long, env = "STRATA_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// The environment variable holding the API token the commands send.
pub const TOKEN_VAR: &str = "STRATA_TOKEN";

/// A client of the service.
pub(crate) struct Client {
    base: String,
    http: reqwest::Client,
}

/// Percent-encodes a key for a URL path, keeping `/` between segments.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `12s ago`, `3h ago`.
fn ago(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "never".to_string();
    };
    let seconds = (now_ms() - ms).max(0) / 1000;
    match seconds {
        0..=119 => format!("{seconds}s ago"),
        120..=7199 => format!("{}m ago", seconds / 60),
        7200..=172_799 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

/// Ends a command whose printing `printed` did: a reader of standard output that went
/// away (`strata get KEY | head -c 10`, `strata ls | head`) is not a failure, so the
/// command ends quietly with success, as Unix tools do; any other write error is one.
pub(crate) fn printed(printed: io::Result<()>) -> anyhow::Result<ExitCode> {
    match printed {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(err) => Err(err).context("cannot write to standard output"),
    }
}

impl Client {
    /// A client of the service `args` names, sending `$STRATA_TOKEN` when set and trusting
    /// `--ca-cert` besides the system's roots.
    pub(crate) fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &args.ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| {
                anyhow!(
                    "{} is not a PEM certificate ({err}); give the service's CA certificate \
                     with --ca-cert or STRATA_CA_CERT",
                    path.display()
                )
            })?;
            if certs.is_empty() {
                bail!(
                    "{} holds no PEM certificate; give the service's CA certificate with \
                     --ca-cert or STRATA_CA_CERT",
                    path.display()
                );
            }
            builder = builder.tls_certs_merge(certs);
        }
        if let Some(token) = std::env::var_os(TOKEN_VAR) {
            let mut value = token
                .to_str()
                .and_then(|token| {
                    reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim())).ok()
                })
                .ok_or_else(|| {
                    anyhow!(
                        "{TOKEN_VAR} is not a token; set it to what `strata token create` printed"
                    )
                })?;
            value.set_sensitive(true);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        let http = builder
            .build()
            .map_err(|err| anyhow!("cannot set up the HTTP client: {err}"))?;
        Ok(Client {
            base: args.server.trim_end_matches('/').to_string(),
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn object_url(&self, key: &str) -> anyhow::Result<String> {
        strata_server::objects::check_key(key).map_err(|err| anyhow!("{}", err.message))?;
        Ok(self.url(&format!("/v1/objects/{}", encode(key))))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        request.send().await.map_err(|err| {
            // reqwest's own text is one word deep ("error sending request"): the causes say
            // what went wrong (refused, certificate not trusted, ...).
            let mut reason = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                reason.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            anyhow!(
                "cannot reach the Strata service at {}: {reason}; start it with `strata \
                 serve`, or point --server / STRATA_SERVER at it (for https, trust its \
                 certificate with --ca-cert / STRATA_CA_CERT)",
                self.base
            )
        })
    }

    /// The error a failed answer carries (`message (code)`).
    async fn failure(response: reqwest::Response) -> anyhow::Error {
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
            format!("; set {TOKEN_VAR} to a token of this service")
        } else {
            String::new()
        };
        match serde_json::from_slice::<Value>(&body) {
            // The request id finds the request's lines in the service's log.
            Ok(json) if json["error"]["message"].is_string() => anyhow!(
                "{} ({}{}){hint}",
                json["error"]["message"].as_str().unwrap_or_default(),
                json["error"]["code"].as_str().unwrap_or_default(),
                json["error"]["request_id"]
                    .as_str()
                    .map(|id| format!(", request {id}"))
                    .unwrap_or_default()
            ),
            _ => anyhow!(
                "the service answered {status}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = self.send(request).await?;
        if !response.status().is_success() {
            return Err(Self::failure(response).await);
        }
        let body = response.bytes().await?;
        serde_json::from_slice(&body).context("the service answered something that is not JSON")
    }

    pub(crate) async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        self.json(self.http.get(self.url(path))).await
    }

    /// `POST path` (with its query), the answer as JSON.
    pub(crate) async fn post_json(&self, path: &str) -> anyhow::Result<Value> {
        self.json(self.http.post(self.url(path))).await
    }

    /// `POST path` with a JSON `body`, the answer as JSON.
    pub(crate) async fn post_json_body(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = self
            .http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.json(request).await
    }

    /// `POST path` for every tier, or `tier` alone (`?tier=NAME`), whose answer is a report
    /// per tier (`{"tiers": [...]}`): printed as JSON with `--json`, else by `print`.
    /// Returns how many entries the tiers list under `failed` (what could not be done).
    pub(crate) async fn post_tier_report(
        &self,
        context: &Context,
        path: &str,
        tier: Option<&str>,
        failed: &str,
        print: fn(&[Value]) -> anyhow::Result<ExitCode>,
    ) -> anyhow::Result<usize> {
        let path = match tier {
            Some(tier) => format!("{path}?tier={}", encode(tier)),
            None => path.to_string(),
        };
        let report = self.post_json(&path).await?;
        let tiers = report["tiers"].as_array().cloned().unwrap_or_default();
        if context.json {
            output::print_json(&report);
        } else {
            print(&tiers)?;
        }
        Ok(tiers
            .iter()
            .map(|tier| tier[failed].as_array().map_or(0, Vec::len))
            .sum())
    }

    /// `DELETE path` (with its query), the answer as JSON.
    pub(crate) async fn delete_json(&self, path: &str) -> anyhow::Result<Value> {
        self.json(self.http.delete(self.url(path))).await
    }

    /// Fails unless the service stores an object `key` (one HEAD), with the service's
    /// `not_found` as `strata explain` reports it.
    async fn require_object(&self, key: &str) -> anyhow::Result<()> {
        let response = self.send(self.http.head(self.object_url(key)?)).await?;
        match response.status() {
            status if status.is_success() => Ok(()),
            reqwest::StatusCode::NOT_FOUND => Err(anyhow!(
                "no object {key:?} on the service at {}, so nothing was recorded; `strata ls` \
                 lists the stored objects (not_found)",
                self.base
            )),
            _ => Err(Self::failure(response).await),
        }
    }
}

/// Arguments of `strata put`.
#[derive(Args, Debug)]
pub struct PutArgs {
    /// The file to store.
    file: PathBuf,
    /// The object key (default: the file's name).
    key: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata put FILE [KEY]`.
pub async fn put(context: &Context, args: PutArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let key = match args.key {
        Some(key) => key,
        None => args
            .file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("{} has no file name; give a KEY", args.file.display()))?,
    };
    strata_server::objects::check_new_key(&key).map_err(|err| anyhow!("{}", err.message))?;
    let data = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let hash = blake3::hash(&data).to_hex().to_string();
    let request = client
        .http
        .put(client.object_url(&key)?)
        .header("x-strata-hash", &hash)
        .body(data);
    let object = client.json(request).await?;
    if context.json {
        output::print_json(&object);
    } else {
        outln!(
            "put {} ({} bytes, tier {}, generation {}, blake3 {})",
            key,
            object["size"].as_u64().unwrap_or(0),
            object["tier"].as_str().unwrap_or_default(),
            object["generation"].as_i64().unwrap_or(0),
            hash
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `strata get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The object key.
    key: String,
    /// Write to this file instead of standard output (created only once verified).
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata get KEY [--output FILE]`.
pub async fn get(context: &Context, args: GetArgs) -> anyhow::Result<ExitCode> {
    if context.json && args.output.is_none() {
        bail!("--json describes the download, so it needs --output FILE (the bytes would go to standard output)");
    }
    let client = Client::new(&args.server)?;
    let mut response = client
        .send(client.http.get(client.object_url(&args.key)?))
        .await?;
    if !response.status().is_success() {
        return Err(Client::failure(response).await);
    }
    let expected = response
        .headers()
        .get("x-strata-hash")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let tier = response
        .headers()
        .get("x-strata-tier")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    match &args.output {
        Some(path) => {
            let staged = staging_path(path);
            let result = async {
                let mut file = std::fs::File::create(&staged)
                    .with_context(|| format!("cannot create {}", staged.display()))?;
                while let Some(chunk) = response.chunk().await? {
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    file.write_all(&chunk)?;
                }
                file.sync_all()?;
                check_hash(&hasher, &expected, &args.key)?;
                std::fs::rename(&staged, path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                anyhow::Ok(())
            }
            .await;
            if let Err(err) = result {
                let _ = std::fs::remove_file(&staged);
                return Err(err);
            }
            if context.json {
                output::print_json(&serde_json::json!({
                    "key": args.key, "size": size, "tier": tier, "hash": expected,
                    "output": path,
                }));
            } else {
                outln!(
                    "got {} ({size} bytes from tier {tier}) into {}",
                    args.key,
                    path.display()
                );
            }
        }
        None => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            while let Some(chunk) = response.chunk().await? {
                hasher.update(&chunk);
                if let Err(err) = out.write_all(&chunk) {
                    return printed(Err(err));
                }
            }
            if let Err(err) = out.flush() {
                return printed(Err(err));
            }
            check_hash(&hasher, &expected, &args.key)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn staging_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.strata-get.{}", std::process::id()))
}

fn check_hash(hasher: &blake3::Hasher, expected: &str, key: &str) -> anyhow::Result<()> {
    let got = hasher.finalize().to_hex();
    if !expected.is_empty() && got.as_str() != expected {
        bail!("{key}: received bytes hash to {got}, the object's BLAKE3 is {expected}; the transfer was damaged, get it again");
    }
    Ok(())
}

/// Arguments of `strata ls` and `strata objects`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only keys starting with this.
    prefix: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

async fn list_all(client: &Client, prefix: &str, heat: bool) -> anyhow::Result<Vec<Value>> {
    let mut objects = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!(
            "/v1/objects?limit=10000&heat={heat}&prefix={}",
            encode(prefix)
        );
        if let Some(after) = &after {
            path.push_str(&format!("&start_after={}", encode(after)));
        }
        let page = client.get_json(&path).await?;
        objects.extend(page["objects"].as_array().cloned().unwrap_or_default());
        match page["next_start_after"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return Ok(objects),
        }
    }
}

/// `strata ls [PREFIX]`.
pub async fn ls(context: &Context, args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let objects = list_all(&client, args.prefix.as_deref().unwrap_or(""), false).await?;
    if context.json {
        output::print_json(&objects);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = io::stdout().lock();
    printed(objects.iter().try_for_each(|object| {
        writeln!(
            out,
            "{:>12}  {:<6}  {}",
            object["size"].as_u64().unwrap_or(0),
            object["tier"].as_str().unwrap_or_default(),
            object["key"].as_str().unwrap_or_default()
        )
    }))
}

/// `strata objects [PREFIX]`: objects with their tier, class and accesses.
pub async fn objects(context: &Context, args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let objects = list_all(&client, args.prefix.as_deref().unwrap_or(""), true).await?;
    if context.json {
        output::print_json(&objects);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = io::stdout().lock();
    printed((|| {
        writeln!(
            out,
            "{:<6} {:<5} {:>12} {:>6} {:>7} {:>10}  KEY",
            "TIER", "CLASS", "SIZE", "1H", "24H", "LAST"
        )?;
        for object in &objects {
            writeln!(
                out,
                "{:<6} {:<5} {:>12} {:>6} {:>7} {:>10}  {}",
                object["tier"].as_str().unwrap_or_default(),
                object["class"].as_str().unwrap_or_default(),
                object["size"].as_u64().unwrap_or(0),
                object["access"]["count_1h"].as_u64().unwrap_or(0),
                object["access"]["count_24h"].as_u64().unwrap_or(0),
                ago(object["access"]["last_access_ms"].as_i64()),
                object["key"].as_str().unwrap_or_default()
            )?;
        }
        Ok(())
    })())
}

/// Arguments of `strata rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Object keys.
    #[arg(required = true)]
    keys: Vec<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata rm KEY...`.
pub async fn rm(context: &Context, args: RmArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for key in &args.keys {
        let response = client
            .send(client.http.delete(client.object_url(key)?))
            .await?;
        if response.status().is_success() {
            removed.push(key.clone());
            if !context.json {
                outln!("removed {key}");
            }
        } else {
            let err = Client::failure(response).await;
            if !context.json {
                eprintln!("error: {key}: {err}");
            }
            failed.push(serde_json::json!({ "key": key, "error": err.to_string() }));
        }
    }
    if context.json {
        output::print_json(&serde_json::json!({ "removed": removed, "failed": failed }));
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Arguments of `strata access`.
#[derive(Args, Debug)]
pub struct AccessArgs {
    /// The object key.
    key: String,
    /// How many accesses to report.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Kind of access: read, write or delete.
    #[arg(long, default_value = "read")]
    op: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata access KEY --count N`: reports N simulated accesses, stamped now, through the
/// batch endpoint (a spike promotes the object at once).
pub async fn access(context: &Context, args: AccessArgs) -> anyhow::Result<ExitCode> {
    if !["read", "write", "delete"].contains(&args.op.as_str()) {
        bail!("--op must be read, write or delete, not {:?}", args.op);
    }
    let client = Client::new(&args.server)?;
    client.require_object(&args.key).await?;
    let line = serde_json::json!({ "key": args.key, "op": args.op, "ts": now_ms() }).to_string();
    let (mut accepted, mut spikes) = (0u64, 0u64);
    let mut left = args.count;
    while left > 0 {
        let batch = left.min(100_000);
        let mut body = String::with_capacity((line.len() + 1) * batch as usize);
        for _ in 0..batch {
            body.push_str(&line);
            body.push('\n');
        }
        let report = client
            .json(client.http.post(client.url("/v1/access-events")).body(body))
            .await?;
        accepted += report["accepted"].as_u64().unwrap_or(0);
        spikes += report["spikes"].as_u64().unwrap_or(0);
        left -= batch;
    }
    if context.json {
        output::print_json(&serde_json::json!({
            "key": args.key, "accepted": accepted, "spikes": spikes,
        }));
    } else if spikes > 0 {
        outln!(
            "{accepted} {}s of {} recorded: a spike, promoted at once",
            args.op,
            args.key
        );
    } else {
        outln!("{accepted} {}s of {} recorded", args.op, args.key);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes each `{"key", "detail"}` entry of `listed` (a tier report's objects that could
/// not be handled) as an indented line.
pub(crate) fn write_listed(out: &mut impl io::Write, listed: &Value) -> io::Result<()> {
    for object in listed.as_array().map(Vec::as_slice).unwrap_or_default() {
        writeln!(
            out,
            "  {}: {}",
            object["key"].as_str().unwrap_or_default(),
            object["detail"].as_str().unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Arguments of `strata moves`.
#[derive(Args, Debug)]
pub struct MovesArgs {
    /// Only jobs in this state (planned, copying, verifying, switching, retiring, done,
    /// failed, cancelled, skipped).
    #[arg(long)]
    state: Option<String>,
    /// Only jobs of this object.
    #[arg(long)]
    key: Option<String>,
    /// Only unfinished jobs.
    #[arg(long)]
    active: bool,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Cancel this job (one that has not switched yet).
    #[arg(long, value_name = "ID", conflicts_with = "retry")]
    cancel: Option<i64>,
    /// Plan this failed, cancelled or skipped job again.
    #[arg(long, value_name = "ID")]
    retry: Option<i64>,
    #[command(flatten)]
    server: ServerArgs,
}

fn job_line(job: &Value) -> String {
    let movement = format!(
        "{} → {}",
        job["from_tier"].as_str().unwrap_or_default(),
        job["to_tier"].as_str().unwrap_or_default()
    );
    let mut line = format!(
        "{:>6}  {:<9}  {movement:<13}  {:<22}  {}",
        job["id"].as_i64().unwrap_or(0),
        job["state"].as_str().unwrap_or_default(),
        job["reason"].as_str().unwrap_or_default(),
        job["key"].as_str().unwrap_or_default(),
    );
    if let Some(error) = job["last_error"].as_str() {
        line.push_str(&format!("  ({error})"));
    }
    line
}

/// `strata moves` (alias `migrations`): the move jobs of the tiering service.
pub async fn moves(context: &Context, args: MovesArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    if let Some((id, action)) = args
        .cancel
        .map(|id| (id, "cancel"))
        .or(args.retry.map(|id| (id, "retry")))
    {
        let job = client
            .json(
                client
                    .http
                    .post(client.url(&format!("/v1/jobs/{id}/{action}"))),
            )
            .await?;
        if context.json {
            output::print_json(&job);
        } else {
            outln!("{}", job_line(&job));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut path = format!("/v1/jobs?limit={}&active={}", args.limit, args.active);
    if let Some(state) = &args.state {
        path.push_str(&format!("&state={}", encode(state)));
    }
    if let Some(key) = &args.key {
        path.push_str(&format!("&key={}", encode(key)));
    }
    let jobs = client.get_json(&path).await?;
    let jobs = jobs["jobs"].as_array().cloned().unwrap_or_default();
    if context.json {
        output::print_json(&jobs);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = io::stdout().lock();
    if jobs.is_empty() {
        let none = if args.active {
            "no active moves"
        } else if args.state.is_some() || args.key.is_some() {
            "no moves match"
        } else {
            "no moves yet"
        };
        return printed(writeln!(out, "{none}"));
    }
    printed((|| {
        writeln!(
            out,
            "{:>6}  {:<9}  {:<13}  {:<22}  KEY",
            "ID", "STATE", "MOVE", "REASON"
        )?;
        for job in &jobs {
            writeln!(out, "{}", job_line(job))?;
        }
        Ok(())
    })())
}

/// Arguments of commands that only need the service.
#[derive(Args, Debug)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// `strata tiers`: tiers with usage and cost.
pub async fn tiers(context: &Context, args: ServiceArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let tiers = client.get_json("/v1/tiers").await?;
    if context.json {
        output::print_json(&tiers);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = io::stdout().lock();
    printed((|| {
        writeln!(
            out,
            "{:<8} {:>8} {:>14} {:>14} {:>12}  STORE",
            "TIER", "OBJECTS", "USED", "CAPACITY", "COST/MONTH"
        )?;
        for tier in tiers["tiers"].as_array().cloned().unwrap_or_default() {
            let capacity = tier["capacity_bytes"]
                .as_u64()
                .map_or("unlimited".to_string(), |c| c.to_string());
            writeln!(
                out,
                "{:<8} {:>8} {:>14} {:>14} {:>12.4}  {}{}",
                tier["name"].as_str().unwrap_or_default(),
                tier["objects"].as_u64().unwrap_or(0),
                tier["used_bytes"].as_u64().unwrap_or(0),
                capacity,
                tier["monthly_cost"].as_f64().unwrap_or(0.0),
                tier["store"].as_str().unwrap_or_default(),
                if tier["default"] == true {
                    "  (default)"
                } else {
                    ""
                },
            )?;
        }
        Ok(())
    })())
}

/// `strata metrics`: the service's Prometheus metrics (`--json`: name → value).
pub async fn metrics(context: &Context, args: ServiceArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let response = client.send(client.http.get(client.url("/metrics"))).await?;
    if !response.status().is_success() {
        return Err(Client::failure(response).await);
    }
    let text = response.text().await?;
    if context.json {
        let mut samples = serde_json::Map::new();
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            if let Some((name, value)) = line.rsplit_once(' ') {
                if let Ok(value) = value.parse::<f64>() {
                    samples.insert(name.to_string(), serde_json::json!(value));
                }
            }
        }
        output::print_json(&samples);
        return Ok(ExitCode::SUCCESS);
    }
    printed(io::stdout().lock().write_all(text.as_bytes()))
}

/// Arguments of `strata explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The object key.
    key: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata explain KEY`: why an object is where it is.
pub async fn explain(context: &Context, args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    strata_server::objects::check_key(&args.key).map_err(|err| anyhow!("{}", err.message))?;
    let explanation = client
        .get_json(&format!("/v1/explain/{}", encode(&args.key)))
        .await?;
    if context.json {
        output::print_json(&explanation);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = io::stdout().lock();
    printed((|| {
        writeln!(out, "{}", args.key)?;
        for line in explanation["lines"].as_array().cloned().unwrap_or_default() {
            writeln!(out, "  {}", line.as_str().unwrap_or_default())?;
        }
        let decisions = explanation["decisions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !decisions.is_empty() {
            writeln!(out, "decisions, newest first:")?;
        }
        for decision in decisions.iter().take(10) {
            writeln!(
                out,
                "  {:>9}  {:<22} {:<18} {}",
                ago(decision["ts_ms"].as_i64()),
                decision["reason"].as_str().unwrap_or_default(),
                decision["action"].as_str().unwrap_or_default(),
                decision["explanation"].as_str().unwrap_or_default()
            )?;
        }
        Ok(())
    })())
}

/// Arguments of `strata plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Run the pass now and queue its moves (default: a dry run).
    #[arg(long)]
    run: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// `strata plan [--run]`: what a planning pass would do (or does, with `--run`).
pub async fn plan(context: &Context, args: PlanArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let url = client.url("/v1/plan");
    let request = if args.run {
        client.http.post(url)
    } else {
        client.http.get(url)
    };
    let result = client.json(request).await?;
    if context.json {
        output::print_json(&result);
        return Ok(ExitCode::SUCCESS);
    }
    let plan = &result["plan"];
    let moves = plan["moves"].as_array().cloned().unwrap_or_default();
    let waits = plan["waits"].as_array().cloned().unwrap_or_default();
    let costs = &result["costs"];
    let savings = costs["moves"].as_array().cloned().unwrap_or_default();
    let mut out = io::stdout().lock();
    printed((|| {
        writeln!(
            out,
            "{} moves, {} waits, {} in place{}",
            moves.len(),
            waits.len(),
            plan["in_place"],
            if args.run { "" } else { " (dry run)" }
        )?;
        if let (Some(before), Some(after)) = (
            costs["monthly_cost_before"].as_f64(),
            costs["monthly_cost_after"].as_f64(),
        ) {
            writeln!(
                out,
                "projected cost: {}/month now, {}/month after the plan (moves {} once)",
                dollars(before),
                dollars(after),
                dollars(costs["moves_cost"].as_f64().unwrap_or(0.0))
            )?;
        }
        if let Some(error) = costs["optimiser_error"].as_str() {
            writeln!(out, "cost optimiser: {error}")?;
        }
        for (index, planned) in moves.iter().enumerate() {
            let saving = savings
                .get(index)
                .and_then(|s| s["saving_per_month"].as_f64())
                .map(|s| format!(", saves {}/month", dollars(s)))
                .unwrap_or_default();
            writeln!(
                out,
                "  move {} {} → {} [{}{saving}]: {}",
                planned["key"].as_str().unwrap_or_default(),
                planned["from"].as_str().unwrap_or_default(),
                planned["to"].as_str().unwrap_or_default(),
                planned["reason"].as_str().unwrap_or_default(),
                planned["explanation"].as_str().unwrap_or_default()
            )?;
        }
        for wait in &waits {
            writeln!(
                out,
                "  wait {} on {}: {}",
                wait["key"].as_str().unwrap_or_default(),
                wait["on"].as_str().unwrap_or_default(),
                wait["explanation"].as_str().unwrap_or_default()
            )?;
        }
        Ok(())
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_that_went_away_ends_the_command_quietly() {
        let closed = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(printed(Err(closed)).is_ok_and(|code| code == ExitCode::SUCCESS));
        let full = io::Error::other("no space left on device");
        let err = printed(Err(full)).unwrap_err();
        assert!(format!("{err:#}").contains("standard output"), "{err:#}");
    }

    #[test]
    fn keys_are_encoded_segment_by_segment() {
        assert_eq!(encode("a/b c/ü.nc"), "a/b%20c/%C3%BC.nc");
        assert_eq!(encode("x?y#z%"), "x%3Fy%23z%25");
    }
}
