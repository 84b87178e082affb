//! Schema: the system collections, and the per-database view of user collections that name
//! resolution uses.
//!
//! Schema items are ordinary documents in system collections (a collection's definition is a
//! document of `Collection` whose id is the collection's id), so they are versioned,
//! transactional and visible to `at(ts)` like any document. Every schema change also writes
//! the database's schema marker key; its version timestamp is the `schema_version` and the
//! validity check of the cached [`Schema`].
//!
//! **Invariants:** a query resolves names against the schema as of its start (a collection
//! created by a query cannot be used by name in that same query); the cache never serves a
//! schema older than the marker the query's snapshot sees.

pub mod access_provider;
pub mod collection;
pub mod database;
pub mod fields;
pub mod function;
pub mod role;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use testudo_model::codec::decode_doc;
use testudo_model::{CollId, Data, DataMap, DbId, DocId, Ts};
use testudo_storage::ScanOrder;

use crate::eval::R;
use crate::keys;
use crate::txn::Txn;

/// System collections: their ids are fixed and below [`CollId::FIRST_USER`].
pub const COLLECTION: CollId = CollId(1);
pub const FUNCTION: CollId = CollId(2);
pub const ROLE: CollId = CollId(3);
pub const ACCESS_PROVIDER: CollId = CollId(4);
pub const DATABASE: CollId = CollId(5);
pub const KEY: CollId = CollId(6);
pub const TOKEN: CollId = CollId(7);
pub const CREDENTIAL: CollId = CollId(8);

const SYSTEM: [(CollId, &str); 8] = [
    (COLLECTION, "Collection"),
    (FUNCTION, "Function"),
    (ROLE, "Role"),
    (ACCESS_PROVIDER, "AccessProvider"),
    (DATABASE, "Database"),
    (KEY, "Key"),
    (TOKEN, "Token"),
    (CREDENTIAL, "Credential"),
];

pub fn system_name(id: CollId) -> Option<&'static str> {
    SYSTEM.iter().find(|(c, _)| *c == id).map(|(_, n)| *n)
}

pub fn system_by_name(name: &str) -> Option<CollId> {
    let name = if name == "Credentials" {
        "Credential"
    } else {
        name
    };
    SYSTEM.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
}

/// Documents of these collections are named (`{ name, coll, ts, ... }`) rather than by id.
pub fn is_named(coll: CollId) -> bool {
    matches!(
        coll,
        COLLECTION | FUNCTION | ROLE | ACCESS_PROVIDER | DATABASE
    )
}

/// One user collection as the schema knows it.
#[derive(Debug)]
pub struct CollectionDef {
    pub id: CollId,
    pub name: String,
    pub alias: Option<String>,
    /// The whole stored definition (name, history_days, indexes, constraints, ...).
    pub definition: DataMap,
    /// Its indexes and unique constraints, parsed.
    pub indexes: crate::index::CollectionIndexes,
    /// Its checks, computed fields and field definitions, parsed.
    pub documents: fields::DocumentSchema,
}

/// A database's user collections and functions at one schema version.
#[derive(Debug, Default)]
pub struct Schema {
    pub version: Ts,
    collections: Vec<Arc<CollectionDef>>,
    by_name: HashMap<String, usize>,
    by_id: HashMap<CollId, usize>,
    functions: HashMap<String, Arc<function::FunctionDef>>,
    roles: HashMap<String, Arc<role::RoleDef>>,
}

impl Schema {
    pub fn collection(&self, name: &str) -> Option<&Arc<CollectionDef>> {
        self.by_name
            .get(name)
            .and_then(|&i| self.collections.get(i))
    }

    pub fn collection_by_id(&self, id: CollId) -> Option<&Arc<CollectionDef>> {
        self.by_id.get(&id).and_then(|&i| self.collections.get(i))
    }

    /// Every user collection.
    pub fn collections(&self) -> impl Iterator<Item = &Arc<CollectionDef>> {
        self.collections.iter()
    }

    /// A user function by name or alias.
    pub fn function(&self, name: &str) -> Option<&Arc<function::FunctionDef>> {
        self.functions.get(name)
    }

    /// A custom role by name.
    pub fn role(&self, name: &str) -> Option<&Arc<role::RoleDef>> {
        self.roles.get(name)
    }

    /// Every custom role.
    pub fn roles(&self) -> impl Iterator<Item = &Arc<role::RoleDef>> {
        self.roles.values()
    }

    /// Reads every collection, function and role definition of `db` as the transaction sees it.
    pub fn load(db: DbId, version: Ts, txn: &mut Txn) -> R<Schema> {
        let mut schema = Schema {
            version,
            ..Schema::default()
        };
        for (id, fields) in read_all(db, COLLECTION, txn)? {
            schema.insert(collection_def(CollId(id.0), fields));
        }
        for (id, fields) in read_all(db, FUNCTION, txn)? {
            let def = Arc::new(function::FunctionDef::from_stored(id, fields));
            if let Some(alias) = &def.alias {
                schema.functions.insert(alias.clone(), def.clone());
            }
            schema.functions.insert(def.name.clone(), def);
        }
        for (id, fields) in read_all(db, ROLE, txn)? {
            let def = Arc::new(role::RoleDef::from_stored(id, &fields));
            schema.roles.insert(def.name.clone(), def);
        }
        Ok(schema)
    }

    fn insert(&mut self, def: CollectionDef) {
        let index = self.collections.len();
        self.by_name.insert(def.name.clone(), index);
        if let Some(alias) = &def.alias {
            self.by_name.insert(alias.clone(), index);
        }
        self.by_id.insert(def.id, index);
        self.collections.push(Arc::new(def));
    }
}

/// Every document of a system collection, as the transaction sees it.
pub fn read_all(db: DbId, coll: CollId, txn: &mut Txn) -> R<Vec<(DocId, DataMap)>> {
    let mut out = Vec::new();
    let mut range = keys::doc_range(db, coll, None, None);
    loop {
        let page = txn.scan(&range, ScanOrder::Ascending, 256, None)?;
        for (key, read) in &page.entries {
            let (Some(id), Some(bytes)) = (keys::doc_id_of(key), &read.value) else {
                continue;
            };
            out.push((id, decode_doc(bytes)?.fields));
        }
        match (page.more, page.entries.last()) {
            (true, Some((last, _))) => {
                let mut next = last.clone();
                next.push(0);
                range.start = next;
            }
            _ => break,
        }
    }
    Ok(out)
}

/// Why `name` cannot name a new collection or function: collections and functions share
/// one namespace, names and aliases alike. `own` is the schema document being updated (its
/// current names do not clash with themselves). Reads every definition through the
/// transaction, so two queries claiming the same name conflict and one of them fails here.
pub fn name_taken(
    it: &mut crate::eval::Interp<'_>,
    name: &str,
    own: Option<(CollId, DocId)>,
) -> R<Option<String>> {
    for (coll, kind) in [(COLLECTION, "collection"), (FUNCTION, "function")] {
        for (id, fields) in read_all(it.db(), coll, &mut it.txn)? {
            if own == Some((coll, id)) {
                continue;
            }
            for field in ["name", "alias"] {
                if fields.get(field) == Some(&Data::String(name.to_string())) {
                    return Ok(Some(format!(
                        "A {kind} with the name `{name}` already exists."
                    )));
                }
            }
        }
    }
    Ok(None)
}

pub fn collection_def(id: CollId, definition: DataMap) -> CollectionDef {
    let text = |k: &str| match definition.get(k) {
        Some(Data::String(s)) => Some(s.clone()),
        _ => None,
    };
    let indexes = crate::index::CollectionIndexes::from_definition(&definition);
    let documents = fields::DocumentSchema::from_definition(&definition);
    CollectionDef {
        id,
        name: text("name").unwrap_or_default(),
        alias: text("alias"),
        definition,
        indexes,
        documents,
    }
}

/// The schema cache shared by all queries: one entry per database, replaced when a query's
/// snapshot sees a newer schema marker.
pub struct SchemaCache {
    entries: Mutex<HashMap<DbId, CachedSchema>>,
    /// Schema-changing commits under way (counted before they commit, so before they can
    /// be visible to any snapshot).
    inflight: AtomicU64,
    /// The newest commit timestamp of a finished schema-changing commit.
    last_change: AtomicU64,
}

struct CachedSchema {
    schema: Arc<Schema>,
    /// The snapshot the schema is known to be current at.
    current_at: Ts,
}

impl SchemaCache {
    /// A cache for a store whose newest commit is `last_commit` (any earlier schema change
    /// is at or below it).
    pub fn new(last_commit: Ts) -> SchemaCache {
        SchemaCache {
            entries: Mutex::new(HashMap::new()),
            inflight: AtomicU64::new(0),
            last_change: AtomicU64::new(last_commit.0),
        }
    }

    /// The schema of `db` as of the transaction's snapshot.
    ///
    /// Fast path, no storage read: no schema change is under way, the cached schema was
    /// current at a snapshot no older than the last finished schema change, and it is not
    /// newer than this snapshot. Any schema change visible to this snapshot has either
    /// finished (and is then at or below `last_change`) or is still under way (and the
    /// check falls back to reading the schema marker). Writers additionally put the marker
    /// in their read set at commit (see `runner`), so a schema change that commits after
    /// their snapshot makes them re-run.
    pub fn get(&self, db: DbId, txn: &mut Txn) -> R<Arc<Schema>> {
        let snapshot = txn.ts();
        if self.inflight.load(Ordering::SeqCst) == 0 {
            let last = self.last_change.load(Ordering::SeqCst);
            if let Some(cached) = self.lock().get(&db)
                && cached.current_at.0 >= last
                && cached.schema.version <= snapshot
            {
                return Ok(cached.schema.clone());
            }
        }
        let version = txn
            .get(&keys::schema_marker(db))?
            .and_then(|r| r.ts)
            .unwrap_or(Ts::ZERO);
        {
            let mut entries = self.lock();
            if let Some(cached) = entries.get_mut(&db)
                && cached.schema.version == version
            {
                cached.current_at = cached.current_at.max(snapshot);
                return Ok(cached.schema.clone());
            }
        }
        let schema = Arc::new(Schema::load(db, version, txn)?);
        let mut entries = self.lock();
        let newer_cached = entries.get(&db).is_some_and(|c| c.schema.version > version);
        if !newer_cached {
            entries.insert(
                db,
                CachedSchema {
                    schema: schema.clone(),
                    current_at: snapshot,
                },
            );
        }
        Ok(schema)
    }

    /// Runs a commit that changes a schema, keeping the cache's fast path sound: the change
    /// is announced before it can become visible and recorded once it has committed.
    pub fn changing<T, E>(
        &self,
        commit: impl FnOnce() -> Result<(Ts, T), E>,
    ) -> Result<(Ts, T), E> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let result = commit();
        if let Ok((ts, _)) = &result {
            self.last_change.fetch_max(ts.0, Ordering::SeqCst);
        }
        self.inflight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// The version of `db`'s schema as last loaded, if it was (no storage access): what a
    /// response answered without running anything reports.
    pub fn cached_version(&self, db: DbId) -> Option<Ts> {
        self.lock().get(&db).map(|cached| cached.schema.version)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DbId, CachedSchema>> {
        // A panic while holding this lock cannot leave the map inconsistent (inserts are
        // single operations), so a poisoned lock is still safe to use.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
