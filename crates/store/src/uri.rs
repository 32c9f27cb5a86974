//! Store URIs: what users type to name a store, parsed and validated once.
//!
//! Accepted forms:
//! - a plain path, relative or absolute (made absolute against the current directory);
//! - `file:///abs/path` (percent-encoded like any URL);
//! - `s3://bucket[/prefix][?endpoint=URL&region=NAME&path_style=true|false]`;
//! - `memory://[name[/prefix]]` (an in-process store, shared by name for the process's life);
//! - `azblob://container[/prefix][?endpoint=URL&account=NAME]` (Azure Blob Storage; `az://`
//!   is read as the same, as fsspec's adlfs writes it);
//! - `gs://bucket[/prefix][?endpoint=URL]` (Google Cloud Storage, as gsutil and gcloud write
//!   it; `gcs://` is read as the same);
//! - `swift://container[/prefix][?endpoint=STORAGE_URL]` (OpenStack Swift; the endpoint is
//!   the account's storage URL, which v1 authentication otherwise supplies).
//!
//! Credentials never go in a URI: they come from the environment through
//! [`crate::S3Options`] (which also carries the Azure, GCS and Swift settings). A URI that carries
//! one is rejected, and the error shows it redacted.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use percent_encoding::{
    percent_decode_str, percent_encode, utf8_percent_encode, AsciiSet, CONTROLS,
};

use crate::error::StoreError;

/// The kind of store a URI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreScheme {
    /// A local (or locally mounted) directory tree.
    File,
    /// An S3-compatible object store bucket, optionally under a prefix.
    S3,
    /// An in-process memory store (tests, dry runs).
    Memory,
    /// An Azure Blob Storage container, optionally under a prefix.
    Azblob,
    /// A Google Cloud Storage bucket, optionally under a prefix.
    Gcs,
    /// An OpenStack Swift container, optionally under a prefix.
    Swift,
}

impl StoreScheme {
    /// The URI scheme name: `file`, `s3`, `memory`, `azblob`, `gs` or `swift`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreScheme::File => "file",
            StoreScheme::S3 => "s3",
            StoreScheme::Memory => "memory",
            StoreScheme::Azblob => "azblob",
            StoreScheme::Gcs => "gs",
            StoreScheme::Swift => "swift",
        }
    }

    /// Whether the store is reached over the network (an object store server): its data
    /// calls go through HTTP, so throttling senses them and bandwidth caps apply.
    pub fn is_remote(self) -> bool {
        matches!(
            self,
            StoreScheme::S3 | StoreScheme::Azblob | StoreScheme::Gcs | StoreScheme::Swift
        )
    }
}

impl fmt::Display for StoreScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed, validated store location. Holds no credentials.
///
/// `Display` prints the canonical URI, which [`StoreUri::parse`] reads back to an equal value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreUri {
    location: Location,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Location {
    File {
        path: PathBuf,
    },
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: Option<String>,
        path_style: Option<bool>,
    },
    Memory {
        name: String,
        prefix: String,
    },
    Azblob {
        container: String,
        prefix: String,
        endpoint: Option<String>,
        account: Option<String>,
    },
    Gcs {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
    },
    Swift {
        container: String,
        prefix: String,
        endpoint: Option<String>,
    },
}

/// The name a `memory://` URI without a name refers to.
pub const DEFAULT_MEMORY_NAME: &str = "default";

/// Characters escaped when printing a path or prefix inside a URI.
const PATH_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'?')
    .add(b'#')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

/// Characters escaped in query values (`+` would read back as a space).
const QUERY_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'#')
    .add(b'&')
    .add(b'+')
    .add(b'"');

impl StoreUri {
    /// Parses a store URI or a plain local path.
    ///
    /// Errors are [`StoreError::InvalidUri`], saying what is wrong and what is accepted.
    pub fn parse(input: &str) -> Result<StoreUri, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUri {
            uri: one_line(&redact(input)),
            reason: one_line(reason),
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if trimmed.contains('\0') {
            return Err(invalid("it contains a NUL byte"));
        }
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return Self::from_local_path(Path::new(trimmed)).map_err(|_| {
                invalid("the current directory is unknown, so the relative path cannot be resolved")
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => parse_file(trimmed, rest).map_err(|r| invalid(&r)),
            "s3" => parse_s3(rest).map_err(|r| invalid(&r)),
            "memory" => parse_memory(rest).map_err(|r| invalid(&r)),
            "azblob" | "az" => crate::uri_cloud::parse_azblob(rest).map_err(|r| invalid(&r)),
            "gs" | "gcs" => crate::uri_cloud::parse_gcs(rest).map_err(|r| invalid(&r)),
            "swift" => crate::uri_cloud::parse_swift(rest).map_err(|r| invalid(&r)),
            other => Err(invalid(&format!("unsupported scheme `{other}`"))),
        }
    }

    /// A local store rooted at `path` (made absolute against the current directory).
    pub fn from_local_path(path: &Path) -> Result<StoreUri, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUri {
            uri: one_line(&path.display().to_string()),
            reason: one_line(reason),
        };
        if path.as_os_str().is_empty() {
            return Err(invalid("it is empty"));
        }
        let abs = std::path::absolute(path)
            .map_err(|e| invalid(&format!("cannot make the path absolute: {e}")))?;
        Ok(StoreUri {
            location: Location::File {
                path: clean_path(&abs),
            },
        })
    }

    /// The kind of store.
    pub fn scheme(&self) -> StoreScheme {
        match self.location {
            Location::File { .. } => StoreScheme::File,
            Location::S3 { .. } => StoreScheme::S3,
            Location::Memory { .. } => StoreScheme::Memory,
            Location::Azblob { .. } => StoreScheme::Azblob,
            Location::Gcs { .. } => StoreScheme::Gcs,
            Location::Swift { .. } => StoreScheme::Swift,
        }
    }

    /// The absolute root directory of a local store.
    pub fn local_path(&self) -> Option<&Path> {
        match &self.location {
            Location::File { path } => Some(path),
            _ => None,
        }
    }

    /// The bucket of an S3 or GCS store, the container of an Azure Blob or Swift store.
    pub fn bucket(&self) -> Option<&str> {
        match &self.location {
            Location::S3 { bucket, .. } | Location::Gcs { bucket, .. } => Some(bucket),
            Location::Azblob { container, .. } | Location::Swift { container, .. } => {
                Some(container)
            }
            _ => None,
        }
    }

    /// The Azure storage account given in the URI (`?account=`), if any.
    pub fn account(&self) -> Option<&str> {
        match &self.location {
            Location::Azblob { account, .. } => account.as_deref(),
            _ => None,
        }
    }

    /// The name of a memory store (`default` when the URI gave none).
    pub fn memory_name(&self) -> Option<&str> {
        match &self.location {
            Location::Memory { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The key prefix inside the bucket or memory store, without leading or trailing `/`
    /// (empty for the whole bucket, and for local stores).
    pub fn prefix(&self) -> &str {
        match &self.location {
            Location::S3 { prefix, .. }
            | Location::Memory { prefix, .. }
            | Location::Azblob { prefix, .. }
            | Location::Gcs { prefix, .. }
            | Location::Swift { prefix, .. } => prefix,
            Location::File { .. } => "",
        }
    }

    /// The endpoint given in the URI (`?endpoint=`) of an S3, Azure Blob, GCS or Swift
    /// store (for Swift, the account's storage URL).
    pub fn endpoint(&self) -> Option<&str> {
        match &self.location {
            Location::S3 { endpoint, .. }
            | Location::Azblob { endpoint, .. }
            | Location::Gcs { endpoint, .. }
            | Location::Swift { endpoint, .. } => endpoint.as_deref(),
            _ => None,
        }
    }

    /// The S3 region given in the URI (`?region=`), if any.
    pub fn region(&self) -> Option<&str> {
        match &self.location {
            Location::S3 { region, .. } => region.as_deref(),
            _ => None,
        }
    }

    /// The S3 addressing style given in the URI (`?path_style=`), if any.
    pub fn path_style(&self) -> Option<bool> {
        match &self.location {
            Location::S3 { path_style, .. } => *path_style,
            _ => None,
        }
    }
}

impl fmt::Display for StoreUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File { path } => {
                // The path's bytes, not a lossy UTF-8 copy: two paths that differ only in
                // bytes that are not UTF-8 must not print (and so name a job) alike.
                write!(
                    f,
                    "file://{}",
                    percent_encode(&path_bytes(path), PATH_ESCAPES)
                )
            }
            Location::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                path_style,
            } => {
                write!(f, "s3://{bucket}")?;
                if !prefix.is_empty() {
                    write!(f, "/{}", utf8_percent_encode(prefix, PATH_ESCAPES))?;
                }
                let mut sep = '?';
                let mut param = |f: &mut fmt::Formatter<'_>, key: &str, value: &str| {
                    let value = utf8_percent_encode(value, QUERY_ESCAPES);
                    let result = write!(f, "{sep}{key}={value}");
                    sep = '&';
                    result
                };
                if let Some(v) = endpoint {
                    param(f, "endpoint", v)?;
                }
                if let Some(v) = region {
                    param(f, "region", v)?;
                }
                if let Some(v) = path_style {
                    param(f, "path_style", if *v { "true" } else { "false" })?;
                }
                Ok(())
            }
            Location::Memory { name, prefix } => {
                write!(f, "memory://{name}")?;
                if !prefix.is_empty() {
                    write!(f, "/{}", utf8_percent_encode(prefix, PATH_ESCAPES))?;
                }
                Ok(())
            }
            Location::Azblob {
                container,
                prefix,
                endpoint,
                account,
            } => {
                write!(f, "azblob://{container}")?;
                write_prefix_and_query(
                    f,
                    prefix,
                    &[
                        ("endpoint", endpoint.as_deref()),
                        ("account", account.as_deref()),
                    ],
                )
            }
            Location::Gcs {
                bucket,
                prefix,
                endpoint,
            } => {
                write!(f, "gs://{bucket}")?;
                write_prefix_and_query(f, prefix, &[("endpoint", endpoint.as_deref())])
            }
            Location::Swift {
                container,
                prefix,
                endpoint,
            } => {
                write!(f, "swift://{container}")?;
                write_prefix_and_query(f, prefix, &[("endpoint", endpoint.as_deref())])
            }
        }
    }
}

/// Writes `/prefix` (when not empty) and the parameters that are set as `?k=v&k=v`.
fn write_prefix_and_query(
    f: &mut fmt::Formatter<'_>,
    prefix: &str,
    params: &[(&str, Option<&str>)],
) -> fmt::Result {
    if !prefix.is_empty() {
        write!(f, "/{}", utf8_percent_encode(prefix, PATH_ESCAPES))?;
    }
    let mut sep = '?';
    for (key, value) in params {
        if let Some(value) = value {
            write!(
                f,
                "{sep}{key}={}",
                utf8_percent_encode(value, QUERY_ESCAPES)
            )?;
            sep = '&';
        }
    }
    Ok(())
}

impl StoreUri {
    /// An Azure Blob store location (parsed and validated by the caller).
    pub(crate) fn azblob(
        container: String,
        prefix: String,
        endpoint: Option<String>,
        account: Option<String>,
    ) -> StoreUri {
        StoreUri {
            location: Location::Azblob {
                container,
                prefix,
                endpoint,
                account,
            },
        }
    }

    /// A Swift store location (parsed and validated by the caller).
    pub(crate) fn swift(container: String, prefix: String, endpoint: Option<String>) -> StoreUri {
        StoreUri {
            location: Location::Swift {
                container,
                prefix,
                endpoint,
            },
        }
    }

    /// A GCS store location (parsed and validated by the caller).
    pub(crate) fn gcs(bucket: String, prefix: String, endpoint: Option<String>) -> StoreUri {
        StoreUri {
            location: Location::Gcs {
                bucket,
                prefix,
                endpoint,
            },
        }
    }
}

impl std::str::FromStr for StoreUri {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreUri::parse(s)
    }
}

/// Removes `.` components and redundant separators, and resolves `..`: against the real
/// directory when the part before it exists (so `link/..` goes where the file system
/// goes), lexically otherwise. URIs cannot carry `..`, so the result must be free of it.
fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if let Ok(real) = std::fs::canonicalize(&out) {
                    out = real;
                }
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A local path's bytes as the OS holds them (on other systems than Unix, its UTF-8 form).
fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(path.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    {
        match path.to_string_lossy() {
            std::borrow::Cow::Borrowed(text) => std::borrow::Cow::Borrowed(text.as_bytes()),
            std::borrow::Cow::Owned(text) => std::borrow::Cow::Owned(text.into_bytes()),
        }
    }
}

fn parse_file(whole: &str, rest: &str) -> Result<StoreUri, String> {
    if !rest.starts_with('/') && !rest.starts_with("localhost/") {
        return Err("a file URI needs an absolute path: file:///abs/path".into());
    }
    let url = url::Url::parse(whole).map_err(|e| format!("not a valid file URI: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("file URIs take no query (?...) or fragment (#...)".into());
    }
    let path = url
        .to_file_path()
        .map_err(|()| "the file URI names a remote host or an invalid path".to_string())?;
    StoreUri::from_local_path(&path).map_err(|e| e.to_string())
}

/// `text` on one line, for an error message: control characters (a `%0a` that the
/// redaction of credentials decoded, say) are shown escaped (`\n`), so a message stays one
/// line a log can hold and a terminal cannot be driven by it.
fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

fn parse_s3(rest: &str) -> Result<StoreUri, String> {
    let (location, query) = match rest.split_once('?') {
        Some((l, q)) => (l, Some(q)),
        None => (rest, None),
    };
    if location.contains('#') {
        return Err("a '#' in an S3 URI must be written %23".into());
    }
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    if bucket.contains('@') {
        return Err(credentials_reason());
    }
    if bucket.is_empty() {
        return Err("no bucket: write s3://bucket or s3://bucket/prefix".into());
    }
    validate_bucket(bucket)?;
    let prefix = decode_prefix(prefix)?;

    let mut endpoint = None;
    let mut region = None;
    let mut path_style = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let lower = key.to_ascii_lowercase();
        if looks_secret(&lower) {
            return Err(credentials_reason());
        }
        let slot_taken =
            match lower.as_str() {
                "endpoint" => endpoint.replace(validate_endpoint(&value)?).is_some(),
                "region" => region.replace(validate_region(&value)?).is_some(),
                "path_style" => path_style
                    .replace(parse_bool(&value).ok_or_else(|| {
                        format!("path_style must be true or false, not `{value}`")
                    })?)
                    .is_some(),
                _ => {
                    return Err(format!(
                        "unknown query parameter `{key}` (known: endpoint, region, path_style)"
                    ))
                }
            };
        if slot_taken {
            return Err(format!("query parameter `{key}` is given twice"));
        }
    }
    Ok(StoreUri {
        location: Location::S3 {
            bucket: bucket.to_string(),
            prefix,
            endpoint,
            region,
            path_style,
        },
    })
}

fn parse_memory(rest: &str) -> Result<StoreUri, String> {
    if rest.contains('?') || rest.contains('#') {
        return Err("memory URIs take no query (?...) or fragment (#...)".into());
    }
    let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("a memory store name may use only letters, digits, '-', '_' and '.'".into());
    }
    let name = if name.is_empty() {
        DEFAULT_MEMORY_NAME
    } else {
        name
    };
    Ok(StoreUri {
        location: Location::Memory {
            name: name.to_string(),
            prefix: decode_prefix(prefix)?,
        },
    })
}

pub(crate) fn credentials_reason() -> String {
    "credentials are not accepted in URIs; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
     (and AWS_SESSION_TOKEN) in the environment instead"
        .into()
}

/// Query keys that would carry a credential (`sig` and `sas`: an Azure SAS token's).
pub(crate) fn looks_secret(lower_key: &str) -> bool {
    [
        "sig",
        "sas",
        "key",
        "secret",
        "token",
        "password",
        "credential",
        "signature",
    ]
    .iter()
    .any(|w| lower_key.contains(w))
}

/// Bucket naming rules of S3 (general purpose buckets).
fn validate_bucket(bucket: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "bucket name `{bucket}` is invalid: {why} (3 to 63 characters: lowercase letters, \
             digits, '-' and '.', starting and ending with a letter or digit)"
        ))
    };
    if !(3..=63).contains(&bucket.len()) {
        return bad("wrong length");
    }
    if !bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return bad("it has a character other than a-z, 0-9, '-' and '.'");
    }
    let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_last_ok(bucket.chars().next()) || !first_last_ok(bucket.chars().last()) {
        return bad("it must start and end with a letter or digit");
    }
    if bucket.contains("..") {
        return bad("it has two adjacent dots");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it looks like an IP address");
    }
    Ok(())
}

/// Percent-decodes a prefix, trims `/` at both ends and checks its segments.
pub(crate) fn decode_prefix(raw: &str) -> Result<String, String> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "the prefix is not valid UTF-8 once percent-decoded".to_string())?;
    let trimmed = decoded.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!(
                "the prefix `{trimmed}` has an empty, '.' or '..' segment"
            ));
        }
        if segment.contains('\0') {
            return Err("the prefix contains a NUL byte".into());
        }
    }
    Ok(trimmed.to_string())
}

pub(crate) fn validate_endpoint(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value)
        .map_err(|e| format!("endpoint is not a URL ({e}); write it like http://127.0.0.1:9000"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("endpoint must start with http:// or https://".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(credentials_reason());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("endpoint has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("endpoint takes no query (?...) or fragment (#...)".into());
    }
    Ok(value.trim_end_matches('/').to_string())
}

fn validate_region(value: &str) -> Result<String, String> {
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "region `{value}` is invalid (letters, digits and '-', like us-east-1)"
        ));
    }
    Ok(value.to_string())
}

/// Parses true/false, 1/0, yes/no, on/off (any case).
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Replaces anything in `input` that may be a credential by `***`: user information before
/// an `@` in the authority or in an embedded URL, and values of secret-looking query keys.
pub(crate) fn redact(input: &str) -> String {
    let (head, query) = match input.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (input, None),
    };
    let mut out = redact_userinfo(head);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if looks_secret(&k.to_ascii_lowercase()) => format!("{k}=***"),
                Some((k, v)) => {
                    let decoded = percent_decode_str(v).decode_utf8_lossy();
                    if decoded.contains('@') {
                        format!("{k}={}", redact_userinfo(&decoded))
                    } else {
                        pair.to_string()
                    }
                }
                None => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// `scheme://user:pass@host/...` -> `scheme://***@host/...`
fn redact_userinfo(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_string();
    };
    let rest = text.get(start..).unwrap_or("");
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = rest.get(..authority_end).unwrap_or("");
    match authority.rfind('@') {
        Some(at) => format!(
            "{}***{}",
            text.get(..start).unwrap_or(""),
            rest.get(at..).unwrap_or("")
        ),
        None => text.to_string(),
    }
}
