//! Enforcing a collection's document schema on writes (field types, defaults, undeclared
//! fields, computed fields, check constraints) and computing computed fields on reads.
//!
//! **Invariant:** called from `docs.rs` for every user-collection write, before the version
//! is buffered (shape) and after it (checks, which read the new version); a failure fails
//! the query, so nothing of the write commits.

use std::sync::Arc;

use testudo_model::{CollId, Data, DataMap};

use crate::api::ErrorCode;
use crate::eval::{DocRef, Env, Interp, R, Value};
use crate::schema::CollectionDef;
use crate::schema::collection::{constraint_error, failure};
use crate::schema::fields::conforms;

impl Interp<'_> {
    /// Applies defaults (on create) and checks field types and undeclared fields.
    pub fn shape_document(
        &mut self,
        coll: CollId,
        creating: bool,
        verb: &str,
        fields: &mut DataMap,
    ) -> R<()> {
        let Some(def) = self.schema.collection_by_id(coll).cloned() else {
            return Ok(());
        };
        let docs = &def.documents;
        if docs.is_empty() {
            return Ok(());
        }
        let mut failures = Vec::new();
        for c in &docs.computed {
            if fields.contains_key(&c.name) {
                failures.push(failure(&c.name, "Cannot write to a computed field."));
            }
        }
        if creating {
            for f in &docs.fields {
                if let (Some(src), false) = (&f.default, fields.contains_key(&f.name)) {
                    let v = self.eval_default(src)?;
                    let d = crate::docs::to_data(&v)?;
                    if !matches!(d, Data::Null) {
                        fields.insert(f.name.clone(), d);
                    }
                }
            }
        }
        let schema = self.schema.clone();
        let coll_of_ref = |d: &Data| match d {
            Data::Ref { coll, .. } => schema.collection_by_id(*coll).map(|c| c.name.clone()),
            _ => None,
        };
        for f in &docs.fields {
            let value = fields.get(&f.name).unwrap_or(&Data::Null);
            if let Some(ty) = &f.ty
                && !conforms(ty, value, &coll_of_ref)
            {
                failures.push(failure(
                    &f.name,
                    format!("Expected {}, provided {}", f.signature, data_type(value)),
                ));
            }
        }
        if let Some(wildcard) = &docs.wildcard {
            for (k, v) in fields.iter() {
                if docs.fields.iter().any(|f| &f.name == k) {
                    continue;
                }
                let ok = wildcard
                    .as_ref()
                    .is_some_and(|w| conforms(w, v, &coll_of_ref));
                if !ok {
                    failures.push(failure(k, "Unexpected field provided."));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(constraint_error(
                format!("Failed to {verb} document in collection {}.", def.name),
                failures,
            ))
        }
    }

    fn eval_default(&mut self, src: &str) -> R<Value> {
        let query = testudo_fql::parse(src, 0).map_err(|e| {
            crate::eval::err(
                ErrorCode::InvalidSchema,
                format!("Invalid field default: {e}"),
            )
        })?;
        self.read_only(|it| it.eval_body(&query.body, &Env::default()))
    }

    /// Runs the collection's check constraints on the version just written.
    pub fn run_checks(&mut self, r: DocRef, verb: &str) -> R<()> {
        let Some(def) = self.schema.collection_by_id(r.coll).cloned() else {
            return Ok(());
        };
        let mut failures = Vec::new();
        for check in &def.documents.checks {
            let label = format!("check:{}", check.name);
            let result = self.read_only(|it| {
                it.call_schema_lambda(&check.lambda, &label, &check.body, vec![Value::Doc(r)])
            })?;
            if !matches!(result, Value::Bool(true)) {
                failures.push(crate::api::ConstraintFailure {
                    message: format!("Document failed check constraint `{}`", check.name),
                    paths: Vec::new(),
                });
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(constraint_error(
                format!("Failed to {verb} document in collection {}.", def.name),
                failures,
            ))
        }
    }

    /// The value of a computed field of a document, if the collection defines it.
    pub fn computed_field(&mut self, r: DocRef, name: &str) -> R<Option<Value>> {
        let Some(def) = self.schema.collection_by_id(r.coll).cloned() else {
            return Ok(None);
        };
        let Some(c) = def.documents.computed(name) else {
            return Ok(None);
        };
        let label = format!("computed:{}", c.name);
        let value = self.read_only(|it| {
            it.call_schema_lambda(&c.lambda, &label, &c.body, vec![Value::Doc(r)])
        })?;
        self.masked_computed(r, name, value)
    }

    /// A computed field's value as the caller's masking rules show it (`None`: hidden). The
    /// lambda already read the masked view; this masks the computed field by its own name.
    fn masked_computed(&mut self, r: DocRef, name: &str, value: Value) -> R<Option<Value>> {
        let action = self.read_action();
        Ok(match self.field_rules_for(r, action)? {
            Some(rules) => crate::mask::apply_to_field(name, value, &rules),
            None => Some(value),
        })
    }

    /// Every computed field of a document, in definition order.
    pub fn computed_fields(&mut self, r: DocRef) -> R<Vec<(String, Value)>> {
        let Some(def) = self.schema.collection_by_id(r.coll).cloned() else {
            return Ok(Vec::new());
        };
        computed_of(self, &def, r)
    }
}

fn computed_of(
    it: &mut Interp<'_>,
    def: &Arc<CollectionDef>,
    r: DocRef,
) -> R<Vec<(String, Value)>> {
    let mut out = Vec::with_capacity(def.documents.computed.len());
    for c in &def.documents.computed {
        let label = format!("computed:{}", c.name);
        let v = it.read_only(|it| {
            it.call_schema_lambda(&c.lambda, &label, &c.body, vec![Value::Doc(r)])
        })?;
        if let Some(v) = it.masked_computed(r, &c.name, v)? {
            out.push((c.name.clone(), v));
        }
    }
    Ok(out)
}

fn data_type(d: &Data) -> &'static str {
    match d {
        Data::Null => "Null",
        Data::Bool(_) => "Boolean",
        Data::Int(i) if i32::try_from(*i).is_ok() => "Int",
        Data::Int(_) => "Long",
        Data::Double(_) => "Double",
        Data::String(_) => "String",
        Data::Bytes(_) => "Bytes",
        Data::Time(_) | Data::TxnTime => "Time",
        Data::Date(_) => "Date",
        Data::Array(_) => "Array",
        Data::Object(_) => "Object",
        Data::Ref { .. } => "Ref",
    }
}
