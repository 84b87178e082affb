//! Collections as modules: user collections (`Product.create`, `Product.all()`,
//! `Product.byId`) and the `Collection` system module (`Collection.create`, `byName`).

use std::rc::Rc;

use testudo_model::{CollId, Data, DataMap, DocId, Time};

use super::args::{arg, expected, func_arg, object_arg, set_value, str_arg};
use super::global::to_id;
use super::{MethodDef, between, def, exactly};
use crate::api::ErrorCode;
use crate::authz::Action;
use crate::eval::value::CollHandle;
use crate::eval::{DocRef, Interp, Module, NullCause, Object, R, Value, fail};
use crate::schema::COLLECTION;
use crate::schema::collection::{constraint_error, failure, prepare_indexes, validate};
use crate::set::SetExpr;

pub fn definition_of(coll: CollId) -> Value {
    Value::Doc(DocRef {
        coll: COLLECTION,
        id: DocId(coll.0),
    })
}

fn handle(v: &Value) -> R<Rc<CollHandle>> {
    match v {
        Value::Module(Module::Collection(c)) => Ok(c.clone()),
        other => Err(expected("this", "Collection", other)),
    }
}

pub fn user_collection_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "all" => def("all", between(0, 1), |it, r, a| {
            let c = handle(r)?;
            let (from, to) = match a.first() {
                Some(range) => id_range(range)?,
                None => (None, None),
            };
            Ok(set_value(SetExpr::Docs {
                coll: c.id,
                from,
                to,
                at: it.captured_at(),
            }))
        }),
        "where" => def("where", exactly(1), |it, r, a| {
            let c = handle(r)?;
            let f = func_arg(&arg(&a, 0), "predicate")?;
            Ok(set_value(SetExpr::Where(
                Rc::new(SetExpr::Docs {
                    coll: c.id,
                    from: None,
                    to: None,
                    at: it.captured_at(),
                }),
                f,
            )))
        }),
        "firstWhere" => def("firstWhere", exactly(1), |it, r, a| {
            let c = handle(r)?;
            let f = func_arg(&arg(&a, 0), "predicate")?;
            let all = Rc::new(SetExpr::Docs {
                coll: c.id,
                from: None,
                to: None,
                at: it.captured_at(),
            });
            let mut iter = crate::set::open(&all, &crate::set::Pos::Start)?;
            while let Some(v) = iter.next(it)? {
                if it.predicate(&f, v.clone())? {
                    return Ok(v);
                }
            }
            Ok(Value::Null(NullCause::NoSuchElement(
                "no matching document",
            )))
        }),
        "create" => def("create", exactly(1), |it, r, a| {
            let c = handle(r)?;
            let data = object_arg(&arg(&a, 0), "data")?;
            create_document(it, &c, &data, false)
        }),
        "createData" => def("createData", exactly(1), |it, r, a| {
            let c = handle(r)?;
            let data = object_arg(&arg(&a, 0), "data")?;
            create_document(it, &c, &data, true)
        }),
        "byId" => def("byId", exactly(1), |it, r, a| {
            let c = handle(r)?;
            by_id(it, &c, a)
        }),
        "toString" => def("toString", exactly(0), |_, r, _| {
            Ok(Value::str(&handle(r)?.name))
        }),
        _ => return None,
    })
}

/// `C.byId(id)` / `C(id)`: a reference, never a read.
pub fn by_id(_it: &mut Interp<'_>, c: &CollHandle, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    let id = to_id(&arg(&args, 0), "id")?;
    Ok(Value::Doc(DocRef { coll: c.id, id }))
}

/// `{ from, to }` bounds of `C.all(range)`: documents, IDs, numeric strings or numbers.
fn id_range(v: &Value) -> R<(Option<DocId>, Option<DocId>)> {
    let range = object_arg(v, "range")?;
    let bound = |key: &str| -> R<Option<DocId>> {
        match range.get(key) {
            None | Some(Value::Null(_)) => Ok(None),
            Some(Value::Doc(r)) => Ok(Some(r.id)),
            Some(other) => to_id(other, key).map(Some),
        }
    };
    Ok((bound("from")?, bound("to")?))
}

/// Top-level keys a document write may not use (they name meta fields or methods).
const RESERVED: &[&str] = &[
    "id",
    "ts",
    "coll",
    "data",
    "delete",
    "update",
    "replace",
    "updateData",
    "replaceData",
    "exists",
];

/// Splits a create/update/replace argument into user fields and `ttl`, refusing reserved
/// keys. `as_data` (the `*Data` methods) takes every key as a user field.
pub fn user_fields(
    it: &mut Interp<'_>,
    coll: CollId,
    input: &Object,
    as_data: bool,
    allow_id: bool,
    verb: &str,
) -> R<(Object, Option<Option<Time>>, Option<DocId>)> {
    let mut fields = Object::with_capacity(input.len());
    let mut ttl = None;
    let mut id = None;
    let mut failures = Vec::new();
    for (k, v) in input.iter() {
        if as_data {
            fields.insert(k.clone(), v.clone());
            continue;
        }
        match k.as_str() {
            "id" if allow_id => {
                if !v.is_null() {
                    id = Some(to_id(v, "id").map_err(|_| {
                        crate::eval::err(
                            ErrorCode::InvalidDocumentId,
                            format!(
                                "The id `{}` is not a valid document id.",
                                crate::eval::display::debug_string(v)
                            ),
                        )
                    })?);
                }
            }
            "ttl" => match v {
                Value::Null(_) => ttl = Some(None),
                Value::Time(t) => ttl = Some(Some(*t)),
                Value::TxnTime => ttl = Some(Some(it.now().to_time())),
                other => failures.push(failure(
                    "ttl",
                    format!("Expected Time | Null, provided {}", other.type_name()),
                )),
            },
            key if RESERVED.contains(&key) => {
                failures.push(failure(key, "Is a reserved field and cannot be used"))
            }
            _ => {
                fields.insert(k.clone(), v.clone());
            }
        }
    }
    if !failures.is_empty() {
        let coll_name = it.coll_name(coll);
        return Err(constraint_error(
            format!("Failed to {verb} document in collection {coll_name}."),
            failures,
        ));
    }
    Ok((fields, ttl, id))
}

fn create_document(it: &mut Interp<'_>, c: &CollHandle, input: &Object, as_data: bool) -> R<Value> {
    it.check_writable("create")?;
    let (fields, ttl, explicit_id) = user_fields(it, c.id, input, as_data, true, "create")?;
    let action = if explicit_id.is_some() {
        Action::CreateWithId
    } else {
        Action::Create
    };
    let id = match explicit_id {
        Some(id) => {
            let r = DocRef { coll: c.id, id };
            if it.doc_exists_unchecked(r)? {
                return fail(
                    ErrorCode::DocumentIdExists,
                    format!(
                        "Document with id `{id}` already exists in the collection `{}`.",
                        c.name
                    ),
                );
            }
            id
        }
        None => it.new_id(),
    };
    let r = DocRef { coll: c.id, id };
    let stored = crate::docs::object_to_data(&fields, 1)?;
    it.put_doc(r, action, "create", stored, ttl.flatten())?;
    Ok(Value::Doc(r))
}

pub fn collection_module_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "create" => def("create", exactly(1), |it, _, a| {
            it.check_writable("create")?;
            let input = object_arg(&arg(&a, 0), "definition")?;
            reject_functions(&input)?;
            let mut stored = validate(it, &input, None, "create")?;
            let id = CollId(it.new_id().0);
            // A new collection has no documents: its indexes are complete at once.
            prepare_indexes(it, id, None, &mut stored)?;
            let r = DocRef {
                coll: COLLECTION,
                id: DocId(id.0),
            };
            it.put_doc(r, Action::Create, "create", stored, None)?;
            it.bump_schema();
            Ok(Value::Doc(r))
        }),
        "byName" => def("byName", exactly(1), |it, _, a| {
            let name = str_arg(&arg(&a, 0), "name")?;
            Ok(match find_definition(it, &name)? {
                Some(id) => Value::Doc(DocRef {
                    coll: COLLECTION,
                    id,
                }),
                None => Value::Null(NullCause::NoSuchElement("no collection with that name")),
            })
        }),
        "all" => def("all", exactly(0), |it, _, _| {
            Ok(set_value(SetExpr::Docs {
                coll: COLLECTION,
                from: None,
                to: None,
                at: it.captured_at(),
            }))
        }),
        "where" => def("where", exactly(1), |it, _, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            Ok(set_value(SetExpr::Where(
                Rc::new(SetExpr::Docs {
                    coll: COLLECTION,
                    from: None,
                    to: None,
                    at: it.captured_at(),
                }),
                f,
            )))
        }),
        "firstWhere" => def("firstWhere", exactly(1), |it, _, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            let all = Rc::new(SetExpr::Docs {
                coll: COLLECTION,
                from: None,
                to: None,
                at: it.captured_at(),
            });
            let mut iter = crate::set::open(&all, &crate::set::Pos::Start)?;
            while let Some(v) = iter.next(it)? {
                if it.predicate(&f, v.clone())? {
                    return Ok(v);
                }
            }
            Ok(Value::Null(NullCause::NoSuchElement(
                "no matching collection",
            )))
        }),
        _ => return None,
    })
}

/// Fauna stores function bodies as FQL text; a lambda value in a definition is refused.
fn reject_functions(o: &Object) -> R<()> {
    for v in o.values() {
        match v {
            Value::Func(_) => {
                return fail(
                    ErrorCode::InvalidType,
                    "Anonymous functions cannot be stored. Use a string of FQL instead.",
                );
            }
            Value::Object(inner) => reject_functions(inner)?,
            _ => {}
        }
    }
    Ok(())
}

/// The definition document id of the collection named `name`, as this transaction sees it.
pub fn find_definition(it: &mut Interp<'_>, name: &str) -> R<Option<DocId>> {
    let range = crate::keys::doc_range(it.db(), COLLECTION, None, None);
    let page = it.txn.scan(
        &range,
        testudo_storage::ScanOrder::Ascending,
        usize::MAX,
        None,
    )?;
    for (key, read) in page.entries {
        let (Some(id), Some(bytes)) = (crate::keys::doc_id_of(&key), read.value) else {
            continue;
        };
        let doc = testudo_model::codec::decode_doc(&bytes)?;
        if doc.fields.get("name") == Some(&testudo_model::Data::String(name.to_string())) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// `Collection("Name")`: the user collection module.
pub fn collection_apply(it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    let name = str_arg(&arg(&args, 0), "collection")?;
    match it.schema.collection(&name) {
        Some(def) => Ok(Value::Module(Module::Collection(Rc::new(CollHandle {
            id: def.id,
            name: def.name.clone(),
        })))),
        None => fail(
            ErrorCode::InvalidArgument,
            format!("No such user collection `{name}`."),
        ),
    }
}

/// Updates or replaces a collection definition (`C.definition.update(...)`).
pub fn write_definition(it: &mut Interp<'_>, r: DocRef, patch: &Object, replace: bool) -> R<Value> {
    it.check_writable(if replace { "replace" } else { "update" })?;
    reject_functions(patch)?;
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
    let verb = if replace { "replace" } else { "update" };
    let mut stored = validate(it, &merged, Some(CollId(r.id.0)), verb)?;
    let old = crate::docs::fields_to_data(&current)?;
    if prepare_indexes(it, CollId(r.id.0), Some(&old), &mut stored)? {
        it.pending_builds.push(CollId(r.id.0));
    }
    it.put_doc(r, Action::Write, verb, stored, None)?;
    it.bump_schema();
    Ok(Value::Doc(r))
}

/// Deletes a collection: its definition goes, and its documents become unreachable at once
/// (their space is reclaimed later).
pub fn delete_definition(it: &mut Interp<'_>, r: DocRef) -> R<Value> {
    it.refuse_if_protected(if r.coll == COLLECTION {
        "delete a collection"
    } else {
        "delete a function"
    })?;
    it.require_doc(r)?;
    it.delete_doc_version(r)?;
    if r.coll == COLLECTION {
        // The documents and indexes stay where they are until the reclaimer removes them.
        it.txn.put(
            crate::keys::garbage_marker(it.db(), CollId(r.id.0), None),
            Vec::new(),
        );
    }
    it.bump_schema();
    Ok(Value::Doc(r))
}

/// `C.byX(term, ..., range?)`: the documents an index finds, as a set.
pub fn index_call(
    it: &mut Interp<'_>,
    coll: CollId,
    index: std::sync::Arc<crate::index::IndexDef>,
    args: Vec<Value>,
) -> R<Value> {
    if !index.queryable() {
        return fail(
            ErrorCode::InvalidIndexInvocation,
            format!(
                "The index `{}` is not queryable yet: it is still being built.",
                index.name
            ),
        );
    }
    let n = index.terms.len();
    let arity = if index.values.is_empty() {
        exactly(n)
    } else {
        super::between(n, n + 1)
    };
    crate::eval::check_arity(arity, args.len())?;
    let mut terms = Vec::with_capacity(n);
    for t in &args[..n.min(args.len())] {
        terms.push(lookup_value(t)?);
    }
    let (mut from, mut to) = (None, None);
    if let Some(range) = args.get(n) {
        let range = object_arg(range, "range")?;
        for (key, v) in range.iter() {
            let bound = match v {
                Value::Null(_) => None,
                Value::Array(items) => Some(Rc::new(
                    items.iter().map(lookup_value).collect::<R<Vec<_>>>()?,
                )),
                other => Some(Rc::new(vec![lookup_value(other)?])),
            };
            match key.as_str() {
                "from" => from = bound,
                "to" => to = bound,
                other => {
                    return fail(
                        ErrorCode::InvalidArgument,
                        format!("Unexpected range field `{other}`: expected `from` or `to`."),
                    );
                }
            }
        }
    }
    Ok(set_value(SetExpr::Index {
        coll,
        index,
        terms: Rc::new(terms),
        from,
        to,
        at: it.captured_at(),
    }))
}

/// A value used as an index term or bound: anything a document could store.
fn lookup_value(v: &Value) -> R<Data> {
    match v {
        Value::Set(_) | Value::Func(_) | Value::Module(_) => fail(
            ErrorCode::InvalidArgument,
            "Argument cannot be used as lookup term.",
        ),
        other => crate::docs::to_data(other),
    }
}
