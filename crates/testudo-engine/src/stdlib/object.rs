//! `Object`: functions over structs and documents (reference §4.7), with Fauna's messages.
//!
//! `keys`, `values`, `entries` and `assign` read a document's fields (meta fields included)
//! as Fauna does; `select` and `hasPath` walk structs, and here also documents (Fauna only
//! takes a struct at the top). **Invariants:** documents are read only through the
//! interpreter (so the authorization gate sees every read); a missing document is an
//! `invalid_argument` naming the parameter; path walks stop at the first missing key
//! without looking at the rest of the path.

use super::params::{Ty, type_error};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Interp, NullCause, Object, R, Value, err};

pub fn static_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "keys" => def("keys", exactly(1), |it, _, a| {
            let fields = fields(it, &a[0], "object")?;
            Ok(Value::array(
                fields.into_iter().map(|(k, _)| Value::string(k)).collect(),
            ))
        }),
        "values" => def("values", exactly(1), |it, _, a| {
            let fields = fields(it, &a[0], "object")?;
            Ok(Value::array(fields.into_iter().map(|(_, v)| v).collect()))
        }),
        "entries" => def("entries", exactly(1), |it, _, a| {
            let fields = fields(it, &a[0], "object")?;
            Ok(Value::array(
                fields
                    .into_iter()
                    .map(|(k, v)| Value::array(vec![Value::string(k), v]))
                    .collect(),
            ))
        }),
        "fromEntries" => def("fromEntries", exactly(1), from_entries),
        "assign" => def("assign", exactly(2), |it, _, a| {
            let destination = fields(it, &a[0], "destination")?;
            let source = fields(it, &a[1], "source")?;
            let mut out: Object = destination.into_iter().collect();
            for (k, v) in source {
                out.insert(k, v);
            }
            Ok(Value::object(out))
        }),
        "select" => def("select", exactly(2), |it, _, a| {
            Ok(
                select(it, &a)?.unwrap_or(Value::Null(NullCause::NoSuchElement(
                    "no value in object found at path",
                ))),
            )
        }),
        "hasPath" => def("hasPath", exactly(2), |it, _, a| {
            Ok(Value::Bool(select(it, &a)?.is_some()))
        }),
        "toString" => def("toString", exactly(1), |it, _, a| {
            it.display(&a[0]).map(Value::string)
        }),
        _ => return None,
    })
}

/// The fields of a struct, or of a document (meta fields included).
fn fields(it: &mut Interp<'_>, v: &Value, param: &str) -> R<Vec<(String, Value)>> {
    match v {
        Value::Object(o) => Ok(o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Value::Doc(r) => match it.doc_display_fields(*r)? {
            Some(fields) => Ok(fields),
            None => {
                let missing = it.missing_error(*r, testudo_model::NullCause::NotFound);
                Err(err(
                    ErrorCode::InvalidArgument,
                    format!(
                        "invalid argument `{param}`: {}",
                        uncapitalized(&missing.message)
                    ),
                ))
            }
        },
        Value::Module(_) => Err(err(
            ErrorCode::InvalidArgument,
            format!("invalid argument `{param}`: expected either an object or a document"),
        )),
        other => Err(object_type_error(param, other)),
    }
}

fn object_type_error(param: &str, got: &Value) -> Box<crate::eval::EvalError> {
    err(
        ErrorCode::InvalidArgument,
        format!(
            "expected value for `{param}` of type {{ *: Any }}, received {}",
            got.type_name()
        ),
    )
}

fn uncapitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn from_entries(_it: &mut Interp<'_>, _r: &Value, a: Vec<Value>) -> R<Value> {
    let Value::Array(entries) = &a[0] else {
        return Err(type_error("entries", Ty::Array, &a[0]));
    };
    let invalid = |reason: String| {
        err(
            ErrorCode::InvalidArgument,
            format!("invalid argument `entries`: {reason}"),
        )
    };
    let mut out = Object::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let Value::Array(pair) = entry else {
            return Err(invalid(format!(
                "expected an array for each element of the outer array, but saw type {} at index {i}",
                entry.type_name()
            )));
        };
        let [key, value] = pair.as_slice() else {
            return Err(invalid(format!(
                "expected inner array of length 2 but saw length {} at index {i}",
                pair.len()
            )));
        };
        let Value::Str(key) = key else {
            return Err(invalid(format!(
                "expected a string for the first element of each inner array, but saw type {} at index {i}",
                key.type_name()
            )));
        };
        // The last occurrence of a key wins, in the position of its first.
        out.insert(key.to_string(), value.clone());
    }
    Ok(Value::object(out))
}

/// Walks `path` from the object; `None` where a key is missing or the walk meets a value
/// that has no fields.
fn select(it: &mut Interp<'_>, a: &[Value]) -> R<Option<Value>> {
    let start = &a[0];
    if !matches!(start, Value::Object(_) | Value::Doc(_)) {
        return Err(object_type_error("object", start));
    }
    let Value::Array(path) = &a[1] else {
        return Err(type_error("path", Ty::Array, &a[1]));
    };
    let mut cur = start.clone();
    for key in path.iter() {
        let Value::Str(k) = key else {
            return Err(err(
                ErrorCode::InvalidArgument,
                "invalid argument `path`: expected an array of strings",
            ));
        };
        let next = match &cur {
            Value::Object(o) => o.get(&**k).cloned(),
            Value::Doc(r) => Some(it.doc_field(*r, k)?).filter(|v| !v.is_null()),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}
