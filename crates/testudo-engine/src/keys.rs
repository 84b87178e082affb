//! The key layout: how the engine's data maps onto the ordered byte keys of the `Kv` store.
//!
//! Every key starts with the 8-byte big-endian id of its database, so a database and all its
//! data form one contiguous range, child databases add no new layout, and deleting a database
//! is one range. After the database id, one byte names the key space:
//!
//! | space | key after the db id              | value                                   |
//! |-------|----------------------------------|-----------------------------------------|
//! | 0x00  | `0x00` + meta name (UTF-8)       | engine metadata (schema version marker) |
//! | 0x01  | `0x01` + coll id (8) + doc id (8)| a document version (`codec::encode_doc`)|
//! | 0x02  | `0x02` + coll id (8) + index id (8) + sort keys of terms and values + doc id (8) | covered values (`codec::encode_data`) |
//! | 0x03  | `0x03` + kind (1) + doc id (8)   | secret verifiers of keys, tokens, credentials (never visible to queries) |
//!
//! The root database's metadata also holds the database registry (`db:<id>` → parent id),
//! which is how a database's ancestry is walked (names are mutable labels; ids are not).
//!
//! Integers are big-endian so byte order is numeric order. **Invariant:** this module is the
//! only place that builds or parses keys; changing the layout bumps the storage format.

use testudo_model::{CollId, DbId, DocId};
use testudo_storage::KeyRange;

const SPACE_META: u8 = 0x00;
pub const SPACE_DOC: u8 = 0x01;
pub const SPACE_INDEX: u8 = 0x02;
const SPACE_AUTH: u8 = 0x03;

/// Kinds of secret material in the auth space.
pub const AUTH_KEY: u8 = 1;
pub const AUTH_TOKEN: u8 = 2;
pub const AUTH_PASSWORD: u8 = 3;
pub const AUTH_TOTP: u8 = 4;

/// Where the secret material of a key, token or credential is kept: outside every
/// collection, so no query can ever read it.
pub fn auth_secret(db: DbId, kind: u8, id: DocId) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.extend_from_slice(&db.0.to_be_bytes());
    k.push(SPACE_AUTH);
    k.push(kind);
    k.extend_from_slice(&id.0.to_be_bytes());
    k
}

/// The registry entry of a child database: its value is the parent's id.
pub fn db_parent(child: DbId) -> Vec<u8> {
    let mut name = b"db:".to_vec();
    name.extend_from_slice(&child.0.to_be_bytes());
    meta(DbId::ROOT, &name)
}

/// Every key of one database (not its children: they live under their own ids).
pub fn db_range(db: DbId) -> KeyRange {
    KeyRange::prefix(&db.0.to_be_bytes())
}

/// The marker of a deleted database awaiting reclamation (with all its descendants).
pub fn db_garbage(db: DbId) -> Vec<u8> {
    let mut name = b"gcdb:".to_vec();
    name.extend_from_slice(&db.0.to_be_bytes());
    meta(DbId::ROOT, &name)
}

/// The database a deleted-database marker names.
pub fn db_of_garbage_marker(marker: &[u8]) -> Option<DbId> {
    let start = 9 + b"gcdb:".len();
    marker
        .get(start..start + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .map(DbId)
}

/// Every entry of the database registry.
pub fn db_registry() -> KeyRange {
    KeyRange::prefix(&meta(DbId::ROOT, b"db:"))
}

/// The child a registry entry is about.
pub fn db_of_registry_entry(key: &[u8]) -> Option<DbId> {
    let start = 9 + b"db:".len();
    key.get(start..start + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .map(DbId)
}

/// Every deleted-database marker.
pub fn db_garbage_markers() -> KeyRange {
    KeyRange::prefix(&meta(DbId::ROOT, b"gcdb:"))
}

/// The meta key whose version timestamp is the database's schema version: every schema
/// change writes it, so one point read tells whether a cached schema is current.
pub fn schema_marker(db: DbId) -> Vec<u8> {
    meta(db, b"schema")
}

/// The root database's cursor sealing key.
pub fn cursor_key() -> Vec<u8> {
    meta(DbId::ROOT, b"cursor-key")
}

fn meta(db: DbId, name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + name.len());
    k.extend_from_slice(&db.0.to_be_bytes());
    k.push(SPACE_META);
    k.extend_from_slice(name);
    k
}

pub fn doc(db: DbId, coll: CollId, id: DocId) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.extend_from_slice(&db.0.to_be_bytes());
    k.push(SPACE_DOC);
    k.extend_from_slice(&coll.0.to_be_bytes());
    k.extend_from_slice(&id.0.to_be_bytes());
    k
}

/// Documents of `coll` with ids in `[from, to]` (inclusive; `None` = open).
pub fn doc_range(db: DbId, coll: CollId, from: Option<DocId>, to: Option<DocId>) -> KeyRange {
    let start = doc(db, coll, from.unwrap_or(DocId(0)));
    let end = match to {
        Some(DocId(id)) if id < u64::MAX => doc(db, coll, DocId(id + 1)),
        _ => {
            let mut prefix = Vec::with_capacity(17);
            prefix.extend_from_slice(&db.0.to_be_bytes());
            prefix.push(SPACE_DOC);
            prefix.extend_from_slice(&coll.0.to_be_bytes());
            return KeyRange {
                start,
                end: testudo_storage::prefix_successor(&prefix),
            };
        }
    };
    KeyRange {
        start,
        end: Some(end),
    }
}

/// The prefix of every entry of one index (an index id is derived from its definition, so a
/// changed definition starts a fresh range).
pub fn index_prefix(db: DbId, coll: CollId, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.extend_from_slice(&db.0.to_be_bytes());
    k.push(SPACE_INDEX);
    k.extend_from_slice(&coll.0.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Every index entry of one collection (all its indexes, current and replaced).
pub fn index_space(db: DbId, coll: CollId) -> KeyRange {
    let mut k = Vec::with_capacity(17);
    k.extend_from_slice(&db.0.to_be_bytes());
    k.push(SPACE_INDEX);
    k.extend_from_slice(&coll.0.to_be_bytes());
    KeyRange::prefix(&k)
}

/// Every metadata key of a database.
pub fn meta_space(db: DbId) -> KeyRange {
    let mut k = db.0.to_be_bytes().to_vec();
    k.push(SPACE_META);
    KeyRange::prefix(&k)
}

/// The marker of data that belongs to nothing any more and awaits reclamation: a deleted
/// collection's documents and indexes, or the entries of a replaced index definition.
pub fn garbage_marker(db: DbId, coll: CollId, index: Option<u64>) -> Vec<u8> {
    let mut name = b"gc:".to_vec();
    name.extend_from_slice(&coll.0.to_be_bytes());
    if let Some(index) = index {
        name.extend_from_slice(&index.to_be_bytes());
    }
    meta(db, &name)
}

/// Every garbage marker of a database.
pub fn garbage_markers(db: DbId) -> KeyRange {
    KeyRange::prefix(&meta(db, b"gc:"))
}

/// The key ranges a garbage marker stands for.
pub fn garbage_ranges(db: DbId, marker: &[u8]) -> Vec<KeyRange> {
    let name_start = 9 + 3;
    let Some(coll) = marker
        .get(name_start..name_start + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
    else {
        return Vec::new();
    };
    let coll = CollId(coll);
    match marker
        .get(name_start + 8..name_start + 16)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
    {
        Some(index) => vec![KeyRange::prefix(&index_prefix(db, coll, index))],
        None => vec![doc_range(db, coll, None, None), index_space(db, coll)],
    }
}

/// The document id at the end of a document key (or an index entry key).
pub fn doc_id_of(key: &[u8]) -> Option<DocId> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(DocId(u64::from_be_bytes(tail)))
}

/// The server's key for hashing key and token secrets (a pepper: verifiers are useless
/// without it).
pub fn pepper_key() -> Vec<u8> {
    meta(DbId::ROOT, b"pepper")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_keys_sort_by_database_then_collection_then_id() {
        let a = doc(DbId(1), CollId(5), DocId(300));
        let b = doc(DbId(1), CollId(5), DocId(301));
        let c = doc(DbId(1), CollId(6), DocId(0));
        let d = doc(DbId(2), CollId(0), DocId(0));
        assert!(a < b && b < c && c < d);
    }

    #[test]
    fn doc_range_covers_exactly_one_collection() {
        let r = doc_range(DbId(1), CollId(5), None, None);
        assert!(r.contains(&doc(DbId(1), CollId(5), DocId(0))));
        assert!(r.contains(&doc(DbId(1), CollId(5), DocId(u64::MAX))));
        assert!(!r.contains(&doc(DbId(1), CollId(6), DocId(0))));
        assert!(!r.contains(&doc(DbId(1), CollId(4), DocId(u64::MAX))));
    }

    #[test]
    fn bounded_doc_range_is_inclusive() {
        let r = doc_range(DbId(1), CollId(5), Some(DocId(10)), Some(DocId(20)));
        assert!(r.contains(&doc(DbId(1), CollId(5), DocId(10))));
        assert!(r.contains(&doc(DbId(1), CollId(5), DocId(20))));
        assert!(!r.contains(&doc(DbId(1), CollId(5), DocId(21))));
        assert!(!r.contains(&doc(DbId(1), CollId(5), DocId(9))));
    }

    #[test]
    fn doc_id_round_trips_through_key() {
        assert_eq!(
            doc_id_of(&doc(DbId(3), CollId(9), DocId(42))),
            Some(DocId(42))
        );
        assert_eq!(doc_id_of(b"short"), None);
    }
}
