//! Secrets: the operator's root secret (`SecretHash`), and the key and token secrets the
//! engine issues (`issue`, `parse`, `ParsedSecret::verify`).
//!
//! An issued secret is a prefix (`fnK` for a key, `fnT` for a token) followed by URL-safe base64
//! without padding of a 49-byte record: `[version = 1][id u64 BE][db u64 BE][32 random bytes]`.
//! The id and database travel in the clear so the engine finds the stored key or token
//! without a scan; only the random part is secret.
//!
//! **Invariants:**
//! - The plain text of a secret is returned once, by `issue`, and is never stored: the engine
//!   keeps the 32-byte verifier, an HMAC-SHA256 under the server's `Pepper`. A stolen
//!   database without the pepper cannot be used to check guesses, and 256 random bits leave
//!   nothing to guess anyway.
//! - The verifier binds the whole record (kind, version, id, database, random part), so
//!   editing the clear fields of a genuine secret makes it fail verification.
//! - `parse` accepts exactly one text per secret (exact length, known prefix and version,
//!   canonical base64) and never panics; verification is constant time.
//! - No `Debug` output shows secret bytes, verifiers or the pepper.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The SHA-256 of a secret. Its `Debug` output never shows the bytes.
///
/// Used for the operator's root secret, which the operator chooses and so has no structure
/// of ours. A root secret must not contain `:`, which separates a secret from its scope
/// (see [`crate::scope`]); [`crate::scope::is_plain_secret`] checks that.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(sha256(secret.as_bytes()))
    }

    /// Does `presented` hash to this value? Constant time in the compared bytes.
    pub fn verify(&self, presented: &str) -> bool {
        let candidate = SecretHash::of(presented);
        constant_time_eq(&self.0, &candidate.0)
    }

    /// Hex text, for storing the hash in a file.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<SecretHash> {
        let text = text.trim();
        // `from_str_radix` alone would also take a sign ("+f").
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(SecretHash(out))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Compares two 32-byte values without an early exit, so the time taken does not reveal
/// where they first differ.
pub(crate) fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff == 0
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomUnavailable;

/// Fills `out` from the OS CSPRNG.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), RandomUnavailable> {
    SystemRandom::new().fill(out).map_err(|_| RandomUnavailable)
}

/// A fresh secret: `prefix` followed by 256 random bits in URL-safe base64.
pub fn generate_secret(prefix: &str) -> Result<String, RandomUnavailable> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes)?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The server's 32-byte key for computing secret verifiers. Losing it invalidates every
/// issued key and token; leaking it alone reveals no secret.
#[derive(Clone)]
pub struct Pepper([u8; 32]);

impl Pepper {
    /// A fresh pepper from the OS CSPRNG.
    pub fn generate() -> Result<Pepper, RandomUnavailable> {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes)?;
        Ok(Pepper(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Pepper {
        Pepper(bytes)
    }

    /// The raw bytes, for persisting the pepper. Named loudly so it is not called by accident.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(..)")
    }
}

/// Which kind of document an issued secret authenticates as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    Key,
    Token,
}

impl SecretKind {
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::Key => KEY_PREFIX,
            SecretKind::Token => TOKEN_PREFIX,
        }
    }
}

const KEY_PREFIX: &str = "fnK";
const TOKEN_PREFIX: &str = "fnT";
const PREFIX_LEN: usize = 3;
const VERSION: u8 = 1;
const RANDOM_LEN: usize = 32;
/// version + id + db + random.
const RECORD_LEN: usize = 1 + 8 + 8 + RANDOM_LEN;
/// Unpadded base64 of `RECORD_LEN` bytes: 4 characters per 3 bytes, 2 for the last byte.
const ENCODED_LEN: usize = RECORD_LEN / 3 * 4 + 2;
/// The exact length, in bytes, of every issued secret's text.
pub const ISSUED_SECRET_LEN: usize = PREFIX_LEN + ENCODED_LEN;

/// A freshly issued secret. `text` goes to the client once; only `verifier` is stored.
pub struct Issued {
    pub text: String,
    pub verifier: [u8; 32],
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Issued { text: .., verifier: .. }")
    }
}

/// Issues a new secret for the key or token `id` of database `db`.
pub fn issue(
    kind: SecretKind,
    id: u64,
    db: u64,
    pepper: &Pepper,
) -> Result<Issued, RandomUnavailable> {
    let mut random = [0u8; RANDOM_LEN];
    fill_random(&mut random)?;
    let parsed = ParsedSecret {
        kind,
        id,
        db,
        random,
    };
    let record = parsed.record();
    Ok(Issued {
        text: format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(record)),
        verifier: parsed.verifier(pepper),
    })
}

/// A well-formed issued secret, not yet verified. Its `Debug` omits the random part.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedSecret {
    pub kind: SecretKind,
    pub id: u64,
    pub db: u64,
    random: [u8; RANDOM_LEN],
}

impl fmt::Debug for ParsedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedSecret")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl ParsedSecret {
    /// Does this secret match the stored `verifier`? Constant time.
    pub fn verify(&self, verifier: &[u8; 32], pepper: &Pepper) -> bool {
        hmac::verify(&pepper.key(), &self.mac_input(), verifier).is_ok()
    }

    fn record(&self) -> [u8; RECORD_LEN] {
        let mut record = [0u8; RECORD_LEN];
        let (version, rest) = record.split_at_mut(1);
        let (id, rest) = rest.split_at_mut(8);
        let (db, random) = rest.split_at_mut(8);
        version[0] = VERSION;
        id.copy_from_slice(&self.id.to_be_bytes());
        db.copy_from_slice(&self.db.to_be_bytes());
        random.copy_from_slice(&self.random);
        record
    }

    /// The prefix and the record: everything the secret says, so no part can be swapped.
    fn mac_input(&self) -> Vec<u8> {
        let mut input = Vec::with_capacity(PREFIX_LEN + RECORD_LEN);
        input.extend_from_slice(self.kind.prefix().as_bytes());
        input.extend_from_slice(&self.record());
        input
    }

    fn verifier(&self, pepper: &Pepper) -> [u8; 32] {
        let tag = hmac::sign(&pepper.key(), &self.mac_input());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// Reads an issued secret. Anything that is not exactly the text `issue` would produce is
/// `None`; this never panics.
pub fn parse(text: &str) -> Option<ParsedSecret> {
    if text.len() != ISSUED_SECRET_LEN {
        return None;
    }
    let (prefix, encoded) = (text.get(..PREFIX_LEN)?, text.get(PREFIX_LEN..)?);
    let kind = match prefix {
        KEY_PREFIX => SecretKind::Key,
        TOKEN_PREFIX => SecretKind::Token,
        _ => return None,
    };
    // The decoder rejects padding and non-zero trailing bits, so the encoding is canonical.
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let record: [u8; RECORD_LEN] = bytes.try_into().ok()?;
    let (version, rest) = record.split_first()?;
    if *version != VERSION {
        return None;
    }
    let (id, rest) = rest.split_first_chunk::<8>()?;
    let (db, random) = rest.split_first_chunk::<8>()?;
    Some(ParsedSecret {
        kind,
        id: u64::from_be_bytes(*id),
        db: u64::from_be_bytes(*db),
        random: random.try_into().ok()?,
    })
}

/// The key under which a verified secret may be cached: the SHA-256 of the presented text,
/// so the cache never holds a usable secret.
pub fn cache_key(text: &str) -> [u8; 32] {
    sha256(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper() -> Pepper {
        Pepper::from_bytes([7; 32])
    }

    #[test]
    fn verify_accepts_the_hashed_secret() {
        assert!(SecretHash::of("secret").verify("secret"));
    }

    #[test]
    fn verify_denies_any_other_secret() {
        let hash = SecretHash::of("secret");
        assert!(!hash.verify("secreT"));
        assert!(!hash.verify(""));
        assert!(!hash.verify("secret "));
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let hash = SecretHash::of("x");
        assert_eq!(SecretHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(SecretHash::from_hex("zz"), None);
        assert_eq!(SecretHash::from_hex(&"é".repeat(32)), None);
        assert_eq!(SecretHash::from_hex(&"+f".repeat(32)), None);
    }

    #[test]
    fn debug_never_shows_hash_bytes() {
        let hash = SecretHash::of("secret");
        assert_eq!(format!("{hash:?}"), "SecretHash(..)");
    }

    #[test]
    fn generated_secrets_are_distinct_and_prefixed() {
        let a = generate_secret("fn").unwrap();
        let b = generate_secret("fn").unwrap();
        assert!(a.starts_with("fn") && b.starts_with("fn"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 2 + 43);
    }

    #[test]
    fn issued_secret_parses_back_to_its_kind_id_and_database() {
        let issued = issue(SecretKind::Token, 42, u64::MAX, &pepper()).unwrap();
        assert!(issued.text.starts_with("fnT"));
        assert_eq!(issued.text.len(), ISSUED_SECRET_LEN);
        let parsed = parse(&issued.text).unwrap();
        assert_eq!(parsed.kind, SecretKind::Token);
        assert_eq!((parsed.id, parsed.db), (42, u64::MAX));
        let key = parse(&issue(SecretKind::Key, 1, 2, &pepper()).unwrap().text).unwrap();
        assert_eq!((key.kind, key.id, key.db), (SecretKind::Key, 1, 2));
    }

    #[test]
    fn issued_secret_verifies_against_its_verifier() {
        let issued = issue(SecretKind::Key, 9, 3, &pepper()).unwrap();
        assert!(
            parse(&issued.text)
                .unwrap()
                .verify(&issued.verifier, &pepper())
        );
    }

    #[test]
    fn verification_fails_with_another_secrets_verifier_or_another_pepper() {
        let a = issue(SecretKind::Key, 9, 3, &pepper()).unwrap();
        let b = issue(SecretKind::Key, 9, 3, &pepper()).unwrap();
        assert_ne!(a.text, b.text);
        let parsed = parse(&a.text).unwrap();
        assert!(!parsed.verify(&b.verifier, &pepper()));
        assert!(!parsed.verify(&a.verifier, &Pepper::from_bytes([8; 32])));
    }

    /// Re-encodes a genuine secret with one clear field changed.
    fn tampered(text: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut bytes = URL_SAFE_NO_PAD.decode(&text[3..]).unwrap();
        edit(&mut bytes);
        format!("{}{}", &text[..3], URL_SAFE_NO_PAD.encode(bytes))
    }

    #[test]
    fn editing_the_id_or_database_of_a_genuine_secret_fails_verification() {
        let issued = issue(SecretKind::Token, 5, 6, &pepper()).unwrap();
        let other_id = tampered(&issued.text, |b| b[8] ^= 1);
        let other_db = tampered(&issued.text, |b| b[16] ^= 1);
        for text in [other_id, other_db] {
            let parsed = parse(&text).unwrap();
            assert!(!parsed.verify(&issued.verifier, &pepper()));
        }
    }

    #[test]
    fn changing_the_prefix_of_a_genuine_secret_fails_verification() {
        let issued = issue(SecretKind::Token, 5, 6, &pepper()).unwrap();
        let as_key = format!("fnK{}", &issued.text[3..]);
        let parsed = parse(&as_key).unwrap();
        assert_eq!(parsed.kind, SecretKind::Key);
        assert!(!parsed.verify(&issued.verifier, &pepper()));
    }

    #[test]
    fn parse_rejects_wrong_length_prefix_version_and_encoding() {
        let text = issue(SecretKind::Key, 1, 1, &pepper()).unwrap().text;
        let cases = [
            String::new(),
            text[..text.len() - 1].to_owned(),
            format!("{text}A"),
            format!("fnX{}", &text[3..]),
            format!("fnk{}", &text[3..]),
            tampered(&text, |b| b[0] = 2),
            tampered(&text, |b| b[0] = 0),
            // Standard base64 alphabet characters are not URL-safe ones.
            format!("{}+{}", &text[..10], &text[11..]),
            format!("{}={}", &text[..10], &text[11..]),
            format!("{}é{}", &text[..10], &text[12..]),
        ];
        for case in cases {
            assert_eq!(parse(&case), None, "{case}");
        }
    }

    #[test]
    fn parse_rejects_non_canonical_trailing_bits() {
        let text = issue(SecretKind::Key, 1, 1, &pepper()).unwrap().text;
        // The last character carries 2 meaningful bits; flipping a low bit keeps the
        // decoded bytes but makes the text non-canonical.
        let last = text.as_bytes()[text.len() - 1];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|&c| c == last).unwrap();
        let other = alphabet[index ^ 1] as char;
        let changed = format!("{}{other}", &text[..text.len() - 1]);
        assert_eq!(parse(&changed), None);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text_of_the_right_length() {
        for seed in 0u32..2000 {
            let text: String = (0..ISSUED_SECRET_LEN)
                .map(|i| {
                    let n = seed.wrapping_mul(2654435761).wrapping_add(i as u32 * 40503);
                    char::from(b' ' + (n % 95) as u8)
                })
                .collect();
            let _ = parse(&text);
            let _ = parse(&format!("fnK{}", &text[3..]));
        }
    }

    #[test]
    fn debug_output_hides_secret_material() {
        let issued = issue(SecretKind::Key, 77, 88, &pepper()).unwrap();
        let parsed = parse(&issued.text).unwrap();
        let shown = format!("{issued:?} {parsed:?} {:?}", pepper());
        assert!(!shown.contains(&issued.text[3..]));
        assert!(shown.contains("id: 77") && shown.contains("db: 88"));
        assert!(!shown.contains("random"));
        assert!(!shown.contains("7, 7"));
    }

    #[test]
    fn cache_key_distinguishes_texts_and_is_not_the_text() {
        let a = issue(SecretKind::Key, 1, 1, &pepper()).unwrap().text;
        let b = issue(SecretKind::Key, 1, 1, &pepper()).unwrap().text;
        assert_eq!(cache_key(&a), cache_key(&a));
        assert_ne!(cache_key(&a), cache_key(&b));
        assert_ne!(&cache_key(&a)[..], &a.as_bytes()[..32]);
    }
}
