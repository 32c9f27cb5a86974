//! Who may call the front door: requests signed (AWS Signature V4, checked by `s3s`)
//! with the key pair in the service's environment, `STRATA_S3_ACCESS_KEY` and
//! `STRATA_S3_SECRET_KEY`; and, with `[s3] allow_anonymous = true`, unsigned requests,
//! read-only (ListBuckets, HeadBucket, ListObjects(V2), GetObject, HeadObject, ListParts):
//! a public read-only mirror is the usual reason to serve anonymous S3, and an unsigned
//! write would be a write nobody can be held to.
//!
//! `s3s` answers an unknown access key with `InvalidAccessKeyId`, a bad signature with
//! `SignatureDoesNotMatch` and a date more than 15 minutes off with
//! `RequestTimeTooSkewed`. The secret never reaches a log or an error: it lives in an
//! `s3s` `SecretKey`, whose `Debug` hides it.

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};
use strata_heat::config::S3FrontConfig;

use crate::error::ServeError;

/// The environment variable holding the front door's access key id.
pub const ACCESS_KEY_VAR: &str = "STRATA_S3_ACCESS_KEY";
/// The environment variable holding the front door's secret key.
pub const SECRET_KEY_VAR: &str = "STRATA_S3_SECRET_KEY";

/// The key pairs the front door accepts, and whether unsigned reads are served.
pub struct FrontKeys {
    pair: Option<(String, SecretKey)>,
    allow_anonymous: bool,
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
        })
    }

    /// Whether any request can be signed (else only anonymous reads are served).
    pub fn signed(&self) -> bool {
        self.pair.is_some()
    }

    /// The checker of signatures, for `s3s`.
    pub fn auth(&self) -> KeyAuth {
        KeyAuth {
            pair: self.pair.clone(),
        }
    }

    /// The checker of what each caller may do, for `s3s`.
    pub fn access(&self) -> AnonymousReads {
        AnonymousReads {
            allowed: self.allow_anonymous,
        }
    }
}

/// The secret of each accepted access key id.
pub struct KeyAuth {
    pair: Option<(String, SecretKey)>,
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match &self.pair {
            Some((id, secret)) if id == access_key => Ok(secret.clone()),
            _ => Err(s3_error!(
                InvalidAccessKeyId,
                "the access key id {access_key:?} is not known to this service; sign with \
                 the key pair in its {ACCESS_KEY_VAR} and {SECRET_KEY_VAR}"
            )),
        }
    }
}

/// Signed requests may do anything; unsigned ones only read, and only when allowed.
pub struct AnonymousReads {
    allowed: bool,
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
impl S3Access for AnonymousReads {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_some() {
            return Ok(());
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
