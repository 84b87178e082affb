//! Time-based one-time passwords (RFC 6238): HMAC-SHA1, 6 digits, 30-second steps, the way
//! every authenticator app does them by default. Also the base32 (RFC 4648) text form of the
//! shared secret and the `otpauth://` provisioning URI.
//!
//! **Invariants:**
//! - A code is accepted for the current step or one step either side, and only for a step
//!   after the last one used: a code is good once (the caller stores the returned step).
//! - Candidate codes are compared in constant time, all of them, whatever matches first.
//! - `Debug` never shows the shared secret; parsing never panics.

use std::fmt;

use ring::hmac;

use crate::secret::{RandomUnavailable, fill_random};

/// Bytes in a shared secret: 160 bits, RFC 4226's recommended length.
pub const SECRET_LEN: usize = 20;
pub const DIGITS: u32 = 6;
pub const STEP_SECS: u64 = 30;
/// How many steps either side of now a code may come from (clock drift, typing time).
pub const SKEW_STEPS: u64 = 1;

/// The secret shared with the user's authenticator.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_LEN]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    pub fn generate() -> Result<TotpSecret, RandomUnavailable> {
        let mut bytes = [0u8; SECRET_LEN];
        fill_random(&mut bytes)?;
        Ok(TotpSecret(bytes))
    }

    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> TotpSecret {
        TotpSecret(bytes)
    }

    /// Reads the base32 text `to_base32` wrote (case-insensitive, no padding, no spaces).
    pub fn from_base32(text: &str) -> Option<TotpSecret> {
        let bytes = base32_decode(text)?;
        Some(TotpSecret(bytes.try_into().ok()?))
    }

    /// The secret as unpadded base32 (32 characters): shown once at enrolment, and the form
    /// to store (encrypted) with the identity.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The `otpauth://totp/...` URI an authenticator app reads (usually from a QR code).
    pub fn provisioning_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            percent_encode(account),
            self.to_base32(),
        )
    }

    /// The 6-digit code for the step containing `unix_secs`.
    pub fn code_at(&self, unix_secs: u64) -> String {
        format_code(self.hotp(unix_secs / STEP_SECS))
    }

    /// Checks `code` at time `unix_secs`. Returns the step it matched, which the caller stores
    /// as the new `last_used_step`; a code from that step or an earlier one is a replay and
    /// fails.
    pub fn verify(&self, code: &str, unix_secs: u64, last_used_step: Option<u64>) -> Option<u64> {
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let presented: u32 = code.parse().ok()?;
        let now = unix_secs / STEP_SECS;
        let mut matched = None;
        for step in now.saturating_sub(SKEW_STEPS)..=now.saturating_add(SKEW_STEPS) {
            let fresh = last_used_step.is_none_or(|last| step > last);
            // Every candidate is computed and compared, so timing does not say which matched.
            let equal = constant_time_eq_u32(self.hotp(step) % 10u32.pow(DIGITS), presented);
            if equal && fresh && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }

    /// RFC 4226 HOTP before the final modulo: the 31-bit dynamically truncated value.
    fn hotp(&self, counter: u64) -> u32 {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let tag = hmac::sign(&key, &counter.to_be_bytes());
        dynamic_truncate(tag.as_ref())
    }
}

fn dynamic_truncate(mac: &[u8]) -> u32 {
    let offset = mac.last().map_or(0, |b| usize::from(b & 0x0f));
    let mut word = [0u8; 4];
    if let Some(bytes) = mac.get(offset..offset + 4) {
        word.copy_from_slice(bytes);
    }
    u32::from_be_bytes(word) & 0x7fff_ffff
}

fn format_code(value: u32) -> String {
    format!(
        "{:0width$}",
        value % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

fn constant_time_eq_u32(a: u32, b: u32) -> bool {
    (a ^ b) == 0
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

/// Strict unpadded base32: every character from the alphabet (either case), a length some
/// byte string encodes to, and zero bits left over, so each byte string has one spelling.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    // Lengths mod 8 of unpadded base32: 0, 2, 4, 5 or 7 characters in the last group.
    if matches!(text.len() % 8, 1 | 3 | 6) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    (buffer == 0).then_some(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 key.
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(*b"12345678901234567890")
    }

    /// RFC 6238 appendix B, SHA-1 rows: (time, 8-digit TOTP).
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ];

    #[test]
    fn truncation_matches_the_rfc_6238_eight_digit_vectors() {
        let secret = rfc_secret();
        for (time, expected) in RFC_VECTORS {
            let value = secret.hotp(time / STEP_SECS) % 100_000_000;
            assert_eq!(format!("{value:08}"), expected, "t={time}");
        }
    }

    #[test]
    fn six_digit_codes_are_the_last_six_digits_of_the_rfc_vectors() {
        let secret = rfc_secret();
        for (time, expected) in RFC_VECTORS {
            assert_eq!(secret.code_at(time), expected[2..], "t={time}");
            assert_eq!(secret.verify(&expected[2..], time, None), Some(time / 30));
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_but_not_two() {
        let secret = rfc_secret();
        let t = 1234567890;
        let code = secret.code_at(t);
        assert_eq!(secret.verify(&code, t - 30, None), Some(t / 30));
        assert_eq!(secret.verify(&code, t + 30, None), Some(t / 30));
        assert_eq!(secret.verify(&code, t - 60, None), None);
        assert_eq!(secret.verify(&code, t + 60, None), None);
    }

    #[test]
    fn a_code_from_the_last_used_step_or_before_is_a_replay() {
        let secret = rfc_secret();
        let t = 1234567890;
        let step = secret.verify(&secret.code_at(t), t, None).unwrap();
        assert_eq!(secret.verify(&secret.code_at(t), t, Some(step)), None);
        assert_eq!(secret.verify(&secret.code_at(t - 30), t, Some(step)), None);
        let next = secret.code_at(t + 30);
        assert_eq!(secret.verify(&next, t, Some(step)), Some(step + 1));
    }

    #[test]
    fn codes_of_the_wrong_shape_are_refused() {
        let secret = rfc_secret();
        let t = 59;
        assert_eq!(secret.code_at(t), "287082");
        for bad in [
            "", "28708", "2870820", " 287082", "287082 ", "+87082", "２87082", "94287082",
        ] {
            assert_eq!(secret.verify(bad, t, None), None, "{bad:?}");
        }
    }

    #[test]
    fn a_wrong_code_is_refused() {
        let secret = rfc_secret();
        assert_eq!(secret.verify("287083", 59, None), None);
    }

    #[test]
    fn the_first_steps_of_time_do_not_underflow() {
        let secret = rfc_secret();
        assert_eq!(secret.verify(&secret.code_at(0), 0, None), Some(0));
        assert_eq!(secret.verify(&secret.code_at(0), 0, Some(0)), None);
        let far = u64::MAX;
        assert_eq!(
            secret.verify(&secret.code_at(far), far, None),
            Some(far / 30)
        );
    }

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ];
        for (bytes, text) in cases {
            assert_eq!(base32_encode(bytes), text);
            assert_eq!(base32_decode(text).as_deref(), Some(bytes));
            assert_eq!(base32_decode(&text.to_lowercase()).as_deref(), Some(bytes));
        }
        assert_eq!(rfc_secret().to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn base32_refuses_padding_foreign_characters_and_leftover_bits() {
        for bad in [
            "MY======", "M", "MZX", "MZXW6Y", "MZ", "MZXW 6", "MZXW1", "MZXW8", "MZé",
        ] {
            assert_eq!(base32_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_secret_round_trips_through_base32_and_only_at_its_length() {
        let secret = TotpSecret::generate().unwrap();
        let text = secret.to_base32();
        assert_eq!(text.len(), 32);
        assert_eq!(TotpSecret::from_base32(&text), Some(secret));
        assert_eq!(TotpSecret::from_base32(&text[..24]), None);
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE"),
            None
        );
    }

    #[test]
    fn generated_secrets_differ() {
        assert_ne!(
            TotpSecret::generate().unwrap(),
            TotpSecret::generate().unwrap()
        );
    }

    #[test]
    fn provisioning_uri_percent_encodes_issuer_and_account() {
        let uri = rfc_secret().provisioning_uri("Acme Co", "alice@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Co:alice%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Co\
             &algorithm=SHA1&digits=6&period=30"
        );
        let tricky = rfc_secret().provisioning_uri("a:b&c=d", "é/?#");
        assert!(tricky.starts_with("otpauth://totp/a%3Ab%26c%3Dd:%C3%A9%2F%3F%23?"));
        assert!(tricky.contains("&issuer=a%3Ab%26c%3Dd&"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", rfc_secret()), "TotpSecret(..)");
    }
}
