//! Global functions (`abort`, `log`, `dbg`, `newId`, `asc`, `desc`) and the `ID` and `Bytes`
//! constructors.

use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use testudo_model::DocId;

use super::args::{arg, expected};
use super::{MethodDef, between, def, exactly};
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

/// `ID(123)`, `ID("123")`.
pub fn id_apply(_it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    to_id(&arg(&args, 0), "id").map(|id| Value::Id(id.0))
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

/// `Bytes("base64")`.
pub fn bytes_apply(_it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(between(1, 1), args.len())?;
    match &arg(&args, 0) {
        Value::Str(s) => STANDARD
            .decode(s.as_bytes())
            .map(|b| Value::Bytes(Rc::from(b)))
            .map_err(|_| err(ErrorCode::InvalidArgument, "Bytes must be valid base64.")),
        Value::Bytes(b) => Ok(Value::Bytes(b.clone())),
        other => Err(expected("encoded", "String", other)),
    }
}
