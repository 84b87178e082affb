//! Field masking, beyond Fauna: a role's privilege on a collection may name fields this role
//! sees replaced by a fixed value (`mask: { ssn: "***-**-****" }`), as null
//! (`redact: ["salary"]`), or not at all (`hide: ["notes", "address.street"]`). A privilege
//! without `mask`, `redact` and `hide` means exactly what it means in Fauna. (Null masks have
//! their own list because stored objects cannot hold null values.)
//!
//! The rules are applied where the gate lets a document through (`docs.rs`), so every read
//! path sees the same masked view: documents, projections, `where`/`order` over fields,
//! computed fields (they read the masked view, and may be masked by name themselves), history
//! and `at(ts)`. An index whose terms or values cover a masked field would reveal it through
//! lookups or ordering, so a role that masks a field cannot use such an index at all.
//!
//! When several roles let the caller read a document, their rights add up as they do for
//! actions: a field stays masked only if every role that grants the read masks it (or a
//! field containing it).
//!
//! **Invariants:** rules apply only to user documents and never to meta fields (`id`, `coll`,
//! `ts`, `ttl`); writes always start from the stored fields, never from a masked view (a
//! masked value is never written back); stored rules that do not parse are ignored only
//! after validation refused them at write time.

use std::sync::Arc;

use testudo_model::{Data, DataMap};

use crate::eval::{Object, Value};
use crate::index::IndexDef;
use crate::index::path::{self, Segment};

/// What a role sees of one field.
#[derive(Clone, Debug, PartialEq)]
pub enum Treatment {
    /// The field reads as this value (when the document has the field).
    Mask(Data),
    /// The field is absent.
    Hide,
}

/// One rule: the field at `path` (object keys from the document's top level).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldRule {
    pub path: Vec<String>,
    pub treatment: Treatment,
}

const META_FIELDS: &[&str] = &["id", "coll", "ts", "ttl"];

/// A rule path: object keys only (`a`, `a.b`, `a['b c']`), never a meta field at the top.
fn parse_path(text: &str) -> Result<Vec<String>, String> {
    let segments = path::parse(text).ok_or_else(|| format!("`{text}` is not a field path"))?;
    let mut out = Vec::with_capacity(segments.len());
    for s in segments {
        match s {
            Segment::Field(name) => out.push(name),
            Segment::Index(_) => {
                return Err(format!(
                    "`{text}`: a masked field is named by object keys, not array positions"
                ));
            }
        }
    }
    if let Some(first) = out.first()
        && META_FIELDS.contains(&first.as_str())
    {
        return Err(format!("`{first}` is a meta field and cannot be masked"));
    }
    Ok(out)
}

/// Checks the `mask`, `redact` and `hide` fields of a privilege as written; the problem if
/// any.
pub fn check_privilege(privilege: &Object) -> Option<String> {
    let mut seen: Vec<Vec<String>> = Vec::new();
    let add = |text: &str, list: &str, seen: &mut Vec<Vec<String>>| match parse_path(text) {
        Ok(p) if seen.contains(&p) => Some(format!("`{text}` is given more than one treatment")),
        Ok(p) => {
            seen.push(p);
            None
        }
        Err(problem) => Some(format!("`{list}`: {problem}")),
    };
    match privilege.get("mask") {
        None | Some(Value::Null(_)) => {}
        Some(Value::Object(fields)) => {
            for (text, value) in fields.iter() {
                if let Some(problem) = add(text, "mask", &mut seen) {
                    return Some(problem);
                }
                if value.is_null() {
                    return Some(format!(
                        "`mask`: to show `{text}` as null, list it in `redact`"
                    ));
                }
                if crate::docs::to_data(value).is_err() {
                    return Some(format!("`mask`: the mask of `{text}` cannot be stored"));
                }
            }
        }
        Some(other) => {
            return Some(format!(
                "`mask` must be an Object of field paths to their masks, provided {}",
                other.type_name()
            ));
        }
    }
    for list in ["redact", "hide"] {
        match privilege.get(list) {
            None | Some(Value::Null(_)) => {}
            Some(Value::Array(items)) => {
                for item in items.iter() {
                    let Value::Str(text) = item else {
                        return Some(format!("`{list}` must be an Array of field paths"));
                    };
                    if let Some(problem) = add(text, list, &mut seen) {
                        return Some(problem);
                    }
                }
            }
            Some(other) => {
                return Some(format!(
                    "`{list}` must be an Array of field paths, provided {}",
                    other.type_name()
                ));
            }
        }
    }
    None
}

/// The rules of a stored privilege (validated when it was written).
pub fn rules_of(privilege: &DataMap) -> Vec<FieldRule> {
    let mut rules = Vec::new();
    if let Some(Data::Object(fields)) = privilege.get("mask") {
        for (text, value) in fields {
            if let Ok(path) = parse_path(text) {
                rules.push(FieldRule {
                    path,
                    treatment: Treatment::Mask(value.clone()),
                });
            }
        }
    }
    for (list, treatment) in [
        ("redact", Treatment::Mask(Data::Null)),
        ("hide", Treatment::Hide),
    ] {
        if let Some(Data::Array(items)) = privilege.get(list) {
            for item in items {
                if let Data::String(text) = item
                    && let Ok(path) = parse_path(text)
                {
                    rules.push(FieldRule {
                        path,
                        treatment: treatment.clone(),
                    });
                }
            }
        }
    }
    rules
}

/// The rules in force when these roles' rule lists all grant the read: a rule survives only
/// if every other role masks the same field or one containing it. Any role without rules
/// means no masking at all.
pub fn combine(per_role: &[Arc<Vec<FieldRule>>]) -> Vec<FieldRule> {
    if per_role.iter().any(|rules| rules.is_empty()) {
        return Vec::new();
    }
    let mut out: Vec<FieldRule> = Vec::new();
    for (i, rules) in per_role.iter().enumerate() {
        for rule in rules.iter() {
            let covered_by_all = per_role
                .iter()
                .enumerate()
                .all(|(j, other)| i == j || other.iter().any(|o| rule.path.starts_with(&o.path)));
            if !covered_by_all {
                continue;
            }
            match out.iter_mut().find(|r| r.path == rule.path) {
                // The less restrictive treatment wins: a mask shows that the field exists.
                Some(existing) => {
                    if existing.treatment == Treatment::Hide {
                        existing.treatment = rule.treatment.clone();
                    }
                }
                None => out.push(rule.clone()),
            }
        }
    }
    out
}

/// A document's fields as `rules` let the caller see them.
pub fn apply(fields: &Object, rules: &[FieldRule]) -> Object {
    let mut out = fields.clone();
    for rule in rules {
        apply_one(&mut out, &rule.path, &rule.treatment);
    }
    out.seal()
}

fn apply_one(object: &mut Object, path: &[String], treatment: &Treatment) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        match treatment {
            Treatment::Hide => {
                object.shift_remove(first);
            }
            Treatment::Mask(mask) => {
                if let Some(slot) = object.get_mut(first) {
                    *slot = crate::docs::from_data(mask.clone(), None);
                }
            }
        }
        return;
    }
    if let Some(Value::Object(inner)) = object.get(first) {
        let mut inner = (**inner).clone();
        apply_one(&mut inner, rest, treatment);
        object.insert(first.clone(), Value::object(inner));
    }
}

/// A top-level field computed outside the stored fields (a computed field) as `rules` let
/// the caller see it: `None` when hidden.
pub fn apply_to_field(name: &str, value: Value, rules: &[FieldRule]) -> Option<Value> {
    let mut one = Object::with_capacity(1);
    one.insert(name.to_string(), value);
    let masked = apply(&one, rules);
    masked.get(name).cloned()
}

/// The first field `rules` mask that `index` covers by a term or a value, if any: such an
/// index would reveal the field through lookups or through its order.
pub fn index_reveals(index: &IndexDef, rules: &[FieldRule]) -> Option<String> {
    let covered = index
        .terms
        .iter()
        .chain(index.values.iter().map(|v| &v.field));
    for field in covered {
        let keys: Vec<&str> = field
            .path
            .iter()
            .map_while(|s| match s {
                Segment::Field(name) => Some(name.as_str()),
                Segment::Index(_) => None,
            })
            .collect();
        for rule in rules {
            let n = keys.len().min(rule.path.len());
            if keys[..n].iter().zip(&rule.path[..n]).all(|(a, b)| *a == b) {
                return Some(rule.path.join("."));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, treatment: Treatment) -> FieldRule {
        FieldRule {
            path: parse_path(path).unwrap(),
            treatment,
        }
    }

    fn obj(pairs: &[(&str, Value)]) -> Object {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn meta_fields_and_array_positions_cannot_be_masked() {
        assert!(parse_path("ts").is_err());
        assert!(parse_path(".id").is_err());
        assert!(parse_path("tags[0]").is_err());
        assert_eq!(parse_path("address.street").unwrap(), ["address", "street"]);
    }

    #[test]
    fn a_mask_replaces_a_present_field_and_hide_removes_it() {
        let fields = obj(&[
            ("name", Value::Str("Ada".into())),
            ("ssn", Value::Str("123-45-6789".into())),
            ("notes", Value::Str("secret".into())),
        ]);
        let rules = vec![
            rule("ssn", Treatment::Mask(Data::String("***".into()))),
            rule("notes", Treatment::Hide),
            rule("salary", Treatment::Mask(Data::Null)),
        ];
        let seen = apply(&fields, &rules);
        assert!(matches!(seen.get("ssn"), Some(Value::Str(s)) if &**s == "***"));
        assert!(seen.get("notes").is_none());
        // A mask never invents a field the document does not have.
        assert!(seen.get("salary").is_none());
        assert!(matches!(seen.get("name"), Some(Value::Str(s)) if &**s == "Ada"));
    }

    #[test]
    fn nested_paths_mask_inside_objects() {
        let address = obj(&[
            ("street", Value::Str("1 Main St".into())),
            ("city", Value::Str("Paris".into())),
        ]);
        let fields = obj(&[("address", Value::object(address))]);
        let seen = apply(&fields, &[rule("address.street", Treatment::Hide)]);
        let Some(Value::Object(a)) = seen.get("address") else {
            panic!("address kept");
        };
        assert!(a.get("street").is_none());
        assert!(a.get("city").is_some());
    }

    #[test]
    fn roles_combine_so_a_field_stays_masked_only_if_every_role_masks_it() {
        let hides_address = Arc::new(vec![rule("address", Treatment::Hide)]);
        let hides_street = Arc::new(vec![rule("address.street", Treatment::Hide)]);
        let masks_street = Arc::new(vec![rule("address.street", Treatment::Mask(Data::Null))]);
        let none = Arc::new(Vec::new());
        assert_eq!(
            combine(&[hides_address.clone(), hides_street.clone()]),
            vec![rule("address.street", Treatment::Hide)]
        );
        assert_eq!(
            combine(&[hides_street, masks_street]),
            vec![rule("address.street", Treatment::Mask(Data::Null))]
        );
        assert!(combine(&[hides_address, none]).is_empty());
    }

    #[test]
    fn an_index_over_a_masked_field_or_inside_it_reveals_it() {
        use crate::index::{FieldSpec, Status, ValueSpec};
        let field = |text: &str| FieldSpec {
            path: path::parse(text).unwrap(),
            text: text.to_string(),
            mva: false,
        };
        let by_street = IndexDef::new(
            "byStreet",
            vec![field("address.street")],
            vec![],
            Status::Active,
        );
        let by_city = IndexDef::new(
            "byCity",
            vec![field("address.city")],
            vec![ValueSpec {
                field: field("salary"),
                desc: false,
            }],
            Status::Active,
        );
        let rules = vec![rule("address", Treatment::Hide)];
        assert_eq!(
            index_reveals(&by_street, &rules).as_deref(),
            Some("address")
        );
        let rules = vec![rule("salary", Treatment::Mask(Data::Null))];
        assert_eq!(index_reveals(&by_city, &rules).as_deref(), Some("salary"));
        let rules = vec![rule("address.zip", Treatment::Hide)];
        assert_eq!(index_reveals(&by_city, &rules), None);
    }
}
