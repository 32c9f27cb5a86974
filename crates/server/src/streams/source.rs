//! An access-event stream as `--events` or `[server] events` name it: `nats://HOST:PORT/SUBJECT`
//! or `kafka://HOST:PORT/TOPIC`, parsed and checked before the service starts, with a name
//! free of credentials for logs, metrics and the offsets table.

use std::fmt;

/// Which broker a stream lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// A NATS subject, read through a JetStream stream capturing it.
    Nats,
    /// A Kafka topic (every partition, assigned explicitly).
    Kafka,
}

impl StreamKind {
    fn scheme(self) -> &'static str {
        match self {
            StreamKind::Nats => "nats",
            StreamKind::Kafka => "kafka",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            StreamKind::Nats => 4222,
            StreamKind::Kafka => 9092,
        }
    }
}

/// NATS credentials from the URL's user info; the password is never displayed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:[redacted]", self.user)
    }
}

/// One access-event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSource {
    /// The broker.
    pub kind: StreamKind,
    /// `HOST:PORT` of the server (NATS) or bootstrap broker (Kafka).
    pub server: String,
    /// The NATS subject or the Kafka topic.
    pub name: String,
    /// NATS user and password, when the URL has them.
    pub credentials: Option<Credentials>,
}

/// The example a refusal shows.
const EXAMPLES: &str =
    "nats://127.0.0.1:4222/strata.access or kafka://127.0.0.1:9092/access_events";

impl EventSource {
    /// Parses a stream URL; the error names the URL (its password replaced) and says what
    /// a valid one looks like.
    pub fn parse(text: &str) -> Result<EventSource, String> {
        let refuse = |why: &str| {
            format!(
                "access-event stream {}: {why}; give e.g. {EXAMPLES}",
                redacted(text)
            )
        };
        let url = url::Url::parse(text).map_err(|err| refuse(&err.to_string()))?;
        let kind = match url.scheme() {
            "nats" => StreamKind::Nats,
            "kafka" => StreamKind::Kafka,
            other => {
                return Err(refuse(&format!(
                    "scheme {other}:// is not nats:// or kafka://"
                )))
            }
        };
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| refuse("no host"))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(refuse("a query or fragment means nothing here"));
        }
        let name = url.path().trim_start_matches('/');
        check_name(kind, name).map_err(|why| refuse(&why))?;
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (_, _) if kind == StreamKind::Kafka => {
                return Err(refuse(
                    "Kafka credentials (SASL) are not supported yet; use a listener without \
                     authentication on a trusted network",
                ))
            }
            (user, password) => Some(Credentials {
                user: percent_decoded(user),
                password: percent_decoded(password.unwrap_or_default()),
            }),
        };
        let port = url.port().unwrap_or(kind.default_port());
        Ok(EventSource {
            kind,
            server: format!("{host}:{port}"),
            name: name.to_string(),
            credentials,
        })
    }
}

impl fmt::Display for EventSource {
    /// `scheme://HOST:PORT/NAME`, never with credentials: the stream's name in logs, in
    /// `/metrics` and in the catalog's offsets table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.kind.scheme(), self.server, self.name)
    }
}

/// A subject or topic name is what its broker accepts: NATS subjects are dot-separated
/// tokens without spaces (wildcards allowed), Kafka topics at most 249 of
/// `[A-Za-z0-9._-]`.
fn check_name(kind: StreamKind, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(match kind {
            StreamKind::Nats => "no subject after the address".to_string(),
            StreamKind::Kafka => "no topic after the address".to_string(),
        });
    }
    match kind {
        StreamKind::Nats => {
            let bad_token = name.split('.').any(str::is_empty);
            let bad_char = name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/');
            if bad_token || bad_char {
                return Err(format!(
                    "subject {name:?} is not a NATS subject (dot-separated tokens, no spaces \
                     or slashes)"
                ));
            }
        }
        StreamKind::Kafka => {
            let legal = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !legal || name.len() > 249 {
                return Err(format!(
                    "topic {name:?} is not a Kafka topic name (at most 249 of A-Z a-z 0-9 . _ -)"
                ));
            }
        }
    }
    Ok(())
}

fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// `text` with the password of its user info (`//user:password@`) replaced.
pub fn redacted(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_string();
    };
    let rest = &text[start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return text.to_string();
    };
    let user_info = &rest[..at];
    let user = user_info.split(':').next().unwrap_or_default();
    format!("{}{user}:[redacted]{}", &text[..start], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_and_kafka_urls_parse_with_default_ports() {
        let nats = EventSource::parse("nats://127.0.0.1:4333/strata.access").unwrap();
        assert_eq!(nats.kind, StreamKind::Nats);
        assert_eq!(nats.server, "127.0.0.1:4333");
        assert_eq!(nats.name, "strata.access");
        assert_eq!(nats.to_string(), "nats://127.0.0.1:4333/strata.access");
        let kafka = EventSource::parse("kafka://broker/access_events").unwrap();
        assert_eq!(kafka.to_string(), "kafka://broker:9092/access_events");
        let nats = EventSource::parse("nats://localhost/a.>").unwrap();
        assert_eq!(nats.server, "localhost:4222");
    }

    #[test]
    fn a_password_is_used_but_never_shown() {
        let source = EventSource::parse("nats://ops:s3cr%40t@127.0.0.1:4222/a").unwrap();
        let credentials = source.credentials.clone().unwrap();
        assert_eq!(credentials.password, "s3cr@t");
        assert!(!format!("{source} {source:?}").contains("s3cr"));
        let err = EventSource::parse("nats://ops:hunter22@127.0.0.1:4222/").unwrap_err();
        assert!(
            !err.contains("hunter22") && err.contains("ops:[redacted]@"),
            "{err}"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason_and_an_example() {
        for (url, reason) in [
            ("http://127.0.0.1/x", "not nats:// or kafka://"),
            ("nats://127.0.0.1:4222", "no subject"),
            ("nats://127.0.0.1:4222/a..b", "not a NATS subject"),
            ("kafka://127.0.0.1:9092/", "no topic"),
            ("kafka://127.0.0.1:9092/a/b", "not a Kafka topic"),
            ("kafka://u:p@127.0.0.1:9092/t", "SASL"),
            ("kafka://127.0.0.1:9092/t?x=1", "query"),
            ("127.0.0.1:9092/t", "access-event stream"),
        ] {
            let err = EventSource::parse(url).unwrap_err();
            assert!(
                err.contains(reason) && err.contains("give e.g."),
                "{url}: {err}"
            );
        }
    }
}
