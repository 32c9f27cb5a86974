//! Checks of single values in `strata.toml`: addresses, tier names, store locations and
//! codec policies. Each returns the reason only; the caller names the field.

pub(super) fn check_listen(listen: &str) -> Result<(), String> {
    let bad = || format!("{listen:?} is not an address; write it like 127.0.0.1:7070");
    let (host, port) = listen.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

pub(super) fn check_tier_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a tier name; use 1 to 64 letters, digits, '-' or '_'"
        ))
    }
}

/// The shape of a store location; the store crate parses it fully when opening it.
pub(super) fn check_store(store: &str) -> Result<(), String> {
    if store.trim().is_empty() {
        return Err("is empty; write a path or a URI like s3://bucket/prefix".to_string());
    }
    let Some((scheme, rest)) = store.split_once("://") else {
        return Ok(()); // a plain path
    };
    match scheme {
        "file" | "s3" | "memory" | "azblob" | "az" | "gs" | "gcs" | "swift" => {}
        other => {
            return Err(format!(
                "{other}:// is not a supported store; use a path, file://, s3://, azblob://, \
                 gs://, swift:// or memory://"
            ))
        }
    }
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = location.split('/').next().unwrap_or("");
    let secret_key = query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or("").to_ascii_lowercase();
        [
            "secret",
            "password",
            "credential",
            "token",
            "access_key",
            "key_id",
            "account_key",
            "sig",
            "sas",
        ]
        .iter()
        .any(|word| key.contains(word))
    });
    if authority.contains('@') || secret_key {
        return Err(
            "credentials are not accepted in store URIs; set them in the environment \
             (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_KEY or \
             AZURE_STORAGE_SAS_TOKEN, GOOGLE_APPLICATION_CREDENTIALS, ST_KEY or OS_AUTH_TOKEN)"
                .to_string(),
        );
    }
    if scheme != "file" && scheme != "memory" && authority.is_empty() {
        return Err(format!(
            "{store:?} names no bucket or container; write it like {scheme}://bucket/prefix"
        ));
    }
    Ok(())
}

pub(super) fn check_codec(codec: &str) -> Result<(), String> {
    let (name, level) = codec.split_once(':').unwrap_or((codec, "0"));
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let level_ok = level.trim_start_matches('-').parse::<u32>().is_ok();
    if name_ok && level_ok {
        Ok(())
    } else {
        Err(format!(
            "{codec:?} is not a codec policy; write auto, none, or a codec with an optional \
             level like zstd:19"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_shapes() {
        assert!(check_store("/srv/strata/hot").is_ok());
        assert!(check_store("file:///srv/strata").is_ok());
        assert!(check_store("s3://bucket/prefix?endpoint=http://127.0.0.1:9000").is_ok());
        assert!(check_store("memory://t").is_ok());
        assert!(check_store("").is_err());
        assert!(check_store("ftp://host/x").is_err());
        assert!(check_store("s3://").is_err());
        assert!(check_store("s3://AKIA:secret@bucket/x").is_err());
        assert!(check_store("s3://bucket/x?secret_access_key=abc").is_err());
        assert!(check_store("azblob://data/cold?endpoint=http://127.0.0.1:10000/a").is_ok());
        assert!(check_store("gs://bucket/cold").is_ok());
        assert!(check_store("gs://").is_err());
        assert!(check_store("swift://data/tiers/cold").is_ok());
        assert!(check_store("swift://").is_err());
        assert!(check_store("swift://tester:key@data").is_err());
        assert!(check_store("azblob://data?sv=2022&sig=abc").is_err());
    }

    #[test]
    fn codec_shapes() {
        for ok in ["auto", "none", "zstd:19", "lz4", "zstd:-5"] {
            assert!(check_codec(ok).is_ok(), "{ok}");
        }
        for bad in ["", "zstd:", "ZSTD", "zstd:x", "zstd 19"] {
            assert!(check_codec(bad).is_err(), "{bad}");
        }
    }
}
