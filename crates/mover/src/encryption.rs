//! Encryption keys as an operator hands them over: a file of 32 raw bytes or an environment
//! variable holding them, read once at start-up (`strata serve` for a tier, `strata migrate
//! --encrypt` for a dataset) into a [`KeyRing`]. The sealing itself is the codec crate's
//! (`strata_codec::format::encrypted`). Errors name whose key it is (a tier, a dataset), the
//! file or variable, and what is expected; they never hold a byte of the key.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use strata_codec::format::encrypted::{Cipher, EncryptionKey, KeyId, KeyRing, KEY_LEN};
use strata_codec::format::packed::{
    keyed_object_name, DatasetEncryption, LayoutMarker, LAYOUT_PATH, OBJECT_NAME_CONTEXT,
};
use strata_store::{Store, StoreError};

use crate::MoverError;

/// The layout marker of the packed store at `store`, parsed; `None` when it has none.
pub async fn read_layout_marker(store: &Store) -> Result<Option<LayoutMarker>, MoverError> {
    let bytes = match store.read_all(LAYOUT_PATH).await {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound { .. }) | Err(StoreError::NotADirectory { .. }) => {
            return Ok(None)
        }
        Err(error) => return Err(error.into()),
    };
    LayoutMarker::from_json(&bytes).map(Some).map_err(|reason| {
        MoverError::InvalidOptions(format!(
            "{}/{LAYOUT_PATH}: {reason}",
            store.display().trim_end_matches('/')
        ))
    })
}

/// How `store` is encrypted, from its layout marker (`None`: not encrypted, or no marker).
pub async fn dataset_encryption(store: &Store) -> Result<Option<DatasetEncryption>, MoverError> {
    Ok(read_layout_marker(store).await?.and_then(|m| m.encryption))
}

/// The keys that open the encrypted packed dataset at `store` with `key` (the one its reader
/// was given: `--encryption-key-file` / `--encryption-key-env` of `strata migrate`, `verify`,
/// `inspect`): `None` when it is not encrypted; an error naming the dataset and its key id
/// when no key was given or the key given has another id.
pub async fn dataset_keys(
    store: &Store,
    key: Option<&EncryptionKey>,
) -> Result<Option<Arc<KeyRing>>, MoverError> {
    let Some(sealed) = dataset_encryption(store).await? else {
        return Ok(None);
    };
    let location = store.display();
    let Some(key) = key else {
        return Err(MoverError::InvalidOptions(format!(
            "{location} is an encrypted dataset (cipher {}, key id {}): give its key with \
             --encryption-key-file PATH or --encryption-key-env VAR",
            sealed.cipher, sealed.key_id
        )));
    };
    check_key_matches(&location, &sealed, key)?;
    let cipher = Cipher::parse(&sealed.cipher).map_err(|problem| {
        MoverError::InvalidOptions(format!("{location}/{LAYOUT_PATH}: {problem}"))
    })?;
    Ok(Some(Arc::new(KeyRing::new(
        cipher,
        key.clone(),
        Vec::new(),
    ))))
}

/// Refuse `key` for a dataset sealed under another key id, naming both ids.
pub fn check_key_matches(
    location: &str,
    sealed: &DatasetEncryption,
    key: &EncryptionKey,
) -> Result<(), MoverError> {
    if key.id().to_string() == sealed.key_id {
        return Ok(());
    }
    Err(MoverError::InvalidOptions(format!(
        "{location} is encrypted under key id {}, but the key given has id {}: give the key \
         with id {} (the wrong key opens nothing)",
        sealed.key_id,
        key.id(),
        sealed.key_id
    )))
}

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

/// What `strata migrate --layout packed --encrypt` seals a dataset with: the key ring
/// (sealing every frame) and the subkey naming its objects (keyed BLAKE3, see
/// [`strata_codec::format::packed::keyed_object_name`]). No `Debug`: it holds key material.
pub struct DatasetSealer {
    keys: KeyRing,
    name_key: [u8; KEY_LEN],
}

impl DatasetSealer {
    /// The sealer of `keys`' current key and cipher.
    pub fn new(keys: KeyRing) -> DatasetSealer {
        let name_key = keys.derive_subkey(OBJECT_NAME_CONTEXT);
        DatasetSealer { keys, name_key }
    }

    /// The object name of `bytes` (a raw chunk, or a pack's frames before sealing).
    pub fn name(&self, bytes: &[u8]) -> String {
        keyed_object_name(&self.name_key, bytes)
    }

    /// `frame` sealed as an encrypted frame under a fresh nonce.
    pub fn seal(&self, frame: &[u8]) -> Vec<u8> {
        self.keys.seal(frame)
    }

    /// What the layout marker records: the cipher and the key id.
    pub fn marker_entry(&self) -> DatasetEncryption {
        DatasetEncryption {
            cipher: self.keys.cipher().name().to_string(),
            key_id: self.keys.current_id().to_string(),
        }
    }

    /// Refuse a destination whose layout marker says it is sealed otherwise (another key
    /// id or cipher), naming both.
    pub fn check_matches(
        &self,
        location: &str,
        sealed: &DatasetEncryption,
    ) -> Result<(), MoverError> {
        let mine = self.marker_entry();
        if mine.key_id != sealed.key_id {
            return Err(MoverError::InvalidOptions(format!(
                "{location} is encrypted under key id {}, but the key given has id {}: give \
                 the key with id {} to add to it, or choose a new destination",
                sealed.key_id, mine.key_id, sealed.key_id
            )));
        }
        if mine.cipher != sealed.cipher {
            return Err(MoverError::InvalidOptions(format!(
                "{location} is encrypted with --cipher {}, not {}: give --cipher {} to add to it",
                sealed.cipher, mine.cipher, sealed.cipher
            )));
        }
        Ok(())
    }
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
