//! The authorization gate as the evaluator applies it: which privileges are in force right
//! now, and whether they allow an action on one concrete document or function call.
//!
//! `authz.rs` says what the privileges allow in general ([`Grant`]); this module finishes the
//! decision for one document: the owner check of a token's baseline rights, and the role
//! predicates. Predicates run inside the query's transaction, at its snapshot, under
//! [`Perms::Internal`] and read-only; their reads are charged to the query.
//!
//! **Invariants:** a predicate allows only by returning exactly `true` — an error, a
//! non-boolean or a wrong arity denies (fail closed), except a query time-out or a storage
//! failure, which end the query instead of being read as a denial; predicates never see or
//! change the caller's view of documents (the document cache holds raw states, decisions
//! are kept apart, per privilege set); a decision is remembered only until the query's
//! next write, because predicates may read what a write changes.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::api::{ErrorCode, JwtIdentity, Role, Scope};
use crate::authz::{self, Action, Grant, Perms};
use crate::eval::{DocRef, Interp, Object, R, Value, fail};
use crate::index::IndexDef;
use crate::mask::{self, FieldRule};
use crate::schema;
use crate::schema::access_provider::ProviderDef;
use crate::schema::function::FunctionDef;
use crate::schema::role::{Policy, Predicate, RoleDef};

/// The privileges in force, with an id that keys remembered decisions.
#[derive(Debug)]
pub struct ActivePerms {
    pub id: u32,
    pub perms: Perms,
}

type Rules = Arc<Vec<FieldRule>>;

/// Decisions already taken in this query: (document, action, privileges id) → allowed.
#[derive(Default)]
pub struct Decisions {
    entries: HashMap<(DocRef, Action, u32), bool>,
    /// The masking rules a read of a document is under (see `mask.rs`), same keys.
    masks: HashMap<(DocRef, Action, u32), Option<Rules>>,
    next_perms_id: u32,
}

impl Decisions {
    fn fresh_id(&mut self) -> u32 {
        self.next_perms_id += 1;
        self.next_perms_id
    }
}

/// The privileges a scope starts with, before custom roles and membership are resolved.
pub fn initial_perms(scope: &Scope) -> Perms {
    match &scope.role {
        Role::Admin => Perms::Admin,
        Role::Server => Perms::Server,
        Role::ServerReadOnly => Perms::ServerReadOnly,
        Role::Client | Role::Custom(_) | Role::Jwt(_) => Perms::Nothing,
        Role::Token => Perms::Roles {
            roles: Vec::new(),
            token: true,
        },
    }
}

/// The privileges a function's `role` names.
fn perms_of_role(schema: &schema::Schema, role: &str) -> Perms {
    match role {
        "admin" => Perms::Admin,
        "server" => Perms::Server,
        "server-readonly" => Perms::ServerReadOnly,
        custom => match schema.role(custom) {
            Some(def) => Perms::Roles {
                roles: vec![def.clone()],
                token: false,
            },
            None => Perms::Nothing,
        },
    }
}

impl Interp<'_> {
    /// Resolves the caller's custom role (a key's) or role memberships (a token's) at the
    /// start of the query, against the schema and data of its snapshot: a membership
    /// predicate that stops holding takes effect at the next query.
    pub fn assume_roles(&mut self) -> R<()> {
        let perms = match (&self.scope.role, self.scope.identity) {
            (Role::Custom(name), _) => match self.schema.role(name) {
                Some(def) => Perms::Roles {
                    roles: vec![def.clone()],
                    token: false,
                },
                None => Perms::Nothing,
            },
            (Role::Token, Some((coll, id))) => {
                let coll_name = self.coll_name(coll);
                let identity = Value::Doc(DocRef { coll, id });
                let candidates: Vec<Arc<RoleDef>> = self.schema.roles().cloned().collect();
                let mut roles = Vec::new();
                for role in candidates {
                    for (resource, predicate) in &role.membership {
                        if *resource != coll_name {
                            continue;
                        }
                        let member = match predicate {
                            None => true,
                            Some(p) => self.predicate_holds(&role, p, vec![identity.clone()])?,
                        };
                        if member {
                            roles.push(role.clone());
                            break;
                        }
                    }
                }
                Perms::Roles { roles, token: true }
            }
            (Role::Jwt(jwt), _) => {
                let jwt = jwt.clone();
                self.jwt_roles(&jwt)?
            }
            _ => return Ok(()),
        };
        self.set_perms(perms);
        Ok(())
    }

    /// The roles an access provider gives this JWT now: each role whose predicate (if any)
    /// holds for the claims. None at all, or a provider deleted since the token was
    /// verified, makes the request unauthorized, as in Fauna.
    fn jwt_roles(&mut self, jwt: &JwtIdentity) -> R<Perms> {
        let provider = schema::read_all(self.db(), schema::ACCESS_PROVIDER, &mut self.txn)?
            .into_iter()
            .find(|(id, _)| *id == jwt.provider)
            .and_then(|(id, fields)| ProviderDef::from_stored(id, &fields));
        let Some(provider) = provider else {
            return fail(ErrorCode::Unauthorized, "Access token required");
        };
        let claims = crate::docs::from_data(jwt.claims.clone(), None);
        let mut roles: Vec<Arc<RoleDef>> = Vec::new();
        for (name, predicate) in &provider.roles {
            let Some(role) = self.schema.role(name).cloned() else {
                continue;
            };
            let granted = match predicate {
                None => true,
                Some(p) => self.predicate_holds(&role, p, vec![claims.clone()])?,
            };
            if granted && !roles.iter().any(|r| r.id == role.id) {
                roles.push(role);
            }
        }
        if roles.is_empty() {
            return fail(ErrorCode::Unauthorized, "Access token required");
        }
        Ok(Perms::Roles {
            roles,
            token: false,
        })
    }

    /// Replaces the privileges in force (returns the previous ones, to restore).
    pub fn set_perms(&mut self, perms: Perms) -> Rc<ActivePerms> {
        let id = self.decisions.fresh_id();
        std::mem::replace(&mut self.perms, Rc::new(ActivePerms { id, perms }))
    }

    /// Runs `f` under other privileges, restoring the caller's afterwards (even on error).
    pub fn with_perms<T>(&mut self, perms: Perms, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        let saved = self.set_perms(perms);
        let result = f(self);
        self.perms = saved;
        result
    }

    /// The static grant for `action` on documents of `coll`.
    pub fn grant(&self, coll: testudo_model::CollId, action: Action) -> Grant {
        match &self.perms.perms {
            // The common cases need no resource name.
            Perms::Admin
            | Perms::Server
            | Perms::ServerReadOnly
            | Perms::Nothing
            | Perms::Internal => authz::grant(&self.perms.perms, coll, "", action),
            Perms::Roles { .. } => {
                let resource = self.coll_name(coll);
                authz::grant(&self.perms.perms, coll, &resource, action)
            }
        }
    }

    /// Whether `grant` allows `action` on the live document `r` (`fields` are its current
    /// fields). Predicates judge the current version, also for history reads (so a right
    /// revoked today cannot be exercised by reading the past).
    pub fn grant_allows(
        &mut self,
        r: DocRef,
        fields: &Object,
        grant: &Grant,
        action: Action,
    ) -> R<bool> {
        if grant.always || (grant.if_owned && self.owned_by_identity(fields)) {
            return Ok(true);
        }
        if grant.predicates.is_empty() {
            return Ok(false);
        }
        let key = (r, action, self.perms.id);
        if let Some(&allowed) = self.decisions.entries.get(&key) {
            return Ok(allowed);
        }
        let saved_at = self.read_at.take();
        let saved_history = self.history_at.take();
        let result = self.any_predicate_holds(grant, || vec![Value::Doc(r)]);
        self.read_at = saved_at;
        self.history_at = saved_history;
        let allowed = result?;
        self.decisions.entries.insert(key, allowed);
        Ok(allowed)
    }

    /// Whether a write's predicates allow it, given their arguments (not remembered: the
    /// arguments carry the written data).
    pub fn write_predicates_allow(&mut self, grant: &Grant, args: Vec<Value>) -> R<bool> {
        self.any_predicate_holds(grant, || args.clone())
    }

    fn any_predicate_holds(&mut self, grant: &Grant, args: impl Fn() -> Vec<Value>) -> R<bool> {
        for (role, predicate) in &grant.predicates {
            if self.predicate_holds(role, predicate, args())? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Runs one role or membership predicate, failing closed.
    fn predicate_holds(&mut self, role: &RoleDef, p: &Predicate, args: Vec<Value>) -> R<bool> {
        let label = format!("role:{}", role.name);
        let mut args = args;
        // Each action passes a fixed list of arguments; a predicate takes the ones it names.
        if p.lambda.variadic.is_none() {
            args.resize(p.lambda.params.len(), Value::NULL);
        }
        let outcome = self.with_perms(Perms::Internal, |it| {
            it.read_only(|it| it.call_schema_lambda(&p.lambda, &label, &p.source, args))
        });
        match outcome {
            Ok(Value::Bool(true)) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) if matches!(e.code, ErrorCode::TimeOut | ErrorCode::Internal) => Err(e),
            Err(_) => Ok(false),
        }
    }

    /// Forgets remembered decisions: called on every write, since predicates may read what
    /// the write changed.
    pub fn forget_decisions(&mut self) {
        self.decisions.entries.clear();
        self.decisions.masks.clear();
    }

    /// Is this document the caller's own (its `document` field is the caller's identity)?
    pub fn owned_by_identity(&self, fields: &Object) -> bool {
        match (self.scope.identity, fields.get("document")) {
            (Some((coll, id)), Some(Value::Doc(d))) => d.coll == coll && d.id == id,
            _ => false,
        }
    }

    /// Checks the `call` privilege on a user function with its arguments.
    pub fn check_call(&mut self, def: &FunctionDef, args: &[Value]) -> R<()> {
        let grant = authz::call_grant(&self.perms.perms, &def.name);
        if grant.always {
            return Ok(());
        }
        let args = args.to_vec();
        if !grant.predicates.is_empty() && self.any_predicate_holds(&grant, || args.clone())? {
            return Ok(());
        }
        let reason = if grant.predicates.is_empty() {
            "no privilege"
        } else {
            "predicate false"
        };
        self.note_denial(Action::Call, def.name.clone(), reason);
        denied()
    }

    /// Remembers a refusal for the audit log (the last one is what failed the query).
    pub fn note_denial(&self, action: Action, resource: String, reason: &str) {
        if self.shared.audit.is_some() {
            self.trail.borrow_mut().denial =
                Some((action.name().to_string(), resource, reason.to_string()));
        }
    }

    /// Runs a function body under its `role`, if it has one (the caller's identity stays).
    pub fn run_as_function_role<T>(
        &mut self,
        def: &FunctionDef,
        f: impl FnOnce(&mut Self) -> R<T>,
    ) -> R<T> {
        match (&def.role, &self.perms.perms) {
            // Predicates keep their fixed internal rights inside functions they call.
            (_, Perms::Internal) | (None, _) => f(self),
            (Some(role), _) => {
                if self.shared.audit.is_some() {
                    self.trail
                        .borrow_mut()
                        .elevated
                        .push((def.name.clone(), role.clone()));
                }
                let perms = perms_of_role(&self.schema, role);
                self.with_perms(perms, f)
            }
        }
    }

    /// Refuses to create or change a function that would run with more rights than the
    /// caller has.
    pub fn check_function_role(&self, role: &str) -> R<()> {
        if authz::may_assign_function_role(&self.perms.perms, role) {
            return Ok(());
        }
        let message = match &self.perms.perms {
            Perms::Server => {
                "Cannot create a function with admin permissions using the server role.".to_string()
            }
            _ => format!(
                "Cannot create a function with role `{role}`: a function may not run with more privileges than its author."
            ),
        };
        fail(ErrorCode::PermissionDenied, message)
    }
}

impl Interp<'_> {
    /// The masking rules of the caller's `action` read of the user document `r`, which the
    /// gate allowed: none unless custom roles in force mask fields of its collection. Each
    /// role whose read privilege holds for the document contributes its rules, and they
    /// combine as `mask::combine` says.
    pub fn field_rules_for(&mut self, r: DocRef, action: Action) -> R<Option<Rules>> {
        if !r.coll.is_user() {
            return Ok(None);
        }
        let Perms::Roles { roles, .. } = &self.perms.perms else {
            return Ok(None);
        };
        let resource = self.coll_name(r.coll);
        if !roles
            .iter()
            .any(|role| role.field_rules(&resource).is_some())
        {
            return Ok(None);
        }
        let key = (r, action, self.perms.id);
        if let Some(rules) = self.decisions.masks.get(&key) {
            return Ok(rules.clone());
        }
        let roles = roles.clone();
        let mut granting = Vec::new();
        for role in &roles {
            let holds = match role.policy(&resource, action) {
                Some(Policy::Allow) => true,
                Some(Policy::Predicate(p)) => {
                    let p = p.clone();
                    let saved_at = self.read_at.take();
                    let saved_history = self.history_at.take();
                    let held = self.predicate_holds(role, &p, vec![Value::Doc(r)]);
                    self.read_at = saved_at;
                    self.history_at = saved_history;
                    held?
                }
                None => false,
            };
            if holds {
                granting.push(role.field_rules(&resource).cloned().unwrap_or_default());
            }
        }
        let rules = mask::combine(&granting);
        let rules = (!rules.is_empty()).then(|| Arc::new(rules));
        self.decisions.masks.insert(key, rules.clone());
        Ok(rules)
    }

    /// Refuses an index lookup that would reveal a field the caller sees masked, through its
    /// terms or through its order. Decided from the roles alone: if any role reads the
    /// collection outright without masks, nothing is masked for it; otherwise any role's
    /// rule that the index covers refuses it.
    pub fn check_index_masks(&self, coll: testudo_model::CollId, index: &IndexDef) -> R<()> {
        let Perms::Roles { roles, .. } = &self.perms.perms else {
            return Ok(());
        };
        if !coll.is_user() {
            return Ok(());
        }
        let resource = self.coll_name(coll);
        let action = self.read_action();
        let unmasked = roles.iter().any(|role| {
            matches!(role.policy(&resource, action), Some(Policy::Allow))
                && role.field_rules(&resource).is_none()
        });
        if unmasked {
            return Ok(());
        }
        for role in roles {
            if let Some(rules) = role.field_rules(&resource)
                && let Some(field) = mask::index_reveals(index, rules)
            {
                return fail(
                    ErrorCode::PermissionDenied,
                    format!(
                        "The index `{}` covers the field `{field}`, which role `{}` sees masked: use a full scan with `where` instead.",
                        index.name, role.name
                    ),
                );
            }
        }
        Ok(())
    }
}

pub fn denied<T>() -> R<T> {
    fail(
        ErrorCode::PermissionDenied,
        "Insufficient privileges to perform the action.",
    )
}
