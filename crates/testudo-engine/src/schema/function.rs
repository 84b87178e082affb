//! User-defined functions: their stored definitions, validation of `Function.create` and
//! `.definition` updates, and the parsed body shared by every call in a schema version.
//!
//! **Invariants:** a body is stored only if it parses as a lambda; a function's name is
//! unique among the database's functions and collections; the parsed body is cached with
//! the schema, so a changed body is never run after the change commits.

use std::sync::{Arc, OnceLock};

use testudo_fql::ast::{ExprKind, Lambda};
use testudo_model::{Data, DataMap, DocId};

use super::collection::{check_identifier, constraint_error, failure};
use crate::api::ErrorCode;
use crate::docs::to_data;
use crate::eval::{Interp, Object, R, Value, fail};

const FIELDS: &[&str] = &["name", "alias", "body", "signature", "role", "data"];

/// A function as the schema holds it.
#[derive(Debug)]
pub struct FunctionDef {
    pub id: DocId,
    pub name: String,
    pub alias: Option<String>,
    pub body: String,
    pub role: Option<String>,
    parsed: OnceLock<Result<Arc<Lambda>, String>>,
}

impl FunctionDef {
    pub fn from_stored(id: DocId, fields: DataMap) -> FunctionDef {
        let text = |k: &str| match fields.get(k) {
            Some(Data::String(s)) => Some(s.clone()),
            _ => None,
        };
        FunctionDef {
            id,
            name: text("name").unwrap_or_default(),
            alias: text("alias"),
            body: text("body").unwrap_or_default(),
            role: text("role"),
            parsed: OnceLock::new(),
        }
    }

    /// The body as a lambda, parsed once per schema version.
    pub fn lambda(&self) -> R<Arc<Lambda>> {
        let parsed = self
            .parsed
            .get_or_init(|| parse_body(&self.body).map_err(|e| e.to_string()));
        match parsed {
            Ok(l) => Ok(l.clone()),
            Err(message) => fail(
                ErrorCode::InvalidQuery,
                format!(
                    "The body of function `{}` does not parse: {message}",
                    self.name
                ),
            ),
        }
    }
}

/// Parses a stored body: it must be a single lambda.
pub fn parse_body(body: &str) -> Result<Arc<Lambda>, testudo_fql::ParseErrors> {
    let expr = testudo_fql::parse_lambda(body)?;
    match expr.kind {
        ExprKind::Lambda(l) => Ok(l),
        ExprKind::ShortLambda(short) => {
            // `(.x)` as a body: a one-parameter lambda over the implicit argument.
            let param = testudo_fql::ast::Name {
                text: crate::eval::IMPLICIT_ARG.to_string(),
                span: short.span,
            };
            Ok(Arc::new(Lambda {
                params: vec![Some(param)],
                variadic: None,
                body: (*short).clone(),
            }))
        }
        _ => Err(testudo_fql::ParseErrors(vec![
            testudo_fql::ParseError::new("Body must be a lambda expression.", expr.span),
        ])),
    }
}

/// Validates a whole function definition and returns its stored form. `own` is the
/// function being updated.
pub fn validate(it: &mut Interp<'_>, def: &Object, own: Option<DocId>, verb: &str) -> R<DataMap> {
    let mut failures = Vec::new();
    for key in def.keys() {
        if !FIELDS.contains(&key.as_str()) {
            failures.push(failure(key, "Unexpected field provided."));
        }
    }
    for (key, value) in def.iter() {
        if let Value::Func(_) = value {
            return fail(
                ErrorCode::InvalidType,
                "Anonymous functions cannot be stored. Use a string of FQL instead.",
            );
        }
        if key == "data" && !matches!(value, Value::Object(_) | Value::Null(_)) {
            failures.push(failure(
                key,
                format!("Expected Object, provided {}", value.type_name()),
            ));
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
    match def.get("body") {
        Some(Value::Str(body)) => {
            if let Err(e) = parse_body(body) {
                failures.push(failure(
                    "body",
                    e.0.first()
                        .map_or("Body must be a lambda expression.".to_string(), |p| {
                            p.message.clone()
                        }),
                ));
            }
        }
        None | Some(Value::Null(_)) => failures.push(failure("body", "Missing required field.")),
        Some(other) => failures.push(failure(
            "body",
            format!("Expected String, provided {}", other.type_name()),
        )),
    }
    for field in ["signature", "role"] {
        match def.get(field) {
            None | Some(Value::Null(_)) | Some(Value::Str(_)) => {}
            Some(other) => failures.push(failure(
                field,
                format!("Expected String, provided {}", other.type_name()),
            )),
        }
    }
    if let Some(Value::Str(role)) = def.get("role") {
        // Checked on every write, not only when the role changes: whoever changes the body
        // of a function decides what runs with its role.
        it.check_function_role(role)?;
        let builtin = matches!(&**role, "admin" | "server" | "server-readonly");
        if !builtin && !role_exists(it, role)? {
            failures.push(failure(
                "role",
                format!("The role `{role}` does not exist."),
            ));
        }
    }
    if let Some(Value::Str(sig)) = def.get("signature")
        && let Err(e) = testudo_fql::parse_type(sig)
    {
        failures.push(failure("signature", format!("Invalid signature: {e}")));
    }
    for (field, name) in &names {
        if let Some(taken) = super::name_taken(it, name, own.map(|id| (super::FUNCTION, id)))? {
            failures.push(failure(field, taken));
        }
    }
    if !failures.is_empty() {
        return Err(constraint_error(
            format!("Failed to {verb} document in collection Function."),
            failures,
        ));
    }
    let mut stored = DataMap::new();
    for field in FIELDS {
        if let Some(v) = def.get(*field).filter(|v| !v.is_null()) {
            stored.insert((*field).to_string(), to_data(v)?);
        }
    }
    Ok(stored)
}

/// Whether a custom role exists as this transaction sees it (a role created earlier in the
/// same query counts).
fn role_exists(it: &mut Interp<'_>, name: &str) -> R<bool> {
    Ok(super::read_all(it.db(), super::ROLE, &mut it.txn)?
        .iter()
        .any(|(_, fields)| fields.get("name") == Some(&Data::String(name.to_string()))))
}
