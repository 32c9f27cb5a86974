//! Checks of a tier's encryption at rest in `strata.toml` (`encryption`,
//! `encryption_key_file`, `encryption_key_env`, and the earlier keys kept readable,
//! `encryption_previous_key_files`, `encryption_previous_key_envs`): the cipher's name, one key source, and a
//! layout that can hold encrypted bytes. Reading the key itself is the service's, at start-up
//! (`strata_mover::encryption`), so that a config check never touches secrets.

use super::{Layout, TierConfig};

/// The cipher names `encryption` accepts, as the codec crate's `Cipher::parse` spells them.
pub const ENCRYPTION_CIPHERS: [&str; 2] = ["xchacha20poly1305", "aes-256-gcm"];

/// Problems with `tier`'s encryption fields, each as (field, reason).
pub(super) fn check_tier_encryption(tier: &TierConfig) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let sources = usize::from(tier.encryption_key_file.is_some())
        + usize::from(tier.encryption_key_env.is_some());
    let previous =
        tier.encryption_previous_key_files.len() + tier.encryption_previous_key_envs.len();
    let Some(cipher) = &tier.encryption else {
        if previous > 0 {
            problems.push((
                "encryption_previous_key_files",
                "earlier keys are listed but the tier has no encryption; add encryption = \
                 \"xchacha20poly1305\" (or \"aes-256-gcm\") and its current key, or remove \
                 the earlier keys"
                    .to_string(),
            ));
        }
        if sources > 0 {
            problems.push((
                "encryption",
                "missing: a key source is set but no cipher; add encryption = \
                 \"xchacha20poly1305\" (or \"aes-256-gcm\"), or remove the key source"
                    .to_string(),
            ));
        }
        return problems;
    };
    if !ENCRYPTION_CIPHERS.contains(&cipher.as_str()) {
        problems.push((
            "encryption",
            format!(
                "{cipher:?} is not a cipher Strata knows; write \"xchacha20poly1305\" or \
                 \"aes-256-gcm\""
            ),
        ));
    }
    if sources != 1 {
        problems.push((
            "encryption_key_file",
            "an encrypted tier needs exactly one key source: encryption_key_file = \"PATH\" \
             (a file of 32 raw bytes) or encryption_key_env = \"VAR\" (a variable holding \
             them)"
                .to_string(),
        ));
    }
    if tier.layout == Layout::Plain {
        problems.push((
            "layout",
            "a plain-layout tier keeps each object as a file readable without Strata, which \
             encrypted bytes cannot be; set layout = \"packed\" on this tier (codec = \
             \"none\" keeps the bytes uncompressed)"
                .to_string(),
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn packed() -> TierConfig {
        TierConfig {
            layout: Layout::Packed,
            encryption: Some("xchacha20poly1305".to_string()),
            encryption_key_file: Some("/etc/strata/hot.key".into()),
            ..TierConfig::local("hot", Path::new("/tmp"))
        }
    }

    #[test]
    fn a_packed_tier_with_one_key_source_is_accepted() {
        assert!(check_tier_encryption(&packed()).is_empty());
        let aes = TierConfig {
            encryption: Some("aes-256-gcm".to_string()),
            encryption_key_file: None,
            encryption_key_env: Some("HOT_KEY".to_string()),
            ..packed()
        };
        assert!(check_tier_encryption(&aes).is_empty());
    }

    #[test]
    fn refusals_name_the_field_and_say_what_to_write() {
        let unknown = TierConfig {
            encryption: Some("rot13".to_string()),
            ..packed()
        };
        let found = check_tier_encryption(&unknown);
        assert_eq!(found[0].0, "encryption");
        assert!(found[0].1.contains("\"rot13\""), "{found:?}");

        let two_sources = TierConfig {
            encryption_key_env: Some("HOT_KEY".to_string()),
            ..packed()
        };
        assert_eq!(
            check_tier_encryption(&two_sources)[0].0,
            "encryption_key_file"
        );
        let no_source = TierConfig {
            encryption_key_file: None,
            ..packed()
        };
        assert_eq!(
            check_tier_encryption(&no_source)[0].0,
            "encryption_key_file"
        );

        let plain = TierConfig {
            layout: Layout::Plain,
            ..packed()
        };
        let found = check_tier_encryption(&plain);
        assert_eq!(found[0].0, "layout");
        assert!(found[0].1.contains("layout = \"packed\""), "{found:?}");

        let key_without_cipher = TierConfig {
            encryption: None,
            ..packed()
        };
        assert_eq!(
            check_tier_encryption(&key_without_cipher)[0].0,
            "encryption"
        );

        let previous_without_cipher = TierConfig {
            encryption: None,
            encryption_key_file: None,
            encryption_previous_key_files: vec!["/etc/strata/old.key".into()],
            ..packed()
        };
        assert_eq!(
            check_tier_encryption(&previous_without_cipher)[0].0,
            "encryption_previous_key_files"
        );
    }
}
