//! Fauna's parameter types for the standard library methods in `string`, `array`, `math`,
//! `time`, `object`, `bytes` and `query`: which values each parameter type accepts, and the
//! two error messages a mismatch produces.
//!
//! A method with one signature reports the first bad argument ("expected value for `index`
//! of type Int, received String"); an overloaded method (one signature per arity) reports the
//! whole call ("expected arguments to `indexOf` of type (String, Int), received (String,
//! Boolean)"). **Invariant:** the casts mirror Fauna's: an `Int` parameter also takes a `Long`
//! or a whole `Double` that fits in 32 bits, never anything lossy, and nothing here panics.

use std::rc::Rc;

use crate::api::ErrorCode;
use crate::eval::{Func, R, Value, err};

/// A parameter type, named as Fauna displays it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Any,
    Int,
    Number,
    Str,
    Func,
    Array,
    Time,
    Date,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Any => "Any",
            Ty::Int => "Int",
            Ty::Number => "Number",
            Ty::Str => "String",
            Ty::Func => "Function",
            Ty::Array => "Array<Any>",
            Ty::Time => "Time",
            Ty::Date => "Date",
        }
    }

    pub fn accepts(self, v: &Value) -> bool {
        match self {
            Ty::Any => true,
            Ty::Int => int_of(v).is_some(),
            Ty::Number => v.is_number(),
            Ty::Str => matches!(v, Value::Str(_)),
            Ty::Func => matches!(v, Value::Func(_)),
            Ty::Array => matches!(v, Value::Array(_)),
            Ty::Time => matches!(v, Value::Time(_)),
            Ty::Date => matches!(v, Value::Date(_)),
        }
    }
}

/// Fauna's `Int` cast: an Int, or a Long or a whole Double within 32 bits.
pub fn int_of(v: &Value) -> Option<i32> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Long(l) => i32::try_from(*l).ok(),
        Value::Double(d) if d.fract() == 0.0 && *d >= -2_147_483_648.0 && *d <= 2_147_483_647.0 => {
            Some(*d as i32)
        }
        _ => None,
    }
}

/// The error of a single-signature method for its parameter `param`.
pub fn type_error(param: &str, ty: Ty, got: &Value) -> Box<crate::eval::EvalError> {
    err(
        ErrorCode::InvalidArgument,
        format!(
            "expected value for `{param}` of type {}, received {}",
            ty.name(),
            got.type_name()
        ),
    )
}

/// Checks one argument of a single-signature method.
pub fn check(v: &Value, param: &str, ty: Ty) -> R<()> {
    if ty.accepts(v) {
        Ok(())
    } else {
        Err(type_error(param, ty, v))
    }
}

/// An `Int` parameter of a single-signature method.
pub fn int_param(v: &Value, param: &str) -> R<i32> {
    int_of(v).ok_or_else(|| type_error(param, Ty::Int, v))
}

pub fn str_param(v: &Value, param: &str) -> R<Rc<str>> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(type_error(param, Ty::Str, other)),
    }
}

pub fn func_param(v: &Value, param: &str) -> R<Rc<Func>> {
    match v {
        Value::Func(f) => Ok(f.clone()),
        other => Err(type_error(param, Ty::Func, other)),
    }
}

/// Checks the arguments of an overloaded method against the signature of their arity
/// (the dispatcher has already checked the arity).
pub fn overload(method: &str, args: &[Value], sigs: &[&[Ty]]) -> R<()> {
    let Some(sig) = sigs.iter().find(|s| s.len() == args.len()) else {
        return Ok(());
    };
    if sig.iter().zip(args).all(|(ty, v)| ty.accepts(v)) {
        return Ok(());
    }
    let expects: Vec<&str> = sig.iter().map(|t| t.name()).collect();
    let received: Vec<String> = args.iter().map(Value::type_name).collect();
    Err(err(
        ErrorCode::InvalidArgument,
        format!(
            "expected arguments to `{method}` of type ({}), received ({})",
            expects.join(", "),
            received.join(", ")
        ),
    ))
}

/// Fauna's `invalid argument` error for a well-typed argument with a bad value.
pub fn invalid(param: &str, reason: &str) -> Box<crate::eval::EvalError> {
    err(
        ErrorCode::InvalidArgument,
        format!("invalid argument `{param}`: {reason}"),
    )
}

/// `index_out_of_bounds` as Fauna words it.
pub fn out_of_bounds(index: i64, len: usize) -> Box<crate::eval::EvalError> {
    err(
        ErrorCode::IndexOutOfBounds,
        format!("index {index} out of bounds for length {len}"),
    )
}

/// Fails with `time_out` once the query's deadline has passed; loops that can run long
/// without evaluating FQL (regex scans, big strings) call it every so often.
pub fn check_deadline(it: &crate::eval::Interp<'_>) -> R<()> {
    if std::time::Instant::now() >= it.deadline {
        return Err(err(ErrorCode::TimeOut, "Query time limit exceeded."));
    }
    Ok(())
}
