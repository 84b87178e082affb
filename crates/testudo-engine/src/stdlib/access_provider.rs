//! The `AccessProvider` system module (`AccessProvider.create`, `byName`, `all`, `where`,
//! `firstWhere`) and writes to provider documents. Only an admin may write them (the gate
//! refuses everyone else, whatever their roles list).

use super::args::arg;
use super::{MethodDef, def, exactly};
use crate::eval::{DocRef, Interp, Object, R, Value};
use crate::schema::{ACCESS_PROVIDER, access_provider::validate};

pub fn module_method(name: &str) -> Option<MethodDef> {
    match name {
        "create" => Some(def("create", exactly(1), |it, _, a| {
            super::system::create_schema_doc(it, ACCESS_PROVIDER, &arg(&a, 0), validate)
        })),
        other => super::system::listing_method_for(ACCESS_PROVIDER, other),
    }
}

/// Updates or replaces an access provider document.
pub fn write_provider(it: &mut Interp<'_>, r: DocRef, patch: &Object, replace: bool) -> R<Value> {
    super::system::write_schema_doc(it, r, patch, replace, validate)
}
