//! Passwords: Argon2id hashing into PHC strings, verification, and the policy a new password
//! must pass (length, a shipped blocklist of common passwords, trivial patterns).
//!
//! **Invariants:**
//! - A password is never stored, logged or shown; only its PHC string is kept.
//! - New hashes are always Argon2id v19 with m = 19456 KiB, t = 2, p = 1 and a 16-byte salt
//!   from the OS CSPRNG.
//! - `verify_password` never panics and returns false for anything it cannot check, including
//!   a stored hash whose cost parameters exceed [`MAX_VERIFY_M_COST`] and friends: a tampered
//!   hash must not make one login cost gigabytes.
//! - Input longer than [`MAX_PASSWORD_BYTES`] is never hashed, whatever the policy says.

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::secret::{RandomUnavailable, fill_random};

/// Memory cost of new hashes, in KiB (19 MiB, OWASP's recommended minimum for Argon2id).
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
const SALT_LEN: usize = 16;

/// The most bytes ever hashed, a bound on work independent of the policy in force.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Stored hashes above these costs are refused rather than computed.
pub const MAX_VERIFY_M_COST: u32 = 64 * 1024;
pub const MAX_VERIFY_T_COST: u32 = 10;
pub const MAX_VERIFY_P_COST: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error(transparent)]
    RandomUnavailable(#[from] RandomUnavailable),
    /// Argon2 refused its inputs; with our fixed parameters this does not happen.
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| PasswordError::Hash(e.into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with a fresh random salt into a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Slow by design (tens of
/// milliseconds): call it off the async executor.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let mut salt = [0u8; SALT_LEN];
    fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Hash)?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Does `password` match the PHC string `phc`? False for a malformed or unsupported hash.
/// The comparison of hash outputs is constant time.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if !is_supported(&hash) {
        return false;
    }
    // The verifier takes the algorithm, version and costs from `hash`.
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

fn is_supported(hash: &PasswordHash<'_>) -> bool {
    if hash.algorithm != Algorithm::Argon2id.ident()
        || hash.version != Some(Version::V0x13.into())
        || hash.salt.is_none()
        || hash.hash.is_none()
    {
        return false;
    }
    Params::try_from(hash).is_ok_and(|p| {
        p.m_cost() <= MAX_VERIFY_M_COST
            && p.t_cost() <= MAX_VERIFY_T_COST
            && p.p_cost() <= MAX_VERIFY_P_COST
    })
}

/// Should a hash that just verified be replaced by a fresh one (its algorithm or costs are
/// not today's)? True for anything unreadable too.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    let current = hash.algorithm == Algorithm::Argon2id.ident()
        && hash.version == Some(Version::V0x13.into())
        && Params::try_from(&hash).is_ok_and(|p| {
            p.m_cost() == M_COST_KIB && p.t_cost() == T_COST && p.p_cost() == P_COST
        });
    !current
}

/// A well-formed hash of no password anyone knows, with today's costs.
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$dGVzdHVkby1kdW1teQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Spends the time of one verification and fails. For a login whose identity or credential
/// does not exist, so the response time does not tell an attacker that.
pub fn verify_against_dummy(password: &str) {
    let _ = verify_password(password, DUMMY_PHC);
}

/// Rules a new password must pass. Lengths count characters; `max_len` bounds hashing work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_len: usize,
    pub max_len: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_len: 12,
            max_len: 128,
        }
    }
}

/// Why a password was refused. The messages are meant for the person choosing it and never
/// repeat the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("the password must have at least {min} characters")]
    TooShort { min: usize },
    #[error("the password must have at most {max} characters")]
    TooLong { max: usize },
    #[error("the password is too common; choose another")]
    Common,
    #[error("the password is one short pattern repeated; choose another")]
    Repetitive,
    #[error("the password is a plain sequence of letters or digits; choose another")]
    Sequence,
}

impl PasswordPolicy {
    pub fn check(&self, password: &str) -> Result<(), PolicyViolation> {
        let len = password.chars().count();
        if len < self.min_len {
            return Err(PolicyViolation::TooShort { min: self.min_len });
        }
        if len > self.max_len || password.len() > MAX_PASSWORD_BYTES {
            return Err(PolicyViolation::TooLong { max: self.max_len });
        }
        let lower = password.to_lowercase();
        if is_sequence(&lower) {
            return Err(PolicyViolation::Sequence);
        }
        if let Some(unit) = repeated_unit(&lower) {
            if unit.chars().count() <= 3 {
                return Err(PolicyViolation::Repetitive);
            }
            if is_common(unit) {
                return Err(PolicyViolation::Common);
            }
        }
        if is_common(&lower) {
            return Err(PolicyViolation::Common);
        }
        Ok(())
    }
}

fn blocklist() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    })
}

/// Is the lowercased `text` a listed password, a listed password with digits or symbols
/// around it, or one spelt with the usual character substitutions?
fn is_common(text: &str) -> bool {
    let list = blocklist();
    let core = text.trim_matches(|c: char| !c.is_alphabetic());
    let mut candidates = vec![text.to_owned(), core.to_owned()];
    for one in ['i', 'l'] {
        candidates.push(unleet(text, one));
        candidates.push(unleet(core, one));
        let unleeted = unleet(text, one);
        candidates.push(
            unleeted
                .trim_matches(|c: char| !c.is_alphabetic())
                .to_owned(),
        );
    }
    candidates
        .iter()
        .any(|c| !c.is_empty() && list.contains(c.as_str()))
}

/// Undoes the usual character substitutions; `one` is what `1` stands for.
fn unleet(text: &str, one: char) -> String {
    text.chars()
        .map(|c| match c {
            '0' => 'o',
            '1' => one,
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            '!' => 'i',
            other => other,
        })
        .collect()
}

/// The shortest unit that `text` is two or more copies of, if any.
fn repeated_unit(text: &str) -> Option<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    (1..=n / 2)
        .filter(|period| n.is_multiple_of(*period))
        .find_map(|period| {
            let repeats = (period..n).all(|i| chars[i].1 == chars[i - period].1);
            let end = chars.get(period).map_or(text.len(), |&(at, _)| at);
            repeats.then(|| text.get(..end)).flatten()
        })
}

/// Each character one step after (or each one step before) the previous: `abcdef…`,
/// `987654…`; digits wrap around (`…7890123`).
fn is_sequence(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 3 {
        return false;
    }
    // +1 for the next character, -1 for the previous one, 0 for anything else.
    let step = |a: char, b: char| -> i32 {
        let diff = match (a.to_digit(10), b.to_digit(10)) {
            (Some(x), Some(y)) => match (y + 10 - x) % 10 {
                1 => 1,
                9 => -1,
                _ => 0,
            },
            _ if a.is_ascii_lowercase() && b.is_ascii_lowercase() => b as i32 - a as i32,
            _ => 0,
        };
        if diff.abs() == 1 { diff } else { 0 }
    };
    let first = step(chars[0], chars[1]);
    first != 0 && chars.windows(2).all(|w| step(w[0], w[1]) == first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "violet-harbour-tractor";

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let phc = hash_password(GOOD).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(GOOD, &phc));
        assert!(!verify_password("violet-harbour-tractoR", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_their_salt() {
        assert_ne!(hash_password(GOOD).unwrap(), hash_password(GOOD).unwrap());
    }

    #[test]
    fn malformed_or_foreign_hashes_never_verify() {
        let phc = hash_password(GOOD).unwrap();
        let cases = [
            String::new(),
            "nonsense".to_owned(),
            phc.replace("argon2id", "argon2i"),
            phc.replace("v=19", "v=16"),
            phc[..phc.len() - 5].to_owned(),
            format!("{phc}$extra"),
            "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234".to_owned(),
        ];
        for case in cases {
            assert!(!verify_password(GOOD, &case), "{case}");
        }
    }

    #[test]
    fn hashes_with_excessive_costs_are_refused_without_computing() {
        let phc = hash_password(GOOD).unwrap();
        let huge_memory = phc.replace("m=19456", "m=4194304");
        let many_passes = phc.replace("t=2", "t=1000000");
        let many_lanes = phc.replace("p=1", "p=64");
        for case in [huge_memory, many_passes, many_lanes] {
            assert!(!verify_password(GOOD, &case), "{case}");
        }
    }

    #[test]
    fn oversized_passwords_are_neither_hashed_nor_verified() {
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(hash_password(&long), Err(PasswordError::TooLong)));
        assert!(!verify_password(&long, DUMMY_PHC));
    }

    #[test]
    fn the_dummy_hash_is_well_formed_with_todays_costs() {
        let hash = PasswordHash::new(DUMMY_PHC).unwrap();
        assert!(is_supported(&hash));
        assert!(!needs_rehash(DUMMY_PHC));
        assert!(!verify_password("", DUMMY_PHC));
    }

    #[test]
    fn needs_rehash_only_for_other_costs_or_garbage() {
        let phc = hash_password(GOOD).unwrap();
        assert!(!needs_rehash(&phc));
        assert!(needs_rehash(&phc.replace("t=2", "t=3")));
        assert!(needs_rehash("garbage"));
    }

    #[test]
    fn the_default_policy_accepts_a_long_uncommon_password() {
        let policy = PasswordPolicy::default();
        for ok in [
            GOOD,
            "correct horse battery staple",
            "Tr0ub4dor&3xyz",
            "839201746352",
            "passwordless-login-rocks",
            "日本語のパスワードです長い",
        ] {
            assert_eq!(policy.check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn length_is_counted_in_characters() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            policy.check("short-pw"),
            Err(PolicyViolation::TooShort { min: 12 })
        );
        // 11 characters of 2 bytes each are 22 bytes but still too short.
        assert_eq!(
            policy.check(&"é".repeat(11)),
            Err(PolicyViolation::TooShort { min: 12 })
        );
        assert_eq!(
            policy.check(&"ab3".repeat(43)),
            Err(PolicyViolation::TooLong { max: 128 })
        );
        assert_eq!(policy.check(&format!("{GOOD}{}", "x".repeat(106))), Ok(()));
    }

    #[test]
    fn listed_passwords_are_refused_whatever_their_case() {
        let policy = PasswordPolicy::default();
        for bad in [
            "qwertyuiopasdfghjkl",
            "QwertyUiop1234567890",
            "IloveyouForever",
        ] {
            assert_eq!(policy.check(bad), Err(PolicyViolation::Common), "{bad}");
        }
    }

    #[test]
    fn listed_words_padded_or_substituted_are_refused() {
        let policy = PasswordPolicy::default();
        for bad in [
            "Password2024!",
            "!!!password!!!",
            "P@ssw0rd12345",
            "Summer2024!!",
            "monkey1234567",
            "1234testudo!!",
            "trustn0one2025",
            "Sup3rman!!!!",
        ] {
            assert_eq!(policy.check(bad), Err(PolicyViolation::Common), "{bad}");
        }
    }

    #[test]
    fn a_listed_word_repeated_is_refused() {
        let policy = PasswordPolicy::default();
        assert_eq!(policy.check("monkeymonkey"), Err(PolicyViolation::Common));
        assert_eq!(
            policy.check("DragonDragonDragon"),
            Err(PolicyViolation::Common)
        );
    }

    #[test]
    fn short_units_repeated_are_refused() {
        let policy = PasswordPolicy::default();
        for bad in [
            "aaaaaaaaaaaa",
            "ZZZZZZZZZZZZZZ",
            "121212121212",
            "xyzxyzxyzxyz",
            "ééééééééééééé",
        ] {
            assert_eq!(policy.check(bad), Err(PolicyViolation::Repetitive), "{bad}");
        }
        // A longer unrepeated password with repeats inside it is fine.
        assert_eq!(policy.check("aaaaaaaaaaab"), Ok(()));
    }

    #[test]
    fn plain_sequences_are_refused() {
        let policy = PasswordPolicy::default();
        for bad in [
            "abcdefghijklm",
            "ZYXWVUTSRQPONM",
            "345678901234",
            "987654321098",
        ] {
            assert_eq!(policy.check(bad), Err(PolicyViolation::Sequence), "{bad}");
        }
        assert_eq!(policy.check("abcdefghijkm"), Ok(()));
    }

    #[test]
    fn violations_never_repeat_the_password() {
        let policy = PasswordPolicy::default();
        for bad in ["sekrit", "Password2024!", "aaaaaaaaaaaa", "abcdefghijklm"] {
            let message = policy.check(bad).unwrap_err().to_string();
            assert!(
                !message.to_lowercase().contains(&bad.to_lowercase()),
                "{message}"
            );
        }
    }

    #[test]
    fn the_blocklist_is_lowercase_and_substantial() {
        let list = blocklist();
        assert!(list.len() >= 500, "{}", list.len());
        for entry in list {
            assert_eq!(*entry, entry.to_lowercase(), "{entry}");
        }
        assert!(list.contains("123456") && list.contains("qwertyuiop"));
    }
}
