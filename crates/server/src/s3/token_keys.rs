//! S3 key pairs bound to API tokens (`strata token create --s3`), with no secret in the
//! catalog.
//!
//! SigV4 needs the server to know each secret, so the secret is derived, never stored:
//! `secret = hex(BLAKE3-keyed(master key, access key id))`, the master key 32 random
//! bytes in `<data_dir>/s3-master.key` (mode 0600, made at the first `--s3` token). The
//! access key id is `STRATA` and the token's public id in capitals, so the id alone finds
//! the token (its scope, prefix, expiry, revocation) and nothing new is stored: revoking
//! the token revokes its key pair. A service on a shared PostgreSQL catalog needs the same
//! master key file on every node.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The master key's file in the data directory.
pub const MASTER_KEY_FILE: &str = "s3-master.key";

/// What every token-bound access key id starts with.
pub const ACCESS_KEY_PREFIX: &str = "STRATA";

/// The master key's path under `data_dir`.
pub fn master_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(MASTER_KEY_FILE)
}

/// Reads the master key (64 hex digits); `None` when the file does not exist.
pub fn read_master_key(data_dir: &Path) -> std::io::Result<Option<[u8; 32]>> {
    let path = master_key_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key).map_err(|_| {
        std::io::Error::other(format!(
            "{} is not an S3 master key (64 hex digits); restore it from a backup, or remove \
             it to make a new one (every --s3 key pair made with it stops working)",
            path.display()
        ))
    })?;
    Ok(Some(key))
}

/// Reads the master key, or makes one (readable by its owner only) if there is none.
pub fn master_key(data_dir: &Path) -> std::io::Result<[u8; 32]> {
    if let Some(key) = read_master_key(data_dir)? {
        return Ok(key);
    }
    std::fs::create_dir_all(data_dir)?;
    let key: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(master_key_path(data_dir)) {
        Ok(mut file) => {
            file.write_all(hex::encode(key).as_bytes())?;
            file.sync_all()?;
            Ok(key)
        }
        // Made meanwhile by another process: use that one.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            read_master_key(data_dir)?.ok_or(err)
        }
        Err(err) => Err(err),
    }
}

/// The access key id bound to token `token_id`.
pub fn access_key_id(token_id: &str) -> String {
    format!("{ACCESS_KEY_PREFIX}{}", token_id.to_ascii_uppercase())
}

/// The token id an access key id is bound to, if it has the shape of one.
pub fn token_id(access_key_id: &str) -> Option<String> {
    let id = access_key_id.strip_prefix(ACCESS_KEY_PREFIX)?;
    (id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
    .then(|| id.to_ascii_lowercase())
}

/// The secret of `access_key_id` under `master`.
pub fn secret(master: &[u8; 32], access_key_id: &str) -> String {
    blake3::keyed_hash(master, access_key_id.as_bytes())
        .to_hex()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_secrets_depend_on_the_master_key() {
        let id = access_key_id("0a1b2c3d4e5f");
        assert_eq!(id, "STRATA0A1B2C3D4E5F");
        assert_eq!(token_id(&id).unwrap(), "0a1b2c3d4e5f");
        assert!(token_id("STRATA0a1b2c3d4e5f").is_none());
        assert!(token_id("OTHER0A1B2C3D4E5F").is_none());
        assert_ne!(secret(&[1; 32], &id), secret(&[2; 32], &id));
        assert_eq!(secret(&[1; 32], &id).len(), 64);
    }

    #[test]
    fn the_master_key_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_master_key(dir.path()).unwrap().is_none());
        let key = master_key(dir.path()).unwrap();
        assert_eq!(master_key(dir.path()).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(master_key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(master_key_path(dir.path()), "nonsense").unwrap();
        assert!(read_master_key(dir.path()).is_err());
    }
}
