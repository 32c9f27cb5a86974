//! A tier's encryption keys, read at start-up from the file or variable its configuration
//! names (`encryption_key_file`, `encryption_key_env`): a tier whose key cannot be read, or
//! is not 32 bytes, is refused before the service serves anything, with the tier, the field
//! and the file or variable named, never the key.

use strata_heat::TierConfig;
use strata_mover::encryption::{load_key_ring, KeyRing, KeySource};

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
    Ok(Some(keys))
}
