//! Documents: reading them through the transaction and the authorization gate, converting
//! stored data to values and back, and writing new versions.
//!
//! **Invariants:** this is the only module that reads or writes document keys, and every
//! read and write asks [`authz::decide`] first; a denied read looks like a missing document
//! with cause `permission denied`; a write is refused before anything is buffered.

use std::collections::HashMap;
use std::rc::Rc;

use testudo_model::codec::{decode_doc, encode_doc};
use testudo_model::{CollId, Data, DataMap, DocId, NullCause as Missing, StoredDoc, Time, Ts};

use crate::api::{ConstraintFailure, ErrorCode, PathElem};
use crate::authz::{Action, Grant};
use crate::eval::{DocRef, Interp, Module, NullCause, Object, R, Value, err, fail, ops};
use crate::gate::denied;
use crate::keys;
use crate::schema;
use crate::txn::Read;

/// The largest encoded document (Fauna's limit is 8 MB).
pub const MAX_DOC_BYTES: usize = 8 * 1024 * 1024;
/// The deepest nesting of arrays and objects a document may hold.
pub const MAX_DOC_DEPTH: usize = 256;

#[derive(Default)]
pub struct DocCache {
    entries: HashMap<(DocRef, Option<Ts>), DocState>,
}

#[derive(Clone)]
pub enum DocState {
    Live(Rc<LiveDoc>),
    Missing(Missing),
}

pub struct LiveDoc {
    /// `None` when this query wrote the current version.
    pub ts: Option<Ts>,
    pub fields: Rc<Object>,
    pub ttl: Option<Time>,
}

impl Interp<'_> {
    /// The time reads happen at: the snapshot, or the `at(ts)` time.
    fn read_time(&self) -> Ts {
        self.read_at.map_or(self.now(), |t| t.min(self.now()))
    }

    /// The document as the privileges in force may see it: a denied read is a missing
    /// document with cause `permission denied`.
    pub fn load_doc(&mut self, r: DocRef) -> R<DocState> {
        let past = self.past_read_time();
        if let Some(gone) = self.collection_gone(r) {
            return Ok(DocState::Missing(gone));
        }
        let action = self.read_action();
        let grant = self.grant(r.coll, action);
        // Denied outright: not even storage is asked.
        if grant.never() {
            return Ok(DocState::Missing(Missing::PermissionDenied));
        }
        let raw = self.raw_doc(r, past)?;
        self.visible(r, raw, &grant, action)
    }

    /// `at(ts)` inside the snapshot's past, if reads happen there.
    fn past_read_time(&self) -> Option<Ts> {
        self.read_at.filter(|t| *t < self.now())
    }

    /// The document as stored at the read time, whoever asks (cached for the query).
    fn raw_doc(&mut self, r: DocRef, past: Option<Ts>) -> R<DocState> {
        if let Some(state) = self.docs.entries.get(&(r, past)) {
            return Ok(state.clone());
        }
        if let Some(t) = past {
            self.check_history(r.coll, t)?;
        }
        let key = keys::doc(self.db(), r.coll, r.id);
        let read = match past {
            Some(t) => self.txn.get_at(&key, t)?,
            None => self.txn.get(&key)?,
        };
        self.doc_reads += 1;
        let state = self.state_from_read(r.coll, read)?;
        self.docs.entries.insert((r, past), state.clone());
        Ok(state)
    }

    /// Applies a read grant to a raw state: denied, as stored, or masked (`mask.rs`).
    fn visible(&mut self, r: DocRef, raw: DocState, grant: &Grant, action: Action) -> R<DocState> {
        let DocState::Live(doc) = &raw else {
            return Ok(raw);
        };
        let fields = doc.fields.clone();
        if !self.grant_allows(r, &fields, grant, action)? {
            return Ok(DocState::Missing(Missing::PermissionDenied));
        }
        match self.field_rules_for(r, action)? {
            None => Ok(raw),
            Some(rules) => Ok(DocState::Live(Rc::new(LiveDoc {
                ts: doc.ts,
                fields: Rc::new(crate::mask::apply(&fields, &rules)),
                ttl: doc.ttl,
            }))),
        }
    }

    /// Whether a document exists at all, whatever the caller may read (a create with a
    /// chosen id must never overwrite a document the caller cannot see).
    pub fn doc_exists_unchecked(&mut self, r: DocRef) -> R<bool> {
        if self.collection_gone(r).is_some() {
            return Ok(false);
        }
        let past = self.past_read_time();
        Ok(matches!(self.raw_doc(r, past)?, DocState::Live(_)))
    }

    /// Refuses reads of a collection at a time older than its retained history: versions that
    /// old may already be reclaimed, so the answer could be wrong.
    pub fn check_history(&self, coll: CollId, at: Ts) -> R<()> {
        let retention =
            crate::reclaim::retention_micros(self.schema.collection_by_id(coll).map(|d| &**d));
        if at.0.saturating_add(retention) < self.now().0 {
            return fail(
                ErrorCode::InvalidArgument,
                format!(
                    "Requested time {} is before the history retained for collection `{}`.",
                    at.to_time(),
                    self.coll_name(coll)
                ),
            );
        }
        Ok(())
    }

    /// The state of a document a set scan found, as the caller may see it; the raw state is
    /// cached so the page needs no second read.
    pub fn doc_state_from_scan(&mut self, r: DocRef, read: Read, past: Option<Ts>) -> R<DocState> {
        if let Some(gone) = self.collection_gone(r) {
            return Ok(DocState::Missing(gone));
        }
        let action = self.read_action();
        let grant = self.grant(r.coll, action);
        if grant.never() {
            return Ok(DocState::Missing(Missing::PermissionDenied));
        }
        let raw = match self.docs.entries.get(&(r, past)) {
            Some(state) => state.clone(),
            None => {
                self.doc_reads += 1;
                let state = self.state_from_read(r.coll, Some(read))?;
                self.docs.entries.insert((r, past), state.clone());
                state
            }
        };
        self.visible(r, raw, &grant, action)
    }

    /// Reads of the past that the query asked for (`at(ts)`, or a cursor made inside one)
    /// need `history_read`; other reads need `read`.
    pub fn reading_history(&self) -> bool {
        self.history_at.is_some_and(|t| t < self.now())
    }

    /// The past time a set made now must read at: sets made inside `at(ts) { ... }` keep
    /// reading there (and keep needing `history_read`) wherever they are used later.
    pub fn captured_at(&self) -> Option<Ts> {
        self.history_at.filter(|t| *t < self.now())
    }

    pub fn read_action(&self) -> Action {
        if self.reading_history() {
            Action::HistoryRead
        } else {
            Action::Read
        }
    }

    /// A document of a deleted collection reads as missing, whoever asks.
    fn collection_gone(&self, r: DocRef) -> Option<Missing> {
        (r.coll.is_user()
            && self.schema.collection_by_id(r.coll).is_none()
            && !self.created_in_query(r.coll))
        .then_some(Missing::CollectionDeleted)
    }

    /// The gate for a write, before anything is buffered: refuses what no privilege could
    /// allow and settles what needs no predicate. Returns the grant whose predicates must
    /// still pass (`None` when the write is settled).
    fn write_gate(&mut self, r: DocRef, action: Action) -> R<Option<Grant>> {
        let grant = self.grant(r.coll, action);
        if grant.always {
            return Ok(None);
        }
        if grant.if_owned
            && let DocState::Live(doc) = self.raw_doc(r, None)?
            && self.owned_by_identity(&doc.fields)
        {
            return Ok(None);
        }
        if grant.predicates.is_empty() {
            self.note_denial(action, self.coll_name(r.coll), "no privilege");
            return denied();
        }
        Ok(Some(grant))
    }

    /// The document as a value a write predicate receives for the version before the write.
    fn old_version_value(&mut self, r: DocRef) -> R<Value> {
        let DocState::Live(doc) = self.raw_doc(r, None)? else {
            return Ok(Value::NULL);
        };
        let mut o = Object::with_capacity(doc.fields.len() + 3);
        if !schema::is_named(r.coll) {
            o.insert("id".to_string(), Value::Id(r.id.0));
        }
        o.insert("coll".to_string(), self.coll_module(r.coll));
        o.insert(
            "ts".to_string(),
            doc.ts.map_or(Value::TxnTime, |t| Value::Time(t.to_time())),
        );
        for (k, v) in doc.fields.iter() {
            o.insert(k.clone(), v.clone());
        }
        Ok(Value::object(o))
    }

    fn state_from_read(&self, coll: CollId, read: Option<Read>) -> R<DocState> {
        let Some(read) = read else {
            return Ok(DocState::Missing(Missing::NotFound));
        };
        let Some(bytes) = read.value else {
            return Ok(DocState::Missing(Missing::Deleted));
        };
        let stored = decode_doc(&bytes)?;
        if stored
            .ttl
            .is_some_and(|ttl| ttl <= self.read_time().to_time())
        {
            return Ok(DocState::Missing(Missing::NotFound));
        }
        if let (Some(ts), Some(def)) = (read.ts, self.schema.collection_by_id(coll))
            && let Some(ttl) = crate::reclaim::ttl_micros(def)
            && ts.0.saturating_add(ttl) <= self.read_time().0
        {
            return Ok(DocState::Missing(Missing::NotFound));
        }
        Ok(DocState::Live(Rc::new(live_doc(stored, read.ts))))
    }

    fn created_in_query(&self, coll: CollId) -> bool {
        self.touched_schema.contains_key(&coll.0)
    }

    pub fn doc_exists(&mut self, r: DocRef) -> R<bool> {
        Ok(matches!(self.load_doc(r)?, DocState::Live(_)))
    }

    /// The document as stored, after checking the caller may read it: what a write starts
    /// from, so that a masked view is never written back.
    pub fn require_stored_doc(&mut self, r: DocRef) -> R<Rc<LiveDoc>> {
        self.require_doc(r)?;
        match self.raw_doc(r, None)? {
            DocState::Live(doc) => Ok(doc),
            DocState::Missing(cause) => Err(self.missing_error(r, cause)),
        }
    }

    /// The document, or the error Fauna raises when a missing one is used.
    pub fn require_doc(&mut self, r: DocRef) -> R<Rc<LiveDoc>> {
        match self.load_doc(r)? {
            DocState::Live(doc) => Ok(doc),
            DocState::Missing(cause) => Err(self.missing_error(r, cause)),
        }
    }

    pub fn missing_error(&self, r: DocRef, cause: Missing) -> Box<crate::eval::EvalError> {
        let coll = self.coll_name(r.coll);
        match cause {
            Missing::PermissionDenied => {
                self.note_denial(
                    self.read_action(),
                    format!("{coll}/{}", r.id),
                    "no privilege or predicate false",
                );
                err(
                    ErrorCode::PermissionDenied,
                    "Insufficient privileges to perform the action.",
                )
            }
            Missing::CollectionDeleted => err(
                ErrorCode::DocumentNotFound,
                format!("Collection `{coll}` was deleted."),
            ),
            Missing::NotFound | Missing::Deleted => err(
                ErrorCode::DocumentNotFound,
                format!(
                    "Collection `{coll}` does not contain document with id {}.",
                    r.id
                ),
            ),
        }
    }

    /// The collection's current name (system collections by their fixed names).
    pub fn coll_name(&self, coll: CollId) -> String {
        if let Some(name) = schema::system_name(coll) {
            return name.to_string();
        }
        match self.schema.collection_by_id(coll) {
            Some(def) => def.name.clone(),
            None => coll.0.to_string(),
        }
    }

    /// The module value of a document's collection.
    pub fn coll_module(&self, coll: CollId) -> Value {
        match schema::system_name(coll) {
            Some(name) => Value::Module(Module::Builtin(name)),
            None => Value::Module(Module::Collection(Rc::new(
                crate::eval::value::CollHandle {
                    id: coll,
                    name: self.coll_name(coll),
                },
            ))),
        }
    }

    /// `doc.name`: meta fields, then stored fields; absent fields are null.
    pub fn doc_field(&mut self, r: DocRef, name: &str) -> R<Value> {
        let named = schema::is_named(r.coll);
        // A reference knows its own id and collection: reading them needs no document
        // (`d.delete(); C.byId(d.id)` works).
        match name {
            "coll" => return Ok(self.coll_module(r.coll)),
            "id" if !named => return Ok(Value::Id(r.id.0)),
            _ => {}
        }
        let doc = self.require_doc(r)?;
        Ok(match name {
            "ts" => doc.ts.map_or(Value::TxnTime, |t| Value::Time(t.to_time())),
            "ttl" if !named => doc.ttl.map_or(
                Value::Null(NullCause::MissingField("ttl".into())),
                Value::Time,
            ),
            "data" if !named => Value::Object(doc.fields.clone()),
            _ => match doc.fields.get(name) {
                Some(v) => v.clone(),
                None if r.coll.is_user() => match self.computed_field(r, name)? {
                    Some(v) => v,
                    None => Value::Null(NullCause::MissingField(name.into())),
                },
                None => Value::Null(NullCause::MissingField(name.into())),
            },
        })
    }

    /// The fields a document displays, meta fields first; `None` if it does not exist.
    pub fn doc_display_fields(&mut self, r: DocRef) -> R<Option<Vec<(String, Value)>>> {
        let DocState::Live(doc) = self.load_doc(r)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(doc.fields.len() + 4);
        if !schema::is_named(r.coll) {
            out.push(("id".to_string(), Value::Id(r.id.0)));
        }
        out.push(("coll".to_string(), self.coll_module(r.coll)));
        out.push((
            "ts".to_string(),
            doc.ts.map_or(Value::TxnTime, |t| Value::Time(t.to_time())),
        ));
        if let Some(ttl) = doc.ttl {
            out.push(("ttl".to_string(), Value::Time(ttl)));
        }
        out.extend(doc.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        if r.coll.is_user() {
            out.extend(self.computed_fields(r)?);
        }
        Ok(Some(out))
    }

    /// Buffers a new version of a document, after the gate and the write guards, and keeps
    /// the collection's indexes and unique constraints in step with it.
    pub fn put_doc(
        &mut self,
        r: DocRef,
        action: Action,
        method: &str,
        fields: DataMap,
        ttl: Option<Time>,
    ) -> R<()> {
        self.check_writable(method)?;
        let pending = self.write_gate(r, action)?;
        let old_value = match (&pending, action) {
            (Some(_), Action::Write) => Some(self.old_version_value(r)?),
            _ => None,
        };
        self.guard_doc_and_schema_write(r)?;
        self.forget_decisions();
        let mut fields = fields;
        let creating = matches!(action, Action::Create | Action::CreateWithId);
        if r.coll.is_user() {
            self.shape_document(r.coll, creating, method, &mut fields)?;
        }
        let old = self.stored_fields(r)?;
        let stored = StoredDoc { fields, ttl };
        let bytes = encode_doc(&stored);
        if bytes.len() > MAX_DOC_BYTES {
            return fail(
                ErrorCode::ValueTooLarge,
                format!(
                    "Document is too large: {} bytes exceeds the limit of {MAX_DOC_BYTES} bytes.",
                    bytes.len()
                ),
            );
        }
        self.maintain_indexes(r, old.as_ref(), Some(&stored.fields))?;
        if !creating && affects_authentication(r.coll) {
            self.auth_changed = true;
        }
        self.txn.put(keys::doc(self.db(), r.coll, r.id), bytes);
        self.doc_writes += 1;
        // Kept only if the query commits (the runner records changes after commit).
        self.note_change(r, method, &stored.fields);
        let live = live_doc(stored, None);
        self.cache_current(r, DocState::Live(Rc::new(live)));
        if r.coll.is_user() {
            self.run_checks(r, method)?;
        }
        // Create and write predicates judge the document as it would be written: it is
        // buffered by now, and a refusal fails the query, which discards the buffer.
        if let Some(grant) = pending {
            let new = Value::Doc(r);
            let args = match old_value {
                Some(old) => vec![old, new, Value::Doc(r)],
                None => vec![new, Value::Doc(r)],
            };
            if !self.write_predicates_allow(&grant, args)? {
                self.note_denial(action, self.coll_name(r.coll), "predicate false");
                return denied();
            }
        }
        Ok(())
    }

    pub fn delete_doc_version(&mut self, r: DocRef) -> R<()> {
        self.check_writable("delete")?;
        if let Some(grant) = self.write_gate(r, Action::Delete)?
            && !self.write_predicates_allow(&grant, vec![Value::Doc(r)])?
        {
            self.note_denial(Action::Delete, self.coll_name(r.coll), "predicate false");
            return denied();
        }
        self.guard_doc_and_schema_write(r)?;
        self.forget_decisions();
        let old = self.stored_fields(r)?;
        if let Some(old) = &old {
            self.note_change(r, "delete", old);
        }
        self.maintain_indexes(r, old.as_ref(), None)?;
        if affects_authentication(r.coll) {
            self.auth_changed = true;
            self.report_access_deleted(r);
        }
        self.txn.delete(keys::doc(self.db(), r.coll, r.id));
        self.doc_writes += 1;
        self.cache_current(r, DocState::Missing(Missing::Deleted));
        Ok(())
    }

    /// Remembers a write to schema or access control for the audit log: its kind, its name
    /// (or id), and the method that wrote it. Never the fields' values.
    fn note_change(&self, r: DocRef, method: &str, fields: &DataMap) {
        if self.shared.audit.is_none() {
            return;
        }
        let kind = match r.coll {
            schema::COLLECTION => "collection",
            schema::FUNCTION => "function",
            schema::ROLE => "role",
            schema::ACCESS_PROVIDER => "access_provider",
            schema::DATABASE => "database",
            schema::KEY => "key",
            schema::TOKEN => "token",
            schema::CREDENTIAL => "credential",
            _ => return,
        };
        let name = match fields.get("name") {
            Some(Data::String(name)) => name.clone(),
            _ => r.id.to_string(),
        };
        self.trail
            .borrow_mut()
            .changes
            .push((kind, name, method.to_string()));
    }

    /// The current stored fields of a document (this transaction's writes included).
    fn stored_fields(&mut self, r: DocRef) -> R<Option<DataMap>> {
        let key = keys::doc(self.db(), r.coll, r.id);
        match self.txn.get(&key)?.and_then(|read| read.value) {
            Some(bytes) => Ok(Some(decode_doc(&bytes)?.fields)),
            None => Ok(None),
        }
    }

    /// Replaces the entries an old version contributed to each index by the new version's,
    /// then checks the collection's unique constraints against the new entries.
    fn maintain_indexes(
        &mut self,
        r: DocRef,
        old: Option<&DataMap>,
        new: Option<&DataMap>,
    ) -> R<()> {
        let Some(def) = self.schema.collection_by_id(r.coll).cloned() else {
            return Ok(());
        };
        let db = self.db();
        for index in def.indexes.maintained() {
            let before = old
                .map(|f| index.entries(db, r.coll, r.id, f))
                .unwrap_or_default();
            let after = new
                .map(|f| index.entries(db, r.coll, r.id, f))
                .unwrap_or_default();
            for (key, _) in &before {
                if !after.iter().any(|(k, _)| k == key) {
                    self.txn.delete(key.clone());
                }
            }
            for entry in &after {
                if !before.contains(entry) {
                    self.txn.put(entry.0.clone(), entry.1.clone());
                }
            }
        }
        let Some(new) = new else { return Ok(()) };
        for unique in &def.indexes.uniques {
            for (key, _) in unique.index.entries(db, r.coll, r.id, new) {
                // Every entry with the same terms shares the key up to the document id.
                let prefix = &key[..key.len().saturating_sub(8)];
                let range = testudo_storage::KeyRange::prefix(prefix);
                let page = self
                    .txn
                    .scan(&range, testudo_storage::ScanOrder::Ascending, 2, None)?;
                if page
                    .entries
                    .iter()
                    .any(|(k, _)| keys::doc_id_of(k) != Some(r.id))
                {
                    let paths = unique
                        .fields
                        .iter()
                        .map(|f| {
                            f.path
                                .iter()
                                .map(|s| match s {
                                    crate::index::path::Segment::Field(name) => {
                                        PathElem::Field(name.clone())
                                    }
                                    crate::index::path::Segment::Index(i) => {
                                        PathElem::Index(*i as i64)
                                    }
                                })
                                .collect()
                        })
                        .collect();
                    let mut e = err(ErrorCode::ConstraintFailure, "Failed unique constraint.");
                    e.constraint_failures = vec![ConstraintFailure {
                        message: "Failed unique constraint.".into(),
                        paths,
                    }];
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn cache_current(&mut self, r: DocRef, state: DocState) {
        self.docs.entries.retain(|(cached, _), _| *cached != r);
        self.docs.entries.insert((r, None), state);
    }

    /// Fauna refuses to write a collection's definition and its documents in one query.
    fn guard_doc_and_schema_write(&mut self, r: DocRef) -> R<()> {
        let (schema_coll, doc_coll) = if r.coll == schema::COLLECTION {
            (r.id.0, None)
        } else if r.coll.is_user() {
            (r.coll.0, Some(r.coll.0))
        } else {
            return Ok(());
        };
        let conflict = match doc_coll {
            None => self.touched_docs.contains_key(&schema_coll),
            Some(c) => self.touched_schema.contains_key(&c),
        };
        if conflict {
            return fail(
                ErrorCode::InvalidWrite,
                "Cannot modify a document and its collection in the same query.",
            );
        }
        match doc_coll {
            None => self.touched_schema.insert(schema_coll, ()),
            Some(c) => self.touched_docs.insert(c, ()),
        };
        Ok(())
    }

    /// Adds a field to this query's copy of a document just written, and only to it: how a
    /// new key's or token's secret appears once, in the creating query's result.
    pub fn show_once(&mut self, r: DocRef, field: &str, value: Value) {
        if let Some(DocState::Live(doc)) = self.docs.entries.get(&(r, None)) {
            let mut fields = (*doc.fields).clone();
            fields.insert(field.to_string(), value);
            let shown = LiveDoc {
                ts: doc.ts,
                fields: Rc::new(fields.seal()),
                ttl: doc.ttl,
            };
            self.docs
                .entries
                .insert((r, None), DocState::Live(Rc::new(shown)));
        }
    }

    fn report_access_deleted(&self, r: DocRef) {
        let event = match r.coll {
            schema::KEY => testudo_auth::AuthEvent::KeyDeleted {
                db: self.db().0,
                key_id: r.id.0,
            },
            schema::TOKEN => testudo_auth::AuthEvent::TokenDeleted {
                db: self.db().0,
                token_id: r.id.0,
            },
            _ => return,
        };
        self.shared
            .events
            .emit_at(event, self.scope.path.as_deref());
    }

    /// A fresh document id (also used for collection ids).
    pub fn new_id(&self) -> DocId {
        self.shared.ids.next()
    }
}

fn live_doc(stored: StoredDoc, ts: Option<Ts>) -> LiveDoc {
    let mut fields = Object::with_capacity(stored.fields.len());
    for (k, v) in stored.fields {
        fields.insert(k, from_data(v, ts));
    }
    LiveDoc {
        ts,
        fields: Rc::new(fields.seal()),
        ttl: stored.ttl,
    }
}

/// A stored value as a runtime value. `TransactionTime()` stored in a version reads back as
/// that version's timestamp.
pub fn from_data(d: Data, version_ts: Option<Ts>) -> Value {
    match d {
        Data::Null => Value::NULL,
        Data::Bool(b) => Value::Bool(b),
        Data::Int(i) => ops::narrow(i),
        Data::Double(f) => Value::Double(f),
        Data::String(s) => Value::string(s),
        Data::Bytes(b) => Value::Bytes(Rc::from(b)),
        Data::Time(t) => Value::Time(t),
        Data::Date(d) => Value::Date(d),
        Data::Array(items) => Value::array(
            items
                .into_iter()
                .map(|v| from_data(v, version_ts))
                .collect(),
        ),
        Data::Object(map) => {
            let mut o = Object::with_capacity(map.len());
            for (k, v) in map {
                o.insert(k, from_data(v, version_ts));
            }
            Value::object(o)
        }
        Data::Ref { coll, id } => Value::Doc(DocRef { coll, id }),
        Data::TxnTime => version_ts.map_or(Value::TxnTime, |t| Value::Time(t.to_time())),
    }
}

/// A value as stored data. Fields set to null are dropped (null means absent).
pub fn to_data(v: &Value) -> R<Data> {
    to_data_at(v, 0)
}

fn to_data_at(v: &Value, depth: usize) -> R<Data> {
    if depth > MAX_DOC_DEPTH {
        return fail(
            ErrorCode::ValueTooLarge,
            format!("Value nests deeper than {MAX_DOC_DEPTH} levels."),
        );
    }
    Ok(match v {
        Value::Null(_) => Data::Null,
        Value::Bool(b) => Data::Bool(*b),
        Value::Int(i) => Data::Int(i64::from(*i)),
        Value::Long(l) => Data::Int(*l),
        Value::Double(d) => Data::Double(*d),
        Value::Str(s) => Data::String(s.to_string()),
        Value::Bytes(b) => Data::Bytes(b.to_vec()),
        Value::Time(t) => Data::Time(*t),
        Value::TxnTime => Data::TxnTime,
        Value::Date(d) => Data::Date(*d),
        Value::Id(id) => Data::String(id.to_string()),
        Value::Array(items) => Data::Array(
            items
                .iter()
                .map(|i| to_data_at(i, depth + 1))
                .collect::<R<_>>()?,
        ),
        Value::Object(o) => Data::Object(object_to_data(o, depth + 1)?),
        Value::Doc(r) => Data::Ref {
            coll: r.coll,
            id: r.id,
        },
        Value::Set(_) | Value::Func(_) | Value::Module(_) => {
            return fail(
                ErrorCode::InvalidArgument,
                format!("Cannot persist a value of type {}.", v.type_name()),
            );
        }
    })
}

pub fn object_to_data(o: &Object, depth: usize) -> R<DataMap> {
    let mut map = DataMap::with_capacity(o.len());
    for (k, v) in o.iter() {
        if v.is_null() {
            continue;
        }
        map.insert(k.clone(), to_data_at(v, depth)?);
    }
    Ok(map)
}

/// Applies an update patch: objects merge key by key, `null` removes a key, anything else
/// (arrays included) replaces.
pub fn merge_patch(target: &mut DataMap, patch: &Object) -> R<()> {
    for (k, v) in patch.iter() {
        match v {
            Value::Null(_) => {
                target.shift_remove(k);
            }
            Value::Object(inner) => match target.get_mut(k) {
                Some(Data::Object(existing)) => merge_patch(existing, inner)?,
                _ => {
                    let mut fresh = DataMap::new();
                    merge_patch(&mut fresh, inner)?;
                    target.insert(k.clone(), Data::Object(fresh));
                }
            },
            other => {
                target.insert(k.clone(), to_data(other)?);
            }
        }
    }
    Ok(())
}

/// Converts a live document's fields back to stored form (for updates).
pub fn fields_to_data(doc: &LiveDoc) -> R<DataMap> {
    object_to_data(&doc.fields, 1)
}

/// Writes to these collections change what a secret may do: cached authentications must be
/// verified again after such a commit.
fn affects_authentication(coll: CollId) -> bool {
    matches!(
        coll,
        schema::KEY
            | schema::TOKEN
            | schema::CREDENTIAL
            | schema::DATABASE
            | schema::ACCESS_PROVIDER
    )
}
