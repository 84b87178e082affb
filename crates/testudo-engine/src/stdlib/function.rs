//! The `Function` system module (`Function.create`, `byName`, `Function("name")`) and
//! writes to function definition documents.

use std::rc::Rc;

use testudo_model::{Data, DataMap};

use super::args::{arg, func_arg, object_arg, set_value, str_arg};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::authz::Action;
use crate::eval::{DocRef, Func, Interp, NullCause, Object, R, Value, fail};
use crate::schema::{FUNCTION, function::validate};
use crate::set::SetExpr;

pub fn function_module_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "create" => def("create", exactly(1), |it, _, a| {
            it.check_writable("create")?;
            let input = object_arg(&arg(&a, 0), "definition")?;
            let stored = validate(it, &input, None, "create")?;
            let r = DocRef {
                coll: FUNCTION,
                id: it.new_id(),
            };
            it.put_doc(r, Action::Create, "create", stored, None)?;
            it.bump_schema();
            Ok(Value::Doc(r))
        }),
        "byName" => def("byName", exactly(1), |it, _, a| {
            let name = str_arg(&arg(&a, 0), "name")?;
            for (id, fields) in crate::schema::read_all(it.db(), FUNCTION, &mut it.txn)? {
                if fields.get("name") == Some(&Data::String(name.to_string())) {
                    return Ok(Value::Doc(DocRef { coll: FUNCTION, id }));
                }
            }
            Ok(Value::Null(NullCause::NoSuchElement(
                "no function with that name",
            )))
        }),
        "all" => def("all", exactly(0), |_, _, _| Ok(set_value(all()))),
        "where" => def("where", exactly(1), |_, _, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            Ok(set_value(SetExpr::Where(Rc::new(all()), f)))
        }),
        "firstWhere" => def("firstWhere", exactly(1), |it, _, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            let mut iter = crate::set::open(&Rc::new(all()), &crate::set::Pos::Start)?;
            while let Some(v) = iter.next(it)? {
                if it.predicate(&f, v.clone())? {
                    return Ok(v);
                }
            }
            Ok(Value::Null(NullCause::NoSuchElement(
                "no matching function",
            )))
        }),
        _ => return None,
    })
}

fn all() -> SetExpr {
    SetExpr::Docs {
        coll: FUNCTION,
        from: None,
        to: None,
        at: None,
    }
}

/// `Function("name")`: the user function.
pub fn function_apply(it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    let name = str_arg(&arg(&args, 0), "function")?;
    match it.schema.function(&name) {
        Some(def) => Ok(Value::Func(Rc::new(Func::Udf(def.clone())))),
        None => fail(
            ErrorCode::InvalidArgument,
            format!("No such user function `{name}`."),
        ),
    }
}

/// `MyFunction.definition`.
pub fn udf_field(f: &Func, name: &str) -> Option<Value> {
    match (f, name) {
        (Func::Udf(def), "definition") => Some(Value::Doc(DocRef {
            coll: FUNCTION,
            id: def.id,
        })),
        _ => None,
    }
}

/// Updates or replaces a function definition document.
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
    let stored = validate(it, &merged, Some(r.id), verb)?;
    it.put_doc(r, Action::Write, verb, stored, None)?;
    it.bump_schema();
    Ok(Value::Doc(r))
}
