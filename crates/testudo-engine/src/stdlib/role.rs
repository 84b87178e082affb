//! The `Role` system module (`Role.create`, `byName`, `all`, `where`, `firstWhere`) and
//! writes to role documents. Roles are schema: every change moves the schema version, so
//! the next query (and every cached authentication) sees the new privileges.

use super::args::arg;
use super::{MethodDef, def, exactly};
use crate::eval::{DocRef, Interp, Object, R, Value};
use crate::schema::{ROLE, role::validate};

pub fn role_module_method(name: &str) -> Option<MethodDef> {
    match name {
        "create" => Some(def("create", exactly(1), |it, _, a| {
            super::system::create_schema_doc(it, ROLE, &arg(&a, 0), validate)
        })),
        other => super::system::listing_method_for(ROLE, other),
    }
}

/// Updates or replaces a role document.
pub fn write_role(it: &mut Interp<'_>, r: DocRef, patch: &Object, replace: bool) -> R<Value> {
    super::system::write_schema_doc(it, r, patch, replace, validate)
}
