//! Sealed JSON documents: the byte-level half of the packed index's and the parity map's
//! integrity (the I/O half, two copies and the choice between them, is
//! `strata_mover::packed::sealed`).
//!
//! `self_hash` is BLAKE3, lower-case hex, of the document's canonical JSON
//! ([`canonical_json`]: no whitespace, object members sorted by the bytes of their keys at
//! every level, arrays in order) with the `self_hash` member removed, as for the dataset
//! manifest. Any change to the file, even one that keeps it well-formed, is detected;
//! member order and whitespace are not part of the hash. A type that existed before
//! sealing ([`Sealed::LEGACY`]) is still read without `self_hash`, but then only when the
//! document is exactly what its type writes (an unknown or renamed member is damage).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::manifest::canonical_json;

/// The member that holds the seal.
pub const SELF_HASH: &str = "self_hash";

/// A metadata document that is sealed with a self-hash and stored twice.
pub trait Sealed: Serialize + DeserializeOwned + Clone {
    /// How messages name the document (`the packed index`).
    const WHAT: &'static str;
    /// Whether documents without `self_hash` are read (written before sealing existed).
    const LEGACY: bool;
    /// Whether a store may lack the document altogether (no problem when both copies are
    /// missing).
    const OPTIONAL: bool;
    /// Pretty JSON (small documents people read) or compact (large ones).
    const PRETTY: bool;
    /// What it means when neither copy can be used, and what to do about it.
    const LOST: &'static str;

    /// The `self_hash` field (serialised only when set).
    fn self_hash_mut(&mut self) -> &mut Option<String>;

    /// Checks of the parsed document made before its hash: format marker, version.
    fn identify(&self) -> Result<(), String>;
}

/// BLAKE3 hex of the canonical form of `value`: the self-hash of a document whose
/// `self_hash` member is removed.
pub fn hash_of(value: &serde_json::Value) -> String {
    let mut canonical = Vec::new();
    canonical_json(value, &mut canonical);
    blake3::hash(&canonical).to_hex().to_string()
}

/// Serialise `doc` with a freshly computed `self_hash` (pretty or compact per
/// [`Sealed::PRETTY`], ending in a newline when pretty).
pub fn seal<T: Sealed>(doc: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut sealed = doc.clone();
    *sealed.self_hash_mut() = None;
    let hash = hash_of(&serde_json::to_value(&sealed)?);
    *sealed.self_hash_mut() = Some(hash);
    if T::PRETTY {
        let mut out = serde_json::to_vec_pretty(&sealed)?;
        out.push(b'\n');
        Ok(out)
    } else {
        serde_json::to_vec(&sealed)
    }
}

/// Parse and check a sealed document: JSON object, shape, [`Sealed::identify`], then the
/// self-hash (required unless [`Sealed::LEGACY`]). Returns the document, with its
/// `self_hash` set to the recorded one, and whether it was sealed.
pub fn unseal<T: Sealed>(bytes: &[u8]) -> Result<(T, bool), String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| "not a JSON object".to_string())?;
    let recorded = match object.remove(SELF_HASH) {
        None => None,
        Some(serde_json::Value::String(hash)) => Some(hash),
        Some(_) => return Err("its self_hash is not a string: the file was altered".into()),
    };
    let computed = hash_of(&value);
    let unsealed = recorded.is_none().then(|| value.clone());
    let mut doc: T = serde_json::from_value(value).map_err(|e| e.to_string())?;
    doc.identify()?;
    match recorded {
        Some(recorded) if recorded == computed => {
            *doc.self_hash_mut() = Some(recorded);
            Ok((doc, true))
        }
        Some(_) => Err("self-hash mismatch: the file was altered or damaged".into()),
        None if !T::LEGACY => Err("it has no self-hash: the file was altered or damaged".into()),
        // A legacy document is exactly what its type writes: a renamed or unknown member
        // (a damaged `self_hash` key among them) is damage.
        None if serde_json::to_value(&doc).ok() == unsealed => Ok((doc, false)),
        None => Err(
            "it has no self-hash and members its format does not have: the file was altered \
             or damaged"
                .into(),
        ),
    }
}
