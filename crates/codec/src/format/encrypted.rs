//! The encrypted frame (`STEF`): one chunk frame sealed under a tier's or a dataset's key,
//! so that what a store holds of an encrypted tier is ciphertext and a header that names the
//! key, never the chunk (`docs/FORMATS.md`, "Encrypted frame").
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4  | magic `STEF` |
//! | 4  | 1  | format version ([`ENCRYPTED_VERSION`]) |
//! | 5  | 1  | cipher id: 1 XChaCha20-Poly1305, 2 AES-256-GCM |
//! | 6  | 2  | reserved, zero |
//! | 8  | 8  | key id: the first 8 bytes of BLAKE3 `derive_key(`[`KEY_ID_CONTEXT`]`, key)` |
//! | 16 | 24 | nonce: 24 random bytes (AES-256-GCM uses the first 12, the rest are zero) |
//! | 40 | 8  | sealed length: bytes after the header (the inner frame plus the 16-byte tag), u64 LE |
//! | 48 | .. | the AEAD ciphertext of the inner chunk frame, then its 16-byte tag |
//!
//! The whole 48-byte header is the AEAD's associated data, so a header edited in any byte
//! (cipher, key id, nonce, length) fails the tag like the ciphertext does. The inner frame is
//! an ordinary chunk frame ([`super::frame`]): after decryption its own checks run, the
//! BLAKE3 of the raw chunk last, so integrity stays end to end.
//!
//! Nonces: XChaCha20-Poly1305 takes 24 random bytes per frame, which never repeat in
//! practice under one key. AES-256-GCM takes 12 random bytes per frame: by NIST SP 800-38D
//! random 96-bit nonces are safe for 2^32 messages under one key, which at 1 MiB frames is
//! 4 PiB; rotate an AES key before that (XChaCha has no such bound in practice).
//!
//! Why these crates: `chacha20poly1305` and `aes-gcm` are RustCrypto's maintained,
//! audited, pure-Rust AEADs (MSRV 1.85), with SIMD and AES-NI backends chosen at run time;
//! no C library to build.

use aes_gcm::Aes256Gcm;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use rand::RngCore;

/// The encrypted frame's magic.
pub const ENCRYPTED_MAGIC: [u8; 4] = *b"STEF";
/// The encrypted frame format version this code writes and reads.
pub const ENCRYPTED_VERSION: u8 = 1;
/// Header bytes before the ciphertext.
pub const ENCRYPTED_HEADER_LEN: usize = 48;
/// The AEAD tag after the ciphertext.
pub const TAG_LEN: usize = 16;
/// What sealing adds to a frame: the header and the tag.
pub const ENCRYPTED_OVERHEAD: usize = ENCRYPTED_HEADER_LEN + TAG_LEN;
/// The key length every cipher here takes: 32 raw bytes.
pub const KEY_LEN: usize = 32;
/// The BLAKE3 `derive_key` context of key ids: a key id names a key without revealing it.
pub const KEY_ID_CONTEXT: &str = "strata 2026-12 encryption key id v1";
/// The largest sealed length a header may declare (1 GiB plus a frame header and tag).
const MAX_SEALED_LEN: u64 = (1 << 30) + 128;

/// A cipher of encryption at rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// XChaCha20-Poly1305, 24-byte random nonces (`xchacha20poly1305`).
    XChaCha20Poly1305,
    /// AES-256-GCM, 12-byte random nonces (`aes-256-gcm`).
    Aes256Gcm,
}

impl Cipher {
    /// The cipher a configuration names (`xchacha20poly1305`, `aes-256-gcm`).
    pub fn parse(name: &str) -> Result<Cipher, String> {
        match name {
            "xchacha20poly1305" => Ok(Cipher::XChaCha20Poly1305),
            "aes-256-gcm" => Ok(Cipher::Aes256Gcm),
            other => Err(format!(
                "{other:?} is not a cipher Strata knows; write \"xchacha20poly1305\" or \
                 \"aes-256-gcm\""
            )),
        }
    }

    /// The name a configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::XChaCha20Poly1305 => "xchacha20poly1305",
            Cipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    fn id(self) -> u8 {
        match self {
            Cipher::XChaCha20Poly1305 => 1,
            Cipher::Aes256Gcm => 2,
        }
    }

    fn from_id(id: u8) -> Option<Cipher> {
        match id {
            1 => Some(Cipher::XChaCha20Poly1305),
            2 => Some(Cipher::Aes256Gcm),
            _ => None,
        }
    }
}

/// A key's public name: 8 bytes derived from it, printed as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id of `key`: the first 8 bytes of BLAKE3 `derive_key(KEY_ID_CONTEXT, key)`.
    pub fn of(key: &[u8; KEY_LEN]) -> KeyId {
        let derived = blake3::derive_key(KEY_ID_CONTEXT, key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&derived[..8]);
        KeyId(id)
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A 32-byte key and its id. Its `Debug` shows the id only, so a key never reaches a log.
#[derive(Clone)]
pub struct EncryptionKey {
    bytes: [u8; KEY_LEN],
    id: KeyId,
}

impl EncryptionKey {
    /// The key of these 32 bytes.
    pub fn new(bytes: [u8; KEY_LEN]) -> EncryptionKey {
        EncryptionKey {
            id: KeyId::of(&bytes),
            bytes,
        }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptionKey(id {})", self.id)
    }
}

/// The keys of one tier or dataset: the one new frames are sealed with (and its cipher),
/// and any older ones still readable.
#[derive(Clone, Debug)]
pub struct KeyRing {
    cipher: Cipher,
    current: EncryptionKey,
    previous: Vec<EncryptionKey>,
}

impl KeyRing {
    /// Seals with `current` under `cipher`, opens frames of `current` and `previous`.
    pub fn new(cipher: Cipher, current: EncryptionKey, previous: Vec<EncryptionKey>) -> KeyRing {
        KeyRing {
            cipher,
            current,
            previous,
        }
    }

    /// The cipher new frames are sealed with.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The id of the key new frames are sealed with.
    pub fn current_id(&self) -> KeyId {
        self.current.id
    }

    /// This ring with `previous` as its earlier keys (opening only).
    pub fn with_previous(self, previous: Vec<EncryptionKey>) -> KeyRing {
        KeyRing { previous, ..self }
    }

    /// The ids of the earlier keys, in order.
    pub fn previous_ids(&self) -> Vec<KeyId> {
        self.previous.iter().map(|key| key.id).collect()
    }

    /// A 32-byte subkey of the current key for `context` (BLAKE3 `derive_key`): the key
    /// of an encrypted packed dataset's object names, so that one key serves both purposes
    /// without either revealing the other.
    pub fn derive_subkey(&self, context: &str) -> [u8; KEY_LEN] {
        blake3::derive_key(context, &self.current.bytes)
    }

    fn key(&self, id: KeyId) -> Option<&EncryptionKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == id)
    }

    /// Seals `inner` (a chunk frame) with the current key and a fresh random nonce.
    pub fn seal(&self, inner: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        let random = match self.cipher {
            Cipher::XChaCha20Poly1305 => &mut nonce[..],
            Cipher::Aes256Gcm => &mut nonce[..12],
        };
        rand::rng().fill_bytes(random);
        seal_with_nonce(self.cipher, &self.current, nonce, inner)
    }

    /// Opens a sealed frame: the inner chunk frame, once the tag checks.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, EncryptedError> {
        let header = read_encrypted_header(sealed)?;
        let key = self
            .key(header.key_id)
            .ok_or(EncryptedError::UnknownKey(header.key_id))?;
        let aad = &sealed[..ENCRYPTED_HEADER_LEN];
        let msg = &sealed[ENCRYPTED_HEADER_LEN..];
        let payload = Payload { msg, aad };
        let opened = match header.cipher {
            Cipher::XChaCha20Poly1305 => {
                XChaCha20Poly1305::new(&key.bytes.into()).decrypt(&header.nonce.into(), payload)
            }
            Cipher::Aes256Gcm => {
                let mut nonce = [0u8; 12];
                nonce.copy_from_slice(&header.nonce[..12]);
                Aes256Gcm::new(&key.bytes.into()).decrypt(&nonce.into(), payload)
            }
        };
        opened.map_err(|_| EncryptedError::TagMismatch(header.key_id))
    }
}

/// Seals `inner` under `key` with the given nonce (for AES-256-GCM its last 12 bytes must be
/// zero). Callers use [`KeyRing::seal`], which draws the nonce; this form makes worked
/// examples reproducible.
pub fn seal_with_nonce(
    cipher: Cipher,
    key: &EncryptionKey,
    nonce: [u8; 24],
    inner: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(inner.len() + ENCRYPTED_OVERHEAD);
    out.extend_from_slice(&ENCRYPTED_MAGIC);
    out.push(ENCRYPTED_VERSION);
    out.push(cipher.id());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&key.id.0);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&((inner.len() + TAG_LEN) as u64).to_le_bytes());
    let payload = Payload {
        msg: inner,
        aad: &out[..ENCRYPTED_HEADER_LEN],
    };
    // Encryption fails only for messages beyond the ciphers' limits (2^38 bytes, GCM's
    // 64 GiB), far above a frame's 1 GiB bound.
    let sealed = match cipher {
        Cipher::XChaCha20Poly1305 => {
            XChaCha20Poly1305::new(&key.bytes.into()).encrypt(&nonce.into(), payload)
        }
        Cipher::Aes256Gcm => {
            let mut short = [0u8; 12];
            short.copy_from_slice(&nonce[..12]);
            Aes256Gcm::new(&key.bytes.into()).encrypt(&short.into(), payload)
        }
    }
    .expect("a frame is within the cipher's message limit");
    out.extend_from_slice(&sealed);
    out
}

/// An encrypted frame's header, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedHeader {
    /// The cipher it was sealed with.
    pub cipher: Cipher,
    /// The id of the key it was sealed with.
    pub key_id: KeyId,
    /// The nonce (AES-256-GCM: the first 12 bytes).
    pub nonce: [u8; 24],
    /// Bytes after the header: the ciphertext and the tag.
    pub sealed_len: u64,
}

/// Why an encrypted frame could not be opened. Every variant means no bytes were returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptedError {
    /// The bytes are not an encrypted frame of a version this build reads, or are cut.
    #[error("not a readable encrypted frame: {0}")]
    Damaged(String),
    /// Sealed under a key the configuration does not hold.
    #[error(
        "sealed under key id {0}, which is not configured; set the key with this id as the \
         tier's (or the dataset's) encryption key"
    )]
    UnknownKey(KeyId),
    /// The tag does not check: the wrong key under a colliding id, or damaged bytes.
    #[error(
        "the authentication tag does not match under key id {0}: the frame was altered or \
         damaged"
    )]
    TagMismatch(KeyId),
}

/// Whether `bytes` start like an encrypted frame (its magic), the way readers tell an
/// encrypted chunk from a plain one.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    bytes.starts_with(&ENCRYPTED_MAGIC)
}

/// Reads and checks the header of an encrypted frame (its length against the bytes given).
pub fn read_encrypted_header(bytes: &[u8]) -> Result<EncryptedHeader, EncryptedError> {
    let header = read_header_alone(bytes)?;
    let present = (bytes.len() - ENCRYPTED_HEADER_LEN) as u64;
    if present != header.sealed_len {
        return Err(EncryptedError::Damaged(format!(
            "{present} bytes follow the header, it declares {}",
            header.sealed_len
        )));
    }
    Ok(header)
}

/// Reads and checks the 48-byte header of an encrypted frame without the sealed bytes
/// that follow it: which key a stored frame is under, from one short read (key rotation).
pub fn read_header_alone(bytes: &[u8]) -> Result<EncryptedHeader, EncryptedError> {
    let damaged = |why: String| Err(EncryptedError::Damaged(why));
    if bytes.len() < ENCRYPTED_HEADER_LEN {
        return damaged(format!(
            "{} bytes, shorter than the {ENCRYPTED_HEADER_LEN}-byte header",
            bytes.len()
        ));
    }
    if !is_encrypted(bytes) {
        return damaged(format!("magic {:02x?}, expected \"STEF\"", &bytes[..4]));
    }
    if bytes[4] != ENCRYPTED_VERSION {
        return damaged(format!(
            "version {} (this build reads version {ENCRYPTED_VERSION}); upgrade Strata",
            bytes[4]
        ));
    }
    let Some(cipher) = Cipher::from_id(bytes[5]) else {
        return damaged(format!("unknown cipher id {}", bytes[5]));
    };
    if bytes[6..8] != [0, 0] {
        return damaged("reserved bytes are not zero".to_string());
    }
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&bytes[8..16]);
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&bytes[16..40]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[40..48]);
    let sealed_len = u64::from_le_bytes(len);
    if !(TAG_LEN as u64..=MAX_SEALED_LEN).contains(&sealed_len) {
        return damaged(format!(
            "declared sealed length {sealed_len} is out of bounds"
        ));
    }
    Ok(EncryptedHeader {
        cipher,
        key_id: KeyId(key_id),
        nonce,
        sealed_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(cipher: Cipher, byte: u8) -> KeyRing {
        KeyRing::new(cipher, EncryptionKey::new([byte; 32]), Vec::new())
    }

    #[test]
    fn both_ciphers_round_trip_and_hide_the_bytes() {
        let inner = b"the quick brown fox jumps over the lazy dog".repeat(20);
        for cipher in [Cipher::XChaCha20Poly1305, Cipher::Aes256Gcm] {
            let keys = ring(cipher, 7);
            let sealed = keys.seal(&inner);
            assert_eq!(sealed.len(), inner.len() + ENCRYPTED_OVERHEAD);
            assert!(!sealed.windows(9).any(|w| w == b"quick bro"));
            assert_eq!(keys.open(&sealed).unwrap(), inner);
            // A fresh nonce each time: the same frame seals differently.
            assert_ne!(keys.seal(&inner), sealed);
        }
    }

    #[test]
    fn a_wrong_key_an_edited_header_and_a_flipped_byte_are_refused() {
        let keys = ring(Cipher::XChaCha20Poly1305, 1);
        let sealed = keys.seal(b"secret chunk");
        let other = ring(Cipher::XChaCha20Poly1305, 2);
        assert_eq!(
            other.open(&sealed),
            Err(EncryptedError::UnknownKey(keys.current_id()))
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            keys.open(&flipped),
            Err(EncryptedError::TagMismatch(keys.current_id()))
        );
        let mut nonce_edited = sealed.clone();
        nonce_edited[20] ^= 1;
        assert!(matches!(
            keys.open(&nonce_edited),
            Err(EncryptedError::TagMismatch(_))
        ));
        // The same key under the other cipher id: the header is associated data.
        let mut cipher_edited = sealed.clone();
        cipher_edited[5] = 2;
        assert!(keys.open(&cipher_edited).is_err());
        assert!(matches!(
            keys.open(&sealed[..sealed.len() - 1]),
            Err(EncryptedError::Damaged(_))
        ));
    }

    #[test]
    fn previous_keys_still_open_their_frames() {
        let old = ring(Cipher::Aes256Gcm, 3);
        let sealed = old.seal(b"under the old key");
        let rotated = KeyRing::new(
            Cipher::XChaCha20Poly1305,
            EncryptionKey::new([4; 32]),
            vec![EncryptionKey::new([3; 32])],
        );
        assert_eq!(rotated.open(&sealed).unwrap(), b"under the old key");
        assert_ne!(rotated.current_id(), old.current_id());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = EncryptionKey::new([0xab; 32]);
        let shown = format!("{key:?} {:?}", ring(Cipher::Aes256Gcm, 0xab));
        assert!(!shown.contains("abab") && !shown.contains("171"), "{shown}");
        assert!(shown.contains(&key.id().to_string()));
    }
}
