//! Authentication: the one place a bearer secret becomes a [`Scope`].
//!
//! A bearer is the root secret, a key secret (`fnK…`) or a token secret (`fnT…`),
//! optionally followed by a scope (`:<db/path>:<role>`). Key and token secrets name the
//! database their document lives in; the document, its verifier (kept outside every
//! collection, `keys::auth_secret`) and the liveness of every database on the way are
//! checked against one snapshot. A verified bearer is cached by the SHA-256 of its text
//! (never the text itself) until it expires or anything it depends on changes: any
//! committed update or delete of a key, token, credential or database bumps the cache's
//! epoch, and entries of an older epoch are verified again. So authentication costs no
//! storage read after the first sight of a secret, and a deleted key, a logged-out token or a
//! deleted database stops working with the very next request.
//!
//! **Invariants:** every failure is the same `Unauthorized` (the client cannot tell a
//! wrong secret from a deleted key or a bad scope); secrets are compared in constant time
//! and never logged; a scope can only narrow what its base secret may do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use testudo_auth::scope::{BaseRole, ScopeRequest, ScopeRole, may_request, parse_bearer};
use testudo_auth::secret::{SecretKind, cache_key, parse};
use testudo_auth::{AuthEvent, events::AuthFailure};
use testudo_model::codec::decode_doc;
use testudo_model::{CollId, Data, DataMap, DbId, DocId, Time};
use testudo_storage::KvError;

use testudo_auth::jwt;

use crate::api::{Credential, JwtIdentity, Role, Scope, Unauthorized};
use crate::schema::access_provider::{ProviderDef, audience};
use crate::txn::Txn;
use crate::{EngineShared, keys, schema, tenancy};

/// Cached authentications kept at most (a full cache is cleared; it refills on demand).
const MAX_CACHED: usize = 100_000;

#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], Cached>>,
    epoch: AtomicU64,
}

#[derive(Clone)]
struct Cached {
    scope: Scope,
    epoch: u64,
    /// The earliest `ttl` among the documents the authentication relied on.
    expires: Option<Time>,
}

impl AuthCache {
    /// Drops every cached authentication (after a commit that changed a key, token,
    /// credential or database).
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves on every committed change to keys, tokens, credentials or databases.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn get(&self, key: &[u8; 32]) -> Option<Scope> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let cached = entries.get(key)?;
        let live = cached.epoch == epoch && cached.expires.is_none_or(|t| now() < t);
        live.then(|| cached.scope.clone())
    }

    fn put(&self, key: [u8; 32], scope: Scope, epoch: u64, expires: Option<Time>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_CACHED {
            entries.clear();
        }
        entries.insert(
            key,
            Cached {
                scope,
                epoch,
                expires,
            },
        );
    }
}

fn now() -> Time {
    let micros = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    Time::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

/// Answers from the cache or for the root secret: no storage read.
pub fn authenticate_fast(
    shared: &EngineShared,
    bearer: &str,
) -> Option<Result<Scope, Unauthorized>> {
    if let Some(scope) = shared.auth.get(&cache_key(bearer)) {
        return Some(Ok(scope));
    }
    // A JWT's key set may have to be fetched: never on the network thread.
    if jwt::looks_like_jwt(bearer) {
        return None;
    }
    let (base, request) = match parse_bearer(bearer) {
        Ok(parsed) => parsed,
        Err(e) => return Some(Err(fail(shared, bearer_failure(&e)))),
    };
    // Issued secrets need storage; only the root secret can be checked here.
    if parse(base).is_some() {
        return None;
    }
    if request.is_some() {
        // A root secret with a scope walks the database tree: that reads storage.
        return None;
    }
    Some(if shared.config.root_secret.verify(base) {
        Ok(Scope::admin(DbId::ROOT))
    } else {
        Err(fail(shared, AuthFailure::UnknownSecret))
    })
}

/// Full authentication, reading keys, tokens and databases as needed.
pub fn authenticate(shared: &EngineShared, bearer: &str) -> Result<Scope, Unauthorized> {
    let cache_key = cache_key(bearer);
    if let Some(scope) = shared.auth.get(&cache_key) {
        return Ok(scope);
    }
    let epoch = shared.auth.epoch.load(Ordering::SeqCst);
    if jwt::looks_like_jwt(bearer) {
        let (scope, expires) = authenticate_jwt(shared, bearer)?;
        shared
            .auth
            .put(cache_key, scope.clone(), epoch, Some(expires));
        return Ok(scope);
    }
    let (base, request) = parse_bearer(bearer).map_err(|e| fail(shared, bearer_failure(&e)))?;
    let mut txn = Txn::begin(shared.kv.as_ref()).map_err(|e| storage(shared, e))?;
    let (mut scope, base_role, mut expires) = base_scope(shared, &mut txn, base)?;
    if let Some(request) = request {
        if !may_request(base_role, &request) {
            return Err(fail(shared, AuthFailure::ScopeNotAllowed));
        }
        scope = narrow(shared, &mut txn, scope, &request)?;
    }
    if !tenancy::alive(&mut txn, scope.db).map_err(|e| storage(shared, e))? {
        return Err(fail(shared, AuthFailure::UnknownSecret));
    }
    if let Some((coll, id)) = scope.identity {
        // A token stops working when its identity document is deleted.
        let identity = read_fields(&mut txn, scope.db, coll, id).map_err(|e| storage(shared, e))?;
        match identity {
            Some((_, ttl)) => expires = earliest(expires, ttl),
            None => return Err(fail(shared, AuthFailure::IdentityGone)),
        }
    }
    if scope.path.is_none() {
        // Once per cached secret, so audit records name the database by path for free.
        scope.path =
            crate::audit::database_path(&mut txn, scope.db).map_err(|e| storage(shared, e))?;
    }
    shared.auth.put(cache_key, scope.clone(), epoch, expires);
    Ok(scope)
}

/// The scope a base secret grants by itself.
fn base_scope(
    shared: &EngineShared,
    txn: &mut Txn,
    base: &str,
) -> Result<(Scope, BaseRole, Option<Time>), Unauthorized> {
    let Some(parsed) = parse(base) else {
        return if shared.config.root_secret.verify(base) {
            Ok((Scope::admin(DbId::ROOT), BaseRole::Admin, None))
        } else {
            Err(fail(shared, AuthFailure::UnknownSecret))
        };
    };
    let db = DbId(parsed.db);
    let id = DocId(parsed.id);
    let (coll, kind) = match parsed.kind {
        SecretKind::Key => (schema::KEY, keys::AUTH_KEY),
        SecretKind::Token => (schema::TOKEN, keys::AUTH_TOKEN),
    };
    let verifier = txn
        .get(&keys::auth_secret(db, kind, id))
        .map_err(|e| storage(shared, e))?
        .and_then(|r| r.value);
    let Some(verifier) = verifier.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok()) else {
        return Err(fail(shared, AuthFailure::UnknownSecret));
    };
    if !parsed.verify(&verifier, &shared.pepper) {
        return Err(fail(shared, AuthFailure::UnknownSecret));
    }
    let Some((fields, ttl)) = read_fields(txn, db, coll, id).map_err(|e| storage(shared, e))?
    else {
        return Err(fail(shared, AuthFailure::UnknownSecret));
    };
    if ttl.is_some_and(|t| t <= now()) {
        return Err(fail(shared, AuthFailure::Expired));
    }
    match parsed.kind {
        SecretKind::Key => {
            let role_name = match fields.get("role") {
                Some(Data::String(r)) => r.clone(),
                _ => return Err(fail(shared, AuthFailure::UnknownSecret)),
            };
            let (role, base_role) = builtin_role(&role_name);
            let target = match fields.get("database") {
                Some(Data::String(child)) => tenancy::child_named(txn, db, child)
                    .map_err(|e| storage(shared, e))?
                    .ok_or_else(|| fail(shared, AuthFailure::UnknownSecret))?,
                _ => db,
            };
            let scope = Scope {
                db: target,
                role,
                identity: None,
                token: None,
                credential: Credential::Key { db, id },
                path: None,
            };
            Ok((scope, base_role, ttl))
        }
        SecretKind::Token => {
            let Some(Data::Ref {
                coll: identity_coll,
                id: identity,
            }) = fields.get("document")
            else {
                return Err(fail(shared, AuthFailure::UnknownSecret));
            };
            let scope = Scope {
                db,
                role: Role::Token,
                identity: Some((*identity_coll, *identity)),
                token: Some(id),
                credential: Credential::Token { db, id },
                path: None,
            };
            Ok((scope, BaseRole::Token, ttl))
        }
    }
}

fn builtin_role(name: &str) -> (Role, BaseRole) {
    match name {
        "admin" => (Role::Admin, BaseRole::Admin),
        "server" => (Role::Server, BaseRole::Server),
        "server-readonly" => (Role::ServerReadOnly, BaseRole::ServerReadOnly),
        "client" => (Role::Client, BaseRole::Client),
        other => (Role::Custom(other.to_string()), BaseRole::Custom),
    }
}

/// Applies a requested scope: into a child database by path, then as a narrower role or
/// an identity.
fn narrow(
    shared: &EngineShared,
    txn: &mut Txn,
    base: Scope,
    request: &ScopeRequest,
) -> Result<Scope, Unauthorized> {
    let mut db = base.db;
    for name in &request.path {
        db = tenancy::child_named(txn, db, name)
            .map_err(|e| storage(shared, e))?
            .ok_or_else(|| fail(shared, AuthFailure::ScopeNotAllowed))?;
    }
    let (role, identity) = match &request.role {
        ScopeRole::Admin => (Role::Admin, None),
        ScopeRole::Server => (Role::Server, None),
        ScopeRole::ServerReadOnly => (Role::ServerReadOnly, None),
        ScopeRole::Client => (Role::Client, None),
        ScopeRole::Role(name) => (Role::Custom(name.clone()), None),
        ScopeRole::Doc { collection, id } => {
            let coll = collection_named(txn, db, collection)
                .map_err(|e| storage(shared, e))?
                .ok_or_else(|| fail(shared, AuthFailure::ScopeNotAllowed))?;
            (Role::Token, Some((coll, DocId(*id))))
        }
    };
    Ok(Scope {
        db,
        role,
        identity,
        token: None,
        credential: base.credential,
        path: None,
    })
}

fn collection_named(txn: &mut Txn, db: DbId, name: &str) -> Result<Option<CollId>, KvError> {
    let docs = schema::read_all(db, schema::COLLECTION, txn)
        .map_err(|e| KvError::Io(e.message.clone()))?;
    Ok(docs
        .into_iter()
        .find(|(_, f)| f.get("name") == Some(&Data::String(name.to_string())))
        .map(|(id, _)| CollId(id.0)))
}

/// A document's stored fields and `ttl`, if it exists.
fn read_fields(
    txn: &mut Txn,
    db: DbId,
    coll: CollId,
    id: DocId,
) -> Result<Option<(DataMap, Option<Time>)>, KvError> {
    match txn.get(&keys::doc(db, coll, id))?.and_then(|r| r.value) {
        Some(bytes) => {
            let doc = decode_doc(&bytes).map_err(|e| KvError::Corrupt(e.to_string()))?;
            if doc.ttl.is_some_and(|t| t <= now()) {
                return Ok(None);
            }
            Ok(Some((doc.fields, doc.ttl)))
        }
        None => Ok(None),
    }
}

fn earliest(a: Option<Time>, b: Option<Time>) -> Option<Time> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// The key-set cache JWT verification uses, fetching as `options` allow.
pub fn jwks_cache(options: &crate::JwtOptions) -> Result<jwt::JwksCache, jwt::JwtError> {
    let http = jwt::HttpJwksFetcher::new(jwt::HttpFetchConfig {
        allow_http: options.allow_http,
        allow_private_addresses: options.allow_private_addresses,
        ..jwt::HttpFetchConfig::default()
    })?;
    let fetcher = jwt::SchemeFetcher {
        http: Some(http),
        file: options
            .jwks_file_root
            .as_ref()
            .map(jwt::FileJwksFetcher::new),
    };
    Ok(jwt::JwksCache::new(
        std::sync::Arc::new(fetcher),
        jwt::JwksCacheConfig::default(),
    ))
}

/// A JWT: its `aud` picks the database (exactly one audience of ours), its `iss` the access
/// provider there, whose key set must verify the signature. Which roles it gets is decided
/// per query (the provider's role predicates run over the claims then). Returns the scope
/// and when the token expires.
fn authenticate_jwt(shared: &EngineShared, token: &str) -> Result<(Scope, Time), Unauthorized> {
    let bad = |shared: &EngineShared| fail(shared, AuthFailure::InvalidJwt);
    let unverified = jwt::peek_issuer_and_audience(token).map_err(|_| bad(shared))?;
    let ours: Vec<&String> = unverified
        .aud
        .iter()
        .filter(|a| a.starts_with(crate::schema::access_provider::AUDIENCE_PREFIX))
        .collect();
    let [aud] = ours.as_slice() else {
        return Err(bad(shared));
    };
    let db = aud[crate::schema::access_provider::AUDIENCE_PREFIX.len()..]
        .parse::<u64>()
        .map(DbId)
        .map_err(|_| bad(shared))?;
    let mut txn = Txn::begin(shared.kv.as_ref()).map_err(|e| storage(shared, e))?;
    if !tenancy::alive(&mut txn, db).map_err(|e| storage(shared, e))? {
        return Err(bad(shared));
    }
    let providers = schema::read_all(db, schema::ACCESS_PROVIDER, &mut txn)
        .map_err(|e| storage(shared, KvError::Io(e.message.clone())))?;
    let provider = providers
        .iter()
        .filter_map(|(id, fields)| ProviderDef::from_stored(*id, fields))
        .find(|p| p.issuer == unverified.iss)
        .ok_or_else(|| bad(shared))?;
    let spec = jwt::ProviderSpec {
        issuer: provider.issuer.clone(),
        jwks_uri: provider.jwks_uri.clone(),
        audience: audience(db),
    };
    let now_secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = jwt::verify(token, &spec, &shared.jwks, now_secs, shared.jwt.leeway_secs)
        .map_err(|e| {
            tracing::info!(reason = e.reason(), "JWT refused");
            bad(shared)
        })?;
    // `verify` guarantees `exp`; the cache must not outlive it.
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| bad(shared))?;
    let expires = Time::from_micros(
        i64::try_from(exp.saturating_add(shared.jwt.leeway_secs))
            .unwrap_or(i64::MAX / 1_000_000)
            .saturating_mul(1_000_000),
    );
    let identity = JwtIdentity::new(
        provider.id,
        json_to_data(&serde_json::Value::Object(claims), 0),
    );
    let scope = Scope {
        db,
        role: Role::Jwt(std::sync::Arc::new(identity)),
        identity: None,
        token: None,
        credential: Credential::Jwt {
            db,
            provider: provider.id,
        },
        path: crate::audit::database_path(&mut txn, db).unwrap_or(None),
    };
    Ok((scope, expires))
}

/// JSON claims as stored data (numbers that are integers stay integers).
fn json_to_data(v: &serde_json::Value, depth: usize) -> Data {
    use serde_json::Value as J;
    // `verify` parsed the payload with serde_json's own depth limit; this guards the copy.
    if depth > 64 {
        return Data::Null;
    }
    match v {
        J::Null => Data::Null,
        J::Bool(b) => Data::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Data::Int(i),
            None => Data::Double(n.as_f64().unwrap_or(f64::MAX)),
        },
        J::String(s) => Data::String(s.clone()),
        J::Array(items) => Data::Array(items.iter().map(|i| json_to_data(i, depth + 1)).collect()),
        J::Object(map) => Data::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_data(v, depth + 1)))
                .collect(),
        ),
    }
}

fn fail(shared: &EngineShared, reason: AuthFailure) -> Unauthorized {
    shared.events.emit(AuthEvent::AuthenticationFailed {
        address: None,
        reason,
    });
    Unauthorized
}

fn storage(shared: &EngineShared, e: KvError) -> Unauthorized {
    tracing::error!(error = %e, "storage failure while authenticating");
    fail(shared, AuthFailure::UnknownSecret)
}

fn bearer_failure(e: &testudo_auth::ScopeError) -> AuthFailure {
    use testudo_auth::ScopeError as E;
    match e {
        E::EmptySecret | E::TooLong => AuthFailure::MalformedSecret,
        _ => AuthFailure::InvalidScope,
    }
}
