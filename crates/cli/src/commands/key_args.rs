//! The encryption key flags of `strata migrate`, `verify` and `inspect`: where the key of
//! an encrypted packed dataset is read from (`--encryption-key-file`, `--encryption-key-env`).
//! The key is loaded here and handed to the mover; errors name the flag and the file or
//! variable, never a byte of the key.

use std::path::PathBuf;

use clap::Args;
use strata_mover::encryption::{load_key, EncryptionKey, KeySource};

/// Where the key of an encrypted packed dataset comes from.
#[derive(Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// A file holding the dataset's key: exactly 32 raw bytes
    /// (`head -c 32 /dev/urandom > FILE`).
    #[arg(long, value_name = "PATH", conflicts_with = "encryption_key_env")]
    pub encryption_key_file: Option<PathBuf>,
    /// An environment variable holding the dataset's key: exactly 32 bytes.
    #[arg(long, value_name = "VAR")]
    pub encryption_key_env: Option<String>,
}

impl KeyArgs {
    /// The flag given, as the user wrote it (`None`: no key source).
    pub fn flag(&self) -> Option<&'static str> {
        match (&self.encryption_key_file, &self.encryption_key_env) {
            (Some(_), _) => Some("--encryption-key-file"),
            (None, Some(_)) => Some("--encryption-key-env"),
            (None, None) => None,
        }
    }

    fn source(&self) -> Option<KeySource> {
        match (&self.encryption_key_file, &self.encryption_key_env) {
            (Some(path), _) => Some(KeySource::File(path.clone())),
            (None, Some(var)) => Some(KeySource::Env(var.clone())),
            (None, None) => None,
        }
    }

    /// The key, when a source was given (the command hands it to the readers and writers
    /// of the dataset); an error naming the flag and the file or variable when it is not
    /// exactly 32 bytes.
    pub fn load(&self) -> anyhow::Result<Option<EncryptionKey>> {
        let (Some(source), Some(flag)) = (self.source(), self.flag()) else {
            return Ok(None);
        };
        Ok(Some(load_key(&source, flag)?))
    }
}
