//! Encrypted segments: with [`SegmentKeys`] configured, each event's record is sealed with
//! AES-256-GCM under a data key of its segment, and the line holds
//! `{"seq":N,"kind":"sealed","data":"<base64 of ciphertext ‖ tag>"}` instead of the record.
//!
//! Every segment gets a fresh random data key, stored wrapped (by the operator's master key,
//! through [`SegmentKeys`]) in the segment's start record with the wrapping key's public
//! fingerprint. The nonce of a record is its `seq` (`0u32 ‖ seq` big-endian): `seq` never
//! repeats within a log and a key never outlives its segment, so no (key, nonce) pair is ever
//! used twice. Binding the nonce to `seq` also authenticates the record's position.
//!
//! The chain links the sealed line, not the plaintext: `verify` checks order, completeness
//! and seals without the key; with the key it also opens every record.
//!
//! Bookkeeping records (`segment_start`, `seal`, `dropped`, `retention`) stay in plaintext:
//! they carry segment numbers, counts and links, never anything about a request.
//!
//! **Invariants:** a data key is used by one segment only and is never written unwrapped;
//! a record is sealed under the nonce made from its own `seq`; opening checks the tag before
//! anything is returned.

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};

/// An AES-256-GCM key (ring's), as [`SegmentKeys`] hands them out.
pub use ring::aead::LessSafeKey as AeadKey;

/// The `kind` of a sealed record's line.
pub const SEALED: &str = "sealed";

/// The name of the encryption written into encrypted segments' start records.
pub const ALGORITHM: &str = "aes-256-gcm";

/// Where segment data keys come from: the operator's master key, held by the caller (this
/// crate never sees it). Implementations must be cheap to call once per segment.
pub trait SegmentKeys: Send + Sync {
    /// A fresh random data key for one segment, and its wrapped form (stored in the
    /// segment's start record; safe to store anywhere).
    fn fresh(&self) -> io::Result<(AeadKey, Vec<u8>)>;

    /// The data key inside `wrapped`; `None` when it was not wrapped by this master key (or
    /// the bytes were changed).
    fn open(&self, wrapped: &[u8]) -> Option<AeadKey>;

    /// A public name of the master key (its fingerprint), written next to each wrapped key
    /// so that a wrong key can be told apart from a damaged one.
    fn fingerprint(&self) -> String;
}

fn nonce(seq: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[NONCE_LEN - 8..].copy_from_slice(&seq.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Seals `record` (the plaintext record of `seq`) into `out` (cleared first) as the sealed
/// line body; `buf` is reused between calls.
pub fn seal(
    key: &LessSafeKey,
    seq: u64,
    record: &[u8],
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    buf.clear();
    buf.extend_from_slice(record);
    key.seal_in_place_append_tag(nonce(seq), Aad::empty(), buf)
        .map_err(|_| io::Error::other("an audit record could not be sealed"))?;
    out.clear();
    out.extend_from_slice(b"{\"seq\":");
    crate::encode::decimal(out, seq);
    out.extend_from_slice(b",\"kind\":\"sealed\",\"data\":\"");
    let start = out.len();
    out.resize(start + base64::encoded_len(buf.len(), true).unwrap_or(0), 0);
    let written = BASE64
        .encode_slice(&buf[..], &mut out[start..])
        .map_err(io::Error::other)?;
    out.truncate(start + written);
    out.extend_from_slice(b"\"}");
    Ok(())
}

/// Opens the sealed line body of `seq` (`data`: its base64 field): the plaintext record,
/// exactly as it would have been written unencrypted. `None` when the key is not this
/// segment's or anything was changed.
pub fn open(key: &LessSafeKey, seq: u64, data: &str) -> Option<Vec<u8>> {
    let mut bytes = BASE64.decode(data).ok()?;
    let plain = key
        .open_in_place(nonce(seq), Aad::empty(), &mut bytes)
        .ok()?;
    let len = plain.len();
    bytes.truncate(len);
    Some(bytes)
}

pub fn encode_wrapped(wrapped: &[u8]) -> String {
    BASE64.encode(wrapped)
}

pub fn decode_wrapped(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text).ok()
}

/// A [`SegmentKeys`] over 32 raw bytes (HKDF-derived wrapping key), for tests.
#[cfg(test)]
pub mod testing {
    use super::*;
    use ring::aead::{AES_256_GCM, UnboundKey};
    use ring::rand::{SecureRandom, SystemRandom};

    pub struct RawKeys(pub [u8; 32]);

    fn aead(bytes: &[u8]) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).unwrap())
    }

    impl RawKeys {
        fn wrap(&self, key: &[u8]) -> Vec<u8> {
            let mut n = [0u8; NONCE_LEN];
            SystemRandom::new().fill(&mut n).unwrap();
            let mut wrapped = key.to_vec();
            aead(&self.0)
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(n),
                    Aad::empty(),
                    &mut wrapped,
                )
                .unwrap();
            let mut out = n.to_vec();
            out.extend_from_slice(&wrapped);
            out
        }

        fn unwrap(&self, wrapped: &[u8]) -> Option<Vec<u8>> {
            let (n, sealed) = wrapped.split_at_checked(NONCE_LEN)?;
            let mut sealed = sealed.to_vec();
            let key = aead(&self.0)
                .open_in_place(
                    Nonce::try_assume_unique_for_key(n).ok()?,
                    Aad::empty(),
                    &mut sealed,
                )
                .ok()?;
            Some(key.to_vec())
        }

        /// `wrapped`, wrapped by `old`, rewrapped by these keys.
        pub fn rewrap_from(&self, old: &RawKeys, wrapped: &[u8]) -> Option<Vec<u8>> {
            old.unwrap(wrapped).map(|key| self.wrap(&key))
        }
    }

    impl SegmentKeys for RawKeys {
        fn fresh(&self) -> io::Result<(AeadKey, Vec<u8>)> {
            let mut key = [0u8; 32];
            SystemRandom::new().fill(&mut key).unwrap();
            Ok((aead(&key), self.wrap(&key)))
        }

        fn open(&self, wrapped: &[u8]) -> Option<AeadKey> {
            self.unwrap(wrapped).map(|key| aead(&key))
        }

        fn fingerprint(&self) -> String {
            crate::chain::hex(&self.0[..4])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::RawKeys;
    use super::*;

    #[test]
    fn a_sealed_record_opens_only_under_its_key_and_its_seq() {
        let keys = RawKeys([7; 32]);
        let (key, wrapped) = keys.fresh().unwrap();
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        seal(
            &key,
            42,
            br#"{"seq":42,"kind":"request"}"#,
            &mut buf,
            &mut out,
        )
        .unwrap();
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["seq"], 42);
        assert_eq!(line["kind"], "sealed");
        let data = line["data"].as_str().unwrap();
        assert_eq!(
            open(&key, 42, data).unwrap(),
            br#"{"seq":42,"kind":"request"}"#
        );
        assert!(open(&key, 43, data).is_none());
        let reopened = keys.open(&wrapped).unwrap();
        assert!(open(&reopened, 42, data).is_some());
        assert!(RawKeys([8; 32]).open(&wrapped).is_none());
        let (other, _) = keys.fresh().unwrap();
        assert!(open(&other, 42, data).is_none());
    }
}
