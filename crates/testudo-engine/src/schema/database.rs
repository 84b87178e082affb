//! Database definitions: validation of `Database.create` and of database document writes.
//!
//! **Invariant:** a child's name is unique among its siblings; `global_id` is the child's
//! immutable id and cannot be written.

use testudo_model::{Data, DataMap, DbId};

use super::collection::{check_identifier, constraint_error, failure};
use crate::docs::to_data;
use crate::eval::{Interp, Object, R, Value};

const FIELDS: &[&str] = &[
    "name",
    "protected",
    "typechecked",
    "priority",
    "data",
    "global_id",
    "password_policy",
    "limits",
];

/// Validates a database definition and returns its stored form for the child `id`.
pub fn validate(it: &mut Interp<'_>, def: &Object, id: DbId, verb: &str) -> R<DataMap> {
    let mut failures = Vec::new();
    for key in def.keys() {
        if !FIELDS.contains(&key.as_str()) {
            failures.push(failure(key, "Unexpected field provided."));
        }
    }
    match def.get("name") {
        Some(Value::Str(name)) => match check_identifier(name) {
            Some(problem) => failures.push(failure("name", problem)),
            None => {
                for (other, fields) in super::read_all(it.db(), super::DATABASE, &mut it.txn)? {
                    if other.0 != id.0
                        && fields.get("name") == Some(&Data::String(name.to_string()))
                    {
                        failures.push(failure(
                            "name",
                            format!("A database with the name `{name}` already exists."),
                        ));
                    }
                }
            }
        },
        None | Some(Value::Null(_)) => failures.push(failure("name", "Missing required field.")),
        Some(other) => failures.push(failure(
            "name",
            format!("Expected String, provided {}", other.type_name()),
        )),
    }
    for flag in ["protected", "typechecked"] {
        match def.get(flag) {
            None | Some(Value::Null(_)) | Some(Value::Bool(_)) => {}
            Some(other) => failures.push(failure(
                flag,
                format!("Expected Boolean, provided {}", other.type_name()),
            )),
        }
    }
    match def.get("priority") {
        None | Some(Value::Null(_)) => {}
        Some(Value::Int(p)) if (1..=500).contains(p) => {}
        Some(_) => failures.push(failure("priority", "Expected an Int between 1 and 500.")),
    }
    match def.get("password_policy") {
        None | Some(Value::Null(_)) => {}
        Some(Value::Object(p)) => {
            for (k, v) in p.iter() {
                let ok = matches!(k.as_str(), "min_length" | "max_length")
                    && matches!(v, Value::Int(n) if (1..=1024).contains(n));
                if !ok {
                    failures.push(failure(
                        "password_policy",
                        "Expected `{ min_length?, max_length? }` with Ints between 1 and 1024.",
                    ));
                }
            }
        }
        Some(other) => failures.push(failure(
            "password_policy",
            format!("Expected Object, provided {}", other.type_name()),
        )),
    }
    match def.get("limits") {
        None | Some(Value::Null(_)) => {}
        Some(Value::Object(l)) => {
            for (k, v) in l.iter() {
                let positive = matches!(v, Value::Int(n) if *n > 0)
                    || matches!(v, Value::Double(d) if *d > 0.0 && d.is_finite());
                let rate = crate::limits::RATE_FIELDS.contains(&k.as_str()) && positive;
                let concurrency =
                    k == crate::limits::CONCURRENCY_FIELD && matches!(v, Value::Int(n) if *n > 0);
                if !(rate || concurrency) {
                    failures.push(failure(
                        "limits",
                        format!(
                            "Expected positive numbers for {} and a positive Int for `{}`; `{k}` is not one of them or not positive.",
                            crate::limits::RATE_FIELDS
                                .iter()
                                .map(|f| format!("`{f}`"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            crate::limits::CONCURRENCY_FIELD
                        ),
                    ));
                }
            }
        }
        Some(other) => failures.push(failure(
            "limits",
            format!("Expected Object, provided {}", other.type_name()),
        )),
    }
    match def.get("data") {
        None | Some(Value::Null(_)) | Some(Value::Object(_)) => {}
        Some(other) => failures.push(failure(
            "data",
            format!("Expected Object, provided {}", other.type_name()),
        )),
    }
    match def.get("global_id") {
        None | Some(Value::Null(_)) => {}
        Some(Value::Str(g)) if **g == *id.0.to_string() => {}
        Some(_) => failures.push(failure(
            "global_id",
            "The global id is generated and cannot be written.",
        )),
    }
    if !failures.is_empty() {
        return Err(constraint_error(
            format!("Failed to {verb} document in collection Database."),
            failures,
        ));
    }
    let mut stored = DataMap::new();
    for field in [
        "name",
        "protected",
        "typechecked",
        "priority",
        "data",
        "password_policy",
        "limits",
    ] {
        if let Some(v) = def.get(field).filter(|v| !v.is_null()) {
            stored.insert(field.to_string(), to_data(v)?);
        }
    }
    stored.insert("global_id".into(), Data::String(id.0.to_string()));
    Ok(stored)
}
