//! Secrets never reach a log line or an error message, at any verbosity.
//!
//! Our own types redact credentials in `Debug` (`strata_store::S3Options`) and URIs refuse
//! them, but dependencies log what they hold: at `debug` the request signer printed the
//! whole credential (secret key and session token) of every S3 request. Two defences:
//!
//! - [`quiet_credential_targets`] caps the crates that handle credentials at `warn`,
//!   whatever `-v` or `STRATA_LOG` ask for;
//! - [`ScrubbingStderr`], the log writer, and [`scrub`], applied to the final error, replace
//!   every secret value the process holds (from its environment) by [`REDACTED`], so that
//!   a secret printed by a path nobody thought of is still never shown.

use std::borrow::Cow;
use std::ffi::OsString;
use std::io::Write;
use std::sync::OnceLock;

use tracing_subscriber::fmt::MakeWriter;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Environment variables that always hold a secret.
const KNOWN_SECRETS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
];
/// Words in a variable's name that say its value is a credential.
const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "PRIVATE_KEY",
    "API_KEY",
];
/// Shortest value of a [`KNOWN_SECRETS`] variable that is scrubbed: shorter ones would
/// blank ordinary words out of every line and protect nothing.
const MIN_KNOWN_LEN: usize = 4;
/// Shortest value of another secret-looking variable that is scrubbed (`true`, `1`, ...
/// are settings, not secrets).
const MIN_OTHER_LEN: usize = 8;

/// Log targets (prefixes) of the crates that hold credentials: the S3 request signer
/// prints them, and the signatures made with them, at `debug`; the NATS client may log the
/// server URL it connects to, which can carry `user:password@` (a task queue's, or an
/// `--events nats://user:password@...` stream's).
const CREDENTIAL_TARGETS: &[&str] = &["reqsign", "async_nats"];

/// Caps the credential-handling crates at `warn` in `filter`, after the user's directives.
pub fn quiet_credential_targets(
    mut filter: tracing_subscriber::EnvFilter,
) -> tracing_subscriber::EnvFilter {
    for target in CREDENTIAL_TARGETS {
        if let Ok(directive) = format!("{target}=warn").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// The secret values of this process's environment, longest first (so that a secret that
/// contains another is replaced whole).
fn secrets() -> &'static [String] {
    static SECRETS: OnceLock<Vec<String>> = OnceLock::new();
    SECRETS.get_or_init(|| secrets_in(std::env::vars_os()))
}

/// The secret values among `vars` (name, value), longest first.
fn secrets_in(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<String> {
    let mut found: Vec<String> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let name = name.to_str()?.to_ascii_uppercase();
            let value = value.to_str()?.trim().to_string();
            let min = if KNOWN_SECRETS.contains(&name.as_str()) {
                MIN_KNOWN_LEN
            } else if SECRET_WORDS.iter().any(|w| name.contains(w)) {
                MIN_OTHER_LEN
            } else {
                return None;
            };
            (value.len() >= min).then_some(value)
        })
        .collect();
    found.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    found.dedup();
    found
}

/// `text` with every secret of the environment replaced by [`REDACTED`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    scrub_with(text, secrets())
}

fn scrub_with<'a>(text: &'a str, secrets: &[String]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

/// The log writer: standard error, one event at a time, scrubbed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrubbingStderr;

/// One log event being formatted; scrubbed and written to standard error when dropped,
/// so that a secret split over several `write` calls is still seen whole.
pub struct ScrubbedEvent {
    buf: Vec<u8>,
}

impl<'a> MakeWriter<'a> for ScrubbingStderr {
    type Writer = ScrubbedEvent;

    fn make_writer(&'a self) -> ScrubbedEvent {
        ScrubbedEvent {
            buf: Vec::with_capacity(256),
        }
    }
}

impl Write for ScrubbedEvent {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedEvent {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        // A log line that cannot be written is dropped: logging never stops a command.
        let _ = std::io::stderr().lock().write_all(scrub(&text).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(n, v)| (OsString::from(n), OsString::from(v)))
            .collect()
    }

    #[test]
    fn credentials_of_the_environment_are_found_and_settings_are_not() {
        let found = secrets_in(vars(&[
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
            ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEJr-long-token"),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            ("GITHUB_TOKEN", "ghp_0123456789abcdef"),
            ("TOKENIZERS_PARALLELISM", "false"),
            ("HOME", "/root"),
        ]));
        assert_eq!(
            found,
            vec![
                "FwoGZXIvYXdzEJr-long-token".to_string(),
                "ghp_0123456789abcdef".to_string(),
                "wJalrXUtnFEMI".to_string(),
            ]
        );
    }

    #[test]
    fn every_occurrence_of_every_secret_is_replaced() {
        let secrets = secrets_in(vars(&[
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-key"),
            ("AWS_SESSION_TOKEN", "tok-s3cr3t-key-tok"),
        ]));
        let line = "secret: s3cr3t-key, token: Some(\"tok-s3cr3t-key-tok\"), again s3cr3t-key";
        let scrubbed = scrub_with(line, &secrets);
        assert!(!scrubbed.contains("s3cr3t"), "{scrubbed}");
        assert_eq!(scrubbed.matches(REDACTED).count(), 3, "{scrubbed}");
        assert!(matches!(
            scrub_with("nothing to hide", &secrets),
            Cow::Borrowed(_)
        ));
    }
}
