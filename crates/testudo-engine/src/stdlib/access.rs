//! Access documents: `Key`, `Token` and `Credential` (alias `Credentials`), and the
//! credential methods `verify`, `login`, `enrollTotp`.
//!
//! Secret material never enters a document: a key's or token's verifier, a credential's
//! password hash and TOTP secret live in the database's auth space (`keys::auth_secret`),
//! which no query can read. A new key's or token's secret is shown once, in the result of
//! the query that created it (a field of that query's cached copy of the document only).
//!
//! **Invariants:** password hashing (Argon2id) happens only in `Credential.create`,
//! password updates, `verify` and `login`; every login and verify attempt passes the login
//! throttle and reports its outcome as a security event; a failed login reveals nothing
//! but `invalid_secret`.

use std::rc::Rc;
use std::time::{Instant, SystemTime};

use testudo_auth::events::{DocRef as EventDoc, LoginFailure, MfaFailure};
use testudo_auth::secret::{SecretKind, issue};
use testudo_auth::{
    AuthEvent, PasswordPolicy, ThrottleKey, TotpSecret, hash_password, verify_password,
};
use testudo_model::{CollId, Data, DataMap, DocId, Time};

use super::args::{arg, expected, object_arg, set_value, str_arg};
use super::{MethodDef, between, def, exactly};
use crate::api::ErrorCode;
use crate::authz::Action;
use crate::docs::{fields_to_data, merge_patch, to_data};
use crate::eval::{DocRef, Interp, List, NullCause, Object, R, Value, err, fail};
use crate::schema::collection::{constraint_error, failure};
use crate::schema::{CREDENTIAL, KEY, TOKEN};
use crate::set::SetExpr;
use crate::{keys, tenancy};

pub fn key_module_method(name: &str) -> Option<MethodDef> {
    match name {
        "create" => Some(def("create", exactly(1), |it, _, a| {
            create_key(it, &*object_arg(&arg(&a, 0), "data")?)
        })),
        other => super::system::listing_method_for(KEY, other),
    }
}

pub fn token_module_method(name: &str) -> Option<MethodDef> {
    match name {
        "create" => Some(def("create", exactly(1), |it, _, a| {
            create_token(it, &*object_arg(&arg(&a, 0), "data")?)
        })),
        "byDocument" => Some(def("byDocument", exactly(1), |it, _, a| {
            let identity = identity_arg(&arg(&a, 0))?;
            let tokens = owned_by(it, TOKEN, identity)?;
            Ok(set_value(SetExpr::Values(Rc::new(List::new(tokens)))))
        })),
        other => super::system::listing_method_for(TOKEN, other),
    }
}

pub fn credential_module_method(name: &str) -> Option<MethodDef> {
    match name {
        "create" => Some(def("create", exactly(1), |it, _, a| {
            create_credential(it, &*object_arg(&arg(&a, 0), "data")?)
        })),
        "byDocument" => Some(def("byDocument", exactly(1), |it, _, a| {
            let identity = identity_arg(&arg(&a, 0))?;
            let found = owned_by(it, CREDENTIAL, identity)?;
            Ok(found
                .into_iter()
                .next()
                .unwrap_or(Value::Null(NullCause::NoSuchElement(
                    "no credential for that document",
                ))))
        })),
        other => super::system::listing_method_for(CREDENTIAL, other),
    }
}

/// Methods of a credential document, beyond the common document methods.
pub fn credential_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "verify" => def("verify", exactly(1), |it, r, a| {
            let pw = str_arg(&arg(&a, 0), "secret")?;
            check_password(it, doc_of(r)?, &pw, false, None).map(Value::Bool)
        }),
        "login" => def("login", between(1, 3), |it, r, a| login(it, doc_of(r)?, &a)),
        "enrollTotp" => def("enrollTotp", exactly(0), |it, r, _| {
            enroll_totp(it, doc_of(r)?)
        }),
        _ => return None,
    })
}

fn doc_of(v: &Value) -> R<DocRef> {
    match v {
        Value::Doc(r) => Ok(*r),
        _ => Err(err(
            ErrorCode::Internal,
            "credential method on a non-document",
        )),
    }
}

/// A user document an access document may belong to.
fn identity_arg(v: &Value) -> R<DocRef> {
    match v {
        Value::Doc(r) if r.coll.is_user() => Ok(*r),
        other => Err(expected(
            "document",
            "a document of a user collection",
            other,
        )),
    }
}

/// Documents of `coll` (tokens or credentials) whose `document` is `identity`.
fn owned_by(it: &mut Interp<'_>, coll: CollId, identity: DocRef) -> R<Vec<Value>> {
    let mut out = Vec::new();
    for (id, fields) in crate::schema::read_all(it.db(), coll, &mut it.txn)? {
        if fields.get("document")
            == Some(&Data::Ref {
                coll: identity.coll,
                id: identity.id,
            })
        {
            let r = DocRef { coll, id };
            if it.doc_exists(r)? {
                out.push(Value::Doc(r));
            }
        }
    }
    Ok(out)
}

fn ttl_arg(v: Option<&Value>) -> R<Option<Time>> {
    match v {
        None | Some(Value::Null(_)) => Ok(None),
        Some(Value::Time(t)) => Ok(Some(*t)),
        Some(other) => Err(expected("ttl", "Time | Null", other)),
    }
}

fn event_doc(it: &Interp<'_>, r: DocRef) -> EventDoc {
    EventDoc {
        collection: it.coll_name(r.coll),
        id: r.id.0,
    }
}

/// Issues a secret for a new key or token document and stores its verifier.
fn issue_secret(it: &mut Interp<'_>, kind: SecretKind, id: DocId) -> R<String> {
    let issued = issue(kind, id.0, it.db().0, &it.shared.pepper)
        .map_err(|_| err(ErrorCode::Internal, "the random number generator failed"))?;
    let space = match kind {
        SecretKind::Key => keys::AUTH_KEY,
        SecretKind::Token => keys::AUTH_TOKEN,
    };
    it.txn.put(
        keys::auth_secret(it.db(), space, id),
        issued.verifier.to_vec(),
    );
    Ok(issued.text)
}

fn create_key(it: &mut Interp<'_>, input: &Object) -> R<Value> {
    it.check_writable("create")?;
    let mut failures = Vec::new();
    for k in input.keys() {
        if !["role", "database", "data", "ttl"].contains(&k.as_str()) {
            failures.push(failure(k, "Unexpected field provided."));
        }
    }
    match input.get("role") {
        Some(Value::Str(role))
            if crate::schema::collection::check_identifier(role).is_none() || is_builtin(role) => {}
        Some(Value::Str(_)) => failures.push(failure("role", "Invalid role name.")),
        _ => failures.push(failure("role", "Missing required field.")),
    }
    if let Some(db) = input.get("database").filter(|v| !v.is_null()) {
        match db {
            Value::Str(name) => {
                let here = it.db();
                if tenancy::child_named(&mut it.txn, here, name)?.is_none() {
                    failures.push(failure(
                        "database",
                        format!("No child database named `{name}`."),
                    ));
                }
            }
            other => failures.push(failure(
                "database",
                format!("Expected String, provided {}", other.type_name()),
            )),
        }
    }
    let ttl = ttl_arg(input.get("ttl"))?;
    if !failures.is_empty() {
        return Err(constraint_error(
            "Failed to create document in collection Key.",
            failures,
        ));
    }
    let mut stored = DataMap::new();
    for field in ["role", "database", "data"] {
        if let Some(v) = input.get(field).filter(|v| !v.is_null()) {
            stored.insert(field.to_string(), to_data(v)?);
        }
    }
    let r = DocRef {
        coll: KEY,
        id: it.new_id(),
    };
    it.put_doc(r, Action::Create, "create", stored, ttl)?;
    let secret = issue_secret(it, SecretKind::Key, r.id)?;
    it.show_once(r, "secret", Value::string(secret));
    it.shared.events.emit_at(
        AuthEvent::KeyCreated {
            db: it.db().0,
            key_id: r.id.0,
        },
        it.scope.path.as_deref(),
    );
    Ok(Value::Doc(r))
}

fn is_builtin(role: &str) -> bool {
    matches!(role, "admin" | "server" | "server-readonly" | "client")
}

fn create_token(it: &mut Interp<'_>, input: &Object) -> R<Value> {
    it.check_writable("create")?;
    for k in input.keys() {
        if !["document", "data", "ttl"].contains(&k.as_str()) {
            return Err(constraint_error(
                "Failed to create document in collection Token.",
                vec![failure(k, "Unexpected field provided.")],
            ));
        }
    }
    let identity = identity_arg(&input.get("document").cloned().unwrap_or(Value::NULL))?;
    if !it.doc_exists(identity)? {
        return Err(it.missing_error(identity, testudo_model::NullCause::NotFound));
    }
    let ttl = ttl_arg(input.get("ttl"))?;
    let data = input
        .get("data")
        .filter(|v| !v.is_null())
        .map(to_data)
        .transpose()?;
    new_token(it, identity, ttl, data)
}

/// Creates a token document for `identity`, with its secret shown once.
fn new_token(
    it: &mut Interp<'_>,
    identity: DocRef,
    ttl: Option<Time>,
    data: Option<Data>,
) -> R<Value> {
    let mut stored = DataMap::new();
    stored.insert(
        "document".into(),
        Data::Ref {
            coll: identity.coll,
            id: identity.id,
        },
    );
    if let Some(d) = data {
        stored.insert("data".into(), d);
    }
    let r = DocRef {
        coll: TOKEN,
        id: it.new_id(),
    };
    it.put_doc(r, Action::Create, "create", stored, ttl)?;
    let secret = issue_secret(it, SecretKind::Token, r.id)?;
    it.show_once(r, "secret", Value::string(secret));
    let event = AuthEvent::TokenCreated {
        db: it.db().0,
        token_id: r.id.0,
        identity: event_doc(it, identity),
    };
    it.shared.events.emit_at(event, it.scope.path.as_deref());
    Ok(Value::Doc(r))
}

/// The password policy of the query's database: the `password_policy` of its database
/// document, else the defaults (12 to 128 characters, no common passwords).
fn policy(it: &mut Interp<'_>) -> R<PasswordPolicy> {
    let db = it.db();
    let mut policy = PasswordPolicy::default();
    if let Some(parent) = tenancy::parent_of(&mut it.txn, db)?
        && let Some(fields) = tenancy::database_doc(&mut it.txn, parent, db)?
        && let Some(Data::Object(p)) = fields.get("password_policy")
    {
        if let Some(Data::Int(n)) = p.get("min_length") {
            policy.min_len = usize::try_from(*n).unwrap_or(policy.min_len);
        }
        if let Some(Data::Int(n)) = p.get("max_length") {
            policy.max_len = usize::try_from(*n).unwrap_or(policy.max_len);
        }
    }
    Ok(policy)
}

/// Checks a new password against the policy and hashes it.
fn new_password_hash(it: &mut Interp<'_>, password: &Value, verb: &str) -> R<String> {
    let Value::Str(pw) = password else {
        return Err(constraint_error(
            format!("Failed to {verb} document in collection Credential."),
            vec![failure(
                "password",
                format!("Expected String, provided {}", password.type_name()),
            )],
        ));
    };
    if let Err(violation) = policy(it)?.check(pw) {
        return Err(constraint_error(
            format!("Failed to {verb} document in collection Credential."),
            vec![failure("password", violation.to_string())],
        ));
    }
    hash_password(pw).map_err(|e| err(ErrorCode::Internal, format!("password hashing failed: {e}")))
}

fn create_credential(it: &mut Interp<'_>, input: &Object) -> R<Value> {
    it.check_writable("create")?;
    for k in input.keys() {
        if !["document", "password", "data"].contains(&k.as_str()) {
            return Err(constraint_error(
                "Failed to create document in collection Credential.",
                vec![failure(k, "Unexpected field provided.")],
            ));
        }
    }
    let identity = identity_arg(&input.get("document").cloned().unwrap_or(Value::NULL))?;
    if !it.doc_exists(identity)? {
        return Err(it.missing_error(identity, testudo_model::NullCause::NotFound));
    }
    if !owned_by(it, CREDENTIAL, identity)?.is_empty() {
        return Err(constraint_error(
            "Failed to create document in collection Credential.",
            vec![failure(
                "document",
                "The document already has a credential.",
            )],
        ));
    }
    let mut stored = DataMap::new();
    stored.insert(
        "document".into(),
        Data::Ref {
            coll: identity.coll,
            id: identity.id,
        },
    );
    if let Some(d) = input.get("data").filter(|v| !v.is_null()) {
        stored.insert("data".into(), to_data(d)?);
    }
    let r = DocRef {
        coll: CREDENTIAL,
        id: it.new_id(),
    };
    let hash = match input.get("password").filter(|v| !v.is_null()) {
        Some(pw) => Some(new_password_hash(it, pw, "create")?),
        None => None,
    };
    it.put_doc(r, Action::Create, "create", stored, None)?;
    if let Some(hash) = hash {
        it.txn.put(
            keys::auth_secret(it.db(), keys::AUTH_PASSWORD, r.id),
            hash.into_bytes(),
        );
    }
    Ok(Value::Doc(r))
}

/// `cred.update({ password?, document?, data? })` / `replace`: a new password is checked
/// and hashed; the hash never enters the document.
pub fn write_credential(it: &mut Interp<'_>, r: DocRef, patch: &Object, replace: bool) -> R<Value> {
    let verb = if replace { "replace" } else { "update" };
    it.check_writable(verb)?;
    let current = it.require_doc(r)?;
    let mut rest = patch.clone();
    let password = rest.shift_remove("password");
    for k in rest.keys() {
        if !["document", "data"].contains(&k.as_str()) {
            return Err(constraint_error(
                format!("Failed to {verb} document in collection Credential."),
                vec![failure(k, "Unexpected field provided.")],
            ));
        }
    }
    let stored = if replace {
        let mut s = crate::docs::object_to_data(&rest, 1)?;
        if !s.contains_key("document")
            && let Some(d) = fields_to_data(&current)?.get("document")
        {
            s.insert("document".into(), d.clone());
        }
        s
    } else {
        let mut base = fields_to_data(&current)?;
        merge_patch(&mut base, &rest)?;
        base
    };
    let hash = match password.filter(|v| !v.is_null()) {
        Some(pw) => Some(new_password_hash(it, &pw, verb)?),
        None => None,
    };
    it.put_doc(r, Action::Write, verb, stored, None)?;
    if let Some(hash) = hash {
        it.txn.put(
            keys::auth_secret(it.db(), keys::AUTH_PASSWORD, r.id),
            hash.into_bytes(),
        );
        if let Some(identity) = credential_identity(it, r)? {
            let event = AuthEvent::PasswordChanged {
                db: it.db().0,
                identity: event_doc(it, identity),
            };
            it.shared.events.emit_at(event, it.scope.path.as_deref());
        }
    }
    it.auth_changed = true;
    Ok(Value::Doc(r))
}

fn credential_identity(it: &mut Interp<'_>, r: DocRef) -> R<Option<DocRef>> {
    let doc = it.require_doc(r)?;
    Ok(match doc.fields.get("document") {
        Some(Value::Doc(d)) => Some(*d),
        _ => None,
    })
}

fn wall_now() -> (Instant, u64) {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (Instant::now(), secs)
}

/// Checks a password (and, for a login with TOTP enrolled, a code) through the throttle.
/// `Ok(false)` is a wrong password; a throttled attempt is an `invalid_secret` error.
fn check_password(
    it: &mut Interp<'_>,
    r: DocRef,
    password: &str,
    second_factor: bool,
    code: Option<&str>,
) -> R<bool> {
    let identity = credential_identity(it, r)?;
    let db = it.db();
    let mut throttle_keys = vec![ThrottleKey::Identity(format!("{}/{}", db.0, r.id.0))];
    if let Some(addr) = it.client {
        throttle_keys.push(ThrottleKey::Address(addr));
    }
    let who = identity.map(|d| event_doc(it, d)).unwrap_or(EventDoc {
        collection: "Credential".into(),
        id: r.id.0,
    });
    let (now, unix) = wall_now();
    let shared = it.shared;
    let attempt = match shared.throttle.begin(&throttle_keys, now) {
        Ok(attempt) => attempt,
        Err(throttled) => {
            shared.events.emit_at(
                AuthEvent::LoginThrottled {
                    db: db.0,
                    identity: who,
                    address: it.client,
                    retry_after: throttled.retry_after,
                    locked: throttled.locked,
                },
                it.scope.path.as_deref(),
            );
            return fail(
                ErrorCode::InvalidSecret,
                format!(
                    "Too many failed attempts; try again in {} s.",
                    throttled.retry_after.as_secs().max(1)
                ),
            );
        }
    };
    let stored = it
        .txn
        .get(&keys::auth_secret(db, keys::AUTH_PASSWORD, r.id))?
        .and_then(|v| v.value);
    let ok = match stored.and_then(|h| String::from_utf8(h).ok()) {
        Some(hash) => verify_password(password, &hash),
        None => {
            // Spend the same time, so a missing password is not distinguishable by timing.
            testudo_auth::password::verify_against_dummy(password);
            false
        }
    };
    if !ok {
        attempt.failed(Instant::now());
        shared.events.emit_at(
            AuthEvent::LoginFailed {
                db: db.0,
                identity: who,
                address: it.client,
                reason: LoginFailure::WrongPassword,
            },
            it.scope.path.as_deref(),
        );
        return Ok(false);
    }
    // A second factor, when enrolled: checked for logins (`verify` checks the password
    // alone). A code from a step already used is a replay and fails.
    if second_factor
        && let Some(totp) = it
            .txn
            .get(&keys::auth_secret(db, keys::AUTH_TOTP, r.id))?
            .and_then(|v| v.value)
    {
        let (secret, last) = decode_totp(&totp)?;
        match code.and_then(|c| secret.verify(c, unix, last)) {
            Some(step) => it.txn.put(
                keys::auth_secret(db, keys::AUTH_TOTP, r.id),
                encode_totp(&secret, Some(step)),
            ),
            None => {
                attempt.failed(Instant::now());
                let replayed = code.is_some_and(|c| secret.verify(c, unix, None).is_some());
                let reason = if replayed {
                    MfaFailure::Replayed
                } else {
                    MfaFailure::WrongCode
                };
                shared.events.emit_at(
                    AuthEvent::MfaFailed {
                        db: db.0,
                        identity: who,
                        address: it.client,
                        reason,
                    },
                    it.scope.path.as_deref(),
                );
                return Ok(false);
            }
        }
    }
    attempt.succeeded(Instant::now());
    Ok(true)
}

fn encode_totp(secret: &TotpSecret, last_step: Option<u64>) -> Vec<u8> {
    let mut out = last_step.unwrap_or(0).to_be_bytes().to_vec();
    out.push(u8::from(last_step.is_some()));
    out.extend_from_slice(secret.to_base32().as_bytes());
    out
}

fn decode_totp(bytes: &[u8]) -> R<(TotpSecret, Option<u64>)> {
    let corrupt = || err(ErrorCode::Internal, "stored TOTP secret is corrupt");
    let step: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let used = *bytes.get(8).ok_or_else(corrupt)? == 1;
    let text = std::str::from_utf8(bytes.get(9..).ok_or_else(corrupt)?).map_err(|_| corrupt())?;
    let secret = TotpSecret::from_base32(text).ok_or_else(corrupt)?;
    Ok((secret, used.then_some(u64::from_be_bytes(step))))
}

/// `cred.login(password, ttl?, code?)` → a token document with its secret.
fn login(it: &mut Interp<'_>, r: DocRef, args: &[Value]) -> R<Value> {
    it.check_writable("login")?;
    let password = str_arg(&arg(args, 0), "secret")?;
    let ttl = ttl_arg(args.get(1))?;
    let code = match args.get(2) {
        None | Some(Value::Null(_)) => None,
        Some(Value::Str(c)) => Some(c.to_string()),
        Some(other) => return Err(expected("code", "String", other)),
    };
    if !check_password(it, r, &password, true, code.as_deref())? {
        return fail(ErrorCode::InvalidSecret, "Provided secret did not match.");
    }
    let Some(identity) = credential_identity(it, r)? else {
        return fail(ErrorCode::InvalidSecret, "Provided secret did not match.");
    };
    if !it.doc_exists(identity)? {
        return fail(ErrorCode::InvalidSecret, "Provided secret did not match.");
    }
    let token = new_token(it, identity, ttl, None)?;
    let Value::Doc(t) = &token else {
        return Ok(token);
    };
    let event = AuthEvent::LoginSucceeded {
        db: it.db().0,
        identity: event_doc(it, identity),
        token_id: t.id.0,
        address: it.client,
    };
    it.shared.events.emit_at(event, it.scope.path.as_deref());
    Ok(token)
}

/// `cred.enrollTotp()` → `{ uri, secret }`, shown once; from then on `login` needs a code.
fn enroll_totp(it: &mut Interp<'_>, r: DocRef) -> R<Value> {
    it.check_writable("enrollTotp")?;
    it.require_doc(r)?;
    // Enrolling is a write to the credential: the gate decides who may.
    let fields = fields_to_data(&*it.require_doc(r)?)?;
    it.put_doc(r, Action::Write, "enrollTotp", fields, None)?;
    let secret = TotpSecret::generate()
        .map_err(|_| err(ErrorCode::Internal, "the random number generator failed"))?;
    it.txn.put(
        keys::auth_secret(it.db(), keys::AUTH_TOTP, r.id),
        encode_totp(&secret, None),
    );
    let identity = credential_identity(it, r)?;
    let account = identity.map_or_else(
        || r.id.to_string(),
        |d| format!("{}/{}", it.coll_name(d.coll), d.id),
    );
    let uri = secret.provisioning_uri("Testudo", &account);
    if let Some(d) = identity {
        let event = AuthEvent::MfaEnrolled {
            db: it.db().0,
            identity: event_doc(it, d),
        };
        it.shared.events.emit_at(event, it.scope.path.as_deref());
    }
    it.auth_changed = true;
    let mut out = Object::new();
    out.insert("uri".into(), Value::string(uri));
    out.insert("secret".into(), Value::string(secret.to_base32()));
    Ok(Value::object(out))
}
