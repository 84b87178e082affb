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
    check_indexes_and_constraints(def, &mut failures)?;
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

/// Collection methods an index may not be named after.
const COLLECTION_METHODS: &[&str] = &[
    "all",
    "where",
    "firstWhere",
    "create",
    "createData",
    "byId",
    "definition",
    "toString",
];

fn failure_at(path: Vec<PathElem>, message: impl Into<String>) -> ConstraintFailure {
    ConstraintFailure {
        message: message.into(),
        paths: vec![path],
    }
}

fn field_path(parts: &[&str]) -> Vec<PathElem> {
    parts
        .iter()
        .map(|p| PathElem::Field((*p).to_string()))
        .collect()
}

/// Checks the `indexes`, `constraints`, `computed_fields`, `fields` and `wildcard` of a
/// definition.
fn check_indexes_and_constraints(def: &Object, failures: &mut Vec<ConstraintFailure>) -> R<()> {
    if let Some(Value::Object(computed)) = def.get("computed_fields") {
        for (name, spec) in computed.iter() {
            let at = field_path(&["computed_fields", name]);
            let problem = match spec {
                Value::Object(o) => match o.get("body") {
                    Some(Value::Str(body)) => super::function::parse_body(body)
                        .err()
                        .map(|e| e.to_string()),
                    _ => Some("Expected a String `body`.".to_string()),
                },
                other => Some(format!("Expected Object, provided {}", other.type_name())),
            };
            if let Some(p) = problem.or_else(|| check_identifier(name)) {
                failures.push(failure_at(at, p));
            }
        }
    }
    if let Some(Value::Object(fields)) = def.get("fields") {
        for (name, spec) in fields.iter() {
            let at = field_path(&["fields", name]);
            let problem = match spec {
                Value::Object(o) => {
                    let sig = match o.get("signature") {
                        Some(Value::Str(sig)) => testudo_fql::parse_type(sig)
                            .err()
                            .map(|e| format!("Invalid signature: {e}")),
                        None | Some(Value::Null(_)) => None,
                        Some(other) => {
                            Some(format!("Expected String, provided {}", other.type_name()))
                        }
                    };
                    let default = match o.get("default") {
                        Some(Value::Str(src)) => testudo_fql::parse(src, 0)
                            .err()
                            .map(|e| format!("Invalid default: {e}")),
                        None | Some(Value::Null(_)) => None,
                        Some(other) => {
                            Some(format!("Expected String, provided {}", other.type_name()))
                        }
                    };
                    sig.or(default)
                }
                other => Some(format!("Expected Object, provided {}", other.type_name())),
            };
            if let Some(p) = problem {
                failures.push(failure_at(at, p));
            }
        }
    }
    if let Some(Value::Str(w)) = def.get("wildcard")
        && let Err(e) = testudo_fql::parse_type(w)
    {
        failures.push(failure("wildcard", format!("Invalid signature: {e}")));
    }
    if let Some(Value::Object(indexes)) = def.get("indexes") {
        for (name, spec) in indexes.iter() {
            let at = field_path(&["indexes", name]);
            if let Some(problem) = check_identifier(name) {
                failures.push(failure_at(at, problem));
                continue;
            }
            if COLLECTION_METHODS.contains(&name.as_str()) {
                failures.push(failure_at(
                    at,
                    format!("The name `{name}` is reserved for a collection method."),
                ));
                continue;
            }
            match to_data(spec)? {
                Data::Object(map) => {
                    if let Err(problem) = crate::index::parse_index(name, &map) {
                        failures.push(failure_at(at, problem));
                    }
                }
                _ => failures.push(failure_at(
                    at,
                    format!("Expected Object, provided {}", spec.type_name()),
                )),
            }
        }
    }
    if let Some(Value::Array(constraints)) = def.get("constraints") {
        for (i, c) in constraints.iter().enumerate() {
            let at = vec![
                PathElem::Field("constraints".into()),
                PathElem::Index(i as i64),
            ];
            let problem = match c {
                Value::Object(o) if o.len() == 1 && o.contains_key("unique") => {
                    match to_data(&o["unique"])? {
                        Data::Array(fields) if !fields.is_empty() => fields
                            .iter()
                            .map(crate::index::parse_field)
                            .collect::<Result<Vec<_>, _>>()
                            .err(),
                        _ => Some("Expected a non-empty Array of fields in `unique`.".to_string()),
                    }
                }
                Value::Object(o) if o.len() == 1 && o.contains_key("check") => match &o["check"] {
                    Value::Object(check) => match (check.get("name"), check.get("body")) {
                        (Some(Value::Str(name)), Some(Value::Str(body))) => check_identifier(name)
                            .or_else(|| {
                                super::function::parse_body(body)
                                    .err()
                                    .map(|e| e.to_string())
                            }),
                        _ => Some(
                            "Expected `{ name, body }` with String values in `check`.".to_string(),
                        ),
                    },
                    other => Some(format!("Expected Object, provided {}", other.type_name())),
                },
                _ => {
                    Some("Expected `{ unique: [...] }` or `{ check: { name, body } }`.".to_string())
                }
            };
            if let Some(problem) = problem {
                failures.push(failure_at(at, problem));
            }
        }
    }
    Ok(())
}

/// Gives every index of a new or changed definition its build state: an index already
/// built keeps it; a new one is built right here when the collection is small (or new), or
/// marked `pending` for the background builder. Unique constraints are always checked
/// against the existing documents here. Returns whether a background build is needed.
pub fn prepare_indexes(
    it: &mut Interp<'_>,
    coll: CollId,
    old: Option<&DataMap>,
    new: &mut DataMap,
) -> R<bool> {
    let before = old
        .map(crate::index::CollectionIndexes::from_definition)
        .unwrap_or_default();
    let after = crate::index::CollectionIndexes::from_definition(new);
    let built = |id: u64| before.indexes.iter().any(|i| i.id == id && i.queryable());
    let fresh: Vec<_> = after
        .indexes
        .iter()
        .filter(|i| !built(i.id))
        .cloned()
        .collect();
    let fresh_uniques: Vec<_> = after
        .uniques
        .iter()
        .filter(|u| !before.uniques.iter().any(|b| b.index.id == u.index.id))
        .cloned()
        .collect();

    let mut background = false;
    if !fresh.is_empty() || !fresh_uniques.is_empty() {
        let docs = if old.is_none() {
            Vec::new()
        } else {
            existing_docs(it, coll, crate::index::SYNC_BUILD_LIMIT + 1)?
        };
        let small = docs.len() <= crate::index::SYNC_BUILD_LIMIT;
        let db = it.db();
        for index in &fresh {
            if small {
                for (id, fields) in &docs {
                    for (k, v) in index.entries(db, coll, *id, fields) {
                        it.txn.put(k, v);
                    }
                }
            } else {
                background = true;
            }
        }
        if !fresh_uniques.is_empty() {
            let all = if small {
                docs
            } else {
                existing_docs(it, coll, usize::MAX)?
            };
            for unique in &fresh_uniques {
                let mut seen = std::collections::HashSet::new();
                for (id, fields) in &all {
                    for (k, v) in unique.index.entries(db, coll, *id, fields) {
                        if !seen.insert(k[..k.len().saturating_sub(8)].to_vec()) {
                            let paths = unique
                                .fields
                                .iter()
                                .map(|f| {
                                    vec![PathElem::Field(
                                        f.text.trim_start_matches('.').to_string(),
                                    )]
                                })
                                .collect();
                            let mut e =
                                err(ErrorCode::ConstraintFailure, "Failed unique constraint.");
                            e.constraint_failures = vec![ConstraintFailure {
                                message: "Existing documents violate the unique constraint.".into(),
                                paths,
                            }];
                            return Err(e);
                        }
                        it.txn.put(k, v);
                    }
                }
            }
        }
    }
    // Entries of indexes the new definition no longer has are garbage.
    for gone in before
        .maintained()
        .filter(|b| !after.maintained().any(|a| a.id == b.id))
    {
        it.txn.put(
            crate::keys::garbage_marker(it.db(), coll, Some(gone.id)),
            Vec::new(),
        );
    }
    // Record each index's state in the stored definition.
    if let Some(Data::Object(indexes)) = new.get_mut("indexes") {
        for (name, spec) in indexes.iter_mut() {
            let Data::Object(spec) = spec else { continue };
            let Some(index) = after.index(name) else {
                continue;
            };
            let active = built(index.id) || !(background && fresh.iter().any(|f| f.id == index.id));
            spec.insert("queryable".into(), Data::Bool(active));
            spec.insert(
                "status".into(),
                Data::String(if active { "active" } else { "pending" }.into()),
            );
        }
    }
    Ok(background)
}

/// Up to `limit` documents of a collection, as this transaction sees them.
fn existing_docs(it: &mut Interp<'_>, coll: CollId, limit: usize) -> R<Vec<(DocId, DataMap)>> {
    let range = crate::keys::doc_range(it.db(), coll, None, None);
    let page = it
        .txn
        .scan(&range, testudo_storage::ScanOrder::Ascending, limit, None)?;
    let mut out = Vec::with_capacity(page.entries.len());
    for (key, read) in page.entries {
        if let (Some(id), Some(bytes)) = (crate::keys::doc_id_of(&key), read.value) {
            out.push((id, testudo_model::codec::decode_doc(&bytes)?.fields));
        }
    }
    Ok(out)
}
