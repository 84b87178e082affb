//! Why a JWT, or the key set it needs, was refused.
//!
//! **Invariants:** no variant carries any part of a token except a sanitized, length-bounded
//! copy of the header's `alg` (never the claims, never the signature), so an error can be
//! logged and written to the audit log as it is. `reason()` is a stable code per variant.

/// A refused JWT or an unusable JWKS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON objects, a claim or header field of the wrong type,
    /// a `crit` header, or a token over the size limit.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not one of RS256, RS384, RS512, ES256, ES384, EdDSA (this refuses `none`,
    /// every HMAC algorithm and RSA-PSS). Holds the sanitized `alg`.
    #[error("unsupported JWT algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The key named by `kid` cannot verify the header's algorithm: another key type or
    /// curve, or the JWK declares another `alg`.
    #[error("the key does not fit the token's algorithm {0}")]
    KeyMismatch(&'static str),
    /// No key with the token's `kid`, even after the rate-limited refresh of the key set; or
    /// no `kid` and not exactly one key that fits the algorithm.
    #[error("no matching key in the access provider's JWKS")]
    UnknownKey,
    /// The signature does not verify under the selected key.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `iss` is not exactly the access provider's issuer.
    #[error("the token's issuer is not the access provider's")]
    WrongIssuer,
    /// `aud` does not contain the database's audience.
    #[error("the token's audience does not include this database")]
    WrongAudience,
    /// A claim that must be present is absent (`iss`, `aud`, `exp`).
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
    /// `exp` is not in the future (after the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (after the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The JWKS could not be fetched and no earlier copy is cached.
    #[error("the JWKS is unavailable: {0}")]
    JwksUnavailable(String),
    /// The JWKS was fetched but is not a JWK set.
    #[error("the JWKS is invalid: {0}")]
    InvalidJwks(String),
}

impl JwtError {
    /// A stable snake_case code for audit records and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::Malformed(_) => "malformed",
            JwtError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            JwtError::KeyMismatch(_) => "key_mismatch",
            JwtError::UnknownKey => "unknown_key",
            JwtError::BadSignature => "bad_signature",
            JwtError::WrongIssuer => "wrong_issuer",
            JwtError::WrongAudience => "wrong_audience",
            JwtError::MissingClaim(_) => "missing_claim",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::JwksUnavailable(_) => "jwks_unavailable",
            JwtError::InvalidJwks(_) => "invalid_jwks",
        }
    }

    /// `UnsupportedAlgorithm` with at most 16 visible ASCII characters of `alg`, so a hostile
    /// header cannot put arbitrary text into logs.
    pub(crate) fn unsupported(alg: &str) -> JwtError {
        let clean: String = alg
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.'))
            .take(16)
            .collect();
        JwtError::UnsupportedAlgorithm(clean)
    }
}
