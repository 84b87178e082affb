//! The authorization gate: the one place that decides whether a scope may read or write a
//! document of a collection.
//!
//! Every document read and write in the evaluator calls [`allows`] (through `Interp`'s
//! document methods in `docs.rs`, which are the only code that touches document keys).
//! Role predicates, membership and custom roles arrive with the authorization issue and
//! plug in here. **Invariant:** unknown or unlisted cases deny.

use testudo_model::CollId;

use crate::api::Role;
use crate::schema;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Write,
    Delete,
}

/// Collections only an admin may touch (Fauna's engine: the `server` roles are excluded
/// from these; tokens and credentials are NOT excluded).
fn admin_only(coll: CollId) -> bool {
    matches!(
        coll,
        schema::ROLE | schema::ACCESS_PROVIDER | schema::DATABASE | schema::KEY
    )
}

pub fn allows(role: Role, coll: CollId, action: Action) -> bool {
    match role {
        Role::Admin => true,
        Role::Server => !admin_only(coll),
        Role::ServerReadOnly => action == Action::Read && !admin_only(coll),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: CollId = CollId(CollId::FIRST_USER + 7);
    const ALL: [Action; 4] = [Action::Read, Action::Create, Action::Write, Action::Delete];

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
                assert!(allows(Role::Admin, coll, action), "{coll:?} {action:?}");
            }
        }
    }

    #[test]
    fn server_may_use_documents_and_schema_but_not_access_control() {
        for action in ALL {
            assert!(allows(Role::Server, USER, action));
            assert!(allows(Role::Server, schema::COLLECTION, action));
            assert!(allows(Role::Server, schema::TOKEN, action));
            assert!(allows(Role::Server, schema::CREDENTIAL, action));
            for denied in [
                schema::KEY,
                schema::ROLE,
                schema::DATABASE,
                schema::ACCESS_PROVIDER,
            ] {
                assert!(
                    !allows(Role::Server, denied, action),
                    "{denied:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn server_readonly_may_only_read() {
        assert!(allows(Role::ServerReadOnly, USER, Action::Read));
        for action in [Action::Create, Action::Write, Action::Delete] {
            assert!(!allows(Role::ServerReadOnly, USER, action));
        }
        assert!(!allows(Role::ServerReadOnly, schema::KEY, Action::Read));
    }
}
