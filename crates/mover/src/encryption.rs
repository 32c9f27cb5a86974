//! Encryption keys as an operator hands them over: a file of 32 raw bytes or an environment
//! variable holding them, read once at start-up (`strata serve` for a tier, `strata migrate
//! --encrypt` for a dataset) into a [`KeyRing`]. The sealing itself is the codec crate's
//! (`strata_codec::format::encrypted`). Errors name whose key it is (a tier, a dataset), the
//! file or variable, and what is expected; they never hold a byte of the key.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use strata_codec::format::encrypted::{Cipher, EncryptionKey, KeyId, KeyRing, KEY_LEN};

/// Where a key is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A file holding exactly 32 raw bytes.
    File(PathBuf),
    /// An environment variable holding exactly 32 bytes.
    Env(String),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "key file {}", path.display()),
            KeySource::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// A key that could not be read: whose it is, from where, and why, with what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{owner}: the encryption {location} {problem}")]
pub struct KeyError {
    /// Whose key: `tier "hot"`, `the destination`, ...
    pub owner: String,
    /// Where it was read from.
    pub location: KeySource,
    /// What is wrong and what to do.
    pub problem: String,
}

const HOW_TO_MAKE: &str = "a key is exactly 32 raw bytes; make one with \
                           `head -c 32 /dev/urandom > FILE` (for a variable, 32 bytes without \
                           NUL: `export VAR=$(head -c 24 /dev/urandom | base64)`)";

/// Reads the key at `source` for `owner`.
pub fn load_key(source: &KeySource, owner: &str) -> Result<EncryptionKey, KeyError> {
    let fail = |problem: String| KeyError {
        owner: owner.to_string(),
        location: source.clone(),
        problem,
    };
    let bytes = match source {
        KeySource::File(path) => read_key_file(path).map_err(fail)?,
        KeySource::Env(var) => match std::env::var_os(var) {
            Some(value) if !value.is_empty() => value.as_bytes().to_vec(),
            _ => {
                return Err(fail(format!(
                    "is not set or empty; set it to the key ({HOW_TO_MAKE})"
                )))
            }
        },
    };
    let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
        let newline = if bytes.ends_with(b"\n") {
            " (it ends with a newline, which counts)"
        } else {
            ""
        };
        fail(format!(
            "holds {} bytes{newline}; {HOW_TO_MAKE}",
            bytes.len()
        ))
    })?;
    Ok(EncryptionKey::new(key))
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, String> {
    // Bounded: a path to a large file by mistake is refused without reading it all.
    let meta = std::fs::metadata(path).map_err(|err| format!("cannot be read: {err}"))?;
    if !meta.is_file() {
        return Err("is not a regular file; give the path of a file of 32 raw bytes".to_string());
    }
    if meta.len() > 4096 {
        return Err(format!("holds {} bytes; {HOW_TO_MAKE}", meta.len()));
    }
    std::fs::read(path).map_err(|err| format!("cannot be read: {err}"))
}

/// The key ring of `cipher` (a configuration's name) with the key at `source`, for `owner`.
pub fn load_key_ring(cipher: &str, source: &KeySource, owner: &str) -> Result<KeyRing, KeyError> {
    let cipher = Cipher::parse(cipher).map_err(|problem| KeyError {
        owner: owner.to_string(),
        location: source.clone(),
        problem: format!("cannot be used: {problem}"),
    })?;
    Ok(KeyRing::new(cipher, load_key(source, owner)?, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_32_bytes_is_a_key_and_anything_else_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.key");
        std::fs::write(&good, [9u8; 32]).unwrap();
        let key = load_key(&KeySource::File(good), "tier \"hot\"").unwrap();
        assert_eq!(key.id(), KeyId::of(&[9u8; 32]));

        let newline = dir.path().join("newline.key");
        std::fs::write(
            &newline,
            [b'a'; 32].iter().chain(b"\n").copied().collect::<Vec<_>>(),
        )
        .unwrap();
        let err = load_key(&KeySource::File(newline.clone()), "tier \"hot\"").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("tier \"hot\": the encryption key file"),
            "{text}"
        );
        assert!(text.contains(&newline.display().to_string()), "{text}");
        assert!(
            text.contains("33 bytes") && text.contains("newline"),
            "{text}"
        );
        assert!(text.contains("exactly 32 raw bytes"), "{text}");

        let missing = dir.path().join("missing.key");
        let text = load_key(&KeySource::File(missing), "tier \"hot\"")
            .unwrap_err()
            .to_string();
        assert!(text.contains("missing.key cannot be read"), "{text}");
        let text = load_key(&KeySource::File(dir.path().to_path_buf()), "tier \"hot\"")
            .unwrap_err()
            .to_string();
        assert!(text.contains("not a regular file"), "{text}");
    }

    #[test]
    fn an_unset_variable_and_an_unknown_cipher_are_refused() {
        let source = KeySource::Env("STRATA_TEST_KEY_NEVER_SET_7F3A".to_string());
        let text = load_key(&source, "the destination")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("environment variable STRATA_TEST_KEY_NEVER_SET_7F3A is not set"),
            "{text}"
        );
        let text = load_key_ring("des", &source, "tier \"hot\"")
            .unwrap_err()
            .to_string();
        assert!(text.contains("\"des\" is not a cipher"), "{text}");
    }
}
