//! Databases as tenants: the registry of parents, whether a database (and every ancestor)
//! still exists, children by name, and inherited flags.
//!
//! A child database is a document of its parent's `Database` collection whose id is the
//! child's immutable database id; the root database's registry (`keys::db_parent`) records
//! each child's parent. **Invariant:** a database is reachable only while its own document
//! and every ancestor's exist, so deleting a database cuts off all its descendants in the
//! same commit.
//!
//! With per-database data keys ([`DatabaseKeyring`]), the commit that deletes a database is
//! followed, before the client is answered, by the destruction of the keys of that database
//! and of every descendant (crypto-shredding); a destruction that fails is logged and done
//! again by the sweep at the next start, which destroys the key of every database the
//! registry lists as unreachable. **Invariant:** a key is destroyed only after a durable
//! commit made its database unreachable, as checked on a snapshot taken after that commit; a
//! key of an id the registry does not know is kept (a store restored from an older backup
//! does not know the databases created since, and their keys open newer backups).

use std::sync::Arc;

use testudo_model::codec::decode_doc;
use testudo_model::{Data, DataMap, DbId, DocId};
use testudo_storage::{Kv, KvError, WriteSet};

use crate::EngineShared;
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

/// Per-database data keys kept outside the engine (see ARCHITECTURE.md, "Per-database keys").
pub trait DatabaseKeyring: Send + Sync + std::fmt::Debug {
    /// Destroys the keys of `dbs`, whose deletion has committed durably.
    fn shred(&self, dbs: &[DbId]) -> Result<(), String>;
    /// The databases that have a key.
    fn databases(&self) -> Vec<DbId>;
    /// The store with values as stored (still sealed): the reclaimer reads the keys of
    /// deleted databases through it, since their values can no longer be opened.
    fn raw_kv(&self) -> Arc<dyn Kv>;
}

/// `roots` and every database `registry` lists below them, parents before children; each
/// once, so even a damaged registry with a cycle cannot make this loop.
pub fn with_descendants(roots: Vec<DbId>, registry: &[(DbId, DbId)]) -> Vec<DbId> {
    let mut seen: std::collections::HashSet<DbId> = roots.iter().copied().collect();
    let mut out = roots;
    let mut i = 0;
    while let Some(&db) = out.get(i) {
        for (child, _) in registry.iter().filter(|(_, parent)| *parent == db) {
            if seen.insert(*child) {
                out.push(*child);
            }
        }
        i += 1;
    }
    out
}

/// The databases whose document `writes` deletes (candidates: [`shred_keys`] checks them).
pub fn deleted_databases(writes: &WriteSet) -> Vec<DbId> {
    let mut out = Vec::new();
    for (key, value) in &writes.writes {
        if value.is_some() || key.len() != 25 {
            continue;
        }
        let (Some(parent), Some(child)) = (key.get(..8), key.get(17..25)) else {
            continue;
        };
        let (Ok(parent), Ok(child)) = (<[u8; 8]>::try_from(parent), <[u8; 8]>::try_from(child))
        else {
            continue;
        };
        let (parent, child) = (u64::from_be_bytes(parent), u64::from_be_bytes(child));
        if *key == keys::doc(DbId(parent), DATABASE, DocId(child)) {
            out.push(DbId(child));
        }
    }
    out
}

/// After a commit that deleted `candidates`: destroys the keys of those that are now
/// unreachable and of all their descendants. Failures are logged; the sweep at the next
/// start retries.
pub fn shred_keys(shared: &EngineShared, candidates: &[DbId]) {
    let Some(keyring) = &shared.database_keys else {
        return;
    };
    let doomed = (|| {
        let mut txn = Txn::begin(shared.kv.as_ref())?;
        let mut doomed = Vec::new();
        for db in candidates {
            if !alive(&mut txn, *db)? {
                doomed.push(*db);
            }
        }
        let registry = registry(&mut txn)?;
        Ok::<_, KvError>(with_descendants(doomed, &registry))
    })();
    let result = doomed
        .map_err(|e| e.to_string())
        .and_then(|doomed| keyring.shred(&doomed));
    if let Err(e) = result {
        tracing::error!(
            error = %e,
            "could not destroy the keys of deleted databases; retried at the next start"
        );
    }
}

/// Destroys the key of every database the registry lists and that is not reachable (run
/// when the engine opens).
pub fn sweep_keys(kv: &dyn Kv, keyring: &dyn DatabaseKeyring) -> Result<(), KvError> {
    let keyed = keyring.databases();
    if keyed.is_empty() {
        return Ok(());
    }
    let mut txn = Txn::begin(kv)?;
    let known: std::collections::HashSet<DbId> = registry(&mut txn)?
        .into_iter()
        .map(|(child, _)| child)
        .collect();
    let mut doomed = Vec::new();
    for db in keyed {
        if known.contains(&db) && !alive(&mut txn, db)? && !restoring(&mut txn, db)? {
            doomed.push(db);
        }
    }
    if doomed.is_empty() {
        return Ok(());
    }
    tracing::info!(
        databases = doomed.len(),
        "destroying the keys of unreachable databases"
    );
    keyring
        .shred(&doomed)
        .map_err(|e| KvError::Io(format!("cannot destroy database keys: {e}")))
}

/// Is `db` being filled by a restore (its reclamation marker carries the restore's state; a
/// deleted database's marker is empty)?
fn restoring(txn: &mut Txn, db: DbId) -> Result<bool, KvError> {
    Ok(txn
        .get(&keys::db_garbage(db))?
        .and_then(|r| r.value)
        .is_some_and(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_come_after_their_parents_once_each_even_through_a_cycle() {
        // 1 → {2, 3}, 2 → 4; and a damaged entry making 1 a child of 4.
        let registry = [
            (DbId(2), DbId(1)),
            (DbId(3), DbId(1)),
            (DbId(4), DbId(2)),
            (DbId(1), DbId(4)),
            (DbId(9), DbId(8)),
        ];
        assert_eq!(
            with_descendants(vec![DbId(1)], &registry),
            vec![DbId(1), DbId(2), DbId(3), DbId(4)]
        );
        assert_eq!(
            with_descendants(vec![DbId(3), DbId(8)], &registry),
            vec![DbId(3), DbId(8), DbId(9)]
        );
    }
}
