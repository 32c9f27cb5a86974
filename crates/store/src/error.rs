//! [`StoreError`]: what went wrong in a store, on which path, and what the operator can do.
//!
//! Rules every variant follows:
//! - one line, naming the path, key, URI or endpoint it concerns;
//! - says what to do next;
//! - never contains a credential (URIs are redacted before they get here, OpenDAL request
//!   contexts, which hold full request URLs and headers, are left out);
//! - answers [`StoreError::is_retryable`] (and [`StoreError::retry_after`] when the server
//!   said when), so retry lives in one place in the caller.

use std::error::Error as _;
use std::io;
use std::time::Duration;

use crate::retry_after::{pushback_of, show_secs, MAX_RETRY_AFTER};

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URI could not be parsed or is not supported.
    #[error(
        "invalid store URI `{uri}`: {reason}; accepted: a local path, file:///abs/path, \
         s3://bucket[/prefix][?endpoint=URL&region=NAME&path_style=true|false] \
         (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), \
         azblob://container[/prefix][?endpoint=URL&account=NAME] (AZURE_STORAGE_KEY), \
         gs://bucket[/prefix][?endpoint=URL] (GOOGLE_APPLICATION_CREDENTIALS), \
         swift://container[/prefix][?endpoint=STORAGE_URL] (ST_AUTH, ST_USER, ST_KEY), \
         memory://[name[/prefix]]"
    )]
    InvalidUri {
        /// The URI as given, with anything that looks like a credential replaced by `***`.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A relative path handed to a store is not usable as a key or file name.
    #[error(
        "invalid path `{path}` inside the store: {reason}; paths must be relative, '/'-separated, \
         without empty, '.' or '..' segments or NUL bytes"
    )]
    InvalidPath {
        /// The offending path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The file, object, directory or bucket does not exist.
    #[error(
        "{path} does not exist; check the path or URI (and that the bucket exists), then re-run"
    )]
    NotFound {
        /// What was looked for.
        path: String,
    },

    /// The operating system refused access to a local path.
    #[error(
        "permission denied on {path}; fix its ownership or mode (or run as a user that can \
         access it), then re-run"
    )]
    PermissionDenied {
        /// The path access was refused to.
        path: String,
    },

    /// The destination file system is full or over quota (ENOSPC, EDQUOT).
    #[error(
        "destination disk is full while writing {path}; free space and re-run the same command \
         to resume"
    )]
    NoSpace {
        /// The file being written.
        path: String,
    },

    /// The store's server could not be reached at all (connection refused, DNS, timeout).
    #[error(
        "cannot reach the store at {endpoint}: {detail}; check that the server is running and \
         the endpoint (AWS_ENDPOINT_URL or ?endpoint=) is right, then re-run"
    )]
    Unreachable {
        /// The endpoint that was tried.
        endpoint: String,
        /// What the network layer said.
        detail: String,
    },

    /// The store rejected the credentials (HTTP 403, unknown key, bad signature, expired token).
    #[error("the store refused access to {uri}: {detail}; {}", auth_advice(uri))]
    Auth {
        /// The store URI (no credentials in it).
        uri: String,
        /// What the server said (error code and message).
        detail: String,
    },

    /// A directory was expected but something else is there (e.g. the source is a file).
    #[error(
        "{path} is not a directory; give a directory (migrate copies directories and bucket \
         prefixes, not single files), or move the file that is in the way"
    )]
    NotADirectory {
        /// The path that is not a directory.
        path: String,
    },

    /// Any other local I/O error.
    #[error("I/O error on {path}: {source}; check the disk and the file, then re-run")]
    Io {
        /// The file or directory concerned.
        path: String,
        /// The operating system error.
        #[source]
        source: io::Error,
    },

    /// The store pushed back (HTTP 429 or 5xx, e.g. S3 `SlowDown`) and said when to try
    /// again (`Retry-After`). Retryable; see [`StoreError::retry_after`].
    #[error(
        "the store is busy on {path}: {detail}; it asked to be retried after {}; this is \
         transient: re-run the same command after that to resume",
        show_secs(*.after)
    )]
    RetryLater {
        /// The key, path or URI concerned.
        path: String,
        /// What the server said (error code, message and HTTP status), one line.
        detail: String,
        /// The server's `Retry-After`, at most [`StoreError::MAX_RETRY_AFTER`].
        after: Duration,
    },

    /// Stored bytes that no longer match what was recorded for them (bit rot, a torn,
    /// lost or altered object): damage, not a configuration problem, so the advice is to
    /// repair, and a retry cannot help.
    #[error("{path} is damaged: {detail}; rebuild it with `strata repair` (from parity, or --from a copy of the source)")]
    Damaged {
        /// The file or object concerned.
        path: String,
        /// What does not match (which chunk or object, and how), without advice.
        detail: String,
    },

    /// Any other error from a store backend.
    #[error("store error on {path}: {detail}; {}", backend_advice(*.retryable))]
    Backend {
        /// The key, path or URI concerned.
        path: String,
        /// What went wrong, one line.
        detail: String,
        /// Whether trying again later may succeed (server errors, throttling, timeouts).
        retryable: bool,
    },
}

/// Where the credentials of the store `uri` names come from.
fn auth_advice(uri: &str) -> &'static str {
    if uri.starts_with("azblob://") {
        "check AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY (or AZURE_STORAGE_SAS_TOKEN, or \
         AZURE_STORAGE_CONNECTION_STRING) and the container's access policy"
    } else if uri.starts_with("swift://") {
        "check ST_AUTH, ST_USER and ST_KEY (or OS_AUTH_TOKEN and OS_STORAGE_URL) and the \
         container's access rights"
    } else if uri.starts_with("gs://") {
        "check GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_OAUTH_ACCESS_TOKEN) and the bucket's \
         permissions"
    } else {
        "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and the bucket \
         policy"
    }
}

fn backend_advice(retryable: bool) -> &'static str {
    if retryable {
        "this is usually transient: re-run the same command to resume"
    } else {
        "check the store's configuration and the path, then re-run"
    }
}

impl StoreError {
    /// The longest [`StoreError::retry_after`]: a server asking for more is waited for this
    /// long (five minutes).
    pub const MAX_RETRY_AFTER: Duration = MAX_RETRY_AFTER;

    /// Whether trying the same operation again later may succeed.
    ///
    /// Yes for unreachable servers, timeouts, throttling (429) and server errors (5xx);
    /// no for missing files, refused credentials, a full disk and invalid input.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } | StoreError::RetryLater { .. } => true,
            StoreError::Backend { retryable, .. } => *retryable,
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            StoreError::InvalidUri { .. }
            | StoreError::InvalidPath { .. }
            | StoreError::NotFound { .. }
            | StoreError::PermissionDenied { .. }
            | StoreError::NoSpace { .. }
            | StoreError::Auth { .. }
            | StoreError::Damaged { .. }
            | StoreError::NotADirectory { .. } => false,
        }
    }

    /// How long the server asked to wait before the next try: the `Retry-After` of an S3
    /// answer of 429 (too many requests) or 5xx (503 service unavailable, ...), in either
    /// of its forms (seconds, or an HTTP-date), capped at [`StoreError::MAX_RETRY_AFTER`].
    /// `None` when the server did not say (retry with the usual backoff if
    /// [`StoreError::is_retryable`]).
    ///
    /// A `Retry-After` of at most one second was already honoured by the store's own short
    /// retries before the error came out; a longer one comes out at once, for the caller's
    /// retry loop to wait for (except on a multipart upload's part, which the store waits
    /// for and sends again itself, up to 30 s).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StoreError::RetryLater { after, .. } => Some(*after),
            _ => None,
        }
    }

    /// Shorthand for a non-retryable [`StoreError::Backend`].
    /// A copy of this error, for reporting one failure against several files (I/O sources
    /// are not `Clone`: their kind and message are kept).
    pub(crate) fn clone_for_group(&self) -> StoreError {
        use StoreError::*;
        match self {
            InvalidUri { uri, reason } => InvalidUri {
                uri: uri.clone(),
                reason: reason.clone(),
            },
            InvalidPath { path, reason } => InvalidPath {
                path: path.clone(),
                reason: reason.clone(),
            },
            NotFound { path } => NotFound { path: path.clone() },
            PermissionDenied { path } => PermissionDenied { path: path.clone() },
            NoSpace { path } => NoSpace { path: path.clone() },
            Unreachable { endpoint, detail } => Unreachable {
                endpoint: endpoint.clone(),
                detail: detail.clone(),
            },
            Auth { uri, detail } => Auth {
                uri: uri.clone(),
                detail: detail.clone(),
            },
            NotADirectory { path } => NotADirectory { path: path.clone() },
            Damaged { path, detail } => Damaged {
                path: path.clone(),
                detail: detail.clone(),
            },
            RetryLater {
                path,
                detail,
                after,
            } => RetryLater {
                path: path.clone(),
                detail: detail.clone(),
                after: *after,
            },
            Io { path, source } => Io {
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Backend {
                path,
                detail,
                retryable,
            } => Backend {
                path: path.clone(),
                detail: detail.clone(),
                retryable: *retryable,
            },
        }
    }

    pub(crate) fn permanent(path: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Backend {
            path: path.into(),
            detail: one_line(&detail.into()),
            retryable: false,
        }
    }

    /// Maps a local I/O error on `path` to the most specific variant.
    pub fn from_io(path: impl Into<String>, err: io::Error) -> Self {
        let path = path.into();
        if let Some(code) = err.raw_os_error() {
            if code == libc::ENOSPC || code == libc::EDQUOT {
                return StoreError::NoSpace { path };
            }
            if code == libc::ENOTDIR {
                return StoreError::NotADirectory { path };
            }
        }
        match err.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound { path },
            io::ErrorKind::PermissionDenied => StoreError::PermissionDenied { path },
            _ => StoreError::Io { path, source: err },
        }
    }

    /// Maps a failed `spawn_blocking` join (the task panicked or was cancelled).
    pub(crate) fn from_join(path: impl Into<String>, err: tokio::task::JoinError) -> Self {
        StoreError::Backend {
            path: path.into(),
            detail: format!("background I/O task did not complete: {err}"),
            retryable: false,
        }
    }
}

/// Where an OpenDAL error happened, for messages.
pub(crate) struct DalContext<'a> {
    /// The store URI as displayed (no credentials).
    pub uri: &'a str,
    /// The endpoint the store talks to (or the URI for in-process stores).
    pub endpoint: &'a str,
}

/// Maps an OpenDAL error on `path` (a key relative to the store, or the store URI).
pub(crate) fn from_dal(ctx: &DalContext<'_>, path: &str, err: opendal::Error) -> StoreError {
    use opendal::ErrorKind;

    if let Some(pushback) = pushback_of(&err) {
        // Throttling and server errors, read from the HTTP answer itself: retryable whatever
        // OpenDAL's retry layer set (it marks every error it returns `persistent`).
        let path = display_path(ctx, path);
        let detail = one_line(&pushback.summary());
        return match pushback.retry_after {
            Some(after) => StoreError::RetryLater {
                path,
                detail,
                after,
            },
            None => StoreError::Backend {
                path,
                detail,
                retryable: true,
            },
        };
    }
    let detail = dal_detail(&err);
    if is_connect_failure(&err) {
        // The URI too: the endpoint alone does not say which store (or key) was wanted.
        return StoreError::Unreachable {
            endpoint: ctx.endpoint.to_string(),
            detail: format!("{detail}, for {}", display_path(ctx, path)),
        };
    }
    let message = err.message();
    let code = s3_code(message);
    if message.contains("signing http request") {
        // The credentials could not be loaded or applied: nothing was sent.
        return StoreError::Auth {
            uri: ctx.uri.to_string(),
            detail,
        };
    }
    match err.kind() {
        ErrorKind::NotFound => StoreError::NotFound {
            path: display_path(ctx, path),
        },
        ErrorKind::PermissionDenied => StoreError::Auth {
            uri: ctx.uri.to_string(),
            detail,
        },
        ErrorKind::ConfigInvalid if code.as_deref() == Some("NoSuchBucket") => {
            StoreError::NotFound {
                path: format!("the bucket of {}", ctx.uri),
            }
        }
        _ if matches!(
            code.as_deref(),
            Some(
                "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "AccessDenied"
                    | "ExpiredToken"
                    | "InvalidToken"
                    | "AuthorizationHeaderMalformed"
            )
        ) =>
        {
            StoreError::Auth {
                uri: ctx.uri.to_string(),
                detail,
            }
        }
        ErrorKind::RateLimited => StoreError::Backend {
            path: display_path(ctx, path),
            detail,
            retryable: true,
        },
        _ => StoreError::Backend {
            path: display_path(ctx, path),
            detail,
            retryable: err.is_temporary() || is_timeout(&err) || is_transient_code(code.as_deref()),
        },
    }
}

/// S3 error codes that say "try again" whatever the HTTP status (OpenDAL's own list of
/// temporary codes); needed because OpenDAL's retry layer marks every error it returns
/// `persistent`, so `is_temporary` is false for them by the time they arrive here.
fn is_transient_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "RequestTimeout"
                | "InternalError"
                | "OperationAborted"
                | "SlowDown"
                | "ServiceUnavailable"
                | "TooManyRequests"
        )
    )
}

fn display_path(ctx: &DalContext<'_>, path: &str) -> String {
    if path.is_empty() {
        ctx.uri.to_string()
    } else {
        format!("{}/{}", ctx.uri.trim_end_matches('/'), path)
    }
}

/// True when OpenDAL gave up because its timeout layer fired.
pub(crate) fn is_timeout(err: &opendal::Error) -> bool {
    err.message().contains("timeout reached")
}

/// True when the request never reached a server: connection refused, DNS failure, no route.
pub(crate) fn is_connect_failure(err: &opendal::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::NotConnected
                    | io::ErrorKind::AddrNotAvailable
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
            ) {
                return true;
            }
        }
        let text = e.to_string().to_ascii_lowercase();
        if [
            "connection refused",
            "dns error",
            "failed to lookup address",
            "tcp connect error",
            "client error (connect)",
            "no route to host",
            "network is unreachable",
        ]
        .iter()
        .any(|needle| text.contains(needle))
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A one-line summary of an OpenDAL error without its context (which holds request URLs
/// and response headers): kind, the server's error code and message, and the root cause.
fn dal_detail(err: &opendal::Error) -> String {
    let message = err.message();
    let mut out = match (s3_code(message), s3_field(message, "message")) {
        (Some(code), Some(msg)) if !msg.is_empty() => format!("{code}: {msg}"),
        (Some(code), _) => code,
        _ if message.is_empty() => err.kind().to_string(),
        _ => format!("{}: {message}", err.kind()),
    };
    let mut cur: Option<&(dyn std::error::Error + 'static)> = err.source();
    let mut root = None;
    while let Some(e) = cur {
        root = Some(e.to_string());
        cur = e.source();
    }
    if let Some(root) = root {
        if !out.contains(&root) {
            out.push_str(" (");
            out.push_str(&root);
            out.push(')');
        }
    }
    one_line(&out)
}

/// Extracts `code` from OpenDAL's S3 message (`S3Error { code: "NoSuchBucket", ... }`).
fn s3_code(message: &str) -> Option<String> {
    s3_field(message, "code").filter(|c| !c.is_empty())
}

fn s3_field(message: &str, field: &str) -> Option<String> {
    let needle = format!("{field}: \"");
    let start = message.find(&needle)? + needle.len();
    let rest = message.get(start..)?;
    let end = rest.find('"')?;
    rest.get(..end).map(str::to_string)
}

/// Collapses newlines and bounds the length, so every message stays on one line.
pub(crate) fn one_line(s: &str) -> String {
    const MAX: usize = 400;
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}
