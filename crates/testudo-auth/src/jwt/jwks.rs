//! A JWK set (RFC 7517) reduced to the public signature keys we can use, and the choice of
//! the key that verifies a given token.
//!
//! **Invariants:**
//! - Only RSA (2048 to 4096 bits), EC P-256, EC P-384 and OKP Ed25519 public keys are kept;
//!   symmetric (`oct`) keys, encryption keys (`use` other than `sig`), keys whose declared
//!   `alg` we do not accept, and malformed keys are dropped, never turned into an error for
//!   the whole set (one odd key must not lock every user out).
//! - A key is used only for the algorithms of its own type and curve, and only for its
//!   declared `alg` when it has one.
//! - At most `MAX_KEYS` keys are kept, and documents over `MAX_JWKS_BYTES` are refused, so a
//!   cached set has a bounded size.
//! - EC and Ed25519 keys are checked to be valid points when the set is parsed; key sizes are
//!   checked before they reach the crypto library, which would otherwise panic on a short
//!   Ed25519 key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use serde_json::{Map, Value};

use super::{JwtError, SigningAlgorithm};

/// JWKS documents larger than this are refused (fetchers stop reading here too).
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Keys kept from one JWKS; identity providers publish two or three.
pub const MAX_KEYS: usize = 64;

/// The kind of public key, which decides the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyType {
    fn fits(self, alg: SigningAlgorithm) -> bool {
        matches!(
            (self, alg),
            (
                KeyType::Rsa,
                SigningAlgorithm::RS256 | SigningAlgorithm::RS384 | SigningAlgorithm::RS512
            ) | (KeyType::EcP256, SigningAlgorithm::ES256)
                | (KeyType::EcP384, SigningAlgorithm::ES384)
                | (KeyType::Ed25519, SigningAlgorithm::EdDSA)
        )
    }
}

/// One usable public key of a JWK set.
#[derive(Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<SigningAlgorithm>,
    key_type: KeyType,
    key: DecodingKey,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The `alg` the JWK declares, if any.
    pub fn alg(&self) -> Option<SigningAlgorithm> {
        self.alg
    }

    fn fits(&self, alg: SigningAlgorithm) -> bool {
        self.key_type.fits(alg) && self.alg.is_none_or(|declared| declared == alg)
    }

    /// Does `signature` (base64url) sign `signing_input` under this key and `alg`?
    pub(crate) fn verify(
        &self,
        alg: SigningAlgorithm,
        signing_input: &[u8],
        signature: &str,
    ) -> Result<(), JwtError> {
        if !self.fits(alg) {
            return Err(JwtError::KeyMismatch(alg.name()));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
        // The provider is named, not looked up process-wide, so another crate enabling a
        // second jsonwebtoken backend cannot turn verification into a panic.
        let verifier = (DEFAULT_PROVIDER.verifier_factory)(&alg.to_jsonwebtoken(), &self.key)
            .map_err(|_| JwtError::BadSignature)?;
        verifier
            .verify(signing_input, &signature)
            .map_err(|_| JwtError::BadSignature)
    }
}

/// The usable signature keys of one JWK set.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`), keeping the keys we can use.
    pub fn parse(document: &[u8]) -> Result<Jwks, JwtError> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(JwtError::InvalidJwks("larger than 1 MiB".into()));
        }
        let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(document) else {
            return Err(JwtError::InvalidJwks("not a JSON object".into()));
        };
        let Some(Value::Array(entries)) = root.get("keys") else {
            return Err(JwtError::InvalidJwks("no \"keys\" array".into()));
        };
        let keys = entries
            .iter()
            .filter_map(|entry| match entry {
                Value::Object(fields) => usable_key(fields),
                _ => None,
            })
            .take(MAX_KEYS)
            .collect();
        Ok(Jwks { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Would `select` find a key for this `kid`? With no `kid`, any key will do here; the
    /// algorithm decides in `select`.
    pub fn has(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
            None => !self.keys.is_empty(),
        }
    }

    /// The key that must verify a token with this `kid` and `alg`. Without a `kid` there
    /// must be exactly one key that fits the algorithm: trying several would let one token
    /// cost many verifications, and guessing is not verification.
    pub fn select(&self, kid: Option<&str>, alg: SigningAlgorithm) -> Result<&Jwk, JwtError> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err(JwtError::UnknownKey);
                }
                named
                    .find(|k| k.fits(alg))
                    .ok_or(JwtError::KeyMismatch(alg.name()))
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(key),
                    _ => Err(JwtError::UnknownKey),
                }
            }
        }
    }
}

fn string<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    fields.get(name).and_then(Value::as_str)
}

fn b64_field(fields: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(string(fields, name)?).ok()
}

/// The key a JWK describes, or `None` if we cannot or must not use it.
fn usable_key(fields: &Map<String, Value>) -> Option<Jwk> {
    if fields.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return None;
    }
    if let Some(ops) = fields.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return None;
        }
    }
    let alg = match fields.get("alg") {
        None => None,
        Some(Value::String(name)) => Some(SigningAlgorithm::from_name(name)?),
        Some(_) => return None,
    };
    let kid = match fields.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return None,
    };
    let (key_type, key) = match string(fields, "kty")? {
        "RSA" => (KeyType::Rsa, rsa_key(fields)?),
        "EC" => match string(fields, "crv")? {
            "P-256" => (KeyType::EcP256, ec_key(fields, 32)?),
            "P-384" => (KeyType::EcP384, ec_key(fields, 48)?),
            _ => return None,
        },
        "OKP" if string(fields, "crv")? == "Ed25519" => {
            let x = b64_field(fields, "x")?;
            if x.len() != 32 {
                return None;
            }
            (KeyType::Ed25519, DecodingKey::from_ed_der(&x))
        }
        _ => return None,
    };
    let jwk = Jwk {
        kid,
        alg,
        key_type,
        key,
    };
    if key_type != KeyType::Rsa {
        // Building a verifier decodes the point; an invalid one is dropped here, once,
        // instead of failing every token signed by a key of that name.
        let probe = match key_type {
            KeyType::EcP256 => SigningAlgorithm::ES256,
            KeyType::EcP384 => SigningAlgorithm::ES384,
            _ => SigningAlgorithm::EdDSA,
        };
        (DEFAULT_PROVIDER.verifier_factory)(&probe.to_jsonwebtoken(), &jwk.key).ok()?;
    }
    if jwk.alg.is_some_and(|alg| !key_type.fits(alg)) {
        return None;
    }
    Some(jwk)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

fn rsa_key(fields: &Map<String, Value>) -> Option<DecodingKey> {
    let n = b64_field(fields, "n")?;
    let e = b64_field(fields, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let top = n.first()?;
    let bits = n.len() * 8 - top.leading_zeros() as usize;
    // Below 2048 bits is forgeable in practice; above 4096 the RSA library refuses the key
    // at every verification, so it is better dropped once here.
    if !(2048..=4096).contains(&bits) || e.len() > 4 {
        return None;
    }
    let exponent = e.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    if exponent < 3 || exponent % 2 == 0 {
        return None;
    }
    Some(DecodingKey::from_rsa_raw_components(n, e))
}

fn ec_key(fields: &Map<String, Value>, coordinate_len: usize) -> Option<DecodingKey> {
    let x = b64_field(fields, "x")?;
    let y = b64_field(fields, "y")?;
    if x.len() != coordinate_len || y.len() != coordinate_len {
        return None;
    }
    let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Some(DecodingKey::from_ec_der(&point))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_jwk(bits: usize, extra: &str) -> String {
        let mut n = vec![0xffu8; bits / 8];
        n[0] = 0xc1;
        format!(
            r#"{{"kty":"RSA","kid":"r","n":"{}","e":"AQAB"{extra}}}"#,
            b64(&n)
        )
    }

    fn set(keys: &[String]) -> Jwks {
        Jwks::parse(format!(r#"{{"keys":[{}]}}"#, keys.join(",")).as_bytes()).unwrap()
    }

    #[test]
    fn small_and_huge_rsa_moduli_are_dropped() {
        assert_eq!(set(&[rsa_jwk(1024, "")]).len(), 0);
        assert_eq!(set(&[rsa_jwk(2048, "")]).len(), 1);
        assert_eq!(set(&[rsa_jwk(8192, "")]).len(), 0);
    }

    #[test]
    fn encryption_symmetric_and_odd_keys_are_dropped_but_the_set_survives() {
        let keys = [
            rsa_jwk(2048, r#","use":"enc""#),
            rsa_jwk(2048, r#","alg":"RSA-OAEP""#),
            rsa_jwk(2048, r#","alg":"ES256""#),
            rsa_jwk(2048, r#","key_ops":["encrypt"]"#),
            r#"{"kty":"oct","kid":"h","k":"c2VjcmV0"}"#.to_owned(),
            r#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#.to_owned(),
            r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#.to_owned(),
            r#""not an object""#.to_owned(),
            rsa_jwk(2048, r#","key_ops":["verify"],"alg":"RS512""#),
        ];
        let jwks = set(&keys);
        assert_eq!(jwks.len(), 1);
        assert_eq!(jwks.keys()[0].alg(), Some(SigningAlgorithm::RS512));
    }

    #[test]
    fn an_ec_point_off_the_curve_is_dropped() {
        let off_curve = format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
            b64(&[1u8; 32]),
            b64(&[2u8; 32])
        );
        assert_eq!(set(&[off_curve]).len(), 0);
    }

    #[test]
    fn a_document_without_keys_is_invalid() {
        assert!(matches!(
            Jwks::parse(br#"{"kid":"x"}"#),
            Err(JwtError::InvalidJwks(_))
        ));
        assert!(matches!(
            Jwks::parse(b"<html>"),
            Err(JwtError::InvalidJwks(_))
        ));
    }

    #[test]
    fn the_number_of_keys_kept_is_bounded() {
        let keys: Vec<String> = (0..MAX_KEYS + 10).map(|_| rsa_jwk(2048, "")).collect();
        assert_eq!(set(&keys).len(), MAX_KEYS);
    }

    #[test]
    fn without_a_kid_exactly_one_fitting_key_is_required() {
        let one = set(&[rsa_jwk(2048, "")]);
        assert!(one.select(None, SigningAlgorithm::RS256).is_ok());
        assert_eq!(
            one.select(None, SigningAlgorithm::ES256).err(),
            Some(JwtError::UnknownKey)
        );
        let two = set(&[rsa_jwk(2048, ""), rsa_jwk(2048, "")]);
        assert_eq!(
            two.select(None, SigningAlgorithm::RS256).err(),
            Some(JwtError::UnknownKey)
        );
    }

    #[test]
    fn a_known_kid_of_another_key_type_is_a_mismatch_not_unknown() {
        let jwks = set(&[rsa_jwk(2048, "")]);
        assert_eq!(
            jwks.select(Some("r"), SigningAlgorithm::EdDSA).err(),
            Some(JwtError::KeyMismatch("EdDSA"))
        );
        assert_eq!(
            jwks.select(Some("other"), SigningAlgorithm::RS256).err(),
            Some(JwtError::UnknownKey)
        );
    }
}
