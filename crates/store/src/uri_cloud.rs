//! Parsing of the Azure Blob (`azblob://`), Google Cloud Storage (`gs://`) and OpenStack
//! Swift (`swift://`) store URIs: container and bucket naming rules, prefixes, and the few
//! query parameters each takes.
//!
//! Kept apart from [`crate::uri`] (which owns the URI type, its printing and the other
//! schemes) so that each cloud's naming rules sit together. Credentials are refused here
//! as they are for S3: they come from the environment ([`crate::AzblobOptions`],
//! [`crate::GcsOptions`], [`crate::SwiftOptions`]).

use crate::uri::{decode_prefix, looks_secret, validate_endpoint, StoreUri};

/// Why an Azure URI with a credential is refused, and where the credential goes instead.
fn azblob_credentials_reason() -> String {
    "credentials are not accepted in URIs; set AZURE_STORAGE_KEY (account key) or \
     AZURE_STORAGE_SAS_TOKEN in the environment instead"
        .into()
}

/// Why a GCS URI with a credential is refused, and where the credential goes instead.
fn gcs_credentials_reason() -> String {
    "credentials are not accepted in URIs; set GOOGLE_APPLICATION_CREDENTIALS (a service \
     account JSON file) or GOOGLE_OAUTH_ACCESS_TOKEN in the environment instead"
        .into()
}

/// Why a Swift URI with a credential is refused, and where the credential goes instead.
fn swift_credentials_reason() -> String {
    "credentials are not accepted in URIs; set ST_AUTH, ST_USER and ST_KEY (v1 \
     authentication) or OS_AUTH_TOKEN and OS_STORAGE_URL in the environment instead"
        .into()
}

/// Splits `container[/prefix][?query]`, refusing fragments and user information.
fn split_location<'a>(
    rest: &'a str,
    what: &str,
    secret_reason: fn() -> String,
) -> Result<(&'a str, String, &'a str), String> {
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    if location.contains('#') {
        return Err(format!("a '#' in a {what} URI must be written %23"));
    }
    let (name, prefix) = location.split_once('/').unwrap_or((location, ""));
    if name.contains('@') || name.contains(':') {
        return Err(secret_reason());
    }
    Ok((name, decode_prefix(prefix)?, query))
}

/// The query's pairs, refusing secret-looking keys and keys given twice.
fn query_pairs(
    query: &str,
    known: &[&str],
    secret_reason: fn() -> String,
) -> Result<Vec<(String, String)>, String> {
    let parsed: Vec<_> = url::form_urlencoded::parse(query.as_bytes()).collect();
    // A SAS token pasted whole (`sv=...&sig=...`) is a credential, whatever its first key.
    if parsed
        .iter()
        .any(|(key, _)| looks_secret(&key.to_ascii_lowercase()))
    {
        return Err(secret_reason());
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in parsed {
        let lower = key.to_ascii_lowercase();
        if !known.contains(&lower.as_str()) {
            return Err(format!(
                "unknown query parameter `{key}` (known: {})",
                known.join(", ")
            ));
        }
        if pairs.iter().any(|(k, _)| *k == lower) {
            return Err(format!("query parameter `{key}` is given twice"));
        }
        pairs.push((lower, value.into_owned()));
    }
    Ok(pairs)
}

fn endpoint_param(value: &str, secret_reason: fn() -> String) -> Result<String, String> {
    validate_endpoint(value).map_err(|reason| {
        if reason.starts_with("credentials are not accepted") {
            secret_reason()
        } else {
            reason
        }
    })
}

/// `azblob://container[/prefix][?endpoint=URL&account=NAME]`.
pub(crate) fn parse_azblob(rest: &str) -> Result<StoreUri, String> {
    let reason = azblob_credentials_reason;
    let (container, prefix, query) = split_location(rest, "Azure Blob", reason)?;
    if container.is_empty() {
        return Err("no container: write azblob://container or azblob://container/prefix".into());
    }
    validate_container(container)?;
    let mut endpoint = None;
    let mut account = None;
    for (key, value) in query_pairs(query, &["endpoint", "account"], reason)? {
        match key.as_str() {
            "endpoint" => endpoint = Some(endpoint_param(&value, reason)?),
            _ => account = Some(validate_account(&value)?),
        }
    }
    Ok(StoreUri::azblob(
        container.to_string(),
        prefix,
        endpoint,
        account,
    ))
}

/// `gs://bucket[/prefix][?endpoint=URL]`.
pub(crate) fn parse_gcs(rest: &str) -> Result<StoreUri, String> {
    let reason = gcs_credentials_reason;
    let (bucket, prefix, query) = split_location(rest, "GCS", reason)?;
    if bucket.is_empty() {
        return Err("no bucket: write gs://bucket or gs://bucket/prefix".into());
    }
    validate_gcs_bucket(bucket)?;
    let mut endpoint = None;
    for (_, value) in query_pairs(query, &["endpoint"], reason)? {
        endpoint = Some(endpoint_param(&value, reason)?);
    }
    Ok(StoreUri::gcs(bucket.to_string(), prefix, endpoint))
}

/// `swift://container[/prefix][?endpoint=STORAGE_URL]`.
pub(crate) fn parse_swift(rest: &str) -> Result<StoreUri, String> {
    let reason = swift_credentials_reason;
    let (container, prefix, query) = split_location(rest, "Swift", reason)?;
    if container.is_empty() {
        return Err("no container: write swift://container or swift://container/prefix".into());
    }
    validate_swift_container(container)?;
    let mut endpoint = None;
    for (_, value) in query_pairs(query, &["endpoint"], reason)? {
        endpoint = Some(endpoint_param(&value, reason)?);
    }
    Ok(StoreUri::swift(container.to_string(), prefix, endpoint))
}

/// Container names Strata accepts: 1 to 256 ASCII letters, digits, '-', '_', '.' and '~'.
/// Swift itself allows any UTF-8 but '/', but OpenDAL's swift service puts the name in
/// request URLs unescaped, so only characters that need no escaping in a URL are safe.
fn validate_swift_container(name: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "container name `{}` is not usable: {why} (1 to 256 ASCII letters, digits, '-', \
             '_', '.' and '~')",
            name.escape_default()
        ))
    };
    if name.len() > 256 {
        return bad("it is longer than 256 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
    {
        return bad("it has another character");
    }
    Ok(())
}

/// Azure's container naming rules: 3 to 63 characters, lowercase letters, digits and
/// single hyphens, starting and ending with a letter or digit (`$root` and `$web` too).
fn validate_container(name: &str) -> Result<(), String> {
    if name == "$root" || name == "$web" {
        return Ok(());
    }
    let bad = |why: &str| {
        Err(format!(
            "container name `{name}` is invalid: {why} (3 to 63 characters: lowercase letters, \
             digits and single '-', starting and ending with a letter or digit)"
        ))
    };
    if !(3..=63).contains(&name.len()) {
        return bad("wrong length");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return bad("it has a character other than a-z, 0-9 and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad("it must start and end with a letter or digit");
    }
    if name.contains("--") {
        return bad("it has two adjacent hyphens");
    }
    Ok(())
}

/// Azure's account naming rules: 3 to 24 lowercase letters and digits.
fn validate_account(name: &str) -> Result<String, String> {
    let ok = (3..=24).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "account name `{name}` is invalid (3 to 24 lowercase letters and digits)"
        ))
    }
}

/// GCS bucket naming rules: 3 to 63 characters (up to 222 with dots, each dot-separated
/// part at most 63), lowercase letters, digits, '-', '_' and '.', starting and ending with
/// a letter or digit, not an IP address, not starting with `goog`.
fn validate_gcs_bucket(name: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "bucket name `{name}` is invalid: {why} (3 to 63 characters: lowercase letters, \
             digits, '-', '_' and '.', starting and ending with a letter or digit)"
        ))
    };
    let max = if name.contains('.') { 222 } else { 63 };
    if name.len() < 3 || name.len() > max || name.split('.').any(|part| part.len() > 63) {
        return bad("wrong length");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return bad("it has a character other than a-z, 0-9, '-', '_' and '.'");
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return bad("it must start and end with a letter or digit");
    }
    if name.contains("..") {
        return bad("it has two adjacent dots");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it looks like an IP address");
    }
    if name.starts_with("goog") {
        return bad("names starting with `goog` are reserved");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{StoreScheme, StoreUri};

    fn err(input: &str) -> String {
        StoreUri::parse(input).unwrap_err().to_string()
    }

    #[test]
    fn azblob_uris_parse_and_print_back() {
        let uri = StoreUri::parse(
            "azblob://data/a%20b/c/?endpoint=http://127.0.0.1:10000/devstoreaccount1&account=devstoreaccount1",
        )
        .unwrap();
        assert_eq!(uri.scheme(), StoreScheme::Azblob);
        assert_eq!(uri.bucket(), Some("data"));
        assert_eq!(uri.prefix(), "a b/c");
        assert_eq!(
            uri.endpoint(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!(uri.account(), Some("devstoreaccount1"));
        let printed = uri.to_string();
        assert_eq!(
            printed,
            "azblob://data/a%20b/c?endpoint=http://127.0.0.1:10000/devstoreaccount1&account=devstoreaccount1"
        );
        assert_eq!(StoreUri::parse(&printed).unwrap(), uri);
        assert_eq!(
            StoreUri::parse("az://data").unwrap().to_string(),
            "azblob://data"
        );
    }

    #[test]
    fn gs_uris_parse_and_print_back() {
        let uri =
            StoreUri::parse("gs://my_bucket.example/x/y?endpoint=http://127.0.0.1:4443").unwrap();
        assert_eq!(uri.scheme(), StoreScheme::Gcs);
        assert_eq!(uri.bucket(), Some("my_bucket.example"));
        assert_eq!(uri.prefix(), "x/y");
        assert_eq!(
            uri.to_string(),
            "gs://my_bucket.example/x/y?endpoint=http://127.0.0.1:4443"
        );
        assert_eq!(
            StoreUri::parse("gcs://abc").unwrap().to_string(),
            "gs://abc"
        );
    }

    #[test]
    fn swift_uris_parse_and_print_back() {
        let uri = StoreUri::parse(
            "swift://My_Data.v2/x%20y/z?endpoint=http://127.0.0.1:8080/v1/AUTH_test",
        )
        .unwrap();
        assert_eq!(uri.scheme(), StoreScheme::Swift);
        assert!(uri.scheme().is_remote());
        assert_eq!(uri.bucket(), Some("My_Data.v2"));
        assert_eq!(uri.prefix(), "x y/z");
        assert_eq!(uri.endpoint(), Some("http://127.0.0.1:8080/v1/AUTH_test"));
        let printed = uri.to_string();
        assert_eq!(
            printed,
            "swift://My_Data.v2/x%20y/z?endpoint=http://127.0.0.1:8080/v1/AUTH_test"
        );
        assert_eq!(StoreUri::parse(&printed).unwrap(), uri);
        assert_eq!(
            StoreUri::parse("SWIFT://c").unwrap().to_string(),
            "swift://c"
        );
    }

    #[test]
    fn bad_swift_uris_say_what_is_wrong() {
        assert!(err("swift://").contains("no container"));
        assert!(err(&format!("swift://{}", "c".repeat(257))).contains("longer than 256"));
        assert!(err("swift://a%0Ab").contains("another character"));
        assert!(err("swift://a%2Fb").contains("another character"));
        assert!(err("swift://abc?region=x").contains("unknown query parameter `region`"));
        let token = err("swift://abc?token=SECRETTOKEN");
        assert!(token.contains("OS_AUTH_TOKEN"), "{token}");
        assert!(!token.contains("SECRETTOKEN"), "{token}");
        let user = err("swift://tester:SECRETKEY@abc");
        assert!(user.contains("ST_AUTH"), "{user}");
        assert!(!user.contains("SECRETKEY"), "{user}");
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        assert!(err("azblob://").contains("no container"));
        assert!(err("azblob://Data").contains("container name `Data` is invalid"));
        assert!(err("azblob://a--b").contains("adjacent hyphens"));
        assert!(err("azblob://ok1?account=Bad").contains("account name `Bad`"));
        assert!(err("azblob://ok1?region=x").contains("unknown query parameter `region`"));
        assert!(err("gs://").contains("no bucket"));
        assert!(err("gs://googdata").contains("reserved"));
        assert!(err("gs://-ab").contains("start and end"));
        assert!(err("gs://abc?endpoint=ftp://x").contains("http://"));
        assert!(err("gs://abc?endpoint=http://a&endpoint=http://b").contains("twice"));
    }

    #[test]
    fn credentials_in_uris_are_refused_and_redacted() {
        let sas = err("azblob://data?sv=2022&sig=SECRETSIG");
        assert!(sas.contains("AZURE_STORAGE_SAS_TOKEN"), "{sas}");
        assert!(!sas.contains("SECRETSIG"), "{sas}");
        let key = err("azblob://data?account_key=SECRETKEY");
        assert!(!key.contains("SECRETKEY"), "{key}");
        let user = err("azblob://acct:SECRETPW@data");
        assert!(!user.contains("SECRETPW"), "{user}");
        let token = err("gs://abc?token=SECRETTOKEN");
        assert!(token.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{token}");
        assert!(!token.contains("SECRETTOKEN"), "{token}");
        let endpoint = err("gs://abc?endpoint=http://u:SECRETPW@127.0.0.1:1");
        assert!(!endpoint.contains("SECRETPW"), "{endpoint}");
    }
}
