//! Indexes and unique constraints: their definitions, the entries a document contributes,
//! and keeping entries in step with every document write.
//!
//! An index entry's key is the index's prefix (database, collection, index id), then the
//! order-preserving sort keys of the term values, then of the value fields (complemented for
//! `desc`), then the document id; its value holds the covered values. So a term lookup is a
//! prefix scan, a range over values is a key range, and results come out ordered by values
//! then document id. An index's id is a hash of its definition: changing the definition
//! starts a fresh key range (the old one is garbage) and rebuilds.
//!
//! **Invariants:** entries are written in the same transaction as the document version they
//! describe (indexes are transactionally consistent with writes, also while building); a
//! unique constraint's check reads the entries it compares against, so two concurrent
//! writers of the same value conflict and one of them fails.

pub mod build;
pub mod path;

use std::sync::Arc;

use ring::digest::{SHA256, digest};
use testudo_model::codec::encode_data;
use testudo_model::sortkey::{encode_sort_key, encode_sort_key_desc};
use testudo_model::{CollId, Data, DataMap, DbId, DocId};

use self::path::Segment;
use crate::keys;

/// Collections up to this many documents get a new index built inside the query that
/// defines it; larger ones build in the background.
pub const SYNC_BUILD_LIMIT: usize = 1000;

#[derive(Clone, Debug, PartialEq)]
pub struct FieldSpec {
    pub path: Vec<Segment>,
    pub text: String,
    pub mva: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ValueSpec {
    pub field: FieldSpec,
    pub desc: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Built and maintained: queries may use it.
    Active,
    /// Being built in the background; maintained by writes, not yet queryable.
    Pending,
}

/// An index (user index or the backing index of a unique constraint).
#[derive(Clone, Debug, PartialEq)]
pub struct IndexDef {
    pub name: String,
    pub id: u64,
    pub terms: Vec<FieldSpec>,
    pub values: Vec<ValueSpec>,
    pub status: Status,
}

impl IndexDef {
    pub fn new(
        name: &str,
        terms: Vec<FieldSpec>,
        values: Vec<ValueSpec>,
        status: Status,
    ) -> IndexDef {
        let id = index_id(name, &terms, &values);
        IndexDef {
            name: name.to_string(),
            id,
            terms,
            values,
            status,
        }
    }

    pub fn queryable(&self) -> bool {
        self.status == Status::Active
    }

    pub fn prefix(&self, db: DbId, coll: CollId) -> Vec<u8> {
        keys::index_prefix(db, coll, self.id)
    }

    /// The entries (key, value) one version of a document contributes.
    pub fn entries(
        &self,
        db: DbId,
        coll: CollId,
        id: DocId,
        fields: &DataMap,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut term_choices = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let choices = field_choices(fields, t);
            // A document missing a term is not in the index.
            if choices.is_empty() || choices.iter().all(|d| matches!(d, Data::Null)) {
                return Vec::new();
            }
            term_choices.push(choices);
        }
        let mut value_choices = Vec::with_capacity(self.values.len());
        for v in &self.values {
            let choices = field_choices(fields, &v.field);
            if choices.is_empty() {
                return Vec::new();
            }
            value_choices.push(choices);
        }
        let prefix = self.prefix(db, coll);
        let mut out = Vec::new();
        for terms in product(&term_choices) {
            for values in product(&value_choices) {
                let mut key = prefix.clone();
                for t in &terms {
                    encode_sort_key(t, &mut key);
                }
                for (v, spec) in values.iter().zip(&self.values) {
                    if spec.desc {
                        encode_sort_key_desc(v, &mut key);
                    } else {
                        encode_sort_key(v, &mut key);
                    }
                }
                key.extend_from_slice(&id.0.to_be_bytes());
                let covered =
                    encode_data(&Data::Array(values.iter().map(|d| (*d).clone()).collect()));
                out.push((key, covered));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The key prefix of entries with these term values.
    pub fn term_prefix(&self, db: DbId, coll: CollId, terms: &[Data]) -> Vec<u8> {
        let mut key = self.prefix(db, coll);
        for t in terms {
            encode_sort_key(t, &mut key);
        }
        key
    }

    /// Appends the sort keys of a (possibly partial) tuple of value bounds.
    pub fn encode_values(&self, bound: &[Data], key: &mut Vec<u8>) {
        for (v, spec) in bound.iter().zip(&self.values) {
            if spec.desc {
                encode_sort_key_desc(v, key);
            } else {
                encode_sort_key(v, key);
            }
        }
    }
}

/// The values a field contributes: one, or each element of an array for an `mva` field.
fn field_choices(fields: &DataMap, spec: &FieldSpec) -> Vec<Data> {
    match path::get(fields, &spec.path) {
        None => vec![Data::Null],
        Some(Data::Array(items)) if spec.mva => items.clone(),
        Some(d) => vec![d.clone()],
    }
}

/// Every combination picking one value from each list.
fn product(choices: &[Vec<Data>]) -> Vec<Vec<&Data>> {
    let mut out: Vec<Vec<&Data>> = vec![Vec::new()];
    for list in choices {
        let mut next = Vec::with_capacity(out.len() * list.len());
        for prefix in &out {
            for d in list {
                let mut p = prefix.clone();
                p.push(d);
                next.push(p);
            }
        }
        out = next;
    }
    out
}

fn index_id(name: &str, terms: &[FieldSpec], values: &[ValueSpec]) -> u64 {
    let mut text = format!("index-v1\0{name}\0");
    for t in terms {
        text.push_str(&format!("t:{}:{}\0", t.text, t.mva));
    }
    for v in values {
        text.push_str(&format!("v:{}:{}:{}\0", v.field.text, v.field.mva, v.desc));
    }
    let hash = digest(&SHA256, text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_ref()[..8]);
    u64::from_be_bytes(bytes)
}

/// A unique constraint, backed by an index whose terms are the constrained fields.
#[derive(Clone, Debug, PartialEq)]
pub struct UniqueDef {
    pub fields: Vec<FieldSpec>,
    pub index: IndexDef,
}

impl UniqueDef {
    pub fn new(fields: Vec<FieldSpec>) -> UniqueDef {
        let name = format!(
            "unique:{}",
            fields
                .iter()
                .map(|f| f.text.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        let index = IndexDef::new(&name, fields.clone(), Vec::new(), Status::Active);
        UniqueDef { fields, index }
    }
}

/// The indexes and constraints of a collection, parsed from its stored definition.
#[derive(Debug, Default)]
pub struct CollectionIndexes {
    pub indexes: Vec<Arc<IndexDef>>,
    pub uniques: Vec<UniqueDef>,
}

impl CollectionIndexes {
    /// Parses a stored definition (validated when it was written; anything malformed is
    /// skipped rather than trusted).
    pub fn from_definition(def: &DataMap) -> CollectionIndexes {
        let mut out = CollectionIndexes::default();
        if let Some(Data::Object(indexes)) = def.get("indexes") {
            for (name, spec) in indexes {
                if let Data::Object(spec) = spec
                    && let Ok(index) = parse_index(name, spec)
                {
                    out.indexes.push(Arc::new(index));
                }
            }
        }
        if let Some(Data::Array(constraints)) = def.get("constraints") {
            for c in constraints {
                if let Data::Object(c) = c
                    && let Some(Data::Array(fields)) = c.get("unique")
                    && let Ok(fields) = fields
                        .iter()
                        .map(parse_field)
                        .collect::<Result<Vec<_>, _>>()
                {
                    out.uniques.push(UniqueDef::new(fields));
                }
            }
        }
        out
    }

    pub fn index(&self, name: &str) -> Option<&Arc<IndexDef>> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// Every index whose entries writes must maintain.
    pub fn maintained(&self) -> impl Iterator<Item = &IndexDef> {
        self.indexes
            .iter()
            .map(|i| &**i)
            .chain(self.uniques.iter().map(|u| &u.index))
    }
}

/// Parses one `{ field, mva? }` (or a bare path string).
pub fn parse_field(d: &Data) -> Result<FieldSpec, String> {
    let (text, mva) = match d {
        Data::String(s) => (s.clone(), false),
        Data::Object(o) => {
            let Some(Data::String(text)) = o.get("field") else {
                return Err("Expected a field path in `field`.".into());
            };
            let mva = match o.get("mva") {
                None | Some(Data::Null) => false,
                Some(Data::Bool(b)) => *b,
                Some(_) => return Err("Expected Boolean in `mva`.".into()),
            };
            (text.clone(), mva)
        }
        _ => return Err("Expected a field path or `{ field, mva }`.".into()),
    };
    let path = path::parse(&text).ok_or_else(|| format!("Invalid field path `{text}`."))?;
    Ok(FieldSpec { path, text, mva })
}

/// Parses one index definition `{ terms?, values?, queryable?, status? }`.
pub fn parse_index(name: &str, spec: &DataMap) -> Result<IndexDef, String> {
    let list = |key: &str| -> Result<Vec<Data>, String> {
        match spec.get(key) {
            None | Some(Data::Null) => Ok(Vec::new()),
            Some(Data::Array(items)) => Ok(items.clone()),
            Some(_) => Err(format!("Expected Array in `{key}`.")),
        }
    };
    let terms = list("terms")?
        .iter()
        .map(parse_field)
        .collect::<Result<Vec<_>, _>>()?;
    let mut values = Vec::new();
    for v in list("values")? {
        let field = parse_field(&v)?;
        let desc = match &v {
            Data::Object(o) => match o.get("order") {
                None | Some(Data::Null) => false,
                Some(Data::String(s)) if s == "asc" => false,
                Some(Data::String(s)) if s == "desc" => true,
                Some(_) => return Err("Expected `asc` or `desc` in `order`.".into()),
            },
            _ => false,
        };
        values.push(ValueSpec { field, desc });
    }
    if terms.is_empty() && values.is_empty() {
        return Err("An index needs at least one term or value.".into());
    }
    let status = match spec.get("status") {
        Some(Data::String(s)) if s == "pending" => Status::Pending,
        _ => Status::Active,
    };
    Ok(IndexDef::new(name, terms, values, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(pairs: &[(&str, Data)]) -> DataMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn field(path: &str, mva: bool) -> FieldSpec {
        FieldSpec {
            path: path::parse(path).unwrap(),
            text: path.into(),
            mva,
        }
    }

    #[test]
    fn a_document_missing_a_term_is_not_indexed() {
        let index = IndexDef::new("byName", vec![field("name", false)], vec![], Status::Active);
        let d = doc(&[("other", Data::Int(1))]);
        assert!(
            index
                .entries(DbId(0), CollId(2000), DocId(1), &d)
                .is_empty()
        );
    }

    #[test]
    fn mva_terms_give_one_entry_per_distinct_element() {
        let index = IndexDef::new("byTag", vec![field("tags", true)], vec![], Status::Active);
        let tags = Data::Array(vec![
            Data::String("a".into()),
            Data::String("b".into()),
            Data::String("a".into()),
        ]);
        let entries = index.entries(DbId(0), CollId(2000), DocId(1), &doc(&[("tags", tags)]));
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn entries_sort_by_values_then_document_id() {
        let index = IndexDef::new(
            "byN",
            vec![],
            vec![ValueSpec {
                field: field("n", false),
                desc: true,
            }],
            Status::Active,
        );
        let a = index.entries(
            DbId(0),
            CollId(2000),
            DocId(1),
            &doc(&[("n", Data::Int(5))]),
        );
        let b = index.entries(
            DbId(0),
            CollId(2000),
            DocId(2),
            &doc(&[("n", Data::Int(9))]),
        );
        // Descending: 9 sorts before 5.
        assert!(b[0].0 < a[0].0);
    }

    #[test]
    fn changing_a_definition_changes_the_index_id() {
        let a = IndexDef::new("byX", vec![field("x", false)], vec![], Status::Active);
        let b = IndexDef::new("byX", vec![field("x", true)], vec![], Status::Active);
        let c = IndexDef::new("byX", vec![field("x", false)], vec![], Status::Pending);
        assert_ne!(a.id, b.id);
        assert_eq!(a.id, c.id, "status is not part of the identity");
    }
}
