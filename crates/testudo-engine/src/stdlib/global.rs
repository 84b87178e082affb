//! Global functions (`abort`, `log`, `dbg`, `newId`, `asc`, `desc`) and the `ID` constructor.
//!
//! **Invariants:** `abort` carries its value in the error, never in a panic; `ID()` accepts
//! only what names a document id (0 ..= 2^63 - 1), everything else is `invalid_id`.

use testudo_model::DocId;

use super::args::{arg, expected};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Arity, Interp, NullCause, R, Value, err, fail};

pub fn function(name: &str) -> Option<MethodDef> {
    Some(match name {
        "abort" => def("abort", exactly(1), abort),
        "log" => def("log", Arity::AtLeast(0), log),
        "dbg" => def("dbg", exactly(1), dbg),
        "newId" => def("newId", exactly(0), new_id),
        "asc" => def("asc", exactly(1), asc),
        "desc" => def("desc", exactly(1), desc),
        _ => return None,
    })
}

fn abort(_it: &mut Interp<'_>, _recv: &Value, args: Vec<Value>) -> R<Value> {
    let mut e = err(ErrorCode::Abort, "Query aborted.");
    e.abort = Some(arg(&args, 0));
    Err(e)
}

fn log(it: &mut Interp<'_>, _recv: &Value, args: Vec<Value>) -> R<Value> {
    let mut parts = Vec::with_capacity(args.len());
    for a in &args {
        parts.push(it.display(a)?);
    }
    it.log_line(parts.join(" "));
    Ok(Value::Null(NullCause::NoValue))
}

fn dbg(it: &mut Interp<'_>, _recv: &Value, args: Vec<Value>) -> R<Value> {
    let v = arg(&args, 0);
    let text = it.debug(&v);
    it.log_line(text);
    Ok(v)
}

fn new_id(it: &mut Interp<'_>, _recv: &Value, _args: Vec<Value>) -> R<Value> {
    Ok(Value::Id(it.new_id().0))
}

fn ordering(key: &str, args: Vec<Value>) -> R<Value> {
    let mut o = crate::eval::Object::new();
    o.insert(key.to_string(), arg(&args, 0));
    Ok(Value::object(o))
}

fn asc(_it: &mut Interp<'_>, _recv: &Value, args: Vec<Value>) -> R<Value> {
    ordering("asc", args)
}

fn desc(_it: &mut Interp<'_>, _recv: &Value, args: Vec<Value>) -> R<Value> {
    ordering("desc", args)
}

/// `ID(123)`, `ID("123")`: Fauna's `(String) | (Number)` apply. A string must hold a whole
/// number; ids here are never negative, so `ID(-1)` is refused too (Fauna accepts it).
pub fn id_apply(_it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    let v = &args[0];
    let id = match v {
        Value::Str(s) => s.parse::<i64>().ok().and_then(|n| u64::try_from(n).ok()),
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::Long(l) => u64::try_from(*l).ok(),
        Value::Double(_) => None,
        Value::Id(id) => Some(*id),
        other => {
            return fail(
                ErrorCode::InvalidArgument,
                format!(
                    "expected arguments to `ID` of type (String) | (Number), received ({})",
                    other.type_name()
                ),
            );
        }
    };
    match id.filter(|&id| i64::try_from(id).is_ok()) {
        Some(id) => Ok(Value::Id(id)),
        None => fail(
            ErrorCode::InvalidId,
            format!(
                "`{}` is not a valid ID.",
                crate::eval::display::debug_string(v)
            ),
        ),
    }
}

/// A value usable as a document id: an `ID`, a non-negative integer, or a numeric string.
pub fn to_id(v: &Value, param: &str) -> R<DocId> {
    let parsed = match v {
        Value::Id(id) => Some(DocId(*id)),
        Value::Int(i) => u64::try_from(*i).ok().map(DocId),
        Value::Long(l) => u64::try_from(*l).ok().map(DocId),
        Value::Str(s) => DocId::parse(s),
        other => return Err(expected(param, "ID", other)),
    };
    match parsed {
        Some(id) => Ok(id),
        None => {
            let shown = match v {
                Value::Str(s) => s.to_string(),
                other => crate::eval::display::debug_string(other),
            };
            fail(
                ErrorCode::InvalidId,
                format!("The string `{shown}` is not a valid ID"),
            )
        }
    }
}
