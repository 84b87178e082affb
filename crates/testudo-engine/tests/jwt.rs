//! Access providers and JWT bearer secrets, as a specification: what a token must carry to
//! be accepted (signature by the provider's key set, issuer, this database's audience,
//! validity window), what it is then allowed (the provider's roles whose predicates hold
//! over the claims), and every way a token is refused.
//!
//! The key sets are read through `file:` URIs from the test keys committed in
//! `crates/testudo-auth/testdata/jwt` (test-only keys; see the README there).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{ROOT, fails, ok, q};
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use testudo_engine::{Engine, EngineOptions, JwtOptions};

const ISSUER: &str = "https://idp.example.com";

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testudo-auth/testdata/jwt")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt_engine() -> Engine {
    common::engine_with(EngineOptions {
        jwt: JwtOptions {
            jwks_file_root: Some(keys_dir().canonicalize().unwrap()),
            ..JwtOptions::default()
        },
        ..EngineOptions::default()
    })
}

fn pem_der(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(keys_dir().join(name)).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A compact JWT with exactly `header` and `claims`, signed with `key` under `alg`.
fn sign(header: Value, claims: &Value, alg: Algorithm, key: &EncodingKey) -> String {
    let input = format!("{}.{}", b64_json(&header), b64_json(claims));
    let signer = (DEFAULT_PROVIDER.signer_factory)(&alg, key).unwrap();
    let signature = signer.try_sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_der(&pem_der("rsa-private.pem"))
}

fn rs256(kid: &str, claims: &Value) -> String {
    sign(
        json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        claims,
        Algorithm::RS256,
        &rsa(),
    )
}

/// A database with a `Note` collection, a `reader` role that reads it, an `editor` role that
/// also creates, and an access provider giving `reader` to every token and `editor` only to
/// tokens whose `scope` claim is "write". Returns the database audience.
fn setup(e: &Engine) -> String {
    ok(e, ROOT, "Collection.create({ name: 'Note' }); null");
    ok(
        e,
        ROOT,
        "Note.create({ id: '1', v: 1 }); \
         Role.create({ name: 'reader', privileges: [{ resource: 'Note', actions: { read: true } }] }); \
         Role.create({ name: 'editor', privileges: [{ resource: 'Note', actions: { read: true, create: true } }] }); \
         null",
    );
    let uri = format!(
        "file://{}",
        keys_dir()
            .join("jwks.json")
            .canonicalize()
            .unwrap()
            .display()
    );
    let created = ok(
        e,
        ROOT,
        &format!(
            "AccessProvider.create({{ name: 'idp', issuer: '{ISSUER}', jwks_uri: '{uri}', \
             roles: ['reader', {{ role: 'editor', predicate: '(claims) => claims.scope == \"write\"' }}] }})"
        ),
    );
    created["audience"].as_str().unwrap().to_string()
}

fn claims(aud: &str) -> Value {
    json!({ "iss": ISSUER, "aud": aud, "sub": "user-42", "iat": now() - 10, "exp": now() + 600, "scope": "read" })
}

#[test]
fn a_provider_gets_this_database_audience_and_it_cannot_be_set() {
    let e = jwt_engine();
    let aud = setup(&e);
    assert!(aud.starts_with("https://db.fauna.com/db/"), "{aud}");
    fails(
        &e,
        ROOT,
        "AccessProvider.byName('idp')!.update({ audience: 'https://evil.example/' })",
        "constraint_failure",
    );
}

#[test]
fn a_valid_rs256_token_reads_with_the_provider_role_and_query_token_returns_its_claims() {
    let e = jwt_engine();
    let aud = setup(&e);
    let token = rs256("rsa-1", &claims(&aud));
    assert_eq!(ok(&e, &token, "Note.byId('1')!.v"), json!(1));
    assert_eq!(ok(&e, &token, "Query.token().sub"), json!("user-42"));
    assert_eq!(ok(&e, &token, "Query.identity()"), Value::Null);
    // `reader` grants no create; the `editor` predicate does not hold for scope "read".
    fails(&e, &token, "Note.create({ v: 2 })", "permission_denied");
}

#[test]
fn the_audit_names_a_jwt_by_its_issuer_and_subject_shared_with_the_identity() {
    let e = jwt_engine();
    let aud = setup(&e);
    let scope = e.authenticate(&rs256("rsa-1", &claims(&aud))).unwrap();
    let testudo_audit::CredentialRef::Jwt { iss, sub, .. } =
        testudo_engine::audit_credential(&scope)
    else {
        panic!("not named as a JWT");
    };
    assert_eq!(
        (iss.as_deref(), sub.as_deref()),
        (Some(ISSUER), Some("user-42"))
    );
    // The same allocation as the identity's: naming the credential per request copies nothing.
    let testudo_engine::Role::Jwt(identity) = &scope.role else {
        panic!("not a JWT role");
    };
    assert!(std::sync::Arc::ptr_eq(
        iss.as_ref().unwrap(),
        identity.iss.as_ref().unwrap()
    ));
    // A subject that is not a string is left out rather than made up.
    let mut numeric = claims(&aud);
    numeric["sub"] = json!(42);
    let scope = e.authenticate(&rs256("rsa-1", &numeric)).unwrap();
    let testudo_audit::CredentialRef::Jwt { sub, .. } = testudo_engine::audit_credential(&scope)
    else {
        panic!("not named as a JWT");
    };
    assert_eq!(sub, None);
}

#[test]
fn a_role_predicate_over_the_claims_adds_its_role() {
    let e = jwt_engine();
    let aud = setup(&e);
    let mut c = claims(&aud);
    c["scope"] = json!("write");
    let token = rs256("rsa-1", &c);
    ok(&e, &token, "Note.create({ v: 2 })");
    assert_eq!(ok(&e, ROOT, "Note.all().count()"), json!(2));
}

#[test]
fn es256_and_eddsa_tokens_verify_against_their_keys() {
    let e = jwt_engine();
    let aud = setup(&e);
    let es = sign(
        json!({"alg": "ES256", "kid": "ec-1"}),
        &claims(&aud),
        Algorithm::ES256,
        &EncodingKey::from_ec_der(&pem_der("ec-p256-private.pem")),
    );
    assert_eq!(ok(&e, &es, "Note.byId('1')!.v"), json!(1));
    let ed = sign(
        json!({"alg": "EdDSA", "kid": "ed-1"}),
        &claims(&aud),
        Algorithm::EdDSA,
        &EncodingKey::from_ed_der(&pem_der("ed25519-private.pem")),
    );
    assert_eq!(ok(&e, &ed, "Note.byId('1')!.v"), json!(1));
}

/// Every refusal looks the same to the client: unauthorized, nothing about why.
fn refused(e: &Engine, token: &str) {
    assert_eq!(
        q(e, token, "Note.byId('1')!.v"),
        Err("unauthorized".to_string()),
        "{token}"
    );
}

#[test]
fn a_token_from_another_issuer_is_refused() {
    let e = jwt_engine();
    let aud = setup(&e);
    let mut c = claims(&aud);
    c["iss"] = json!("https://other-idp.example.com");
    refused(&e, &rs256("rsa-1", &c));
}

#[test]
fn a_token_for_another_audience_or_none_or_two_of_ours_is_refused() {
    let e = jwt_engine();
    let aud = setup(&e);
    let child = ok(&e, ROOT, "Database.create({ name: 'child' }); null");
    assert_eq!(child, Value::Null);
    for audience in [
        json!("https://api.example.com"),
        json!("https://db.fauna.com/db/999999999"),
        json!([aud.clone(), "https://db.fauna.com/db/999999999"]),
        json!([]),
    ] {
        let mut c = claims(&aud);
        c["aud"] = audience;
        refused(&e, &rs256("rsa-1", &c));
    }
    let mut c = claims(&aud);
    c.as_object_mut().unwrap().remove("aud");
    refused(&e, &rs256("rsa-1", &c));
    // Ours among others' is fine: only our audience must be unambiguous.
    let mut c = claims(&aud);
    c["aud"] = json!(["https://api.example.com", aud]);
    assert_eq!(ok(&e, &rs256("rsa-1", &c), "Note.byId('1')!.v"), json!(1));
}

#[test]
fn an_expired_token_or_one_not_yet_valid_is_refused_beyond_the_leeway() {
    let e = jwt_engine();
    let aud = setup(&e);
    let mut expired = claims(&aud);
    expired["exp"] = json!(now() - 120);
    refused(&e, &rs256("rsa-1", &expired));
    let mut early = claims(&aud);
    early["nbf"] = json!(now() + 120);
    refused(&e, &rs256("rsa-1", &early));
    let mut no_exp = claims(&aud);
    no_exp.as_object_mut().unwrap().remove("exp");
    refused(&e, &rs256("rsa-1", &no_exp));
    // Inside the leeway (5 s) both still pass.
    let mut just = claims(&aud);
    just["nbf"] = json!(now() + 2);
    assert_eq!(
        ok(&e, &rs256("rsa-1", &just), "Note.byId('1')!.v"),
        json!(1)
    );
}

#[test]
fn an_unknown_kid_or_a_forged_signature_is_refused() {
    let e = jwt_engine();
    let aud = setup(&e);
    refused(&e, &rs256("no-such-kid", &claims(&aud)));
    let good = rs256("rsa-1", &claims(&aud));
    let (input, _) = good.rsplit_once('.').unwrap();
    let mut other = claims(&aud);
    other["sub"] = json!("admin");
    let forged = rs256("rsa-1", &other);
    let (_, signature) = forged.rsplit_once('.').unwrap();
    refused(&e, &format!("{input}.{signature}"));
}

#[test]
fn alg_none_and_hmac_keyed_with_the_public_key_are_refused() {
    let e = jwt_engine();
    let aud = setup(&e);
    let unsigned = format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none", "kid": "rsa-1"})),
        b64_json(&claims(&aud))
    );
    refused(&e, &unsigned);
    // The classic confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    let public = std::fs::read(keys_dir().join("rsa-public.pem")).unwrap();
    let confused = sign(
        json!({"alg": "HS256", "kid": "rsa-1"}),
        &claims(&aud),
        Algorithm::HS256,
        &EncodingKey::from_secret(&public),
    );
    refused(&e, &confused);
}

#[test]
fn a_token_granted_no_role_is_unauthorized() {
    let e = jwt_engine();
    let aud = setup(&e);
    ok(
        &e,
        ROOT,
        "AccessProvider.byName('idp')!.update({ roles: [{ role: 'reader', predicate: '(c) => c.sub == \"someone-else\"' }] }); null",
    );
    assert_eq!(
        q(&e, &rs256("rsa-1", &claims(&aud)), "1"),
        Err("unauthorized".to_string())
    );
}

#[test]
fn deleting_the_provider_revokes_tokens_already_accepted() {
    let e = jwt_engine();
    let aud = setup(&e);
    let token = rs256("rsa-1", &claims(&aud));
    assert_eq!(ok(&e, &token, "Note.byId('1')!.v"), json!(1));
    ok(&e, ROOT, "AccessProvider.byName('idp')!.delete(); null");
    refused(&e, &token);
}

#[test]
fn provider_definitions_are_validated() {
    let e = jwt_engine();
    setup(&e);
    let uri = format!(
        "file://{}",
        keys_dir()
            .join("jwks.json")
            .canonicalize()
            .unwrap()
            .display()
    );
    // The issuer is unique in its database.
    fails(
        &e,
        ROOT,
        &format!(
            "AccessProvider.create({{ name: 'again', issuer: '{ISSUER}', jwks_uri: '{uri}', roles: ['reader'] }})"
        ),
        "constraint_failure",
    );
    // Roles must exist and be custom roles.
    for roles in [
        "['no-such-role']",
        "['admin']",
        "[{ role: 'reader', predicate: '(a, b) => true' }]",
    ] {
        fails(
            &e,
            ROOT,
            &format!(
                "AccessProvider.create({{ name: 'x', issuer: 'https://x', jwks_uri: '{uri}', roles: {roles} }})"
            ),
            "constraint_failure",
        );
    }
    fails(
        &e,
        ROOT,
        "AccessProvider.create({ name: 'x', issuer: 'https://x', jwks_uri: 'ftp://x/jwks', roles: ['reader'] })",
        "constraint_failure",
    );
}

#[test]
fn only_an_admin_manages_access_providers() {
    let e = jwt_engine();
    setup(&e);
    let server = common::secret_of(&ok(&e, ROOT, "Key.create({ role: 'server' })"));
    // Listing is filtered silently, like every set; reading by name is a denied read.
    assert_eq!(ok(&e, &server, "AccessProvider.all().toArray()"), json!([]));
    fails(
        &e,
        &server,
        "AccessProvider.byName('idp')!",
        "permission_denied",
    );
    fails(
        &e,
        &server,
        "AccessProvider.create({ name: 'x', issuer: 'https://x', jwks_uri: 'https://x/jwks', roles: ['reader'] })",
        "permission_denied",
    );
}
