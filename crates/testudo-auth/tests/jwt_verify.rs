//! What `jwt::verify` accepts and refuses, and how `JwksCache` fetches, as a specification.
//! Keys are the test-only fixtures in `testdata/jwt/`; time is fixed at `NOW`.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod jwt_support;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jwt_support::*;
use serde_json::{Value, json};
use testudo_auth::jwt::{
    self, FileJwksFetcher, JwksCache, JwksCacheConfig, JwtError, ProviderSpec,
};

fn verify_with(token: &str, fetcher: &Arc<CountingFetcher>) -> Result<jwt::Claims, JwtError> {
    let cache = cache_over(Arc::clone(fetcher));
    jwt::verify(token, &provider(), &cache, NOW, 5)
}

fn verify(token: &str) -> Result<jwt::Claims, JwtError> {
    verify_with(token, &CountingFetcher::serving(read("jwks.json")))
}

fn claims_with(changes: Value) -> Value {
    let mut claims = good_claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn rs256(claims: Value) -> String {
    token_with("rsa-1", Algorithm::RS256, &Key::Rsa, claims)
}

// --- Tokens that pass ---

#[test]
fn a_valid_rs256_token_passes_and_returns_its_claims() {
    let claims = verify(&rs256(good_claims())).unwrap();
    assert_eq!(Value::Object(claims), good_claims());
}

#[test]
fn rs384_and_rs512_pass_with_an_rsa_key_that_declares_no_alg() {
    for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::RS256] {
        let token = token_with("rsa-any", alg, &Key::Rsa, good_claims());
        assert!(verify(&token).is_ok(), "{alg:?}");
    }
}

#[test]
fn a_valid_es256_token_passes() {
    let token = token_with("ec-1", Algorithm::ES256, &Key::EcP256, good_claims());
    assert!(verify(&token).is_ok());
}

#[test]
fn a_valid_es384_token_passes() {
    let token = token_with("ec-384", Algorithm::ES384, &Key::EcP384, good_claims());
    assert!(verify(&token).is_ok());
}

#[test]
fn a_valid_eddsa_token_passes() {
    let token = token_with("ed-1", Algorithm::EdDSA, &Key::Ed25519, good_claims());
    assert!(verify(&token).is_ok());
}

#[test]
fn an_audience_array_containing_the_database_passes() {
    let claims = claims_with(json!({"aud": ["https://api.example.com", AUDIENCE]}));
    assert!(verify(&rs256(claims)).is_ok());
}

#[test]
fn a_token_without_kid_passes_when_one_key_fits_its_algorithm() {
    let token = sign(
        json!({"alg": "EdDSA"}),
        good_claims(),
        Algorithm::EdDSA,
        &Key::Ed25519,
    );
    assert!(verify(&token).is_ok());
}

#[test]
fn expiry_and_not_before_are_judged_with_the_leeway() {
    let just_expired = rs256(claims_with(json!({"exp": NOW - 3})));
    let almost_valid = rs256(claims_with(json!({"nbf": NOW + 3})));
    let fractional = rs256(claims_with(json!({"exp": (NOW + 100) as f64 + 0.5})));
    assert!(verify(&just_expired).is_ok());
    assert!(verify(&almost_valid).is_ok());
    assert!(verify(&fractional).is_ok());
}

// --- Tokens that fail on their claims ---

#[test]
fn a_wrong_issuer_fails() {
    for iss in [
        json!("https://evil.example.com"),
        json!(format!("{ISSUER}/")),
        json!("HTTPS://IDP.EXAMPLE.COM"),
    ] {
        let token = rs256(claims_with(json!({ "iss": iss })));
        assert_eq!(verify(&token), Err(JwtError::WrongIssuer), "{iss}");
    }
}

#[test]
fn a_wrong_audience_fails() {
    for aud in [
        json!("https://db.fauna.com/db/someoneelse"),
        json!(["https://api.example.com"]),
        json!([]),
    ] {
        let token = rs256(claims_with(json!({ "aud": aud })));
        assert_eq!(verify(&token), Err(JwtError::WrongAudience), "{aud}");
    }
}

#[test]
fn an_expired_token_fails() {
    let token = rs256(claims_with(json!({"exp": NOW - 6})));
    assert_eq!(verify(&token), Err(JwtError::Expired));
    let cache = cache_over(CountingFetcher::serving(read("jwks.json")));
    let exactly_now = rs256(claims_with(json!({"exp": NOW})));
    assert_eq!(
        jwt::verify(&exactly_now, &provider(), &cache, NOW, 0),
        Err(JwtError::Expired)
    );
}

#[test]
fn a_token_not_yet_valid_fails() {
    let token = rs256(claims_with(json!({"nbf": NOW + 60})));
    assert_eq!(verify(&token), Err(JwtError::NotYetValid));
}

#[test]
fn a_token_without_exp_fails() {
    let token = rs256(claims_with(json!({"exp": null})));
    assert_eq!(verify(&token), Err(JwtError::MissingClaim("exp")));
}

#[test]
fn a_token_without_iss_or_aud_fails() {
    let no_iss = rs256(claims_with(json!({"iss": null})));
    let no_aud = rs256(claims_with(json!({"aud": null})));
    assert_eq!(verify(&no_iss), Err(JwtError::MissingClaim("iss")));
    assert_eq!(verify(&no_aud), Err(JwtError::MissingClaim("aud")));
}

#[test]
fn claims_of_the_wrong_type_are_malformed() {
    for changes in [
        json!({"exp": "tomorrow"}),
        json!({"nbf": true}),
        json!({"iss": 7}),
        json!({"aud": {"db": 1}}),
    ] {
        let token = rs256(claims_with(changes.clone()));
        assert!(
            matches!(verify(&token), Err(JwtError::Malformed(_))),
            "{changes}"
        );
    }
}

#[test]
fn a_token_for_another_issuer_causes_no_key_fetch() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    let token = rs256(claims_with(json!({"iss": "https://evil.example.com"})));
    assert_eq!(verify_with(&token, &fetcher), Err(JwtError::WrongIssuer));
    assert_eq!(fetcher.fetches(), 0);
}

// --- Tokens that fail on their algorithm or key ---

#[test]
fn alg_none_fails() {
    let header = b64_json(&json!({"alg": "none", "kid": "rsa-1"}));
    let payload = b64_json(&good_claims());
    let unsigned = format!("{header}.{payload}.");
    assert_eq!(
        verify(&unsigned),
        Err(JwtError::UnsupportedAlgorithm("none".into()))
    );
    let with_junk = format!("{header}.{payload}.AAAA");
    assert_eq!(
        verify(&with_junk),
        Err(JwtError::UnsupportedAlgorithm("none".into()))
    );
    for spelling in ["None", "NONE", "nOnE"] {
        let header = b64_json(&json!({ "alg": spelling }));
        let token = format!("{header}.{payload}.");
        assert!(
            matches!(verify(&token), Err(JwtError::UnsupportedAlgorithm(_))),
            "{spelling}"
        );
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key_as_secret_fails_before_any_key_lookup() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    for secret in [read("rsa-public.pem"), pem_der("rsa-public.pem")] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let token = token_with("rsa-1", alg, &Key::Secret(secret.clone()), good_claims());
            let name = serde_json::to_value(alg).unwrap();
            assert_eq!(
                verify_with(&token, &fetcher),
                Err(JwtError::UnsupportedAlgorithm(
                    name.as_str().unwrap().to_owned()
                ))
            );
        }
    }
    assert_eq!(fetcher.fetches(), 0);
}

#[test]
fn rsa_pss_is_not_accepted() {
    let token = token_with("rsa-any", Algorithm::PS256, &Key::Rsa, good_claims());
    assert_eq!(
        verify(&token),
        Err(JwtError::UnsupportedAlgorithm("PS256".into()))
    );
}

#[test]
fn header_alg_rs256_with_an_ec_key_fails() {
    // Signed with RSA, but the kid names the P-256 key.
    let token = token_with("ec-1", Algorithm::RS256, &Key::Rsa, good_claims());
    assert_eq!(verify(&token), Err(JwtError::KeyMismatch("RS256")));
}

#[test]
fn every_algorithm_refuses_a_key_of_another_type() {
    let cases = [
        ("ec-1", Algorithm::ES384, Key::EcP384),
        ("ec-384", Algorithm::ES256, Key::EcP256),
        ("ed-1", Algorithm::ES256, Key::EcP256),
        ("rsa-any", Algorithm::EdDSA, Key::Ed25519),
        ("ec-1", Algorithm::EdDSA, Key::Ed25519),
    ];
    for (kid, alg, key) in cases {
        let token = token_with(kid, alg, &key, good_claims());
        assert!(
            matches!(verify(&token), Err(JwtError::KeyMismatch(_))),
            "{kid} {alg:?}"
        );
    }
}

#[test]
fn a_jwk_that_declares_rs256_refuses_rs512() {
    let token = token_with("rsa-1", Algorithm::RS512, &Key::Rsa, good_claims());
    assert_eq!(verify(&token), Err(JwtError::KeyMismatch("RS512")));
}

#[test]
fn a_tampered_payload_fails() {
    let token = rs256(good_claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64_json(&claims_with(json!({"sub": "admin", "scope": "all"})));
    parts[1] = &forged;
    assert_eq!(verify(&parts.join(".")), Err(JwtError::BadSignature));
}

#[test]
fn a_signature_by_another_key_or_altered_fails() {
    // ES256 by the P-384 holder can't be made, so: an RSA signature by the right key over
    // other bytes, and an EdDSA signature with one bit flipped.
    let token = rs256(good_claims());
    let other = rs256(claims_with(json!({"sub": "other"})));
    let (head, _) = token.rsplit_once('.').unwrap();
    let (_, other_signature) = other.rsplit_once('.').unwrap();
    assert_eq!(
        verify(&format!("{head}.{other_signature}")),
        Err(JwtError::BadSignature)
    );

    let ed = token_with("ed-1", Algorithm::EdDSA, &Key::Ed25519, good_claims());
    let (head, signature) = ed.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 1;
    let flipped = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    assert_eq!(verify(&flipped), Err(JwtError::BadSignature));

    // An empty signature, and one of the wrong length, for every family.
    for (kid, alg, key) in [
        ("rsa-1", Algorithm::RS256, Key::Rsa),
        ("ec-1", Algorithm::ES256, Key::EcP256),
        ("ed-1", Algorithm::EdDSA, Key::Ed25519),
    ] {
        let token = token_with(kid, alg, &key, good_claims());
        let (head, _) = token.rsplit_once('.').unwrap();
        for signature in ["", "AAAA"] {
            assert_eq!(
                verify(&format!("{head}.{signature}")),
                Err(JwtError::BadSignature),
                "{kid}"
            );
        }
    }
}

#[test]
fn a_key_embedded_in_the_header_is_ignored() {
    // The attacker signs with their own key and offers it in `jwk` and `jku`.
    let jwks: Value = serde_json::from_slice(&read("jwks.json")).unwrap();
    let mut own_key = jwks["keys"][2].clone();
    own_key["kid"] = json!("attacker");
    let token = sign(
        json!({"alg": "ES256", "kid": "attacker", "jwk": own_key,
               "jku": "https://evil.example.com/jwks"}),
        good_claims(),
        Algorithm::ES256,
        &Key::EcP256,
    );
    assert_eq!(verify(&token), Err(JwtError::UnknownKey));
}

#[test]
fn a_crit_header_is_refused() {
    let token = sign(
        json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
        good_claims(),
        Algorithm::RS256,
        &Key::Rsa,
    );
    assert!(matches!(verify(&token), Err(JwtError::Malformed(_))));
}

#[test]
fn an_unknown_kid_fails() {
    let token = token_with("nope", Algorithm::RS256, &Key::Rsa, good_claims());
    assert_eq!(verify(&token), Err(JwtError::UnknownKey));
}

#[test]
fn without_a_kid_several_fitting_keys_are_ambiguous() {
    let token = sign(
        json!({"alg": "RS256"}),
        good_claims(),
        Algorithm::RS256,
        &Key::Rsa,
    );
    assert_eq!(verify(&token), Err(JwtError::UnknownKey));
}

// --- Garbage ---

#[test]
fn truncated_and_garbage_tokens_are_malformed() {
    let token = rs256(good_claims());
    let first_dot = token.find('.').unwrap();
    let cases = [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "ey".into(),
        "eyJhbGciOiJSUzI1NiJ9".into(),
        token[..first_dot].to_owned(),
        token[..first_dot + 5].to_owned(),
        format!("{token}.more"),
        token.replace('.', ".."),
        format!("{}!", token),
        format!(" {token}"),
        "eyJ.eyJ.eyJ".into(),
        format!(
            "{}.{}.AAAA",
            b64_json(&json!([1])),
            b64_json(&good_claims())
        ),
        format!(
            "{}.{}.AAAA",
            b64_json(&json!({"alg": "RS256"})),
            b64_json(&json!("s"))
        ),
        format!(
            "{}.{}.AAAA",
            b64_json(&json!({"alg": 256})),
            b64_json(&good_claims())
        ),
        format!(
            "{}.{}.AAAA",
            b64_json(&json!({"kid": "x"})),
            b64_json(&good_claims())
        ),
        format!(
            "{}.{}.AAAA",
            b64_json(&json!({"alg": "RS256", "kid": 1})),
            b64_json(&good_claims())
        ),
        "a".repeat(jwt::MAX_TOKEN_LEN + 1),
    ];
    for case in cases {
        let preview: String = case.chars().take(40).collect();
        assert!(
            matches!(verify(&case), Err(JwtError::Malformed(_))),
            "{preview:?}"
        );
        assert!(jwt::peek_issuer_and_audience(&case).is_err(), "{preview:?}");
    }
}

#[test]
fn deeply_nested_claims_are_refused_without_overflowing_the_stack() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"x","aud":{deep}}}"#));
    let header = b64_json(&json!({"alg": "RS256"}));
    let token = format!("{header}.{payload}.AAAA");
    // Over the size limit, and under it with a depth serde_json refuses.
    assert!(matches!(verify(&token), Err(JwtError::Malformed(_))));
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"x","aud":{deep}}}"#));
    let token = format!("{header}.{payload}.AAAA");
    assert!(matches!(verify(&token), Err(JwtError::Malformed(_))));
}

/// A small deterministic generator, so a failure replays.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mangled_tokens_never_pass_and_never_panic() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    let cache = JwksCache::new(
        fetcher.clone(),
        JwksCacheConfig {
            min_refresh: Duration::from_secs(3600),
            ..JwksCacheConfig::default()
        },
    );
    let originals = [
        rs256(good_claims()),
        token_with("ec-1", Algorithm::ES256, &Key::EcP256, good_claims()),
        token_with("ed-1", Algorithm::EdDSA, &Key::Ed25519, good_claims()),
    ];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00";
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    for round in 0..3000 {
        let original = &originals[round % originals.len()];
        let mut bytes = original.as_bytes().to_vec();
        for _ in 0..=rng.below(3) {
            match rng.below(5) {
                0 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes[at] = alphabet[rng.below(alphabet.len())];
                }
                1 => bytes.truncate(rng.below(bytes.len() + 1)),
                2 => {
                    let at = rng.below(bytes.len() + 1);
                    bytes.insert(at, alphabet[rng.below(alphabet.len())]);
                }
                3 if !bytes.is_empty() => {
                    bytes.remove(rng.below(bytes.len()));
                }
                _ => {
                    let at = rng.below(bytes.len() + 1);
                    bytes.insert(at, rng.next() as u8);
                }
            }
        }
        let Ok(mangled) = String::from_utf8(bytes) else {
            continue;
        };
        let _ = jwt::peek_issuer_and_audience(&mangled);
        let _ = jwt::looks_like_jwt(&mangled);
        let verdict = jwt::verify(&mangled, &provider(), &cache, NOW, 5);
        if mangled != *original {
            assert!(verdict.is_err(), "round {round} passed: {mangled}");
        }
    }
    assert!(fetcher.fetches() <= 1);
}

// --- The key cache ---

#[test]
fn an_unknown_kid_triggers_exactly_one_refetch_within_the_rate_limit_window() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    let cache = cache_over(fetcher.clone());
    let t0 = Instant::now();
    assert!(cache.key_for(JWKS_URI, Some("rsa-1"), t0).is_ok());
    assert_eq!(fetcher.fetches(), 1);

    // A known kid within max_age never fetches.
    assert!(cache.key_for(JWKS_URI, Some("ec-1"), t0 + secs(30)).is_ok());
    assert_eq!(fetcher.fetches(), 1);

    // The first unknown kid once the window has passed fetches once; later ones in the same
    // window, whatever their kid, do not.
    let t1 = t0 + secs(61);
    for (i, kid) in ["new-1", "new-2", "new-1", "zzz"].into_iter().enumerate() {
        let at = t1 + secs(i as u64 * 10);
        assert_eq!(
            cache.key_for(JWKS_URI, Some(kid), at).err(),
            Some(JwtError::UnknownKey)
        );
    }
    assert_eq!(fetcher.fetches(), 2);

    // The next window allows the next fetch.
    assert!(cache.key_for(JWKS_URI, Some("x"), t1 + secs(60)).is_err());
    assert_eq!(fetcher.fetches(), 3);
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_key_added_by_the_provider_is_found_by_the_refetch() {
    let fetcher = CountingFetcher::serving(jwks_with(&["rsa-1"]));
    let cache = cache_over(fetcher.clone());
    let t0 = Instant::now();
    assert!(cache.key_for(JWKS_URI, Some("rsa-1"), t0).is_ok());
    fetcher.replace(jwks_with(&["rsa-1", "ed-1"]));
    let jwks = cache
        .key_for(JWKS_URI, Some("ed-1"), t0 + secs(60))
        .unwrap();
    assert!(jwks.has(Some("ed-1")));
    assert_eq!(fetcher.fetches(), 2);
}

#[test]
fn the_first_fetch_is_not_delayed_by_the_rate_limit_and_verify_uses_the_cache() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    let cache = cache_over(fetcher.clone());
    for _ in 0..3 {
        assert!(jwt::verify(&rs256(good_claims()), &provider(), &cache, NOW, 5).is_ok());
    }
    assert_eq!(fetcher.fetches(), 1);
}

#[test]
fn a_failed_refetch_keeps_serving_known_keys() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    let cache = cache_over(fetcher.clone());
    let t0 = Instant::now();
    cache.key_for(JWKS_URI, Some("rsa-1"), t0).unwrap();
    fetcher.fail(true);
    // Unknown kid: the refetch fails, the answer is still "unknown key", not an outage.
    assert_eq!(
        cache.key_for(JWKS_URI, Some("new"), t0 + secs(61)).err(),
        Some(JwtError::UnknownKey)
    );
    // Stale set (past max_age): the refresh fails, the known key still serves.
    let stale = t0 + cache.config().max_age + secs(1);
    assert!(cache.key_for(JWKS_URI, Some("rsa-1"), stale).is_ok());
    assert_eq!(fetcher.fetches(), 3);
}

#[test]
fn a_refetch_that_returns_garbage_keeps_the_old_set() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    let cache = cache_over(fetcher.clone());
    let t0 = Instant::now();
    cache.key_for(JWKS_URI, Some("rsa-1"), t0).unwrap();
    fetcher.replace(b"<html>maintenance</html>".to_vec());
    let stale = t0 + cache.config().max_age + secs(1);
    assert!(cache.key_for(JWKS_URI, Some("rsa-1"), stale).is_ok());
    assert_eq!(fetcher.fetches(), 2);
}

#[test]
fn a_key_removed_by_the_provider_stops_verifying_after_the_set_is_refreshed() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    let cache = cache_over(fetcher.clone());
    let t0 = Instant::now();
    cache.key_for(JWKS_URI, Some("rsa-1"), t0).unwrap();
    fetcher.replace(jwks_with(&["ed-1"]));
    let stale = t0 + cache.config().max_age + secs(1);
    assert_eq!(
        cache.key_for(JWKS_URI, Some("rsa-1"), stale).err(),
        Some(JwtError::UnknownKey)
    );
}

#[test]
fn an_unreachable_provider_is_unavailable_and_not_hammered() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    fetcher.fail(true);
    let cache = cache_over(fetcher.clone());
    let t0 = Instant::now();
    for i in 0..5 {
        assert!(matches!(
            cache.key_for(JWKS_URI, Some("rsa-1"), t0 + secs(i)),
            Err(JwtError::JwksUnavailable(_))
        ));
    }
    assert_eq!(fetcher.fetches(), 1);
    // An invalid document is reported as such.
    fetcher.fail(false);
    fetcher.replace(b"{}".to_vec());
    assert!(matches!(
        cache.key_for(JWKS_URI, Some("rsa-1"), t0 + secs(60)),
        Err(JwtError::InvalidJwks(_))
    ));
}

#[test]
fn concurrent_misses_on_one_uri_share_one_fetch() {
    struct Slow(Arc<CountingFetcher>);
    impl jwt::JwksFetcher for Slow {
        fn fetch(&self, uri: &str) -> Result<Vec<u8>, JwtError> {
            thread::sleep(Duration::from_millis(50));
            self.0.fetch(uri)
        }
    }
    let counting = CountingFetcher::serving(read("jwks.json"));
    let cache = Arc::new(JwksCache::new(
        Arc::new(Slow(counting.clone())),
        JwksCacheConfig::default(),
    ));
    let now = Instant::now();
    let barrier = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let cache = Arc::clone(&cache);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let kid = if i % 2 == 0 { "rsa-1" } else { "unknown" };
                cache.key_for(JWKS_URI, Some(kid), now).is_ok()
            })
        })
        .collect();
    let found: Vec<bool> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(counting.fetches(), 1);
    assert_eq!(found, [true, false, true, false, true, false, true, false]);
}

#[test]
fn the_number_of_cached_uris_is_bounded() {
    let fetcher = CountingFetcher::serving(read("jwks.json"));
    let cache = JwksCache::new(
        fetcher,
        JwksCacheConfig {
            max_uris: 2,
            ..JwksCacheConfig::default()
        },
    );
    let t0 = Instant::now();
    for (i, uri) in ["https://a/jwks", "https://b/jwks", "https://c/jwks"]
        .into_iter()
        .enumerate()
    {
        cache
            .key_for(uri, Some("rsa-1"), t0 + secs(i as u64))
            .unwrap();
    }
    assert_eq!(cache.len(), 2);
}

#[test]
fn verify_reads_keys_through_the_file_fetcher() {
    let cache = JwksCache::new(
        Arc::new(FileJwksFetcher::new(testdata(""))),
        JwksCacheConfig::default(),
    );
    let provider = ProviderSpec {
        jwks_uri: format!("file://{}", testdata("jwks.json").display()),
        ..provider()
    };
    let token = token_with("ec-1", Algorithm::ES256, &Key::EcP256, good_claims());
    assert!(jwt::verify(&token, &provider, &cache, NOW, 5).is_ok());
}

#[test]
fn error_reasons_are_stable_codes() {
    assert_eq!(JwtError::UnknownKey.reason(), "unknown_key");
    assert_eq!(JwtError::Expired.reason(), "expired");
    assert_eq!(
        JwtError::UnsupportedAlgorithm("HS256".into()).reason(),
        "unsupported_algorithm"
    );
}

#[test]
fn an_unsupported_algorithm_name_is_sanitized_before_it_reaches_an_error() {
    let header = b64_json(&json!({"alg": "HS256\r\nInjected: yes; and a very long tail"}));
    let token = format!("{header}.{}.AAAA", b64_json(&good_claims()));
    assert_eq!(
        verify(&token),
        Err(JwtError::UnsupportedAlgorithm("HS256Injectedyes".into()))
    );
}
