//! The authorization gate's rules: which privileges are in force ([`Perms`]) and what they
//! say about one action on one resource ([`Grant`]).
//!
//! This module decides statically; the evaluator (`gate.rs`) applies a [`Grant`] to a
//! concrete document, running the role predicates it carries. Every document read and write
//! and every function call asks [`grant`] / [`call_grant`] first.
//!
//! How rights combine follows Fauna: privileges are an allow-list, the policies of all the
//! caller's roles are OR-ed (one `true` settles it), there are no deny rules, and anything
//! not granted is denied. Two deliberate hardenings over Fauna: only an admin secret may
//! write the access-control collections (`Role`, `Key`, `AccessProvider`, `Database`),
//! whatever a custom role's privileges say, because each of them can mint stronger
//! rights; and predicates run under [`Perms::Internal`], which can read documents but never
//! the access-control collections and never write.
//!
//! **Invariants:** unknown or unlisted cases deny; a grant is never wider than the union of
//! the roles in force.

use std::sync::Arc;

use testudo_model::CollId;

use crate::schema;
use crate::schema::role::{Policy, Predicate, RoleDef};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Create,
    /// A create with a caller-chosen id.
    CreateWithId,
    Write,
    Delete,
    /// Reads at a past snapshot (`at(ts) { ... }`).
    HistoryRead,
    /// Writes into history (Fauna v4 only; accepted in role definitions, never granted use).
    HistoryWrite,
    /// Reading a set without the per-document read check.
    UnrestrictedRead,
    Call,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::Read,
        Action::Create,
        Action::CreateWithId,
        Action::Write,
        Action::Delete,
        Action::HistoryRead,
        Action::HistoryWrite,
        Action::UnrestrictedRead,
        Action::Call,
    ];

    /// The action a role definition names (`read`, `create_with_id`, ...).
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::CreateWithId => "create_with_id",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::HistoryRead => "history_read",
            Action::HistoryWrite => "history_write",
            Action::UnrestrictedRead => "unrestricted_read",
            Action::Call => "call",
        }
    }

    fn reads(self) -> bool {
        matches!(
            self,
            Action::Read | Action::HistoryRead | Action::UnrestrictedRead
        )
    }
}

/// The privileges in force at one point of a query: the caller's, a function's role while
/// its body runs, or the internal set predicates run under.
#[derive(Clone, Debug)]
pub enum Perms {
    Admin,
    Server,
    ServerReadOnly,
    /// No rights at all: the legacy `client` role, or a key whose role does not exist.
    Nothing,
    /// Custom roles. `token` adds the baseline every token has: read its own credential,
    /// read and delete its own tokens.
    Roles {
        roles: Vec<Arc<RoleDef>>,
        token: bool,
    },
    /// What role and membership predicates run under: read any document except the
    /// access-control collections, call functions, write nothing.
    Internal,
}

/// What the privileges in force say about one action on one resource.
#[derive(Debug, Default)]
pub struct Grant {
    /// Allowed outright.
    pub always: bool,
    /// Allowed for a document whose `document` field is the caller's identity.
    pub if_owned: bool,
    /// Allowed when any of these predicates (with the role that holds it) returns `true`.
    pub predicates: Vec<(Arc<RoleDef>, Predicate)>,
}

impl Grant {
    fn allow(yes: bool) -> Grant {
        Grant {
            always: yes,
            ..Grant::default()
        }
    }

    /// Nothing could allow the action, whatever the document.
    pub fn never(&self) -> bool {
        !self.always && !self.if_owned && self.predicates.is_empty()
    }
}

/// Collections whose documents decide what secrets may do: writing them mints or changes
/// rights, so only an admin may.
fn access_control(coll: CollId) -> bool {
    matches!(
        coll,
        schema::ROLE | schema::ACCESS_PROVIDER | schema::DATABASE | schema::KEY
    )
}

/// What `perms` allows for `action` on documents of `coll`, whose resource name (the user
/// collection's name, or the system collection's) is `resource`.
pub fn grant(perms: &Perms, coll: CollId, resource: &str, action: Action) -> Grant {
    // FQL v10 has no history writes; a role may list the action, but nothing uses it.
    if action == Action::HistoryWrite {
        return Grant::default();
    }
    match perms {
        Perms::Admin => Grant::allow(true),
        Perms::Server => Grant::allow(!access_control(coll)),
        Perms::ServerReadOnly | Perms::Internal => {
            Grant::allow(action.reads() && !access_control(coll))
        }
        Perms::Nothing => Grant::default(),
        Perms::Roles { roles, token } => {
            if access_control(coll) && !action.reads() {
                return Grant::default();
            }
            let mut g = Grant {
                if_owned: *token && token_baseline(coll, action),
                ..Grant::default()
            };
            for role in roles {
                match role.policy(resource, action) {
                    Some(Policy::Allow) => return Grant::allow(true),
                    Some(Policy::Predicate(p)) => g.predicates.push((role.clone(), p.clone())),
                    None => {}
                }
            }
            g
        }
    }
}

/// What `perms` allows for calling the function named `function`.
pub fn call_grant(perms: &Perms, function: &str) -> Grant {
    match perms {
        Perms::Admin | Perms::Server | Perms::ServerReadOnly | Perms::Internal => {
            Grant::allow(true)
        }
        Perms::Nothing => Grant::default(),
        Perms::Roles { roles, .. } => {
            let mut g = Grant::default();
            for role in roles {
                match role.policy(function, Action::Call) {
                    Some(Policy::Allow) => return Grant::allow(true),
                    Some(Policy::Predicate(p)) => g.predicates.push((role.clone(), p.clone())),
                    None => {}
                }
            }
            g
        }
    }
}

/// Every token may read its own credential and read or delete its own tokens (so it can
/// log itself out).
fn token_baseline(coll: CollId, action: Action) -> bool {
    matches!(
        (coll, action),
        (schema::CREDENTIAL, Action::Read) | (schema::TOKEN, Action::Read | Action::Delete)
    )
}

/// May a caller under `creator` create or change a function that runs as `role`? A function
/// must never run with more rights than its author has: an admin may give any role, a
/// server key any role but `admin` (Fauna's rule), and a custom role only a role it holds
/// itself (stricter than Fauna, which leaves custom roles unchecked).
pub fn may_assign_function_role(creator: &Perms, role: &str) -> bool {
    match creator {
        Perms::Admin => true,
        Perms::Server => role != "admin",
        Perms::Roles { roles, .. } => roles.iter().any(|r| r.name == role),
        Perms::ServerReadOnly | Perms::Nothing | Perms::Internal => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::role::RoleDef;
    use testudo_model::{Data, DataMap, DocId};

    const USER: CollId = CollId(CollId::FIRST_USER + 7);
    const WRITES: [Action; 4] = [
        Action::Create,
        Action::CreateWithId,
        Action::Write,
        Action::Delete,
    ];
    const ACCESS: [CollId; 4] = [
        schema::KEY,
        schema::ROLE,
        schema::DATABASE,
        schema::ACCESS_PROVIDER,
    ];

    fn role(name: &str, privileges: &[(&str, &[(&str, Data)])]) -> Arc<RoleDef> {
        let mut fields = DataMap::new();
        fields.insert("name".into(), Data::String(name.into()));
        let privileges = privileges
            .iter()
            .map(|(resource, actions)| {
                let mut p = DataMap::new();
                p.insert("resource".into(), Data::String((*resource).into()));
                let mut a = DataMap::new();
                for (action, policy) in *actions {
                    a.insert((*action).into(), policy.clone());
                }
                p.insert("actions".into(), Data::Object(a));
                Data::Object(p)
            })
            .collect();
        fields.insert("privileges".into(), Data::Array(privileges));
        Arc::new(RoleDef::from_stored(DocId(1), &fields))
    }

    fn roles(list: Vec<Arc<RoleDef>>, token: bool) -> Perms {
        Perms::Roles { roles: list, token }
    }

    fn pred(src: &str) -> Data {
        Data::String(src.into())
    }

    #[test]
    fn admin_may_do_everything_everywhere() {
        for coll in [
            USER,
            schema::KEY,
            schema::ROLE,
            schema::DATABASE,
            schema::COLLECTION,
        ] {
            for action in Action::ALL {
                if action == Action::HistoryWrite {
                    continue;
                }
                assert!(
                    grant(&Perms::Admin, coll, "R", action).always,
                    "{coll:?} {action:?}"
                );
            }
        }
        assert!(call_grant(&Perms::Admin, "f").always);
    }

    #[test]
    fn server_may_use_documents_and_schema_but_not_access_control() {
        for action in [Action::Read, Action::Create, Action::Write, Action::Delete] {
            for allowed in [
                USER,
                schema::COLLECTION,
                schema::FUNCTION,
                schema::TOKEN,
                schema::CREDENTIAL,
            ] {
                assert!(
                    grant(&Perms::Server, allowed, "R", action).always,
                    "{allowed:?} {action:?}"
                );
            }
            for denied in ACCESS {
                assert!(
                    grant(&Perms::Server, denied, "R", action).never(),
                    "{denied:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn server_readonly_may_only_read() {
        assert!(grant(&Perms::ServerReadOnly, USER, "R", Action::Read).always);
        assert!(grant(&Perms::ServerReadOnly, USER, "R", Action::HistoryRead).always);
        for action in WRITES {
            assert!(grant(&Perms::ServerReadOnly, USER, "R", action).never());
        }
        assert!(grant(&Perms::ServerReadOnly, schema::KEY, "Key", Action::Read).never());
    }

    #[test]
    fn history_writes_are_never_granted() {
        let r = role("w", &[("R", &[("history_write", Data::Bool(true))])]);
        for perms in [Perms::Admin, Perms::Server, roles(vec![r], false)] {
            assert!(grant(&perms, USER, "R", Action::HistoryWrite).never());
        }
    }

    #[test]
    fn client_and_missing_roles_may_do_nothing() {
        for action in Action::ALL {
            assert!(grant(&Perms::Nothing, USER, "R", action).never());
            assert!(grant(&roles(vec![], false), USER, "R", action).never());
        }
        assert!(call_grant(&Perms::Nothing, "f").never());
        assert!(call_grant(&roles(vec![], false), "f").never());
    }

    #[test]
    fn a_custom_role_grants_exactly_the_actions_it_lists_on_its_resources() {
        let r = role(
            "reader",
            &[(
                "R",
                &[("read", Data::Bool(true)), ("write", Data::Bool(false))],
            )],
        );
        let p = roles(vec![r], false);
        assert!(grant(&p, USER, "R", Action::Read).always);
        for action in [
            Action::Write,
            Action::Create,
            Action::Delete,
            Action::HistoryRead,
        ] {
            assert!(grant(&p, USER, "R", action).never(), "{action:?}");
        }
        assert!(grant(&p, USER, "Other", Action::Read).never());
    }

    #[test]
    fn a_predicate_policy_is_carried_for_evaluation_and_not_granted_outright() {
        let r = role(
            "own",
            &[(
                "R",
                &[("read", pred("doc => doc.owner == Query.identity()"))],
            )],
        );
        let g = grant(&roles(vec![r], false), USER, "R", Action::Read);
        assert!(!g.always);
        assert_eq!(g.predicates.len(), 1);
    }

    #[test]
    fn roles_combine_by_or_and_one_outright_grant_settles_it() {
        let a = role("a", &[("R", &[("read", pred("doc => false"))])]);
        let b = role("b", &[("R", &[("read", Data::Bool(true))])]);
        let c = role("c", &[("R", &[("delete", pred("doc => true"))])]);
        let p = roles(vec![a.clone(), b, c.clone()], false);
        assert!(grant(&p, USER, "R", Action::Read).always);
        let only_predicates = roles(vec![a, c], false);
        assert_eq!(
            grant(&only_predicates, USER, "R", Action::Read)
                .predicates
                .len(),
            1
        );
        assert_eq!(
            grant(&only_predicates, USER, "R", Action::Delete)
                .predicates
                .len(),
            1
        );
    }

    #[test]
    fn custom_roles_never_write_access_control_collections_whatever_they_list() {
        let r = role(
            "escalate",
            &[
                (
                    "Key",
                    &[("create", Data::Bool(true)), ("read", Data::Bool(true))],
                ),
                ("Role", &[("write", Data::Bool(true))]),
            ],
        );
        let p = roles(vec![r], false);
        assert!(grant(&p, schema::KEY, "Key", Action::Create).never());
        assert!(grant(&p, schema::ROLE, "Role", Action::Write).never());
        assert!(grant(&p, schema::KEY, "Key", Action::Read).always);
    }

    #[test]
    fn a_token_may_read_its_credential_and_read_or_delete_its_tokens_only() {
        let p = roles(vec![], true);
        assert!(grant(&p, schema::CREDENTIAL, "Credential", Action::Read).if_owned);
        assert!(grant(&p, schema::TOKEN, "Token", Action::Read).if_owned);
        assert!(grant(&p, schema::TOKEN, "Token", Action::Delete).if_owned);
        for (coll, action) in [
            (schema::CREDENTIAL, Action::Write),
            (schema::CREDENTIAL, Action::Delete),
            (schema::TOKEN, Action::Create),
            (schema::TOKEN, Action::Write),
            (USER, Action::Read),
            (schema::KEY, Action::Read),
        ] {
            assert!(grant(&p, coll, "X", action).never(), "{coll:?} {action:?}");
        }
        // A key with the same (empty) roles has no baseline.
        assert!(grant(&roles(vec![], false), schema::TOKEN, "Token", Action::Read).never());
    }

    #[test]
    fn predicates_run_with_read_rights_but_never_over_access_control_or_writes() {
        assert!(grant(&Perms::Internal, USER, "R", Action::Read).always);
        assert!(grant(&Perms::Internal, schema::TOKEN, "Token", Action::Read).always);
        for coll in ACCESS {
            assert!(grant(&Perms::Internal, coll, "X", Action::Read).never());
        }
        for action in WRITES {
            assert!(grant(&Perms::Internal, USER, "R", action).never());
        }
    }

    #[test]
    fn calls_need_the_call_privilege_on_that_function() {
        let r = role("caller", &[("inventory", &[("call", Data::Bool(true))])]);
        let p = roles(vec![r], true);
        assert!(call_grant(&p, "inventory").always);
        assert!(call_grant(&p, "other").never());
        assert!(call_grant(&Perms::Server, "anything").always);
    }

    #[test]
    fn a_function_never_runs_with_more_rights_than_its_author() {
        let mine = role("mine", &[]);
        let p = roles(vec![mine], false);
        assert!(may_assign_function_role(&Perms::Admin, "admin"));
        assert!(may_assign_function_role(&Perms::Server, "server"));
        assert!(may_assign_function_role(&Perms::Server, "custom"));
        assert!(!may_assign_function_role(&Perms::Server, "admin"));
        assert!(may_assign_function_role(&p, "mine"));
        for stronger in ["admin", "server", "server-readonly", "other"] {
            assert!(!may_assign_function_role(&p, stronger), "{stronger}");
        }
        assert!(!may_assign_function_role(
            &Perms::ServerReadOnly,
            "server-readonly"
        ));
    }
}
