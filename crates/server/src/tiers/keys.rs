//! A tier's encryption keys, read at start-up from the file or variable its configuration
//! names (`encryption_key_file`, `encryption_key_env`): a tier whose key cannot be read, or
//! is not 32 bytes, is refused before the service serves anything, with the tier, the field
//! and the file or variable named, never the key. Earlier keys (`encryption_previous_key_files`,
//! `encryption_previous_key_envs`) are read the same way into the ring's previous keys:
//! they open objects sealed before the current key was set, until `strata key rotate` has
//! re-encrypted them.

use strata_heat::TierConfig;
use strata_mover::encryption::{load_key, load_key_ring, EncryptionKey, KeyRing, KeySource};

use crate::error::ServeError;

/// The keys of tier `index` (`tier`), or `None` when it does not encrypt.
pub fn tier_keys(tier: &TierConfig, index: usize) -> Result<Option<KeyRing>, ServeError> {
    let Some(cipher) = &tier.encryption else {
        return Ok(None);
    };
    let (field, source) = match (&tier.encryption_key_file, &tier.encryption_key_env) {
        (Some(path), None) => ("encryption_key_file", KeySource::File(path.clone())),
        (None, Some(var)) => ("encryption_key_env", KeySource::Env(var.clone())),
        _ => {
            return Err(ServeError::Config {
                field: format!("tier[{index}].encryption_key_file"),
                reason: format!(
                    "tier {:?} is encrypted and needs exactly one key source: \
                     encryption_key_file = \"PATH\" or encryption_key_env = \"VAR\"",
                    tier.name
                ),
            })
        }
    };
    let owner = format!("tier {:?}", tier.name);
    let keys = load_key_ring(cipher, &source, &owner).map_err(|err| ServeError::Config {
        field: format!("tier[{index}].{field}"),
        reason: err.to_string(),
    })?;
    let previous = previous_keys(tier, index, &owner)?;
    Ok(Some(keys.with_previous(previous)))
}

/// The tier's earlier keys, in the order written (files, then variables).
fn previous_keys(
    tier: &TierConfig,
    index: usize,
    owner: &str,
) -> Result<Vec<EncryptionKey>, ServeError> {
    let files = tier
        .encryption_previous_key_files
        .iter()
        .enumerate()
        .map(|(at, path)| {
            (
                format!("encryption_previous_key_files[{at}]"),
                KeySource::File(path.clone()),
            )
        });
    let envs = tier
        .encryption_previous_key_envs
        .iter()
        .enumerate()
        .map(|(at, var)| {
            (
                format!("encryption_previous_key_envs[{at}]"),
                KeySource::Env(var.clone()),
            )
        });
    files
        .chain(envs)
        .map(|(field, source)| {
            load_key(&source, &format!("{owner} (an earlier key)")).map_err(|err| {
                ServeError::Config {
                    field: format!("tier[{index}].{field}"),
                    reason: err.to_string(),
                }
            })
        })
        .collect()
}
