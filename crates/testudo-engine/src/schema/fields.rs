//! A collection's document schema beyond indexes: check constraints, computed fields, and
//! typed field definitions with defaults (`fields`, `wildcard`).
//!
//! All bodies and types are parsed once, when the schema is loaded, from the stored
//! definition (which was validated when written).
//!
//! **Invariants:** a document that fails a check or a field type is never committed (the
//! write's query fails with `constraint_failure`); computed fields are never stored.

use std::sync::Arc;

use testudo_fql::ast::{ExprKind, Lambda, TypeExpr, TypeKind};
use testudo_model::{Data, DataMap};

use super::function::parse_body;

#[derive(Debug)]
pub struct CheckDef {
    pub name: String,
    pub lambda: Arc<Lambda>,
    pub body: String,
}

#[derive(Debug)]
pub struct ComputedDef {
    pub name: String,
    pub lambda: Arc<Lambda>,
    pub body: String,
}

#[derive(Debug)]
pub struct FieldDef {
    pub name: String,
    pub ty: Option<TypeExpr>,
    /// The signature as written.
    pub signature: String,
    /// FQL source of the default value.
    pub default: Option<String>,
}

/// What a collection's definition says about its documents' shape.
#[derive(Debug, Default)]
pub struct DocumentSchema {
    pub checks: Vec<CheckDef>,
    pub computed: Vec<ComputedDef>,
    pub fields: Vec<FieldDef>,
    /// `None`: no field definitions at all (anything goes). `Some(None)`: declared fields
    /// only. `Some(Some(t))`: undeclared fields must have type `t`.
    pub wildcard: Option<Option<TypeExpr>>,
}

impl DocumentSchema {
    pub fn from_definition(def: &DataMap) -> DocumentSchema {
        let mut out = DocumentSchema::default();
        if let Some(Data::Array(constraints)) = def.get("constraints") {
            for c in constraints {
                if let Data::Object(c) = c
                    && let Some(Data::Object(check)) = c.get("check")
                    && let (Some(Data::String(name)), Some(Data::String(body))) =
                        (check.get("name"), check.get("body"))
                    && let Ok(lambda) = parse_body(body)
                {
                    out.checks.push(CheckDef {
                        name: name.clone(),
                        lambda,
                        body: body.clone(),
                    });
                }
            }
        }
        if let Some(Data::Object(computed)) = def.get("computed_fields") {
            for (name, spec) in computed {
                if let Data::Object(spec) = spec
                    && let Some(Data::String(body)) = spec.get("body")
                    && let Ok(lambda) = parse_body(body)
                {
                    out.computed.push(ComputedDef {
                        name: name.clone(),
                        lambda,
                        body: body.clone(),
                    });
                }
            }
        }
        let declared = def.get("fields");
        if let Some(Data::Object(fields)) = declared {
            for (name, spec) in fields {
                let Data::Object(spec) = spec else { continue };
                let (ty, signature) = match spec.get("signature") {
                    Some(Data::String(s)) => (testudo_fql::parse_type(s).ok(), s.clone()),
                    _ => (None, "Any".to_string()),
                };
                let default = match spec.get("default") {
                    Some(Data::String(s)) => Some(s.clone()),
                    _ => None,
                };
                out.fields.push(FieldDef {
                    name: name.clone(),
                    ty,
                    signature,
                    default,
                });
            }
        }
        let wildcard = match def.get("wildcard") {
            Some(Data::String(s)) => testudo_fql::parse_type(s).ok(),
            _ => None,
        };
        if declared.is_some() || wildcard.is_some() {
            out.wildcard = Some(wildcard);
        }
        out
    }

    pub fn computed(&self, name: &str) -> Option<&ComputedDef> {
        self.computed.iter().find(|c| c.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.computed.is_empty() && self.wildcard.is_none()
    }
}

/// Does `value` have type `ty`? `coll_name` resolves collection names used as types
/// (`Ref<Author>`, `Author`) to the stored reference's collection.
pub fn conforms(
    ty: &TypeExpr,
    value: &Data,
    coll_of_ref: &dyn Fn(&Data) -> Option<String>,
) -> bool {
    match &ty.kind {
        TypeKind::Named { name, args } => match (name.text.as_str(), value) {
            ("Any", _) => true,
            ("Never", _) => false,
            ("Null" | "null", v) => matches!(v, Data::Null),
            ("String", Data::String(_)) => true,
            ("Boolean", Data::Bool(_)) => true,
            ("Number", Data::Int(_) | Data::Double(_)) => true,
            ("Int", Data::Int(i)) => i32::try_from(*i).is_ok(),
            ("Long", Data::Int(_)) => true,
            ("Double" | "Float", Data::Double(_)) => true,
            ("Time", Data::Time(_) | Data::TxnTime) => true,
            ("Date", Data::Date(_)) => true,
            ("Bytes", Data::Bytes(_)) => true,
            ("Object" | "Struct", Data::Object(_)) => true,
            ("Array", Data::Array(items)) => match args.first() {
                Some(elem) => items.iter().all(|i| conforms(elem, i, coll_of_ref)),
                None => true,
            },
            ("Ref", v @ Data::Ref { .. }) => match args.first() {
                Some(TypeExpr {
                    kind: TypeKind::Named { name, .. },
                    ..
                }) => coll_of_ref(v).as_deref() == Some(name.text.as_str()),
                _ => true,
            },
            (other, v @ Data::Ref { .. }) => coll_of_ref(v).as_deref() == Some(other),
            _ => false,
        },
        TypeKind::Literal(e) => match (&e.kind, value) {
            (ExprKind::Str(s), Data::String(v)) => s == v,
            (ExprKind::Int(i), Data::Int(v)) => i64::from(*i) == *v,
            (ExprKind::Long(i), Data::Int(v)) => i == v,
            (ExprKind::Bool(b), Data::Bool(v)) => b == v,
            (ExprKind::Null, Data::Null) => true,
            _ => false,
        },
        TypeKind::Object { fields, wildcard } => {
            let Data::Object(map) = value else {
                return false;
            };
            for (name, fty, _) in fields {
                let v = map.get(&name.text).unwrap_or(&Data::Null);
                if !conforms(fty, v, coll_of_ref) {
                    return false;
                }
            }
            map.iter().all(|(k, v)| {
                fields.iter().any(|(n, _, _)| &n.text == k)
                    || wildcard
                        .as_ref()
                        .is_some_and(|w| conforms(w, v, coll_of_ref))
            })
        }
        TypeKind::Tuple(items) => match value {
            Data::Array(values) => {
                values.len() == items.len()
                    && items
                        .iter()
                        .zip(values)
                        .all(|(t, v)| conforms(t, v, coll_of_ref))
            }
            _ => false,
        },
        TypeKind::Optional(inner) => {
            matches!(value, Data::Null) || conforms(inner, value, coll_of_ref)
        }
        TypeKind::Union(a, b) => conforms(a, value, coll_of_ref) || conforms(b, value, coll_of_ref),
        TypeKind::Intersection(a, b) => {
            conforms(a, value, coll_of_ref) && conforms(b, value, coll_of_ref)
        }
        TypeKind::Function { .. } => false,
    }
}
