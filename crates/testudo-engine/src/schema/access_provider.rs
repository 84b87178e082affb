//! Access providers: external identity providers whose JWTs authenticate to one database.
//! A provider names the token issuer (`iss`, matched exactly), where its signing keys are
//! published (`jwks_uri`), and the custom roles its tokens get (each optionally only when
//! a predicate over the token's claims holds). The database's `audience` is written by the
//! engine on every save and cannot be set.
//!
//! **Invariants:** a stored provider's issuer is unique in its database; every role it
//! names existed when it was saved and is a custom role (built-in roles cannot be given to
//! outside tokens); every predicate parses as a one-argument lambda.

use std::sync::Arc;

use testudo_model::{Data, DataMap, DbId, DocId};

use super::collection::{check_identifier, constraint_error, failure};
use super::function::parse_body;
use super::role::Predicate;
use crate::docs::to_data;
use crate::eval::{Interp, Object, R, Value};

const FIELDS: &[&str] = &["name", "issuer", "jwks_uri", "roles", "data"];

/// The prefix of every database audience; the database's global id follows it. Fauna's own
/// form, so identity providers configured for Fauna need only the id changed.
pub const AUDIENCE_PREFIX: &str = "https://db.fauna.com/db/";

/// The audience JWTs for database `db` carry.
pub fn audience(db: DbId) -> String {
    format!("{AUDIENCE_PREFIX}{}", db.0)
}

/// A provider as authentication uses it.
#[derive(Debug, Clone)]
pub struct ProviderDef {
    pub id: DocId,
    pub issuer: String,
    pub jwks_uri: String,
    /// Role names, each with an optional predicate over the claims.
    pub roles: Vec<(String, Option<Predicate>)>,
}

impl ProviderDef {
    pub fn from_stored(id: DocId, fields: &DataMap) -> Option<ProviderDef> {
        let text = |k: &str| match fields.get(k) {
            Some(Data::String(s)) => Some(s.clone()),
            _ => None,
        };
        let mut roles = Vec::new();
        let entries = match fields.get("roles") {
            Some(Data::Array(items)) => items.clone(),
            Some(single) => vec![single.clone()],
            None => Vec::new(),
        };
        for entry in entries {
            match entry {
                Data::String(name) => roles.push((name, None)),
                Data::Object(o) => {
                    let Some(Data::String(name)) = o.get("role") else {
                        continue;
                    };
                    let predicate = match o.get("predicate") {
                        Some(Data::String(src)) => match parse_body(src) {
                            Ok(lambda) => Some(Predicate {
                                lambda,
                                source: Arc::from(src.as_str()),
                            }),
                            // Unparseable: this entry grants nothing.
                            Err(_) => continue,
                        },
                        _ => None,
                    };
                    roles.push((name.clone(), predicate));
                }
                _ => {}
            }
        }
        Some(ProviderDef {
            id,
            issuer: text("issuer")?,
            jwks_uri: text("jwks_uri")?,
            roles,
        })
    }
}

/// Validates a provider definition and returns its stored form (with the audience).
pub fn validate(it: &mut Interp<'_>, def: &Object, own: Option<DocId>, verb: &str) -> R<DataMap> {
    let mut failures = Vec::new();
    for key in def.keys() {
        if key == "audience" {
            // Read back from a stored provider on update: accepted only unchanged.
            let unchanged =
                matches!(def.get(key), Some(Value::Str(a)) if **a == *audience(it.db()));
            if !unchanged {
                failures.push(failure(
                    key,
                    "The audience is set by the database and cannot be changed.",
                ));
            }
        } else if !FIELDS.contains(&key.as_str()) {
            failures.push(failure(key, "Unexpected field provided."));
        }
    }
    let others = super::read_all(it.db(), super::ACCESS_PROVIDER, &mut it.txn)?;
    let others: Vec<_> = others
        .into_iter()
        .filter(|(id, _)| Some(*id) != own)
        .collect();
    match def.get("name") {
        Some(Value::Str(name)) => match check_identifier(name) {
            Some(problem) => failures.push(failure("name", problem)),
            None => {
                if others
                    .iter()
                    .any(|(_, f)| f.get("name") == Some(&Data::String(name.to_string())))
                {
                    failures.push(failure(
                        "name",
                        format!("An access provider with the name `{name}` already exists."),
                    ));
                }
            }
        },
        _ => failures.push(failure("name", "Missing required field.")),
    }
    match def.get("issuer") {
        Some(Value::Str(issuer)) if !issuer.is_empty() => {
            if others
                .iter()
                .any(|(_, f)| f.get("issuer") == Some(&Data::String(issuer.to_string())))
            {
                failures.push(failure(
                    "issuer",
                    format!("An access provider with the issuer `{issuer}` already exists."),
                ));
            }
        }
        _ => failures.push(failure("issuer", "Missing required field.")),
    }
    match def.get("jwks_uri") {
        Some(Value::Str(uri)) => {
            let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
            if !matches!(scheme.as_deref(), Some("https" | "http" | "file")) {
                failures.push(failure(
                    "jwks_uri",
                    "Expected an https:, http: or file: URI.",
                ));
            }
        }
        _ => failures.push(failure("jwks_uri", "Missing required field.")),
    }
    let entries = match def.get("roles") {
        None | Some(Value::Null(_)) => Vec::new(),
        Some(Value::Array(items)) => items.to_vec(),
        Some(single) => vec![single.clone()],
    };
    let existing = super::read_all(it.db(), super::ROLE, &mut it.txn)?;
    for (i, entry) in entries.iter().enumerate() {
        if let Some(problem) = check_role_entry(entry, &existing) {
            failures.push(failure("roles", format!("role {i}: {problem}")));
        }
    }
    if !failures.is_empty() {
        return Err(constraint_error(
            format!("Failed to {verb} document in collection AccessProvider."),
            failures,
        ));
    }
    let mut stored = DataMap::new();
    for field in FIELDS {
        if let Some(v) = def.get(*field).filter(|v| !v.is_null()) {
            stored.insert((*field).to_string(), to_data(v)?);
        }
    }
    stored.insert("audience".into(), Data::String(audience(it.db())));
    Ok(stored)
}

fn check_role_entry(entry: &Value, roles: &[(DocId, DataMap)]) -> Option<String> {
    let (name, predicate) = match entry {
        Value::Str(name) => (name.to_string(), None),
        Value::Object(o) => match o.get("role") {
            Some(Value::Str(name)) => (name.to_string(), o.get("predicate").cloned()),
            _ => return Some("expected a role name or `{ role, predicate }`".into()),
        },
        _ => return Some("expected a role name or `{ role, predicate }`".into()),
    };
    if matches!(
        name.as_str(),
        "admin" | "server" | "server-readonly" | "client"
    ) {
        return Some(format!(
            "the built-in role `{name}` cannot be given to an access provider"
        ));
    }
    if !roles
        .iter()
        .any(|(_, f)| f.get("name") == Some(&Data::String(name.clone())))
    {
        return Some(format!("the role `{name}` does not exist"));
    }
    match predicate {
        None | Some(Value::Null(_)) => None,
        Some(Value::Str(src)) => match parse_body(&src) {
            Ok(l) if l.params.len() == 1 || l.variadic.is_some() => None,
            Ok(_) => Some("a role predicate takes one argument (the token's claims)".into()),
            Err(e) => Some(format!("the predicate does not parse: {e}")),
        },
        Some(_) => Some("`predicate` must be a String".into()),
    }
}
