//! JWT authentication for access providers (an external identity provider's tokens):
//! `looks_like_jwt` routes a bearer here, `peek_issuer_and_audience` reads the untrusted
//! `aud` (to pick the database) and `iss` (to pick the access provider), and `verify` checks
//! the token against that provider's key set, held by a `JwksCache` that fetches it through a
//! `JwksFetcher` (`HttpJwksFetcher`, `FileJwksFetcher`, or `SchemeFetcher` routing between
//! them).
//!
//! **Invariants:**
//! - Only RS256, RS384, RS512, ES256, ES384 and EdDSA verify, each only with a key of its own
//!   type and curve (and of its declared `alg`, if the JWK has one). `none`, every HMAC
//!   algorithm and RSA-PSS are refused before any key is looked up, so a public key can
//!   never be used as an HMAC secret.
//! - Keys come only from the provider's `jwks_uri`; header fields that point elsewhere
//!   (`jku`, `x5u`, an embedded `jwk`) are ignored, and a `crit` header is refused.
//! - A token is accepted only if its signature verifies, `iss` equals the provider's issuer
//!   exactly, `aud` contains the database's audience, `exp` is present and in the future and
//!   `nbf`, if present, is not in the future (both within the given leeway).
//! - No input makes these functions panic; a token is never logged or put into an error.

mod cache;
mod error;
mod fetch;
mod http;
mod jwks;
mod token;

pub use cache::{JwksCache, JwksCacheConfig};
pub use error::JwtError;
pub use fetch::{FileJwksFetcher, JwksFetcher, SchemeFetcher};
pub use http::{HttpFetchConfig, HttpJwksFetcher};
pub use jwks::{Jwk, Jwks, KeyType, MAX_JWKS_BYTES, MAX_KEYS};
pub use token::{
    Claims, MAX_TOKEN_LEN, SigningAlgorithm, Unverified, looks_like_jwt, peek_issuer_and_audience,
};

use std::time::Instant;

/// The leeway the engine applies to `exp` and `nbf`, for clock skew with the provider.
pub const DEFAULT_LEEWAY_SECS: u64 = 5;

/// What an access provider document says about the tokens it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    /// Must equal the token's `iss` exactly (a trailing slash matters).
    pub issuer: String,
    pub jwks_uri: String,
    /// The database's audience; the token's `aud` must contain it.
    pub audience: String,
}

/// Verifies `token` for `provider` at `now_unix` (seconds since the epoch) and returns its
/// claims. The key set comes from `cache`, which may fetch it (blocking) on first use or when
/// the token names a key the cached set lacks.
pub fn verify(
    token: &str,
    provider: &ProviderSpec,
    cache: &JwksCache,
    now_unix: u64,
    leeway_secs: u64,
) -> Result<Claims, JwtError> {
    let decoded = token::decode(token)?;
    if decoded.header.contains_key("crit") {
        return Err(JwtError::Malformed(
            "crit header parameters are not supported",
        ));
    }
    let alg_name = decoded.alg()?;
    let alg =
        SigningAlgorithm::from_name(alg_name).ok_or_else(|| JwtError::unsupported(alg_name))?;
    let kid = decoded.kid()?;
    // Claims that need no key are checked first, so a token meant for another provider or
    // database never causes a key fetch.
    if decoded.iss()? != provider.issuer {
        return Err(JwtError::WrongIssuer);
    }
    if !decoded.aud()?.contains(&provider.audience.as_str()) {
        return Err(JwtError::WrongAudience);
    }
    let exp = decoded
        .numeric_date("exp")?
        .ok_or(JwtError::MissingClaim("exp"))?;
    let nbf = decoded.numeric_date("nbf")?;

    let jwks = cache.key_for(&provider.jwks_uri, kid, Instant::now())?;
    let key = jwks.select(kid, alg)?;
    key.verify(alg, decoded.signing_input.as_bytes(), decoded.signature)?;

    // Time is judged only on an authentic token, so "expired" in the audit log is true.
    if now_unix >= exp.saturating_add(leeway_secs) {
        return Err(JwtError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now_unix.saturating_add(leeway_secs)) {
        return Err(JwtError::NotYetValid);
    }
    Ok(decoded.claims)
}
