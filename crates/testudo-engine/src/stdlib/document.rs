//! Document methods: `exists`, `update`, `updateData`, `replace`, `replaceData`, `delete`.
//! Collection definition documents route to the schema code.

use super::args::{arg, object_arg};
use super::collection::{delete_definition, user_fields, write_definition};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::authz::Action;
use crate::docs::{fields_to_data, merge_patch, object_to_data};
use crate::eval::{DocRef, Interp, R, Value, err};
use crate::schema::{ACCESS_PROVIDER, COLLECTION, DATABASE, FUNCTION, ROLE};

pub fn method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "exists" => def("exists", exactly(0), |it, r, _| {
            Ok(Value::Bool(it.doc_exists(recv(r)?)?))
        }),
        "update" => def("update", exactly(1), |it, r, a| {
            write(it, recv(r)?, &arg(&a, 0), false, false)
        }),
        "updateData" => def("updateData", exactly(1), |it, r, a| {
            write(it, recv(r)?, &arg(&a, 0), false, true)
        }),
        "replace" => def("replace", exactly(1), |it, r, a| {
            write(it, recv(r)?, &arg(&a, 0), true, false)
        }),
        "replaceData" => def("replaceData", exactly(1), |it, r, a| {
            write(it, recv(r)?, &arg(&a, 0), true, true)
        }),
        "delete" => def("delete", exactly(0), |it, r, _| {
            let r = recv(r)?;
            if r.coll == COLLECTION || r.coll == FUNCTION {
                return delete_definition(it, r);
            }
            if r.coll == DATABASE {
                return super::database::delete_database(it, r);
            }
            it.check_writable("delete")?;
            it.require_doc(r)?;
            it.delete_doc_version(r)?;
            if r.coll == ROLE || r.coll == ACCESS_PROVIDER {
                it.bump_schema();
            }
            Ok(Value::Doc(r))
        }),
        _ => return None,
    })
}

fn recv(v: &Value) -> R<DocRef> {
    match v {
        Value::Doc(r) => Ok(*r),
        _ => Err(err(
            ErrorCode::Internal,
            "document method called on a non-document",
        )),
    }
}

/// `update` merges (objects key by key, `null` removes); `replace` swaps all user fields
/// and keeps meta fields (a `ttl` not given stays as it was).
fn write(it: &mut Interp<'_>, r: DocRef, input: &Value, replace: bool, as_data: bool) -> R<Value> {
    let verb = if replace { "replace" } else { "update" };
    let patch = object_arg(input, "data")?;
    if r.coll == COLLECTION {
        return write_definition(it, r, &patch, replace);
    }
    if r.coll == FUNCTION {
        return super::function::write_definition(it, r, &patch, replace);
    }
    if r.coll == DATABASE {
        return super::database::write_definition(it, r, &patch, replace);
    }
    if r.coll == ROLE {
        return super::role::write_role(it, r, &patch, replace);
    }
    if r.coll == ACCESS_PROVIDER {
        return super::access_provider::write_provider(it, r, &patch, replace);
    }
    if r.coll == crate::schema::CREDENTIAL {
        return super::access::write_credential(it, r, &patch, replace);
    }
    it.check_writable(verb)?;
    let current = it.require_stored_doc(r)?;
    let (fields, ttl, _) = user_fields(it, r.coll, &patch, as_data, false, verb)?;
    let stored = if replace {
        object_to_data(&fields, 1)?
    } else {
        let mut base = fields_to_data(&current)?;
        merge_patch(&mut base, &fields)?;
        base
    };
    let ttl = match ttl {
        Some(new) => new,
        None => current.ttl,
    };
    it.put_doc(r, Action::Write, verb, stored, ttl)?;
    Ok(Value::Doc(r))
}
