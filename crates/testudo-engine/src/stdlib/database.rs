//! The `Database` system module: child databases as documents of their parent.

use testudo_model::{DataMap, DbId, DocId};

use super::args::{arg, object_arg};
use super::{MethodDef, def, exactly};
use crate::authz::Action;
use crate::eval::{DocRef, Interp, Object, R, Value};
use crate::schema::collection::{constraint_error, failure};
use crate::schema::{DATABASE, database::validate};
use crate::{keys, tenancy};

pub fn database_module_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "create" => def("create", exactly(1), |it, _, a| {
            it.check_writable("create")?;
            let input = object_arg(&arg(&a, 0), "definition")?;
            let db = it.db();
            if tenancy::depth(&mut it.txn, db)? >= tenancy::MAX_DEPTH {
                return Err(constraint_error(
                    "Failed to create document in collection Database.",
                    vec![failure(
                        "name",
                        format!("Databases nest at most {} levels deep.", tenancy::MAX_DEPTH),
                    )],
                ));
            }
            let child = DbId(it.new_id().0);
            let stored = validate(it, &input, child, "create")?;
            let r = DocRef {
                coll: DATABASE,
                id: DocId(child.0),
            };
            it.put_doc(r, Action::Create, "create", stored, None)?;
            // The child's registry entry and schema marker: it exists from this commit on.
            it.txn
                .put(keys::db_parent(child), it.db().0.to_be_bytes().to_vec());
            it.txn.put(keys::schema_marker(child), Vec::new());
            Ok(Value::Doc(r))
        }),
        other => return super::system::listing_method_for(DATABASE, other),
    })
}

/// Updates or replaces a database document (rename, flags, data).
pub fn write_definition(it: &mut Interp<'_>, r: DocRef, patch: &Object, replace: bool) -> R<Value> {
    let verb = if replace { "replace" } else { "update" };
    it.check_writable(verb)?;
    let current = it.require_doc(r)?;
    let merged: Object = if replace {
        patch.clone()
    } else {
        let mut base: DataMap = crate::docs::fields_to_data(&current)?;
        crate::docs::merge_patch(&mut base, patch)?;
        base.into_iter()
            .map(|(k, v)| (k, crate::docs::from_data(v, None)))
            .collect()
    };
    let stored = validate(it, &merged, DbId(r.id.0), verb)?;
    it.put_doc(r, Action::Write, verb, stored, None)?;
    it.auth_changed = true;
    Ok(Value::Doc(r))
}

/// Deletes a child database: it and every descendant become unreachable when this commits
/// (their secrets stop working); their data is reclaimed in the background.
pub fn delete_database(it: &mut Interp<'_>, r: DocRef) -> R<Value> {
    it.refuse_if_protected("delete a database")?;
    it.require_doc(r)?;
    it.delete_doc_version(r)?;
    it.txn.put(keys::db_garbage(DbId(r.id.0)), Vec::new());
    it.auth_changed = true;
    Ok(Value::Doc(r))
}
