//! The compact JWS form of a JWT taken apart: three canonical base64url parts, a JSON header
//! and a JSON claims object; the algorithms we accept; reading `iss`, `aud` and `kid` before
//! anything is trusted.
//!
//! **Invariants:** nothing here verifies anything, so nothing here may be used to grant access;
//! every input (of any length, bytes or shape) gives a value or a `JwtError`, never a panic;
//! tokens over `MAX_TOKEN_LEN` are refused before any decoding, and JSON nesting is bounded by
//! serde_json's recursion limit.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::JwtError;

/// Longer bearers are refused unread. Identity-provider tokens are a few KiB at most, and
/// HTTP servers cap header sizes well below this.
pub const MAX_TOKEN_LEN: usize = 32 * 1024;

/// A JWT's claims (its payload object), as verified by [`super::verify`].
pub type Claims = Map<String, Value>;

/// The signature algorithms we verify. Anything else, `none` and every HMAC included, is
/// refused before a key is looked up: a symmetric algorithm would let anyone holding the
/// provider's *public* key mint tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    EdDSA,
}

impl SigningAlgorithm {
    /// The algorithm named by a header's `alg`, if it is one we accept (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<SigningAlgorithm> {
        Some(match name {
            "RS256" => SigningAlgorithm::RS256,
            "RS384" => SigningAlgorithm::RS384,
            "RS512" => SigningAlgorithm::RS512,
            "ES256" => SigningAlgorithm::ES256,
            "ES384" => SigningAlgorithm::ES384,
            "EdDSA" => SigningAlgorithm::EdDSA,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::RS384 => "RS384",
            SigningAlgorithm::RS512 => "RS512",
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::ES384 => "ES384",
            SigningAlgorithm::EdDSA => "EdDSA",
        }
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            SigningAlgorithm::RS384 => jsonwebtoken::Algorithm::RS384,
            SigningAlgorithm::RS512 => jsonwebtoken::Algorithm::RS512,
            SigningAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            SigningAlgorithm::ES384 => jsonwebtoken::Algorithm::ES384,
            SigningAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// What a token says about itself, before anything is verified. The engine uses `aud` to
/// pick the database and `iss` to pick the access provider, then calls [`super::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub iss: String,
    /// `aud` as a list, whether the token carried a string or an array.
    pub aud: Vec<String>,
    pub kid: Option<String>,
    /// The header's `alg` as written; it may be one we refuse.
    pub alg: String,
}

/// A token split and decoded, signature not yet checked.
pub(crate) struct Decoded<'a> {
    pub header: Map<String, Value>,
    pub claims: Claims,
    /// `header.payload` exactly as received: the bytes the signature covers.
    pub signing_input: &'a str,
    /// The third part, still base64url (validated canonical).
    pub signature: &'a str,
}

/// Is this bearer shaped like a compact JWT (`ey…` header, three base64url parts)? Only
/// routes the bearer; says nothing about validity.
pub fn looks_like_jwt(bearer: &str) -> bool {
    bearer.len() <= MAX_TOKEN_LEN
        && bearer.starts_with("ey")
        && bearer.bytes().filter(|&b| b == b'.').count() == 2
        && bearer
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(crate) fn decode(token: &str) -> Result<Decoded<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not three dot-separated parts"));
    };
    let header = json_object(header, "header")?;
    let claims = json_object(payload, "payload")?;
    // An empty signature is well-formed (it is what `alg: none` tokens carry); refusing it
    // is the algorithm check's job, so the audit log says why.
    if URL_SAFE_NO_PAD.decode(signature).is_err() {
        return Err(JwtError::Malformed("signature is not base64url"));
    }
    let signing_input = token
        .get(..token.len() - signature.len() - 1)
        .ok_or(JwtError::Malformed("not three dot-separated parts"))?;
    Ok(Decoded {
        header,
        claims,
        signing_input,
        signature,
    })
}

fn json_object(part: &str, what: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| {
        JwtError::Malformed(if what == "header" {
            "header is not base64url"
        } else {
            "payload is not base64url"
        })
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed(if what == "header" {
            "header is not a JSON object"
        } else {
            "payload is not a JSON object"
        })),
    }
}

impl Decoded<'_> {
    pub fn alg(&self) -> Result<&str, JwtError> {
        match self.header.get("alg") {
            Some(Value::String(alg)) => Ok(alg),
            Some(_) => Err(JwtError::Malformed("alg is not a string")),
            None => Err(JwtError::Malformed("no alg in the header")),
        }
    }

    pub fn kid(&self) -> Result<Option<&str>, JwtError> {
        match self.header.get("kid") {
            Some(Value::String(kid)) => Ok(Some(kid)),
            Some(_) => Err(JwtError::Malformed("kid is not a string")),
            None => Ok(None),
        }
    }

    pub fn iss(&self) -> Result<&str, JwtError> {
        match self.claims.get("iss") {
            Some(Value::String(iss)) => Ok(iss),
            Some(_) => Err(JwtError::Malformed("iss is not a string")),
            None => Err(JwtError::MissingClaim("iss")),
        }
    }

    pub fn aud(&self) -> Result<Vec<&str>, JwtError> {
        match self.claims.get("aud") {
            Some(Value::String(aud)) => Ok(vec![aud]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(aud) => Ok(aud.as_str()),
                    _ => Err(JwtError::Malformed("aud holds a non-string")),
                })
                .collect(),
            Some(_) => Err(JwtError::Malformed("aud is not a string or array")),
            None => Err(JwtError::MissingClaim("aud")),
        }
    }

    /// A NumericDate claim, in whole seconds: fractions are dropped and instants before 1970
    /// read as 0, which only ever makes `exp` stricter and `nbf` looser than "not yet".
    pub fn numeric_date(&self, claim: &'static str) -> Result<Option<u64>, JwtError> {
        match self.claims.get(claim) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                if let Some(secs) = n.as_u64() {
                    Ok(Some(secs))
                } else if n.as_i64().is_some() {
                    Ok(Some(0))
                } else {
                    match n.as_f64() {
                        Some(f) if f.is_finite() => Ok(Some(if f <= 0.0 {
                            0
                        } else {
                            // `as` saturates at u64::MAX for huge finite floats.
                            f.floor() as u64
                        })),
                        _ => Err(JwtError::Malformed("a time claim is not a number")),
                    }
                }
            }
            Some(_) => Err(JwtError::Malformed("a time claim is not a number")),
        }
    }
}

/// Reads `iss`, `aud`, `kid` and `alg` without verifying the token. See [`Unverified`].
pub fn peek_issuer_and_audience(token: &str) -> Result<Unverified, JwtError> {
    let decoded = decode(token)?;
    Ok(Unverified {
        iss: decoded.iss()?.to_owned(),
        aud: decoded.aud()?.into_iter().map(str::to_owned).collect(),
        kid: decoded.kid()?.map(str::to_owned),
        alg: decoded.alg()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str, claims: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(claims))
    }

    #[test]
    fn peek_reads_a_string_audience_as_a_list_of_one() {
        let t = token(
            r#"{"alg":"RS256","kid":"k1"}"#,
            r#"{"iss":"https://idp","aud":"https://db/1"}"#,
        );
        let seen = peek_issuer_and_audience(&t).unwrap();
        assert_eq!(seen.iss, "https://idp");
        assert_eq!(seen.aud, vec!["https://db/1".to_owned()]);
        assert_eq!(seen.kid.as_deref(), Some("k1"));
        assert_eq!(seen.alg, "RS256");
    }

    #[test]
    fn peek_refuses_an_audience_array_with_a_number() {
        let t = token(r#"{"alg":"RS256"}"#, r#"{"iss":"i","aud":["a",1]}"#);
        assert!(matches!(
            peek_issuer_and_audience(&t),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn peek_names_the_missing_claim() {
        let t = token(r#"{"alg":"RS256"}"#, r#"{"aud":"a"}"#);
        assert_eq!(
            peek_issuer_and_audience(&t),
            Err(JwtError::MissingClaim("iss"))
        );
    }

    #[test]
    fn padded_or_non_canonical_base64_is_malformed() {
        let header = b64(r#"{"alg":"RS256"}"#);
        let claims = b64(r#"{"iss":"i","aud":"a"}"#);
        assert!(decode(&format!("{header}=.{claims}.c2ln")).is_err());
        assert!(decode(&format!("{header}.{claims}.YQ")).is_ok());
        // "YR" decodes to the same byte as "YQ" but with a non-zero trailing bit: a second
        // spelling of one signature, which a canonical decoder refuses.
        assert!(decode(&format!("{header}.{claims}.YR")).is_err());
    }

    #[test]
    fn a_fourth_part_is_malformed_but_an_empty_signature_is_not() {
        let t = token(r#"{"alg":"RS256"}"#, r#"{}"#);
        assert!(decode(&format!("{t}.x")).is_err());
        let unsigned = t.trim_end_matches("c2ln");
        assert_eq!(decode(unsigned).unwrap().signature, "");
    }

    #[test]
    fn signing_input_is_the_first_two_parts_as_received() {
        let t = token(r#"{"alg":"RS256"}"#, r#"{}"#);
        let decoded = decode(&t).unwrap();
        assert_eq!(
            format!("{}.{}", decoded.signing_input, decoded.signature),
            t
        );
    }

    #[test]
    fn numeric_dates_accept_fractions_and_clamp_the_past() {
        let t = token(
            r#"{"alg":"RS256"}"#,
            r#"{"exp":1700000000.9,"nbf":-5,"iat":"x","big":1e300}"#,
        );
        let d = decode(&t).unwrap();
        assert_eq!(d.numeric_date("exp"), Ok(Some(1_700_000_000)));
        assert_eq!(d.numeric_date("nbf"), Ok(Some(0)));
        assert_eq!(d.numeric_date("big"), Ok(Some(u64::MAX)));
        assert!(d.numeric_date("iat").is_err());
        assert_eq!(d.numeric_date("absent"), Ok(None));
    }

    #[test]
    fn looks_like_jwt_routes_only_three_part_base64url_bearers() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJ9.sig-_"));
        assert!(!looks_like_jwt("fnAEexampleSecret"));
        assert!(!looks_like_jwt("eyJh.eyJ9"));
        assert!(!looks_like_jwt("eyJh.eyJ9.a.b"));
        assert!(!looks_like_jwt("eyJh.ey J9.sig"));
        assert!(!looks_like_jwt("eyJh.eyJ9.sig:admin"));
    }
}
