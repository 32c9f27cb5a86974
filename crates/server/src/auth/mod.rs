//! Who may call the API, and the record of what they did. It owns
//!
//! - the scope each route needs ([`ROUTE_SCOPES`], the one table the router's guard reads;
//!   a route without an entry is refused to everyone, and a test finds it);
//! - the guard every routed request passes ([`guard`]): the Host and Origin checks
//!   ([`hosts`]), then the bearer token ([`token`]), its scope and its key prefix; 401 for a
//!   missing, malformed, unknown, expired or revoked token, 403 for too small a scope, a key
//!   outside the token's prefix, or a foreign Host or Origin; each refusal counted for
//!   `/metrics` and logged with the client's address, never with the token;
//! - the audit log of write and admin requests ([`audit`]).
//!
//! **When a token is needed.** Once any token has been made (`strata token create`), every
//! route but `/healthz`, `/openapi.json` and the dashboard's assets (`/ui`, no data) needs
//! one. Before that the service runs open, which [`check_exposure`] allows on loopback
//! addresses only. Revoking every token does not
//! reopen it: the requirement follows from a token having existed.

pub mod audit;
pub mod hosts;
pub mod token;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an open service (no token made yet) trusts the catalog's "no token" answer:
/// the first token made while it runs is enforced within this time, and the requests of
/// an open service cost no catalog query each (on PostgreSQL, a round trip).
const OPEN_RECHECK: Duration = Duration::from_secs(1);

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use strata_catalog::{ApiToken, TokenCatalog, TokenScope};

use crate::error::{ApiError, ServeError};
use crate::http::ConnectionInfo;
use crate::state::{lock, now_ms, AppState};
use audit::{AuditEntry, AuditLog};
use hosts::{HostPolicy, HostRefusal};
use token::TokenText;

/// The scope each (route, method) needs: `None` for the two routes anyone may call
/// (`/healthz` for load balancers, `/openapi.json`). HEAD needs what GET needs.
pub const ROUTE_SCOPES: &[(&str, &str, Option<TokenScope>)] = {
    use TokenScope::{Admin, Read, Write};
    &[
        ("/healthz", "get", None),
        ("/openapi.json", "get", None),
        // The dashboard's page and scripts hold no data; what it shows comes from the
        // routes below, with the token the page asks for (crate::dashboard).
        ("/ui", "get", None),
        ("/ui/{*asset}", "get", None),
        ("/metrics", "get", Some(Read)),
        ("/v1/objects", "get", Some(Read)),
        ("/v1/objects/{*key}", "get", Some(Read)),
        ("/v1/objects/{*key}", "head", Some(Read)),
        ("/v1/objects/{*key}", "put", Some(Write)),
        ("/v1/objects/{*key}", "delete", Some(Write)),
        ("/v1/access-events", "post", Some(Write)),
        ("/v1/tiers", "get", Some(Read)),
        ("/v1/explain/{*key}", "get", Some(Read)),
        ("/v1/predictions/{*key}", "get", Some(Read)),
        ("/v1/jobs", "get", Some(Admin)),
        ("/v1/jobs/{id}", "get", Some(Admin)),
        ("/v1/jobs/{id}/cancel", "post", Some(Admin)),
        ("/v1/jobs/{id}/retry", "post", Some(Admin)),
        ("/v1/plan", "get", Some(Admin)),
        ("/v1/plan", "post", Some(Admin)),
        ("/v1/scrub", "post", Some(Admin)),
        ("/v1/keys/rotate", "post", Some(Admin)),
        ("/v1/model/train", "post", Some(Admin)),
        ("/v1/events", "get", Some(Admin)),
        ("/v1/policies", "get", Some(Read)),
        ("/v1/moves", "post", Some(Admin)),
        ("/v1/chaos", "get", Some(Admin)),
        ("/v1/chaos", "post", Some(Admin)),
        ("/v1/chaos", "delete", Some(Admin)),
        ("/v1/model", "get", Some(Read)),
        ("/v1/trends", "get", Some(Read)),
    ]
};

/// Routes whose path ends in an object key, with the literal part before it.
const KEY_ROUTES: &[(&str, &str)] = &[
    ("/v1/objects/{*key}", "/v1/objects/"),
    ("/v1/explain/{*key}", "/v1/explain/"),
    ("/v1/predictions/{*key}", "/v1/predictions/"),
];

/// What a (route, method) needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: anyone may call it.
    Nothing,
    /// A token of this scope or a larger one (once tokens exist).
    Scope(TokenScope),
    /// The table has no entry: refused to everyone.
    Undeclared,
}

impl Need {
    /// Whether the audit log records the request: writes and admin actions.
    fn audited(self) -> bool {
        !matches!(self, Need::Nothing | Need::Scope(TokenScope::Read))
    }
}

/// What `route` needs for `method` (lower case).
pub fn scope_of(route: &str, method: &str) -> Need {
    let find = |method: &str| {
        ROUTE_SCOPES
            .iter()
            .find(|(path, m, _)| *path == route && *m == method)
            .map(|(_, _, scope)| *scope)
    };
    match find(method).or_else(|| (method == "head").then(|| find("get")).flatten()) {
        None => Need::Undeclared,
        Some(None) => Need::Nothing,
        Some(Some(scope)) => Need::Scope(scope),
    }
}

/// Refuses to serve an API open to the network: a non-loopback `addr` needs tokens and TLS,
/// unless `insecure`. Returns the warning to log and show in `/healthz` when `insecure`
/// lets an exposed service start.
pub fn check_exposure(
    addr: SocketAddr,
    has_tokens: bool,
    has_tls: bool,
    insecure: bool,
) -> Result<Option<String>, ServeError> {
    if addr.ip().is_loopback() || (has_tokens && has_tls) {
        return Ok(None);
    }
    let missing = match (has_tokens, has_tls) {
        (false, false) => "no API token and no TLS",
        (false, true) => "no API token",
        _ => "no TLS",
    };
    let exposure = format!(
        "{addr} is not a loopback address and the service has {missing}: anyone who can reach \
         it could read, overwrite and delete every object{}",
        if has_tls {
            ""
        } else {
            ", and tokens would cross the network in clear"
        }
    );
    if insecure {
        return Ok(Some(format!("--insecure: {exposure}")));
    }
    Err(ServeError::Config {
        field: "server.listen".to_string(),
        reason: format!(
            "{exposure}. Make a token (`strata token create --scope admin`) and set [server] \
             tls_cert and tls_key, or listen on 127.0.0.1, or pass --insecure to serve it \
             this way anyway"
        ),
    })
}

/// A refused request.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The token's id, when one was recognised.
    token: Option<String>,
}

impl Refusal {
    fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            code,
            message: message.into(),
            token: None,
        }
    }

    fn forbidden(code: &'static str, message: impl Into<String>, token: Option<&str>) -> Self {
        Refusal {
            status: StatusCode::FORBIDDEN,
            code,
            message: message.into(),
            token: token.map(str::to_string),
        }
    }
}

/// A caller's token, checked.
struct Caller {
    id: String,
    scope: TokenScope,
    prefix: Option<String>,
}

/// The guard's state: the token catalog, the host policy, the audit log, the counts.
pub struct AccessControl {
    tokens: Arc<dyn TokenCatalog>,
    /// Set once a token is known to exist; never cleared.
    required: AtomicBool,
    /// When the catalog last said no token exists: an open service asks again at most
    /// every [`OPEN_RECHECK`], not on every request.
    open_checked: Mutex<Option<Instant>>,
    hosts: HostPolicy,
    audit: AuditLog,
    /// Refusals by (status, code).
    refused: Mutex<BTreeMap<(u16, &'static str), u64>>,
    /// Why an exposed service runs anyway (`--insecure`), for `/healthz`.
    pub insecure_warning: Option<String>,
}

impl AccessControl {
    /// The guard over `tokens` (`required` if a token exists), with `hosts` and `audit`.
    pub fn new(
        tokens: Arc<dyn TokenCatalog>,
        required: bool,
        hosts: HostPolicy,
        audit: AuditLog,
        insecure_warning: Option<String>,
    ) -> Self {
        AccessControl {
            tokens,
            required: AtomicBool::new(required),
            open_checked: Mutex::new(None),
            hosts,
            audit,
            refused: Mutex::new(BTreeMap::new()),
            insecure_warning,
        }
    }

    /// Whether requests need a token: once one is seen in the catalog, for good (a token
    /// made while the service runs open is enforced within [`OPEN_RECHECK`]).
    pub async fn tokens_required(&self) -> Result<bool, ApiError> {
        if self.required.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let recent = lock(&self.open_checked).is_some_and(|at| at.elapsed() < OPEN_RECHECK);
        if recent {
            return Ok(false);
        }
        let exists = self.tokens.has_tokens().await?;
        if exists {
            self.required.store(true, Ordering::Relaxed);
        } else {
            *lock(&self.open_checked) = Some(Instant::now());
        }
        Ok(exists)
    }

    /// The caller's token (`None`: no tokens, open on loopback), or why it is refused.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Caller>, Refusal> {
        let presented = headers.get(header::AUTHORIZATION);
        let Some(value) = presented else {
            return match self.tokens_required().await {
                Ok(false) => Ok(None),
                Ok(true) => Err(Refusal::unauthorized(
                    "missing_token",
                    "this service requires an API token: send `Authorization: Bearer TOKEN` \
                     (the strata CLI sends $STRATA_TOKEN); an operator makes one with \
                     `strata token create`",
                )),
                Err(err) => Err(unavailable(err)),
            };
        };
        let text = value.to_str().unwrap_or_default();
        let parsed = text
            .strip_prefix("Bearer ")
            .map(str::trim)
            .and_then(TokenText::parse);
        let Some(parsed) = parsed else {
            return Err(Refusal::unauthorized(
                "invalid_token",
                "the Authorization header is not `Bearer strata_...` with a token made by \
                 `strata token create`",
            ));
        };
        let record = match self.tokens.token(&parsed.id).await {
            Ok(record) => record,
            Err(err) => return Err(unavailable(err.into())),
        };
        // Unknown id and wrong secret answer alike.
        let Some(record) = record.filter(|record| parsed.matches(record)) else {
            return Err(Refusal::unauthorized(
                "invalid_token",
                "the token is not one this service issued (check $STRATA_TOKEN; `strata \
                 token list` shows the service's tokens)",
            ));
        };
        self.required.store(true, Ordering::Relaxed);
        caller_in_force(record, now_ms()).map(Some)
    }
}

/// The caller `record` describes, unless it is revoked or expired at `now_ms`.
fn caller_in_force(record: ApiToken, now_ms: i64) -> Result<Caller, Refusal> {
    let (code, why) = match (record.revoked_ms, record.expires_ms) {
        (Some(at), _) => (
            "revoked_token",
            format!("was revoked at {at} ms since the epoch"),
        ),
        (None, Some(at)) if !record.in_force(now_ms) => (
            "expired_token",
            format!("expired at {at} ms since the epoch"),
        ),
        _ => {
            return Ok(Caller {
                id: record.id,
                scope: record.scope,
                prefix: record.prefix,
            })
        }
    };
    let mut refusal = Refusal::unauthorized(
        code,
        format!(
            "token {} {why}; ask for a new one (`strata token create`)",
            record.id
        ),
    );
    refusal.token = Some(record.id);
    Err(refusal)
}

/// 503 when the catalog cannot say whether a token is valid.
fn unavailable(err: ApiError) -> Refusal {
    Refusal {
        status: err.status,
        code: err.code,
        message: err.message,
        token: None,
    }
}

/// What a request touches, for a token's prefix.
enum Target {
    /// One object key (from the path).
    Key(String),
    /// A listing, with its `prefix` query parameter if any.
    Listing(Option<String>),
    /// Keys in the body (access events): not checkable before reading it.
    KeysInBody,
    /// No object (tiers, metrics, ...).
    Nothing,
}

fn target_of(route: &str, request: &Request) -> Target {
    if let Some((_, literal)) = KEY_ROUTES.iter().find(|(path, _)| *path == route) {
        let raw = request
            .uri()
            .path()
            .strip_prefix(literal)
            .unwrap_or_default();
        let key = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        return Target::Key(key.into_owned());
    }
    match route {
        "/v1/objects" => Target::Listing(
            url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                .find(|(name, _)| name == "prefix")
                .map(|(_, value)| value.into_owned()),
        ),
        "/v1/access-events" => Target::KeysInBody,
        _ => Target::Nothing,
    }
}

/// Whether `caller` may do what `need` names on `target`.
fn authorize(caller: &Caller, need: TokenScope, target: &Target) -> Result<(), Refusal> {
    if caller.scope < need {
        return Err(Refusal::forbidden(
            "insufficient_scope",
            format!(
                "token {} has scope {}, and this request needs {need}; ask for a token with \
                 `strata token create --scope {need}`",
                caller.id, caller.scope
            ),
            Some(&caller.id),
        ));
    }
    let Some(prefix) = &caller.prefix else {
        return Ok(());
    };
    let inside = match target {
        Target::Key(key) => key.starts_with(prefix.as_str()),
        Target::Listing(listed) => listed
            .as_deref()
            .is_some_and(|listed| listed.starts_with(prefix.as_str())),
        Target::KeysInBody => false,
        Target::Nothing => true,
    };
    if inside {
        return Ok(());
    }
    let what = match target {
        Target::Key(key) => format!("key {key:?} is"),
        Target::Listing(_) => "the listing is".to_string(),
        _ => "access events (keys in the body) are".to_string(),
    };
    Err(Refusal::forbidden(
        "outside_prefix",
        format!(
            "token {} is limited to keys under {prefix:?}, and {what} not under it (list \
             with ?prefix={prefix})",
            caller.id
        ),
        Some(&caller.id),
    ))
}

/// Middleware on every routed request: Host and Origin, then token, scope and prefix; the
/// audit line of write and admin requests.
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let access = &state.access;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |path| path.as_str().to_string());
    let method = request.method().clone();
    let connection = request.extensions().get::<ConnectionInfo>().copied();
    let client = connection.map_or_else(|| "unknown".to_string(), |c| c.peer.to_string());
    let path = request.uri().path().to_string();
    let target = target_of(&route, &request);
    let key = match &target {
        Target::Key(key) => Some(key.clone()),
        _ => None,
    };
    let need = scope_of(&route, &method.as_str().to_ascii_lowercase());
    let audited = need.audited();
    let decision = decide(access, request.headers(), connection, need, &target).await;
    let (token, response) = match decision {
        Ok(caller) => (caller, next.run(request).await),
        Err(refusal) => {
            access.count_refusal(&refusal);
            tracing::warn!(client, %method, route, token = refusal.token.as_deref(),
                code = refusal.code, status = refusal.status.as_u16(), "request refused");
            let token = refusal.token.clone();
            (token, refusal_response(refusal))
        }
    };
    if audited {
        access.audit.record(&AuditEntry {
            ts_ms: now_ms(),
            token: token.as_deref(),
            client,
            method: method.as_str(),
            route: &route,
            path: &path,
            key: key.as_deref(),
            status: response.status().as_u16(),
        });
    }
    response
}

/// The caller's token id (`None`: open service), or the refusal.
async fn decide(
    access: &AccessControl,
    headers: &HeaderMap,
    connection: Option<ConnectionInfo>,
    need: Need,
    target: &Target,
) -> Result<Option<String>, Refusal> {
    match access.hosts.check(headers, connection.map(|c| c.local)) {
        Ok(()) => {}
        Err(HostRefusal::Host(host)) => {
            return Err(Refusal::forbidden(
                "host_not_allowed",
                format!(
                    "Host {host:?} is not a name of this service (a DNS rebinding attempt?); \
                     add it to [server] allowed_hosts if clients reach the service by it"
                ),
                None,
            ))
        }
        Err(HostRefusal::Origin(origin)) => {
            return Err(Refusal::forbidden(
                "origin_not_allowed",
                format!(
                    "requests from web pages of {origin:?} are refused (cross-site); add its \
                     host to [server] allowed_hosts if that page is yours"
                ),
                None,
            ))
        }
    }
    let need = match need {
        Need::Nothing => return Ok(None),
        Need::Scope(scope) => scope,
        Need::Undeclared => {
            return Err(Refusal {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "route_without_scope",
                message: "this route has no entry in the service's scope table, so nobody may \
                      call it; this is a bug in Strata, please report it"
                    .to_string(),
                token: None,
            })
        }
    };
    let caller = access.authenticate(headers).await?;
    match caller {
        None => Ok(None),
        Some(caller) => {
            authorize(&caller, need, target)?;
            Ok(Some(caller.id))
        }
    }
}

fn refusal_response(refusal: Refusal) -> Response {
    let unauthorized = refusal.status == StatusCode::UNAUTHORIZED;
    let mut response = ApiError::new(refusal.status, refusal.code, refusal.message).into_response();
    if unauthorized {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"strata\""),
        );
    }
    response
}

impl AccessControl {
    fn count_refusal(&self, refusal: &Refusal) {
        *lock(&self.refused)
            .entry((refusal.status.as_u16(), refusal.code))
            .or_default() += 1;
    }

    /// The guard's counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP strata_http_refused_total Requests refused by the guard: 401 (token \
             missing, invalid, expired or revoked) and 403 (scope, prefix, Host or Origin), \
             by status and code."
        );
        let _ = writeln!(out, "# TYPE strata_http_refused_total counter");
        for ((status, code), count) in lock(&self.refused).iter() {
            let _ = writeln!(
                out,
                "strata_http_refused_total{{status=\"{status}\",code=\"{code}\"}} {count}"
            );
        }
        crate::metrics::counter(
            out,
            "strata_audit_write_errors_total",
            "Audit log lines that could not be written.",
            self.audit.errors(),
        );
    }

    /// The audit log, which the S3 front door also writes ([`crate::s3::audit`]).
    pub(crate) fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The audit log's file.
    pub fn audit_path(&self) -> &std::path::Path {
        self.audit.path()
    }
}
