//! The S3 front door's test harness: a service with `[server] s3_listen`, and requests
//! signed by hand with AWS Signature V4 (so tests can also sign them wrongly).
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use strata_server::{Limits, ServeOptions};

#[path = "../common/mod.rs"]
pub mod common;

pub use common::TestServer;

pub const ACCESS: &str = "STRATATESTACCESS";
pub const SECRET: &str = "strata-test-secret/0123456789abcdefghij";

/// The test rules with the front door on a free port and `extra` TOML appended.
pub fn toml(extra: &str) -> String {
    common::TEST_RULES.replace(
        "listen = \"127.0.0.1:0\"\n",
        "listen = \"127.0.0.1:0\"\ns3_listen = \"127.0.0.1:0\"\n",
    ) + extra
}

/// A service with the front door, the test key pair, `extra` TOML and `limits`.
pub async fn start_front(extra: &str, limits: Limits) -> Front {
    start_front_in(tempfile::tempdir().unwrap(), extra, limits).await
}

/// Like [`start_front`], on the data directory `dir` (a restart when it held a service).
pub async fn start_front_in(dir: tempfile::TempDir, extra: &str, limits: Limits) -> Front {
    let mut options = ServeOptions::new(common::config(dir.path(), &toml(extra)));
    options.limits = limits;
    options.s3_front_keys = Some((ACCESS.to_string(), SECRET.to_string()));
    let server = common::start_options(dir, options).await;
    let s3 = server.server.as_ref().unwrap().s3_addr().unwrap();
    Front {
        endpoint: format!("http://{s3}"),
        server,
        client: reqwest::Client::new(),
    }
}

pub struct Front {
    pub server: TestServer,
    pub endpoint: String,
    pub client: reqwest::Client,
}

/// How to sign a request.
#[derive(Clone)]
pub struct Signer {
    pub access: String,
    pub secret: String,
    pub time: SystemTime,
}

impl Default for Signer {
    fn default() -> Self {
        Signer {
            access: ACCESS.to_string(),
            secret: SECRET.to_string(),
            time: SystemTime::now(),
        }
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `20261207T191800Z` and `20261207` for `time`.
fn amz_dates(time: SystemTime) -> (String, String) {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!("{year:04}{month:02}{day:02}");
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    (stamp, date)
}

fn encode(text: &str, slash: bool) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Signs a request: the headers (`host`, `x-amz-date`, `x-amz-content-sha256`,
/// `authorization`) for `method` on `path` with `query` and the extra `headers`.
pub fn sign(
    signer: &Signer,
    host: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, String)],
) -> Vec<(String, String)> {
    let (stamp, date) = amz_dates(signer.time);
    let payload = "UNSIGNED-PAYLOAD";
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    all.push(("host".into(), host.into()));
    all.push(("x-amz-date".into(), stamp.clone()));
    all.push(("x-amz-content-sha256".into(), payload.into()));
    all.sort();
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode(k, false), encode(v, false)))
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_headers: String = all.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = all
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload}",
        encode(path, true)
    );
    let scope = format!("{date}/us-east-1/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{}", signer.secret).as_bytes(), &date);
    for part in ["us-east-1", "s3", "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex::encode(hmac(&key, &to_sign));
    all.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            signer.access
        ),
    ));
    all
}

/// An answer: status, headers and body.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The S3 error code in an error document.
    pub fn code(&self) -> String {
        let text = self.text();
        text.split("<Code>")
            .nth(1)
            .and_then(|rest| rest.split("</Code>").next())
            .unwrap_or("")
            .to_string()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// The text of the first `<tag>` of the body.
    pub fn tag(&self, tag: &str) -> String {
        self.tags(tag).into_iter().next().unwrap_or_default()
    }

    /// The texts of every `<tag>` of the body.
    pub fn tags(&self, tag: &str) -> Vec<String> {
        let text = self.text();
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        text.split(&open)
            .skip(1)
            .filter_map(|rest| rest.split(&close).next().map(str::to_string))
            .collect()
    }
}

impl Front {
    /// Stops the service and starts it again on the same data directory with `extra`.
    pub async fn restart(mut self, extra: &str) -> Front {
        let dir = self.server.stop().await;
        start_front_in(dir, extra, Limits::default()).await
    }

    /// The service's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.server.get("/metrics").await.text().await.unwrap()
    }

    fn host(&self) -> String {
        self.endpoint.trim_start_matches("http://").to_string()
    }

    /// A request signed by `signer` (none: unsigned).
    pub async fn request_as(
        &self,
        signer: Option<&Signer>,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: reqwest::Body,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut url =
            reqwest::Url::parse(&format!("{}{}", self.endpoint, encode(path, true))).unwrap();
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let mut request = self.client.request(method.clone(), url).body(body);
        let signed = match signer {
            Some(signer) => sign(signer, &self.host(), method.as_str(), path, query, headers),
            None => headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        for (name, value) in signed {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let response = request
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request signed with the test key pair.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        self.request_as(
            Some(&Signer::default()),
            method,
            path,
            query,
            headers,
            body.into(),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &[u8]) -> Answer {
        self.request("PUT", path, &[], &[], body.to_vec()).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], &[], Vec::new()).await
    }
}

/// MD5, hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(bytes))
}

pub async fn start_default() -> Front {
    start_front("", Limits::default()).await
}

// Multipart requests.

/// CreateMultipartUpload of `path`: the upload id.
pub async fn create(front: &Front, path: &str) -> String {
    let created = front
        .request("POST", path, &[("uploads", "")], &[], Vec::new())
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    created.tag("UploadId")
}

pub async fn upload_part(
    front: &Front,
    path: &str,
    id: &str,
    number: u32,
    body: reqwest::Body,
) -> Answer {
    let number = number.to_string();
    front
        .request_as(
            Some(&Signer::default()),
            "PUT",
            path,
            &[("partNumber", number.as_str()), ("uploadId", id)],
            &[],
            body,
        )
        .await
}

pub fn completion(parts: &[(u32, String)]) -> String {
    let parts: String = parts
        .iter()
        .map(|(number, etag)| {
            format!("<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>")
        })
        .collect();
    format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
}

pub async fn complete(front: &Front, path: &str, id: &str, xml: String) -> Answer {
    front
        .request("POST", path, &[("uploadId", id)], &[], xml.into_bytes())
        .await
}

pub fn staging(front: &Front) -> std::path::PathBuf {
    front.server.dir.path().join("s3-uploads")
}
