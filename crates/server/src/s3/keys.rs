//! Who may call the front door: requests signed (AWS Signature V4, checked by `s3s`)
//! with the key pair in the service's environment, `STRATA_S3_ACCESS_KEY` and
//! `STRATA_S3_SECRET_KEY` (everything allowed), or with a key pair bound to an API token
//! ([`super::token_keys`]: the token's scope and key prefix apply, `AccessDenied`
//! otherwise; a read token lists and reads, a write token also writes); and, with `[s3] allow_anonymous = true`, unsigned requests,
//! read-only (ListBuckets, HeadBucket, ListObjects(V2), GetObject, HeadObject, ListParts):
//! a public read-only mirror is the usual reason to serve anonymous S3, and an unsigned
//! write would be a write nobody can be held to.
//!
//! `s3s` answers an unknown access key with `InvalidAccessKeyId`, a bad signature with
//! `SignatureDoesNotMatch` and a date more than 15 minutes off with
//! `RequestTimeTooSkewed`. The secret never reaches a log or an error: it lives in an
//! `s3s` `SecretKey`, whose `Debug` hides it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, DeleteObjectsInput};
use s3s::path::S3Path;
use s3s::{s3_error, S3Request, S3Result};
use strata_catalog::{ApiToken, TokenCatalog, TokenScope};
use strata_heat::config::S3FrontConfig;

use super::front::Buckets;
use super::token_keys;
use crate::error::ServeError;
use crate::state::now_ms;

/// The environment variable holding the front door's access key id.
pub const ACCESS_KEY_VAR: &str = "STRATA_S3_ACCESS_KEY";
/// The environment variable holding the front door's secret key.
pub const SECRET_KEY_VAR: &str = "STRATA_S3_SECRET_KEY";

/// The key pairs the front door accepts, and whether unsigned reads are served.
pub struct FrontKeys {
    pair: Option<(String, SecretKey)>,
    allow_anonymous: bool,
    tokens: Option<TokenKeys>,
}

/// The key pairs bound to API tokens: the catalog's tokens and the master key their
/// secrets derive from (read at the first use: `strata token create --s3` may make it
/// after the service started).
#[derive(Clone)]
pub struct TokenKeys {
    catalog: Arc<dyn TokenCatalog>,
    data_dir: PathBuf,
    master: Arc<OnceLock<[u8; 32]>>,
}

impl TokenKeys {
    /// The tokens of `catalog`, secrets derived from the master key in `data_dir`.
    pub fn new(catalog: Arc<dyn TokenCatalog>, data_dir: PathBuf) -> Self {
        TokenKeys {
            catalog,
            data_dir,
            master: Arc::new(OnceLock::new()),
        }
    }

    fn master(&self) -> Option<[u8; 32]> {
        if let Some(key) = self.master.get() {
            return Some(*key);
        }
        match token_keys::read_master_key(&self.data_dir) {
            Ok(Some(key)) => Some(*self.master.get_or_init(|| key)),
            Ok(None) => None,
            Err(err) => {
                tracing::error!(%err, "cannot read the S3 master key; token key pairs are refused");
                None
            }
        }
    }

    /// The token `access_key` is bound to, when it is one and in force.
    async fn token(&self, access_key: &str) -> Option<ApiToken> {
        let id = token_keys::token_id(access_key)?;
        match self.catalog.token(&id).await {
            Ok(Some(token)) if token.in_force(now_ms()) => Some(token),
            Ok(_) => None,
            Err(err) => {
                tracing::error!(%err, "cannot read the API tokens; an S3 request is refused");
                None
            }
        }
    }
}

impl FrontKeys {
    /// The pair from the environment; refused when only one of the two variables is set,
    /// or when neither is and `[s3] allow_anonymous` is off (nobody could call it).
    pub fn from_env(config: &S3FrontConfig) -> Result<FrontKeys, ServeError> {
        let read = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Self::new(read(ACCESS_KEY_VAR), read(SECRET_KEY_VAR), config)
    }

    /// The pair given; the same checks as [`FrontKeys::from_env`].
    pub fn new(
        access: Option<String>,
        secret: Option<String>,
        config: &S3FrontConfig,
    ) -> Result<FrontKeys, ServeError> {
        let pair = match (access, secret) {
            (Some(access), Some(secret)) => Some((access, SecretKey::from(secret))),
            (None, None) => None,
            _ => {
                return Err(ServeError::Config {
                    field: "server.s3_listen".to_string(),
                    reason: format!(
                        "set both {ACCESS_KEY_VAR} and {SECRET_KEY_VAR} in the service's \
                         environment (the S3 front door's key pair), or neither"
                    ),
                })
            }
        };
        if pair.is_none() && !config.allow_anonymous {
            return Err(ServeError::Config {
                field: "server.s3_listen".to_string(),
                reason: format!(
                    "the S3 front door needs a key pair: set {ACCESS_KEY_VAR} and \
                     {SECRET_KEY_VAR} in the service's environment (or serve anonymous \
                     reads with [s3] allow_anonymous = true)"
                ),
            });
        }
        Ok(FrontKeys {
            pair,
            allow_anonymous: config.allow_anonymous,
            tokens: None,
        })
    }

    /// Also accepts the key pairs bound to API tokens.
    pub fn with_tokens(mut self, tokens: TokenKeys) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Whether any request can be signed (else only anonymous reads are served).
    pub fn signed(&self) -> bool {
        self.pair.is_some()
    }

    /// The checker of signatures, for `s3s`.
    pub fn auth(&self) -> KeyAuth {
        KeyAuth {
            pair: self.pair.clone(),
            tokens: self.tokens.clone(),
        }
    }

    /// The checker of what each caller may do, for `s3s`.
    pub fn access(&self, buckets: Buckets) -> FrontAccess {
        FrontAccess {
            allowed: self.allow_anonymous,
            tokens: self.tokens.clone(),
            buckets,
        }
    }
}

/// The secret of each accepted access key id.
pub struct KeyAuth {
    pair: Option<(String, SecretKey)>,
    tokens: Option<TokenKeys>,
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if let Some((id, secret)) = &self.pair {
            if id == access_key {
                return Ok(secret.clone());
            }
        }
        if let Some(tokens) = &self.tokens {
            if let (Some(master), Some(_)) = (tokens.master(), tokens.token(access_key).await) {
                return Ok(SecretKey::from(token_keys::secret(&master, access_key)));
            }
        }
        Err(s3_error!(
            InvalidAccessKeyId,
            "the access key id {access_key:?} is not known to this service; sign with the key \
             pair in its {ACCESS_KEY_VAR} and {SECRET_KEY_VAR}, or with one from `strata token \
             create --s3`"
        ))
    }
}

/// Requests signed with the environment's pair may do anything, those signed with a
/// token's pair what the token may; unsigned ones only read, and only when allowed.
pub struct FrontAccess {
    allowed: bool,
    tokens: Option<TokenKeys>,
    buckets: Buckets,
}

/// The operations that change objects (a write token's).
const WRITE_OPERATIONS: &[&str] = &[
    "PutObject",
    "DeleteObject",
    "DeleteObjects",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
];

impl FrontAccess {
    /// The token behind a request's key pair; `None` for the environment's pair.
    async fn token_of(&self, access_key: &str) -> S3Result<Option<ApiToken>> {
        let Some(tokens) = &self.tokens else {
            return Ok(None);
        };
        if token_keys::token_id(access_key).is_none() {
            return Ok(None);
        }
        tokens.token(access_key).await.map(Some).ok_or_else(|| {
            s3_error!(
                AccessDenied,
                "the token of this access key is revoked or expired"
            )
        })
    }

    /// The token of a signed request to a per-operation check, if any.
    async fn request_token<T>(&self, req: &S3Request<T>) -> S3Result<Option<ApiToken>> {
        match &req.credentials {
            Some(credentials) => self.token_of(&credentials.access_key).await,
            None => Ok(None),
        }
    }

    /// `AccessDenied` unless `key` (a service key) is under the token's prefix.
    fn under_prefix(token: &ApiToken, key: &str) -> S3Result<()> {
        match &token.prefix {
            Some(prefix) if !key.starts_with(prefix.as_str()) => Err(s3_error!(
                AccessDenied,
                "this access key's token is limited to keys under {prefix:?}"
            )),
            _ => Ok(()),
        }
    }

    /// The scope and prefix of `token` against the request in `cx`.
    fn check_token(&self, token: &ApiToken, cx: &S3AccessContext<'_>) -> S3Result<()> {
        let operation = cx.s3_op().name();
        let need = if WRITE_OPERATIONS.contains(&operation) {
            TokenScope::Write
        } else {
            TokenScope::Read
        };
        if token.scope < need {
            return Err(s3_error!(
                AccessDenied,
                "{operation} needs a {} token; this access key's token is {}",
                need.as_str(),
                token.scope.as_str()
            ));
        }
        match cx.s3_path() {
            S3Path::Object { bucket, key } => {
                Self::under_prefix(token, &self.buckets.key(bucket, key)?)
            }
            // A listing of keys (objects, or uploads in progress) shows only the prefix's.
            S3Path::Bucket { bucket }
                if operation.starts_with("ListObjects") || operation == "ListMultipartUploads" =>
            {
                let listed = cx
                    .uri()
                    .query()
                    .and_then(|query| {
                        url::form_urlencoded::parse(query.as_bytes())
                            .find(|(name, _)| name == "prefix")
                            .map(|(_, value)| value.into_owned())
                    })
                    .unwrap_or_default();
                let listed = self.buckets.key(bucket, &listed)?;
                match &token.prefix {
                    // A listing above the prefix would show other keys.
                    Some(prefix) if !listed.starts_with(prefix.as_str()) => Err(s3_error!(
                        AccessDenied,
                        "this access key's token is limited to keys under {prefix:?}; list \
                         with a prefix under it"
                    )),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

/// The operations an anonymous caller may make when `[s3] allow_anonymous` is on.
const ANONYMOUS_OPERATIONS: &[&str] = &[
    "ListBuckets",
    "HeadBucket",
    "ListObjects",
    "ListObjectsV2",
    "GetObject",
    "HeadObject",
    "GetBucketLocation",
];

#[async_trait::async_trait]
impl S3Access for FrontAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if let Some(credentials) = cx.credentials() {
            let access_key = credentials.access_key.clone();
            return match self.token_of(&access_key).await? {
                Some(token) => self.check_token(&token, cx),
                None => Ok(()),
            };
        }
        let operation = cx.s3_op().name();
        if self.allowed && ANONYMOUS_OPERATIONS.contains(&operation) {
            return Ok(());
        }
        Err(if self.allowed {
            s3_error!(
                AccessDenied,
                "anonymous requests may only read; sign {operation} with an access key"
            )
        } else {
            s3_error!(
                AccessDenied,
                "this service serves signed requests only; sign {operation} with an access key"
            )
        })
    }

    /// Each key inside the body under the token's prefix.
    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        if let Some(token) = self.request_token(req).await? {
            for object in &req.input.delete.objects {
                Self::under_prefix(&token, &self.buckets.key(&req.input.bucket, &object.key)?)?;
            }
        }
        Ok(())
    }

    /// The copy's source under the token's prefix too.
    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        if let Some(token) = self.request_token(req).await? {
            if let CopySource::Bucket { bucket, key, .. } = &req.input.copy_source {
                Self::under_prefix(&token, &self.buckets.key(bucket, key)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow_anonymous: bool) -> S3FrontConfig {
        S3FrontConfig {
            allow_anonymous,
            ..S3FrontConfig::default()
        }
    }

    #[test]
    fn a_pair_or_anonymous_is_needed() {
        assert!(FrontKeys::new(None, None, &config(false)).is_err());
        assert!(FrontKeys::new(Some("a".into()), None, &config(true)).is_err());
        assert!(!FrontKeys::new(None, None, &config(true)).unwrap().signed());
        let keys = FrontKeys::new(Some("a".into()), Some("s".into()), &config(false)).unwrap();
        assert!(keys.signed());
    }

    #[tokio::test]
    async fn unknown_keys_are_refused_without_the_secret() {
        let keys = FrontKeys::new(
            Some("id".into()),
            Some("very-secret".into()),
            &config(false),
        )
        .unwrap();
        let auth = keys.auth();
        assert_eq!(
            auth.get_secret_key("id").await.unwrap().expose(),
            "very-secret"
        );
        let err = auth.get_secret_key("other").await.unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::InvalidAccessKeyId);
        assert!(!format!("{err:?}").contains("very-secret"));
    }
}
