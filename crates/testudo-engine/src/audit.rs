//! What the engine tells the audit log (`testudo-audit`): the security decisions a query
//! took — a refusal that failed it, function calls that ran with their own role, committed
//! changes to schema and access control — and the authentication events of `testudo-auth`
//! (failures, logins, MFA), translated to audit records.
//!
//! A query collects its decisions in a [`Trail`] while it runs; the runner hands the trail
//! over once the query's fate is known (committed changes are recorded only after commit,
//! with the commit timestamp).
//!
//! **Invariants:** no record ever carries a secret, a password, a claim other than `iss` and
//! `sub`, or document data (only names and ids); recording never blocks the query path
//! beyond handing the record to the sink (which owns its own back-pressure policy).

use std::sync::Arc;

use testudo_audit::{
    AuditEvent, AuditSink, AuthFailure, Change, CredentialRef, DatabaseRef, Denial, ElevatedCall,
    Login, Mfa, Outcome,
};
use testudo_auth::{AuthEvent, EventSink};
use testudo_model::{Data, DbId, Ts};
use testudo_storage::KvError;

use crate::api::{Credential, Role, Scope};
use crate::tenancy;
use crate::txn::Txn;

/// The root database's path (`""`), shared so a root scope costs no allocation.
pub fn root_path() -> Arc<str> {
    static ROOT: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
    Arc::clone(&ROOT)
}

/// The path of names from the root to `db` (`""` for the root, `"app/tenant1"` for a
/// grandchild), read at `txn`'s snapshot; `None` when `db` is not a live database (or its
/// chain is deeper than databases may nest). Authentication calls it once per secret it
/// caches, so audit records name the database without a storage read per query.
pub fn database_path(txn: &mut Txn, db: DbId) -> Result<Option<Arc<str>>, KvError> {
    if db == DbId::ROOT {
        return Ok(Some(root_path()));
    }
    let mut names = Vec::new();
    let mut cur = db;
    for _ in 0..=tenancy::MAX_DEPTH {
        let Some(parent) = tenancy::parent_of(txn, cur)? else {
            return Ok(None);
        };
        let Some(fields) = tenancy::database_doc(txn, parent, cur)? else {
            return Ok(None);
        };
        let Some(Data::String(name)) = fields.get("name") else {
            return Ok(None);
        };
        names.push(name.clone());
        if parent == DbId::ROOT {
            names.reverse();
            return Ok(Some(Arc::from(names.join("/"))));
        }
        cur = parent;
    }
    Ok(None)
}

/// The audit form of a scope's database: its id and, when authentication resolved it, its
/// path.
pub fn database_ref(scope: &Scope) -> DatabaseRef {
    DatabaseRef {
        id: scope.db.0,
        path: scope.path.clone(),
    }
}

/// The audit form of a scope's credential: kind and ids, a JWT's `iss` and `sub`.
pub fn credential_ref(scope: &Scope) -> CredentialRef {
    match &scope.credential {
        Credential::Root => CredentialRef::Root,
        Credential::Key { db, id } => CredentialRef::Key {
            database: db.0,
            id: id.0,
        },
        Credential::Token { db, id } => CredentialRef::Token {
            database: db.0,
            id: id.0,
            identity: scope.identity.map(|(coll, doc)| (coll.0, doc.0)),
        },
        Credential::Jwt { db, provider } => {
            let (iss, sub) = match &scope.role {
                Role::Jwt(jwt) => (jwt.iss.clone(), jwt.sub.clone()),
                _ => (None, None),
            };
            CredentialRef::Jwt {
                database: db.0,
                provider: provider.0,
                iss,
                sub,
            }
        }
    }
}

/// The decisions one query took, for the audit log.
#[derive(Default, Debug)]
pub struct Trail {
    /// The last refusal (action, resource, reason): the one that failed the query, if it
    /// failed with `permission_denied`.
    pub denial: Option<(String, String, String)>,
    /// Functions that ran with their own role: (function, role).
    pub elevated: Vec<(String, String)>,
    /// Schema and access-control writes: (object kind, name or id, action).
    pub changes: Vec<(&'static str, String, String)>,
}

impl Trail {
    pub fn is_empty(&self) -> bool {
        self.denial.is_none() && self.elevated.is_empty() && self.changes.is_empty()
    }
}

/// How a query ended, as far as its trail is concerned.
pub enum Ending {
    /// Failed with this error code (nothing committed).
    Failed(&'static str),
    /// Succeeded; writes (if any) committed at `ts`.
    Succeeded(Ts),
}

/// The role in force, named for a denial record.
fn role_name(scope: &Scope) -> String {
    match &scope.role {
        Role::Admin => "admin".into(),
        Role::Server => "server".into(),
        Role::ServerReadOnly => "server-readonly".into(),
        Role::Client => "client".into(),
        Role::Custom(name) => name.clone(),
        Role::Token => "token".into(),
        Role::Jwt(_) => "jwt".into(),
    }
}

/// Hands a finished query's trail to the sink.
pub fn record(sink: &dyn AuditSink, scope: &Scope, trail: Trail, ending: Ending) {
    // Most queries took no decision worth a record: they cost no clone of the scope's ids.
    if trail.is_empty() && !matches!(ending, Ending::Failed("permission_denied")) {
        return;
    }
    let database = database_ref(scope);
    let credential = credential_ref(scope);
    let (failed, txn_ts) = match ending {
        Ending::Failed(code) => (Some(code), None),
        Ending::Succeeded(ts) => (None, Some(ts.0)),
    };
    if failed == Some("permission_denied") {
        let (action, resource, reason) = trail
            .denial
            .unwrap_or_else(|| ("unknown".into(), "unknown".into(), "no privilege".into()));
        sink.record(AuditEvent::Denied(Denial {
            database: database.clone(),
            credential: credential.clone(),
            role: role_name(scope),
            action,
            resource,
            reason,
            txn_ts: None,
        }));
    }
    for (function, role) in trail.elevated {
        sink.record(AuditEvent::ElevatedCall(ElevatedCall {
            database: database.clone(),
            credential: credential.clone(),
            function,
            role,
            txn_ts,
        }));
    }
    if let Some(ts) = txn_ts {
        for (object, name, action) in trail.changes {
            sink.record(AuditEvent::Change(Change {
                database: database.clone(),
                credential: credential.clone(),
                object: object.to_string(),
                name,
                action,
                txn_ts: ts,
            }));
        }
    }
}

/// Forwards authentication events to the tracing log and, translated, to the audit log.
pub struct AuditedEvents {
    pub log: Arc<dyn EventSink>,
    pub audit: Arc<dyn AuditSink>,
}

impl EventSink for AuditedEvents {
    fn emit(&self, event: AuthEvent) {
        self.emit_at(event, None);
    }

    fn emit_at(&self, event: AuthEvent, path: Option<&str>) {
        if let Some(record) = translate(&event, path) {
            self.audit.record(record);
        }
        self.log.emit_at(event, path);
    }
}

/// The audit record of an authentication event in the database at `path` (when known);
/// `None` for events the query trail records itself (key and token documents are changes
/// like any other).
fn translate(event: &AuthEvent, path: Option<&str>) -> Option<AuditEvent> {
    let database = |db: u64| DatabaseRef {
        id: db,
        path: path.map(Into::into),
    };
    let login = |db: u64, method: &str, outcome: Outcome, client, token| {
        AuditEvent::Login(Login {
            database: database(db),
            identity: None,
            method: method.into(),
            outcome,
            client,
            token,
        })
    };
    let mfa = |db: u64, action: &str, outcome: Outcome| {
        AuditEvent::Mfa(Mfa {
            database: database(db),
            identity: None,
            action: action.into(),
            outcome,
        })
    };
    Some(match event {
        AuthEvent::AuthenticationFailed { address, reason } => {
            AuditEvent::AuthFailure(AuthFailure {
                reason: reason.as_str().into(),
                client: *address,
                database: None,
                credential: None,
            })
        }
        AuthEvent::LoginSucceeded {
            db,
            token_id,
            address,
            ..
        } => login(*db, "password", Outcome::ok(), *address, Some(*token_id)),
        AuthEvent::LoginFailed {
            db,
            address,
            reason,
            ..
        } => login(
            *db,
            "password",
            Outcome(format!("failed: {}", reason.as_str()).into()),
            *address,
            None,
        ),
        AuthEvent::LoginThrottled { db, address, .. } => {
            login(*db, "password", Outcome("throttled".into()), *address, None)
        }
        AuthEvent::PasswordChanged { db, .. } => {
            login(*db, "password_change", Outcome::ok(), None, None)
        }
        AuthEvent::MfaEnrolled { db, .. } => mfa(*db, "enrol", Outcome::ok()),
        AuthEvent::MfaDisabled { db, .. } => mfa(*db, "remove", Outcome::ok()),
        AuthEvent::MfaFailed { db, reason, .. } => mfa(
            *db,
            "verify",
            Outcome(format!("failed: {}", reason.as_str()).into()),
        ),
        AuthEvent::KeyCreated { .. }
        | AuthEvent::KeyDeleted { .. }
        | AuthEvent::TokenCreated { .. }
        | AuthEvent::TokenDeleted { .. } => return None,
    })
}
