//! Sealed metadata: JSON documents that carry their own hash and are stored twice. The
//! byte-level half (`seal`, `unseal`, the `Sealed` trait) lives with the other on-disk
//! formats in `strata_codec::format::sealed` and is re-exported here; this module does the
//! I/O: two copies, and the choice between them.
//!
//! The packed index ([`super::PackedIndex`]) and the parity map
//! ([`super::parity::ParityMap`]) are sealed the way the dataset manifest is
//! (`strata_codec::manifest`): `self_hash` is BLAKE3, lower-case hex, of the document's
//! canonical JSON (`strata_codec::manifest::canonical_json`: no whitespace, object members sorted by the bytes
//! of their keys at every level, arrays in order) with the `self_hash` member removed. Any
//! change to the file, even one that keeps it well-formed, is detected; member order and
//! whitespace are not part of the hash.
//!
//! - **Two copies.** A sealed document is written twice with `write_atomic`, primary then
//!   copy (`<name>.json`, `<name>.copy.json`, identical bytes), before anything points at
//!   it ([`write_copies`]).
//! - **Loading** ([`load_copies`]) reads both and uses, in this order: a sealed primary
//!   that passes every check; a sealed copy that does; a legacy (unsealed) primary; a
//!   legacy copy. What is wrong with the other one is reported as a [`StoreIssue`] and
//!   `strata repair` rewrites it from the good one ([`Loaded::to_rewrite`]).
//! - **Legacy documents.** A type that existed before sealing ([`Sealed::LEGACY`]) is still
//!   read without `self_hash` (missing = legacy): it is then not verified as a whole, and,
//!   written before copies existed, has no copy to expect; the caller's checks still apply
//!   (the index is checked against the manifest, and object by object as it is read). A
//!   legacy document never wins over a sealed copy, so a primary that lost its `self_hash`
//!   to damage is caught while its copy is intact. A `self_hash` that is not a string, or
//!   a legacy document with members its type does not write (a damaged `self_hash` key,
//!   say), is damage, never legacy.

use bytes::Bytes;
pub use strata_codec::format::sealed::{seal, unseal, Sealed, SELF_HASH};
use strata_store::{Store, StoreError};

use crate::retry::retry_store;
use crate::verify::StoreIssue;
use crate::MoverError;

/// Write `bytes` to `primary`, then to `copy`, each atomically.
pub async fn write_copies(
    store: &Store,
    primary: &str,
    copy: &str,
    bytes: Bytes,
) -> Result<(), MoverError> {
    for path in [primary, copy] {
        retry_store(|| store.write_atomic(path, bytes.clone())).await?;
    }
    Ok(())
}

/// A sealed document as loaded from its two copies.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The document used, when a good copy was found.
    pub doc: Option<T>,
    /// Its exact bytes (what a repair writes over a bad copy).
    pub bytes: Option<Bytes>,
    /// Where the primary lives.
    pub primary_path: String,
    /// Where the copy lives.
    pub copy_path: String,
    /// Whether the primary is intact (and is the document used).
    pub primary_ok: bool,
    /// Whether the copy is intact and equal to the document used.
    pub copy_ok: bool,
    /// Whether a copy should exist: false only for a legacy document without one.
    pub copy_expected: bool,
    /// True when the document came from the copy because the primary is bad.
    pub from_copy: bool,
    /// What is wrong with either copy (both when neither can be used).
    pub issues: Vec<StoreIssue>,
}

impl<T> Loaded<T> {
    /// The copies `strata repair` should rewrite from [`Loaded::bytes`]: the bad ones,
    /// when a good one exists.
    pub fn to_rewrite(&self) -> Vec<String> {
        if self.doc.is_none() {
            return Vec::new();
        }
        let mut paths = Vec::new();
        if !self.primary_ok {
            paths.push(self.primary_path.clone());
        }
        if self.copy_expected && !self.copy_ok {
            paths.push(self.copy_path.clone());
        }
        paths
    }
}

/// One copy as read.
enum Read<T> {
    Good { doc: T, bytes: Bytes, sealed: bool },
    Missing,
    Bad(String),
}

impl<T> Read<T> {
    fn sealed(&self) -> bool {
        matches!(self, Read::Good { sealed: true, .. })
    }

    /// `(problem, state)` for a copy that is not used.
    fn state(&self) -> (&'static str, String) {
        match self {
            Read::Missing => ("missing", "missing".into()),
            Read::Bad(reason) => ("content", format!("damaged ({reason})")),
            Read::Good { sealed: false, .. } => (
                "content",
                "without a self-hash while the other copy has one (damaged or replaced)".into(),
            ),
            Read::Good { .. } => ("stale", "different from the one used".into()),
        }
    }
}

async fn read_copy<T: Sealed>(
    store: &Store,
    path: &str,
    check: &(dyn Fn(&T) -> Result<(), String> + Sync),
) -> Result<Read<T>, MoverError> {
    match retry_store(|| store.read_all(path)).await {
        Ok(bytes) => Ok(match unseal::<T>(&bytes) {
            Ok((doc, sealed)) => match check(&doc) {
                Ok(()) => Read::Good { doc, bytes, sealed },
                Err(reason) => Read::Bad(reason),
            },
            Err(reason) => Read::Bad(reason),
        }),
        Err(StoreError::NotFound { .. }) => Ok(Read::Missing),
        Err(error) if !error.is_retryable() => Ok(Read::Bad(error.to_string())),
        Err(error) => Err(error.into()),
    }
}

/// Load a sealed document from `primary` or, when that is missing or fails a check, from
/// `copy` (see the module docs for the order), and say what is wrong with either. `check`
/// adds the caller's checks (that the document belongs to this dataset version); a copy
/// failing it counts as damaged. Only a store error a retry could not get past is an
/// error; a document neither copy gives is reported in [`Loaded::issues`].
pub async fn load_copies<T: Sealed>(
    store: &Store,
    primary_path: &str,
    copy_path: &str,
    check: &(dyn Fn(&T) -> Result<(), String> + Sync),
) -> Result<Loaded<T>, MoverError> {
    let primary = read_copy::<T>(store, primary_path, check).await?;
    let copy = read_copy::<T>(store, copy_path, check).await?;
    Ok(choose(primary, copy, primary_path, copy_path))
}

fn choose<T: Sealed>(
    primary: Read<T>,
    copy: Read<T>,
    primary_path: &str,
    copy_path: &str,
) -> Loaded<T> {
    let what = T::WHAT;
    let issue = |object: &str, problem: &str, detail: String| StoreIssue {
        object: object.into(),
        problem: problem.into(),
        detail,
    };
    let mut loaded = Loaded {
        doc: None,
        bytes: None,
        primary_path: primary_path.into(),
        copy_path: copy_path.into(),
        primary_ok: false,
        copy_ok: false,
        copy_expected: true,
        from_copy: false,
        issues: Vec::new(),
    };
    let use_primary = primary.sealed() || (!copy.sealed() && matches!(primary, Read::Good { .. }));
    match (primary, copy) {
        (Read::Good { doc, bytes, sealed }, copy) if use_primary => {
            loaded.primary_ok = true;
            loaded.copy_ok = matches!(&copy, Read::Good { bytes: b, .. } if *b == bytes);
            // A legacy document was written before copies existed.
            loaded.copy_expected = sealed || !matches!(copy, Read::Missing);
            if loaded.copy_expected && !loaded.copy_ok {
                let (problem, state) = match &copy {
                    Read::Good { .. } => ("stale", "different from the primary".to_string()),
                    other => other.state(),
                };
                loaded.issues.push(issue(
                    copy_path,
                    problem,
                    format!(
                        "the copy of {what} is {state}; `strata repair` rewrites it from \
                         {primary_path}"
                    ),
                ));
            }
            loaded.doc = Some(doc);
            loaded.bytes = Some(bytes);
        }
        (primary, Read::Good { doc, bytes, .. }) => {
            let (problem, state) = primary.state();
            loaded.issues.push(issue(
                primary_path,
                problem,
                format!(
                    "{what} is {state}; its copy {copy_path} was read instead; `strata repair` \
                     rewrites it from the copy"
                ),
            ));
            loaded.copy_ok = true;
            loaded.from_copy = true;
            loaded.doc = Some(doc);
            loaded.bytes = Some(bytes);
        }
        (Read::Missing, Read::Missing) if T::OPTIONAL => loaded.copy_expected = false,
        (primary, copy) => {
            let ((p_problem, p_state), (c_problem, c_state)) = (primary.state(), copy.state());
            loaded.issues.push(issue(
                primary_path,
                p_problem,
                format!(
                    "{what} is {p_state}, and its copy {copy_path} is {c_state}: {}",
                    T::LOST
                ),
            ));
            loaded.issues.push(issue(
                copy_path,
                c_problem,
                format!(
                    "the copy of {what} is {c_state}, and the primary {primary_path} is \
                     {p_state}: {}",
                    T::LOST
                ),
            ));
        }
    }
    loaded
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use strata_codec::format::sealed::hash_of;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Doc {
        format: String,
        items: Vec<Item>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        self_hash: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Item {
        name: String,
        len: u64,
    }

    impl Sealed for Doc {
        const WHAT: &'static str = "the test document";
        const LEGACY: bool = true;
        const OPTIONAL: bool = false;
        const PRETTY: bool = false;
        const LOST: &'static str = "nothing can be read";

        fn self_hash_mut(&mut self) -> &mut Option<String> {
            &mut self.self_hash
        }

        fn identify(&self) -> Result<(), String> {
            match self.format.as_str() {
                "doc" => Ok(()),
                _ => Err("not a test document".into()),
            }
        }
    }

    /// The same document, but every copy must be sealed.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Strict(Doc);

    impl Sealed for Strict {
        const WHAT: &'static str = "the strict document";
        const LEGACY: bool = false;
        const OPTIONAL: bool = true;
        const PRETTY: bool = true;
        const LOST: &'static str = "nothing can be read";

        fn self_hash_mut(&mut self) -> &mut Option<String> {
            &mut self.0.self_hash
        }

        fn identify(&self) -> Result<(), String> {
            self.0.identify()
        }
    }

    fn doc() -> Doc {
        Doc {
            format: "doc".into(),
            items: vec![
                Item {
                    name: "a".into(),
                    len: 11,
                },
                Item {
                    name: "b".into(),
                    len: 12,
                },
            ],
            self_hash: None,
        }
    }

    fn value(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn sealed_documents_round_trip() {
        let bytes = seal(&doc()).unwrap();
        let (back, sealed) = unseal::<Doc>(&bytes).unwrap();
        assert!(sealed);
        assert!(back.self_hash.is_some());
        assert_eq!(
            Doc {
                self_hash: None,
                ..back.clone()
            },
            doc()
        );
        // Sealing a document that already carries a (stale) hash recomputes it.
        let mut stale = back;
        stale.items[0].len = 99;
        assert!(unseal::<Doc>(&seal(&stale).unwrap()).is_ok());
    }

    #[test]
    fn tampering_is_detected() {
        let text = String::from_utf8(seal(&doc()).unwrap()).unwrap();
        // A consistent edit: still valid JSON of the right shape.
        let edited = text.replace("\"len\":11", "\"len\":10");
        assert_ne!(edited, text);
        let error = unseal::<Doc>(edited.as_bytes()).unwrap_err();
        assert!(error.contains("self-hash mismatch"), "{error}");
        // A flipped bit anywhere, the `self_hash` key included.
        for at in 0..text.len() {
            for mask in [0x01, 0x10, 0x80] {
                let mut bytes = text.clone().into_bytes();
                bytes[at] ^= mask;
                assert!(
                    unseal::<Doc>(&bytes).is_err(),
                    "flip {mask:#x} at {at} undetected"
                );
            }
        }
        // A self_hash that is not a string is damage, not legacy.
        let mut v = value(text.as_bytes());
        v[SELF_HASH] = serde_json::Value::Null;
        assert!(unseal::<Doc>(&serde_json::to_vec(&v).unwrap()).is_err());
        // Not JSON, not an object, another format: refused, no panic.
        for bad in [&b"\x00garbage"[..], b"[1,2]", b"{}", b""] {
            assert!(unseal::<Doc>(bad).is_err());
        }
        let other = text.replace("\"format\":\"doc\"", "\"format\":\"other\"");
        assert!(unseal::<Doc>(other.as_bytes())
            .unwrap_err()
            .contains("not a test document"));
    }

    #[test]
    fn member_order_and_whitespace_are_not_part_of_the_hash() {
        let bytes = seal(&doc()).unwrap();
        let v = value(&bytes);
        // Members reordered (self_hash first, items before format) and pretty-printed.
        let obj = v.as_object().unwrap();
        let mut reordered = String::from("{\n  \"self_hash\": ");
        reordered.push_str(&serde_json::to_string(&obj[SELF_HASH]).unwrap());
        reordered.push_str(",\n  \"items\": [");
        for (i, item) in obj["items"].as_array().unwrap().iter().enumerate() {
            if i > 0 {
                reordered.push(',');
            }
            reordered.push_str(&format!(
                "{{\"len\": {}, \"name\": {}}}",
                item["len"], item["name"]
            ));
        }
        reordered.push_str("],\n  \"format\": \"doc\"\n}\n");
        let (back, sealed) = unseal::<Doc>(reordered.as_bytes()).unwrap();
        assert!(sealed);
        assert_eq!(back.items, doc().items);
        // Array order is content.
        let mut swapped = v.clone();
        swapped["items"].as_array_mut().unwrap().swap(0, 1);
        assert!(unseal::<Doc>(&serde_json::to_vec(&swapped).unwrap()).is_err());
    }

    #[test]
    fn missing_fields() {
        let bytes = seal(&doc()).unwrap();
        // Without self_hash: legacy where allowed, refused where not.
        let mut legacy = value(&bytes);
        legacy.as_object_mut().unwrap().remove(SELF_HASH);
        let legacy = serde_json::to_vec(&legacy).unwrap();
        let (back, sealed) = unseal::<Doc>(&legacy).unwrap();
        assert!(!sealed);
        assert_eq!(back, doc());
        assert!(unseal::<Strict>(&legacy)
            .unwrap_err()
            .contains("no self-hash"));
        // Without a required member: refused, even with a matching seal.
        let mut partial = value(&bytes);
        partial.as_object_mut().unwrap().remove("items");
        partial.as_object_mut().unwrap().remove(SELF_HASH);
        let hash = hash_of(&partial);
        partial[SELF_HASH] = hash.into();
        let error = unseal::<Doc>(&serde_json::to_vec(&partial).unwrap()).unwrap_err();
        assert!(error.contains("items"), "{error}");
        // Strict documents are pretty and end in a newline.
        let strict = seal(&Strict(doc())).unwrap();
        assert!(strict.ends_with(b"}\n") && strict.contains(&b'\n'));
        assert!(unseal::<Strict>(&strict).unwrap().1);
    }

    fn good(doc: &Doc) -> Read<Doc> {
        let bytes = seal(doc).unwrap();
        let (doc, sealed) = unseal::<Doc>(&bytes).unwrap();
        Read::Good {
            doc,
            bytes: Bytes::from(bytes),
            sealed,
        }
    }

    fn legacy(doc: &Doc) -> Read<Doc> {
        Read::Good {
            doc: doc.clone(),
            bytes: Bytes::from(serde_json::to_vec(doc).unwrap()),
            sealed: false,
        }
    }

    fn problems(loaded: &Loaded<Doc>) -> Vec<(String, String)> {
        loaded
            .issues
            .iter()
            .map(|i| (i.object.clone(), i.problem.clone()))
            .collect()
    }

    #[test]
    fn the_loader_prefers_sealed_copies_and_names_the_bad_one() {
        let (p, c) = ("d.json", "d.copy.json");
        let pair = |a: &str, b: &str| vec![(a.to_string(), b.to_string())];
        let both_good = choose(good(&doc()), good(&doc()), p, c);
        assert!(both_good.primary_ok && both_good.copy_ok && both_good.issues.is_empty());
        assert!(both_good.to_rewrite().is_empty());

        let bad_primary = choose(Read::Bad("x".into()), good(&doc()), p, c);
        assert!(bad_primary.from_copy && bad_primary.doc.is_some());
        assert_eq!(problems(&bad_primary), pair(p, "content"));
        assert_eq!(bad_primary.to_rewrite(), vec![p.to_string()]);

        let lost_copy = choose(good(&doc()), Read::Missing, p, c);
        assert!(!lost_copy.from_copy);
        assert_eq!(problems(&lost_copy), pair(c, "missing"));
        assert_eq!(lost_copy.to_rewrite(), vec![c.to_string()]);

        let mut other = doc();
        other.items.pop();
        let stale = choose(good(&doc()), good(&other), p, c);
        assert_eq!(problems(&stale), pair(c, "stale"));

        // A legacy document without a copy is fine; one that lost its seal beside a
        // sealed copy is not.
        let old = choose(legacy(&doc()), Read::Missing, p, c);
        assert!(old.issues.is_empty() && old.doc.is_some() && old.to_rewrite().is_empty());
        let unsealed = choose(legacy(&doc()), good(&doc()), p, c);
        assert!(unsealed.from_copy);
        assert_eq!(problems(&unsealed), pair(p, "content"));

        let lost = choose(Read::Bad("x".into()), Read::Missing, p, c);
        assert!(lost.doc.is_none() && lost.to_rewrite().is_empty());
        assert_eq!(
            problems(&lost),
            vec![
                (p.to_string(), "content".to_string()),
                (c.to_string(), "missing".to_string())
            ]
        );
        assert!(lost.issues[0].detail.contains("nothing can be read"));
        let none = choose::<Doc>(Read::Missing, Read::Missing, p, c);
        assert_eq!(none.issues.len(), 2, "a required document is reported lost");
        let optional = choose::<Strict>(Read::Missing, Read::Missing, p, c);
        assert!(optional.issues.is_empty() && optional.doc.is_none());
    }
}
