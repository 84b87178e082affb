//! Turning a query's result value into an [`Output`] tree, inside the query's transaction.
//!
//! Documents that appear directly in the result (or in a set page) are read in full;
//! documents stored inside other documents' fields stay references; sets become their first
//! page with a sealed `after` cursor, recursively up to [`MAX_SET_DEPTH`].
//!
//! **Invariant:** every document read here goes through `Interp::load_doc` (the gate).

use testudo_model::{DocOutput, Output, RefTarget};

use crate::docs::DocState;
use crate::eval::{DocRef, Func, Interp, R, Value};
use crate::schema;
use crate::set::{self, Pos};

/// Sets nested deeper than this are returned as cursors, not pages (Fauna's limit).
pub const MAX_SET_DEPTH: usize = 10;
/// Containers nested deeper than this cannot be returned.
pub const MAX_OUTPUT_DEPTH: usize = 512;

impl Interp<'_> {
    pub fn materialize(&mut self, v: &Value) -> R<Output> {
        self.materialize_at(v, 0, 0)
    }

    fn materialize_at(&mut self, v: &Value, depth: usize, set_depth: usize) -> R<Output> {
        if depth > MAX_OUTPUT_DEPTH {
            return crate::eval::fail(
                crate::api::ErrorCode::ValueTooLarge,
                "Result nests too deeply to return.",
            );
        }
        Ok(match v {
            Value::Doc(r) => self.materialize_doc(*r, depth, set_depth)?,
            Value::Set(s) => {
                if set_depth >= MAX_SET_DEPTH {
                    return Ok(Output::SetCursor(self.seal_cursor(
                        s,
                        &Pos::Start,
                        s.page_size.unwrap_or(set::DEFAULT_PAGE_SIZE),
                    )?));
                }
                let size = s.page_size.unwrap_or(set::DEFAULT_PAGE_SIZE);
                let page = set::page(self, &s.expr, &Pos::Start, size)?;
                let mut data = Vec::with_capacity(page.data.len());
                for item in &page.data {
                    data.push(self.materialize_at(item, depth + 1, set_depth + 1)?);
                }
                let after = match page.after {
                    Some(pos) => Some(self.seal_cursor(s, &pos, size)?),
                    None => None,
                };
                Output::SetPage { data, after }
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(self.materialize_at(item, depth + 1, set_depth)?);
                }
                Output::Array(out)
            }
            Value::Object(o) => {
                let mut out = Vec::with_capacity(o.len());
                for (k, item) in o.iter() {
                    out.push((k.clone(), self.materialize_at(item, depth + 1, set_depth)?));
                }
                Output::Object(out)
            }
            other => scalar(other),
        })
    }

    fn materialize_doc(&mut self, r: DocRef, depth: usize, set_depth: usize) -> R<Output> {
        let target = self.ref_target(r)?;
        match self.load_doc(r)? {
            DocState::Missing(cause) => Ok(Output::NullDoc { target, cause }),
            DocState::Live(doc) => {
                let named = schema::is_named(r.coll);
                let mut fields = Vec::with_capacity(doc.fields.len() + 1);
                if let (Some(ttl), false) = (doc.ttl, named) {
                    fields.push(("ttl".to_string(), Output::Time(ttl)));
                }
                for (k, v) in doc.fields.iter() {
                    if named && k == "name" {
                        continue;
                    }
                    fields.push((k.clone(), self.field_output(v, depth + 1, set_depth)?));
                }
                if r.coll.is_user() {
                    for (k, v) in self.computed_fields(r)? {
                        fields.push((k, self.materialize_at(&v, depth + 1, set_depth)?));
                    }
                }
                Ok(Output::Doc(Box::new(DocOutput {
                    target,
                    ts: doc.ts,
                    fields,
                })))
            }
        }
    }

    /// A stored field: references inside it stay references.
    fn field_output(&mut self, v: &Value, depth: usize, set_depth: usize) -> R<Output> {
        Ok(match v {
            Value::Doc(r) => Output::Ref(self.ref_target(*r)?),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(self.field_output(item, depth + 1, set_depth)?);
                }
                Output::Array(out)
            }
            Value::Object(o) => {
                let mut out = Vec::with_capacity(o.len());
                for (k, item) in o.iter() {
                    out.push((k.clone(), self.field_output(item, depth + 1, set_depth)?));
                }
                Output::Object(out)
            }
            other => self.materialize_at(other, depth, set_depth)?,
        })
    }

    /// How a document is named on the wire: by id, or by name for schema documents.
    fn ref_target(&mut self, r: DocRef) -> R<RefTarget> {
        let coll = self.coll_name(r.coll);
        if schema::is_named(r.coll) {
            let name = match self.load_doc(r)? {
                DocState::Live(doc) => match doc.fields.get("name") {
                    Some(Value::Str(s)) => s.to_string(),
                    _ => r.id.to_string(),
                },
                DocState::Missing(_) => self.named_doc_label(r),
            };
            return Ok(RefTarget::Named { coll, name });
        }
        Ok(RefTarget::Id { coll, id: r.id.0 })
    }

    /// The name to show for a schema document that no longer exists.
    fn named_doc_label(&self, r: DocRef) -> String {
        if r.coll == schema::COLLECTION
            && let Some(def) = self.schema.collection_by_id(testudo_model::CollId(r.id.0))
        {
            return def.name.clone();
        }
        r.id.to_string()
    }
}

fn scalar(v: &Value) -> Output {
    match v {
        Value::Null(_) => Output::Null,
        Value::Bool(b) => Output::Bool(*b),
        Value::Int(i) => Output::Int(*i),
        Value::Long(l) => Output::Long(*l),
        Value::Double(d) => Output::Double(*d),
        Value::Str(s) => Output::String(s.to_string()),
        Value::Bytes(b) => Output::Bytes(b.to_vec()),
        Value::Time(t) => Output::Time(*t),
        Value::TxnTime => Output::TxnTime,
        Value::Date(d) => Output::Date(*d),
        Value::Id(id) => Output::Id(*id),
        Value::Module(m) => Output::Module(m.name().to_string()),
        Value::Func(f) => Output::Function(match &**f {
            Func::Lambda(_) => "[function <lambda>]".to_string(),
            Func::Native(n) => format!("[function {}()]", n.name),
            Func::Udf(u) => format!("[function {}()]", u.name),
        }),
        // Containers, documents and sets are handled by the caller.
        Value::Array(_) | Value::Object(_) | Value::Doc(_) | Value::Set(_) => Output::Null,
    }
}
