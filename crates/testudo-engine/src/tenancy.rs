//! Databases as tenants: the registry of parents, whether a database (and every ancestor)
//! still exists, children by name, and inherited flags.
//!
//! A child database is a document of its parent's `Database` collection whose id is the
//! child's immutable database id; the root database's registry (`keys::db_parent`) records
//! each child's parent. **Invariant:** a database is reachable only while its own document
//! and every ancestor's exist, so deleting a database cuts off all its descendants in the
//! same commit.

use testudo_model::codec::decode_doc;
use testudo_model::{Data, DataMap, DbId, DocId};
use testudo_storage::KvError;

use crate::keys;
use crate::schema::{self, DATABASE};
use crate::txn::Txn;

/// Databases nest at most this deep (the root is depth 0).
pub const MAX_DEPTH: usize = 64;

/// The parent of a child database (`None` for the root or an unknown id).
pub fn parent_of(txn: &mut Txn, db: DbId) -> Result<Option<DbId>, KvError> {
    if db == DbId::ROOT {
        return Ok(None);
    }
    let Some(bytes) = txn.get(&keys::db_parent(db))?.and_then(|r| r.value) else {
        return Ok(None);
    };
    let parent: [u8; 8] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KvError::Corrupt("database registry entry".into()))?;
    Ok(Some(DbId(u64::from_be_bytes(parent))))
}

/// The stored fields of a child database's document in its parent.
pub fn database_doc(txn: &mut Txn, parent: DbId, child: DbId) -> Result<Option<DataMap>, KvError> {
    match txn
        .get(&keys::doc(parent, DATABASE, DocId(child.0)))?
        .and_then(|r| r.value)
    {
        Some(bytes) => Ok(Some(
            decode_doc(&bytes)
                .map_err(|e| KvError::Corrupt(e.to_string()))?
                .fields,
        )),
        None => Ok(None),
    }
}

/// A flag set on a database document (`protected`, `typechecked`), inherited from the
/// nearest ancestor that sets it; `default` when none does.
pub fn inherited_flag(txn: &mut Txn, db: DbId, flag: &str, default: bool) -> Result<bool, KvError> {
    let mut cur = db;
    for _ in 0..=MAX_DEPTH {
        let Some(parent) = parent_of(txn, cur)? else {
            return Ok(default);
        };
        if let Some(fields) = database_doc(txn, parent, cur)?
            && let Some(Data::Bool(b)) = fields.get(flag)
        {
            return Ok(*b);
        }
        cur = parent;
    }
    Ok(default)
}

/// The depth of a database (root = 0).
pub fn depth(txn: &mut Txn, db: DbId) -> Result<usize, KvError> {
    let mut cur = db;
    let mut d = 0;
    while let Some(parent) = parent_of(txn, cur)? {
        d += 1;
        if d > MAX_DEPTH {
            break;
        }
        cur = parent;
    }
    Ok(d)
}

/// Every child database with its parent, from the registry.
pub fn registry(txn: &mut Txn) -> Result<Vec<(DbId, DbId)>, KvError> {
    let page = txn.scan(
        &keys::db_registry(),
        testudo_storage::ScanOrder::Ascending,
        usize::MAX,
        None,
    )?;
    let mut out = Vec::with_capacity(page.entries.len());
    for (key, read) in page.entries {
        let (Some(child), Some(value)) = (keys::db_of_registry_entry(&key), read.value) else {
            continue;
        };
        let parent: [u8; 8] = value
            .as_slice()
            .try_into()
            .map_err(|_| KvError::Corrupt("database registry entry".into()))?;
        out.push((child, DbId(u64::from_be_bytes(parent))));
    }
    Ok(out)
}

/// Does `db` exist, with every ancestor?
pub fn alive(txn: &mut Txn, db: DbId) -> Result<bool, KvError> {
    let mut cur = db;
    for _ in 0..=MAX_DEPTH {
        if cur == DbId::ROOT {
            return Ok(true);
        }
        let Some(parent) = parent_of(txn, cur)? else {
            return Ok(false);
        };
        if database_doc(txn, parent, cur)?.is_none() {
            return Ok(false);
        }
        cur = parent;
    }
    Ok(false)
}

/// The child of `parent` named `name`.
pub fn child_named(txn: &mut Txn, parent: DbId, name: &str) -> Result<Option<DbId>, KvError> {
    let docs =
        schema::read_all(parent, DATABASE, txn).map_err(|e| KvError::Io(e.message.clone()))?;
    Ok(docs
        .into_iter()
        .find(|(_, fields)| fields.get("name") == Some(&Data::String(name.to_string())))
        .map(|(id, _)| DbId(id.0)))
}
