//! The authorization gate: the one place that decides whether a scope may read or write a
//! document of a collection.
//!
//! Every document read and write in the evaluator asks [`decide`] (through `Interp`'s
//! document methods in `docs.rs`, which are the only code that touches document keys).
//! Role predicates and membership (custom roles) arrive with the authorization issue and
//! plug in here. **Invariant:** unknown or unlisted cases deny.

use testudo_model::CollId;

use crate::api::{Role, Scope};
use crate::schema;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Write,
    Delete,
}

/// The gate's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// Allowed only for a document whose `document` field is the caller's identity (a
    /// token's baseline right to its own credential and tokens).
    IfOwnedByIdentity,
}

/// Collections only an admin may touch (Fauna's engine: the `server` roles are excluded
/// from these; tokens and credentials are NOT excluded).
fn admin_only(coll: CollId) -> bool {
    matches!(
        coll,
        schema::ROLE | schema::ACCESS_PROVIDER | schema::DATABASE | schema::KEY
    )
}

pub fn decide(scope: &Scope, coll: CollId, action: Action) -> Decision {
    let allow = |b: bool| if b { Decision::Allow } else { Decision::Deny };
    match &scope.role {
        Role::Admin => Decision::Allow,
        Role::Server => allow(!admin_only(coll)),
        Role::ServerReadOnly => allow(action == Action::Read && !admin_only(coll)),
        Role::Client | Role::Custom(_) => Decision::Deny,
        Role::Token => match (coll, action) {
            (schema::CREDENTIAL, Action::Read) | (schema::TOKEN, Action::Read | Action::Delete)
                if scope.identity.is_some() =>
            {
                Decision::IfOwnedByIdentity
            }
            _ => Decision::Deny,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testudo_model::{DbId, DocId};

    const USER: CollId = CollId(CollId::FIRST_USER + 7);
    const ALL: [Action; 4] = [Action::Read, Action::Create, Action::Write, Action::Delete];

    fn scope(role: Role) -> Scope {
        let mut s = Scope::admin(DbId::ROOT);
        s.role = role;
        s
    }

    fn token_scope() -> Scope {
        let mut s = scope(Role::Token);
        s.identity = Some((USER, DocId(1)));
        s.token = Some(DocId(2));
        s
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
            for action in ALL {
                assert_eq!(
                    decide(&scope(Role::Admin), coll, action),
                    Decision::Allow,
                    "{coll:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn server_may_use_documents_and_schema_but_not_access_control() {
        let s = scope(Role::Server);
        for action in ALL {
            for allowed in [
                USER,
                schema::COLLECTION,
                schema::FUNCTION,
                schema::TOKEN,
                schema::CREDENTIAL,
            ] {
                assert_eq!(
                    decide(&s, allowed, action),
                    Decision::Allow,
                    "{allowed:?} {action:?}"
                );
            }
            for denied in [
                schema::KEY,
                schema::ROLE,
                schema::DATABASE,
                schema::ACCESS_PROVIDER,
            ] {
                assert_eq!(
                    decide(&s, denied, action),
                    Decision::Deny,
                    "{denied:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn server_readonly_may_only_read() {
        let s = scope(Role::ServerReadOnly);
        assert_eq!(decide(&s, USER, Action::Read), Decision::Allow);
        for action in [Action::Create, Action::Write, Action::Delete] {
            assert_eq!(decide(&s, USER, action), Decision::Deny);
        }
        assert_eq!(decide(&s, schema::KEY, Action::Read), Decision::Deny);
    }

    #[test]
    fn client_and_unresolved_custom_roles_may_do_nothing() {
        for role in [Role::Client, Role::Custom("customer".into())] {
            for coll in [USER, schema::COLLECTION, schema::TOKEN] {
                for action in ALL {
                    assert_eq!(decide(&scope(role.clone()), coll, action), Decision::Deny);
                }
            }
        }
    }

    #[test]
    fn a_token_may_read_its_credential_and_read_or_delete_its_tokens_only() {
        let s = token_scope();
        assert_eq!(
            decide(&s, schema::CREDENTIAL, Action::Read),
            Decision::IfOwnedByIdentity
        );
        assert_eq!(
            decide(&s, schema::TOKEN, Action::Read),
            Decision::IfOwnedByIdentity
        );
        assert_eq!(
            decide(&s, schema::TOKEN, Action::Delete),
            Decision::IfOwnedByIdentity
        );
        for (coll, action) in [
            (schema::CREDENTIAL, Action::Write),
            (schema::CREDENTIAL, Action::Delete),
            (schema::TOKEN, Action::Create),
            (schema::TOKEN, Action::Write),
            (USER, Action::Read),
            (schema::KEY, Action::Read),
        ] {
            assert_eq!(
                decide(&s, coll, action),
                Decision::Deny,
                "{coll:?} {action:?}"
            );
        }
    }
}
