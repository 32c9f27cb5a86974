//! [`AzblobOptions`], [`GcsOptions`] and [`SwiftOptions`]: Azure Blob, Google Cloud Storage
//! and OpenStack Swift settings and credentials, read from the environment variables those
//! services' own tools use.
//!
//! Like [`crate::S3Options`] (which carries both, so every caller that opens stores passes
//! one value), these are the only place the store reads such settings: OpenDAL's own
//! environment and instance-metadata loading is turned off for both services.

use std::fmt;

/// Azure Blob settings that do not belong in a URI. An `azblob://` URI's `?endpoint=` and
/// `?account=` override the corresponding fields.
///
/// `Debug` shows whether each credential is set, never its value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AzblobOptions {
    /// The blob service endpoint, e.g. `http://127.0.0.1:10000/devstoreaccount1` (Azurite).
    /// `None` means `https://ACCOUNT.blob.core.windows.net`.
    pub endpoint: Option<String>,
    /// The storage account name.
    pub account: Option<String>,
    /// The account's shared key, base64 (secret: redacted in `Debug`).
    pub account_key: Option<String>,
    /// A shared access signature, with or without its leading `?` (secret).
    pub sas_token: Option<String>,
}

impl AzblobOptions {
    /// Reads `AZURE_STORAGE_ACCOUNT`, `AZURE_STORAGE_KEY`, `AZURE_STORAGE_SAS_TOKEN` (the
    /// Azure CLI's names), `STRATA_AZBLOB_ENDPOINT`, and fills what they leave unset from
    /// `AZURE_STORAGE_CONNECTION_STRING` (`AccountName`, `AccountKey`, `BlobEndpoint`,
    /// `SharedAccessSignature`, `DefaultEndpointsProtocol`, `EndpointSuffix`).
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut options = AzblobOptions {
            endpoint: get("STRATA_AZBLOB_ENDPOINT"),
            account: get("AZURE_STORAGE_ACCOUNT"),
            account_key: get("AZURE_STORAGE_KEY"),
            sas_token: get("AZURE_STORAGE_SAS_TOKEN"),
        };
        if let Some(conn) = get("AZURE_STORAGE_CONNECTION_STRING") {
            options.fill_from_connection_string(&conn);
        }
        options
    }

    /// Fills unset fields from an Azure storage connection string.
    fn fill_from_connection_string(&mut self, conn: &str) {
        let field = |name: &str| {
            conn.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key.trim().eq_ignore_ascii_case(name) && !value.trim().is_empty())
                    .then(|| value.trim().to_string())
            })
        };
        self.account = self.account.take().or_else(|| field("AccountName"));
        self.account_key = self.account_key.take().or_else(|| field("AccountKey"));
        self.sas_token = self
            .sas_token
            .take()
            .or_else(|| field("SharedAccessSignature"));
        let suffix_endpoint = || {
            let account = self.account.as_deref()?;
            let protocol = field("DefaultEndpointsProtocol").unwrap_or_else(|| "https".into());
            let suffix = field("EndpointSuffix")?;
            Some(format!("{protocol}://{account}.blob.{suffix}"))
        };
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| field("BlobEndpoint"))
            .or_else(suffix_endpoint);
        self.endpoint = endpoint;
    }

    /// Whether a credential (account key or SAS token) is present.
    pub fn has_credentials(&self) -> bool {
        self.account_key.is_some() || self.sas_token.is_some()
    }
}

/// Google Cloud Storage settings that do not belong in a URI. A `gs://` URI's
/// `?endpoint=` overrides [`GcsOptions::endpoint`].
///
/// `Debug` shows whether each credential is set, never its value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GcsOptions {
    /// The JSON API endpoint of a GCS-compatible server (an emulator), e.g.
    /// `http://127.0.0.1:4443`. `None` means `https://storage.googleapis.com`.
    pub endpoint: Option<String>,
    /// Path of a service account (or authorized user) JSON key file. Not a secret itself,
    /// but shown only as set or not.
    pub credential_path: Option<String>,
    /// An OAuth 2 access token (secret: redacted in `Debug`).
    pub token: Option<String>,
}

impl GcsOptions {
    /// Reads `STORAGE_EMULATOR_HOST` (the emulator convention of Google's client libraries:
    /// `host:port` or a URL), `GOOGLE_APPLICATION_CREDENTIALS` (a key file path) and
    /// `GOOGLE_OAUTH_ACCESS_TOKEN`.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let endpoint = get("STORAGE_EMULATOR_HOST").map(|host| {
            if host.contains("://") {
                host
            } else {
                format!("http://{host}")
            }
        });
        GcsOptions {
            endpoint,
            credential_path: get("GOOGLE_APPLICATION_CREDENTIALS"),
            token: get("GOOGLE_OAUTH_ACCESS_TOKEN"),
        }
    }

    /// Whether a credential (key file or token) is present.
    pub fn has_credentials(&self) -> bool {
        self.credential_path.is_some() || self.token.is_some()
    }
}

/// OpenStack Swift credentials, as the `swift` command line client reads them: v1
/// authentication (`ST_AUTH`, `ST_USER`, `ST_KEY`: a GET of the auth URL with
/// `X-Auth-User`/`X-Auth-Key` answers a token and the account's storage URL), or a token
/// and storage URL obtained elsewhere (`OS_AUTH_TOKEN`, `OS_STORAGE_URL`, e.g. from
/// Keystone). A `swift://` URI's `?endpoint=` overrides the storage URL.
///
/// `Debug` shows whether each credential is set, never its value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SwiftOptions {
    /// The v1 auth URL, e.g. `http://127.0.0.1:8080/auth/v1.0`.
    pub auth_url: Option<String>,
    /// The v1 user, e.g. `test:tester` (not a secret, shown in errors).
    pub user: Option<String>,
    /// The v1 key (secret: redacted in `Debug`).
    pub key: Option<String>,
    /// A token to use as is (secret). With v1 credentials too, it is used until the
    /// server refuses it, then renewed through v1 authentication.
    pub token: Option<String>,
    /// The account's storage URL, e.g. `http://127.0.0.1:8080/v1/AUTH_test`.
    pub storage_url: Option<String>,
}

impl SwiftOptions {
    /// Reads `ST_AUTH`, `ST_USER`, `ST_KEY`, `OS_AUTH_TOKEN` and `OS_STORAGE_URL`.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        SwiftOptions {
            auth_url: get("ST_AUTH"),
            user: get("ST_USER"),
            key: get("ST_KEY"),
            token: get("OS_AUTH_TOKEN"),
            storage_url: get("OS_STORAGE_URL"),
        }
    }

    /// Whether a credential (a v1 key or a token) is present.
    pub fn has_credentials(&self) -> bool {
        self.key.is_some() || self.token.is_some()
    }
}

impl fmt::Debug for SwiftOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwiftOptions")
            .field("auth_url", &self.auth_url)
            .field("user", &self.user)
            .field("key", &Redacted(&self.key))
            .field("token", &Redacted(&self.token))
            .field("storage_url", &self.storage_url)
            .finish()
    }
}

/// Prints `Some(<redacted>)` or `None`.
pub(crate) struct Redacted<'a>(pub(crate) &'a Option<String>);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Some(<redacted>)"),
            None => f.write_str("None"),
        }
    }
}

impl fmt::Debug for AzblobOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzblobOptions")
            .field("endpoint", &self.endpoint)
            .field("account", &self.account)
            .field("account_key", &Redacted(&self.account_key))
            .field("sas_token", &Redacted(&self.sas_token))
            .finish()
    }
}

impl fmt::Debug for GcsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsOptions")
            .field("endpoint", &self.endpoint)
            .field("credential_path", &Redacted(&self.credential_path))
            .field("token", &Redacted(&self.token))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn azure_variables_win_over_the_connection_string() {
        let vars = [
            ("AZURE_STORAGE_ACCOUNT", "mine"),
            (
                "AZURE_STORAGE_CONNECTION_STRING",
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
                 AccountKey=S2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
            ),
        ];
        let options = AzblobOptions::from_lookup(&lookup(&vars));
        assert_eq!(options.account.as_deref(), Some("mine"));
        assert_eq!(options.account_key.as_deref(), Some("S2V5"));
        assert_eq!(
            options.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        let shown = format!("{options:?}");
        assert!(!shown.contains("S2V5"), "{shown}");
    }

    #[test]
    fn connection_string_suffix_makes_the_endpoint() {
        let vars = [(
            "AZURE_STORAGE_CONNECTION_STRING",
            "AccountName=acct;SharedAccessSignature=sv=1&sig=X;EndpointSuffix=core.chinacloudapi.cn",
        )];
        let options = AzblobOptions::from_lookup(&lookup(&vars));
        assert_eq!(
            options.endpoint.as_deref(),
            Some("https://acct.blob.core.chinacloudapi.cn")
        );
        assert_eq!(options.sas_token.as_deref(), Some("sv=1&sig=X"));
        assert!(!format!("{options:?}").contains("sig=X"));
    }

    #[test]
    fn swift_variables_are_read_and_secrets_hidden() {
        let vars = [
            ("ST_AUTH", "http://127.0.0.1:8080/auth/v1.0"),
            ("ST_USER", "test:tester"),
            ("ST_KEY", "SECRETKEY"),
            ("OS_AUTH_TOKEN", "AUTH_tkSECRET"),
            ("OS_STORAGE_URL", " "),
        ];
        let options = SwiftOptions::from_lookup(&lookup(&vars));
        assert_eq!(options.user.as_deref(), Some("test:tester"));
        assert_eq!(options.storage_url, None);
        assert!(options.has_credentials());
        let shown = format!("{options:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("test:tester"), "{shown}");
    }

    #[test]
    fn gcs_emulator_host_becomes_an_endpoint() {
        let vars = [
            ("STORAGE_EMULATOR_HOST", "127.0.0.1:4443"),
            ("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.secret"),
        ];
        let options = GcsOptions::from_lookup(&lookup(&vars));
        assert_eq!(options.endpoint.as_deref(), Some("http://127.0.0.1:4443"));
        assert!(options.has_credentials());
        assert!(!format!("{options:?}").contains("ya29"));
    }
}
