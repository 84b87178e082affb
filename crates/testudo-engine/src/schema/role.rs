//! Roles: privileges over resources (each action `true`, `false` or an FQL predicate) and
//! membership rules, as stored `Role` documents and as parsed with the schema.
//!
//! **Invariants:** a stored role's predicates all parse as lambdas of the arity their action
//! takes (checked when written); anything unparseable in a stored role grants nothing.

use std::collections::HashMap;
use std::sync::Arc;

use testudo_fql::ast::Lambda;
use testudo_model::{Data, DataMap, DocId};

use super::collection::{check_identifier, constraint_error, failure};
use super::function::parse_body;
use crate::authz::Action;
use crate::docs::to_data;
use crate::eval::{Interp, Object, R, Value};
use crate::mask::{self, FieldRule};

/// A predicate as stored: its source (for error summaries) and its parsed lambda.
#[derive(Debug, Clone)]
pub struct Predicate {
    pub lambda: Arc<Lambda>,
    pub source: Arc<str>,
}

#[derive(Debug, Clone)]
pub enum Policy {
    Allow,
    Predicate(Predicate),
}

#[derive(Debug)]
pub struct RoleDef {
    pub id: DocId,
    pub name: String,
    /// resource name → action → policy (absent or `false` = not granted).
    pub privileges: HashMap<String, HashMap<Action, Policy>>,
    /// Membership rules: collection name → optional predicate over the identity document.
    pub membership: Vec<(String, Option<Predicate>)>,
    /// Field masking rules by resource name (only resources that have some).
    pub field_rules: HashMap<String, Arc<Vec<FieldRule>>>,
}

impl RoleDef {
    pub fn policy(&self, resource: &str, action: Action) -> Option<&Policy> {
        self.privileges.get(resource)?.get(&action)
    }

    /// The fields of `resource` this role sees masked (empty: none).
    pub fn field_rules(&self, resource: &str) -> Option<&Arc<Vec<FieldRule>>> {
        self.field_rules.get(resource)
    }

    pub fn from_stored(id: DocId, fields: &DataMap) -> RoleDef {
        let name = match fields.get("name") {
            Some(Data::String(s)) => s.clone(),
            _ => String::new(),
        };
        let mut privileges: HashMap<String, HashMap<Action, Policy>> = HashMap::new();
        let mut field_rules: HashMap<String, Vec<FieldRule>> = HashMap::new();
        if let Some(Data::Array(items)) = fields.get("privileges") {
            for item in items {
                let Data::Object(p) = item else { continue };
                let (Some(Data::String(resource)), Some(Data::Object(actions))) =
                    (p.get("resource"), p.get("actions"))
                else {
                    continue;
                };
                let rules = mask::rules_of(p);
                if !rules.is_empty() {
                    field_rules
                        .entry(resource.clone())
                        .or_default()
                        .extend(rules);
                }
                let entry = privileges.entry(resource.clone()).or_default();
                for (action, policy) in actions {
                    let Some(action) = Action::parse(action) else {
                        continue;
                    };
                    let policy = match policy {
                        Data::Bool(true) => Policy::Allow,
                        Data::String(src) => match parse_body(src) {
                            Ok(lambda) => Policy::Predicate(Predicate {
                                lambda,
                                source: Arc::from(src.as_str()),
                            }),
                            Err(_) => continue,
                        },
                        _ => continue,
                    };
                    entry.insert(action, policy);
                }
            }
        }
        let mut membership = Vec::new();
        if let Some(Data::Array(items)) = fields.get("membership") {
            for item in items {
                let Data::Object(m) = item else { continue };
                let Some(Data::String(resource)) = m.get("resource") else {
                    continue;
                };
                let predicate = match m.get("predicate") {
                    Some(Data::String(src)) => match parse_body(src) {
                        Ok(lambda) => Some(Predicate {
                            lambda,
                            source: Arc::from(src.as_str()),
                        }),
                        // An unparseable predicate would grant membership to nobody.
                        Err(_) => continue,
                    },
                    _ => None,
                };
                membership.push((resource.clone(), predicate));
            }
        }
        RoleDef {
            id,
            name,
            privileges,
            membership,
            field_rules: field_rules
                .into_iter()
                .map(|(resource, rules)| (resource, Arc::new(rules)))
                .collect(),
        }
    }
}

/// How many arguments a predicate of each action takes (Fauna's rule).
fn arity_ok(action: Action, n: usize, variadic: bool) -> bool {
    if variadic {
        return true;
    }
    match action {
        Action::Read
        | Action::Create
        | Action::Delete
        | Action::HistoryRead
        | Action::UnrestrictedRead => n == 1,
        Action::Write => (2..=3).contains(&n),
        Action::CreateWithId => (1..=2).contains(&n),
        Action::HistoryWrite => n == 4,
        Action::Call => true,
    }
}

const FIELDS: &[&str] = &["name", "privileges", "membership", "data"];

/// Validates a role definition and returns its stored form.
pub fn validate(it: &mut Interp<'_>, def: &Object, own: Option<DocId>, verb: &str) -> R<DataMap> {
    let mut failures = Vec::new();
    for key in def.keys() {
        if !FIELDS.contains(&key.as_str()) {
            failures.push(failure(key, "Unexpected field provided."));
        }
    }
    match def.get("name") {
        Some(Value::Str(name))
            if matches!(&**name, "admin" | "server" | "server-readonly" | "client") =>
        {
            failures.push(failure(
                "name",
                format!("The role name `{name}` is reserved for a built-in role."),
            ));
        }
        Some(Value::Str(name)) => match check_identifier(name) {
            Some(problem) => failures.push(failure("name", problem)),
            None => {
                for (id, fields) in super::read_all(it.db(), super::ROLE, &mut it.txn)? {
                    if Some(id) != own
                        && fields.get("name") == Some(&Data::String(name.to_string()))
                    {
                        failures.push(failure(
                            "name",
                            format!("A role with the name `{name}` already exists."),
                        ));
                    }
                }
            }
        },
        _ => failures.push(failure("name", "Missing required field.")),
    }
    let list = |field: &str| match def.get(field) {
        None | Some(Value::Null(_)) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.to_vec()),
        Some(other) => Err(format!("Expected Array, provided {}", other.type_name())),
    };
    match list("privileges") {
        Err(problem) => failures.push(failure("privileges", problem)),
        Ok(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(problem) = check_privilege(item) {
                    failures.push(failure("privileges", format!("privilege {i}: {problem}")));
                }
            }
        }
    }
    match list("membership") {
        Err(problem) => failures.push(failure("membership", problem)),
        Ok(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(problem) = check_membership(item) {
                    failures.push(failure("membership", format!("membership {i}: {problem}")));
                }
            }
        }
    }
    if !failures.is_empty() {
        return Err(constraint_error(
            format!("Failed to {verb} document in collection Role."),
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

fn check_privilege(item: &Value) -> Option<String> {
    let Value::Object(p) = item else {
        return Some("expected `{ resource, actions }`".into());
    };
    if !matches!(p.get("resource"), Some(Value::Str(_))) {
        return Some("`resource` must be a String".into());
    }
    for key in p.keys() {
        if !matches!(
            key.as_str(),
            "resource" | "actions" | "mask" | "redact" | "hide"
        ) {
            return Some(format!("unexpected field `{key}`"));
        }
    }
    let Some(Value::Object(actions)) = p.get("actions") else {
        return Some("`actions` must be an Object".into());
    };
    if let Some(problem) = mask::check_privilege(p) {
        return Some(problem);
    }
    for (name, policy) in actions.iter() {
        let Some(action) = Action::parse(name) else {
            return Some(format!("unknown action `{name}`"));
        };
        match policy {
            Value::Bool(_) => {}
            Value::Str(src) => match parse_body(src) {
                Ok(lambda) => {
                    if !arity_ok(action, lambda.params.len(), lambda.variadic.is_some()) {
                        return Some(format!(
                            "the `{name}` predicate takes the wrong number of arguments"
                        ));
                    }
                }
                Err(e) => return Some(format!("the `{name}` predicate does not parse: {e}")),
            },
            other => {
                return Some(format!(
                    "`{name}` must be a Boolean or a predicate String, provided {}",
                    other.type_name()
                ));
            }
        }
    }
    None
}

fn check_membership(item: &Value) -> Option<String> {
    let Value::Object(m) = item else {
        return Some("expected `{ resource, predicate? }`".into());
    };
    if !matches!(m.get("resource"), Some(Value::Str(_))) {
        return Some("`resource` must be a String".into());
    }
    match m.get("predicate") {
        None | Some(Value::Null(_)) => None,
        Some(Value::Str(src)) => match parse_body(src) {
            Ok(l) if l.params.len() == 1 || l.variadic.is_some() => None,
            Ok(_) => Some("a membership predicate takes one argument".into()),
            Err(e) => Some(format!("the predicate does not parse: {e}")),
        },
        Some(_) => Some("`predicate` must be a String".into()),
    }
}
