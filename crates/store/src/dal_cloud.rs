//! OpenDAL's Azure Blob and Google Cloud Storage services, configured from a store URI and
//! the environment's settings ([`AzblobOptions`], [`GcsOptions`]); URI parameters win.
//!
//! Credentials are handed to OpenDAL explicitly or not at all: with none, requests go
//! unsigned (public containers and buckets, emulators), never through OpenDAL's own
//! discovery of environment variables, profile files or instance metadata, so what a
//! store uses is exactly what the options say.

use crate::error::StoreError;
use crate::options_cloud::{AzblobOptions, GcsOptions};
use crate::uri::{validate_endpoint, StoreScheme, StoreUri};

/// The public GCS JSON API endpoint.
const GCS_ENDPOINT: &str = "https://storage.googleapis.com";

/// The operator root of a URI's prefix: `/` or `/prefix/`.
pub(crate) fn root_of(uri: &StoreUri) -> String {
    match uri.prefix() {
        "" => "/".to_string(),
        p => format!("/{p}/"),
    }
}

/// An endpoint from the environment, checked as a URI's would be.
fn env_endpoint(value: &str, variable: &str) -> Result<String, StoreError> {
    validate_endpoint(value).map_err(|reason| StoreError::InvalidUri {
        uri: variable.into(),
        reason: format!("the endpoint from the environment is invalid: {reason}"),
    })
}

/// Builds the Azure Blob service; returns it and the endpoint as shown in errors.
pub(crate) fn azblob_builder(
    uri: &StoreUri,
    options: &AzblobOptions,
) -> Result<(opendal::services::Azblob, String), StoreError> {
    let shown = uri.to_string();
    let account = uri
        .account()
        .map(str::to_string)
        .or(options.account.clone());
    let endpoint = match (uri.endpoint(), &options.endpoint, &account) {
        (Some(e), _, _) => e.to_string(),
        (None, Some(e), _) => env_endpoint(e, "STRATA_AZBLOB_ENDPOINT")?,
        (None, None, Some(account)) => format!("https://{account}.blob.core.windows.net"),
        (None, None, None) => {
            return Err(StoreError::InvalidUri {
                uri: shown,
                reason: "no storage account: set AZURE_STORAGE_ACCOUNT (or ?account=NAME), \
                         or an endpoint (?endpoint=URL or STRATA_AZBLOB_ENDPOINT)"
                    .into(),
            })
        }
    };
    let mut builder = opendal::services::Azblob::default()
        .container(uri.bucket().unwrap_or_default())
        .root(&root_of(uri))
        .endpoint(&endpoint);
    if let Some(account) = &account {
        builder = builder.account_name(account);
    }
    builder = match (&options.account_key, &options.sas_token) {
        (_, Some(sas)) => builder.sas_token(sas.trim_start_matches('?')),
        (Some(_), None) if account.is_none() => {
            return Err(StoreError::Auth {
                uri: shown,
                detail: "AZURE_STORAGE_KEY is set but no account name is: set \
                         AZURE_STORAGE_ACCOUNT or ?account=NAME"
                    .into(),
            })
        }
        (Some(key), None) => builder.account_key(key),
        (None, None) => builder.skip_signature(),
    };
    Ok((builder, endpoint))
}

/// Builds the GCS service; returns it and the endpoint as shown in errors.
pub(crate) fn gcs_builder(
    uri: &StoreUri,
    options: &GcsOptions,
) -> Result<(opendal::services::Gcs, String), StoreError> {
    let endpoint = match (uri.endpoint(), &options.endpoint) {
        (Some(e), _) => e.to_string(),
        (None, Some(e)) => env_endpoint(e, "STORAGE_EMULATOR_HOST")?,
        (None, None) => GCS_ENDPOINT.to_string(),
    };
    let mut builder = opendal::services::Gcs::default()
        .bucket(uri.bucket().unwrap_or_default())
        .root(&root_of(uri))
        .endpoint(&endpoint)
        .disable_config_load()
        .disable_vm_metadata();
    if let Some(token) = &options.token {
        builder = builder.token(token.clone());
    } else if let Some(path) = &options.credential_path {
        check_key_file(uri, path)?;
        builder = builder.credential_path(path);
    } else {
        builder = builder.skip_signature();
    }
    Ok((builder, endpoint))
}

/// Checks that the key file `GOOGLE_APPLICATION_CREDENTIALS` names is a readable JSON key
/// (an object with a `type`), so that a wrong path or a damaged file is named when the
/// store opens instead of surfacing as a failed request signature. The file's content is
/// never put in the error: it holds a private key.
fn check_key_file(uri: &StoreUri, path: &str) -> Result<(), StoreError> {
    let unusable = |why: String| StoreError::Auth {
        uri: uri.to_string(),
        detail: format!("GOOGLE_APPLICATION_CREDENTIALS names {path}, which {why}"),
    };
    let text = std::fs::read(path).map_err(|e| unusable(format!("cannot be read ({e})")))?;
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        unusable(format!(
            "is not a JSON key file (invalid JSON at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if json.get("type").and_then(|t| t.as_str()).is_none() {
        return Err(unusable(
            "is not a service account or authorized user key file (no \"type\")".into(),
        ));
    }
    Ok(())
}

/// The error for a container or bucket that does not exist.
pub(crate) fn missing_namespace(shown: &str, scheme: StoreScheme) -> StoreError {
    let what = match scheme {
        StoreScheme::Azblob | StoreScheme::Swift => "container",
        _ => "bucket",
    };
    StoreError::NotFound {
        path: format!("the {what} of {shown}"),
    }
}
