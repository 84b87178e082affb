//! Key material for encryption at rest: the operator's [`MasterKey`], the random
//! [`DataKey`]s that actually encrypt data, and [`WrappedKey`], a data key sealed under the
//! master key (envelope encryption).
//!
//! The master key never encrypts data itself: it only wraps data keys. Two keys are derived
//! from it with HKDF-SHA256 (domain separated): a wrapping key (AES-256-GCM) and a
//! fingerprint, a short public name that says *which* master key wrapped a keyring without
//! revealing anything about it. Rotating the master key therefore rewraps a few dozen bytes
//! per data key and rewrites no data.
//!
//! [`MasterKey::wrap`] / [`MasterKey::unwrap`] take a caller-chosen `context`, bound into the
//! authentication data, so a wrapped key only unwraps for the purpose it was wrapped for. The
//! [`Keyring`] stores wrapped keys with an id and a label (`store` for the data file's keys);
//! per-database keys can be further labelled entries of it (`Keyring::insert`), wrapped by
//! the same master key and rewrapped with the others when it rotates.
//!
//! **Invariants:** key bytes live only in [`Zeroizing`] buffers, wiped on drop; no type here
//! implements `Display`, and `Debug` prints `<redacted>` (and, for a master key, its public
//! fingerprint), so key material cannot reach a log by accident. Ring's expanded AES key
//! schedules (inside `LessSafeKey`) are not wiped by ring; they live as long as the store is
//! open.

pub(crate) mod keyring;
mod source;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

pub use keyring::{KEYRING_FILE, Keyring};
pub use source::{MASTER_KEY_ENV, MasterKeySource};

/// The length of every key here (AES-256).
pub const KEY_LEN: usize = 32;

/// The format version byte that starts a [`WrappedKey`].
const WRAP_VERSION: u8 = 1;
/// version + nonce + wrapped key + tag.
const WRAPPED_LEN: usize = 1 + NONCE_LEN + KEY_LEN + 16;

const WRAPPING_INFO: &[u8] = b"testudo master key: wrapping v1";
const FINGERPRINT_INFO: &[u8] = b"testudo master key: fingerprint v1";

/// What went wrong while obtaining, checking or using a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The master key could not be obtained from its source (file, variable, command).
    #[error("cannot read the master key from {source_name}: {reason}")]
    Source { source_name: String, reason: String },
    /// The master key file may be read by other users.
    #[error(
        "the master key file {path} is readable or writable by group or others (mode {mode:o}); \
         run `chmod 600 {path}`"
    )]
    Permissions { path: String, mode: u32 },
    /// The master key is not a base64-encoded 32-byte key.
    #[error("the master key from {source_name} is not a base64-encoded 32-byte key")]
    Malformed { source_name: String },
    /// The master key does not open the keyring's wrapped data key.
    #[error(
        "the master key does not unwrap this store's data key (the keyring was written for \
         master key {expected}, the given key is {given})"
    )]
    WrongMasterKey {
        expected: Fingerprint,
        given: Fingerprint,
    },
    /// The keyring names the given master key but its wrapped key fails authentication.
    #[error("the keyring entry {entry} fails authentication: the keyring file is damaged")]
    TamperedKeyring { entry: String },
    /// The keyring file cannot be read or parsed.
    #[error("the keyring {path}: {reason}")]
    Keyring { path: String, reason: String },
    /// The operating system's random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// A public, short name for a master key: 8 bytes derived from it with HKDF (one-way), shown
/// in hex. Two different keys have different fingerprints with overwhelming probability.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 8]);

impl Fingerprint {
    pub(crate) fn parse(hex: &str) -> Option<Fingerprint> {
        let bytes = hex.as_bytes();
        if bytes.len() != 16 {
            return None;
        }
        let mut out = [0u8; 8];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let text = std::str::from_utf8(pair).ok()?;
            *out.get_mut(i)? = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The operator's key: wraps data keys, never encrypts data.
pub struct MasterKey {
    wrapping: LessSafeKey,
    fingerprint: Fingerprint,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(<redacted>, fingerprint {})", self.fingerprint)
    }
}

impl MasterKey {
    /// The key whose bytes are `bytes` (wiped when the argument is dropped).
    pub fn from_bytes(bytes: &Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(bytes.as_slice());
        let mut wrapping = Zeroizing::new([0u8; KEY_LEN]);
        let mut fingerprint = [0u8; 8];
        // Both expansions ask for lengths far below HKDF's limit (255 hash lengths), the only
        // way `expand`/`fill` can fail.
        let expanded = prk
            .expand(&[WRAPPING_INFO], OkmLen(KEY_LEN))
            .and_then(|okm| okm.fill(wrapping.as_mut_slice()))
            .and_then(|()| prk.expand(&[FINGERPRINT_INFO], OkmLen(8)))
            .and_then(|okm| okm.fill(&mut fingerprint));
        debug_assert!(expanded.is_ok());
        MasterKey {
            wrapping: aead_key(&wrapping),
            fingerprint: Fingerprint(fingerprint),
        }
    }

    /// A fresh random key (for `testudo keys generate` and tests).
    pub fn generate() -> Result<(MasterKey, Zeroizing<String>), KeyError> {
        let bytes = random_key()?;
        Ok((MasterKey::from_bytes(&bytes), encode_key(&bytes)))
    }

    /// Parses the base64 text of a key (surrounding whitespace ignored). `source_name` names
    /// where the text came from, for the error message.
    pub fn from_base64(text: &str, source_name: &str) -> Result<MasterKey, KeyError> {
        let bytes = decode_key(text).ok_or_else(|| KeyError::Malformed {
            source_name: source_name.to_owned(),
        })?;
        Ok(MasterKey::from_bytes(&bytes))
    }

    /// A second handle on the same key (the derived wrapping key only; the key's own bytes
    /// are not kept): for a server that keeps it to unwrap the data key of an online
    /// rotation, and one that loads the key once for its store, audit log and backups.
    pub fn duplicate(&self) -> MasterKey {
        MasterKey {
            wrapping: self.wrapping.clone(),
            fingerprint: self.fingerprint,
        }
    }

    /// This key's public fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Seals `key` under this master key. `context` (what the key is for) is authenticated,
    /// not stored: unwrapping needs the same context.
    pub fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Random)?;
        let mut sealed = Zeroizing::new(*key.bytes);
        let tag = self
            .wrapping
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                sealed.as_mut_slice(),
            )
            // Sealing fails only for inputs longer than GCM allows; 32 bytes never are.
            .map_err(|_| KeyError::Random)?;
        let mut bytes = Vec::with_capacity(WRAPPED_LEN);
        bytes.push(WRAP_VERSION);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(sealed.as_slice());
        bytes.extend_from_slice(tag.as_ref());
        Ok(WrappedKey { bytes })
    }

    /// Opens a key sealed by [`MasterKey::wrap`] with the same `context`. `None` when this is
    /// not the master key that wrapped it (or the wrapped bytes or context differ).
    pub fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Option<DataKey> {
        let (&version, rest) = wrapped.bytes.split_first()?;
        if version != WRAP_VERSION || rest.len() != WRAPPED_LEN - 1 {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = Zeroizing::new(sealed.to_vec());
        let opened = self
            .wrapping
            .open_in_place(nonce, Aad::from(context), buffer.as_mut_slice())
            .ok()?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(opened.get(..KEY_LEN)?);
        Some(DataKey { bytes })
    }
}

/// A random key that encrypts data. Only ever stored wrapped.
pub struct DataKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<DataKey, KeyError> {
        Ok(DataKey {
            bytes: random_key()?,
        })
    }

    /// An AES-256-GCM key for sealing data with this key. Nonces are the caller's business:
    /// never seal twice with one nonce.
    pub fn aead_key(&self) -> LessSafeKey {
        aead_key(&self.bytes)
    }
}

/// A data key sealed under a master key: `1 ‖ nonce (12) ‖ sealed key (32) ‖ tag (16)`.
/// Safe to store anywhere: without the master key it reveals nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    bytes: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrappedKey(..)")
    }
}

impl WrappedKey {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The stored form; `None` unless it has the length and version of a wrapped key.
    pub fn from_bytes(bytes: &[u8]) -> Option<WrappedKey> {
        (bytes.len() == WRAPPED_LEN && bytes.first() == Some(&WRAP_VERSION)).then(|| WrappedKey {
            bytes: bytes.to_vec(),
        })
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.bytes)
    }

    pub fn from_base64(text: &str) -> Option<WrappedKey> {
        WrappedKey::from_bytes(&BASE64.decode(text.trim()).ok()?)
    }
}

/// An HKDF output length.
struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn aead_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    match UnboundKey::new(&AES_256_GCM, bytes) {
        Ok(key) => LessSafeKey::new(key),
        // `UnboundKey::new` fails only for a key of the wrong length; ours is typed to 32.
        Err(_) => unreachable!("AES-256 keys are 32 bytes"),
    }
}

fn random_key() -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    SystemRandom::new()
        .fill(bytes.as_mut_slice())
        .map_err(|_| KeyError::Random)?;
    Ok(bytes)
}

fn encode_key(bytes: &[u8; KEY_LEN]) -> Zeroizing<String> {
    Zeroizing::new(BASE64.encode(bytes))
}

/// The 32 bytes of a base64 key text, `None` if it is anything else.
fn decode_key(text: &str) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    let decoded = Zeroizing::new(BASE64.decode(text.trim()).ok()?);
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    if decoded.len() != KEY_LEN {
        return None;
    }
    bytes.copy_from_slice(&decoded);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&Zeroizing::new([byte; KEY_LEN]))
    }

    #[test]
    fn a_wrapped_key_unwraps_with_its_master_key_and_context_only() {
        let data = DataKey::generate().unwrap();
        let wrapped = key(1).wrap(&data, b"ctx").unwrap();
        let back = key(1).unwrap(&wrapped, b"ctx").unwrap();
        assert_eq!(*back.bytes, *data.bytes);
        assert!(key(2).unwrap(&wrapped, b"ctx").is_none());
        assert!(key(1).unwrap(&wrapped, b"other").is_none());
    }

    #[test]
    fn a_flipped_bit_in_a_wrapped_key_fails_authentication() {
        let wrapped = key(1).wrap(&DataKey::generate().unwrap(), b"ctx").unwrap();
        for i in 1..WRAPPED_LEN {
            let mut bytes = wrapped.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            let damaged = WrappedKey::from_bytes(&bytes).unwrap();
            assert!(key(1).unwrap(&damaged, b"ctx").is_none(), "byte {i}");
        }
    }

    #[test]
    fn wrapping_twice_gives_different_bytes() {
        let data = DataKey::generate().unwrap();
        let a = key(1).wrap(&data, b"ctx").unwrap();
        let b = key(1).wrap(&data, b"ctx").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn fingerprints_name_keys_and_round_trip_through_hex() {
        assert_eq!(key(1).fingerprint(), key(1).fingerprint());
        assert_ne!(key(1).fingerprint(), key(2).fingerprint());
        let text = key(7).fingerprint().to_string();
        assert_eq!(text.len(), 16);
        assert_eq!(Fingerprint::parse(&text), Some(key(7).fingerprint()));
        assert_eq!(Fingerprint::parse("xyz"), None);
    }

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let master = key(0xAB);
        let shown = format!("{master:?} {:?}", DataKey::generate().unwrap());
        assert!(shown.contains("<redacted>"));
        assert!(!shown.to_lowercase().contains("abab"));
    }

    #[test]
    fn base64_keys_must_be_exactly_32_bytes() {
        let (_, text) = MasterKey::generate().unwrap();
        assert!(MasterKey::from_base64(&format!("  {}\n", *text), "test").is_ok());
        assert!(matches!(
            MasterKey::from_base64("c2hvcnQ=", "test"),
            Err(KeyError::Malformed { .. })
        ));
        assert!(MasterKey::from_base64("not base64!", "test").is_err());
    }
}
