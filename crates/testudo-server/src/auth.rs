//! Extracting the secret from the `Authorization` header.
//!
//! Accepted: `Bearer <secret>` (every v10 driver) and HTTP Basic with the secret as the user
//! name (older tools and curl's `-u secret:`). Deciding whether the secret is good is the
//! engine's job (`Engine::authenticate`); this file only finds it.
//!
//! **Invariants:** the secret is never logged, formatted into an error or kept beyond the
//! request; every failure looks the same to the client (one 401, no hint which check failed).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;

/// The presented secret, or `None` when there is no usable one.
pub fn presented_secret(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    let secret = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(credentials).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        match decoded.split_once(':') {
            Some((user, _password)) => user.to_owned(),
            None => decoded,
        }
    } else {
        return None;
    };
    (!secret.is_empty()).then_some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn bearer_secrets_are_taken_whole_including_scopes() {
        let secret = presented_secret(&with_auth("Bearer secret:child:admin"));
        assert_eq!(secret.as_deref(), Some("secret:child:admin"));
        assert_eq!(
            presented_secret(&with_auth("bearer abc")).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn basic_auth_uses_the_user_name_as_the_secret() {
        // base64("secret:") and base64("secret")
        assert_eq!(
            presented_secret(&with_auth("Basic c2VjcmV0Og==")).as_deref(),
            Some("secret")
        );
        assert_eq!(
            presented_secret(&with_auth("Basic c2VjcmV0")).as_deref(),
            Some("secret")
        );
    }

    #[test]
    fn missing_empty_or_unknown_credentials_give_nothing() {
        assert_eq!(presented_secret(&HeaderMap::new()), None);
        assert_eq!(presented_secret(&with_auth("Bearer")), None);
        assert_eq!(presented_secret(&with_auth("Bearer   ")), None);
        assert_eq!(presented_secret(&with_auth("Token abc")), None);
        assert_eq!(presented_secret(&with_auth("Basic !!!")), None);
        assert_eq!(presented_secret(&with_auth("Basic Og==")), None);
    }
}
