//! Shared by the JWT tests: the committed test-only keys in `testdata/jwt/` (see its README),
//! a token builder that signs any header and claims, and fetchers that count and can fail.
//! Never use these keys for anything but tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use testudo_auth::jwt::{JwksCache, JwksCacheConfig, JwksFetcher, JwtError, ProviderSpec};

pub const NOW: u64 = 1_800_000_000;
pub const ISSUER: &str = "https://idp.example.com";
pub const AUDIENCE: &str = "https://db.fauna.com/db/ysjowue14yyr";
pub const JWKS_URI: &str = "https://idp.example.com/.well-known/jwks.json";

pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/jwt")
        .join(name)
}

pub fn read(name: &str) -> Vec<u8> {
    std::fs::read(testdata(name)).unwrap()
}

/// The DER inside a one-object PEM file.
pub fn pem_der(name: &str) -> Vec<u8> {
    let text = String::from_utf8(read(name)).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// The test keys, by the `kid` they have in `testdata/jwt/jwks.json`.
pub enum Key {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
    /// HMAC with these bytes as the secret.
    Secret(Vec<u8>),
}

impl Key {
    fn encoding(&self) -> EncodingKey {
        match self {
            Key::Rsa => EncodingKey::from_rsa_der(&pem_der("rsa-private.pem")),
            Key::EcP256 => EncodingKey::from_ec_der(&pem_der("ec-p256-private.pem")),
            Key::EcP384 => EncodingKey::from_ec_der(&pem_der("ec-p384-private.pem")),
            Key::Ed25519 => EncodingKey::from_ed_der(&pem_der("ed25519-private.pem")),
            Key::Secret(secret) => EncodingKey::from_secret(secret),
        }
    }
}

pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A compact JWT with exactly this header and these claims, signed with `key` under `alg`.
pub fn sign(header: Value, claims: Value, alg: Algorithm, key: &Key) -> String {
    let signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims));
    let signer = (DEFAULT_PROVIDER.signer_factory)(&alg, &key.encoding()).unwrap();
    let signature = signer.try_sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Claims that pass for the test provider at `NOW`.
pub fn good_claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "iat": NOW - 60,
        "exp": NOW + 600,
        "scope": "read",
    })
}

/// A valid token for `kid`, signed with `alg` and `key`, with `claims`.
pub fn token_with(kid: &str, alg: Algorithm, key: &Key, claims: Value) -> String {
    let name = serde_json::to_value(alg).unwrap();
    sign(
        json!({"alg": name, "typ": "JWT", "kid": kid}),
        claims,
        alg,
        key,
    )
}

pub fn provider() -> ProviderSpec {
    ProviderSpec {
        issuer: ISSUER.into(),
        jwks_uri: JWKS_URI.into(),
        audience: AUDIENCE.into(),
    }
}

/// Serves a JWKS document from memory, counts fetches, and can be told to fail.
#[derive(Default)]
pub struct CountingFetcher {
    pub document: Mutex<Vec<u8>>,
    pub fetches: AtomicUsize,
    pub failing: AtomicBool,
}

impl CountingFetcher {
    pub fn serving(document: Vec<u8>) -> Arc<CountingFetcher> {
        Arc::new(CountingFetcher {
            document: Mutex::new(document),
            ..CountingFetcher::default()
        })
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn replace(&self, document: Vec<u8>) {
        *self.document.lock().unwrap() = document;
    }

    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl JwksFetcher for CountingFetcher {
    fn fetch(&self, _uri: &str) -> Result<Vec<u8>, JwtError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(JwtError::JwksUnavailable("the test says no".into()));
        }
        Ok(self.document.lock().unwrap().clone())
    }
}

pub fn cache_over(fetcher: Arc<CountingFetcher>) -> JwksCache {
    JwksCache::new(fetcher, JwksCacheConfig::default())
}

/// The committed JWKS with only the keys whose `kid` is listed.
pub fn jwks_with(kids: &[&str]) -> Vec<u8> {
    let all: Value = serde_json::from_slice(&read("jwks.json")).unwrap();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
        .cloned()
        .collect();
    serde_json::to_vec(&json!({ "keys": keys })).unwrap()
}
