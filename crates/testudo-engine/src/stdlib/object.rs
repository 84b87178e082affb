//! `Object`: functions over structs and documents (reference §4.7).

use super::args::{arg, array_arg, expected, object_arg, str_arg};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Interp, NullCause, Object, R, Value, fail};

pub fn static_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "keys" => def("keys", exactly(1), |it, _, a| {
            Ok(Value::array(
                entries(it, &arg(&a, 0))?
                    .into_iter()
                    .map(|(k, _)| Value::string(k))
                    .collect(),
            ))
        }),
        "values" => def("values", exactly(1), |it, _, a| {
            Ok(Value::array(
                entries(it, &arg(&a, 0))?
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
            ))
        }),
        "entries" => def("entries", exactly(1), |it, _, a| {
            Ok(Value::array(
                entries(it, &arg(&a, 0))?
                    .into_iter()
                    .map(|(k, v)| Value::array(vec![Value::string(k), v]))
                    .collect(),
            ))
        }),
        "fromEntries" => def("fromEntries", exactly(1), |_, _, a| {
            let mut out = Object::new();
            for entry in array_arg(&arg(&a, 0), "entries")?.iter() {
                let Value::Array(pair) = entry else {
                    return Err(expected("entries", "Array<[String, Any]>", entry));
                };
                let (Some(k), Some(v), 2) = (pair.first(), pair.get(1), pair.len()) else {
                    return fail(
                        ErrorCode::InvalidArgument,
                        "expected each entry to be an array of length 2",
                    );
                };
                out.insert(str_arg(k, "key")?.to_string(), v.clone());
            }
            Ok(Value::object(out))
        }),
        "assign" => def("assign", exactly(2), |_, _, a| {
            let mut out = (*object_arg(&arg(&a, 0), "destination")?).clone();
            for (k, v) in object_arg(&arg(&a, 1), "source")?.iter() {
                out.insert(k.clone(), v.clone());
            }
            Ok(Value::object(out))
        }),
        "select" => def("select", exactly(2), |it, _, a| {
            let mut cur = arg(&a, 0);
            for key in array_arg(&arg(&a, 1), "path")?.iter() {
                let k = str_arg(key, "path")?;
                cur = match &cur {
                    Value::Object(o) => o
                        .get(&*k)
                        .cloned()
                        .unwrap_or(Value::Null(NullCause::MissingField(k.to_string()))),
                    Value::Doc(r) => it.doc_field(*r, &k)?,
                    _ => return Ok(Value::Null(NullCause::MissingField(k.to_string()))),
                };
            }
            Ok(cur)
        }),
        "hasPath" => def("hasPath", exactly(2), |it, _, a| {
            let mut cur = arg(&a, 0);
            for key in array_arg(&arg(&a, 1), "path")?.iter() {
                let k = str_arg(key, "path")?;
                cur = match &cur {
                    Value::Object(o) => match o.get(&*k) {
                        Some(v) => v.clone(),
                        None => return Ok(Value::Bool(false)),
                    },
                    Value::Doc(r) => {
                        let v = it.doc_field(*r, &k)?;
                        if v.is_null() {
                            return Ok(Value::Bool(false));
                        }
                        v
                    }
                    _ => return Ok(Value::Bool(false)),
                };
            }
            Ok(Value::Bool(true))
        }),
        "toString" => def("toString", exactly(1), |it, _, a| {
            it.display(&arg(&a, 0)).map(Value::string)
        }),
        _ => return None,
    })
}

/// The fields of a struct, or of a document (meta fields included).
fn entries(it: &mut Interp<'_>, v: &Value) -> R<Vec<(String, Value)>> {
    match v {
        Value::Object(o) => Ok(o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Value::Doc(r) => match it.doc_display_fields(*r)? {
            Some(fields) => Ok(fields),
            None => Err(it.missing_error(*r, testudo_model::NullCause::NotFound)),
        },
        other => Err(expected("object", "Object", other)),
    }
}
