//! The reclaimer: a background pass that enforces retention without blocking queries.
//!
//! Each pass, per database:
//! - drops document versions older than each collection's retention (`history_days`, and
//!   never less than [`MIN_RETENTION`], which keeps pagination cursors and long queries
//!   readable) with `Kv::prune`, and the hidden versions of index entries and schema
//!   documents likewise;
//! - deletes documents past their `ttl` or their collection's `ttl_days` (a normal
//!   transaction: document tombstone plus index entries, conflict-checked), after which
//!   pruning removes them physically;
//! - deletes the data of collections that no longer exist and the entries of index
//!   definitions that were replaced (their key ranges are garbage).
//!
//! **Invariants:** a snapshot younger than [`MIN_RETENTION`] never loses a version it can
//! see; expiry is a transaction like any delete, so indexes stay consistent with documents.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use testudo_model::codec::decode_doc;
use testudo_model::{DbId, DocId, Ts};
use testudo_storage::{CommitError, KeyRange, Kv, KvError, ScanOrder};

use crate::schema::CollectionDef;
use crate::txn::Txn;
use crate::{EngineShared, keys, schema};

/// The shortest history kept for any collection: a cursor or a query may read a snapshot
/// this old (longer than the longest query timeout, 10 minutes).
pub const MIN_RETENTION: Duration = Duration::from_secs(15 * 60);
/// How often the reclaimer runs.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Keys looked at per prune call (each call is one short write batch).
const PRUNE_BATCH: usize = 1024;
/// Documents deleted per expiry transaction.
const EXPIRE_BATCH: usize = 256;

const DAY_MICROS: u64 = 86_400 * 1_000_000;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReclaimStats {
    pub keys_scanned: u64,
    pub versions_removed: u64,
    pub documents_expired: u64,
    pub garbage_keys_deleted: u64,
}

impl ReclaimStats {
    fn add(&mut self, other: &ReclaimStats) {
        self.keys_scanned += other.keys_scanned;
        self.versions_removed += other.versions_removed;
        self.documents_expired += other.documents_expired;
        self.garbage_keys_deleted += other.garbage_keys_deleted;
    }
}

/// A collection's retention, in microseconds.
pub fn retention_micros(def: Option<&CollectionDef>) -> u64 {
    retention_with(def, MIN_RETENTION)
}

fn retention_with(def: Option<&CollectionDef>, min: Duration) -> u64 {
    let days = def.and_then(|d| match d.definition.get("history_days") {
        Some(testudo_model::Data::Int(n)) => u64::try_from(*n).ok(),
        _ => None,
    });
    let history = days.unwrap_or(0).saturating_mul(DAY_MICROS);
    history.max(min.as_micros() as u64)
}

/// A collection's `ttl_days`, in microseconds.
pub fn ttl_micros(def: &CollectionDef) -> Option<u64> {
    match def.definition.get("ttl_days") {
        Some(testudo_model::Data::Int(n)) => {
            u64::try_from(*n).ok().map(|d| d.saturating_mul(DAY_MICROS))
        }
        _ => None,
    }
}

enum Msg {
    Stop,
}

pub struct Reclaimer {
    tx: Mutex<Sender<Msg>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reclaimer {
    pub fn start(shared: Weak<EngineShared>) -> Reclaimer {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("testudo-reclaimer".into())
            .spawn(move || run(shared, rx))
            .ok();
        Reclaimer {
            tx: Mutex::new(tx),
            thread: Mutex::new(thread),
        }
    }

    pub fn stop(&self) {
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Msg::Stop);
        if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

fn run(shared: Weak<EngineShared>, rx: Receiver<Msg>) {
    loop {
        match rx.recv_timeout(INTERVAL) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let started = Instant::now();
        match pass(&shared, DbId::ROOT, MIN_RETENTION) {
            Ok(stats) => tracing::debug!(
                ?stats,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "reclaim pass"
            ),
            Err(e) => tracing::warn!(error = %e, "reclaim pass failed; it will run again"),
        }
    }
}

/// One reclaim pass over a database. `min_retention` is [`MIN_RETENTION`] except in tests
/// and benchmarks that cannot wait fifteen minutes.
pub fn pass(
    shared: &Arc<EngineShared>,
    db: DbId,
    min_retention: Duration,
) -> Result<ReclaimStats, KvError> {
    let mut stats = ReclaimStats::default();
    let mut txn = Txn::begin(shared.kv.as_ref())?;
    let now = txn.ts();
    let schema = match shared.schemas.get(db, &mut txn) {
        Ok(s) => s,
        Err(e) => return Err(KvError::Io(e.message.clone())),
    };
    drop(txn);
    let horizon =
        |retention: u64| Ts(now.0.saturating_sub(retention)).min(shared.kv.last_commit_ts());

    // Expire documents first, so the prune below already removes what they leave.
    for def in schema.collections() {
        stats.documents_expired += expire(shared, db, def, now)?;
    }
    stats.add(&delete_garbage(
        shared,
        db,
        horizon(retention_with(None, min_retention)),
    )?);
    if db == DbId::ROOT {
        stats.add(&delete_databases(
            shared,
            horizon(retention_with(None, min_retention)),
        )?);
    }

    // Documents and index entries of each user collection, by its retention.
    for def in schema.collections() {
        let h = horizon(retention_with(Some(def), min_retention));
        stats.add(&prune_range(
            shared,
            keys::doc_range(db, def.id, None, None),
            h,
        )?);
        stats.add(&prune_range(shared, keys::index_space(db, def.id), h)?);
    }
    // Everything else of the database (schema documents, metadata, garbage already
    // tombstoned) by the minimum retention.
    let h = horizon(retention_with(None, min_retention));
    for coll in [
        schema::COLLECTION,
        schema::FUNCTION,
        schema::ROLE,
        schema::ACCESS_PROVIDER,
        schema::DATABASE,
    ] {
        stats.add(&prune_range(
            shared,
            keys::doc_range(db, coll, None, None),
            h,
        )?);
    }
    stats.add(&prune_range(shared, keys::meta_space(db), h)?);
    Ok(stats)
}

fn prune_range(
    shared: &EngineShared,
    range: KeyRange,
    horizon: Ts,
) -> Result<ReclaimStats, KvError> {
    let mut stats = ReclaimStats::default();
    let mut range = range;
    loop {
        let step = shared.kv.prune(range.clone(), horizon, PRUNE_BATCH)?;
        stats.keys_scanned += step.keys_scanned;
        stats.versions_removed += step.versions_removed;
        match step.resume_at {
            Some(next) => range.start = next,
            None => return Ok(stats),
        }
    }
}

/// Deletes the documents of `def` past their `ttl` (or the collection's `ttl_days`).
fn expire(shared: &EngineShared, db: DbId, def: &CollectionDef, now: Ts) -> Result<u64, KvError> {
    let ttl_days = ttl_micros(def);
    let mut expired_total = 0;
    let mut from = DocId(0);
    loop {
        let mut txn = Txn::begin(shared.kv.as_ref())?;
        let range = keys::doc_range(db, def.id, Some(from), None);
        let page = txn.scan(&range, ScanOrder::Ascending, EXPIRE_BATCH, None)?;
        let mut expired = 0;
        let mut last = None;
        for (key, read) in &page.entries {
            let (Some(id), Some(bytes), Some(ts)) = (keys::doc_id_of(key), &read.value, read.ts)
            else {
                continue;
            };
            last = Some(id);
            let Ok(doc) = decode_doc(bytes) else { continue };
            let by_ttl = doc.ttl.is_some_and(|t| t <= now.to_time());
            let by_days = ttl_days.is_some_and(|d| ts.0.saturating_add(d) <= now.0);
            if by_ttl || by_days {
                for index in def.indexes.maintained() {
                    for (k, _) in index.entries(db, def.id, id, &doc.fields) {
                        txn.delete(k);
                    }
                }
                txn.delete(key.clone());
                expired += 1;
            }
        }
        if expired > 0 {
            match shared.kv.commit(txn.into_write_set(), None) {
                Ok(_) => expired_total += expired,
                // A concurrent write touched this batch: the next pass looks again.
                Err(CommitError::Conflict) => {}
                Err(CommitError::Kv(e)) => return Err(e),
                Err(CommitError::DeadlineExceeded) => {}
            }
        }
        match (page.more, last) {
            (true, Some(id)) if id.0 < u64::MAX => from = DocId(id.0 + 1),
            _ => return Ok(expired_total),
        }
    }
}

/// Reclaims data that belongs to nothing (see `keys::garbage_marker`): tombstones what is
/// still live, prunes what is hidden, and drops the marker once its ranges are empty.
fn delete_garbage(shared: &EngineShared, db: DbId, horizon: Ts) -> Result<ReclaimStats, KvError> {
    let mut stats = ReclaimStats::default();
    let mut txn = Txn::begin(shared.kv.as_ref())?;
    let markers = txn.scan(
        &keys::garbage_markers(db),
        ScanOrder::Ascending,
        usize::MAX,
        None,
    )?;
    drop(txn);
    for (marker, _) in markers.entries {
        let mut empty = true;
        for range in keys::garbage_ranges(db, &marker) {
            let (deleted, found) = tombstone_range(shared.kv.as_ref(), range.clone())?;
            stats.garbage_keys_deleted += deleted;
            let pruned = prune_range(shared, range, horizon)?;
            empty &= !found && pruned.keys_scanned == 0;
            stats.add(&pruned);
        }
        if empty {
            let mut txn = Txn::begin(shared.kv.as_ref())?;
            txn.delete(marker);
            match shared.kv.commit(txn.into_write_set(), None) {
                Ok(_) | Err(CommitError::Conflict) | Err(CommitError::DeadlineExceeded) => {}
                Err(CommitError::Kv(e)) => return Err(e),
            }
        }
    }
    Ok(stats)
}

/// Writes tombstones over every live key of `range` through `kv`; returns how many, and
/// whether any live key was found.
fn tombstone_range(kv: &dyn Kv, mut range: KeyRange) -> Result<(u64, bool), KvError> {
    let mut deleted = 0;
    let mut found = false;
    loop {
        let mut txn = Txn::begin(kv)?;
        let page = txn.scan(&range, ScanOrder::Ascending, EXPIRE_BATCH, None)?;
        let Some((last, _)) = page.entries.last() else {
            return Ok((deleted, found));
        };
        found = true;
        let mut next = last.clone();
        next.push(0);
        let n = page.entries.len() as u64;
        for (key, _) in page.entries {
            txn.delete(key);
        }
        match kv.commit(txn.into_write_set(), None) {
            Ok(_) => deleted += n,
            Err(CommitError::Conflict) | Err(CommitError::DeadlineExceeded) => {
                return Ok((deleted, found));
            }
            Err(CommitError::Kv(e)) => return Err(e),
        }
        if !page.more {
            return Ok((deleted, found));
        }
        range.start = next;
    }
}

/// Reclaims deleted databases and all their descendants: tombstones every live key under
/// their ids, prunes them, and drops their registry entries and the marker once empty.
fn delete_databases(shared: &EngineShared, horizon: Ts) -> Result<ReclaimStats, KvError> {
    let mut stats = ReclaimStats::default();
    let mut txn = Txn::begin(shared.kv.as_ref())?;
    let markers = txn.scan(
        &keys::db_garbage_markers(),
        ScanOrder::Ascending,
        usize::MAX,
        None,
    )?;
    if markers.entries.is_empty() {
        return Ok(stats);
    }
    let registry = crate::tenancy::registry(&mut txn)?;
    drop(txn);
    // With per-database keys, a deleted database's key is already destroyed: its keys are
    // read (and tombstoned) through the store as stored, which never opens a value.
    let raw = shared.database_keys.as_ref().map(|keys| keys.raw_kv());
    let kv: &dyn Kv = raw.as_deref().unwrap_or(shared.kv.as_ref());
    for (marker, read) in markers.entries {
        let Some(dead) = keys::db_of_garbage_marker(&marker) else {
            continue;
        };
        // A restore in progress writes under ids marked like this until it commits (or,
        // interrupted, until its grace time has passed): see `crate::backup`.
        if read
            .value
            .as_deref()
            .is_some_and(crate::backup::marker_protects)
        {
            continue;
        }
        let doomed = crate::tenancy::with_descendants(vec![dead], &registry);
        let mut empty = true;
        for db in &doomed {
            let (deleted, found) = tombstone_range(kv, keys::db_range(*db))?;
            stats.garbage_keys_deleted += deleted;
            let pruned = prune_range(shared, keys::db_range(*db), horizon)?;
            empty &= !found && pruned.keys_scanned == 0;
            stats.add(&pruned);
        }
        if empty {
            let mut txn = Txn::begin(shared.kv.as_ref())?;
            for db in &doomed {
                txn.delete(keys::db_parent(*db));
            }
            txn.delete(marker);
            match shared.kv.commit(txn.into_write_set(), None) {
                Ok(_) | Err(CommitError::Conflict) | Err(CommitError::DeadlineExceeded) => {}
                Err(CommitError::Kv(e)) => return Err(e),
            }
        }
    }
    Ok(stats)
}
