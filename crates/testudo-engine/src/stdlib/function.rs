//! The `Function` system module (`Function.create`, `byName`, `Function("name")`) and
//! writes to function definition documents.

use std::rc::Rc;

use super::args::{arg, str_arg};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{DocRef, Func, Interp, Object, R, Value, fail};
use crate::schema::{FUNCTION, function::validate};

pub fn function_module_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "create" => def("create", exactly(1), |it, _, a| {
            super::system::create_schema_doc(it, FUNCTION, &arg(&a, 0), validate)
        }),
        other => return super::system::listing_method_for(FUNCTION, other),
    })
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
    super::system::write_schema_doc(it, r, patch, replace, validate)
}
