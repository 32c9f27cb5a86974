//! The tokens themselves: how one is made ([`issue`]), what it looks like
//! (`strata_<id>_<secret>`: a 12-hex-digit public id and 64 hex digits of secret, 256 random
//! bits), and how a presented one is checked against the catalog's hash ([`TokenText`]).
//!
//! **Why one BLAKE3 hash is enough.** The catalog keeps `BLAKE3(token)`, not the token.
//! Password hashing (salts, work factors) exists because passwords are guessable; a token is
//! 256 bits from the operating system's CSPRNG, so finding one from its hash is as hard as
//! guessing it, and a fast hash keeps every request's check cheap.
//!
//! **Constant time.** The row is found by the id, which is public; the secret's hash is then
//! compared with `blake3::Hash`'s equality, which is constant-time, so the answer's timing
//! says nothing about how much of a guessed secret was right.

use rand::RngCore;
use strata_catalog::{ApiToken, TokenScope};

/// What every token starts with (so a leaked one is recognisable, e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "strata_";

/// Hex digits of a token's id.
const ID_HEX: usize = 12;

/// Hex digits of a token's secret (256 bits).
const SECRET_HEX: usize = 64;

/// A new token: its text, shown once, and its catalog row, which holds only its hash.
pub struct IssuedToken {
    /// The token to hand to the client (never stored, never logged).
    pub text: String,
    /// The row to store.
    pub record: ApiToken,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.record.id)
            .finish_non_exhaustive()
    }
}

/// Makes a token of `scope`, limited to keys under `prefix` when given, expiring at
/// `expires_ms` when given.
pub fn issue(
    scope: TokenScope,
    prefix: Option<String>,
    created_ms: i64,
    expires_ms: Option<i64>,
) -> IssuedToken {
    let mut rng = rand::rng();
    let mut id = [0u8; ID_HEX / 2];
    let mut secret = [0u8; SECRET_HEX / 2];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let text = format!("{TOKEN_PREFIX}{id}_{}", hex::encode(secret));
    let record = ApiToken {
        hash: *blake3::hash(text.as_bytes()).as_bytes(),
        id,
        scope,
        prefix,
        created_ms,
        expires_ms,
        revoked_ms: None,
    };
    IssuedToken { text, record }
}

/// A presented token whose shape is right: its id, and its hash to compare.
pub struct TokenText {
    /// The public id.
    pub id: String,
    hash: blake3::Hash,
}

impl TokenText {
    /// Parses a presented token; `None` when it does not have a token's shape.
    pub fn parse(text: &str) -> Option<TokenText> {
        let rest = text.strip_prefix(TOKEN_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let hex = |part: &str, len: usize| {
            part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit())
        };
        if !hex(id, ID_HEX) || !hex(secret, SECRET_HEX) {
            return None;
        }
        Some(TokenText {
            id: id.to_string(),
            hash: blake3::hash(text.as_bytes()),
        })
    }

    /// Whether this is the token whose hash `record` keeps (in constant time).
    pub fn matches(&self, record: &ApiToken) -> bool {
        self.hash == blake3::Hash::from_bytes(record.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_parses_and_matches_only_its_own_record() {
        let one = issue(TokenScope::Write, Some("docs/".into()), 1, None);
        let two = issue(TokenScope::Write, None, 1, None);
        assert!(one.text.starts_with(TOKEN_PREFIX));
        assert_eq!(one.text.len(), TOKEN_PREFIX.len() + ID_HEX + 1 + SECRET_HEX);
        let parsed = TokenText::parse(&one.text).unwrap();
        assert_eq!(parsed.id, one.record.id);
        assert!(parsed.matches(&one.record));
        assert!(!parsed.matches(&two.record));
        assert!(!format!("{one:?}").contains(&one.text));
        // One secret digit changed: same id, no match.
        let mut forged = one.text.clone();
        let last = if forged.ends_with('0') { "1" } else { "0" };
        forged.replace_range(forged.len() - 1.., last);
        assert!(!TokenText::parse(&forged).unwrap().matches(&one.record));
    }

    #[test]
    fn malformed_tokens_are_not_parsed() {
        let good = issue(TokenScope::Read, None, 1, None).text;
        for bad in [
            "",
            "strata_",
            "Bearer x",
            &good[..good.len() - 1],
            &good.replace("strata_", "strata-"),
            &format!("{good}0"),
            &good.replacen('_', "", 2),
            &format!("{}g", &good[..good.len() - 1]),
        ] {
            assert!(TokenText::parse(bad).is_none(), "{bad}");
        }
    }
}
