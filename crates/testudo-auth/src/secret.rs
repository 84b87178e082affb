//! Secret hashing and verification.
//!
//! Generated secrets carry 256 bits from the OS CSPRNG, so a single SHA-256 is a sufficient
//! one-way function for them: there is nothing to brute-force. A secret chosen by an operator
//! (`--root-secret`) is only ever held as this hash in memory.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// The SHA-256 of a secret. Its `Debug` output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> SecretHash {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, secret.as_bytes()).as_ref());
        SecretHash(out)
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
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(SecretHash(out))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff == 0
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomUnavailable;

/// A fresh secret: `prefix` followed by 256 random bits in URL-safe base64.
pub fn generate_secret(prefix: &str) -> Result<String, RandomUnavailable> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomUnavailable)?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
