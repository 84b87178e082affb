//! Methods every system collection module shares: `all`, `where`, `firstWhere`, and
//! `byName` (named documents: functions, roles, access providers, databases) or `byId`
//! (keys, tokens, credentials). The collection is the module the method is called on.
//!
//! **Invariants:** these only build sets and references; every document they yield is
//! read through the gate like any other.

use std::rc::Rc;

use testudo_model::{CollId, Data, DataMap, DocId};

use super::args::{arg, func_arg, set_value, str_arg};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::authz::Action;
use crate::eval::{DocRef, Interp, NullCause, Object, R, Value, err};
use crate::schema;
use crate::set::SetExpr;

/// Every document of a system collection, as a set.
pub fn all(it: &Interp<'_>, coll: CollId) -> SetExpr {
    SetExpr::Docs {
        coll,
        from: None,
        to: None,
        at: it.captured_at(),
    }
}

/// The system collection a module method was called on.
pub fn coll_of(module: &Value) -> R<CollId> {
    match module {
        Value::Module(m) => schema::system_by_name(m.name())
            .ok_or_else(|| err(ErrorCode::Internal, "not a system collection")),
        _ => Err(err(ErrorCode::Internal, "not a module")),
    }
}

/// The shared method `name` of `coll`'s module, if it has it.
pub fn listing_method_for(coll: CollId, name: &str) -> Option<MethodDef> {
    let named = schema::is_named(coll);
    Some(match name {
        "all" => def("all", exactly(0), |it, r, _| {
            Ok(set_value(all(it, coll_of(r)?)))
        }),
        "where" => def("where", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            Ok(set_value(SetExpr::Where(Rc::new(all(it, coll_of(r)?)), f)))
        }),
        "firstWhere" => def("firstWhere", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            let mut iter =
                crate::set::open(&Rc::new(all(it, coll_of(r)?)), &crate::set::Pos::Start)?;
            while let Some(v) = iter.next(it)? {
                if it.predicate(&f, v.clone())? {
                    return Ok(v);
                }
            }
            Ok(Value::Null(NullCause::NoSuchElement(
                "no matching document",
            )))
        }),
        "byName" if named => def("byName", exactly(1), |it, r, a| {
            let coll = coll_of(r)?;
            let name = str_arg(&arg(&a, 0), "name")?;
            for (id, fields) in schema::read_all(it.db(), coll, &mut it.txn)? {
                if fields.get("name") == Some(&Data::String(name.to_string())) {
                    return Ok(Value::Doc(DocRef { coll, id }));
                }
            }
            Ok(Value::Null(NullCause::NoSuchElement(
                "no document with that name",
            )))
        }),
        "byId" if !named => def("byId", exactly(1), |_, r, a| {
            let id = super::global::to_id(&arg(&a, 0), "id")?;
            Ok(Value::Doc(DocRef {
                coll: coll_of(r)?,
                id,
            }))
        }),
        _ => return None,
    })
}

/// Validates a whole schema document and returns its stored form (`own` is the document
/// being updated; `verb` names the write in error messages).
pub type Validator = fn(&mut Interp<'_>, &Object, Option<DocId>, &str) -> R<DataMap>;

/// Updates or replaces a schema document (function, role, access provider): the merged
/// definition is validated as a whole, written through the gate, and the schema version
/// moves on.
pub fn write_schema_doc(
    it: &mut Interp<'_>,
    r: DocRef,
    patch: &Object,
    replace: bool,
    validate: Validator,
) -> R<Value> {
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
    let stored = validate(it, &merged, Some(r.id), verb)?;
    it.put_doc(r, Action::Write, verb, stored, None)?;
    it.bump_schema();
    Ok(Value::Doc(r))
}

/// Creates a schema document from a validated definition and moves the schema version on.
pub fn create_schema_doc(
    it: &mut Interp<'_>,
    coll: CollId,
    input: &Value,
    validate: Validator,
) -> R<Value> {
    it.check_writable("create")?;
    let input = super::args::object_arg(input, "definition")?;
    let stored = validate(it, &input, None, "create")?;
    let r = DocRef {
        coll,
        id: it.new_id(),
    };
    it.put_doc(r, Action::Create, "create", stored, None)?;
    it.bump_schema();
    Ok(Value::Doc(r))
}
