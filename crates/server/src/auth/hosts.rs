//! The Host and Origin checks: a browser can be made to send requests to the service from
//! any web page, either cross-site (the page's `Origin` is another site) or through DNS
//! rebinding (a name the attacker controls resolves to the service, so the `Host` header
//! carries that name). Both are refused: a request's `Host`, and its `Origin` when it has
//! one, must name the service by an accepted name: the listen address, `localhost`,
//! `127.0.0.1`, `[::1]`, the address the connection arrived on, or a name of `[server]
//! allowed_hosts`. Ports are not compared (a proxy may change them).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap};

/// Why a request's headers name another host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRefusal {
    /// The `Host` header names a host that is not accepted.
    Host(String),
    /// The `Origin` header names a site that is not accepted.
    Origin(String),
}

/// The accepted host names.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    accepted: BTreeSet<String>,
}

impl HostPolicy {
    /// The names accepted for a service listening on `listen` (as configured, `HOST:PORT`)
    /// with `[server] allowed_hosts` = `allowed`.
    pub fn new(listen: &str, allowed: &[String]) -> Self {
        let mut accepted: BTreeSet<String> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(str::to_string)
            .collect();
        accepted.insert(host_part(listen));
        accepted.extend(allowed.iter().map(|name| host_part(name)));
        HostPolicy { accepted }
    }

    /// Checks `headers` of a request that arrived on the local address `local`.
    pub fn check(&self, headers: &HeaderMap, local: Option<SocketAddr>) -> Result<(), HostRefusal> {
        let arrived_on = local.map(|addr| ip_name(addr.ip()));
        let accepted =
            |host: &str| self.accepted.contains(host) || arrived_on.as_deref() == Some(host);
        // No Host header: not a browser (every browser sends one), so not a rebinding.
        if let Some(value) = headers.get(header::HOST) {
            let text = String::from_utf8_lossy(value.as_bytes());
            if !accepted(&host_part(&text)) {
                return Err(HostRefusal::Host(text.into_owned()));
            }
        }
        if let Some(value) = headers.get(header::ORIGIN) {
            let text = String::from_utf8_lossy(value.as_bytes());
            let host = url::Url::parse(&text)
                .ok()
                .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
            if !host.is_some_and(|host| accepted(&host)) {
                return Err(HostRefusal::Origin(text.into_owned()));
            }
        }
        Ok(())
    }
}

/// The host of `HOST[:PORT]` (`[V6][:PORT]` keeps its brackets), lower case.
fn host_part(text: &str) -> String {
    let text = text.trim().to_ascii_lowercase();
    if let Some(end) = text.strip_prefix('[').and_then(|rest| rest.find(']')) {
        return text[..end + 2].to_string();
    }
    match text.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_string(),
        _ => text,
    }
}

/// An address as a `Host` header writes it (`[::1]` for IPv6).
fn ip_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(host) = host {
            map.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        if let Some(origin) = origin {
            map.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        map
    }

    #[test]
    fn the_service_names_are_accepted_and_others_refused() {
        let policy = HostPolicy::new("0.0.0.0:7070", &["Strata.Example.org".into()]);
        let local: SocketAddr = "10.1.2.3:7070".parse().unwrap();
        for host in [
            "localhost:7070",
            "127.0.0.1",
            "[::1]:7070",
            "0.0.0.0:7070",
            "strata.example.org",
            "10.1.2.3:7070",
        ] {
            assert_eq!(
                policy.check(&headers(Some(host), None), Some(local)),
                Ok(()),
                "{host}"
            );
        }
        assert_eq!(policy.check(&headers(None, None), Some(local)), Ok(()));
        assert_eq!(
            policy.check(&headers(Some("evil.example:7070"), None), Some(local)),
            Err(HostRefusal::Host("evil.example:7070".into()))
        );
        assert_eq!(
            policy.check(
                &headers(Some("localhost:7070"), Some("http://localhost:3000")),
                Some(local)
            ),
            Ok(())
        );
        for origin in ["https://evil.example", "null", "not a url"] {
            assert_eq!(
                policy.check(&headers(Some("localhost"), Some(origin)), Some(local)),
                Err(HostRefusal::Origin(origin.into())),
                "{origin}"
            );
        }
    }

    #[test]
    fn host_part_strips_ports_and_keeps_brackets() {
        assert_eq!(host_part("LocalHost:80"), "localhost");
        assert_eq!(host_part("[::1]:7070"), "[::1]");
        assert_eq!(host_part("[::1]"), "[::1]");
        assert_eq!(host_part("example.org"), "example.org");
    }
}
