//! Argument checks shared by the standard library, with Fauna's error wording
//! ("expected value for `other` of type String, received Int").

use std::rc::Rc;

use crate::api::ErrorCode;
use crate::eval::{Func, List, R, Value, err};
use crate::set::{SetExpr, SetValue};

pub fn expected(param: &str, ty: &str, got: &Value) -> Box<crate::eval::EvalError> {
    err(
        ErrorCode::InvalidArgument,
        format!(
            "expected value for `{param}` of type {ty}, received {}",
            got.type_name()
        ),
    )
}

pub fn str_arg(v: &Value, param: &str) -> R<Rc<str>> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(expected(param, "String", other)),
    }
}

/// An Int or Long argument.
pub fn int_arg(v: &Value, param: &str) -> R<i64> {
    match v {
        Value::Int(i) => Ok(i64::from(*i)),
        Value::Long(l) => Ok(*l),
        other => Err(expected(param, "Int", other)),
    }
}

pub fn func_arg(v: &Value, param: &str) -> R<Rc<Func>> {
    match v {
        Value::Func(f) => Ok(f.clone()),
        other => Err(expected(param, "Function", other)),
    }
}

pub fn object_arg(v: &Value, param: &str) -> R<Rc<crate::eval::Object>> {
    match v {
        Value::Object(o) => Ok(o.clone()),
        other => Err(expected(param, "Object", other)),
    }
}

/// A set argument; arrays are accepted as sets of their elements.
pub fn set_arg(v: &Value, param: &str) -> R<Rc<SetExpr>> {
    match v {
        Value::Set(s) => Ok(s.expr.clone()),
        Value::Array(items) => Ok(Rc::new(SetExpr::Values(items.clone()))),
        other => Err(expected(param, "Set", other)),
    }
}

pub fn set_value(expr: SetExpr) -> Value {
    Value::Set(Rc::new(SetValue::new(expr)))
}

/// A receiver of the expected variant (the dispatcher guarantees it; a mismatch is a bug
/// reported as an internal error, never a panic).
pub fn recv_str(v: &Value) -> R<Rc<str>> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        _ => Err(err(
            ErrorCode::Internal,
            "string method called on a non-string",
        )),
    }
}

pub fn recv_array(v: &Value) -> R<Rc<List>> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        _ => Err(err(
            ErrorCode::Internal,
            "array method called on a non-array",
        )),
    }
}

pub fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::NULL)
}
