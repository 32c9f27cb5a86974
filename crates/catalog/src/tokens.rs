//! API tokens of the tiering service (`0008_api_tokens.sql`): what the catalog keeps of
//! each token ([`ApiToken`]: its id, a hash of its secret, its [`TokenScope`], key prefix,
//! expiry and revocation) and the calls on them ([`TokenCatalog`]), implemented once per
//! engine. Making, parsing and checking tokens is the service's (`strata_server::auth`);
//! the catalog never sees a secret.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::CatalogError;

/// What a token may do. Each scope includes the ones before it: `Read < Write < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// GET and HEAD of objects, listings, tiers, explanations, predictions.
    Read,
    /// Also PUT and DELETE of objects and access events.
    Write,
    /// Everything: jobs, plans, the model, scrubs.
    Admin,
}

impl TokenScope {
    /// Every scope, weakest first.
    pub const ALL: [TokenScope; 3] = [TokenScope::Read, TokenScope::Write, TokenScope::Admin];

    /// `read`, `write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Write => "write",
            TokenScope::Admin => "admin",
        }
    }

    /// The scope named `text`, or why not.
    pub fn parse(text: &str) -> Result<Self, String> {
        TokenScope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| format!("unknown scope {text:?}; use read, write or admin"))
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as the catalog keeps it: never its secret, only the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The public id (part of the token; shown by `strata token list`, in the audit log).
    pub id: String,
    /// The BLAKE3 hash of the token's secret part.
    #[serde(skip)]
    pub hash: [u8; 32],
    /// What it may do.
    pub scope: TokenScope,
    /// Object keys it is limited to (`None`: every key).
    pub prefix: Option<String>,
    /// When it was made, ms since the Unix epoch.
    pub created_ms: i64,
    /// When it stops working (`None`: never).
    pub expires_ms: Option<i64>,
    /// When it was revoked (`None`: in force unless expired).
    pub revoked_ms: Option<i64>,
}

impl ApiToken {
    /// Whether it is neither revoked nor expired at `now_ms`.
    pub fn in_force(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|expires| now_ms < expires)
    }
}

/// What [`TokenCatalog::revoke_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The token is revoked from now on.
    Now,
    /// It was revoked before, at this time (kept).
    Already(i64),
    /// No token has this id.
    Unknown,
}

/// The API token calls, implemented once per database engine; each is one statement.
#[async_trait]
pub trait TokenCatalog: Send + Sync {
    /// Records a new token; an id already taken is refused (`InvalidInput`).
    async fn create_token(&self, token: &ApiToken) -> Result<(), CatalogError>;

    /// One token by id.
    async fn token(&self, id: &str) -> Result<Option<ApiToken>, CatalogError>;

    /// Every token ever made (revoked and expired ones too), oldest first.
    async fn tokens(&self) -> Result<Vec<ApiToken>, CatalogError>;

    /// Whether any token was ever made: from then on the service requires one.
    async fn has_tokens(&self) -> Result<bool, CatalogError>;

    /// Revokes a token at `now_ms` (an earlier revocation keeps its time).
    async fn revoke_token(&self, id: &str, now_ms: i64) -> Result<Revoked, CatalogError>;
}

/// A token row as both engines read it: (id, hash, scope, prefix, created, expires,
/// revoked).
pub(crate) type TokenRow = (
    String,
    Vec<u8>,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

/// The columns of a [`TokenRow`], in order.
pub(crate) const TOKEN_COLUMNS: &str =
    "id, hash, scope, prefix, created_ms, expires_ms, revoked_ms";

/// A row read back; a hash or scope the schema's checks should have kept out is reported,
/// naming the token.
pub(crate) fn token_of(row: TokenRow) -> Result<ApiToken, CatalogError> {
    let (id, hash, scope, prefix, created_ms, expires_ms, revoked_ms) = row;
    let hash: [u8; 32] = hash.try_into().map_err(|hash: Vec<u8>| {
        CatalogError::InvalidInput(format!(
            "token {id}: its stored hash has {} bytes, not 32; revoke it and make a new one",
            hash.len()
        ))
    })?;
    let scope = TokenScope::parse(&scope)
        .map_err(|reason| CatalogError::InvalidInput(format!("token {id}: {reason}")))?;
    Ok(ApiToken {
        id,
        hash,
        scope,
        prefix,
        created_ms,
        expires_ms,
        revoked_ms,
    })
}

/// The answer of a revocation from the row's `revoked_ms` before and whether it existed.
pub(crate) fn revoked_of(before: Option<Option<i64>>) -> Revoked {
    match before {
        None => Revoked::Unknown,
        Some(None) => Revoked::Now,
        Some(Some(at)) => Revoked::Already(at),
    }
}

/// The error for an id already taken.
pub(crate) fn id_taken(id: &str) -> CatalogError {
    CatalogError::InvalidInput(format!(
        "a token with id {id} exists already; make the token again (ids are random)"
    ))
}
