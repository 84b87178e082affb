//! `Query`: facts about the running query (`identity`, `token`, `isEnvTypechecked`,
//! `isEnvProtected`).
//!
//! Keys carry no identity and there are no tokens yet, so `identity()` and `token()` are
//! null; databases are never typechecked or protected here. **Invariants:** nothing here
//! reads documents; `isEnvProtected()` answers only admin secrets (others get
//! `permission_denied`, as in Fauna).

use super::{MethodDef, def, exactly};
use crate::api::{ErrorCode, Role};
use crate::eval::{NullCause, Value, fail};

pub fn method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "identity" => def("identity", exactly(0), |_, _, _| {
            Ok(Value::Null(NullCause::NoSuchElement("missing identity")))
        }),
        "token" => def("token", exactly(0), |_, _, _| {
            Ok(Value::Null(NullCause::NoSuchElement("no token")))
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
            Ok(Value::Bool(false))
        }),
        _ => return None,
    })
}
