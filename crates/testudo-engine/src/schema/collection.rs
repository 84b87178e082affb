//! Collection definitions: validation of `Collection.create`, `.definition.update` and
//! `.replace`, and the checks that keep names unique.
//!
//! **Invariant:** a definition is stored only after every field has been checked; a failed
//! check is a `constraint_failure` listing every problem with its path, and writes nothing.

use testudo_model::{CollId, Data, DataMap, DocId};

use crate::api::{ConstraintFailure, ErrorCode, PathElem};
use crate::docs::{object_to_data, to_data};
use crate::eval::{Interp, Object, R, Value, err};
use crate::stdlib::is_reserved_name;

/// Every field a collection definition may have, in the order a stored definition keeps.
const FIELDS: &[&str] = &[
    "name",
    "alias",
    "computed_fields",
    "fields",
    "wildcard",
    "history_days",
    "ttl_days",
    "document_ttls",
    "indexes",
    "constraints",
    "migrations",
    "data",
];

pub fn failure(path: &str, message: impl Into<String>) -> ConstraintFailure {
    ConstraintFailure {
        message: message.into(),
        paths: vec![vec![PathElem::Field(path.to_string())]],
    }
}

/// A `constraint_failure` error carrying `failures`.
pub fn constraint_error(
    message: impl Into<String>,
    failures: Vec<ConstraintFailure>,
) -> Box<crate::eval::EvalError> {
    let mut e = err(ErrorCode::ConstraintFailure, message);
    e.constraint_failures = failures;
    e
}

/// Checks an identifier used as a schema name.
pub fn check_identifier(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Some("Invalid identifier.".into());
    }
    if is_reserved_name(name) {
        return Some(format!("The identifier `{name}` is reserved."));
    }
    None
}

/// Validates a whole definition and returns it in stored form. `own` is the id of the
/// collection being updated (its current names do not clash with themselves).
pub fn validate(it: &mut Interp<'_>, def: &Object, own: Option<CollId>, verb: &str) -> R<DataMap> {
    let mut failures = Vec::new();
    for key in def.keys() {
        if !FIELDS.contains(&key.as_str()) {
            failures.push(failure(key, "Unexpected field provided."));
        }
    }
    let mut names = Vec::new();
    for field in ["name", "alias"] {
        match def.get(field) {
            None | Some(Value::Null(_)) if field == "name" => {
                failures.push(failure(field, "Missing required field."))
            }
            None | Some(Value::Null(_)) => {}
            Some(Value::Str(s)) => match check_identifier(s) {
                Some(problem) => failures.push(failure(field, problem)),
                None => names.push((field, s.to_string())),
            },
            Some(other) => failures.push(failure(
                field,
                format!("Expected String, provided {}", other.type_name()),
            )),
        }
    }
    for field in ["history_days", "ttl_days"] {
        match def.get(field) {
            None | Some(Value::Null(_)) => {}
            Some(Value::Int(n)) if *n >= 0 => {}
            Some(Value::Long(n)) if *n >= 0 => {}
            Some(other) => failures.push(failure(
                field,
                format!(
                    "Expected a non-negative Int, provided {}",
                    other.type_name()
                ),
            )),
        }
    }
    let expect = |field: &str,
                  ok: fn(&Value) -> bool,
                  ty: &str,
                  failures: &mut Vec<ConstraintFailure>| match def.get(field) {
        None | Some(Value::Null(_)) => {}
        Some(v) if ok(v) => {}
        Some(other) => failures.push(failure(
            field,
            format!("Expected {ty}, provided {}", other.type_name()),
        )),
    };
    expect(
        "document_ttls",
        |v| matches!(v, Value::Bool(_)),
        "Boolean",
        &mut failures,
    );
    expect(
        "wildcard",
        |v| matches!(v, Value::Str(_)),
        "String",
        &mut failures,
    );
    for field in ["computed_fields", "fields", "indexes", "data"] {
        expect(
            field,
            |v| matches!(v, Value::Object(_)),
            "Object",
            &mut failures,
        );
    }
    for field in ["constraints", "migrations"] {
        expect(
            field,
            |v| matches!(v, Value::Array(_)),
            "Array",
            &mut failures,
        );
    }
    for (field, name) in &names {
        if let Some(taken) =
            super::name_taken(it, name, own.map(|c| (super::COLLECTION, DocId(c.0))))?
        {
            failures.push(failure(field, taken));
        }
    }
    if !failures.is_empty() {
        return Err(constraint_error(
            format!("Failed to {verb} document in collection Collection."),
            failures,
        ));
    }

    let mut stored = DataMap::new();
    for field in FIELDS {
        let value = match (def.get(*field), *field) {
            (Some(v), _) if !v.is_null() => match v {
                Value::Object(o) => Data::Object(object_to_data(o, 1)?),
                other => to_data(other)?,
            },
            (_, "history_days") => Data::Int(0),
            (_, "indexes") => Data::Object(DataMap::new()),
            (_, "constraints") => Data::Array(Vec::new()),
            _ => continue,
        };
        stored.insert((*field).to_string(), value);
    }
    Ok(stored)
}
