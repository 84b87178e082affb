//! `Query`: facts about the running query (`identity`, `token`, `isEnvTypechecked`,
//! `isEnvProtected`).
//!
//! `identity()` and `token()` describe a token secret (null for keys and the root secret);
//! `isEnvProtected()` reads the database's inherited `protected` flag. Databases here are
//! never typechecked. **Invariants:** `isEnvProtected()` answers only admin secrets (others
//! get `permission_denied`, as in Fauna).

use super::{MethodDef, def, exactly};
use crate::api::{ErrorCode, Role};
use crate::eval::{DocRef, NullCause, Value, fail};

pub fn method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "identity" => def("identity", exactly(0), |it, _, _| {
            Ok(match it.scope.identity {
                Some((coll, id)) => Value::Doc(DocRef { coll, id }),
                None => Value::Null(NullCause::NoSuchElement("missing identity")),
            })
        }),
        "token" => def("token", exactly(0), |it, _, _| {
            if let Role::Jwt(jwt) = &it.scope.role {
                return Ok(crate::docs::from_data(jwt.claims.clone(), None));
            }
            Ok(match it.scope.token {
                Some(id) => Value::Doc(DocRef {
                    coll: crate::schema::TOKEN,
                    id,
                }),
                None => Value::Null(NullCause::NoSuchElement("no token")),
            })
        }),
        "isEnvTypechecked" => def("isEnvTypechecked", exactly(0), |_, _, _| {
            Ok(Value::Bool(false))
        }),
        "isEnvProtected" => def("isEnvProtected", exactly(0), |it, _, _| {
            if it.scope.role != Role::Admin {
                return fail(
                    ErrorCode::PermissionDenied,
                    "Insufficient privileges to perform the action.",
                );
            }
            let db = it.db();
            Ok(Value::Bool(crate::tenancy::inherited_flag(
                &mut it.txn,
                db,
                "protected",
                false,
            )?))
        }),
        _ => return None,
    })
}
